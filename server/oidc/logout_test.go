package oidc

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// signedInApp is a browser signed in through a flow, and what the app got.
type signedInApp struct {
	cookie               *http.Cookie
	sid                  string
	idToken, accessToken string
	refreshToken         string
}

// signInThroughFlow completes a flow for the test user and redeems its code.
func (e *env) signInThroughFlow(t *testing.T) signedInApp {
	t.Helper()
	return e.signInWithScope(t, "openid")
}

func (e *env) signInWithScope(t *testing.T, scope string) signedInApp {
	t.Helper()
	return e.signInWithQuery(t, authorizeQuery(url.Values{"scope": {scope}}))
}

// signInWithQuery completes a flow of the authorization request query.
func (e *env) signInWithQuery(t *testing.T, query url.Values) signedInApp {
	t.Helper()
	q, cookie, sid := e.completeAuthorization(t, query)
	if q.Get("code") == "" {
		t.Fatalf("resume answered %v", q)
	}
	tok := e.exchange(t, q.Get("code"))
	return signedInApp{cookie: cookie, sid: sid, idToken: tok.IDToken, accessToken: tok.AccessToken, refreshToken: tok.RefreshToken}
}

// completeAuthorization signs a new browser in through a flow of the
// authorization request query, and returns what the app was answered.
func (e *env) completeAuthorization(t *testing.T, query url.Values) (url.Values, *http.Cookie, string) {
	t.Helper()
	flowID, cookie, sid := e.completedFlow(t, query)
	return redirectParams(t, e.get(t, "/oauth2/authorize/resume?flow="+flowID, cookie)), cookie, sid
}

// completedFlow signs a new browser in, 10 s after the authorization
// request query arrived, and stores the flow that sign-in completed,
// ready to resume. It returns the flow's id, the browser's cookie and its
// session's sid.
func (e *env) completedFlow(t *testing.T, query url.Values) (string, *http.Cookie, string) {
	t.Helper()
	created := e.clock.Now()
	e.clock.Advance(10 * time.Second)
	auth := session.Auth{UserID: e.user.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: e.clock.Now()}
	cookie, sid := e.browser(t, auth)
	err := e.db.CreateFlow(t.Context(), storage.Flow{
		ID: "flow-" + sid, SessionHash: sha(cookie.Value), ClientID: "c_app",
		Query: query.Encode(), State: storage.FlowComplete,
		UserID: e.user.ID, RequiredACR: session.ACRMFA, MaxAge: -1,
		ACR: auth.ACR, AMR: auth.AMR, AuthTime: auth.AuthTime,
		CreatedAt: created, ExpiresAt: created.Add(flowLifetime),
	})
	if err != nil {
		t.Fatal(err)
	}
	return "flow-" + sid, cookie, sid
}

// signedIn reports whether cookie still names a signed-in session.
func (e *env) signedIn(t *testing.T, cookie *http.Cookie) bool {
	t.Helper()
	x, err := e.sessions.Load(requestWith(t, cookie))
	if err != nil {
		t.Fatal(err)
	}
	return x.Auth().UserID != ""
}

func requestWith(t *testing.T, cookie *http.Cookie) *http.Request {
	r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	return r
}

// tokenActive asks userinfo whether the access token still works.
func (e *env) tokenActive(t *testing.T, accessToken string) bool {
	t.Helper()
	r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/oauth2/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+accessToken)
	return e.do(t, r, nil).StatusCode == http.StatusOK
}

