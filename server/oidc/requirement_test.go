package oidc

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

func TestRequirement(t *testing.T) {
	client := func(minACR string, maxAuthAge time.Duration) storage.Client {
		return storage.Client{ID: "c_app", MinACR: minACR, MaxAuthAge: maxAuthAge}
	}
	tests := []struct {
		name   string
		form   url.Values
		client storage.Client
		want   session.Requirement
	}{
		{"a plain request needs mfa and sets no age",
			url.Values{}, client("mfa", 0),
			session.Requirement{ACR: "mfa", MaxAge: -1}},
		{"a client without a minimum still needs mfa",
			url.Values{}, client("", 0),
			session.Requirement{ACR: "mfa", MaxAge: -1}},
		{"the client's minimum raises the level",
			url.Values{}, client("phr", 0),
			session.Requirement{ACR: "phr", MaxAge: -1}},
		{"acr_values raises the level above the client's minimum",
			url.Values{"acr_values": {"phrh"}}, client("phr", 0),
			session.Requirement{ACR: "phrh", MaxAge: -1}},
		{"acr_values never lowers the client's minimum",
			url.Values{"acr_values": {"mfa"}}, client("phrh", 0),
			session.Requirement{ACR: "phrh", MaxAge: -1}},
		{"the first known of several acr_values counts",
			url.Values{"acr_values": {"urn:x:gold phr phrh"}}, client("mfa", 0),
			session.Requirement{ACR: "phr", MaxAge: -1}},
		{"unknown acr_values are ignored",
			url.Values{"acr_values": {"urn:x:gold"}}, client("mfa", 0),
			session.Requirement{ACR: "mfa", MaxAge: -1}},
		{"max_age is taken in seconds",
			url.Values{"max_age": {"300"}}, client("mfa", 0),
			session.Requirement{ACR: "mfa", MaxAge: 5 * time.Minute}},
		{"max_age=0 is kept, not read as absent",
			url.Values{"max_age": {"0"}}, client("mfa", time.Hour),
			session.Requirement{ACR: "mfa", MaxAge: 0}},
		{"the client's MaxAuthAge applies when the request sets none",
			url.Values{}, client("mfa", time.Hour),
			session.Requirement{ACR: "mfa", MaxAge: time.Hour}},
		{"the client's MaxAuthAge caps a longer max_age",
			url.Values{"max_age": {"86400"}}, client("mfa", time.Hour),
			session.Requirement{ACR: "mfa", MaxAge: time.Hour}},
		{"a shorter max_age wins over the client's MaxAuthAge",
			url.Values{"max_age": {"60"}}, client("mfa", time.Hour),
			session.Requirement{ACR: "mfa", MaxAge: time.Minute}},
		{"prompt=login forces a sign-in",
			url.Values{"prompt": {"login"}}, client("mfa", 0),
			session.Requirement{ACR: "mfa", MaxAge: -1, ForceLogin: true}},
		{"prompt=login among other prompts forces a sign-in",
			url.Values{"prompt": {"consent login"}}, client("mfa", 0),
			session.Requirement{ACR: "mfa", MaxAge: -1, ForceLogin: true}},
		{"prompt=none does not force a sign-in",
			url.Values{"prompt": {"none"}}, client("mfa", 0),
			session.Requirement{ACR: "mfa", MaxAge: -1}},
		{"a prompt merely containing login does not force a sign-in",
			url.Values{"prompt": {"relogin"}}, client("mfa", 0),
			session.Requirement{ACR: "mfa", MaxAge: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := requirement(tc.form, tc.client)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Errorf("requirement = %+v, want %+v", got, tc.want)
			}
		})
	}

	for _, bad := range []struct{ name, maxAge string }{
		{"a negative max_age is an invalid request", "-1"},
		{"a fractional max_age is an invalid request", "1.5"},
		{"a word for max_age is an invalid request", "soon"},
		{"a max_age beyond any integer is an invalid request", "99999999999999999999999"},
		{"a max_age with spaces is an invalid request", " 60"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			_, err := requirement(url.Values{"max_age": {bad.maxAge}}, client("mfa", 0))
			if !errors.Is(err, fosite.ErrInvalidRequest) {
				t.Fatalf("err = %v, want invalid_request", err)
			}
		})
	}
}

func TestCheckPKCE(t *testing.T) {
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, tc := range []struct {
		name string
		form url.Values
		ok   bool
	}{
		{"an S256 challenge is accepted", url.Values{"code_challenge": {challenge}, "code_challenge_method": {"S256"}}, true},
		{"no challenge is refused", url.Values{}, false},
		{"a method without a challenge is refused", url.Values{"code_challenge_method": {"S256"}}, false},
		{"a challenge without a method is refused (it would mean plain)", url.Values{"code_challenge": {challenge}}, false},
		{"a plain challenge is refused", url.Values{"code_challenge": {challenge}, "code_challenge_method": {"plain"}}, false},
		{"the method is case-sensitive", url.Values{"code_challenge": {challenge}, "code_challenge_method": {"s256"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPKCE(tc.form)
			if tc.ok && err != nil {
				t.Fatalf("err = %v, want none", err)
			}
			if !tc.ok && !errors.Is(err, fosite.ErrInvalidRequest) {
				t.Fatalf("err = %v, want invalid_request", err)
			}
		})
	}
}
