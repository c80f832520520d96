package postgres

import (
	"context"
	"strconv"
)

// sweepBatch bounds how many rows one sweep statement deletes. Outside a
// transaction each batch commits on its own, so a large backlog of expired
// rows is never one long transaction holding thousands of row locks and
// keeping vacuum from cleaning up behind it.
const sweepBatch = 1000

// deleteBatched deletes the rows of table matching where, a batch at a
// time, and returns how many it deleted. A batch is found and deleted by
// ctid (a TID scan); a row updated meanwhile has a new ctid and is left
// for the next sweep.
func (s *Store) deleteBatched(ctx context.Context, op, table, where string, args ...any) (int, error) {
	q := `DELETE FROM ` + table + ` WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM ` + table + ` WHERE ` + where + ` LIMIT ` + strconv.Itoa(sweepBatch) + `))`
	total := 0
	for {
		tag, err := s.q(ctx).Exec(ctx, q, args...)
		n, err := count(op, tag, err)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
