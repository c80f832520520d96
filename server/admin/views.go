package admin

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// Base is what every console page has: the form token, who is signed in
// with which role and what it may do, which section is open and a notice
// from the previous step.
type Base struct {
	CSRF    string
	Me      string // the signed-in user's email
	MyRole  string
	Can     Can
	Section string
	Notice  string
	// Freshness is how recent a key tap sensitive actions need, in words.
	Freshness string
}

// Notices shown after a redirect, by code; only these texts can appear, so
// a crafted link cannot put words in the console's mouth.
const (
	noticeStepUp = "step-up"
	noticeStale  = "reverify"
)

var notices = map[string]string{
	"suspended":      "The user is suspended: their sessions ended and their tokens were revoked.",
	"unsuspended":    "The user can sign in again.",
	"deleted":        "The user was deleted.",
	"role-set":       "The user's role was changed; it applies to their next request.",
	"role-removed":   "The user no longer has a console role.",
	"alert-mail-on":  "Every alert is now mailed to you.",
	"alert-mail-off": "Alerts are no longer mailed to you.",
	"group-joined":   "The user was added to the group.",
	"group-left":     "The user was removed from the group: apps only it allowed lost them at once.",
	"group-created":  "The group was created.",
	"group-updated":  "The group was saved.",
	"group-deleted":  "The group was deleted: apps only it allowed lost its members at once.",
	"members-added":  "The members were added.",
	"member-removed": "The member was removed: apps only the group allowed lost them at once.",
	"totp-reset":     "The authenticator app was removed. Send the user an enrolment link to set up a new one.",
	"enrollment-emailed": "The enrolment link is queued for email to the user; keygate sends it in the background and " +
		"keeps trying while the mail server is unreachable.",
	"sessions-revoked": "Every session of the user ended and their tokens were revoked.",
	"session-revoked":  "The session ended and its tokens were revoked.",
	"key-renamed":      "The key was renamed.",
	"key-revoked":      "The key was revoked. It stays listed with the reason.",
	"app-updated":      "The app was saved.",
	"app-disabled":     "The app is disabled: its tokens stopped working.",
	"app-enabled":      "The app is enabled again.",
	"app-deleted":      "The app was deleted.",
}

func (h *Handler) base(r *http.Request, p *principal, section string) Base {
	b := Base{Me: p.User.Email, MyRole: p.User.Role, Can: p.can(), Section: section, Freshness: words(h.d.Freshness)}
	if p.Session != nil {
		b.CSRF = p.Session.CSRFToken()
	}
	switch code := r.URL.Query().Get("notice"); code {
	case noticeStepUp:
		b.Notice = "You confirmed with your security key. Repeat the action to go on."
	case noticeStale:
		b.Notice = "That action needs a key tap within the last " + b.Freshness +
			". You have just confirmed with your key: repeat the action."
	default:
		b.Notice = notices[code]
	}
	return b
}

// words renders a duration for people: "5 minutes", "1 hour", "7 days".
func words(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case d <= 0:
		return "none"
	case d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return d.String()
}

// when formats a time for tables; a zero time is "never".
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// aaguid formats an authenticator model id as a UUID; "" when not
// disclosed (all zero) or malformed.
func aaguid(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	zero := true
	for _, c := range b {
		if c != 0 {
			zero = false
			break
		}
	}
	if zero {
		return ""
	}
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

func credID(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// parseCredID accepts a credential id as credID writes it (base64url
// without padding) or with its padding, and no other spelling of the same
// bytes: no stray bits in the last character, no line breaks (which the
// decoder would skip), no padding but the right one.
func parseCredID(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	enc := base64.RawURLEncoding.Strict()
	if strings.HasSuffix(s, "=") {
		enc = base64.URLEncoding.Strict()
	}
	b, err := enc.DecodeString(s)
	return b, err == nil && len(b) > 0
}

func keyKind(c storage.WebAuthnCredential) string {
	if c.BackupEligible {
		return "synced passkey"
	}
	return "device-bound"
}

// maxDuration bounds what duration accepts, however it is written: the
// console shows a long lifetime in days, and must read back what it shows.
const maxDuration = 3650 * 24 * time.Hour

// duration parses a lifetime as an administrator writes it: empty or "0"
// (none), a Go duration ("90m", "8h") or whole days ("7d"), at most ten
// years.
func duration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, true
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > int(maxDuration/(24*time.Hour)) {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0 && d <= maxDuration
}

// durationField renders a stored duration for an input: "" for none.
func durationField(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// hasAdminAPI reports whether the app may call the admin API.
func hasAdminAPI(c storage.Client) bool {
	for _, s := range c.Scopes {
		if s == manage.ScopeAdmin {
			return true
		}
	}
	return false
}

// lines splits a textarea into its non-empty trimmed lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
