package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testKey returns a 32-byte key whose base64 forms contain '+' and '/' in
// the standard alphabet, so the URL-alphabet variants really differ.
func testKey(seed byte) []byte {
	k := make([]byte, MasterKeySize)
	for i := range k {
		k[i] = 0xf8 + seed + byte(i*7)
	}
	return k
}

func testMaster(t testing.TB, seed byte) *Master {
	t.Helper()
	m, err := NewMaster(testKey(seed))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSealOpenRoundTrip(t *testing.T) {
	m := testMaster(t, 1)
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"a secret sealed for a row opens with that row's AAD", []byte("JBSWY3DPEHPK3PXP"), []byte("totp:user-1")},
		{"an empty value round-trips", []byte{}, []byte("totp:user-1")},
		{"a value sealed without AAD opens without AAD", []byte("x"), nil},
		{"a large value round-trips", bytes.Repeat([]byte{0xab}, 1<<16), []byte("signing-key:k")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := m.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + nonceSize + len(tt.plaintext) + tagSize; len(sealed) != want || sealed[0] != sealVersion {
				t.Fatalf("sealed value has length %d and version %d, want %d and %d", len(sealed), sealed[0], want, sealVersion)
			}
			got, err := m.Open(sealed, tt.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
	t.Run("sealing the same value twice gives different outputs", func(t *testing.T) {
		a, _ := m.Seal([]byte("same"), nil)
		b, _ := m.Seal([]byte("same"), nil)
		if bytes.Equal(a, b) {
			t.Fatal("two seals are identical; the nonce is not random")
		}
	})
}

func TestOpenRejects(t *testing.T) {
	m := testMaster(t, 1)
	aad := []byte("totp:user-1")
	sealed, err := m.Seal([]byte("JBSWY3DPEHPK3PXP"), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		master *Master
		sealed []byte
		aad    []byte
	}{
		{"a value copied to another row does not open", m, sealed, []byte("totp:user-2")},
		{"a value opened without its AAD does not open", m, sealed, nil},
		{"a value with a changed version byte does not open", m, flip(0), aad},
		{"a value with a changed nonce byte does not open", m, flip(1), aad},
		{"a value with a changed ciphertext byte does not open", m, flip(1 + nonceSize), aad},
		{"a value with a changed tag byte does not open", m, flip(len(sealed) - 1), aad},
		{"a truncated value does not open", m, sealed[:len(sealed)-1], aad},
		{"a value shorter than nonce and tag does not open", m, sealed[:1+nonceSize], aad},
		{"an empty value does not open", m, nil, aad},
		{"a value sealed under another master key does not open", testMaster(t, 2), sealed, aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.master.Open(tt.sealed, tt.aad)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
		})
	}
}

func TestNewMasterRejectsWrongLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		t.Run(fmt.Sprintf("a %d-byte key is refused", n), func(t *testing.T) {
			if _, err := NewMaster(make([]byte, n)); err == nil {
				t.Fatal("NewMaster succeeded")
			}
		})
	}
}

// sameKey reports whether a and b hold the same key, by sealing with one
// and opening with the other.
func sameKey(t *testing.T, a, b *Master) bool {
	t.Helper()
	sealed, err := a.Seal([]byte("probe"), []byte("probe"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(sealed, []byte("probe"))
	return err == nil
}

func TestLoadMasterFromEnv(t *testing.T) {
	key := testKey(3)
	want := testMaster(t, 3)
	std := base64.StdEncoding.EncodeToString(key)
	url := base64.URLEncoding.EncodeToString(key)
	if !strings.ContainsAny(std, "+/") || std == url {
		t.Fatalf("test key %q does not exercise both alphabets", std)
	}
	ok := []struct{ name, env string }{
		{"standard base64 with padding is accepted", std},
		{"standard base64 without padding is accepted", base64.RawStdEncoding.EncodeToString(key)},
		{"URL-safe base64 with padding is accepted", url},
		{"URL-safe base64 without padding is accepted", base64.RawURLEncoding.EncodeToString(key)},
		{"surrounding white space and a trailing newline are ignored", "  " + std + "\n"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			m, created, err := LoadMaster(dir, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if created {
				t.Error("created = true for a key from the environment")
			}
			if !sameKey(t, want, m) {
				t.Error("loaded key differs from the encoded key")
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("data dir touched although the key came from the environment: %v", err)
			}
		})
	}
	bad := []struct{ name, env string }{
		{"a 31-byte key is refused", base64.StdEncoding.EncodeToString(key[:31])},
		{"a 33-byte key is refused", base64.StdEncoding.EncodeToString(append(bytes.Clone(key), 0))},
		{"a 16-byte key is refused", base64.RawURLEncoding.EncodeToString(key[:16])},
		{"a hex-encoded key is refused (it decodes to 48 bytes)", hex.EncodeToString(key)},
		{"text that is not base64 is refused", "not a key!"},
		{"white space only is refused", "   "},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadMaster(t.TempDir(), tt.env)
			if err == nil {
				t.Fatal("LoadMaster succeeded")
			}
			if !strings.Contains(err.Error(), "KEYGATE_MASTER_KEY") {
				t.Errorf("error %q does not name KEYGATE_MASTER_KEY", err)
			}
			if strings.TrimSpace(tt.env) != "" && strings.Contains(err.Error(), tt.env) {
				t.Errorf("error %q repeats the key", err)
			}
		})
	}
}

