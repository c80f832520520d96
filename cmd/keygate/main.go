// Command keygate is the identity provider's single binary: `keygate serve`
// runs it; the other commands work directly on its store — SQLite in the
// data directory, or the PostgreSQL database --database names — also while
// serve runs.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "unreleased"

// usageError marks bad invocations: exit code 2, as the CLI contract says.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	root := newRoot()
	err := root.Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "keygate:", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		os.Exit(2)
	}
	os.Exit(1)
}

func newRoot() *cobra.Command {
	var opts globalOptions
	root := &cobra.Command{
		Use:           "keygate",
		Short:         "An OAuth2/OpenID Connect identity provider that issues tokens only after a second factor",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&opts.dataDir, "data-dir", "", "data directory (env KEYGATE_DATA_DIR; default ./keygate-data)")
	root.PersistentFlags().StringVar(&opts.database, "database", "", "PostgreSQL URL, postgres://USER:PASSWORD@HOST/DB (env KEYGATE_DATABASE_URL; default SQLite in the data directory)")
	root.PersistentFlags().StringVar(&opts.issuer, "issuer", "", "public URL of keygate (env KEYGATE_ISSUER)")
	root.PersistentFlags().StringVar(&opts.configFile, "config", "", "YAML configuration file (env KEYGATE_CONFIG)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServe(&opts), newUser(&opts), newGroup(&opts), newClient(&opts), newKeys(&opts),
		newAudit(&opts), newBackup(&opts), newStore(&opts), newVersion())
	return root
}

// isCobraUsage recognises cobra's own argument errors (unknown command,
// wrong number of arguments), which do not pass through SetFlagErrorFunc.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "unknown flag", "unknown shorthand", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
