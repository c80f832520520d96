package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// Event types: dotted, stable names that queries and alerts rely on.
const (
	SigninSucceeded = "signin.succeeded"
	SigninFailed    = "signin.failed"
	SigninThrottled = "signin.throttled"
	SigninSSO       = "signin.sso"
	SigninDenied    = "signin.denied"
	// SigninReported: a user said a sign-in was not theirs ("this wasn't
	// me" in its notice); its session was ended.
	SigninReported      = "signin.reported"
	RiskStepUp          = "risk.step_up"
	SignedOut           = "signout"
	EnrollmentStarted   = "enrollment.started"
	EnrollmentCompleted = "enrollment.completed"
	// EnrollmentEmailed: an enrolment link was queued for email to its user.
	EnrollmentEmailed = "enrollment.emailed"
	PasswordSet       = "password.set"
	// PasswordResetRequested: a "forgot password" link was mailed.
	PasswordResetRequested = "password.reset_requested"
	// PasswordReset: a new password was set through that link, after a
	// second factor; every session of the user was ended.
	PasswordReset       = "password.reset"
	TOTPEnrolled        = "mfa.totp.enrolled"
	RecoveryCodesIssued = "mfa.recovery_codes.issued"
	RecoveryCodeUsed    = "mfa.recovery_code.used"
	WebAuthnRegistered  = "mfa.webauthn.registered"
	WebAuthnRemoved     = "mfa.webauthn.removed"
	WebAuthnRenamed     = "mfa.webauthn.renamed"
	WebAuthnRefused     = "mfa.webauthn.refused"
	// WebAuthnCloneSuspected: a key's sign count went backwards.
	WebAuthnCloneSuspected = "mfa.webauthn.clone_suspected"
	TokenIssued            = "token.issued"
	TokenFailed            = "token.failed"
	TokenRefreshed         = "token.refreshed"
	TokenRevoked           = "token.revoked"
	RefreshReused          = "token.refresh_reused"
	UserCreated            = "user.created"
	UserSuspended          = "user.suspended"
	UserUnsuspended        = "user.unsuspended"
	UserDeleted            = "user.deleted"
	RoleGranted            = "user.role_granted"
	RoleRevoked            = "user.role_revoked"
	GroupCreated           = "group.created"
	GroupUpdated           = "group.updated"
	GroupDeleted           = "group.deleted"
	GroupMemberAdded       = "group.member_added"
	GroupMemberRemoved     = "group.member_removed"
	// AccessRefused: a signed-in user asked for an app their groups do
	// not allow (not an attack: no alert).
	AccessRefused       = "access.refused"
	SessionRevoked      = "session.revoked"
	TOTPReset           = "mfa.totp.reset"
	WebAuthnRevoked     = "mfa.webauthn.revoked"
	ClientCreated       = "client.created"
	ClientUpdated       = "client.updated"
	ClientSecretRotated = "client.secret_rotated"
	ClientDisabled      = "client.disabled"
	ClientEnabled       = "client.enabled"
	ClientDeleted       = "client.deleted"
	// AdminBulkRead: one admin read many users' details or exported the
	// audit log in a short time — the exfiltration pattern.
	AdminBulkRead = "admin.bulk_read"
	KeysRotated   = "keys.rotated"
)

// WebAuthnModelCompromised: at start, a key was disabled because the FIDO
// metadata reports its model compromised.
const WebAuthnModelCompromised = "mfa.webauthn.model_compromised"

// Results.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Alerting event types: besides the log, they are queued for every
// configured webhook.
var alerting = map[string]bool{
	RefreshReused:          true,
	SigninDenied:           true,
	SigninReported:         true,
	AdminBulkRead:          true,
	RoleGranted:            true,
	WebAuthnCloneSuspected: true,
	SigninThrottled:        true,
	UserSuspended:          true,

	WebAuthnModelCompromised: true,
}

// Alerting reports whether events of type t are alerts: the ones queued
// for every webhook and mailed to administrators who asked for them.
func Alerting(t string) bool { return alerting[t] }

