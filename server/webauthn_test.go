package server_test

// Security keys and passkeys through the whole server, in process: the
// real handlers over a real SQLite store, driven as web/static/webauthn.js
// drives them (JSON bodies, the X-CSRF-Token header, ?challenge= in the
// URL, tokens and flow ids read from the rendered pages), with a pure-Go
// virtual authenticator standing in for navigator.credentials. The same
// ceremonies in a real browser are in e2e/webauthn_test.go.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

const (
	waPassword = "correct horse battery staple"
	waApp      = "https://app.example/cb"
	waWebhook  = "https://alerts.example/keygate"
	// replayReason is what finishSignIn audits for a challenge it cannot take.
	replayReason = "unknown, replayed or expired challenge"
)

// rp is keygate as the authenticator sees it: RP ID localhost (the
// issuer's host), origin the issuer's.
func (in *instance) rp() virtualwebauthn.RelyingParty {
	return virtualwebauthn.RelyingParty{ID: "localhost", Name: "keygate", Origin: in.Issuer}
}

// ---- a browser ----

// agent is a browser: a cookie jar, no automatic redirects.
type agent struct {
	in  *instance
	c   *http.Client
	jar http.CookieJar
}

func (in *instance) newAgent(t *testing.T) *agent {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{in: in, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func isRedirect(status int) bool { return status >= 300 && status < 400 }

func (a *agent) send(t *testing.T, method, target, ctype string, body []byte, header http.Header) servertest.Reply {
	t.Helper()
	return servertest.Read(t, a.c, a.in.Request(t, method, target, ctype, body, header))
}

func (a *agent) get(t *testing.T, target string) servertest.Reply {
	t.Helper()
	return a.send(t, http.MethodGet, target, "", nil, nil)
}

func (a *agent) form(t *testing.T, path string, v url.Values) servertest.Reply {
	t.Helper()
	return a.send(t, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(v.Encode()), nil)
}

// call is webauthn.js's post(): a JSON body and the CSRF token in the
// X-CSRF-Token header ("" sends no header).
func (a *agent) call(t *testing.T, path, csrf string, body []byte) servertest.Reply {
	t.Helper()
	h := http.Header{}
	if csrf != "" {
		h.Set("X-CSRF-Token", csrf)
	}
	return a.send(t, http.MethodPost, path, "application/json", body, h)
}

// follow follows keygate's redirects; it stops at a page, or at a
// redirect that leaves keygate (to the app).
func (a *agent) follow(t *testing.T, r servertest.Reply) servertest.Reply {
	t.Helper()
	base, _ := url.Parse(a.in.Base)
	for range 10 {
		if !isRedirect(r.Status) {
			return r
		}
		loc, err := url.Parse(r.Location())
		if err != nil {
			t.Fatal(err)
		}
		if loc.Host != "" && loc.Host != base.Host {
			return r
		}
		r = a.get(t, base.ResolveReference(loc).String())
	}
	t.Fatalf("too many redirects, last to %s", r.Location())
	return r
}

// addCookie puts a cookie minted outside the server into the jar.
func (a *agent) addCookie(c *http.Cookie) {
	base, _ := url.Parse(a.in.Base)
	a.jar.SetCookies(base, []*http.Cookie{c})
}

var (
	reCSRFField  = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
	reTokenField = regexp.MustCompile(`name="token" value="([^"]*)"`)
	reDataCSRF   = regexp.MustCompile(`data-csrf="([^"]*)"`)
	reDataFlow   = regexp.MustCompile(`data-flow="([^"]*)"`)
)

// ---- the authenticator ----

// vkey is a virtual authenticator holding one credential.
type vkey struct {
	auth         virtualwebauthn.Authenticator
	cred         virtualwebauthn.Credential
	discoverable bool
}

// newKey is a device-bound key, or a synced passkey (backup eligible and
// backed up); a discoverable one answers with its user handle.
func newKey(synced, discoverable bool) *vkey {
	return &vkey{
		auth: virtualwebauthn.NewAuthenticatorWithOptions(virtualwebauthn.AuthenticatorOptions{
			BackupEligible: synced, BackupState: synced,
		}),
		cred:         ec2Credential(),
		discoverable: discoverable,
	}
}

// copyOf is a second copy of the key — same private key, same counter.
func (k *vkey) copyOf() *vkey {
	c := *k
	return &c
}

func (k *vkey) id() []byte { return k.cred.ID }

func (k *vkey) idString() string { return base64.RawURLEncoding.EncodeToString(k.cred.ID) }

// attest answers navigator.credentials.create with the begin call's
// options, adding what a browser adds: credProps and the transports.
func (k *vkey) attest(t *testing.T, options json.RawMessage, rp virtualwebauthn.RelyingParty) []byte {
	t.Helper()
	opts, err := virtualwebauthn.ParseAttestationOptions(string(options))
	if err != nil {
		t.Fatal(err)
	}
	if opts.RelyingPartyID != "localhost" {
		t.Errorf("creation options name RP ID %q, want localhost", opts.RelyingPartyID)
	}
	if k.discoverable {
		k.auth.Options.UserHandle = []byte(opts.UserID)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(virtualwebauthn.CreateAttestationResponse(rp, k.auth, k.cred, *opts)), &m); err != nil {
		t.Fatal(err)
	}
	m["clientExtensionResults"] = map[string]any{"credProps": map[string]any{"rk": k.discoverable}}
	m["authenticatorAttachment"] = "cross-platform"
	m["response"].(map[string]any)["transports"] = []string{"usb"}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assert answers navigator.credentials.get: the counter goes up by one,
// as a real key's does, and the key signs for rp.
func (k *vkey) assert(t *testing.T, options json.RawMessage, rp virtualwebauthn.RelyingParty) []byte {
	t.Helper()
	opts, err := virtualwebauthn.ParseAssertionOptions(string(options))
	if err != nil {
		t.Fatal(err)
	}
	k.cred.Counter++
	return []byte(virtualwebauthn.CreateAssertionResponse(rp, k.auth, k.cred, *opts))
}

// ---- ceremonies ----

// begun is a begin call's answer.
type begun struct {
	Challenge string          `json:"challenge"`
	Options   json.RawMessage `json:"options"`
}

// finished is a finish call's answer (or an error).
type finished struct {
	Next          string   `json:"next"`
	RecoveryCodes []string `json:"recovery_codes"`
	Error         string   `json:"error"`
}

// register runs the registration ceremony as webauthn.js does; the answer
// is the one of the call that ended it.
func (a *agent) register(t *testing.T, csrf string, k *vkey, name string) (servertest.Reply, finished) {
	t.Helper()
	b := a.call(t, "/mfa/webauthn/register/begin", csrf, []byte(`{}`))
	if b.Status != http.StatusOK {
		return b, servertest.Decode[finished](t, b)
	}
	bg := servertest.Decode[begun](t, b)
	body := k.attest(t, bg.Options, a.in.rp())
	f := a.call(t, "/mfa/webauthn/register/finish?challenge="+url.QueryEscape(bg.Challenge)+"&name="+url.QueryEscape(name), csrf, body)
	return f, servertest.Decode[finished](t, f)
}

// begin calls /mfa/webauthn/{kind}/begin for flow, which must succeed.
func (a *agent) begin(t *testing.T, kind, flow, csrf string) begun {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"flow": flow})
	r := a.call(t, "/mfa/webauthn/"+kind+"/begin", csrf, body)
	if r.Status != http.StatusOK {
		t.Fatalf("%s begin: %s", kind, r)
	}
	return servertest.Decode[begun](t, r)
}

// finish posts an assertion to /mfa/webauthn/{kind}/finish.
func (a *agent) finish(t *testing.T, kind, challenge, csrf string, body []byte) (servertest.Reply, finished) {
	t.Helper()
	r := a.call(t, "/mfa/webauthn/"+kind+"/finish?challenge="+url.QueryEscape(challenge), csrf, body)
	return r, servertest.Decode[finished](t, r)
}

// enrol creates a user as an administrator does and follows the enrolment
// link as the user does: set a password, register k. The browser comes
// back signed in; codes are the recovery codes enrolment showed.
func (in *instance) enrol(t *testing.T, email string, k *vkey, keyName string) (userID string, a *agent, codes []string) {
	t.Helper()
	nu, err := in.Manager().CreateUser(t.Context(), manage.UserSpec{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	link, ok := strings.CutPrefix(nu.EnrollmentURL, in.Issuer)
	if !ok {
		t.Fatalf("enrolment link %s is not under the issuer %s", nu.EnrollmentURL, in.Issuer)
	}
	a = in.newAgent(t)
	page := a.get(t, link)
	if page.Status != http.StatusOK {
		t.Fatalf("enrolment page: %s", page)
	}
	r := a.form(t, "/enroll", url.Values{"csrf_token": {servertest.Scrape(t, page, reCSRFField)}, "token": {servertest.Scrape(t, page, reTokenField)},
		"password": {waPassword}, "confirm": {waPassword}})
	if r.Status != http.StatusSeeOther || r.Location() != "/mfa/enroll" {
		t.Fatalf("set password: %s (Location %q)", r, r.Location())
	}
	page = a.get(t, "/mfa/enroll")
	if page.Status != http.StatusOK {
		t.Fatalf("factor page: %s", page)
	}
	r, done := a.register(t, servertest.Scrape(t, page, reDataCSRF), k, keyName)
	if r.Status != http.StatusOK {
		t.Fatalf("register the first key: %s", r)
	}
	return nu.User.ID, a, done.RecoveryCodes
}

// app is the registered client the sign-ins are for.
type app struct{ id, secret string }

func (in *instance) newApp(t *testing.T) app {
	t.Helper()
	nc := in.registerClient(t, manage.ClientSpec{Name: "App", RedirectURIs: []string{waApp}})
	return app{id: nc.Client.ID, secret: nc.Secret}
}

// authorizeURL is the request the app sends the browser with: PKCE S256.
func (ap app) authorizeURL() string {
	return "/oauth2/authorize?" + authorizeQuery(ap.id, waApp, "openid", "email").Encode()
}

// toLogin follows start (an authorize request, or /login) to the sign-in
// page and returns its flow and CSRF token.
func (a *agent) toLogin(t *testing.T, start string) (flow, csrf string) {
	t.Helper()
	page := a.follow(t, a.get(t, start))
	if page.Status != http.StatusOK {
		t.Fatalf("sign-in page: %s", page)
	}
	return servertest.Scrape(t, page, reDataFlow), servertest.Scrape(t, page, reDataCSRF)
}

// toSecondFactor signs in with the password from start and returns the
// flow and the CSRF token of the second-factor page's key button.
func (a *agent) toSecondFactor(t *testing.T, start, email string) (flow, csrf string) {
	t.Helper()
	flow, csrf = a.toLogin(t, start)
	page := a.follow(t, a.form(t, "/login", url.Values{"csrf_token": {csrf}, "flow": {flow},
		"email": {email}, "password": {waPassword}}))
	if page.Status != http.StatusOK || !bytes.Contains(page.Body, []byte(`id="use-key"`)) {
		t.Fatalf("second-factor page with a key button: %s", page)
	}
	if got := servertest.Scrape(t, page, reDataFlow); got != flow {
		t.Fatalf("the key button carries flow %q, want %q", got, flow)
	}
	return flow, servertest.Scrape(t, page, reDataCSRF)
}

// signInWithKey is password then k, from start; the flow must verify.
func (a *agent) signInWithKey(t *testing.T, start, email string, k *vkey) (flow string, done finished) {
	t.Helper()
	flow, csrf := a.toSecondFactor(t, start, email)
	bg := a.begin(t, "assert", flow, csrf)
	r, done := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, a.in.rp()))
	if r.Status != http.StatusOK {
		t.Fatalf("assert finish: %s", r)
	}
	return flow, done
}

// land goes to next, which must send the browser back to the app, and
// redeems the code there (with the PKCE verifier) for the ID token, whose
// claims it returns.
func (a *agent) land(t *testing.T, ap app, next string) map[string]any {
	t.Helper()
	// The sign-in's end answers with the app's code itself: no further hop.
	r := a.get(t, next)
	loc, err := url.Parse(r.Location())
	if err != nil || !isRedirect(r.Status) || loc.Scheme+"://"+loc.Host+loc.Path != waApp {
		t.Fatalf("want a redirect to the app, got %s (Location %q)", r, r.Location())
	}
	q := loc.Query()
	if q.Get("state") != authzState || q.Get("code") == "" {
		t.Fatalf("app redirect %s: want a code and state %s", loc, authzState)
	}
	resp := a.in.postForm(t, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {waApp}, "code_verifier": {pkceVerifier}}, []string{ap.id, ap.secret})
	var tok struct {
		IDToken string `json:"id_token"`
	}
	decodeJSON(t, resp, &tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("code exchange: status %d, id_token %q", resp.StatusCode, tok.IDToken)
	}
	return jwtClaims(t, tok.IDToken)
}

func claimStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// ---- what storage shows ----

func (in *instance) flow(t *testing.T, id string) storage.Flow {
	t.Helper()
	f, err := in.DB.GetFlow(t.Context(), id, time.Now())
	if err != nil {
		t.Fatalf("flow %s: %v", id, err)
	}
	return f
}

func (in *instance) credential(t *testing.T, id []byte) storage.WebAuthnCredential {
	t.Helper()
	c, err := in.DB.GetWebAuthnCredential(t.Context(), id)
	if err != nil {
		t.Fatalf("credential: %v", err)
	}
	return c
}

// wantRefused checks a refused finish: a 400 with a message for the user,
// exactly one mfa.webauthn.refused event since mark for the ceremony with
// a reason naming why, and the flow still waiting for its factor.
func (in *instance) wantRefused(t *testing.T, r servertest.Reply, mark int64, ceremony, reason, flowID, flowState string) {
	t.Helper()
	if r.Status != http.StatusBadRequest {
		t.Errorf("status %d, want 400; body %s", r.Status, r.Body)
	}
	if msg := servertest.Decode[finished](t, r); msg.Error == "" || msg.Next != "" {
		t.Errorf("answer %+v, want an error and no next step", msg)
	}
	ev := in.Events(t, mark, audit.WebAuthnRefused)
	if len(ev) != 1 {
		t.Fatalf("%d %s events, want 1: %+v", len(ev), audit.WebAuthnRefused, ev)
	}
	e := ev[0]
	if e.Result != audit.Failure || e.Details["ceremony"] != ceremony || !strings.Contains(strings.ToLower(e.Details["reason"]), strings.ToLower(reason)) {
		t.Errorf("refusal recorded as result %q, details %v; want failure, ceremony %q, a reason naming %q", e.Result, e.Details, ceremony, reason)
	}
	if got := in.Events(t, mark, audit.SigninSucceeded); len(got) != 0 {
		t.Errorf("a refused assertion signed in: %+v", got)
	}
	if f := in.flow(t, flowID); f.State != flowState || (flowState != storage.FlowVerified && f.ACR != "") {
		t.Errorf("flow state %q, acr %q after a refusal; want %q", f.State, f.ACR, flowState)
	}
}

