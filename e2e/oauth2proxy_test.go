package e2e

import (
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// oauth2ProxyVersion is the oauth2-proxy release the suite runs: the one
// place it is pinned.
const oauth2ProxyVersion = "v7.15.6"

// oauth2ProxyBinary is the oauth2-proxy to run: the one
// KEYGATE_E2E_OAUTH2_PROXY names, or else the one in the tool cache
// (KEYGATE_E2E_CACHE, by default keygate-e2e in the user's cache
// directory), installed there with `go install` if it is missing. Either
// way it must be the pinned release.
func oauth2ProxyBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KEYGATE_E2E_OAUTH2_PROXY")
	if bin == "" {
		cache := os.Getenv("KEYGATE_E2E_CACHE")
		if cache == "" {
			dir, err := os.UserCacheDir()
			if err != nil {
				t.Fatalf("no cache directory for oauth2-proxy (set KEYGATE_E2E_CACHE or KEYGATE_E2E_OAUTH2_PROXY): %v", err)
			}
			cache = filepath.Join(dir, "keygate-e2e")
		}
		dir := filepath.Join(cache, "oauth2-proxy@"+oauth2ProxyVersion)
		bin = filepath.Join(dir, "oauth2-proxy")
		if _, err := os.Stat(bin); err != nil {
			installOAuth2Proxy(t, dir)
		}
	}
	const module = "github.com/oauth2-proxy/oauth2-proxy/v7"
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("oauth2-proxy at %s: %v (KEYGATE_E2E_OAUTH2_PROXY names one built with `go install %s@%s`; unset, the test installs one)",
			bin, err, module, oauth2ProxyVersion)
	}
	if info.Main.Path != module || info.Main.Version != oauth2ProxyVersion {
		t.Fatalf("%s is %s %s, want %s %s", bin, info.Main.Path, info.Main.Version, module, oauth2ProxyVersion)
	}
	return bin
}

// installOAuth2Proxy builds the pinned release into dir, through a
// temporary folder renamed into place, so that an interrupted install is
// never taken for a finished one.
func installOAuth2Proxy(t *testing.T, dir string) {
	t.Helper()
	t.Logf("installing oauth2-proxy %s into %s", oauth2ProxyVersion, dir)
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "install", "github.com/oauth2-proxy/oauth2-proxy/v7@"+oauth2ProxyVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	cmd.Dir = t.TempDir() // outside keygate's module
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install oauth2-proxy %s: %v\n%s", oauth2ProxyVersion, err, out)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
}

// upstream is the app oauth2-proxy guards. It records who oauth2-proxy
// said each request came from, so the test knows whether a request got
// through and with which token; oauth2-proxy's --upstream=static://200
// would answer 200 itself and tell nothing of that.
type upstream struct {
	url  string
	mu   sync.Mutex
	seen []upstreamHit
}

type upstreamHit struct{ email, accessToken string }

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit := upstreamHit{email: r.Header.Get("X-Forwarded-Email"), accessToken: r.Header.Get("X-Forwarded-Access-Token")}
		u.mu.Lock()
		u.seen = append(u.seen, hit)
		u.mu.Unlock()
		fmt.Fprintf(w, "upstream: hello %s", hit.email)
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

// last is the latest request that reached the upstream.
func (u *upstream) last() upstreamHit {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return upstreamHit{}
	}
	return u.seen[len(u.seen)-1]
}

// count is how many requests reached the upstream so far.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// since are the requests that reached the upstream after the first n.
func (u *upstream) since(n int) []upstreamHit {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamHit(nil), u.seen[n:]...)
}

// noTokenSince fails t for each request that reached the upstream after
// the first n with another access token than token, the last one issued
// before what (an event that should have stopped any newer one).
func (u *upstream) noTokenSince(t *testing.T, n int, token, what string) {
	t.Helper()
	for _, hit := range u.since(n) {
		if hit.accessToken != token {
			t.Errorf("the upstream got a token issued after %s, for %s", what, hit.email)
		}
	}
}

