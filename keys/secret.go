package keys

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// SecretSize is the number of random bytes in a client secret.
const SecretSize = 32

// ErrSecretMismatch is returned by SecretHasher.Compare when the secret
// does not match the hash.
var ErrSecretMismatch = errors.New("keys: client secret does not match")

// RandomToken returns nBytes random bytes from crypto/rand, base64url
// encoded without padding. Use at least 16 bytes for anything that acts as
// a credential.
func RandomToken(nBytes int) (string, error) {
	if nBytes <= 0 {
		return "", fmt.Errorf("keys: RandomToken: length must be positive, got %d", nBytes)
	}
	b := make([]byte, nBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken returns the SHA-256 of s, for storing only the hash of a
// high-entropy token (an enrolment link, a session cookie id). A plain
// hash is enough because such tokens cannot be guessed.
func HashToken(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// NewSecret returns a new client secret: 32 random bytes, base64url
// without padding (43 characters).
func NewSecret() (string, error) { return RandomToken(SecretSize) }

// SecretHasher hashes client secrets with HMAC-SHA256. Its method set is
// fosite.Hasher's, so it can be used as fosite's ClientSecretsHasher. It is
// safe for concurrent use.
type SecretHasher struct {
	key []byte
	// macs keeps keyed HMACs to reuse: keying one costs as much as the
	// hash of a secret, and every client authentication hashes one.
	macs sync.Pool
}

// NewSecretHasher returns a hasher keyed with key, normally
// master.Derive("client-secret", 32). The key is copied. It panics if key
// is shorter than 32 bytes, which is a programming error.
func NewSecretHasher(key []byte) *SecretHasher {
	if len(key) < 32 {
		panic(fmt.Sprintf("keys: NewSecretHasher: key must be at least 32 bytes, got %d", len(key)))
	}
	return &SecretHasher{key: append([]byte(nil), key...)}
}

func (h *SecretHasher) mac(data []byte) []byte {
	mac, _ := h.macs.Get().(hash.Hash)
	if mac == nil {
		mac = hmac.New(sha256.New, h.key)
	} else {
		mac.Reset()
	}
	mac.Write(data)
	sum := mac.Sum(nil)
	h.macs.Put(mac)
	return sum
}

// Hash returns HMAC-SHA256(key, data), 32 bytes.
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return h.mac(data), nil
}

// Compare returns nil if hash is the Hash of data and an error matching
// ErrSecretMismatch otherwise. The comparison takes constant time.
func (h *SecretHasher) Compare(_ context.Context, hash, data []byte) error {
	if !hmac.Equal(hash, h.mac(data)) {
		return ErrSecretMismatch
	}
	return nil
}
