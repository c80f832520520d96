package conformance

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// Two authenticator models, and the all-zero AAGUID of one that does not
// disclose its model.
var (
	aaguidA    = []byte{0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a}
	aaguidB    = []byte{0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8}
	aaguidNone = make([]byte, 16)
)

// webauthnCred is a credential with every field set: binary ids with zero
// and high bytes, true booleans, the largest sign count.
func webauthnCred(id, userID string, created time.Time) storage.WebAuthnCredential {
	return storage.WebAuthnCredential{
		ID:                append([]byte{0x00, 0xff, 0x80}, id...),
		UserID:            userID,
		Name:              "Key " + id,
		AAGUID:            aaguidA,
		PublicKey:         []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x00, 0xff},
		AttestationType:   "basic",
		AttestationFormat: "packed",
		Attested:          true,
		Transports:        []string{"usb", "nfc", "hybrid"},
		SignCount:         math.MaxUint32,
		BackupEligible:    true,
		BackupState:       true,
		Discoverable:      true,
		Attachment:        "cross-platform",
		CreatedAt:         created,
		LastUsedAt:        created.Add(time.Minute),
	}
}

// credIDs are the ids of cs, as strings for readable failures.
func credIDs(cs []storage.WebAuthnCredential) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.ID))
	}
	return out
}

func byCredID(a, b storage.WebAuthnCredential) int { return bytes.Compare(a.ID, b.ID) }

