package oidc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage/fositestore"
)

// idTokenAlgs are the algorithms ID tokens are signed with, as discovery
// lists them: RS256, the default (OIDC Discovery requires it), and ES256
// for the apps registered for it (id_token_signed_response_alg). An
// ES256 ID token costs the server over ten times less CPU than an RS256
// one (BenchmarkIDToken).
var idTokenAlgs = []string{keys.RS256, keys.ES256}

// idTokenAlg is the algorithm c's ID tokens are signed with.
func idTokenAlg(c fosite.Client) string {
	if fc, ok := c.(*fositestore.Client); ok {
		return signingAlg(fc.GetIDTokenSignedResponseAlg())
	}
	return keys.RS256
}

// signingAlg is the algorithm an app's ID tokens and back-channel logout
// tokens are signed with, given the one it registered: ES256 if it
// registered that, else RS256, the default (server/manage accepts no
// other value).
func signingAlg(registered string) string {
	if registered == keys.ES256 {
		return keys.ES256
	}
	return keys.RS256
}

// idTokenStrategy signs each ID token with the current key of its
// client's algorithm, at the code exchange and at every refresh alike.
type idTokenStrategy struct {
	rs256, es256 openid.OpenIDConnectTokenStrategy
}

var _ openid.OpenIDConnectTokenStrategy = idTokenStrategy{}

func newIDTokenStrategy(ring *keys.Keyring, cfg *fosite.Config) idTokenStrategy {
	return idTokenStrategy{
		rs256: &openid.DefaultStrategy{Signer: newIDTokenSigner(ring, keys.RS256), Config: cfg},
		es256: &openid.DefaultStrategy{Signer: newIDTokenSigner(ring, keys.ES256), Config: cfg},
	}
}

func (s idTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, r fosite.Requester) (string, error) {
	if idTokenAlg(r.GetClient()) == keys.ES256 {
		return s.es256.GenerateIDToken(ctx, lifespan, r)
	}
	return s.rs256.GenerateIDToken(ctx, lifespan, r)
}

// idTokenSigner signs with the current key of one algorithm; the key's kid
// goes in the header. It reads the ID tokens an app sends back as
// id_token_hint (fosite decodes them at the authorization and token
// endpoints) against every key the JWKS publishes for ID tokens: a hint
// may be signed with the other algorithm (its app changed), or with a key
// a rotation retired.
type idTokenSigner struct {
	*jwt.DefaultSigner
	keys *keys.Keyring
}

var _ jwt.Signer = (*idTokenSigner)(nil)

func newIDTokenSigner(ring *keys.Keyring, alg string) *idTokenSigner {
	return &idTokenSigner{
		DefaultSigner: &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) {
			return ring.Current().Signing(alg)
		}},
		keys: ring,
	}
}

var errNotIDToken = errors.New("not signed as keygate signs ID tokens")

// Decode verifies token's signature against the published keys and checks
// its time claims (an expired token comes back with its claims and a
// ValidationErrorExpired, which fosite accepts in a hint).
func (s *idTokenSigner) Decode(_ context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, s.publishedKey)
}

func (s *idTokenSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// publishedKey is the key that verifies t: a published key of t's kid and
// algorithm, an ID token algorithm, for a token typed as ID tokens are
// (not an RFC 9068 access token, not a logout token).
func (s *idTokenSigner) publishedKey(t *jwt.Token) (any, error) {
	alg := string(t.Method)
	typ, _ := t.Header["typ"].(string)
	if !slices.Contains(idTokenAlgs, alg) || !strings.EqualFold(typ, "JWT") {
		return nil, errNotIDToken
	}
	kid, _ := t.Header["kid"].(string)
	set := s.keys.Current().JWKS()
	for _, k := range set.Key(kid) {
		if k.Algorithm == alg {
			return k.Key, nil
		}
	}
	return nil, errUnknownKey
}
