package admin

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
)

// auditPerPage is the page size of the audit page.
const auditPerPage = 50

// eventTypes are offered in the audit filter (any other value may still
// be typed).
var eventTypes = []string{
	audit.SigninSucceeded, audit.SigninFailed, audit.SigninThrottled, audit.SigninSSO, audit.SigninDenied,
	audit.RiskStepUp, audit.SignedOut, audit.EnrollmentStarted, audit.PasswordSet, audit.TOTPEnrolled,
	audit.RecoveryCodesIssued, audit.RecoveryCodeUsed, audit.WebAuthnRegistered, audit.WebAuthnRemoved,
	audit.WebAuthnRenamed, audit.WebAuthnRefused, audit.WebAuthnCloneSuspected, audit.WebAuthnModelCompromised,
	audit.TokenIssued, audit.TokenFailed, audit.TokenRefreshed, audit.TokenRevoked, audit.RefreshReused,
	audit.UserCreated, audit.UserSuspended, audit.UserUnsuspended, audit.UserDeleted, audit.RoleGranted,
	audit.RoleRevoked, audit.SessionRevoked, audit.TOTPReset, audit.WebAuthnRevoked, audit.ClientCreated,
	audit.ClientUpdated, audit.ClientSecretRotated, audit.ClientDisabled, audit.ClientEnabled, audit.ClientDeleted,
	audit.AdminBulkRead, audit.KeysRotated, audit.EnrollmentCompleted, audit.GroupCreated, audit.GroupUpdated,
	audit.GroupDeleted, audit.GroupMemberAdded, audit.GroupMemberRemoved, audit.AccessRefused,
	audit.SigninReported, audit.PasswordResetRequested, audit.PasswordReset, audit.EnrollmentEmailed,
}

// auditQuery is the audit filter as given in a query string (the page's
// form, the export link and the API share it).
type auditQuery struct {
	User, ClientID, Type, Result, Since, Until string
	Filter                                     storage.AuditFilter
	// NoMatch: the filter names a user email nobody has.
	NoMatch bool
}

// parseAuditQuery reads user (an id, or an email), user_id, email,
// client_id, type, result, since and until (dates, inclusive, UTC; or
// RFC 3339 times) and before_seq.
func (h *Handler) parseAuditQuery(ctx context.Context, q url.Values) (auditQuery, error) {
	aq := auditQuery{User: strings.TrimSpace(q.Get("user")), ClientID: strings.TrimSpace(q.Get("client_id")),
		Type: strings.TrimSpace(q.Get("type")), Result: strings.TrimSpace(q.Get("result")),
		Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until"))}
	if v := strings.TrimSpace(q.Get("user_id")); v != "" {
		aq.User = v
	}
	if v := strings.TrimSpace(q.Get("email")); v != "" {
		aq.User = v
	}
	f := storage.AuditFilter{ClientID: aq.ClientID, Type: aq.Type, Result: aq.Result}
	if strings.Contains(aq.User, "@") {
		u, err := h.d.Store.GetUserByEmail(ctx, strings.ToLower(aq.User))
		switch {
		case err == nil:
			f.UserID = u.ID
		case errors.Is(err, storage.ErrNotFound):
			aq.NoMatch = true
		default:
			return aq, err
		}
	} else {
		f.UserID = aq.User
	}
	var err error
	if f.Since, err = parseDay(aq.Since, false); err != nil {
		return aq, httpx.Errorf(http.StatusBadRequest, "“Since” is not a date (YYYY-MM-DD).", nil)
	}
	if f.Until, err = parseDay(aq.Until, true); err != nil {
		return aq, httpx.Errorf(http.StatusBadRequest, "“Until” is not a date (YYYY-MM-DD).", nil)
	}
	if v := q.Get("before_seq"); v != "" {
		if f.BeforeSeq, err = strconv.ParseInt(v, 10, 64); err != nil || f.BeforeSeq < 0 {
			return aq, httpx.Errorf(http.StatusBadRequest, "before_seq is not a sequence number.", nil)
		}
	}
	aq.Filter = f
	return aq, nil
}

// parseDay reads a date (midnight UTC; with end, the midnight after, as
// Until is exclusive) or an RFC 3339 time.
func parseDay(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.Add(24 * time.Hour)
		}
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// values is the filter as a query string, without paging.
func (aq auditQuery) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"user": aq.User, "client_id": aq.ClientID, "type": aq.Type,
		"result": aq.Result, "since": aq.Since, "until": aq.Until} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// AuditData is the audit page.
