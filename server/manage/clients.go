package manage

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// ClientSpec describes an app to register or update.
type ClientSpec struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Public                 bool
	GrantTypes             []string
	MinACR                 string
	MaxAuthAge             time.Duration // 0: no limit beyond the session's
	BackchannelLogoutURI   string
	AccessTokenTTL         time.Duration // 0: the server's default
	RefreshTokenTTL        time.Duration
	// TokenFormat of the app's access tokens: "opaque" or "jwt" (RFC 9068).
	// Empty: opaque for a new app, unchanged on update.
	TokenFormat string
	// IDTokenAlg signs the app's ID tokens: "RS256" or "ES256" (OIDC's
	// id_token_signed_response_alg). Empty: RS256 for a new app,
	// unchanged on update.
	IDTokenAlg string
	// DenyRisky refuses, for this app, a sign-in the risk engine would
	// step up.
	DenyRisky bool
	// AdminAPI lets the app call keygate's admin API with a
	// client_credentials token of scope keygate:admin.
	AdminAPI bool
	// Audience lists the APIs (their client ids) the app may ask tokens
	// for with the audience parameter; an API a token names may
	// introspect it.
	Audience []string
	// AllowedGroups names the groups whose members may use the app; none
	// means every enrolled user. UpdateClient keeps the app's groups when
	// it is nil; an empty list that is not nil opens the app to every
	// enrolled user.
	AllowedGroups []string
}

// ScopeAdmin is the scope a service token needs for the admin API.
const ScopeAdmin = "keygate:admin"

// scopes an app may ask for.
func (s ClientSpec) scopes() []string {
	sc := []string{"openid", "email", "profile", "groups", "offline_access"}
	if s.AdminAPI {
		sc = append(sc, ScopeAdmin)
	}
	return sc
}

// NewClient is a registered app and, for confidential ones, its secret —
// shown now and never again (only a keyed hash is stored).
type NewClient struct {
	Client storage.Client
	Secret string
}

var knownGrants = []string{"authorization_code", "refresh_token", "client_credentials"}

// tokenFormats are the access token formats an app may be registered with.
var tokenFormats = []string{"opaque", "jwt"}

// IDTokenAlgs are the algorithms an app's ID tokens may be signed with:
// RS256, the default every relying party accepts (OIDC Discovery requires
// it), and ES256, which costs the server over ten times less CPU per
// token.
var IDTokenAlgs = []string{"RS256", "ES256"}

// RegisterClient validates spec and stores the app.
func (m *Manager) RegisterClient(ctx context.Context, spec ClientSpec) (NewClient, error) {
	if err := validateClient(&spec); err != nil {
		return NewClient{}, err
	}
	id, err := keys.RandomToken(16)
	if err != nil {
		return NewClient{}, err
	}
	now := m.Now()
	c := storage.Client{ID: "c_" + id, ResponseTypes: []string{"code"}, TokenFormat: "opaque", IDTokenAlg: "RS256", CreatedAt: now}
	spec.apply(&c, now)
	var out NewClient
	if !spec.Public {
		if out.Secret, err = keys.NewSecret(); err != nil {
			return NewClient{}, err
		}
		if c.SecretHash, err = m.Hasher.Hash(ctx, []byte(out.Secret)); err != nil {
			return NewClient{}, err
		}
	}
	err = m.Store.InTx(ctx, func(ctx context.Context) error {
		if c.AllowedGroups, err = m.groupIDs(ctx, spec.AllowedGroups); err != nil {
			return err
		}
		out.Client = c
		if err := m.Store.CreateClient(ctx, c); err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.ClientCreated, ClientID: c.ID,
			Result: audit.Success, Details: map[string]string{"name": c.Name, "grants": strings.Join(c.GrantTypes, " "),
				"public": fmt.Sprint(c.Public), "min_acr": c.MinACR, "token_format": c.TokenFormat,
				"id_token_alg": c.IDTokenAlg, "allowed_groups": strings.Join(spec.AllowedGroups, " ")}})
	})
	return out, err
}

// apply copies the spec onto c.
func (s ClientSpec) apply(c *storage.Client, now time.Time) {
	c.Name, c.RedirectURIs, c.PostLogoutRedirectURIs = s.Name, s.RedirectURIs, s.PostLogoutRedirectURIs
	c.GrantTypes, c.Public, c.MinACR, c.MaxAuthAge = s.GrantTypes, s.Public, s.MinACR, s.MaxAuthAge
	c.BackchannelLogoutURI, c.AccessTokenTTL, c.RefreshTokenTTL = s.BackchannelLogoutURI, s.AccessTokenTTL, s.RefreshTokenTTL
	c.DenyRisky = s.DenyRisky
	c.Audience = s.Audience
	if s.TokenFormat != "" {
		c.TokenFormat = s.TokenFormat
	}
	if s.IDTokenAlg != "" {
		c.IDTokenAlg = s.IDTokenAlg
	}
	c.Scopes = s.scopes()
	c.UpdatedAt = now
}

