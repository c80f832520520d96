package audit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// anonymous records an anonymous failure of type typ from addr.
func anonymous(t *testing.T, rec *audit.Recorder, typ, addr string) {
	t.Helper()
	var err error
	h := httpx.ClientIP(httpx.ClientIPConfig{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err = rec.RecordAnonymous(r, storage.AuditEvent{Type: typ, Actor: "client:nobody", Result: audit.Failure})
	}))
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth2/revoke", nil)
	req.RemoteAddr = addr
	h.ServeHTTP(httptest.NewRecorder(), req)
	if err != nil {
		t.Fatal(err)
	}
}

// split separates full events from summaries.
func split(evs []storage.AuditEvent) (full, summaries []storage.AuditEvent) {
	for _, e := range evs {
		if e.Actor == audit.SummaryActor {
			summaries = append(summaries, e)
		} else {
			full = append(full, e)
		}
	}
	return full, summaries
}

func TestRecordAnonymousBoundsWhatAnyoneCanWrite(t *testing.T) {
	t.Run("one address gets ten events of a type a minute, and the rest are counted", func(t *testing.T) {
		s, _ := openStore(t)
		clock := clocktest.New(t0)
		rec := audit.NewRecorder(s, quiet, nil, clock.Now)
		for range 25 {
			anonymous(t, rec, audit.TokenRevoked, "192.0.2.1:1000")
		}
		for range 11 {
			anonymous(t, rec, audit.TokenFailed, "192.0.2.1:1000")
		}
		for range 3 {
			anonymous(t, rec, audit.TokenRevoked, "192.0.2.2:1000")
		}
		full, summaries := split(allAudit(t, s))
		if len(full) != 23 || len(summaries) != 0 {
			t.Fatalf("%d events and %d summaries before the minute ends, want 23 and 0", len(full), len(summaries))
		}
		clock.Advance(time.Minute)
		if err := rec.FlushAnonymous(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		_, summaries = split(allAudit(t, s))
		if len(summaries) != 2 {
			t.Fatalf("%d summaries, want one per event type: %v", len(summaries), summaries)
		}
		want := map[string]map[string]string{
			audit.TokenFailed:  {"left_out": "1", "addresses": "1", "top_address": "192.0.2.1", "top_address_left_out": "1"},
			audit.TokenRevoked: {"left_out": "15", "addresses": "1", "top_address": "192.0.2.1", "top_address_left_out": "15"},
		}
		for _, e := range summaries {
			for k, v := range want[e.Type] {
				if e.Details[k] != v {
					t.Errorf("%s summary: %s = %q, want %q (%v)", e.Type, k, e.Details[k], v, e.Details)
				}
			}
			if e.Result != audit.Failure || e.Details["since"] != "2030-06-15T12:00:00Z" || e.Details["until"] != "2030-06-15T12:01:00Z" {
				t.Errorf("summary %v", e)
			}
		}
		anonymous(t, rec, audit.TokenRevoked, "192.0.2.1:1000")
		if full, _ := split(allAudit(t, s)); len(full) != 24 {
			t.Errorf("%d events; in the next minute the address gets its share again", len(full))
		}
	})

	t.Run("all addresses together get a hundred events a minute", func(t *testing.T) {
		s, _ := openStore(t)
		clock := clocktest.New(t0)
		rec := audit.NewRecorder(s, quiet, nil, clock.Now)
		for i := range 300 {
			anonymous(t, rec, audit.TokenFailed, fmt.Sprintf("10.0.%d.%d:1", i/250, i%250))
		}
		clock.Advance(time.Minute)
		// The next anonymous failure ends the window as a flush would.
		anonymous(t, rec, audit.TokenFailed, "10.9.9.9:1")
		full, summaries := split(allAudit(t, s))
		if len(full) != 101 || len(summaries) != 1 {
			t.Fatalf("%d events and %d summaries, want 100 + 1 and 1", len(full), len(summaries))
		}
		if d := summaries[0].Details; d["left_out"] != "200" || d["addresses"] != "200" {
			t.Errorf("summary %v", d)
		}
		if full[100].Seq < summaries[0].Seq {
			t.Error("the summary of the ended window came after an event of the next")
		}
	})

	t.Run("the addresses of one IPv6 /64 share a share", func(t *testing.T) {
		s, _ := openStore(t)
		rec := audit.NewRecorder(s, quiet, nil, clocktest.New(t0).Now)
		for i := range 20 {
			anonymous(t, rec, audit.TokenFailed, fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1))
		}
		if err := rec.FlushAnonymous(t.Context(), true); err != nil {
			t.Fatal(err)
		}
		full, summaries := split(allAudit(t, s))
		if len(full) != 10 || len(summaries) != 1 || summaries[0].Details["top_address"] != "2001:db8:1:2::/64" {
			t.Fatalf("%d events, summaries %v; want 10 and one naming the /64", len(full), summaries)
		}
	})
}
