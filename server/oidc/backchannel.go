package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage"
)

// backchannelLogout is the queued payload; server/manage writes it with
// the same JSON names when it ends sessions.
type backchannelLogout struct {
	ClientID string `json:"client_id"`
	Subject  string `json:"sub"`
	SID      string `json:"sid"`
}

// logoutEvent is the event member OIDC Back-Channel Logout 1.0 requires.
const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// SendBackchannelLogout delivers one queued back-channel logout: a logout
// token (a JWT naming the user and session, signed like the app's ID
// tokens) POSTed to the app's registered URI. Anything but 2xx is retried.
func (h *Handler) SendBackchannelLogout(ctx context.Context, m storage.OutboxMessage) error {
	var p backchannelLogout
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return fmt.Errorf("back-channel logout payload: %w", err)
	}
	alg := keys.RS256
	switch c, err := h.d.Store.GetClient(ctx, p.ClientID); {
	case err == nil:
		alg = signingAlg(c.IDTokenSignedResponseAlg())
	case !errors.Is(err, storage.ErrNotFound):
		return err // retried
	}
	token, err := h.logoutToken(p, alg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Target, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("back-channel logout answered %s", resp.Status)
	}
	return nil
}

// logoutToken signs p's logout token with alg, the algorithm of its app's
// ID tokens: Back-Channel Logout 1.0 signs logout tokens with the keys
// ID tokens are signed with (§2.4), and the app validates one as it
// validates its ID tokens (§2.6).
func (h *Handler) logoutToken(p backchannelLogout, alg string) (string, error) {
	key, err := h.d.Keys.Current().Signing(alg)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", err
	}
	jti, err := keys.RandomToken(16)
	if err != nil {
		return "", err
	}
	now := h.d.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": h.d.Issuer, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": jti, "sub": p.Subject, "sid": p.SID, "events": map[string]any{logoutEvent: map[string]any{}},
	})
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
