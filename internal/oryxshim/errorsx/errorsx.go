// Package errorsx is keygate's stand-in for github.com/ory/x/errorsx: the
// few names fosite uses from it, written here from how fosite uses them.
//
// fosite wraps nearly every error it returns in WithStack, asserts that its
// RFC6749Error satisfies the carrier interfaces, and unwraps with Cause
// before it looks for a localisable error. Each name keeps the meaning fosite
// relies on; nothing else of the upstream package is provided.
package errorsx

import "github.com/pkg/errors"

// WithStack gives err a stack trace unless it already carries a non-empty
// one, so an error passed up through several fosite functions is annotated
// once, where it was made. A nil err stays nil. The result unwraps (errors.Is,
// errors.As) and Causes to err.
func WithStack(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := err.(interface{ StackTrace() errors.StackTrace }); ok && len(st.StackTrace()) > 0 {
		return err
	}
	return errors.WithStack(err)
}

// Cause follows the chain of Cause methods (the github.com/pkg/errors
// convention) down to the first error that has no cause, or whose cause is
// nil, and returns it. Cause(nil) is nil.
func Cause(err error) error {
	for err != nil {
		c, ok := err.(interface{ Cause() error })
		if !ok {
			return err
		}
		next := c.Cause()
		if next == nil {
			return err
		}
		err = next
	}
	return nil
}

// The carriers are optional methods an error may have to describe itself to
// an error writer; fosite asserts that its RFC6749Error has each of them.

// StatusCodeCarrier is an error that names its HTTP status code.
type StatusCodeCarrier interface {
	StatusCode() int
}

// StatusCarrier is an error that names its HTTP status text.
type StatusCarrier interface {
	Status() string
}

// RequestIDCarrier is an error that names the request it arose in.
type RequestIDCarrier interface {
	RequestID() string
}

// ReasonCarrier is an error that says why it happened (fosite's hint).
type ReasonCarrier interface {
	Reason() string
}

// DebugCarrier is an error with details meant for operators, not clients.
type DebugCarrier interface {
	Debug() string
}
