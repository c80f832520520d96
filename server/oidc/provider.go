package oidc

import (
	"context"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage/fositestore"
)

// Lifetimes of what the provider issues.
type Lifetimes struct {
	AccessToken   time.Duration
	RefreshToken  time.Duration
	IDToken       time.Duration
	AuthorizeCode time.Duration
	// RefreshGrace lets a client's concurrent refreshes with the same token
	// all succeed; later reuse revokes the family.
	RefreshGrace time.Duration
}

// DefaultLifetimes are short for what can be replayed and long enough for
// what is bound to a client.
var DefaultLifetimes = Lifetimes{
	AccessToken:   10 * time.Minute,
	RefreshToken:  30 * 24 * time.Hour,
	IDToken:       time.Hour,
	AuthorizeCode: time.Minute,
	RefreshGrace:  10 * time.Second,
}

// newProvider composes exactly the fosite handlers keygate offers — never
// ComposeAllEnabled, which would switch on implicit and password grants.
func newProvider(d Deps, store *fositestore.Store) (fosite.OAuth2Provider, *fosite.Config) {
	lt := d.Lifetimes
	cfg := &fosite.Config{
		AccessTokenLifespan:   lt.AccessToken,
		RefreshTokenLifespan:  lt.RefreshToken,
		IDTokenLifespan:       lt.IDToken,
		AuthorizeCodeLifespan: lt.AuthorizeCode,
		IDTokenIssuer:         d.Issuer,
		AccessTokenIssuer:     d.Issuer,
		TokenURL:              d.Issuer + "/oauth2/token",
		GlobalSecret:          d.HMACSecret,
		// PKCE S256 for every client, confidential ones too: it binds the
		// code to the browser that started the flow.
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		// Server-generated 256-bit secrets need no slow hash; fosite's
		// default bcrypt would cost ~250 ms per token request.
		ClientSecretsHasher:             recordingHasher{d.SecretHasher},
		SendDebugMessagesToClients:      false,
		RefreshTokenScopes:              []string{"offline_access"},
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		PushedAuthorizeContextLifespan:  time.Minute,
		OmitRedirectScopeParam:          true,
		MinParameterEntropy:             fosite.MinParameterEntropy,
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy: newTokenStrategy(compose.NewOAuth2HMACStrategy(cfg), d.Keys, cfg),
		// Each ID token is signed with its client's algorithm (idtoken.go).
		OpenIDConnectTokenStrategy: newIDTokenStrategy(d.Keys, cfg),
		// fosite reads an authorization request's id_token_hint with this
		// one (its OpenIDConnectRequestValidator); it signs nothing here.
		Signer: newIDTokenSigner(d.Keys, keys.RS256),
	}
	p := compose.Compose(cfg, store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	// fosite asks every token handler to populate the response and each
	// one that does not handle the grant answers with an error carrying a
	// stack trace: four captures per token request, 6% of its CPU.
	for i, th := range cfg.TokenEndpointHandlers {
		cfg.TokenEndpointHandlers[i] = quietTokenHandler{th}
	}
	return p, cfg
}

// quietTokenHandler answers "not mine" without building a stack trace.
type quietTokenHandler struct{ fosite.TokenEndpointHandler }

func (q quietTokenHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !q.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return q.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, r)
}

func (q quietTokenHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, w fosite.AccessResponder) error {
	if !q.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return q.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, w)
}
