package mfa

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/throttle"
	"github.com/keygate/keygate/storage"
)

// Deps is what the second-factor ceremonies need.
type Deps struct {
	Store       storage.Store
	Master      *keys.Master // seals TOTP seeds
	Passkeys    *Passkeys
	RecoveryKey []byte // keys recovery-code hashes
	Issuer      string // shown by authenticator apps beside the account
	Sessions    *session.Store
	Render      *render.Renderer
	Audit       *audit.Recorder
	Metrics     *metrics.Metrics
	Throttle    *throttle.Limiter
	Logger      *slog.Logger
	Now         func() time.Time
}

// Handler serves the second factors: verifying them during sign-in and
// enrolling them.
type Handler struct{ d Deps }

func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Handler{d: d}
}

func (h *Handler) Routes() []httpx.Route {
	page := func(f httpx.HandlerFunc) http.Handler { return httpx.Adapt(h.d.Render.Error, h.d.Logger, f) }
	api := func(f httpx.HandlerFunc) http.Handler { return httpx.Adapt(jsonError, h.d.Logger, f) }
	return []httpx.Route{
		{Method: http.MethodGet, Pattern: "/mfa/verify", Guard: httpx.GuardPublic, Handler: page(h.showSecondFactor)},
		{Method: http.MethodPost, Pattern: "/mfa/totp", Guard: httpx.GuardPublic, Handler: page(h.submitTOTP)},
		{Method: http.MethodGet, Pattern: "/mfa/recovery", Guard: httpx.GuardPublic, Handler: page(h.showRecovery)},
		{Method: http.MethodPost, Pattern: "/mfa/recovery", Guard: httpx.GuardPublic, Handler: page(h.submitRecovery)},
		{Method: http.MethodGet, Pattern: "/mfa/totp/enroll", Guard: httpx.GuardUser, Handler: page(h.showEnrollTOTP)},
		{Method: http.MethodPost, Pattern: "/mfa/totp/enroll", Guard: httpx.GuardUser, Handler: page(h.submitEnrollTOTP)},
		{Method: http.MethodGet, Pattern: "/mfa/enroll", Guard: httpx.GuardUser, Handler: page(h.showEnrollFactor)},
		{Method: http.MethodPost, Pattern: "/mfa/webauthn/register/begin", Guard: httpx.GuardUser, Handler: api(h.beginRegistration)},
		{Method: http.MethodPost, Pattern: "/mfa/webauthn/register/finish", Guard: httpx.GuardUser, Handler: api(h.finishRegistration)},
		{Method: http.MethodPost, Pattern: "/mfa/webauthn/assert/begin", Guard: httpx.GuardPublic, Handler: api(h.beginAssertion)},
		{Method: http.MethodPost, Pattern: "/mfa/webauthn/assert/finish", Guard: httpx.GuardPublic, Handler: api(h.finishAssertion)},
		{Method: http.MethodPost, Pattern: "/mfa/webauthn/passwordless/begin", Guard: httpx.GuardPublic, Handler: api(h.beginPasswordless)},
		{Method: http.MethodPost, Pattern: "/mfa/webauthn/passwordless/finish", Guard: httpx.GuardPublic, Handler: api(h.finishPasswordless)},
		{Method: http.MethodPost, Pattern: "/mfa/keys/rename", Guard: httpx.GuardUser, Handler: page(h.renameKey)},
		{Method: http.MethodPost, Pattern: "/mfa/keys/remove", Guard: httpx.GuardUser, Handler: page(h.removeKey)},
		{Method: http.MethodPost, Pattern: "/mfa/recovery-codes", Guard: httpx.GuardUser, Handler: page(h.regenerateRecoveryCodes)},
	}
}

func totpAAD(userID string) []byte { return []byte("totp:" + userID) }

func clientIP(r *http.Request) string {
	if ip := httpx.ClientIPFrom(r.Context()); ip.IsValid() {
		return ip.String()
	}
	return ""
}
