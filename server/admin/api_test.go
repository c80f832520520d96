package admin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
)

func manageSpec(name string) manage.ClientSpec {
	return manage.ClientSpec{Name: name, GrantTypes: []string{"client_credentials"}}
}

const v1 = "/api/admin/v1"

func TestAPIWithABrowserSession(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)

	r := in.call(t, &adm, "", http.MethodPost, v1+"/users", map[string]any{"email": "api@example.com", "name": "Api"})
	created := servertest.Decode[struct {
		User struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
		EnrollmentURL string `json:"enrollment_url"`
	}](t, r)
	if r.Status != http.StatusCreated || created.User.Email != "api@example.com" || !strings.HasPrefix(created.EnrollmentURL, in.Issuer+"/enroll?token=") {
		t.Fatalf("create: %v", r)
	}
	id := created.User.ID
	if r := in.call(t, &adm, "", http.MethodPost, v1+"/users", map[string]any{"email": "api@example.com"}); r.Status != http.StatusConflict ||
		servertest.Decode[map[string]string](t, r)["error"] != "conflict" {
		t.Errorf("duplicate: %v, want 409 conflict", r)
	}
	if r := in.call(t, &adm, "", http.MethodPost, v1+"/users", map[string]any{"email": "x@example.com", "role": "god"}); r.Status != http.StatusBadRequest {
		t.Errorf("an unknown role: %v, want 400", r)
	}

	r = in.call(t, &adm, "", http.MethodGet, v1+"/users?q=api", nil)
	list := servertest.Decode[struct {
		Users []map[string]any `json:"users"`
		Total int              `json:"total"`
	}](t, r)
	if r.Status != http.StatusOK || list.Total != 1 || list.Users[0]["id"] != id {
		t.Errorf("list: %v", r)
	}
	r = in.call(t, &adm, "", http.MethodGet, v1+"/users/"+id, nil)
	detail := servertest.Decode[map[string]any](t, r)
	if r.Status != http.StatusOK || detail["totp"] != "none" || detail["user"].(map[string]any)["email"] != "api@example.com" {
		t.Errorf("detail: %v", r)
	}
	for _, secret := range []string{"password", "hash", "sealed", "public_key"} {
		if strings.Contains(string(r.Body), secret) {
			t.Errorf("the user's details mention %q: %s", secret, r.Body)
		}
	}
	if r := in.call(t, &adm, "", http.MethodGet, v1+"/users/u_nobody", nil); r.Status != http.StatusNotFound ||
		servertest.Decode[map[string]string](t, r)["error"] != "not_found" {
		t.Errorf("unknown user: %v", r)
	}

	for _, step := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodPost, "/users/" + id + "/suspend", nil, http.StatusOK},
		{http.MethodPost, "/users/" + id + "/unsuspend", nil, http.StatusOK},
		{http.MethodPost, "/users/" + id + "/reenroll", nil, http.StatusOK},
		{http.MethodPost, "/users/" + id + "/revoke-sessions", nil, http.StatusOK},
		{http.MethodPost, "/users/" + id + "/reset-totp", nil, http.StatusNotFound},
		{http.MethodPut, "/users/" + id + "/admin", map[string]bool{"admin": true}, http.StatusOK},
		{http.MethodPut, "/users/" + id + "/admin", map[string]bool{"admin": false}, http.StatusOK},
		{http.MethodPut, "/users/" + id + "/admin", map[string]string{}, http.StatusBadRequest},
		{http.MethodDelete, "/users/" + id + "/sessions/nosuch", nil, http.StatusNotFound},
		{http.MethodPost, "/users/" + id + "/keys/%21%21/revoke", nil, http.StatusNotFound},
		{http.MethodDelete, "/users/" + id, nil, http.StatusNoContent},
		{http.MethodDelete, "/users/" + id, nil, http.StatusNotFound},
	} {
		if r := in.call(t, &adm, "", step.method, v1+step.path, step.body); r.Status != step.status {
			t.Errorf("%s %s: %v, want %d", step.method, step.path, r, step.status)
		}
	}

	// Apps.
	r = in.call(t, &adm, "", http.MethodPost, v1+"/clients", map[string]any{"name": "Worker",
		"grant_types": []string{"client_credentials"}, "access_token_ttl": "5m"})
	reg := servertest.Decode[struct {
		Client struct {
			ID             string `json:"id"`
			AccessTokenTTL string `json:"access_token_ttl"`
		} `json:"client"`
		Secret string `json:"client_secret"`
	}](t, r)
	if r.Status != http.StatusCreated || reg.Secret == "" || reg.Client.AccessTokenTTL != "5m" {
		t.Fatalf("register: %v", r)
	}
	cid := reg.Client.ID
	if _, status := in.tokenFor(t, cid, reg.Secret, ""); status != http.StatusOK {
		t.Errorf("the registered secret: %d", status)
	}
	r = in.call(t, &adm, "", http.MethodPost, v1+"/clients/"+cid+"/rotate-secret", map[string]string{"overlap": "24h"})
	rot := servertest.Decode[map[string]any](t, r)
	if r.Status != http.StatusOK || rot["client_secret"] == "" || rot["previous_secret_expires_at"] == nil {
		t.Fatalf("rotate: %v", r)
	}
	if _, status := in.tokenFor(t, cid, reg.Secret, ""); status != http.StatusOK {
		t.Error("the old secret stopped during the overlap")
	}
	if _, status := in.tokenFor(t, cid, rot["client_secret"].(string), ""); status != http.StatusOK {
		t.Error("the new secret does not work")
	}
	if r := in.call(t, &adm, "", http.MethodPost, v1+"/clients/"+cid+"/rotate-secret", map[string]string{"overlap": "forever"}); r.Status != http.StatusBadRequest {
		t.Errorf("a bad overlap: %v", r)
	}
	r = in.call(t, &adm, "", http.MethodPut, v1+"/clients/"+cid, map[string]any{"name": "Worker 2", "grant_types": []string{"client_credentials"}})
	if r.Status != http.StatusOK || servertest.Decode[map[string]any](t, r)["name"] != "Worker 2" {
		t.Errorf("update: %v", r)
	}
	r = in.call(t, &adm, "", http.MethodPost, v1+"/clients/"+cid+"/disable", nil)
	if r.Status != http.StatusOK || servertest.Decode[map[string]any](t, r)["disabled"] != true {
		t.Errorf("disable: %v", r)
	}
	r = in.call(t, &adm, "", http.MethodPost, v1+"/clients/"+cid+"/enable", nil)
	if r.Status != http.StatusOK || servertest.Decode[map[string]any](t, r)["disabled"] != false {
		t.Errorf("enable: %v", r)
	}
	r = in.call(t, &adm, "", http.MethodGet, v1+"/clients", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), cid) || strings.Contains(string(r.Body), "secret_hash") {
		t.Errorf("list clients: %v", r)
	}
	if r := in.call(t, &adm, "", http.MethodGet, v1+"/clients/"+cid, nil); r.Status != http.StatusOK {
		t.Errorf("get client: %v", r)
	}
	if r := in.call(t, &adm, "", http.MethodDelete, v1+"/clients/"+cid, nil); r.Status != http.StatusNoContent {
		t.Errorf("delete client: %v", r)
	}
	if r := in.call(t, &adm, "", http.MethodGet, v1+"/clients/"+cid, nil); r.Status != http.StatusNotFound {
		t.Errorf("a deleted client: %v", r)
	}

	// The audit log as JSON Lines.
	r = in.call(t, &adm, "", http.MethodGet, v1+"/audit?type="+audit.ClientSecretRotated+"&client_id="+cid, nil)
	lines := ndjson(t, r)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 1 ||
		lines[0]["actor"] != me.ID || lines[0]["client_id"] != cid {
		t.Errorf("audit: %v", r)
	}
	r = in.call(t, &adm, "", http.MethodGet, v1+"/audit?limit=3", nil)
	if lines := ndjson(t, r); len(lines) != 3 {
		t.Errorf("limit=3 gave %d lines", len(lines))
	}
}

