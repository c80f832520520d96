package manage

import (
	"context"
	"fmt"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// ResetPassword gives the user a new password (its hash) and, in the same
// transaction, voids every other link to choose one and ends every
// session and token of theirs with back-channel logouts: whoever knew the
// old one is signed out everywhere. The caller has checked the user's
// second factor.
func (m *Manager) ResetPassword(ctx context.Context, userID, passwordHash string) error {
	if passwordHash == "" {
		return invalid("a password reset needs the new password's hash")
	}
	return m.Store.InTx(ctx, func(ctx context.Context) error {
		if err := m.Store.UpdateUser(ctx, userID, func(u *storage.User) error {
			u.PasswordHash = passwordHash
			u.UpdatedAt = m.Now()
			return nil
		}); err != nil {
			return notFound(err, "no such user")
		}
		// Any other link to choose a password is void now.
		if _, err := m.Store.DeleteUserLinks(ctx, userID, storage.LinkPasswordReset); err != nil {
			return err
		}
		sids, n, err := m.cutOff(ctx, userID)
		if err != nil {
			return err
		}
		return m.record(ctx, storage.AuditEvent{Type: audit.PasswordReset, UserID: userID,
			Details: map[string]string{"sessions_ended": fmt.Sprint(len(sids)), "tokens_revoked": fmt.Sprint(n)}})
	})
}
