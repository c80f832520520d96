package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testOutbox(t *testing.T, newStore NewStore) {
	msg := func(target string, next time.Time) storage.OutboxMessage {
		return storage.OutboxMessage{
			Kind:          "backchannel_logout",
			Target:        target,
			Payload:       []byte("logout_token=" + target),
			NextAttemptAt: next,
			CreatedAt:     t0,
		}
	}
	targets := func(ms []storage.OutboxMessage) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Target)
		}
		return out
	}

	t.Run("claims come earliest first, without future, delivered or leased ones", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ids := map[string]int64{}
		for _, m := range []storage.OutboxMessage{
			msg("later", at(time.Hour)),
			msg("second", at(-time.Minute)),
			msg("first", at(-time.Hour)),
			msg("third", t0.Add(-time.Second)),
			msg("delivered", at(-2*time.Hour)),
		} {
			id, err := st.EnqueueOutbox(ctx, m)
			ok(t, err)
			if id == 0 {
				t.Fatal("EnqueueOutbox returned id 0")
			}
			for other, oid := range ids {
				if oid == id {
					t.Fatalf("%s and %s got the same id %d", m.Target, other, id)
				}
			}
			ids[m.Target] = id
		}
		ok(t, st.MarkOutboxDelivered(ctx, ids["delivered"], t0))

		due, err := storage.PendingOutbox(ctx, st, t0, 10)
		ok(t, err)
		same(t, "pending targets", targets(due), []string{"first", "second", "third"})

		lease := at(time.Minute)
		due, err = st.ClaimOutbox(ctx, t0, lease, 2)
		ok(t, err)
		same(t, "claimed targets with limit 2", targets(due), []string{"first", "second"})
		want := msg("first", at(-time.Hour))
		want.ID = ids["first"]
		same(t, "first claimed message, as it was before the claim", due[0], want)

		due, err = st.ClaimOutbox(ctx, t0, lease, 10)
		ok(t, err)
		same(t, "claimed targets while the first two are leased", targets(due), []string{"third"})
		due, err = st.ClaimOutbox(ctx, lease.Add(-time.Second), lease, 10)
		ok(t, err)
		same(t, "claimed targets before the lease runs out", targets(due), []string(nil))
		due, err = st.ClaimOutbox(ctx, lease, at(2*time.Minute), 10)
		ok(t, err)
		// All three are due at the lease's end now, so they come by id.
		same(t, "claimed targets once the lease ran out", targets(due), []string{"second", "first", "third"})
	})

	t.Run("a failed delivery is counted and rescheduled", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		id, err := st.EnqueueOutbox(ctx, msg("rp", t0))
		ok(t, err)
		claimed, err := st.ClaimOutbox(ctx, t0, at(time.Minute), 10)
		ok(t, err)
		same(t, "claimed targets", targets(claimed), []string{"rp"})
		ok(t, st.MarkOutboxFailed(ctx, id, at(time.Minute), "connection refused"))
		ok(t, st.MarkOutboxFailed(ctx, id, at(5*time.Minute), "HTTP 503"))

		due, err := st.ClaimOutbox(ctx, at(time.Minute), at(time.Hour), 10)
		ok(t, err)
		if len(due) != 0 {
			t.Fatalf("a rescheduled message is due early: %+v", due)
		}
		due, err = storage.PendingOutbox(ctx, st, at(5*time.Minute), 10)
		ok(t, err)
		if len(due) != 1 {
			t.Fatalf("PendingOutbox returned %d messages, want 1", len(due))
		}
		m := due[0]
		if m.Attempts != 2 || m.LastError != "HTTP 503" || !m.NextAttemptAt.Equal(at(5*time.Minute)) {
			t.Fatalf("after two failures: Attempts %d, LastError %q, NextAttemptAt %v", m.Attempts, m.LastError, m.NextAttemptAt)
		}
	})

	t.Run("a delivered message is never claimed again", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		id, err := st.EnqueueOutbox(ctx, msg("rp", t0))
		ok(t, err)
		_, err = st.ClaimOutbox(ctx, t0, at(time.Minute), 10)
		ok(t, err)
		ok(t, st.MarkOutboxDelivered(ctx, id, t0))
		due, err := st.ClaimOutbox(ctx, at(time.Hour), at(2*time.Hour), 10)
		ok(t, err)
		same(t, "claimed after delivery", targets(due), []string(nil))
	})

	t.Run("concurrent claims take every message exactly once within a lease", func(t *testing.T) {
		ClaimRace(t, []storage.Outbox{newStore(t)}, 200)
	})

	t.Run("an unknown message is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		id, err := st.EnqueueOutbox(ctx, msg("rp", t0))
		ok(t, err)
		wantErr(t, st.MarkOutboxDelivered(ctx, id+100, t0), storage.ErrNotFound)
		wantErr(t, st.MarkOutboxFailed(ctx, id+100, t0, "x"), storage.ErrNotFound)
	})
}

