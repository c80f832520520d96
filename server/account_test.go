package server_test

// The self-service account page through the whole server: sections built
// from what storage holds, signing other sessions out (through the same
// path as the admin console), and regenerating recovery codes behind a
// fresh key tap.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

const (
	firefoxLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	safariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	stepUpURL    = "/login?step_up=phr&return_to=/account"
)

var reRecoveryCode = regexp.MustCompile(`<li><code>([A-Z2-7]{5}-[A-Z2-7]{5})</code></li>`)

// recoveryHash is how keygate stores a recovery code.
func (in *instance) recoveryHash(code string) []byte {
	m := hmac.New(sha256.New, in.Master.Derive("recovery-code", 32))
	m.Write([]byte(strings.ReplaceAll(strings.ToUpper(code), "-", "")))
	return m.Sum(nil)
}

// deviceCookie is a device cookie the server recognises, and its id.
func (in *instance) deviceCookie(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	w := httptest.NewRecorder()
	id := session.NewDevices(in.Master.Derive("device-cookie", 32), false).Ensure(w, httptest.NewRequest(http.MethodGet, "/", nil))
	c := w.Result().Cookies()[0]
	return &http.Cookie{Name: c.Name, Value: c.Value}, id
}

// otherSession stores a live browser session of userID from another
// browser, returning its sid.
func (in *instance) otherSession(t *testing.T, userID, ip, ua string, age time.Duration) string {
	t.Helper()
	sid := "sid-" + randomLabel()
	sum := sha256.Sum256([]byte("cookie of " + sid))
	now := time.Now()
	if err := in.DB.CreateSession(t.Context(), storage.BrowserSession{IDHash: sum[:], SID: sid, UserID: userID, IP: ip, UserAgent: ua,
		CreatedAt: now.Add(-age), LastSeenAt: now.Add(-age / 2), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return sid
}

func randomLabel() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 12)
	for _, c := range b {
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

func (in *instance) sids(t *testing.T, userID string) map[string]bool {
	t.Helper()
	all, err := in.DB.ListUserSessions(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, s := range all {
		out[s.SID] = true
	}
	return out
}

// accountUser creates a user and a browser signed in as them with a.
type accountUser struct {
	id, sid, csrf string
	agent         *agent
}

func (in *instance) accountUser(t *testing.T, email string, a session.Auth) accountUser {
	t.Helper()
	nu, err := in.Manager().CreateUser(t.Context(), manage.UserSpec{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	a.UserID = nu.User.ID
	b := in.Mint(t, a)
	ag := in.newAgent(t)
	ag.addCookie(b.Cookie)
	sids := in.sids(t, nu.User.ID)
	if len(sids) != 1 {
		t.Fatalf("%d sessions after minting one", len(sids))
	}
	var sid string
	for s := range sids {
		sid = s
	}
	return accountUser{id: nu.User.ID, sid: sid, csrf: b.CSRF, agent: ag}
}

func mfaNow() session.Auth {
	return session.Auth{ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()}
}

func TestAccountPage(t *testing.T) {
	in := start(t)
	ctx := t.Context()
	payroll := in.registerClient(t, manage.ClientSpec{Name: "Payroll", RedirectURIs: []string{waApp}})

	u := in.accountUser(t, "page@example.com", mfaNow())
	devCookie, thisDevice := in.deviceCookie(t)
	u.agent.addCookie(devCookie)
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(in.DB.PutTOTP(ctx, storage.TOTPCredential{UserID: u.id, Sealed: []byte("x"), CreatedAt: now.Add(-48 * time.Hour)}))
	must(in.DB.ConfirmTOTP(ctx, u.id, time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC)))
	must(in.DB.ReplaceRecoveryCodes(ctx, u.id, [][]byte{in.recoveryHash("AAAAA-AAAAA"), in.recoveryHash("BBBBB-BBBBB"), in.recoveryHash("CCCCC-CCCCC")}))
	must(in.DB.TouchDevice(ctx, storage.Device{ID: thisDevice, UserID: u.id, UserAgent: "Firefox on Linux",
		FirstSeen: now.Add(-72 * time.Hour), LastSeen: now.Add(-time.Hour), LastCountry: "DE"}))
	must(in.DB.TouchDevice(ctx, storage.Device{ID: "phone-device-id", UserID: u.id, UserAgent: "Safari on iOS",
		FirstSeen: now.Add(-24 * time.Hour), LastSeen: now.Add(-3 * time.Hour), LastCountry: "FR"}))
	_, err := in.DB.RecordSignIn(ctx, storage.SignInRecord{UserID: u.id, Time: now.Add(-3 * time.Hour), Country: "FR", City: "Lyon",
		DeviceID: "phone-device-id", ClientID: payroll.Client.ID, ACR: "phr", Decision: "step_up",
		Reasons: []string{"This device has not been used to sign in before."}})
	must(err)
	_, err = in.DB.RecordSignIn(ctx, storage.SignInRecord{UserID: u.id, Time: now.Add(-time.Hour), Country: "DE", City: "Berlin",
		DeviceID: thisDevice, ACR: "mfa", Decision: "allow"})
	must(err)
	other := in.otherSession(t, u.id, "203.0.113.7", safariIPhone, 2*time.Hour)
	// Someone else's data must not appear.
	mallory := in.accountUser(t, "mallory-page@example.com", mfaNow())
	must(in.DB.TouchDevice(ctx, storage.Device{ID: "mallory-device", UserID: mallory.id, UserAgent: "Edge on Windows",
		FirstSeen: now, LastSeen: now}))
	malloryOther := in.otherSession(t, mallory.id, "198.51.100.9", firefoxLinux, time.Hour)

	page := u.agent.get(t, "/account")
	if page.Status != http.StatusOK {
		t.Fatalf("account page: %s", page)
	}
	body := string(page.Body)
	for _, want := range []string{
		`<h2 id="h-keys">Security keys and passkeys</h2>`,
		`<h2 id="h-totp">Authenticator app</h2>`,
		`Set up since <time datetime="2025-03-04T05:06:00Z">2025-03-04 05:06 UTC</time>`,
		`only be added with an enrolment link`,
		`<h2 id="h-recovery">Recovery codes</h2>`,
		`<p id="recovery-left">3 codes left.</p>`,
		`action="/mfa/recovery-codes"`,
		`<h2 id="h-devices">Devices</h2>`,
		`<strong>Firefox on Linux</strong> <span class="badge">this device</span>`,
		`<strong>Safari on iOS</strong>`,
		`last from FR`,
		`<h2 id="h-sessions">Sessions</h2>`,
		`<span class="badge">this session</span>`,
		`IP 203.0.113.7`,
		`name="sid" value="` + other + `"`,
		`action="/account/sessions/revoke-others"`,
		`<h2 id="h-activity">Recent activity</h2>`,
		`Lyon, FR · Safari on iOS · Payroll`,
		`Berlin, DE · Firefox on Linux (this device) · keygate (this account page)`,
		`<span class="badge">Allowed after an extra check</span>`,
		`<li>This device has not been used to sign in before.</li>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the account page lacks %q", want)
		}
	}
	for _, leak := range []string{malloryOther, mallory.sid, "Edge on Windows", "198.51.100.9", `name="sid" value="` + u.sid + `"`} {
		if strings.Contains(body, leak) {
			t.Errorf("the account page shows %q (another user's, or a sign-out form for this very session)", leak)
		}
	}
	// Devices most recent first; this session listed first.
	if strings.Index(body, "Firefox on Linux</strong>") > strings.Index(body, "Safari on iOS</strong>") {
		t.Error("devices are not most recently seen first")
	}
	if i := strings.Index(body, "this session"); i < 0 || i > strings.Index(body, "IP 203.0.113.7") {
		t.Error("this session is not listed first")
	}
	if strings.Index(body, "Berlin, DE") > strings.Index(body, "Lyon, FR") {
		t.Error("recent activity is not newest first")
	}
	// No inline script: the CSP would refuse it.
	if bytes.Contains(page.Body, []byte("<script>")) || bytes.Contains(page.Body, []byte(" onclick=")) {
		t.Error("the account page has inline script")
	}
}

func TestAccountSignOutSessions(t *testing.T) {
	in := start(t)
	ctx := t.Context()
	app := in.registerClient(t, manage.ClientSpec{Name: "App", RedirectURIs: []string{waApp},
		BackchannelLogoutURI: "https://app.example/backchannel"})

	u := in.accountUser(t, "sessions@example.com", mfaNow())
	other := in.otherSession(t, u.id, "203.0.113.7", safariIPhone, time.Hour)
	otherToken := in.AccessToken(t, app.Client.ID, u.id, other)
	currentToken := in.AccessToken(t, app.Client.ID, u.id, u.sid)
	mallory := in.accountUser(t, "mallory-sessions@example.com", mfaNow())
	malloryToken := in.AccessToken(t, app.Client.ID, mallory.id, mallory.sid)

	revoke := func(form url.Values) servertest.Reply {
		return u.agent.form(t, "/account/sessions/revoke", form)
	}
	unchanged := func(t *testing.T, mark int64) {
		t.Helper()
		if s := in.sids(t, u.id); !s[u.sid] || !s[other] {
			t.Errorf("sessions changed: %v", s)
		}
		if !in.sids(t, mallory.id)[mallory.sid] {
			t.Error("another user's session ended")
		}
		if !in.TokenActive(t, otherToken) || !in.TokenActive(t, currentToken) || !in.TokenActive(t, malloryToken) {
			t.Error("a token was revoked")
		}
		if ev := in.Events(t, mark, audit.SessionRevoked); len(ev) != 0 {
			t.Errorf("revocations audited: %+v", ev)
		}
	}

	t.Run("without the CSRF token nothing happens", func(t *testing.T) {
		mark := in.AuditMark(t)
		if r := revoke(url.Values{"sid": {other}}); r.Status != http.StatusForbidden {
			t.Errorf("%s, want 403", r)
		}
		if r := u.agent.form(t, "/account/sessions/revoke-others", nil); r.Status != http.StatusForbidden {
			t.Errorf("sign out all others: %s, want 403", r)
		}
		unchanged(t, mark)
	})

	t.Run("another user's session is unknown and untouched", func(t *testing.T) {
		mark := in.AuditMark(t)
		for _, sid := range []string{mallory.sid, "no-such-session"} {
			if r := revoke(url.Values{"csrf_token": {u.csrf}, "sid": {sid}}); r.Status != http.StatusNotFound {
				t.Errorf("sid %s: %s, want 404", sid, r)
			}
		}
		if r := revoke(url.Values{"csrf_token": {u.csrf}, "sid": {u.sid}}); r.Status != http.StatusBadRequest {
			t.Errorf("this session through the per-session form: %s, want 400", r)
		}
		unchanged(t, mark)
	})

	t.Run("signing out another session ends it and its tokens; this one survives", func(t *testing.T) {
		mark := in.AuditMark(t)
		r := revoke(url.Values{"csrf_token": {u.csrf}, "sid": {other}})
		if r.Status != http.StatusSeeOther || r.Location() != "/account" {
			t.Fatalf("%s (Location %q), want a redirect to /account", r, r.Location())
		}
		if s := in.sids(t, u.id); s[other] || !s[u.sid] || len(s) != 1 {
			t.Errorf("sessions after: %v", s)
		}
		if in.TokenActive(t, otherToken) {
			t.Error("the ended session's token is still active")
		}
		if !in.TokenActive(t, currentToken) || !in.TokenActive(t, malloryToken) {
			t.Error("a token of a surviving session was revoked")
		}
		ev := in.Events(t, mark, audit.SessionRevoked)
		if len(ev) != 1 || ev[0].UserID != u.id || ev[0].Actor != u.id || ev[0].Details["tokens_revoked"] != "1" || !strings.HasPrefix(other, ev[0].Details["sid"]) {
			t.Errorf("revocation events %+v", ev)
		}
		due, err := storage.PendingOutbox(ctx, in.DB, time.Now().Add(time.Minute), 100)
		if err != nil {
			t.Fatal(err)
		}
		var told bool
		for _, m := range due {
			var p manage.BackchannelLogout
			if m.Kind == manage.OutboxBackchannelLogout && json.Unmarshal(m.Payload, &p) == nil && p.SID == other && p.Subject == u.id {
				told = true
			}
		}
		if !told {
			t.Error("no back-channel logout queued for the ended session")
		}
		if page := u.agent.get(t, "/account"); page.Status != http.StatusOK || strings.Contains(string(page.Body), other) {
			t.Errorf("the account page after: %s", page)
		}
	})

	t.Run("sign out all other sessions keeps only this one", func(t *testing.T) {
		a := in.otherSession(t, u.id, "203.0.113.8", firefoxLinux, time.Hour)
		b := in.otherSession(t, u.id, "203.0.113.9", safariIPhone, 3*time.Hour)
		ta, tb := in.AccessToken(t, app.Client.ID, u.id, a), in.AccessToken(t, app.Client.ID, u.id, b)
		page := u.agent.get(t, "/account")
		if !strings.Contains(string(page.Body), `action="/account/sessions/revoke-others"`) {
			t.Fatalf("no sign-out-all form: %s", page)
		}
		mark := in.AuditMark(t)
		r := u.agent.form(t, "/account/sessions/revoke-others", url.Values{"csrf_token": {servertest.Scrape(t, page, reCSRFField)}})
		if r.Status != http.StatusSeeOther || r.Location() != "/account" {
			t.Fatalf("%s, want a redirect to /account", r)
		}
		if s := in.sids(t, u.id); len(s) != 1 || !s[u.sid] {
			t.Errorf("sessions after: %v, want only %s", s, u.sid)
		}
		if in.TokenActive(t, ta) || in.TokenActive(t, tb) || !in.TokenActive(t, currentToken) {
			t.Error("tokens after signing out all others are wrong")
		}
		if ev := in.Events(t, mark, audit.SessionRevoked); len(ev) != 2 {
			t.Errorf("%d revocation events, want one per session: %+v", len(ev), ev)
		}
		if !in.sids(t, mallory.id)[mallory.sid] || !in.TokenActive(t, malloryToken) {
			t.Error("another user's session or token ended")
		}
		page = u.agent.get(t, "/account")
		if page.Status != http.StatusOK || strings.Contains(string(page.Body), `action="/account/sessions/revoke-others"`) {
			t.Errorf("the account page still offers to sign out others: %s", page)
		}
	})
}

func TestAccountRegenerateRecoveryCodes(t *testing.T) {
	in := start(t)
	ctx := t.Context()
	old := []string{"AAAAA-AAAAA", "BBBBB-BBBBB"}
	seed := func(t *testing.T, uid string) {
		t.Helper()
		if err := in.DB.ReplaceRecoveryCodes(ctx, uid, [][]byte{in.recoveryHash(old[0]), in.recoveryHash(old[1])}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(t *testing.T, uid string) int {
		t.Helper()
		n, err := in.DB.CountRecoveryCodes(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// giveKey registers a security key for the user.
	giveKey := func(t *testing.T, uid string) {
		t.Helper()
		if err := in.DB.CreateWebAuthnCredential(ctx, storage.WebAuthnCredential{ID: []byte("key-" + uid), UserID: uid,
			AAGUID: make([]byte, 16), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	const appStepUp = "/login?step_up=mfa&return_to=/account"
	for _, s := range []struct {
		what   string
		auth   session.Auth
		hasKey bool
		to     string
	}{
		{"a key holder's password and app code just now", mfaNow(), true, stepUpURL},
		{"a key holder's key tap 10 minutes ago", session.Auth{ACR: session.ACRPhrh, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now().Add(-10 * time.Minute)}, true, stepUpURL},
		{"an app-only user's code 10 minutes ago", session.Auth{ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now().Add(-10 * time.Minute)}, false, appStepUp},
	} {
		t.Run("after "+s.what+" the browser is sent to confirm and nothing changes", func(t *testing.T) {
			u := in.accountUser(t, "stale-"+randomLabel()+"@example.com", s.auth)
			if s.hasKey {
				giveKey(t, u.id)
			}
			seed(t, u.id)
			mark := in.AuditMark(t)
			r := u.agent.form(t, "/mfa/recovery-codes", url.Values{"csrf_token": {u.csrf}})
			if r.Status != http.StatusSeeOther || r.Location() != s.to {
				t.Fatalf("%s (Location %q), want a redirect to %s", r, r.Location(), s.to)
			}
			if n := count(t, u.id); n != 2 {
				t.Errorf("%d codes left, want the 2 old ones", n)
			}
			if ev := in.Events(t, mark, audit.RecoveryCodesIssued); len(ev) != 0 {
				t.Errorf("codes issued: %+v", ev)
			}
			// The step-up URL asks this signed-in user for a key, then comes back.
			r = u.agent.get(t, r.Location())
			if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/login/continue?flow=") {
				t.Errorf("step-up start: %s (Location %q)", r, r.Location())
			}
		})
	}

	t.Run("without the CSRF token it is forbidden", func(t *testing.T) {
		u := in.accountUser(t, "nocsrf@example.com", session.Auth{ACR: session.ACRPhrh, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now()})
		seed(t, u.id)
		if r := u.agent.form(t, "/mfa/recovery-codes", nil); r.Status != http.StatusForbidden {
			t.Errorf("%s, want 403", r)
		}
		if n := count(t, u.id); n != 2 {
			t.Errorf("%d codes left, want the 2 old ones", n)
		}
	})

	t.Run("an app-only user with a fresh code gets new codes, and the page says a code is what it takes", func(t *testing.T) {
		u := in.accountUser(t, "apponly@example.com", mfaNow())
		seed(t, u.id)
		if page := u.agent.get(t, "/account"); !strings.Contains(string(page.Body), "This needs a code from your authenticator app") {
			t.Errorf("the account page of an app-only user: %s", page)
		}
		if r := u.agent.form(t, "/mfa/recovery-codes", url.Values{"csrf_token": {u.csrf}}); r.Status != http.StatusOK {
			t.Fatalf("%s, want the codes page", r)
		}
		if n := count(t, u.id); n != 10 {
			t.Errorf("%d codes stored, want 10", n)
		}
	})

	t.Run("after a fresh key tap the codes are replaced and shown once", func(t *testing.T) {
		u := in.accountUser(t, "fresh@example.com", session.Auth{ACR: session.ACRPhr, AMR: []string{"pwd", "swk"}, AuthTime: time.Now().Add(-time.Minute)})
		giveKey(t, u.id)
		seed(t, u.id)
		mark := in.AuditMark(t)
		r := u.agent.form(t, "/mfa/recovery-codes", url.Values{"csrf_token": {u.csrf}})
		if r.Status != http.StatusOK {
			t.Fatalf("%s, want the codes page", r)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q on the codes page", cc)
		}
		var codes []string
		for _, m := range reRecoveryCode.FindAllSubmatch(r.Body, -1) {
			codes = append(codes, string(m[1]))
		}
		if len(codes) != 10 {
			t.Fatalf("%d codes shown, want 10:\n%s", len(codes), r.Body)
		}
		if n := count(t, u.id); n != 10 {
			t.Errorf("%d codes stored, want 10", n)
		}
		for _, c := range old {
			if err := in.DB.UseRecoveryCode(ctx, u.id, in.recoveryHash(c), time.Now()); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("old code %s: %v, want not found", c, err)
			}
		}
		if err := in.DB.UseRecoveryCode(ctx, u.id, in.recoveryHash(codes[3]), time.Now()); err != nil {
			t.Errorf("a new code does not work: %v", err)
		}
		ev := in.Events(t, mark, audit.RecoveryCodesIssued)
		if len(ev) != 1 || ev[0].UserID != u.id || ev[0].Actor != u.id || ev[0].Details["reason"] != "regenerated" {
			t.Errorf("issue events %+v", ev)
		}
		if page := u.agent.get(t, "/account"); !strings.Contains(string(page.Body), `<p id="recovery-left">9 codes left.</p>`) {
			t.Errorf("the account page does not count the new codes: %s", page)
		}
	})
}
