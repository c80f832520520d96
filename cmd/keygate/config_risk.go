package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/keygate/keygate/server/geo"
	"github.com/keygate/keygate/server/risk"
)

// riskFile is the `risk:` section: where addresses are (an MMDB file,
// named networks) and the risk engine's thresholds. Every key is optional;
// unset ones keep risk.DefaultPolicy's values.
type riskFile struct {
	MMDBFile string `yaml:"mmdb_file"`
	ASNFile  string `yaml:"asn_file"`
	Networks []struct {
		Name  string   `yaml:"name"`
		CIDRs []string `yaml:"cidrs"`
		Trust string   `yaml:"trust"` // trusted or known
	} `yaml:"networks"`
	ImpossibleTravelKmh  float64  `yaml:"impossible_travel_kmh"`
	MinTravelKm          float64  `yaml:"min_travel_km"`
	DenyImpossibleTravel *bool    `yaml:"deny_impossible_travel"`
	FailureWindow        duration `yaml:"failure_window"`
	MaxFailuresUser      int      `yaml:"max_failures_user"`
	MaxFailuresIP        int      `yaml:"max_failures_ip"`
	DormantAfter         duration `yaml:"dormant_after"`
	UsualHours           bool     `yaml:"usual_hours"`
	StepUpScore          int      `yaml:"step_up_score"`
	DenyScore            int      `yaml:"deny_score"`
	StepUpACR            string   `yaml:"step_up_acr"`
	SoftStepUpACR        string   `yaml:"soft_step_up_acr"`
	TrustedNetworkOffset *bool    `yaml:"trusted_network_offsets"`
}

// riskConfig validates the section into the geo and risk configuration.
func (s settings) riskConfig() (geo.Config, risk.Policy, []string) {
	rf := s.file.Risk
	var problems []string
	gc := geo.Config{MMDBPath: rf.MMDBFile, ASNPath: rf.ASNFile}
	for i, n := range rf.Networks {
		net := geo.Network{Name: n.Name}
		switch n.Trust {
		case "trusted":
			net.Trust = risk.TrustTrusted
		case "known", "":
			net.Trust = risk.TrustKnown
		default:
			problems = append(problems, fmt.Sprintf("risk.networks[%d].trust: %q is neither trusted nor known", i, n.Trust))
		}
		for _, c := range n.CIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				problems = append(problems, fmt.Sprintf("risk.networks[%d].cidrs: %q is not a CIDR like 10.0.0.0/8", i, c))
				continue
			}
			net.Prefixes = append(net.Prefixes, p)
		}
		gc.Networks = append(gc.Networks, net)
	}
	problems = append(problems, negatives(map[string]float64{
		"risk.impossible_travel_kmh": rf.ImpossibleTravelKmh, "risk.min_travel_km": rf.MinTravelKm,
	})...)
	problems = append(problems, negatives(map[string]int{
		"risk.max_failures_user": rf.MaxFailuresUser, "risk.max_failures_ip": rf.MaxFailuresIP,
		"risk.step_up_score": rf.StepUpScore, "risk.deny_score": rf.DenyScore,
	})...)
	p := risk.DefaultPolicy()
	p.ImpossibleTravelKmh = pick(rf.ImpossibleTravelKmh, p.ImpossibleTravelKmh)
	p.MinTravelKm = pick(rf.MinTravelKm, p.MinTravelKm)
	if rf.DenyImpossibleTravel != nil {
		p.DenyImpossibleTravel = *rf.DenyImpossibleTravel
	}
	if rf.TrustedNetworkOffset != nil {
		p.TrustedNetworkOK = *rf.TrustedNetworkOffset
	}
	p.FailureWindow = pick(time.Duration(rf.FailureWindow), p.FailureWindow)
	p.MaxFailuresUser = pick(rf.MaxFailuresUser, p.MaxFailuresUser)
	p.MaxFailuresIP = pick(rf.MaxFailuresIP, p.MaxFailuresIP)
	p.DormantAfter = pick(time.Duration(rf.DormantAfter), p.DormantAfter)
	p.CheckUsualHours = rf.UsualHours
	p.StepUpScore = pick(rf.StepUpScore, p.StepUpScore)
	p.DenyScore = pick(rf.DenyScore, p.DenyScore)
	for _, acr := range []struct {
		key string
		dst *string
		val string
	}{{"step_up_acr", &p.StepUpACR, rf.StepUpACR}, {"soft_step_up_acr", &p.SoftStepUpACR, rf.SoftStepUpACR}} {
		switch acr.val {
		case "":
		case "mfa", "phr", "phrh":
			*acr.dst = acr.val
		default:
			problems = append(problems, fmt.Sprintf("risk.%s: %q must be mfa, phr or phrh", acr.key, acr.val))
		}
	}
	if p.DenyScore <= p.StepUpScore {
		problems = append(problems, fmt.Sprintf("risk.deny_score (%d) must be above risk.step_up_score (%d)", p.DenyScore, p.StepUpScore))
	}
	// geo.Open validates the networks (overlaps, names) and the files.
	if len(problems) == 0 {
		if l, err := geo.Open(gc); err != nil {
			problems = append(problems, "risk: "+err.Error())
		} else {
			l.Close()
		}
	}
	return gc, p, problems
}
