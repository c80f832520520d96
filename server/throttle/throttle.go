// Package throttle limits failed sign-in steps per account and per client
// IP, counting failures in storage so every keygate process sharing the
// database sees the same count and a restart forgets nothing.
package throttle

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

// Limiter allows PerAccount failures per account and PerIP failures per IP
// within Window; past either, sign-in steps are refused until old failures
// leave the window.
type Limiter struct {
	DB         storage.Attempts
	Window     time.Duration
	PerAccount int
	PerIP      int
	Now        func() time.Time
}

const (
	scopeAccount = "account"
	scopeIP      = "ip"
)

// Allowed reports whether another attempt may be made.
func (l *Limiter) Allowed(ctx context.Context, account, ip string) (bool, error) {
	since := l.Now().Add(-l.Window)
	if account != "" {
		n, err := l.DB.CountAttempts(ctx, scopeAccount, account, since)
		if err != nil || n >= l.PerAccount {
			return false, err
		}
	}
	if ip != "" {
		n, err := l.DB.CountAttempts(ctx, scopeIP, ip, since)
		if err != nil || n >= l.PerIP {
			return false, err
		}
	}
	return true, nil
}

// Fail counts a failed attempt against both.
func (l *Limiter) Fail(ctx context.Context, account, ip string) error {
	now := l.Now()
	if account != "" {
		if err := l.DB.RecordAttempt(ctx, scopeAccount, account, now); err != nil {
			return err
		}
	}
	if ip != "" {
		return l.DB.RecordAttempt(ctx, scopeIP, ip, now)
	}
	return nil
}

// Succeed forgets the account's failures; the IP's stay, so one good
// account does not launder a spraying address.
func (l *Limiter) Succeed(ctx context.Context, account string) error {
	return l.DB.ClearAttempts(ctx, scopeAccount, account)
}

// Failures counts the failed attempts since since, for the risk engine.
func (l *Limiter) Failures(ctx context.Context, account, ip string, since time.Time) (byAccount, byIP int, err error) {
	if account != "" {
		if byAccount, err = l.DB.CountAttempts(ctx, scopeAccount, account, since); err != nil {
			return 0, 0, err
		}
	}
	if ip != "" {
		if byIP, err = l.DB.CountAttempts(ctx, scopeIP, ip, since); err != nil {
			return 0, 0, err
		}
	}
	return byAccount, byIP, nil
}

// RetryAfter is how long until the window has surely moved past the
// failures that block now.
func (l *Limiter) RetryAfter() time.Duration { return l.Window }
