package fositestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/storage"
)

// ErrGrantEnded: what a token request stands on was ended — its user
// suspended or deleted, its session ended, its code or refresh token
// revoked, its app disabled or its secret rotated — after fosite read it
// and before the token was written. The token is not issued.
//
// fosite reads a code or refresh token before it opens the transaction
// that writes the new tokens, so a kill action can commit in between. The
// writes re-check everything inside that transaction, where they are
// ordered with the kill by the database: either the new tokens are
// committed first, and the kill revokes them with the rest, or the kill
// is, and the check refuses them.
var ErrGrantEnded = errors.New("the grant was ended")

// ClientAuth records which stored secret hash authenticated the client of
// a token request (nil for a public client), so the transaction that
// issues the token can check that this secret still works.
type ClientAuth struct {
	SecretHash []byte
}

type clientAuthKey struct{}

// WithClientAuth returns a context that carries a ClientAuth for the
// client authentication to fill in (see RecordingHasher in server/oidc).
func WithClientAuth(ctx context.Context) (context.Context, *ClientAuth) {
	a := &ClientAuth{}
	return context.WithValue(ctx, clientAuthKey{}, a), a
}

// ClientAuthFrom returns the context's ClientAuth, or nil.
func ClientAuthFrom(ctx context.Context) *ClientAuth {
	a, _ := ctx.Value(clientAuthKey{}).(*ClientAuth)
	return a
}

// LiveGrant checks, inside the write transaction ctx carries, that the
// client is still registered and enabled, that the secret that
// authenticated this request (if ctx says which) still works, and that the
// subject (a user id; "" for client_credentials) exists, is not suspended
// and is in a group the app allows. It answers ErrGrantEnded, wrapped with the reason, if not.
func (s *Store) LiveGrant(ctx context.Context, clientID, subject string) error {
	_, _, err := s.liveGrant(ctx, clientID, subject, false)
	return err
}

// LiveUser is LiveGrant for a grant to the user userID whose writer goes
// on to use the user and their groups (the claims of a code's tokens, the
// assurance the groups ask for): it returns them as it read them, in the
// same transaction, so that they are read once.
func (s *Store) LiveUser(ctx context.Context, clientID, userID string) (storage.User, []storage.Group, error) {
	if userID == "" {
		return storage.User{}, nil, errors.New("fositestore: LiveUser without a user")
	}
	return s.liveGrant(ctx, clientID, userID, true)
}

// liveGrant is LiveGrant, returning what it read of the subject: the
// user, and their groups if wantGroups or the app names allowed groups.
func (s *Store) liveGrant(ctx context.Context, clientID, subject string, wantGroups bool) (storage.User, []storage.Group, error) {
	c, err := s.db.GetClient(ctx, clientID) // in a transaction: never cached
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.User{}, nil, fmt.Errorf("%w: the app was deleted", ErrGrantEnded)
	case err != nil:
		return storage.User{}, nil, err
	case c.Disabled:
		return storage.User{}, nil, fmt.Errorf("%w: the app was disabled", ErrGrantEnded)
	}
	if a := ClientAuthFrom(ctx); a != nil && len(a.SecretHash) > 0 && !newClient(c, s.opts.Now()).hasSecretHash(a.SecretHash) {
		return storage.User{}, nil, fmt.Errorf("%w: the app's secret was rotated", ErrGrantEnded)
	}
	if subject == "" {
		return storage.User{}, nil, nil
	}
	u, err := s.db.GetUser(ctx, subject)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return u, nil, fmt.Errorf("%w: the user was deleted", ErrGrantEnded)
	case err != nil:
		return u, nil, err
	case u.Suspended():
		return u, nil, fmt.Errorf("%w: %w", ErrGrantEnded, ErrUserSuspended)
	}
	if !wantGroups && len(c.AllowedGroups) == 0 {
		return u, nil, nil
	}
	groups, err := s.db.ListUserGroups(ctx, subject)
	if err != nil {
		return u, nil, err
	}
	if len(c.AllowedGroups) > 0 && !c.Allows(groups) {
		return u, groups, fmt.Errorf("%w: %w", ErrGrantEnded, ErrNotInAllowedGroup)
	}
	return u, groups, nil
}

// ErrUserSuspended: the grant's user was suspended.
var ErrUserSuspended = errors.New("the user was suspended")

// ErrNotInAllowedGroup: the app names the groups whose members may use it,
// and the user is in none of them (any more).
var ErrNotInAllowedGroup = errors.New("the user is in no group allowed to use the app")

// liveRecord checks, inside the write transaction, that the code or
// refresh token fosite read is still active, and then its grant (LiveGrant).
// A refresh token rotated longer ago than the grace window counts as used.
func (s *Store) liveRecord(ctx context.Context, kind, signature string) (storage.TokenRecord, error) {
	rec, err := s.db.GetToken(ctx, kind, signature)
	if errors.Is(err, storage.ErrNotFound) {
		return rec, fmt.Errorf("%w: the %s is gone", ErrGrantEnded, kind)
	}
	if err != nil {
		return rec, err
	}
	if !rec.Active || s.rotatedPastGrace(rec) {
		return rec, fmt.Errorf("%w: the %s was used or revoked", ErrGrantEnded, kind)
	}
	return rec, s.LiveGrant(ctx, rec.ClientID, rec.Subject)
}

func (s *Store) rotatedPastGrace(rec storage.TokenRecord) bool {
	return !rec.RotatedAt.IsZero() && s.opts.Now().Sub(rec.RotatedAt) > s.opts.RefreshGrace
}
