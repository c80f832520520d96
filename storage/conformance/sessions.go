package conformance

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testSessions(t *testing.T, newStore NewStore) {
	sess := func(id, sid, userID string, expires time.Time) storage.BrowserSession {
		return storage.BrowserSession{
			IDHash:     []byte("hash-" + id),
			SID:        sid,
			UserID:     userID,
			Data:       []byte(`{"k":"v"}`),
			IP:         "192.0.2.1",
			UserAgent:  "Mozilla/5.0",
			CreatedAt:  t0,
			LastSeenAt: t0,
			ExpiresAt:  expires,
		}
	}
	s1 := sess("1", "sid-1", "u", at(time.Hour))

	t.Run("a session reads back until it expires", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		ok(t, st.CreateSession(ctx, s1))
		got, err := st.GetSession(ctx, s1.IDHash, at(time.Minute))
		ok(t, err)
		same(t, "session", got, s1)
		_, err = st.GetSession(ctx, s1.IDHash, at(2*time.Hour))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a session before sign-in has no user", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		anon := sess("anon", "sid-anon", "", at(time.Hour))
		ok(t, st.CreateSession(ctx, anon))
		got, err := st.GetSession(ctx, anon.IDHash, t0)
		ok(t, err)
		same(t, "session", got, anon)
	})

	t.Run("an update rewrites the session but not its id, SID or creation", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		ok(t, st.CreateSession(ctx, s1))
		next := s1
		next.UserID, next.Data, next.LastSeenAt, next.ExpiresAt = "v", []byte("new"), at(time.Minute), at(3*time.Hour)
		next.IP, next.UserAgent = "198.51.100.7", "curl/8"
		changed := next
		changed.SID, changed.CreatedAt = "sid-other", at(time.Minute)
		ok(t, st.UpdateSession(ctx, changed))
		got, err := st.GetSession(ctx, s1.IDHash, at(2*time.Hour))
		ok(t, err)
		same(t, "session", got, next)
	})

	t.Run("a taken id hash is refused", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		ok(t, st.CreateSession(ctx, s1))
		other := sess("1", "sid-other", "v", at(time.Hour))
		wantErr(t, st.CreateSession(ctx, other), storage.ErrAlreadyExists)
		got, err := st.GetSession(ctx, s1.IDHash, t0)
		ok(t, err)
		same(t, "session", got, s1)
	})

	t.Run("an ended session is never written back", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		ok(t, st.CreateSession(ctx, s1))
		ok(t, st.DeleteSession(ctx, s1.IDHash))
		wantErr(t, st.UpdateSession(ctx, s1), storage.ErrNotFound)
		_, err := st.GetSession(ctx, s1.IDHash, t0)
		wantErr(t, err, storage.ErrNotFound)

		// Ended with all of its user's sessions, likewise.
		s2 := sess("2", "sid-2", "u", at(time.Hour))
		ok(t, st.CreateSession(ctx, s2))
		_, err = st.DeleteUserSessions(ctx, "u")
		ok(t, err)
		wantErr(t, st.UpdateSession(ctx, s2), storage.ErrNotFound)
		_, err = st.GetSession(ctx, s2.IDHash, t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a suspended or unknown user holds no session", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		ok(t, st.CreateSession(ctx, s1))
		ok(t, st.UpdateUser(ctx, "u", func(u *storage.User) error { u.SuspendedAt = t0; return nil }))
		wantErr(t, st.UpdateSession(ctx, s1), storage.ErrNotFound)
		wantErr(t, st.CreateSession(ctx, sess("2", "sid-2", "u", at(time.Hour))), storage.ErrNotFound)
		wantErr(t, st.CreateSession(ctx, sess("3", "sid-3", "nobody", at(time.Hour))), storage.ErrNotFound)
		for _, id := range []string{"2", "3"} {
			_, err := st.GetSession(ctx, []byte("hash-"+id), t0)
			wantErr(t, err, storage.ErrNotFound)
		}
		// A session before sign-in belongs to nobody and is always written.
		ok(t, st.CreateSession(ctx, sess("anon", "sid-anon", "", at(time.Hour))))
	})

	t.Run("a session stands while an update would be written", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		anon := sess("anon", "sid-anon", "", at(time.Hour))
		ok(t, st.CreateSession(ctx, s1))
		ok(t, st.CreateSession(ctx, anon))
		ok(t, st.SessionStands(ctx, s1.IDHash, "u", at(time.Minute)))
		ok(t, st.SessionStands(ctx, anon.IDHash, "", at(time.Minute)))
		// Expired, signed in as someone else, or not signed in any more.
		wantErr(t, st.SessionStands(ctx, s1.IDHash, "u", at(2*time.Hour)), storage.ErrNotFound)
		wantErr(t, st.SessionStands(ctx, s1.IDHash, "v", t0), storage.ErrNotFound)
		wantErr(t, st.SessionStands(ctx, s1.IDHash, "", t0), storage.ErrNotFound)
		wantErr(t, st.SessionStands(ctx, []byte("other"), "u", t0), storage.ErrNotFound)
		// Suspended, then ended.
		ok(t, st.UpdateUser(ctx, "u", func(u *storage.User) error { u.SuspendedAt = t0; return nil }))
		wantErr(t, st.SessionStands(ctx, s1.IDHash, "u", t0), storage.ErrNotFound)
		ok(t, st.DeleteSession(ctx, anon.IDHash))
		wantErr(t, st.SessionStands(ctx, anon.IDHash, "", t0), storage.ErrNotFound)
	})

	t.Run("an unknown session is not found", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		ok(t, st.CreateSession(ctx, s1))
		_, err := st.GetSession(ctx, []byte("other"), t0)
		wantErr(t, err, storage.ErrNotFound)
		wantErr(t, st.DeleteSession(ctx, []byte("other")), storage.ErrNotFound)
	})

	t.Run("a deleted session is gone", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		ok(t, st.CreateSession(ctx, s1))
		ok(t, st.DeleteSession(ctx, s1.IDHash))
		_, err := st.GetSession(ctx, s1.IDHash, t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a session is ended by its SID, which names its user", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		other := sess("2", "sid-2", "u", at(time.Hour))
		anon := sess("anon", "sid-anon", "", at(time.Hour))
		for _, s := range []storage.BrowserSession{s1, other, anon} {
			ok(t, st.CreateSession(ctx, s))
		}

		userID, err := st.DeleteSessionBySID(ctx, s1.SID)
		ok(t, err)
		if userID != s1.UserID {
			t.Fatalf("DeleteSessionBySID returned user %q, want %q", userID, s1.UserID)
		}
		_, err = st.GetSession(ctx, s1.IDHash, t0)
		wantErr(t, err, storage.ErrNotFound)
		listed, err := st.ListUserSessions(ctx, "u")
		ok(t, err)
		if len(listed) != 1 || listed[0].SID != other.SID {
			t.Fatalf("the user's sessions after DeleteSessionBySID: %+v, want only %s", listed, other.SID)
		}

		// Again, or a SID nobody has: nothing to end.
		for _, sid := range []string{s1.SID, "sid-unknown"} {
			_, err := st.DeleteSessionBySID(ctx, sid)
			wantErr(t, err, storage.ErrNotFound)
		}

		// A session before sign-in has no user to report.
		userID, err = st.DeleteSessionBySID(ctx, anon.SID)
		ok(t, err)
		if userID != "" {
			t.Fatalf("DeleteSessionBySID of a session before sign-in returned user %q", userID)
		}
		_, err = st.GetSession(ctx, anon.IDHash, t0)
		wantErr(t, err, storage.ErrNotFound)
		_, err = st.GetSession(ctx, other.IDHash, t0)
		ok(t, err)
	})

	t.Run("an empty SID ends no session", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		noSID := sess("nosid", "", "u", at(time.Hour))
		ok(t, st.CreateSession(ctx, noSID))
		ok(t, st.CreateSession(ctx, s1))
		if _, err := st.DeleteSessionBySID(ctx, ""); err == nil {
			t.Fatal("DeleteSessionBySID with an empty SID succeeded")
		}
		for _, s := range []storage.BrowserSession{noSID, s1} {
			_, err := st.GetSession(ctx, s.IDHash, t0)
			ok(t, err)
		}
	})

	t.Run("a user's sessions are listed and ended together", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		mine := []storage.BrowserSession{s1, sess("2", "sid-2", "u", at(time.Hour)), sess("3", "sid-3", "u", at(2*time.Hour))}
		theirs := sess("4", "sid-4", "v", at(time.Hour))
		anon := sess("5", "sid-5", "", at(time.Hour))
		for _, s := range append(slices.Clone(mine), theirs, anon) {
			ok(t, st.CreateSession(ctx, s))
		}

		listed, err := st.ListUserSessions(ctx, "u")
		ok(t, err)
		var sids []string
		for _, s := range listed {
			sids = append(sids, s.SID)
		}
		slices.Sort(sids)
		same(t, "listed SIDs", sids, []string{"sid-1", "sid-2", "sid-3"})

		deleted, err := st.DeleteUserSessions(ctx, "u")
		ok(t, err)
		slices.Sort(deleted)
		same(t, "deleted SIDs", deleted, []string{"sid-1", "sid-2", "sid-3"})

		listed, err = st.ListUserSessions(ctx, "u")
		ok(t, err)
		if len(listed) != 0 {
			t.Fatalf("sessions left after DeleteUserSessions: %+v", listed)
		}
		for _, s := range []storage.BrowserSession{theirs, anon} {
			_, err := st.GetSession(ctx, s.IDHash, t0)
			ok(t, err)
		}
		deleted, err = st.DeleteUserSessions(ctx, "u")
		ok(t, err)
		if len(deleted) != 0 {
			t.Fatalf("a second DeleteUserSessions returned %v", deleted)
		}
	})

	t.Run("the sweep deletes only expired sessions", func(t *testing.T) {
		st, ctx := withUsers(t, newStore)
		live := sess("live", "sid-live", "u", at(time.Hour))
		dead := []storage.BrowserSession{sess("d1", "sid-d1", "u", at(-time.Hour)), sess("d2", "sid-d2", "", at(-time.Minute))}
		for _, s := range append(slices.Clone(dead), live) {
			ok(t, st.CreateSession(ctx, s))
		}
		n, err := st.DeleteExpiredSessions(ctx, t0)
		ok(t, err)
		if n != 2 {
			t.Fatalf("DeleteExpiredSessions = %d, want 2", n)
		}
		_, err = st.GetSession(ctx, live.IDHash, t0)
		ok(t, err)
		listed, err := st.ListUserSessions(ctx, "u")
		ok(t, err)
		if len(listed) != 1 {
			t.Fatalf("%d sessions left for u, want 1", len(listed))
		}
	})
}

