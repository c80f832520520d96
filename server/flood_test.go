package server_test

import (
	"bufio"
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
)

// lockedBuffer collects the server's log from its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// eventSize is what an event stores as text.
func eventSize(e storage.AuditEvent) int {
	n := len(e.Type) + len(e.Actor) + len(e.UserID) + len(e.ClientID) + len(e.IP) + len(e.UserAgent) + len(e.Result)
	for k, v := range e.Details {
		n += len(k) + len(v)
	}
	return n
}

// Requests that prove nothing, with a client id, user agent and form
// fields tens of kilobytes long, leave few, small audit events and short
// log lines: nobody on the network can grow the append-only audit log, or
// the log, at the rate they can send.
func TestOversizeAnonymousRequestsLeaveBoundedTraces(t *testing.T) {
	var logs lockedBuffer
	in := &instance{servertest.StartLogged(t, slog.New(slog.NewJSONHandler(&logs, nil)))}
	svc := in.registerClient(t, manage.ClientSpec{Name: "svc", GrantTypes: []string{"client_credentials"}})
	mark := in.AuditMark(t)

	user := strings.Repeat("ü", 11_000)
	hint := strings.Repeat("h", 60_000)
	agent := strings.Repeat("a", 8_000)
	post := func(path string, form url.Values, id, secret string) int {
		r := in.Request(t, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()),
			http.Header{"User-Agent": {agent}})
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		return servertest.Read(t, in.HTTP, r).Status
	}
	const n = 40
	for range n {
		if s := post("/oauth2/revoke", url.Values{"token": {"x"}, "token_type_hint": {hint}}, user, "wrong"); s != http.StatusUnauthorized {
			t.Fatalf("anonymous revoke: status %d", s)
		}
		if s := post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {hint}}, user, "wrong"); s != http.StatusUnauthorized {
			t.Fatalf("anonymous token request: status %d", s)
		}
	}
	if s := post("/oauth2/revoke", url.Values{"token": {"x"}, "token_type_hint": {hint}}, svc.Client.ID, svc.Secret); s != http.StatusOK {
		t.Fatalf("the client's own revoke: status %d", s)
	}

	evs := in.Events(t, mark, "")
	anonymous := map[string]int{}
	for _, e := range evs {
		if size := eventSize(e); size > 2048 {
			t.Errorf("a %s event stores %d bytes", e.Type, size)
		}
		if e.Result == audit.Failure {
			anonymous[e.Type]++
		}
	}
	// One address gets a few full events of a type a minute; the rest
	// are counted. Both kinds of request leave some: none at all would
	// prove nothing of their size.
	for _, typ := range []string{audit.TokenRevoked, audit.TokenFailed} {
		if anonymous[typ] == 0 {
			t.Errorf("no anonymous %s failure was written (failures written: %v)", typ, anonymous)
		}
	}
	for typ, got := range anonymous {
		if got > 10 {
			t.Errorf("%d anonymous %s failures of %d written in full", got, typ, n)
		}
	}
	last := evs[len(evs)-1]
	if last.Type != audit.TokenRevoked || last.Result != audit.Success || last.Details["token_type_hint"] != "other" {
		t.Errorf("the client's own revoke was recorded as %+v", last)
	}

	lines := logs.lines()
	if len(lines) < 2*n {
		t.Fatalf("%d log lines for %d requests", len(lines), 2*n+1)
	}
	for _, l := range lines {
		if len(l) > 8192 {
			t.Errorf("a log line of %d bytes: %.200s", len(l), l)
		}
	}
}
