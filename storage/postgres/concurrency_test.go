package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/conformance"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// replicas opens n stores on one new schema: n pools, as n processes
// would have.
func replicas(t testing.TB, n int) []*Store {
	t.Helper()
	dsn := pgtest.Schema(t)
	out := make([]*Store, n)
	for i := range out {
		out[i] = openDSN(t, dsn)
	}
	return out
}

// waitForLockWaiters returns once n sessions of s's database wait for a
// lock, so a test knows a statement has reached its lock before it lets
// the holder go.
func waitForLockWaiters(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		var waiting int
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatalf("waiting for %d lock waiters: %v", n, err)
		}
		if waiting >= n {
			return
		}
		runtime.Gosched()
	}
}

func TestAuditIsOneChainAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3)
	ctx := t.Context()
	const writers, each = 4, 20
	var wg sync.WaitGroup
	errs := make(chan error, len(rs)*writers)
	for r, s := range rs {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					e := storage.AuditEvent{Type: "token.issued", Actor: fmt.Sprintf("replica %d", r), UserID: fmt.Sprint(w)}
					if i%5 == 4 {
						// An append rolled back with its transaction
						// leaves no gap.
						err := s.InTx(ctx, func(ctx context.Context) error {
							if _, err := s.AppendAudit(ctx, e); err != nil {
								return err
							}
							return errRolledBack
						})
						if !errors.Is(err, errRolledBack) {
							errs <- fmt.Errorf("a rolled-back append: %v", err)
							return
						}
						continue
					}
					if _, err := s.AppendAudit(ctx, e); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var v storage.ChainVerifier
	if err := rs[0].WalkAudit(ctx, v.Check); err != nil {
		t.Fatal(err)
	}
	if want := len(rs) * writers * each * 4 / 5; v.Count != want {
		t.Fatalf("the chain has %d events, want %d", v.Count, want)
	}
}

