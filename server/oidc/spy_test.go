package oidc

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/keygate/keygate/storage"
)

var errBroken = fmt.Errorf("the database is unreachable: %w", storage.ErrUnavailable)

// spyStore counts the reads of users, groups and clients the handler makes
// through it, and fails those named in fail.
type spyStore struct {
	storage.Store
	mu    sync.Mutex
	calls map[string]int
	fail  map[string]bool
}

// withSpy makes the env's handler read and write through a spyStore.
func withSpy(s **spyStore) func(*Deps) {
	return func(d *Deps) {
		*s = &spyStore{Store: d.Store, calls: map[string]int{}, fail: map[string]bool{}}
		d.Store = *s
	}
}

func (s *spyStore) note(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[name]++
	if s.fail[name] {
		return errBroken
	}
	return nil
}

// count is how often name was called since the last reset.
func (s *spyStore) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

// reset forgets the calls so far, and sets which calls fail from now on.
func (s *spyStore) reset(t *testing.T, fail ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.fail = map[string]int{}, map[string]bool{}
	for _, f := range fail {
		s.fail[f] = true
	}
}

func (s *spyStore) GetUser(ctx context.Context, id string) (storage.User, error) {
	if err := s.note("GetUser"); err != nil {
		return storage.User{}, err
	}
	return s.Store.GetUser(ctx, id)
}

func (s *spyStore) ListUserGroups(ctx context.Context, userID string) ([]storage.Group, error) {
	if err := s.note("ListUserGroups"); err != nil {
		return nil, err
	}
	return s.Store.ListUserGroups(ctx, userID)
}

func (s *spyStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if err := s.note("GetClient"); err != nil {
		return storage.Client{}, err
	}
	return s.Store.GetClient(ctx, id)
}

func (s *spyStore) GetToken(ctx context.Context, kind, signature string) (storage.TokenRecord, error) {
	if err := s.note("GetToken"); err != nil {
		return storage.TokenRecord{}, err
	}
	return s.Store.GetToken(ctx, kind, signature)
}
