package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/internal/clientcache"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// waitListener returns the listener's state once until holds, failing
// the test after a minute.
func waitListener(t testing.TB, s *Store, until func(listenState) bool) listenState {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		st, changed := s.changes.current()
		if until(st) {
			return st
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the listener is still %+v after a minute", st)
		}
	}
}

func listening(st listenState) bool { return st.listening }

// topics returns a channel of the topics s's watchers hear of.
func topics(t *testing.T, s *Store) <-chan string {
	ch := make(chan string, 100)
	s.WatchChanges(t.Context(), func(topic string) {
		select {
		case ch <- topic:
		default:
		}
	})
	return ch
}

// waitTopic waits for topic on ch, failing the test after a minute.
func waitTopic(t *testing.T, ch <-chan string, topic string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case got := <-ch:
			if got == topic {
				return
			}
		case <-deadline:
			t.Fatalf("no %s change was reported within a minute", topic)
		}
	}
}

// setDisabledBehindTheCache changes the client's row without a notice,
// as a change no listener heard of would.
func setDisabledBehindTheCache(t *testing.T, s *Store, id string, disabled bool) {
	t.Helper()
	if _, err := s.pool.Exec(t.Context(), `UPDATE client SET disabled = $2 WHERE id = $1`, id, disabled); err != nil {
		t.Fatal(err)
	}
}

