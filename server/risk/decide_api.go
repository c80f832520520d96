package risk

import "time"

// Outcome of a decision.
type Outcome string

const (
	Allow  Outcome = "allow"   // the existing sign-in suffices
	StepUp Outcome = "step_up" // verify again now, at least at Decision.ACR
	Deny   Outcome = "deny"    // refuse, and alert
)

// Reason explains one signal that counted, in a stable code and plain words.
type Reason struct {
	Code   string // "new_device", "new_country", "impossible_travel", …
	Text   string // "new country: DE", "impossible travel: 8,400 km in 2 h"
	Weight int
}

// Decision is the engine's answer, always with its reasons.
type Decision struct {
	Outcome Outcome
	ACR     string // for StepUp: the level to reach ("phr" for phishing patterns)
	Score   int
	Reasons []Reason
}

// Policy is the engine's thresholds, from config.
type Policy struct {
	// ImpossibleTravelKmh: a speed between the last successful sign-in's
	// place and this one above it is impossible travel.
	ImpossibleTravelKmh float64
	// MinTravelKm: distances below it are ignored (geolocation noise).
	MinTravelKm float64
	// DenyImpossibleTravel: deny rather than step up.
	DenyImpossibleTravel bool
	// Failures above these counts within FailureWindow are a signal.
	FailureWindow    time.Duration
	MaxFailuresUser  int
	MaxFailuresIP    int
	DormantAfter     time.Duration // no sign-in for this long: a dormant account waking up
	CheckUsualHours  bool
	StepUpScore      int    // score at or above: step up
	DenyScore        int    // score at or above: deny
	StepUpACR        string // the level a step-up for a phishing pattern asks for (default "phr")
	SoftStepUpACR    string // the level a step-up for soft signals alone asks for (default "mfa")
	TrustedNetworkOK bool   // a trusted named network offsets new-device signals
}
