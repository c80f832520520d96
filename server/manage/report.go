package manage

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// Reported is what ending a reported sign-in ended.
type Reported struct {
	SessionEnded    bool // false: it had ended already (signed out, expired)
	TokensRevoked   int
	DeviceForgotten bool
}

// ReportSignIn ends a sign-in its user says was not theirs: its browser
// session sid and every token issued from it — also when the session has
// ended already, since its refresh tokens outlive it — with a back-channel
// logout to every app; it forgets the device the sign-in came from, so the
// next sign-in there is treated as one from a new device; and it raises
// the alerting signin.reported. One transaction, like every kill action.
func (m *Manager) ReportSignIn(ctx context.Context, userID, sid, deviceID string) (Reported, error) {
	if sid == "" {
		return Reported{}, invalid("a reported sign-in needs its session id")
	}
	var out Reported
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		owner, err := m.Store.DeleteSessionBySID(ctx, sid)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case owner != userID:
			return fmt.Errorf("%w: that session belongs to another user", ErrInvalid)
		default:
			out.SessionEnded = true
		}
		if out.TokensRevoked, err = m.Store.RevokeSession(ctx, sid); err != nil {
			return err
		}
		// Also when the session had ended here: an app may still hold one.
		if err := m.queueBackchannelLogout(ctx, userID, []string{sid}); err != nil {
			return err
		}
		if deviceID != "" {
			err := m.Store.ForgetDevice(ctx, userID, deviceID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			out.DeviceForgotten = err == nil
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.SigninReported, UserID: userID, Result: audit.Success,
			Details: map[string]string{"sid": shortID(sid), "session_ended": fmt.Sprint(out.SessionEnded),
				"tokens_revoked": fmt.Sprint(out.TokensRevoked), "device": shortID(deviceID),
				"device_forgotten": fmt.Sprint(out.DeviceForgotten)}})
	})
	return out, err
}
