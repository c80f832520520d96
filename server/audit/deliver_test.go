package audit_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
)

// webhook is a test receiver that records what it is sent and answers
// with status (200 unless set).
type webhook struct {
	mu       sync.Mutex
	status   int
	received []delivery
}

type delivery struct {
	body      []byte
	signature string
	ctype     string
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.received = append(w.received, delivery{body: body, signature: r.Header.Get(audit.SignatureHeader), ctype: r.Header.Get("Content-Type")})
	if w.status != 0 {
		rw.WriteHeader(w.status)
	}
}

func (w *webhook) setStatus(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status = code
}

func (w *webhook) deliveries() []delivery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]delivery(nil), w.received...)
}

func startWebhook(t *testing.T) (*webhook, *httptest.Server) {
	t.Helper()
	wh := &webhook{}
	srv := httptest.NewServer(wh)
	t.Cleanup(srv.Close)
	return wh, srv
}

// verifySignature checks a SignatureHeader value the way the documented
// receiver does: "t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>">".
func verifySignature(header string, body, secret []byte) (time.Time, bool) {
	ts, mac, ok := strings.Cut(header, ",")
	if !ok || !strings.HasPrefix(ts, "t=") || !strings.HasPrefix(mac, "v1=") {
		return time.Time{}, false
	}
	ts, mac = strings.TrimPrefix(ts, "t="), strings.TrimPrefix(mac, "v1=")
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	got, err := hex.DecodeString(mac)
	if err != nil {
		return time.Time{}, false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + string(body)))
	return time.Unix(unix, 0), hmac.Equal(got, m.Sum(nil))
}

var secret = []byte("0123456789abcdef-webhook-secret")

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		want     time.Duration
	}{
		{"before any failure the wait is 5s", 0, 5 * time.Second},
		{"after one failure the wait is 5s", 1, 5 * time.Second},
		{"after two failures the wait is 10s", 2, 10 * time.Second},
		{"after three failures the wait is 20s", 3, 20 * time.Second},
		{"after four failures the wait is 40s", 4, 40 * time.Second},
		{"after ten failures the wait is 5s·2⁹", 10, 2560 * time.Second},
		{"after eleven failures the wait is capped at 1h", 11, time.Hour},
		{"after a hundred failures the wait is still 1h", 100, time.Hour},
		{"after a billion failures the wait is still 1h", 1_000_000_000, time.Hour},
		{"a negative count waits 5s", -3, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := audit.Backoff(tt.failures); got != tt.want {
				t.Fatalf("Backoff(%d) = %v, want %v", tt.failures, got, tt.want)
			}
		})
	}
	t.Run("the wait never shrinks as failures grow", func(t *testing.T) {
		prev := time.Duration(0)
		for n := 1; n < 64; n++ {
			d := audit.Backoff(n)
			if d < prev {
				t.Fatalf("Backoff(%d) = %v < Backoff(%d) = %v", n, d, n-1, prev)
			}
			prev = d
		}
	})
}

func TestSign(t *testing.T) {
	body := []byte(`{"type":"user.suspended"}`)
	at := time.Unix(1_900_000_000, 0)
	sig := audit.Sign(secret, body, at)
	tests := []struct {
		name   string
		body   []byte
		secret []byte
		ok     bool
	}{
		{"the signature verifies with the shared secret", body, secret, true},
		{"it does not verify with another secret", body, []byte("another secret of some length"), false},
		{"it does not verify for another body", []byte(`{"type":"user.created"}`), secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, ok := verifySignature(sig, tt.body, tt.secret)
			if ok != tt.ok {
				t.Fatalf("verify %q = %v, want %v", sig, ok, tt.ok)
			}
			if !ts.Equal(at) {
				t.Fatalf("signed time %v, want %v", ts, at)
			}
		})
	}
	t.Run("the signature names its time, so a replay later is recognisable", func(t *testing.T) {
		if later := audit.Sign(secret, body, at.Add(time.Second)); later == sig {
			t.Fatal("signatures at two times are equal")
		}
		if !strings.HasPrefix(sig, "t=1900000000,v1=") {
			t.Fatalf("signature %q does not start with t=1900000000,v1=", sig)
		}
	})
}

// queueAlert records one alerting event for the given webhooks and returns
// its stored payload.
func queueAlert(t *testing.T, s *sqlite.Store, now func() time.Time, hooks ...string) []byte {
	t.Helper()
	rec := audit.NewRecorder(s, quiet, hooks, now)
	if err := rec.Record(t.Context(), storage.AuditEvent{Type: audit.RefreshReused, Actor: "client:c_1",
		UserID: "u_1", ClientID: "c_1", Result: audit.Denied, Details: map[string]string{"request_id": "r1"}}); err != nil {
		t.Fatal(err)
	}
	msgs := pending(t, s)
	if len(msgs) == 0 {
		t.Fatal("no outbox message was queued")
	}
	return msgs[len(msgs)-1].Payload
}

