package admin

import (
	"context"
	"net/http"
	"strconv"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// Attempt scopes of the exfiltration alert. Reads are counted in storage,
// not in memory, so the count survives a restart and every keygate process
// sharing the database sees the same one.
const (
	scopeRead      = "admin_read"
	scopeReadAlert = "admin_read_alert"
)

// Kinds of read that count: a user's details, an audit export, and an
// older page of the audit log (paging back through it is an export by
// hand; the newest page, what an administrator glances at, is not
// counted).
const (
	readUser      = "user_detail"
	readAudit     = "audit_export"
	readAuditPage = "audit_page"
)

// countRead records one read of personal data or of the audit log by p
// and, when p's reads within BulkReadWindow exceed BulkReadLimit, writes
// one alerting admin.bulk_read event — one per window and actor, however
// many reads follow.
//
// This alerts, it does not block: the read goes ahead. An administrator
// in an incident may legitimately read many accounts, and a console that
// locks its operators out mid-incident gets bypassed; what matters is that
// someone else hears about it at once (the event goes to every alert
// webhook) and that it cannot be done quietly. The caller fails only if
// the count or the alert cannot be written: a read that cannot be counted
// does not happen.
func (h *Handler) countRead(r *http.Request, p *principal, kind, subject string) error {
	now := h.d.Now()
	since := now.Add(-h.d.BulkReadWindow)
	// One write transaction: concurrent reads are serialised, so exactly
	// one of them sees the limit crossed with no alert yet in the window.
	return h.d.Store.InTx(r.Context(), func(ctx context.Context) error {
		if err := h.d.Store.RecordAttempt(ctx, scopeRead, p.Actor, now); err != nil {
			return err
		}
		n, err := h.d.Store.CountAttempts(ctx, scopeRead, p.Actor, since)
		if err != nil || n <= h.d.BulkReadLimit {
			return err
		}
		alerted, err := h.d.Store.CountAttempts(ctx, scopeReadAlert, p.Actor, since)
		if err != nil || alerted > 0 {
			return err
		}
		if err := h.d.Store.RecordAttempt(ctx, scopeReadAlert, p.Actor, now); err != nil {
			return err
		}
		return h.d.Audit.RecordRequest(r.WithContext(ctx), storage.AuditEvent{
			Type: audit.AdminBulkRead, Actor: p.Actor, ClientID: p.ClientID, Result: audit.Success,
			Details: map[string]string{
				"reads":  strconv.Itoa(n),
				"limit":  strconv.Itoa(h.d.BulkReadLimit),
				"window": h.d.BulkReadWindow.String(),
				"last":   kind,
				"target": subject,
			},
		})
	})
}
