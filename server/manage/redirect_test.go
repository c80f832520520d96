package manage

import (
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/browsertest"
)

// FuzzValidateRedirect: a redirect URI that is accepted sends the browser
// where net/url says it does — the same scheme and host as a browser
// reads them — never to a scheme that runs or reads instead of handing
// the code to an app, never with a fragment, and over plain http only to
// a loopback host.
func FuzzValidateRedirect(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		if validateRedirect(raw) != nil {
			return
		}
		ours, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, err)
		}
		theirs, err := browsertest.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which a browser reads as %q, which does not parse: %v", raw, browsertest.Clean(raw), err)
		}
		if !strings.EqualFold(ours.Scheme, theirs.Scheme) || ours.Host != theirs.Host || (ours.User == nil) != (theirs.User == nil) {
			t.Errorf("accepted %q: scheme %q host %q here, %q %q in a browser", raw, ours.Scheme, ours.Host, theirs.Scheme, theirs.Host)
		}
		switch scheme := strings.ToLower(theirs.Scheme); {
		case scheme == "javascript" || scheme == "data" || scheme == "vbscript" || scheme == "file" || scheme == "blob" || scheme == "about":
			t.Errorf("accepted %q with scheme %s", raw, scheme)
		case scheme == "http" && !isLoopback(theirs.Hostname()):
			t.Errorf("accepted %q: plain http to %q", raw, theirs.Hostname())
		case (scheme == "http" || scheme == "https") && theirs.Host == "":
			t.Errorf("accepted %q: %s without a host", raw, scheme)
		}
		if strings.Contains(browsertest.Clean(raw), "#") {
			t.Errorf("accepted %q, which has a fragment", raw)
		}
	})
}
