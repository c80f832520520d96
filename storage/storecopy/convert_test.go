package storecopy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	textColumn = column{name: "name", pgType: "text"}
	listColumn = column{name: "reasons", pgType: "_text"}
)

func TestConvertList(t *testing.T) {
	tests := []struct {
		name, raw string
		want      []string // nil: refused
	}{
		{"an empty list", `[]`, []string{}},
		{"a list", `["new device","DE"]`, []string{"new device", "DE"}},
		{"escapes that PostgreSQL holds", `["caf\u00e9 \ud83d\ude00 \ufffd"]`, []string{"café 😀 \uFFFD"}},
		{"a literal U+FFFD", "[\"\uFFFD\"]", []string{"\uFFFD"}},
		{"JSON null, as an empty list", `null`, []string{}},
		{"an escaped lone surrogate, which encoding/json would replace", `["a\ud800b"]`, nil},
		{"an escaped NUL", `["a\u0000"]`, nil},
		{"a raw invalid byte", "[\"a\xffb\"]", nil},
		{"not a list", `{"a":1}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, reason := convert(listColumn, tt.raw)
			if tt.want == nil {
				if reason == "" {
					t.Fatalf("accepted as %q", v)
				}
				return
			}
			if reason != "" || !slices.Equal(v.([]string), tt.want) {
				t.Fatalf("got %q, %q; want %q", v, reason, tt.want)
			}
		})
	}
}

// FuzzConvert checks that the copy writes a text value exactly as SQLite
// holds it or refuses it, and never writes what PostgreSQL cannot hold.
func FuzzConvert(f *testing.F) {
	for _, s := range []string{"", "ann", "a\x00b", "\xff", `["x"]`, `["\u0000"]`, `["\ud800"]`, `[1]`, "[\"\xc3(\"]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		holdable := func(v string) bool { return utf8.ValidString(v) && !strings.Contains(v, "\x00") }
		if v, reason := convert(textColumn, s); reason == "" {
			if v != s || !holdable(s) {
				t.Fatalf("text %q accepted as %q", s, v)
			}
		} else if holdable(s) {
			t.Fatalf("text %q refused: %s", s, reason)
		}
		v, reason := convert(listColumn, s)
		if reason != "" {
			return
		}
		l := v.([]string)
		var again []string
		if err := json.Unmarshal([]byte(s), &again); err != nil || !slices.Equal(l, again) {
			t.Fatalf("list %q accepted as %q, which is not what it says", s, l)
		}
		for _, e := range l {
			if !holdable(e) {
				t.Fatalf("list %q accepted with element %q", s, e)
			}
		}
	})
}
