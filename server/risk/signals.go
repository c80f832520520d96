package risk

import (
	"net/netip"
	"time"
)

// Place is where an IP address is, as far as keygate can tell.
type Place struct {
	Country   string  // ISO 3166-1 alpha-2, "" when unknown
	City      string  // "" when unknown
	ASN       uint    // 0 when unknown
	Lat, Lon  float64 // meaningful only when HasCoords
	HasCoords bool
	// Network is the named network (from config) the address is in, if any,
	// with how much it is trusted.
	Network      string
	NetworkTrust Trust
}

// Trust of a named network.
type Trust int

const (
	TrustNone    Trust = iota // not a named network
	TrustKnown                // e.g. a VPN: known, not vouched for
	TrustTrusted              // e.g. the office: sign-ins from here are expected
)

// Sighting is a past successful sign-in.
type Sighting struct {
	Time     time.Time
	Place    Place
	DeviceID string
}

// Signals is everything the engine looks at for one decision. The caller
// gathers it (IP, place, device, history) before calling Decide; the
// engine does no I/O.
type Signals struct {
	Now      time.Time
	UserID   string
	ClientID string
	IP       netip.Addr
	Place    Place

	// Device: the signed device cookie's id ("" when the browser sent
	// none or an invalid one), and whether this user has signed in from it.
	DeviceID    string
	KnownDevice bool
	// SessionDeviceID is the device the presented SSO session was created
	// on ("" when there is no session). A session presented from another
	// device is a stolen cookie.
	SessionDeviceID string

	// History of this user.
	LastSuccess    *Sighting // nil: never signed in before
	KnownCountries []string  // countries of past successful sign-ins
	// Recent failed sign-in steps within Policy.FailureWindow.
	RecentFailuresUser int
	RecentFailuresIP   int
	// Hours of day (0-23, UTC) at which the user usually signs in; empty
	// when there is not enough history.
	UsualHours []int
}