// withUsers is a new store holding users u and v, whom the sessions
// belong to.
func withUsers(t *testing.T, newStore NewStore) (storage.Store, context.Context) {
	st, ctx := newStore(t), t.Context()
	newUser(t, ctx, st, "u")
	newUser(t, ctx, st, "v")
	return st, ctx
}

func testFlows(t *testing.T, newStore NewStore) {
	flow := storage.Flow{
		ID:          "flow-1",
		SessionHash: []byte("hash-1"),
		ClientID:    "app",
		Query:       "client_id=app&response_type=code&scope=openid",
		State:       "password",
		RequiredACR: "mfa",
		MaxAge:      -1,
		ForceLogin:  true,
		Reasons:     []string{"the app asks for two factors"},
		CreatedAt:   t0,
		ExpiresAt:   at(10 * time.Minute),
	}

	t.Run("a flow reads back until it expires", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateFlow(ctx, flow))
		got, err := st.GetFlow(ctx, flow.ID, at(time.Minute))
		ok(t, err)
		same(t, "flow", got, flow)
		_, err = st.GetFlow(ctx, flow.ID, at(time.Hour))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a taken id is refused", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateFlow(ctx, flow))
		wantErr(t, st.CreateFlow(ctx, flow), storage.ErrAlreadyExists)
	})

	t.Run("an update advances the flow", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateFlow(ctx, flow))
		ok(t, st.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			f.State = "done"
			f.UserID = "u"
			f.ACR = "mfa"
			f.AMR = []string{"pwd", "otp"}
			f.AuthTime = at(2 * time.Minute)
			f.MaxAge = 5 * time.Minute
			return nil
		}))
		got, err := st.GetFlow(ctx, flow.ID, at(3*time.Minute))
		ok(t, err)
		want := flow
		want.State, want.UserID, want.ACR, want.AMR, want.AuthTime, want.MaxAge =
			"done", "u", "mfa", []string{"pwd", "otp"}, at(2*time.Minute), 5*time.Minute
		same(t, "flow", got, want)
	})

	t.Run("an update whose closure fails changes nothing and returns its error", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateFlow(ctx, flow))
		boom := errors.New("boom")
		wantErr(t, st.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			f.State = "changed"
			return boom
		}), boom)
		got, err := st.GetFlow(ctx, flow.ID, t0)
		ok(t, err)
		same(t, "flow", got, flow)
	})

	t.Run("an unknown flow is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateFlow(ctx, flow))
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"get", func() error { _, err := st.GetFlow(ctx, "nope", t0); return err }},
			{"update", func() error { return st.UpdateFlow(ctx, "nope", func(*storage.Flow) error { return nil }) }},
			{"delete", func() error { return st.DeleteFlow(ctx, "nope") }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), storage.ErrNotFound) })
		}
	})

	t.Run("a deleted flow is gone", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateFlow(ctx, flow))
		ok(t, st.DeleteFlow(ctx, flow.ID))
		_, err := st.GetFlow(ctx, flow.ID, t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("the sweep deletes only expired flows", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for i, exp := range []time.Duration{-time.Hour, -time.Minute, time.Minute} {
			f := flow
			f.ID = []string{"old", "older", "live"}[i]
			f.ExpiresAt = at(exp)
			ok(t, st.CreateFlow(ctx, f))
		}
		n, err := st.DeleteExpiredFlows(ctx, t0)
		ok(t, err)
		if n != 2 {
			t.Fatalf("DeleteExpiredFlows = %d, want 2", n)
		}
		_, err = st.GetFlow(ctx, "live", t0)
		ok(t, err)
	})
}
