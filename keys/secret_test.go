package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// fositeHasher has fosite.Hasher's method set (fosite is not imported
// here); SecretHasher must satisfy it.
type fositeHasher interface {
	Compare(ctx context.Context, hash, data []byte) error
	Hash(ctx context.Context, data []byte) ([]byte, error)
}

var _ fositeHasher = (*SecretHasher)(nil)

func TestSecretHasher(t *testing.T) {
	ctx := context.Background()
	m := testMaster(t, 1)
	h := NewSecretHasher(m.Derive("client-secret", 32))
	other := NewSecretHasher(m.Derive("other", 32))
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(ctx, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	otherHash, _ := other.Hash(ctx, []byte(secret))
	tests := []struct {
		name  string
		hash  []byte
		data  string
		match bool
	}{
		{"the right secret matches its hash", hash, secret, true},
		{"a different secret does not match", hash, secret[:len(secret)-1] + "x", false},
		{"an empty secret does not match", hash, "", false},
		{"a hash made under another key does not match", otherHash, secret, false},
		{"a truncated hash does not match", hash[:16], secret, false},
		{"an empty hash (a public client) does not match", nil, secret, false},
		{"the secret itself in place of the hash does not match", []byte(secret), secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.Compare(ctx, tt.hash, []byte(tt.data))
			if tt.match && err != nil {
				t.Fatalf("Compare = %v, want nil", err)
			}
			if !tt.match && !errors.Is(err, ErrSecretMismatch) {
				t.Fatalf("Compare = %v, want ErrSecretMismatch", err)
			}
		})
	}
	t.Run("hashing is deterministic and 32 bytes long", func(t *testing.T) {
		again, _ := NewSecretHasher(m.Derive("client-secret", 32)).Hash(ctx, []byte(secret))
		if !bytes.Equal(hash, again) || len(hash) != 32 {
			t.Fatalf("hash %x, again %x", hash, again)
		}
	})
	t.Run("reused HMACs, hashing concurrently, agree with a fresh one", func(t *testing.T) {
		key := m.Derive("client-secret", 32)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					data := []byte(fmt.Sprint(g, "/", i))
					fresh := hmac.New(sha256.New, key)
					fresh.Write(data)
					if got, _ := h.Hash(ctx, data); !bytes.Equal(got, fresh.Sum(nil)) {
						t.Errorf("Hash(%s) = %x, want %x", data, got, fresh.Sum(nil))
						return
					}
				}
			})
		}
		wg.Wait()
	})
	t.Run("a short key panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("NewSecretHasher with a 16-byte key did not panic")
			}
		}()
		NewSecretHasher(make([]byte, 16))
	})
}

func TestRandomValues(t *testing.T) {
	t.Run("a new secret is 32 random bytes in unpadded base64url", func(t *testing.T) {
		a, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewSecret()
		raw, err := base64.RawURLEncoding.DecodeString(a)
		if err != nil || len(raw) != 32 || len(a) != 43 {
			t.Fatalf("secret %q: %d bytes, err %v", a, len(raw), err)
		}
		if a == b {
			t.Fatal("two secrets are equal")
		}
	})
	t.Run("a random token has the requested number of bytes", func(t *testing.T) {
		for _, n := range []int{1, 16, 24, 32} {
			s, err := RandomToken(n)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil || len(raw) != n {
				t.Fatalf("RandomToken(%d) = %q: %d bytes, err %v", n, s, len(raw), err)
			}
		}
	})
	t.Run("a non-positive token length is an error", func(t *testing.T) {
		if _, err := RandomToken(0); err == nil {
			t.Fatal("RandomToken(0) succeeded")
		}
	})
	t.Run("HashToken is SHA-256 of the token text", func(t *testing.T) {
		want := sha256.Sum256([]byte("abc"))
		if got := HashToken("abc"); !bytes.Equal(got, want[:]) {
			t.Fatalf("HashToken = %x", got)
		}
	})
}
