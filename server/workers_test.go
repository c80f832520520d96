package server

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage/postgres/pgtest"
	"github.com/keygate/keygate/storage/postgres/postgrestest"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestWorkersReloadTheKeyringWhenAnotherReplicaRotatesTheKeys(t *testing.T) {
	rs := postgrestest.Replicas(t, 2)
	rotator, replica := rs[0], rs[1]
	ctx := t.Context()
	master, err := keys.NewMaster([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.EnsureSigningKeys(ctx, rotator, master, time.Now()); err != nil {
		t.Fatal(err)
	}
	ring, err := keys.NewKeyring(ctx, replica, master, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{store: replica, keyring: ring, logger: slog.New(slog.DiscardHandler)}
	changed := s.watchKeys(ctx)

	// Twice: the listener's first report (anything may have changed
	// before it listened) could stand in for the first rotation's.
	for range 2 {
		kids, err := keys.Rotate(ctx, rotator, master, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// What runWorkers does on each report; its 10-second timer plays
		// no part here.
		deadline := time.After(time.Minute)
		for !slices.Contains(ring.Current().KIDs(), kids[0]) {
			select {
			case <-changed:
				s.reloadKeys(ctx)
			case <-deadline:
				t.Fatalf("the replica's keyring still publishes %v a minute after the rotation to %v", ring.Current().KIDs(), kids)
			}
		}
		k, err := ring.Current().Signing("ES256")
		if err != nil || k.KeyID != kids[0] {
			t.Fatalf("the replica signs with %v, %v; want the rotated key %s", k, err, kids[0])
		}
	}
}

func TestGarbageCollectionRunsOnOneReplicaAtATime(t *testing.T) {
	rs := postgrestest.Replicas(t, 2)
	a, b := rs[0], rs[1]
	ctx := t.Context()
	sa := &Server{store: a, logger: slog.New(slog.DiscardHandler)}
	sb := &Server{store: b, logger: slog.New(slog.DiscardHandler)}
	var ran atomic.Int32
	job := func(context.Context) { ran.Add(1) }

	release := make(chan struct{})
	holding := make(chan struct{})
	go sa.exclusive(ctx, "garbage collection", func(context.Context) {
		close(holding)
		<-release
	})
	<-holding
	sb.exclusive(ctx, "garbage collection", job)
	if ran.Load() != 0 {
		t.Fatal("the job ran on a second replica while the first ran it")
	}
	close(release)

	t.Run("a backend without the lock just runs the job", func(t *testing.T) {
		s := &Server{store: sqlitetest.Open(t), logger: slog.New(slog.DiscardHandler)}
		s.exclusive(ctx, "garbage collection", job)
		if ran.Load() != 1 {
			t.Fatalf("the job ran %d times, want 1", ran.Load())
		}
	})
}
