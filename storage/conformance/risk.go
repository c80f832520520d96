package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// device is a touch of device id by userID at seen, with every field set
// as a sign-in sets it: FirstSeen and LastSeen both at the sign-in.
func device(id, userID string, seen time.Time, ip, country, agent string) storage.Device {
	return storage.Device{
		ID:          id,
		UserID:      userID,
		UserAgent:   agent,
		FirstSeen:   seen,
		LastSeen:    seen,
		LastIP:      ip,
		LastCountry: country,
	}
}

// deviceIDs are the ids of ds, for readable failures.
func deviceIDs(ds []storage.Device) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func testDevices(t *testing.T, newStore NewStore) {
	d1 := device("dev-1", "u", t0, "192.0.2.10", "FR", "Firefox on Linux")

	get := func(t *testing.T, st storage.Store, userID, id string) storage.Device {
		t.Helper()
		d, err := st.GetDevice(t.Context(), userID, id)
		ok(t, err)
		return d
	}
	// counted is d as stored after n touches that all moved it forward.
	counted := func(d storage.Device, n int) storage.Device {
		d.SignIns = n
		return d
	}

	t.Run("a first touch stores the device with one sign-in", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.TouchDevice(ctx, d1))
		same(t, "device", get(t, st, "u", d1.ID), counted(d1, 1))
		listed, err := st.ListUserDevices(ctx, "u")
		ok(t, err)
		same(t, "devices", listed, []storage.Device{counted(d1, 1)})
	})

	t.Run("a second touch keeps the first sighting, moves the last forward and counts 2", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.TouchDevice(ctx, d1))
		again := device(d1.ID, "u", at(3*time.Hour), "2001:db8::7", "DE", "Chrome on Linux")
		ok(t, st.TouchDevice(ctx, again))
		want := again
		want.FirstSeen, want.SignIns = d1.FirstSeen, 2
		same(t, "device touched twice", get(t, st, "u", d1.ID), want)
	})

	t.Run("a late touch is counted but does not move the last sighting back", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		later := device(d1.ID, "u", at(time.Hour), "198.51.100.4", "DE", "Chrome on Linux")
		ok(t, st.TouchDevice(ctx, later))
		ok(t, st.TouchDevice(ctx, d1)) // an earlier sign-in, recorded after
		same(t, "device", get(t, st, "u", d1.ID), counted(later, 2))
	})

	t.Run("a touch at the same time as the last sighting replaces it", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.TouchDevice(ctx, d1))
		tie := device(d1.ID, "u", d1.LastSeen, "192.0.2.99", "BE", "Firefox on Windows")
		ok(t, st.TouchDevice(ctx, tie))
		same(t, "device", get(t, st, "u", d1.ID), counted(tie, 2))
	})

	t.Run("devices are per user: one device id for two users is two devices", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		theirs := device(d1.ID, "v", at(time.Hour), "203.0.113.8", "US", "Safari on macOS")
		ok(t, st.TouchDevice(ctx, d1))
		ok(t, st.TouchDevice(ctx, theirs))
		ok(t, st.TouchDevice(ctx, theirs))
		same(t, "u's device", get(t, st, "u", d1.ID), counted(d1, 1))
		same(t, "v's device", get(t, st, "v", d1.ID), counted(theirs, 2))
		for userID, want := range map[string]storage.Device{"u": counted(d1, 1), "v": counted(theirs, 2)} {
			listed, err := st.ListUserDevices(ctx, userID)
			ok(t, err)
			same(t, userID+"'s devices", listed, []storage.Device{want})
		}
	})

	t.Run("an unknown device is not found", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		ok(t, st.TouchDevice(ctx, d1))
		for _, tc := range []struct{ name, userID, id string }{
			{"another id", "u", "dev-2"},
			{"a prefix of the id", "u", d1.ID[:3]},
			{"no id", "u", ""},
			{"another user's", "v", d1.ID},
			{"an unknown user's", "ghost", d1.ID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := st.GetDevice(ctx, tc.userID, tc.id)
				wantErr(t, err, storage.ErrNotFound)
			})
		}
	})

	t.Run("a device for an unknown user is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ghost := device("dev-1", "ghost", t0, "192.0.2.10", "FR", "Firefox on Linux")
		wantErr(t, st.TouchDevice(ctx, ghost), storage.ErrNotFound)
		_, err := st.GetDevice(ctx, "ghost", ghost.ID)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a user's devices are listed most recently seen first", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		// Touched out of order, and the first one again last, so the
		// listing cannot pass by insertion order or by FirstSeen.
		old := device("old", "u", t0, "192.0.2.1", "FR", "Firefox on Linux")
		mid := device("mid", "u", at(time.Hour), "192.0.2.2", "FR", "Chrome on Android")
		recent := device("recent", "u", at(2*time.Hour), "192.0.2.3", "FR", "Safari on iOS")
		theirs := device("theirs", "v", at(4*time.Hour), "192.0.2.4", "FR", "Edge on Windows")
		for _, d := range []storage.Device{old, recent, theirs, mid} {
			ok(t, st.TouchDevice(ctx, d))
		}
		back := device("old", "u", at(3*time.Hour), "192.0.2.5", "NL", "Firefox on Linux")
		ok(t, st.TouchDevice(ctx, back))
		back.FirstSeen, back.SignIns = old.FirstSeen, 2

		listed, err := st.ListUserDevices(ctx, "u")
		ok(t, err)
		same(t, "u's devices", listed, []storage.Device{back, counted(recent, 1), counted(mid, 1)})
	})

	t.Run("a user without devices lists none", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.TouchDevice(ctx, d1))
		newUser(t, ctx, st, "v")
		for _, userID := range []string{"v", "nobody", ""} {
			listed, err := st.ListUserDevices(ctx, userID)
			ok(t, err)
			if len(listed) != 0 {
				t.Fatalf("ListUserDevices(%q) = %v, want none", userID, deviceIDs(listed))
			}
		}
	})

	t.Run("devices go with their user", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		theirs := device(d1.ID, "v", t0, "203.0.113.8", "US", "Safari on macOS")
		for _, d := range []storage.Device{d1, device("dev-2", "u", t0, "", "", ""), theirs} {
			ok(t, st.TouchDevice(ctx, d))
		}
		ok(t, st.DeleteUser(ctx, "u"))
		_, err := st.GetDevice(ctx, "u", d1.ID)
		wantErr(t, err, storage.ErrNotFound)
		listed, err := st.ListUserDevices(ctx, "u")
		ok(t, err)
		if len(listed) != 0 {
			t.Fatalf("a deleted user still lists %v", deviceIDs(listed))
		}
		same(t, "another user's device", get(t, st, "v", d1.ID), counted(theirs, 1))
		// A new user with the old id starts with no history.
		newUser(t, ctx, st, "u")
		ok(t, st.TouchDevice(ctx, d1))
		same(t, "the new user's device", get(t, st, "u", d1.ID), counted(d1, 1))
	})

	t.Run("a touch in a rolled-back transaction leaves nothing", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.TouchDevice(ctx, d1))
		boom := errors.New("boom")
		err := st.InTx(ctx, func(ctx context.Context) error {
			if err := st.TouchDevice(ctx, device(d1.ID, "u", at(time.Hour), "198.51.100.1", "DE", "x")); err != nil {
				return err
			}
			if err := st.TouchDevice(ctx, device("dev-2", "u", at(time.Hour), "198.51.100.1", "DE", "x")); err != nil {
				return err
			}
			// The transaction sees its own touches.
			if d, err := st.GetDevice(ctx, "u", d1.ID); err != nil || d.SignIns != 2 {
				return errors.Join(err, errors.New("the transaction does not see its own touch"))
			}
			return boom
		})
		wantErr(t, err, boom)
		same(t, "device", get(t, st, "u", d1.ID), counted(d1, 1))
		_, err = st.GetDevice(ctx, "u", "dev-2")
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("concurrent touches of one device are all counted", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		const n = 8
		errs := concurrently(n, func(i int) error {
			return st.TouchDevice(ctx, device(d1.ID, "u", at(time.Duration(i)*time.Minute), "192.0.2.10", "FR", "Firefox on Linux"))
		})
		ok(t, errors.Join(errs...))
		got := get(t, st, "u", d1.ID)
		// Whichever touch came first set FirstSeen; the latest one is last.
		if got.SignIns != n || !got.LastSeen.Equal(at((n-1)*time.Minute)) {
			t.Fatalf("after %d concurrent touches: SignIns %d, LastSeen %v; want %d, %v",
				n, got.SignIns, got.LastSeen, n, at((n-1)*time.Minute))
		}
	})
}

