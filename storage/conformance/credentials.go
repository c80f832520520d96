package conformance

import (
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testEnrollments(t *testing.T, newStore NewStore) {
	enrol := storage.Enrollment{
		TokenHash: []byte("hash-of-link-token"),
		UserID:    "u",
		CreatedAt: t0,
		ExpiresAt: at(time.Hour),
	}

	t.Run("an enrolment can be consumed once", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateEnrollment(ctx, enrol))
		got, err := st.ConsumeEnrollment(ctx, enrol.TokenHash, at(time.Minute))
		ok(t, err)
		want := enrol
		want.UsedAt = at(time.Minute)
		same(t, "consumed enrolment", got, want)

		_, err = st.ConsumeEnrollment(ctx, enrol.TokenHash, at(2*time.Minute))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("an expired enrolment cannot be consumed", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateEnrollment(ctx, enrol))
		_, err := st.ConsumeEnrollment(ctx, enrol.TokenHash, at(2*time.Hour))
		wantErr(t, err, storage.ErrNotFound)
		// Refusing it did not use it up.
		_, err = st.ConsumeEnrollment(ctx, enrol.TokenHash, at(time.Minute))
		ok(t, err)
	})

	t.Run("reading an enrolment does not use it up", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateEnrollment(ctx, enrol))
		for range 2 {
			got, err := st.GetEnrollment(ctx, enrol.TokenHash, at(time.Minute))
			ok(t, err)
			same(t, "enrolment", got, enrol)
		}
		_, err := st.GetEnrollment(ctx, enrol.TokenHash, at(time.Hour))
		wantErr(t, err, storage.ErrNotFound) // expired at that time
		_, err = st.ConsumeEnrollment(ctx, enrol.TokenHash, at(time.Minute))
		ok(t, err)
		_, err = st.GetEnrollment(ctx, enrol.TokenHash, at(time.Minute))
		wantErr(t, err, storage.ErrNotFound) // used
		_, err = st.GetEnrollment(ctx, []byte("another hash"), t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("an unknown enrolment is not found", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateEnrollment(ctx, enrol))
		_, err := st.ConsumeEnrollment(ctx, []byte("another hash"), t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("an enrolment with a taken hash is refused", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateEnrollment(ctx, enrol))
		wantErr(t, st.CreateEnrollment(ctx, enrol), storage.ErrAlreadyExists)
	})
}

func testTOTP(t *testing.T, newStore NewStore) {
	cred := storage.TOTPCredential{
		UserID:    "u",
		Sealed:    []byte("sealed seed"),
		LastStep:  0,
		CreatedAt: t0,
	}

	t.Run("a credential reads back and put replaces it", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.PutTOTP(ctx, cred))
		got, err := st.GetTOTP(ctx, "u")
		ok(t, err)
		same(t, "credential", got, cred)

		repl := storage.TOTPCredential{UserID: "u", Sealed: []byte("new seed"), LastStep: 7, CreatedAt: at(time.Hour)}
		ok(t, st.PutTOTP(ctx, repl))
		got, err = st.GetTOTP(ctx, "u")
		ok(t, err)
		same(t, "replaced credential", got, repl)
	})

	t.Run("confirming records when", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.PutTOTP(ctx, cred))
		ok(t, st.ConfirmTOTP(ctx, "u", at(time.Minute)))
		got, err := st.GetTOTP(ctx, "u")
		ok(t, err)
		if !got.ConfirmedAt.Equal(at(time.Minute)) {
			t.Fatalf("ConfirmedAt = %v, want %v", got.ConfirmedAt, at(time.Minute))
		}
	})

	t.Run("a later step is accepted and becomes LastStep", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.PutTOTP(ctx, cred))
		for _, step := range []int64{100, 101, 205} {
			ok(t, st.UseTOTPStep(ctx, "u", step))
		}
		got, err := st.GetTOTP(ctx, "u")
		ok(t, err)
		if got.LastStep != 205 {
			t.Fatalf("LastStep = %d, want 205", got.LastStep)
		}
	})

	t.Run("a replayed TOTP step is refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			step int64
		}{
			{"the same step", 100},
			{"an earlier step", 99},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, ctx := userCtx(t, newStore)
				ok(t, st.PutTOTP(ctx, cred))
				ok(t, st.UseTOTPStep(ctx, "u", 100))
				wantErr(t, st.UseTOTPStep(ctx, "u", tc.step), storage.ErrConflict)
				got, err := st.GetTOTP(ctx, "u")
				ok(t, err)
				if got.LastStep != 100 {
					t.Fatalf("LastStep = %d after a replay, want 100", got.LastStep)
				}
			})
		}
	})

	t.Run("without a credential every call is not found", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"get", func() error { _, err := st.GetTOTP(ctx, "u"); return err }},
			{"confirm", func() error { return st.ConfirmTOTP(ctx, "u", t0) }},
			{"use a step", func() error { return st.UseTOTPStep(ctx, "u", 1) }},
			{"delete", func() error { return st.DeleteTOTP(ctx, "u") }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), storage.ErrNotFound) })
		}
	})

	t.Run("a deleted credential is gone", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.PutTOTP(ctx, cred))
		ok(t, st.DeleteTOTP(ctx, "u"))
		_, err := st.GetTOTP(ctx, "u")
		wantErr(t, err, storage.ErrNotFound)
	})
}

func testRecoveryCodes(t *testing.T, newStore NewStore) {
	codes := [][]byte{[]byte("hash-1"), []byte("hash-2"), []byte("hash-3")}

	count := func(t *testing.T, st storage.Store, userID string, want int) {
		t.Helper()
		n, err := st.CountRecoveryCodes(t.Context(), userID)
		ok(t, err)
		if n != want {
			t.Fatalf("CountRecoveryCodes(%s) = %d, want %d", userID, n, want)
		}
	}

	t.Run("each recovery code works once", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.ReplaceRecoveryCodes(ctx, "u", codes))
		count(t, st, "u", 3)
		ok(t, st.UseRecoveryCode(ctx, "u", codes[1], t0))
		count(t, st, "u", 2)
		wantErr(t, st.UseRecoveryCode(ctx, "u", codes[1], at(time.Minute)), storage.ErrNotFound)
		count(t, st, "u", 2)
	})

	t.Run("an unknown code is not found", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.ReplaceRecoveryCodes(ctx, "u", codes))
		wantErr(t, st.UseRecoveryCode(ctx, "u", []byte("guess"), t0), storage.ErrNotFound)
	})

	t.Run("a code works only for its own user", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		ok(t, st.ReplaceRecoveryCodes(ctx, "u", codes))
		wantErr(t, st.UseRecoveryCode(ctx, "v", codes[0], t0), storage.ErrNotFound)
		count(t, st, "u", 3)
		count(t, st, "v", 0)
	})

	t.Run("replacing the codes drops the old ones, used or not", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.ReplaceRecoveryCodes(ctx, "u", codes))
		ok(t, st.UseRecoveryCode(ctx, "u", codes[0], t0))
		fresh := [][]byte{[]byte("hash-4"), []byte("hash-5")}
		ok(t, st.ReplaceRecoveryCodes(ctx, "u", fresh))
		count(t, st, "u", 2)
		wantErr(t, st.UseRecoveryCode(ctx, "u", codes[1], t0), storage.ErrNotFound)
		ok(t, st.UseRecoveryCode(ctx, "u", fresh[0], t0))
	})
}
