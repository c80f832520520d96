package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

// scanList is what a list column reads back from the stored value v.
func scanList(t *testing.T, v any) []string {
	t.Helper()
	var l []string
	if err := (listCol{&l}).Scan(v); err != nil {
		t.Fatalf("Scan(%q): %v", v, err)
	}
	return l
}

// listReadLikeEncodingJSON checks that the list column reads stored text s
// as json.Unmarshal does (an empty list as nil), as text and as bytes.
func listReadLikeEncodingJSON(t *testing.T, s string) {
	t.Helper()
	var want []string
	werr := json.Unmarshal([]byte(s), &want)
	if s == "" || s == "[]" {
		want, werr = nil, nil
	}
	for _, v := range []any{s, []byte(s)} {
		var got []string
		gerr := (listCol{&got}).Scan(v)
		if (gerr != nil) != (werr != nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("Scan(%T %q) = %q, %v; encoding/json says %q, %v", v, s, got, gerr, want, werr)
		}
	}
}

func TestListColumn(t *testing.T) {
	t.Run("what listJSON writes reads back, an empty list as nil", func(t *testing.T) {
		for _, l := range [][]string{
			nil,
			{"https://app.example/oauth2/callback"},
			{"openid", "email", "profile", "groups", "offline_access"},
			{""},
			{`quote " and backslash \`, "<script>&", "tab\tnewline\n", "ünïcödé ✓", "\x00"},
		} {
			got := scanList(t, listJSON(l))
			if len(l) == 0 {
				if got != nil {
					t.Fatalf("an empty list read back as %q", got)
				}
				continue
			}
			if !reflect.DeepEqual(got, l) {
				t.Fatalf("wrote %q, read back %q", l, got)
			}
		}
	})
	t.Run("any stored text reads as encoding/json reads it", func(t *testing.T) {
		for _, s := range listSeeds {
			listReadLikeEncodingJSON(t, s)
		}
	})
	t.Run("a column of another type is refused", func(t *testing.T) {
		var l []string
		if err := (listCol{&l}).Scan(int64(1)); err == nil {
			t.Fatal("an integer scanned as a list")
		}
	})
}

var listSeeds = []string{
	``, `[]`, `null`, ` [ "a" , "b" ] `, `["a","a"]`, `["a\u0041"]`, `["\ud800"]`, "[\"\xff\"]",
	`["a",]`, `["a"] x`, `[1]`, `{"a":"b"}`, `"a"`, `[`, `["a"`, "[\"a\x01\"]",
}

func FuzzListColumn(f *testing.F) {
	for _, s := range listSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		listReadLikeEncodingJSON(t, s)
	})
}
