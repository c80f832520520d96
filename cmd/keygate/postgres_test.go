package main

import (
	"cmp"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// dsnPassword is in every test DSN: the test server trusts its socket, so
// it is never checked, and a test may look for it in everything printed.
const dsnPassword = "Pw-never-printed-7f3a"

// pgDSN is a DSN of a fresh, empty schema of the test server, with a
// password in it.
func pgDSN(t *testing.T) string {
	t.Helper()
	dsn := pgtest.Schema(t)
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.User = url.UserPassword(cmp.Or(u.User.Username(), "postgres"), dsnPassword)
		return u.String()
	}
	return dsn + " password=" + dsnPassword
}

// runProcess runs the command line as a process of its own, as an operator
// would, and returns what it printed and its exit code.
func runProcess(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), runMainEnv+"=1"), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestCommandsOnPostgres(t *testing.T) {
	clearEnv(t)
	dsn := pgDSN(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	kg := func(t *testing.T, args ...string) string {
		t.Helper()
		stdout, stderr, code := runProcess(t, nil, append(args, "--database", dsn, "--data-dir", dataDir, "--issuer", "https://id.example.com")...)
		if code != 0 {
			t.Fatalf("keygate %v: exit code %d\n%s", args, code, stderr)
		}
		if strings.Contains(stdout+stderr, dsnPassword) {
			t.Fatalf("keygate %v printed the database password:\n%s%s", args, stdout, stderr)
		}
		return stdout
	}

	t.Run("a user added by one invocation is listed by another", func(t *testing.T) {
		kg(t, "user", "add", "ann@example.com", "--name", "Ann", "--json")
		var users []map[string]any
		if err := json.Unmarshal([]byte(kg(t, "user", "list", "--json")), &users); err != nil {
			t.Fatal(err)
		}
		if len(users) != 1 || users[0]["email"] != "ann@example.com" {
			t.Fatalf("user list: %v", users)
		}
	})
	t.Run("groups, clients and keys live in PostgreSQL too", func(t *testing.T) {
		kg(t, "group", "add", "ops", "--json")
		kg(t, "group", "member", "add", "ops", "ann@example.com")
		kg(t, "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb", "--allowed-group", "ops", "--json")
		kg(t, "keys", "rotate", "--json")
		if out := kg(t, "client", "list", "--json"); !strings.Contains(out, "Wiki") {
			t.Fatalf("client list: %s", out)
		}
		if out := kg(t, "group", "list", "--json"); !strings.Contains(out, `"ops"`) {
			t.Fatalf("group list: %s", out)
		}
	})
	t.Run("user import adds every row with its groups", func(t *testing.T) {
		csv := filepath.Join(t.TempDir(), "users.csv")
		if err := os.WriteFile(csv, []byte("email,name,groups\nbob@example.com,Bob,ops\ncid@example.com,Cid,\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out := kg(t, "user", "import", csv); strings.Count(out, "enrollment_url") != 2 {
			t.Fatalf("user import: %s", out)
		}
	})
	t.Run("suspend, unsuspend and reenroll change the user in PostgreSQL", func(t *testing.T) {
		status := func() string {
			var users []struct{ Email, Status string }
			if err := json.Unmarshal([]byte(kg(t, "user", "list", "--json")), &users); err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				if u.Email == "bob@example.com" {
					return u.Status
				}
			}
			return "missing"
		}
		kg(t, "user", "suspend", "bob@example.com")
		if got := status(); got != "suspended" {
			t.Fatalf("after suspend: %s", got)
		}
		kg(t, "user", "unsuspend", "bob@example.com")
		if got := status(); got != "pending" {
			t.Fatalf("after unsuspend: %s", got)
		}
		if out := kg(t, "user", "reenroll", "bob@example.com", "--json"); !strings.Contains(out, "enroll?token=") {
			t.Fatalf("reenroll: %s", out)
		}
	})
	t.Run("members are removed and groups deleted", func(t *testing.T) {
		kg(t, "group", "add", "temp")
		kg(t, "group", "member", "add", "temp", "cid@example.com")
		kg(t, "group", "member", "remove", "temp", "cid@example.com")
		kg(t, "group", "delete", "temp")
		if out := kg(t, "group", "list", "--json"); strings.Contains(out, `"temp"`) {
			t.Fatalf("group list after delete: %s", out)
		}
	})
	t.Run("audit verify checks the chain written by every invocation", func(t *testing.T) {
		var got struct {
			OK     bool `json:"ok"`
			Events int  `json:"events"`
		}
		if err := json.Unmarshal([]byte(kg(t, "audit", "verify", "--json")), &got); err != nil {
			t.Fatal(err)
		}
		if !got.OK || got.Events < 5 {
			t.Fatalf("audit verify: %+v", got)
		}
	})
	t.Run("the data directory holds the master key and no SQLite database", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(dataDir, dbFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: %v", dbFile, err)
		}
	})
	t.Run("backup says to use PostgreSQL's tools, with exit code 2", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "backup.db")
		_, stderr, code := runProcess(t, nil, "backup", file, "--database", dsn, "--data-dir", dataDir)
		if code != 2 || !strings.Contains(stderr, "pg_dump") {
			t.Fatalf("exit code %d, stderr %q; want 2 and a pointer to pg_dump", code, stderr)
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("backup file: %v", err)
		}
	})
}

