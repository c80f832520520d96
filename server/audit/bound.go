package audit

import (
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

// validDetails returns d, or a copy with invalid UTF-8 and NUL bytes
// replaced: the caller's map is never changed.
func validDetails(d map[string]string) map[string]string {
	for k, v := range d {
		if !storage.Storable(k) || !storage.Storable(v) {
			c := make(map[string]string, len(d))
			for k, v := range d {
				c[storage.ValidText(k)] = storage.ValidText(v)
			}
			return c
		}
	}
	return d
}

func boundText(s string, max int) string { return httpx.Truncate(storage.ValidText(s), max) }
