package mfa

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/metadata/providers/memory"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/go-webauthn/x/revoke"
	"github.com/google/uuid"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// MDS is a FIDO Metadata Service (MDS3) BLOB, verified and parsed once at
// start from a file the operator fetched: keygate never downloads it. It
// names key models, lets registration verify attestation trust chains, and
// says which models are compromised. It is never written after loading.
type MDS struct {
	provider   metadata.Provider
	entries    map[uuid.UUID]*metadata.Entry
	number     int
	nextUpdate time.Time
	skipped    []string
}

// compromisedStatuses are the statuses that make every key of a model
// untrustworthy: the FIDO Alliance revoked it, or its user verification,
// attestation key or user keys can be bypassed or extracted.
var compromisedStatuses = []metadata.AuthenticatorStatus{
	metadata.Revoked,
	metadata.UserVerificationBypass,
	metadata.AttestationKeyCompromise,
	metadata.UserKeyRemoteCompromise,
	metadata.UserKeyPhysicalCompromise,
}

// LoadMDS reads and verifies the BLOB at blobPath against the root
// certificate at rootPath (PEM or DER), or against the FIDO Alliance's MDS3
// root that go-webauthn ships (metadata.ProductionMDSRoot) when rootPath
// is empty.
func LoadMDS(blobPath, rootPath string) (*MDS, error) {
	blob, err := os.ReadFile(blobPath)
	if err != nil {
		return nil, fmt.Errorf("read metadata BLOB: %w", err)
	}
	var root []byte
	if rootPath != "" {
		if root, err = os.ReadFile(rootPath); err != nil {
			return nil, fmt.Errorf("read metadata root certificate: %w", err)
		}
	}
	return ParseMDS(blob, root)
}

// ParseMDS verifies blob, a JWT signed by a certificate chain in its x5c
// header, against root (a PEM or DER certificate; nil for the FIDO
// Alliance's root) with go-webauthn's metadata decoder, and parses it.
// Entries that do not parse are skipped, not fatal: the FIDO Alliance's
// BLOB has carried a few malformed ones; Skipped names them.
func ParseMDS(blob, root []byte) (*MDS, error) {
	opts := []metadata.DecoderOption{metadata.WithIgnoreEntryParsingErrors()}
	signer := "the FIDO Alliance MDS3 root (GlobalSign Root R46)"
	if root != nil {
		der, err := certificateDER(root)
		if err != nil {
			return nil, fmt.Errorf("metadata root certificate: %w", err)
		}
		opts = append(opts, metadata.WithRootCertificate(base64.StdEncoding.EncodeToString(der)))
		signer = "the configured root certificate"
	}
	decoder, err := metadata.NewDecoder(opts...)
	if err != nil {
		return nil, err
	}
	noNetwork()
	payload, err := decoder.DecodeBytes(bytes.TrimSpace(blob))
	if err != nil {
		return nil, fmt.Errorf("metadata BLOB is not a JWT signed by a certificate chaining to %s: %w", signer, err)
	}
	md, err := decoder.Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("metadata BLOB: %w", err)
	}
	m := &MDS{entries: md.ToMap(), number: md.Parsed.Number, nextUpdate: md.Parsed.NextUpdate}
	for _, u := range md.Unparsed {
		m.skipped = append(m.skipped, cmpOr(u.AaGUID, "(no aaguid)")+": "+u.Error.Error())
	}
	m.provider, err = memory.New(
		memory.WithMetadata(m.entries),
		// A model the BLOB does not list, or a key that gives no AAGUID,
		// still registers, unattested: keygate accepts keys that will not
		// prove their model, as phr.
		memory.WithValidateEntry(false),
		memory.WithValidateEntryPermitZeroAAGUID(true),
		// A key that claims a listed model and presents an attestation
		// certificate must chain to that model's attestation roots, or its
		// registration is refused.
		memory.WithValidateTrustAnchor(true),
		// Status is keygate's policy, one rule for registration and sign-in:
		// Compromised, applied by NewPasskeys and DisableCompromisedKeys.
		// go-webauthn's own check would also refuse, at sign-in and with no
		// explanation, keys keygate has not disabled.
		memory.WithValidateStatus(false),
		// Only the trust chain decides Attested. The type check would refuse
		// at sign-in keys registered before the BLOB was configured whose
		// self attestation the model's statement does not list.
		memory.WithValidateAttestationTypes(false),
	)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// certificateDER accepts a PEM CERTIFICATE block or raw DER.
func certificateDER(b []byte) ([]byte, error) {
	der := b
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block is %q, want CERTIFICATE", block.Type)
		}
		der = block.Bytes
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, fmt.Errorf("not a PEM or DER certificate: %w", err)
	}
	return der, nil
}

var offline sync.Once

// noNetwork keeps the decoder off the network. Besides verifying the x5c
// chain, go-webauthn's decoder asks go-webauthn/x/revoke whether the
// signing certificates are revoked, which fetches CRLs and OCSP responses
// from the URLs in them. keygate makes no outbound requests, so those
// fetches fail at once, and revoke, failing soft, accepts the chain: the
// revocation check is left to whatever fetched the BLOB from the FIDO
// Alliance. revoke is used by nothing else in keygate.
func noNetwork() {
	offline.Do(func() { revoke.HTTPClient = &http.Client{Transport: refuseRoundTrip{}} })
}

type refuseRoundTrip struct{}

func (refuseRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("keygate makes no network requests (revocation check of %s skipped)", r.URL.Host)
}

// Number is the BLOB's serial number.
func (m *MDS) Number() int { return m.number }

// NextUpdate is the date by which the FIDO Alliance promised a newer BLOB.
func (m *MDS) NextUpdate() time.Time { return m.nextUpdate }

