package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/jsonscan"
	"github.com/keygate/keygate/storage"
)

// micros is how a time is stored: unix microseconds, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros reverses micros, in UTC.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// timeCol scans a microsecond column into a time.Time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case int64:
		*c.t = fromMicros(v)
	case nil:
		*c.t = time.Time{}
	default:
		return fmt.Errorf("time column holds %T", v)
	}
	return nil
}

// listJSON encodes a string list; empty and nil are both stored as [].
func listJSON(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// listCol scans a JSON list column; an empty list reads back as nil.
// The lists listJSON writes are read without encoding/json's reflection
// (jsonscan), which only a string with escapes falls back to: every write
// that issues a token reads its app's lists here.
type listCol struct{ l *[]string }

func (c listCol) Scan(v any) error {
	*c.l = nil
	var s string
	switch v := v.(type) {
	case string: // what the driver gives for TEXT
		s = v
	case []byte:
		s = string(v)
	case nil:
		return nil
	default:
		return fmt.Errorf("list column holds %T", v)
	}
	if s == "" || s == "[]" {
		return nil
	}
	r := jsonscan.NewStringReader(s)
	if l, ok := r.Strs(); ok && r.End() {
		*c.l = l
		return nil
	}
	return json.Unmarshal([]byte(s), c.l)
}

// mapCol scans a JSON object column; NULL reads back as nil.
type mapCol struct{ m *map[string]string }

func (c mapCol) Scan(v any) error {
	*c.m = nil
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	case nil:
		return nil
	default:
		return fmt.Errorf("map column holds %T", v)
	}
	m, err := storage.DecodeAuditDetails(s)
	*c.m = m
	return err
}

// placeholders returns "?, ?, ?" for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// withExtra scans a row that has more columns than a scan function knows:
// the function's destinations first, then extra.
type withExtra struct {
	sc    rowScanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error {
	return w.sc.Scan(append(dest, w.extra...)...)
}

// queryStrings runs a query of one text column and returns its values.
func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
