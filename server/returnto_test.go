package server_test

// Where a sign-in to keygate itself lands: return_to comes from a link
// anyone can craft, so the Location after sign-in must stay on keygate's
// origin as a browser reads it (a browser drops tabs and newlines and
// reads a backslash as a slash).

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/keygate/keygate/internal/browsertest"
	"github.com/keygate/keygate/server/servertest"
)

func TestReturnToStaysOnTheIssuer(t *testing.T) {
	in := start(t)
	k := newKey(false, false)
	const email = "return@example.com"
	in.enrol(t, email, k, "")
	issuer, err := url.Parse(in.Issuer)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, returnTo, want string
	}{
		{"a local page is where the browser lands", "/admin/users?q=a%40b", "/admin/users?q=a%40b"},
		{"a tab that turns the path into //host is refused", "/\t/evil.example/x", "/account"},
		{"a tab and a backslash are refused", "/\t\\evil.example/x", "/account"},
		{"a newline between the slashes is refused", "/\n/evil.example", "/account"},
		{"a backslash after the slash is refused", "/\\evil.example", "/account"},
		{"a scheme-relative URL is refused", "//evil.example/x", "/account"},
		{"an absolute URL is refused", "https://evil.example/x", "/account"},
		{"a leading space is refused", " //evil.example", "/account"},
		{"dot segments cannot make two slashes", "/..//evil.example", "/evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := in.newAgent(t)
			_, done := a.signInWithKey(t, "/login?return_to="+url.QueryEscape(tc.returnTo), email, k)
			r := a.location(t, done.Next)
			if r.Status != http.StatusSeeOther {
				t.Fatalf("after sign-in: %s", r)
			}
			to, err := browsertest.Resolve(issuer, r.Location())
			if err != nil || !browsertest.SameOrigin(issuer, to) {
				t.Errorf("Location %q takes the browser to %v (%v), off %s", r.Location(), to, err, in.Issuer)
			}
			if r.Location() != tc.want {
				t.Errorf("Location %q, want %q", r.Location(), tc.want)
			}
		})
	}
}

// location sends a GET with the browser's cookies and returns the answer
// without reading its Location: Go's client refuses to parse a Location
// a browser would happily follow.
func (a *agent) location(t *testing.T, target string) servertest.Reply {
	t.Helper()
	r := a.in.Request(t, http.MethodGet, target, "", nil, nil)
	for _, c := range a.jar.Cookies(r.URL) {
		r.AddCookie(c)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return servertest.Reply{Status: resp.StatusCode, Header: resp.Header}
}