// Len is how many models the BLOB lists by AAGUID.
func (m *MDS) Len() int { return len(m.entries) }

// Skipped describes the entries that did not parse and were left out.
func (m *MDS) Skipped() []string { return slices.Clone(m.skipped) }

func (m *MDS) entry(aaguid []byte) *metadata.Entry {
	if m == nil {
		return nil
	}
	id, err := uuid.FromBytes(aaguid)
	if err != nil || id == uuid.Nil {
		return nil
	}
	return m.entries[id]
}

// ModelName is the BLOB's description of the model, or "".
func (m *MDS) ModelName(aaguid []byte) string {
	if e := m.entry(aaguid); e != nil {
		return cleanName(e.MetadataStatement.Description)
	}
	return ""
}

// Status is the model's current status at a time (of the reports in
// effect then, the latest by effective date, else the last listed: MDS3's
// current status, per go-webauthn's CurrentStatusReportAt), and whether
// that status makes the model compromised. A model the BLOB does
// not list, or that has no report in effect, has status "".
//
// Only the current status counts, as MDS3 defines it: a compromise the
// FIDO Alliance later superseded does not disable keys. A report bound to
// one batch certificate counts for the whole model: keygate does not keep
// the attestation certificates that would tell batches apart.
func (m *MDS) Status(aaguid []byte, at time.Time) (status metadata.AuthenticatorStatus, compromised bool) {
	e := m.entry(aaguid)
	if e == nil {
		return "", false
	}
	r := metadata.CurrentStatusReportAt(e.StatusReports, at)
	if r == nil {
		return "", false
	}
	return r.Status, metadata.IsUndesiredAuthenticatorStatusSlice(r.Status, compromisedStatuses)
}

// CompromisedModel is a model the BLOB reports compromised.
type CompromisedModel struct {
	AAGUID uuid.UUID
	Model  string
	Status metadata.AuthenticatorStatus
}

// Compromised lists the models compromised at a time, by AAGUID.
func (m *MDS) Compromised(at time.Time) []CompromisedModel {
	if m == nil {
		return nil
	}
	var out []CompromisedModel
	for id := range m.entries {
		if status, bad := m.Status(id[:], at); bad {
			out = append(out, CompromisedModel{AAGUID: id, Model: m.ModelName(id[:]), Status: status})
		}
	}
	slices.SortFunc(out, func(a, b CompromisedModel) int { return bytes.Compare(a.AAGUID[:], b.AAGUID[:]) })
	return out
}

// attested says whether go-webauthn, configured with this BLOB, verified
// the attestation of c, a credential CreateCredential has just returned,
// against the metadata trust roots. go-webauthn reports no such flag; it
// follows from what a successful CreateCredential implies:
//
//   - the attestation type conveys a certificate chain (basic_full, attca,
//     anonca: metadata's HasCertificateTrustPath). Self attestation
//     (basic_surrogate) is signed by the credential's own key and none is
//     nothing; neither proves a model;
//   - the AAGUID is not zero and the BLOB lists it. Only then does
//     go-webauthn's ValidateMetadata look for the trust anchor, and with
//     WithValidateTrustAnchor it verifies the x5c chain against that
//     entry's attestation root certificates, refusing the registration
//     when the chain does not verify.
//
// A credential registered while no BLOB was configured is never attested.
func (m *MDS) attested(c *webauthn.Credential) bool {
	if m == nil || c == nil {
		return false
	}
	types := metadata.AuthenticatorAttestationTypes{metadata.AuthenticatorAttestationType(c.AttestationType)}
	return types.HasCertificateTrustPath() && m.entry(c.Authenticator.AAGUID) != nil
}

// CompromisedReason is the DisabledReason of a key disabled because its
// model was reported compromised; the account page shows it.
func CompromisedReason(status metadata.AuthenticatorStatus) string {
	return fmt.Sprintf("this key model was reported compromised (%s); enrol another key", status)
}

// CredentialDisabler is the store DisableCompromisedKeys writes to.
type CredentialDisabler interface {
	storage.WebAuthnCredentials
	storage.Transactor
}

// DisableCompromisedKeys disables every enabled key of every model m
// reports compromised at now, and records one alerting audit event per key,
// in one transaction per model: a key is never disabled without its event.
// It runs at every start; keys it disabled before are not reported again.
// It returns how many keys it disabled, also when it fails part way.
func DisableCompromisedKeys(ctx context.Context, db CredentialDisabler, rec *audit.Recorder, m *MDS, now time.Time) (int, error) {
	total := 0
	for _, cm := range m.Compromised(now) {
		err := db.InTx(ctx, func(ctx context.Context) error {
			disabled, err := db.DisableWebAuthnByAAGUID(ctx, cm.AAGUID[:], CompromisedReason(cm.Status), now)
			if err != nil {
				return err
			}
			for _, c := range disabled {
				if err := rec.Record(ctx, storage.AuditEvent{Type: audit.WebAuthnModelCompromised, Time: now,
					Actor: "system", UserID: c.UserID, Result: audit.Denied, Details: map[string]string{
						"name": c.Name, "credential_id": base64.RawURLEncoding.EncodeToString(c.ID),
						"aaguid": cm.AAGUID.String(), "model": cm.Model, "status": string(cm.Status),
						"action": "key disabled"}}); err != nil {
					return err
				}
			}
			total += len(disabled)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("disable keys of %s (%s): %w", modelLabel(cm), cm.Status, err)
		}
	}
	return total, nil
}

func modelLabel(cm CompromisedModel) string {
	if cm.Model != "" {
		return fmt.Sprintf("%q %s", cm.Model, cm.AAGUID)
	}
	return cm.AAGUID.String()
}
