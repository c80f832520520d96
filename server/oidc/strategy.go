package oidc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage/fositestore"
)

// Access token formats a client is registered with (storage.Client's
// TokenFormat).
const (
	TokenFormatOpaque = "opaque"
	TokenFormatJWT    = "jwt"
)

// atJWTType is the JOSE typ of an RFC 9068 access token.
const atJWTType = "at+jwt"

// tokenStrategy issues each client's access tokens in its registered
// format: RFC 9068 JWTs (ES256, the current key) for "jwt" clients, fosite's
// opaque HMAC tokens for the others. Refresh tokens and authorization codes
// are always HMAC.
//
// Either kind is stored under its signature (the JWT's third segment, the
// HMAC token's second), so lookups by signature — introspection, userinfo,
// revocation, refresh-token rotation and family revocation, suspension —
// treat both alike: a revoked JWT is inactive at once, although it still
// verifies offline until it expires. Which strategy a presented token
// belongs to is told by its shape: a JWT has three dot-separated segments,
// an HMAC token (ory_at_KEY.SIG) two.
type tokenStrategy struct {
	oauth2.CoreStrategy // the HMAC strategy
	keys                *keys.Keyring
	signer              jwt.Signer
	config              interface {
		fosite.AccessTokenIssuerProvider
		fosite.AccessTokenLifespanProvider
	}
}

var _ oauth2.CoreStrategy = (*tokenStrategy)(nil)

func newTokenStrategy(hmac oauth2.CoreStrategy, ring *keys.Keyring, cfg *fosite.Config) *tokenStrategy {
	return &tokenStrategy{
		CoreStrategy: hmac,
		keys:         ring,
		signer: &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) {
			return ring.Current().Signing(keys.ES256)
		}},
		config: cfg,
	}
}

// isJWT reports whether token has a JWS compact serialization's shape.
func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

// wantsJWT reports whether the request's client is registered for JWT
// access tokens.
func wantsJWT(r fosite.Requester) bool {
	c, ok := r.GetClient().(*fositestore.Client)
	return ok && c.TokenFormat == TokenFormatJWT
}

func (s *tokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isJWT(token) {
		return token[strings.LastIndexByte(token, '.')+1:]
	}
	return s.CoreStrategy.AccessTokenSignature(ctx, token)
}

func (s *tokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	if !wantsJWT(r) {
		return s.CoreStrategy.GenerateAccessToken(ctx, r)
	}
	return s.generateJWT(ctx, r)
}

// generateJWT signs the RFC 9068 claims of r's access token.
func (s *tokenStrategy) generateJWT(ctx context.Context, r fosite.Requester) (string, string, error) {
	sess, ok := r.GetSession().(oauth2.JWTSessionContainer)
	if !ok {
		return "", "", fosite.ErrServerError.WithDebugf("session %T cannot carry JWT claims", r.GetSession())
	}
	now := time.Now().UTC()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() {
		exp = now.Add(s.config.GetAccessTokenLifespan(ctx))
	}
	clientID := r.GetClient().GetID()
	// The audience is the client and whatever resources it was granted.
	aud := []string{clientID}
	for _, a := range r.GetGrantedAudience() {
		if !slices.Contains(aud, a) {
			aud = append(aud, a)
		}
	}
	claims := sess.GetJWTClaims().
		With(exp, r.GetGrantedScopes(), aud).
		WithDefaults(now, s.config.GetAccessTokenIssuer(ctx)).
		WithScopeField(jwt.JWTScopeFieldString).
		ToMapClaims()
	claims["client_id"] = clientID
	if len(r.GetGrantedScopes()) == 0 {
		delete(claims, "scope")
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		// RFC 9068 §2.2: without a resource owner (client_credentials) the
		// subject is the client itself.
		claims["sub"] = clientID
	}
	return s.signer.Generate(ctx, claims, sess.GetJWTHeader())
}

// ValidateAccessToken checks a token found by its signature: still within
// its lifetime and, for a JWT, signed by a key the JWKS publishes. The
// stored request (r) is authoritative for everything else.
func (s *tokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if !isJWT(token) {
		return s.CoreStrategy.ValidateAccessToken(ctx, r, token)
	}
	if exp := r.GetSession().GetExpiresAt(fosite.AccessToken); exp.IsZero() || !exp.After(time.Now().UTC()) {
		return fosite.ErrTokenExpired.WithHintf("Access token expired at '%s'.", exp)
	}
	if err := s.verify(token); err != nil {
		return fosite.ErrTokenSignatureMismatch.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}

var errUnknownKey = errors.New("no published key for the token's kid and alg")

// verify checks a JWT access token's signature against the published
// keys, so tokens signed before a rotation keep verifying while their key
// is retained.
func (s *tokenStrategy) verify(token string) error {
	jws, err := jose.ParseSigned(token)
	if err != nil {
		return err
	}
	if len(jws.Signatures) != 1 {
		return errors.New("not a single-signature JWS")
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != atJWTType {
		return errors.New("not an at+jwt token")
	}
	set := s.keys.Current().JWKS()
	for _, k := range set.Key(h.KeyID) {
		if k.Algorithm == h.Algorithm {
			_, err := jws.Verify(k.Key)
			return err
		}
	}
	return errUnknownKey
}