func TestDeliverSendsSignedAlerts(t *testing.T) {
	s, _ := openStore(t)
	wh, srv := startWebhook(t)
	clk := clocktest.New(t0)
	payload := queueAlert(t, s, clk.Now, srv.URL+"/alerts")
	clk.Advance(3 * time.Second)
	d := &audit.Deliverer{DB: s, Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}

	n, err := d.RunOnce(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v; want 1 delivered", n, err)
	}
	got := wh.deliveries()
	if len(got) != 1 {
		t.Fatalf("webhook received %d requests, want 1", len(got))
	}
	t.Run("the body is the alert JSON", func(t *testing.T) {
		if string(got[0].body) != string(payload) {
			t.Fatalf("body %s, want %s", got[0].body, payload)
		}
		if !strings.Contains(string(got[0].body), `"type":"token.refresh_reused"`) {
			t.Fatalf("body %s does not name the event type", got[0].body)
		}
		if got[0].ctype != "application/json" {
			t.Fatalf("Content-Type %q", got[0].ctype)
		}
	})
	t.Run("the signature verifies with the shared secret at the delivery time", func(t *testing.T) {
		ts, ok := verifySignature(got[0].signature, got[0].body, secret)
		if !ok {
			t.Fatalf("signature %q does not verify", got[0].signature)
		}
		if !ts.Equal(clk.Now()) {
			t.Fatalf("signed at %v, want the delivery time %v", ts, clk.Now())
		}
	})
	t.Run("the signature does not verify with a wrong secret", func(t *testing.T) {
		if _, ok := verifySignature(got[0].signature, got[0].body, []byte("not the secret at all, no")); ok {
			t.Fatal("signature verified with a wrong secret")
		}
	})
	t.Run("a delivered message is not sent again", func(t *testing.T) {
		clk.Advance(2 * time.Hour)
		n, err := d.RunOnce(t.Context())
		if err != nil || n != 0 {
			t.Fatalf("RunOnce = %d, %v; want 0", n, err)
		}
		if len(wh.deliveries()) != 1 {
			t.Fatalf("webhook received %d requests, want still 1", len(wh.deliveries()))
		}
		if left := pending(t, s); len(left) != 0 {
			t.Fatalf("%d messages still pending", len(left))
		}
	})
}

func TestDeliverRetriesAFailingWebhookWithBackoff(t *testing.T) {
	s, _ := openStore(t)
	wh, srv := startWebhook(t)
	wh.setStatus(http.StatusInternalServerError)
	clk := clocktest.New(t0)
	queueAlert(t, s, clk.Now, srv.URL)
	d := &audit.Deliverer{DB: s, Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}

	// Three failures in a row: each reschedules by Backoff(attempts).
	for attempt := 1; attempt <= 3; attempt++ {
		failedAt := clk.Now()
		n, err := d.RunOnce(t.Context())
		if err != nil || n != 0 {
			t.Fatalf("attempt %d: RunOnce = %d, %v; want 0 delivered and no error", attempt, n, err)
		}
		msgs := pending(t, s)
		if len(msgs) != 1 {
			t.Fatalf("attempt %d: %d pending messages, want 1", attempt, len(msgs))
		}
		m := msgs[0]
		wait := audit.Backoff(attempt)
		if m.Attempts != attempt || !m.NextAttemptAt.Equal(failedAt.Add(wait)) {
			t.Fatalf("attempt %d: %d attempts, next at %v; want %d, %v", attempt, m.Attempts, m.NextAttemptAt, attempt, failedAt.Add(wait))
		}
		if !strings.Contains(m.LastError, "500") {
			t.Fatalf("attempt %d: last error %q does not name the status", attempt, m.LastError)
		}
		// Just before the wait is over nothing is due, and nothing is sent.
		clk.Advance(wait - time.Second)
		if n, err := d.RunOnce(t.Context()); err != nil || n != 0 {
			t.Fatalf("attempt %d: early RunOnce = %d, %v", attempt, n, err)
		}
		if got := len(wh.deliveries()); got != attempt {
			t.Fatalf("attempt %d: webhook saw %d requests; a message was sent before its time", attempt, got)
		}
		clk.Advance(time.Second)
	}

	wh.setStatus(http.StatusNoContent)
	n, err := d.RunOnce(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("after recovery RunOnce = %d, %v; want 1", n, err)
	}
	got := wh.deliveries()
	if len(got) != 4 {
		t.Fatalf("webhook saw %d requests, want 4 (3 failed, 1 delivered)", len(got))
	}
	if string(got[3].body) != string(got[0].body) {
		t.Fatal("the retried body differs from the first")
	}
	if _, ok := verifySignature(got[3].signature, got[3].body, secret); !ok {
		t.Fatal("the retry's signature does not verify")
	}
	if left := pending(t, s); len(left) != 0 {
		t.Fatalf("%d messages still pending after delivery", len(left))
	}
}

