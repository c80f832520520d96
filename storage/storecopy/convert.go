package storecopy

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// BadValueError is a value of the SQLite store that the copy will not
// write: PostgreSQL cannot hold it (text with a NUL byte or invalid
// UTF-8), or it is not what its column's type says. It names where the
// value is, never the value, which may be a secret.
type BadValueError struct {
	Table  string
	Row    string // the row's primary key, e.g. id="u_1", or its position in a table without one
	Column string
	Reason string
}

func (e *BadValueError) Error() string {
	return fmt.Sprintf("table %s, row %s, column %s: %s", e.Table, e.Row, e.Column, e.Reason)
}

// convert turns value v, as SQLite returns it, into what pgx sends for
// c's PostgreSQL type, or says why it cannot.
func convert(c column, v any) (any, string) {
	if v == nil {
		if !c.nullable {
			return nil, "is NULL, but the PostgreSQL column is NOT NULL"
		}
		return nil, ""
	}
	switch c.pgType {
	case "text":
		s, ok := v.(string)
		if !ok {
			return nil, wrongType(v, "text")
		}
		return s, checkText(s)
	case "_text":
		s, ok := v.(string)
		if !ok {
			return nil, wrongType(v, "a JSON list in text")
		}
		// Checked before decoding: encoding/json would quietly replace
		// invalid UTF-8 with U+FFFD.
		if reason := checkText(s); reason != "" {
			return nil, reason
		}
		l := []string{} // the columns are NOT NULL; a nil list would be NULL
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return nil, "is not a JSON list of strings"
		}
		for i, e := range l {
			if reason := checkText(e); reason != "" {
				return nil, fmt.Sprintf("element %d %s", i, strings.TrimPrefix(reason, "is "))
			}
		}
		if replacedSurrogate(s, l) {
			return nil, "holds an escaped lone UTF-16 surrogate (like \\ud800), which would become U+FFFD"
		}
		if l == nil {
			l = []string{} // JSON null
		}
		return l, ""
	case "bytea":
		b, ok := v.([]byte)
		if !ok {
			return nil, wrongType(v, "a blob")
		}
		return b, ""
	case "bool":
		n, ok := v.(int64)
		if !ok || (n != 0 && n != 1) {
			return nil, "is not 0 or 1"
		}
		return n == 1, ""
	case "int4":
		n, ok := v.(int64)
		if !ok {
			return nil, wrongType(v, "an integer")
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return nil, "is out of the PostgreSQL column's 32-bit range"
		}
		return int32(n), ""
	case "int8":
		n, ok := v.(int64)
		if !ok {
			return nil, wrongType(v, "an integer")
		}
		return n, ""
	case "float8":
		f, ok := v.(float64)
		if !ok {
			return nil, wrongType(v, "a real number")
		}
		return f, ""
	case "timestamptz":
		us, ok := v.(int64)
		if !ok {
			return nil, wrongType(v, "unix microseconds")
		}
		if us == 0 { // no time: NULL in PostgreSQL
			if !c.nullable {
				return nil, "is 0 (no time), but the PostgreSQL column is NOT NULL"
			}
			return nil, ""
		}
		return time.UnixMicro(us).UTC(), ""
	}
	return nil, "has a PostgreSQL type the copy does not know: " + c.pgType // matchSchemas refuses these first
}

// checkText says why PostgreSQL's text cannot hold s, or "".
func checkText(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Sprintf("contains a NUL byte (at byte %d), which PostgreSQL text cannot hold", i)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("is not valid UTF-8 (at byte %d), which PostgreSQL text requires", i)
		}
		i += size
	}
	return ""
}

// replacedSurrogate reports whether decoding the JSON text raw into l
// replaced an escaped lone surrogate with U+FFFD, which encoding/json
// does without an error: l then holds more U+FFFD than raw spells.
func replacedSurrogate(raw string, l []string) bool {
	decoded := 0
	for _, e := range l {
		decoded += strings.Count(e, "\uFFFD")
	}
	return decoded > strings.Count(raw, "\uFFFD")+strings.Count(strings.ToLower(raw), `\ufffd`)
}

func wrongType(v any, want string) string {
	return fmt.Sprintf("holds %s where %s belongs", sqliteKind(v), want)
}

// sqliteKind names the SQLite storage class behind a value of the driver.
func sqliteKind(v any) string {
	switch v.(type) {
	case string:
		return "text"
	case []byte:
		return "a blob"
	case int64:
		return "an integer"
	case float64:
		return "a real number"
	}
	return fmt.Sprintf("a %T", v)
}

// rowName names a row in errors by its primary key; key holds the key
// columns' values. A table without a primary key names the row by its
// position in rowid order.
func rowName(t table, key []any, position int64) string {
	if len(t.key) == 0 {
		return fmt.Sprintf("number %d", position)
	}
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = k + "=" + keyValue(key[i])
	}
	return strings.Join(parts, " ")
}

// keyValue prints a key's value: text quoted (with escapes for what is
// not printable), a blob in hex, shortened.
func keyValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []byte:
		if len(v) > 16 {
			return "x'" + hex.EncodeToString(v[:16]) + "…'"
		}
		return "x'" + hex.EncodeToString(v) + "'"
	}
	return fmt.Sprint(v)
}