func getClient(t *testing.T, s *Store, id string) storage.Client {
	t.Helper()
	c, err := s.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAClientChangeThroughOneReplicaIsSeenByAnother(t *testing.T) {
	rs := replicas(t, 2)
	writer, reader := rs[0], rs[1]
	ctx := t.Context()
	if err := writer.CreateClient(ctx, storage.Client{ID: "app", Name: "App", SecretHash: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	waitListener(t, reader, listening)
	heard := topics(t, reader)

	// The reader caches the client: a change no one announced is not seen.
	getClient(t, reader, "app")
	setDisabledBehindTheCache(t, writer, "app", true)
	if getClient(t, reader, "app").Disabled {
		t.Fatal("the client was read again: the cache did not serve it")
	}
	setDisabledBehindTheCache(t, writer, "app", false)

	for _, tc := range []struct {
		name   string
		change func(c *storage.Client)
		seen   func(c storage.Client) bool
	}{
		{"disabled", func(c *storage.Client) { c.Disabled = true }, func(c storage.Client) bool { return c.Disabled }},
		{"secret rotated", func(c *storage.Client) {
			c.PreviousSecretHash, c.SecretHash = c.SecretHash, []byte("new")
		}, func(c storage.Client) bool { return string(c.SecretHash) == "new" }},
	} {
		t.Run("a client "+tc.name+" through one replica is seen by the other once it commits", func(t *testing.T) {
			getClient(t, reader, "app") // cached
			err := writer.UpdateClient(ctx, "app", func(c *storage.Client) error { tc.change(c); return nil })
			if err != nil {
				t.Fatal(err)
			}
			waitTopic(t, heard, storage.TopicClients)
			if c := getClient(t, reader, "app"); !tc.seen(c) {
				t.Fatalf("the other replica serves %+v after the change was reported", c)
			}
		})
	}

	t.Run("a deleted client is gone on the other replica", func(t *testing.T) {
		getClient(t, reader, "app")
		if err := writer.DeleteClient(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		waitTopic(t, heard, storage.TopicClients)
		if _, err := reader.GetClient(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetClient after the delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("a change rolled back is not announced and leaves the cache alone", func(t *testing.T) {
		if err := writer.CreateClient(ctx, storage.Client{ID: "app2", Name: "App"}); err != nil {
			t.Fatal(err)
		}
		getClient(t, reader, "app2")
		setDisabledBehindTheCache(t, writer, "app2", true) // so a dropped entry would show
		boom := errors.New("boom")
		err := writer.InTx(ctx, func(ctx context.Context) error {
			if err := writer.UpdateClient(ctx, "app2", func(c *storage.Client) error { c.Name = "Renamed"; return nil }); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		// A committed change to another client comes after it, so once
		// it is heard the rolled-back one would have been too.
		if err := writer.CreateClient(ctx, storage.Client{ID: "app3", Name: "App"}); err != nil {
			t.Fatal(err)
		}
		if err := writer.DeleteClient(ctx, "app3"); err != nil {
			t.Fatal(err)
		}
		waitTopic(t, heard, storage.TopicClients)
		if getClient(t, reader, "app2").Disabled {
			t.Fatal("a rolled-back change dropped the other replica's cached client")
		}
	})
}

// The listener's connection is killed while the database refuses new
// connections: until it listens again the store serves every read from
// the database, and what it cached before is never served after.
func TestAClientCacheWithoutItsListenerServesNothingStale(t *testing.T) {
	dsn := pgtest.Empty(t)
	s := openDSN(t, dsn)
	ctx := t.Context()
	if err := s.CreateClient(ctx, storage.Client{ID: "app", Name: "App"}); err != nil {
		t.Fatal(err)
	}
	before := waitListener(t, s, listening)
	getClient(t, s, "app") // cached

	// Connections of the test's own, made while they are allowed: one to
	// the store's database, one to the server's maintenance database.
	conn := func(dsn string) *pgx.Conn {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	direct, admin := conn(dsn), conn(pgtest.WithDatabase(dsn, "postgres"))
	var db string
	if err := direct.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	allow := func(on bool) {
		t.Helper()
		q := `ALTER DATABASE ` + pgx.Identifier{db}.Sanitize() + ` ALLOW_CONNECTIONS ` + map[bool]string{true: "true", false: "false"}[on]
		if _, err := admin.Exec(context.WithoutCancel(ctx), q); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	t.Cleanup(func() { allow(true) })
	// Changed with no notice, as during a lost connection.
	if _, err := direct.Exec(ctx, `UPDATE client SET disabled = true WHERE id = 'app'`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, before.pid); err != nil {
		t.Fatal(err)
	}
	waitListener(t, s, func(st listenState) bool { return !st.listening })

	t.Run("while not listening, reads go to the database", func(t *testing.T) {
		if !getClient(t, s, "app").Disabled {
			t.Fatal("a client cached before the listener was lost was served")
		}
		if _, err := direct.Exec(ctx, `UPDATE client SET disabled = false WHERE id = 'app'`); err != nil {
			t.Fatal(err)
		}
		if getClient(t, s, "app").Disabled {
			t.Fatal("a client read while not listening was cached")
		}
	})

	t.Run("listening again, it serves only what it read since", func(t *testing.T) {
		allow(true)
		waitListener(t, s, func(st listenState) bool { return st.listening && st.connections > before.connections })
		if _, err := direct.Exec(ctx, `UPDATE client SET name = 'Renamed' WHERE id = 'app'`); err != nil {
			t.Fatal(err)
		}
		if got := getClient(t, s, "app").Name; got != "Renamed" {
			t.Fatalf("after reconnecting the store served %q, read before it listened again", got)
		}
	})
}

// A quiet listener checks its connection now and then and keeps it.
func TestAQuietListenerKeepsItsConnection(t *testing.T) {
	s := openFresh(t)
	l := startListener(s.changes.cfg, s.schema, clientcache.New(time.Minute, true), time.Millisecond)
	defer l.close()
	deadline := time.After(time.Minute)
	for {
		st, changed := l.current()
		if st.pings >= 3 {
			if !st.listening || st.connections != 1 {
				t.Fatalf("after %d quiet spells the listener is %+v; want listening on its first connection", st.pings, st)
			}
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the listener is still %+v after a minute", st)
		}
	}
}

func TestASigningKeyChangeIsReportedToEveryReplica(t *testing.T) {
	rs := replicas(t, 2)
	ctx := t.Context()
	waitListener(t, rs[1], listening)
	heard := topics(t, rs[1])
	if err := rs[0].CreateSigningKey(ctx, storage.SigningKey{KID: "k1", Alg: "ES256", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, heard, storage.TopicSigningKeys)
	if err := rs[0].RetireSigningKeys(ctx, "ES256", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, heard, storage.TopicSigningKeys)

	t.Run("a watcher is told of every topic when its listener listens again", func(t *testing.T) {
		st := waitListener(t, rs[1], listening)
		if _, err := rs[0].pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, st.pid); err != nil {
			t.Fatal(err)
		}
		waitTopic(t, heard, storage.TopicSigningKeys)
		if now := waitListener(t, rs[1], listening); now.connections <= st.connections {
			t.Fatalf("reported before listening again: %+v", now)
		}
	})
}

func TestRunExclusiveRunsAJobOnOneReplicaAtATime(t *testing.T) {
	rs := replicas(t, 2)
	ctx := t.Context()

	t.Run("replicas racing a job never run it at once", func(t *testing.T) {
		var running, most, ran atomic.Int32
		var wg sync.WaitGroup
		for _, s := range rs {
			for range 4 {
				wg.Go(func() {
					for range 20 {
						did, err := s.RunExclusive(ctx, "sweep", func(ctx context.Context) error {
							n := running.Add(1)
							defer running.Add(-1)
							for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
							}
							// Work on the database, as the jobs do.
							_, err := s.DeleteExpiredFlows(ctx, t0)
							return err
						})
						if err != nil {
							t.Error(err)
							return
						}
						if did {
							ran.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		if most.Load() != 1 || ran.Load() == 0 {
			t.Fatalf("at most %d ran at once, %d runs in all; want 1 at once", most.Load(), ran.Load())
		}
	})

	t.Run("a job its holder's connection dropped is taken by another", func(t *testing.T) {
		started, lost := make(chan struct{}), make(chan error, 1)
		go func() {
			_, err := rs[0].RunExclusive(ctx, "sweep", func(ctx context.Context) error {
				close(started)
				<-ctx.Done()
				return ctx.Err()
			})
			lost <- err
		}()
		<-started
		ran, err := rs[1].RunExclusive(ctx, "sweep", func(context.Context) error { return nil })
		if err != nil || ran {
			t.Fatalf("RunExclusive while another holds the job = %v, %v; want skipped", ran, err)
		}
		ran, err = rs[1].RunExclusive(ctx, "another job", func(context.Context) error { return nil })
		if err != nil || !ran {
			t.Fatalf("another job = %v, %v; want run", ran, err)
		}

		var holder uint32
		// The sweep's lock: the other job's may linger a moment after its
		// connection closed.
		err = rs[1].pool.QueryRow(ctx, `SELECT pid FROM pg_locks
			WHERE locktype = 'advisory' AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND granted`,
			jobLockClass, rs[0].schema+".sweep").Scan(&holder)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs[1].pool.Exec(ctx, `SELECT pg_terminate_backend($1, 60000)`, holder); err != nil {
			t.Fatal(err)
		}
		ran, err = rs[1].RunExclusive(ctx, "sweep", func(context.Context) error { return nil })
		if err != nil || !ran {
			t.Fatalf("RunExclusive after the holder's connection died = %v, %v; want run", ran, err)
		}
		select {
		case err := <-lost:
			if !errors.Is(err, errLockLost) {
				t.Fatalf("the first holder's job ended with %v, want errLockLost", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the first holder's job was not told within a minute that it lost its lock")
		}
	})
}
