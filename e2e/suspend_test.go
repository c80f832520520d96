package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// logoutReceiver is an app's back-channel logout endpoint: it verifies
// each logout token against keygate's JWKS, as an app must.
type logoutReceiver struct {
	url    string
	mu     sync.Mutex
	tokens []map[string]any
	at     []time.Time
	errs   []error
	posted chan struct{} // closed, and replaced, on every POST
}

func newLogoutReceiver(t *testing.T, issuer string) *logoutReceiver {
	return newLogoutReceiverVia(t, issuer, http.DefaultClient)
}

// newLogoutReceiverVia fetches keygate's JWKS with client, e.g. one that
// trusts an https issuer's certificate.
func newLogoutReceiverVia(t *testing.T, issuer string, client *http.Client) *logoutReceiver {
	lr := &logoutReceiver{posted: make(chan struct{})}
	keySet := oidc.NewRemoteKeySet(oidc.ClientContext(t.Context(), client), issuer+"/oauth2/jwks")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := r.PostFormValue("logout_token")
		payload, err := keySet.VerifySignature(r.Context(), raw)
		lr.mu.Lock()
		defer lr.mu.Unlock()
		close(lr.posted)
		lr.posted = make(chan struct{})
		if err != nil {
			lr.errs = append(lr.errs, err)
			http.Error(w, "bad token", http.StatusBadRequest)
			return
		}
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)
		lr.tokens = append(lr.tokens, claims)
		lr.at = append(lr.at, time.Now())
		_, _ = io.WriteString(w, "")
	}))
	t.Cleanup(srv.Close)
	lr.url = srv.URL + "/backchannel-logout"
	return lr
}

// logoutWait is how long waitFor waits for a back-channel logout: the
// outbox worker delivers on its own schedule.
const logoutWait = 15 * time.Second

// waitFor waits for a verified logout token whose claims match, and
// returns its claims and when it arrived; it fails t if none comes within
// logoutWait, or if a token did not verify.
func (lr *logoutReceiver) waitFor(t *testing.T, match func(claims map[string]any) bool) (map[string]any, time.Time) {
	t.Helper()
	deadline := time.NewTimer(logoutWait)
	defer deadline.Stop()
	for {
		claims, at, posted, err := lr.find(match)
		if err != nil {
			t.Fatalf("a logout token did not verify: %v", err)
		}
		if claims != nil {
			return claims, at
		}
		select {
		case <-posted:
		case <-deadline.C:
			t.Fatalf("no matching back-channel logout arrived within %v", logoutWait)
		}
	}
}

// find is the first verified logout token whose claims match and when it
// arrived, or else a channel closed at the next POST; err is the first
// token that did not verify. It holds lr.mu only while it looks.
func (lr *logoutReceiver) find(match func(claims map[string]any) bool) (claims map[string]any, at time.Time, posted <-chan struct{}, err error) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if len(lr.errs) > 0 {
		return nil, time.Time{}, nil, lr.errs[0]
	}
	for i, tk := range lr.tokens {
		if match(tk) {
			return tk, lr.at[i], nil, nil
		}
	}
	return nil, time.Time{}, lr.posted, nil
}

// TestSuspendCutsOffEverywhere suspends a signed-in user from the CLI (for
// when the console is out of reach) and watches every app lose them: the
// access token stops introspecting, the refresh token stops working, and
// the app's back-channel logout endpoint hears of the ended session.
func TestSuspendCutsOffEverywhere(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "tokens:\n  refresh_grace: 1ms\n")
	ada := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")
	lr := newLogoutReceiver(t, kg.issuer)
	const redirect = "http://127.0.0.1:9/callback"
	var app registered
	kg.cliJSON(&app, "client", "add", "--name", "CRM", "--redirect-uri", redirect, "--backchannel-logout-uri", lr.url)
	relying := newRP(t, kg.issuer, app.ClientID, app.ClientSecret, redirect)

	b := newBrowser(t, kg.issuer)
	a := relying.newRequest()
	tok, _, claims := relying.exchange(t, a, a.callback(t, signIn(t, b, a, ada, "totp", nextCode(t, ada.totpSecret)), redirect))

	start := time.Now()
	kg.cli("user", "suspend", ada.email)
	cliDone := time.Since(start)

	if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, tok.AccessToken); body["active"] != false {
		t.Fatalf("the access token is still active after suspend returned: %v", body)
	}
	introspected := time.Since(start)
	if _, err := refresh(t.Context(), relying.cfg, tok.RefreshToken); err == nil {
		t.Fatal("the refresh token still works")
	}
	if p := b.get(kg.issuer + "/account"); p.url.Path != "/login" {
		t.Errorf("the browser session survived: %s", p.url.Path)
	}

	// One token per ended session: the enrolment browser's and the app's.
	got, gotAt := lr.waitFor(t, func(c map[string]any) bool { return c["sid"] == claims.SID })
	events, _ := got["events"].(map[string]any)
	if got["sub"] != claims.Sub || got["sid"] != claims.SID || got["aud"] != app.ClientID || got["iss"] != kg.issuer || events == nil {
		t.Errorf("logout token claims %v", got)
	}
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
		t.Errorf("logout token events %v", events)
	}
	t.Logf("suspend: CLI returned after %v; tokens inactive at %v; back-channel logout received after %v",
		cliDone.Round(time.Millisecond), introspected.Round(time.Millisecond), gotAt.Sub(start).Round(time.Millisecond))
}