// oauth2Proxy is a running oauth2-proxy process.
type oauth2Proxy struct {
	url    string
	output *lineBuffer
}

// startOAuth2Proxy runs oauth2-proxy for the registered app in front of
// up, with extra flags after the usual ones, and waits until it answers
// its ping (with its own "OK", so that no other server on the port is
// taken for it).
func startOAuth2Proxy(t *testing.T, bin string, kg *instance, app registered, port int, up *upstream, extra ...string) *oauth2Proxy {
	t.Helper()
	p := &oauth2Proxy{url: fmt.Sprintf("http://127.0.0.1:%d", port), output: &lineBuffer{}}
	args := []string{
		"--http-address=127.0.0.1:" + fmt.Sprint(port),
		"--provider=oidc",
		"--oidc-issuer-url=" + kg.issuer,
		"--client-id=" + app.ClientID,
		"--client-secret=" + app.ClientSecret,
		"--redirect-url=" + p.url + "/oauth2/callback",
		"--scope=openid email profile offline_access",
		"--code-challenge-method=S256",
		"--insecure-oidc-skip-nonce=false",
		// Refresh the session's tokens once it is a second old, so the
		// test sees refreshes, and the refusal of one, without waiting.
		"--cookie-refresh=1s",
		"--backend-logout-url=" + kg.issuer + "/oauth2/logout?id_token_hint={id_token}",
		"--cookie-secret=" + hex.EncodeToString(randomBytes(t, 16)),
		"--cookie-secure=false",
		"--email-domain=*",
		"--skip-provider-button",
		"--pass-access-token",
		"--upstream=" + up.url + "/",
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", tail(p.output.String(), 4000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/ping")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "OK" {
				return p
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("oauth2-proxy exited: %v\n%s", err, p.output)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not answer /ping\n%s", p.output)
		}
	}
}

// refusedRefresh reports whether, among the token.failed events keygate
// logged for an app after the first n, is a refresh refused with
// invalid_grant.
func (in *instance) refusedRefresh(clientID string, n int) bool {
	failed := in.auditEvents("token.failed", clientID)
	for _, e := range failed[min(n, len(failed)):] {
		d, _ := e["details"].(map[string]any)
		if d["grant_type"] == "refresh_token" && d["error"] == "invalid_grant" {
			return true
		}
	}
	return false
}

