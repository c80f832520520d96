package risk_test

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/risk"
)

// t0 is the fixed clock of every scenario: Saturday noon, UTC.
var t0 = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

var (
	berlin = risk.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, HasCoords: true}
	office = risk.Place{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405, HasCoords: true,
		Network: "office network", NetworkTrust: risk.TrustTrusted}
	potsdam = risk.Place{Country: "DE", City: "Potsdam", Lat: 52.3906, Lon: 13.0645, HasCoords: true}
	munich  = risk.Place{Country: "DE", City: "Munich", Lat: 48.1351, Lon: 11.582, HasCoords: true}
	paris   = risk.Place{Country: "FR", City: "Paris", Lat: 48.8566, Lon: 2.3522, HasCoords: true}
	newYork = risk.Place{Country: "US", City: "New York", Lat: 40.7128, Lon: -74.0060, HasCoords: true}
	sydney  = risk.Place{Country: "AU", City: "Sydney", Lat: -33.8688, Lon: 151.2093, HasCoords: true}
)

// returning is a user coming back on their known device, in Berlin, a day
// after their last sign-in there: nothing to see. Scenarios change it.
func returning() risk.Signals {
	return risk.Signals{
		Now:            t0,
		UserID:         "u-alice",
		ClientID:       "wiki",
		IP:             netip.MustParseAddr("203.0.113.7"),
		Place:          berlin,
		DeviceID:       "dev-laptop",
		KnownDevice:    true,
		LastSuccess:    &risk.Sighting{Time: t0.Add(-24 * time.Hour), Place: berlin, DeviceID: "dev-laptop"},
		KnownCountries: []string{"DE"},
	}
}

// lastAt moves the previous sign-in to place, ago before now.
func lastAt(s *risk.Signals, place risk.Place, ago time.Duration) {
	s.LastSuccess = &risk.Sighting{Time: s.Now.Add(-ago), Place: place, DeviceID: s.DeviceID}
}

