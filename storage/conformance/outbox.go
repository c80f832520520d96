package conformance

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// ClaimRace queues n messages through the first of stores, which share
// one database (one store, or several processes' stores on it), then
// claims from every store at once, on several goroutines each, until
// nothing is due. Every message must be claimed exactly once within its
// lease, and every one again once the lease has run out.
func ClaimRace(t *testing.T, stores []storage.Outbox, n int) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		_, err := stores[0].EnqueueOutbox(ctx, storage.OutboxMessage{
			Kind: "alert", Target: fmt.Sprintf("hook-%d", i), Payload: []byte("{}"),
			NextAttemptAt: at(-time.Duration(i) * time.Second), CreatedAt: t0,
		})
		ok(t, err)
	}
	lease := at(time.Minute)
	const claimersPerStore, batch = 8, 3
	var (
		mu      sync.Mutex
		claimed = map[int64]int{}
		wg      sync.WaitGroup
	)
	errs := make(chan error, len(stores)*claimersPerStore)
	for _, st := range stores {
		for range claimersPerStore {
			wg.Go(func() {
				for {
					ms, err := st.ClaimOutbox(ctx, t0, lease, batch)
					if err != nil {
						errs <- err
						return
					}
					if len(ms) == 0 {
						return
					}
					mu.Lock()
					for _, m := range ms {
						claimed[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for id, times := range claimed {
		if times != 1 {
			t.Errorf("message %d was claimed %d times within one lease", id, times)
		}
	}
	if len(claimed) != n {
		t.Fatalf("%d of %d messages were claimed", len(claimed), n)
	}
	again, err := stores[len(stores)-1].ClaimOutbox(ctx, lease, lease.Add(time.Minute), n+1)
	ok(t, err)
	if len(again) != n {
		t.Fatalf("%d of %d messages are claimable again once their lease ran out", len(again), n)
	}
}