func TestLogoutWithHint(t *testing.T) {
	const (
		thisBrowser = iota
		otherBrowser
		noCookie // an app's back end: oauth2-proxy's --backend-logout-url, zitadel's EndSession
	)
	tests := []struct {
		name string
		// query builds the logout request from the app's sign-in.
		query  func(app signedInApp) url.Values
		from   int
		status int
		// location is the redirect ("" none); body, a phrase of the page.
		location, body string
		// appEnded: the app's session and tokens ended; askerOut: the
		// asking browser's own session ended.
		appEnded, askerOut bool
	}{
		{"a hint naming this browser's session signs out without asking and ends its tokens",
			func(app signedInApp) url.Values {
				return url.Values{"id_token_hint": {app.idToken}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s1"}}
			}, thisBrowser, http.StatusSeeOther, "https://app.example/bye?state=s1", "", true, true},
		{"a hint with its own app's client_id signs out",
			func(app signedInApp) url.Values {
				return url.Values{"id_token_hint": {app.idToken}, "client_id": {"c_app"}, "post_logout_redirect_uri": {"https://app.example/bye"}}
			}, thisBrowser, http.StatusSeeOther, "https://app.example/bye", "", true, true},
		{"a hint issued to another app than client_id is refused",
			func(app signedInApp) url.Values {
				return url.Values{"id_token_hint": {app.idToken}, "client_id": {"c_other"}, "post_logout_redirect_uri": {"https://other.example/bye"}}
			}, thisBrowser, http.StatusBadRequest, "", "", false, false},
		{"a hint whose signature does not verify is refused",
			func(app signedInApp) url.Values {
				return url.Values{"id_token_hint": {app.idToken[:len(app.idToken)-4] + "AAAA"}}
			}, noCookie, http.StatusBadRequest, "", "", false, false},
		{"a hint sent without the browser's cookie ends the session it names",
			func(app signedInApp) url.Values {
				return url.Values{"id_token_hint": {app.idToken}}
			}, noCookie, http.StatusOK, "", "You are signed out", true, false},
		{"a hint sent without the browser's cookie, with a return address, ends the session and returns",
			func(app signedInApp) url.Values {
				return url.Values{"id_token_hint": {app.idToken}, "post_logout_redirect_uri": {"https://app.example/bye"}}
			}, noCookie, http.StatusSeeOther, "https://app.example/bye", "", true, false},
		{"a hint from another signed-in browser ends the session it names and asks about the browser's own",
			func(app signedInApp) url.Values {
				return url.Values{"id_token_hint": {app.idToken}, "post_logout_redirect_uri": {"https://app.example/bye"}}
			}, otherBrowser, http.StatusOK, "", "still signed in to keygate", true, false},
		{"without a hint a GET only asks",
			func(app signedInApp) url.Values {
				return url.Values{"client_id": {"c_app"}, "post_logout_redirect_uri": {"https://app.example/bye"}}
			}, thisBrowser, http.StatusOK, "", "Sign out of keygate and App?", false, false},
		{"without a hint or a session nothing is claimed",
			func(app signedInApp) url.Values { return url.Values{} },
			noCookie, http.StatusOK, "", "nothing was signed out", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			other := e.client
			other.ID, other.Name = "c_other", "Other"
			other.RedirectURIs = []string{"https://other.example/cb"}
			other.PostLogoutRedirectURIs = []string{"https://other.example/bye"}
			if err := e.db.CreateClient(t.Context(), other); err != nil {
				t.Fatal(err)
			}
			app := e.signInThroughFlow(t)
			var asker *http.Cookie
			switch tc.from {
			case thisBrowser:
				asker = app.cookie
			case otherBrowser:
				asker = e.signInThroughFlow(t).cookie
			}

			resp := e.get(t, "/oauth2/logout?"+tc.query(app).Encode(), asker)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, body)
			}
			if loc := resp.Header.Get("Location"); loc != tc.location {
				t.Errorf("Location = %q, want %q", loc, tc.location)
			}
			if !strings.Contains(html.UnescapeString(string(body)), tc.body) {
				t.Errorf("the page does not say %q: %.500s", tc.body, body)
			}
			if got := !e.signedIn(t, app.cookie); got != tc.appEnded {
				t.Errorf("the app's browser session ended = %v, want %v", got, tc.appEnded)
			}
			if got := !e.tokenActive(t, app.accessToken); got != tc.appEnded {
				t.Errorf("the app's access token ended = %v, want %v", got, tc.appEnded)
			}
			if tc.from == otherBrowser && e.signedIn(t, asker) == tc.askerOut {
				t.Errorf("the asking browser signed out = %v, want %v", !tc.askerOut, tc.askerOut)
			}
			if tc.askerOut {
				set := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
				if !strings.Contains(set, asker.Name+"=;") || !strings.Contains(set, "Max-Age=0") {
					t.Errorf("Set-Cookie = %q, want the session cookie expired", set)
				}
			}
		})
	}

	t.Run("a hint naming a session that ended already says so", func(t *testing.T) {
		e := newEnv(t)
		app := e.signInThroughFlow(t)
		q := "/oauth2/logout?" + url.Values{"id_token_hint": {app.idToken}}.Encode()
		if resp := e.get(t, q, nil); resp.StatusCode != http.StatusOK || e.signedIn(t, app.cookie) {
			t.Fatalf("first sign-out: status %d", resp.StatusCode)
		}
		resp := e.get(t, q, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "already ended") {
			t.Errorf("second sign-out: status %d: %.300s", resp.StatusCode, body)
		}
	})
}