// Store is what the recorder writes to.
type Store interface {
	storage.Audit
	storage.Outbox
	storage.Transactor
}

// Recorder writes audit events in the caller's transaction (the ctx it is
// given), mirrors them to the log and queues alerts. If it fails, the caller
// must fail too: an action without its audit record did not happen.
type Recorder struct {
	db       Store
	logger   *slog.Logger
	webhooks []string
	now      func() time.Time
	anon     anonLimiter
	notify   func(ctx context.Context, e storage.AuditEvent) error
}

func NewRecorder(db Store, logger *slog.Logger, webhooks []string, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{db: db, logger: logger, webhooks: webhooks, now: now}
}

// Notify makes the recorder call fn with every event it records, in the
// event's transaction; fn's error aborts the event and the change it
// records. It is how a user is told of a change to their account by
// every path that makes it (console, command line, self-service). Call it
// before the recorder is used.
func (r *Recorder) Notify(fn func(ctx context.Context, e storage.AuditEvent) error) { r.notify = fn }

// Record appends e (and, for alerts, its outbox messages) atomically. Its
// fields are cut to their bounds first (see bound).
func (r *Recorder) Record(ctx context.Context, e storage.AuditEvent) error {
	e = bound(e)
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	return r.db.InTx(ctx, func(ctx context.Context) error {
		stored, err := r.db.AppendAudit(ctx, e)
		if err != nil {
			return fmt.Errorf("audit %s: %w", e.Type, err)
		}
		r.log(ctx, stored)
		if r.notify != nil {
			if err := r.notify(ctx, stored); err != nil {
				return fmt.Errorf("audit %s: notify: %w", e.Type, err)
			}
		}
		if !alerting[e.Type] {
			return nil
		}
		payload, err := json.Marshal(AlertPayload(stored))
		if err != nil {
			return err
		}
		for _, url := range r.webhooks {
			if _, err := r.db.EnqueueOutbox(ctx, storage.OutboxMessage{
				Kind: OutboxAlert, Target: url, Payload: payload,
				NextAttemptAt: stored.Time, CreatedAt: stored.Time,
			}); err != nil {
				return fmt.Errorf("queue alert: %w", err)
			}
		}
		return nil
	})
}

// RecordRequest fills the request's IP and user agent into e and records it.
func (r *Recorder) RecordRequest(req *http.Request, e storage.AuditEvent) error {
	if ip := httpx.ClientIPFrom(req.Context()); ip.IsValid() {
		e.IP = ip.String()
	}
	e.UserAgent = req.UserAgent()
	return r.Record(req.Context(), e)
}

func (r *Recorder) log(ctx context.Context, e storage.AuditEvent) {
	level := slog.LevelInfo
	if e.Result != Success {
		level = slog.LevelWarn
	}
	// Details hold no secrets by construction: events name things, never
	// carry credentials.
	r.logger.Log(ctx, level, "audit", "event", e.Type, "seq", e.Seq, "result", e.Result,
		"actor", e.Actor, "user_id", e.UserID, "client_id", e.ClientID, "details", e.Details)
}

// OutboxAlert is the outbox kind of alert webhooks.
const OutboxAlert = "alert"

// Alert is the JSON body an alert webhook receives.
type Alert struct {
	Seq      int64             `json:"seq"`
	Time     time.Time         `json:"time"`
	Type     string            `json:"type"`
	Actor    string            `json:"actor,omitempty"`
	UserID   string            `json:"user_id,omitempty"`
	ClientID string            `json:"client_id,omitempty"`
	IP       string            `json:"ip,omitempty"`
	Result   string            `json:"result"`
	Details  map[string]string `json:"details,omitempty"`
}

func AlertPayload(e storage.AuditEvent) Alert {
	return Alert{Seq: e.Seq, Time: e.Time.UTC(), Type: e.Type, Actor: e.Actor, UserID: e.UserID,
		ClientID: e.ClientID, IP: e.IP, Result: e.Result, Details: e.Details}
}
