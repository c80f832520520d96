package login

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/server/httpx"
)

// A password check costs argon2id's 19 MiB and ~30 ms of a core, and anyone
// on the network can ask for one (a wrong password for an unknown address
// costs the same, so that the answer does not tell which exist). Unbounded,
// 500 concurrent posts asked for 9 GiB. The gate bounds the checks in
// flight (PasswordChecks), lets a short queue wait for a turn, and turns
// the rest away at once with 503 and Retry-After: memory stays bounded,
// the cores keep time for everything else (a single sign-on checks no
// password), and a person who hits a full gate is told to try again.

// errBusy is the answer when the gate is full.
var errBusy = httpx.Errorf(http.StatusServiceUnavailable,
	"Too many sign-ins at once. Wait a few seconds and try again.", nil)

// gate bounds concurrent password work.
type gate struct {
	slots   chan struct{}
	waiting atomic.Int32
	queue   int32         // how many may wait for a slot
	wait    time.Duration // how long one may wait
}

func newGate(slots, queue int, wait time.Duration) *gate {
	if slots <= 0 {
		slots = PasswordChecks()
	}
	if queue <= 0 {
		queue = 8 * slots
	}
	if wait <= 0 {
		wait = 2 * time.Second
	}
	return &gate{slots: make(chan struct{}, slots), queue: int32(queue), wait: wait}
}

// full reports whether a check asked for now would be turned away at
// once: every slot taken and the queue full. It reserves nothing, so a
// post that finds room may still be turned away by do.
func (g *gate) full() bool {
	return len(g.slots) == cap(g.slots) && g.waiting.Load() >= g.queue
}

// do runs fn when a slot is free, or answers errBusy when the queue is
// full or the wait runs out (or the client went away).
func (g *gate) do(ctx context.Context, fn func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiting.Add(1) > g.queue {
			g.waiting.Add(-1)
			return errBusy
		}
		timer := time.NewTimer(g.wait)
		defer timer.Stop()
		select {
		case g.slots <- struct{}{}:
			g.waiting.Add(-1)
		case <-timer.C:
			g.waiting.Add(-1)
			return errBusy
		case <-ctx.Done():
			g.waiting.Add(-1)
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	fn()
	return nil
}