func testWebAuthn(t *testing.T, newStore NewStore) {
	c1 := webauthnCred("1", "u", t0)

	get := func(t *testing.T, st storage.Store, id []byte) storage.WebAuthnCredential {
		t.Helper()
		c, err := st.GetWebAuthnCredential(t.Context(), id)
		ok(t, err)
		return c
	}

	t.Run("a credential reads back with every field", func(t *testing.T) {
		disabled := webauthnCred("disabled", "u", at(time.Hour))
		disabled.DisabledAt, disabled.DisabledReason = at(2*time.Hour), "sign count went backwards"
		for _, tc := range []struct {
			name string
			cred storage.WebAuthnCredential
		}{
			{"every field set", c1},
			{"a disabled one", disabled},
			{"every optional field zero", storage.WebAuthnCredential{
				ID:        []byte{0x00},
				UserID:    "u",
				AAGUID:    aaguidNone,
				PublicKey: []byte{0x01},
				CreatedAt: t0,
			}},
			{"one used once", func() storage.WebAuthnCredential {
				c := webauthnCred("once", "u", t0)
				c.SignCount, c.BackupEligible, c.Discoverable, c.Attested = 1, false, false, false
				c.Transports = []string{"internal"}
				c.Attachment, c.AttestationType, c.AttestationFormat = "platform", "none", "none"
				return c
			}()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, ctx := userCtx(t, newStore)
				ok(t, st.CreateWebAuthnCredential(ctx, tc.cred))
				same(t, "credential", get(t, st, tc.cred.ID), tc.cred)
			})
		}
	})

	t.Run("a duplicate credential id is refused", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
		for _, userID := range []string{"u", "v"} {
			t.Run("for user "+userID, func(t *testing.T) {
				dup := webauthnCred("1", userID, at(time.Hour))
				dup.Name = "an impostor"
				wantErr(t, st.CreateWebAuthnCredential(ctx, dup), storage.ErrAlreadyExists)
			})
		}
		same(t, "the first credential", get(t, st, c1.ID), c1)
		listed, err := st.ListWebAuthnCredentials(ctx, "v")
		ok(t, err)
		same(t, "v's credentials", credIDs(listed), []string(nil))
	})

	t.Run("a credential for an unknown user is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		wantErr(t, st.CreateWebAuthnCredential(ctx, webauthnCred("1", "ghost", t0)), storage.ErrNotFound)
		_, err := st.GetWebAuthnCredential(ctx, c1.ID)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("a user's credentials are listed oldest first, disabled ones included", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		// Created out of order, so the listing cannot pass by insertion order.
		mid := webauthnCred("mid", "u", at(time.Hour))
		last := webauthnCred("last", "u", at(2*time.Hour))
		first := webauthnCred("first", "u", at(-time.Hour))
		theirs := webauthnCred("theirs", "v", t0)
		for _, c := range []storage.WebAuthnCredential{mid, last, theirs, first} {
			ok(t, st.CreateWebAuthnCredential(ctx, c))
		}
		ok(t, st.DisableWebAuthnCredential(ctx, mid.ID, "lost", at(3*time.Hour)))
		mid.DisabledAt, mid.DisabledReason = at(3*time.Hour), "lost"

		listed, err := st.ListWebAuthnCredentials(ctx, "u")
		ok(t, err)
		same(t, "u's credentials", listed, []storage.WebAuthnCredential{first, mid, last})
		listed, err = st.ListWebAuthnCredentials(ctx, "v")
		ok(t, err)
		same(t, "v's credentials", listed, []storage.WebAuthnCredential{theirs})
	})

	t.Run("a user without credentials lists none", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
		for _, userID := range []string{"nobody", ""} {
			listed, err := st.ListWebAuthnCredentials(ctx, userID)
			ok(t, err)
			if len(listed) != 0 {
				t.Fatalf("ListWebAuthnCredentials(%q) = %v, want none", userID, credIDs(listed))
			}
		}
	})

	t.Run("a use records the sign count, backup state and time, and nothing else", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		c := webauthnCred("1", "u", t0)
		c.SignCount, c.BackupState = 7, false
		ok(t, st.CreateWebAuthnCredential(ctx, c))
		for _, use := range []struct {
			count  uint32
			backup bool
			at     time.Time
		}{
			{8, true, at(time.Hour)},
			{math.MaxUint32, false, at(2 * time.Hour)},
			{0, true, at(3 * time.Hour)}, // storing is not judging: a lower count is stored too
		} {
			ok(t, st.RecordWebAuthnUse(ctx, c.ID, use.count, use.backup, use.at))
			c.SignCount, c.BackupState, c.LastUsedAt = use.count, use.backup, use.at
			same(t, "credential after a use", get(t, st, c.ID), c)
		}
	})

	t.Run("renaming changes only the name", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
		ok(t, st.RenameWebAuthnCredential(ctx, c1.ID, "Blue key, desk drawer"))
		want := c1
		want.Name = "Blue key, desk drawer"
		same(t, "renamed credential", get(t, st, c1.ID), want)
	})

	t.Run("a disabled credential keeps its reason and stays listed", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
		ok(t, st.DisableWebAuthnCredential(ctx, c1.ID, "revoked by an admin", at(time.Hour)))
		want := c1
		want.DisabledAt, want.DisabledReason = at(time.Hour), "revoked by an admin"
		same(t, "disabled credential", get(t, st, c1.ID), want)
		listed, err := st.ListWebAuthnCredentials(ctx, "u")
		ok(t, err)
		same(t, "listed credentials", listed, []storage.WebAuthnCredential{want})
	})

	t.Run("disabling a disabled credential keeps the first time and reason", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
		ok(t, st.DisableWebAuthnCredential(ctx, c1.ID, "possible clone", at(time.Hour)))
		ok(t, st.DisableWebAuthnCredential(ctx, c1.ID, "revoked by an admin", at(2*time.Hour)))
		want := c1
		want.DisabledAt, want.DisabledReason = at(time.Hour), "possible clone"
		same(t, "credential disabled twice", get(t, st, c1.ID), want)
	})

	t.Run("disabling by AAGUID skips disabled credentials and returns the rest", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		a1 := webauthnCred("a1", "u", t0)
		a2 := webauthnCred("a2", "v", at(time.Minute))
		aOff := webauthnCred("a-off", "u", at(2*time.Minute))
		b := webauthnCred("b", "u", at(3*time.Minute))
		b.AAGUID = aaguidB
		none := webauthnCred("none", "u", at(4*time.Minute))
		none.AAGUID = aaguidNone
		for _, c := range []storage.WebAuthnCredential{a1, a2, aOff, b, none} {
			ok(t, st.CreateWebAuthnCredential(ctx, c))
		}
		ok(t, st.DisableWebAuthnCredential(ctx, aOff.ID, "possible clone", at(time.Hour)))
		aOff.DisabledAt, aOff.DisabledReason = at(time.Hour), "possible clone"

		const reason = "model marked compromised by the metadata service"
		got, err := st.DisableWebAuthnByAAGUID(ctx, aaguidA, reason, at(2*time.Hour))
		ok(t, err)
		for _, c := range []*storage.WebAuthnCredential{&a1, &a2} {
			c.DisabledAt, c.DisabledReason = at(2*time.Hour), reason
		}
		slices.SortFunc(got, byCredID)
		same(t, "credentials disabled", got, []storage.WebAuthnCredential{a1, a2})

		for _, want := range []storage.WebAuthnCredential{a1, a2, aOff, b, none} {
			same(t, "credential "+string(want.ID), get(t, st, want.ID), want)
		}

		got, err = st.DisableWebAuthnByAAGUID(ctx, aaguidA, "again", at(3*time.Hour))
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("a second DisableWebAuthnByAAGUID returned %v", credIDs(got))
		}
		got, err = st.DisableWebAuthnByAAGUID(ctx, []byte("an unknown model"), reason, at(3*time.Hour))
		ok(t, err)
		if len(got) != 0 {
			t.Fatalf("DisableWebAuthnByAAGUID of an unknown model returned %v", credIDs(got))
		}
	})

	t.Run("a deleted credential is gone", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		other := webauthnCred("2", "u", at(time.Hour))
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
		ok(t, st.CreateWebAuthnCredential(ctx, other))
		ok(t, st.DeleteWebAuthnCredential(ctx, c1.ID))
		_, err := st.GetWebAuthnCredential(ctx, c1.ID)
		wantErr(t, err, storage.ErrNotFound)
		listed, err := st.ListWebAuthnCredentials(ctx, "u")
		ok(t, err)
		same(t, "credentials left", listed, []storage.WebAuthnCredential{other})
		// Its id is free again.
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
	})

	t.Run("an unknown credential is not found", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		ok(t, st.CreateWebAuthnCredential(ctx, c1))
		nope := append(slices.Clone(c1.ID), 0x00) // a prefix of an id is not the id
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"get", func() error { _, err := st.GetWebAuthnCredential(ctx, nope); return err }},
			{"record a use", func() error { return st.RecordWebAuthnUse(ctx, nope, 1, false, t0) }},
			{"rename", func() error { return st.RenameWebAuthnCredential(ctx, nope, "x") }},
			{"disable", func() error { return st.DisableWebAuthnCredential(ctx, nope, "x", t0) }},
			{"delete", func() error { return st.DeleteWebAuthnCredential(ctx, nope) }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), storage.ErrNotFound) })
		}
		same(t, "the known credential", get(t, st, c1.ID), c1)
	})

	t.Run("credentials go with their user", func(t *testing.T) {
		st, ctx := userCtx(t, newStore)
		newUser(t, ctx, st, "v")
		mine := []storage.WebAuthnCredential{c1, webauthnCred("2", "u", at(time.Hour))}
		theirs := webauthnCred("theirs", "v", t0)
		for _, c := range append(slices.Clone(mine), theirs) {
			ok(t, st.CreateWebAuthnCredential(ctx, c))
		}
		ok(t, st.DeleteUser(ctx, "u"))
		for _, c := range mine {
			_, err := st.GetWebAuthnCredential(ctx, c.ID)
			wantErr(t, err, storage.ErrNotFound)
		}
		listed, err := st.ListWebAuthnCredentials(ctx, "u")
		ok(t, err)
		if len(listed) != 0 {
			t.Fatalf("a deleted user still lists %v", credIDs(listed))
		}
		same(t, "another user's credential", get(t, st, theirs.ID), theirs)
		// The ids are free for whoever registers them next.
		reused := webauthnCred("1", "v", at(time.Hour))
		ok(t, st.CreateWebAuthnCredential(ctx, reused))
	})
}

