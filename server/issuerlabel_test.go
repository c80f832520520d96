package server

import (
	"strings"
	"testing"
)

func TestIssuerLabel(t *testing.T) {
	for issuer, want := range map[string]string{
		"https://id.example.com":       "keygate id.example.com",
		"http://localhost:8080":        "keygate localhost (8080)",
		"https://id.example.com:8443/": "keygate id.example.com (8443)",
		"https://[::1]:9443":           "keygate --1 (9443)",
		"not a URL":                    "keygate",
	} {
		got := issuerLabel(issuer)
		if got != want {
			t.Errorf("issuerLabel(%q) = %q, want %q", issuer, got, want)
		}
		// The key URI format (otpauth://) forbids a colon in the issuer:
		// authenticator apps split the label on it.
		if strings.Contains(got, ":") {
			t.Errorf("issuerLabel(%q) = %q holds a colon", issuer, got)
		}
	}
}
