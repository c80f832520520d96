package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGroupsDecideAccess sets groups up with the CLI as an administrator
// would, and watches a stock relying party: a non-member is turned away
// with a page, a member's tokens name their groups and stop working the
// moment they leave, and a group that asks for a key gets one from its
// member whatever the app asks.
func TestGroupsDecideAccess(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")
	lr := newLogoutReceiver(t, kg.issuer)
	kg.cli("group", "add", "ops")
	kg.cli("group", "add", "support", "--min-acr", "phr", "--description", "The help desk: keys only")
	const redirect = "http://127.0.0.1:9/callback"
	var crm, wiki registered
	kg.cliJSON(&crm, "client", "add", "--name", "CRM", "--redirect-uri", redirect, "--allowed-group", "ops",
		"--backchannel-logout-uri", lr.url)
	kg.cliJSON(&wiki, "client", "add", "--name", "Wiki", "--redirect-uri", redirect)
	crmRP := newRP(t, kg.issuer, crm.ClientID, crm.ClientSecret, redirect)
	crmRP.cfg.Scopes = append(crmRP.cfg.Scopes, "groups")
	wikiRP := newRP(t, kg.issuer, wiki.ClientID, wiki.ClientSecret, redirect)

	ann := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ann@localhost"), "ann@localhost")
	kg.cli("group", "member", "add", "ops", ann.email)
	bob := enroll(t, newBrowser(t, kg.issuer), kg.addUser("bob@localhost"), "bob@localhost")

	t.Run("a non-member signs in and is told the app is not theirs", func(t *testing.T) {
		a := crmRP.newRequest()
		p := signIn(t, newBrowser(t, kg.issuer), a, bob, "totp", nextCode(t, bob.totpSecret))
		if p.status != http.StatusForbidden || p.location != "" || !strings.Contains(p.body, "may not use CRM") {
			t.Fatalf("status %d at %s (location %q): %s", p.status, p.url, p.location, tail(p.body, 500))
		}
		// An app open to everyone is fine.
		b := newBrowser(t, kg.issuer)
		a = wikiRP.newRequest()
		a.callback(t, signIn(t, b, a, bob, "recovery", bob.recovery[0]), redirect)
	})

	t.Run("a member's tokens name the groups and die when the membership ends", func(t *testing.T) {
		b := newBrowser(t, kg.issuer)
		a := crmRP.newRequest()
		tok, _, _ := crmRP.exchange(t, a, a.callback(t, signIn(t, b, a, ann, "totp", nextCode(t, ann.totpSecret)), redirect))
		raw, _ := tok.Extra("id_token").(string)
		idt, err := crmRP.verifier.Verify(t.Context(), raw)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Groups []string `json:"groups"`
		}
		if err := idt.Claims(&c); err != nil || !slices.Equal(c.Groups, []string{"ops"}) {
			t.Fatalf("ID token groups %v, %v", c.Groups, err)
		}
		if body := introspect(t, kg.issuer, crm.ClientID, crm.ClientSecret, tok.AccessToken); body["active"] != true {
			t.Fatalf("introspection %v", body)
		}

		removed := time.Now()
		kg.cli("group", "member", "remove", "ops", ann.email)
		if body := introspect(t, kg.issuer, crm.ClientID, crm.ClientSecret, tok.AccessToken); body["active"] != false {
			t.Errorf("the access token is active after the removal: %v", body)
		}
		if _, err := refresh(t.Context(), crmRP.cfg, tok.RefreshToken); err == nil {
			t.Error("the refresh token still works after the removal")
		}
		_, got := lr.waitFor(t, func(claims map[string]any) bool { return claims["aud"] == crm.ClientID })
		t.Logf("membership removed: back-channel logout received after %v", got.Sub(removed).Round(time.Millisecond))
		// Ann is still signed in to keygate: the open app answers at once.
		a = wikiRP.newRequest()
		a.callback(t, b.get(a.url), redirect)
	})

	t.Run("a group that asks for a key turns its member away from an app that asks for less", func(t *testing.T) {
		kg.cli("group", "member", "add", "support", bob.email)
		b := newBrowser(t, kg.issuer)
		a := wikiRP.newRequest()
		p := b.get(a.url)
		p = b.submit(p, "/login", map[string]string{"email": bob.email, "password": bob.password})
		// Bob has only an authenticator app: no code of it will do.
		if p.location != "" || !strings.Contains(p.body, "security key") || !strings.Contains(p.body, "Members of support") {
			t.Fatalf("status %d at %s (location %q): %s", p.status, p.url, p.location, tail(p.body, 1500))
		}
		if strings.Contains(p.body, `action="/mfa/totp"`) {
			t.Errorf("the page still offers the authenticator app: %s", tail(p.body, 1500))
		}
	})
}
