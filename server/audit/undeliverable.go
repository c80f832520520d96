package audit

import "errors"

// ErrUndeliverable marks a sender's refusal that no retry can change (a
// mail server's 5xx for the recipient, a message past its use). The
// deliverer keeps the message in the outbox with its error and never
// attempts it again.
var ErrUndeliverable = errors.New("undeliverable")
