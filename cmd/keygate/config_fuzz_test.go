package main

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// FuzzConfigFile: any YAML file either is refused with a usage error or
// yields a configuration serve can run with — every lifetime, window and
// limit positive and finite, every address a valid prefix — never a panic,
// and never a setting that quietly switches a protection off.
func FuzzConfigFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, dev bool) {
		fc, err := parseFile("keygate.yaml", raw)
		if err != nil {
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("refused with %T %v, want a usage error", err, err)
			}
			return
		}
		negativeDurations(t, reflect.ValueOf(fc), "")
		// Files the configuration names are not read: this is about the
		// YAML, and a fuzzed path could name anything on the machine.
		fc.Alerts.SecretFile, fc.WebAuthn.MDSFile, fc.WebAuthn.MDSRootFile = "", "", ""
		fc.Risk.MMDBFile, fc.Risk.ASNFile = "", ""
		s := settings{issuer: fc.Issuer, listen: first(fc.Listen, "127.0.0.1:8080"), dev: dev, file: fc}
		cfg, err := s.serverConfig()
		if err != nil {
			return
		}
		lt := cfg.Lifetimes
		for name, d := range map[string]time.Duration{
			"access token": lt.AccessToken, "refresh token": lt.RefreshToken, "ID token": lt.IDToken,
			"authorize code": lt.AuthorizeCode, "refresh grace": lt.RefreshGrace, "session": cfg.SessionTTL,
			"key retention": cfg.KeyRetention, "throttle window": cfg.Throttle.Window,
			"risk failure window": cfg.Risk.FailureWindow, "risk dormancy": cfg.Risk.DormantAfter,
		} {
			if d <= 0 {
				t.Errorf("%s lifetime %v from %q", name, d, raw)
			}
		}
		for name, n := range map[string]int{
			"throttle per account": cfg.Throttle.PerAccount, "throttle per IP": cfg.Throttle.PerIP,
			"risk failures per user": cfg.Risk.MaxFailuresUser, "risk failures per IP": cfg.Risk.MaxFailuresIP,
		} {
			if n <= 0 {
				t.Errorf("%s %d from %q", name, n, raw)
			}
		}
		for name, x := range map[string]float64{
			"impossible travel speed": cfg.Risk.ImpossibleTravelKmh, "minimum travel": cfg.Risk.MinTravelKm,
		} {
			if !(x > 0) || math.IsInf(x, 0) {
				t.Errorf("%s %v from %q", name, x, raw)
			}
		}
		if cfg.Risk.DenyScore <= cfg.Risk.StepUpScore {
			t.Errorf("deny score %d not above step-up score %d", cfg.Risk.DenyScore, cfg.Risk.StepUpScore)
		}
		if cfg.Admin.FreshKeyTap < 0 || cfg.Admin.BulkReadWindow < 0 || cfg.Admin.BulkReadLimit < 0 {
			t.Errorf("admin settings %+v from %q", cfg.Admin, raw)
		}
		if err := validateIssuer(cfg.Issuer, dev); err != nil {
			t.Errorf("issuer accepted, then refused: %v", err)
		}
		for _, p := range cfg.TrustedProxies {
			if !p.IsValid() {
				t.Errorf("trusted proxy %v from %q", p, raw)
			}
		}
	})
}

// negativeDurations fails t for every duration field below zero in v.
func negativeDurations(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch {
	case v.Type() == reflect.TypeFor[duration]():
		if v.Int() < 0 {
			t.Errorf("%s decoded as %v", path, time.Duration(v.Int()))
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			negativeDurations(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case v.Kind() == reflect.Slice:
		for i := range v.Len() {
			negativeDurations(t, v.Index(i), path)
		}
	}
}

// FuzzConfigDuration: a duration in the file is what time.ParseDuration
// reads, and never negative.
func FuzzConfigDuration(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		doc, err := yaml.Marshal(map[string]string{"lifetime": s})
		if err != nil {
			return // not a string YAML can hold
		}
		var got struct {
			Lifetime duration `yaml:"lifetime"`
		}
		err = yaml.Unmarshal(doc, &got)
		want, perr := time.ParseDuration(s)
		switch {
		case perr != nil || want < 0:
			if err == nil {
				t.Fatalf("%q read as %v; time.ParseDuration says %v, %v", s, time.Duration(got.Lifetime), want, perr)
			}
		case err != nil:
			t.Fatalf("%q refused (%v); it is the duration %v", s, err, want)
		case time.Duration(got.Lifetime) != want:
			t.Fatalf("%q read as %v, want %v", s, time.Duration(got.Lifetime), want)
		}
	})
}
