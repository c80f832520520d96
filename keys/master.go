package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MasterKeySize is the length of the master key in bytes.
const MasterKeySize = 32

// MasterKeyFile is the name of the key file inside the data directory.
const MasterKeyFile = "master.key"

const (
	// sealVersion is the first byte of every sealed value: AES-256-GCM
	// under the key derived with sealKeyInfo, 96-bit random nonce.
	sealVersion = 1
	nonceSize   = 12
	tagSize     = 16

	// HKDF info labels. Derive prefixes the caller's purpose with
	// deriveInfoPrefix, so no purpose can produce sealKeyInfo.
	sealKeyInfo      = "keygate/seal/v1"
	deriveInfoPrefix = "keygate/derive/"
)

// ErrOpen is returned by Open when a sealed value does not open: it was
// sealed under another master key or for another row (AAD), or it was
// altered or truncated.
var ErrOpen = errors.New("keys: sealed value does not open (wrong master key, wrong row, or tampered)")

// Master is the master key. It is safe for concurrent use. Its String and
// Format methods never print the key.
type Master struct {
	key  [MasterKeySize]byte
	aead cipher.AEAD
}

// NewMaster returns a Master for key, which must be 32 bytes. The key is
// copied.
func NewMaster(key []byte) (*Master, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("keys: master key must be %d bytes, got %d", MasterKeySize, len(key))
	}
	m := &Master{}
	copy(m.key[:], key)
	sk, err := hkdf.Key(sha256.New, m.key[:], nil, sealKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(sk)
	clear(sk)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	m.aead, err = cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return m, nil
}

// LoadMaster returns the master key. If env (the value of
// KEYGATE_MASTER_KEY) is non-empty it is decoded as base64 (standard or URL
// alphabet, padded or not) and must give exactly 32 bytes; the key file is
// then not consulted. Otherwise the key is read from dataDir/master.key. If
// that file does not exist it is created with 32 random bytes (base64 text,
// mode 0600, in a data directory created with mode 0700 if missing) and
// created is true. A key file with any group or other permission bits, or
// that does not decode to 32 bytes, is refused.
func LoadMaster(dataDir, env string) (m *Master, created bool, err error) {
	if env != "" {
		key, err := decodeMasterKey(env)
		if err != nil {
			return nil, false, fmt.Errorf("keys: KEYGATE_MASTER_KEY: %w", err)
		}
		m, err := NewMaster(key)
		clear(key)
		return m, false, err
	}
	if dataDir == "" {
		return nil, false, errors.New("keys: no master key: KEYGATE_MASTER_KEY is empty and no data directory is set")
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	key, err := readMasterKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, created, err = createMasterKeyFile(dataDir, path)
	}
	if err != nil {
		return nil, false, err
	}
	m, err = NewMaster(key)
	clear(key)
	if err != nil {
		return nil, false, err
	}
	return m, created, nil
}

// decodeMasterKey decodes s (surrounding white space ignored) with the
// first base64 variant that accepts it and checks the length.
func decodeMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != MasterKeySize {
			clear(b)
			return nil, fmt.Errorf("master key must decode to %d bytes, got %d", MasterKeySize, len(b))
		}
		return b, nil
	}
	return nil, fmt.Errorf("master key is not base64 (want %d random bytes, base64-encoded)", MasterKeySize)
}

// readMasterKeyFile reads and checks an existing key file. A missing file
// is reported as an error matching fs.ErrNotExist.
func readMasterKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("keys: master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: master key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits; os reports 0666/0444 there.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("keys: master key file %s has mode %#o; it must not be accessible by group or others (run: chmod 600 %s)", path, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("keys: master key file %s: %w", path, err)
	}
	key, err := decodeMasterKey(string(text))
	clear(text)
	if err != nil {
		return nil, fmt.Errorf("keys: master key file %s: %w", path, err)
	}
	return key, nil
}

// createMasterKeyFile writes a new random key to path, never replacing an
// existing file. If another process created the file first, its key is
// read and created is false.
func createMasterKeyFile(dataDir, path string) (key []byte, created bool, err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("keys: create data directory: %w", err)
	}
	key = make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("keys: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err = readMasterKeyFile(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("keys: create master key file: %w", err)
	}
	text := base64.StdEncoding.EncodeToString(key) + "\n"
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("keys: write master key file: %w", err)
	}
	syncDir(dataDir)
	return key, true, nil
}

// syncDir makes a new directory entry durable where the platform allows.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Seal encrypts plaintext with AES-256-GCM and a random 96-bit nonce. The
// result is version byte || nonce || ciphertext (with tag). aad is
// authenticated but not stored: Open must be given the same aad, so a
// value bound to one row ("totp:"+userID) does not open for another.
func (m *Master) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = sealVersion
	nonce := out[1 : 1+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return m.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value made by Seal with the same aad. Any failure
// matches ErrOpen.
func (m *Master) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, sealed[0])
	}
	pt, err := m.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Derive returns an n-byte key for purpose (such as "fosite-hmac",
// "client-secret", "cookie", "recovery-code"), expanded from the master key
// with HKDF-SHA256. The result is the same for the same master, purpose and
// n; different purposes give independent keys. A shorter n gives a prefix
// of a longer one, so use one length per purpose. Derive panics if n is not
// in 1..8160 (255 SHA-256 blocks), which is a programming error.
func (m *Master) Derive(purpose string, n int) []byte {
	if n <= 0 {
		panic(fmt.Sprintf("keys: Derive(%q, %d): length must be positive", purpose, n))
	}
	k, err := hkdf.Key(sha256.New, m.key[:], nil, deriveInfoPrefix+purpose, n)
	if err != nil {
		panic(fmt.Sprintf("keys: Derive(%q, %d): %v", purpose, n, err))
	}
	return k
}

// String returns a fixed text, never the key.
func (Master) String() string { return "keys.Master(redacted)" }

// Format prints String for every verb, so no fmt verb reveals the key.
func (m Master) Format(f fmt.State, _ rune) { io.WriteString(f, m.String()) }
