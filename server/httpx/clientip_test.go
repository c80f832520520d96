package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/httpx"
)

// fuzzProxies are the trusted proxies of FuzzClientIP.
var fuzzProxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
}

// clientIP runs the ClientIP middleware over a request from remoteAddr with
// these X-Forwarded-For lines.
func clientIP(remoteAddr string, xff []string) netip.Addr {
	var got netip.Addr
	h := httpx.ClientIP(httpx.ClientIPConfig{TrustedProxies: fuzzProxies})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = httpx.ClientIPFrom(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = remoteAddr
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
	return got
}

// hop parses an address as RemoteAddr or a proxy has it: bare or with a
// port.
func hop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func trusted(a netip.Addr) bool {
	for _, p := range fuzzProxies {
		if p.Contains(a.WithZone("")) {
			return true
		}
	}
	return false
}

// FuzzClientIP: the client address is the peer or an address a proxy
// wrote; an untrusted peer is the client whatever it sends; and what the
// client wrote itself — anything left of the first untrusted entry from
// the right — never changes the answer.
func FuzzClientIP(f *testing.F) {
	f.Fuzz(func(t *testing.T, remoteAddr, header string) {
		var lines []string
		if header != "" {
			lines = strings.Split(header, "\n")
		}
		got := clientIP(remoteAddr, lines)
		peer, ok := hop(remoteAddr)
		if !ok {
			if got.IsValid() {
				t.Fatalf("RemoteAddr %q does not parse, yet the client is %s", remoteAddr, got)
			}
			return
		}
		if !trusted(peer) && got != peer {
			t.Fatalf("untrusted peer %s with X-Forwarded-For %q: client %s", peer, lines, got)
		}
		var entries []string
		for _, l := range lines {
			entries = append(entries, strings.Split(l, ",")...)
		}
		if got != peer {
			// Written by a proxy: an entry, with only trusted hops right of it.
			i := len(entries) - 1
			for ; i >= 0; i-- {
				if a, ok := hop(strings.TrimSpace(entries[i])); ok && a == got {
					break
				}
			}
			if i < 0 {
				t.Fatalf("client %s is neither the peer %s nor an entry of %q", got, peer, lines)
			}
			for _, e := range entries[i+1:] {
				if a, ok := hop(strings.TrimSpace(e)); !ok || !trusted(a) {
					t.Fatalf("client %s from %q, but %q right of it is not a trusted hop", got, lines, e)
				}
			}
		}
		if !trusted(got) {
			forged := clientIP(remoteAddr, append([]string{"203.0.113.66, 10.1.2.3"}, lines...))
			if forged != got {
				t.Fatalf("a line the client prepended moved the client from %s to %s (X-Forwarded-For %q)", got, forged, lines)
			}
		}
	})
}
