package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

const groupsRedirect = "https://app.example/cb"

// groupWorld is a server with groups support and ops, an app only support
// may use, and an app anyone may use.
type groupWorld struct {
	*instance
	support, ops storage.Group
	crm, wiki    manage.NewClient
}

func newGroupWorld(t *testing.T) *groupWorld {
	t.Helper()
	w := &groupWorld{instance: start(t)}
	m := w.Manager()
	var err error
	if w.support, err = m.CreateGroup(t.Context(), manage.GroupSpec{Name: "support", MinACR: session.ACRPhr}); err != nil {
		t.Fatal(err)
	}
	if w.ops, err = m.CreateGroup(t.Context(), manage.GroupSpec{Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	w.crm = w.registerClient(t, manage.ClientSpec{Name: "CRM", RedirectURIs: []string{groupsRedirect},
		AllowedGroups: []string{"support"}, BackchannelLogoutURI: "https://crm.example/logout"})
	w.wiki = w.registerClient(t, manage.ClientSpec{Name: "Wiki", RedirectURIs: []string{groupsRedirect}, TokenFormat: "jwt"})
	return w
}

// member adds a user in groups and a browser signed in as them at acr.
func (w *groupWorld) member(t *testing.T, email, acr string, groups ...string) (storage.User, sessiontest.Browser) {
	t.Helper()
	nu, err := w.Manager().CreateUser(t.Context(), manage.UserSpec{Email: email, Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	amr := []string{"pwd", "otp"}
	if acr != session.ACRMFA {
		amr = []string{"pwd", "hwk"}
	}
	return nu.User, w.Mint(t, session.Auth{UserID: nu.User.ID, ACR: acr, AMR: amr, AuthTime: time.Now().Add(-time.Minute)})
}

// authorize follows an authorization request of app through keygate with
// b's cookie, and returns the last reply: a redirect to the app, or the
// page keygate stopped at.
func (w *groupWorld) authorize(t *testing.T, b sessiontest.Browser, app manage.NewClient, extra url.Values) servertest.Reply {
	t.Helper()
	q := authorizeQuery(app.Client.ID, groupsRedirect, "openid", "profile", "groups", "offline_access")
	for k, v := range extra {
		q[k] = v
	}
	return followSSO(t, w.HTTP, w.Instance, b.Cookie, "/oauth2/authorize?"+q.Encode())
}

type groupTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
}

// exchange redeems the code a redirect to the app carries.
func (w *groupWorld) exchange(t *testing.T, app manage.NewClient, reply servertest.Reply) groupTokens {
	t.Helper()
	return w.token(t, app, url.Values{"grant_type": {"authorization_code"}, "code": {redirectCode(t, reply, groupsRedirect)},
		"redirect_uri": {groupsRedirect}, "code_verifier": {pkceVerifier}})
}

func (w *groupWorld) token(t *testing.T, app manage.NewClient, form url.Values) groupTokens {
	t.Helper()
	resp := w.postForm(t, "/oauth2/token", form, []string{app.Client.ID, app.Secret})
	var tok groupTokens
	decodeJSON(t, resp, &tok)
	return tok
}

// jwtClaims reads a JWT's payload (its signature is go-oidc's business in
// the end-to-end tests).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGroupsDecideWhoMayUseAnApp(t *testing.T) {
	w := newGroupWorld(t)

	t.Run("an outsider signed in sees a page naming the app, and the refusal is audited", func(t *testing.T) {
		u, b := w.member(t, "outsider@example.com", session.ACRPhr, "ops")
		mark := w.AuditMark(t)
		r := w.authorize(t, b, w.crm, nil)
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "may not use CRM") {
			t.Fatalf("%v, want 403 naming CRM", r)
		}
		ev := w.Events(t, mark, audit.AccessRefused)
		if len(ev) != 1 || ev[0].UserID != u.ID || ev[0].ClientID != w.crm.Client.ID {
			t.Errorf("access.refused events %+v", ev)
		}
		// Another app, open to everyone, is no problem.
		if r := w.authorize(t, b, w.wiki, nil); !strings.HasPrefix(r.Location(), groupsRedirect+"?code=") {
			t.Errorf("the open app: %v", r)
		}
	})

	t.Run("with prompt=none an outsider's app gets access_denied", func(t *testing.T) {
		_, b := w.member(t, "quiet@example.com", session.ACRPhr)
		r := w.authorize(t, b, w.crm, url.Values{"prompt": {"none"}})
		u, err := url.Parse(r.Location())
		if err != nil || !strings.HasPrefix(r.Location(), groupsRedirect) || u.Query().Get("error") != "access_denied" {
			t.Fatalf("%v (Location %q), want a redirect with access_denied", r, r.Location())
		}
	})

	t.Run("a member gets the groups claim, and loses the app the moment they leave", func(t *testing.T) {
		u, b := w.member(t, "agent@example.com", session.ACRPhr, "support", "ops")
		tok := w.exchange(t, w.crm, w.authorize(t, b, w.crm, nil))
		if tok.AccessToken == "" || tok.RefreshToken == "" {
			t.Fatalf("tokens %+v", tok)
		}
		c := jwtClaims(t, tok.IDToken)
		if g := claimStrings(c["groups"]); !slices.Equal(g, []string{"ops", "support"}) || c["preferred_username"] != "agent@example.com" {
			t.Errorf("ID token groups %v, preferred_username %v", c["groups"], c["preferred_username"])
		}
		in := introspectAs(t, w.instance, w.crm, tok.AccessToken)
		if in["active"] != true || !slices.Equal(claimStrings(in["groups"]), []string{"ops", "support"}) {
			t.Errorf("introspection %v", in)
		}
		queued := outboxCount(t, w.instance)
		if err := w.Manager().RemoveMembers(t.Context(), w.support.ID, []string{u.Email}); err != nil {
			t.Fatal(err)
		}
		if in := introspectAs(t, w.instance, w.crm, tok.AccessToken); in["active"] != false {
			t.Errorf("introspection after the removal: %v", in)
		}
		if next := w.token(t, w.crm, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); next.Error != "invalid_grant" {
			t.Errorf("refresh after the removal: %+v, want invalid_grant", next)
		}
		if n := outboxCount(t, w.instance) - queued; n != 1 {
			t.Errorf("%d back-channel logouts queued for the app, want 1", n)
		}
		// The user is still signed in, and the open app still works.
		if r := w.authorize(t, b, w.wiki, nil); !strings.HasPrefix(r.Location(), groupsRedirect+"?code=") {
			t.Errorf("the open app after the removal: %v", r)
		}
	})

	t.Run("a refresh names the groups of now, in the ID token and the JWT access token", func(t *testing.T) {
		u, b := w.member(t, "grower@example.com", session.ACRPhr, "ops")
		tok := w.exchange(t, w.wiki, w.authorize(t, b, w.wiki, nil))
		if g := claimStrings(jwtClaims(t, tok.AccessToken)["groups"]); !slices.Equal(g, []string{"ops"}) {
			t.Fatalf("JWT access token groups %v", g)
		}
		if err := w.Manager().AddMembers(t.Context(), w.support.ID, []string{u.Email}); err != nil {
			t.Fatal(err)
		}
		next := w.token(t, w.wiki, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		if next.Error != "" {
			t.Fatalf("refresh: %+v", next)
		}
		for what, jwt := range map[string]string{"ID token": next.IDToken, "access token": next.AccessToken} {
			if g := claimStrings(jwtClaims(t, jwt)["groups"]); !slices.Equal(g, []string{"ops", "support"}) {
				t.Errorf("refreshed %s groups %v", what, g)
			}
		}
	})

	t.Run("narrowing an app's groups takes its tokens from those left out", func(t *testing.T) {
		_, b := w.member(t, "wikiuser@example.com", session.ACRPhr, "ops")
		tok := w.exchange(t, w.wiki, w.authorize(t, b, w.wiki, nil))
		spec := manage.ClientSpec{Name: "Wiki", RedirectURIs: []string{groupsRedirect}, TokenFormat: "jwt", AllowedGroups: []string{"support"}}
		if err := w.Manager().UpdateClient(t.Context(), w.wiki.Client.ID, spec); err != nil {
			t.Fatal(err)
		}
		if in := introspectAs(t, w.instance, w.wiki, tok.AccessToken); in["active"] != false {
			t.Errorf("introspection after the app was narrowed: %v", in)
		}
		spec.AllowedGroups = []string{} // open to everyone again; nil would keep the groups
		if err := w.Manager().UpdateClient(t.Context(), w.wiki.Client.ID, spec); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAGroupsMinimumAcrAppliesEverywhere(t *testing.T) {
	w := newGroupWorld(t)
	// support asks for a key; the wiki asks only for two factors.
	_, b := w.member(t, "appuser@example.com", session.ACRMFA, "support")
	r := w.authorize(t, b, w.wiki, nil)
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), "/mfa/verify?flow=") {
		t.Fatalf("%v (Location %q), want the browser asked for a second factor", r, r.Location())
	}
	flow, err := w.DB.GetFlow(t.Context(), strings.TrimPrefix(r.Location(), "/mfa/verify?flow="), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if flow.RequiredACR != session.ACRPhr || !slices.ContainsFunc(flow.Reasons, func(s string) bool { return strings.Contains(s, "support") }) {
		t.Errorf("flow requires %q with reasons %v, want phr because of support", flow.RequiredACR, flow.Reasons)
	}
	// The same session is enough for someone outside the group.
	_, other := w.member(t, "plain@example.com", session.ACRMFA)
	if r := w.authorize(t, other, w.wiki, nil); !strings.HasPrefix(r.Location(), groupsRedirect+"?code=") {
		t.Errorf("a non-member at mfa: %v", r)
	}
}

func introspectAs(t *testing.T, in *instance, app manage.NewClient, token string) map[string]any {
	t.Helper()
	resp := in.postForm(t, "/oauth2/introspect", url.Values{"token": {token}}, []string{app.Client.ID, app.Secret})
	var out map[string]any
	decodeJSON(t, resp, &out)
	return out
}

func outboxCount(t *testing.T, in *instance) int {
	t.Helper()
	ms, err := storage.PendingOutbox(t.Context(), in.DB, time.Now().Add(time.Hour), 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.Kind == manage.OutboxBackchannelLogout {
			n++
		}
	}
	return n
}
