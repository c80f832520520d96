package server_test

// The hops of a passwordless passkey sign-in through the whole server
// (HTTP over loopback, middleware, handlers, SQLite), one benchmark each,
// so a change that slows one hop shows up in its own line:
//
//	go test ./server -run '^$' -bench PasskeySignIn -benchmem
//	go test ./server -run '^$' -bench PasskeySignIn/finish -cpuprofile cpu.out
//
// Every iteration is one whole sign-in by one enrolled user; only the
// benchmark's own hop is timed. The hops:
//
//	begin   POST /mfa/webauthn/passwordless/begin: assertion options, challenge stored
//	finish  POST /mfa/webauthn/passwordless/finish: the assertion verified, the flow verified
//	risk+code  GET /login/continue: the risk decision, the session signed in, the
//	           sign-in recorded, and the authorization code, in one request
//	token   POST /oauth2/token: the code redeemed for the access and ID tokens

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
)

// passkeyHops are the hops in order; a sub-benchmark times the one named.
var passkeyHops = []string{"begin", "finish", "risk+code", "token"}

func BenchmarkPasskeySignIn(b *testing.B) {
	for _, hop := range passkeyHops {
		b.Run(hop, func(b *testing.B) {
			pb := newPasskeyBench(b)
			b.ReportAllocs()
			for b.Loop() {
				pb.signIn(b, hop)
			}
		})
	}
}

// passkeyBench is one user with a discoverable passkey, and a browser that
// keeps its device cookie across sign-ins.
type passkeyBench struct {
	in   *servertest.Instance
	app  manage.NewClient
	hc   *http.Client
	jar  *cookiejar.Jar
	rp   virtualwebauthn.RelyingParty
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
	uid  string
}

var (
	reBenchCSRF = regexp.MustCompile(`data-csrf="([^"]*)"`)
	reBenchFlow = regexp.MustCompile(`data-flow="([^"]*)"`)
	reBenchForm = regexp.MustCompile(`name="(csrf_token|token)" value="([^"]*)"`)
)

const benchApp = "https://app.example/cb"

