package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the keygate command line with args and returns what it
// printed on stdout. Commands print with fmt.Print*, so stdout is swapped
// for a pipe while they run; tests using it must not run in parallel.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	out := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		out <- b.String()
	}()
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(w)
	root.SetErr(io.Discard)
	runErr := root.ExecuteContext(t.Context())
	os.Stdout = saved
	w.Close()
	printed := <-out
	r.Close()
	return printed, runErr
}

// isUsage is main's classification: exit code 2 for bad invocations.
func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue) || isCobraUsage(err)
}

func TestIsCobraUsage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"an unknown command is usage", errors.New(`unknown command "frobnicate" for "keygate"`), true},
		{"a wrong number of arguments is usage", errors.New("accepts 1 arg(s), received 2"), true},
		{"too few arguments is usage", errors.New("requires at least 1 arg(s), only received 0"), true},
		{"an unknown flag is usage", errors.New("unknown flag: --frob"), true},
		{"an unknown shorthand flag is usage", errors.New("unknown shorthand flag: 'x' in -x"), true},
		{"a missing required flag is usage", errors.New(`required flag(s) "name" not set`), true},
		{"a database error is not usage", errors.New("open database: unable to open database file"), false},
		{"a permission error is not usage", errors.New("data directory: mkdir /x: permission denied"), false},
		{"a broken audit log is not usage", errors.New("audit log broken after 3 good events"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isCobraUsage(tt.err); got != tt.want {
				t.Fatalf("isCobraUsage(%q) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestBadInvocationsAreUsageErrors(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		name string
		args []string
	}{
		{"an unknown command", []string{"frobnicate"}},
		{"an argument to a command that takes none", []string{"serve", "extra"}},
		{"a command without its argument", []string{"user", "add"}},
		{"a command with too many arguments", []string{"user", "suspend", "a@example.com", "b@example.com"}},
		{"an unknown flag", []string{"version", "--frobnicate"}},
		{"a client without its required name", []string{"client", "add", "--redirect-uri", "https://a.example.com/cb"}},
		{"a client with an unknown ID token algorithm", []string{"client", "add", "--name", "A", "--redirect-uri", "https://a.example.com/cb", "--id-token-alg", "HS256"}},
		{"a config file with an unknown key", []string{"user", "list", "--config", writeConfig(t, "bogus: 1\n")}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a usage error (exit code 2)", func(t *testing.T) {
			_, err := run(t, append(tt.args, "--data-dir", dataDir)...)
			if err == nil || !isUsage(err) {
				t.Fatalf("keygate %v = %v, want a usage error", tt.args, err)
			}
		})
	}
	t.Run("none of them created the data directory", func(t *testing.T) {
		if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("data directory: %v", err)
		}
	})
}

// cliOn runs the CLI on the data directory dataDir, for the issuer
// https://id.example.com.
func cliOn(dataDir string) func(t *testing.T, args ...string) (string, error) {
	return func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		return run(t, append(args, "--data-dir", dataDir, "--issuer", "https://id.example.com")...)
	}
}

// decodeJSON decodes the CLI's --json output into v.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
}

func TestCommandLine(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	kg := cliOn(dataDir)

	t.Run("user add prints the user and a single-use enrolment URL", func(t *testing.T) {
		out, err := kg(t, "user", "add", "Ann@Example.com", "--name", "Ann", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		decodeJSON(t, out, &got)
		if got["email"] != "ann@example.com" || !strings.HasPrefix(got["user_id"], "u_") ||
			!strings.HasPrefix(got["enrollment_url"], "https://id.example.com/enroll?token=") {
			t.Fatalf("output %s", out)
		}
	})
	t.Run("the data directory is private to its owner", func(t *testing.T) {
		fi, err := os.Stat(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Fatalf("data directory mode %v", perm)
		}
	})
	t.Run("adding the same user again is a usage error", func(t *testing.T) {
		_, err := kg(t, "user", "add", "ann@example.com")
		if !isUsage(err) || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("err = %v, want a usage error saying the user exists", err)
		}
	})
	t.Run("client add prints a confidential client's secret once", func(t *testing.T) {
		out, err := kg(t, "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		decodeJSON(t, out, &got)
		secret, _ := got["client_secret"].(string)
		if len(secret) != 43 {
			t.Fatalf("client_secret %v", got["client_secret"])
		}
		if got["discovery_url"] != "https://id.example.com/.well-known/openid-configuration" {
			t.Fatalf("discovery_url %v", got["discovery_url"])
		}
		list, err := kg(t, "client", "list", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(list, secret) || !strings.Contains(list, "Wiki") {
			t.Fatalf("client list %s", list)
		}
	})
	t.Run("an invalid client is a usage error", func(t *testing.T) {
		_, err := kg(t, "client", "add", "--name", "Bad", "--redirect-uri", "http://bad.example.com/cb")
		if !isUsage(err) || !strings.Contains(err.Error(), "plain http") {
			t.Fatalf("err = %v, want a usage error about plain http", err)
		}
	})
	t.Run("user suspend reports what it ended", func(t *testing.T) {
		out, err := kg(t, "user", "suspend", "ANN@example.com", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		decodeJSON(t, out, &got)
		if got["email"] != "ann@example.com" || got["sessions_ended"] != float64(0) || got["tokens_revoked"] != float64(0) {
			t.Fatalf("output %s", out)
		}
		list, err := kg(t, "user", "list", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var users []map[string]any
		decodeJSON(t, list, &users)
		if len(users) != 1 || users[0]["suspended"] != true || users[0]["enrolled"] != false {
			t.Fatalf("user list %s", list)
		}
	})
	t.Run("suspending an unknown user is a usage error", func(t *testing.T) {
		if _, err := kg(t, "user", "suspend", "nobody@example.com"); !isUsage(err) {
			t.Fatalf("err = %v, want a usage error", err)
		}
	})
	t.Run("audit verify finds the chain of everything above intact", func(t *testing.T) {
		out, err := kg(t, "audit", "verify", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		decodeJSON(t, out, &got)
		// user.created, enrollment.started, client.created, user.suspended
		if got["ok"] != true || got["events"] != float64(4) {
			t.Fatalf("output %s", out)
		}
	})
	t.Run("backup refuses to overwrite a file", func(t *testing.T) {
		existing := filepath.Join(t.TempDir(), "backup.db")
		if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := kg(t, "backup", existing); !isUsage(err) {
			t.Fatalf("err = %v, want a usage error", err)
		}
		if b, _ := os.ReadFile(existing); string(b) != "keep me" {
			t.Fatal("the existing file was overwritten")
		}
	})
}
