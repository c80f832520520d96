package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// cluster is a throwaway PostgreSQL cluster: initdb into a temporary
// directory, a postmaster listening only on a Unix socket in that
// directory, no durability (fsync off: it is thrown away).
type cluster struct {
	dir  string              // holds data/, the socket and the log
	bin  string              // the directory of initdb, pg_ctl and postgres
	cred *syscall.Credential // whom the server runs as, when we are root
	port int
}

// errNoPostgres is the failure of a test that cannot find PostgreSQL.
var errNoPostgres = errors.New("PostgreSQL is not installed: install Debian's postgresql package " +
	"(./scripts/postgres.sh does, and ./scripts/test.sh runs it) or set " + EnvDSN + " to a server's DSN")

// findBin returns the directory holding initdb: the newest of
// /usr/lib/postgresql/*/bin (Debian's layout), else initdb on PATH.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errNoPostgres
}

// version is the major version in /usr/lib/postgresql/<v>/bin.
func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// startCluster makes and starts a cluster and returns it. initdb refuses to
// run as root, so as root the cluster belongs to the postgres user
// (Debian's package creates it); the tests, as root, may still connect
// through the socket.
func startCluster() (*cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keygate-pg-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, and initdb refuses root: no postgres user to run PostgreSQL as (%w); set %s instead", err, EnvDSN)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if c.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// pg_ctl -w returns once the server accepts connections.
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
		dir, c.port)
	if err := c.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "120", "start"); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// dsn is the cluster's maintenance database, reached through the socket.
func (c *cluster) dsn() string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", c.dir, c.port)
}

// stop stops the server at once (nothing in it is worth a clean shutdown)
// and removes the directory.
func (c *cluster) stop() error {
	err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	return errors.Join(err, os.RemoveAll(c.dir))
}

// run runs a PostgreSQL program as the cluster's owner.
func (c *cluster) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out.Bytes())
	}
	return nil
}

// freePort returns a TCP port nobody listens on now. The server listens
// on a Unix socket only, whose name carries the port, so the number only
// has to differ from other clusters' sharing the socket directory — and
// the directory is this cluster's own; a free port keeps it unsurprising.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
