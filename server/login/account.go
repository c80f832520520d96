package login

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/server/risk"
	"github.com/keygate/keygate/storage"
)

// recentActivity is how many sign-ins the account page lists.
const recentActivity = 20

// AccountData is the account page's view.
type AccountData struct {
	CSRF, Email, Name, ACR string
	AMR                    []string
	// HasKey: the user has a usable security key or passkey, which then
	// confirms changes to the account's factors.
	HasKey        bool
	AuthTime      time.Time
	RecoveryCodes int
	Keys          []KeyView
	TOTP          TOTPView
	Devices       []DeviceView
	// Sessions lists this session first, then the others, most recently
	// seen first; OtherSessions counts the others.
	Sessions      []SessionView
	OtherSessions int
	Activity      []SignInView
}

// KeyView is one security key or passkey as the account page lists it.
type KeyView struct {
	ID, Name, Kind, Disabled string
	CreatedAt, LastUsedAt    time.Time
}

// TOTPView is whether the user has a confirmed authenticator app.
type TOTPView struct {
	Set   bool
	Since Moment
}

// DeviceView is one browser the user signed in from.
type DeviceView struct {
	Name                string // the user agent family: "Firefox on Linux"
	FirstSeen, LastSeen Moment
	Country             string // last country, ISO code; "" when unknown
	SignIns             int
	Current             bool // the browser showing the page
}

// SessionView is one active browser session.
type SessionView struct {
	SID, Browser, IP    string
	Created, LastSeenAt Moment
	Current             bool
}

// SignInView is one past sign-in, in plain words.
type SignInView struct {
	Time       Moment
	Place      string
	Device     string
	ThisDevice bool
	App        string
	Decision   string
	Checked    bool // the risk engine asked for more than the usual
	Reasons    []string
}

// Moment is a time as pages show it: text for people, ISO for <time>.
type Moment struct{ ISO, Text string }

func moment(t time.Time) Moment {
	if t.IsZero() {
		return Moment{}
	}
	t = t.UTC()
	return Moment{ISO: t.Format(time.RFC3339), Text: t.Format("2006-01-02 15:04 MST")}
}

func (h *Handler) account(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.Load(r)
	if err != nil {
		return err
	}
	auth := sess.Auth()
	if auth.UserID == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	user, err := h.d.Store.GetUser(ctx, auth.UserID)
	if err != nil {
		return err
	}
	left, err := h.d.Store.CountRecoveryCodes(ctx, user.ID)
	if err != nil {
		return err
	}
	creds, err := h.d.Store.ListWebAuthnCredentials(ctx, user.ID)
	if err != nil {
		return err
	}
	data := AccountData{CSRF: sess.CSRFToken(), Email: user.Email, Name: user.Name, ACR: auth.ACR,
		AMR: auth.AMR, AuthTime: auth.AuthTime, RecoveryCodes: left}
	for _, c := range creds {
		kind := "device-bound"
		if c.BackupEligible {
			kind = "synced passkey"
		}
		data.Keys = append(data.Keys, KeyView{ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name, Kind: kind,
			Disabled: c.DisabledReason, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt})
		if c.DisabledAt.IsZero() {
			data.HasKey = true
		}
	}
	if data.TOTP, err = h.totpView(ctx, user.ID); err != nil {
		return err
	}
	devices, err := h.d.Store.ListUserDevices(ctx, user.ID)
	if err != nil {
		return err
	}
	thisDevice := h.d.Devices.ID(r)
	for _, d := range devices {
		data.Devices = append(data.Devices, DeviceView{Name: cmpOr(d.UserAgent, "Unknown browser"),
			FirstSeen: moment(d.FirstSeen), LastSeen: moment(d.LastSeen), Country: d.LastCountry,
			SignIns: d.SignIns, Current: thisDevice != "" && d.ID == thisDevice})
	}
	if data.Sessions, err = h.sessionViews(ctx, user.ID, sess.SID()); err != nil {
		return err
	}
	for _, s := range data.Sessions {
		if !s.Current {
			data.OtherSessions++
		}
	}
	if data.Activity, err = h.activity(ctx, user.ID, devices, thisDevice); err != nil {
		return err
	}
	if err := sess.Save(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageAccount, "Your account", data)
	return nil
}