// UpdateClient changes an app's settings. Its secret and type (public or
// confidential) stay as they are, and so do its allowed groups when
// spec.AllowedGroups is nil: a caller that does not know of them cannot
// open the app to everyone by leaving them out.
func (m *Manager) UpdateClient(ctx context.Context, id string, spec ClientSpec) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		old, err := m.Store.GetClient(ctx, id)
		if err != nil {
			return notFound(err, "no such app")
		}
		spec.Public = old.Public
		if err := validateClient(&spec); err != nil {
			return err
		}
		keep := spec.AllowedGroups == nil
		var groups []string
		if !keep {
			if groups, err = m.groupIDs(ctx, spec.AllowedGroups); err != nil {
				return err
			}
		}
		var updated storage.Client
		var narrowed bool
		if err := m.Store.UpdateClient(ctx, id, func(c *storage.Client) error {
			if !keep {
				narrowed = narrows(c.AllowedGroups, groups)
				c.AllowedGroups = groups
			}
			spec.apply(c, m.Now())
			updated = *c
			return nil
		}); err != nil {
			return err
		}
		// Users the app's new groups leave out lose it now. Groups kept or
		// added leave out no one the app allowed before.
		if narrowed {
			if err := m.revokeOutsiders(ctx, updated); err != nil {
				return err
			}
		}
		names := spec.AllowedGroups
		if keep && len(updated.AllowedGroups) > 0 {
			index, _, err := GroupIndex(ctx, m.Store)
			if err != nil {
				return err
			}
			names = GroupNames(updated.AllowedGroups, index)
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.ClientUpdated, ClientID: id,
			Details: map[string]string{"name": spec.Name, "grants": strings.Join(spec.GrantTypes, " "), "min_acr": spec.MinACR,
				"id_token_alg": updated.IDTokenSignedResponseAlg(), "allowed_groups": strings.Join(names, " ")}})
	})
}

// narrows reports whether an app whose allowed groups change from old to
// next may leave out someone it allowed: next names groups (none means
// everyone) and old allowed everyone, or a group next drops.
func narrows(old, next []string) bool {
	if len(next) == 0 {
		return false
	}
	return len(old) == 0 || slices.ContainsFunc(old, func(id string) bool { return !slices.Contains(next, id) })
}

// MaxSecretOverlap bounds how long a replaced secret keeps working.
const MaxSecretOverlap = 30 * 24 * time.Hour

// RotateClientSecret gives a confidential app a new secret, shown once.
// The old one keeps working for overlap (0: stops at once), so the app can
// be redeployed without an outage.
func (m *Manager) RotateClientSecret(ctx context.Context, id string, overlap time.Duration) (string, error) {
	if overlap < 0 || overlap > MaxSecretOverlap {
		return "", fmt.Errorf("%w: the overlap must be between 0 and %s", ErrInvalid, MaxSecretOverlap)
	}
	secret, err := keys.NewSecret()
	if err != nil {
		return "", err
	}
	hash, err := m.Hasher.Hash(ctx, []byte(secret))
	if err != nil {
		return "", err
	}
	err = m.Store.InTx(ctx, func(ctx context.Context) error {
		err := m.Store.UpdateClient(ctx, id, func(c *storage.Client) error {
			if c.Public {
				return fmt.Errorf("%w: a public app has no secret", ErrInvalid)
			}
			now := m.Now()
			c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, time.Time{}
			if overlap > 0 {
				c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, now.Add(overlap)
			}
			c.SecretHash, c.UpdatedAt = hash, now
			return nil
		})
		if err != nil {
			return notFound(err, "no such app")
		}
		details := map[string]string{"overlap": overlap.String()}
		if overlap == 0 {
			// No overlap means the old secret must stop now — it may have
			// leaked — and so must what it alone obtained: the app's
			// client_credentials tokens. Tokens it holds for users came
			// with a user's sign-in and stay.
			n, err := m.Store.RevokeClient(ctx, id, false)
			if err != nil {
				return err
			}
			details["tokens_revoked"] = fmt.Sprint(n)
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.ClientSecretRotated, ClientID: id, Details: details})
	})
	return secret, err
}

// SetClientDisabled stops (or restarts) an app: a disabled app's tokens
// are revoked at once, in the same transaction, and it can get no new
// ones. Enabling it again brings none of them back.
func (m *Manager) SetClientDisabled(ctx context.Context, id string, disabled bool) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		if err := m.Store.UpdateClient(ctx, id, func(c *storage.Client) error {
			c.Disabled, c.UpdatedAt = disabled, m.Now()
			return nil
		}); err != nil {
			return notFound(err, "no such app")
		}
		if !disabled {
			return m.record(ctx, storage.AuditEvent{Type: audit.ClientEnabled, ClientID: id})
		}
		n, err := m.Store.RevokeClient(ctx, id, true)
		if err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.ClientDisabled, ClientID: id,
			Details: map[string]string{"tokens_revoked": fmt.Sprint(n)}})
	})
}