// ---- the tests ----

func TestWebAuthn(t *testing.T) {
	in := start(t, func(c *server.Config) { c.AlertWebhooks = []string{waWebhook} })
	ap := in.newApp(t)
	ctx := t.Context()

	t.Run("enrolment registers the key, issues recovery codes and signs the browser in", func(t *testing.T) {
		k := newKey(false, false)
		mark := in.AuditMark(t)
		uid, a, codes := in.enrol(t, "enrol@example.com", k, "Blue key")
		if len(codes) == 0 {
			t.Error("enrolment showed no recovery codes")
		}
		if n, err := in.DB.CountRecoveryCodes(ctx, uid); err != nil || n != len(codes) {
			t.Errorf("%d recovery codes stored (%v), %d shown", n, err, len(codes))
		}
		c := in.credential(t, k.id())
		if c.UserID != uid || c.Name != "Blue key" || c.BackupEligible || c.Discoverable || c.SignCount != 0 ||
			!slices.Equal(c.AAGUID, k.auth.Aaguid[:]) || !slices.Equal(c.Transports, []string{"usb"}) {
			t.Errorf("stored credential %+v", c)
		}
		if ev := in.Events(t, mark, audit.WebAuthnRegistered); len(ev) != 1 || ev[0].UserID != uid || ev[0].Details["synced"] != "false" {
			t.Errorf("registration events %+v", ev)
		}
		page := a.get(t, "/account")
		if page.Status != http.StatusOK || !bytes.Contains(page.Body, []byte(`<code id="acr">phrh</code>`)) ||
			!bytes.Contains(page.Body, []byte(k.idString())) {
			t.Errorf("the enrolled browser's account page: %s", page)
		}
	})

	for _, tc := range []struct {
		name   string
		synced bool
		acr    string
		amr    []string
	}{
		{"a registered device-bound key signs in after the password at phrh with amr pwd+hwk", false, "phrh", []string{"pwd", "hwk"}},
		{"a registered synced passkey signs in after the password at phr with amr pwd+swk", true, "phr", []string{"pwd", "swk"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(tc.synced, false)
			email := strings.ReplaceAll(tc.acr+tc.amr[1], " ", "") + "@example.com"
			uid, _, _ := in.enrol(t, email, k, "")
			a := in.newAgent(t)
			flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
			if f := in.flow(t, flow); f.State != storage.FlowSecondFactor || f.UserID != uid {
				t.Fatalf("after the password: flow state %q, user %q", f.State, f.UserID)
			}
			bg := a.begin(t, "assert", flow, csrf)
			opts, err := virtualwebauthn.ParseAssertionOptions(string(bg.Options))
			if err != nil || opts.RelyingPartyID != "localhost" || !slices.Equal(opts.AllowCredentials, []string{k.idString()}) {
				t.Fatalf("request options rpId %q, allowCredentials %v (%v); want localhost and the user's key", opts.RelyingPartyID, opts.AllowCredentials, err)
			}
			mark := in.AuditMark(t)
			r, done := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, in.rp()))
			if r.Status != http.StatusOK || done.Next != "/login/continue?flow="+url.QueryEscape(flow) {
				t.Fatalf("finish: %s", r)
			}
			f := in.flow(t, flow)
			if f.State != storage.FlowVerified || f.UserID != uid || f.ACR != tc.acr || !slices.Equal(f.AMR, tc.amr) || time.Since(f.AuthTime) > time.Minute {
				t.Errorf("flow state %q, user %q, acr %q, amr %v, auth_time %v; want verified, %s, %s, %v, now",
					f.State, f.UserID, f.ACR, f.AMR, f.AuthTime, uid, tc.acr, tc.amr)
			}
			c := in.credential(t, k.id())
			if c.SignCount != k.cred.Counter || time.Since(c.LastUsedAt) > time.Minute || c.BackupState != tc.synced {
				t.Errorf("stored sign count %d (key's %d), last used %v, backup state %v", c.SignCount, k.cred.Counter, c.LastUsedAt, c.BackupState)
			}
			if ev := in.Events(t, mark, audit.WebAuthnRefused); len(ev) != 0 {
				t.Errorf("refusals recorded: %+v", ev)
			}
			claims := a.land(t, ap, done.Next)
			if claims["sub"] != uid || claims["acr"] != tc.acr || !slices.Equal(claimStrings(claims["amr"]), tc.amr) {
				t.Errorf("ID token sub %v, acr %v, amr %v; want %s, %s, %v", claims["sub"], claims["acr"], claims["amr"], uid, tc.acr, tc.amr)
			}
			ev := in.Events(t, mark, audit.SigninSucceeded)
			if len(ev) != 1 || ev[0].UserID != uid || ev[0].ClientID != ap.id || ev[0].Details["acr"] != tc.acr ||
				ev[0].Details["amr"] != strings.Join(tc.amr, " ") {
				t.Errorf("sign-in events %+v", ev)
			}
		})
	}

	t.Run("a discoverable passkey alone signs in without a username with amr hwk+user", func(t *testing.T) {
		k := newKey(false, true)
		uid, _, _ := in.enrol(t, "passwordless@example.com", k, "")
		if c := in.credential(t, k.id()); !c.Discoverable {
			t.Error("credProps rk=true was not stored as discoverable")
		}
		a := in.newAgent(t)
		flow, csrf := a.toLogin(t, ap.authorizeURL())
		bg := a.begin(t, "passwordless", flow, csrf)
		opts, err := virtualwebauthn.ParseAssertionOptions(string(bg.Options))
		if err != nil || len(opts.AllowCredentials) != 0 || !bytes.Contains(bg.Options, []byte(`"userVerification":"required"`)) {
			t.Fatalf("passwordless options %s (%v): want no allowCredentials and user verification required", bg.Options, err)
		}
		mark := in.AuditMark(t)
		r, done := a.finish(t, "passwordless", bg.Challenge, csrf, k.assert(t, bg.Options, in.rp()))
		if r.Status != http.StatusOK {
			t.Fatalf("finish: %s", r)
		}
		f := in.flow(t, flow)
		want := []string{"hwk", "user"}
		if f.State != storage.FlowVerified || f.UserID != uid || f.ACR != "phrh" || !slices.Equal(f.AMR, want) {
			t.Errorf("flow state %q, user %q, acr %q, amr %v; want verified, %s, phrh, %v", f.State, f.UserID, f.ACR, f.AMR, uid, want)
		}
		claims := a.land(t, ap, done.Next)
		if claims["sub"] != uid || !slices.Equal(claimStrings(claims["amr"]), want) {
			t.Errorf("ID token sub %v, amr %v", claims["sub"], claims["amr"])
		}
		if ev := in.Events(t, mark, audit.SigninSucceeded); len(ev) != 1 || ev[0].Details["amr"] != "hwk user" {
			t.Errorf("sign-in events %+v", ev)
		}
	})

	t.Run("an assertion signed for another RP ID is refused and audited", func(t *testing.T) {
		k := newKey(false, false)
		email := "rpid@example.com"
		in.enrol(t, email, k, "")
		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		bg := a.begin(t, "assert", flow, csrf)
		mark := in.AuditMark(t)
		evil := in.rp()
		evil.ID = "localhost.evil.example"
		r, _ := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, evil))
		// The audit keeps go-webauthn's type and details only; the RP ID
		// hash mismatch itself is in DevInfo, which ceremonyError drops.
		in.wantRefused(t, r, mark, "assertion", "verification_error", flow, storage.FlowSecondFactor)
		if c := in.credential(t, k.id()); c.SignCount != 0 || !c.LastUsedAt.IsZero() {
			t.Errorf("a refused assertion was recorded as a use: sign count %d, last used %v", c.SignCount, c.LastUsedAt)
		}
	})

	t.Run("an assertion whose client data names another origin (a phishing proxy) is refused and audited", func(t *testing.T) {
		k := newKey(false, false)
		email := "phished@example.com"
		in.enrol(t, email, k, "")
		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		bg := a.begin(t, "assert", flow, csrf)
		mark := in.AuditMark(t)
		proxy := in.rp()
		proxy.Origin = "https://keygate-login.example"
		r, _ := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, proxy))
		in.wantRefused(t, r, mark, "assertion", "origin", flow, storage.FlowSecondFactor)

		// Passwordless is held to the same origin.
		k2 := newKey(true, true)
		in.enrol(t, "phished2@example.com", k2, "")
		flow, csrf = a.toLogin(t, ap.authorizeURL())
		bg = a.begin(t, "passwordless", flow, csrf)
		mark = in.AuditMark(t)
		r, _ = a.finish(t, "passwordless", bg.Challenge, csrf, k2.assert(t, bg.Options, proxy))
		in.wantRefused(t, r, mark, "passwordless", "origin", flow, storage.FlowIdentify)
	})

	t.Run("a replayed challenge (finish twice with the same challenge id) is refused the second time", func(t *testing.T) {
		k := newKey(false, false)
		email := "replay@example.com"
		in.enrol(t, email, k, "")
		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		bg := a.begin(t, "assert", flow, csrf)
		body := k.assert(t, bg.Options, in.rp())
		if r, _ := a.finish(t, "assert", bg.Challenge, csrf, body); r.Status != http.StatusOK {
			t.Fatalf("first finish: %s", r)
		}
		mark := in.AuditMark(t)
		r, _ := a.finish(t, "assert", bg.Challenge, csrf, body)
		in.wantRefused(t, r, mark, "assertion", replayReason, flow, storage.FlowVerified)
		if c := in.credential(t, k.id()); c.SignCount != 1 {
			t.Errorf("sign count %d after a replay, want 1", c.SignCount)
		}

		// A different, valid assertion over the used challenge is refused too.
		flow2, csrf2 := a.toSecondFactor(t, ap.authorizeURL(), email)
		mark = in.AuditMark(t)
		r, _ = a.finish(t, "assert", bg.Challenge, csrf2, k.assert(t, bg.Options, in.rp()))
		in.wantRefused(t, r, mark, "assertion", replayReason, flow2, storage.FlowSecondFactor)
	})

	t.Run("a challenge that a refused assertion used cannot be retried", func(t *testing.T) {
		k := newKey(false, false)
		email := "retry@example.com"
		in.enrol(t, email, k, "")
		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		bg := a.begin(t, "assert", flow, csrf)
		proxy := in.rp()
		proxy.Origin = "https://keygate-login.example"
		if r, _ := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, proxy)); r.Status != http.StatusBadRequest {
			t.Fatalf("phished finish: %s", r)
		}
		mark := in.AuditMark(t)
		r, _ := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, in.rp()))
		in.wantRefused(t, r, mark, "assertion", replayReason, flow, storage.FlowSecondFactor)
	})

	t.Run("an expired challenge is refused", func(t *testing.T) {
		k := newKey(false, false)
		email := "expired@example.com"
		in.enrol(t, email, k, "")
		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		bg := a.begin(t, "assert", flow, csrf)
		// Time passes: the row is written back with its expiry behind us,
		// as it would read five minutes on.
		ch, err := in.DB.ConsumeChallenge(ctx, bg.Challenge, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ch.Kind != "assertion" || ch.FlowID != flow || ch.ExpiresAt.Sub(ch.CreatedAt) != 5*time.Minute {
			t.Errorf("stored challenge %+v: want an assertion for the flow, valid 5 minutes", ch)
		}
		ch.CreatedAt, ch.ExpiresAt = ch.CreatedAt.Add(-6*time.Minute), ch.ExpiresAt.Add(-6*time.Minute)
		if err := in.DB.CreateChallenge(ctx, ch); err != nil {
			t.Fatal(err)
		}
		mark := in.AuditMark(t)
		r, _ := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, in.rp()))
		in.wantRefused(t, r, mark, "assertion", replayReason, flow, storage.FlowSecondFactor)
		if _, err := in.DB.ConsumeChallenge(ctx, bg.Challenge, time.Now().Add(-time.Hour)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the expired challenge is still stored: %v", err)
		}
		// A new ceremony on the same flow works.
		bg = a.begin(t, "assert", flow, csrf)
		if r, _ := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, in.rp())); r.Status != http.StatusOK {
			t.Errorf("a fresh challenge after the expired one: %s", r)
		}
	})

	t.Run("a key never registered is refused", func(t *testing.T) {
		k := newKey(false, true)
		email := "unknown@example.com"
		uid, _, _ := in.enrol(t, email, k, "")
		stranger := newKey(false, true)
		stranger.auth.Options.UserHandle = []byte(uid) // claims to be the user's passkey

		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		bg := a.begin(t, "assert", flow, csrf)
		mark := in.AuditMark(t)
		r, _ := a.finish(t, "assert", bg.Challenge, csrf, stranger.assert(t, bg.Options, in.rp()))
		in.wantRefused(t, r, mark, "assertion", "credential", flow, storage.FlowSecondFactor)

		flow, csrf = a.toLogin(t, ap.authorizeURL())
		bg = a.begin(t, "passwordless", flow, csrf)
		mark = in.AuditMark(t)
		r, _ = a.finish(t, "passwordless", bg.Challenge, csrf, stranger.assert(t, bg.Options, in.rp()))
		in.wantRefused(t, r, mark, "passwordless", "credential", flow, storage.FlowIdentify)
		if _, err := in.DB.GetWebAuthnCredential(ctx, stranger.id()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the stranger's key is stored: %v", err)
		}
	})

	t.Run("a challenge bound to another browser session is refused", func(t *testing.T) {
		k := newKey(false, false)
		email := "bound@example.com"
		in.enrol(t, email, k, "")
		victim := in.newAgent(t)
		vflow, vcsrf := victim.toSecondFactor(t, ap.authorizeURL(), email)
		bg := victim.begin(t, "assert", vflow, vcsrf)
		body := k.assert(t, bg.Options, in.rp()) // a valid answer to the victim's challenge

		// Someone with the password, in their own session, presents it.
		attacker := in.newAgent(t)
		aflow, acsrf := attacker.toSecondFactor(t, ap.authorizeURL(), email)
		mark := in.AuditMark(t)
		r, _ := attacker.finish(t, "assert", bg.Challenge, acsrf, body)
		in.wantRefused(t, r, mark, "assertion", replayReason, vflow, storage.FlowSecondFactor)
		if f := in.flow(t, aflow); f.State != storage.FlowSecondFactor {
			t.Errorf("the attacker's flow is %q", f.State)
		}
		// The victim's own session cannot be borrowed either: its cookie is
		// not the attacker's to send, and its flow is bound to it.
		r = attacker.call(t, "/mfa/webauthn/assert/begin", acsrf, []byte(`{"flow":"`+vflow+`"}`))
		if r.Status != http.StatusForbidden {
			t.Errorf("beginning on the victim's flow from another session: %s, want 403", r)
		}
	})

	t.Run("a disabled key is refused", func(t *testing.T) {
		k, spare := newKey(false, false), newKey(false, false)
		email := "disabled@example.com"
		_, enrolled, _ := in.enrol(t, email, k, "")
		page := enrolled.get(t, "/account")
		if r, _ := enrolled.register(t, servertest.Scrape(t, page, reDataCSRF), spare, "Spare"); r.Status != http.StatusOK {
			t.Fatalf("register the spare key: %s", r)
		}

		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		bg := a.begin(t, "assert", flow, csrf)
		// An administrator disables the key while the user is at the prompt.
		if err := in.DB.DisableWebAuthnCredential(ctx, k.id(), "reported lost", time.Now()); err != nil {
			t.Fatal(err)
		}
		mark := in.AuditMark(t)
		r, _ := a.finish(t, "assert", bg.Challenge, csrf, k.assert(t, bg.Options, in.rp()))
		in.wantRefused(t, r, mark, "assertion", "credential", flow, storage.FlowSecondFactor)

		// The next ceremony no longer offers it; the spare still works.
		bg = a.begin(t, "assert", flow, csrf)
		opts, err := virtualwebauthn.ParseAssertionOptions(string(bg.Options))
		if err != nil || !slices.Equal(opts.AllowCredentials, []string{spare.idString()}) {
			t.Errorf("allowCredentials %v (%v), want only the spare key", opts.AllowCredentials, err)
		}
		if r, _ := a.finish(t, "assert", bg.Challenge, csrf, spare.assert(t, bg.Options, in.rp())); r.Status != http.StatusOK {
			t.Errorf("the spare key: %s", r)
		}

		// A user whose only key is disabled is not offered a key at all.
		solo := newKey(false, true)
		uid, _, _ := in.enrol(t, "disabled2@example.com", solo, "")
		if err := in.DB.DisableWebAuthnCredential(ctx, solo.id(), "reported lost", time.Now()); err != nil {
			t.Fatal(err)
		}
		b := in.newAgent(t)
		lflow, lcsrf := b.toLogin(t, ap.authorizeURL())
		page = b.follow(t, b.form(t, "/login", url.Values{"csrf_token": {lcsrf}, "flow": {lflow},
			"email": {"disabled2@example.com"}, "password": {waPassword}}))
		if page.Status != http.StatusOK || bytes.Contains(page.Body, []byte(`id="use-key"`)) {
			t.Errorf("second-factor page offers a disabled key: %s", page)
		}
		body, _ := json.Marshal(map[string]string{"flow": lflow})
		if r := b.call(t, "/mfa/webauthn/assert/begin", lcsrf, body); r.Status != http.StatusBadRequest {
			t.Errorf("begin with only a disabled key: %s, want 400", r)
		}
		// Nor does it sign in as a passkey.
		pflow, pcsrf := b.toLogin(t, ap.authorizeURL())
		bg = b.begin(t, "passwordless", pflow, pcsrf)
		mark = in.AuditMark(t)
		r, _ = b.finish(t, "passwordless", bg.Challenge, pcsrf, solo.assert(t, bg.Options, in.rp()))
		in.wantRefused(t, r, mark, "passwordless", "credential", pflow, storage.FlowIdentify)
		if c := in.credential(t, solo.id()); c.UserID != uid || c.DisabledReason != "reported lost" || c.SignCount != 0 {
			t.Errorf("disabled credential %+v", c)
		}
	})

	t.Run("a sign count going backwards disables the key, is audited and queues an alert", func(t *testing.T) {
		k := newKey(false, false)
		email := "cloned@example.com"
		uid, _, _ := in.enrol(t, email, k, "")
		copied := k.copyOf() // the clone, taken now
		k.cred.Counter = 41  // the original is used for a while
		a := in.newAgent(t)
		a.signInWithKey(t, ap.authorizeURL(), email, k)
		if c := in.credential(t, k.id()); c.SignCount != 42 {
			t.Fatalf("stored sign count %d, want 42", c.SignCount)
		}

		b := in.newAgent(t)
		flow, csrf := b.toSecondFactor(t, ap.authorizeURL(), email)
		bg := b.begin(t, "assert", flow, csrf)
		mark := in.AuditMark(t)
		r, msg := b.finish(t, "assert", bg.Challenge, csrf, copied.assert(t, bg.Options, in.rp()))
		if r.Status != http.StatusForbidden || !strings.Contains(msg.Error, "disabled") {
			t.Errorf("the clone's assertion: %s, want 403 saying the key is disabled", r)
		}
		c := in.credential(t, k.id())
		if c.DisabledAt.IsZero() || !strings.Contains(c.DisabledReason, "cloned") || c.SignCount != 42 {
			t.Errorf("credential after the clone: disabled at %v (%q), sign count %d; want disabled, 42", c.DisabledAt, c.DisabledReason, c.SignCount)
		}
		ev := in.Events(t, mark, audit.WebAuthnCloneSuspected)
		if len(ev) != 1 || ev[0].UserID != uid || ev[0].Result != audit.Denied || ev[0].Details["stored_sign_count"] != "42" ||
			ev[0].Details["presented_sign_count"] != "1" || ev[0].Details["action"] != "key disabled" {
			t.Fatalf("clone events %+v", ev)
		}
		if f := in.flow(t, flow); f.State != storage.FlowSecondFactor {
			t.Errorf("flow %q after a clone", f.State)
		}
		due, err := storage.PendingOutbox(ctx, in.DB, time.Now().Add(time.Minute), 1000)
		if err != nil {
			t.Fatal(err)
		}
		var alerts []audit.Alert
		for _, m := range due {
			var al audit.Alert
			if m.Kind == audit.OutboxAlert && m.Target == waWebhook && json.Unmarshal(m.Payload, &al) == nil &&
				al.Type == audit.WebAuthnCloneSuspected && al.UserID == uid {
				alerts = append(alerts, al)
			}
		}
		if len(alerts) != 1 || alerts[0].Seq != ev[0].Seq || alerts[0].Details["presented_sign_count"] != "1" {
			t.Errorf("queued clone alerts %+v, want one for event %d", alerts, ev[0].Seq)
		}
		// The original is disabled too: nothing is offered any more.
		body, _ := json.Marshal(map[string]string{"flow": flow})
		if r := b.call(t, "/mfa/webauthn/assert/begin", csrf, body); r.Status != http.StatusBadRequest {
			t.Errorf("begin after the clone: %s, want 400", r)
		}
	})

	t.Run("a missing or wrong X-CSRF-Token is 403 and consumes nothing", func(t *testing.T) {
		k := newKey(false, false)
		email := "csrf@example.com"
		_, enrolled, _ := in.enrol(t, email, k, "")
		_, foreign := in.newAgent(t).toLogin(t, "/login") // another session's valid token

		a := in.newAgent(t)
		flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
		flowBody, _ := json.Marshal(map[string]string{"flow": flow})
		p := in.newAgent(t)
		pflow, _ := p.toLogin(t, ap.authorizeURL())
		pflowBody, _ := json.Marshal(map[string]string{"flow": pflow})
		for _, tok := range []struct{ what, value string }{{"missing", ""}, {"another session's", foreign}, {"garbage", "x" + csrf}} {
			for _, c := range []struct {
				path string
				a    *agent
				body []byte
			}{
				{"/mfa/webauthn/assert/begin", a, flowBody},
				{"/mfa/webauthn/passwordless/begin", p, pflowBody},
				{"/mfa/webauthn/register/begin", enrolled, []byte(`{}`)},
			} {
				if r := c.a.call(t, c.path, tok.value, c.body); r.Status != http.StatusForbidden {
					t.Errorf("%s with a %s token: %s, want 403", c.path, tok.what, r)
				}
			}
		}
		bg := a.begin(t, "assert", flow, csrf)
		body := k.assert(t, bg.Options, in.rp())
		for _, tok := range []string{"", foreign} {
			if r, _ := a.finish(t, "assert", bg.Challenge, tok, body); r.Status != http.StatusForbidden {
				t.Errorf("finish with token %q: %s, want 403", tok, r)
			}
		}
		if f := in.flow(t, flow); f.State != storage.FlowSecondFactor {
			t.Errorf("flow %q after forged finishes", f.State)
		}
		if r, _ := a.finish(t, "assert", bg.Challenge, csrf, body); r.Status != http.StatusOK {
			t.Errorf("the real finish after forged ones: %s (the forgeries must not use up the challenge)", r)
		}
	})

	t.Run("adding a key from the account page needs a fresh key tap; the last key cannot be removed", func(t *testing.T) {
		k, second := newKey(false, false), newKey(true, true)
		email := "account@example.com"
		uid, _, _ := in.enrol(t, email, k, "")
		remove := func(a *agent, csrf string, key *vkey) servertest.Reply {
			return a.form(t, "/mfa/keys/remove", url.Values{"csrf_token": {csrf}, "id": {key.idString()}})
		}

		for _, s := range []struct {
			what string
			auth session.Auth
		}{
			{"a password and app code just now", session.Auth{UserID: uid, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()}},
			{"a key tap 10 minutes ago", session.Auth{UserID: uid, ACR: session.ACRPhrh, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now().Add(-10 * time.Minute)}},
		} {
			stale := in.newAgent(t)
			stale.addCookie(in.Mint(t, s.auth).Cookie)
			page := stale.get(t, "/account")
			if page.Status != http.StatusOK {
				t.Fatalf("account page: %s", page)
			}
			csrf := servertest.Scrape(t, page, reDataCSRF)
			mark := in.AuditMark(t)
			if r, msg := stale.register(t, csrf, second, ""); r.Status != http.StatusForbidden || !strings.Contains(msg.Error, "5 minutes") {
				t.Errorf("register after %s: %s, want 403", s.what, r)
			}
			if r := remove(stale, csrf, k); r.Status != http.StatusForbidden {
				t.Errorf("remove after %s: %s, want 403", s.what, r)
			}
			if ev := in.Events(t, mark, ""); len(ev) != 0 {
				t.Errorf("refused key changes recorded events: %+v", ev)
			}
		}
		if _, err := in.DB.GetWebAuthnCredential(ctx, second.id()); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the key was registered without a fresh tap: %v", err)
		}

		// A fresh sign-in with the key (to keygate itself, not an app).
		a := in.newAgent(t)
		_, done := a.signInWithKey(t, "/login", email, k)
		page := a.follow(t, a.get(t, done.Next))
		if page.Status != http.StatusOK || !bytes.Contains(page.Body, []byte(`id="add-key"`)) {
			t.Fatalf("account page after a key sign-in: %s", page)
		}
		csrf := servertest.Scrape(t, page, reDataCSRF)

		if r := remove(a, csrf, k); r.Status != http.StatusConflict || !bytes.Contains(r.Body, []byte("only key")) {
			t.Errorf("removing the only key: %s, want 409", r)
		}
		in.credential(t, k.id())

		mark := in.AuditMark(t)
		r, fin := a.register(t, csrf, second, "Phone")
		if r.Status != http.StatusOK || fin.Next != "/account" || len(fin.RecoveryCodes) != 0 {
			t.Fatalf("register after a fresh tap: %s", r)
		}
		if c := in.credential(t, second.id()); c.UserID != uid || c.Name != "Phone" || !c.BackupEligible || !c.Discoverable {
			t.Errorf("stored second key %+v", c)
		}
		if ev := in.Events(t, mark, audit.WebAuthnRegistered); len(ev) != 1 || ev[0].Details["synced"] != "true" {
			t.Errorf("registration events %+v", ev)
		}
		// Registering the same key again is a conflict, not a second row.
		if r, _ := a.register(t, csrf, second, ""); r.Status != http.StatusConflict {
			t.Errorf("registering a key twice: %s, want 409", r)
		}

		if r := remove(a, csrf, k); r.Status != http.StatusSeeOther || r.Location() != "/account" {
			t.Errorf("removing one of two keys: %s, want a redirect to /account", r)
		}
		if _, err := in.DB.GetWebAuthnCredential(ctx, k.id()); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the removed key is still stored: %v", err)
		}
		if ev := in.Events(t, mark, audit.WebAuthnRemoved); len(ev) != 1 || ev[0].UserID != uid {
			t.Errorf("removal events %+v", ev)
		}
		if r := remove(a, csrf, second); r.Status != http.StatusConflict {
			t.Errorf("removing the last remaining key: %s, want 409", r)
		}
		in.credential(t, second.id())
	})
}

