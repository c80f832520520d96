package mfa

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
)

// Challenge kinds.
const (
	kindRegistration = "registration"
	kindAssertion    = "assertion"
	kindPasswordless = "passwordless"
)

// freshness is how recent a key tap must be to add or remove a key from
// the account page: a stolen session alone cannot plant an attacker's key.
const freshness = 5 * time.Minute

// beginResponse is what the browser needs to call navigator.credentials.
type beginResponse struct {
	Challenge string `json:"challenge"`
	Options   any    `json:"options"`
}

// finishResponse tells the browser where to go next.
type finishResponse struct {
	Next          string   `json:"next"`
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

func jsonError(w http.ResponseWriter, _ *http.Request, status int, public string) {
	httpx.WriteJSON(w, status, map[string]string{"error": public})
}

// jsonSession loads the session of a JSON ceremony call and checks the
// CSRF token it must carry in a header (the pages put it on the button).
func (h *Handler) jsonSession(r *http.Request) (*session.Session, error) {
	if h.d.Passkeys == nil {
		return nil, errNoPasskeys
	}
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return nil, err
	}
	if !sess.ValidCSRF(r.Header.Get("X-CSRF-Token")) {
		return nil, httpx.Errorf(http.StatusForbidden, "The page expired. Reload it and try again.", nil)
	}
	return sess, nil
}

// saveChallenge stores a ceremony's session data, bound to this browser.
func (h *Handler) saveChallenge(ctx context.Context, sess *session.Session, kind, userID, flowID string, data *webauthn.SessionData) (string, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	id, err := keys.RandomToken(24)
	if err != nil {
		return "", err
	}
	now := h.d.Now()
	c := storage.Challenge{ID: id, SessionHash: sess.IDHash(), UserID: userID,
		Kind: kind, FlowID: flowID, Data: raw, CreatedAt: now, ExpiresAt: now.Add(ceremonyTimeout)}
	// Challenge writes are transactions of their own, so that they share
	// group commits with concurrent sign-ins instead of an fsync each.
	return id, h.d.Store.InTx(ctx, func(ctx context.Context) error { return h.d.Store.CreateChallenge(ctx, c) })
}

// errNoPasskeys: WebAuthn needs a domain name; an issuer at an IP address
// cannot have security keys.
var errNoPasskeys = httpx.Errorf(http.StatusServiceUnavailable, "Security keys and passkeys are not available at this address. Reach keygate by its domain name.", nil)

var errChallenge = httpx.Errorf(http.StatusBadRequest, "This request expired or was already used. Try again.", nil)

// takeChallenge consumes the challenge named in the URL: once, in this
// browser session, for this kind of ceremony.
func (h *Handler) takeChallenge(r *http.Request, sess *session.Session, kind string) (storage.Challenge, webauthn.SessionData, error) {
	var data webauthn.SessionData
	// Not in a transaction of its own: an expired challenge is deleted
	// and answered ErrNotFound, which would roll that delete back.
	c, err := h.d.Store.ConsumeChallenge(r.Context(), r.URL.Query().Get("challenge"), h.d.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return c, data, errChallenge
	}
	if err != nil {
		return c, data, err
	}
	data, err = checkChallenge(c, sess, kind)
	return c, data, err
}

// readChallenge reads the challenge named in the URL without consuming
// it, and checks it as takeChallenge does. One that fails the checks is
// left alone: this request can never use it, and the browser session it
// belongs to still may.
func (h *Handler) readChallenge(r *http.Request, sess *session.Session, kind string) (storage.Challenge, webauthn.SessionData, error) {
	id := r.URL.Query().Get("challenge")
	c, err := h.d.Store.GetChallenge(r.Context(), id, h.d.Now())
	if errors.Is(err, storage.ErrNotFound) {
		h.dropExpired(r.Context(), id)
		return c, webauthn.SessionData{}, errChallenge
	}
	if err != nil {
		return c, webauthn.SessionData{}, err
	}
	data, err := checkChallenge(c, sess, kind)
	return c, data, err
}

