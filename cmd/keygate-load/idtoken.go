package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// jwks is the signing keys of keygate's JWKS document, by key id: RSA
// keys for RS256, P-256 keys for ES256.
type jwks map[string]jwk

// jwk is one published key and the algorithm it signs with.
type jwk struct {
	alg string
	rsa *rsa.PublicKey   // RS256
	ec  *ecdsa.PublicKey // ES256
}

func parseJWKS(raw []byte) (jwks, error) {
	var doc struct {
		Keys []struct {
			Kty, Kid, Alg, N, E, Crv, X, Y string
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys := jwks{}
	for _, k := range doc.Keys {
		switch {
		case k.Kty == "RSA" && (k.Alg == "" || k.Alg == "RS256"):
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(e) > 4 {
				return nil, fmt.Errorf("JWKS: key %q is not a valid RSA key", k.Kid)
			}
			keys[k.Kid] = jwk{alg: "RS256", rsa: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}}
		case k.Kty == "EC" && k.Crv == "P-256" && (k.Alg == "" || k.Alg == "ES256"):
			x, err1 := base64.RawURLEncoding.DecodeString(k.X)
			y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				return nil, fmt.Errorf("JWKS: key %q is not a valid P-256 key", k.Kid)
			}
			// ParseUncompressedPublicKey checks the point is on the curve.
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("JWKS: key %q is not a valid P-256 key: %w", k.Kid, err)
			}
			keys[k.Kid] = jwk{alg: "ES256", ec: pub}
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS: no RS256 or ES256 key")
	}
	return keys, nil
}

// idClaims is what the generator checks of an ID token.
type idClaims struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Aud   json.RawMessage `json:"aud"`
	Nonce string          `json:"nonce"`
	Exp   int64           `json:"exp"`
}

// verifyIDToken checks an ID token as a relying party must: a signature
// with alg, the algorithm the app registered (RS256 or ES256), by one of
// keys; this issuer, this audience, the nonce sent, not expired — and that
// it names the user who signed in.
func (k jwks) verifyIDToken(tok, alg, issuer, audience, nonce, subject string, now time.Time) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("ID token is not a JWS")
	}
	var header struct{ Alg, Kid string }
	if err := decodeSegment(parts[0], &header); err != nil {
		return fmt.Errorf("ID token header: %w", err)
	}
	key, ok := k[header.Kid]
	if header.Alg != alg || !ok || key.alg != alg {
		return fmt.Errorf("ID token signed with %s by key %q: want %s by a key of the JWKS", header.Alg, header.Kid, alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("ID token signature: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch alg {
	case "RS256":
		err = rsa.VerifyPKCS1v15(key.rsa, crypto.SHA256, digest[:], sig)
	case "ES256":
		// JWS (RFC 7518 §3.4): R and S, 32 bytes each, not ASN.1.
		if len(sig) != 64 || !ecdsa.Verify(key.ec, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			err = errors.New("ES256 signature does not verify")
		}
	}
	if err != nil {
		return fmt.Errorf("ID token signature: %w", err)
	}
	var c idClaims
	if err := decodeSegment(parts[1], &c); err != nil {
		return fmt.Errorf("ID token claims: %w", err)
	}
	var aud []string
	if json.Unmarshal(c.Aud, &aud) != nil {
		var one string
		_ = json.Unmarshal(c.Aud, &one)
		aud = []string{one}
	}
	switch {
	case c.Iss != issuer:
		return fmt.Errorf("ID token issuer %q, want %q", c.Iss, issuer)
	case !slices.Contains(aud, audience):
		return fmt.Errorf("ID token audience %s, want %q", c.Aud, audience)
	case c.Nonce != nonce:
		return fmt.Errorf("ID token nonce %q, want the one sent", c.Nonce)
	case c.Sub != subject:
		return fmt.Errorf("ID token for %q, want %q", c.Sub, subject)
	case time.Unix(c.Exp, 0).Before(now):
		return errors.New("ID token expired")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