func TestDeliverKeepsGoingPastAnUnreachableWebhook(t *testing.T) {
	s, _ := openStore(t)
	wh, srv := startWebhook(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there any more
	clk := clocktest.New(t0)
	queueAlert(t, s, clk.Now, deadURL, srv.URL)
	d := &audit.Deliverer{DB: s, Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}
	n, err := d.RunOnce(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v; want the reachable webhook delivered", n, err)
	}
	if len(wh.deliveries()) != 1 {
		t.Fatalf("reachable webhook saw %d requests", len(wh.deliveries()))
	}
	left := pending(t, s)
	if len(left) != 1 || left[0].Target != deadURL || left[0].Attempts != 1 {
		t.Fatalf("pending %+v; want the unreachable one, tried once", left)
	}
}

func TestOutboxSurvivesARestart(t *testing.T) {
	s, path := openStore(t)
	wh, srv := startWebhook(t)
	wh.setStatus(http.StatusServiceUnavailable)
	clk := clocktest.New(t0)
	hooks := []string{srv.URL + "/one", srv.URL + "/two"}
	queueAlert(t, s, clk.Now, hooks...)
	queueAlert(t, s, clk.Now, hooks...)

	// One failed round before the restart, so the schedule must survive too.
	d := &audit.Deliverer{DB: s, Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}
	if n, err := d.RunOnce(t.Context()); err != nil || n != 0 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	before := pending(t, s)
	if len(before) != 4 {
		t.Fatalf("%d messages pending before the restart, want 4", len(before))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	after := pending(t, s2)
	t.Run("every message is still pending after the restart, with its attempts and schedule", func(t *testing.T) {
		if len(after) != len(before) {
			t.Fatalf("%d messages after the restart, want %d", len(after), len(before))
		}
		for i := range before {
			b, a := before[i], after[i]
			if a.ID != b.ID || a.Target != b.Target || string(a.Payload) != string(b.Payload) ||
				a.Attempts != 1 || !a.NextAttemptAt.Equal(b.NextAttemptAt) {
				t.Errorf("message %d changed across the restart: %+v, was %+v", i, a, b)
			}
		}
	})
	t.Run("the reopened store delivers every message once the webhook is back", func(t *testing.T) {
		wh.setStatus(http.StatusOK)
		d2 := &audit.Deliverer{DB: s2, Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}
		if n, err := d2.RunOnce(t.Context()); err != nil || n != 0 {
			t.Fatalf("RunOnce before the backoff passed = %d, %v; want 0", n, err)
		}
		clk.Advance(audit.Backoff(1))
		if n, err := d2.RunOnce(t.Context()); err != nil || n != 4 {
			t.Fatalf("RunOnce = %d, %v; want 4", n, err)
		}
		if left := pending(t, s2); len(left) != 0 {
			t.Fatalf("%d messages still pending", len(left))
		}
		ok := 0
		for _, got := range wh.deliveries() {
			if _, valid := verifySignature(got.signature, got.body, secret); valid {
				ok++
			}
		}
		if ok != 8 { // 4 refused before the restart, 4 accepted after
			t.Fatalf("%d correctly signed requests, want 8", ok)
		}
	})
}

func TestDeliverNeverRetriesAnUndeliverableMessage(t *testing.T) {
	s, _ := openStore(t)
	clk := clocktest.New(t0)
	if _, err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{Kind: "refused", Target: "x", Payload: []byte("{}"),
		NextAttemptAt: clk.Now(), CreatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	d := &audit.Deliverer{DB: s, Logger: quiet, Now: clk.Now, Senders: map[string]func(context.Context, storage.OutboxMessage) error{
		"refused": func(context.Context, storage.OutboxMessage) error {
			attempts++
			return fmt.Errorf("550 no such mailbox: %w", audit.ErrUndeliverable)
		},
	}}
	for range 3 {
		if n, err := d.RunOnce(t.Context()); err != nil || n != 0 {
			t.Fatalf("RunOnce = %d, %v; want 0 delivered and no error", n, err)
		}
		clk.Advance(100 * 365 * 24 * time.Hour) // far past any backoff
	}
	if attempts != 1 {
		t.Fatalf("the sender was called %d times, want once", attempts)
	}
	kept, err := storage.PendingOutbox(t.Context(), s, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || !strings.Contains(kept[0].LastError, "550 no such mailbox") {
		t.Fatalf("outbox %+v; want the message kept with its error", kept)
	}
}

// A deliverer stopped while it sends (the server shutting down) still
// records the attempt, so the message is due again after the backoff, not
// held by its claim until the lease runs out.
func TestDeliverStoppedMidSendLeavesTheMessageDueSoon(t *testing.T) {
	s, _ := openStore(t)
	clk := clocktest.New(t0)
	if _, err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{Kind: "mail", Target: "x", Payload: []byte("{}"),
		NextAttemptAt: clk.Now(), CreatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	d := &audit.Deliverer{DB: s, Logger: quiet, Now: clk.Now, Senders: map[string]func(context.Context, storage.OutboxMessage) error{
		"mail": func(ctx context.Context, _ storage.OutboxMessage) error {
			stop() // the server stops while the message is on its way
			<-ctx.Done()
			return ctx.Err()
		},
	}}
	if _, err := d.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	msgs := pending(t, s)
	if len(msgs) != 1 || msgs[0].Attempts != 1 || !msgs[0].NextAttemptAt.Equal(t0.Add(audit.Backoff(1))) {
		t.Fatalf("outbox %+v; want the message due again after %v", msgs, audit.Backoff(1))
	}
}
