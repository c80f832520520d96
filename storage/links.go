package storage

import (
	"context"
	"time"
)

// Purposes of a mailed link: each is accepted only for its own purpose, so
// a link mailed for one thing never does another.
const (
	// LinkSignInReport: "this wasn't me" in a sign-in notice; it ends the
	// sign-in's session (SID) and forgets its device (DeviceID).
	LinkSignInReport = "signin_report"
	// LinkPasswordReset: "forgot password"; it lets its holder choose a new
	// password after a second factor.
	LinkPasswordReset = "password_reset"
)

// Link is a single-use link mailed to a user. Only a hash of its token is
// stored.
type Link struct {
	TokenHash []byte
	Purpose   string
	UserID    string
	SID       string // the session it concerns, if any
	DeviceID  string // the device it concerns, if any
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

type Links interface {
	CreateLink(ctx context.Context, l Link) error
	// GetLink returns a usable link of purpose without using it up;
	// ErrNotFound if none exists, it is used, or expired at now.
	GetLink(ctx context.Context, purpose string, tokenHash []byte, now time.Time) (Link, error)
	// ConsumeLink marks the link used and returns it, atomically: of two
	// calls with one link, one gets it and the other ErrNotFound (as for a
	// used or expired link, or one of another purpose).
	ConsumeLink(ctx context.Context, purpose string, tokenHash []byte, now time.Time) (Link, error)
	// DeleteUserLinks drops the user's links of purpose, used or not:
	// a new password voids every other link to choose one.
	DeleteUserLinks(ctx context.Context, userID, purpose string) (int, error)
	// DeleteExpiredLinks drops links expired at now, used or not.
	DeleteExpiredLinks(ctx context.Context, now time.Time) (int, error)
}