// DeleteClient removes an app; its tokens no longer load.
func (m *Manager) DeleteClient(ctx context.Context, id string) error {
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		c, err := m.Store.GetClient(ctx, id)
		if err != nil {
			return notFound(err, "no such app")
		}
		if err := m.Store.DeleteClient(ctx, id); err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.ClientDeleted, ClientID: id,
			Details: map[string]string{"name": c.Name}})
	})
}

// groupIDs resolves group names to ids, in ctx's transaction.
func (m *Manager) groupIDs(ctx context.Context, names []string) ([]string, error) {
	var ids []string
	for _, name := range names {
		g, err := m.GroupByName(ctx, name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, g.ID) {
			ids = append(ids, g.ID)
		}
	}
	return ids, nil
}

// revokeOutsiders revokes the app's tokens for every user its allowed
// groups leave out, and tells the app.
func (m *Manager) revokeOutsiders(ctx context.Context, c storage.Client) error {
	return m.takeLeftOut(ctx, []storage.Client{c}, func(string) bool { return true })
}

func validateClient(s *ClientSpec) error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" || len(s.Name) > 200 {
		return invalid("a client needs a name of 1 to 200 characters")
	}
	if len(s.GrantTypes) == 0 {
		s.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range s.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return invalid("unknown grant %q (known: %s)", g, strings.Join(knownGrants, ", "))
		}
	}
	if s.Public && slices.Contains(s.GrantTypes, "client_credentials") {
		return invalid("a public client cannot use client_credentials: it has no secret")
	}
	if slices.Contains(s.GrantTypes, "authorization_code") && len(s.RedirectURIs) == 0 {
		return invalid("the authorization_code grant needs at least one --redirect-uri")
	}
	for _, list := range [][]string{s.RedirectURIs, s.PostLogoutRedirectURIs} {
		for _, u := range list {
			if err := validateRedirect(u); err != nil {
				return err
			}
		}
	}
	if s.BackchannelLogoutURI != "" {
		if u, err := url.Parse(s.BackchannelLogoutURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalid("the back-channel logout URI %q must be an http(s) URL", s.BackchannelLogoutURI)
		} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return invalid("the back-channel logout URI %q uses plain http on a non-loopback host; use https", s.BackchannelLogoutURI)
		}
	}
	if s.MaxAuthAge < 0 || s.AccessTokenTTL < 0 || s.RefreshTokenTTL < 0 {
		return invalid("durations cannot be negative")
	}
	if s.AccessTokenTTL > 24*time.Hour {
		return invalid("an access token lifetime above 24h defeats revocation by expiry; use refresh tokens")
	}
	if s.AdminAPI && (s.Public || !slices.Contains(s.GrantTypes, "client_credentials")) {
		return invalid("admin API access is for confidential apps with the client_credentials grant")
	}
	if s.TokenFormat != "" && !slices.Contains(tokenFormats, s.TokenFormat) {
		return invalid("--token-format must be opaque or jwt, not %q", s.TokenFormat)
	}
	if s.IDTokenAlg != "" && !slices.Contains(IDTokenAlgs, s.IDTokenAlg) {
		return invalid("the ID token signing algorithm (id_token_signed_response_alg) must be RS256 or ES256, not %q", s.IDTokenAlg)
	}
	for _, a := range s.Audience {
		if a == "" || len(a) > 200 || strings.ContainsAny(a, " \t\r\n") {
			return invalid("an audience is a client id or URI of 1 to 200 characters without spaces, not %q", a)
		}
	}
	if len(s.Audience) > 20 {
		return invalid("at most 20 audiences")
	}
	if s.MinACR == "" {
		s.MinACR = "mfa"
	}
	if !slices.Contains([]string{"mfa", "phr", "phrh"}, s.MinACR) {
		return invalid("--acr must be mfa, phr or phrh, not %q", s.MinACR)
	}
	return nil
}

// validateRedirect accepts absolute URIs without fragments; plain http
// only for loopback hosts (RFC 8252 native apps, local development).
func validateRedirect(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" && u.Scheme != "" && (u.Scheme == "http" || u.Scheme == "https") {
		return invalid("redirect URI %q is not an absolute URI", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "vbscript", "file", "blob", "about":
		// A browser would run or read these instead of handing the code
		// to an app.
		return invalid("redirect URI %q uses the %s: scheme, which no app can receive a code on", raw, u.Scheme)
	}
	if strings.Contains(raw, "#") {
		// An empty fragment ("…/cb#") is still one (RFC 6749 3.1.2).
		return invalid("redirect URI %q must not have a fragment", raw)
	}
	if u.Scheme == "http" {
		if !isLoopback(u.Hostname()) {
			return invalid("redirect URI %q uses plain http on a non-loopback host; use https", raw)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
