package risk

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Reason texts are shown to users on the step-up page and to admins: plain
// words, no internal jargon, and never an address (those go to the audit
// log, beside the decision). The helpers below keep them so.

// formatThousands writes n with comma thousands separators: 16,095.
func formatThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 || len(s) <= 3 {
		return s // never negative here; left as is if it were
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/3)
	head := (len(s)-1)%3 + 1
	b.WriteString(s[:head])
	for i := head; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// formatElapsed writes a duration the way people say it: "under a minute",
// "40 min", "2 h", "2.5 h" (half hours below ten hours), "14 h".
func formatElapsed(d time.Duration) string {
	mins := int64(d.Round(time.Minute) / time.Minute)
	switch {
	case mins < 1:
		return "under a minute"
	case mins < 60:
		return strconv.FormatInt(mins, 10) + " min"
	case d < 10*time.Hour:
		halves := int64(d.Round(30*time.Minute) / (30 * time.Minute))
		if halves%2 == 0 {
			return strconv.FormatInt(halves/2, 10) + " h"
		}
		return strconv.FormatInt(halves/2, 10) + ".5 h"
	default:
		return formatThousands(int64(d.Round(time.Hour)/time.Hour)) + " h"
	}
}

// formatIdle writes a long absence in days ("120 days"), shorter ones as
// formatElapsed does.
func formatIdle(d time.Duration) string {
	if days := int64(d / (24 * time.Hour)); days >= 2 {
		return formatThousands(days) + " days"
	}
	return formatElapsed(d)
}

// failedAttempts counts attempts; n is above a limit of at least 1, so
// always plural.
func failedAttempts(n int) string {
	return formatThousands(int64(n)) + " failed attempts"
}

// countryCode returns c as an upper-case code when it looks like one (two
// or three ASCII letters), so nothing else from a geolocation database
// reaches the page.
func countryCode(c string) (string, bool) {
	c = strings.TrimSpace(c)
	if len(c) < 2 || len(c) > 3 {
		return "", false
	}
	for i := 0; i < len(c); i++ {
		if b := c[i] | 0x20; b < 'a' || b > 'z' {
			return "", false
		}
	}
	return strings.ToUpper(c), true
}

// genericNetwork stands in for a network name that cannot be shown.
const genericNetwork = "trusted network"

// networkName is the configured name of a trusted network as shown to
// users: trimmed, without control characters, and replaced by a generic
// phrase when empty or when it looks like an address or prefix (an admin
// naming a network "10.0.0.0/8" must not leak it to the page).
func networkName(n string) string {
	n = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, n))
	if n == "" || containsAddress(n) {
		return genericNetwork
	}
	return n
}

// containsAddress reports whether s holds anything that is, or looks like
// part of, an IP address or prefix.
func containsAddress(s string) bool {
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r < unicode.MaxASCII && (r == '.' || r == ':' || r == '/' || r == '%' ||
			'0' <= r && r <= '9' || 'a' <= r|0x20 && r|0x20 <= 'f'))
	}) {
		addr, _, _ := strings.Cut(tok, "/")
		if _, err := netip.ParseAddr(strings.TrimRight(addr, ".:")); err == nil {
			return true
		}
		if strings.Count(tok, ".") >= 3 && strings.ContainsAny(tok, "0123456789") {
			return true // partial or malformed dotted quad: 10.0.0.x
		}
		if strings.Count(tok, ":") >= 2 {
			return true // IPv6-ish
		}
	}
	return false
}
