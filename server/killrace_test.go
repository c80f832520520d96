package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
)

// The kill actions — suspend a user, end one session, end all of them,
// revoke a token, disable an app, rotate its secret without overlap, sign
// out — each race many holders of what they end: refresh loops, code
// exchanges, introspections, requests with the session cookie,
// client_credentials and JWT access-token issue. Once the kill has
// returned, no request that starts may succeed, and no token issued before
// it — or by a request in flight across it — may still be active. What the
// kill does not end must go on working: a kill that ended everything would
// pass the first two checks.
//
// KEYGATE_RACE_ROUNDS sets how many times each action is tried (default 2;
// each round lands the kill at a different moment of ~25 busy loops).

const raceRedirect = "https://app.example/cb"

const (
	raceSessions = 3 // signed-in browsers of the user
	raceFamilies = 2 // refresh-token families per browser and app
	raceCodes    = 3 // codes per browser: exchanged before, during and after the kill
)

// raceScope is what a holder holds: a refresh-token family (app, browser,
// family), codes (app, browser, family -1), a session cookie (app "",
// browser), or an app's own credentials (app, browser -1).
type raceScope struct {
	app     string
	browser int
	family  int
}

func (s raceScope) String() string { return fmt.Sprintf("%s/b%d/f%d", s.app, s.browser, s.family) }

// raceWorld is one round's user, apps and browsers.
type raceWorld struct {
	in       *servertest.Instance
	hc       *http.Client
	userID   string
	app      manage.NewClient // opaque tokens: codes, refresh, client_credentials
	jwtApp   manage.NewClient // RFC 9068 JWT access tokens
	probe    manage.NewClient // the API both apps' tokens name: it introspects them
	browsers []sessiontest.Browser
}

// killAction is one way to cut access off, and what it cuts off.
type killAction struct {
	name string
	kill func(t *testing.T, w *raceWorld, families map[raceScope]*raceFamily)
	// endsRequests: requests of a holder of this scope that start after
	// the kill must fail. endsTokens: its tokens must be inactive.
	endsRequests, endsTokens func(w *raceWorld, s raceScope) bool
}

// ends is whether the kill ends what r asked for: an introspection asks
// about a token, every other request uses the holder's credentials.
func (a killAction) ends(w *raceWorld, r raceRequest) bool {
	if r.what == "introspect" {
		return a.endsTokens(w, r.scope)
	}
	return a.endsRequests(w, r.scope)
}

// ofUser is everything the user holds: their tokens and cookies, not the
// apps' own client_credentials tokens.
func ofUser(_ *raceWorld, s raceScope) bool { return s.browser >= 0 }

func ofBrowser(i int) func(*raceWorld, raceScope) bool {
	return func(_ *raceWorld, s raceScope) bool { return s.browser == i }
}

func ofApp(w *raceWorld, s raceScope) bool { return s.app == w.app.Client.ID }

func raceActions() []killAction {
	return []killAction{
		{name: "suspend the user", endsRequests: ofUser, endsTokens: ofUser,
			kill: func(t *testing.T, w *raceWorld, _ map[raceScope]*raceFamily) {
				if _, err := w.in.Manager().SuspendUserID(context.Background(), w.userID); err != nil {
					t.Error(err)
				}
			}},
		{name: "end one session", endsRequests: ofBrowser(0), endsTokens: ofBrowser(0),
			kill: func(t *testing.T, w *raceWorld, _ map[raceScope]*raceFamily) {
				if err := w.in.Manager().RevokeSession(context.Background(), w.userID, w.browsers[0].SID); err != nil {
					t.Error(err)
				}
			}},
		{name: "end all sessions", endsRequests: ofUser, endsTokens: ofUser,
			kill: func(t *testing.T, w *raceWorld, _ map[raceScope]*raceFamily) {
				if _, err := w.in.Manager().RevokeSessions(context.Background(), w.userID); err != nil {
					t.Error(err)
				}
			}},
		{name: "revoke a refresh token",
			endsRequests: func(w *raceWorld, s raceScope) bool { return s == raceScope{w.app.Client.ID, 1, 0} },
			endsTokens:   func(w *raceWorld, s raceScope) bool { return s == raceScope{w.app.Client.ID, 1, 0} },
			kill: func(t *testing.T, w *raceWorld, families map[raceScope]*raceFamily) {
				f := families[raceScope{w.app.Client.ID, 1, 0}]
				_, refresh := f.latest()
				status, body := w.post(t, "/oauth2/revoke", w.app, url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}})
				if status != http.StatusOK {
					t.Errorf("revoke: %d %s", status, body)
				}
			}},
		{name: "disable the app", endsRequests: ofApp, endsTokens: ofApp,
			kill: func(t *testing.T, w *raceWorld, _ map[raceScope]*raceFamily) {
				if err := w.in.Manager().SetClientDisabled(context.Background(), w.app.Client.ID, true); err != nil {
					t.Error(err)
				}
			}},
		{name: "rotate the app's secret without overlap",
			// Everything that authenticates with the old secret stops, and
			// so do the tokens the secret alone obtained; users' tokens stay.
			endsRequests: ofApp,
			endsTokens:   func(w *raceWorld, s raceScope) bool { return ofApp(w, s) && s.browser < 0 },
			kill: func(t *testing.T, w *raceWorld, _ map[raceScope]*raceFamily) {
				if _, err := w.in.Manager().RotateClientSecret(context.Background(), w.app.Client.ID, 0); err != nil {
					t.Error(err)
				}
			}},
		{name: "sign out", endsRequests: ofBrowser(2), endsTokens: ofBrowser(2),
			kill: func(t *testing.T, w *raceWorld, _ map[raceScope]*raceFamily) {
				b := w.browsers[2]
				r := w.in.Request(t, http.MethodPost, "/account/logout", "application/x-www-form-urlencoded",
					[]byte(url.Values{"csrf_token": {b.CSRF}}.Encode()), nil)
				r.AddCookie(b.Cookie)
				if reply := w.do(t, r); reply.Status != http.StatusOK {
					t.Errorf("sign out: %v", reply)
				}
			}},
	}
}

