package manage

import (
	"context"
	"encoding/json"

	"github.com/keygate/keygate/storage"
)

// OutboxBackchannelLogout is the outbox kind of OIDC Back-Channel Logout
// deliveries; the running server signs the logout token when it sends.
const OutboxBackchannelLogout = "backchannel_logout"

// BackchannelLogout is the payload queued per app and ended session.
type BackchannelLogout struct {
	ClientID string `json:"client_id"`
	Subject  string `json:"sub"`
	SID      string `json:"sid"`
}

// queueBackchannelLogoutTo tells one app that these sessions of the user
// ended for it (the user lost the app; their sessions go on elsewhere).
func (m *Manager) queueBackchannelLogoutTo(ctx context.Context, c storage.Client, userID string, sids []string) error {
	if c.BackchannelLogoutURI == "" || c.Disabled {
		return nil
	}
	now := m.Now()
	for _, sid := range sids {
		payload, err := json.Marshal(BackchannelLogout{ClientID: c.ID, Subject: userID, SID: sid})
		if err != nil {
			return err
		}
		if _, err := m.Store.EnqueueOutbox(ctx, storage.OutboxMessage{Kind: OutboxBackchannelLogout,
			Target: c.BackchannelLogoutURI, Payload: payload, NextAttemptAt: now, CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}

// queueBackchannelLogout tells every app with a back-channel logout URI
// that these sessions ended, in the caller's transaction. Apps that never
// saw a session simply find no match for its sid.
func (m *Manager) queueBackchannelLogout(ctx context.Context, userID string, sids []string) error {
	if len(sids) == 0 {
		return nil
	}
	clients, err := m.Store.ListClients(ctx)
	if err != nil {
		return err
	}
	for _, c := range clients {
		if err := m.queueBackchannelLogoutTo(ctx, c, userID, sids); err != nil {
			return err
		}
	}
	return nil
}
