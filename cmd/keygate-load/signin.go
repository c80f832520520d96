package main

// The sign-in modes: people signing in through keygate's pages, as a
// browser does it, each sign-in ending where an app's starts — an
// authorization code redeemed for tokens whose ID token names the user.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Sign-in modes.
const (
	modeSignInTOTP    = "signin-totp"    // password, then a TOTP code
	modeSignInPasskey = "signin-passkey" // a discoverable passkey alone
	modeSSO           = "sso"            // a signed-in browser, to another app
	modeRefresh       = "refresh"        // refresh_token grant, rotating
)

func isSignInMode(mode string) bool {
	switch mode {
	case modeSignInTOTP, modeSignInPasskey, modeSSO, modeRefresh:
		return true
	}
	return false
}

// appRedirect is the app's redirect URI: never visited, the generator reads
// the code from keygate's redirect to it.
const appRedirect = "https://app.load.example/cb"

// totpPeriod is keygate's TOTP step. A code's step is single-use per user:
// keygate refuses a step at or below the last one used.
const totpPeriod = 30

// site is keygate as the sign-in modes see it: where it is, the issuer it
// names, the app people sign in to and the keys its ID tokens are signed
// with.
type site struct {
	client   *http.Client
	base     *url.URL
	issuer   string
	rp       virtualwebauthn.RelyingParty
	keys     jwks
	prov     provisioner
	app      appCreds
	password string // every generated user's
	runID    string // keeps the users of one run apart from another's
	now      func() time.Time
	// idTokenAlg is the algorithm the app registered for its ID tokens,
	// which they must be signed with.
	idTokenAlg string
}

// account is a generated user and what their browser and authenticator
// hold. Each is driven by one worker only.
type account struct {
	user       newUser
	totpSecret string
	lastStep   int64 // the last TOTP step used
	key        *passkey
	cookies    map[string]string // the browser's: the device cookie, and a session for sso
	refresh    string            // the current refresh token
}

func (s *site) browser(cookies map[string]string) *browser {
	return newBrowser(s.client, s.base, cookies)
}

// discover reads the issuer and the signing keys, and checks the issuer is
// one the generator may use: a loopback host, like the base.
func (s *site) discover(ctx context.Context) error {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	raw, err := s.getJSON(ctx, "/.well-known/openid-configuration", &doc)
	if err != nil {
		return err
	}
	iss, err := loopbackURL(doc.Issuer)
	if err != nil || doc.Issuer == "" {
		return fmt.Errorf("discovery names issuer %q: want a loopback URL (%v)", doc.Issuer, err)
	}
	s.issuer = doc.Issuer
	s.rp = virtualwebauthn.RelyingParty{ID: iss.Hostname(), Name: "keygate", Origin: iss.Scheme + "://" + iss.Host}
	jwksURL, err := url.Parse(doc.JWKSURI)
	if err != nil {
		return fmt.Errorf("discovery: jwks_uri %q: %w (%.200s)", doc.JWKSURI, err, raw)
	}
	var keys json.RawMessage
	if _, err := s.getJSON(ctx, jwksURL.Path, &keys); err != nil {
		return err
	}
	s.keys, err = parseJWKS(keys)
	return err
}

