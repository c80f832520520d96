package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/postgres/pgtest"
	"github.com/keygate/keygate/storage/sqlite"
)

// runMainEnv makes the test binary run the command line instead of the
// tests, so a test can run the CLI as a process of its own and kill it.
const runMainEnv = "KEYGATE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// bigDataDir is a data directory whose database takes a while to copy:
// tokens of 256 KiB, and a few audit events.
func bigDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for i := range 400 {
		blob := make([]byte, 256<<10)
		rand.Read(blob)
		if err := s.CreateToken(t.Context(), storage.TokenRecord{Kind: storage.KindAccessToken,
			Signature: fmt.Sprint("sig-", i), Request: blob, RequestedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := s.AppendAudit(t.Context(), storage.AuditEvent{Type: "test", Actor: fmt.Sprint("a", i), Result: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startBackup runs `keygate backup file` as a process of its own and
// returns it once the copy is under way: a file in file's directory has
// data.
func startBackup(t *testing.T, dataDir, file string) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "backup", file, "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for !hasData(t, filepath.Dir(file)) {
		select {
		case err := <-exited:
			t.Fatalf("the backup ended (%v) before it could be interrupted: make the database larger\n%s", err, stderr.String())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup wrote nothing within a minute")
		}
	}
	return cmd, exited
}

func hasData(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Size() > 0 {
			return true
		}
	}
	return false
}

func TestBackupAppearsOnlyWhenComplete(t *testing.T) {
	clearEnv(t)
	dataDir := bigDataDir(t)
	out := t.TempDir()
	file := filepath.Join(out, "backup.db")

	t.Run("an interrupted backup leaves nothing behind", func(t *testing.T) {
		cmd, exited := startBackup(t, dataDir, file)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-exited; err == nil {
			t.Fatal("the interrupted backup exited 0")
		}
		if left, _ := filepath.Glob(filepath.Join(out, "*")); len(left) != 0 {
			t.Fatalf("the interrupted backup left %v", left)
		}
	})

	t.Run("a killed backup leaves no file at its path, and a rerun works", func(t *testing.T) {
		cmd, exited := startBackup(t, dataDir, file)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-exited
		if _, err := os.Lstat(file); !errors.Is(err, os.ErrNotExist) {
			left, _ := filepath.Glob(filepath.Join(out, "*"))
			t.Fatalf("after the kill %s is there (%v); the directory holds %v", file, err, left)
		}
		printed, err := run(t, "backup", file, "--data-dir", dataDir)
		if err != nil || !strings.Contains(printed, "Backup written to") {
			t.Fatalf("the rerun: %v\n%s", err, printed)
		}
	})

	t.Run("the backup opens and its audit log verifies", func(t *testing.T) {
		restored := filepath.Join(t.TempDir(), "restored")
		if err := os.Mkdir(restored, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file, filepath.Join(restored, dbFile)); err != nil {
			t.Fatal(err)
		}
		// Without the master key, which is kept apart from backups.
		printed, err := run(t, "audit", "verify", "--json", "--data-dir", restored)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			OK     bool `json:"ok"`
			Events int  `json:"events"`
		}
		if err := json.Unmarshal([]byte(printed), &got); err != nil || !got.OK || got.Events != 5 {
			t.Fatalf("audit verify on the backup: %s (%v); want ok with 5 events", printed, err)
		}
		if _, err := os.Stat(filepath.Join(restored, "master.key")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("audit verify made a master key: %v", err)
		}
		s, err := sqlite.Open(t.Context(), filepath.Join(restored, dbFile))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if tok, err := s.GetToken(t.Context(), storage.KindAccessToken, "sig-399"); err != nil || len(tok.Request) != 256<<10 {
			t.Fatalf("the last token in the backup: %d bytes, %v", len(tok.Request), err)
		}
	})
}
