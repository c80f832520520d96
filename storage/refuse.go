package storage

import "errors"

// Arguments a backend refuses before it asks the database, because each
// would store or match more than it names. They are here so that every
// backend refuses the same input with the same error.
var (
	// ErrNoDeviceID refuses a TouchDevice without a device id. A browser
	// that sent no device cookie has no device; storing one under "" would
	// make every such browser a device the user is known to sign in from.
	ErrNoDeviceID = errors.New("empty device id")
	// ErrZeroTime refuses a WebAuthn disablement at the zero time: a zero
	// DisabledAt means usable, so the write would succeed and leave the
	// credential enabled.
	ErrZeroTime = errors.New("zero time")
	// ErrEmptySID refuses a session id of "" (DeleteSessionBySID,
	// RevokeSession): it names no session, and would match every session
	// saved without one and every token not issued from one.
	ErrEmptySID = errors.New("empty session id")
	// ErrEmptyUserID refuses DeleteUserSessions for "": it would match
	// every session not yet signed in.
	ErrEmptyUserID = errors.New("empty user id")
	// ErrEmptySubject refuses a subject of "" (RevokeSubject,
	// RevokeUserClient): it would match every client_credentials token.
	ErrEmptySubject = errors.New("empty subject")
	// ErrEmptyClientID refuses RevokeClient and RevokeUserClient for "":
	// it names no client.
	ErrEmptyClientID = errors.New("empty client id")
)

// PrepareDevice readies d for TouchDevice: ErrNoDeviceID without an ID,
// and a zero FirstSeen taken from LastSeen, as a new row records it.
// Shared so that every backend refuses and defaults alike.
func PrepareDevice(d Device) (Device, error) {
	if d.ID == "" {
		return d, ErrNoDeviceID
	}
	if d.FirstSeen.IsZero() {
		d.FirstSeen = d.LastSeen
	}
	return d, nil
}
