package mfa

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// WebAuthnConfig is the relying party keygate is and its key policy.
type WebAuthnConfig struct {
	// Origins are the only origins a ceremony may come from. The first one's
	// host is the RP ID. Any other origin — a look-alike site, a phishing
	// proxy on another port — is refused by signature-checked client data.
	Origins []string
	// HardwareAAGUIDs, when set, is the attestation policy for phrh: only
	// keys of these models, whose attestation verified, count as
	// hardware-bound. Empty: every device-bound key does.
	HardwareAAGUIDs []uuid.UUID
	// Metadata, when set, is the verified FIDO metadata BLOB: registration
	// verifies attestation chains against it (which is what makes a key
	// Attested), refuses models it reports compromised, and names keys.
	Metadata *MDS
}

// ceremonyTimeout bounds how long a challenge stays valid.
const ceremonyTimeout = 5 * time.Minute

// Passkeys holds the one webauthn.WebAuthn, built at start and never
// written afterwards: per-request choices go through per-call options.
type Passkeys struct {
	wa  *webauthn.WebAuthn
	cfg WebAuthnConfig
}

func NewPasskeys(cfg WebAuthnConfig) (*Passkeys, error) {
	if len(cfg.Origins) == 0 {
		return nil, errors.New("webauthn: no origin configured")
	}
	u, err := url.Parse(cfg.Origins[0])
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("webauthn: origin %q is not a URL", cfg.Origins[0])
	}
	waCfg := &webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: "keygate",
		RPOrigins:     cfg.Origins,
		// Direct attestation lets a key prove its model for phrh; keys that
		// will not say are still accepted, as phr.
		AttestationPreference: protocol.PreferDirectAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTimeout, TimeoutUVD: ceremonyTimeout},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTimeout, TimeoutUVD: ceremonyTimeout},
		},
	}
	if cfg.Metadata != nil {
		waCfg.MDS = cfg.Metadata.provider
		// A model compromised now cannot be registered, whatever its
		// attestation says (a browser may strip it to none); its keys
		// already registered are disabled by DisableCompromisedKeys.
		var ids []uuid.UUID
		for _, m := range cfg.Metadata.Compromised(time.Now()) {
			ids = append(ids, m.AAGUID)
		}
		if len(ids) > 0 {
			waCfg.Filtering = &webauthn.FilteringConfig{ProhibitedAAGUIDs: ids}
		}
	}
	wa, err := webauthn.New(waCfg)
	if err != nil {
		return nil, err
	}
	return &Passkeys{wa: wa, cfg: cfg}, nil
}

// waUser adapts a user and their usable credentials to go-webauthn. The
// user handle is the user id: random, stable, no personal data.
type waUser struct {
	u     storage.User
	creds []storage.WebAuthnCredential
}

func (w waUser) WebAuthnID() []byte          { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string        { return w.u.Email }
func (w waUser) WebAuthnDisplayName() string { return cmpOr(w.u.Name, w.u.Email) }

// WebAuthnCredentials lists only enabled credentials: a disabled key is
// unknown to every ceremony.
func (w waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(w.creds))
	for _, c := range w.creds {
		if c.DisabledAt.IsZero() {
			out = append(out, toLib(c))
		}
	}
	return out
}

func (w waUser) descriptors() []protocol.CredentialDescriptor {
	var out []protocol.CredentialDescriptor
	for _, c := range w.WebAuthnCredentials() {
		out = append(out, c.Descriptor())
	}
	return out
}

