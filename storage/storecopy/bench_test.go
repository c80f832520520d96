package storecopy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// BenchmarkCopy copies a store of 10,000 users and 100,000 audit events
// into a new schema each time.
func BenchmarkCopy(b *testing.B) {
	const users, events, batch = 10_000, 100_000, 1_000
	src := newSource(b)
	ctx := b.Context()
	now := time.Now().UTC()
	for i := 0; i < events; i += batch {
		ok(b, src.st.InTx(ctx, func(ctx context.Context) error {
			for j := i; j < i+batch; j++ {
				if j < users {
					id := fmt.Sprintf("u_%06d", j)
					if err := src.st.CreateUser(ctx, storage.User{ID: id, Email: id + "@example.com", Name: "User " + id,
						PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", CreatedAt: now, UpdatedAt: now}); err != nil {
						return err
					}
				}
				if _, err := src.st.AppendAudit(ctx, storage.AuditEvent{Type: "signin.succeeded", Actor: "u_x", UserID: fmt.Sprintf("u_%06d", j%users),
					ClientID: "c_wiki", IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", Result: "success",
					Details: map[string]string{"acr": "phr", "amr": "hwk"}}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dsn := pgtest.Schema(b)
		b.StartTimer()
		res, err := Copy(ctx, src.path, dsn)
		ok(b, err)
		if res.AuditEvents != events {
			b.Fatalf("copied %d events", res.AuditEvents)
		}
	}
}
