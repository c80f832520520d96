package audit_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// Every field of an event is bounded before it is stored, however much
// a request put in it.
func TestRecordBoundsEveryField(t *testing.T) {
	s, _ := openStore(t)
	rec := audit.NewRecorder(s, quiet, nil, fixedClock(t0))
	huge := "\xff\x00" + strings.Repeat("é", 40_000) // and a byte that is not UTF-8, and a NUL
	details := map[string]string{"a": "kept", "bad\xff": "x"}
	for i := range 100 {
		details[fmt.Sprintf("k%03d%s", i, huge)] = huge
	}
	e := storage.AuditEvent{Type: huge, Actor: huge, UserID: huge, ClientID: huge, IP: huge,
		UserAgent: huge, Result: huge, Details: details}
	if err := rec.Record(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if len(details) != 102 || details["a"] != "kept" {
		t.Fatal("Record changed the caller's details")
	}
	got := allAudit(t, s)[0]

	check := func(name, v string, max int) {
		t.Helper()
		if len(v) > max || !utf8.ValidString(v) || strings.Contains(v, "\x00") {
			t.Errorf("%s: %d bytes (bound %d), valid UTF-8 %v, NUL %v", name, len(v), max, utf8.ValidString(v), strings.Contains(v, "\x00"))
		}
		if len(v) > 20 && !strings.HasSuffix(v, httpx.Ellipsis) {
			t.Errorf("%s was cut without a mark", name)
		}
	}
	check("type", got.Type, 64)
	check("actor", got.Actor, 256)
	check("user_id", got.UserID, 256)
	check("client_id", got.ClientID, 256)
	check("ip", got.IP, 64)
	check("user_agent", got.UserAgent, 256)
	check("result", got.Result, 32)
	for k, v := range got.Details {
		check("a details key", k, 64)
		check("a details value", v, 512)
	}
	if len(got.Details) != 16 || got.Details["a"] != "kept" || got.Details[httpx.Ellipsis] != "87 more" {
		t.Errorf("%d details, a=%q, …=%q; want 16, with 87 left out", len(got.Details), got.Details["a"], got.Details[httpx.Ellipsis])
	}
	var v storage.ChainVerifier
	if err := v.Check(got); err != nil {
		t.Errorf("the bounded event does not verify: %v", err)
	}
}

// Details that are valid UTF-8 but hold a NUL byte are made storable too:
// PostgreSQL would refuse the event, and it would go unrecorded.
func TestRecordReplacesNULInDetails(t *testing.T) {
	s, _ := openStore(t)
	rec := audit.NewRecorder(s, quiet, nil, fixedClock(t0))
	details := map[string]string{"client_id": "c\x00x", "k\x00": "v"}
	if err := rec.Record(t.Context(), storage.AuditEvent{Type: "token.failed", Details: details}); err != nil {
		t.Fatal(err)
	}
	if details["client_id"] != "c\x00x" {
		t.Fatal("Record changed the caller's details")
	}
	for k, v := range allAudit(t, s)[0].Details {
		if strings.Contains(k, "\x00") || strings.Contains(v, "\x00") {
			t.Errorf("detail %q: %q holds a NUL byte", k, v)
		}
	}
}