// A refused sign-in uses its challenge up, whatever refused it: the right
// answer to the same challenge afterwards is refused as a replay. One
// challenge is one try.
func TestWebAuthnRefusalUsesUpTheChallenge(t *testing.T) {
	in := start(t)
	ap := in.newApp(t)
	for _, tc := range []struct {
		name, email string
		kind        string // of the endpoints: "assert" or "passwordless"
		ceremony    string // as audited
		answer      string // in the refusal of the wrong answer
		// wrong is a refused answer to bg, for the user uid whose key is k.
		wrong func(t *testing.T, uid string, k *vkey, bg begun) []byte
	}{
		{"a wrong signature", "forged@example.com", "assert", "assertion", "not accepted", func(t *testing.T, _ string, k *vkey, bg begun) []byte {
			forger := newKey(false, true) // another private key behind the user's key id
			forger.cred.ID = k.cred.ID
			return forger.assert(t, bg.Options, in.rp())
		}},
		{"a key never registered", "stranger@example.com", "passwordless", "passwordless", "not accepted", func(t *testing.T, uid string, _ *vkey, bg begun) []byte {
			stranger := newKey(false, true)
			stranger.auth.Options.UserHandle = []byte(uid) // claims to be the user's passkey
			return stranger.assert(t, bg.Options, in.rp())
		}},
		{"an answer that cannot be read", "garbled@example.com", "assert", "assertion", "could not be read", func(*testing.T, string, *vkey, begun) []byte {
			return []byte(`{"id":`)
		}},
		{"a copy of the key, its sign count behind", "copied@example.com", "assert", "assertion", "may have been copied", func(t *testing.T, _ string, k *vkey, bg begun) []byte {
			clone := k.copyOf()
			if err := in.DB.RecordWebAuthnUse(t.Context(), k.id(), 42, false, time.Now()); err != nil {
				t.Fatal(err)
			}
			k.cred.Counter = 42 // the original's next answer says 43
			return clone.assert(t, bg.Options, in.rp())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(false, true)
			uid, _, _ := in.enrol(t, tc.email, k, "")
			a := in.newAgent(t)
			var flow, csrf, waiting string
			if tc.kind == "assert" {
				flow, csrf = a.toSecondFactor(t, ap.authorizeURL(), tc.email)
				waiting = storage.FlowSecondFactor
			} else {
				flow, csrf = a.toLogin(t, ap.authorizeURL())
				waiting = storage.FlowIdentify
			}
			bg := a.begin(t, tc.kind, flow, csrf)
			if r, msg := a.finish(t, tc.kind, bg.Challenge, csrf, tc.wrong(t, uid, k, bg)); r.Status == http.StatusOK || !strings.Contains(msg.Error, tc.answer) {
				t.Fatalf("the wrong answer: %s, want a refusal saying %q", r, tc.answer)
			}
			mark := in.AuditMark(t)
			r, _ := a.finish(t, tc.kind, bg.Challenge, csrf, k.assert(t, bg.Options, in.rp()))
			in.wantRefused(t, r, mark, tc.ceremony, replayReason, flow, waiting)
		})
	}
}

