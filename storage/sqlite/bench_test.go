package sqlite

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// benchRequest is the size of a typical serialised fosite request.
var benchRequest = bytes.Repeat([]byte("x"), 1200)

func benchToken(i int64) storage.TokenRecord {
	n := strconv.FormatInt(i, 10)
	return storage.TokenRecord{
		Kind:        storage.KindAccessToken,
		Signature:   "signature-" + n + "-abcdefghijklmnopqrstuvwxyz0123456789",
		RequestID:   "request-" + n,
		ClientID:    "app",
		Subject:     "user-" + strconv.FormatInt(i%1000, 10),
		SID:         "sid-" + strconv.FormatInt(i%1000, 10),
		Active:      true,
		Request:     benchRequest,
		RequestedAt: t0,
		ExpiresAt:   t0.Add(time.Hour),
	}
}

// BenchmarkCreateToken inserts access-token records, one statement each
// outside any transaction, as fosite does; "parallel" has every core
// inserting at once, queuing for the one writer.
func BenchmarkCreateToken(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s, _ := openTemp(b)
		ctx := context.Background()
		var i int64
		for b.Loop() {
			i++
			if err := s.CreateToken(ctx, benchToken(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s, _ := openTemp(b)
		ctx := context.Background()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.CreateToken(ctx, benchToken(n.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkGetToken reads records by primary key from a table of 100k.
func BenchmarkGetToken(b *testing.B) {
	const rows = 100_000
	s, _ := openTemp(b)
	ctx := context.Background()
	err := s.InTx(ctx, func(ctx context.Context) error {
		for i := range int64(rows) {
			if err := s.CreateToken(ctx, benchToken(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		var i int64
		for b.Loop() {
			i = (i + 7919) % rows
			if _, err := s.GetToken(ctx, storage.KindAccessToken, benchToken(i).Signature); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(7919) % rows
				if _, err := s.GetToken(ctx, storage.KindAccessToken, benchToken(i).Signature); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkAppendAudit appends chained events: a write transaction of a
// read, a SHA-256 and an insert each.
func BenchmarkAppendAudit(b *testing.B) {
	s, _ := openTemp(b)
	ctx := context.Background()
	e := storage.AuditEvent{
		Time:      t0,
		Type:      "token.issued",
		Actor:     "client:app",
		UserID:    "user-1",
		ClientID:  "app",
		IP:        "192.0.2.1",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
		Result:    "success",
		Details:   map[string]string{"grant_type": "authorization_code", "scope": "openid email"},
	}
	for b.Loop() {
		if _, err := s.AppendAudit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetClientInTx reads a client inside a transaction, where the
// cache does not answer: every write that issues a token re-reads its app
// there (fositestore's LiveGrant).
func BenchmarkGetClientInTx(b *testing.B) {
	s, _ := openTemp(b)
	ctx := context.Background()
	c := storage.Client{ID: "app", Name: "App", SecretHash: bytes.Repeat([]byte{1}, 32),
		RedirectURIs: []string{"https://app.example/oauth2/callback"}, PostLogoutRedirectURIs: []string{"https://app.example/"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "email", "profile", "groups", "offline_access"}, AllowedGroups: []string{"g_support"},
		CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateClient(ctx, c); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		err := s.InTx(ctx, func(ctx context.Context) error {
			_, err := s.GetClient(ctx, "app")
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
