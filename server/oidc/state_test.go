package oidc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// withoutState is the test app's request as openid-client sends it to a
// server that advertises PKCE: no state.
func withoutState(extra url.Values) url.Values {
	q := authorizeQuery(extra)
	delete(q, "state")
	return q
}

// completeFlow has the flow that an authorize request made finish as
// server/login would, for the browser's sign-in, and returns its id.
func (e *env) completeFlow(t *testing.T, resp *http.Response, auth session.Auth) string {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || loc.Query().Get("flow") == "" {
		t.Fatalf("authorize: status %d, Location %q; want a flow", resp.StatusCode, resp.Header.Get("Location"))
	}
	id := loc.Query().Get("flow")
	err = e.db.UpdateFlow(t.Context(), id, func(f *storage.Flow) error {
		f.State, f.UserID, f.ACR, f.AMR, f.AuthTime = storage.FlowComplete, auth.UserID, auth.ACR, auth.AMR, auth.AuthTime
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAuthorizeWithoutState(t *testing.T) {
	e := newEnv(t)
	auth := session.Auth{UserID: e.user.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: e.clock.Now().Add(-time.Minute)}
	signedIn, _ := e.browser(t, auth)
	anonymous, _ := e.browser(t, session.Auth{})

	// redeem checks the app's redirect carries a code and no state, and
	// that the code is good.
	redeem := func(t *testing.T, resp *http.Response) {
		t.Helper()
		q := redirectParams(t, resp)
		if q.Get("code") == "" || q.Has("state") {
			t.Fatalf("redirect %v, want a code and no state", q)
		}
		if claims := e.idTokenClaims(t, e.exchange(t, q.Get("code")).IDToken); claims["sub"] != e.user.ID {
			t.Errorf("ID token claims %v", claims)
		}
	}

	t.Run("a request without state signs in and gets a code without state", func(t *testing.T) {
		resp := e.get(t, "/oauth2/authorize?"+withoutState(nil).Encode(), signedIn)
		flow := e.completeFlow(t, resp, auth)
		redeem(t, e.get(t, "/oauth2/authorize/resume?flow="+flow, signedIn))
	})

	t.Run("an error for a request without state carries no state", func(t *testing.T) {
		q := redirectParams(t, e.get(t, "/oauth2/authorize?"+withoutState(url.Values{"prompt": {"none"}}).Encode(), anonymous))
		if q.Get("error") != "login_required" || q.Has("state") {
			t.Errorf("redirect %v, want login_required and no state", q)
		}
	})

	t.Run("a state shorter than eight characters is still refused, and returned", func(t *testing.T) {
		q := redirectParams(t, e.get(t, "/oauth2/authorize?"+authorizeQuery(url.Values{"state": {"short"}}).Encode(), anonymous))
		if q.Get("error") != "invalid_state" || q.Get("state") != "short" || q.Has("code") {
			t.Errorf("redirect %v, want invalid_state with the state", q)
		}
	})

	t.Run("a pushed request without state signs in and gets a code without state", func(t *testing.T) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth2/par", strings.NewReader(withoutState(nil).Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("c_app", appSecret)
		resp := e.do(t, r, nil)
		var par struct {
			RequestURI string `json:"request_uri"`
			Error      string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&par); err != nil || resp.StatusCode != http.StatusCreated || par.RequestURI == "" {
			t.Fatalf("PAR: status %d, %+v, %v", resp.StatusCode, par, err)
		}
		resp = e.get(t, "/oauth2/authorize?"+url.Values{"client_id": {"c_app"}, "request_uri": {par.RequestURI}}.Encode(), signedIn)
		flow := e.completeFlow(t, resp, auth)
		redeem(t, e.get(t, "/oauth2/authorize/resume?flow="+flow, signedIn))
	})
}