func TestAuditRowsCannotBeChangedEvenByHand(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	for i := range 2 {
		if _, err := s.AppendAudit(ctx, storage.AuditEvent{Type: fmt.Sprint("e", i), Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{
		`UPDATE audit_event SET type = 'forged' WHERE seq = 1`,
		`DELETE FROM audit_event WHERE seq = 2`,
		`TRUNCATE audit_event`,
		`INSERT INTO audit_event (seq, time, hash) VALUES (3, now(), '\x00')`,
		`INSERT INTO audit_event (seq, time, hash) VALUES (2, now(), '\x00') ON CONFLICT (seq) DO UPDATE SET type = 'forged'`,
		`UPDATE audit_head SET seq = 1`,
		`DELETE FROM audit_head`,
		`TRUNCATE audit_head`,
	} {
		t.Run(stmt, func(t *testing.T) {
			if _, err := s.pool.Exec(ctx, stmt); err == nil {
				t.Fatal("the database accepted it")
			}
		})
	}
	var v storage.ChainVerifier
	if err := s.WalkAudit(ctx, v.Check); err != nil || v.Count != 2 {
		t.Fatalf("the chain after the attempts: %d events, %v", v.Count, err)
	}
}

func TestClaimOutboxAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3)
	conformance.ClaimRace(t, []storage.Outbox{rs[0], rs[1], rs[2]}, 300)
}

// A claim that has not committed yet holds its messages: another
// replica's claim skips them instead of waiting for it or taking them.
func TestClaimOutboxSkipsMessagesAnotherReplicaIsClaiming(t *testing.T) {
	rs := replicas(t, 2)
	ctx := t.Context()
	for i := range 4 {
		if _, err := rs[0].EnqueueOutbox(ctx, storage.OutboxMessage{Kind: "alert", Target: fmt.Sprint(i), NextAttemptAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	lease := t0.Add(time.Minute)
	txCtx, err := rs[0].BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rs[0].Rollback(txCtx)
	mine, err := rs[0].ClaimOutbox(txCtx, t0, lease, 3)
	if err != nil || len(mine) != 3 {
		t.Fatalf("the first replica's batch: %d messages, %v", len(mine), err)
	}
	theirs, err := rs[1].ClaimOutbox(ctx, t0, lease, 10)
	if err != nil || len(theirs) != 1 || theirs[0].Target != "3" {
		t.Fatalf("the second replica's batch while the first holds three: %+v, %v", theirs, err)
	}
	for _, m := range mine {
		if err := rs[0].MarkOutboxDelivered(txCtx, m.ID, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs[0].Commit(txCtx); err != nil {
		t.Fatal(err)
	}
	theirs, err = rs[1].ClaimOutbox(ctx, lease, lease.Add(time.Minute), 10)
	if err != nil || len(theirs) != 1 || theirs[0].Target != "3" {
		t.Fatalf("after the first replica delivered and the lease ran out: %+v, %v; want the one it did not take", theirs, err)
	}
}

// A kill on one replica is ordered with a token request on another: the
// kill that comes second waits for the request's transaction and then
// revokes what it issued, as SQLite's single writer would order them.
func TestKillsWaitForTokensBeingIssued(t *testing.T) {
	token := func(sig string) storage.TokenRecord {
		return storage.TokenRecord{Kind: storage.KindAccessToken, Signature: sig, RequestID: "req-" + sig,
			ClientID: "app", Subject: "u", SID: "sid-1", Active: true, RequestedAt: t0}
	}
	for _, tc := range []struct {
		name string
		kill func(ctx context.Context, s *Store) error
	}{
		{"suspending the user", func(ctx context.Context, s *Store) error {
			return s.InTx(ctx, func(ctx context.Context) error {
				if err := s.UpdateUser(ctx, "u", func(u *storage.User) error { u.SuspendedAt = t0; return nil }); err != nil {
					return err
				}
				_, err := s.RevokeSubject(ctx, "u")
				return err
			})
		}},
		{"ending the session", func(ctx context.Context, s *Store) error {
			_, err := s.RevokeSession(ctx, "sid-1")
			return err
		}},
		{"disabling the app", func(ctx context.Context, s *Store) error {
			return s.InTx(ctx, func(ctx context.Context) error {
				if err := s.UpdateClient(ctx, "app", func(c *storage.Client) error { c.Disabled = true; return nil }); err != nil {
					return err
				}
				_, err := s.RevokeClient(ctx, "app", true)
				return err
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := replicas(t, 2)
			issuer, killer := rs[0], rs[1]
			ctx := t.Context()
			if err := issuer.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com"}); err != nil {
				t.Fatal(err)
			}
			if err := issuer.CreateClient(ctx, storage.Client{ID: "app"}); err != nil {
				t.Fatal(err)
			}
			if err := issuer.CreateToken(ctx, token("old")); err != nil {
				t.Fatal(err)
			}
			// The token request reads what it stands on, as the
			// fosite adapter's re-check does, and issues a token.
			txCtx, err := issuer.BeginTx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer issuer.Rollback(txCtx)
			if _, err := issuer.GetToken(txCtx, storage.KindAccessToken, "old"); err != nil {
				t.Fatal(err)
			}
			if _, err := issuer.GetClient(txCtx, "app"); err != nil {
				t.Fatal(err)
			}
			if _, err := issuer.GetUser(txCtx, "u"); err != nil {
				t.Fatal(err)
			}
			if err := issuer.CreateToken(txCtx, token("new")); err != nil {
				t.Fatal(err)
			}
			killed := make(chan error, 1)
			go func() { killed <- tc.kill(ctx, killer) }()
			waitForLockWaiters(t, issuer, 1)
			if err := issuer.Commit(txCtx); err != nil {
				t.Fatal(err)
			}
			if err := <-killed; err != nil {
				t.Fatal(err)
			}
			for _, sig := range []string{"old", "new"} {
				rec, err := issuer.GetToken(ctx, storage.KindAccessToken, sig)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Active {
					t.Errorf("token %s is still active after the kill", sig)
				}
			}
		})
	}
}

func TestReplicasStartingAtOnceCreateOneSigningKey(t *testing.T) {
	rs := replicas(t, 3)
	conformance.EnsureKeyRace(t, []storage.Store{rs[0], rs[1], rs[2]})
}
