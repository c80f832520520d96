package audit

import (
	"errors"
	"time"
)

// ErrUndeliverable marks a sender's refusal that no retry can change (a
// mail server's 5xx for the recipient, a message past its use). The
// deliverer keeps the message in the outbox with its error and never
// attempts it again.
var ErrUndeliverable = errors.New("undeliverable")

// never is the next attempt of an undeliverable message: kept, not retried.
var never = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