func toLib(c storage.WebAuthnCredential) webauthn.Credential {
	var transports []protocol.AuthenticatorTransport
	for _, t := range c.Transports {
		transports = append(transports, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{
		ID: c.ID, PublicKey: c.PublicKey,
		AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		Transport: transports,
		Flags:     webauthn.CredentialFlags{UserPresent: true, BackupEligible: c.BackupEligible, BackupState: c.BackupState},
		Authenticator: webauthn.Authenticator{
			AAGUID: c.AAGUID, SignCount: c.SignCount,
			Attachment: protocol.AuthenticatorAttachment(c.Attachment),
		},
	}
}

// stored is a credential CreateCredential has just returned, as we store
// it: fromLib, plus Attested when its attestation verified against the
// metadata trust roots (see MDS.attested for the rule).
func (p *Passkeys) stored(userID, name string, c *webauthn.Credential, discoverable bool, now time.Time) storage.WebAuthnCredential {
	s := fromLib(userID, name, c, discoverable, now)
	s.Attested = p.cfg.Metadata.attested(c)
	return s
}

// fromLib is a newly registered credential as we store it, never Attested:
// only Passkeys.stored knows the metadata that decides that.
func fromLib(userID, name string, c *webauthn.Credential, discoverable bool, now time.Time) storage.WebAuthnCredential {
	var transports []string
	for _, t := range c.Transport {
		transports = append(transports, string(t))
	}
	return storage.WebAuthnCredential{
		ID: c.ID, UserID: userID, Name: name, AAGUID: c.Authenticator.AAGUID, PublicKey: c.PublicKey,
		AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		Transports: transports, SignCount: c.Authenticator.SignCount,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState,
		Discoverable: discoverable, Attachment: string(c.Authenticator.Attachment),
		CreatedAt: now,
	}
}

// Assurance is what an assertion with c proves: phr always (the signature
// is bound to our origin), phrh when the key cannot leave its device and
// meets the attestation policy; amr says hwk for device-bound keys and swk
// for synced passkeys, after pwd when a password came first, or with user
// when the key's user verification stood in for it.
func (p *Passkeys) Assurance(c storage.WebAuthnCredential, afterPassword bool) (acr string, amr []string) {
	method := "hwk"
	if c.BackupEligible {
		method = "swk"
	}
	acr = session.ACRPhr
	if p.hardwareBound(c) {
		acr = session.ACRPhrh
	}
	if afterPassword {
		return acr, []string{"pwd", method}
	}
	return acr, []string{method, "user"}
}

func (p *Passkeys) hardwareBound(c storage.WebAuthnCredential) bool {
	if c.BackupEligible {
		return false
	}
	if len(p.cfg.HardwareAAGUIDs) == 0 {
		return true
	}
	if !c.Attested {
		return false
	}
	id, err := uuid.FromBytes(c.AAGUID)
	return err == nil && slices.Contains(p.cfg.HardwareAAGUIDs, id)
}

// knownModels names a few common authenticators by AAGUID, so a new key
// gets a recognisable default name without a metadata file.
var knownModels = map[string]string{
	"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
	"ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
	"fa2b99dc-9e39-4257-8f92-4a30d23c4118": "YubiKey 5 Series with NFC",
	"2fc0579f-8113-47ea-b116-bb5a8db9202a": "YubiKey 5 Series with NFC",
	"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
	"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
	"08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
	"bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
	"d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
	"adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
}

// ModelName is the known model of aaguid, or "": the metadata BLOB's
// description when one is configured and lists it, else the built-in
// table's name.
func (p *Passkeys) ModelName(aaguid []byte) string {
	if m := p.cfg.Metadata.ModelName(aaguid); m != "" {
		return m
	}
	return ModelName(aaguid)
}

// ModelName is the built-in table's name for aaguid, or "".
func ModelName(aaguid []byte) string {
	id, err := uuid.FromBytes(aaguid)
	if err != nil {
		return ""
	}
	return knownModels[id.String()]
}

// defaultName is the name a new key gets when the user gives none, its
// model named by the metadata BLOB or the built-in table.
func (p *Passkeys) defaultName(c storage.WebAuthnCredential) string {
	return nameFor(c, p.ModelName(c.AAGUID))
}

func nameFor(c storage.WebAuthnCredential, model string) string {
	if model != "" {
		return model
	}
	if c.BackupEligible {
		return "Passkey"
	}
	return "Security key"
}

// findCredential returns the stored credential an assertion used.
func findCredential(creds []storage.WebAuthnCredential, id []byte) (storage.WebAuthnCredential, bool) {
	for _, c := range creds {
		if bytes.Equal(c.ID, id) {
			return c, true
		}
	}
	return storage.WebAuthnCredential{}, false
}

// ceremonyError turns a go-webauthn error into a reason for the audit log.
func ceremonyError(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		// DevInfo names the actual cause (an RP ID hash or origin
		// mismatch); it holds hashes and origins, never secrets.
		reason := strings.TrimSpace(pe.Type + ": " + pe.Details)
		if pe.DevInfo != "" {
			reason += " (" + pe.DevInfo + ")"
		}
		return reason
	}
	return err.Error()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func aaguidString(b []byte) string {
	id, err := uuid.FromBytes(b)
	if err != nil {
		return ""
	}
	return id.String()
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func uintString(n uint32) string { return fmt.Sprint(n) }
