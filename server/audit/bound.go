package audit

import (
	"strings"
	"unicode/utf8"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// Bounds on what one event stores. Much of an event can come from a
// request (a claimed client id, a user agent, a form field), and the log
// is append-only: nothing written can be taken back, so nothing is written
// unbounded. Our own values fit with room to spare.
const (
	maxType      = 64
	maxID        = 256 // actor, user and client ids
	maxIP        = 64
	maxUserAgent = 256
	maxResult    = 32
	maxDetails   = 16
	maxDetailKey = 64
	maxDetail    = 512
)

// bound returns e with every text field valid UTF-8 without NUL bytes (so
// the hash covers what an export shows, and both backends can store it)
// and within its bound, cut with httpx.Truncate.
func bound(e storage.AuditEvent) storage.AuditEvent {
	e.Type = boundText(e.Type, maxType)
	e.Actor = boundText(e.Actor, maxID)
	e.UserID = boundText(e.UserID, maxID)
	e.ClientID = boundText(e.ClientID, maxID)
	e.IP = boundText(e.IP, maxIP)
	e.UserAgent = boundText(e.UserAgent, maxUserAgent)
	e.Result = boundText(e.Result, maxResult)
	e.Details = httpx.TruncateMap(validDetails(e.Details), maxDetails, maxDetailKey, maxDetail)
	return e
}

// validDetails returns d, or a copy with invalid UTF-8 replaced: the
// caller's map is never changed.
func validDetails(d map[string]string) map[string]string {
	for k, v := range d {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			c := make(map[string]string, len(d))
			for k, v := range d {
				c[validText(k)] = validText(v)
			}
			return c
		}
	}
	return d
}

func boundText(s string, max int) string { return httpx.Truncate(validText(s), max) }

// validText replaces invalid UTF-8 and NUL bytes with U+FFFD. SQLite
// stores either, but PostgreSQL's text holds neither, and an event it
// refused would go unrecorded: a client id with a NUL byte in it would
// hide a failed sign-in from the log.
func validText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
