package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// appCallback is an app's redirect endpoint: it records what arrives.
type appCallback struct {
	url  string
	mu   sync.Mutex
	hits []url.Values
}

func newAppCallback(t *testing.T) *appCallback {
	cb := &appCallback{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		cb.hits = append(cb.hits, r.URL.Query())
		cb.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<!doctype html><title>app</title><p id=app>signed in to the app</p>"))
	}))
	t.Cleanup(srv.Close)
	cb.url = srv.URL + "/callback"
	return cb
}

func (cb *appCallback) count() int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return len(cb.hits)
}

// browserSignIn runs an authorization request in the tab up to the app's
// callback and returns the code. how is "password+key" or "passkey".
func browserSignIn(t *testing.T, tb *tab, kgIssuer string, a authRequest, acct account, how string) {
	t.Helper()
	tb.navigate(a.url)
	tb.waitLocation(kgIssuer + "/login")
	switch how {
	case "passkey":
		tb.click("#use-passkey")
	default:
		tb.fill(map[string]string{"email": acct.email, "password": acct.password}, "form[action='/login'] button[type=submit]")
		tb.waitLocation(kgIssuer + "/mfa/verify")
		tb.click("#use-key")
	}
}

func codeFrom(t *testing.T, loc string, a authRequest) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("state") != a.state || u.Query().Get("code") == "" {
		t.Fatalf("callback %s", loc)
	}
	return u.Query().Get("code")
}

