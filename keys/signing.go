package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/keygate/keygate/storage"
)

// Signing algorithms keygate keeps a key for.
const (
	ES256 = string(jose.ES256)
	RS256 = string(jose.RS256)
)

// RSABits is the size of generated RS256 keys. 2048 bits (112-bit security,
// NIST-approved through 2030) is what every relying-party library accepts,
// and signing with it is ~3-4x cheaper than with 3072 bits, which matters
// because RS256 signing runs on the token endpoint's hot path. Keys rotate
// routinely, so no key has to resist factoring for long, and ES256 (128-bit
// security) is the default algorithm anyway.
const RSABits = 2048

// signingAlgs lists the algorithms in JWKS order.
var signingAlgs = []string{ES256, RS256}

// ErrNoSigningKey is returned by Set.Signing when there is no active key
// for the algorithm.
var ErrNoSigningKey = errors.New("keys: no active signing key")

// Store is what this package needs from storage.
type Store interface {
	storage.SigningKeys
	storage.Transactor
}

// signingKeyAAD binds a sealed private key to its row.
func signingKeyAAD(kid string) []byte { return []byte("signing-key:" + kid) }

// KeyID returns the kid for a public key: base64url (no padding) of the
// first 16 bytes of its RFC 7638 SHA-256 JWK thumbprint.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp[:16]), nil
}

// newSigningKey generates a key pair for alg and returns its storage row.
func newSigningKey(m *Master, alg string, now time.Time) (storage.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, RSABits)
	default:
		return storage.SigningKey{}, fmt.Errorf("keys: unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	pub := priv.Public()
	kid, err := KeyID(pub)
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: marshal %s key: %w", alg, err)
	}
	sealed, err := m.Seal(der, signingKeyAAD(kid))
	clear(der)
	if err != nil {
		return storage.SigningKey{}, err
	}
	pubJWK, err := jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("keys: marshal %s public key: %w", alg, err)
	}
	return storage.SigningKey{
		KID:       kid,
		Alg:       alg,
		Sealed:    sealed,
		PublicJWK: pubJWK,
		CreatedAt: now,
	}, nil
}

// missingAlgs lists the algorithms without an active key.
func missingAlgs(ctx context.Context, s storage.SigningKeys) ([]string, error) {
	rows, err := s.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	var missing []string
	for _, alg := range signingAlgs {
		if !slices.ContainsFunc(rows, func(k storage.SigningKey) bool {
			return k.Alg == alg && k.RetiredAt.IsZero()
		}) {
			missing = append(missing, alg)
		}
	}
	return missing, nil
}

// EnsureSigningKeys creates an active ES256 and an active RS256 key where
// none is active. It is idempotent: when both exist it writes nothing. Keys
// are generated outside the write transaction (RSA generation takes tens
// of milliseconds) and the check is repeated inside it, where the store
// orders transactions that list the keys (storage.SigningKeys): replicas
// starting at once on one database create one key per algorithm.
func EnsureSigningKeys(ctx context.Context, s Store, m *Master, now time.Time) error {
	missing, err := missingAlgs(ctx, s)
	if err != nil || len(missing) == 0 {
		return err
	}
	fresh := make(map[string]storage.SigningKey, len(missing))
	for _, alg := range missing {
		if fresh[alg], err = newSigningKey(m, alg, now); err != nil {
			return err
		}
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		missing, err := missingAlgs(ctx, s)
		if err != nil {
			return err
		}
		for _, alg := range missing {
			k, ok := fresh[alg]
			if !ok {
				if k, err = newSigningKey(m, alg, now); err != nil {
					return err
				}
			}
			if err := s.CreateSigningKey(ctx, k); err != nil {
				return fmt.Errorf("keys: store %s signing key: %w", alg, err)
			}
		}
		return nil
	})
}

