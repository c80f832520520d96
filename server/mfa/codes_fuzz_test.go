package mfa_test

// The code forms of the second factor through the whole server (package
// servertest), with hostile bodies.

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/keygate/keygate/server"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

const fuzzSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// fuzzRecoveryCodes are the user's recovery codes (until used).
var fuzzRecoveryCodes = []string{"AAAAA-AAAAA", "BBBBB-BBBBB", "CCCCC-CCCCC"}

// startCodes is a server without throttling (so every input reaches the
// code check) and a user with an authenticator app and recovery codes.
func startCodes(f *testing.F) (*servertest.Instance, storage.User) {
	in := servertest.Start(f, func(c *server.Config) { c.Throttle = server.ThrottleConfig{PerAccount: 1 << 30, PerIP: 1 << 30} })
	nu, err := in.Manager().CreateUser(f.Context(), manage.UserSpec{Email: "codes@example.com"})
	if err != nil {
		f.Fatal(err)
	}
	uid := nu.User.ID
	// Sealed and keyed as enrolment stores them.
	sealed, err := in.Master.Seal([]byte("otpauth://totp/keygate:"+uid+"?secret="+fuzzSecret+"&period=30&digits=6&algorithm=SHA1"), []byte("totp:"+uid))
	if err != nil {
		f.Fatal(err)
	}
	if err := in.DB.PutTOTP(f.Context(), storage.TOTPCredential{UserID: uid, Sealed: sealed, CreatedAt: time.Now(), ConfirmedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	var hashes [][]byte
	for _, c := range fuzzRecoveryCodes {
		m := hmac.New(sha256.New, in.Master.Derive("recovery-code", 32))
		m.Write([]byte(strings.ReplaceAll(c, "-", "")))
		hashes = append(hashes, m.Sum(nil))
	}
	if err := in.DB.ReplaceRecoveryCodes(f.Context(), uid, hashes); err != nil {
		f.Fatal(err)
	}
	return in, nu.User
}

// validTOTP reports whether code is the app's code within two steps of
// now: wider than the server's one, so a step that turns between the
// request and this check does not matter.
func validTOTP(code string) bool {
	for s := -2; s <= 2; s++ {
		ok, _ := totp.ValidateCustom(code, fuzzSecret, time.Now().Add(time.Duration(s)*30*time.Second),
			totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if ok {
			return true
		}
	}
	return false
}

// FuzzCodeForm: whatever a TOTP or recovery-code form carries, the answer
// is never a server error, and the second factor is passed only with the
// app's current code or one of the user's recovery codes (in any case,
// with or without the dash or spaces).
func FuzzCodeForm(f *testing.F) {
	in, user := startCodes(f)
	if now, err := totp.GenerateCode(fuzzSecret, time.Now()); err == nil {
		f.Add(uint8(0), false, []byte("code="+now)) // the current code: the way through
	}
	f.Fuzz(func(t *testing.T, kind uint8, recovery bool, body []byte) {
		path := "/mfa/totp"
		if recovery {
			path = "/mfa/recovery"
		}
		b := in.Mint(t, session.Auth{})
		flow := in.Flow(t, b, storage.Flow{State: storage.FlowSecondFactor, UserID: user.ID, AMR: []string{"pwd"}})
		reply, form := in.PostHostile(t, b, path, kind, url.Values{"flow": {flow.ID}}, body)
		if reply.Status != http.StatusSeeOther {
			return
		}
		code := form.Get("code")
		norm := strings.NewReplacer("-", "", " ", "").Replace(strings.ToUpper(code))
		known := false
		for _, c := range fuzzRecoveryCodes {
			known = known || norm == strings.ReplaceAll(c, "-", "")
		}
		if recovery && !known || !recovery && !validTOTP(code) {
			t.Fatalf("POST %s with code %q passed the second factor", path, code)
		}
	})
}
