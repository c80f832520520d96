package throttle_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/server/throttle"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

var t0 = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

// newLimiter allows 3 failures per account and 5 per IP in 15 minutes,
// over a fresh database.
func newLimiter(t *testing.T) (*throttle.Limiter, *clocktest.Clock) {
	t.Helper()
	s := sqlitetest.Open(t)
	clk := clocktest.New(t0)
	return &throttle.Limiter{DB: s, Window: 15 * time.Minute, PerAccount: 3, PerIP: 5, Now: clk.Now}, clk
}

// step is one action of a scenario: fail (account, ip), succeed (account),
// move the clock, or check whether (account, ip) may try.
type step struct {
	fail, succeed bool
	advance       time.Duration
	account, ip   string
	allowed       *bool
}

var (
	yes = new(true)
	no  = new(false)
)

func fail(account, ip string) step    { return step{fail: true, account: account, ip: ip} }
func succeed(account string) step     { return step{succeed: true, account: account} }
func wait(d time.Duration) step       { return step{advance: d} }
func allowed(account, ip string) step { return step{account: account, ip: ip, allowed: yes} }
func refused(account, ip string) step { return step{account: account, ip: ip, allowed: no} }
func failN(n int, account, ip string) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = fail(account, ip)
	}
	return out
}

func steps(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		}
	}
	return out
}

func TestLimiter(t *testing.T) {
	const ann, bob = "u_ann", "u_bob"
	const ip1, ip2 = "192.0.2.1", "198.51.100.2"
	tests := []struct {
		name  string
		steps []step
	}{
		{"a fresh account and IP may try", steps(
			allowed(ann, ip1))},
		{"an account may fail up to its limit and is then refused", steps(
			failN(2, ann, ip1), allowed(ann, ip1),
			fail(ann, ip1), refused(ann, ip1))},
		{"a refused account is refused from every IP", steps(
			failN(3, ann, ip1), refused(ann, ip2), refused(ann, ""))},
		{"one account's failures do not block another account", steps(
			failN(3, ann, ip1), allowed(bob, ip2), allowed(bob, ""))},
		{"an IP may fail up to its limit across accounts and is then refused", steps(
			failN(2, ann, ip1), failN(2, bob, ip1), allowed("u_carol", ip1),
			fail("u_carol", ip1), refused("u_dave", ip1), allowed("u_dave", ip2))},
		{"an empty account or IP is not counted", steps(
			failN(10, "", ip2), allowed(ann, ""), failN(10, ann, ""), allowed("", ip1))},
		{"a failure leaves the window after it has passed", steps(
			failN(3, ann, ip1), refused(ann, ip1),
			wait(15*time.Minute-time.Second), refused(ann, ip1),
			wait(time.Second+time.Microsecond), allowed(ann, ip1))},
		{"the window slides: only the failures of the last 15 minutes count", steps(
			fail(ann, ip1), wait(10*time.Minute),
			failN(2, ann, ip1), refused(ann, ip1),
			wait(5*time.Minute+time.Second), allowed(ann, ip1), // the first failure left
			fail(ann, ip1), refused(ann, ip1),
			wait(10*time.Minute), allowed(ann, ip1))},
		{"success forgets the account's failures but not the IP's", steps(
			failN(2, ann, ip1), failN(2, bob, ip1), succeed(ann),
			failN(2, ann, ip2), allowed(ann, ip2),
			fail(bob, ip1), refused("u_carol", ip1))},
		{"success of one account does not forget another's failures", steps(
			failN(3, ann, ip1), succeed(bob), refused(ann, ip2))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clk := newLimiter(t)
			ctx := t.Context()
			for i, s := range tt.steps {
				switch {
				case s.fail:
					if err := l.Fail(ctx, s.account, s.ip); err != nil {
						t.Fatalf("step %d: Fail: %v", i, err)
					}
				case s.succeed:
					if err := l.Succeed(ctx, s.account); err != nil {
						t.Fatalf("step %d: Succeed: %v", i, err)
					}
				case s.advance != 0:
					clk.Advance(s.advance)
				case s.allowed != nil:
					ok, err := l.Allowed(ctx, s.account, s.ip)
					if err != nil {
						t.Fatalf("step %d: Allowed: %v", i, err)
					}
					if ok != *s.allowed {
						t.Fatalf("step %d: Allowed(%q, %q) at +%v = %v, want %v",
							i, s.account, s.ip, clk.Now().Sub(t0), ok, *s.allowed)
					}
				}
			}
		})
	}
}

func TestLimiterSharesCountsThroughTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	open := func() *throttle.Limiter {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return &throttle.Limiter{DB: s, Window: time.Hour, PerAccount: 2, PerIP: 100, Now: func() time.Time { return t0 }}
	}
	first, second := open(), open()
	for range 2 {
		if err := first.Fail(t.Context(), "u_ann", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	ok, err := second.Allowed(t.Context(), "u_ann", "")
	if err != nil || ok {
		t.Fatalf("another process's limiter: Allowed = %v, %v; want refused", ok, err)
	}
}

func TestRetryAfterIsTheWindow(t *testing.T) {
	l := &throttle.Limiter{Window: 7 * time.Minute}
	if got := l.RetryAfter(); got != 7*time.Minute {
		t.Fatalf("RetryAfter = %v, want 7m", got)
	}
}