// dropExpired deletes the challenge id if it is stored but expired, as
// consuming it would: it can never be used again. Failing costs nothing
// the sweep of expired challenges does not make up for.
func (h *Handler) dropExpired(ctx context.Context, id string) {
	_, _ = h.d.Store.ConsumeChallenge(ctx, id, h.d.Now())
}

// checkChallenge checks that c is for this kind of ceremony in this
// browser session, and decodes its session data.
func checkChallenge(c storage.Challenge, sess *session.Session, kind string) (webauthn.SessionData, error) {
	var data webauthn.SessionData
	if c.Kind != kind || !slices.Equal(c.SessionHash, sess.IDHash()) {
		return data, errChallenge
	}
	return data, json.Unmarshal(c.Data, &data)
}

// consume uses the challenge up inside the caller's transaction. Finding
// nothing means another request with the same challenge consumed it first
// (or it expired since it was read): this request is then a replay,
// whatever else it found, and the caller's transaction rolls back.
func (h *Handler) consume(ctx context.Context, ch storage.Challenge) error {
	_, err := h.d.Store.ConsumeChallenge(ctx, ch.ID, h.d.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return errChallenge
	}
	return err
}

// useUp ends an attempt that failed after its challenge was read: one
// challenge, one attempt. It consumes the challenge in one transaction
// with what record writes (the refusal's audit event; nil for nothing).
func (h *Handler) useUp(r *http.Request, ch storage.Challenge, record func(ctx context.Context) error) error {
	return h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := h.consume(ctx, ch); err != nil || record == nil {
			return err
		}
		return record(ctx)
	})
}

func (h *Handler) loadWAUser(ctx context.Context, userID string) (waUser, error) {
	u, err := h.d.Store.GetUser(ctx, userID)
	if err != nil {
		return waUser{}, err
	}
	creds, err := h.d.Store.ListWebAuthnCredentials(ctx, userID)
	return waUser{u: u, creds: creds}, err
}

// registrant is who may register a key now: a user in enrolment, or a
// signed-in user whose last key tap is fresh.
func (h *Handler) registrant(sess *session.Session) (userID string, enrolling bool, err error) {
	if uid := sess.Enrolling(); uid != "" {
		return uid, true, nil
	}
	if a := sess.Auth(); h.freshAt(a, session.ACRPhr) {
		return a.UserID, false, nil
	}
	return "", false, httpx.Errorf(http.StatusForbidden,
		"Adding a key needs a tap of one of your keys within the last 5 minutes. Sign in again with your key. If you have no key, ask your administrator for an enrolment link.", nil)
}

func (h *Handler) beginRegistration(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.jsonSession(r)
	if err != nil {
		return err
	}
	uid, _, err := h.registrant(sess)
	if err != nil {
		return err
	}
	user, err := h.loadWAUser(ctx, uid)
	if err != nil {
		return err
	}
	opts, data, err := h.d.Passkeys.wa.BeginRegistration(user, webauthn.WithExclusions(user.descriptors()),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return err
	}
	id, err := h.saveChallenge(ctx, sess, kindRegistration, uid, "", data)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, beginResponse{Challenge: id, Options: opts})
	return nil
}

