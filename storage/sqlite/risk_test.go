package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/conformance"
)

// riskStore is a store with users "u" and "v".
func riskStore(t *testing.T) *Store {
	t.Helper()
	s, _ := openTemp(t)
	for _, id := range []string{"u", "v"} {
		if err := s.CreateUser(t.Context(), storage.User{ID: id, Email: id + "@example.com", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// recordSignIns records a sign-in of userID at each time, in one
// transaction, and returns their ids.
func recordSignIns(t *testing.T, s *Store, userID string, times ...time.Time) []int64 {
	t.Helper()
	var ids []int64
	err := s.InTx(t.Context(), func(ctx context.Context) error {
		for _, at := range times {
			id, err := s.RecordSignIn(ctx, storage.SignInRecord{UserID: userID, Time: at, Country: "FR"})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The conformance suite passes whole seconds; this backend promises
// microseconds, in UTC, and truncates anything finer.
func TestRiskTimesKeepMicroseconds(t *testing.T) {
	s := riskStore(t)
	ctx := t.Context()
	fine := t0.Add(123456789 * time.Nanosecond).In(time.FixedZone("UTC+2", 2*60*60))
	want := t0.Add(123456 * time.Microsecond)

	if err := s.TouchDevice(ctx, storage.Device{ID: "d", UserID: "u", FirstSeen: fine, LastSeen: fine.Add(time.Microsecond)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetDevice(ctx, "u", "d")
	if err != nil {
		t.Fatal(err)
	}
	if d.FirstSeen != want || d.LastSeen != want.Add(time.Microsecond) { // == also checks the location is UTC
		t.Errorf("device times = %v, %v; want %v, %v", d.FirstSeen, d.LastSeen, want, want.Add(time.Microsecond))
	}

	if _, err := s.RecordSignIn(ctx, storage.SignInRecord{UserID: "u", Time: fine}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.RecentSignIns(ctx, "u", 1)
	if err != nil || len(rs) != 1 || rs[0].Time != want {
		t.Errorf("RecentSignIns = %+v, %v; want one at %v", rs, err, want)
	}
}

func TestTouchDevice(t *testing.T) {
	s := riskStore(t)
	ctx := t.Context()

	t.Run("a new device without FirstSeen is first seen at LastSeen", func(t *testing.T) {
		if err := s.TouchDevice(ctx, storage.Device{ID: "d1", UserID: "u", LastSeen: t0, SignIns: 41}); err != nil {
			t.Fatal(err)
		}
		d, err := s.GetDevice(ctx, "u", "d1")
		if err != nil || !d.FirstSeen.Equal(t0) || !d.LastSeen.Equal(t0) || d.SignIns != 1 {
			t.Fatalf("GetDevice = %+v, %v; want first and last seen at %v, one sign-in", d, err, t0)
		}
	})

	t.Run("a device without an id is refused", func(t *testing.T) {
		if err := s.TouchDevice(ctx, storage.Device{UserID: "u", LastSeen: t0}); err == nil {
			t.Fatal("TouchDevice without an id succeeded")
		}
		if _, err := s.GetDevice(ctx, "u", ""); err == nil {
			t.Fatal("a device without an id was stored")
		}
	})
}

func TestRecentSignInsLimits(t *testing.T) {
	s := riskStore(t)
	ctx := t.Context()
	times := make([]time.Time, storage.RecentSignInsMax+50)
	for i := range times {
		times[i] = t0.Add(time.Duration(i) * time.Second)
	}
	recordSignIns(t, s, "u", times...)

	for _, tc := range []struct{ limit, want int }{
		{0, storage.RecentSignInsDefault},
		{-5, storage.RecentSignInsDefault},
		{7, 7},
		{storage.RecentSignInsMax, storage.RecentSignInsMax},
		{storage.RecentSignInsMax + 1, storage.RecentSignInsMax},
		{1 << 30, storage.RecentSignInsMax},
	} {
		rs, err := s.RecentSignIns(ctx, "u", tc.limit)
		if err != nil || len(rs) != tc.want {
			t.Errorf("RecentSignIns with limit %d: %d, %v; want %d", tc.limit, len(rs), err, tc.want)
			continue
		}
		if newest := times[len(times)-1]; !rs[0].Time.Equal(newest) {
			t.Errorf("RecentSignIns with limit %d starts at %v, want %v", tc.limit, rs[0].Time, newest)
		}
	}
}

func TestRecentSignInsAtOneTimeComeLatestRecordedFirst(t *testing.T) {
	s := riskStore(t)
	ids := recordSignIns(t, s, "u", t0, t0.Add(time.Hour), t0, t0)
	rs, err := s.RecentSignIns(t.Context(), "u", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range rs {
		got = append(got, r.ID)
	}
	if want := []int64{ids[1], ids[3], ids[2], ids[0]}; !equalIDs(got, want) {
		t.Fatalf("RecentSignIns ids = %v, want %v", got, want)
	}
}

// The history is read on every sign-in; it must walk the index, not sort.
func TestRecentSignInsUsesTheIndex(t *testing.T) {
	s := riskStore(t)
	p := queryPlan(t, s, `SELECT `+signInColumns+` FROM signin WHERE user_id = ? ORDER BY time DESC, id DESC LIMIT ?`, "u", 20)
	if !strings.Contains(p, "signin_user_id_time") || strings.Contains(p, "TEMP B-TREE") {
		t.Fatalf("query plan %q: want signin_user_id_time and no sort", p)
	}
}

func TestTrimSignIns(t *testing.T) {
	conformance.TrimSignIns(t, func(t *testing.T) (storage.Store, conformance.Trim) {
		s := riskStore(t)
		return s, s.trimSignIns
	})
}

// Revoking a user's or a session's tokens must use the partial indexes
// (0006): without the repeated condition SQLite would scan every token.
func TestRevocationUsesThePartialIndexes(t *testing.T) {
	s := riskStore(t)
	for _, c := range []struct{ query, index string }{
		{revokeSubjectSQL, "token_subject"},
		{revokeSessionSQL, "token_sid"},
		{`SELECT seq FROM audit_event WHERE user_id = ? AND user_id != ''`, "audit_event_user_id"},
	} {
		if p := queryPlan(t, s, c.query, "x"); !strings.Contains(p, c.index) {
			t.Errorf("%s: plan %q does not use %s", c.query, p, c.index)
		}
	}
}

// queryPlan is SQLite's plan for query, its steps joined by "; ".
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}
