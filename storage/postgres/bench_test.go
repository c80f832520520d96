package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// GetClient as introspection and token requests call it, outside a
// transaction, from many goroutines: from the cache, and with the cache
// off (the listener stopped, as while it is disconnected), which reads
// the row each time as before the cache.
func BenchmarkGetClient(b *testing.B) {
	for _, bc := range []struct {
		name   string
		cached bool
	}{{"cached", true}, {"uncached", false}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openFresh(b)
			ctx := b.Context()
			c := storage.Client{ID: "app", Name: "App", SecretHash: []byte("hash"),
				RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
				Scopes: []string{"openid", "profile", "email"}, Audience: []string{"app"}}
			if err := s.CreateClient(ctx, c); err != nil {
				b.Fatal(err)
			}
			if bc.cached {
				waitListener(b, s, listening)
			} else {
				s.changes.close()
				s.clients.Suspend()
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.GetClient(ctx, "app"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// Replicas deliver b.N queued messages: claimers on each claim a batch
// as the deliverer does and mark every message delivered.
func BenchmarkClaimOutbox(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) { benchmarkClaimOutbox(b, n) })
	}
}

func benchmarkClaimOutbox(b *testing.B, n int) {
	rs := replicas(b, n)
	ctx := b.Context()
	t0 := time.Now().Add(-time.Hour)
	if _, err := rs[0].pool.Exec(ctx, `
		INSERT INTO outbox_message (kind, target, payload, attempts, next_attempt_at, last_error, created_at)
		SELECT 'alert', 'https://hooks.example/' || i, '{}', 0, $1, '', $1
		FROM generate_series(1, $2) AS i`, t0, b.N); err != nil {
		b.Fatal(err)
	}
	const claimersPerReplica, batch = 4, 10
	now := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, s := range rs {
		for range claimersPerReplica {
			wg.Go(func() {
				for {
					ms, err := s.ClaimOutbox(ctx, now, now.Add(time.Minute), batch)
					if err != nil {
						b.Error(err)
						return
					}
					if len(ms) == 0 {
						return
					}
					for _, m := range ms {
						if err := s.MarkOutboxDelivered(ctx, m.ID, now); err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	b.StopTimer()
	var left int
	if err := rs[0].pool.QueryRow(context.WithoutCancel(ctx), `SELECT count(*) FROM outbox_message WHERE delivered_at IS NULL`).Scan(&left); err != nil || left != 0 {
		b.Fatalf("%d messages left undelivered, %v", left, err)
	}
}