// Of requests presenting one valid assertion at once (a double submit, a
// retry racing the original), exactly one signs in and the others are
// answered as replays; the key's use is recorded once, and an answer
// finding the sign count its twin just recorded is no sign of a clone.
func TestWebAuthnConcurrentFinish(t *testing.T) {
	in := start(t)
	ap := in.newApp(t)
	k := newKey(false, false)
	email := "racing@example.com"
	in.enrol(t, email, k, "")
	a := in.newAgent(t)
	flow, csrf := a.toSecondFactor(t, ap.authorizeURL(), email)
	bg := a.begin(t, "assert", flow, csrf)
	body := k.assert(t, bg.Options, in.rp())
	mark := in.AuditMark(t)

	replies := make([]servertest.Reply, 8)
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replies {
		wg.Go(func() {
			<-ready
			replies[i] = a.call(t, "/mfa/webauthn/assert/finish?challenge="+url.QueryEscape(bg.Challenge), csrf, body)
		})
	}
	close(ready)
	wg.Wait()

	won, replayed := 0, 0
	for _, r := range replies {
		msg := servertest.Decode[finished](t, r)
		switch {
		case r.Status == http.StatusOK && msg.Next == "/login/continue?flow="+url.QueryEscape(flow):
			won++
		case r.Status == http.StatusBadRequest && strings.Contains(msg.Error, "already used"):
			replayed++
		default:
			t.Errorf("a finish answered %s", r)
		}
	}
	if won != 1 || replayed != len(replies)-1 {
		t.Fatalf("%d finishes signed in and %d were told the challenge was used, want 1 and %d", won, replayed, len(replies)-1)
	}
	if f := in.flow(t, flow); f.State != storage.FlowVerified {
		t.Errorf("flow %q, want verified", f.State)
	}
	c := in.credential(t, k.id())
	if c.SignCount != k.cred.Counter || c.LastUsedAt.IsZero() || !c.DisabledAt.IsZero() {
		t.Errorf("credential after the race: sign count %d (key's %d), last used %v, disabled %v (%q)",
			c.SignCount, k.cred.Counter, c.LastUsedAt, c.DisabledAt, c.DisabledReason)
	}
	if ev := in.Events(t, mark, audit.WebAuthnCloneSuspected); len(ev) != 0 {
		t.Errorf("the race was taken for a clone: %+v", ev)
	}
	ev := in.Events(t, mark, audit.WebAuthnRefused)
	for _, e := range ev {
		if e.Details["reason"] != replayReason {
			t.Errorf("a loser was refused for %q, want %q", e.Details["reason"], replayReason)
		}
	}
	if len(ev) != replayed {
		t.Errorf("%d refusals audited, want %d", len(ev), replayed)
	}
}

// ec2Credential is a virtual credential whose P-256 coordinates are full
// length: virtualwebauthn encodes x and y without left-padding, so about
// one key in 64 comes out 31 bytes long, which real authenticators never
// send and go-webauthn rightly refuses.
func ec2Credential() virtualwebauthn.Credential {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		if len(k.X.Bytes()) != 32 || len(k.Y.Bytes()) != 32 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)
	}
}