func TestDecide(t *testing.T) {
	const (
		travel     = risk.CodeImpossibleTravel
		session    = risk.CodeSessionOtherDevice
		failUser   = risk.CodeFailuresUser
		failIP     = risk.CodeFailuresIP
		newCountry = risk.CodeNewCountry
		newDevice  = risk.CodeNewDevice
		dormant    = risk.CodeDormantAccount
		hour       = risk.CodeUnusualHour
		trusted    = risk.CodeTrustedNetwork
	)
	tests := []struct {
		name    string
		signals func(*risk.Signals)
		policy  func(*risk.Policy) // nil: DefaultPolicy as is
		outcome risk.Outcome
		acr     string
		score   int
		codes   []string
		texts   map[string]string // code -> exact text, for some
	}{
		{name: "a known device at the office is allowed, the office noted",
			signals: func(s *risk.Signals) { s.Place = office },
			outcome: risk.Allow, score: 0, codes: []string{trusted},
			texts: map[string]string{trusted: "office network"}},
		{name: "a new device at the office is allowed, the new device still listed",
			signals: func(s *risk.Signals) { s.Place, s.DeviceID, s.KnownDevice = office, "dev-new", false },
			outcome: risk.Allow, score: 0, codes: []string{newDevice, trusted},
			texts: map[string]string{newDevice: "new device"}},
		{name: "a new device elsewhere steps up to a fresh second factor",
			signals: func(s *risk.Signals) { s.DeviceID, s.KnownDevice = "dev-new", false },
			outcome: risk.StepUp, acr: "mfa", score: 30, codes: []string{newDevice}},
		{name: "no device cookie at all counts as a new device",
			signals: func(s *risk.Signals) { s.DeviceID, s.KnownDevice = "", true },
			outcome: risk.StepUp, acr: "mfa", score: 30, codes: []string{newDevice}},
		{name: "the same session from a new country steps up to phr",
			signals: func(s *risk.Signals) { s.SessionDeviceID, s.Place = s.DeviceID, paris },
			outcome: risk.StepUp, acr: "phr", score: 35, codes: []string{newCountry},
			texts: map[string]string{newCountry: "new country: FR"}},
		{name: "a stolen session cookie used at the office still steps up",
			signals: func(s *risk.Signals) {
				s.Place, s.SessionDeviceID, s.DeviceID, s.KnownDevice = office, "dev-laptop", "dev-thief", false
			},
			outcome: risk.StepUp, acr: "phr", score: 40, codes: []string{session, newDevice, trusted},
			texts: map[string]string{session: "this session was started on another device"}},
		{name: "a stolen session cookie without a device cookie steps up even when nothing else is odd",
			signals: func(s *risk.Signals) { s.SessionDeviceID, s.DeviceID, s.LastSuccess = "dev-laptop", "", nil },
			outcome: risk.StepUp, acr: "phr", score: 40, codes: []string{session}},
		{name: "a DenyScore of MaxInt neither overflows the score nor lets impossible travel through",
			signals: func(s *risk.Signals) { s.Place = sydney; lastAt(s, berlin, 2*time.Hour) },
			policy:  func(p *risk.Policy) { p.DenyScore = math.MaxInt },
			outcome: risk.Deny, score: math.MaxInt, codes: []string{travel, newCountry}},
		{name: "Berlin to Sydney in 2 h is impossible travel and denied",
			signals: func(s *risk.Signals) { s.Place = sydney; lastAt(s, berlin, 2*time.Hour) },
			outcome: risk.Deny, score: 135, codes: []string{travel, newCountry},
			texts: map[string]string{travel: "impossible travel: 16,095 km in 2 h", newCountry: "new country: AU"}},
		{name: "impossible travel into a trusted network is still denied",
			signals: func(s *risk.Signals) {
				s.Place = sydney
				s.Place.Network, s.Place.NetworkTrust = "Sydney office", risk.TrustTrusted
				s.KnownCountries = []string{"DE", "AU"}
				lastAt(s, berlin, 2*time.Hour)
			},
			outcome: risk.Deny, score: 100, codes: []string{travel, trusted}},
		{name: "Berlin to New York in five and a half hours is reported in half hours",
			signals: func(s *risk.Signals) {
				s.Place, s.KnownCountries = newYork, []string{"DE", "US"}
				lastAt(s, berlin, 5*time.Hour+35*time.Minute)
			},
			outcome: risk.Deny, score: 100, codes: []string{travel},
			texts: map[string]string{travel: "impossible travel: 6,385 km in 5.5 h"}},
		{name: "Berlin to Munich in 20 min is reported in minutes",
			signals: func(s *risk.Signals) { s.Place = munich; lastAt(s, berlin, 20*time.Minute) },
			outcome: risk.Deny, score: 100, codes: []string{travel},
			texts: map[string]string{travel: "impossible travel: 504 km in 20 min"}},
		{name: "Berlin to Munich in 2 h is no travel signal",
			signals: func(s *risk.Signals) { s.Place = munich; lastAt(s, berlin, 2*time.Hour) },
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "a move shorter than MinTravelKm is ignored even with no time between",
			signals: func(s *risk.Signals) { s.Place = potsdam; lastAt(s, berlin, 0) },
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "with DenyImpossibleTravel off, impossible travel steps up",
			signals: func(s *risk.Signals) { s.Place = sydney; lastAt(s, berlin, 2*time.Hour) },
			policy:  func(p *risk.Policy) { p.DenyImpossibleTravel = false },
			outcome: risk.StepUp, acr: "phr", score: 65, codes: []string{travel, newCountry}},
		{name: "missing coordinates mean no travel signal",
			signals: func(s *risk.Signals) {
				s.Place, s.KnownCountries = sydney, []string{"DE", "AU"}
				s.Place.HasCoords = false
				lastAt(s, berlin, 2*time.Hour)
			},
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "far travel with no time elapsed is impossible, and no division by zero",
			signals: func(s *risk.Signals) {
				s.Place, s.KnownCountries = sydney, []string{"DE", "AU"}
				lastAt(s, berlin, 0)
			},
			outcome: risk.Deny, score: 100, codes: []string{travel},
			texts: map[string]string{travel: "impossible travel: 16,095 km in under a minute"}},
		{name: "a last sign-in dated after now (clock skew) counts as instantaneous",
			signals: func(s *risk.Signals) {
				s.Place, s.KnownCountries = sydney, []string{"DE", "AU"}
				lastAt(s, berlin, -time.Hour)
			},
			outcome: risk.Deny, score: 100, codes: []string{travel},
			texts: map[string]string{travel: "impossible travel: 16,095 km in under a minute"}},
		{name: "a first-ever sign-in is allowed, neither a new country nor a new device",
			signals: func(s *risk.Signals) {
				s.Place, s.DeviceID, s.KnownDevice, s.LastSuccess, s.KnownCountries = sydney, "", false, nil, nil
			},
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "four failures on the account step up",
			signals: func(s *risk.Signals) { s.RecentFailuresUser = 4 },
			outcome: risk.StepUp, acr: "phr", score: 40, codes: []string{failUser},
			texts: map[string]string{failUser: "4 failed attempts in 15 min"}},
		{name: "three failures on the account are within the limit",
			signals: func(s *risk.Signals) { s.RecentFailuresUser = 3 },
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "eleven failures from the network step up",
			signals: func(s *risk.Signals) { s.RecentFailuresIP = 11 },
			outcome: risk.StepUp, acr: "phr", score: 30, codes: []string{failIP},
			texts: map[string]string{failIP: "11 failed attempts in 15 min from this network"}},
		{name: "a failure run at the office still steps up",
			signals: func(s *risk.Signals) { s.Place, s.RecentFailuresUser = office, 5 },
			outcome: risk.StepUp, acr: "phr", score: 40, codes: []string{failUser, trusted}},
		{name: "a stolen session with failure runs from two sides is denied",
			signals: func(s *risk.Signals) {
				s.SessionDeviceID, s.DeviceID, s.KnownDevice = "dev-laptop", "dev-thief", false
				s.RecentFailuresUser, s.RecentFailuresIP = 4, 11
			},
			outcome: risk.Deny, score: 140, codes: []string{session, failUser, failIP, newDevice}},
		{name: "an account dormant for 120 days is noted but allowed",
			signals: func(s *risk.Signals) { lastAt(s, berlin, 120*24*time.Hour) },
			outcome: risk.Allow, score: 20, codes: []string{dormant},
			texts: map[string]string{dormant: "first sign-in in 120 days"}},
		{name: "a dormant account on a new device steps up to a fresh second factor",
			signals: func(s *risk.Signals) {
				lastAt(s, berlin, 120*24*time.Hour)
				s.DeviceID, s.KnownDevice = "dev-new", false
			},
			outcome: risk.StepUp, acr: "mfa", score: 50, codes: []string{newDevice, dormant}},
		{name: "an unusual hour is noted when the policy checks hours",
			signals: func(s *risk.Signals) { s.UsualHours = []int{7, 8, 9, 16, 17} },
			policy:  func(p *risk.Policy) { p.CheckUsualHours = true },
			outcome: risk.Allow, score: 10, codes: []string{hour},
			texts: map[string]string{hour: "unusual time of day: 12:00 UTC"}},
		{name: "an unusual hour is not checked when the policy says not to",
			signals: func(s *risk.Signals) { s.UsualHours = []int{7, 8, 9, 16, 17} },
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "an hour next to a usual one is not unusual",
			signals: func(s *risk.Signals) { s.UsualHours = []int{11, 20, 21, 22, 23} },
			policy:  func(p *risk.Policy) { p.CheckUsualHours = true },
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "usual hours wrap around midnight",
			signals: func(s *risk.Signals) {
				s.Now = t0.Add(12*time.Hour + 30*time.Minute)
				s.UsualHours = []int{23, 5, 6, 7, 8}
			},
			policy:  func(p *risk.Policy) { p.CheckUsualHours = true },
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "fewer than five usual hours are not a pattern",
			signals: func(s *risk.Signals) { s.UsualHours = []int{7, 8, 9, 16, 16, 16} },
			policy:  func(p *risk.Policy) { p.CheckUsualHours = true },
			outcome: risk.Allow, score: 0, codes: nil},
		{name: "the office covers one soft signal, not a new country and a new device together",
			signals: func(s *risk.Signals) {
				s.Place, s.DeviceID, s.KnownDevice = office, "dev-new", false
				s.Place.Country = "PL"
			},
			outcome: risk.StepUp, acr: "phr", score: 35, codes: []string{newCountry, newDevice, trusted}},
		{name: "a trusted network does not offset when the policy says not to",
			signals: func(s *risk.Signals) { s.Place, s.DeviceID, s.KnownDevice = office, "dev-new", false },
			policy:  func(p *risk.Policy) { p.TrustedNetworkOK = false },
			outcome: risk.StepUp, acr: "mfa", score: 30, codes: []string{newDevice}},
		{name: "a known but untrusted network such as a VPN does not offset",
			signals: func(s *risk.Signals) {
				s.DeviceID, s.KnownDevice = "dev-new", false
				s.Place.Network, s.Place.NetworkTrust = "corporate VPN", risk.TrustKnown
			},
			outcome: risk.StepUp, acr: "mfa", score: 30, codes: []string{newDevice}},
		{name: "a network named by its address is shown by a generic name",
			signals: func(s *risk.Signals) { s.Place = office; s.Place.Network = "HQ 198.51.100.0/24" },
			outcome: risk.Allow, score: 0, codes: []string{trusted},
			texts: map[string]string{trusted: "trusted network"}},
		{name: "a configured step-up level is asked for a phishing pattern",
			signals: func(s *risk.Signals) { s.SessionDeviceID, s.DeviceID, s.KnownDevice = "dev-a", "dev-b", true },
			policy:  func(p *risk.Policy) { p.StepUpACR = "phrh" },
			outcome: risk.StepUp, acr: "phrh", score: 40, codes: []string{risk.CodeSessionOtherDevice}},
		{name: "an empty step-up level asks for phr",
			signals: func(s *risk.Signals) { s.SessionDeviceID, s.DeviceID, s.KnownDevice = "dev-a", "dev-b", true },
			policy:  func(p *risk.Policy) { p.StepUpACR = "" },
			outcome: risk.StepUp, acr: "phr", score: 40, codes: []string{risk.CodeSessionOtherDevice}},
		{name: "a configured soft step-up level is asked for soft signals alone",
			signals: func(s *risk.Signals) { s.DeviceID, s.KnownDevice = "dev-new", false },
			policy:  func(p *risk.Policy) { p.SoftStepUpACR = "phr" },
			outcome: risk.StepUp, acr: "phr", score: 30, codes: []string{newDevice}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := returning()
			tt.signals(&s)
			p := risk.DefaultPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			d := risk.Decide(s, p)
			if d.Outcome != tt.outcome || d.ACR != tt.acr || d.Score != tt.score {
				t.Errorf("got %s acr=%q score=%d, want %s acr=%q score=%d (reasons %+v)",
					d.Outcome, d.ACR, d.Score, tt.outcome, tt.acr, tt.score, d.Reasons)
			}
			if got := d.Codes(); !slices.Equal(got, tt.codes) {
				t.Errorf("codes = %q, want %q", got, tt.codes)
			}
			for code, want := range tt.texts {
				i := slices.Index(d.Codes(), code)
				if i < 0 {
					t.Errorf("no %s reason for text %q", code, want)
				} else if got := d.Texts()[i]; got != want {
					t.Errorf("%s text = %q, want %q", code, got, want)
				}
			}
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	want := risk.Policy{
		ImpossibleTravelKmh: 900, MinTravelKm: 150, DenyImpossibleTravel: true,
		FailureWindow: 15 * time.Minute, MaxFailuresUser: 3, MaxFailuresIP: 10,
		DormantAfter: 90 * 24 * time.Hour, CheckUsualHours: false,
		StepUpScore: 30, DenyScore: 100, StepUpACR: "phr", SoftStepUpACR: "mfa", TrustedNetworkOK: true,
	}
	if got := risk.DefaultPolicy(); got != want {
		t.Fatalf("DefaultPolicy() = %+v, want %+v", got, want)
	}
}

func TestDistanceKm(t *testing.T) {
	for _, c := range []struct {
		name     string
		a, b     risk.Place
		min, max float64
	}{
		{"Berlin to Sydney", berlin, sydney, 16080, 16110},
		{"Berlin to Munich", berlin, munich, 500, 510},
		{"Berlin to itself", berlin, berlin, 0, 0},
		{"pole to pole", risk.Place{Lat: 90}, risk.Place{Lat: -90}, 20015, 20016},
		{"antipodes on the equator", risk.Place{Lon: 0}, risk.Place{Lon: 180}, 20015, 20016},
	} {
		got := risk.DistanceKm(c.a.Lat, c.a.Lon, c.b.Lat, c.b.Lon)
		back := risk.DistanceKm(c.b.Lat, c.b.Lon, c.a.Lat, c.a.Lon)
		if got < c.min || got > c.max || math.Abs(got-back) > 1e-9 {
			t.Errorf("%s: %v km (back %v), want %v..%v", c.name, got, back, c.min, c.max)
		}
	}
}

// order is the documented order of reasons, most serious first.
var order = []string{
	risk.CodeImpossibleTravel, risk.CodeSessionOtherDevice, risk.CodeFailuresUser, risk.CodeFailuresIP,
	risk.CodeNewCountry, risk.CodeNewDevice, risk.CodeDormantAccount, risk.CodeUnusualHour,
	risk.CodeTrustedNetwork,
}

var decisive = map[string]bool{
	risk.CodeImpossibleTravel: true, risk.CodeSessionOtherDevice: true,
	risk.CodeFailuresUser: true, risk.CodeFailuresIP: true,
}

// ipv4 finds anything shaped like a dotted quad.
var ipv4 = regexp.MustCompile(`\d{1,3}(\.\d{1,3}){3}`)

// hasAddress reports whether text contains an IPv4 or IPv6 address.
func hasAddress(text string) bool {
	if ipv4.MatchString(text) {
		return true
	}
	for _, f := range strings.FieldsFunc(text, func(r rune) bool {
		return !strings.ContainsRune("0123456789abcdefABCDEF.:%", r)
	}) {
		for _, c := range []string{f, strings.TrimRight(f, ".:")} {
			if _, err := netip.ParseAddr(c); err == nil && strings.Contains(c, ":") {
				return true
			}
		}
	}
	return false
}

// TestDecideProperties runs Decide over many generated signals and
// policies, odd ones included, and checks what must always hold.
func TestDecideProperties(t *testing.T) {
	t.Run("zero signals and a zero policy neither panic nor refuse", func(t *testing.T) {
		for _, p := range []risk.Policy{{}, risk.DefaultPolicy()} {
			d := risk.Decide(risk.Signals{}, p)
			if d.Outcome != risk.Allow || d.Score != 0 || len(d.Reasons) != 0 || d.ACR != "" {
				t.Errorf("Decide(zero, %+v) = %+v", p, d)
			}
		}
		d := risk.Decide(risk.Signals{LastSuccess: &risk.Sighting{}, SessionDeviceID: "x"}, risk.Policy{})
		if d.Outcome != risk.StepUp || d.ACR != "phr" {
			t.Errorf("zero policy: stolen session = %+v, want step_up to phr", d)
		}
	})

	rng := rand.New(rand.NewPCG(1, 2)) // fixed seed: the run is reproducible
	pick := func(n int) int { return rng.IntN(n) }
	places := []risk.Place{{}, berlin, office, potsdam, munich, paris, newYork, sydney,
		{Country: "203.0.113.9", Network: "10.0.0.0/8", NetworkTrust: risk.TrustTrusted},
		{Country: "de", Network: "fe80::1%eth0", NetworkTrust: risk.TrustTrusted, HasCoords: true, Lat: math.NaN()},
		{Country: "NZ", Network: "lab 192.168.1.x", NetworkTrust: risk.TrustTrusted, HasCoords: true, Lat: 1e308, Lon: math.Inf(1)},
		{Country: "JP", Network: "Tokyo office\n2001:db8::1", NetworkTrust: risk.TrustTrusted, HasCoords: true, Lat: 35.68, Lon: 139.69},
		{Country: "DE", Network: "Berlin office", NetworkTrust: risk.TrustKnown, HasCoords: true, Lat: 52.5, Lon: 13.4},
	}
	devices := []string{"", "dev-laptop", "dev-phone", "198.51.100.23"}
	agos := []time.Duration{0, -time.Hour, 10 * time.Minute, 2 * time.Hour, 30 * time.Hour,
		100 * 24 * time.Hour, math.MaxInt64}
	countries := [][]string{nil, {}, {"DE"}, {"de", "FR"}, {"AU", "US", "192.0.2.1"}}
	hours := [][]int{nil, {1, 2, 3}, {7, 8, 9, 16, 17}, {-1, 24, 99, 3, 4, 5, 6, 7}, {0, 6, 12, 18, 23}}
	policies := []risk.Policy{{}, risk.DefaultPolicy(),
		{DenyImpossibleTravel: true, TrustedNetworkOK: true, CheckUsualHours: true, StepUpScore: 60, DenyScore: 50},
		{ImpossibleTravelKmh: math.NaN(), MinTravelKm: math.Inf(1), MaxFailuresUser: -3, FailureWindow: -time.Hour, DormantAfter: time.Hour, StepUpACR: "phrh", CheckUsualHours: true},
		{ImpossibleTravelKmh: 1, MinTravelKm: 1, DenyImpossibleTravel: true, DenyScore: 1000, StepUpScore: 1, TrustedNetworkOK: true},
	}
	ips := []netip.Addr{{}, netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")}

	for i := range 5000 {
		s := risk.Signals{
			Now:                t0.Add(time.Duration(pick(48)) * time.Hour / 2),
			IP:                 ips[pick(len(ips))],
			Place:              places[pick(len(places))],
			DeviceID:           devices[pick(len(devices))],
			KnownDevice:        pick(2) == 0,
			SessionDeviceID:    devices[pick(len(devices))],
			KnownCountries:     countries[pick(len(countries))],
			RecentFailuresUser: pick(8) - 1,
			RecentFailuresIP:   pick(16) - 1,
			UsualHours:         hours[pick(len(hours))],
		}
		if pick(4) != 0 {
			s.LastSuccess = &risk.Sighting{Time: s.Now.Add(-agos[pick(len(agos))]), Place: places[pick(len(places))]}
		}
		p := policies[pick(len(policies))]

		d := risk.Decide(s, p)
		if again := risk.Decide(s, p); !reflect.DeepEqual(d, again) {
			t.Fatalf("#%d: not deterministic: %+v then %+v", i, d, again)
		}

		// Reasons: each at most once, in the documented order.
		last, sum, hard, soft := -1, 0, 0, 0
		for _, r := range d.Reasons {
			k := slices.Index(order, r.Code)
			if k <= last {
				t.Fatalf("#%d: reasons out of order or unknown: %q", i, d.Codes())
			}
			last = k
			sum += r.Weight
			switch {
			case decisive[r.Code]:
				hard += r.Weight
			case r.Code != risk.CodeTrustedNetwork:
				soft += r.Weight
			}
			if r.Code == risk.CodeTrustedNetwork && (r.Weight > 0 || r.Weight < -30) {
				t.Fatalf("#%d: trusted network weight %d", i, r.Weight)
			}
		}
		// Score is the sum of the weights, and a trusted network never
		// takes anything off the decisive signals.
		if d.Score != max(sum, 0) || d.Score < hard || sum < hard {
			t.Fatalf("#%d: score %d, weights sum %d, decisive %d, soft %d: %+v", i, d.Score, sum, hard, soft, d.Reasons)
		}
		// The outcome follows the decisive signals at least.
		switch {
		case d.Has(risk.CodeImpossibleTravel) && p.DenyImpossibleTravel && d.Outcome != risk.Deny,
			hard > 0 && d.Outcome == risk.Allow,
			d.Outcome != risk.Allow && d.Outcome != risk.StepUp && d.Outcome != risk.Deny,
			(d.Outcome == risk.StepUp) != (d.ACR != ""):
			t.Fatalf("#%d: outcome %s acr %q with reasons %+v", i, d.Outcome, d.ACR, d.Reasons)
		}
		// Texts are for people: plain, no addresses, no broken numbers.
		texts := d.Texts()
		if len(texts) != len(d.Reasons) {
			t.Fatalf("#%d: %d texts for %d reasons", i, len(texts), len(d.Reasons))
		}
		for _, text := range texts {
			if text == "" || hasAddress(text) || strings.Contains(text, "NaN") || strings.Contains(text, "Inf") ||
				strings.ContainsAny(text, "\n\r\t") || strings.Contains(text, "_") {
				t.Fatalf("#%d: text %q (signals %+v)", i, text, s)
			}
		}
	}
}

func TestHasAddressCatchesAddresses(t *testing.T) {
	// The checker above must be able to fail.
	for _, s := range []string{"from 203.0.113.7", "at 2001:db8::1 now", "fe80::1%eth0", "::1"} {
		if !hasAddress(s) {
			t.Errorf("hasAddress(%q) = false", s)
		}
	}
	for _, s := range []string{"impossible travel: 16,095 km in 2.5 h", "unusual time of day: 03:47 UTC", "office network"} {
		if hasAddress(s) {
			t.Errorf("hasAddress(%q) = true", s)
		}
	}
}

// BenchmarkDecide scores a typical risky sign-in: a new device in a new
// country, two hours after a sign-in on the other side of the world.
func BenchmarkDecide(b *testing.B) {
	s := returning()
	s.Place, s.DeviceID, s.KnownDevice = sydney, "dev-new", false
	lastAt(&s, berlin, 2*time.Hour)
	p := risk.DefaultPolicy()
	b.ReportAllocs()
	for b.Loop() {
		if d := risk.Decide(s, p); d.Outcome != risk.Deny {
			b.Fatal(d)
		}
	}
}
