package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"

	"github.com/keygate/keygate/storage"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const retention = time.Hour

// signJWT signs claims the way fosite's jwt.DefaultSigner does: a new
// go-jose signer over the *jose.JSONWebKey, which puts its kid in the header.
func signJWT(tb testing.TB, key *jose.JSONWebKey, subject string) string {
	tb.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   "https://id.example.com",
		Subject:  subject,
		Audience: jwt.Audience{"app"},
		IssuedAt: jwt.NewNumericDate(t0),
		Expiry:   jwt.NewNumericDate(t0.Add(time.Hour)),
	}).CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// verifyJWT verifies raw against a served JWKS document, as a relying party
// would, and returns the header kid and the subject.
func verifyJWT(tb testing.TB, raw string, jwksJSON []byte) (kid, subject string, err error) {
	tb.Helper()
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(jwksJSON, &jwks); err != nil {
		tb.Fatalf("JWKS does not parse: %v", err)
	}
	tok, err := jwt.ParseSigned(raw)
	if err != nil {
		tb.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims(jwks, &claims); err != nil {
		return tok.Headers[0].KeyID, "", err
	}
	return tok.Headers[0].KeyID, claims.Subject, nil
}

func setup(t *testing.T) (context.Context, *memStore, *Master) {
	t.Helper()
	ctx := context.Background()
	s := &memStore{}
	m := testMaster(t, 1)
	if err := EnsureSigningKeys(ctx, s, m, t0); err != nil {
		t.Fatal(err)
	}
	return ctx, s, m
}

func loadSet(t *testing.T, s storage.SigningKeys, m *Master, now time.Time) *Set {
	t.Helper()
	set, err := LoadSet(context.Background(), s, m, now, retention)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func activeKIDs(t *testing.T, s *memStore) map[string]string {
	t.Helper()
	rows, _ := s.ListSigningKeys(context.Background())
	out := map[string]string{}
	for _, r := range rows {
		if r.RetiredAt.IsZero() {
			if _, dup := out[r.Alg]; dup {
				t.Fatalf("two active %s keys", r.Alg)
			}
			out[r.Alg] = r.KID
		}
	}
	return out
}

func TestEnsureSigningKeys(t *testing.T) {
	ctx, s, m := setup(t)
	first := activeKIDs(t, s)

	t.Run("one active ES256 and one active RS256 key are created", func(t *testing.T) {
		if len(s.keys) != 2 || first[ES256] == "" || first[RS256] == "" {
			t.Fatalf("rows %d, active %v", len(s.keys), first)
		}
	})
	t.Run("a second call creates nothing", func(t *testing.T) {
		if err := EnsureSigningKeys(ctx, s, m, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got := activeKIDs(t, s); len(s.keys) != 2 || got[ES256] != first[ES256] || got[RS256] != first[RS256] {
			t.Fatalf("rows %d, active %v, want %v", len(s.keys), got, first)
		}
	})
	t.Run("only the algorithm without an active key gets a new one", func(t *testing.T) {
		if err := s.RetireSigningKeys(ctx, RS256, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := EnsureSigningKeys(ctx, s, m, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got := activeKIDs(t, s)
		if len(s.keys) != 3 || got[ES256] != first[ES256] || got[RS256] == "" || got[RS256] == first[RS256] {
			t.Fatalf("rows %d, active %v (before %v)", len(s.keys), got, first)
		}
	})
}

func TestSigningKeyRows(t *testing.T) {
	_, s, m := setup(t)
	for _, row := range s.keys {
		t.Run("the "+row.Alg+" kid is the first 16 bytes of the RFC 7638 thumbprint", func(t *testing.T) {
			var jwk jose.JSONWebKey
			if err := json.Unmarshal(row.PublicJWK, &jwk); err != nil {
				t.Fatal(err)
			}
			tp, err := jwk.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(tp[:16]); row.KID != want || len(row.KID) != 22 {
				t.Fatalf("kid %q, want %q", row.KID, want)
			}
		})
		t.Run("the "+row.Alg+" public JWK has kid, alg and use sig and no private part", func(t *testing.T) {
			var fields map[string]any
			if err := json.Unmarshal(row.PublicJWK, &fields); err != nil {
				t.Fatal(err)
			}
			if fields["kid"] != row.KID || fields["alg"] != row.Alg || fields["use"] != "sig" {
				t.Fatalf("public JWK %s", row.PublicJWK)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := fields[private]; ok {
					t.Fatalf("public JWK has private member %q", private)
				}
			}
		})
		t.Run("the "+row.Alg+" private key opens only with its own kid as AAD", func(t *testing.T) {
			if _, err := m.Open(row.Sealed, []byte("signing-key:"+row.KID)); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Open(row.Sealed, []byte("signing-key:other")); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open with another kid = %v", err)
			}
		})
	}
}

func TestSignedJWTVerifiesWithJWKS(t *testing.T) {
	_, s, m := setup(t)
	set := loadSet(t, s, m, t0)
	for _, alg := range []string{ES256, RS256} {
		t.Run("a JWT signed with the "+alg+" key verifies against the served JWKS", func(t *testing.T) {
			key, err := set.Signing(alg)
			if err != nil {
				t.Fatal(err)
			}
			if key.KeyID == "" || key.Algorithm != alg || key.IsPublic() {
				t.Fatalf("signing JWK kid=%q alg=%q public=%v", key.KeyID, key.Algorithm, key.IsPublic())
			}
			kid, sub, err := verifyJWT(t, signJWT(t, key, "user-1"), set.JWKSJSON())
			if err != nil {
				t.Fatal(err)
			}
			if kid != key.KeyID || sub != "user-1" {
				t.Fatalf("header kid %q, sub %q", kid, sub)
			}
		})
	}
	t.Run("a JWT signed by a foreign key with a known kid does not verify", func(t *testing.T) {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		own, _ := set.Signing(ES256)
		forged := &jose.JSONWebKey{Key: priv, KeyID: own.KeyID, Algorithm: ES256}
		if _, _, err := verifyJWT(t, signJWT(t, forged, "user-1"), set.JWKSJSON()); err == nil {
			t.Fatal("forged token verified")
		}
	})
	t.Run("Signing for an algorithm without a key fails", func(t *testing.T) {
		if _, err := set.Signing("HS256"); !errors.Is(err, ErrNoSigningKey) {
			t.Fatalf("Signing(HS256) = %v", err)
		}
	})
	t.Run("JWKS and JWKSJSON list the same keys", func(t *testing.T) {
		var served jose.JSONWebKeySet
		if err := json.Unmarshal(set.JWKSJSON(), &served); err != nil {
			t.Fatal(err)
		}
		jwks := set.JWKS()
		if len(served.Keys) != 2 || len(jwks.Keys) != 2 {
			t.Fatalf("served %d keys, JWKS %d", len(served.Keys), len(jwks.Keys))
		}
		for i := range jwks.Keys {
			if !jwks.Keys[i].IsPublic() || jwks.Keys[i].KeyID != served.Keys[i].KeyID || served.Keys[i].Use != "sig" {
				t.Fatalf("key %d: %+v vs %+v", i, jwks.Keys[i], served.Keys[i])
			}
		}
		jwks.Keys[0].KeyID = "changed"
		if set.JWKS().Keys[0].KeyID == "changed" {
			t.Fatal("JWKS returned the Set's own slice")
		}
	})
	t.Run("an empty store gives an empty JWKS", func(t *testing.T) {
		empty := loadSet(t, &memStore{}, m, t0)
		if got := string(empty.JWKSJSON()); got != `{"keys":[]}` {
			t.Fatalf("JWKSJSON = %s", got)
		}
	})
}

func TestRotate(t *testing.T) {
	ctx, s, m := setup(t)
	before := loadSet(t, s, m, t0)
	oldKids := before.KIDs()
	oldES, _ := before.Signing(ES256)
	oldRS, _ := before.Signing(RS256)
	oldTokens := []string{signJWT(t, oldES, "old-es"), signJWT(t, oldRS, "old-rs")}

	t1 := t0.Add(24 * time.Hour)
	newKids, err := Rotate(ctx, s, m, t1, retention)
	if err != nil {
		t.Fatal(err)
	}
	after := loadSet(t, s, m, t1.Add(time.Minute))

	t.Run("Rotate returns two new kids, ES256 first", func(t *testing.T) {
		es, _ := after.Signing(ES256)
		rs, _ := after.Signing(RS256)
		if len(newKids) != 2 || newKids[0] != es.KeyID || newKids[1] != rs.KeyID {
			t.Fatalf("kids %v, signing %s %s", newKids, es.KeyID, rs.KeyID)
		}
		for _, k := range newKids {
			if slices.Contains(oldKids, k) {
				t.Fatalf("new kid %s was already in use", k)
			}
		}
	})
	t.Run("the old kids stay in the JWKS after the new active ones", func(t *testing.T) {
		kids := after.KIDs()
		if len(kids) != 4 || !slices.Equal(kids[:2], newKids) ||
			!slices.Contains(kids[2:], oldKids[0]) || !slices.Contains(kids[2:], oldKids[1]) {
			t.Fatalf("JWKS kids %v, old %v, new %v", kids, oldKids, newKids)
		}
	})
	t.Run("tokens signed before Rotate still verify", func(t *testing.T) {
		for _, raw := range oldTokens {
			if _, _, err := verifyJWT(t, raw, after.JWKSJSON()); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("the new keys sign", func(t *testing.T) {
		for i, alg := range []string{ES256, RS256} {
			key, _ := after.Signing(alg)
			kid, _, err := verifyJWT(t, signJWT(t, key, "new"), after.JWKSJSON())
			if err != nil || kid != newKids[i] {
				t.Fatalf("%s: kid %q, err %v", alg, kid, err)
			}
		}
	})
	t.Run("after retention passes the old kids are gone from the JWKS", func(t *testing.T) {
		later := loadSet(t, s, m, t1.Add(retention+time.Second))
		if kids := later.KIDs(); !slices.Equal(kids, newKids) {
			t.Fatalf("JWKS kids %v, want %v", kids, newKids)
		}
		if _, _, err := verifyJWT(t, oldTokens[0], later.JWKSJSON()); err == nil {
			t.Fatal("a token of a key past retention still verifies")
		}
	})
	t.Run("the next Rotate deletes keys retired before its retention window", func(t *testing.T) {
		t2 := t1.Add(2 * retention)
		third, err := Rotate(ctx, s, m, t2, retention)
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := s.ListSigningKeys(ctx)
		var kids []string
		for _, r := range rows {
			kids = append(kids, r.KID)
		}
		slices.Sort(kids)
		want := append(slices.Clone(newKids), third...)
		slices.Sort(want)
		if !slices.Equal(kids, want) {
			t.Fatalf("stored kids %v, want %v", kids, want)
		}
	})
	t.Run("a negative retention is refused", func(t *testing.T) {
		if _, err := Rotate(ctx, s, m, t1, -time.Second); err == nil {
			t.Fatal("Rotate succeeded")
		}
	})
}

func TestRotateIsAtomic(t *testing.T) {
	ctx, s, m := setup(t)
	before := activeKIDs(t, s)
	s.failCreate = errors.New("disk full")
	if _, err := Rotate(ctx, s, m, t0.Add(time.Hour), retention); err == nil {
		t.Fatal("Rotate succeeded")
	}
	t.Run("a failed Rotate leaves the active keys active", func(t *testing.T) {
		got := activeKIDs(t, s)
		if len(s.keys) != 2 || got[ES256] != before[ES256] || got[RS256] != before[RS256] {
			t.Fatalf("active %v, want %v", got, before)
		}
	})
}

func TestLoadSetRejects(t *testing.T) {
	ctx, s, m := setup(t)
	if _, err := Rotate(ctx, s, m, t0.Add(time.Minute), retention); err != nil {
		t.Fatal(err)
	}
	// Rows in insertion order: old ES256, old RS256, new ES256, new RS256.
	oldES, newES := 0, 2
	if s.keys[oldES].Alg != ES256 || s.keys[newES].Alg != ES256 || s.keys[oldES].RetiredAt.IsZero() {
		t.Fatalf("unexpected rows %+v", s.keys)
	}
	tests := []struct {
		name    string
		master  *Master
		corrupt func(rows []storage.SigningKey)
		wantErr error
		wantMsg string
	}{
		{"keys sealed under another master key do not load", testMaster(t, 2), nil, ErrOpen, ""},
		{"a sealed private key copied to another key's row does not load", m, func(rows []storage.SigningKey) {
			rows[newES].Sealed = bytes.Clone(rows[oldES].Sealed)
		}, ErrOpen, ""},
		{"a public JWK swapped for another key's does not load", m, func(rows []storage.SigningKey) {
			rows[newES].PublicJWK = bytes.Clone(rows[oldES].PublicJWK)
		}, nil, "does not match its kid"},
		{"a row of an unknown algorithm does not load", m, func(rows []storage.SigningKey) {
			rows[oldES].Alg = "EdDSA"
		}, nil, "unsupported algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &memStore{keys: slices.Clone(s.keys)}
			if tt.corrupt != nil {
				tt.corrupt(c.keys)
			}
			_, err := LoadSet(ctx, c, tt.master, t0.Add(time.Minute), retention)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("LoadSet error = %v, want %v %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestKeyring(t *testing.T) {
	ctx, s, m := setup(t)
	now := t0
	kr, err := NewKeyring(ctx, s, m, retention, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	first := kr.Current()
	oldKids := first.KIDs()

	t.Run("Reload without a change keeps the same Set", func(t *testing.T) {
		now = now.Add(time.Minute)
		if err := kr.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if kr.Current() != first {
			t.Fatal("Reload swapped the Set although no key changed")
		}
	})

	var newKids []string
	t.Run("Reload picks up a rotation made through the store", func(t *testing.T) {
		now = now.Add(time.Minute)
		newKids, err = Rotate(ctx, s, m, now, retention) // as `keygate keys rotate` would
		if err != nil {
			t.Fatal(err)
		}
		if kr.Current() != first {
			t.Fatal("the Set changed before Reload")
		}
		if err := kr.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		cur := kr.Current()
		es, _ := cur.Signing(ES256)
		rs, _ := cur.Signing(RS256)
		if es.KeyID != newKids[0] || rs.KeyID != newKids[1] {
			t.Fatalf("signing kids %s %s, want %v", es.KeyID, rs.KeyID, newKids)
		}
		if kids := cur.KIDs(); len(kids) != 4 || !slices.Contains(kids, oldKids[0]) || !slices.Contains(kids, oldKids[1]) {
			t.Fatalf("JWKS kids %v lost the old keys %v", kids, oldKids)
		}
	})

	t.Run("Reload drops the retired keys once retention passes", func(t *testing.T) {
		now = now.Add(retention + time.Second)
		if err := kr.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if kids := kr.Current().KIDs(); !slices.Equal(kids, newKids) {
			t.Fatalf("JWKS kids %v, want %v", kids, newKids)
		}
	})

	t.Run("a failed Reload keeps the current Set", func(t *testing.T) {
		cur := kr.Current()
		s.mu.Lock()
		s.keys = append(s.keys, storage.SigningKey{KID: "bogus", Alg: ES256, PublicJWK: []byte("{}"), CreatedAt: now})
		s.mu.Unlock()
		if err := kr.Reload(ctx); err == nil {
			t.Fatal("Reload accepted a corrupt row")
		}
		if kr.Current() != cur {
			t.Fatal("a failed Reload replaced the Set")
		}
	})
}
