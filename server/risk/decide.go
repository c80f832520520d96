package risk

import (
	"math"
	"strings"
	"time"
)

// Reason codes, in the order Decide lists them: most serious first.
const (
	CodeImpossibleTravel   = "impossible_travel"
	CodeSessionOtherDevice = "session_other_device"
	CodeFailuresUser       = "failures_user"
	CodeFailuresIP         = "failures_ip"
	CodeNewCountry         = "new_country"
	CodeNewDevice          = "new_device"
	CodeDormantAccount     = "dormant_account"
	CodeUnusualHour        = "unusual_hour"
	CodeTrustedNetwork     = "trusted_network"
)

// Weights: what each signal adds to the score. Signals marked decisive
// also force an outcome whatever the score, and a trusted network never
// offsets them.
const (
	// Decisive Deny when Policy.DenyImpossibleTravel (the weight is then
	// raised to Policy.DenyScore if that is higher): one person cannot be
	// in both places.
	WeightImpossibleTravel = 100
	// Decisive StepUp when Policy.DenyImpossibleTravel is false. Kept at the
	// step-up level: an admin who chose step-up for travel (VPN users) does
	// not want travel plus the new country that a VPN exit brings plus a new
	// laptop to add up to a refusal.
	WeightImpossibleTravelStepUp = 30
	// Decisive StepUp: a session cookie presented from a device other than
	// the one it was issued to is the signature of a stolen cookie.
	WeightSessionOtherDevice = 40
	// Decisive StepUp: someone is guessing this account's second factor.
	WeightFailuresUser = 40
	// Decisive StepUp: someone on this network is guessing, possibly
	// across accounts; lighter than the per-account signal since offices
	// and carrier NATs share addresses.
	WeightFailuresIP = 30
	// A country the user never signed in from: alone, enough to step up.
	WeightNewCountry = 35
	// A device the user never signed in from: alone, enough to step up
	// (the credential may have been phished and replayed elsewhere).
	// Cleared cookies look the same, hence a little below new country.
	WeightNewDevice = 30
	// A long-silent account waking up: worth noting, not alone a step-up.
	WeightDormantAccount = 20
	// Outside the user's usual hours: the weakest signal, a tie-breaker.
	WeightUnusualHour = 10
	// A trusted network (the office) vouches for the soft signals above
	// (new device, new country, dormant, unusual hour): it subtracts up to
	// 30 from their sum, never more than they add, and nothing from the
	// decisive ones. Its reason's Weight is what it actually subtracted.
	WeightTrustedNetwork = -30
)

// usualHoursMin is how many distinct usual hours make a pattern worth
// checking against.
const usualHoursMin = 5

// Decide scores one sign-in and returns what to do, with every signal that
// counted. It is pure and deterministic: the same Signals and Policy always
// give the same Decision, and it reads no clock (time is Signals.Now).
//
// Any threshold of p left at zero (or negative) takes its DefaultPolicy
// value, so Decide(s, Policy{}) is safe; the booleans are used as given.
//
// The outcome is Deny if the score reaches p.DenyScore or impossible travel
// is found with p.DenyImpossibleTravel; otherwise StepUp (ACR p.StepUpACR,
// "phr" when empty) if the score reaches p.StepUpScore or a decisive step-up
// signal is present (session from another device, failure runs, impossible
// travel when not denied); otherwise Allow.
func Decide(s Signals, p Policy) Decision {
	p = p.withDefaults()
	r := make([]Reason, 0, 8)
	var deny, stepUp bool // forced by decisive signals

	// Impossible travel.
	if km, elapsed, ok := travel(s, p); ok {
		w := WeightImpossibleTravelStepUp
		if p.DenyImpossibleTravel {
			w = max(WeightImpossibleTravel, p.DenyScore)
			deny = true
		} else {
			stepUp = true
		}
		r = append(r, Reason{CodeImpossibleTravel,
			"impossible travel: " + formatThousands(int64(math.Round(km))) + " km in " + formatElapsed(elapsed), w})
	}

	// A session presented from a device other than its own.
	if s.SessionDeviceID != "" && s.DeviceID != s.SessionDeviceID {
		stepUp = true
		r = append(r, Reason{CodeSessionOtherDevice, "this session was started on another device", WeightSessionOtherDevice})
	}

	// Failure runs.
	if s.RecentFailuresUser > p.MaxFailuresUser {
		stepUp = true
		r = append(r, Reason{CodeFailuresUser,
			failedAttempts(s.RecentFailuresUser) + " in " + formatElapsed(p.FailureWindow), WeightFailuresUser})
	}
	if s.RecentFailuresIP > p.MaxFailuresIP {
		stepUp = true
		r = append(r, Reason{CodeFailuresIP,
			failedAttempts(s.RecentFailuresIP) + " in " + formatElapsed(p.FailureWindow) + " from this network", WeightFailuresIP})
	}

	// Soft signals: scored only, and a trusted network may offset them.
	soft := 0
	if s.Place.Country != "" && len(s.KnownCountries) > 0 && !knownCountry(s.Place.Country, s.KnownCountries) {
		text := "new country"
		if c, ok := countryCode(s.Place.Country); ok {
			text += ": " + c
		}
		r = append(r, Reason{CodeNewCountry, text, WeightNewCountry})
		soft += WeightNewCountry
	}
	if (s.DeviceID == "" || !s.KnownDevice) && s.LastSuccess != nil {
		r = append(r, Reason{CodeNewDevice, "new device", WeightNewDevice})
		soft += WeightNewDevice
	}
	if ls := s.LastSuccess; ls != nil && !ls.Time.IsZero() {
		if idle := s.Now.Sub(ls.Time); idle > p.DormantAfter {
			r = append(r, Reason{CodeDormantAccount, "first sign-in in " + formatIdle(idle), WeightDormantAccount})
			soft += WeightDormantAccount
		}
	}
	if p.CheckUsualHours && unusualHour(s.Now.UTC().Hour(), s.UsualHours) {
		r = append(r, Reason{CodeUnusualHour, "unusual time of day: " + s.Now.UTC().Format("15:04") + " UTC", WeightUnusualHour})
		soft += WeightUnusualHour
	}

	// A trusted network vouches for the soft signals, never the decisive.
	if p.TrustedNetworkOK && s.Place.NetworkTrust == TrustTrusted {
		r = append(r, Reason{CodeTrustedNetwork, networkName(s.Place.Network), -min(-WeightTrustedNetwork, soft)})
	}

	score := 0
	for _, x := range r {
		score = addSat(score, x.Weight)
	}
	score = max(score, 0)

	d := Decision{Score: score, Reasons: r}
	switch {
	case deny || score >= p.DenyScore:
		d.Outcome = Deny
	case stepUp || score >= p.StepUpScore:
		d.Outcome = StepUp
		// A phishing pattern needs a phishing-resistant factor: a relayed
		// TOTP code is exactly what such an attack has. Soft signals alone
		// (a new laptop, a long absence) need only a fresh second factor.
		d.ACR = p.SoftStepUpACR
		if d.phishingPattern() {
			d.ACR = p.StepUpACR
		}
	default:
		d.Outcome = Allow
	}
	return d
}