func TestLoadMasterFromFile(t *testing.T) {
	t.Run("a missing key file is created with mode 0600 in a new 0700 data dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "data")
		m, created, err := LoadMaster(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if !created || m == nil {
			t.Fatalf("created = %v, m = %v", created, m)
		}
		if runtime.GOOS == "windows" {
			return
		}
		fi, err := os.Stat(filepath.Join(dir, MasterKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file mode = %#o, want 0600", perm)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := di.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("data dir mode = %#o, want no group/other bits", perm)
		}
	})

	t.Run("an existing key file is reused", func(t *testing.T) {
		dir := t.TempDir()
		first, created, err := LoadMaster(dir, "")
		if err != nil || !created {
			t.Fatalf("first LoadMaster: created=%v err=%v", created, err)
		}
		again, created, err := LoadMaster(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if created {
			t.Error("created = true on the second load")
		}
		if !sameKey(t, first, again) {
			t.Error("the second load returned a different key")
		}
	})

	t.Run("the key in the environment wins over the key file", func(t *testing.T) {
		dir := t.TempDir()
		if _, _, err := LoadMaster(dir, ""); err != nil {
			t.Fatal(err)
		}
		m, created, err := LoadMaster(dir, base64.StdEncoding.EncodeToString(testKey(4)))
		if err != nil || created {
			t.Fatalf("created=%v err=%v", created, err)
		}
		if !sameKey(t, testMaster(t, 4), m) {
			t.Error("the environment key was not used")
		}
	})

	t.Run("a key file written by an operator in URL-safe base64 is accepted", func(t *testing.T) {
		dir := t.TempDir()
		writeKeyFile(t, dir, base64.RawURLEncoding.EncodeToString(testKey(5))+"\n", 0o600)
		m, created, err := LoadMaster(dir, "")
		if err != nil || created {
			t.Fatalf("created=%v err=%v", created, err)
		}
		if !sameKey(t, testMaster(t, 5), m) {
			t.Error("the file's key was not used")
		}
	})

	refused := []struct {
		name    string
		content string
		mode    os.FileMode
		errHas  string
	}{
		{"a group-readable key file is refused", base64.StdEncoding.EncodeToString(testKey(6)), 0o640, "chmod 600"},
		{"a world-readable key file is refused", base64.StdEncoding.EncodeToString(testKey(6)), 0o604, "chmod 600"},
		{"a group-writable key file is refused", base64.StdEncoding.EncodeToString(testKey(6)), 0o620, "chmod 600"},
		{"a key file with a 16-byte key is refused", base64.StdEncoding.EncodeToString(testKey(6)[:16]), 0o600, "32 bytes"},
		{"an empty key file is refused", "", 0o600, "32 bytes"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tt.mode != 0o600 {
				t.Skip("no Unix permissions")
			}
			dir := t.TempDir()
			writeKeyFile(t, dir, tt.content, tt.mode)
			_, _, err := LoadMaster(dir, "")
			if err == nil {
				t.Fatal("LoadMaster succeeded")
			}
			if !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), MasterKeyFile) {
				t.Errorf("error %q should name the file and contain %q", err, tt.errHas)
			}
		})
	}

	t.Run("no environment key and no data dir is refused", func(t *testing.T) {
		if _, _, err := LoadMaster("", ""); err == nil {
			t.Fatal("LoadMaster succeeded")
		}
	})
}

func writeKeyFile(t *testing.T, dir, content string, mode os.FileMode) {
	t.Helper()
	path := filepath.Join(dir, MasterKeyFile)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // undo the umask
		t.Fatal(err)
	}
}

func TestDerive(t *testing.T) {
	m1, m1b, m2 := testMaster(t, 7), testMaster(t, 7), testMaster(t, 8)
	tests := []struct {
		name  string
		a, b  []byte
		equal bool
	}{
		{"the same master and purpose give the same key", m1.Derive("cookie", 32), m1b.Derive("cookie", 32), true},
		{"different purposes give different keys", m1.Derive("cookie", 32), m1.Derive("client-secret", 32), false},
		{"purposes differing only in case give different keys", m1.Derive("cookie", 32), m1.Derive("Cookie", 32), false},
		{"different masters give different keys for one purpose", m1.Derive("cookie", 32), m2.Derive("cookie", 32), false},
		{"a derived key is not the master key", m1.Derive("", 32), testKey(7), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(tt.a, tt.b); got != tt.equal {
				t.Fatalf("equal = %v, want %v (%x vs %x)", got, tt.equal, tt.a, tt.b)
			}
		})
	}
	t.Run("the requested length is returned", func(t *testing.T) {
		for _, n := range []int{1, 16, 32, 64, 100} {
			if got := len(m1.Derive("fosite-hmac", n)); got != n {
				t.Errorf("len(Derive(_, %d)) = %d", n, got)
			}
		}
	})
	t.Run("a non-positive length panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("Derive(_, 0) did not panic")
			}
		}()
		m1.Derive("cookie", 0)
	})
}

func TestMasterNeverPrintsKey(t *testing.T) {
	key := testKey(9)
	m := testMaster(t, 9)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		t.Run("formatting with "+verb+" hides the key", func(t *testing.T) {
			out := fmt.Sprintf(verb, m) + fmt.Sprintf(verb, *m)
			if strings.Contains(out, hex.EncodeToString(key[:8])) || strings.Contains(out, fmt.Sprint(key[:4])[1:8]) {
				t.Fatalf("%s printed key material: %s", verb, out)
			}
		})
	}
}
