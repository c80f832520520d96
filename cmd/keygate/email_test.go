package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/porttest"
	"github.com/keygate/keygate/server/mail/mailtest"
)

// freePort is a loopback port for a server named before it binds (see
// porttest for why not one the kernel picks).
func freePort(t *testing.T) string {
	t.Helper()
	port, err := porttest.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}

// smtpConfig writes a configuration whose smtp section points at srv,
// with the password in a file.
func smtpConfig(t *testing.T, srv *mailtest.Server, password string) string {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, fmt.Sprintf(`smtp:
  host: %s
  port: %d
  tls: starttls
  username: %s
  password_file: %s
  from: "keygate <keygate@id.example.com>"
`, srv.Host, srv.Port, mailtest.Username, pwFile))
}

// TestSendEmail runs `keygate serve` as a process of its own with an smtp
// section, against a real SMTP server (STARTTLS, AUTH PLAIN), and the
// user commands with --send-email beside it: each enrolment link arrives
// once, to its user, and opens the enrolment page of that server.
func TestSendEmail(t *testing.T) {
	clearEnv(t)
	t.Setenv("KEYGATE_SMTP_PASSWORD", "")
	srv := mailtest.Start(t)
	// The serve process trusts the test's certificate as its system roots.
	t.Setenv("SSL_CERT_FILE", srv.CAFile)
	// serve starts with a password the mail server no longer takes.
	srv.SetPassword("the mail server's new password")
	config := smtpConfig(t, srv, mailtest.Password)
	dataDir := filepath.Join(t.TempDir(), "data")
	port := freePort(t)
	issuer := "http://localhost:" + port
	served := startServe(t, "--config", config, "--data-dir", dataDir, "--listen", "127.0.0.1:"+port, "--issuer", issuer)
	kg := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := run(t, append(args, "--config", config, "--data-dir", dataDir, "--issuer", issuer)...)
		if err != nil {
			t.Fatalf("keygate %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	// opened checks that a mailed link opens the enrolment page.
	opened := func(t *testing.T, r mailtest.Received) string {
		t.Helper()
		link := r.Link(t, issuer+"/enroll?token=")
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", link, resp.StatusCode)
		}
		return link
	}

	out := kg(t, "user", "add", "ada@example.com", "--name", "Ada Lovelace", "--send-email")
	if !strings.Contains(out, "Queued an email to ada@example.com") || strings.Contains(out, "token=") {
		t.Fatalf("user add --send-email printed:\n%s", out)
	}

	t.Run("a wrong SMTP password is retried and never logged", func(t *testing.T) {
		srv.Wait(t, func(s *mailtest.Server) bool { return s.AuthFailures() > 0 })
		logs := served.Logs()
		if strings.Contains(logs, mailtest.Password) || strings.Contains(logs, "battery") {
			t.Fatalf("serve logged the SMTP password:\n%s", logs)
		}
		if !strings.Contains(logs, "email is sent through") || !strings.Contains(logs, fmt.Sprintf("127.0.0.1:%d", srv.Port)) {
			t.Fatalf("serve did not say where email goes:\n%s", logs)
		}
		srv.SetPassword(mailtest.Password) // the operator fixes it on the mail server
	})
	t.Run("user add --send-email: the link arrives once and opens the enrolment page", func(t *testing.T) {
		srv.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 0 })
		r := srv.Received()[0]
		if to := r.To(t); to.Address != "ada@example.com" || to.Name != "Ada Lovelace" || !r.TLS {
			t.Fatalf("To %q, TLS %v", r.Header.Get("To"), r.TLS)
		}
		opened(t, r)
		if !strings.Contains(served.Logs(), "535") {
			t.Fatalf("the failed attempt was not logged with the server's answer:\n%s", served.Logs())
		}
	})
	t.Run("user reenroll --send-email --json", func(t *testing.T) {
		var got map[string]any
		if err := json.Unmarshal([]byte(kg(t, "user", "reenroll", "ada@example.com", "--send-email", "--json")), &got); err != nil {
			t.Fatal(err)
		}
		if got["email_queued"] != true || got["email"] != "ada@example.com" || got["enrollment_url"] != nil {
			t.Fatalf("printed %v", got)
		}
		srv.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 1 })
		if first, second := opened(t, srv.Received()[0]), opened(t, srv.Received()[1]); first == second {
			t.Fatal("reenroll mailed the same link again")
		}
	})
	t.Run("user import --send-email", func(t *testing.T) {
		csv := filepath.Join(t.TempDir(), "users.csv")
		if err := os.WriteFile(csv, []byte("email,name,groups\nbob@example.com,Bob,\ncy@example.com,Cy,\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(kg(t, "user", "import", csv, "--send-email")), "\n")
		if len(lines) != 2 || strings.Contains(lines[0], "token=") || !strings.Contains(lines[0], `"email_queued":true`) {
			t.Fatalf("import printed:\n%s", strings.Join(lines, "\n"))
		}
		srv.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 3 })
		for _, r := range srv.Received()[2:] {
			opened(t, r)
		}
	})
	t.Run("every message arrived once, to its user", func(t *testing.T) {
		// Queue one more and wait for it: by then every earlier message has
		// had its chance to be sent twice.
		kg(t, "user", "add", "last@example.com", "--send-email")
		srv.Wait(t, func(s *mailtest.Server) bool { return len(s.Received()) > 4 })
		var to []string
		ids := map[string]bool{}
		for _, r := range srv.Received() {
			to = append(to, strings.Join(r.Rcpt, ","))
			ids[r.Header.Get("Message-ID")] = true
		}
		want := "ada@example.com ada@example.com bob@example.com cy@example.com last@example.com"
		if strings.Join(to, " ") != want || len(ids) != 5 {
			t.Fatalf("recipients %v with %d Message-IDs; want %s, each once", to, len(ids), want)
		}
	})
}

