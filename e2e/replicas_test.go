package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"
)

// TestReplicasBehindALoadBalancer runs three replicas on one PostgreSQL
// database behind haproxy (round robin, no stickiness) and breaks them as
// a bad day would: a sign-in whose requests, WebAuthn ceremonies included,
// land on different replicas; a replica killed with SIGKILL in the middle
// of a sign-in and of refresh loops; a suspension through one replica
// while the user's tokens are refreshed on all three; and alerts queued by
// one process and delivered by whichever replica takes them, each once.
func TestReplicasBehindALoadBalancer(t *testing.T) {
	hook := newWebhook(t)
	secretFile := filepath.Join(t.TempDir(), "alert-secret")
	if err := os.WriteFile(secretFile, []byte(hook.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := startReplicas(t, 3, fmt.Sprintf("dev: true\nalerts:\n  webhooks: [%s]\n  secret_file: %s\n", hook.url, secretFile))
	cb := newAppCallback(t)
	var app registered
	rs.cliJSON(&app, "client", "add", "--name", "Wiki", "--redirect-uri", cb.url)
	wiki := newRP(t, rs.issuer, app.ClientID, app.ClientSecret, cb.url)
	admin := account{email: "admin@localhost", password: testPassword}
	tb := newTab(t)
	tb.addAuthenticator(securityKey)

	t.Run("a browser sign-in and its key ceremonies cross replicas", func(t *testing.T) {
		mark := len(rs.lb.requests())
		tb.enrollWithKey(rs.issuer, rs.enrollURL())
		a := wiki.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		browserSignIn(t, tb, rs.issuer, a, admin, "password+key")
		if _, _, c := wiki.exchange(t, a, codeFrom(t, tb.waitLocation(cb.url), a)); c.ACR != "phrh" {
			t.Errorf("acr %q, want phrh", c.ACR)
		}
		reqs := rs.lb.requests()[mark:]
		replicas := map[string]bool{}
		ceremonies, crossed := 0, 0
		for i, r := range reqs {
			replicas[r.replica] = true
			begin, ok := strings.CutSuffix(r.path, "/begin")
			if !ok || !strings.HasPrefix(r.path, "/mfa/webauthn/") {
				continue
			}
			for _, f := range reqs[i+1:] {
				if f.path == begin+"/finish" {
					ceremonies++
					if f.replica != r.replica {
						crossed++
					}
					t.Logf("%s began on %s, finished on %s", begin, r.replica, f.replica)
					break
				}
			}
		}
		if ceremonies < 2 || crossed == 0 {
			t.Errorf("%d WebAuthn ceremonies, %d begun on one replica and finished on another; want a registration and an assertion, one crossing", ceremonies, crossed)
		}
		if len(replicas) != 3 {
			t.Errorf("the sign-in's %d requests were served by %v, want all three replicas", len(reqs), replicas)
		}
	})

	t.Run("a replica killed in the middle of a sign-in", func(t *testing.T) {
		a := wiki.newRequest(oauth2.SetAuthURLParam("prompt", "login"))
		tb.navigate(a.url)
		tb.waitLocation(rs.issuer + "/login")
		tb.fill(map[string]string{"email": admin.email, "password": admin.password}, "form[action='/login'] button[type=submit]")
		tb.waitLocation(rs.issuer + "/mfa/verify")
		// The replica that took the password dies with the flow half done.
		victim := rs.lastServed(t, http.MethodPost, "/login")
		rs.replicas[victim].kill()
		tb.click("#use-key")
		if _, _, c := wiki.exchange(t, a, codeFrom(t, tb.waitLocation(cb.url), a)); c.Email != admin.email {
			t.Errorf("signed in as %q", c.Email)
		}
		rs.revive(t, victim)
	})

	var ada addedUser
	rs.cliJSON(&ada, "user", "add", "ada@localhost")
	user := enroll(t, newBrowser(t, rs.issuer), ada.EnrollmentURL, ada.Email)
	// One sign-in, then single sign-on in the same browser: many grants of
	// one user and session.
	b := newBrowser(t, rs.issuer)
	signedIn := false
	grants := func(t *testing.T, n int) []string {
		t.Helper()
		var rts []string
		for range n {
			a := wiki.newRequest()
			var p *page
			if !signedIn {
				p = signIn(t, b, a, user, "totp", nextCode(t, user.totpSecret))
				signedIn = true
			} else {
				p = b.get(a.url)
			}
			tok, _, _ := wiki.exchange(t, a, a.callback(t, p, cb.url))
			rts = append(rts, tok.RefreshToken)
		}
		return rts
	}

	t.Run("a replica killed in the middle of refresh loops loses no acknowledged token", func(t *testing.T) {
		loops := startRefreshLoops(t, wiki.cfg, grants(t, 8))
		loops.waitSucceeded(t, 40)
		victim := 1
		rs.replicas[victim].kill()
		killed := loops.succeeded.Load()
		loops.waitSucceeded(t, killed+80)
		rs.revive(t, victim)
		loops.stop()
		if loops.refused.Load() > 0 {
			t.Errorf("%d refreshes with an acknowledged token were refused (%v)", loops.refused.Load(), loops.lastRefusal.Load())
		}
		// Each loop's last acknowledged token still works, on every replica.
		for i, l := range loops.held {
			if tok, err := refresh(t.Context(), wiki.cfg, l.refresh); err != nil {
				t.Errorf("loop %d: its last acknowledged refresh token: %v", i, err)
			} else if introspect(t, rs.issuer, app.ClientID, app.ClientSecret, tok.AccessToken)["active"] != true {
				t.Errorf("loop %d: the access token just issued is not active", i)
			}
		}
		t.Logf("8 refresh loops through haproxy: %d refreshes succeeded, %d failed in transit (answered by no replica or cut off) and were retried with the same token, 0 refused; %d succeeded before the kill; the last failure: %v",
			loops.succeeded.Load(), loops.failed.Load(), killed, loops.lastFailure.Load())
	})

	t.Run("a suspension through one replica stops the user's tokens on all of them", func(t *testing.T) {
		rts := grants(t, 9)
		// Three loops on each replica, addressed directly, not through
		// haproxy: each replica must refuse on its own.
		var pinned []oauth2.Config
		for i := range rts {
			cfg := wiki.cfg
			cfg.Endpoint.TokenURL = "http://" + rs.replicas[i%3].listen + "/oauth2/token"
			pinned = append(pinned, cfg)
		}
		loops := startPinnedRefreshLoops(t, pinned, rts)
		loops.waitSucceeded(t, 60)
		var adminAPI registered
		rs.cliJSON(&adminAPI, "client", "add", "--name", "Ops bot", "--grant", "client_credentials", "--admin-api")
		r1 := "http://" + rs.replicas[0].listen
		status, body := postForm(t, r1+"/oauth2/token", adminAPI.ClientID, adminAPI.ClientSecret,
			url.Values{"grant_type": {"client_credentials"}, "scope": {"keygate:admin"}})
		token, _ := body["access_token"].(string)
		if status != http.StatusOK || token == "" {
			t.Fatalf("admin API token: %d %v", status, body)
		}
		req, _ := http.NewRequest(http.MethodPost, r1+"/api/admin/v1/users/"+ada.UserID+"/suspend", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if status, body := doJSON(t, req); status != http.StatusOK && status != http.StatusNoContent {
			t.Fatalf("suspend through replica r1: %d %v\n%s", status, body, tail(rs.replicas[0].stdout.String()+rs.replicas[0].stderr.String(), 3000))
		}
		cut := time.Now()
		loops.waitAttemptsAfter(t, cut, 30)
		loops.stop()
		before, after, succeededAfter := loops.countAround(cut)
		if before == 0 {
			t.Fatal("no refresh succeeded before the suspension: the run proves nothing")
		}
		if succeededAfter > 0 {
			t.Errorf("%d of %d refreshes that started after the suspension returned succeeded", succeededAfter, after)
		}
		active := 0
		for _, tok := range loops.issued() {
			for _, in := range rs.replicas {
				if introspect(t, "http://"+in.listen, app.ClientID, app.ClientSecret, tok)["active"] != false {
					active++
				}
			}
		}
		if active > 0 {
			t.Errorf("%d token answers on the three replicas still say active after the suspension", active)
		}
		t.Logf("9 refresh loops, 3 on each replica: %d refreshes succeeded before the suspension, %d started after it, 0 succeeded; %d tokens inactive on all three replicas",
			before, after, len(loops.issued()))
	})

	t.Run("each alert is delivered once across replicas", func(t *testing.T) {
		// The command line queues each suspension's alert in the database;
		// the three replicas' deliverers race to send them.
		var users []addedUser
		for i := range 20 {
			var u addedUser
			rs.cliJSON(&u, "user", "add", fmt.Sprintf("temp%02d@localhost", i))
			users = append(users, u)
		}
		for _, u := range users {
			rs.cli("user", "suspend", u.Email)
		}
		// A message is marked delivered once its webhook answered; when
		// none is left, the count of each is final.
		rs.waitOutboxDelivered(t)
		got := map[string]int{}
		for _, a := range hook.all() {
			if a.Type == "user.suspended" {
				got[a.UserID]++
			}
		}
		for _, u := range users {
			if got[u.UserID] != 1 {
				t.Errorf("%s: suspension alert delivered %d times, want once", u.Email, got[u.UserID])
			}
		}
	})
}

// addedUser is `keygate user add --json`.
type addedUser struct {
	UserID        string `json:"user_id"`
	Email         string `json:"email"`
	EnrollmentURL string `json:"enrollment_url"`
}

// lastServed is the index of the replica that served the last request
// with this method and path.
func (rs *replicaSet) lastServed(t *testing.T, method, path string) int {
	t.Helper()
	reqs := rs.lb.requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].method == method && reqs[i].path == path {
			for j := range rs.replicas {
				if replicaName(j) == reqs[i].replica {
					return j
				}
			}
		}
	}
	t.Fatalf("haproxy logged no %s %s", method, path)
	return -1
}

// revive starts a killed replica again and waits until haproxy sends it
// requests.
func (rs *replicaSet) revive(t *testing.T, i int) {
	t.Helper()
	rs.replicas[i].start(0)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(rs.issuer + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get(servedHeader) == replicaName(i) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("haproxy did not take %s back", replicaName(i))
}

// waitOutboxDelivered waits until no queued message is left undelivered,
// as the database says.
func (rs *replicaSet) waitOutboxDelivered(t *testing.T) {
	t.Helper()
	db, err := pgx.Connect(t.Context(), rs.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int
		if err := db.QueryRow(t.Context(), `SELECT count(*) FROM outbox_message WHERE delivered_at IS NULL`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued after 30 s", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// heldTokens is what one refresh loop holds: its last acknowledged tokens.
type heldTokens struct{ refresh, access string }

// refreshLoops refresh token families in tight loops, as apps do, and
// retry a refresh that failed in transit with the same token.
type refreshLoops struct {
	succeeded, failed, refused atomic.Int64
	lastRefusal, lastFailure   atomic.Value
	held                       []*heldTokens
	done                       chan struct{}
	wg                         sync.WaitGroup

	mu       sync.Mutex
	attempts []refreshAttempt
	all      []string
}

type refreshAttempt struct {
	start time.Time
	ok    bool
}

func startRefreshLoops(t *testing.T, cfg oauth2.Config, rts []string) *refreshLoops {
	cfgs := make([]oauth2.Config, len(rts))
	for i := range cfgs {
		cfgs[i] = cfg
	}
	return startPinnedRefreshLoops(t, cfgs, rts)
}

func startPinnedRefreshLoops(t *testing.T, cfgs []oauth2.Config, rts []string) *refreshLoops {
	l := &refreshLoops{done: make(chan struct{}), all: append([]string(nil), rts...)}
	for i, rt := range rts {
		h := &heldTokens{refresh: rt}
		l.held = append(l.held, h)
		l.wg.Go(func() { l.run(cfgs[i], h) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *refreshLoops) run(cfg oauth2.Config, h *heldTokens) {
	for {
		select {
		case <-l.done:
			return
		default:
		}
		start := time.Now()
		tok, err := refresh(context.Background(), cfg, h.refresh)
		l.mu.Lock()
		l.attempts = append(l.attempts, refreshAttempt{start, err == nil})
		if err == nil {
			h.refresh, h.access = tok.RefreshToken, tok.AccessToken
			l.all = append(l.all, tok.AccessToken, tok.RefreshToken)
		}
		l.mu.Unlock()
		var re *oauth2.RetrieveError
		switch {
		case err == nil:
			l.succeeded.Add(1)
		case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500:
			// keygate refused the token: after a suspension that is the
			// point, otherwise an acknowledged token was lost.
			l.refused.Add(1)
			l.lastRefusal.Store(err.Error())
		default:
			l.failed.Add(1)
			l.lastFailure.Store(err.Error())
		}
	}
}

func (l *refreshLoops) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
}

// waitSucceeded waits until n refreshes in all have succeeded.
func (l *refreshLoops) waitSucceeded(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for l.succeeded.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d refreshes succeeded in 60 s (%d failed, %d refused: %v)", l.succeeded.Load(), n, l.failed.Load(), l.refused.Load(), l.lastRefusal.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAttemptsAfter waits until n refreshes started after cut have ended.
func (l *refreshLoops) waitAttemptsAfter(t *testing.T, cut time.Time, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, after, _ := l.countAround(cut)
		if after >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d refreshes after the cut in 60 s", after)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countAround counts the refreshes that succeeded having started before
// cut, those that started after it, and those of them that succeeded.
func (l *refreshLoops) countAround(cut time.Time) (succeededBefore, after, succeededAfter int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.attempts {
		switch {
		case !a.start.After(cut) && a.ok:
			succeededBefore++
		case a.start.After(cut):
			after++
			if a.ok {
				succeededAfter++
			}
		}
	}
	return
}

// issued is every token the loops got, and the ones they started with.
func (l *refreshLoops) issued() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}
