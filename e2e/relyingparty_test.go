package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// For relying parties that run as web apps of their own (the
// zitadel/oidc app, oauth2-proxy): the browser visits the app, the app
// sends it to keygate, and keygate's final redirect sends it back.

// hop makes one request with b's cookies without following a redirect,
// and returns where the answer points (resolved against the request).
func (b *browser) hop(rawURL string) string {
	b.t.Helper()
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		b.t.Fatalf("GET %s: %d without a redirect: %s", rawURL, resp.StatusCode, tail(readAll(b.t, resp.Body), 500))
	}
	return loc.String()
}

// hopTo follows an app's own redirects without entering keygate, and
// returns the first address on keygate: the app's authorization request.
func (b *browser) hopTo(rawURL string) string {
	b.t.Helper()
	for range 10 {
		rawURL = b.hop(rawURL)
		if strings.HasPrefix(rawURL, b.origin+"/") {
			return rawURL
		}
	}
	b.t.Fatalf("no redirect to keygate after 10 hops, last %s", rawURL)
	return ""
}

// visit gets an app's page the way a browser would: redirects within the
// app and into keygate are followed; it stops on an answer that is not a
// redirect, or on keygate's redirect out to an app.
func (b *browser) visit(rawURL string) *page {
	b.t.Helper()
	p := b.get(rawURL)
	for range 10 {
		if p.location == "" || strings.HasPrefix(p.url.String(), b.origin+"/") {
			return p
		}
		next, err := p.url.Parse(p.location)
		if err != nil {
			b.t.Fatal(err)
		}
		p = b.get(next.String())
	}
	b.t.Fatalf("more than 10 redirects from %s", rawURL)
	return nil
}

// authorizeParams are the query parameters of an authorization request.
func authorizeParams(t *testing.T, authorizeURL string) url.Values {
	t.Helper()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// eventually polls cond with a short tick until it holds, for what nothing
// can be waited on directly (a delivery another process makes, a refresh
// that falls due); it fails the test at the deadline.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