// phishingPattern: a reason that a phished or relayed credential produces.
func (d Decision) phishingPattern() bool {
	for _, r := range d.Reasons {
		switch r.Code {
		case CodeImpossibleTravel, CodeSessionOtherDevice, CodeFailuresUser, CodeFailuresIP, CodeNewCountry:
			return true
		}
	}
	return false
}

// Texts returns the reasons' texts, most serious first: what the step-up
// page shows the user and the admin console shows beside the audit event.
func (d Decision) Texts() []string {
	out := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out[i] = r.Text
	}
	return out
}

// Codes returns the reasons' codes, most serious first: what the audit log
// and metrics record.
func (d Decision) Codes() []string {
	out := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		out[i] = r.Code
	}
	return out
}

// Has reports whether the decision lists a reason with the given code.
func (d Decision) Has(code string) bool {
	for _, r := range d.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

// DistanceKm is the great-circle distance in kilometres between two points
// given in degrees (haversine formula). It is accurate to about 0.5%, far
// better than IP geolocation.
func DistanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	sinLat := math.Sin((lat2 - lat1) * rad / 2)
	sinLon := math.Sin((lon2 - lon1) * rad / 2)
	a := sinLat*sinLat + math.Cos(lat1*rad)*math.Cos(lat2*rad)*sinLon*sinLon
	a = math.Min(math.Max(a, 0), 1) // rounding can step just outside [0, 1]
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(a))
}

// travel reports impossible travel between the last successful sign-in and
// this one: the distance and the time it took (0 when none passed or the
// clocks disagree, which counts as instantaneous).
func travel(s Signals, p Policy) (km float64, elapsed time.Duration, ok bool) {
	ls := s.LastSuccess
	if ls == nil || !ls.Place.HasCoords || !s.Place.HasCoords {
		return 0, 0, false
	}
	km = DistanceKm(ls.Place.Lat, ls.Place.Lon, s.Place.Lat, s.Place.Lon)
	if math.IsNaN(km) || km < p.MinTravelKm {
		return 0, 0, false
	}
	elapsed = s.Now.Sub(ls.Time)
	if elapsed <= 0 {
		return km, 0, true // no time at all: no speed is fast enough
	}
	return km, elapsed, km/elapsed.Hours() > p.ImpossibleTravelKmh
}

func knownCountry(c string, known []string) bool {
	for _, k := range known {
		if strings.EqualFold(strings.TrimSpace(k), strings.TrimSpace(c)) {
			return true
		}
	}
	return false
}

// unusualHour reports whether hour is more than one hour (around the clock)
// from every usual hour; false when there are fewer than usualHoursMin
// distinct valid usual hours to judge by.
func unusualHour(hour int, usual []int) bool {
	var seen [24]bool
	n := 0
	for _, u := range usual {
		if u >= 0 && u < 24 && !seen[u] {
			seen[u] = true
			n++
		}
	}
	if n < usualHoursMin {
		return false
	}
	return !seen[hour] && !seen[(hour+1)%24] && !seen[(hour+23)%24]
}

// addSat adds b to a, stopping at math.MaxInt (a DenyScore of MaxInt makes
// impossible travel weigh that much). Only the trusted network is negative,
// and it never takes the sum below zero.
func addSat(a, b int) int {
	if b > 0 && a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}
