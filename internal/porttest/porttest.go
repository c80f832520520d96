// Package porttest hands out TCP ports for servers a test must name before
// they bind: an app whose redirect URI is registered first, oauth2-proxy,
// a PostgreSQL started by pg_ctl.
//
// Asking the kernel for a port (listening on :0 and closing) is not enough:
// until the server binds, the kernel may give the same port to the next
// listener on :0 or to an outgoing connection, and the test then talks to
// the wrong server. The ports here come from below the kernel's ephemeral
// range, which it never hands out by itself.
package porttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
	next  int
)

// Pick returns a port nothing listens on at 127.0.0.1, below the ephemeral
// range and never returned before in this process. Test processes that run
// side by side start at random places in the range, and each pick is
// checked by binding it, so they do not meet in practice.
func Pick() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	lo, hi := portRange()
	if next == 0 {
		next = lo + rand.IntN(hi-lo)
	}
	for range hi - lo {
		port := next
		if next++; next >= hi {
			next = lo
		}
		if given[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		given[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d", lo, hi-1)
}

// portRange is where Pick looks: [lo, hi), ending where the kernel's
// ephemeral ports begin.
func portRange() (lo, hi int) {
	hi = 32768 // Linux's default first ephemeral port
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				hi = n
			}
		}
	}
	lo = 20000
	if hi-lo < 1000 {
		lo = 1024
	}
	return lo, hi
}