// Rotate retires the active keys of both algorithms and creates new ones,
// and deletes keys retired before now-retention, all in one transaction.
// It returns the new kids (ES256 first). Processes holding a Keyring see
// the change at their next Reload.
func Rotate(ctx context.Context, s Store, m *Master, now time.Time, retention time.Duration) ([]string, error) {
	if retention < 0 {
		return nil, fmt.Errorf("keys: negative retention %s", retention)
	}
	fresh := make([]storage.SigningKey, 0, len(signingAlgs))
	for _, alg := range signingAlgs {
		k, err := newSigningKey(m, alg, now)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, k)
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		for _, k := range fresh {
			if err := s.RetireSigningKeys(ctx, k.Alg, now); err != nil {
				return fmt.Errorf("keys: retire %s signing keys: %w", k.Alg, err)
			}
			if err := s.CreateSigningKey(ctx, k); err != nil {
				return fmt.Errorf("keys: store %s signing key: %w", k.Alg, err)
			}
		}
		if _, err := s.DeleteSigningKeysRetiredBefore(ctx, now.Add(-retention)); err != nil {
			return fmt.Errorf("keys: delete old signing keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	kids := make([]string, len(fresh))
	for i, k := range fresh {
		kids[i] = k.KID
	}
	return kids, nil
}

// Set is an immutable snapshot of the signing keys: the active private key
// per algorithm, and the public keys of every key not yet past retention.
// It is safe for concurrent use.
type Set struct {
	signing     map[string]*jose.JSONWebKey // alg -> private JWK
	public      []jose.JSONWebKey           // JWKS order: active first
	jwksJSON    []byte
	fingerprint string
}

// LoadSet reads the signing keys and builds a Set as of now. Keys retired
// before now-retention are left out. Only the active keys' private halves
// are unsealed; a key that does not open (wrong master key) or whose stored
// public key does not match its kid is an error. If several keys of one
// algorithm are active (which only a race between writers can cause), the
// newest signs and the others are published.
func LoadSet(ctx context.Context, s storage.SigningKeys, m *Master, now time.Time, retention time.Duration) (*Set, error) {
	rows, err := s.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list signing keys: %w", err)
	}
	return buildSet(liveKeys(rows, now, retention), m)
}

// liveKeys returns the rows still within retention at now, in JWKS order:
// active keys first (by algorithm, newest first), then retired keys (most
// recently retired first).
func liveKeys(rows []storage.SigningKey, now time.Time, retention time.Duration) []storage.SigningKey {
	cutoff := now.Add(-retention)
	live := make([]storage.SigningKey, 0, len(rows))
	for _, r := range rows {
		if !r.RetiredAt.IsZero() && r.RetiredAt.Before(cutoff) {
			continue
		}
		live = append(live, r)
	}
	algRank := func(alg string) int {
		if i := slices.Index(signingAlgs, alg); i >= 0 {
			return i
		}
		return len(signingAlgs)
	}
	slices.SortFunc(live, func(a, b storage.SigningKey) int {
		aActive, bActive := a.RetiredAt.IsZero(), b.RetiredAt.IsZero()
		if aActive != bActive {
			if aActive {
				return -1
			}
			return 1
		}
		if c := b.RetiredAt.Compare(a.RetiredAt); c != 0 {
			return c
		}
		if c := cmp.Compare(algRank(a.Alg), algRank(b.Alg)); c != 0 {
			return c
		}
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.KID, b.KID)
	})
	return live
}

// fingerprintOf identifies a list of live keys: their kids, order and
// whether each is active. Equal fingerprints mean an equal Set.
func fingerprintOf(live []storage.SigningKey) string {
	var b strings.Builder
	for _, k := range live {
		b.WriteString(k.KID)
		if k.RetiredAt.IsZero() {
			b.WriteString(":a,")
		} else {
			b.WriteString(":r,")
		}
	}
	return b.String()
}

// buildSet turns live rows (in liveKeys order) into a Set.
func buildSet(live []storage.SigningKey, m *Master) (*Set, error) {
	set := &Set{
		signing:     make(map[string]*jose.JSONWebKey, len(signingAlgs)),
		public:      make([]jose.JSONWebKey, 0, len(live)),
		fingerprint: fingerprintOf(live),
	}
	for _, row := range live {
		pub, err := parsePublicJWK(row)
		if err != nil {
			return nil, err
		}
		set.public = append(set.public, pub)
		if !row.RetiredAt.IsZero() || set.signing[row.Alg] != nil {
			continue
		}
		priv, err := openPrivateKey(row, pub.Key, m)
		if err != nil {
			return nil, err
		}
		set.signing[row.Alg] = &jose.JSONWebKey{Key: priv, KeyID: row.KID, Algorithm: row.Alg, Use: "sig"}
	}
	var err error
	set.jwksJSON, err = json.Marshal(jose.JSONWebKeySet{Keys: set.public})
	if err != nil {
		return nil, fmt.Errorf("keys: marshal JWKS: %w", err)
	}
	return set, nil
}

