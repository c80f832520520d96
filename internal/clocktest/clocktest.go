// Package clocktest is a hand-moved clock for tests of code that takes an
// injected time source (a func() time.Time such as Clock.Now).
//
// It is a test helper: only _test.go files may import it (the architecture
// test in internal/archtest checks that no other package depends on it).
// It depends on the standard library only, so tests of any package,
// storage included, can use it.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a time source that stands still until the test moves it. It is
// safe for concurrent use: code under test may read it from other
// goroutines while the test moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New is a clock showing t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now is the time the clock shows; pass the method value as the injected
// time source.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