type AuditData struct {
	Base
	User, ClientID, Type, Result, Since, Until string
	Types                                      []string
	Results                                    []Option
	Events                                     []EventRow
	NoMatch                                    bool
	NewestURL, OlderURL, ExportURL             string
	Chain                                      *ChainData
}

// EventRow is one audit event.
type EventRow struct {
	Seq                                                       int64
	Time, Type, Actor, UserID, ClientID, IP, Result, Decision string
	Reasons                                                   []string
	Details                                                   []Detail
}

// Detail is one key and value of an event's details.
type Detail struct{ Key, Value string }

func eventRow(e storage.AuditEvent) EventRow {
	row := EventRow{Seq: e.Seq, Time: e.Time.UTC().Format("2006-01-02 15:04:05 UTC"), Type: e.Type, Actor: e.Actor,
		UserID: e.UserID, ClientID: e.ClientID, IP: e.IP, Result: e.Result}
	row.Decision = e.Details["decision"]
	if rs := e.Details["reasons"]; rs != "" {
		row.Reasons = strings.Split(rs, "; ")
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		if k != "decision" && k != "reasons" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		row.Details = append(row.Details, Detail{Key: k, Value: e.Details[k]})
	}
	return row
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	aq, err := h.parseAuditQuery(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	data := AuditData{Base: h.base(r, p, "audit"), User: aq.User, ClientID: aq.ClientID, Type: aq.Type, Result: aq.Result,
		Since: aq.Since, Until: aq.Until, Types: eventTypes, NoMatch: aq.NoMatch}
	for _, res := range []string{"", audit.Success, audit.Failure, audit.Denied} {
		label := res
		if label == "" {
			label = "any"
		}
		data.Results = append(data.Results, Option{Value: res, Label: label, Selected: res == aq.Result})
	}
	v := aq.values()
	data.NewestURL = "/admin/audit?" + v.Encode()
	data.ExportURL = "/admin/audit/export?" + v.Encode()
	if f := aq.Filter; f.BeforeSeq > 0 {
		if err := h.countRead(r, p, readAuditPage, aq.values().Encode()); err != nil {
			return err
		}
	}
	if !aq.NoMatch {
		f := aq.Filter
		f.Limit = auditPerPage
		events, err := h.d.Store.ListAudit(r.Context(), f)
		if err != nil {
			return err
		}
		for _, e := range events {
			data.Events = append(data.Events, eventRow(e))
		}
		if len(events) == auditPerPage {
			older := aq.values()
			older.Set("before_seq", strconv.FormatInt(events[len(events)-1].Seq, 10))
			data.OlderURL = "/admin/audit?" + older.Encode()
		}
	}
	if res, ok := h.cachedChain(); ok {
		data.Chain = chainData(res)
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminAudit, "Audit log", data)
}

// auditLine is one event of an export: every stored field, hashes in
// hex, so the chain can be checked offline.
type auditLine struct {
	Seq       int64             `json:"seq"`
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	Actor     string            `json:"actor,omitempty"`
	UserID    string            `json:"user_id,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Result    string            `json:"result"`
	Details   map[string]string `json:"details,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
}

// exportPage is how many events an export reads per query.
const exportPage = 500

// exportAudit streams the events aq selects, newest first, as JSON Lines.
// limit > 0 stops after that many. The read is counted (bulkread.go)
// before anything is written.
func (h *Handler) exportAudit(w http.ResponseWriter, r *http.Request, p *principal, aq auditQuery, limit int, attachment bool) error {
	if err := h.countRead(r, p, readAudit, aq.values().Encode()); err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/x-ndjson")
	hdr.Set("Cache-Control", "no-store")
	if attachment {
		hdr.Set("Content-Disposition", `attachment; filename="keygate-audit-`+h.d.Now().UTC().Format("20060102-150405")+`.jsonl"`)
	}
	w.WriteHeader(http.StatusOK)
	if aq.NoMatch {
		return nil
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	f := aq.Filter
	written := 0
	for {
		f.Limit = exportPage
		if limit > 0 {
			f.Limit = min(exportPage, limit-written)
		}
		events, err := h.d.Store.ListAudit(r.Context(), f)
		if err != nil {
			// The status is sent; a truncated export is all that can be
			// signalled (the last line is not the filter's oldest event).
			h.d.Logger.ErrorContext(r.Context(), "audit export", "err", err)
			return bw.Flush()
		}
		if f.BeforeSeq > 0 && len(events) > 0 && events[0].Seq >= f.BeforeSeq {
			// The store ignored the bound: stop rather than stream the
			// same page forever.
			h.d.Logger.ErrorContext(r.Context(), "audit export: the store does not page by BeforeSeq")
			return bw.Flush()
		}
		for _, e := range events {
			if err := enc.Encode(auditLine{Seq: e.Seq, Time: e.Time.UTC(), Type: e.Type, Actor: e.Actor, UserID: e.UserID,
				ClientID: e.ClientID, IP: e.IP, UserAgent: e.UserAgent, Result: e.Result, Details: e.Details,
				PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}); err != nil {
				return nil // the client went away
			}
		}
		written += len(events)
		if len(events) < f.Limit || (limit > 0 && written >= limit) {
			return bw.Flush()
		}
		f.BeforeSeq = events[len(events)-1].Seq
	}
}

func (h *Handler) auditExport(w http.ResponseWriter, r *http.Request, p *principal) error {
	aq, err := h.parseAuditQuery(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	return h.exportAudit(w, r, p, aq, 0, true)
}

// chainResult is the outcome of walking the whole audit log.
type chainResult struct {
	OK      bool
	Count   int
	Problem string
	At      time.Time
	Took    time.Duration
}

// ChainData is the chain check as pages show it.
type ChainData struct {
	OK                       bool
	Count                    int
	Problem, CheckedAt, Took string
}

func chainData(c chainResult) *ChainData {
	return &ChainData{OK: c.OK, Count: c.Count, Problem: c.Problem, CheckedAt: when(c.At), Took: c.Took.Round(time.Millisecond).String()}
}

// chainCacheTTL is how long a chain check is reused.
const chainCacheTTL = time.Minute

// verifyChain walks the whole audit log with storage.ChainVerifier.
//
// The walk reads and hashes every event ever written, so it is not done on
// every audit page view (which would make the page's cost grow with the
// log and let anyone with a console session load the database at will).
// It runs on demand, from the page's "Check the chain" link; one walk at a
// time per process, and a result younger than chainCacheTTL is reused, so
// repeated clicks cost nothing. The audit page shows the last result while
// it is fresh. For continuous assurance run `keygate audit verify` from
// cron against a backup.
func (h *Handler) verifyChain(ctx context.Context) (chainResult, error) {
	c := &h.chain
	c.mu.Lock()
	defer c.mu.Unlock()
	now := h.d.Now()
	if !c.at.IsZero() && now.Sub(c.at) < chainCacheTTL {
		return c.result, nil
	}
	var v storage.ChainVerifier
	var broken error
	start := time.Now()
	err := h.d.Store.WalkAudit(ctx, func(e storage.AuditEvent) error {
		broken = v.Check(e)
		return broken
	})
	if err != nil && broken == nil {
		return chainResult{}, err // could not read the log: no verdict
	}
	res := chainResult{OK: broken == nil, Count: v.Count, At: now, Took: time.Since(start)}
	if broken != nil {
		res.Problem = broken.Error()
	}
	c.at, c.result = now, res
	return res, nil
}

// cachedChain is the last chain check while it is fresh.
func (h *Handler) cachedChain() (chainResult, bool) {
	c := &h.chain
	if !c.mu.TryLock() {
		return chainResult{}, false // a walk is running
	}
	defer c.mu.Unlock()
	if c.at.IsZero() || h.d.Now().Sub(c.at) >= chainCacheTTL {
		return chainResult{}, false
	}
	return c.result, true
}

// VerifyData is the chain check page.
type VerifyData struct {
	Base
	Chain *ChainData
}

func (h *Handler) verifyPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	res, err := h.verifyChain(r.Context())
	if err != nil {
		return err
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminVerify, "Audit chain check", VerifyData{Base: h.base(r, p, "audit"), Chain: chainData(res)})
}
