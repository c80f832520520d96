package login

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// phc builds an argon2id PHC string with the given parameters, the way
// another keygate version (or another tool) would have written it.
func phc(password string, salt []byte, t, m uint32, p uint8, keyLen uint32) string {
	key := argon2.IDKey([]byte(password), salt, t, m, p, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestHashPassword(t *testing.T) {
	const password = "correct horse battery staple"
	hash, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the hash is a PHC argon2id string with the current parameters", func(t *testing.T) {
		want := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$", argon2.Version, argonMemory, argonTime, argonThreads)
		if !strings.HasPrefix(hash, want) {
			t.Fatalf("hash %q does not start with %q", hash, want)
		}
		if strings.Contains(hash, password) {
			t.Fatal("the hash contains the password")
		}
	})
	t.Run("the same password hashes differently each time (a random salt)", func(t *testing.T) {
		again, err := HashPassword(password)
		if err != nil {
			t.Fatal(err)
		}
		if again == hash {
			t.Fatal("two hashes of one password are equal")
		}
	})

	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"the right password verifies", password, true},
		{"a wrong password does not verify", "correct horse battery stapler", false},
		{"the password in another case does not verify", strings.ToUpper(password), false},
		{"an empty password does not verify", "", false},
		{"a prefix of the password does not verify", password[:10], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(hash, tt.password)
			if err != nil {
				t.Fatalf("VerifyPassword: %v", err)
			}
			if ok != tt.want {
				t.Fatalf("VerifyPassword = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestVerifyPasswordReadsParametersFromTheHash(t *testing.T) {
	salt := []byte("0123456789abcdef")
	tests := []struct {
		name   string
		t, m   uint32
		p      uint8
		keyLen uint32
	}{
		{"a hash with fewer passes and less memory verifies", 1, 8 * 1024, 1, 32},
		{"a hash with more passes verifies", 3, 12 * 1024, 1, 32},
		{"a hash made with two lanes verifies", 1, 8 * 1024, 2, 32},
		{"a hash with a longer key verifies", 1, 8 * 1024, 1, 64},
		{"a hash with a shorter key verifies", 1, 8 * 1024, 1, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash := phc("s3cret password", salt, tt.t, tt.m, tt.p, tt.keyLen)
			ok, err := VerifyPassword(hash, "s3cret password")
			if err != nil || !ok {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want true", hash, ok, err)
			}
			ok, err = VerifyPassword(hash, "another password")
			if err != nil || ok {
				t.Fatalf("VerifyPassword with a wrong password = %v, %v; want false", ok, err)
			}
		})
	}
}

func TestVerifyPasswordRefusesMalformedHashes(t *testing.T) {
	good, err := HashPassword("a password of some length")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..., salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct {
		name string
		hash string
	}{
		{"an empty hash", ""},
		{"a bcrypt hash", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"an argon2i hash", with(1, "argon2i")},
		{"a hash with a part missing", strings.Join(parts[:5], "$")},
		{"a hash with an extra part", good + "$extra"},
		{"a hash without a version", with(2, "")},
		{"a hash of another argon2 version", with(2, "v=16")},
		{"a hash with unreadable parameters", with(3, "memory=19456")},
		{"a hash with zero passes", with(3, "m=19456,t=0,p=1")},
		{"a hash with zero lanes", with(3, "m=19456,t=2,p=0")},
		{"a hash with more lanes than fit a byte", with(3, "m=19456,t=2,p=256")},
		{"a hash with negative memory", with(3, "m=-1,t=2,p=1")},
		{"a hash asking for more memory than any sign-in may use", with(3, "m=4294967295,t=2,p=1")},
		{"a hash asking for an absurd number of passes", with(3, "m=19456,t=4294967295,p=1")},
		{"a hash whose salt is not base64", with(4, "not*base64!")},
		{"a hash whose key is not base64", with(5, "not*base64!")},
		{"a hash with an empty key", with(5, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is an error, not a panic", func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("VerifyPassword(%q) panicked: %v", tt.hash, r)
				}
			}()
			ok, err := VerifyPassword(tt.hash, "a password of some length")
			if ok {
				t.Fatal("a malformed hash verified")
			}
			if !errors.Is(err, errBadHash) {
				t.Fatalf("VerifyPassword(%q) error = %v, want errBadHash", tt.hash, err)
			}
			if !strings.Contains(err.Error(), "malformed password hash") {
				t.Fatalf("error %q does not say the hash is malformed", err)
			}
		})
	}
}

func TestDummyHashIsAValidHash(t *testing.T) {
	ok, err := VerifyPassword(dummyHash(), "not the dummy password")
	if err != nil || ok {
		t.Fatalf("VerifyPassword(dummyHash) = %v, %v; want false, nil", ok, err)
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	hash, err := HashPassword("benchmark password")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := VerifyPassword(hash, "benchmark password"); err != nil || !ok {
			b.Fatalf("VerifyPassword = %v, %v", ok, err)
		}
	}
}
