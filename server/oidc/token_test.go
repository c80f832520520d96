package oidc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

func TestRefresh(t *testing.T) {
	refresh := func(t *testing.T, e *env, rt string) tokenResponse {
		t.Helper()
		return e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	reuseEvents := func(t *testing.T, e *env) []storage.AuditEvent {
		t.Helper()
		ev, err := e.db.ListAudit(t.Context(), storage.AuditFilter{Type: audit.RefreshReused})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}

	t.Run("without offline_access no refresh token is issued", func(t *testing.T) {
		e := newEnv(t)
		if app := e.signInWithScope(t, "openid"); app.refreshToken != "" {
			t.Error("a refresh token was issued without offline_access")
		}
	})

	t.Run("concurrent refreshes with one token within the grace window all succeed", func(t *testing.T) {
		e := newEnv(t)
		app := e.signInWithScope(t, "openid offline_access")
		if app.refreshToken == "" {
			t.Fatal("no refresh token")
		}
		var wg sync.WaitGroup
		got := make([]tokenResponse, 3)
		for i := range got {
			wg.Go(func() { got[i] = refresh(t, e, app.refreshToken) })
		}
		wg.Wait()
		for i, tok := range got {
			if tok.status != http.StatusOK || tok.AccessToken == "" || tok.RefreshToken == "" {
				t.Errorf("refresh %d: status %d, %+v", i, tok.status, tok)
			}
		}
		if ev := reuseEvents(t, e); len(ev) != 0 {
			t.Errorf("%d refresh-reuse events within the grace window", len(ev))
		}
		// The refreshed token keeps the sign-in's claims.
		claims := e.idTokenClaims(t, got[0].IDToken)
		if claims["sub"] != e.user.ID || claims["acr"] != "mfa" || claims["sid"] != app.sid {
			t.Errorf("refreshed ID token: sub %v acr %v sid %v", claims["sub"], claims["acr"], claims["sid"])
		}
	})

	t.Run("each refresh records one event, with the rotation it records", func(t *testing.T) {
		e := newEnv(t)
		app := e.signInWithScope(t, "openid offline_access")
		rt := app.refreshToken
		for i := range 3 {
			tok := refresh(t, e, rt)
			if tok.status != http.StatusOK {
				t.Fatalf("refresh %d: %d %s", i, tok.status, tok.Error)
			}
			rt = tok.RefreshToken
		}
		ev, err := e.db.ListAudit(t.Context(), storage.AuditFilter{Type: audit.TokenRefreshed})
		if err != nil {
			t.Fatal(err)
		}
		if len(ev) != 3 {
			t.Fatalf("%d %s events for 3 refreshes", len(ev), audit.TokenRefreshed)
		}
		for _, x := range ev {
			if x.UserID != e.user.ID || x.ClientID != "c_app" || x.Details["grant_type"] != "refresh_token" {
				t.Errorf("event %+v", x)
			}
		}
		// A refused refresh records none.
		if tok := refresh(t, e, "ory_rt_unknown.unknown"); tok.status == http.StatusOK {
			t.Fatal("an unknown refresh token was accepted")
		}
		if ev, _ := e.db.ListAudit(t.Context(), storage.AuditFilter{Type: audit.TokenRefreshed}); len(ev) != 3 {
			t.Errorf("%d events after a refused refresh, want 3", len(ev))
		}
	})

	t.Run("a reuse after the grace window is refused, audited and ends the family", func(t *testing.T) {
		e := newEnv(t)
		app := e.signInWithScope(t, "openid offline_access")
		next := refresh(t, e, app.refreshToken)
		if next.status != http.StatusOK {
			t.Fatalf("first refresh: %+v", next)
		}
		if e.tokenActive(t, app.accessToken) {
			t.Error("the access token issued with the used refresh token still works")
		}
		e.clock.Advance(DefaultLifetimes.RefreshGrace + time.Second)

		// Introspecting the used token is no reuse: nothing is raised.
		if in := e.introspect(t, app.refreshToken); in["active"] != false {
			t.Errorf("introspection of the used refresh token: %v", in)
		}
		if ev := reuseEvents(t, e); len(ev) != 0 {
			t.Fatalf("introspection raised %d refresh-reuse events", len(ev))
		}

		again := refresh(t, e, app.refreshToken)
		if again.status != http.StatusBadRequest || again.Error != "invalid_grant" {
			t.Fatalf("reuse: status %d, error %q; want 400 invalid_grant", again.status, again.Error)
		}
		ev := reuseEvents(t, e)
		if len(ev) != 1 || ev[0].UserID != e.user.ID || ev[0].ClientID != "c_app" || ev[0].Result != audit.Denied {
			t.Fatalf("refresh-reuse events = %+v, want one, denied, for %s at c_app", ev, e.user.ID)
		}
		if e.tokenActive(t, next.AccessToken) {
			t.Error("the family's newest access token still works after the reuse")
		}
		if tok := refresh(t, e, next.RefreshToken); tok.status == http.StatusOK {
			t.Error("the family's newest refresh token still works after the reuse")
		}
	})

	t.Run("a refresh token revoked without being used raises no alarm", func(t *testing.T) {
		e := newEnv(t)
		app := e.signInWithScope(t, "openid offline_access")
		if _, err := e.manager(t).SuspendUserID(t.Context(), e.user.ID); err != nil {
			t.Fatal(err)
		}
		tok := refresh(t, e, app.refreshToken)
		if tok.status != http.StatusBadRequest || tok.Error != "invalid_grant" {
			t.Fatalf("refresh after the suspension: status %d, error %q; want 400 invalid_grant", tok.status, tok.Error)
		}
		if ev := reuseEvents(t, e); len(ev) != 0 {
			t.Errorf("a suspension's revocation raised %d refresh-reuse events", len(ev))
		}
	})
}

// A refresh reads the user's groups only for a grant that carries them.
func TestRefreshReadsGroupsOnlyForTheGroupsClaim(t *testing.T) {
	var spy *spyStore
	e := newEnv(t, withSpy(&spy))
	e.allowScope(t, "groups")
	e.joinGroup(t, "g_staff", "")
	refresh := func(t *testing.T, rt string) tokenResponse {
		t.Helper()
		spy.reset(t)
		tok := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if tok.status != http.StatusOK {
			t.Fatalf("refresh: status %d, %+v", tok.status, tok)
		}
		return tok
	}

	t.Run("without the groups scope", func(t *testing.T) {
		app := e.signInWithScope(t, "openid offline_access")
		refresh(t, app.refreshToken)
		if n := spy.count("ListUserGroups"); n != 0 {
			t.Errorf("the refresh read the user's groups %d times, want none", n)
		}
	})

	t.Run("with the groups scope, the refreshed tokens name the groups of now", func(t *testing.T) {
		app := e.signInWithScope(t, "openid offline_access groups")
		e.joinGroup(t, "g_ops", "")
		tok := refresh(t, app.refreshToken)
		if n := spy.count("ListUserGroups"); n != 1 {
			t.Errorf("the refresh read the user's groups %d times, want 1", n)
		}
		if g, _ := e.idTokenClaims(t, tok.IDToken)["groups"].([]any); len(g) != 2 {
			t.Errorf("refreshed ID token groups %v, want g_ops and g_staff", g)
		}
	})
}

// A code exchange's PKCE and OpenID Connect sessions are deleted with its
// audit event when it succeeds, and on the way out when it fails: a wrong
// code_verifier uses the code up, as fosite's own deletion did.
func TestCodeExchangeDeletesItsSessions(t *testing.T) {
	rows := func(t *testing.T, e *env, code string) (pkce, oidc bool) {
		t.Helper()
		sum := sha256.Sum256([]byte(code))
		_, perr := e.db.GetToken(t.Context(), storage.KindPKCE, code[strings.LastIndexByte(code, '.')+1:])
		_, oerr := e.db.GetToken(t.Context(), storage.KindOIDC, hex.EncodeToString(sum[:]))
		for _, err := range []error{perr, oerr} {
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
		}
		return perr == nil, oerr == nil
	}
	t.Run("a successful exchange", func(t *testing.T) {
		e := newEnv(t)
		q, _, _ := e.completeAuthorization(t, authorizeQuery(nil))
		code := q.Get("code")
		if p, o := rows(t, e, code); !p || !o {
			t.Fatalf("before the exchange: PKCE session %v, OpenID Connect session %v; want both", p, o)
		}
		e.exchange(t, code)
		if p, o := rows(t, e, code); p || o {
			t.Errorf("after the exchange: PKCE session %v, OpenID Connect session %v; want neither", p, o)
		}
	})
	t.Run("a wrong code_verifier", func(t *testing.T) {
		e := newEnv(t)
		q, _, _ := e.completeAuthorization(t, authorizeQuery(nil))
		code := q.Get("code")
		bad := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
			"code_verifier": {strings.Repeat("x", 43)}})
		if bad.status != http.StatusBadRequest || bad.Error != "invalid_grant" {
			t.Fatalf("wrong verifier: %d %s", bad.status, bad.Error)
		}
		if p, _ := rows(t, e, code); p {
			t.Error("the PKCE session outlived a wrong verifier")
		}
		again := e.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}})
		if again.status == http.StatusOK {
			t.Error("the code still worked after a wrong verifier")
		}
	})
}
