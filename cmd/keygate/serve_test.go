package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// served is a `keygate serve` process of a test.
type served struct {
	url  string          // where it listens, http://127.0.0.1:PORT
	mu   sync.Mutex      // guards logs
	logs strings.Builder // what it printed: its JSON log and its messages
	done chan struct{}   // closed when the process has exited
	stop func()          // ends it with SIGTERM and waits until it has exited
}

// Logs returns what the server has printed so far.
func (s *served) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// startServe runs `keygate serve` with args on a free port as a process of
// its own; it is stopped with SIGTERM when t ends.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "debug"}, args...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{done: make(chan struct{})}
	var copied sync.WaitGroup
	copied.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := stderr.Read(buf)
			s.mu.Lock()
			s.logs.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	listening := make(chan string, 1)
	copied.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if addr, ok := strings.CutPrefix(sc.Text(), "keygate listening on "); ok {
				listening <- strings.Fields(addr)[0]
			}
		}
	})
	go func() {
		copied.Wait()
		_ = cmd.Wait()
		close(s.done)
	}()
	s.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-s.done
	}
	t.Cleanup(s.stop)
	select {
	case addr := <-listening:
		s.url = "http://" + addr
	case <-s.done:
		t.Fatalf("keygate serve exited before listening:\n%s", s.Logs())
	case <-time.After(time.Minute):
		t.Fatalf("keygate serve did not listen within a minute:\n%s", s.Logs())
	}
	return s
}

// clientCredentialsToken asks the server at base for an access token with
// the client_credentials grant and returns it.
func clientCredentialsToken(t *testing.T, base, clientID, secret string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint(t, base, "token_endpoint"),
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token: status %d, %+v, %v", resp.StatusCode, tok, err)
	}
	return tok.AccessToken
}

// introspect reports whether the server at base calls token active, asking
// as the client that holds it.
func introspect(t *testing.T, base, clientID, secret, token string) bool {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint(t, base, "introspection_endpoint"),
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: status %d, %v", resp.StatusCode, err)
	}
	return got.Active
}

// endpoint is the path of a discovery document's endpoint, on the server
// at base: the test's server runs on a port its issuer does not name.
func endpoint(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: status %d, %v", resp.StatusCode, err)
	}
	raw, _ := doc[name].(string)
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		t.Fatalf("discovery's %s is %q", name, raw)
	}
	return base + u.Path
}
