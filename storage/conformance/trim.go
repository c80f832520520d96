package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// Trim is a backend's sign-in retention sweep with its bounds as
// arguments: it deletes the sign-ins before before (none for the zero
// time), then those beyond each user's keep newest.
type Trim = func(ctx context.Context, before time.Time, keep int) (int, error)

// TrimSignIns checks a backend's TrimSignIns(ctx, now), which keeps the
// bounds of storage.SignInRetention, and the sweep behind it, which open
// returns with a new store holding the users "u" and "v".
func TrimSignIns(t *testing.T, open func(t *testing.T) (storage.Store, Trim)) {
	now := t0.Add(1000 * 24 * time.Hour)
	type trimmer interface {
		TrimSignIns(ctx context.Context, now time.Time) (int, error)
	}
	record := func(t *testing.T, st storage.Store, userID string, times ...time.Time) {
		t.Helper()
		ok(t, st.InTx(t.Context(), func(ctx context.Context) error {
			for _, at := range times {
				if _, err := st.RecordSignIn(ctx, storage.SignInRecord{UserID: userID, Time: at, Country: "FR"}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	// ids are the user's sign-ins as RecentSignIns lists them.
	ids := func(t *testing.T, st storage.Store, userID string) []int64 {
		t.Helper()
		rs, err := st.RecentSignIns(t.Context(), userID, storage.RecentSignInsMax)
		ok(t, err)
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}

	t.Run("sign-ins older than the retention are deleted", func(t *testing.T) {
		st, _ := open(t)
		tr, isTrimmer := st.(trimmer)
		if !isTrimmer {
			t.Fatalf("%T has no TrimSignIns", st)
		}
		cut := now.Add(-storage.SignInRetention)
		record(t, st, "u", cut.Add(-time.Hour), cut.Add(-time.Microsecond), cut, now.Add(-time.Hour))
		record(t, st, "v", cut.Add(-24*time.Hour), now)
		keptU, keptV := ids(t, st, "u")[:2], ids(t, st, "v")[:1]
		n, err := tr.TrimSignIns(t.Context(), now)
		if err != nil || n != 3 {
			t.Fatalf("TrimSignIns = %d, %v; want 3", n, err)
		}
		same(t, "u's sign-ins left", ids(t, st, "u"), keptU)
		same(t, "v's sign-ins left", ids(t, st, "v"), keptV)
		if n, err := tr.TrimSignIns(t.Context(), now); err != nil || n != 0 {
			t.Errorf("a second TrimSignIns = %d, %v; want 0", n, err)
		}
	})

	t.Run("each user keeps their newest sign-ins, ties by id", func(t *testing.T) {
		st, trim := open(t)
		record(t, st, "u", now, now.Add(-time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-3*time.Hour))
		record(t, st, "v", now, now.Add(-time.Hour))
		keptU, keptV := ids(t, st, "u")[:3], ids(t, st, "v")
		n, err := trim(t.Context(), time.Time{}, 3)
		if err != nil || n != 2 {
			t.Fatalf("trim = %d, %v; want 2", n, err)
		}
		same(t, "u's sign-ins left", ids(t, st, "u"), keptU)
		same(t, "v's sign-ins left", ids(t, st, "v"), keptV)
	})

	t.Run("the cap deletes past a batch, and leaves devices alone", func(t *testing.T) {
		st, trim := open(t)
		ctx := t.Context()
		// More than a batch of the sweeps of either backend (1000).
		const keep, extra = 3, 1005
		times := make([]time.Time, keep+extra)
		for i := range times {
			times[i] = now.Add(-time.Duration(i) * time.Minute)
		}
		record(t, st, "u", times...)
		kept := ids(t, st, "u")[:keep]
		ok(t, st.TouchDevice(ctx, storage.Device{ID: "d", UserID: "u", LastSeen: now.Add(-2 * storage.SignInRetention)}))
		n, err := trim(ctx, time.Time{}, keep)
		if err != nil || n != extra {
			t.Fatalf("trim = %d, %v; want %d", n, err, extra)
		}
		same(t, "u's sign-ins left", ids(t, st, "u"), kept)
		if _, err := st.GetDevice(ctx, "u", "d"); err != nil {
			t.Errorf("GetDevice after the trim: %v", err)
		}
	})

	t.Run("in a transaction it trims what the transaction sees", func(t *testing.T) {
		st, trim := open(t)
		ctx := t.Context()
		ok(t, st.InTx(ctx, func(ctx context.Context) error {
			for i := range 5 {
				if _, err := st.RecordSignIn(ctx, storage.SignInRecord{UserID: "u", Time: now.Add(-time.Duration(i) * time.Minute)}); err != nil {
					return err
				}
			}
			n, err := trim(ctx, now.Add(-3*time.Minute), 2)
			if err != nil || n != 3 {
				t.Errorf("trim in a transaction = %d, %v; want 3", n, err)
			}
			return err
		}))
		if got := ids(t, st, "u"); len(got) != 2 {
			t.Errorf("%d sign-ins left, want 2", len(got))
		}
	})
}