func TestKillActionsRaceRequestsInFlight(t *testing.T) {
	rounds := 2
	if v := os.Getenv("KEYGATE_RACE_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("KEYGATE_RACE_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	in := servertest.Start(t)
	hc := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	t.Cleanup(hc.CloseIdleConnections)
	for _, action := range raceActions() {
		t.Run(action.name, func(t *testing.T) {
			var total raceTally
			for round := range rounds {
				w := newRaceWorld(t, in, hc, fmt.Sprintf("%s-%d", strings.ReplaceAll(action.name, " ", "-"), round))
				total.add(w.race(t, action))
			}
			t.Logf("%s: %d rounds, %d requests, %d in flight across the kill, %d started after it (%d of them refused), %d tokens checked inactive; successes after the kill: %d",
				action.name, rounds, total.requests, total.straddling, total.after, total.afterRefused, total.deadTokens, total.violations)
		})
	}
}

// raceTally counts what one round saw.
type raceTally struct {
	requests, straddling, after, afterRefused, deadTokens, violations int
}

func (a *raceTally) add(b raceTally) {
	a.requests += b.requests
	a.straddling += b.straddling
	a.after += b.after
	a.afterRefused += b.afterRefused
	a.deadTokens += b.deadTokens
	a.violations += b.violations
}

func newRaceWorld(t *testing.T, in *servertest.Instance, hc *http.Client, label string) *raceWorld {
	t.Helper()
	ctx := t.Context()
	m := in.Manager()
	u, err := m.CreateUser(ctx, manage.UserSpec{Email: label + "@example.com", Name: "Racer"})
	if err != nil {
		t.Fatal(err)
	}
	w := &raceWorld{in: in, hc: hc, userID: u.User.ID}
	if w.probe, err = m.RegisterClient(ctx, manage.ClientSpec{Name: "API " + label, GrantTypes: []string{"client_credentials"}}); err != nil {
		t.Fatal(err)
	}
	aud := []string{w.probe.Client.ID}
	if w.app, err = m.RegisterClient(ctx, manage.ClientSpec{Name: "App " + label, RedirectURIs: []string{raceRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}, Audience: aud}); err != nil {
		t.Fatal(err)
	}
	if w.jwtApp, err = m.RegisterClient(ctx, manage.ClientSpec{Name: "JWT app " + label, RedirectURIs: []string{raceRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, TokenFormat: "jwt", Audience: aud}); err != nil {
		t.Fatal(err)
	}
	for range raceSessions {
		w.browsers = append(w.browsers, in.Mint(t, session.Auth{UserID: w.userID, ACR: session.ACRPhr,
			AMR: []string{"pwd", "hwk"}, AuthTime: time.Now().Add(-time.Minute)}))
	}
	return w
}

// do sends r and reads the whole reply.
func (w *raceWorld) do(t *testing.T, r *http.Request) servertest.Reply {
	resp, err := w.hc.Do(r)
	if err != nil {
		t.Error(err)
		return servertest.Reply{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return servertest.Reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// post sends a form to path authenticated as app (client_secret_basic).
func (w *raceWorld) post(t *testing.T, path string, app manage.NewClient, form url.Values) (int, []byte) {
	r := w.in.Request(t, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	r.SetBasicAuth(url.QueryEscape(app.Client.ID), url.QueryEscape(app.Secret))
	reply := w.do(t, r)
	return reply.Status, reply.Body
}

type raceTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// token posts to the token endpoint as app; ok with the tokens on 200.
func (w *raceWorld) token(t *testing.T, app manage.NewClient, form url.Values) (raceTokens, bool) {
	status, body := w.post(t, "/oauth2/token", app, form)
	var tok raceTokens
	if status != http.StatusOK {
		if status >= 500 || os.Getenv("KEYGATE_RACE_DEBUG") != "" {
			t.Errorf("token endpoint: %d %s", status, body)
		}
		return tok, false
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Errorf("token response: %v", err)
	}
	return tok, true
}

// code runs single sign-on for browser b and app and returns the code.
func (w *raceWorld) code(t *testing.T, b sessiontest.Browser, app manage.NewClient) string {
	t.Helper()
	q := authorizeQuery(app.Client.ID, raceRedirect, "openid", "offline_access")
	q.Set("audience", w.probe.Client.ID)
	return redirectCode(t, followSSO(t, w.hc, w.in, b.Cookie, "/oauth2/authorize?"+q.Encode()), raceRedirect)
}

func (w *raceWorld) exchange(t *testing.T, app manage.NewClient, code string) (raceTokens, bool) {
	return w.token(t, app, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {raceRedirect}, "code_verifier": {pkceVerifier}})
}

// active is whether the probe API sees token as active.
func (w *raceWorld) active(t *testing.T, token string) bool {
	status, body := w.post(t, "/oauth2/introspect", w.probe, url.Values{"token": {token}})
	var out struct {
		Active bool `json:"active"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Errorf("introspect: %d %s", status, body)
	}
	return out.Active
}

// raceFamily is a refresh-token family as its app holds it.
type raceFamily struct {
	mu              sync.Mutex
	access, refresh string
}

func (f *raceFamily) latest() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.access, f.refresh
}

func (f *raceFamily) set(tok raceTokens) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access, f.refresh = tok.AccessToken, tok.RefreshToken
}

// raceLog is what the holders did: each request with when it started and
// whether it succeeded, and every token any of them obtained.
type raceLog struct {
	mu       sync.Mutex
	requests []raceRequest
	tokens   []raceToken
}

type raceRequest struct {
	scope      raceScope
	what       string
	start, end time.Time
	ok         bool
}

type raceToken struct {
	scope raceScope
	token string
}

func (l *raceLog) request(s raceScope, what string, start time.Time, ok bool, tokens ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, raceRequest{s, what, start, time.Now(), ok})
	for _, tok := range tokens {
		if tok != "" {
			l.tokens = append(l.tokens, raceToken{s, tok})
		}
	}
}

// race runs one round: holders busy, the kill, holders busy again, checks.
func (w *raceWorld) race(t *testing.T, action killAction) raceTally {
	log := &raceLog{}
	families := map[raceScope]*raceFamily{}
	codes := map[raceScope][]string{}
	for i, b := range w.browsers {
		for _, app := range []manage.NewClient{w.app, w.jwtApp} {
			for f := range raceFamilies {
				tok, ok := w.exchange(t, app, w.code(t, b, app))
				if !ok {
					t.Fatal("the first exchange failed")
				}
				s := raceScope{app.Client.ID, i, f}
				families[s] = &raceFamily{access: tok.AccessToken, refresh: tok.RefreshToken}
				log.request(s, "exchange", time.Now(), true, tok.AccessToken, tok.RefreshToken)
			}
		}
		for range raceCodes {
			s := raceScope{w.app.Client.ID, i, -1}
			codes[s] = append(codes[s], w.code(t, b, w.app))
		}
	}

	var killEnd atomic.Int64 // unix nanos, once the kill returned
	stop := make(chan struct{})
	var holders, busyAfter sync.WaitGroup
	// Every holder keeps going until it made a few requests after the kill.
	hold := func(step func()) {
		busyAfter.Add(1)
		holders.Go(func() {
			after := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				step()
				if killEnd.Load() != 0 {
					if after++; after == 3 {
						busyAfter.Done()
					}
				}
			}
		})
	}
	// The kill lands once the refresh loops are busy.
	warmAt := int32(4 * len(families))
	var warm atomic.Int32
	warmed := make(chan struct{})
	exchange := func(s raceScope, code string) {
		start := time.Now()
		tok, ok := w.exchange(t, w.app, code)
		log.request(s, "exchange", start, ok, tok.AccessToken, tok.RefreshToken)
	}
	for s, f := range families {
		app := w.app
		if s.app == w.jwtApp.Client.ID {
			app = w.jwtApp
		}
		hold(func() {
			start := time.Now()
			_, refresh := f.latest()
			tok, ok := w.token(t, app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
			if ok {
				f.set(tok)
			}
			log.request(s, "refresh", start, ok, tok.AccessToken, tok.RefreshToken)
			if warm.Add(1) == warmAt {
				close(warmed)
			}
		})
		hold(func() {
			start := time.Now()
			access, _ := f.latest()
			// An access token its own family's refresh rotated away is
			// inactive for that reason; only the kill's doing counts.
			ok := w.active(t, access)
			if cur, _ := f.latest(); cur != access {
				ok = false
			}
			log.request(s, "introspect", start, ok)
		})
	}
	for i, b := range w.browsers {
		s := raceScope{"", i, -1}
		hold(func() {
			start := time.Now()
			r := w.in.Request(t, http.MethodGet, "/account", "", nil, nil)
			r.AddCookie(b.Cookie)
			log.request(s, "cookie", start, w.do(t, r).Status == http.StatusOK)
		})
	}
	cc := raceScope{w.app.Client.ID, -1, -1}
	hold(func() {
		start := time.Now()
		tok, ok := w.token(t, w.app, url.Values{"grant_type": {"client_credentials"}, "audience": {w.probe.Client.ID}})
		log.request(cc, "client_credentials", start, ok, tok.AccessToken)
	})

	// Of each browser's codes: one is exchanged before the kill, one
	// racing it, one after.
	for s, c := range codes {
		exchange(s, c[0])
	}
	<-warmed
	var racing sync.WaitGroup
	for s, c := range codes {
		racing.Go(func() { exchange(s, c[1]) })
	}
	killStart := time.Now()
	action.kill(t, w, families)
	killEnd.Store(time.Now().UnixNano())
	racing.Wait()
	for s, c := range codes {
		exchange(s, c[2])
	}
	busyAfter.Wait()
	close(stop)
	holders.Wait()

	return w.check(t, action, log, families, killStart, time.Unix(0, killEnd.Load()))
}

// check applies the promise to what the holders saw, then looks at every
// token and cookie once more.
func (w *raceWorld) check(t *testing.T, action killAction, log *raceLog, families map[raceScope]*raceFamily, killStart, killEnd time.Time) raceTally {
	t.Helper()
	var tally raceTally
	aliveAfter := map[string]int{} // successes after the kill where the kill ended nothing
	for _, r := range log.requests {
		tally.requests++
		if !r.start.After(killEnd) {
			continue
		}
		tally.after++
		switch {
		case !r.ok:
			tally.afterRefused++
		case action.ends(w, r):
			tally.violations++
			t.Errorf("%s %s started %v after the kill returned and succeeded", r.what, r.scope, r.start.Sub(killEnd))
		default:
			aliveAfter[r.what]++
		}
	}
	for _, r := range log.requests {
		if r.start.Before(killEnd) && r.end.After(killStart) {
			tally.straddling++
		}
	}
	for _, tok := range log.tokens {
		if !action.endsTokens(w, tok.scope) {
			continue
		}
		if w.active(t, tok.token) {
			tally.violations++
			t.Errorf("a token of %s obtained during the round is still active after the kill", tok.scope)
		} else {
			tally.deadTokens++
		}
	}
	// What the kill did not end still works: the newest tokens of other
	// families, and other browsers' cookies.
	for s, f := range families {
		if action.endsTokens(w, s) {
			continue
		}
		if access, refresh := f.latest(); !w.active(t, refresh) || !w.active(t, access) {
			t.Errorf("%s: a family the kill should have left alone is dead", s)
		}
	}
	for i, b := range w.browsers {
		s := raceScope{"", i, -1}
		r := w.in.Request(t, http.MethodGet, "/account", "", nil, nil)
		r.AddCookie(b.Cookie)
		signedIn := w.do(t, r).Status == http.StatusOK
		if ends := action.endsRequests(w, s); signedIn == ends {
			t.Errorf("browser %d signed in %v after the kill, want %v", i, signedIn, !ends)
		}
	}
	if len(aliveAfter) == 0 {
		t.Errorf("nothing the kill did not concern succeeded after it: the round proves nothing")
	}
	// A revoked family is not theft: the kill raises no reuse alarm.
	if ev := w.in.Events(t, 0, audit.RefreshReused); len(ev) > 0 {
		for _, e := range ev {
			if e.UserID == w.userID || e.ClientID == w.app.Client.ID || e.ClientID == w.jwtApp.Client.ID {
				t.Errorf("a kill raised %s for %s: %v", e.Type, e.ClientID, e.Details)
			}
		}
	}
	return tally
}
