package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// holdGroup starts an InTx that writes key and then waits, holding the
// group's transaction, until release is closed. It returns once the
// function runs.
func holdGroup(t *testing.T, s *Store, key string, release <-chan struct{}) (<-chan error, *sql.Tx) {
	t.Helper()
	running := make(chan *sql.Tx)
	errc := make(chan error, 1)
	go func() {
		errc <- s.InTx(context.Background(), func(ctx context.Context) error {
			if err := s.SetMeta(ctx, key, "1"); err != nil {
				return err
			}
			running <- s.txFrom(ctx).tx
			<-release
			return nil
		})
	}()
	return errc, <-running
}

// waitQueued waits until n InTx calls are queued for the group (the
// holder included), so that the next ones are known to share its commit.
func waitQueued(t *testing.T, s *Store, n int32) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for s.group.queued.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued for the group after a minute; want %d", s.group.queued.Load(), n)
		}
		runtime.Gosched()
	}
}

func metaSet(t *testing.T, s *Store, key string) bool {
	t.Helper()
	_, err := s.GetMeta(t.Context(), key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetMeta(%s): %v", key, err)
	}
	return err == nil
}

// Callers queued behind a running one share its transaction, and one
// caller's failure, panic or Goexit undoes its own writes only.
func TestGroupCommitIsolatesMembers(t *testing.T) {
	s, _ := openTemp(t)
	release := make(chan struct{})
	holder, holderTx := holdGroup(t, s, "holder", release)

	type outcome struct {
		key      string
		err      error
		panicked any
	}
	members := []struct {
		key string
		fn  func(ctx context.Context) error
	}{
		{"ok1", nil},
		{"fails", func(context.Context) error { return errors.New("refused") }},
		{"panics", func(context.Context) error { panic("boom") }},
		{"goexits", func(context.Context) error { runtime.Goexit(); return nil }},
		{"joined-rollback", func(ctx context.Context) error {
			jctx, err := s.BeginTx(ctx)
			if err != nil {
				return err
			}
			return s.Rollback(jctx) // nil, yet the writes must go
		}},
		{"ok2", nil},
	}
	var txs sync.Map // key -> *sql.Tx its function ran in
	results := make(chan outcome, len(members))
	for _, m := range members {
		go func() {
			o := outcome{key: m.key}
			defer func() {
				o.panicked = recover()
				results <- o
			}()
			o.err = s.InTx(context.Background(), func(ctx context.Context) error {
				txs.Store(m.key, s.txFrom(ctx).tx)
				if err := s.SetMeta(ctx, m.key, "1"); err != nil {
					return err
				}
				if m.fn != nil {
					return m.fn(ctx)
				}
				return nil
			})
		}()
	}
	waitQueued(t, s, int32(len(members)+1))
	close(release)
	if err := <-holder; err != nil {
		t.Fatalf("holder: %v", err)
	}
	got := map[string]outcome{}
	for range members {
		o := <-results
		got[o.key] = o
	}

	// A failure commits the group at once, so later callers may form
	// another; but whoever came first after the holder joined its group.
	joined := 0
	for _, m := range members {
		if tx, _ := txs.Load(m.key); tx == holderTx {
			joined++
		}
	}
	if joined == 0 {
		t.Error("no caller queued behind the holder shared its transaction")
	}
	for _, m := range members {
		o := got[m.key]
		wantOK := m.key == "ok1" || m.key == "ok2"
		if wantOK && (o.err != nil || o.panicked != nil) {
			t.Errorf("%s: err %v, panic %v; want success", m.key, o.err, o.panicked)
		}
		if !wantOK && o.err == nil && o.panicked == nil && m.key != "goexits" {
			t.Errorf("%s: InTx succeeded; want its failure reported", m.key)
		}
		if set := metaSet(t, s, m.key); set != wantOK {
			t.Errorf("%s written = %v, want %v", m.key, set, wantOK)
		}
	}
	if got["panics"].panicked != "boom" {
		t.Errorf("the panic reached the caller as %v, want boom", got["panics"].panicked)
	}
	if !metaSet(t, s, "holder") {
		t.Error("the holder's write is missing")
	}
	// The group is closed: a later call begins afresh and commits alone.
	if err := s.InTx(t.Context(), func(ctx context.Context) error { return s.SetMeta(ctx, "after", "1") }); err != nil || !metaSet(t, s, "after") {
		t.Fatalf("InTx after the group: %v", err)
	}
}

