package httpx_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keygate/keygate/server/httpx"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"a short value is kept", "abc", 3, "abc"},
		{"a long value is cut and marked", "abcdef", 5, "ab…"},
		{"a character is never split", "aé€x", 6, "aé…"},
		{"a character that does not fit is left out whole", "a€€", 6, "a…"},
		{"bytes that are not UTF-8 become U+FFFD", "a\xffbcdefgh", 8, "a\uFFFDb…"},
		{"too small a bound leaves nothing", "abcdef", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := httpx.Truncate(tt.in, tt.max)
			if got != tt.want || len(got) > tt.max || !utf8.ValidString(got) {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestTruncateMap(t *testing.T) {
	t.Run("a map within bounds is returned as it is", func(t *testing.T) {
		m := map[string]string{"a": "1", "b": "2"}
		if got := httpx.TruncateMap(m, 2, 1, 1); fmt.Sprint(got) != fmt.Sprint(m) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("keys, values and the number of entries are bounded", func(t *testing.T) {
		m := map[string]string{"d": "4", "a": "1", "ccccc": "333333", "b": "2"}
		got := httpx.TruncateMap(m, 3, 4, 4)
		want := map[string]string{"a": "1", "b": "2", "…": "2 more"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if len(m) != 4 || m["ccccc"] != "333333" {
			t.Fatalf("the argument was modified: %v", m)
		}
		if got := httpx.TruncateMap(map[string]string{"ccccc": "333333"}, 3, 4, 5); got["c…"] != "33…" {
			t.Fatalf("got %v", got)
		}
	})
}

// longValuer logs as a long string.
type longValuer struct{}

func (longValuer) LogValue() slog.Value { return slog.StringValue(strings.Repeat("v", 50_000)) }

func TestLogHandlerBoundsValues(t *testing.T) {
	var buf bytes.Buffer
	long := strings.Repeat("é", 40_000)
	many := map[string]string{}
	var list []string
	for i := range 100 {
		many[fmt.Sprintf("key-%03d-%s", i, long)] = long
		list = append(list, long)
	}
	logger := slog.New(httpx.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("with", long)
	logger.Info(long, "string", long, "error", errors.New(long), "valuer", longValuer{},
		slog.Group("group", "inner", long), "map", many, "list", list, "number", 7)
	logger.Info("short", "string", "kept")

	if n := buf.Len(); n > 200_000 {
		t.Errorf("the two lines take %d bytes", n)
	}
	lines := decodeLines(t, &buf)
	var check func(path string, v any)
	check = func(path string, v any) {
		switch v := v.(type) {
		case string:
			if len(v) > httpx.MaxLogValue || !utf8.ValidString(v) {
				t.Errorf("%s: %d bytes, valid UTF-8 %v", path, len(v), utf8.ValidString(v))
			}
			if len(v) > 100 && !strings.HasSuffix(v, httpx.Ellipsis) {
				t.Errorf("%s was cut without a mark", path)
			}
		case map[string]any:
			if len(v) > 32 {
				t.Errorf("%s has %d entries", path, len(v))
			}
			for k, e := range v {
				check(path+" key", k)
				check(path+"."+k[:min(len(k), 7)], e)
			}
		case []any:
			if len(v) > 32 {
				t.Errorf("%s has %d items", path, len(v))
			}
			for _, e := range v {
				check(path+"[]", e)
			}
		}
	}
	check("line", lines[0])
	for _, key := range []string{"msg", "with", "string", "error", "valuer", "group", "map", "list", "number"} {
		if _, ok := lines[0][key]; !ok {
			t.Errorf("the bounded line lost %q: %v", key, lines[0])
		}
	}
	if lines[1]["msg"] != "short" || lines[1]["string"] != "kept" {
		t.Errorf("a short line was changed: %v", lines[1])
	}
}
