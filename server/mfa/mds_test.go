package mfa

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

var (
	// aaguidListed is also in the built-in table (as a YubiKey): the
	// metadata's name must win.
	aaguidListed   = uuid.MustParse("cb69481e-8ff7-4039-93ec-0a2729a154a8")
	aaguidRevoked  = uuid.MustParse("4b1d5ec1-7a6e-4c0e-9d1f-5e11a5ed0b0e")
	aaguidUnlisted = uuid.MustParse("0a9e8f7d-6c5b-4a39-8271-605f4e3d2c1b")
)

const testOrigin = "https://id.example.com"

// issue makes a certificate from tmpl, signed by parent (self-signed when
// parent is nil), with a fresh P-256 key, valid around the real clock:
// the decoder and go-webauthn check validity against time.Now.
func issue(t testing.TB, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.BasicConstraintsValid = true
	if tmpl.IsCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func newCA(t testing.TB, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	return issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true}, parent, parentKey)
}

// attestationCert is a packed attestation certificate (WebAuthn §8.2.1).
func attestationCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	return issue(t, &x509.Certificate{Subject: pkix.Name{Country: []string{"SE"}, Organization: []string{"Example Vendor"},
		OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "Example Key attestation"}}, ca, caKey)
}

func b64(c *x509.Certificate) string { return base64.StdEncoding.EncodeToString(c.Raw) }

// mdsFixture is a FIDO MDS3 set-up made at test time: a BLOB root CA, an
// intermediate and a signing certificate (as the FIDO Alliance's chain
// goes), another root that signed nothing, and an attestation root CA the
// listed models' statements name.
type mdsFixture struct {
	dir                  string
	root, otherRoot      *x509.Certificate
	signer               *ecdsa.PrivateKey
	x5c                  []string
	attRoot, rogueRoot   *x509.Certificate
	attRootKey, rogueKey *ecdsa.PrivateKey
}

func newMDSFixture(t testing.TB) *mdsFixture {
	t.Helper()
	f := &mdsFixture{dir: t.TempDir()}
	root, rootKey := newCA(t, "Test MDS3 BLOB root", nil, nil)
	inter, interKey := newCA(t, "Test MDS3 BLOB CA", root, rootKey)
	leaf, leafKey := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "mds.example.test"}}, inter, interKey)
	f.root, f.signer, f.x5c = root, leafKey, []string{b64(leaf), b64(inter)}
	f.otherRoot, _ = newCA(t, "Some other root", nil, nil)
	f.attRoot, f.attRootKey = newCA(t, "Example Vendor attestation root", nil, nil)
	f.rogueRoot, f.rogueKey = newCA(t, "Not the vendor", nil, nil)
	return f
}

// entry is one MDS3 BLOB payload entry of a FIDO2 model whose attestation
// chains to the fixture's attestation root.
func (f *mdsFixture) entry(id uuid.UUID, description string, reports ...map[string]any) map[string]any {
	return map[string]any{
		"aaguid": id.String(),
		"metadataStatement": map[string]any{
			"aaguid": id.String(), "description": description, "protocolFamily": "fido2", "schema": 3,
			"attestationTypes":            []string{"basic_full"},
			"attestationRootCertificates": []string{b64(f.attRoot)},
		},
		"statusReports":          reports,
		"timeOfLastStatusChange": "2021-05-01",
	}
}

func report(status metadata.AuthenticatorStatus, effective string) map[string]any {
	r := map[string]any{"status": string(status)}
	if effective != "" {
		r["effectiveDate"] = effective
	}
	return r
}

// twoModels is the BLOB payload of the tests: a certified model and a
// revoked one.
func (f *mdsFixture) twoModels() map[string]any {
	return map[string]any{
		"legalHeader": "test metadata, no legal value", "no": 42, "nextUpdate": "2031-01-01",
		"entries": []any{
			f.entry(aaguidListed, "Example Key 5 NFC",
				report(metadata.NotFidoCertified, "2019-01-01"), report(metadata.FidoCertified, "2020-02-01")),
			f.entry(aaguidRevoked, "Leaky Key",
				report(metadata.FidoCertifiedL1, "2019-01-01"), report(metadata.Revoked, "2021-05-01")),
		},
	}
}

