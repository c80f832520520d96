package session

import (
	"strings"
	"time"

	"github.com/keygate/keygate/storage"
)

// Assurance levels, weakest first (DESIGN.md): mfa < phr < phrh.
const (
	ACRMFA  = "mfa"
	ACRPhr  = "phr"
	ACRPhrh = "phrh"
)

// ACRRank orders assurance levels; unknown values rank 0 (below mfa), so
// they never satisfy a requirement.
func ACRRank(acr string) int {
	switch acr {
	case ACRMFA:
		return 1
	case ACRPhr:
		return 2
	case ACRPhrh:
		return 3
	}
	return 0
}

// StrongerACR returns the stronger of two levels.
func StrongerACR(a, b string) string {
	if ACRRank(b) > ACRRank(a) {
		return b
	}
	return a
}

// FirstKnownACR picks the first level we know from a space-separated
// acr_values list (the RP lists them in order of preference), or "".
func FirstKnownACR(values string) string {
	for _, v := range strings.Fields(values) {
		if ACRRank(v) > 0 {
			return v
		}
	}
	return ""
}

// Requirement is what an authorization request needs from a sign-in.
type Requirement struct {
	ACR        string
	MaxAge     time.Duration // <0: none
	ForceLogin bool          // prompt=login
}

// FreshEnough reports whether a past sign-in is recent enough for r,
// whatever its level.
func (r Requirement) FreshEnough(a Auth, now time.Time) bool {
	return r.MaxAge < 0 || !now.After(a.AuthTime.Add(r.MaxAge))
}

// SatisfiedBy reports whether a past sign-in meets r at now.
func (r Requirement) SatisfiedBy(a Auth, now time.Time) bool {
	if a.UserID == "" || r.ForceLogin || ACRRank(a.ACR) < ACRRank(r.ACR) {
		return false
	}
	return r.MaxAge < 0 || !now.After(a.AuthTime.Add(r.MaxAge))
}

// GroupsACR is the strongest minimum level of the groups a user is in:
// what they sign in with everywhere, whatever the app asks ("" if none
// of their groups sets one). The group that sets it is named for the
// user's benefit.
func GroupsACR(groups []storage.Group) (acr, group string) {
	for _, g := range groups {
		if ACRRank(g.MinACR) > ACRRank(acr) {
			acr, group = g.MinACR, g.Name
		}
	}
	return acr, group
}

// GroupReason says, in plain words, why a group raised the level.
func GroupReason(acr, group string) string {
	if ACRRank(acr) >= ACRRank(ACRPhr) {
		return "Members of " + group + " sign in with a security key or passkey, in every app."
	}
	return "Members of " + group + " sign in with two factors, in every app."
}
