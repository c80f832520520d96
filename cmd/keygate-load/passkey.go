package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/descope/virtualwebauthn"
)

// passkey is a software authenticator holding one discoverable ES256
// credential: a passkey of one user's own, as a platform authenticator
// keeps it. Its counter goes up by one per assertion, as a real key's
// does, so one passkey must not sign two assertions at once.
type passkey struct {
	rp   virtualwebauthn.RelyingParty
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

// newPasskey makes a fresh key pair for keygate as rp.
func newPasskey(rp virtualwebauthn.RelyingParty) (*passkey, error) {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		// virtualwebauthn writes the coordinates without left padding:
		// keep to keys whose coordinates fill all 32 bytes.
		if len(k.X.Bytes()) != 32 || len(k.Y.Bytes()) != 32 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		return &passkey{
			rp:   rp,
			auth: virtualwebauthn.NewAuthenticator(),
			cred: virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der),
		}, nil
	}
}

// create answers navigator.credentials.create with the registration
// options keygate sent, adding what a browser adds: credProps (this is a
// discoverable credential) and the transports.
func (p *passkey) create(options json.RawMessage) ([]byte, error) {
	opts, err := virtualwebauthn.ParseAttestationOptions(string(options))
	if err != nil {
		return nil, fmt.Errorf("registration options: %w", err)
	}
	if opts.RelyingPartyID != p.rp.ID {
		return nil, fmt.Errorf("registration options name RP ID %q, want %q", opts.RelyingPartyID, p.rp.ID)
	}
	p.auth.Options.UserHandle = []byte(opts.UserID)
	var m map[string]any
	if err := json.Unmarshal([]byte(virtualwebauthn.CreateAttestationResponse(p.rp, p.auth, p.cred, *opts)), &m); err != nil {
		return nil, err
	}
	resp, ok := m["response"].(map[string]any)
	if !ok {
		return nil, errors.New("attestation without a response")
	}
	resp["transports"] = []string{"internal"}
	m["clientExtensionResults"] = map[string]any{"credProps": map[string]any{"rk": true}}
	m["authenticatorAttachment"] = "platform"
	return json.Marshal(m)
}

// get answers navigator.credentials.get with the assertion options keygate
// sent: the counter goes up by one and the key signs for its RP.
func (p *passkey) get(options json.RawMessage) ([]byte, error) {
	opts, err := virtualwebauthn.ParseAssertionOptions(string(options))
	if err != nil {
		return nil, fmt.Errorf("assertion options: %w", err)
	}
	p.cred.Counter++
	return []byte(virtualwebauthn.CreateAssertionResponse(p.rp, p.auth, p.cred, *opts)), nil
}