func TestDatabaseSelection(t *testing.T) {
	clearEnv(t)
	envDSN, flagDSN, fileDSN := pgDSN(t), pgDSN(t), pgDSN(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	config := writeConfig(t, "database: '"+fileDSN+"'\n")
	emails := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		stdout, stderr, code := runProcess(t, env, append([]string{"user", "list", "--json", "--data-dir", dataDir}, args...)...)
		if code != 0 {
			t.Fatalf("user list %v: exit code %d\n%s", args, code, stderr)
		}
		var users []struct{ Email string }
		if err := json.Unmarshal([]byte(stdout), &users); err != nil {
			t.Fatal(err)
		}
		var list []string
		for _, u := range users {
			list = append(list, u.Email)
		}
		return strings.Join(list, ",")
	}
	for dsn, email := range map[string]string{envDSN: "env@example.com", flagDSN: "flag@example.com", fileDSN: "file@example.com"} {
		if _, stderr, code := runProcess(t, nil, "user", "add", email, "--database", dsn, "--data-dir", dataDir); code != 0 {
			t.Fatalf("user add %s: exit code %d\n%s", email, code, stderr)
		}
	}
	env := []string{"KEYGATE_DATABASE_URL=" + envDSN}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"the flag beats the environment and the file", env, []string{"--database", flagDSN, "--config", config}, "flag@example.com"},
		{"the environment beats the file", env, []string{"--config", config}, "env@example.com"},
		{"the file is used when nothing else names a database", nil, []string{"--config", config}, "file@example.com"},
		{"without any, SQLite in the data directory is used", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := emails(t, tt.env, tt.args...); got != tt.want {
				t.Fatalf("users %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("and the SQLite database was made in the data directory only then", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(dataDir, dbFile)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBadDatabaseURL(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name string
		url  string
		code int
		want string // part of the one-line error
	}{
		{"a malformed URL is a usage error", "postgres://ann:" + dsnPassword + "@db.example.com:notaport/keygate", 2, "not a valid postgres:// URL"},
		{"a malformed key=value string is a usage error", "host=db.example.com password='" + dsnPassword, 2, "not a valid PostgreSQL connection string"},
		{"another scheme is a usage error", "mysql://ann:" + dsnPassword + "@db.example.com/keygate", 2, "a mysql:// URL is not a PostgreSQL database"},
		{"a server nobody listens on is an error naming host and database", "postgres://ann:" + dsnPassword + "@127.0.0.1:1/keygate", 1,
			"PostgreSQL at host 127.0.0.1 port 1 database keygate: cannot connect"},
		{"a socket directory without a server is an error naming it", "host=/nonexistent port=5432 dbname=keygate password=" + dsnPassword, 1,
			"PostgreSQL at host /nonexistent port 5432 database keygate: cannot connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			stdout, stderr, code := runProcess(t, nil, "user", "list", "--database", tt.url, "--data-dir", dataDir)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit code %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("the error is not one line: %q", stderr)
			}
			if strings.Contains(stdout+stderr, dsnPassword) {
				t.Fatalf("the password was printed: %q", stdout+stderr)
			}
			if tt.code == 2 {
				if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a refused URL created the data directory: %v", err)
				}
			}
		})
	}
}

