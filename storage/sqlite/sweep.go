package sqlite

import (
	"context"
	"strconv"
)

// sweepBatch bounds how many rows one sweep statement deletes. Outside a
// transaction each batch commits on its own and hands the writer back to
// the queue, so a large backlog of expired rows never holds the write lock
// long enough to stall sign-ins and token requests.
const sweepBatch = 1000

// deleteBatched deletes the rows of table (a rowid table) matching where,
// a batch at a time, and returns how many it deleted.
func (s *Store) deleteBatched(ctx context.Context, op, table, where string, args ...any) (int, error) {
	q := `DELETE FROM ` + table + ` WHERE rowid IN (
		SELECT rowid FROM ` + table + ` WHERE ` + where + ` LIMIT ` + strconv.Itoa(sweepBatch) + `)`
	total := 0
	for {
		res, err := s.w(ctx).ExecContext(ctx, q, args...)
		n, err := count(op, res, err)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}
