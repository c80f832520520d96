package postgres

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Times are timestamptz: UTC, to the microsecond (pgx truncates, as
// time.Time.UnixMicro does), with NULL for the zero time. So a time reads
// back in UTC, truncated to the microsecond, as it does from SQLite.

// ts is t as a timestamptz argument: NULL for the zero time.
func ts(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// tsCol scans a timestamptz column into a time.Time in UTC; NULL is the
// zero time.
type tsCol struct{ t *time.Time }

func (c tsCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*c.t = time.Time{}
		return nil
	}
	*c.t = v.Time.UTC()
	return nil
}

// list is l as a text[] argument: the columns are NOT NULL, and pgx sends
// a nil slice as NULL.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// nilEmpty makes each empty list nil, as lists read back from SQLite
// (text[] '{}' scans as an empty, non-nil slice).
func nilEmpty(ls ...*[]string) {
	for _, l := range ls {
		if len(*l) == 0 {
			*l = nil
		}
	}
}

// rowScanner is pgx.Row or pgx.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}
