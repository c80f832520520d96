package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// discovered is the discovery document, and which of its members a test
// has exercised: what it advertises and nothing checks is an error.
type discovered struct {
	doc  map[string]any
	used map[string]bool
}

func discover(t *testing.T, issuer string) *discovered {
	t.Helper()
	resp := mustGet(t, issuer+"/.well-known/openid-configuration")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("discovery: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	d := &discovered{used: map[string]bool{}}
	if err := json.NewDecoder(resp.Body).Decode(&d.doc); err != nil {
		t.Fatal(err)
	}
	return d
}

// str is a string member, marked as exercised.
func (d *discovered) str(t *testing.T, key string) string {
	t.Helper()
	d.used[key] = true
	s, ok := d.doc[key].(string)
	if !ok || s == "" {
		t.Fatalf("discovery: %s is %v, want a string", key, d.doc[key])
	}
	return s
}

// list is a list member, marked as exercised.
func (d *discovered) list(t *testing.T, key string) []string {
	t.Helper()
	d.used[key] = true
	raw, ok := d.doc[key].([]any)
	if !ok || len(raw) == 0 {
		t.Fatalf("discovery: %s is %v, want a list", key, d.doc[key])
	}
	var out []string
	for _, v := range raw {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// flag is a boolean member, marked as exercised.
func (d *discovered) flag(t *testing.T, key string) bool {
	t.Helper()
	d.used[key] = true
	b, ok := d.doc[key].(bool)
	if !ok {
		t.Fatalf("discovery: %s is %v, want a boolean", key, d.doc[key])
	}
	return b
}

// each runs check for every value the list member advertises; a value
// with no check is an error: the document says more than is tested.
func (d *discovered) each(t *testing.T, key string, checks map[string]func(t *testing.T)) {
	t.Helper()
	for _, v := range d.list(t, key) {
		check, ok := checks[v]
		if !ok {
			t.Errorf("discovery advertises %s %q, which nothing here exercises", key, v)
			continue
		}
		t.Run(key+"="+v, check)
	}
}

// authorization is one authorization request as an RP makes it.
type authorization struct {
	params   url.Values
	verifier string
}

// newAuthorization is a code request with PKCE S256, state and nonce for
// the scopes given; extra parameters replace them ("" removes one).
func newAuthorization(clientID, redirect, scope string, extra url.Values) authorization {
	verifier := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	q := url.Values{
		"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {scope},
		"state": {oauth2.GenerateVerifier()}, "nonce": {oauth2.GenerateVerifier()},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		if len(v) == 1 && v[0] == "" {
			q.Del(k)
		} else {
			q[k] = v
		}
	}
	return authorization{params: q, verifier: verifier}
}

func (a authorization) url(endpoint string) string { return endpoint + "?" + a.params.Encode() }

// response is the authorization response keygate redirected p to.
func (a authorization) response(t *testing.T, p *page) url.Values {
	t.Helper()
	redirect := a.params.Get("redirect_uri")
	if !strings.HasPrefix(p.location, redirect+"?") {
		t.Fatalf("no authorization response: %d at %s (location %q): %s", p.status, p.url, p.location, p.alert())
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") != a.params.Get("state") {
		t.Fatalf("state %q, want %q", q.Get("state"), a.params.Get("state"))
	}
	return q
}

// code is the code of a successful authorization response.
func (a authorization) code(t *testing.T, p *page) string {
	t.Helper()
	q := a.response(t, p)
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("authorization error %q: %s", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("code")
}

// clientPost posts form to an endpoint, the client authenticating as
// method says (client_secret_basic, client_secret_post, none, or "" for
// no client at all), and decodes the JSON answer (nil for an empty body).
func clientPost(t *testing.T, endpoint, method, clientID, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	switch method {
	case "client_secret_post":
		f.Set("client_id", clientID)
		f.Set("client_secret", secret)
	case "none":
		f.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(f.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if method == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return doJSON(t, req)
}

// doJSON makes the request and decodes the JSON answer (nil for none).
func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// jwtHeader is the decoded header of a compact JWS.
func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, _, ok := strings.Cut(raw, ".")
	if !ok {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// idTokenClaims verifies an ID token with the keys at jwks_uri and
// returns all its claims.
func idTokenClaims(t *testing.T, v *oidc.IDTokenVerifier, raw string) map[string]any {
	t.Helper()
	idt, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify the ID token: %v", err)
	}
	var m map[string]any
	if err := idt.Claims(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// userinfoCall asks userinfo about an access token, sent as a bearer
// token in the header, and decodes the answer.
func userinfoCall(t *testing.T, method, endpoint string, token any) (int, map[string]any) {
	t.Helper()
	raw, _ := token.(string)
	req, err := http.NewRequestWithContext(t.Context(), method, endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	return doJSON(t, req)
}
