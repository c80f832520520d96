package oidc

import (
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is the fosite session of every grant: the ID token claims filled
// from the real sign-in (acr, amr, auth_time), plus the browser session the
// grant came from, so ending that session can end its tokens.
type Session struct {
	*openid.DefaultSession `json:"id_token"`
	SID                    string `json:"sid,omitempty"`
}

// NewSession is an empty session for fosite to hydrate.
func NewSession() *Session {
	return &Session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// SessionID lets storage index tokens by browser session.
func (s *Session) SessionID() string { return s.SID }

func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := &Session{SID: s.SID}
	if s.DefaultSession != nil {
		c.DefaultSession = s.DefaultSession.Clone().(*openid.DefaultSession)
	}
	return c
}

// GetExtraClaims adds to introspection what a resource server needs for
// RFC 9470 step-up decisions: how and when the user signed in.
func (s *Session) GetExtraClaims() map[string]any {
	if s == nil || s.DefaultSession == nil || s.Claims == nil || s.Subject == "" {
		return nil
	}
	c := s.Claims
	extra := map[string]any{}
	if c.AuthenticationContextClassReference != "" {
		extra["acr"] = c.AuthenticationContextClassReference
	}
	if len(c.AuthenticationMethodsReferences) > 0 {
		extra["amr"] = c.AuthenticationMethodsReferences
	}
	if !c.AuthTime.IsZero() {
		extra["auth_time"] = c.AuthTime.Unix()
	}
	// The groups claim, when the grant has the groups scope: a JWT access
	// token carries it like the ID token.
	if g, ok := c.Extra[claimGroups]; ok {
		extra[claimGroups] = g
	}
	return extra
}

// signIn is GetExtraClaims for introspection, without a map.
func (s *Session) signIn() signIn {
	if s == nil || s.DefaultSession == nil || s.Claims == nil || s.Subject == "" {
		return signIn{}
	}
	c := s.Claims
	in := signIn{ACR: c.AuthenticationContextClassReference, AMR: c.AuthenticationMethodsReferences,
		Groups: c.Extra[claimGroups]}
	if !c.AuthTime.IsZero() {
		in.AuthTime = c.AuthTime.Unix()
	}
	return in
}

var _ oauth2.JWTSessionContainer = (*Session)(nil)

// GetJWTClaims are what a JWT access token (RFC 9068) takes from the grant:
// the user and, when one signed in, acr, amr and auth_time. The token
// strategy adds the rest. Built afresh on every call, so nothing of it is
// stored with the session.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	c := &jwt.JWTClaims{Extra: map[string]any{}}
	if s == nil || s.DefaultSession == nil {
		return c
	}
	c.Subject = s.Subject
	for k, v := range s.GetExtraClaims() {
		c.Extra[k] = v
	}
	return c
}

// GetJWTHeader types a JWT access token as RFC 9068 requires.
func (s *Session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]any{"typ": atJWTType}}
}

// claimGroups is the claim that names the user's groups (scope groups).
const claimGroups = "groups"

// hasGroups says whether the session carries the groups claim (its grant
// has the groups scope).
func (s *Session) hasGroups() bool {
	if s == nil || s.DefaultSession == nil || s.Claims == nil {
		return false
	}
	_, ok := s.Claims.Extra[claimGroups]
	return ok
}

// setGroups writes the groups claim of a session that has one, so that a
// refreshed ID token or JWT names the user's groups of now.
func (s *Session) setGroups(names []string) {
	if s.hasGroups() {
		s.Claims.Extra[claimGroups] = names
	}
}

// signedIn builds the session of an authorization from a completed sign-in.
func signedIn(issuer, userID, sid, acr string, amr []string, authTime, requestedAt time.Time, extra map[string]any) *Session {
	s := NewSession()
	s.Subject = userID
	s.SID = sid
	c := s.Claims
	c.Issuer = issuer
	c.Subject = userID
	c.AuthTime = authTime.UTC()
	c.RequestedAt = requestedAt.UTC()
	c.AuthenticationContextClassReference = acr
	c.AuthenticationMethodsReferences = amr
	c.Extra = extra
	return s
}