// A group never grows past maxGroup: the rest wait for the next commit.
func TestGroupCommitIsBounded(t *testing.T) {
	s, _ := openTemp(t)
	release := make(chan struct{})
	holder, _ := holdGroup(t, s, "holder", release)
	const n = maxGroup + 10
	var mu sync.Mutex
	sizes := map[any]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := s.InTx(context.Background(), func(ctx context.Context) error {
				mu.Lock()
				sizes[s.txFrom(ctx).tx]++
				mu.Unlock()
				return s.SetMeta(ctx, fmt.Sprint("k", i), "1")
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, s, n+1)
	close(release)
	wg.Wait()
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	if len(sizes) < 2 {
		t.Fatalf("%d calls shared %d transaction(s); want at least 2", n+1, len(sizes))
	}
	for _, size := range sizes {
		if size > maxGroup {
			t.Errorf("a transaction took %d calls, more than %d", size, maxGroup)
		}
	}
	for i := range n {
		if !metaSet(t, s, fmt.Sprint("k", i)) {
			t.Fatalf("k%d missing", i)
		}
	}
}

// Under real contention, whatever the mix of outcomes, exactly the writes
// of the calls that returned nil are in the database.
func TestGroupCommitUnderContention(t *testing.T) {
	s, _ := openTemp(t)
	const workers, each = 8, 40
	var mu sync.Mutex
	succeeded := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d-%d", w, i)
				fail := (w*each+i)%3 == 0
				err := s.InTx(context.Background(), func(ctx context.Context) error {
					if err := s.SetMeta(ctx, key, "1"); err != nil {
						return err
					}
					if fail {
						return errors.New("refused")
					}
					return s.SetMeta(ctx, key+"-second", "1")
				})
				if (err == nil) == fail {
					t.Errorf("%s: err %v, want failure %v", key, err, fail)
				}
				mu.Lock()
				succeeded[key] = err == nil
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for key, ok := range succeeded {
		if metaSet(t, s, key) != ok || metaSet(t, s, key+"-second") != ok {
			t.Errorf("%s: stored %v/%v, want %v", key, metaSet(t, s, key), metaSet(t, s, key+"-second"), ok)
		}
	}
}

// When the shared commit fails, every caller in the group learns it and
// none of their writes remains.
func TestGroupCommitFailureReachesEveryMember(t *testing.T) {
	s, _ := openTemp(t)
	release := make(chan struct{})
	holder, _ := holdGroup(t, s, "holder", release)
	errs := make(chan error, 2)
	go func() {
		errs <- s.InTx(context.Background(), func(ctx context.Context) error {
			return s.SetMeta(ctx, "bystander", "1")
		})
	}()
	go func() {
		errs <- s.InTx(context.Background(), func(ctx context.Context) error {
			// Deferred foreign keys are checked at COMMIT, which then fails
			// for the whole group although this function succeeds.
			q := s.w(ctx)
			if _, err := q.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
				return err
			}
			_, err := q.ExecContext(ctx, `INSERT INTO recovery_code (user_id, code_hash) VALUES ('no such user', x'00')`)
			return err
		})
	}()
	waitQueued(t, s, 3)
	close(release)
	if err := <-holder; err == nil {
		t.Error("the holder's InTx succeeded although the commit failed")
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a member's InTx succeeded although the commit failed")
		}
	}
	for _, key := range []string{"holder", "bystander"} {
		if metaSet(t, s, key) {
			t.Errorf("%s was written by a failed commit", key)
		}
	}
	if err := s.InTx(t.Context(), func(ctx context.Context) error { return s.SetMeta(ctx, "after", "1") }); err != nil {
		t.Fatalf("InTx after a failed commit: %v", err)
	}
}