// finishRegistration verifies the new credential and stores it. During
// enrolment it also issues recovery codes (if the user has none) and signs
// the browser in with what the key proved.
func (h *Handler) finishRegistration(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.jsonSession(r)
	if err != nil {
		return err
	}
	uid, enrolling, err := h.registrant(sess)
	if err != nil {
		return err
	}
	ch, data, err := h.takeChallenge(r, sess, kindRegistration)
	if err != nil {
		return err
	}
	if ch.UserID != uid {
		return errChallenge
	}
	user, err := h.loadWAUser(ctx, uid)
	if err != nil {
		return err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return h.refused(r, uid, "registration", err, "The browser's answer could not be read. Try again.")
	}
	cred, err := h.d.Passkeys.wa.CreateCredential(user, data, parsed)
	if err != nil {
		return h.refused(r, uid, "registration", err, "The key's registration could not be verified. Try again.")
	}
	now := h.d.Now()
	stored := h.d.Passkeys.stored(uid, "", cred, discoverable(parsed.ClientExtensionResults.CredProps), now)
	stored.Name = cleanName(r.URL.Query().Get("name"))
	if stored.Name == "" {
		stored.Name = h.d.Passkeys.defaultName(stored)
	}
	var codes []string
	err = h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.d.Store.CreateWebAuthnCredential(ctx, stored); err != nil {
			return err
		}
		if err := h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.WebAuthnRegistered,
			Actor: uid, UserID: uid, Result: audit.Success, Details: map[string]string{"name": stored.Name,
				"aaguid": aaguidString(stored.AAGUID), "synced": boolString(stored.BackupEligible)}}); err != nil {
			return err
		}
		if !enrolling {
			return nil
		}
		if err := h.completeEnrollment(ctx, r, sess, uid, "webauthn"); err != nil {
			return err
		}
		codes, err = h.issueRecoveryCodesIfNone(ctx, r, uid)
		return err
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return httpx.Errorf(http.StatusConflict, "This key is registered already.", err)
	}
	if err != nil {
		return err
	}
	next := "/account"
	if enrolling {
		acr, amr := h.d.Passkeys.Assurance(stored, true)
		if err := sess.SignIn(session.Auth{UserID: uid, ACR: acr, AMR: amr, AuthTime: now}); err != nil {
			return err
		}
		if err := sess.Save(w); err != nil {
			return err
		}
	}
	httpx.WriteJSON(w, http.StatusOK, finishResponse{Next: next, RecoveryCodes: codes})
	return nil
}

// issueRecoveryCodesIfNone gives a newly enrolled user their codes once.
func (h *Handler) issueRecoveryCodesIfNone(ctx context.Context, r *http.Request, uid string) ([]string, error) {
	n, err := h.d.Store.CountRecoveryCodes(ctx, uid)
	if err != nil || n > 0 {
		return nil, err
	}
	codes, hashes, err := newRecoveryCodes(h.d.RecoveryKey)
	if err != nil {
		return nil, err
	}
	if err := h.d.Store.ReplaceRecoveryCodes(ctx, uid, hashes); err != nil {
		return nil, err
	}
	return codes, h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.RecoveryCodesIssued,
		Actor: uid, UserID: uid, Result: audit.Success})
}

// flowBody is the JSON a sign-in ceremony's begin call sends.
type flowBody struct {
	Flow string `json:"flow"`
}

func (h *Handler) readFlow(r *http.Request, sess *session.Session, states ...string) (storage.Flow, error) {
	var body flowBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil {
		return storage.Flow{}, httpx.Errorf(http.StatusBadRequest, "Malformed request.", err)
	}
	flow, err := session.LoadFlow(r.Context(), h.d.Store, sess, body.Flow, h.d.Now())
	if err != nil {
		return flow, err
	}
	if !slices.Contains(states, flow.State) {
		return flow, session.ErrFlowGone
	}
	return flow, nil
}

// beginAssertion asks for one of the user's keys after their password.
func (h *Handler) beginAssertion(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.jsonSession(r)
	if err != nil {
		return err
	}
	flow, err := h.readFlow(r, sess, storage.FlowSecondFactor)
	if err != nil {
		return err
	}
	user, err := h.loadWAUser(ctx, flow.UserID)
	if err != nil {
		return err
	}
	if len(user.WebAuthnCredentials()) == 0 {
		return httpx.Errorf(http.StatusBadRequest, "No security key is registered for this account.", nil)
	}
	opts, data, err := h.d.Passkeys.wa.BeginLogin(user, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return err
	}
	id, err := h.saveChallenge(ctx, sess, kindAssertion, flow.UserID, flow.ID, data)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, beginResponse{Challenge: id, Options: opts})
	return nil
}

// beginPasswordless asks for any discoverable passkey, with user
// verification: the key alone is both factors.
func (h *Handler) beginPasswordless(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.jsonSession(r)
	if err != nil {
		return err
	}
	flow, err := h.readFlow(r, sess, storage.FlowIdentify)
	if err != nil {
		return err
	}
	opts, data, err := h.d.Passkeys.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return err
	}
	id, err := h.saveChallenge(ctx, sess, kindPasswordless, "", flow.ID, data)
	if err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, beginResponse{Challenge: id, Options: opts})
	return nil
}

