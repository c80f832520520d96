package storage

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAuditConditions(t *testing.T) {
	micros := func(t time.Time) any { return t.UnixMicro() }

	if conds, args := AuditConditions(AuditFilter{Limit: 5}, micros); len(conds) != 0 || len(args) != 0 {
		t.Errorf("a zero filter: %q %v, want no conditions", conds, args)
	}

	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	until := since.Add(time.Hour)
	conds, args := AuditConditions(AuditFilter{
		UserID: "u", ClientID: "c", Type: "login", Result: "ok",
		Since: since, Until: until, AfterSeq: 7, BeforeSeq: 70, Limit: 5,
	}, micros)
	wantConds := []string{
		"user_id = ? AND user_id <> ''",
		"client_id = ?",
		"type = ?",
		"result = ?",
		"time >= ?",
		"time < ?",
		"seq > ?",
		"seq < ?",
	}
	wantArgs := []any{"u", "c", "login", "ok", since.UnixMicro(), until.UnixMicro(), int64(7), int64(70)}
	if !reflect.DeepEqual(conds, wantConds) || !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("every field set:\n got %q %v\nwant %q %v", conds, args, wantConds, wantArgs)
	}
	for _, c := range conds {
		if strings.Count(c, "?") != 1 {
			t.Errorf("condition %q has %d placeholders, want one", c, strings.Count(c, "?"))
		}
	}
}
