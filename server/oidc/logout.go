package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v3"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
)

// hintClaims are what an id_token_hint's claims say; the ones besides
// sub, sid and aud are read to tell an ID token from the other tokens
// keygate signs with the same keys.
type hintClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	SID      string          `json:"sid"`
	Audience json.RawMessage `json:"aud"`
	// An RFC 9068 access token names its client; a back-channel logout
	// token carries its event. An ID token has neither.
	ClientID json.RawMessage `json:"client_id"`
	Events   json.RawMessage `json:"events"`
}

// LogoutData is the confirmation page's view.
type LogoutData struct {
	CSRF, ClientID, ClientName, RedirectURI, State string
	// AppSessionEnded: the app's own session (its id_token_hint's) was
	// ended already; this asks about the browser's.
	AppSessionEnded bool
}

// logout is RP-initiated logout. It redirects only to a post-logout URI the
// client registered. Without an id_token_hint naming this browser's session
// it asks the user first (a GET alone must not sign anyone out). Signing out
// ends the session and revokes every token issued from it.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	form := r.Form
	var hint *hintClaims
	var client storage.Client
	clientID := form.Get("client_id")
	if raw := form.Get("id_token_hint"); raw != "" {
		c, app, err := h.verifyHint(ctx, raw)
		if err != nil {
			return err
		}
		// RP-Initiated Logout: with both, client_id must be the hint's app.
		if clientID != "" && clientID != app.ID {
			return httpx.Errorf(http.StatusBadRequest, "The sign-out request names another app than its ID token was issued to.", nil)
		}
		hint, client, clientID = c, app, app.ID
	} else if clientID != "" {
		c, err := h.d.Store.GetClient(ctx, clientID)
		if err != nil {
			return httpx.Errorf(http.StatusBadRequest, "The sign-out request names an unknown app.", err)
		}
		client = c
	}
	redirect := form.Get("post_logout_redirect_uri")
	if redirect != "" && !slices.Contains(client.PostLogoutRedirectURIs, redirect) {
		return httpx.Errorf(http.StatusBadRequest, "The app asked to return to an address it has not registered for sign-out.", nil)
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	auth := sess.Auth()
	own := auth.UserID != "" // this browser is signed in
	ownHinted := own && hint != nil && hint.Subject == auth.UserID && hint.SID == sess.SID()
	ended, hintedGone := false, false
	// A valid hint names the session to end, whichever browser — or server:
	// an app's back end sends none of the user's cookies — asks. SignOut
	// ends it only if it is the hint's user's: it deletes the session and
	// checks its owner in one transaction.
	if hint != nil && hint.SID != "" && !ownHinted {
		done, err := h.d.SignOut(r, hint.Subject, hint.SID, clientID)
		if err != nil {
			return err
		}
		ended, hintedGone = done, !done
	}
	// This browser's own session ends when the hint names it, or when its
	// user confirms; a GET alone must not sign anyone out of keygate.
	confirmed := ownHinted || r.Method == http.MethodPost && sess.ValidCSRF(r.PostForm.Get("csrf_token"))
	if own && !confirmed {
		if r.Method == http.MethodPost {
			return httpx.Errorf(http.StatusForbidden, "The sign-out form expired. Reload the page and try again.", nil)
		}
		data := LogoutData{CSRF: sess.CSRFToken(), ClientID: clientID, ClientName: client.Name, RedirectURI: redirect,
			State: form.Get("state"), AppSessionEnded: ended}
		if err := sess.Save(w); err != nil {
			return err
		}
		h.d.Render.Page(w, r, http.StatusOK, render.PageLogout, "Sign out", data)
		return nil
	}
	if own {
		if _, err := h.d.SignOut(r, auth.UserID, sess.SID(), clientID); err != nil {
			return err
		}
		if err := sess.Destroy(w); err != nil {
			return err
		}
		ended = true
	}
	if redirect != "" {
		u, err := url.Parse(redirect)
		if err != nil {
			return httpx.Errorf(http.StatusBadRequest, "The sign-out return address is malformed.", err)
		}
		if st := form.Get("state"); st != "" {
			q := u.Query()
			q.Set("state", st)
			u.RawQuery = q.Encode()
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return nil
	}
	// Say what happened, and never claim a sign-out that did not happen.
	msg := "You are signed out of keygate."
	switch {
	case ended:
	case hintedGone:
		msg = "That session had already ended: there was nothing left to sign out."
	default:
		msg = "You were not signed in to keygate: nothing was signed out."
	}
	title := "Signed out"
	if !ended {
		title = "Not signed in"
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageMessage, title, render.MessageData{Message: msg})
	return nil
}

// verifyHint checks that raw is an ID token keygate issued, and returns
// its claims and the app it was issued to. It must be signed, with a key
// still published, as ID tokens are (idtoken.go: RS256 or ES256, typ
// JWT; either algorithm, since an app that switched may still hold ID
// tokens of the other); name
// this issuer; be no other token keygate signs with the same keys (an
// RFC 9068 access token: typ at+jwt, a client_id claim; a back-channel
// logout token: typ logout+jwt, an events claim); and have one audience,
// a registered app. Its expiry is not checked: RP-Initiated Logout 1.0 §2
// has the OP accept an expired hint, which names a session and grants
// nothing.
func (h *Handler) verifyHint(ctx context.Context, raw string) (*hintClaims, storage.Client, error) {
	refuse := func(why string) (*hintClaims, storage.Client, error) {
		return nil, storage.Client{}, httpx.Errorf(http.StatusBadRequest,
			"The sign-out request carries an ID token this server did not issue.", errors.New("id_token_hint: "+why))
	}
	jws, err := jose.ParseSigned(raw)
	if err != nil {
		return refuse(err.Error())
	}
	if len(jws.Signatures) != 1 {
		return refuse("expected one signature")
	}
	hdr := jws.Signatures[0].Header
	if !slices.Contains(idTokenAlgs, hdr.Algorithm) {
		return refuse("signed with " + hdr.Algorithm + ", not as ID tokens are")
	}
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "JWT") {
		return refuse("a token of type " + typ)
	}
	var payload []byte
	set := h.d.Keys.Current().JWKS()
	for _, k := range set.Key(hdr.KeyID) {
		if k.Algorithm == hdr.Algorithm {
			if payload, err = jws.Verify(k.Public()); err != nil {
				return refuse(err.Error())
			}
			break
		}
	}
	if payload == nil {
		return refuse("no published key for its kid and alg")
	}
	var c hintClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return refuse(err.Error())
	}
	switch {
	case c.Issuer != h.d.Issuer:
		return refuse("issued by " + c.Issuer)
	case c.Subject == "":
		return refuse("no subject")
	case c.ClientID != nil || c.Events != nil:
		return refuse("not an ID token")
	}
	clientID := c.audience()
	if clientID == "" {
		return refuse("not one audience")
	}
	app, err := h.d.Store.GetClient(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return refuse("issued to an unknown app")
	}
	if err != nil {
		return nil, storage.Client{}, err
	}
	return &c, app, nil
}

// audience is the hint's client: aud is a string or a one-element list.
func (c *hintClaims) audience() string {
	var one string
	if json.Unmarshal(c.Audience, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(c.Audience, &many) == nil && len(many) == 1 {
		return many[0]
	}
	return ""
}