func (s *site) getJSON(ctx context.Context, path string, v any) ([]byte, error) {
	r, err := s.browser(nil).get(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if r.status != 200 || json.Unmarshal(r.body, v) != nil {
		return r.body, unexpected("GET "+path, r)
	}
	return r.body, nil
}

// authz is one authorization request's secrets: what the app keeps.
type authz struct {
	state, nonce, verifier string
}

func newAuthz() authz {
	return authz{state: rand.Text(), nonce: rand.Text(), verifier: rand.Text() + rand.Text()}
}

// authorizePath is the app sending the browser to keygate: code flow with
// PKCE S256.
func (s *site) authorizePath(a authz, scope string) string {
	sum := sha256.Sum256([]byte(a.verifier))
	return "/oauth2/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {s.app.ID}, "redirect_uri": {appRedirect},
		"scope": {scope}, "state": {a.state}, "nonce": {a.nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
}

// tokens is a token endpoint's answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

// redeem is the app's side of a sign-in: the browser came back to the app
// at to; the code it carries is redeemed, and the ID token must be
// keygate's, for this app and nonce, naming sub.
func (s *site) redeem(ctx context.Context, to *url.URL, a authz, sub string) (tokens, error) {
	if to == nil {
		return tokens{}, badBody("back to the app", []byte("the sign-in ended on a keygate page"))
	}
	q := to.Query()
	if to.Scheme+"://"+to.Host+to.Path != appRedirect || q.Get("state") != a.state || q.Get("code") == "" {
		return tokens{}, badBody("back to the app", []byte(to.Redacted()))
	}
	tok, err := s.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {appRedirect}, "code_verifier": {a.verifier}})
	if err != nil {
		return tok, err
	}
	if err := s.keys.verifyIDToken(tok.IDToken, s.idTokenAlg, s.issuer, s.app.ID, a.nonce, sub, s.now()); err != nil {
		return tok, badBody("code redemption", []byte(err.Error()))
	}
	return tok, nil
}

// token posts form to the token endpoint as the app (client_secret_basic).
func (s *site) token(ctx context.Context, form url.Values) (tokens, error) {
	u := *s.base
	u.Path += "/oauth2/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(s.app.ID), url.QueryEscape(s.app.Secret))
	resp, err := s.client.Do(req)
	if err != nil {
		return tokens{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return tokens{}, fmt.Errorf("read body: %w", err)
	}
	step := "token " + form.Get("grant_type")
	var tok tokens
	if resp.StatusCode != http.StatusOK {
		return tok, &stepError{step: step, status: resp.StatusCode, body: raw}
	}
	if json.Unmarshal(raw, &tok) != nil || tok.AccessToken == "" {
		return tok, badBody(step, raw)
	}
	return tok, nil
}

// ---- one sign-in of each mode ----

// signInPasskey is a passwordless sign-in: the app sends the browser to
// keygate, the sign-in page offers a passkey, the authenticator answers
// the discoverable-credential request, and keygate hands back to the app.
func (s *site) signInPasskey(ctx context.Context, acc *account) error {
	b := s.browser(deviceCookies(acc.cookies))
	a := newAuthz()
	page, to, err := b.getFollow(ctx, s.authorizePath(a, "openid email"))
	if err != nil {
		return err
	}
	if page.status != 200 || to != nil {
		return unexpected("sign-in page", page)
	}
	flow, err := scrape("sign-in page", page, reDataFlow)
	if err != nil {
		return err
	}
	csrf, err := scrape("sign-in page", page, reDataCSRF)
	if err != nil {
		return err
	}
	r, err := b.postJSON(ctx, "/mfa/webauthn/passwordless/begin", csrf, []byte(`{"flow":`+jsonString(flow)+`}`))
	if err != nil {
		return err
	}
	var begun struct {
		Challenge string          `json:"challenge"`
		Options   json.RawMessage `json:"options"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &begun) != nil || begun.Challenge == "" {
		return unexpected("passkey begin", r)
	}
	assertion, err := acc.key.get(begun.Options)
	if err != nil {
		return err
	}
	r, err = b.postJSON(ctx, "/mfa/webauthn/passwordless/finish?challenge="+url.QueryEscape(begun.Challenge), csrf, assertion)
	if err != nil {
		return err
	}
	var done struct {
		Next string `json:"next"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &done) != nil || !strings.HasPrefix(done.Next, "/") {
		return unexpected("passkey finish", r)
	}
	if r, err = b.get(ctx, done.Next); err != nil {
		return err
	}
	return s.land(ctx, b, acc, r, a)
}

// signInTOTP is the password page, then the code of the user's
// authenticator app for step.
func (s *site) signInTOTP(ctx context.Context, acc *account, step int64) error {
	b := s.browser(deviceCookies(acc.cookies))
	a := newAuthz()
	page, to, err := b.getFollow(ctx, s.authorizePath(a, "openid email"))
	if err != nil {
		return err
	}
	if page.status != 200 || to != nil {
		return unexpected("sign-in page", page)
	}
	form, err := formFields("sign-in page", page)
	if err != nil {
		return err
	}
	form.Set("email", acc.user.Email)
	form.Set("password", s.password)
	r, err := b.postForm(ctx, "/login", form)
	if err != nil {
		return err
	}
	page, to, err = b.follow(ctx, r)
	if err != nil {
		return err
	}
	if page.status != 200 || to != nil {
		return unexpected("password", page)
	}
	if form, err = formFields("second-factor page", page); err != nil {
		return err
	}
	code, err := totp.GenerateCodeCustom(acc.totpSecret, time.Unix(step*totpPeriod, 0), totpOpts)
	if err != nil {
		return err
	}
	form.Set("code", code)
	acc.lastStep = step // spent once sent, whatever the answer
	r, err = b.postForm(ctx, "/mfa/totp", form)
	if err != nil {
		return err
	}
	if r.status != http.StatusSeeOther {
		return unexpected("TOTP code", r)
	}
	return s.land(ctx, b, acc, r, a)
}

// signInSSO is a browser with a session signing in to the app without a
// page: authorize, keygate's single sign-on check, the code.
func (s *site) signInSSO(ctx context.Context, acc *account) error {
	b := s.browser(acc.cookies)
	a := newAuthz()
	r, err := b.get(ctx, s.authorizePath(a, "openid email"))
	if err != nil {
		return err
	}
	if r.status != http.StatusSeeOther && r.status != http.StatusFound {
		return unexpected("authorize", r)
	}
	return s.land(ctx, b, acc, r, a)
}

// land follows keygate's redirects from r back to the app and redeems the
// code there; the browser's cookies are the account's from then on.
func (s *site) land(ctx context.Context, b *browser, acc *account, r reply, a authz) error {
	page, to, err := b.follow(ctx, r)
	if err != nil {
		return err
	}
	if to == nil {
		return unexpected("back to the app", page)
	}
	if _, err := s.redeem(ctx, to, a, acc.user.ID); err != nil {
		return err
	}
	acc.cookies = b.cookies
	return nil
}

// refreshOnce rotates acc's refresh token: the answer must carry an access
// token and a new refresh token.
func (s *site) refreshOnce(ctx context.Context, acc *account) error {
	tok, err := s.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {acc.refresh}})
	if err != nil {
		return err
	}
	if tok.RefreshToken == "" || tok.RefreshToken == acc.refresh {
		return badBody("token refresh_token", []byte("no new refresh token"))
	}
	acc.refresh = tok.RefreshToken
	return nil
}