// sign makes the BLOB: a JWT signed with ES256 whose x5c header carries
// the signing certificate and its intermediate (nil x5c: no header).
func (f *mdsFixture) sign(t *testing.T, payload map[string]any, x5c []string) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return f.signBytes(t, b, x5c)
}

// signBytes is sign for a payload as it is, JSON or not.
func (f *mdsFixture) signBytes(t testing.TB, payload []byte, x5c []string) string {
	t.Helper()
	header := map[string]any{"alg": "ES256", "typ": "JWT"}
	if x5c != nil {
		header["x5c"] = x5c
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, f.signer, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (f *mdsFixture) write(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// load writes the two-model BLOB and its root, and loads them.
func (f *mdsFixture) load(t *testing.T) *MDS {
	t.Helper()
	m, err := LoadMDS(f.write(t, "blob.jwt", []byte(f.sign(t, f.twoModels(), f.x5c))), f.write(t, "root.pem", pemOf(f.root)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadMDS(t *testing.T) {
	f := newMDSFixture(t)
	blob := f.sign(t, f.twoModels(), f.x5c)
	parts := strings.Split(blob, ".")
	tampered := f.twoModels()
	tampered["entries"].([]any)[1].(map[string]any)["statusReports"] = []any{report(metadata.FidoCertifiedL1, "2019-01-01")}
	tamperedPayload, err := json.Marshal(tampered)
	if err != nil {
		t.Fatal(err)
	}
	badSig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	badSig[5] ^= 1

	cases := []struct {
		name    string
		blob    string
		root    []byte // nil: no root file, the FIDO Alliance's root
		wantErr string // "" for loaded
	}{
		{"a BLOB signed by a chain to the configured root verifies", blob, pemOf(f.root), ""},
		{"the root may be given as DER rather than PEM", blob, f.root.Raw, ""},
		{"surrounding whitespace in the BLOB file is ignored", "\n" + blob + "\n", pemOf(f.root), ""},
		{"the same BLOB is refused under another root", blob, pemOf(f.otherRoot),
			"not a JWT signed by a certificate chaining to the configured root certificate"},
		{"without a root file the FIDO Alliance's root is used, and a test BLOB is refused", blob, nil,
			"chaining to the FIDO Alliance MDS3 root"},
		{"a BLOB whose payload was changed after signing is refused",
			parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2], pemOf(f.root),
			"not a JWT signed"},
		{"a BLOB whose signature was changed is refused",
			parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(badSig), pemOf(f.root), "not a JWT signed"},
		{"a BLOB without its x5c chain is refused: the root did not sign it", f.sign(t, f.twoModels(), nil), pemOf(f.root),
			"not a JWT signed"},
		{"a BLOB whose chain lacks the intermediate is refused", f.sign(t, f.twoModels(), f.x5c[:1]), pemOf(f.root),
			"not a JWT signed"},
		{"a file that is not a JWT is refused", "not a jwt", pemOf(f.root), "not a JWT signed"},
		{"a root file that holds no certificate is refused", blob, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
			"metadata root certificate"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			blobPath := f.write(t, "blob"+string(rune('a'+i))+".jwt", []byte(c.blob))
			rootPath := ""
			if c.root != nil {
				rootPath = f.write(t, "root"+string(rune('a'+i)), c.root)
			}
			m, err := LoadMDS(blobPath, rootPath)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadMDS: %v", err)
				}
				if m.Len() != 2 || m.Number() != 42 || !m.NextUpdate().Equal(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)) {
					t.Fatalf("loaded %d models, number %d, next update %v", m.Len(), m.Number(), m.NextUpdate())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("LoadMDS = %v, want an error saying %q", err, c.wantErr)
			}
		})
	}

	t.Run("a missing BLOB file is an error naming it", func(t *testing.T) {
		_, err := LoadMDS(filepath.Join(f.dir, "absent.jwt"), "")
		if err == nil || !strings.Contains(err.Error(), "read metadata BLOB") || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("LoadMDS = %v", err)
		}
	})
}

func TestMDSModelNames(t *testing.T) {
	f := newMDSFixture(t)
	p, err := NewPasskeys(WebAuthnConfig{Origins: []string{testOrigin}, Metadata: f.load(t)})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := NewPasskeys(WebAuthnConfig{Origins: []string{testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	windowsHello := uuid.MustParse("08987058-cadc-4b81-b6e1-30de50dcbe96")
	cases := []struct {
		name        string
		p           *Passkeys
		aaguid      []byte
		synced      bool
		wantModel   string
		wantDefault string
	}{
		{"the metadata's description names a listed model, before the built-in table", p, aaguidListed[:], false, "Example Key 5 NFC", "Example Key 5 NFC"},
		{"a revoked model is still named", p, aaguidRevoked[:], false, "Leaky Key", "Leaky Key"},
		{"a model only the built-in table knows keeps its name", p, windowsHello[:], false, "Windows Hello", "Windows Hello"},
		{"an unknown model has no name, and a device-bound key is a security key", p, aaguidUnlisted[:], false, "", "Security key"},
		{"an unknown synced key is a passkey", p, aaguidUnlisted[:], true, "", "Passkey"},
		{"a zero AAGUID names nothing", p, make([]byte, 16), false, "", "Security key"},
		{"a malformed AAGUID names nothing", p, []byte{1, 2, 3}, false, "", "Security key"},
		{"without metadata the built-in table names the listed AAGUID", bare, aaguidListed[:], false, "YubiKey 5 Series", "YubiKey 5 Series"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.ModelName(c.aaguid); got != c.wantModel {
				t.Errorf("ModelName = %q, want %q", got, c.wantModel)
			}
			cred := storage.WebAuthnCredential{AAGUID: c.aaguid, BackupEligible: c.synced}
			if got := c.p.defaultName(cred); got != c.wantDefault {
				t.Errorf("defaultName = %q, want %q", got, c.wantDefault)
			}
		})
	}
}

func TestMDSCompromised(t *testing.T) {
	f := newMDSFixture(t)
	m := f.load(t)

	t.Run("the compromised set of the two-model BLOB is exactly the revoked model", func(t *testing.T) {
		got := m.Compromised(t0)
		want := []CompromisedModel{{AAGUID: aaguidRevoked, Model: "Leaky Key", Status: metadata.Revoked}}
		if !slices.Equal(got, want) {
			t.Fatalf("Compromised = %+v, want %+v", got, want)
		}
	})

	// One BLOB with a model per rule; each is checked on its own AAGUID.
	ids := map[string]uuid.UUID{}
	var entries []any
	add := func(name string, reports ...map[string]any) {
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(name))
		ids[name] = id
		entries = append(entries, f.entry(id, name, reports...))
	}
	for _, s := range compromisedStatuses {
		add(string(s), report(metadata.FidoCertified, "2019-01-01"), report(s, "2021-01-01"))
	}
	add("superseded", report(metadata.UserVerificationBypass, "2020-01-01"), report(metadata.FidoCertifiedL1, "2022-01-01"))
	add("update", report(metadata.AttestationKeyCompromise, "2020-01-01"), report(metadata.UpdateAvailable, "2021-01-01"))
	add("future", report(metadata.FidoCertified, "2020-01-01"), report(metadata.Revoked, "2040-01-01"))
	add("sunset", map[string]any{"status": "REVOKED", "effectiveDate": "2020-01-01", "sunsetDate": "2021-01-01"})
	add("undated", report(metadata.FidoCertified, ""), report(metadata.Revoked, ""))
	add("retired", report(metadata.FidoCertified, "2019-01-01"), report(metadata.Retired, "2021-01-01"))
	add("no reports")
	payload := map[string]any{"legalHeader": "x", "no": 1, "nextUpdate": "2031-01-01", "entries": entries}
	rules, err := LoadMDS(f.write(t, "rules.jwt", []byte(f.sign(t, payload, f.x5c))), f.write(t, "rules-root.pem", pemOf(f.root)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		model      string
		at         time.Time
		wantStatus metadata.AuthenticatorStatus
		wantBad    bool
	}{
		{"REVOKED is compromised", string(metadata.Revoked), t0, metadata.Revoked, true},
		{"USER_VERIFICATION_BYPASS is compromised", string(metadata.UserVerificationBypass), t0, metadata.UserVerificationBypass, true},
		{"ATTESTATION_KEY_COMPROMISE is compromised", string(metadata.AttestationKeyCompromise), t0, metadata.AttestationKeyCompromise, true},
		{"USER_KEY_REMOTE_COMPROMISE is compromised", string(metadata.UserKeyRemoteCompromise), t0, metadata.UserKeyRemoteCompromise, true},
		{"USER_KEY_PHYSICAL_COMPROMISE is compromised", string(metadata.UserKeyPhysicalCompromise), t0, metadata.UserKeyPhysicalCompromise, true},
		{"a compromise superseded by a later certification is not current", "superseded", t0, metadata.FidoCertifiedL1, false},
		{"a compromise followed by UPDATE_AVAILABLE is not current", "update", t0, metadata.UpdateAvailable, false},
		{"a revocation effective in the future does not count yet", "future", t0, metadata.FidoCertified, false},
		{"it counts once its date has come", "future", time.Date(2040, 1, 2, 0, 0, 0, 0, time.UTC), metadata.Revoked, true},
		{"a revocation past its sunset date is no status at all", "sunset", t0, "", false},
		{"undated reports count in document order", "undated", t0, metadata.Revoked, true},
		{"RETIRED is not a compromise", "retired", t0, metadata.Retired, false},
		{"a model with no reports has no status", "no reports", t0, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := ids[c.model]
			status, bad := rules.Status(id[:], c.at)
			if status != c.wantStatus || bad != c.wantBad {
				t.Fatalf("Status = %q, %v; want %q, %v", status, bad, c.wantStatus, c.wantBad)
			}
			listed := slices.ContainsFunc(rules.Compromised(c.at), func(m CompromisedModel) bool { return m.AAGUID == id })
			if listed != c.wantBad {
				t.Fatalf("in Compromised: %v, want %v", listed, c.wantBad)
			}
		})
	}
	t.Run("a model the BLOB does not list has no status", func(t *testing.T) {
		if status, bad := rules.Status(aaguidUnlisted[:], t0); status != "" || bad {
			t.Fatalf("Status = %q, %v", status, bad)
		}
	})
}

// attestation is how the test authenticator answers a registration.
type attestation struct {
	format string // "none", "self" (packed, no x5c) or "full" (packed with x5c)
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
}

// register runs a registration ceremony through go-webauthn, as
// finishRegistration does, with an authenticator of model aaguid that
// answers with att.
func register(t *testing.T, p *Passkeys, aaguid uuid.UUID, att attestation) (*webauthn.Credential, error) {
	t.Helper()
	user := waUser{u: storage.User{ID: "u_ann", Email: "ann@example.com"}}
	_, data, err := p.wa.BeginRegistration(user)
	if err != nil {
		t.Fatal(err)
	}
	credKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := credKey.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:]})
	if err != nil {
		t.Fatal(err)
	}
	credID := make([]byte, 16)
	rand.Read(credID)
	rpIDHash := sha256.Sum256([]byte("id.example.com"))
	authData := slices.Concat(rpIDHash[:], []byte{0x45, 0, 0, 0, 0}, aaguid[:], []byte{0, byte(len(credID))}, credID, cose)
	clientData, err := json.Marshal(map[string]string{"type": "webauthn.create", "challenge": data.Challenge, "origin": testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	clientDataHash := sha256.Sum256(clientData)
	signed := sha256.Sum256(slices.Concat(authData, clientDataHash[:]))
	format, stmt := "packed", map[string]any{"alg": -7}
	switch att.format {
	case "none":
		format, stmt = "none", map[string]any{}
	case "self":
		stmt["sig"], err = ecdsa.SignASN1(rand.Reader, credKey, signed[:])
	case "full":
		stmt["sig"], err = ecdsa.SignASN1(rand.Reader, att.key, signed[:])
		stmt["x5c"] = [][]byte{att.cert.Raw}
	}
	if err != nil {
		t.Fatal(err)
	}
	object, err := webauthncbor.Marshal(map[string]any{"fmt": format, "attStmt": stmt, "authData": authData})
	if err != nil {
		t.Fatal(err)
	}
	id := base64.RawURLEncoding.EncodeToString(credID)
	body, err := json.Marshal(map[string]any{"id": id, "rawId": id, "type": "public-key", "response": map[string]string{
		"attestationObject": base64.RawURLEncoding.EncodeToString(object),
		"clientDataJSON":    base64.RawURLEncoding.EncodeToString(clientData)}})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return p.wa.CreateCredential(user, *data, parsed)
}

func TestRegistrationAgainstMetadata(t *testing.T) {
	f := newMDSFixture(t)
	m := f.load(t)
	withMDS, err := NewPasskeys(WebAuthnConfig{Origins: []string{testOrigin}, Metadata: m, HardwareAAGUIDs: []uuid.UUID{aaguidListed}})
	if err != nil {
		t.Fatal(err)
	}
	without, err := NewPasskeys(WebAuthnConfig{Origins: []string{testOrigin}, HardwareAAGUIDs: []uuid.UUID{aaguidListed}})
	if err != nil {
		t.Fatal(err)
	}
	vendorCert, vendorKey := attestationCert(t, f.attRoot, f.attRootKey)
	rogueCert, rogueKey := attestationCert(t, f.rogueRoot, f.rogueKey)
	full := attestation{format: "full", cert: vendorCert, key: vendorKey}

	cases := []struct {
		name         string
		p            *Passkeys
		aaguid       uuid.UUID
		att          attestation
		wantRefusal  string // "" for registered
		wantType     string
		wantAttested bool
	}{
		{"a full attestation chaining to the model's root in the metadata is attested", withMDS, aaguidListed, full, "", "basic_full", true},
		{"a full attestation from a CA the model's statement does not name is refused", withMDS, aaguidListed,
			attestation{format: "full", cert: rogueCert, key: rogueKey}, "trust chain", "", false},
		{"a full attestation of a model the metadata does not list registers, unattested", withMDS, aaguidUnlisted, full, "", "basic_full", false},
		{"a self attestation registers, unattested: the key vouches for itself", withMDS, aaguidListed, attestation{format: "self"}, "", "basic_surrogate", false},
		{"no attestation registers, unattested", withMDS, aaguidListed, attestation{format: "none"}, "", "none", false},
		{"a key of the revoked model is refused even with a valid chain", withMDS, aaguidRevoked, full, "prohibited", "", false},
		{"a key of the revoked model is refused when it gives no attestation", withMDS, aaguidRevoked, attestation{format: "none"}, "prohibited", "", false},
		{"without metadata a full attestation is never attested: nothing checked its chain", without, aaguidListed, full, "", "basic_full", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cred, err := register(t, c.p, c.aaguid, c.att)
			if c.wantRefusal != "" {
				var pe *protocol.Error
				if !errors.As(err, &pe) || !strings.Contains(pe.Details+" "+pe.DevInfo, c.wantRefusal) {
					t.Fatalf("CreateCredential = %v, want a refusal saying %q", err, c.wantRefusal)
				}
				return
			}
			if err != nil {
				var pe *protocol.Error
				errors.As(err, &pe)
				t.Fatalf("CreateCredential: %v (%+v)", err, pe)
			}
			if cred.AttestationType != c.wantType {
				t.Fatalf("attestation type %q, want %q", cred.AttestationType, c.wantType)
			}
			stored := c.p.stored("u_ann", "k", cred, false, t0)
			if stored.Attested != c.wantAttested {
				t.Fatalf("Attested = %v, want %v", stored.Attested, c.wantAttested)
			}
			// The phrh allow-list names aaguidListed: only an attested key
			// of it is hardware-bound.
			wantACR := session.ACRPhr
			if c.wantAttested {
				wantACR = session.ACRPhrh
			}
			if acr, _ := c.p.Assurance(stored, true); acr != wantACR {
				t.Fatalf("acr %q, want %q", acr, wantACR)
			}
		})
	}
}