// TestOAuth2ProxyGuardsAnApp runs oauth2-proxy, as a process, in front of
// an app: the browser goes to the app, oauth2-proxy sends it to keygate,
// the user signs in on keygate's pages, and oauth2-proxy lets the request
// through. Then oauth2-proxy refreshes the session, logs out from its
// server (--backend-logout-url with {id_token}), and refuses a user who
// was suspended — each checked on keygate's side, since oauth2-proxy may
// answer the browser the same either way.
func TestOAuth2ProxyGuardsAnApp(t *testing.T) {
	bin := oauth2ProxyBinary(t)
	kg := startKeygate(t, t.TempDir(), "")
	ada := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")
	bob := enroll(t, newBrowser(t, kg.issuer), kg.addUser("bob@localhost"), "bob@localhost")
	port := freePort(t)
	var app registered
	kg.cliJSON(&app, "client", "add", "--name", "Wiki", "--redirect-uri", fmt.Sprintf("http://127.0.0.1:%d/oauth2/callback", port))
	up := newUpstream(t)
	proxy := startOAuth2Proxy(t, bin, kg, app, port, up)

	// signInThroughProxy walks a browser from the app to keygate and back,
	// and returns the access token oauth2-proxy passed to the upstream.
	signInThroughProxy := func(t *testing.T, b *browser, acct account) string {
		t.Helper()
		authURL := b.hopTo(proxy.url + "/")
		q := authorizeParams(t, authURL)
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("client_id") != app.ClientID {
			t.Fatalf("oauth2-proxy's authorization request lacks PKCE S256 or a nonce: %v", q)
		}
		p := signIn(t, b, authRequest{url: authURL}, acct, "totp", nextCode(t, acct.totpSecret))
		if !strings.HasPrefix(p.location, proxy.url+"/oauth2/callback?") {
			t.Fatalf("keygate did not send the browser back to oauth2-proxy: %d %s %q: %s", p.status, p.url, p.location, p.alert())
		}
		p = b.visit(p.location)
		if p.status != http.StatusOK || p.body != "upstream: hello "+acct.email {
			t.Fatalf("after the sign-in the app answered %d %s", p.status, tail(p.body, 500))
		}
		return up.last().accessToken
	}

	b := newBrowser(t, kg.issuer)
	first := signInThroughProxy(t, b, ada)

	t.Run("the code was redeemed with PKCE for a token keygate stands by", func(t *testing.T) {
		body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, first)
		if body["active"] != true || body["client_id"] != app.ClientID || body["acr"] != "mfa" {
			t.Errorf("introspection of the token oauth2-proxy passed on: %v", body)
		}
	})

	current := first
	t.Run("oauth2-proxy refreshes the session's tokens with keygate", func(t *testing.T) {
		eventually(t, 15*time.Second, "a refreshed access token at the upstream", func() bool {
			if p := b.visit(proxy.url + "/"); p.status != http.StatusOK {
				t.Fatalf("the app answered %d while the session was being refreshed: %s", p.status, tail(p.body, 300))
			}
			return up.last().accessToken != first
		})
		current = up.last().accessToken
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, current); body["active"] != true {
			t.Errorf("the refreshed access token is not active: %v", body)
		}
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, first); body["active"] != false {
			t.Errorf("the access token the refresh replaced is still active: %v", body)
		}
		if len(kg.auditEvents("token.refreshed", app.ClientID)) == 0 {
			t.Error("keygate recorded no refresh for the app")
		}
	})

	t.Run("sign-out calls keygate's logout from oauth2-proxy's server and ends the session", func(t *testing.T) {
		if p := b.get(kg.issuer + "/account"); p.url.Path != "/account" {
			t.Fatalf("the browser is not signed in to keygate before the sign-out: %s", p.url)
		}
		b.visit(proxy.url + "/oauth2/sign_out")
		// oauth2-proxy sent the ID token it holds (the refreshed one),
		// without the browser's keygate cookie.
		if p := b.get(kg.issuer + "/account"); p.url.Path != "/login" {
			t.Errorf("the browser is still signed in to keygate: %s", p.url)
		}
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, current); body["active"] != false {
			t.Errorf("the session's access token is still active: %v", body)
		}
		if p := b.visit(proxy.url + "/"); p.url.String() == proxy.url+"/" || !strings.HasPrefix(p.url.String(), kg.issuer+"/login") {
			t.Errorf("after the sign-out the app answered %d at %s, want keygate's sign-in page", p.status, p.url)
		}
	})

	t.Run("a suspended user is refused at oauth2-proxy's next refresh", func(t *testing.T) {
		b := newBrowser(t, kg.issuer)
		signInThroughProxy(t, b, bob)
		// oauth2-proxy may have refreshed already: its latest token is
		// the one to watch.
		token, seen := up.last().accessToken, up.count()
		failedBefore := len(kg.auditEvents("token.failed", app.ClientID))
		kg.cli("user", "suspend", bob.email)
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, token); body["active"] != false {
			t.Errorf("the suspended user's access token is still active: %v", body)
		}
		// Until its session is a second old oauth2-proxy trusts its
		// cookie; at the refresh keygate refuses it.
		var p *page
		eventually(t, 15*time.Second, "oauth2-proxy turning the suspended user away", func() bool {
			p = b.visit(proxy.url + "/")
			return p.body != "upstream: hello "+bob.email
		})
		if !strings.HasPrefix(p.url.String(), kg.issuer+"/login") {
			t.Errorf("oauth2-proxy answered the suspended user with %d at %s, want keygate's sign-in page", p.status, p.url)
		}
		if !kg.refusedRefresh(app.ClientID, failedBefore) {
			t.Error("keygate recorded no refused refresh for the suspended user")
		}
		up.noTokenSince(t, seen, token, "the suspension")
	})
}
