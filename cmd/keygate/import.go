package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// newUserImport is `keygate user import FILE.csv`.
func newUserImport(g *globalOptions) *cobra.Command {
	var sendEmail bool
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Add the users of a CSV file (email,name,groups) in one go; prints a JSON line per user",
		Long: "The file starts with the header line email,name,groups; groups are separated by ';'.\n" +
			"All users are added, each with their groups and enrolment URL, or — if any row is wrong — none,\n" +
			"and every wrong row is named by its line number.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSendEmail(g, sendEmail); err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			defer f.Close()
			specs, lines, err := readUserCSV(f)
			if err != nil {
				return usageError{err}
			}
			return withData(cmd.Context(), g, func(_ settings, store storage.Store, master *keys.Master, m *manage.Manager) error {
				added, err := emailing(m, store, master, sendEmail).ImportUsers(cmd.Context(), specs)
				var ie *manage.ImportError
				if errors.As(err, &ie) {
					var msgs []string
					for _, p := range ie.Problems {
						msgs = append(msgs, fmt.Sprintf("line %d: %s", lines[p.Index], p.Problem))
					}
					return usagef("%s: nothing was imported:\n  %s", args[0], strings.Join(msgs, "\n  "))
				}
				if err != nil {
					return err
				}
				for _, nu := range added {
					if sendEmail {
						if err := printEmailed(nu, false, true); err != nil {
							return err
						}
						continue
					}
					if err := printJSONLine(map[string]any{"user_id": nu.User.ID, "email": nu.User.Email,
						"enrollment_url": nu.EnrollmentURL, "expires_at": nu.ExpiresAt.UTC().Format(time.RFC3339)}); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&sendEmail, "send-email", false, sendEmailFlag)
	return cmd
}

// readUserCSV reads the import file: the header line email,name,groups,
// then one user a line. It returns the users and the line each came from.
// A file that is not such a CSV is refused whole, naming every bad line.
func readUserCSV(r io.Reader) ([]manage.UserSpec, []int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // counted here, so every bad line is named
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, errors.New("the file is empty: it needs the header line email,name,groups")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("line 1: %w", err)
	}
	want := []string{"email", "name", "groups"}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
	}
	if !slices.Equal(header, want) {
		return nil, nil, fmt.Errorf("line 1: the header must be email,name,groups, not %s", strings.Join(header, ","))
	}
	var specs []manage.UserSpec
	var bad []string
	var lineOf []int
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			bad = append(bad, err.Error())
			var pe *csv.ParseError
			if errors.As(err, &pe) && pe.Err != csv.ErrFieldCount {
				break // the reader cannot go on after a quoting error
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 3 {
			bad = append(bad, fmt.Sprintf("line %d: %d fields, want 3 (email,name,groups)", line, len(rec)))
			continue
		}
		spec := manage.UserSpec{Email: strings.TrimSpace(rec[0]), Name: strings.TrimSpace(rec[1])}
		for _, gname := range strings.Split(rec[2], ";") {
			if gname = strings.TrimSpace(gname); gname != "" {
				spec.Groups = append(spec.Groups, gname)
			}
		}
		specs = append(specs, spec)
		lineOf = append(lineOf, line)
	}
	if len(bad) > 0 {
		return nil, nil, fmt.Errorf("nothing was imported:\n  %s", strings.Join(bad, "\n  "))
	}
	if len(specs) == 0 {
		return nil, nil, errors.New("the file has a header but no users")
	}
	return specs, lineOf, nil
}
