package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite"
)

// kgOK runs the command line as a process and fails t unless it exits 0
// without printing the database password; it returns what it printed.
func kgOK(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := runProcess(t, nil, args...)
	if code != 0 {
		t.Fatalf("keygate %v: exit code %d\n%s", args, code, stderr)
	}
	if strings.Contains(stdout+stderr, dsnPassword) {
		t.Fatalf("keygate %v printed the database password:\n%s%s", args, stdout, stderr)
	}
	return stdout
}

// jwksKids are the key ids the server at base publishes.
func jwksKids(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(endpoint(t, base, "jwks_uri"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v, %d keys", err, len(set.Keys))
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	slices.Sort(kids)
	return kids
}

func TestStoreCopy(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	lite := func(args ...string) string { return kgOK(t, append(args, "--data-dir", dataDir)...) }
	lite("user", "add", "ann@example.com", "--name", "Ann")
	lite("group", "add", "ops")
	lite("group", "member", "add", "ops", "ann@example.com")
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(lite("client", "add", "--name", "Reports", "--grant", "client_credentials", "--json")), &app); err != nil {
		t.Fatal(err)
	}
	onSQLite := startServe(t, "--data-dir", dataDir)
	issued := clientCredentialsToken(t, onSQLite.url, app.ClientID, app.ClientSecret)
	kids := jwksKids(t, onSQLite.url)
	onSQLite.stop()

	dsn := pgDSN(t)
	pg := func(args ...string) string { return kgOK(t, append(args, "--database", dsn, "--data-dir", dataDir)...) }
	var res struct {
		Tables      map[string]int64 `json:"tables"`
		AuditEvents int              `json:"audit_events"`
	}
	if err := json.Unmarshal([]byte(lite("store", "copy", "--to", dsn, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	// Ann, and the administrator serve's first start created.
	if res.Tables["user"] != 2 || res.Tables["client"] != 1 || res.Tables["signing_key"] == 0 || res.AuditEvents == 0 {
		t.Fatalf("store copy: %+v", res)
	}

	t.Run("audit verify passes on the copy", func(t *testing.T) {
		var got struct {
			OK     bool `json:"ok"`
			Events int  `json:"events"`
		}
		if err := json.Unmarshal([]byte(pg("audit", "verify", "--json")), &got); err != nil || !got.OK || got.Events != res.AuditEvents {
			t.Fatalf("audit verify: %+v, %v; want ok with %d events", got, err, res.AuditEvents)
		}
	})
	t.Run("users and groups are listed from the copy", func(t *testing.T) {
		if out := pg("user", "list", "--json"); !strings.Contains(out, "ann@example.com") || !strings.Contains(out, "ops") {
			t.Fatalf("user list: %s", out)
		}
	})
	onPostgres := startServe(t, "--database", dsn, "--data-dir", dataDir)
	t.Run("a token issued on SQLite is still active on PostgreSQL", func(t *testing.T) {
		if !introspect(t, onPostgres.url, app.ClientID, app.ClientSecret, issued) {
			t.Fatal("the copied token is inactive")
		}
	})
	t.Run("the copied client gets new tokens with its old secret", func(t *testing.T) {
		token := clientCredentialsToken(t, onPostgres.url, app.ClientID, app.ClientSecret)
		if !introspect(t, onPostgres.url, app.ClientID, app.ClientSecret, token) {
			t.Fatal("the new token is inactive")
		}
	})
	t.Run("the signing keys are the same ones, opened with the same master key", func(t *testing.T) {
		if got := jwksKids(t, onPostgres.url); !slices.Equal(got, kids) {
			t.Fatalf("JWKS kids %v on PostgreSQL, %v on SQLite", got, kids)
		}
	})
	t.Run("a second copy into it is refused with exit code 2", func(t *testing.T) {
		_, stderr, code := runProcess(t, nil, "store", "copy", "--to", dsn, "--data-dir", dataDir)
		if code != 2 || !strings.Contains(stderr, "not empty") || strings.Contains(stderr, dsnPassword) {
			t.Fatalf("exit code %d, stderr %q; want 2 and not empty", code, stderr)
		}
	})
}

func TestStoreCopyRefuses(t *testing.T) {
	clearEnv(t)
	// setText overwrites a text column of the SQLite store with bytes, as
	// an older keygate or a hand could have stored them.
	setText := func(table, column string, value []byte) func(t *testing.T, dataDir string) {
		return func(t *testing.T, dataDir string) {
			db, err := sql.Open("sqlite3", filepath.Join(dataDir, dbFile))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(t.Context(), `UPDATE "`+table+`" SET "`+column+`" = CAST(? AS TEXT)`, value); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, dataDir string)
		to      string // "" for a fresh schema
		code    int
		want    string
	}{
		{"a NUL byte in a user's name", setText("user", "name", []byte("Ann\x00")), "", 1,
			`table user, row id="u_`},
		{"invalid UTF-8 in a user's name", setText("user", "name", []byte("Ann \xc3\x28")), "", 1,
			"column name: is not valid UTF-8 (at byte 4)"},
		{"an unreachable target", nil, "postgres://ann:" + dsnPassword + "@127.0.0.1:1/keygate", 1,
			"PostgreSQL at host 127.0.0.1 port 1 database keygate: cannot connect"},
		{"a malformed target", nil, "postgres://ann:" + dsnPassword + "@db.example.com:x/keygate", 2, "not a valid postgres:// URL"},
		{"no target", nil, "none", 2, "store copy needs --to"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused, and the target stays empty", func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			kgOK(t, "user", "add", "ann@example.com", "--data-dir", dataDir)
			if tt.prepare != nil {
				tt.prepare(t, dataDir)
			}
			to, fresh := tt.to, tt.to == ""
			if fresh {
				to = pgDSN(t)
			}
			args := []string{"store", "copy", "--data-dir", dataDir}
			if to != "none" {
				args = append(args, "--to", to)
			}
			stdout, stderr, code := runProcess(t, nil, args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit code %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || strings.Contains(stdout+stderr, dsnPassword) {
				t.Fatalf("want one line without the password: %q", stdout+stderr)
			}
			if fresh {
				if out := kgOK(t, "user", "list", "--json", "--database", to, "--data-dir", dataDir); strings.TrimSpace(out) != "[]" {
					t.Fatalf("the target holds users after the failed copy: %s", out)
				}
			}
		})
	}
	t.Run("a target at another schema version is a usage error, and stays as it was", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		kgOK(t, "user", "add", "ann@example.com", "--data-dir", dataDir)
		dsn := pgDSN(t)
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), `CREATE TABLE schema_migrations (version integer PRIMARY KEY);
			INSERT INTO schema_migrations VALUES (1), (2)`); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runProcess(t, nil, "store", "copy", "--to", dsn, "--data-dir", dataDir)
		if code != 2 || !strings.Contains(stderr, "another schema version") || !strings.Contains(stderr, "PostgreSQL is at version 2") {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		var tables int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil || tables != 1 {
			t.Fatalf("%d tables in the target (%v), want schema_migrations alone", tables, err)
		}
	})
	t.Run("a data directory without a SQLite store is a usage error", func(t *testing.T) {
		_, stderr, code := runProcess(t, nil, "store", "copy", "--to", pgDSN(t), "--data-dir", filepath.Join(t.TempDir(), "none"))
		if code != 2 || !strings.Contains(stderr, "no SQLite store") {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
	})
	t.Run("--database naming another database than --to is a usage error", func(t *testing.T) {
		_, stderr, code := runProcess(t, nil, "store", "copy", "--to", pgDSN(t), "--database", pgDSN(t), "--data-dir", t.TempDir())
		if code != 2 || !strings.Contains(stderr, "names another database") {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
	})
}

func TestAKilledStoreCopyLeavesTheTargetEmpty(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Enough rows that the copy is still under way when it is killed.
	st, err := sqlite.Open(t.Context(), filepath.Join(dataDir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	for b := range 40 {
		err := st.InTx(t.Context(), func(ctx context.Context) error {
			for i := range 1000 {
				id := fmt.Sprintf("u_%d_%d", b, i)
				if err := st.CreateUser(ctx, storage.User{ID: id, Email: id + "@example.com", Name: strings.Repeat("n", 200)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	dsn := pgDSN(t)
	cmd := exec.Command(os.Args[0], "store", "copy", "--to", dsn, "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until its COPY runs on the server, then kill it.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for copying := false; !copying; {
		select {
		case err := <-exited:
			t.Fatalf("the copy ended (%v) before it could be killed: make the store larger", err)
		default:
		}
		if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND query ILIKE 'copy %')`).Scan(&copying); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited

	// The server rolls the copy back once it sees the connection gone.
	for {
		var busy bool
		if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND datname = current_database() AND state <> 'idle')`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if !busy {
			break
		}
	}
	var users int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM "user"`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users != 0 {
		t.Fatalf("%d users in the target after the killed copy", users)
	}
	// And a second copy goes through.
	var res struct {
		Tables map[string]int `json:"tables"`
	}
	if err := json.Unmarshal([]byte(kgOK(t, "store", "copy", "--to", dsn, "--data-dir", dataDir, "--json")), &res); err != nil || res.Tables["user"] != 40_000 {
		t.Fatalf("the copy after the kill: %+v, %v", res, err)
	}
}