// parsePublicJWK parses and checks a row's public key: it must be public,
// of the row's algorithm, and its thumbprint must give the row's kid.
func parsePublicJWK(row storage.SigningKey) (jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(row.PublicJWK); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: signing key %s: public JWK: %w", row.KID, err)
	}
	if !jwk.IsPublic() {
		return jose.JSONWebKey{}, fmt.Errorf("keys: signing key %s: stored public JWK holds a private key", row.KID)
	}
	if err := checkKeyType(row.Alg, jwk.Key); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: signing key %s: %w", row.KID, err)
	}
	kid, err := KeyID(jwk.Key)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	if kid != row.KID || (jwk.KeyID != "" && jwk.KeyID != row.KID) {
		return jose.JSONWebKey{}, fmt.Errorf("keys: signing key %s: public key does not match its kid", row.KID)
	}
	return jose.JSONWebKey{Key: jwk.Key, KeyID: row.KID, Algorithm: row.Alg, Use: "sig"}, nil
}

// checkKeyType checks that key (public or private) suits alg.
func checkKeyType(alg string, key any) error {
	switch alg {
	case ES256:
		switch k := key.(type) {
		case *ecdsa.PublicKey:
			if k.Curve == elliptic.P256() {
				return nil
			}
		case *ecdsa.PrivateKey:
			if k.Curve == elliptic.P256() {
				return nil
			}
		}
	case RS256:
		switch key.(type) {
		case *rsa.PublicKey, *rsa.PrivateKey:
			return nil
		}
	default:
		return fmt.Errorf("unsupported algorithm %q", alg)
	}
	return fmt.Errorf("key type %T does not suit %s", key, alg)
}

// openPrivateKey unseals a row's private key and checks it matches pub.
func openPrivateKey(row storage.SigningKey, pub crypto.PublicKey, m *Master) (crypto.Signer, error) {
	der, err := m.Open(row.Sealed, signingKeyAAD(row.KID))
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: %w", row.KID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s: %w", row.KID, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: signing key %s: unexpected private key type %T", row.KID, parsed)
	}
	if err := checkKeyType(row.Alg, priv); err != nil {
		return nil, fmt.Errorf("keys: signing key %s: %w", row.KID, err)
	}
	eq, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("keys: signing key %s: private key does not match its public key", row.KID)
	}
	return priv, nil
}

// Signing returns the active private key for alg ("ES256" or "RS256") as a
// JWK with KeyID, Algorithm and Use set, ready for fosite's
// jwt.DefaultSigner (which puts the kid in the JWT header). Each call
// returns a fresh copy of the JWK struct; the key itself is shared and
// must not be modified.
func (s *Set) Signing(alg string) (*jose.JSONWebKey, error) {
	k := s.signing[alg]
	if k == nil {
		return nil, fmt.Errorf("%w for %s", ErrNoSigningKey, alg)
	}
	c := *k
	return &c, nil
}

// JWKS returns the public keys, active keys first. The slice is a copy.
func (s *Set) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: slices.Clone(s.public)}
}

// JWKSJSON returns the JWKS document, marshalled once when the Set was
// built. The slice is shared by every caller and must not be modified.
func (s *Set) JWKSJSON() []byte { return s.jwksJSON }

// KIDs returns the kids of the published keys in JWKS order.
func (s *Set) KIDs() []string {
	kids := make([]string, len(s.public))
	for i, k := range s.public {
		kids[i] = k.KeyID
	}
	return kids
}

// Keyring holds the current Set behind an atomic pointer: Current never
// blocks, and Reload swaps in a new Set built from storage.
type Keyring struct {
	store     storage.SigningKeys
	master    *Master
	retention time.Duration
	now       func() time.Time

	mu  sync.Mutex // serialises Reload
	cur atomic.Pointer[Set]
}

// NewKeyring loads the current Set. now is the clock used to apply
// retention (time.Now if nil). Callers normally run EnsureSigningKeys
// first; a Keyring over an empty store serves an empty JWKS and Signing
// fails.
func NewKeyring(ctx context.Context, s storage.SigningKeys, m *Master, retention time.Duration, now func() time.Time) (*Keyring, error) {
	if now == nil {
		now = time.Now
	}
	set, err := LoadSet(ctx, s, m, now(), retention)
	if err != nil {
		return nil, err
	}
	k := &Keyring{store: s, master: m, retention: retention, now: now}
	k.cur.Store(set)
	return k, nil
}

// Current returns the current Set.
func (k *Keyring) Current() *Set { return k.cur.Load() }

// Reload re-reads the signing keys (for instance after `keygate keys rotate`
// ran in another process, or when a retired key passes retention) and
// swaps in a new Set only if the published kids or which of them are active
// changed. When nothing changed it unseals nothing and Current keeps
// returning the same Set. On error the current Set stays in place.
func (k *Keyring) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rows, err := k.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	live := liveKeys(rows, k.now(), k.retention)
	if fingerprintOf(live) == k.cur.Load().fingerprint {
		return nil
	}
	set, err := buildSet(live, k.master)
	if err != nil {
		return err
	}
	k.cur.Store(set)
	return nil
}
