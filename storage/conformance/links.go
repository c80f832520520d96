package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

func testLinks(t *testing.T, newStore NewStore) {
	report := storage.Link{
		TokenHash: []byte("hash-of-report-token"),
		Purpose:   storage.LinkSignInReport,
		UserID:    "u",
		SID:       "session-1",
		DeviceID:  "device-1",
		CreatedAt: t0,
		ExpiresAt: at(time.Hour),
	}

	t.Run("a link reads back without being used up, and is consumed once", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateLink(ctx, report))
		for range 2 {
			got, err := st.GetLink(ctx, report.Purpose, report.TokenHash, at(time.Minute))
			ok(t, err)
			same(t, "link", got, report)
		}
		got, err := st.ConsumeLink(ctx, report.Purpose, report.TokenHash, at(time.Minute))
		ok(t, err)
		want := report
		want.UsedAt = at(time.Minute)
		same(t, "consumed link", got, want)

		_, err = st.ConsumeLink(ctx, report.Purpose, report.TokenHash, at(2*time.Minute))
		wantErr(t, err, storage.ErrNotFound)
		_, err = st.GetLink(ctx, report.Purpose, report.TokenHash, at(2*time.Minute))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a link serves only its own purpose", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateLink(ctx, report))
		_, err := st.GetLink(ctx, storage.LinkPasswordReset, report.TokenHash, t0)
		wantErr(t, err, storage.ErrNotFound)
		_, err = st.ConsumeLink(ctx, storage.LinkPasswordReset, report.TokenHash, t0)
		wantErr(t, err, storage.ErrNotFound)
		// Refusing it for another purpose did not use it up.
		_, err = st.ConsumeLink(ctx, report.Purpose, report.TokenHash, t0)
		ok(t, err)
	})

	t.Run("an expired link is neither read nor consumed, and garbage collection drops it", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateLink(ctx, report))
		_, err := st.GetLink(ctx, report.Purpose, report.TokenHash, at(time.Hour))
		wantErr(t, err, storage.ErrNotFound)
		_, err = st.ConsumeLink(ctx, report.Purpose, report.TokenHash, at(time.Hour))
		wantErr(t, err, storage.ErrNotFound)

		n, err := st.DeleteExpiredLinks(ctx, at(time.Minute))
		ok(t, err)
		same(t, "deleted before expiry", n, 0)
		n, err = st.DeleteExpiredLinks(ctx, at(time.Hour))
		ok(t, err)
		same(t, "deleted at expiry", n, 1)
		_, err = st.GetLink(ctx, report.Purpose, report.TokenHash, t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a link with a taken hash is refused; one for an unknown user is not found", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateLink(ctx, report))
		wantErr(t, st.CreateLink(ctx, report), storage.ErrAlreadyExists)
		other := report
		other.TokenHash, other.UserID = []byte("another hash"), "nobody"
		wantErr(t, st.CreateLink(ctx, other), storage.ErrNotFound)
	})

	t.Run("deleting a user's links of one purpose leaves the rest", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		reset := report
		reset.TokenHash, reset.Purpose = []byte("reset-1"), storage.LinkPasswordReset
		used := reset
		used.TokenHash = []byte("reset-2")
		others := reset
		others.TokenHash, others.UserID = []byte("reset-of-v"), "v"
		for _, l := range []storage.Link{report, reset, used, others} {
			ok(t, st.CreateLink(ctx, l))
		}
		_, err := st.ConsumeLink(ctx, used.Purpose, used.TokenHash, t0)
		ok(t, err)
		n, err := st.DeleteUserLinks(ctx, "u", storage.LinkPasswordReset)
		ok(t, err)
		same(t, "deleted", n, 2)
		_, err = st.GetLink(ctx, reset.Purpose, reset.TokenHash, t0)
		wantErr(t, err, storage.ErrNotFound)
		_, err = st.GetLink(ctx, report.Purpose, report.TokenHash, t0)
		ok(t, err)
		_, err = st.GetLink(ctx, others.Purpose, others.TokenHash, t0)
		ok(t, err)
	})

	t.Run("a user's links go with the user", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateLink(ctx, report))
		ok(t, st.DeleteUser(ctx, "u"))
		_, err := st.GetLink(ctx, report.Purpose, report.TokenHash, t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("of concurrent consumptions of one link exactly one wins", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateLink(ctx, report))
		errs := concurrently(8, func(int) error {
			_, err := st.ConsumeLink(ctx, report.Purpose, report.TokenHash, t0)
			return err
		})
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, storage.ErrNotFound):
				t.Errorf("a losing consumption failed with %v, want ErrNotFound", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d consumptions won, want exactly 1", wins)
		}
	})
}

func testForgetDevice(t *testing.T, newStore NewStore) {
	t.Run("a forgotten device is unknown again, and only for its user", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		ok(t, st.TouchDevice(ctx, device("dev-1", "u", t0, "192.0.2.10", "FR", "Firefox on Linux")))
		ok(t, st.TouchDevice(ctx, device("dev-1", "v", t0, "192.0.2.10", "FR", "Firefox on Linux")))
		ok(t, st.ForgetDevice(ctx, "u", "dev-1"))
		_, err := st.GetDevice(ctx, "u", "dev-1")
		wantErr(t, err, storage.ErrNotFound)
		_, err = st.GetDevice(ctx, "v", "dev-1")
		ok(t, err)
		wantErr(t, st.ForgetDevice(ctx, "u", "dev-1"), storage.ErrNotFound)
	})
}
