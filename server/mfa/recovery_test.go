package mfa

import (
	"bytes"
	"regexp"
	"testing"
)

var recoveryCodeForm = regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}$`)

func TestNewRecoveryCodes(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	codes, hashes, err := newRecoveryCodes(key)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("there are ten codes and ten hashes", func(t *testing.T) {
		if len(codes) != 10 || len(hashes) != 10 {
			t.Fatalf("%d codes, %d hashes; want 10 of each", len(codes), len(hashes))
		}
	})
	t.Run("every code reads XXXXX-XXXXX in base32 letters and digits", func(t *testing.T) {
		for _, c := range codes {
			if !recoveryCodeForm.MatchString(c) {
				t.Errorf("code %q is not of the form XXXXX-XXXXX", c)
			}
		}
	})
	t.Run("the codes are unique", func(t *testing.T) {
		seen := map[string]bool{}
		for _, c := range codes {
			if seen[c] {
				t.Fatalf("code %q appears twice", c)
			}
			seen[c] = true
		}
	})
	t.Run("each stored hash is the keyed hash of its code as normalised", func(t *testing.T) {
		for i, c := range codes {
			if want := hashRecoveryCode(key, normalizeRecoveryCode(c)); !bytes.Equal(hashes[i], want) {
				t.Errorf("hash %d does not match code %q", i, c)
			}
		}
	})
	t.Run("no hash contains its code", func(t *testing.T) {
		for i, c := range codes {
			if bytes.Contains(hashes[i], []byte(normalizeRecoveryCode(c))) {
				t.Errorf("hash %d contains code %q", i, c)
			}
		}
	})
	t.Run("a second batch shares no code with the first", func(t *testing.T) {
		again, _, err := newRecoveryCodes(key)
		if err != nil {
			t.Fatal(err)
		}
		first := map[string]bool{}
		for _, c := range codes {
			first[c] = true
		}
		for _, c := range again {
			if first[c] {
				t.Fatalf("code %q was issued twice", c)
			}
		}
	})
}

func TestNormalizeRecoveryCode(t *testing.T) {
	const want = "ABCDE23456"
	tests := []struct {
		name, typed string
	}{
		{"the code as shown", "ABCDE-23456"},
		{"the code in lower case", "abcde-23456"},
		{"the code in mixed case", "aBcDe-23456"},
		{"the code without the dash", "ABCDE23456"},
		{"the code with a space for the dash", "abcde 23456"},
		{"the code with spaces around it", "  ABCDE-23456 "},
		{"the code in groups of two with spaces", "ab cd e2 34 56"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" normalises to the stored form", func(t *testing.T) {
			if got := normalizeRecoveryCode(tt.typed); got != want {
				t.Fatalf("normalizeRecoveryCode(%q) = %q, want %q", tt.typed, got, want)
			}
		})
	}
	t.Run("a different code does not normalise to the same form", func(t *testing.T) {
		if got := normalizeRecoveryCode("ABCDE-23457"); got == want {
			t.Fatalf("normalizeRecoveryCode(ABCDE-23457) = %q", got)
		}
	})
}

func TestHashRecoveryCode(t *testing.T) {
	keyA := bytes.Repeat([]byte{1}, 32)
	keyB := bytes.Repeat([]byte{2}, 32)
	tests := []struct {
		name  string
		a, b  []byte
		equal bool
	}{
		{"one code under one key hashes the same each time",
			hashRecoveryCode(keyA, "ABCDE23456"), hashRecoveryCode(keyA, "ABCDE23456"), true},
		{"one code under two keys hashes differently",
			hashRecoveryCode(keyA, "ABCDE23456"), hashRecoveryCode(keyB, "ABCDE23456"), false},
		{"two codes under one key hash differently",
			hashRecoveryCode(keyA, "ABCDE23456"), hashRecoveryCode(keyA, "ABCDE23457"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.a, tt.b) != tt.equal {
				t.Fatalf("hashes %x and %x: equal = %v, want %v", tt.a, tt.b, !tt.equal, tt.equal)
			}
			if len(tt.a) != 32 {
				t.Fatalf("hash is %d bytes, want 32 (HMAC-SHA256)", len(tt.a))
			}
		})
	}
}
