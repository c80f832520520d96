package keys

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/storage"
)

// memStore is a minimal in-memory storage.SigningKeys + Transactor for
// these tests. InTx serialises transactions and restores the previous
// state when fn fails; BeginTx/Commit/Rollback are not used by keys.
type memStore struct {
	txMu sync.Mutex
	mu   sync.Mutex
	keys []storage.SigningKey

	failCreate error // if set, CreateSigningKey returns it
}

type memTxKey struct{}

var _ Store = (*memStore)(nil)

func (s *memStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if ctx.Value(memTxKey{}) != nil {
		return fn(ctx)
	}
	s.txMu.Lock()
	defer s.txMu.Unlock()
	s.mu.Lock()
	saved := slices.Clone(s.keys)
	s.mu.Unlock()
	if err := fn(context.WithValue(ctx, memTxKey{}, true)); err != nil {
		s.mu.Lock()
		s.keys = saved
		s.mu.Unlock()
		return err
	}
	return nil
}

var errNoManualTx = errors.New("memStore: manual transactions not supported")

func (s *memStore) BeginTx(ctx context.Context) (context.Context, error) { return ctx, errNoManualTx }
func (s *memStore) Commit(context.Context) error                         { return errNoManualTx }
func (s *memStore) Rollback(context.Context) error                       { return errNoManualTx }

func (s *memStore) CreateSigningKey(_ context.Context, k storage.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCreate != nil {
		return s.failCreate
	}
	if slices.ContainsFunc(s.keys, func(o storage.SigningKey) bool { return o.KID == k.KID }) {
		return storage.ErrAlreadyExists
	}
	s.keys = append(s.keys, k)
	return nil
}

func (s *memStore) ListSigningKeys(context.Context) ([]storage.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys), nil
}

func (s *memStore) RetireSigningKeys(_ context.Context, alg string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.keys {
		if s.keys[i].Alg == alg && s.keys[i].RetiredAt.IsZero() {
			s.keys[i].RetiredAt = at
		}
	}
	return nil
}

func (s *memStore) DeleteSigningKeysRetiredBefore(_ context.Context, t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.keys)
	s.keys = slices.DeleteFunc(s.keys, func(k storage.SigningKey) bool {
		return !k.RetiredAt.IsZero() && k.RetiredAt.Before(t)
	})
	return n - len(s.keys), nil
}
