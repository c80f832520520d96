package storage

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Sentinel errors every backend maps its driver errors to.
var (
	// ErrNotFound: no row matches (or it is expired, used or revoked where the
	// method says so).
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a unique key (id, email, signature) is taken.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrConflict: a conditional write lost (a TOTP step already used, a flow
	// advanced by another request).
	ErrConflict = errors.New("storage: conflict")
)

// Store is everything keygate keeps. Consumers should accept the narrowest
// role interface they need.
type Store interface {
	Users
	Groups
	Enrollments
	Links
	TOTPs
	RecoveryCodes
	WebAuthnCredentials
	Challenges
	Clients
	BrowserSessions
	Flows
	Tokens
	Audit
	Outbox
	SigningKeys
	Attempts
	Devices
	SignIns
	Meta
	Transactor

	// Backup writes a consistent copy of the whole store to path.
	Backup(ctx context.Context, path string) error
	Close() error
}

// Transactor is the one transaction mechanism: a context carries the
// transaction, and every Store method called with that context joins it.
// fosite's storage.Transactional maps onto BeginTx/Commit/Rollback.
type Transactor interface {
	// InTx runs fn in a write transaction; fn's error rolls it back. A call
	// with a context that already carries a transaction joins it. A backend
	// may run concurrent calls' functions one after another in one
	// transaction (each all-or-nothing on its own), so fn must not wait for
	// another goroutine's InTx.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	BeginTx(ctx context.Context) (context.Context, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// User is a person who signs in. Email is unique, compared case-insensitively
// (stored lower-case).
type User struct {
	ID           string
	Email        string
	Name         string
	PasswordHash string // argon2id PHC string; empty until enrolment sets it
	// Role is what the user may do in the admin console and API: RoleAdmin,
	// RoleHelpdesk, RoleAuditor, or "" for none.
	Role        string
	SuspendedAt time.Time // zero: active
	// EnrolledAt is when the user first confirmed a second factor; zero
	// while enrolment is pending (a password alone is not an account).
	EnrolledAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Suspended reports whether sign-in is refused for the user.
func (u User) Suspended() bool { return !u.SuspendedAt.IsZero() }

// IsAdmin reports whether the user has the administrator role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// Administration roles. Each grants a set of console and API actions
// (server/admin says which); none grants nothing there.
const (
	RoleAdmin    = "admin"    // everything
	RoleHelpdesk = "helpdesk" // the user lifecycle, not apps, roles or settings
	RoleAuditor  = "auditor"  // read-only: users, apps, the audit log
)

// Roles are the known roles, strongest first.
var Roles = []string{RoleAdmin, RoleHelpdesk, RoleAuditor}

// Enrolled reports whether the user finished enrolment: a password and a
// confirmed second factor.
func (u User) Enrolled() bool { return !u.EnrolledAt.IsZero() }

type Users interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// SearchUsers pages through users whose email or name contains query
	// (case-insensitive; "" matches all), ordered by email, and returns the
	// total number of matches.
	SearchUsers(ctx context.Context, query string, limit, offset int) ([]User, int, error)
	// UpdateUser loads the user, applies fn and writes the result in one
	// transaction. fn may run more than once; it must only change fields of u.
	UpdateUser(ctx context.Context, id string, fn func(u *User) error) error
	DeleteUser(ctx context.Context, id string) error
}

// Enrollment is a single-use link that lets a user set their credentials.
// Only a hash of the link's token is stored.
type Enrollment struct {
	TokenHash []byte
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// An enrolment link stays usable until the user confirms a second factor
// with it (ConsumeEnrollment then), so one abandoned after the password
// can be opened again.
type Enrollments interface {
	CreateEnrollment(ctx context.Context, e Enrollment) error
	// GetEnrollment returns a usable enrolment without using it up;
	// ErrNotFound if it does not exist, is used, or expired at now.
	GetEnrollment(ctx context.Context, tokenHash []byte, now time.Time) (Enrollment, error)
	// ConsumeEnrollment marks the enrolment used and returns it, atomically;
	// ErrNotFound if it does not exist, is used, or expired at now.
	ConsumeEnrollment(ctx context.Context, tokenHash []byte, now time.Time) (Enrollment, error)
}

// TOTPCredential is a user's authenticator-app seed, sealed under the master key.
type TOTPCredential struct {
	UserID      string
	Sealed      []byte
	LastStep    int64     // highest time step accepted; lower or equal ones are replays
	ConfirmedAt time.Time // zero while enrolment is pending
	CreatedAt   time.Time
}

type TOTPs interface {
	// PutTOTP creates or replaces the user's TOTP credential.
	PutTOTP(ctx context.Context, c TOTPCredential) error
	GetTOTP(ctx context.Context, userID string) (TOTPCredential, error)
	ConfirmTOTP(ctx context.Context, userID string, at time.Time) error
	// UseTOTPStep records step as used if it is above LastStep; ErrConflict
	// if it is not (a replay), ErrNotFound if there is no credential.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	DeleteTOTP(ctx context.Context, userID string) error
}

type RecoveryCodes interface {
	// ReplaceRecoveryCodes drops the user's codes and stores these hashes.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error
	// UseRecoveryCode marks an unused code with this hash used; ErrNotFound
	// if there is none.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error
	CountRecoveryCodes(ctx context.Context, userID string) (unused int, err error)
}

// WebAuthnCredential is a registered security key or passkey.
type WebAuthnCredential struct {
	ID                []byte // the credential id the authenticator chose
	UserID            string
	Name              string
	AAGUID            []byte // the authenticator model; 16 zero bytes when not disclosed
	PublicKey         []byte // COSE-encoded
	AttestationType   string
	AttestationFormat string
	Attested          bool // its attestation verified against a configured trust root
	Transports        []string
	SignCount         uint32
	BackupEligible    bool // a synced passkey (may leave the device)
	BackupState       bool
	Discoverable      bool // resident: usable without a username
	Attachment        string
	CreatedAt         time.Time
	LastUsedAt        time.Time
	DisabledAt        time.Time // zero: usable
	DisabledReason    string
}

type WebAuthnCredentials interface {
	// CreateWebAuthnCredential stores a new credential; ErrAlreadyExists if
	// the id is registered already (to anyone).
	CreateWebAuthnCredential(ctx context.Context, c WebAuthnCredential) error
	GetWebAuthnCredential(ctx context.Context, id []byte) (WebAuthnCredential, error)
	// ListWebAuthnCredentials returns the user's credentials, disabled ones
	// included, oldest first.
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error)
	// RecordWebAuthnUse stores the sign count and backup state an assertion
	// reported, and when.
	RecordWebAuthnUse(ctx context.Context, id []byte, signCount uint32, backupState bool, at time.Time) error
	RenameWebAuthnCredential(ctx context.Context, id []byte, name string) error
	// DisableWebAuthnCredential marks it unusable with a reason (a clone
	// suspicion, an admin's revocation); it stays listed.
	DisableWebAuthnCredential(ctx context.Context, id []byte, reason string, at time.Time) error
	// DisableWebAuthnByAAGUID disables every enabled credential of a model and
	// returns them (the metadata service marked the model compromised).
	DisableWebAuthnByAAGUID(ctx context.Context, aaguid []byte, reason string, at time.Time) ([]WebAuthnCredential, error)
	DeleteWebAuthnCredential(ctx context.Context, id []byte) error
}

// Challenge is a WebAuthn ceremony's server-side state: issued once, bound
// to a browser session, consumed once, short-lived.
type Challenge struct {
	ID          string
	SessionHash []byte
	UserID      string // empty for a username-less (passkey) sign-in
	Kind        string // "registration", "assertion", "passwordless"
	FlowID      string // the sign-in flow it serves, if any
	Data        []byte // the ceremony's session data, JSON
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

type Challenges interface {
	CreateChallenge(ctx context.Context, c Challenge) error
	// ConsumeChallenge deletes and returns the challenge; ErrNotFound if it
	// is unknown, already consumed, or expired at now.
	ConsumeChallenge(ctx context.Context, id string, now time.Time) (Challenge, error)
	// GetChallenge returns the challenge without consuming it; ErrNotFound
	// if it is unknown, already consumed, or expired at now. It deletes
	// nothing, so a caller can check an attempt first and consume the
	// challenge in the transaction that records the attempt's outcome.
	GetChallenge(ctx context.Context, id string, now time.Time) (Challenge, error)
	DeleteExpiredChallenges(ctx context.Context, now time.Time) (int, error)
}

// Client is an app registered to use keygate.
type Client struct {
	ID                     string
	Name                   string
	SecretHash             []byte // nil for public clients
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	ResponseTypes          []string
	Scopes                 []string
	Audience               []string
	Public                 bool
	MinACR                 string        // "mfa", "phr" or "phrh"
	MaxAuthAge             time.Duration // 0: no limit beyond the session's
	TokenFormat            string        // "opaque" or "jwt"
	BackchannelLogoutURI   string
	Disabled               bool
	// PreviousSecretHash is the secret a rotation replaced; it keeps working
	// until PreviousSecretExpiresAt, so the app can be redeployed in between.
	PreviousSecretHash      []byte
	PreviousSecretExpiresAt time.Time
	// Lifetimes of this client's tokens; 0 means the server's default.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// DenyRisky: a sign-in the risk engine would step up is refused
	// instead (for apps whose users must never be challenged mid-task, or
	// whose owners prefer a call to the help desk).
	DenyRisky bool
	// IDTokenAlg signs the app's ID tokens and back-channel logout tokens
	// (OIDC Dynamic Client Registration's id_token_signed_response_alg):
	// "RS256" or "ES256"; empty means RS256, the default every relying
	// party accepts.
	IDTokenAlg string
	// AllowedGroups are the ids of the groups whose members may use the
	// app; none means every enrolled user.
	AllowedGroups []string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// IDTokenSignedResponseAlg is the algorithm the app's ID tokens are
// signed with: IDTokenAlg, or RS256 when it is empty.
func (c Client) IDTokenSignedResponseAlg() string {
	if c.IDTokenAlg == "" {
		return "RS256"
	}
	return c.IDTokenAlg
}

// Allows reports whether a member of groups may use the app: every user
// may, unless the app names groups; then a member of one of them.
func (c Client) Allows(groups []Group) bool {
	if len(c.AllowedGroups) == 0 {
		return true
	}
	return slices.ContainsFunc(groups, func(g Group) bool { return slices.Contains(c.AllowedGroups, g.ID) })
}

type Clients interface {
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	UpdateClient(ctx context.Context, id string, fn func(c *Client) error) error
	DeleteClient(ctx context.Context, id string) error
}

// BrowserSession is the server side of a browser's session cookie. The
// cookie holds a random id; only its hash is stored. SID is the public
// session id that ID tokens carry as `sid`.
type BrowserSession struct {
	IDHash     []byte
	SID        string
	UserID     string // empty before sign-in
	Data       []byte // encoded session values, owned by server/session
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// Group is a set of users: who may use which apps, and what assurance its
// members sign in with everywhere. Names are unique, compared
// case-insensitively.
type Group struct {
	ID          string
	Name        string
	Description string
	MinACR      string // "", "mfa", "phr" or "phrh": the least its members sign in with
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

type Groups interface {
	// CreateGroup stores a new group; ErrAlreadyExists if the id or the
	// name (in any case) is taken.
	CreateGroup(ctx context.Context, g Group) error
	GetGroup(ctx context.Context, id string) (Group, error)
	// GetGroupByName finds a group by name, in any case.
	GetGroupByName(ctx context.Context, name string) (Group, error)
	// ListGroups returns every group, by name.
	ListGroups(ctx context.Context) ([]Group, error)
	// UpdateGroup loads, applies fn and writes in one transaction;
	// ErrAlreadyExists if fn renames it to a taken name.
	UpdateGroup(ctx context.Context, id string, fn func(g *Group) error) error
	// DeleteGroup deletes the group and its memberships.
	DeleteGroup(ctx context.Context, id string) error
	// AddGroupMember makes the user a member; ErrAlreadyExists if they
	// are one, ErrNotFound if the group or the user does not exist.
	AddGroupMember(ctx context.Context, groupID, userID string, at time.Time) error
	// RemoveGroupMember ends a membership; ErrNotFound if there is none.
	RemoveGroupMember(ctx context.Context, groupID, userID string) error
	// ListGroupMembers returns the group's members, by email.
	ListGroupMembers(ctx context.Context, groupID string) ([]User, error)
	// ListUserGroups returns the groups the user is a member of, by name.
	ListUserGroups(ctx context.Context, userID string) ([]Group, error)
	// CountGroupMembers returns each group's number of members by id
	// (groups without members are absent).
	CountGroupMembers(ctx context.Context) (map[string]int, error)
}

// Writing a session never brings back one that was ended: a request that
// loaded a session before a sign-out or a suspension and saves it after
// finds it gone. Only CreateSession inserts, with an id no session had.
type BrowserSessions interface {
	// CreateSession stores a new session: ErrAlreadyExists if the IDHash is
	// taken; ErrNotFound if UserID names a user who does not exist or is
	// suspended, checked in the same statement, so a sign-in that races a
	// suspension cannot leave a live session behind.
	CreateSession(ctx context.Context, s BrowserSession) error
	// UpdateSession rewrites an existing session's UserID, Data, IP,
	// UserAgent, LastSeenAt and ExpiresAt (IDHash, SID and CreatedAt stay).
	// ErrNotFound if the session no longer exists (it was ended) or its user
	// no longer exists or is suspended; it is then never recreated.
	UpdateSession(ctx context.Context, s BrowserSession) error
	// GetSession returns ErrNotFound for unknown or expired (at now) sessions.
	GetSession(ctx context.Context, idHash []byte, now time.Time) (BrowserSession, error)
	// SessionStands is a read that answers as UpdateSession would without
	// writing: nil if the session exists unexpired at now, still signed in
	// as userID ("" before sign-in), and may be held (its user exists and
	// is not suspended); ErrNotFound otherwise.
	SessionStands(ctx context.Context, idHash []byte, userID string, now time.Time) error
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteSessionBySID ends the session with this public id and returns
	// its user; ErrNotFound if there is none.
	DeleteSessionBySID(ctx context.Context, sid string) (userID string, err error)
	ListUserSessions(ctx context.Context, userID string) ([]BrowserSession, error)
	// DeleteUserSessions ends every session of the user and returns their SIDs.
	DeleteUserSessions(ctx context.Context, userID string) (sids []string, err error)
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// Flow is one interactive sign-in: an authorize request waiting for the
// user to meet its requirement. server/login advances it; server/oidc
// resumes the authorize request once it is satisfied.
type Flow struct {
	ID          string
	SessionHash []byte // the browser session it belongs to
	ClientID    string
	Query       string // the authorize request's parameters, URL-encoded
	State       string // owned by server/login
	UserID      string
	RequiredACR string
	MaxAge      time.Duration // <0: none requested
	ForceLogin  bool          // prompt=login
	ACR         string
	AMR         []string
	AuthTime    time.Time
	Reasons     []string // why a step was asked for, in plain words
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Flow states. server/login moves a flow from identify to second factor;
// server/mfa marks it verified; server/login completes it (the browser
// session is signed in) and server/oidc resumes only complete flows.
// A flow that starts from an existing session (single sign-on) starts in
// sso, where server/login asks the risk engine whether the session still
// suffices; a flow the risk engine refused ends in refused.
const (
	FlowIdentify     = ""
	FlowSSO          = "sso"
	FlowSecondFactor = "second_factor"
	FlowVerified     = "verified"
	FlowComplete     = "complete"
	FlowRefused      = "refused"
)

type Flows interface {
	CreateFlow(ctx context.Context, f Flow) error
	// GetFlow returns ErrNotFound for unknown or expired (at now) flows.
	GetFlow(ctx context.Context, id string, now time.Time) (Flow, error)
	// UpdateFlow applies fn in a transaction; fn may run more than once.
	UpdateFlow(ctx context.Context, id string, fn func(f *Flow) error) error
	DeleteFlow(ctx context.Context, id string) error
	DeleteExpiredFlows(ctx context.Context, now time.Time) (int, error)
}

// Token kinds stored in TokenRecord.Kind.
const (
	KindAuthorizeCode = "authorize_code"
	KindAccessToken   = "access_token"
	KindRefreshToken  = "refresh_token"
	KindPKCE          = "pkce"
	KindOIDC          = "oidc"
	KindPAR           = "par"
)

// TokenRecord is one fosite request stored under a token signature.
// Tokens of one grant (and its refreshes) share RequestID.
type TokenRecord struct {
	Kind            string
	Signature       string
	RequestID       string
	ClientID        string
	Subject         string // user id; empty for client_credentials
	SID             string // browser session the grant came from
	Active          bool
	RotatedAt       time.Time // refresh tokens: when a refresh used it
	AccessSignature string    // refresh tokens: the access token issued with it
	Request         []byte    // the serialised fosite request
	RequestedAt     time.Time
	ExpiresAt       time.Time
}

type Tokens interface {
	CreateToken(ctx context.Context, t TokenRecord) error
	// GetToken returns the record whether active or not; callers decide.
	GetToken(ctx context.Context, kind, signature string) (TokenRecord, error)
	DeleteToken(ctx context.Context, kind, signature string) error
	// DeactivateToken marks one record inactive (a used code, a revoked token).
	DeactivateToken(ctx context.Context, kind, signature string) error
	// MarkRotated sets RotatedAt if it is still zero.
	MarkRotated(ctx context.Context, kind, signature string, at time.Time) error
	// RevokeRequest deactivates every record of these kinds sharing requestID.
	RevokeRequest(ctx context.Context, requestID string, kinds ...string) error
	// RevokeSubject deactivates every token of the user; returns how many.
	RevokeSubject(ctx context.Context, subject string) (int, error)
	// RevokeSession deactivates every token issued from browser session sid.
	RevokeSession(ctx context.Context, sid string) (int, error)
	// RevokeClient deactivates the client's own tokens (client_credentials:
	// those without a subject) and, withUsers, every token it holds for a
	// user too; returns how many.
	RevokeClient(ctx context.Context, clientID string, withUsers bool) (int, error)
	// RevokeUserClient deactivates every token the client holds for the
	// user, and returns the browser sessions (SIDs) they came from.
	RevokeUserClient(ctx context.Context, subject, clientID string) (sids []string, err error)
	// ClientSubjects lists the users the client holds active tokens for.
	ClientSubjects(ctx context.Context, clientID string) ([]string, error)
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error)
}

// AuditEvent is one entry of the append-only, hash-chained audit log.
type AuditEvent struct {
	Seq       int64
	Time      time.Time
	Type      string // dotted and stable: "signin.failed", "token.issued"
	Actor     string // who did it: a user id, "client:<id>", "cli", "system"
	UserID    string // whom it concerns
	ClientID  string
	IP        string
	UserAgent string
	Result    string // "success", "failure", "denied"
	Details   map[string]string
	PrevHash  []byte
	Hash      []byte
}

// AuditFilter selects events; zero fields match everything.
type AuditFilter struct {
	UserID   string
	ClientID string
	Type     string
	Result   string
	Since    time.Time
	Until    time.Time
	AfterSeq int64
	// BeforeSeq pages backwards: only events with a lower Seq (0: no bound).
	BeforeSeq int64
	Limit     int
}

type Audit interface {
	// AppendAudit assigns Seq, PrevHash and Hash inside the write transaction
	// and returns the stored event. There is no update or delete.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// WalkAudit calls fn for every event in Seq order.
	WalkAudit(ctx context.Context, fn func(AuditEvent) error) error
}

// OutboxMessage is a delivery (an alert webhook, a back-channel logout)
// queued in the same transaction as the change that caused it.
type OutboxMessage struct {
	ID            int64
	Kind          string
	Target        string
	Payload       []byte
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   time.Time
}

// A message is delivered by claiming it, sending it, then marking it
// delivered or failed. The claim is a lease: every process delivering
// from one database claims, and a message is claimed by one of them at a
// time; one whose deliverer died before marking it is claimed again once
// its lease has run out.
type Outbox interface {
	EnqueueOutbox(ctx context.Context, m OutboxMessage) (int64, error)
	// ClaimOutbox takes up to limit undelivered messages due at now
	// (NextAttemptAt <= now), earliest first, and moves their NextAttemptAt
	// to leaseUntil, atomically: a concurrent claim never returns one of
	// them until leaseUntil. It returns them as they were before the claim
	// (NextAttemptAt is when each fell due). limit <= 0 means
	// ClaimOutboxDefault.
	ClaimOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]OutboxMessage, error)
	MarkOutboxDelivered(ctx context.Context, id int64, at time.Time) error
	MarkOutboxFailed(ctx context.Context, id int64, next time.Time, lastError string) error
}

// SigningKey is a JWT signing key pair; the private half is sealed.
type SigningKey struct {
	KID       string
	Alg       string // "ES256" or "RS256"
	Sealed    []byte
	PublicJWK []byte
	CreatedAt time.Time
	RetiredAt time.Time // zero: the active key for its Alg
}

type SigningKeys interface {
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys lists every key. Inside a transaction it orders the
	// transaction with every other that lists the keys: the later one
	// lists them after the earlier has ended, so processes that check for
	// a missing key and create it in one transaction create it once.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKeys retires the active keys of alg.
	RetireSigningKeys(ctx context.Context, alg string, at time.Time) error
	// DeleteSigningKeysRetiredBefore drops keys no token can still need.
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error)
}

// Attempts counts failed sign-in steps for rate limiting.
type Attempts interface {
	RecordAttempt(ctx context.Context, scope, key string, at time.Time) error
	CountAttempts(ctx context.Context, scope, key string, since time.Time) (int, error)
	ClearAttempts(ctx context.Context, scope, key string) error
	DeleteAttemptsBefore(ctx context.Context, t time.Time) (int, error)
}

// Device is a browser a user has signed in from, recognised by the signed,
// long-lived device cookie that carries ID. One row per user and device.
type Device struct {
	ID          string
	UserID      string
	UserAgent   string // a short family, e.g. "Chrome on Linux"
	FirstSeen   time.Time
	LastSeen    time.Time
	LastIP      string
	LastCountry string
	SignIns     int
}

type Devices interface {
	// TouchDevice records a successful sign-in from the device: it creates
	// the (user, device) row, or moves LastSeen/LastIP/LastCountry and
	// UserAgent forward and adds one to SignIns (FirstSeen stays).
	TouchDevice(ctx context.Context, d Device) error
	// GetDevice returns ErrNotFound when the user never signed in from it.
	GetDevice(ctx context.Context, userID, id string) (Device, error)
	// ListUserDevices returns the user's devices, most recently seen first.
	ListUserDevices(ctx context.Context, userID string) ([]Device, error)
	// ForgetDevice deletes the (user, device) row, so the user's next
	// sign-in from it counts as one from a new device; ErrNotFound when
	// there is none.
	ForgetDevice(ctx context.Context, userID, id string) error
}

// SignInRecord is one successful sign-in and where it came from: the
// history the risk engine reads, and what admins see with its reasons.
type SignInRecord struct {
	ID        int64
	UserID    string
	Time      time.Time
	IP        string
	Country   string
	City      string
	Lat, Lon  float64
	HasCoords bool
	DeviceID  string
	ClientID  string
	ACR       string
	Decision  string   // the risk engine's outcome: allow, step_up
	Reasons   []string // the risk engine's reasons, in plain words
}

type SignIns interface {
	RecordSignIn(ctx context.Context, s SignInRecord) (int64, error)
	// RecentSignIns returns the user's sign-ins, newest first, at most limit.
	RecentSignIns(ctx context.Context, userID string, limit int) ([]SignInRecord, error)
	// SignInCountries lists the distinct non-empty countries of the user's
	// sign-ins, sorted.
	SignInCountries(ctx context.Context, userID string) ([]string, error)
}

// Retention of the sign-in history. A backend's TrimSignIns(ctx, now)
// deletes the sign-ins older than SignInRetention, then each user's
// beyond their SignInsKeptPerUser newest; the garbage collection calls it
// where a backend has it. It is not part of SignIns: the policy is the
// deployment's, not the storage contract's.
//
// The risk engine reads only the newest sign-ins and the set of
// countries, so all trimming changes is that a country last seen over
// SignInRetention ago counts as new again. Devices are not trimmed: a
// device row is per device, not per sign-in, and forgetting one would ask
// its user to step up on their next sign-in from it.
const (
	// SignInRetention is how long a sign-in record is kept: a little over
	// a year, so that a yearly habit (a trip home, a sign-in once a
	// year) is still on record when it comes round again.
	SignInRetention = 400 * 24 * time.Hour
	// SignInsKeptPerUser is how many of a user's newest sign-ins are kept
	// at most, whatever their age. It bounds the history of a user that
	// signs in very often (a shared account, a script) while leaving
	// months of it to everyone else.
	SignInsKeptPerUser = 1000
)

// Meta is a small key/value table for facts such as the last issuer.
type Meta interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}
