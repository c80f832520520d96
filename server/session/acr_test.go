package session_test

import (
	"testing"
	"time"

	"github.com/keygate/keygate/server/session"
)

func TestACRRank(t *testing.T) {
	for _, tc := range []struct {
		name string
		acr  string
		want int
	}{
		{"mfa is the weakest known level", "mfa", 1},
		{"phr is above mfa", "phr", 2},
		{"phrh is the strongest", "phrh", 3},
		{"an empty level ranks below every known one", "", 0},
		{"an unknown level ranks below every known one", "loa4", 0},
		{"levels are case-sensitive", "MFA", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := session.ACRRank(tc.acr); got != tc.want {
				t.Errorf("ACRRank(%q) = %d, want %d", tc.acr, got, tc.want)
			}
		})
	}
}

func TestStrongerACR(t *testing.T) {
	for _, tc := range []struct {
		name       string
		a, b, want string
	}{
		{"the stronger second level wins", "mfa", "phr", "phr"},
		{"the stronger first level wins", "phrh", "mfa", "phrh"},
		{"equal levels give that level", "phr", "phr", "phr"},
		{"an unknown second level never raises the first", "mfa", "loa4", "mfa"},
		{"an empty second level never raises the first", "phr", "", "phr"},
		{"a known level beats an unknown first one", "loa4", "mfa", "mfa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := session.StrongerACR(tc.a, tc.b); got != tc.want {
				t.Errorf("StrongerACR(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestFirstKnownACR(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values string
		want   string
	}{
		{"the first of several known levels is picked", "phrh phr mfa", "phrh"},
		{"unknown levels before a known one are skipped", "urn:x:loa4 phr", "phr"},
		{"extra spaces do not matter", "  mfa   phrh ", "mfa"},
		{"no known level gives none", "urn:x:loa4 gold", ""},
		{"an empty list gives none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := session.FirstKnownACR(tc.values); got != tc.want {
				t.Errorf("FirstKnownACR(%q) = %q, want %q", tc.values, got, tc.want)
			}
		})
	}
}

func TestRequirementSatisfiedBy(t *testing.T) {
	signIn := time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)
	auth := func(acr string) session.Auth {
		return session.Auth{UserID: "u_alice", ACR: acr, AMR: []string{"pwd", "otp"}, AuthTime: signIn}
	}
	for _, tc := range []struct {
		name string
		req  session.Requirement
		auth session.Auth
		now  time.Time
		want bool
	}{
		{"an mfa sign-in meets an mfa requirement", session.Requirement{ACR: "mfa", MaxAge: -1}, auth("mfa"), signIn.Add(time.Hour), true},
		{"a stronger sign-in meets a weaker requirement", session.Requirement{ACR: "phr", MaxAge: -1}, auth("phrh"), signIn, true},
		{"a weaker sign-in does not meet a stronger requirement", session.Requirement{ACR: "phr", MaxAge: -1}, auth("mfa"), signIn, false},
		{"an mfa sign-in does not meet phrh", session.Requirement{ACR: "phrh", MaxAge: -1}, auth("mfa"), signIn, false},
		{"a sign-in of unknown level meets no known requirement", session.Requirement{ACR: "mfa", MaxAge: -1}, auth("loa4"), signIn, false},
		{"nobody signed in meets nothing", session.Requirement{MaxAge: -1}, session.Auth{}, signIn, false},
		{"prompt=login is never met by a past sign-in", session.Requirement{ACR: "mfa", MaxAge: -1, ForceLogin: true}, auth("phrh"), signIn, false},
		{"a sign-in exactly max_age old is still fresh enough", session.Requirement{ACR: "mfa", MaxAge: time.Minute}, auth("mfa"), signIn.Add(time.Minute), true},
		{"a sign-in a moment older than max_age is too old", session.Requirement{ACR: "mfa", MaxAge: time.Minute}, auth("mfa"), signIn.Add(time.Minute + time.Nanosecond), false},
		{"max_age=0 is met only at the instant of sign-in", session.Requirement{ACR: "mfa", MaxAge: 0}, auth("mfa"), signIn, true},
		{"max_age=0 is not met a second later", session.Requirement{ACR: "mfa", MaxAge: 0}, auth("mfa"), signIn.Add(time.Second), false},
		{"no max_age accepts an old sign-in", session.Requirement{ACR: "mfa", MaxAge: -1}, auth("mfa"), signIn.Add(365 * 24 * time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.req.SatisfiedBy(tc.auth, tc.now); got != tc.want {
				t.Errorf("%+v.SatisfiedBy(%+v, %v) = %v, want %v", tc.req, tc.auth, tc.now, got, tc.want)
			}
		})
	}
}
