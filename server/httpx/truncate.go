package httpx

import (
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Ellipsis ends every value Truncate cut short.
const Ellipsis = "…"

// Truncate returns s unchanged if it is at most max bytes long. Otherwise
// it returns the longest run of whole characters from the start of s that
// leaves room for Ellipsis within max bytes, followed by Ellipsis: never a
// split character, and bytes that are not UTF-8 become U+FFFD, so the
// result is valid UTF-8. Text a client sent is bounded with it before it
// reaches a log.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	budget := max - len(Ellipsis)
	if budget < 0 {
		return ""
	}
	out := make([]byte, 0, max)
	for _, r := range s { // an invalid byte comes as utf8.RuneError, width 1
		if utf8.RuneLen(r) > budget-len(out) {
			break
		}
		out = utf8.AppendRune(out, r)
	}
	return string(append(out, Ellipsis...))
}

// TruncateMap bounds m: every key to keyMax bytes and every value to
// valueMax, and the number of entries to n. Of a larger map it keeps the
// first n-1 keys in sorted order and adds the key Ellipsis, whose value
// says how many were left out. It returns m itself when m is within
// bounds, and never modifies m.
func TruncateMap(m map[string]string, n, keyMax, valueMax int) map[string]string {
	within := len(m) <= n
	for k, v := range m {
		if !within {
			break
		}
		within = len(k) <= keyMax && len(v) <= valueMax
	}
	if within {
		return m
	}
	keys := slices.Sorted(maps.Keys(m))
	out := make(map[string]string, min(len(m), n))
	if len(keys) > n {
		out[Ellipsis] = strconv.Itoa(len(keys)-(n-1)) + " more"
		keys = keys[:n-1]
	}
	for _, k := range keys {
		out[Truncate(k, keyMax)] = Truncate(m[k], valueMax)
	}
	return out
}
