package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/keygate/keygate/storage"
)

// A token lookup answers with the record as it is now, also for a caller
// whose context ends: a read by primary key is not worth interrupting,
// and a transaction's lookup still sees the transaction's own writes.
func TestGetTokenReadsAsOfNow(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	rec := benchToken(1)
	if err := s.CreateToken(ctx, rec); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if got, err := s.GetToken(ended, rec.Kind, rec.Signature); err != nil || !got.Active {
		t.Fatalf("GetToken with an ended context: %+v, %v", got, err)
	}
	if err := s.DeactivateToken(ctx, rec.Kind, rec.Signature); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetToken(ended, rec.Kind, rec.Signature); err != nil || got.Active {
		t.Fatalf("GetToken after the token was deactivated: active %v, %v", got.Active, err)
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateToken(ctx, benchToken(2)); err != nil {
			return err
		}
		_, err := s.GetToken(ctx, storage.KindAccessToken, benchToken(2).Signature)
		return err
	})
	if err != nil {
		t.Fatalf("a transaction does not read its own token: %v", err)
	}
	if _, err := s.GetToken(ended, storage.KindAccessToken, "nothing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetToken of an unknown signature: %v, want ErrNotFound", err)
	}
}

// BenchmarkGetTokenInRequest reads a record under a context that can be
// cancelled, as an HTTP request's can; "background" is the same read
// under one that cannot.
func BenchmarkGetTokenInRequest(b *testing.B) {
	s, _ := openTemp(b)
	rec := benchToken(1)
	if err := s.CreateToken(context.Background(), rec); err != nil {
		b.Fatal(err)
	}
	request, cancel := context.WithCancel(context.Background())
	defer cancel()
	for name, ctx := range map[string]context.Context{"request": request, "background": context.Background()} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetToken(ctx, rec.Kind, rec.Signature); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
