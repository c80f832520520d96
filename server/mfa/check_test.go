package mfa

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

// newChecker is a Handler with only what the code checks and enrolment
// keys need: a fresh database, a master key and a clock at t0.
func newChecker(t *testing.T) (*Handler, *sqlite.Store, *clocktest.Clock) {
	t.Helper()
	s := sqlitetest.Open(t)
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(t0)
	h := New(Deps{Store: s, Master: master, RecoveryKey: master.Derive("recovery-code", 32),
		Issuer: "keygate id.example.com", Now: clk.Now})
	return h, s, clk
}

func addUser(t *testing.T, s storage.Users, id string) storage.User {
	t.Helper()
	u := storage.User{ID: id, Email: id + "@example.com", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// enrolTOTP stores testSecret for the user, sealed the way enrolment does,
// and confirms it unless pending.
func enrolTOTP(t *testing.T, h *Handler, userID string, pending bool) {
	t.Helper()
	key, err := otp.NewKeyFromURL("otpauth://totp/keygate:" + userID + "?secret=" + testSecret +
		"&issuer=keygate&period=30&digits=6&algorithm=SHA1")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := h.d.Master.Seal([]byte(key.URL()), totpAAD(userID))
	if err != nil {
		t.Fatal(err)
	}
	cred := storage.TOTPCredential{UserID: userID, Sealed: sealed, CreatedAt: t0}
	if !pending {
		cred.ConfirmedAt = t0
	}
	if err := h.d.Store.PutTOTP(t.Context(), cred); err != nil {
		t.Fatal(err)
	}
}

func TestCheckTOTP(t *testing.T) {
	h, s, clk := newChecker(t)
	ctx := t.Context()
	addUser(t, s, "u_ann")
	enrolTOTP(t, h, "u_ann", false)

	// Each step runs in order on one credential: the replay rules depend on
	// what was accepted before.
	steps := []struct {
		name    string
		at      time.Time
		step    int64 // the step the typed code belongs to
		code    string
		wantMsg string // "" for accepted
	}{
		{"a wrong code is refused", t0, 0, "000000", "not correct"},
		{"the current code is accepted", t0, t0Step, "", ""},
		{"the same code again is refused as already used", t0, t0Step, "", "already used"},
		{"the previous step's code after the current one is refused as already used", t0, t0Step - 1, "", "already used"},
		{"the next step's code is accepted early (clock skew)", t0, t0Step + 1, "", ""},
		{"that code half a minute later, now current, is refused as already used", t0.Add(30 * time.Second), t0Step + 1, "", "already used"},
		{"a code a minute later is accepted", t0.Add(60 * time.Second), t0Step + 2, "", ""},
		{"a code two steps old is refused as not correct", t0.Add(5 * time.Minute), t0Step + 8, "", "not correct"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Set(st.at)
			code := st.code
			if code == "" {
				code = codeAt(t, testSecret, st.step)
			}
			method, msg, err := h.checkTOTP(ctx, "u_ann", code)
			if err != nil {
				t.Fatal(err)
			}
			if method != "totp" {
				t.Fatalf("method %q", method)
			}
			if st.wantMsg == "" && msg != "" {
				t.Fatalf("refused: %q", msg)
			}
			if st.wantMsg != "" && !strings.Contains(msg, st.wantMsg) {
				t.Fatalf("message %q, want one saying %q", msg, st.wantMsg)
			}
			if st.wantMsg == "" {
				cred, err := s.GetTOTP(ctx, "u_ann")
				if err != nil || cred.LastStep != st.step {
					t.Fatalf("last step %d, %v; want %d", cred.LastStep, err, st.step)
				}
			}
		})
	}

	t.Run("a user without an authenticator is told so", func(t *testing.T) {
		addUser(t, s, "u_bob")
		_, msg, err := h.checkTOTP(ctx, "u_bob", codeAt(t, testSecret, t0Step))
		if err != nil || !strings.Contains(msg, "No authenticator app is set up") {
			t.Fatalf("msg %q, %v", msg, err)
		}
	})
	t.Run("an unconfirmed authenticator does not count", func(t *testing.T) {
		addUser(t, s, "u_carol")
		enrolTOTP(t, h, "u_carol", true)
		clk.Set(t0)
		_, msg, err := h.checkTOTP(ctx, "u_carol", codeAt(t, testSecret, t0Step))
		if err != nil || !strings.Contains(msg, "No authenticator app is set up") {
			t.Fatalf("msg %q, %v", msg, err)
		}
	})
	t.Run("a seed sealed for another user does not open", func(t *testing.T) {
		addUser(t, s, "u_dave")
		ann, err := s.GetTOTP(ctx, "u_ann")
		if err != nil {
			t.Fatal(err)
		}
		// Copy Ann's sealed seed into Dave's row, as a database edit would.
		if err := s.PutTOTP(ctx, storage.TOTPCredential{UserID: "u_dave", Sealed: ann.Sealed, ConfirmedAt: t0, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := h.checkTOTP(ctx, "u_dave", codeAt(t, testSecret, t0Step)); err == nil {
			t.Fatalf("a transplanted seed was accepted (message %q)", msg)
		}
	})
}

func TestCheckRecovery(t *testing.T) {
	h, s, _ := newChecker(t)
	ctx := t.Context()
	addUser(t, s, "u_ann")
	addUser(t, s, "u_bob")
	codes, hashes, err := newRecoveryCodes(h.d.RecoveryKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceRecoveryCodes(ctx, "u_ann", hashes); err != nil {
		t.Fatal(err)
	}
	typedLower := strings.ToLower(strings.ReplaceAll(codes[1], "-", " "))
	steps := []struct {
		name, user, code, wantMsg string
	}{
		{"a code as shown is accepted", "u_ann", codes[0], ""},
		{"the same code again is refused", "u_ann", codes[0], "already used"},
		{"a code typed in lower case with a space is accepted", "u_ann", typedLower, ""},
		{"another user's code is refused", "u_bob", codes[2], "not correct"},
		{"a made-up code is refused", "u_ann", "AAAAA-AAAAA", "not correct"},
		{"a code of the wrong length is refused", "u_ann", codes[2][:8], "not correct"},
		{"an empty code is refused", "u_ann", "", "not correct"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			method, msg, err := h.checkRecovery(ctx, st.user, st.code)
			if err != nil {
				t.Fatal(err)
			}
			if method != "recovery_code" {
				t.Fatalf("method %q", method)
			}
			if (st.wantMsg == "") != (msg == "") || !strings.Contains(msg, st.wantMsg) {
				t.Fatalf("message %q, want %q", msg, st.wantMsg)
			}
		})
	}
	t.Run("two codes are used and eight are left", func(t *testing.T) {
		if n, err := s.CountRecoveryCodes(ctx, "u_ann"); err != nil || n != 8 {
			t.Fatalf("CountRecoveryCodes = %d, %v; want 8", n, err)
		}
	})
	t.Run("codes hashed under another key do not verify", func(t *testing.T) {
		other := *h
		other.d.RecoveryKey = bytes.Repeat([]byte{9}, 32)
		if _, msg, err := other.checkRecovery(ctx, "u_ann", codes[3]); err != nil || msg == "" {
			t.Fatalf("msg %q, %v; want refused", msg, err)
		}
	})
}

func TestPendingKey(t *testing.T) {
	h, s, _ := newChecker(t)
	ctx := t.Context()
	u := addUser(t, s, "u_ann")

	first, err := h.pendingKey(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the new key is stored sealed, unconfirmed", func(t *testing.T) {
		cred, err := s.GetTOTP(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !cred.ConfirmedAt.IsZero() {
			t.Fatal("a new key is confirmed")
		}
		if bytes.Contains(cred.Sealed, []byte(first.Secret())) {
			t.Fatal("the stored credential contains the secret in the clear")
		}
	})
	t.Run("reloading the enrolment page shows the same key", func(t *testing.T) {
		again, err := h.pendingKey(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if again.Secret() != first.Secret() {
			t.Fatal("a second call made a new key")
		}
	})
	t.Run("the key names the issuer and the user's email", func(t *testing.T) {
		if first.Issuer() != "keygate id.example.com" || first.AccountName() != u.Email {
			t.Fatalf("issuer %q account %q", first.Issuer(), first.AccountName())
		}
	})
	t.Run("once confirmed, a new enrolment makes a new key", func(t *testing.T) {
		if err := s.ConfirmTOTP(ctx, u.ID, t0); err != nil {
			t.Fatal(err)
		}
		next, err := h.pendingKey(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if next.Secret() == first.Secret() {
			t.Fatal("the confirmed key was handed out again for a new enrolment")
		}
	})
}