func testChallenges(t *testing.T, newStore NewStore) {
	chal := func(id string, expires time.Time) storage.Challenge {
		return storage.Challenge{
			ID:          id,
			SessionHash: []byte{0x00, 0xff, 's', 'e', 's', 's'},
			UserID:      "u",
			Kind:        "assertion",
			FlowID:      "flow-1",
			Data:        []byte(`{"challenge":"q2Fo","user_id":"dQ","allowed_credentials":["AP-A"]}`),
			CreatedAt:   t0,
			ExpiresAt:   expires,
		}
	}
	c1 := chal("c1", at(5*time.Minute))

	t.Run("a challenge is consumed once", func(t *testing.T) {
		passkey := chal("passkey", at(5*time.Minute))
		passkey.UserID, passkey.Kind, passkey.FlowID = "", "passwordless", ""
		registration := chal("reg", at(5*time.Minute))
		registration.Kind, registration.FlowID, registration.SessionHash = "registration", "", []byte("other session")
		for _, c := range []storage.Challenge{c1, passkey, registration} {
			t.Run(c.Kind, func(t *testing.T) {
				st, ctx := newStore(t), t.Context()
				ok(t, st.CreateChallenge(ctx, c))
				got, err := st.ConsumeChallenge(ctx, c.ID, at(time.Minute))
				ok(t, err)
				same(t, "consumed challenge", got, c)
				_, err = st.ConsumeChallenge(ctx, c.ID, at(time.Minute))
				wantErr(t, err, storage.ErrNotFound)
			})
		}
	})

	t.Run("an expired challenge is not found", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			now  time.Time
		}{
			{"at its expiry", c1.ExpiresAt},
			{"after it", at(time.Hour)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, ctx := newStore(t), t.Context()
				ok(t, st.CreateChallenge(ctx, c1))
				_, err := st.ConsumeChallenge(ctx, c1.ID, tc.now)
				wantErr(t, err, storage.ErrNotFound)
			})
		}
	})

	t.Run("an unknown challenge is not found", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		_, err := st.ConsumeChallenge(ctx, "c2", t0)
		wantErr(t, err, storage.ErrNotFound)
		// Looking for another one consumed nothing.
		_, err = st.ConsumeChallenge(ctx, c1.ID, t0)
		ok(t, err)
	})

	t.Run("a challenge with a taken id is refused", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		other := chal(c1.ID, at(time.Hour))
		other.Data = []byte("an impostor")
		wantErr(t, st.CreateChallenge(ctx, other), storage.ErrAlreadyExists)
		got, err := st.ConsumeChallenge(ctx, c1.ID, t0)
		ok(t, err)
		same(t, "the first challenge", got, c1)
	})

	t.Run("a challenge consumed in a rolled-back transaction is still there", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		boom := errors.New("boom")
		err := st.InTx(ctx, func(ctx context.Context) error {
			if _, err := st.ConsumeChallenge(ctx, c1.ID, t0); err != nil {
				return err
			}
			return boom
		})
		wantErr(t, err, boom)
		got, err := st.ConsumeChallenge(ctx, c1.ID, t0)
		ok(t, err)
		same(t, "challenge", got, c1)
	})

	t.Run("a challenge is read without being consumed", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		for range 2 {
			got, err := st.GetChallenge(ctx, c1.ID, at(time.Minute))
			ok(t, err)
			same(t, "read challenge", got, c1)
		}
		got, err := st.ConsumeChallenge(ctx, c1.ID, at(time.Minute))
		ok(t, err)
		same(t, "consumed challenge", got, c1)
		_, err = st.GetChallenge(ctx, c1.ID, at(time.Minute))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("an unknown challenge is not read or consumed", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		// The last two are ids some backends cannot store as text.
		for _, id := range []string{"c2", "", "c1\x00", "c1\xff"} {
			_, err := st.GetChallenge(ctx, id, t0)
			wantErr(t, err, storage.ErrNotFound)
			_, err = st.ConsumeChallenge(ctx, id, t0)
			wantErr(t, err, storage.ErrNotFound)
		}
		_, err := st.ConsumeChallenge(ctx, c1.ID, t0)
		ok(t, err)
	})

	t.Run("an expired challenge is not read, and is left for the sweep", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		ok(t, st.CreateChallenge(ctx, chal("no expiry", time.Time{}))) // counts as expired
		for _, tc := range []struct {
			id  string
			now time.Time
		}{
			{c1.ID, c1.ExpiresAt},
			{c1.ID, at(time.Hour)},
			{"no expiry", t0},
		} {
			_, err := st.GetChallenge(ctx, tc.id, tc.now)
			wantErr(t, err, storage.ErrNotFound)
		}
		// Reading deleted neither: both are there for the sweep.
		n, err := st.DeleteExpiredChallenges(ctx, at(time.Hour))
		ok(t, err)
		if n != 2 {
			t.Fatalf("DeleteExpiredChallenges = %d after reads of expired challenges, want 2", n)
		}
	})

	t.Run("a challenge read in a transaction is consumed in it", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		ok(t, st.InTx(ctx, func(ctx context.Context) error {
			got, err := st.GetChallenge(ctx, c1.ID, t0)
			ok(t, err)
			same(t, "read challenge", got, c1)
			if _, err := st.ConsumeChallenge(ctx, c1.ID, t0); err != nil {
				return err
			}
			// The transaction sees its own consumption.
			_, err = st.GetChallenge(ctx, c1.ID, t0)
			wantErr(t, err, storage.ErrNotFound)
			return nil
		}))
		_, err := st.GetChallenge(ctx, c1.ID, t0)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("the sweep deletes only expired challenges", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		for _, c := range []storage.Challenge{
			chal("old", at(-time.Hour)),
			chal("just", t0),
			chal("live", at(time.Minute)),
		} {
			ok(t, st.CreateChallenge(ctx, c))
		}
		n, err := st.DeleteExpiredChallenges(ctx, t0)
		ok(t, err)
		if n != 2 {
			t.Fatalf("DeleteExpiredChallenges = %d, want 2", n)
		}
		// The expired ones are gone even for a caller whose clock lags.
		for _, id := range []string{"old", "just"} {
			_, err := st.ConsumeChallenge(ctx, id, at(-2*time.Hour))
			wantErr(t, err, storage.ErrNotFound)
		}
		_, err = st.ConsumeChallenge(ctx, "live", t0)
		ok(t, err)
		n, err = st.DeleteExpiredChallenges(ctx, at(time.Hour))
		ok(t, err)
		if n != 0 {
			t.Fatalf("a sweep of an empty table deleted %d", n)
		}
	})

	t.Run("of concurrent consumptions of one challenge exactly one wins", func(t *testing.T) {
		st, ctx := newStore(t), t.Context()
		ok(t, st.CreateChallenge(ctx, c1))
		errs := concurrently(8, func(int) error { _, err := st.ConsumeChallenge(ctx, c1.ID, t0); return err })
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