// TestSendEmailRefused: --send-email without a usable smtp section is a
// usage error (exit code 2) that changes nothing; serve refuses plain
// text to a mail server elsewhere.
func TestSendEmailRefused(t *testing.T) {
	clearEnv(t)
	t.Setenv("KEYGATE_SMTP_PASSWORD", "")
	dataDir := filepath.Join(t.TempDir(), "data")
	csv := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(csv, []byte("email,name,groups\nbob@example.com,Bob,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noSMTP := writeConfig(t, "issuer: https://id.example.com\n")
	plainElsewhere := writeConfig(t, "smtp:\n  host: smtp.example.com\n  tls: none\n  from: keygate@example.com\n")
	if _, _, code := runProcess(t, nil, "user", "add", "seed@example.com", "--data-dir", dataDir); code != 0 {
		t.Fatalf("seeding: exit %d", code)
	}
	tests := []struct {
		name, config string
		args         []string
		want         string
	}{
		{"user add without an smtp section", noSMTP, []string{"user", "add", "ada@example.com", "--send-email"}, "email is not set up"},
		{"user reenroll without an smtp section", noSMTP, []string{"user", "reenroll", "seed@example.com", "--send-email"}, "email is not set up"},
		{"user import without an smtp section", noSMTP, []string{"user", "import", csv, "--send-email"}, "email is not set up"},
		{"user add with tls: none to another host", plainElsewhere, []string{"user", "add", "ada@example.com", "--send-email"}, "allowed only to a mail server on this machine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _, _ := runProcess(t, nil, "audit", "verify", "--json", "--data-dir", dataDir)
			if !strings.Contains(before, `"ok": true`) {
				t.Fatalf("audit verify printed %q", before)
			}
			_, stderr, code := runProcess(t, nil, append(tt.args, "--config", tt.config, "--data-dir", dataDir)...)
			if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "nothing was changed") {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
			after, _, _ := runProcess(t, nil, "audit", "verify", "--json", "--data-dir", dataDir)
			if before != after {
				t.Fatalf("the audit log changed:\n%s\n%s", before, after)
			}
		})
	}
	t.Run("serve with tls: none to another host", func(t *testing.T) {
		_, stderr, code := runProcess(t, nil, "serve", "--config", plainElsewhere, "--data-dir", dataDir, "--listen", "127.0.0.1:0")
		if code != 2 || !strings.Contains(stderr, "smtp.tls: none") {
			t.Fatalf("exit %d, stderr %q; want 2 and the smtp.tls problem", code, stderr)
		}
	})
}

func TestMailConfig(t *testing.T) {
	clearEnv(t)
	const secret = "s3cret-smtp-password"
	section := func(extra string) settings {
		fc, err := parseFile("test.yaml", []byte("smtp:\n  host: smtp.example.com\n  username: keygate\n  from: keygate@example.com\n"+extra))
		if err != nil {
			t.Fatal(err)
		}
		return settings{file: fc}
	}
	t.Run("no section: no mail", func(t *testing.T) {
		if c, problems := (settings{}).mailConfig(true); c != nil || problems != nil {
			t.Fatalf("%v, %v", c, problems)
		}
	})
	t.Run("the password comes from KEYGATE_SMTP_PASSWORD", func(t *testing.T) {
		t.Setenv("KEYGATE_SMTP_PASSWORD", secret)
		c, problems := section("").mailConfig(true)
		if len(problems) != 0 || string(c.Password) != secret || c.Port != 587 || c.TLS != "starttls" {
			t.Fatalf("%+v, %v", c, problems)
		}
	})
	t.Run("or from password_file, without its line end", func(t *testing.T) {
		t.Setenv("KEYGATE_SMTP_PASSWORD", "not this one")
		f := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(f, []byte(secret+"\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, problems := section("  password_file: " + f + "\n").mailConfig(true)
		if len(problems) != 0 || string(c.Password) != secret {
			t.Fatalf("%v", problems)
		}
	})
	t.Run("a user without a password is a problem", func(t *testing.T) {
		t.Setenv("KEYGATE_SMTP_PASSWORD", "")
		if _, problems := section("").mailConfig(true); !strings.Contains(strings.Join(problems, "\n"), "set both username and a password") {
			t.Fatalf("%v", problems)
		}
	})
	t.Run("commands that only queue need no password", func(t *testing.T) {
		t.Setenv("KEYGATE_SMTP_PASSWORD", "")
		if _, problems := section("").mailConfig(false); len(problems) != 0 {
			t.Fatalf("%v", problems)
		}
	})
	t.Run("a key the section does not know is refused", func(t *testing.T) {
		if _, err := parseFile("test.yaml", []byte("smtp:\n  host: x\n  password: inline\n")); err == nil || !strings.Contains(err.Error(), `unknown key "password"`) {
			t.Fatalf("parseFile = %v", err)
		}
	})
	t.Run("no problem names the password", func(t *testing.T) {
		t.Setenv("KEYGATE_SMTP_PASSWORD", secret)
		_, problems := section("  tls: none\n  port: 99999\n").mailConfig(true)
		if len(problems) < 2 || strings.Contains(strings.Join(problems, "\n"), secret) {
			t.Fatalf("%v", problems)
		}
	})
}

// TestImportRefusesHeaderInjection: a CSV name or address that would
// carry a header into a mail is refused, naming its line, and nothing is
// imported.
func TestImportRefusesHeaderInjection(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	csv := filepath.Join(t.TempDir(), "users.csv")
	content := "email,name,groups\n" +
		"ok@example.com,Ok,\n" +
		"eve@example.com,\"Eve\r\nBcc: eve@evil.example\",\n" +
		"\"eve@example.com\nBcc: x@evil.example\",Eve,\n"
	if err := os.WriteFile(csv, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runProcess(t, nil, "user", "import", csv, "--data-dir", dataDir)
	if code != 2 || !strings.Contains(stderr, "line 3: the name must not contain line breaks") || !strings.Contains(stderr, "line 5:") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	out, _, code := runProcess(t, nil, "user", "list", "--json", "--data-dir", dataDir)
	if code != 0 || strings.Contains(out, "@example.com") {
		t.Fatalf("users after a refused import: %s", out)
	}
}

func TestMailConfigReportsEveryProblem(t *testing.T) {
	clearEnv(t)
	fc, err := parseFile("test.yaml", []byte("smtp:\n  host: smtp.example.com\n  tls: none\n  username: keygate\n  password_file: /nonexistent/pw\n  from: nobody\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, problems := settings{file: fc}.mailConfig(true)
	all := strings.Join(problems, "\n")
	for _, want := range []string{"smtp.password_file", "smtp.tls: none", "smtp.from"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "set both username and a password") {
		t.Errorf("an unreadable password file is also reported as no password:\n%s", all)
	}
}
