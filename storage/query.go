package storage

import (
	"strings"
	"unicode/utf8"
)

// What the backends must agree on when they answer a query: how emails
// and search text are matched, and how many rows a page holds. Both
// backends use these, so that the conformance suite's expectations hold for
// each by construction rather than by two copies kept in step.

// NormalizeEmail is how an email is stored and looked up: lower-cased in
// Go rather than by the database, so that non-ASCII letters fold the same
// everywhere.
func NormalizeEmail(email string) string {
	return strings.ToLower(email)
}

// Storable reports whether every backend can hold s as text: SQLite
// stores a NUL byte or invalid UTF-8 as given, PostgreSQL's text refuses
// both.
func Storable(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// ValidText is s with invalid UTF-8 and NUL bytes replaced by U+FFFD, so
// that every backend holds it as text.
func ValidText(s string) string {
	if Storable(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// likeLiteral makes a string match itself inside a LIKE pattern that has
// ESCAPE '\': it escapes the wildcards and the escape character itself,
// in one pass.
var likeLiteral = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ContainsPattern is a LIKE pattern (with ESCAPE '\') matching any string
// that contains s, taken literally.
func ContainsPattern(s string) string {
	return "%" + likeLiteral.Replace(s) + "%"
}

// Page sizes: what a list method returns for a limit <= 0, and the most it
// returns whatever the limit.
const (
	SearchUsersDefault   = 50
	SearchUsersMax       = 500
	AuditPageDefault     = 100
	AuditPageMax         = 1000
	RecentSignInsDefault = 20
	RecentSignInsMax     = 500
	ClaimOutboxDefault   = 100
)

// PageLimit is limit with the default for a limit <= 0 and capped at max.
func PageLimit(limit, def, max int) int {
	switch {
	case limit <= 0:
		return def
	case limit > max:
		return max
	}
	return limit
}
