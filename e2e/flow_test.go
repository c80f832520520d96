package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp/totp"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

const testPassword = "correct horse battery staple"

// account is an enrolled user as the test knows them.
type account struct {
	email, password, totpSecret string
	recovery                    []string
}

// enroll completes an enrolment link through the real pages: set the
// password, read the TOTP secret off the page, confirm a code, and keep
// the recovery codes shown once.
func enroll(t *testing.T, b *browser, link, email string) account {
	t.Helper()
	p := b.get(link)
	p = b.submit(p, "/enroll", map[string]string{"password": testPassword, "confirm": testPassword})
	if p.url.Path != "/mfa/enroll" {
		t.Fatalf("after setting the password: %s (%d) %s", p.url, p.status, p.alert())
	}
	p = b.get(b.origin + "/mfa/totp/enroll") // "Use an authenticator app instead"
	secretNode := p.byID("secret")
	if secretNode == nil {
		t.Fatal("enrolment page shows no secret")
	}
	secret := attr(secretNode, "data-secret")
	if link := p.byID("otpauth"); link == nil || !strings.HasPrefix(attr(link, "href"), "otpauth://totp/") {
		t.Fatal("enrolment page has no otpauth:// link")
	}
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p = b.submit(p, "/mfa/totp/enroll", map[string]string{"code": code})
	list := p.byID("recovery-codes")
	if list == nil {
		t.Fatalf("no recovery codes after TOTP confirmation (%d): %s", p.status, p.alert())
	}
	codes := strings.Fields(textOf(list))
	if len(codes) != 10 {
		t.Fatalf("want 10 recovery codes, got %v", codes)
	}
	return account{email: email, password: testPassword, totpSecret: secret, recovery: codes}
}

// nextCode is a TOTP code one step ahead: the current step may already be
// used (enrolment used it), and keygate accepts one step of skew.
func nextCode(t *testing.T, secret string) string {
	code, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// rp is a stock relying party: x/oauth2 + go-oidc, nothing of keygate.
type rp struct {
	cfg      oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

func newRP(t *testing.T, issuer, clientID, secret, redirect string) *rp {
	t.Helper()
	provider, err := oidc.NewProvider(t.Context(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &rp{
		cfg: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(),
			RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "email", "profile", "offline_access"}},
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

// authRequest is one authorization request's secrets, kept by the RP.
type authRequest struct {
	url, state, nonce, verifier string
}

func (r *rp) newRequest(extra ...oauth2.AuthCodeOption) authRequest {
	a := authRequest{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce)}, extra...)
	a.url = r.cfg.AuthCodeURL(a.state, opts...)
	return a
}

// callback checks the redirect back to the app and returns its code.
func (a authRequest) callback(t *testing.T, p *page, redirect string) string {
	t.Helper()
	if !strings.HasPrefix(p.location, redirect) {
		t.Fatalf("expected a redirect to the app, got %d at %s (location %q): %s", p.status, p.url, p.location, p.alert())
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != a.state {
		t.Fatalf("state not returned intact")
	}
	return q.Get("code")
}

// exchange redeems the code and verifies the ID token as any RP would.
func (r *rp) exchange(t *testing.T, a authRequest, code string) (*oauth2.Token, *oidc.IDToken, idClaims) {
	t.Helper()
	tok, err := r.cfg.Exchange(t.Context(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != a.nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, a.nonce)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return tok, idt, c
}

type idClaims struct {
	Sub      string   `json:"sub"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	SID      string   `json:"sid"`
}

// signIn runs an authorization request in b through the password and
// second-factor pages; secondFactor is "totp" or "recovery".
func signIn(t *testing.T, b *browser, a authRequest, acct account, secondFactor, code string) *page {
	t.Helper()
	p := b.get(a.url)
	if p.url.Path != "/login" {
		t.Fatalf("expected the sign-in page, got %s (%d)", p.url, p.status)
	}
	p = b.submit(p, "/login", map[string]string{"email": acct.email, "password": acct.password})
	switch secondFactor {
	case "totp":
		if p.url.Path != "/mfa/verify" {
			t.Fatalf("expected the TOTP page after the password, got %s (%d): %s", p.url, p.status, p.alert())
		}
		return b.submit(p, "/mfa/totp", map[string]string{"code": code})
	default:
		// Follow the page's own "use a recovery code" link.
		var href string
		walk(p.doc, func(n *html.Node) {
			if href == "" && n.Type == html.ElementNode && n.Data == "a" && strings.HasPrefix(attr(n, "href"), "/mfa/recovery") {
				href = attr(n, "href")
			}
		})
		if href == "" {
			t.Fatalf("the TOTP page offers no recovery code link")
		}
		p = b.get(b.origin + href)
		return b.submit(p, "/mfa/recovery", map[string]string{"code": code})
	}
}

// postForm makes a POST authenticated with client_secret_basic (none
// without a clientID) and decodes the JSON answer.
func postForm(t *testing.T, endpoint, clientID, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	method := "client_secret_basic"
	if clientID == "" {
		method = ""
	}
	return clientPost(t, endpoint, method, clientID, secret, form)
}

func introspect(t *testing.T, issuer, clientID, secret, token string) map[string]any {
	t.Helper()
	status, body := postForm(t, issuer+"/oauth2/introspect", clientID, secret, url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspect: %d %v", status, body)
	}
	return body
}

func refresh(ctx context.Context, cfg oauth2.Config, rt string) (*oauth2.Token, error) {
	return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
}