// signToken signs claims with the current key of alg, under JOSE type typ,
// as keygate signs its ID tokens (the app's algorithm, JWT), JWT access
// tokens (ES256, at+jwt) and back-channel logout tokens (the app's
// algorithm, logout+jwt).
func (e *env) signToken(t *testing.T, alg, typ string, claims map[string]any) string {
	t.Helper()
	key, err := e.keys.Current().Signing(alg)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Only an ID token keygate issued to one of its apps is a hint that ends
// a session: not the app's JWT access token, not a back-channel logout
// token, not a token for an app keygate does not know. An expired one is.
func TestLogoutHintMustBeAnIDToken(t *testing.T) {
	// idToken is an ID token of the app's sign-in as keygate issues them,
	// changed by edit.
	idToken := func(t *testing.T, e *env, app signedInApp, alg, typ string, edit func(c map[string]any)) string {
		now := time.Now()
		c := map[string]any{"iss": issuer, "sub": e.user.ID, "aud": []string{"c_app"}, "sid": app.sid,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "jti-1", "auth_time": now.Unix(), "acr": "mfa"}
		edit(c)
		return e.signToken(t, alg, typ, c)
	}
	same := func(map[string]any) {}
	for _, tc := range []struct {
		name string
		hint func(t *testing.T, e *env, app signedInApp) string
		ends bool
	}{
		{"an ID token of the app's sign-in ends its session", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "JWT", same)
		}, true},
		{"an expired ID token still ends the session it names", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "JWT", func(c map[string]any) {
				c["iat"], c["exp"] = time.Now().Add(-48*time.Hour).Unix(), time.Now().Add(-47*time.Hour).Unix()
			})
		}, true},
		{"the app's JWT access token is refused", func(t *testing.T, e *env, app signedInApp) string {
			return app.accessToken
		}, false},
		{"a token typed as an access token, naming the session, is refused", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "at+jwt", same)
		}, false},
		{"an ES256 token typed as an access token, naming the session, is refused", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "ES256", "at+jwt", same)
		}, false},
		{"a token with an access token's client_id claim is refused", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "JWT", func(c map[string]any) { c["client_id"] = "c_app" })
		}, false},
		{"an ES256 ID token, as an app registered for it gets, ends its session", func(t *testing.T, e *env, app signedInApp) string {
			// Also for this app, registered for RS256: it may have switched
			// since its ID token was issued.
			return idToken(t, e, app, "ES256", "JWT", same)
		}, true},
		{"a back-channel logout token is refused", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "logout+jwt", func(c map[string]any) {
				c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
			})
		}, false},
		{"a token for an app keygate does not know is refused", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "JWT", func(c map[string]any) { c["aud"] = []string{"c_nobody"} })
		}, false},
		{"a token for the app and another audience is refused", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "JWT", func(c map[string]any) { c["aud"] = []string{"c_app", "c_nobody"} })
		}, false},
		{"a token of another issuer is refused", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "JWT", func(c map[string]any) { c["iss"] = "https://other.example" })
		}, false},
		{"a token whose sid is another user's session ends nothing", func(t *testing.T, e *env, app signedInApp) string {
			return idToken(t, e, app, "RS256", "JWT", func(c map[string]any) { c["sub"] = "u_mallory" })
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.setTokenFormat(t, TokenFormatJWT)
			app := e.signInThroughFlow(t)
			if !isJWT(app.accessToken) {
				t.Fatalf("the app's access token %q is not a JWT", app.accessToken)
			}
			resp := e.get(t, "/oauth2/logout?"+url.Values{"id_token_hint": {tc.hint(t, e, app)}}.Encode(), nil)
			body, _ := io.ReadAll(resp.Body)
			if tc.ends && resp.StatusCode != http.StatusOK || !tc.ends && resp.StatusCode < http.StatusBadRequest {
				t.Errorf("status %d: %.300s", resp.StatusCode, body)
			}
			if got := !e.signedIn(t, app.cookie); got != tc.ends {
				t.Errorf("the app's browser session ended = %v, want %v", got, tc.ends)
			}
		})
	}
}
