package login

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	t.Run("no more than its slots run at once, and the queue gets its turn", func(t *testing.T) {
		g := newGate(2, 100, time.Minute)
		var running, most atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				if err := g.do(t.Context(), func() {
					n := running.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					<-release
					running.Add(-1)
				}); err != nil {
					t.Error(err)
				}
			})
		}
		// Both slots fill and the other ten queue up before any is let go.
		for running.Load() != 2 || g.waiting.Load() != 10 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		if m := most.Load(); m != 2 {
			t.Errorf("%d ran at once, want 2", m)
		}
		if n := g.waiting.Load(); n != 0 {
			t.Errorf("%d still counted as waiting", n)
		}
	})

	t.Run("beyond the queue it answers busy at once", func(t *testing.T) {
		// The wait is far longer than the test: a caller that waited for
		// it instead of being turned away would show as a hung test.
		g := newGate(1, 1, time.Hour)
		release := occupy(g)
		waited := make(chan error, 1)
		go func() { waited <- g.do(context.Background(), func() {}) }()
		// The queue's one place is taken once the second caller waits.
		for g.waiting.Load() != 1 {
			time.Sleep(time.Millisecond)
		}
		if err := g.do(context.Background(), func() { t.Error("ran past a full queue") }); !errors.Is(err, errBusy) {
			t.Errorf("past a full queue: %v, want errBusy", err)
		}
		release()
		if err := <-waited; err != nil {
			t.Errorf("the queued caller: %v", err)
		}
	})

	t.Run("a queued caller is turned away when its wait runs out", func(t *testing.T) {
		g := newGate(1, 1, time.Millisecond)
		release := occupy(g)
		defer release()
		if err := g.do(context.Background(), func() { t.Error("ran while the slot was taken") }); !errors.Is(err, errBusy) {
			t.Errorf("after the wait: %v, want errBusy", err)
		}
		if n := g.waiting.Load(); n != 0 {
			t.Errorf("%d still counted as waiting", n)
		}
	})

	t.Run("full only while every slot is taken and the queue is full", func(t *testing.T) {
		g := newGate(1, 1, time.Minute)
		if g.full() {
			t.Error("an idle gate is full")
		}
		release := occupy(g)
		if g.full() {
			t.Error("full with the queue empty")
		}
		waited := make(chan error, 1)
		go func() { waited <- g.do(context.Background(), func() {}) }()
		for g.waiting.Load() != 1 {
			time.Sleep(time.Millisecond)
		}
		if !g.full() {
			t.Error("not full with the slot taken and the queue full")
		}
		release()
		if err := <-waited; err != nil {
			t.Errorf("the waiting caller: %v", err)
		}
		if g.full() {
			t.Error("still full once both are done")
		}
	})

	t.Run("a caller that goes away stops waiting", func(t *testing.T) {
		g := newGate(1, 4, time.Minute)
		release := occupy(g)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.do(ctx, func() { t.Error("ran after the caller left") }) }()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
		release()
		if n := g.waiting.Load(); n != 0 {
			t.Errorf("%d still counted as waiting", n)
		}
	})
}

// occupy takes one of g's slots until release is called.
func occupy(g *gate) (release func()) {
	hold, holding := make(chan struct{}), make(chan struct{})
	go func() { _ = g.do(context.Background(), func() { close(holding); <-hold }) }()
	<-holding
	return func() { close(hold) }
}
