package fositestore

import (
	"crypto/subtle"
	"time"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/storage"
)

// Client adapts a stored client to fosite.
//
// It deliberately does not implement fosite.OpenIDConnectClient: fosite holds
// such a client to exactly one token_endpoint_auth_method, while stock
// clients use client_secret_basic and client_secret_post interchangeably.
// Without it, fosite accepts both, and refuses request objects and
// private_key_jwt cleanly, which we do not offer.
type Client struct {
	storage.Client
}

// newClient is c as fosite sees it at now. The secret a rotation
// replaced authenticates only while its overlap lasts: past it, it is
// dropped, so that neither fosite (GetRotatedHashes) nor the re-check of a
// token's write (hasSecretHash) accepts it.
func newClient(c storage.Client, now time.Time) *Client {
	if !c.PreviousSecretExpiresAt.After(now) {
		c.PreviousSecretHash = nil
	}
	return &Client{Client: c}
}

// hasSecretHash reports whether hash is a secret that authenticates the
// client: its own, or the one GetRotatedHashes still offers.
func (c *Client) hasSecretHash(hash []byte) bool {
	for _, h := range append([][]byte{c.SecretHash}, c.GetRotatedHashes()...) {
		if len(h) > 0 && subtle.ConstantTimeCompare(hash, h) == 1 {
			return true
		}
	}
	return false
}

var (
	_ fosite.Client                         = (*Client)(nil)
	_ fosite.ResponseModeClient             = (*Client)(nil)
	_ fosite.ClientWithSecretRotation       = (*Client)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*Client)(nil)
)

func (c *Client) GetID() string                   { return c.ID }
func (c *Client) GetHashedSecret() []byte         { return c.SecretHash }
func (c *Client) GetRedirectURIs() []string       { return c.RedirectURIs }
func (c *Client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }
func (c *Client) GetScopes() fosite.Arguments     { return c.Scopes }
func (c *Client) IsPublic() bool                  { return c.Public }

// GetAudience always contains the client itself: fosite re-checks granted
// audiences on refresh and refuses ones the client's list does not hold.
func (c *Client) GetAudience() fosite.Arguments {
	return append(fosite.Arguments{c.ID}, c.Audience...)
}

func (c *Client) GetResponseTypes() fosite.Arguments {
	if len(c.ResponseTypes) == 0 {
		return fosite.Arguments{"code"}
	}
	return c.ResponseTypes
}

// GetResponseModes lets an explicit response_mode=query through; without it
// fosite refuses every explicit response_mode.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery}
}

// GetRotatedHashes offers the secret a rotation replaced while its overlap
// lasts (newClient drops it once expired).
func (c *Client) GetRotatedHashes() [][]byte {
	if len(c.PreviousSecretHash) == 0 {
		return nil
	}
	return [][]byte{c.PreviousSecretHash}
}

// GetIDTokenSignedResponseAlg is the algorithm server/oidc signs this
// client's ID tokens and back-channel logout tokens with: RS256 unless
// the client registered ES256. fosite asks for it through no interface
// of its own (OpenIDConnectClient, which names it, is left out above).
func (c *Client) GetIDTokenSignedResponseAlg() string { return c.IDTokenSignedResponseAlg() }

// GetEffectiveLifespan applies the client's own token lifetimes.
func (c *Client) GetEffectiveLifespan(_ fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	switch {
	case tt == fosite.AccessToken && c.AccessTokenTTL > 0:
		return c.AccessTokenTTL
	case tt == fosite.RefreshToken && c.RefreshTokenTTL > 0:
		return c.RefreshTokenTTL
	}
	return fallback
}