func TestServeOnPostgres(t *testing.T) {
	clearEnv(t)
	dsn := pgDSN(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	stdout, stderr, code := runProcess(t, nil, "client", "add", "--name", "Reports", "--grant", "client_credentials", "--json",
		"--database", dsn, "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("client add: exit code %d\n%s", code, stderr)
	}
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(stdout), &app); err != nil || app.ClientID == "" || app.ClientSecret == "" {
		t.Fatalf("client add printed %s", stdout)
	}

	// Two servers on one database, sharing the data directory's master key.
	one := startServe(t, "--database", dsn, "--data-dir", dataDir)
	two := startServe(t, "--database", dsn, "--data-dir", dataDir)

	t.Run("a token issued by one server is active on the other", func(t *testing.T) {
		token := clientCredentialsToken(t, one.url, app.ClientID, app.ClientSecret)
		if !introspect(t, two.url, app.ClientID, app.ClientSecret, token) {
			t.Fatal("the other server calls the token inactive")
		}
	})
	t.Run("a token request whose client id holds a NUL byte is refused as an unknown client and audited", func(t *testing.T) {
		events := func() int {
			var got struct{ Events int }
			stdout, stderr, code := runProcess(t, nil, "audit", "verify", "--json", "--database", dsn, "--data-dir", dataDir)
			if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil {
				t.Fatalf("audit verify: exit code %d\n%s%s", code, stdout, stderr)
			}
			return got.Events
		}
		before := events()
		resp, err := http.PostForm(endpoint(t, one.url, "token_endpoint"),
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"c_\x00x"}, "client_secret": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// The event is written before the answer: PostgreSQL would have
		// refused the NUL byte.
		if after := events(); after != before+1 {
			t.Fatalf("%d audit events after the request, want %d\n%s", after, before+1, one.Logs())
		}
	})
	t.Run("the log names the database's host and name, never its password", func(t *testing.T) {
		for _, s := range []*served{one, two} {
			logs := s.Logs()
			if strings.Contains(logs, dsnPassword) {
				t.Fatalf("the password is in the server's output:\n%s", logs)
			}
			if !strings.Contains(logs, `"store":"postgres host `) {
				t.Fatalf("the log does not say which database it serves:\n%s", logs)
			}
		}
	})
}

