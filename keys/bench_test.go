package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	jose "github.com/go-jose/go-jose/v3"
)

func BenchmarkSeal(b *testing.B) {
	m := testMaster(b, 1)
	pt := make([]byte, 64)
	aad := []byte("totp:user-1")
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := m.Seal(pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	m := testMaster(b, 1)
	pt := make([]byte, 64)
	aad := []byte("totp:user-1")
	sealed, err := m.Seal(pt, aad)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := m.Open(sealed, aad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignJWT signs a small JWT per op the way fosite does (a new
// go-jose signer each time). RS256-3072 is there only to justify RSABits.
func BenchmarkSignJWT(b *testing.B) {
	ctx := context.Background()
	s := &memStore{}
	m := testMaster(b, 1)
	if err := EnsureSigningKeys(ctx, s, m, t0); err != nil {
		b.Fatal(err)
	}
	set, err := LoadSet(ctx, s, m, t0, retention)
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []string{ES256, RS256} {
		key, err := set.Signing(alg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				signJWT(b, key, "user-1")
			}
		})
	}
	rsa3072, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("RS256-3072", func(b *testing.B) {
		key := &jose.JSONWebKey{Key: rsa3072, KeyID: "k3072", Algorithm: RS256}
		for b.Loop() {
			signJWT(b, key, "user-1")
		}
	})
}

func BenchmarkSecretHasherCompare(b *testing.B) {
	ctx := context.Background()
	h := NewSecretHasher(testMaster(b, 1).Derive("client-secret", 32))
	secret, _ := NewSecret()
	hash, _ := h.Hash(ctx, []byte(secret))
	for b.Loop() {
		if err := h.Compare(ctx, hash, []byte(secret)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyringReloadUnchanged(b *testing.B) {
	ctx := context.Background()
	s := &memStore{}
	m := testMaster(b, 1)
	if err := EnsureSigningKeys(ctx, s, m, t0); err != nil {
		b.Fatal(err)
	}
	kr, err := NewKeyring(ctx, s, m, retention, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := kr.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
