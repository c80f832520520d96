package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/keygate/keygate/storage/storecopy"
)

func newStore(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Move the store from SQLite to PostgreSQL"}
	var to string
	var asJSON bool
	cp := &cobra.Command{
		Use:   "copy --to postgres://…",
		Short: "Copy the data directory's SQLite store into an empty PostgreSQL database (stop keygate serve first to copy its last writes)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := resolve(g, "", false)
			if err != nil {
				return err
			}
			if to == "" {
				return usagef("store copy needs --to postgres://USER:PASSWORD@HOST/DATABASE")
			}
			if s.database != "" && s.database != to {
				// The source is always the data directory's SQLite file.
				return usagef("store copy reads the SQLite store in the data directory and writes to --to; --database (or KEYGATE_DATABASE_URL, or database: in the config) names another database")
			}
			db, err := parseDatabaseURL(to)
			if err != nil {
				return err
			}
			// Interrupted, the copy's transaction is rolled back.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			res, err := storecopy.Copy(ctx, filepath.Join(s.dataDir, dbFile), db.dsn)
			if err != nil {
				return copyError(db, err)
			}
			took := time.Since(start)
			if asJSON {
				tables := map[string]int64{}
				for _, t := range res.Tables {
					tables[t.Table] = t.Rows
				}
				return printJSON(map[string]any{"schema_version": res.SchemaVersion, "tables": tables,
					"audit_events": res.AuditEvents, "seconds": took.Seconds()})
			}
			var rows int64
			for _, t := range res.Tables {
				rows += t.Rows
			}
			fmt.Printf("Copied %d rows in %d tables (schema version %d) to PostgreSQL at %s in %s; the audit chain of %d events verified.\n",
				rows, len(res.Tables), res.SchemaVersion, db.where, took.Round(time.Millisecond), res.AuditEvents)
			fmt.Println("Run keygate with --database (or KEYGATE_DATABASE_URL) and the same master key from now on.")
			return nil
		},
	}
	cp.Flags().StringVar(&to, "to", "", "the PostgreSQL database to copy into, postgres://USER:PASSWORD@HOST/DB: new and empty")
	cp.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(cp)
	return cmd
}

// copyError turns a failed copy into the command's error: a target that
// is not empty or at another schema version, or a missing source, is a
// usage error (exit code 2); a connection failure names the server, not
// the URL.
func copyError(db databaseURL, err error) error {
	var ce *pgconn.ConnectError
	switch {
	case errors.Is(err, storecopy.ErrNotEmpty), errors.Is(err, storecopy.ErrSchemaVersion), errors.Is(err, storecopy.ErrNoSource):
		return usageError{fmt.Errorf("store copy: %w", err)}
	case errors.As(err, &ce):
		return db.openError(err)
	}
	return fmt.Errorf("store copy: %w (nothing was copied)", err)
}
