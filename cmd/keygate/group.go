package main

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// newGroup is `keygate group`: the groups that say who may use which app
// and how their members sign in everywhere.
func newGroup(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Add, list and delete groups, and manage their members"}

	var spec manage.GroupSpec
	var addJSON bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a group",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Name = args[0]
			return withData(cmd.Context(), g, func(_ settings, _ storage.Store, _ *keys.Master, m *manage.Manager) error {
				gr, err := m.CreateGroup(cmd.Context(), spec)
				if err != nil {
					return err
				}
				if addJSON {
					return printJSON(map[string]any{"group_id": gr.ID, "name": gr.Name})
				}
				fmt.Printf("Added group %s (%s).\n", gr.Name, gr.ID)
				return nil
			})
		},
	}
	add.Flags().StringVar(&spec.Description, "description", "", "what the group is for")
	add.Flags().StringVar(&spec.MinACR, "min-acr", "", "the least its members sign in with, in every app: mfa, phr or phrh")
	add.Flags().BoolVar(&addJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List groups",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withData(cmd.Context(), g, func(_ settings, store storage.Store, _ *keys.Master, _ *manage.Manager) error {
				groups, err := store.ListGroups(cmd.Context())
				if err != nil {
					return err
				}
				counts, err := store.CountGroupMembers(cmd.Context())
				if err != nil {
					return err
				}
				if listJSON {
					out := make([]map[string]any, 0, len(groups))
					for _, gr := range groups {
						out = append(out, map[string]any{"group_id": gr.ID, "name": gr.Name, "description": gr.Description,
							"min_acr": gr.MinACR, "members": counts[gr.ID], "created_at": gr.CreatedAt.UTC().Format(time.RFC3339)})
					}
					return printJSON(out)
				}
				rows := make([][]string, 0, len(groups))
				for _, gr := range groups {
					rows = append(rows, []string{gr.Name, cmp.Or(gr.MinACR, "-"), strconv.Itoa(counts[gr.ID]), gr.Description, gr.ID})
				}
				return printTable(os.Stdout, []string{"NAME", "MIN ACR", "MEMBERS", "DESCRIPTION", "ID"}, rows)
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a group: its members lose the apps only it allowed them, at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withData(cmd.Context(), g, func(_ settings, _ storage.Store, _ *keys.Master, m *manage.Manager) error {
				gr, err := m.GroupByName(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if err := m.DeleteGroup(cmd.Context(), gr.ID); err != nil {
					return err
				}
				fmt.Printf("Deleted group %s.\n", gr.Name)
				return nil
			})
		},
	}

	member := &cobra.Command{Use: "member", Short: "Add users to a group or remove them"}
	memberCmd := func(use, short string, op func(m *manage.Manager, cmd *cobra.Command, groupID string, emails []string) error, done string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " GROUP EMAIL...",
			Short: short,
			Args:  minArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withData(cmd.Context(), g, func(_ settings, _ storage.Store, _ *keys.Master, m *manage.Manager) error {
					gr, err := m.GroupByName(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if err := op(m, cmd, gr.ID, args[1:]); err != nil {
						return err
					}
					fmt.Printf("%s %s: %s.\n", done, gr.Name, strings.Join(args[1:], ", "))
					return nil
				})
			},
		}
	}
	member.AddCommand(
		memberCmd("add", "Make users members of a group", func(m *manage.Manager, cmd *cobra.Command, id string, emails []string) error {
			return m.AddMembers(cmd.Context(), id, emails)
		}, "Added to"),
		memberCmd("remove", "End users' membership of a group; apps it alone allowed them end at once",
			func(m *manage.Manager, cmd *cobra.Command, id string, emails []string) error {
				return m.RemoveMembers(cmd.Context(), id, emails)
			}, "Removed from"),
	)
	cmd.AddCommand(add, list, del, member)
	return cmd
}

// minArgs is cobra.MinimumNArgs with a usage error (exit code 2).
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s takes at least %d arguments, got %d (see --help)", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