func TestDisableCompromisedKeys(t *testing.T) {
	ctx := t.Context()
	f := newMDSFixture(t)
	m := f.load(t)
	s := sqlitetest.Open(t)
	rec := audit.NewRecorder(s, slog.New(slog.DiscardHandler), []string{"https://alerts.example.com/hook"}, func() time.Time { return t0 })
	addUser(t, s, "u_ann")
	addUser(t, s, "u_bob")
	keys := []storage.WebAuthnCredential{
		{ID: []byte("ann-leaky"), UserID: "u_ann", Name: "Ann's leaky key", AAGUID: aaguidRevoked[:]},
		{ID: []byte("ann-good"), UserID: "u_ann", Name: "Ann's good key", AAGUID: aaguidListed[:]},
		{ID: []byte("bob-leaky"), UserID: "u_bob", Name: "Bob's leaky key", AAGUID: aaguidRevoked[:]},
		{ID: []byte("bob-cloned"), UserID: "u_bob", Name: "Bob's cloned key", AAGUID: aaguidRevoked[:]},
		{ID: []byte("bob-other"), UserID: "u_bob", Name: "Bob's passkey", AAGUID: aaguidUnlisted[:], BackupEligible: true},
	}
	for i, k := range keys {
		k.PublicKey, k.CreatedAt = []byte("cose"), t0.Add(time.Duration(i)*time.Minute)
		if err := s.CreateWebAuthnCredential(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	const cloneReason = "sign count went backwards"
	if err := s.DisableWebAuthnCredential(ctx, []byte("bob-cloned"), cloneReason, t0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)

	n, err := DisableCompromisedKeys(ctx, s, rec, m, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("disabled %d keys, want 2", n)
	}
	revokedReason := "this key model was reported compromised (REVOKED); enrol another key"
	cases := []struct {
		name       string
		id         string
		wantReason string // "" for still enabled
		wantAt     time.Time
	}{
		{"an enabled key of the revoked model is disabled, saying why", "ann-leaky", revokedReason, now},
		{"another user's key of that model is disabled too", "bob-leaky", revokedReason, now},
		{"a key of that model disabled before keeps its first reason", "bob-cloned", cloneReason, t0},
		{"a key of a certified model stays enabled", "ann-good", "", time.Time{}},
		{"a key of a model the metadata does not list stays enabled", "bob-other", "", time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.GetWebAuthnCredential(ctx, []byte(c.id))
			if err != nil {
				t.Fatal(err)
			}
			if got.DisabledReason != c.wantReason || !got.DisabledAt.Equal(c.wantAt) {
				t.Fatalf("disabled %v %q, want %v %q", got.DisabledAt, got.DisabledReason, c.wantAt, c.wantReason)
			}
		})
	}

	t.Run("one alerting audit event is written per disabled key, naming model, status and action", func(t *testing.T) {
		events, err := s.ListAudit(ctx, storage.AuditFilter{Type: audit.WebAuthnModelCompromised})
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, e := range events {
			users = append(users, e.UserID)
			d := e.Details
			if e.Actor != "system" || e.Result != audit.Denied || d["model"] != "Leaky Key" || d["status"] != "REVOKED" ||
				d["action"] != "key disabled" || d["aaguid"] != aaguidRevoked.String() || !e.Time.Equal(now) {
				t.Errorf("event %+v", e)
			}
		}
		slices.Sort(users)
		if !slices.Equal(users, []string{"u_ann", "u_bob"}) {
			t.Fatalf("events for %v, want one each for u_ann and u_bob", users)
		}
		due, err := storage.PendingOutbox(ctx, s, now.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		alerts := 0
		for _, msg := range due {
			if msg.Kind == audit.OutboxAlert && bytes.Contains(msg.Payload, []byte(audit.WebAuthnModelCompromised)) {
				alerts++
			}
		}
		if alerts != 2 {
			t.Fatalf("%d alerts queued, want 2", alerts)
		}
	})

	t.Run("a second start disables nothing more and writes no event", func(t *testing.T) {
		n, err := DisableCompromisedKeys(ctx, s, rec, m, now.Add(time.Hour))
		if err != nil || n != 0 {
			t.Fatalf("DisableCompromisedKeys = %d, %v", n, err)
		}
		events, err := s.ListAudit(ctx, storage.AuditFilter{Type: audit.WebAuthnModelCompromised})
		if err != nil || len(events) != 2 {
			t.Fatalf("%d events, %v; want the 2 of the first start", len(events), err)
		}
	})

	t.Run("a disabled key is unknown to ceremonies", func(t *testing.T) {
		creds, err := s.ListWebAuthnCredentials(ctx, "u_ann")
		if err != nil {
			t.Fatal(err)
		}
		usable := waUser{u: storage.User{ID: "u_ann"}, creds: creds}.WebAuthnCredentials()
		if len(usable) != 1 || string(usable[0].ID) != "ann-good" {
			t.Fatalf("usable keys %v, want only ann-good", usable)
		}
	})
}
