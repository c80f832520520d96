package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/postgres"
)

func newKeys(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage token signing keys"}
	var asJSON bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Create new signing keys; old ones stay published until their tokens expire",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withData(cmd.Context(), g, func(s settings, store storage.Store, master *keys.Master, m *manage.Manager) error {
				cfg, err := s.serverConfig()
				if err != nil {
					return err
				}
				kids, err := keys.Rotate(cmd.Context(), store, master, nowUTC(), cfg.KeyRetention)
				if err != nil {
					return err
				}
				if err := m.Audit.Record(cmd.Context(), storage.AuditEvent{Type: audit.KeysRotated, Actor: "cli",
					Result: audit.Success, Details: map[string]string{"new_kids": fmt.Sprint(kids)}}); err != nil {
					return err
				}
				if asJSON {
					return printJSON(map[string]any{"kids": kids})
				}
				fmt.Printf("New signing keys: %v (a running server picks them up within 10 s)\n", kids)
				return nil
			})
		},
	}
	rotate.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(rotate)
	return cmd
}

func newAudit(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the audit log"}
	var asJSON bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's hash chain: any edited, inserted or deleted event is found",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The chain is checked without the master key: an auditor
			// given a copy of the store needs no secret.
			s, err := resolve(g, "", false)
			if err != nil {
				return err
			}
			store, err := openStore(cmd.Context(), s)
			if err != nil {
				return err
			}
			defer store.Close()
			var v storage.ChainVerifier
			chainErr := store.WalkAudit(cmd.Context(), v.Check)
			if asJSON {
				out := map[string]any{"ok": chainErr == nil, "events": v.Count}
				if chainErr != nil {
					out["error"] = chainErr.Error()
				}
				if err := printJSON(out); err != nil {
					return err
				}
			} else if chainErr == nil {
				fmt.Printf("Audit log intact: %d events, hash chain verified.\n", v.Count)
			}
			if chainErr != nil {
				return fmt.Errorf("audit log broken after %d good events: %w", v.Count, chainErr)
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(verify)
	return cmd
}

func newBackup(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the database to FILE (secrets stay sealed; keep the master key separately)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err == nil {
				return usagef("%s exists; choose a new file", args[0])
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			// Interrupted, the backup stops and removes its partial file.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return withData(ctx, g, func(_ settings, store storage.Store, _ *keys.Master, _ *manage.Manager) error {
				if err := store.Backup(ctx, args[0]); err != nil {
					if errors.Is(err, postgres.ErrBackup) {
						return usageError{err}
					}
					return err
				}
				fmt.Printf("Backup written to %s\n", args[0])
				return nil
			})
		},
	}
}

func newVersion() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				return printJSON(map[string]string{"version": version, "go": runtime.Version()})
			}
			fmt.Printf("keygate %s (%s)\n", version, runtime.Version())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