func testSigningKeys(t *testing.T, newStore NewStore) {
	key := func(kid, alg string, created time.Time) storage.SigningKey {
		return storage.SigningKey{
			KID:       kid,
			Alg:       alg,
			Sealed:    []byte("sealed " + kid),
			PublicJWK: []byte(`{"kid":"` + kid + `"}`),
			CreatedAt: created,
		}
	}
	list := func(t *testing.T, st storage.Store) map[string]storage.SigningKey {
		t.Helper()
		ks, err := st.ListSigningKeys(t.Context())
		ok(t, err)
		m := map[string]storage.SigningKey{}
		for _, k := range ks {
			m[k.KID] = k
		}
		return m
	}

	t.Run("keys read back and a taken kid is refused", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		k := key("k1", "ES256", t0)
		ok(t, st.CreateSigningKey(ctx, k))
		same(t, "keys", list(t, st), map[string]storage.SigningKey{"k1": k})
		wantErr(t, st.CreateSigningKey(ctx, key("k1", "RS256", t0)), storage.ErrAlreadyExists)
	})

	t.Run("retiring an algorithm retires only its active keys", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		old := key("old", "ES256", at(-48*time.Hour))
		old.RetiredAt = at(-24 * time.Hour)
		for _, k := range []storage.SigningKey{old, key("es", "ES256", at(-24*time.Hour)), key("rs", "RS256", at(-24*time.Hour))} {
			ok(t, st.CreateSigningKey(ctx, k))
		}
		ok(t, st.RetireSigningKeys(ctx, "ES256", t0))
		ks := list(t, st)
		for kid, want := range map[string]time.Time{"old": at(-24 * time.Hour), "es": t0, "rs": {}} {
			if got := ks[kid].RetiredAt; !got.Equal(want) {
				t.Errorf("key %s: RetiredAt %v, want %v", kid, got, want)
			}
		}
	})

	t.Run("only keys retired before the cut-off are deleted", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for kid, retired := range map[string]time.Time{"long-ago": at(-48 * time.Hour), "recent": at(-time.Hour), "active": {}} {
			k := key(kid, "ES256", at(-72*time.Hour))
			k.RetiredAt = retired
			ok(t, st.CreateSigningKey(ctx, k))
		}
		n, err := st.DeleteSigningKeysRetiredBefore(ctx, at(-24*time.Hour))
		ok(t, err)
		if n != 1 {
			t.Fatalf("deleted %d keys, want 1", n)
		}
		ks := list(t, st)
		if _, ok := ks["long-ago"]; ok || len(ks) != 2 {
			t.Fatalf("keys left: %v", ks)
		}
	})

	t.Run("transactions that create a missing key create it once", func(t *testing.T) {
		st := newStore(t)
		EnsureKeyRace(t, []storage.Store{st})
	})
}