// TestSecurityKeysInChromium proves every WebAuthn ceremony in a real
// browser with DevTools virtual authenticators, and each token with a
// stock relying party.
func TestSecurityKeysInChromium(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")
	cb := newAppCallback(t)
	var app, strict registered
	kg.cliJSON(&app, "client", "add", "--name", "Wiki", "--redirect-uri", cb.url, "--acr", "phr")
	kg.cliJSON(&strict, "client", "add", "--name", "Payments admin", "--redirect-uri", cb.url, "--acr", "phrh")
	relying := newRP(t, kg.issuer, app.ClientID, app.ClientSecret, cb.url)
	strictRP := newRP(t, kg.issuer, strict.ClientID, strict.ClientSecret, cb.url)
	admin := account{email: "admin@localhost", password: testPassword}

	tb := newTab(t)
	auth := tb.addAuthenticator(securityKey)

	// The first admin enrols with a security key from the link serve printed.
	tb.navigate(kg.enrollURL)
	tb.fill(map[string]string{"password": testPassword, "confirm": testPassword}, "form[action='/enroll'] button[type=submit]")
	tb.waitLocation(kg.issuer + "/mfa/enroll")
	tb.fill(map[string]string{"key-name": "Desk key"}, "#register-key")
	tb.waitFor("!document.getElementById('recovery-section').hidden")
	admin.recovery = strings.Fields(tb.eval("Array.from(document.querySelectorAll('#recovery-codes code')).map(c => c.textContent).join(' ')"))
	if len(admin.recovery) != 10 {
		t.Fatalf("recovery codes after key enrolment: %v", admin.recovery)
	}
	tb.click("#recovery-continue")
	tb.waitLocation(kg.issuer + "/account")
	if acr := tb.eval("document.getElementById('acr').textContent"); acr != "phrh" {
		t.Errorf("enrolment with a device-bound key signed in at %q, want phrh", acr)
	}
	deskKey := tb.credentials(auth)
	if len(deskKey) != 1 || !deskKey[0].IsResidentCredential {
		t.Fatalf("want one resident credential on the key, got %d", len(deskKey))
	}

	exchange := func(t *testing.T, r *rp, a authRequest) idClaims {
		t.Helper()
		loc := tb.waitLocation(cb.url)
		_, _, c := r.exchange(t, a, codeFrom(t, loc, a))
		return c
	}

	t.Run("password and security key give phrh with amr pwd+hwk", func(t *testing.T) {
		a := strictRP.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
		c := exchange(t, strictRP, a)
		if c.ACR != "phrh" || !slices.Equal(c.AMR, []string{"pwd", "hwk"}) {
			t.Errorf("acr %q amr %v", c.ACR, c.AMR)
		}
	})

	t.Run("a discoverable passkey alone signs in without a username", func(t *testing.T) {
		a := relying.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		browserSignIn(t, tb, kg.issuer, a, admin, "passkey")
		c := exchange(t, relying, a)
		if c.ACR != "phrh" || !slices.Equal(c.AMR, []string{"hwk", "user"}) || c.Email != admin.email {
			t.Errorf("acr %q amr %v email %q", c.ACR, c.AMR, c.Email)
		}
	})

	var u2f []*webauthn.Credential
	t.Run("an older U2F key works as a second factor", func(t *testing.T) {
		auth = tb.swap(auth, u2fKey)
		tb.navigate(kg.issuer + "/account")
		tb.fill(map[string]string{"key-name": "Old U2F key"}, "#add-key")
		tb.waitFor("document.querySelectorAll('#keys tbody tr').length === 2")
		u2f = tb.credentials(auth)
		a := relying.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
		c := exchange(t, relying, a)
		if c.ACR != "phrh" || !slices.Equal(c.AMR, []string{"pwd", "hwk"}) {
			t.Errorf("acr %q amr %v", c.ACR, c.AMR)
		}
	})

	t.Run("a phrh app refuses a synced passkey, a phr app takes it as swk", func(t *testing.T) {
		auth = tb.swap(auth, syncedPasskey)
		tb.navigate(kg.issuer + "/account")
		tb.fill(map[string]string{"key-name": "Phone passkey"}, "#add-key")
		tb.waitFor("document.querySelectorAll('#keys tbody tr').length === 3")

		before := cb.count()
		a := strictRP.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
		tb.waitFor("location.pathname === '/login/continue' && document.body.innerText.includes('phishing-resistant')")
		if cb.count() != before || strings.HasPrefix(tb.location(), cb.url) {
			t.Fatal("a phrh app got a code from a synced passkey")
		}

		a = relying.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
		c := exchange(t, relying, a)
		if c.ACR != "phr" || !slices.Equal(c.AMR, []string{"pwd", "swk"}) {
			t.Errorf("acr %q amr %v", c.ACR, c.AMR)
		}
	})

	t.Run("a key can be removed from the account page", func(t *testing.T) {
		tb.navigate(kg.issuer + "/account")
		tb.do(chromedp.Click(chromedp.CSS("#keys tbody tr:last-child form[action='/mfa/keys/remove'] button")))
		tb.waitFor("document.querySelectorAll('#keys tbody tr').length === 2")
		if strings.Contains(tb.bodyText(), "Phone passkey") {
			t.Error("the removed passkey is still listed")
		}
	})

	t.Run("a sign count going backwards disables the key and alerts", func(t *testing.T) {
		clone := *deskKey[0]
		clone.SignCount = 0 // the stored count is higher after the sign-ins above
		auth = tb.swap(auth, securityKey, &clone)
		a := relying.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		before := cb.count()
		browserSignIn(t, tb, kg.issuer, a, admin, "password+key")
		tb.waitFor("!document.getElementById('webauthn-error').hidden")
		if msg := tb.eval("document.getElementById('webauthn-error').textContent"); !strings.Contains(msg, "copied") {
			t.Errorf("message %q", msg)
		}
		if cb.count() != before {
			t.Fatal("a cloned key signed in")
		}
		if !kg.logged("mfa.webauthn.clone_suspected") {
			t.Error("no clone_suspected audit event")
		}
		tb.navigate(kg.issuer + "/account")
		if !strings.Contains(tb.bodyText(), "disabled") {
			t.Error("the account page does not show the key disabled")
		}
	})

	t.Run("an assertion relayed by a look-alike origin is refused", func(t *testing.T) {
		// A transparent reverse proxy on another port is the phishing kit:
		// the user sees keygate's own pages, the password goes through, and
		// the key signs — but for the proxy's origin, which keygate refuses.
		target, _ := url.Parse(kg.issuer)
		proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		t.Cleanup(proxy.Close)
		phish := strings.Replace(proxy.URL, "127.0.0.1", "localhost", 1)
		auth = tb.swap(auth, u2fKey, u2f...)
		a := relying.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		before := cb.count()
		tb.navigate(strings.Replace(a.url, kg.issuer, phish, 1))
		tb.waitLocation(phish + "/login")
		tb.fill(map[string]string{"email": admin.email, "password": admin.password}, "form[action='/login'] button[type=submit]")
		tb.waitLocation(phish + "/mfa/verify")
		tb.click("#use-key")
		tb.waitFor("!document.getElementById('webauthn-error').hidden")
		if cb.count() != before {
			t.Fatal("the phishing origin got a code")
		}
		if reason := kg.auditDetail("mfa.webauthn.refused", "reason"); !strings.Contains(reason, "origin") {
			t.Errorf("the refused assertion was not audited as an origin mismatch: %q", reason)
		}
	})
}