func (h *Handler) finishAssertion(w http.ResponseWriter, r *http.Request) error {
	return h.finishSignIn(w, r, kindAssertion)
}

func (h *Handler) finishPasswordless(w http.ResponseWriter, r *http.Request) error {
	return h.finishSignIn(w, r, kindPasswordless)
}

// finishSignIn verifies an assertion and advances the flow to verified.
// Every refusal is audited: a wrong origin (a phishing proxy relaying the
// ceremony), a replayed or expired challenge, an unknown or disabled key.
func (h *Handler) finishSignIn(w http.ResponseWriter, r *http.Request, kind string) error {
	sess, err := h.jsonSession(r)
	if err != nil {
		return err
	}
	err = h.signIn(w, r, sess, kind)
	if errors.Is(err, errChallenge) {
		_ = h.refused(r, "", kind, errors.New("unknown, replayed or expired challenge"), "")
	}
	return err
}

// signIn is finishSignIn's ceremony. The challenge is read first and
// consumed only in the transaction that records the outcome: on success
// with the key's use and the flow, on a refusal with its audit event. So
// a sign-in commits once, each challenge still serves one attempt, and of
// requests presenting one challenge at once only the one that consumes it
// counts; the others are answered as replays.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, sess *session.Session, kind string) error {
	ctx := r.Context()
	ch, data, err := h.readChallenge(r, sess, kind)
	if err != nil {
		return err
	}
	flow, err := session.LoadFlow(ctx, h.d.Store, sess, ch.FlowID, h.d.Now())
	if err != nil {
		return h.failUsingUp(r, ch, err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return h.refusedAttempt(r, ch, flow.UserID, kind, err, "The browser's answer could not be read. Try again.")
	}
	var user waUser
	var cred *webauthn.Credential
	if kind == kindAssertion {
		if user, err = h.loadWAUser(ctx, flow.UserID); err != nil {
			return err
		}
		cred, err = h.d.Passkeys.wa.ValidateLogin(user, data, parsed)
	} else {
		var found webauthn.User
		found, cred, err = h.d.Passkeys.wa.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) {
			u, err := h.loadWAUser(ctx, string(handle))
			user = u
			return u, err
		}, data, parsed)
		if err == nil {
			user = found.(waUser)
		}
	}
	if err != nil {
		return h.refusedAttempt(r, ch, flow.UserID, kind, err, "That key was not accepted. Use a key registered for this account here.")
	}
	stored, ok := findCredential(user.creds, cred.ID)
	if !ok || !stored.DisabledAt.IsZero() {
		return h.refusedAttempt(r, ch, user.u.ID, kind, errors.New("credential not registered or disabled"), "That key was not accepted.")
	}
	if cred.Authenticator.CloneWarning {
		return h.cloneSuspected(r, ch, user.u.ID, stored, parsed.Response.AuthenticatorData.Counter)
	}
	if user.u.Suspended() {
		return h.refusedAttempt(r, ch, user.u.ID, kind, errors.New("account suspended"), "This account is suspended. Contact your administrator.")
	}
	acr, amr := h.d.Passkeys.Assurance(stored, kind == kindAssertion)
	verified := storage.Flow{UserID: user.u.ID, ACR: acr, AMR: amr, AuthTime: h.d.Now()}
	err = h.verifyFlow(ctx, ch, flow, verified, stored.ID, cred)
	if errors.Is(err, storage.ErrConflict) {
		return h.failUsingUp(r, ch, session.ErrFlowGone)
	}
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, finishResponse{Next: "/login/continue?flow=" + url.QueryEscape(flow.ID)})
	return nil
}

// verifyFlow consumes the challenge, records the key's use and marks the
// flow verified by v's user, assurance and time, in one transaction. It
// answers errChallenge if another request consumed the challenge first,
// and storage.ErrConflict if the flow moved on since it was read.
func (h *Handler) verifyFlow(ctx context.Context, ch storage.Challenge, flow, v storage.Flow, credID []byte, cred *webauthn.Credential) error {
	return h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.consume(ctx, ch); err != nil {
			return err
		}
		if err := h.d.Store.RecordWebAuthnUse(ctx, credID, cred.Authenticator.SignCount, cred.Flags.BackupState, v.AuthTime); err != nil {
			return err
		}
		return h.d.Store.UpdateFlow(ctx, flow.ID, func(f *storage.Flow) error {
			if f.State != flow.State {
				return storage.ErrConflict
			}
			f.UserID = v.UserID
			f.ACR, f.AMR, f.AuthTime = v.ACR, v.AMR, v.AuthTime
			f.State = storage.FlowVerified
			return nil
		})
	})
}

