package sqlite

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Committed pages reach the database file without any write having to
// checkpoint: the writer's own threshold is far above what is written here.
func TestBackgroundCheckpoint(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	before := fileSize(t, path)
	err := s.InTx(ctx, func(ctx context.Context) error {
		for i := range 500 {
			if err := s.SetMeta(ctx, fmt.Sprint("key", i), strings.Repeat("v", 500)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, path) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is still %d bytes: nothing was checkpointed", before)
		}
		time.Sleep(checkpointEvery / 4)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
