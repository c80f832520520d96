package manage_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

func TestReportSignIn(t *testing.T) {
	m, s := newManager(t, "https://alerts.example/hook")
	f := setUpSuspension(t, m, s)
	ctx := t.Context()
	if err := s.TouchDevice(ctx, storage.Device{ID: "dev-1", UserID: f.user.ID, FirstSeen: t0, LastSeen: t0}); err != nil {
		t.Fatal(err)
	}

	t.Run("another user's session is refused and nothing changes", func(t *testing.T) {
		if _, err := m.ReportSignIn(ctx, f.user.ID, "sid-3", "dev-1"); !errors.Is(err, manage.ErrInvalid) {
			t.Fatalf("ReportSignIn of another's session = %v, want ErrInvalid", err)
		}
		if _, err := s.GetSession(ctx, f.keepSession, t0); err != nil {
			t.Errorf("the other user's session: %v", err)
		}
		if _, err := s.GetDevice(ctx, f.user.ID, "dev-1"); err != nil {
			t.Errorf("the device was forgotten by a refused report: %v", err)
		}
		if evs := events(t, s, audit.SigninReported); len(evs) != 0 {
			t.Errorf("a refused report was recorded: %+v", evs)
		}
	})
	t.Run("an empty session id is refused", func(t *testing.T) {
		if _, err := m.ReportSignIn(ctx, f.user.ID, "", "dev-1"); !errors.Is(err, manage.ErrInvalid) {
			t.Fatalf("ReportSignIn without a session = %v, want ErrInvalid", err)
		}
	})

	got, err := m.ReportSignIn(ctx, f.user.ID, "sid-1", "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the session, its tokens and the device end; the rest stays", func(t *testing.T) {
		if !got.SessionEnded || got.TokensRevoked != 5 || !got.DeviceForgotten {
			t.Errorf("reported %+v, want the session ended, its 5 tokens revoked, the device forgotten", got)
		}
		for _, tr := range f.ownTokens {
			tok, err := s.GetToken(ctx, tr.Kind, tr.Signature)
			if err != nil {
				t.Fatal(err)
			}
			if fromSession := tr.SID == "sid-1"; tok.Active == fromSession {
				t.Errorf("%s %s (sid %q): active %v", tr.Kind, tr.Signature, tr.SID, tok.Active)
			}
		}
		if _, err := s.GetSession(ctx, f.ownSessions[1], t0); err != nil {
			t.Errorf("the user's other session ended too: %v", err)
		}
		if _, err := s.GetDevice(ctx, f.user.ID, "dev-1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the device: %v, want forgotten", err)
		}
	})
	t.Run("an alerting signin.reported is recorded and queued for the webhook", func(t *testing.T) {
		evs := events(t, s, audit.SigninReported)
		if len(evs) != 1 || evs[0].UserID != f.user.ID || evs[0].Details["tokens_revoked"] != "5" {
			t.Fatalf("events %+v", evs)
		}
		alerts := 0
		for _, om := range outbox(t, s) {
			if om.Kind == audit.OutboxAlert && om.Target == "https://alerts.example/hook" {
				alerts++
			}
		}
		if alerts != 1 {
			t.Errorf("%d alerts queued, want 1", alerts)
		}
	})
	t.Run("a session that had ended is still cut off from its tokens", func(t *testing.T) {
		again, err := m.ReportSignIn(ctx, f.user.ID, "sid-1", "dev-1")
		if err != nil || again.SessionEnded || again.DeviceForgotten {
			t.Fatalf("a second report = %+v, %v; want nothing more ended, no error", again, err)
		}
	})
}

func TestResetPassword(t *testing.T) {
	m, s := newManager(t)
	f := setUpSuspension(t, m, s)
	ctx := t.Context()
	if err := m.ResetPassword(ctx, f.user.ID, ""); !errors.Is(err, manage.ErrInvalid) {
		t.Fatalf("a reset to no password = %v, want ErrInvalid", err)
	}
	other := storage.Link{TokenHash: []byte("another reset link"), Purpose: storage.LinkPasswordReset, UserID: f.user.ID,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateLink(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := m.ResetPassword(ctx, f.user.ID, "$argon2id$new"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLink(ctx, other.Purpose, other.TokenHash, t0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("another reset link outlived the reset: %v", err)
	}
	u, err := s.GetUser(ctx, f.user.ID)
	if err != nil || u.PasswordHash != "$argon2id$new" {
		t.Fatalf("password hash %q, %v", u.PasswordHash, err)
	}
	for _, h := range f.ownSessions {
		if _, err := s.GetSession(ctx, h, t0); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a session outlived the reset: %v", err)
		}
	}
	for _, tr := range f.ownTokens {
		if tok, err := s.GetToken(ctx, tr.Kind, tr.Signature); err != nil || tok.Active {
			t.Errorf("%s %s outlived the reset (%v)", tr.Kind, tr.Signature, err)
		}
	}
	if _, err := s.GetSession(ctx, f.keepSession, t0); err != nil {
		t.Errorf("another user's session: %v", err)
	}
	if evs := events(t, s, audit.PasswordReset); len(evs) != 1 || evs[0].Details["sessions_ended"] != "2" {
		t.Errorf("events %+v", evs)
	}
	if err := m.ResetPassword(ctx, "nobody", "$argon2id$x"); !errors.Is(err, manage.ErrNotFound) {
		t.Errorf("a reset of nobody = %v, want ErrNotFound", err)
	}
}