// EnsureKeyRace runs, on several goroutines per store at once, a
// transaction that lists the signing keys and creates an ES256 key when
// none is active, as every keygate process does when it starts. stores
// share one database; exactly one key must be created.
func EnsureKeyRace(t *testing.T, stores []storage.Store) {
	t.Helper()
	const perStore = 4
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*perStore)
	for i, st := range stores {
		for j := range perStore {
			wg.Go(func() {
				errs <- st.InTx(t.Context(), func(ctx context.Context) error {
					ks, err := st.ListSigningKeys(ctx)
					if err != nil {
						return err
					}
					for _, k := range ks {
						if k.Alg == "ES256" && k.RetiredAt.IsZero() {
							return nil
						}
					}
					kid := fmt.Sprintf("k-%d-%d", i, j)
					return st.CreateSigningKey(ctx, storage.SigningKey{KID: kid, Alg: "ES256", Sealed: []byte(kid), CreatedAt: t0})
				})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		ok(t, err)
	}
	ks, err := stores[0].ListSigningKeys(t.Context())
	ok(t, err)
	if len(ks) != 1 {
		t.Fatalf("%d keys were created, want 1: %+v", len(ks), ks)
	}
}

func testAttempts(t *testing.T, newStore NewStore) {
	t.Run("attempts are counted per scope and key since a time", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for _, a := range []struct {
			scope, key string
			at         time.Duration
		}{
			{"password", "ada@example.com", -time.Hour},
			{"password", "ada@example.com", -time.Minute},
			{"password", "ada@example.com", -time.Second},
			{"password", "bob@example.com", -time.Second},
			{"totp", "ada@example.com", -time.Second},
		} {
			ok(t, st.RecordAttempt(ctx, a.scope, a.key, at(a.at)))
		}
		for _, tc := range []struct {
			scope, key string
			since      time.Duration
			want       int
		}{
			{"password", "ada@example.com", -2 * time.Hour, 3},
			{"password", "ada@example.com", -10 * time.Minute, 2},
			{"password", "bob@example.com", -10 * time.Minute, 1},
			{"totp", "ada@example.com", -10 * time.Minute, 1},
			{"password", "eve@example.com", -10 * time.Minute, 0},
		} {
			n, err := st.CountAttempts(ctx, tc.scope, tc.key, at(tc.since))
			ok(t, err)
			if n != tc.want {
				t.Errorf("CountAttempts(%s, %s, now%v) = %d, want %d", tc.scope, tc.key, tc.since, n, tc.want)
			}
		}

		ok(t, st.ClearAttempts(ctx, "password", "ada@example.com"))
		for _, tc := range []struct {
			scope, key string
			want       int
		}{{"password", "ada@example.com", 0}, {"password", "bob@example.com", 1}, {"totp", "ada@example.com", 1}} {
			n, err := st.CountAttempts(ctx, tc.scope, tc.key, at(-2*time.Hour))
			ok(t, err)
			if n != tc.want {
				t.Errorf("after clearing: CountAttempts(%s, %s) = %d, want %d", tc.scope, tc.key, n, tc.want)
			}
		}
	})

	t.Run("the sweep deletes attempts before a time", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for _, d := range []time.Duration{-2 * time.Hour, -90 * time.Minute, -time.Minute} {
			ok(t, st.RecordAttempt(ctx, "password", "k", at(d)))
		}
		n, err := st.DeleteAttemptsBefore(ctx, at(-time.Hour))
		ok(t, err)
		if n != 2 {
			t.Fatalf("DeleteAttemptsBefore = %d, want 2", n)
		}
		n, err = st.CountAttempts(ctx, "password", "k", at(-24*time.Hour))
		ok(t, err)
		if n != 1 {
			t.Fatalf("%d attempts left, want 1", n)
		}
	})
}

func testMeta(t *testing.T, newStore NewStore) {
	t.Run("an unset key is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		_, err := st.GetMeta(ctx, "issuer")
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a set value reads back and can be overwritten", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for _, v := range []string{"https://id.example.com", "https://login.example.com", ""} {
			ok(t, st.SetMeta(ctx, "issuer", v))
			got, err := st.GetMeta(ctx, "issuer")
			ok(t, err)
			if got != v {
				t.Fatalf("GetMeta = %q, want %q", got, v)
			}
		}
	})
}