func TestServiceTokens(t *testing.T) {
	in := start(t)
	in.newUser(t, "admin@example.com", true)
	m := in.Manager()
	ctx := t.Context()
	svc, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "Provisioner", GrantTypes: []string{"client_credentials"}, AdminAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := m.RegisterClient(ctx, manageSpec("Reporting"))
	if err != nil {
		t.Fatal(err)
	}
	token, status := in.tokenFor(t, svc.Client.ID, svc.Secret, manage.ScopeAdmin)
	if status != http.StatusOK {
		t.Fatalf("admin token: %d", status)
	}

	t.Run("a token with keygate:admin uses the API and is audited as the client", func(t *testing.T) {
		mark := in.AuditMark(t)
		if r := in.call(t, nil, token, http.MethodGet, v1+"/users", nil); r.Status != http.StatusOK {
			t.Errorf("list: %v", r)
		}
		r := in.call(t, nil, token, http.MethodPost, v1+"/users", map[string]any{"email": "svc@example.com"})
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %v", r)
		}
		u, err := in.DB.GetUserByEmail(ctx, "svc@example.com")
		if err != nil {
			t.Fatal(err)
		}
		// Sensitive actions need no key tap: a service has none.
		if r := in.call(t, nil, token, http.MethodPost, v1+"/users/"+u.ID+"/suspend", nil); r.Status != http.StatusOK {
			t.Errorf("suspend: %v", r)
		}
		for _, typ := range []string{audit.UserCreated, audit.UserSuspended} {
			ev := in.Events(t, mark, typ)
			if len(ev) != 1 || ev[0].Actor != "client:"+svc.Client.ID {
				t.Errorf("%s events %+v, want one by client:%s", typ, ev, svc.Client.ID)
			}
		}
	})
	t.Run("a token without the scope is forbidden", func(t *testing.T) {
		other, status := in.tokenFor(t, plain.Client.ID, plain.Secret, "")
		if status != http.StatusOK {
			t.Fatalf("token: %d", status)
		}
		r := in.call(t, nil, other, http.MethodGet, v1+"/users", nil)
		if r.Status != http.StatusForbidden || servertest.Decode[map[string]string](t, r)["error"] != "insufficient_scope" {
			t.Errorf("%v, want 403 insufficient_scope", r)
		}
	})
	t.Run("a bad or missing token is unauthorized", func(t *testing.T) {
		for _, tok := range []string{"ory_at_bogus.bogus", "nonsense"} {
			if r := in.call(t, nil, tok, http.MethodGet, v1+"/users", nil); r.Status != http.StatusUnauthorized {
				t.Errorf("%q: %v, want 401", tok, r)
			}
		}
		if r := in.call(t, nil, "", http.MethodGet, v1+"/users", nil); r.Status != http.StatusUnauthorized ||
			r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("no token: %v", r)
		}
	})
	t.Run("a service token opens no console page", func(t *testing.T) {
		r := in.send(t, nil, http.MethodGet, "/admin/users", "", nil, http.Header{"Authorization": {"Bearer " + token}})
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/login?") {
			t.Errorf("%v, want a redirect to sign in", r)
		}
	})
	t.Run("a disabled client's token stops working", func(t *testing.T) {
		if err := m.SetClientDisabled(ctx, svc.Client.ID, true); err != nil {
			t.Fatal(err)
		}
		if r := in.call(t, nil, token, http.MethodGet, v1+"/users", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("%v, want 401", r)
		}
	})
}