func TestAMasterKeyThatIsNotTheStoresIsRefused(t *testing.T) {
	clearEnv(t)
	// refused runs a command that must be refused for want of the master
	// key, and checks that the key it created was removed again.
	refused := func(t *testing.T, dataDir string, args ...string) {
		t.Helper()
		_, stderr, code := runProcess(t, nil, append(args, "--data-dir", dataDir)...)
		if code != 1 || !strings.Contains(stderr, "no master key in") {
			t.Fatalf("exit code %d, stderr %q; want 1 and no master key", code, stderr)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "master.key")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the new master key was left behind: %v", err)
		}
	}

	t.Run("on PostgreSQL: a replica started without the others' key", func(t *testing.T) {
		dsn := pgDSN(t)
		first, second := filepath.Join(t.TempDir(), "first"), filepath.Join(t.TempDir(), "second")
		kgOK(t, "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb", "--database", dsn, "--data-dir", first)
		refused(t, second, "client", "list", "--database", dsn)
		key, err := os.ReadFile(filepath.Join(first, "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		// Given the first replica's key, the second one works.
		stdout, stderr, code := runProcess(t, []string{"KEYGATE_MASTER_KEY=" + string(key)}, "client", "list", "--database", dsn, "--data-dir", second)
		if code != 0 || !strings.Contains(stdout, "Wiki") {
			t.Fatalf("with the shared key: exit code %d\n%s%s", code, stdout, stderr)
		}
	})
	t.Run("on PostgreSQL: a replica given another KEYGATE_MASTER_KEY", func(t *testing.T) {
		dsn := pgDSN(t)
		mine, other := make([]byte, 32), make([]byte, 32)
		rand.Read(mine)
		rand.Read(other)
		withKey := func(k []byte) []string { return []string{"KEYGATE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(k)} }
		dataDir := t.TempDir()
		if _, stderr, code := runProcess(t, withKey(mine), "group", "add", "ops", "--database", dsn, "--data-dir", dataDir); code != 0 {
			t.Fatalf("group add: exit code %d\n%s", code, stderr)
		}
		_, stderr, code := runProcess(t, withKey(other), "group", "add", "dev", "--database", dsn, "--data-dir", dataDir)
		if code != 1 || !strings.Contains(stderr, "the master key from KEYGATE_MASTER_KEY is not this store's") {
			t.Fatalf("exit code %d, stderr %q", code, stderr)
		}
		stdout, _, _ := runProcess(t, withKey(mine), "group", "list", "--json", "--database", dsn, "--data-dir", dataDir)
		if strings.Contains(stdout, `"dev"`) || !strings.Contains(stdout, `"ops"`) {
			t.Fatalf("group list after the refusal: %s", stdout)
		}
	})
	t.Run("on SQLite: a store made before the check takes only the key its signing keys open with", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		kgOK(t, "keys", "rotate", "--data-dir", dataDir)
		db, err := sql.Open("sqlite3", filepath.Join(dataDir, dbFile))
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.ExecContext(t.Context(), `DELETE FROM meta WHERE key = ?`, metaMasterKeyCheck)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		other := make([]byte, 32)
		rand.Read(other)
		_, stderr, code := runProcess(t, []string{"KEYGATE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(other)}, "user", "list", "--data-dir", dataDir)
		if code != 1 || !strings.Contains(stderr, "is not this store's") {
			t.Fatalf("another key: exit code %d, stderr %q", code, stderr)
		}
		kgOK(t, "user", "list", "--data-dir", dataDir) // its own key, from master.key
		_, stderr, code = runProcess(t, []string{"KEYGATE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(other)}, "user", "list", "--data-dir", dataDir)
		if code != 1 || !strings.Contains(stderr, "is not this store's") {
			t.Fatalf("another key, once the check is written: exit code %d, stderr %q", code, stderr)
		}
	})
	t.Run("on SQLite: a data directory whose master.key was lost", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		kgOK(t, "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb", "--data-dir", dataDir)
		if err := os.Remove(filepath.Join(dataDir, "master.key")); err != nil {
			t.Fatal(err)
		}
		refused(t, dataDir, "client", "list")
	})
}

func TestInvocationsStartingTogetherOnANewDatabase(t *testing.T) {
	clearEnv(t)
	dsn := pgDSN(t) // a new schema: the first of them migrates it, under a lock
	dataDir := filepath.Join(t.TempDir(), "data")
	key := make([]byte, 32)
	rand.Read(key)
	t.Setenv("KEYGATE_MASTER_KEY", base64.StdEncoding.EncodeToString(key)) // shared, as replicas share it
	const n = 8
	codes := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			email := fmt.Sprintf("user%d@example.com", i)
			_, stderr, code := runProcess(t, nil, "user", "add", email, "--database", dsn, "--data-dir", dataDir)
			if code != 0 {
				codes <- fmt.Sprintf("%s: exit code %d: %s", email, code, stderr)
			}
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		t.Error(c)
	}
	var users []struct{ Email string }
	if err := json.Unmarshal([]byte(kgOK(t, "user", "list", "--json", "--database", dsn, "--data-dir", dataDir)), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != n {
		t.Fatalf("%d users listed, want %d", len(users), n)
	}
	var got struct {
		OK     bool `json:"ok"`
		Events int  `json:"events"`
	}
	if err := json.Unmarshal([]byte(kgOK(t, "audit", "verify", "--json", "--database", dsn, "--data-dir", dataDir)), &got); err != nil || !got.OK || got.Events < n {
		t.Fatalf("audit verify: %+v, %v", got, err)
	}
}
