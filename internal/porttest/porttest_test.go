package porttest

import (
	"net"
	"strconv"
	"testing"
)

// Pick's ports are below the ephemeral range, never repeat, and are free:
// the test can bind each one.
func TestPickGivesFreshFreePortsBelowTheEphemeralRange(t *testing.T) {
	_, hi := portRange()
	seen := map[int]bool{}
	for range 50 {
		port, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if port >= hi || port < 1024 {
			t.Fatalf("port %d is outside [1024, %d)", port, hi)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		l.Close()
	}
}

// A port something already listens on is skipped.
func TestPickSkipsAPortInUse(t *testing.T) {
	// Hold a port of the range and point Pick at it.
	mu.Lock()
	lo, _ := portRange()
	var held net.Listener
	for p := lo; held == nil; p++ {
		held, _ = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		next = p
	}
	mu.Unlock()
	defer held.Close()
	port, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	if port == held.Addr().(*net.TCPAddr).Port {
		t.Fatalf("Pick returned %d, which is in use", port)
	}
}