func TestBulkReadAlert(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	other := in.newUser(t, "other@example.com", true)
	adm := in.key(t, me.ID)
	target := in.newUser(t, "someone@example.com", false)
	mark := in.AuditMark(t)

	// 30 reads within the window are normal, whatever their kind.
	for i := range 30 {
		var r servertest.Reply
		switch i % 3 {
		case 0:
			r = in.get(t, &adm, "/admin/users/"+target.ID)
		case 1:
			r = in.call(t, &adm, "", http.MethodGet, v1+"/users/"+target.ID, nil)
		default:
			r = in.get(t, &adm, "/admin/audit/export")
		}
		if r.Status != http.StatusOK {
			t.Fatalf("read %d: %v", i, r)
		}
	}
	if ev := in.Events(t, mark, audit.AdminBulkRead); len(ev) != 0 {
		t.Fatalf("%d alerts within the limit", len(ev))
	}
	// Crossing it alerts once; reads go on succeeding.
	for i := range 15 {
		if r := in.get(t, &adm, "/admin/users/"+target.ID); r.Status != http.StatusOK {
			t.Fatalf("read %d past the limit: %v — the alert must not block", 30+i, r)
		}
	}
	if r := in.call(t, &adm, "", http.MethodGet, v1+"/audit", nil); r.Status != http.StatusOK {
		t.Errorf("an export past the limit: %v", r)
	}
	ev := in.Events(t, mark, audit.AdminBulkRead)
	if len(ev) != 1 {
		t.Fatalf("%d admin.bulk_read events, want exactly 1", len(ev))
	}
	if e := ev[0]; e.Actor != me.ID || e.Details["reads"] != "31" || e.Details["limit"] != "30" {
		t.Errorf("alert %+v", e)
	}
	// Another admin has their own count.
	otherAdm := in.key(t, other.ID)
	for range 5 {
		in.get(t, &otherAdm, "/admin/users/"+target.ID)
	}
	if ev := in.Events(t, mark, audit.AdminBulkRead); len(ev) != 1 {
		t.Errorf("another admin's few reads alerted: %d events", len(ev))
	}
	// The reads are kept in storage, per admin.
	n, err := in.DB.CountAttempts(t.Context(), "admin_read", me.ID, time.Now().Add(-time.Hour))
	if err != nil || n != 46 {
		t.Errorf("%d reads counted (%v), want 46", n, err)
	}
}