// Group commits, explicit transactions (fosite's BeginTx/Commit) and
// single-statement writes share the one write connection without
// deadlock, each with its own outcome.
func TestWritePathsInterleave(t *testing.T) {
	s, _ := openTemp(t)
	const rounds = 30
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() { // grouped
			for i := range rounds {
				key := fmt.Sprintf("group-%d-%d", w, i)
				if err := s.InTx(context.Background(), func(ctx context.Context) error { return s.SetMeta(ctx, key, "1") }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() { // explicit, half rolled back
		for i := range rounds {
			ctx, err := s.BeginTx(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.SetMeta(ctx, fmt.Sprint("explicit-", i), "1"); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				err = s.Commit(ctx)
			} else {
				err = s.Rollback(ctx)
			}
			if err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() { // autocommit
		for i := range rounds {
			if err := s.SetMeta(context.Background(), fmt.Sprint("single-", i), "1"); err != nil {
				t.Error(err)
			}
		}
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the write paths deadlocked")
	}
	for i := range rounds {
		for w := range 3 {
			if !metaSet(t, s, fmt.Sprintf("group-%d-%d", w, i)) {
				t.Errorf("group-%d-%d missing", w, i)
			}
		}
		if metaSet(t, s, fmt.Sprint("explicit-", i)) != (i%2 == 0) {
			t.Errorf("explicit-%d: committed %v, want %v", i, !(i%2 == 0), i%2 == 0)
		}
		if !metaSet(t, s, fmt.Sprint("single-", i)) {
			t.Errorf("single-%d missing", i)
		}
	}
}

// Writes made outside any transaction, and transactions begun with
// BeginTx (fosite's), queue in the group commit and share the holder's
// commit instead of each paying an fsync alone.
func TestLoneWritesAndBeginTxJoinTheGroup(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	if err := s.CreateChallenge(ctx, storage.Challenge{ID: "ch", Kind: "passwordless", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	holder, holderTx := holdGroup(t, s, "holder", release)

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.SetMeta(context.Background(), "lone", "1"); err != nil {
			t.Error(err)
		}
	})
	wg.Go(func() {
		if _, err := s.ConsumeChallenge(context.Background(), "ch", time.Now()); err != nil {
			t.Error(err)
		}
	})
	began := make(chan *sql.Tx, 1)
	wg.Go(func() {
		tctx, err := s.BeginTx(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		began <- s.txFrom(tctx).tx
		if err := s.SetMeta(tctx, "committed", "1"); err != nil {
			t.Error(err)
		}
		if err := s.Commit(tctx); err != nil {
			t.Error(err)
		}
		if err := s.Rollback(tctx); err != nil {
			t.Errorf("Rollback after Commit: %v", err)
		}
	})
	// Without the group, the lone writes would wait for the write
	// connection instead, and the queue would never reach four.
	waitQueued(t, s, 4)
	close(release)
	wg.Wait()
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	if <-began != holderTx {
		t.Error("the BeginTx transaction did not join the holder's")
	}
	for _, key := range []string{"holder", "lone", "committed"} {
		if !metaSet(t, s, key) {
			t.Errorf("%s missing", key)
		}
	}
	if _, err := s.ConsumeChallenge(ctx, "ch", time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("challenge consumed twice: %v", err)
	}
}

// A BeginTx member's Rollback undoes its own writes only, whatever the
// order in which the group's members run.
func TestBeginTxRollbackInTheGroup(t *testing.T) {
	s, _ := openTemp(t)
	release := make(chan struct{})
	holder, _ := holdGroup(t, s, "holder", release)
	var wg sync.WaitGroup
	wg.Go(func() {
		tctx, err := s.BeginTx(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		if err := s.SetMeta(tctx, "rolled-back", "1"); err != nil {
			t.Error(err)
		}
		if err := s.Rollback(tctx); err != nil {
			t.Error(err)
		}
	})
	wg.Go(func() {
		if err := s.SetMeta(context.Background(), "lone", "1"); err != nil {
			t.Error(err)
		}
	})
	waitQueued(t, s, 3)
	close(release)
	wg.Wait()
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"holder": true, "lone": true, "rolled-back": false} {
		if got := metaSet(t, s, key); got != want {
			t.Errorf("%s stored: %v, want %v", key, got, want)
		}
	}
}

// A Rollback on a context joined to a BeginTx transaction makes its
// owner's Commit fail and undo the owner's writes.
func TestBeginTxJoinedRollbackFailsCommit(t *testing.T) {
	s, _ := openTemp(t)
	tctx, err := s.BeginTx(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta(tctx, "outer", "1"); err != nil {
		t.Fatal(err)
	}
	inner, err := s.BeginTx(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(inner); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(tctx); err == nil {
		t.Fatal("Commit after a joined Rollback succeeded")
	}
	if metaSet(t, s, "outer") {
		t.Error("the owner's write survived a joined Rollback")
	}
	// The group is free again.
	if err := s.SetMeta(t.Context(), "after", "1"); err != nil || !metaSet(t, s, "after") {
		t.Fatalf("write after: %v", err)
	}
}
