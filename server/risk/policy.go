package risk

import (
	"math"
	"time"
)

// Defaults of DefaultPolicy, also used by Decide for any threshold a Policy
// leaves at zero (see Decide).
const (
	// A long-haul airliner cruises at about 900 km/h, and door to door
	// (check-in, taxi, security, the drive at both ends) nobody averages
	// that. Anything faster between two successful sign-ins is two people,
	// not one traveller.
	defaultImpossibleTravelKmh = 900
	// IP geolocation routinely places an address in the wrong city of the
	// right region, and mobile carriers exit far from the phone; below
	// 150 km a "move" is noise, not travel.
	defaultMinTravelKm = 150
	// The same window as the sign-in throttle: long enough to see a
	// guessing run, short enough that yesterday's typos are forgotten.
	defaultFailureWindow = 15 * time.Minute
	// A person mistypes a code once or twice; the fourth failure in the
	// window is someone trying.
	defaultMaxFailuresUser = 3
	// An office or a carrier NAT puts many people behind one address, so
	// the per-network limit is looser than the per-account one.
	defaultMaxFailuresIP = 10
	// A quarter without a single sign-in: leave, a departed employee whose
	// account was not closed, or a bought password being tried.
	defaultDormantAfter = 90 * 24 * time.Hour
	// One new-device or new-country signal (30/35) is enough to ask again;
	// softer signals (dormant 20, unusual hour 10) are not, alone.
	defaultStepUpScore = 30
	// Equal to the weight of impossible travel: only that, or a pile-up of
	// several strong signals (for example stolen session, new country and a
	// failure run), refuses outright.
	defaultDenyScore = 100
	// Step-ups ask for a phishing-resistant method (WebAuthn): a risky
	// sign-in is exactly where a relayed TOTP code must not be enough.
	defaultStepUpACR = "phr"
	// Soft signals alone (new device, dormant, unusual hour) ask for a
	// fresh second factor of any kind: requiring a key would lock out
	// every user without one each time they change browsers.
	defaultSoftStepUpACR = "mfa"
)

// DefaultPolicy returns the thresholds keygate uses when the configuration
// sets none. Each choice is explained at its constant above:
//
//   - ImpossibleTravelKmh 900: faster than an airliner, door to door;
//   - MinTravelKm 150: geolocation noise;
//   - DenyImpossibleTravel true: two places at once is a stolen credential;
//   - FailureWindow 15m, MaxFailuresUser 3, MaxFailuresIP 10;
//   - DormantAfter 90 days;
//   - CheckUsualHours false: shift work, travel and on-call make hours a
//     noisy signal; opt in per deployment;
//   - StepUpScore 30, DenyScore 100, StepUpACR "phr";
//   - TrustedNetworkOK true: a sign-in from the office on a new laptop is
//     the normal case, not a risk.
func DefaultPolicy() Policy {
	return Policy{
		ImpossibleTravelKmh:  defaultImpossibleTravelKmh,
		MinTravelKm:          defaultMinTravelKm,
		DenyImpossibleTravel: true,
		FailureWindow:        defaultFailureWindow,
		MaxFailuresUser:      defaultMaxFailuresUser,
		MaxFailuresIP:        defaultMaxFailuresIP,
		DormantAfter:         defaultDormantAfter,
		CheckUsualHours:      false,
		StepUpScore:          defaultStepUpScore,
		DenyScore:            defaultDenyScore,
		StepUpACR:            defaultStepUpACR,
		SoftStepUpACR:        defaultSoftStepUpACR,
		TrustedNetworkOK:     true,
	}
}

// withDefaults fills every threshold left at zero (or set to something
// meaningless: negative, NaN) with its default. The booleans are taken as
// given: false is a real choice.
func (p Policy) withDefaults() Policy {
	if !(p.ImpossibleTravelKmh > 0) || math.IsInf(p.ImpossibleTravelKmh, 0) {
		p.ImpossibleTravelKmh = defaultImpossibleTravelKmh
	}
	if !(p.MinTravelKm > 0) || math.IsInf(p.MinTravelKm, 0) {
		p.MinTravelKm = defaultMinTravelKm
	}
	if p.FailureWindow <= 0 {
		p.FailureWindow = defaultFailureWindow
	}
	if p.MaxFailuresUser <= 0 {
		p.MaxFailuresUser = defaultMaxFailuresUser
	}
	if p.MaxFailuresIP <= 0 {
		p.MaxFailuresIP = defaultMaxFailuresIP
	}
	if p.DormantAfter <= 0 {
		p.DormantAfter = defaultDormantAfter
	}
	if p.StepUpScore <= 0 {
		p.StepUpScore = defaultStepUpScore
	}
	if p.DenyScore <= 0 {
		p.DenyScore = defaultDenyScore
	}
	if p.SoftStepUpACR == "" {
		p.SoftStepUpACR = defaultSoftStepUpACR
	}
	if p.StepUpACR == "" {
		p.StepUpACR = defaultStepUpACR
	}
	return p
}