// obtainRefresh signs acc in to the app by single sign-on asking for
// offline access, and keeps the refresh token.
func (s *site) obtainRefresh(ctx context.Context, acc *account) error {
	b := s.browser(acc.cookies)
	a := newAuthz()
	_, to, err := b.getFollow(ctx, s.authorizePath(a, "openid offline_access"))
	if err != nil {
		return err
	}
	tok, err := s.redeem(ctx, to, a, acc.user.ID)
	if err != nil {
		return err
	}
	if tok.RefreshToken == "" {
		return badBody("code redemption", []byte("no refresh token for offline_access"))
	}
	acc.refresh = tok.RefreshToken
	return nil
}

// ---- helpers ----

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// formFields is a keygate form's hidden fields: its CSRF token and flow.
func formFields(step string, page reply) (url.Values, error) {
	csrf, err := scrape(step, page, reCSRFField)
	if err != nil {
		return nil, err
	}
	flow, err := scrape(step, page, reFlowField)
	if err != nil {
		return nil, err
	}
	return url.Values{"csrf_token": {csrf}, "flow": {flow}}, nil
}

// formOf is a form from name, value pairs.
func formOf(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// deviceCookies is what a browser keeps across sign-ins: the long-lived
// device cookie, not the session.
func deviceCookies(c map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range c {
		if strings.HasSuffix(k, "keygate_device") {
			out[k] = v
		}
	}
	return out
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
