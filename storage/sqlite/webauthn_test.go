package sqlite

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// The conformance suite passes whole seconds; this backend promises
// microseconds, and truncates anything finer.
func TestWebAuthnTimesKeepMicroseconds(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com"}); err != nil {
		t.Fatal(err)
	}
	fine := t0.Add(123456789 * time.Nanosecond).In(time.FixedZone("UTC+2", 2*60*60))
	want := t0.Add(123456 * time.Microsecond)

	cred := storage.WebAuthnCredential{ID: []byte("k"), UserID: "u", CreatedAt: fine,
		LastUsedAt: fine.Add(time.Microsecond), DisabledAt: fine.Add(2 * time.Microsecond)}
	if err := s.CreateWebAuthnCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetWebAuthnCredential(ctx, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", got.CreatedAt, want},
		{"LastUsedAt", got.LastUsedAt, want.Add(time.Microsecond)},
		{"DisabledAt", got.DisabledAt, want.Add(2 * time.Microsecond)},
	} {
		if tc.got != tc.want { // == also checks the location is UTC
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	if err := s.RecordWebAuthnUse(ctx, cred.ID, 1, true, fine.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetWebAuthnCredential(ctx, cred.ID); err != nil || got.LastUsedAt != want.Add(time.Second) {
		t.Errorf("LastUsedAt after a use = %v, %v; want %v", got.LastUsedAt, err, want.Add(time.Second))
	}

	c := storage.Challenge{ID: "c", CreatedAt: fine, ExpiresAt: fine.Add(time.Minute)}
	if err := s.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	gotC, err := s.ConsumeChallenge(ctx, c.ID, fine)
	if err != nil {
		t.Fatal(err)
	}
	if gotC.CreatedAt != want || gotC.ExpiresAt != want.Add(time.Minute) {
		t.Errorf("challenge times = %v, %v; want %v, %v", gotC.CreatedAt, gotC.ExpiresAt, want, want.Add(time.Minute))
	}
}

func TestChallengeExpiry(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	exists := func(id string) bool {
		t.Helper()
		var n int
		if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM webauthn_challenge WHERE id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	t.Run("an expired challenge is deleted when presented", func(t *testing.T) {
		if err := s.CreateChallenge(ctx, storage.Challenge{ID: "late", ExpiresAt: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeChallenge(ctx, "late", t0.Add(time.Microsecond)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("ConsumeChallenge of an expired challenge: %v, want ErrNotFound", err)
		}
		if exists("late") {
			t.Fatal("the expired challenge is still stored")
		}
	})

	t.Run("a challenge without an expiry is expired", func(t *testing.T) {
		if err := s.CreateChallenge(ctx, storage.Challenge{ID: "zero", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeChallenge(ctx, "zero", t0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("ConsumeChallenge with a zero ExpiresAt: %v, want ErrNotFound", err)
		}
	})

	t.Run("the sweep deletes challenges in batches", func(t *testing.T) {
		const n = sweepBatch + 3
		for i := range n {
			c := storage.Challenge{ID: "old-" + strconv.Itoa(i), ExpiresAt: t0}
			if err := s.CreateChallenge(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.DeleteExpiredChallenges(ctx, t0); err != nil || got != n {
			t.Fatalf("DeleteExpiredChallenges = %d, %v; want %d", got, err, n)
		}
	})
}

// Disabled is stored as a non-zero time, so a disablement at the zero time
// would leave the credential usable; it is refused instead.
func TestDisablingAtTheZeroTimeIsRefused(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com"}); err != nil {
		t.Fatal(err)
	}
	aaguid := []byte("0123456789abcdef")
	cred := storage.WebAuthnCredential{ID: []byte("k"), UserID: "u", AAGUID: aaguid, CreatedAt: t0}
	if err := s.CreateWebAuthnCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableWebAuthnCredential(ctx, cred.ID, "r", time.Time{}); err == nil {
		t.Error("DisableWebAuthnCredential at the zero time succeeded")
	}
	if got, err := s.DisableWebAuthnByAAGUID(ctx, aaguid, "r", time.Time{}); err == nil {
		t.Errorf("DisableWebAuthnByAAGUID at the zero time succeeded: %d credentials", len(got))
	}
	if got, err := s.GetWebAuthnCredential(ctx, cred.ID); err != nil || !got.DisabledAt.IsZero() || got.DisabledReason != "" {
		t.Errorf("credential after the refusals: %+v, %v", got, err)
	}
}
