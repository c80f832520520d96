// Package e2e drives the built keygate binary from outside: a real SQLite
// file in a temp data dir, a real HTTP server on 127.0.0.1, the CLI, and
// stock OIDC clients (golang.org/x/oauth2, coreos/go-oidc). It imports
// nothing of keygate.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/porttest"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// binary is the keygate built once for every test in the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keygate-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keygate")
	build := exec.Command("go", "build", "-o", binary, "../cmd/keygate")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build keygate:", err)
		os.Exit(1)
	}
	// pgtest finds the PostgreSQL the replica tests share, or starts one.
	code := pgtest.Run(m)
	stopChromium()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one running `keygate serve`.
type instance struct {
	t         *testing.T
	dataDir   string
	issuer    string
	config    string
	cmd       *exec.Cmd
	stdout    *lineBuffer
	stderr    *lineBuffer
	exited    chan error
	enrollURL string

	// configOnly: serve gets no --listen/--issuer flags, the config file
	// sets them. client, if set, does the readiness probe (e.g. one that
	// trusts a test certificate).
	configOnly bool
	client     *http.Client

	// listen, if set, is the address serve listens on and is probed at,
	// when the issuer is another's (a load balancer in front). env is
	// added to the environment of serve and of every command.
	listen string
	env    []string
}

// freePort is a port for a server the test must name before it binds
// (see porttest for why not one the kernel picks).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := porttest.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// startKeygate runs serve on dataDir with a localhost issuer and waits for
// it to answer /readyz. config, if not empty, is written as the YAML file.
func startKeygate(t *testing.T, dataDir, config string) *instance {
	t.Helper()
	port := freePort(t)
	in := &instance{t: t, dataDir: dataDir, issuer: fmt.Sprintf("http://localhost:%d", port)}
	if config != "" {
		in.config = filepath.Join(dataDir, "..", filepath.Base(dataDir)+".yaml")
		if err := os.WriteFile(in.config, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in.start(port)
	return in
}

// startKeygateConfig runs serve with only --data-dir and --config: the
// config (written as the YAML file) sets the listen address and issuer,
// which must be given here too. client, if not nil, does the readiness
// probe; use one that trusts the server's certificate for TLS.
func startKeygateConfig(t *testing.T, dataDir, issuer, config string, client *http.Client) *instance {
	t.Helper()
	in := &instance{t: t, dataDir: dataDir, issuer: issuer, configOnly: true, client: client,
		config: filepath.Join(dataDir, "..", filepath.Base(dataDir)+".yaml")}
	if err := os.WriteFile(in.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	in.start(0)
	return in
}

func (in *instance) start(port int) {
	t := in.t
	args := []string{"serve", "--data-dir", in.dataDir}
	probe := in.issuer
	if in.listen != "" {
		args = append(args, "--listen", in.listen, "--issuer", in.issuer)
		probe = "http://" + in.listen
	} else if !in.configOnly {
		args = append(args, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--issuer", in.issuer)
	}
	if in.config != "" {
		args = append(args, "--config", in.config)
	}
	in.cmd = exec.Command(binary, args...)
	in.cmd.Env = append(os.Environ(), in.env...)
	in.stdout, in.stderr = &lineBuffer{}, &lineBuffer{}
	in.cmd.Stdout, in.cmd.Stderr = in.stdout, in.stderr
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.exited = make(chan error, 1)
	go func() { in.exited <- in.cmd.Wait() }()
	t.Cleanup(func() { in.stop() })
	client := in.client
	if client == nil {
		client = http.DefaultClient
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Ready when it answers and its stdout (copied by another
		// goroutine) has caught up with the "listening" line.
		resp, err := client.Get(probe + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(in.stdout.String(), " listening on ") {
				break
			}
		}
		select {
		case err := <-in.exited:
			t.Fatalf("keygate exited: %v\nstdout:\n%s\nstderr:\n%s", err, in.stdout, in.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("keygate did not become ready\nstderr:\n%s", in.stderr)
		}
	}
	in.enrollURL = ""
	if m := regexp.MustCompile(`(https?://\S+/enroll\?token=\S+)`).FindStringSubmatch(in.stdout.String()); m != nil {
		in.enrollURL = m[1]
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop() {
	if in.cmd == nil || in.cmd.ProcessState != nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.exited:
		if err != nil {
			in.t.Errorf("keygate exited uncleanly on SIGTERM: %v\nstderr tail:\n%s", err, tail(in.stderr.String(), 2000))
		}
	case <-time.After(20 * time.Second):
		_ = in.cmd.Process.Kill()
		in.t.Error("keygate did not stop within 20s of SIGTERM")
	}
	in.cmd = nil
}

// kill ends serve with SIGKILL, as a crash or a lost machine would.
func (in *instance) kill() {
	in.t.Helper()
	if err := in.cmd.Process.Kill(); err != nil {
		in.t.Fatal(err)
	}
	<-in.exited
	in.cmd = nil
}

// restart stops and starts the server on the same data dir and port.
func (in *instance) restart() {
	port := strings.TrimPrefix(in.issuer, "http://localhost:")
	in.stop()
	var p int
	fmt.Sscanf(port, "%d", &p)
	in.start(p)
}

// cli runs a keygate command against the instance's data dir and returns
// stdout; it fails the test on a non-zero exit.
func (in *instance) cli(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.cliCode(args...)
	if code != 0 {
		in.t.Fatalf("keygate %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func (in *instance) cliCode(args ...string) (stdout, stderr string, code int) {
	args = append(args, "--data-dir", in.dataDir, "--issuer", in.issuer)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), in.env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		in.t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// addUser adds an employee (not an administrator) with the CLI and
// returns their enrolment link. Administrators enrol with a security key;
// the flows that sign in with a password and an authenticator app use an
// employee.
func (in *instance) addUser(email string) string {
	in.t.Helper()
	var nu struct {
		EnrollmentURL string `json:"enrollment_url"`
	}
	in.cliJSON(&nu, "user", "add", email)
	if nu.EnrollmentURL == "" {
		in.t.Fatalf("user add %s printed no enrolment URL", email)
	}
	return nu.EnrollmentURL
}

func (in *instance) cliJSON(v any, args ...string) {
	in.t.Helper()
	out := in.cli(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		in.t.Fatalf("keygate %v: %v\n%s", args, err, out)
	}
}

// lineBuffer is a goroutine-safe buffer for a child's output.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the buffer's JSON log lines decoded.
func (b *lineBuffer) jsonLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// audited are the audit events of a type that keygate logged to stderr
// since it last started, oldest first.
func (in *instance) audited(event string) []map[string]any {
	var out []map[string]any
	for _, l := range in.stderr.jsonLines() {
		if l["msg"] == "audit" && l["event"] == event {
			out = append(out, l)
		}
	}
	return out
}

// auditEvents are the audit events of a type that keygate logged for an app.
func (in *instance) auditEvents(event, clientID string) []map[string]any {
	var out []map[string]any
	for _, e := range in.audited(event) {
		if e["client_id"] == clientID {
			out = append(out, e)
		}
	}
	return out
}

// logged reports whether keygate logged an audit event of this type.
func (in *instance) logged(event string) bool { return len(in.audited(event)) > 0 }

// auditDetail is a detail of the last logged audit event of this type.
func (in *instance) auditDetail(event, key string) string {
	events := in.audited(event)
	if len(events) == 0 {
		return ""
	}
	d, _ := events[len(events)-1]["details"].(map[string]any)
	v, _ := d[key].(string)
	return v
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