// newPasskeyBench enrols the user through the pages, as the enrolment link
// leads them: password, then the passkey.
func newPasskeyBench(b *testing.B) *passkeyBench {
	b.Helper()
	in := servertest.Start(b)
	m := in.Manager()
	nu, err := m.CreateUser(b.Context(), manage.UserSpec{Email: "bench@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	app, err := m.RegisterClient(b.Context(), manage.ClientSpec{Name: "Bench", RedirectURIs: []string{benchApp}})
	if err != nil {
		b.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	pb := &passkeyBench{
		in: in, app: app, jar: jar, uid: nu.User.ID,
		hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		rp: virtualwebauthn.RelyingParty{ID: "localhost", Name: "keygate", Origin: in.Issuer},
		// A platform passkey: discoverable, device-bound.
		auth: virtualwebauthn.NewAuthenticator(),
		cred: ec2Credential(),
	}
	page := pb.send(b, http.MethodGet, strings.TrimPrefix(nu.EnrollmentURL, in.Issuer), "", "", http.StatusOK)
	form := url.Values{"password": {"correct horse battery staple"}, "confirm": {"correct horse battery staple"}}
	for _, m := range reBenchForm.FindAllStringSubmatch(string(page.Body), -1) {
		form.Set(m[1], m[2])
	}
	pb.send(b, http.MethodPost, "/enroll", form.Encode(), "", http.StatusSeeOther)
	csrf := servertest.Scrape(b, pb.send(b, http.MethodGet, "/mfa/enroll", "", "", http.StatusOK), reBenchCSRF)
	bg := pb.begun(b, pb.send(b, http.MethodPost, "/mfa/webauthn/register/begin", "{}", csrf, http.StatusOK))
	opts, err := virtualwebauthn.ParseAttestationOptions(string(bg.Options))
	if err != nil {
		b.Fatal(err)
	}
	pb.auth.Options.UserHandle = []byte(opts.UserID)
	var att map[string]any
	if err := json.Unmarshal([]byte(virtualwebauthn.CreateAttestationResponse(pb.rp, pb.auth, pb.cred, *opts)), &att); err != nil {
		b.Fatal(err)
	}
	att["clientExtensionResults"] = map[string]any{"credProps": map[string]any{"rk": true}}
	body, err := json.Marshal(att)
	if err != nil {
		b.Fatal(err)
	}
	pb.send(b, http.MethodPost, "/mfa/webauthn/register/finish?challenge="+url.QueryEscape(bg.Challenge), string(body), csrf, http.StatusOK)
	return pb
}

// send sends a request as the browser: a JSON body when csrf is set (as
// webauthn.js posts), else a form body (if any). It fails b unless the
// answer has status want.
func (pb *passkeyBench) send(b *testing.B, method, path, body, csrf string, want int) servertest.Reply {
	b.Helper()
	var raw []byte
	ctype, h := "", http.Header{}
	if body != "" {
		raw, ctype = []byte(body), "application/x-www-form-urlencoded"
	}
	if csrf != "" {
		ctype = "application/json"
		h.Set("X-CSRF-Token", csrf)
	}
	r := servertest.Read(b, pb.hc, pb.in.Request(b, method, path, ctype, raw, h))
	if r.Status != want {
		b.Fatalf("%s %s: %s, want %d", method, path, r, want)
	}
	return r
}

type benchBegun struct {
	Challenge string          `json:"challenge"`
	Options   json.RawMessage `json:"options"`
}

func (pb *passkeyBench) begun(b *testing.B, r servertest.Reply) benchBegun {
	bg := servertest.Decode[benchBegun](b, r)
	if bg.Challenge == "" {
		b.Fatalf("begin: %s", r)
	}
	return bg
}

// signIn is one whole sign-in, timing only hop.
func (pb *passkeyBench) signIn(b *testing.B, hop string) {
	b.StopTimer()
	defer b.StartTimer()
	timed := func(name string, f func()) {
		if name == hop {
			b.StartTimer()
			defer b.StopTimer()
		}
		f()
	}
	// A new sign-in in the same browser: the device cookie stays, the
	// session of the last sign-in goes.
	base, _ := url.Parse(pb.in.Base)
	pb.jar.SetCookies(base, []*http.Cookie{{Name: "keygate_session", Value: "", MaxAge: -1}})
	q := authorizeQuery(pb.app.Client.ID, benchApp, "openid", "email")
	loc := pb.send(b, http.MethodGet, "/oauth2/authorize?"+q.Encode(), "", "", http.StatusSeeOther).Location()
	page := pb.send(b, http.MethodGet, loc, "", "", http.StatusOK)
	csrf, flow := servertest.Scrape(b, page, reBenchCSRF), servertest.Scrape(b, page, reBenchFlow)

	var bg benchBegun
	timed("begin", func() {
		bg = pb.begun(b, pb.send(b, http.MethodPost, "/mfa/webauthn/passwordless/begin", `{"flow":"`+flow+`"}`, csrf, http.StatusOK))
	})
	opts, err := virtualwebauthn.ParseAssertionOptions(string(bg.Options))
	if err != nil {
		b.Fatal(err)
	}
	pb.cred.Counter++
	assertion := virtualwebauthn.CreateAssertionResponse(pb.rp, pb.auth, pb.cred, *opts)
	var next string
	timed("finish", func() {
		r := pb.send(b, http.MethodPost, "/mfa/webauthn/passwordless/finish?challenge="+url.QueryEscape(bg.Challenge), assertion, csrf, http.StatusOK)
		var done struct{ Next string }
		if err := json.Unmarshal(r.Body, &done); err != nil || done.Next == "" {
			b.Fatalf("finish: %s", r)
		}
		next = done.Next
	})
	timed("risk+code", func() {
		next = pb.send(b, http.MethodGet, next, "", "", http.StatusSeeOther).Location()
	})
	to, err := url.Parse(next)
	if err != nil || !strings.HasPrefix(next, benchApp) || to.Query().Get("code") == "" {
		b.Fatalf("the sign-in's end sent the browser to %s", next)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {to.Query().Get("code")},
		"redirect_uri": {benchApp}, "code_verifier": {pkceVerifier}}
	r := pb.in.Request(b, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	r.SetBasicAuth(url.QueryEscape(pb.app.Client.ID), url.QueryEscape(pb.app.Secret))
	timed("token", func() {
		reply := servertest.Read(b, pb.in.HTTP, r)
		if reply.Status != http.StatusOK || !strings.Contains(string(reply.Body), `"id_token"`) {
			b.Fatalf("token: %s", reply)
		}
	})
}
