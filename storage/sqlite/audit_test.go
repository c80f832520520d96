package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/keygate/keygate/storage"
)

// Appends that guess their predecessor wrong (the guess's transaction
// rolled back, or another process appended since) still chain correctly.
func TestAuditAppendsChainAcrossRollbacksAndProcesses(t *testing.T) {
	s, path := openTemp(t)
	other, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := t.Context()
	ev := func(typ string) storage.AuditEvent {
		return storage.AuditEvent{Type: typ, Actor: "test", Result: "success"}
	}
	steps := []func() error{
		func() error { _, err := s.AppendAudit(ctx, ev("a")); return err },
		func() error { _, err := s.AppendAudit(ctx, ev("b")); return err },
		func() error { // appended, then rolled back: s's guess is now wrong
			err := s.InTx(ctx, func(ctx context.Context) error {
				if _, err := s.AppendAudit(ctx, ev("gone")); err != nil {
					return err
				}
				return errors.New("roll back")
			})
			if err == nil {
				return errors.New("the rolled-back InTx succeeded")
			}
			return nil
		},
		func() error { _, err := s.AppendAudit(ctx, ev("c")); return err },
		func() error { _, err := other.AppendAudit(ctx, ev("from another process")); return err },
		func() error { _, err := s.AppendAudit(ctx, ev("d")); return err },
		func() error { _, err := other.AppendAudit(ctx, ev("e")); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	var v storage.ChainVerifier
	if err := s.WalkAudit(ctx, v.Check); err != nil {
		t.Fatal(err)
	}
	if v.Count != 6 {
		t.Fatalf("%d events in the chain, want 6", v.Count)
	}
}