// totpView tells whether an authenticator app is set up; one whose
// enrolment was never confirmed does not count.
func (h *Handler) totpView(ctx context.Context, userID string) (TOTPView, error) {
	t, err := h.d.Store.GetTOTP(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return TOTPView{}, nil
	}
	if err != nil || t.ConfirmedAt.IsZero() {
		return TOTPView{}, err
	}
	return TOTPView{Set: true, Since: moment(t.ConfirmedAt)}, nil
}

// activeSessions lists the user's sessions that have not expired.
func (h *Handler) activeSessions(ctx context.Context, userID string) ([]storage.BrowserSession, error) {
	all, err := h.d.Store.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := h.d.Now()
	return slices.DeleteFunc(all, func(s storage.BrowserSession) bool { return !s.ExpiresAt.After(now) }), nil
}

// sessionViews lists the active sessions, the current one (sid) first and
// the rest most recently seen first.
func (h *Handler) sessionViews(ctx context.Context, userID, sid string) ([]SessionView, error) {
	active, err := h.activeSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(active, func(a, b storage.BrowserSession) int {
		switch {
		case a.SID == sid:
			return -1
		case b.SID == sid:
			return 1
		}
		return b.LastSeenAt.Compare(a.LastSeenAt)
	})
	out := make([]SessionView, 0, len(active))
	for _, s := range active {
		browser := "Unknown browser"
		if s.UserAgent != "" {
			browser = uaFamily(s.UserAgent)
		}
		out = append(out, SessionView{SID: s.SID, Browser: browser, IP: cmpOr(s.IP, "unknown"),
			Created: moment(s.CreatedAt), LastSeenAt: moment(s.LastSeenAt), Current: s.SID == sid})
	}
	return out, nil
}

// activity words the user's recent sign-ins: where, on what, into which
// app, and what the risk engine made of it.
func (h *Handler) activity(ctx context.Context, userID string, devices []storage.Device, thisDevice string) ([]SignInView, error) {
	recent, err := h.d.Store.RecentSignIns(ctx, userID, recentActivity)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, d := range devices {
		names[d.ID] = cmpOr(d.UserAgent, "Unknown browser")
	}
	apps := map[string]string{"": "keygate (this account page)"}
	out := make([]SignInView, 0, len(recent))
	for _, s := range recent {
		app, ok := apps[s.ClientID]
		if !ok {
			c, err := h.d.Store.GetClient(ctx, s.ClientID)
			switch {
			case err == nil:
				app = c.Name
			case errors.Is(err, storage.ErrNotFound):
				app = "A removed app (" + s.ClientID + ")"
			default:
				return nil, err
			}
			apps[s.ClientID] = app
		}
		device := "Unknown device"
		if n, ok := names[s.DeviceID]; ok {
			device = n
		}
		decision, checked := decisionWords(s.Decision)
		out = append(out, SignInView{Time: moment(s.Time), Place: placeWords(s.City, s.Country), Device: device,
			ThisDevice: thisDevice != "" && s.DeviceID == thisDevice, App: app, Decision: decision,
			Checked: checked, Reasons: s.Reasons})
	}
	return out, nil
}

func placeWords(city, country string) string {
	var parts []string
	for _, p := range []string{city, country} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "Unknown place"
	}
	return strings.Join(parts, ", ")
}

// decisionWords says what the risk engine decided, and whether it was
// more than a plain yes.
func decisionWords(d string) (string, bool) {
	switch risk.Outcome(d) {
	case risk.Allow, "":
		return "Allowed", false
	case risk.StepUp:
		return "Allowed after an extra check", true
	case risk.Deny:
		return "Blocked", true
	}
	return d, true
}

func (h *Handler) accountLogout(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess, err := h.d.Sessions.LoadForm(r)
	if err != nil {
		return err
	}
	if auth := sess.Auth(); auth.UserID != "" {
		if _, err := h.manager(r, auth.UserID).SignOut(ctx, auth.UserID, sess.SID(), ""); err != nil {
			return err
		}
	}
	if err := sess.Destroy(w); err != nil {
		return err
	}
	h.d.Render.Page(w, r, http.StatusOK, render.PageMessage, "Signed out", render.MessageData{Message: "You are signed out of keygate."})
	return nil
}