// TestSuspendFromTheCLIWhileRefreshesRun suspends a user from another
// process while eight of the user's token families are refreshed in tight
// loops: no refresh that starts after the command returned succeeds, and
// no token any loop ever got — issued before the suspension or by a
// refresh in flight across it — is still active.
func TestSuspendFromTheCLIWhileRefreshesRun(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")
	user := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")
	const redirect = "http://127.0.0.1:9/callback"
	var app registered
	kg.cliJSON(&app, "client", "add", "--name", "CRM", "--redirect-uri", redirect)
	relying := newRP(t, kg.issuer, app.ClientID, app.ClientSecret, redirect)

	// Eight grants: one sign-in, then single sign-on in the same browser.
	b := newBrowser(t, kg.issuer)
	var refreshTokens []string
	for i := range 8 {
		a := relying.newRequest()
		var p *page
		if i == 0 {
			p = signIn(t, b, a, user, "totp", nextCode(t, user.totpSecret))
		} else {
			p = b.get(a.url)
		}
		tok, _, _ := relying.exchange(t, a, a.callback(t, p, redirect))
		refreshTokens = append(refreshTokens, tok.RefreshToken)
	}

	var mu sync.Mutex
	var issued []string // every token any loop got
	type attempt struct {
		start time.Time
		ok    bool
	}
	var attempts []attempt
	var cliEnd atomic.Int64
	warm := make(chan struct{}) // closed at the 40th refresh
	stop := make(chan struct{})
	var loops, busyAfter sync.WaitGroup
	for _, rt := range refreshTokens {
		busyAfter.Add(1)
		loops.Go(func() {
			after := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				tok, err := refresh(context.Background(), relying.cfg, rt)
				mu.Lock()
				attempts = append(attempts, attempt{start, err == nil})
				if len(attempts) == 40 {
					close(warm)
				}
				if err == nil {
					rt = tok.RefreshToken
					issued = append(issued, tok.AccessToken, tok.RefreshToken)
				}
				mu.Unlock()
				if cliEnd.Load() != 0 {
					if after++; after == 5 {
						busyAfter.Done()
					}
				}
			}
		})
	}
	// Let the loops run, then suspend from another process.
	<-warm
	kg.cli("user", "suspend", user.email)
	cliEnd.Store(time.Now().UnixNano())
	busyAfter.Wait()
	close(stop)
	loops.Wait()

	end := time.Unix(0, cliEnd.Load())
	var before, succeededBefore, after, succeededAfter int
	for _, a := range attempts {
		if !a.start.After(end) {
			before++
			if a.ok {
				succeededBefore++
			}
			continue
		}
		after++
		if a.ok {
			succeededAfter++
		}
	}
	if succeededBefore == 0 {
		t.Errorf("none of %d refreshes before the suspension succeeded: the run proves nothing", before)
	}
	if succeededAfter > 0 {
		t.Errorf("%d of %d refreshes that started after the suspension returned succeeded", succeededAfter, after)
	}
	active := 0
	for _, tok := range append(issued, refreshTokens...) {
		if introspect(t, kg.issuer, app.ClientID, app.ClientSecret, tok)["active"] != false {
			active++
		}
	}
	if active > 0 {
		t.Errorf("%d of %d tokens are still active after the suspension", active, len(issued)+len(refreshTokens))
	}
	t.Logf("8 refresh loops: %d refreshes before the CLI returned (%d succeeded), %d after (%d succeeded); %d tokens checked, %d active",
		before, succeededBefore, after, succeededAfter, len(issued)+len(refreshTokens), active)
}
