package session

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// Errors of a flow that cannot go on; their messages are shown as they are.
var (
	ErrFlowGone  = httpx.Errorf(http.StatusBadRequest, "This sign-in has expired. Go back to the app and start again.", nil)
	ErrFlowOther = httpx.Errorf(http.StatusForbidden, "This sign-in was started in another browser session. Go back to the app and start again.", nil)
	ErrCSRF      = httpx.Errorf(http.StatusForbidden, "The form expired. Reload the page and try again.", nil)
)

// LoadFlow returns the sign-in flow id, checked to belong to this browser
// session: a flow id leaked in a URL or a log is useless anywhere else.
func LoadFlow(ctx context.Context, db storage.Flows, x *Session, id string, now time.Time) (storage.Flow, error) {
	f, err := db.GetFlow(ctx, id, now)
	if errors.Is(err, storage.ErrNotFound) {
		return f, ErrFlowGone
	}
	if err != nil {
		return f, err
	}
	if !slices.Equal(f.SessionHash, x.IDHash()) {
		return f, ErrFlowOther
	}
	return f, nil
}
