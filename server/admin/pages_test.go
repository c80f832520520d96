package admin_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/storage"
)

func TestUsersThroughThePages(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)

	var created storage.User
	t.Run("creating a user shows the enrolment link once", func(t *testing.T) {
		mark := in.AuditMark(t)
		r := in.form(t, &adm, "/admin/users", url.Values{"email": {"New.Person@example.com"}, "name": {"New Person"}})
		if r.Status != http.StatusOK {
			t.Fatalf("%v", r)
		}
		link := servertest.Scrape(t, r, reEnrollURL)
		if !strings.HasPrefix(link, in.Issuer+"/enroll?token=") {
			t.Errorf("link %q", link)
		}
		u, err := in.DB.GetUserByEmail(t.Context(), "new.person@example.com")
		if err != nil {
			t.Fatal(err)
		}
		created = u
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("the page with the link may be cached: %q", r.Header.Get("Cache-Control"))
		}
		token := strings.TrimPrefix(link, in.Issuer+"/enroll?token=")
		for _, p := range []string{"/admin/users", "/admin/users/" + u.ID, "/admin/audit"} {
			if g := in.get(t, &adm, p); strings.Contains(string(g.Body), token) || strings.Contains(string(g.Body), url.QueryEscape(token)) {
				t.Errorf("%s shows the link again", p)
			}
		}
		ev := in.Events(t, mark, audit.UserCreated)
		if len(ev) != 1 || ev[0].Actor != me.ID || ev[0].UserID != u.ID {
			t.Errorf("user.created events %+v, want one by %s", ev, me.ID)
		}
		if dup := in.form(t, &adm, "/admin/users", url.Values{"email": {"new.person@example.com"}}); dup.Status != http.StatusConflict {
			t.Errorf("a second user with the email: %v, want 409", dup)
		}
		if bad := in.form(t, &adm, "/admin/users", url.Values{"email": {"not an email"}}); bad.Status != http.StatusBadRequest ||
			!strings.Contains(string(bad.Body), "is not an email address") {
			t.Errorf("a bad email: %v, want 400 with the reason", bad)
		}
	})

	t.Run("the list searches and pages", func(t *testing.T) {
		for i := range 30 {
			in.newUser(t, "bulk"+string(rune('a'+i/26))+string(rune('a'+i%26))+"@example.com", false)
		}
		r := in.get(t, &adm, "/admin/users")
		if r.Status != http.StatusOK || strings.Count(string(r.Body), `href="/admin/users/u_`) != 25 ||
			!strings.Contains(string(r.Body), "page 1 of 2") || !strings.Contains(string(r.Body), `rel="next"`) {
			t.Errorf("first page: %.2000s", r.Body)
		}
		r = in.get(t, &adm, "/admin/users?page=2")
		if n := strings.Count(string(r.Body), `href="/admin/users/u_`); n != 32-25 {
			t.Errorf("second page lists %d users, want 7", n)
		}
		r = in.get(t, &adm, "/admin/users?q=NEW.PERSON")
		if !strings.Contains(string(r.Body), "new.person@example.com") || strings.Contains(string(r.Body), "bulkaa@") {
			t.Errorf("search: %.1500s", r.Body)
		}
	})

	t.Run("the user page shows keys, sessions and sign-ins with their risk decision", func(t *testing.T) {
		ctx := t.Context()
		if err := in.DB.CreateWebAuthnCredential(ctx, storage.WebAuthnCredential{ID: []byte("k1"), UserID: created.ID, Name: "Yubi",
			AAGUID:    []byte{0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a},
			PublicKey: []byte{1}, SignCount: 42, BackupEligible: true, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := in.DB.RecordSignIn(ctx, storage.SignInRecord{UserID: created.ID, Time: time.Now(), IP: "203.0.113.9",
			Country: "NZ", ACR: "phr", Decision: "step_up", Reasons: []string{"First sign-in from this device"}}); err != nil {
			t.Fatal(err)
		}
		in.key(t, created.ID)
		r := in.get(t, &adm, "/admin/users/"+created.ID)
		body := string(r.Body)
		for _, want := range []string{"Yubi", "ee882879-721c-4913-9775-3dfcce97072a", "synced passkey", "42",
			"203.0.113.9", "step_up", "First sign-in from this device", `id="sessions"`, "Recovery codes left"} {
			if !strings.Contains(body, want) {
				t.Errorf("the user page has no %q", want)
			}
		}
	})

	t.Run("suspending ends sessions and tokens", func(t *testing.T) {
		ctx := t.Context()
		victim := in.newUser(t, "victim@example.com", false)
		in.key(t, victim.ID)
		if err := in.DB.CreateToken(ctx, storage.TokenRecord{Kind: storage.KindAccessToken, Signature: "sig-victim",
			RequestID: "req-victim", ClientID: "c_any", Subject: victim.ID, Active: true, Request: []byte("{}"),
			RequestedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		path := "/admin/users/" + victim.ID + "/suspend"
		if r := in.form(t, &adm, path, nil); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "I understand") {
			t.Errorf("without the confirmation: %v, want 400", r)
		}
		if in.user(t, victim.ID).Suspended() {
			t.Fatal("suspended without confirmation")
		}
		r := in.form(t, &adm, path, url.Values{"confirm": {"yes"}})
		if r.Status != http.StatusSeeOther || r.Location() != "/admin/users/"+victim.ID+"?notice=suspended" {
			t.Fatalf("status %d to %q", r.Status, r.Location())
		}
		if !in.user(t, victim.ID).Suspended() {
			t.Error("not suspended")
		}
		if s, _ := in.DB.ListUserSessions(ctx, victim.ID); len(s) != 0 {
			t.Errorf("%d sessions left", len(s))
		}
		if tok, err := in.DB.GetToken(ctx, storage.KindAccessToken, "sig-victim"); err != nil || tok.Active {
			t.Errorf("token active %v (%v) after suspension", tok.Active, err)
		}
		if ev := in.Events(t, 0, audit.UserSuspended); len(ev) == 0 || ev[len(ev)-1].Actor != me.ID {
			t.Errorf("user.suspended events %+v, want the admin as actor", ev)
		}
		page := in.get(t, &adm, r.Location())
		if !strings.Contains(string(page.Body), "The user is suspended") {
			t.Errorf("no notice on %s", r.Location())
		}
		if r := in.form(t, &adm, "/admin/users/"+victim.ID+"/unsuspend", nil); r.Status != http.StatusSeeOther || in.user(t, victim.ID).Suspended() {
			t.Errorf("unsuspend: %v", r)
		}
	})

	t.Run("keys, sessions and the enrolment link", func(t *testing.T) {
		id := created.ID
		key := "/admin/users/" + id + "/keys/" + "azE" // base64url of "k1"
		if r := in.form(t, &adm, key+"/rename", url.Values{"name": {"Backup key"}}); r.Status != http.StatusSeeOther {
			t.Errorf("rename: %v", r)
		}
		if r := in.form(t, &adm, key+"/revoke", url.Values{"confirm": {"yes"}}); r.Status != http.StatusSeeOther {
			t.Errorf("revoke: %v", r)
		}
		c, err := in.DB.GetWebAuthnCredential(t.Context(), []byte("k1"))
		if err != nil || c.Name != "Backup key" || c.DisabledReason == "" {
			t.Errorf("key after rename and revoke: %+v, %v", c, err)
		}
		sessions, _ := in.DB.ListUserSessions(t.Context(), id)
		if len(sessions) == 0 {
			t.Fatal("the user has no session")
		}
		if r := in.form(t, &adm, "/admin/users/"+id+"/sessions/"+sessions[0].SID+"/revoke", nil); r.Status != http.StatusSeeOther {
			t.Errorf("revoke a session: %v", r)
		}
		if left, _ := in.DB.ListUserSessions(t.Context(), id); len(left) != len(sessions)-1 {
			t.Errorf("%d sessions left of %d", len(left), len(sessions))
		}
		r := in.form(t, &adm, "/admin/users/"+id+"/reenroll", nil)
		if link := servertest.Scrape(t, r, reEnrollURL); !strings.HasPrefix(link, in.Issuer+"/enroll?token=") {
			t.Errorf("re-issued link %q", link)
		}
	})

	t.Run("the last administrator cannot be demoted or deleted", func(t *testing.T) {
		for _, c := range []struct {
			path string
			form url.Values
		}{
			{"/admin/users/" + me.ID + "/role", url.Values{"role": {"none"}, "confirm": {"yes"}}},
			{"/admin/users/" + me.ID + "/role", url.Values{"role": {"helpdesk"}, "confirm": {"yes"}}},
			{"/admin/users/" + me.ID + "/delete", url.Values{"confirm": {"yes"}}},
		} {
			r := in.form(t, &adm, c.path, c.form)
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "last active administrator") {
				t.Errorf("%s: %v, want 400 naming the last administrator", c.path, r)
			}
		}
		if u := in.user(t, me.ID); !u.IsAdmin() {
			t.Error("the last administrator was demoted")
		}
		for _, c := range []struct {
			path string
			body any
		}{
			{"/admin", map[string]bool{"admin": false}},
			{"/role", map[string]string{"role": "none"}},
			{"/role", map[string]string{"role": "auditor"}},
		} {
			r := in.call(t, &adm, "", http.MethodPut, "/api/admin/v1/users/"+me.ID+c.path, c.body)
			if e := servertest.Decode[map[string]string](t, r); r.Status != http.StatusBadRequest || e["error"] != "invalid_request" ||
				!strings.Contains(e["error_description"], "last active administrator") {
				t.Errorf("API %s %v: %v", c.path, c.body, r)
			}
		}
		if u := in.user(t, me.ID); u.Role != "admin" {
			t.Errorf("the last administrator has role %q", u.Role)
		}
		r := in.call(t, &adm, "", http.MethodDelete, "/api/admin/v1/users/"+me.ID, nil)
		if r.Status != http.StatusBadRequest {
			t.Errorf("API delete: %v", r)
		}
		r = in.form(t, &adm, "/admin/users/"+me.ID+"/suspend", url.Values{"confirm": {"yes"}})
		if r.Status != http.StatusBadRequest {
			t.Errorf("suspending oneself: %v", r)
		}
	})

	t.Run("promoting, then demoting and deleting", func(t *testing.T) {
		id := created.ID
		if r := in.form(t, &adm, "/admin/users/"+id+"/role", url.Values{"role": {"admin"}}); r.Status != http.StatusSeeOther || !in.user(t, id).IsAdmin() {
			t.Errorf("promote: %v", r)
		}
		if r := in.form(t, &adm, "/admin/users/"+id+"/role", url.Values{"role": {"none"}}); r.Status != http.StatusBadRequest || !in.user(t, id).IsAdmin() {
			t.Errorf("demote without the confirmation: %v, want 400", r)
		}
		if r := in.form(t, &adm, "/admin/users/"+id+"/role", url.Values{"role": {"none"}, "confirm": {"yes"}}); r.Status != http.StatusSeeOther || in.user(t, id).IsAdmin() {
			t.Errorf("demote: %v", r)
		}
		if r := in.form(t, &adm, "/admin/users/"+id+"/delete", url.Values{"confirm": {"yes"}}); r.Status != http.StatusSeeOther || r.Location() != "/admin/users?notice=deleted" {
			t.Errorf("delete: %v", r)
		}
		if r := in.get(t, &adm, "/admin/users/"+id); r.Status != http.StatusNotFound {
			t.Errorf("a deleted user's page: %v", r)
		}
	})
}

func TestAppsThroughThePages(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)
	// An API that introspects the app's tokens, which name it.
	probe, err := in.Manager().RegisterClient(t.Context(), manageSpec("Probe"))
	if err != nil {
		t.Fatal(err)
	}
	probeCreds := [2]string{probe.Client.ID, probe.Secret}

	r := in.form(t, &adm, "/admin/apps", url.Values{"name": {"Nightly job"}, "grant": {"client_credentials"},
		"access_token_ttl": {"5m"}, "min_acr": {"phr"}, "audience": {probe.Client.ID}})
	if r.Status != http.StatusOK {
		t.Fatalf("register: %v", r)
	}
	id, secret := servertest.Scrape(t, r, reClientID), servertest.Scrape(t, r, reClientSecret)
	t.Run("the secret is shown once and works", func(t *testing.T) {
		if _, status := in.tokenFor(t, id, secret, ""); status != http.StatusOK {
			t.Errorf("token with the new secret: %d", status)
		}
		page := in.get(t, &adm, "/admin/apps/"+id)
		if page.Status != http.StatusOK || strings.Contains(string(page.Body), secret) {
			t.Errorf("the app page: status %d, shows the secret: %v", page.Status, strings.Contains(string(page.Body), secret))
		}
		if c := in.client(t, id); c.AccessTokenTTL != 5*time.Minute || c.MinACR != "phr" {
			t.Errorf("stored %v, %q", c.AccessTokenTTL, c.MinACR)
		}
		list := in.get(t, &adm, "/admin/apps")
		if !strings.Contains(string(list.Body), "Nightly job") {
			t.Error("the list does not show the app")
		}
	})

	rotate := func(t *testing.T, overlap string) string {
		t.Helper()
		r := in.form(t, &adm, "/admin/apps/"+id+"/rotate-secret", url.Values{"overlap": {overlap}, "confirm": {"yes"}})
		if r.Status != http.StatusOK {
			t.Fatalf("rotate: %v", r)
		}
		return servertest.Scrape(t, r, reClientSecret)
	}
	works := func(t *testing.T, s string) bool {
		t.Helper()
		_, status := in.tokenFor(t, id, s, "")
		return status == http.StatusOK
	}
	t.Run("rotating with an overlap keeps both secrets working", func(t *testing.T) {
		next := rotate(t, "24h")
		if !works(t, secret) || !works(t, next) {
			t.Errorf("old works %v, new works %v; want both", works(t, secret), works(t, next))
		}
		secret = next
	})
	t.Run("rotating without an overlap stops the old secret at once", func(t *testing.T) {
		old := secret
		next := rotate(t, "0")
		if works(t, old) || !works(t, next) {
			t.Errorf("old works %v, new works %v; want only the new", works(t, old), works(t, next))
		}
		secret = next
	})
	t.Run("editing keeps the secret", func(t *testing.T) {
		r := in.form(t, &adm, "/admin/apps/"+id, url.Values{"name": {"Nightly batch"}, "grant": {"client_credentials"}, "min_acr": {"mfa"},
			"audience": {probe.Client.ID}})
		if c := in.client(t, id); r.Status != http.StatusSeeOther || c.Name != "Nightly batch" || !works(t, secret) || !slices.Equal(c.Audience, []string{probe.Client.ID}) {
			t.Errorf("edit: %v", r)
		}
	})
	t.Run("disabling stops its tokens", func(t *testing.T) {
		token, status := in.tokenWith(t, id, secret, url.Values{"audience": {probe.Client.ID}})
		if status != http.StatusOK || !in.active(t, token, probeCreds) {
			t.Fatalf("a fresh token: status %d", status)
		}
		r := in.form(t, &adm, "/admin/apps/"+id+"/disable", url.Values{"confirm": {"yes"}})
		if r.Status != http.StatusSeeOther || !in.client(t, id).Disabled {
			t.Fatalf("disable: %v", r)
		}
		if in.active(t, token, probeCreds) {
			t.Error("a disabled app's token is still active")
		}
		if works(t, secret) {
			t.Error("a disabled app still gets tokens")
		}
		if r := in.form(t, &adm, "/admin/apps/"+id+"/enable", nil); r.Status != http.StatusSeeOther || in.client(t, id).Disabled {
			t.Errorf("enable: %v", r)
		}
	})
	t.Run("deleting", func(t *testing.T) {
		if r := in.form(t, &adm, "/admin/apps/"+id+"/delete", url.Values{"confirm": {"yes"}}); r.Status != http.StatusSeeOther {
			t.Errorf("delete: %v", r)
		}
		if r := in.get(t, &adm, "/admin/apps/"+id); r.Status != http.StatusNotFound {
			t.Errorf("a deleted app: %v", r)
		}
	})
	t.Run("invalid settings are refused with the reason", func(t *testing.T) {
		r := in.form(t, &adm, "/admin/apps", url.Values{"name": {"Web"}, "grant": {"authorization_code"},
			"redirect_uris": {"javascript:alert(1)"}})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "javascript") {
			t.Errorf("%v", r)
		}
		r = in.form(t, &adm, "/admin/apps", url.Values{"name": {"Web"}, "grant": {"client_credentials"}, "access_token_ttl": {"soon"}})
		if r.Status != http.StatusBadRequest {
			t.Errorf("%v", r)
		}
	})
}

