package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
)

var (
	t0     = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)
	quiet  = slog.New(slog.DiscardHandler)
	future = t0.Add(100 * 365 * 24 * time.Hour)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// openStore opens a fresh database in the test's temporary directory and
// returns it with its path, for tests that reopen it.
func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// allAudit lists every committed audit event in Seq order.
func allAudit(t *testing.T, s storage.Audit) []storage.AuditEvent {
	t.Helper()
	var evs []storage.AuditEvent
	if err := s.WalkAudit(t.Context(), func(e storage.AuditEvent) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

// pending lists every undelivered outbox message, due or not.
func pending(t *testing.T, s storage.Store) []storage.OutboxMessage {
	t.Helper()
	ms, err := storage.PendingOutbox(t.Context(), s, future, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestRecordWritesInTheCallersTransaction(t *testing.T) {
	hooks := []string{"https://hooks.example.com/a"}
	tests := []struct {
		name      string
		eventType string
		fnErr     error
		wantAudit int
		wantAlert int
	}{
		{"an event recorded in a transaction that commits is kept", audit.SigninFailed, nil, 1, 0},
		{"an event recorded in a transaction that fails is gone", audit.SigninFailed, errors.New("the action failed"), 0, 0},
		{"an alert recorded in a transaction that commits is kept with its outbox message", audit.UserSuspended, nil, 1, 1},
		{"an alert recorded in a transaction that fails leaves neither event nor outbox message", audit.UserSuspended, errors.New("the action failed"), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			rec := audit.NewRecorder(s, quiet, hooks, fixedClock(t0))
			err := s.InTx(t.Context(), func(ctx context.Context) error {
				if err := rec.Record(ctx, storage.AuditEvent{Type: tt.eventType, Actor: "cli", Result: audit.Success}); err != nil {
					return err
				}
				if n := len(allAudit(t, s)); n != 0 {
					// Outside the transaction nothing is visible yet.
					t.Errorf("the event is visible outside the transaction before it commits (%d rows)", n)
				}
				return tt.fnErr
			})
			if !errors.Is(err, tt.fnErr) {
				t.Fatalf("InTx = %v, want %v", err, tt.fnErr)
			}
			if n := len(allAudit(t, s)); n != tt.wantAudit {
				t.Fatalf("%d audit events, want %d", n, tt.wantAudit)
			}
			if n := len(pending(t, s)); n != tt.wantAlert {
				t.Fatalf("%d outbox messages, want %d", n, tt.wantAlert)
			}
		})
	}
}

func TestRecordStampsAndChainsEvents(t *testing.T) {
	s, _ := openStore(t)
	rec := audit.NewRecorder(s, quiet, nil, fixedClock(t0))
	given := t0.Add(-time.Hour)
	if err := rec.Record(t.Context(), storage.AuditEvent{Type: audit.UserCreated, Actor: "cli", Result: audit.Success}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(t.Context(), storage.AuditEvent{Type: audit.SigninFailed, Time: given, Actor: "u_1", Result: audit.Failure}); err != nil {
		t.Fatal(err)
	}
	evs := allAudit(t, s)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	t.Run("an event without a time gets the recorder's clock", func(t *testing.T) {
		if !evs[0].Time.Equal(t0) {
			t.Fatalf("time %v, want %v", evs[0].Time, t0)
		}
	})
	t.Run("an event with a time keeps it", func(t *testing.T) {
		if !evs[1].Time.Equal(given) {
			t.Fatalf("time %v, want %v", evs[1].Time, given)
		}
	})
	t.Run("the events form an intact hash chain", func(t *testing.T) {
		var v storage.ChainVerifier
		for _, e := range evs {
			if err := v.Check(e); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestRecordRequestFillsIPAndUserAgent(t *testing.T) {
	s, _ := openStore(t)
	rec := audit.NewRecorder(s, quiet, nil, fixedClock(t0))
	tests := []struct {
		name, ua, wantUA string
	}{
		{"a short user agent is kept whole", "Mozilla/5.0 test", "Mozilla/5.0 test"},
		{"a long user agent is cut to 256 bytes, marked", strings.Repeat("x", 1000), strings.Repeat("x", 253) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recErr error
			h := httpx.ClientIP(httpx.ClientIPConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				recErr = rec.RecordRequest(r, storage.AuditEvent{Type: audit.SignedOut, Actor: "u_1", Result: audit.Success})
			}))
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/account/logout", nil)
			req.RemoteAddr = "192.0.2.7:4321"
			req.Header.Set("User-Agent", tt.ua)
			h.ServeHTTP(httptest.NewRecorder(), req)
			if recErr != nil {
				t.Fatal(recErr)
			}
			evs := allAudit(t, s)
			got := evs[len(evs)-1]
			if got.IP != "192.0.2.7" || got.UserAgent != tt.wantUA {
				t.Fatalf("IP %q, user agent of %d bytes; want 192.0.2.7 and %d bytes", got.IP, len(got.UserAgent), len(tt.wantUA))
			}
		})
	}
}

func TestAlertsAreQueuedPerWebhook(t *testing.T) {
	tests := []struct {
		eventType string
		alerting  bool
	}{
		{audit.RefreshReused, true},
		{audit.SigninThrottled, true},
		{audit.UserSuspended, true},
		{audit.SigninFailed, false},
		{audit.SigninSucceeded, false},
		{audit.UserCreated, false},
		{audit.TokenIssued, false},
		{audit.KeysRotated, false},
	}
	hookSets := []struct {
		name  string
		hooks []string
	}{
		{"no webhook", nil},
		{"one webhook", []string{"https://hooks.example.com/a"}},
		{"two webhooks", []string{"https://hooks.example.com/a", "https://pager.example.net/b"}},
	}
	for _, hs := range hookSets {
		for _, tt := range tests {
			verb := "queues no message"
			if tt.alerting && len(hs.hooks) > 0 {
				verb = "queues one message per webhook"
			}
			t.Run(tt.eventType+" with "+hs.name+" "+verb, func(t *testing.T) {
				s, _ := openStore(t)
				rec := audit.NewRecorder(s, quiet, hs.hooks, fixedClock(t0))
				e := storage.AuditEvent{Type: tt.eventType, Actor: "cli", UserID: "u_1", IP: "192.0.2.1",
					Result: audit.Denied, Details: map[string]string{"why": "test"}}
				if err := rec.Record(t.Context(), e); err != nil {
					t.Fatal(err)
				}
				msgs := pending(t, s)
				want := 0
				if tt.alerting {
					want = len(hs.hooks)
				}
				if len(msgs) != want {
					t.Fatalf("%d outbox messages, want %d", len(msgs), want)
				}
				stored := allAudit(t, s)[0]
				wantBody, err := json.Marshal(audit.AlertPayload(stored))
				if err != nil {
					t.Fatal(err)
				}
				for i, m := range msgs {
					if m.Target != hs.hooks[i] || m.Kind != audit.OutboxAlert {
						t.Errorf("message %d: kind %q target %q, want %q to %q", i, m.Kind, m.Target, audit.OutboxAlert, hs.hooks[i])
					}
					if string(m.Payload) != string(wantBody) {
						t.Errorf("message %d payload %s, want %s", i, m.Payload, wantBody)
					}
					if !m.NextAttemptAt.Equal(t0) || m.Attempts != 0 {
						t.Errorf("message %d: due %v after %d attempts, want due at once", i, m.NextAttemptAt, m.Attempts)
					}
				}
			})
		}
	}
}

func TestAlertPayload(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	e := storage.AuditEvent{Seq: 7, Time: at, Type: audit.RefreshReused, Actor: "client:c_1", UserID: "u_1",
		ClientID: "c_1", IP: "192.0.2.1", UserAgent: "curl", Result: audit.Denied,
		Details: map[string]string{"request_id": "r1"}, PrevHash: []byte{1}, Hash: []byte{2}}
	b, err := json.Marshal(audit.AlertPayload(e))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key string
		want      any
	}{
		{"the sequence number is carried", "seq", float64(7)},
		{"the time is in UTC", "time", "2030-01-02T02:04:05Z"},
		{"the type is carried", "type", audit.RefreshReused},
		{"the user is carried", "user_id", "u_1"},
		{"the client is carried", "client_id", "c_1"},
		{"the result is carried", "result", audit.Denied},
		{"the user agent is left out", "user_agent", nil},
		{"the hash chain is left out", "hash", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got[tt.key] != tt.want {
				t.Fatalf("%s = %v, want %v (body %s)", tt.key, got[tt.key], tt.want, b)
			}
		})
	}
}