// cloneSuspected acts on go-webauthn's clone warning (a sign count that
// went backwards means two copies of the key exist): the key is disabled,
// the event alerts, and the sign-in is refused. It acts only if this
// request consumes the challenge: an assertion presented twice at once
// can find the count its twin just recorded, which is no clone.
func (h *Handler) cloneSuspected(r *http.Request, ch storage.Challenge, userID string, c storage.WebAuthnCredential, got uint32) error {
	ctx := r.Context()
	err := h.d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.consume(ctx, ch); err != nil {
			return err
		}
		if err := h.d.Store.DisableWebAuthnCredential(ctx, c.ID, "sign count went backwards: the key may have been cloned", h.d.Now()); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{Type: audit.WebAuthnCloneSuspected,
			Actor: userID, UserID: userID, Result: audit.Denied, Details: map[string]string{"name": c.Name,
				"stored_sign_count": uintString(c.SignCount), "presented_sign_count": uintString(got), "action": "key disabled"}})
	})
	if err != nil {
		return err
	}
	return httpx.Errorf(http.StatusForbidden, "This key has been disabled because it may have been copied. Use another key or a recovery code, and tell your administrator.", nil)
}

// refused audits a failed ceremony and returns the user-facing error.
func (h *Handler) refused(r *http.Request, userID, kind string, cause error, public string) error {
	if err := h.auditRefusal(r, userID, kind, cause); err != nil {
		return err
	}
	return h.refusal(cause, public)
}

// failUsingUp uses the challenge up and returns failure, for an attempt
// that fails without a refusal to audit (its flow is gone).
func (h *Handler) failUsingUp(r *http.Request, ch storage.Challenge, failure error) error {
	if err := h.useUp(r, ch, nil); err != nil {
		return err
	}
	return failure
}

// refusedAttempt is refused for a sign-in whose challenge was read: it
// uses the challenge up in the transaction of the audit event.
func (h *Handler) refusedAttempt(r *http.Request, ch storage.Challenge, userID, kind string, cause error, public string) error {
	err := h.useUp(r, ch, func(ctx context.Context) error {
		return h.auditRefusal(r.WithContext(ctx), userID, kind, cause)
	})
	if err != nil {
		return err
	}
	return h.refusal(cause, public)
}

func (h *Handler) auditRefusal(r *http.Request, userID, kind string, cause error) error {
	record := h.d.Audit.RecordRequest
	if userID == "" { // nobody signed in: anyone can repeat it, so sampled
		record = h.d.Audit.RecordAnonymous
	}
	return record(r, storage.AuditEvent{Type: audit.WebAuthnRefused, Actor: cmpOr(userID, "anonymous"),
		UserID: userID, Result: audit.Failure, Details: map[string]string{"ceremony": kind, "reason": ceremonyError(cause)}})
}

// refusal counts a failed sign-in and returns the user-facing error.
func (h *Handler) refusal(cause error, public string) error {
	h.d.Metrics.SignIn("failure")
	return httpx.Errorf(http.StatusBadRequest, public, cause)
}

// discoverable reads the credProps extension; absent means unknown, and
// we assume a non-resident key.
func discoverable(p *protocol.CredentialPropertiesOutput) bool {
	return p != nil && p.RK != nil && *p.RK
}

// maxKeyName bounds a key's name, in bytes.
const maxKeyName = 64

// cleanName makes a key's name fit to store and show: valid UTF-8 (a bad
// byte becomes U+FFFD), no control characters, no surrounding spaces, at
// most maxKeyName bytes, cut between characters rather than inside one.
func cleanName(s string) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s))
	if len(s) > maxKeyName {
		cut := maxKeyName
		for !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}
