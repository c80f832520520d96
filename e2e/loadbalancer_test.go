package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// replicaSet is keygate as a company that cannot accept one machine as a
// single point of failure runs it: several `keygate serve` on one
// PostgreSQL database, sharing the master key and the issuer, behind
// haproxy balancing round robin with no stickiness.
type replicaSet struct {
	t        *testing.T
	issuer   string // the load balancer's URL, which every replica is configured with
	dsn      string
	replicas []*instance
	lb       *haproxy
}

// startReplicas starts n replicas on a new, empty database and haproxy in
// front of them. config, if not empty, is every replica's YAML file (and
// the command line's).
func startReplicas(t *testing.T, n int, config string) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t, dsn: pgtest.Empty(t)}
	lbPort := freePort(t)
	rs.issuer = fmt.Sprintf("http://localhost:%d", lbPort)
	key := make([]byte, 32)
	rand.Read(key)
	env := []string{"KEYGATE_DATABASE_URL=" + rs.dsn, "KEYGATE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key)}
	if config != "" {
		path := filepath.Join(t.TempDir(), "keygate.yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "KEYGATE_CONFIG="+path)
	}
	var addrs []string
	for range n {
		in := &instance{t: t, dataDir: t.TempDir(), issuer: rs.issuer,
			listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)), env: env}
		// One at a time: the first creates the schema and the first
		// administrator, whose enrolment link it prints.
		in.start(0)
		rs.replicas = append(rs.replicas, in)
		addrs = append(addrs, in.listen)
	}
	rs.lb = startHAProxy(t, lbPort, addrs)
	return rs
}

// cli runs a keygate command on the shared database.
func (rs *replicaSet) cli(args ...string) string { return rs.replicas[0].cli(args...) }

func (rs *replicaSet) cliJSON(v any, args ...string) { rs.replicas[0].cliJSON(v, args...) }

// enrollURL is the first administrator's enrolment link.
func (rs *replicaSet) enrollURL() string {
	for _, in := range rs.replicas {
		if in.enrollURL != "" {
			return in.enrollURL
		}
	}
	rs.t.Fatal("no replica printed the first administrator's enrolment link")
	return ""
}

// replicaName is haproxy's name of the replica at index i.
func replicaName(i int) string { return fmt.Sprintf("r%d", i+1) }

// haproxy is Debian's haproxy in front of the replicas. Every answer
// carries the replica that served it (X-Keygate-Replica), and the log
// says for each request which replica served it.
type haproxy struct {
	cmd    *exec.Cmd
	log    *lineBuffer
	exited chan error
}

// servedHeader names the replica that answered, as haproxy adds it.
const servedHeader = "X-Keygate-Replica"

func startHAProxy(t *testing.T, port int, servers []string) *haproxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatal("haproxy is not installed: apt-get install haproxy (./scripts/test.sh installs it)")
		}
		bin = "/usr/sbin/haproxy"
	}
	var backends strings.Builder
	for i, addr := range servers {
		fmt.Fprintf(&backends, "  server %s %s check\n", replicaName(i), addr)
	}
	// Round robin, no stickiness. A replica is taken out after one failed
	// health check and back after one good one; a request whose connection
	// is refused (a replica that died) is retried on another one, which
	// is safe because it never reached keygate. A request in flight when
	// its replica dies fails, as it would in production.
	config := fmt.Sprintf(`global
  log stdout format raw local0
  maxconn 2048
defaults
  mode http
  log global
  log-format "%%s %%HM %%HP %%ST"
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch 1
frontend keygate
  bind 127.0.0.1:%d
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 100ms fall 1 rise 1
  http-response set-header %s %%s
%s`, port, servedHeader, backends.String())
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	lb := &haproxy{log: &lineBuffer{}, exited: make(chan error, 1)}
	lb.cmd = exec.Command(bin, "-db", "-f", path)
	lb.cmd.Stdout, lb.cmd.Stderr = lb.log, lb.log
	if err := lb.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { lb.exited <- lb.cmd.Wait() }()
	t.Cleanup(func() {
		_ = lb.cmd.Process.Kill()
		<-lb.exited
	})
	// Ready when every replica has answered through it.
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < len(servers) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				seen[resp.Header.Get(servedHeader)] = true
			}
		}
		select {
		case err := <-lb.exited:
			t.Fatalf("haproxy exited: %v\n%s", err, lb.log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not reach every replica (saw %v)\n%s", seen, lb.log)
		}
	}
	return lb
}

// served is one request as haproxy logged it.
type served struct{ replica, method, path string }

// requests lists the requests haproxy has logged, in order.
func (lb *haproxy) requests() []served {
	var out []served
	for line := range strings.SplitSeq(lb.log.String(), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		replica := f[0]
		if i := strings.IndexByte(replica, '/'); i >= 0 { // "backend/server"
			replica = replica[i+1:]
		}
		out = append(out, served{replica: replica, method: f[1], path: f[2]})
	}
	return out
}
