package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// withData runs fn with the opened data directory and a CLI manager.
func withData(ctx context.Context, g *globalOptions, fn func(s settings, store storage.Store, master *keys.Master, m *manage.Manager) error) error {
	s, err := resolve(g, "", false)
	if err != nil {
		return err
	}
	store, master, err := openData(ctx, s)
	if err != nil {
		return err
	}
	defer store.Close()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := manager(ctx, s, store, master, logger)
	if err != nil {
		return err
	}
	err = fn(s, store, master, m)
	if errors.Is(err, manage.ErrInvalid) {
		return usageError{err}
	}
	return err
}

func newUser(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Add, list and suspend users"}
	var admin, asJSON, addEmail bool
	var name, role string
	var groups []string
	add := &cobra.Command{
		Use:   "add EMAIL",
		Short: "Add a user and print their single-use enrolment URL",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if admin {
				if role != "" && role != storage.RoleAdmin {
					return usagef("--admin is --role admin; it cannot go with --role %s", role)
				}
				role = storage.RoleAdmin
			}
			if err := checkSendEmail(g, addEmail); err != nil {
				return err
			}
			return withData(cmd.Context(), g, func(_ settings, store storage.Store, master *keys.Master, m *manage.Manager) error {
				nu, err := emailing(m, store, master, addEmail).CreateUser(cmd.Context(),
					manage.UserSpec{Email: args[0], Name: name, Role: role, Groups: groups})
				if err != nil {
					return err
				}
				if addEmail {
					return printEmailed(nu, asJSON, false)
				}
				if asJSON {
					return printJSON(map[string]any{"user_id": nu.User.ID, "email": nu.User.Email,
						"enrollment_url": nu.EnrollmentURL, "expires_at": nu.ExpiresAt.UTC().Format(time.RFC3339)})
				}
				fmt.Printf("Added %s. Hand over this single-use enrolment URL (valid until %s):\n  %s\n",
					nu.User.Email, nu.ExpiresAt.UTC().Format(time.RFC3339), nu.EnrollmentURL)
				return nil
			})
		},
	}
	add.Flags().BoolVar(&admin, "admin", false, "make the user an administrator (the same as --role admin)")
	add.Flags().StringVar(&role, "role", "", "a role in the admin console: admin, helpdesk or auditor")
	add.Flags().StringArrayVar(&groups, "group", nil, "a group the user joins (repeatable)")
	add.Flags().StringVar(&name, "name", "", "display name")
	add.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	add.Flags().BoolVar(&addEmail, "send-email", false, sendEmailFlag)

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withData(cmd.Context(), g, func(_ settings, store storage.Store, _ *keys.Master, _ *manage.Manager) error {
				users, err := store.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				ids := make([]string, len(users))
				for i, u := range users {
					ids[i] = u.ID
				}
				groups, err := manage.UserGroups(cmd.Context(), store, ids)
				if err != nil {
					return err
				}
				groupsOf := make(map[string][]string, len(users))
				for _, u := range users {
					groupsOf[u.ID] = groupNames(groups[u.ID])
				}
				if listJSON {
					out := make([]map[string]any, 0, len(users))
					for _, u := range users {
						out = append(out, map[string]any{"user_id": u.ID, "email": u.Email, "name": u.Name,
							"role": u.Role, "admin": u.IsAdmin(), "groups": groupsOf[u.ID], "status": userStatus(u),
							"enrolled": u.Enrolled(), "suspended": u.Suspended(),
							"created_at": u.CreatedAt.UTC().Format(time.RFC3339)})
					}
					return printJSON(out)
				}
				rows := make([][]string, 0, len(users))
				for _, u := range users {
					rows = append(rows, []string{u.Email, u.Name, cmp.Or(u.Role, "-"), userStatus(u),
						cmp.Or(strings.Join(groupsOf[u.ID], ","), "-"), u.ID})
				}
				return printTable(os.Stdout, []string{"EMAIL", "NAME", "ROLE", "STATUS", "GROUPS", "ID"}, rows)
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	var suspendJSON bool
	suspend := &cobra.Command{
		Use:   "suspend EMAIL",
		Short: "Suspend a user: end every session and revoke every token of theirs at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withData(cmd.Context(), g, func(_ settings, _ storage.Store, _ *keys.Master, m *manage.Manager) error {
				res, err := m.SuspendUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if suspendJSON {
					return printJSON(map[string]any{"user_id": res.User.ID, "email": res.User.Email,
						"sessions_ended": res.Sessions, "tokens_revoked": res.Tokens})
				}
				fmt.Printf("Suspended %s: %d sessions ended, %d tokens revoked.\n", res.User.Email, res.Sessions, res.Tokens)
				return nil
			})
		},
	}
	suspend.Flags().BoolVar(&suspendJSON, "json", false, "print JSON")
	var reenrollJSON, reenrollEmail bool
	reenroll := &cobra.Command{
		Use:   "reenroll EMAIL",
		Short: "Issue a new single-use enrolment URL, e.g. for a user who lost their keys",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSendEmail(g, reenrollEmail); err != nil {
				return err
			}
			return withData(cmd.Context(), g, func(_ settings, store storage.Store, master *keys.Master, m *manage.Manager) error {
				nu, err := emailing(m, store, master, reenrollEmail).IssueEnrollment(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if reenrollEmail {
					return printEmailed(nu, reenrollJSON, false)
				}
				if reenrollJSON {
					return printJSON(map[string]any{"user_id": nu.User.ID, "email": nu.User.Email,
						"enrollment_url": nu.EnrollmentURL, "expires_at": nu.ExpiresAt.UTC().Format(time.RFC3339)})
				}
				fmt.Printf("Hand this single-use enrolment URL to %s (valid until %s):\n  %s\n",
					nu.User.Email, nu.ExpiresAt.UTC().Format(time.RFC3339), nu.EnrollmentURL)
				return nil
			})
		},
	}
	reenroll.Flags().BoolVar(&reenrollJSON, "json", false, "print JSON")
	reenroll.Flags().BoolVar(&reenrollEmail, "send-email", false, sendEmailFlag)
	unsuspend := &cobra.Command{
		Use:   "unsuspend EMAIL",
		Short: "Let a suspended user sign in again (their old sessions and tokens stay revoked)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withData(cmd.Context(), g, func(_ settings, store storage.Store, _ *keys.Master, m *manage.Manager) error {
				u, err := store.GetUserByEmail(cmd.Context(), strings.ToLower(strings.TrimSpace(args[0])))
				if errors.Is(err, storage.ErrNotFound) {
					return usagef("no user has email %s", args[0])
				} else if err != nil {
					return err
				}
				if err := m.UnsuspendUser(cmd.Context(), u.ID); err != nil {
					return err
				}
				fmt.Printf("%s may sign in again.\n", u.Email)
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, suspend, unsuspend, reenroll, newUserImport(g))
	return cmd
}

// userStatus is active, pending (enrolment not finished: no second factor
// confirmed yet) or suspended.
func userStatus(u storage.User) string {
	switch {
	case u.Suspended():
		return "suspended"
	case !u.Enrolled():
		return "pending"
	}
	return "active"
}

func groupNames(gs []storage.Group) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// exactArgs is cobra.ExactArgs with a usage error (exit code 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