var reEventRow = regexp.MustCompile(`<tr>\s*<td>(\d+)</td>`)

func TestAuditPages(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)
	ctx := t.Context()
	someone := in.newUser(t, "someone@example.com", false)
	for i := range 60 {
		if _, err := in.DB.AppendAudit(ctx, storage.AuditEvent{Type: audit.SigninSucceeded, Actor: someone.ID, UserID: someone.ID,
			ClientID: "c_app", Result: audit.Success, Time: time.Now().Add(time.Duration(i-60) * time.Second),
			Details: map[string]string{"decision": "step_up", "reasons": "New device; Unusual country", "acr": "phr"}}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("filters, pages newest first and shows decisions", func(t *testing.T) {
		r := in.get(t, &adm, "/admin/audit?user=someone@example.com&type=signin.succeeded")
		body := string(r.Body)
		rows := reEventRow.FindAllStringSubmatch(body, -1)
		if r.Status != http.StatusOK || len(rows) != 50 {
			t.Fatalf("status %d, %d rows", r.Status, len(rows))
		}
		for _, want := range []string{"Risk decision", "step_up", "<li>New device</li>", "<li>Unusual country</li>"} {
			if !strings.Contains(body, want) {
				t.Errorf("no %q", want)
			}
		}
		older := regexp.MustCompile(`href="([^"]*before_seq=(\d+)[^"]*)" rel="next"`).FindStringSubmatch(body)
		if older == nil || older[2] != rows[len(rows)-1][1] {
			t.Fatalf("older link %v, last row %v", older, rows[len(rows)-1])
		}
		r = in.get(t, &adm, html.UnescapeString(older[1]))
		if n := len(reEventRow.FindAllStringSubmatch(string(r.Body), -1)); n != 10 {
			t.Errorf("second page (%s) has %d rows, want 10", html.UnescapeString(older[1]), n)
		}
		r = in.get(t, &adm, "/admin/audit?result=denied")
		if strings.Contains(string(r.Body), "<code>signin.succeeded</code>") {
			t.Error("the result filter lets other results through")
		}
		today := time.Now().UTC().Format(time.DateOnly)
		r = in.get(t, &adm, "/admin/audit?type=signin.succeeded&until="+today+"&since="+today)
		if n := len(reEventRow.FindAllStringSubmatch(string(r.Body), -1)); n == 0 && time.Now().UTC().Hour() > 0 {
			t.Error("the date filter dropped today's events")
		}
		if r := in.get(t, &adm, "/admin/audit?since=yesterday"); r.Status != http.StatusBadRequest {
			t.Errorf("a bad date: %v", r)
		}
	})

	t.Run("the export is JSON Lines with the same filter", func(t *testing.T) {
		r := in.get(t, &adm, "/admin/audit/export?user="+someone.ID+"&type=signin.succeeded")
		if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" ||
			!strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("status %d, %q, %q", r.Status, r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"))
		}
		lines := ndjson(t, r)
		if len(lines) != 60 {
			t.Fatalf("%d lines, want 60", len(lines))
		}
		prev := lines[0]["seq"].(float64) + 1
		for _, l := range lines {
			if l["type"] != audit.SigninSucceeded || l["user_id"] != someone.ID || l["hash"] == "" || l["seq"].(float64) >= prev {
				t.Fatalf("line %v", l)
			}
			prev = l["seq"].(float64)
		}
	})

	t.Run("the hash chain check", func(t *testing.T) {
		r := in.get(t, &adm, "/admin/audit/verify")
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Hash chain intact") {
			t.Errorf("%.600s", r.Body)
		}
		if r := in.get(t, &adm, "/admin/audit"); !strings.Contains(string(r.Body), "Hash chain intact") {
			t.Error("the audit page does not show the recent check")
		}
	})
}