// signIn is a sign-in with every field set: coordinates in the southern
// and western hemispheres, reasons with punctuation, quotes and non-ASCII.
func signIn(userID string, when time.Time, country string) storage.SignInRecord {
	return storage.SignInRecord{
		UserID:    userID,
		Time:      when,
		IP:        "2001:db8::42",
		Country:   country,
		City:      "São Paulo",
		Lat:       -23.5505,
		Lon:       -46.6333,
		HasCoords: true,
		DeviceID:  "dev-1",
		ClientID:  "app",
		ACR:       "phr",
		Decision:  "step_up",
		Reasons:   []string{"new device", `new country: "BR"`, "impossible travel: 9,400 km in 2 h — from Zürich"},
	}
}

// signInTimes are the times of rs, for readable failures.
func signInTimes(rs []storage.SignInRecord) []time.Duration {
	var out []time.Duration
	for _, r := range rs {
		out = append(out, r.Time.Sub(t0))
	}
	return out
}

func testSignIns(t *testing.T, newStore NewStore) {
	record := func(t *testing.T, st storage.Store, r storage.SignInRecord) int64 {
		t.Helper()
		id, err := st.RecordSignIn(t.Context(), r)
		ok(t, err)
		if id == 0 {
			t.Fatal("RecordSignIn returned id 0")
		}
		return id
	}
	recent := func(t *testing.T, st storage.Store, userID string, limit int) []storage.SignInRecord {
		t.Helper()
		rs, err := st.RecentSignIns(t.Context(), userID, limit)
		ok(t, err)
		return rs
	}

	t.Run("a sign-in reads back with every field", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			r    storage.SignInRecord
		}{
			{"every field set", signIn("u", t0, "BR")},
			{"coordinates in the northern and eastern hemispheres", func() storage.SignInRecord {
				r := signIn("u", t0, "JP")
				r.City, r.Lat, r.Lon = "Tokyo", 35.6762, 139.6503
				r.Decision, r.Reasons = "allow", []string{"known device"}
				return r
			}()},
			{"every optional field zero", storage.SignInRecord{UserID: "u", Time: t0}},
			{"coordinates at 0, 0", func() storage.SignInRecord {
				r := signIn("u", t0, "")
				r.City, r.Lat, r.Lon = "", 0, 0
				return r
			}()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, _ := userCtx(t, newStore)
				want := tc.r
				want.ID = record(t, st, tc.r)
				same(t, "sign-ins", recent(t, st, "u", 10), []storage.SignInRecord{want})
			})
		}
	})

	t.Run("sign-ins get distinct ids, whatever ID they are given", func(t *testing.T) {
		st, _ := userCtx(t, newStore)
		seen := map[int64]bool{}
		for i := range 5 {
			r := signIn("u", at(time.Duration(i)*time.Minute), "FR")
			r.ID = 7 // ignored
			id := record(t, st, r)
			if seen[id] {
				t.Fatalf("id %d given twice", id)
			}
			seen[id] = true
		}
	})

	t.Run("recent sign-ins come newest first, at most limit, only the user's", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		// Recorded out of order, so the listing cannot pass by insertion order.
		for _, d := range []time.Duration{2 * time.Hour, -time.Hour, 5 * time.Hour, 0, time.Hour} {
			record(t, st, signIn("u", at(d), "FR"))
		}
		record(t, st, signIn("v", at(3*time.Hour), "FR"))
		record(t, st, signIn("v", at(10*time.Hour), "FR"))

		for _, tc := range []struct {
			limit int
			want  []time.Duration
		}{
			{1, []time.Duration{5 * time.Hour}},
			{3, []time.Duration{5 * time.Hour, 2 * time.Hour, time.Hour}},
			{5, []time.Duration{5 * time.Hour, 2 * time.Hour, time.Hour, 0, -time.Hour}},
			{100, []time.Duration{5 * time.Hour, 2 * time.Hour, time.Hour, 0, -time.Hour}},
		} {
			same(t, "u's sign-ins", signInTimes(recent(t, st, "u", tc.limit)), tc.want)
		}
		same(t, "v's sign-ins", signInTimes(recent(t, st, "v", 10)), []time.Duration{10 * time.Hour, 3 * time.Hour})
		for _, userID := range []string{"nobody", ""} {
			if rs := recent(t, st, userID, 10); len(rs) != 0 {
				t.Fatalf("RecentSignIns(%q) = %v, want none", userID, signInTimes(rs))
			}
		}
	})

	t.Run("a limit of zero or less means a default, not none", func(t *testing.T) {
		st, _ := userCtx(t, newStore)
		for _, d := range []time.Duration{0, 2 * time.Hour, time.Hour} {
			record(t, st, signIn("u", at(d), "FR"))
		}
		for _, limit := range []int{0, -1} {
			same(t, "sign-ins with a limit <= 0", signInTimes(recent(t, st, "u", limit)),
				[]time.Duration{2 * time.Hour, time.Hour, 0})
		}
	})

	t.Run("countries are distinct, sorted and never empty", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		for i, country := range []string{"FR", "", "US", "DE", "FR", "", "US", "BR"} {
			record(t, st, signIn("u", at(time.Duration(i)*time.Hour), country))
		}
		record(t, st, signIn("v", t0, "JP"))
		countries, err := st.SignInCountries(ctx, "u")
		ok(t, err)
		same(t, "u's countries", countries, []string{"BR", "DE", "FR", "US"})
		countries, err = st.SignInCountries(ctx, "v")
		ok(t, err)
		same(t, "v's countries", countries, []string{"JP"})
	})

	t.Run("a user with no known country lists none", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		record(t, st, signIn("v", t0, "")) // a sign-in, but from nowhere known
		for _, userID := range []string{"u", "v", "nobody"} {
			countries, err := st.SignInCountries(ctx, userID)
			ok(t, err)
			if len(countries) != 0 {
				t.Fatalf("SignInCountries(%q) = %v, want none", userID, countries)
			}
		}
	})

	t.Run("a sign-in for an unknown user is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		_, err := st.RecordSignIn(ctx, signIn("ghost", t0, "FR"))
		wantErr(t, err, storage.ErrNotFound)
		if rs := recent(t, st, "ghost", 10); len(rs) != 0 {
			t.Fatalf("an unknown user has sign-ins: %v", signInTimes(rs))
		}
	})

	t.Run("sign-ins go with their user", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		record(t, st, signIn("u", t0, "FR"))
		record(t, st, signIn("u", at(time.Hour), "DE"))
		theirs := signIn("v", t0, "US")
		theirs.ID = record(t, st, theirs)
		ok(t, st.DeleteUser(ctx, "u"))
		if rs := recent(t, st, "u", 10); len(rs) != 0 {
			t.Fatalf("a deleted user still has sign-ins: %v", signInTimes(rs))
		}
		countries, err := st.SignInCountries(ctx, "u")
		ok(t, err)
		if len(countries) != 0 {
			t.Fatalf("a deleted user still has countries: %v", countries)
		}
		same(t, "another user's sign-ins", recent(t, st, "v", 10), []storage.SignInRecord{theirs})
		// A new user with the old id starts with no history.
		newUser(t, ctx, st, "u")
		if rs := recent(t, st, "u", 10); len(rs) != 0 {
			t.Fatalf("a new user inherits sign-ins: %v", signInTimes(rs))
		}
	})

	t.Run("a sign-in recorded in a rolled-back transaction leaves nothing", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		kept := signIn("u", t0, "FR")
		kept.ID = record(t, st, kept)
		boom := errors.New("boom")
		err := st.InTx(ctx, func(ctx context.Context) error {
			if _, err := st.RecordSignIn(ctx, signIn("u", at(time.Hour), "KP")); err != nil {
				return err
			}
			// The transaction sees its own sign-in.
			if rs, err := st.RecentSignIns(ctx, "u", 10); err != nil || len(rs) != 2 {
				return errors.Join(err, errors.New("the transaction does not see its own sign-in"))
			}
			return boom
		})
		wantErr(t, err, boom)
		same(t, "sign-ins", recent(t, st, "u", 10), []storage.SignInRecord{kept})
		countries, err := st.SignInCountries(ctx, "u")
		ok(t, err)
		same(t, "countries", countries, []string{"FR"})
	})

	t.Run("concurrent sign-ins are all recorded, each with its own id", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		const n = 8
		ids := make([]int64, n)
		errs := concurrently(n, func(i int) error {
			var err error
			ids[i], err = st.RecordSignIn(ctx, signIn("u", at(time.Duration(i)*time.Minute), "FR"))
			return err
		})
		ok(t, errors.Join(errs...))
		seen := map[int64]bool{}
		for _, id := range ids {
			if id == 0 || seen[id] {
				t.Fatalf("ids %v: zero or given twice", ids)
			}
			seen[id] = true
		}
		if rs := recent(t, st, "u", 100); len(rs) != n {
			t.Fatalf("%d sign-ins recorded, want %d", len(rs), n)
		}
	})
}
