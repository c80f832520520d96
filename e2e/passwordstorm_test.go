package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPasswordStorm posts 500 wrong passwords at once, each for another
// address from another IP (so no throttle helps): a password check costs
// argon2id's 19 MiB, and unbounded they asked for 9 GiB. Every post must
// get a truthful answer — the wrong-password form, or 503 with
// Retry-After — the peak memory must stay within what the bounded checks
// need, and an app's token request must be served meanwhile.
func TestPasswordStorm(t *testing.T) {
	const posts = 500
	dir := t.TempDir()
	kg := startKeygate(t, filepath.Join(dir, "data"), `trusted_proxies: [127.0.0.1/32, "::1/128"]
throttle:
  per_ip: 1000
  per_account: 1000
`)
	var svc, crm, wiki registered
	kg.cliJSON(&svc, "client", "add", "--name", "Nightly job", "--grant", "client_credentials")
	const redirect = "http://127.0.0.1:9/callback"
	kg.cliJSON(&crm, "client", "add", "--name", "CRM", "--redirect-uri", redirect)
	kg.cliJSON(&wiki, "client", "add", "--name", "Wiki", "--redirect-uri", redirect)
	wikiRP := newRP(t, kg.issuer, wiki.ClientID, wiki.ClientSecret, redirect)

	// Ann signed in to the CRM before the storm; she opens the wiki during it.
	ann := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ann@localhost"), "ann@localhost")
	annBrowser := newBrowser(t, kg.issuer)
	crmSignIn := newRP(t, kg.issuer, crm.ClientID, crm.ClientSecret, redirect).newRequest()
	crmSignIn.callback(t, signIn(t, annBrowser, crmSignIn, ann, "totp", nextCode(t, ann.totpSecret)), redirect)

	// Each attacker first fetches the form, as a browser must, for its
	// own session cookie, CSRF token and flow.
	field := regexp.MustCompile(`name="(csrf_token|flow)" value="([^"]+)"`)
	type attacker struct {
		client *http.Client
		ip     string
		form   url.Values
	}
	attackers := make([]attacker, posts)
	transport := &http.Transport{MaxIdleConnsPerHost: posts}
	for i := range attackers {
		jar, _ := cookiejar.New(nil)
		a := attacker{client: &http.Client{Jar: jar, Transport: transport}, ip: fmt.Sprintf("198.51.%d.%d", i/250, i%250+1),
			form: url.Values{"email": {fmt.Sprintf("nobody%d@example.com", i)}, "password": {"guess-" + strconv.Itoa(i)}}}
		req, _ := http.NewRequest(http.MethodGet, kg.issuer+"/login", nil)
		req.Header.Set("X-Forwarded-For", a.ip)
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		for _, m := range field.FindAllStringSubmatch(body, -1) {
			a.form.Set(m[1], m[2])
		}
		if a.form.Get("csrf_token") == "" || a.form.Get("flow") == "" {
			t.Fatalf("no form on the login page: %d %s", resp.StatusCode, tail(body, 400))
		}
		attackers[i] = a
	}
	before := peakRSS(t, kg)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers = map[string]int{}
		start   = make(chan struct{})
	)
	for _, a := range attackers {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, kg.issuer+"/login", strings.NewReader(a.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", a.ip)
			// No t.Fatal here: FailNow belongs to the test's goroutine.
			resp, err := a.client.Do(req)
			answer := ""
			if err != nil {
				answer = "error: " + err.Error()
			} else {
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				body := string(raw)
				switch {
				case err != nil:
					answer = fmt.Sprintf("%d, reading the body: %v", resp.StatusCode, err)
				case resp.StatusCode == http.StatusUnauthorized && strings.Contains(body, "Email or password is incorrect."):
					answer = "wrong password"
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" &&
					strings.Contains(body, "Too many sign-ins at once."):
					answer = "busy, retry"
				default:
					answer = fmt.Sprintf("%d %s", resp.StatusCode, tail(body, 200))
				}
			}
			mu.Lock()
			answers[answer]++
			mu.Unlock()
		})
	}
	close(start)
	// Single sign-on checks no password, so it goes on while the storm runs.
	began := time.Now()
	sso := wikiRP.newRequest()
	if _, _, claims := wikiRP.exchange(t, sso, sso.callback(t, annBrowser.get(sso.url), redirect)); claims.Email != "ann@localhost" {
		t.Errorf("single sign-on during the storm signed in %+v", claims)
	}
	ssoTook := time.Since(began)
	// And an app keeps getting tokens.
	status, tok := clientPost(t, kg.issuer+"/oauth2/token", "client_secret_basic", svc.ClientID, svc.ClientSecret,
		url.Values{"grant_type": {"client_credentials"}})
	if status != http.StatusOK || tok["access_token"] == nil {
		t.Errorf("a token request during the storm: %d %v", status, tok)
	}
	wg.Wait()

	for answer, n := range answers {
		if answer != "wrong password" && answer != "busy, retry" {
			t.Errorf("%d posts were answered %q", n, answer)
		}
	}
	if answers["wrong password"] == 0 {
		t.Error("no password was checked at all")
	}
	// At most 100 MiB on two cores; the checks in flight are one per core,
	// so each core beyond two may add its 19 MiB.
	peak := peakRSS(t, kg)
	limit := 100 + 19*max(0, runtime.NumCPU()-2)
	// The binary's mapped pages count too, and how many are mapped depends
	// on the page cache (right after go build, nearly all of them), so the
	// log says how much of the resident memory they are.
	now := procStatusMiB(t, kg, "VmRSS", "RssFile")
	t.Logf("%d posts: %v; single sign-on took %v during them; peak RSS %d MiB before, %d MiB after (limit %d); now %d MiB, %d MiB of it mapped files",
		posts, answers, ssoTook.Round(time.Millisecond), before, peak, limit, now["VmRSS"], now["RssFile"])
	if peak > limit {
		t.Errorf("peak RSS %d MiB, want at most %d", peak, limit)
	}
}

// peakRSS is keygate's resident high-water mark in MiB.
func peakRSS(t *testing.T, in *instance) int {
	t.Helper()
	return procStatusMiB(t, in, "VmHWM")["VmHWM"]
}

// procStatusMiB reads fields of keygate's /proc status given in kB, in MiB.
func procStatusMiB(t *testing.T, in *instance, fields ...string) map[string]int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]int{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, v, ok := strings.Cut(s.Text(), ":")
		if !ok || !slices.Contains(fields, name) {
			continue
		}
		kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		if err != nil {
			t.Fatal(err)
		}
		got[name] = kb / 1024
	}
	for _, name := range fields {
		if _, ok := got[name]; !ok {
			t.Fatalf("no %s in /proc status", name)
		}
	}
	return got
}
