package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
)

// browser is one simulated browser: its own cookies, over the generator's
// shared keep-alive connections. Like the generator's other clients it
// never follows a redirect by itself; follow does, and only within
// keygate.
type browser struct {
	c       *http.Client
	base    *url.URL          // keygate, as the generator reaches it
	cookies map[string]string // name → value; one host, so no domains or paths
}

func newBrowser(c *http.Client, base *url.URL, cookies map[string]string) *browser {
	b := &browser{c: c, base: base, cookies: make(map[string]string, len(cookies)+2)}
	for k, v := range cookies {
		b.cookies[k] = v
	}
	return b
}

// reply is one answer, read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) location() string { return r.header.Get("Location") }

// stepError is a sign-in step that got an answer other than the one a
// successful sign-in gets: a refusal, an error page, a wrong body.
type stepError struct {
	step   string
	status int // 0: the status was right, the body was not
	body   []byte
}

func (e *stepError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("%s: unexpected answer: %.200s", e.step, e.body)
	}
	return fmt.Sprintf("%s: %d: %.200s", e.step, e.status, e.body)
}

func unexpected(step string, r reply) error {
	return &stepError{step: step, status: r.status, body: r.body}
}

func badBody(step string, body []byte) error { return &stepError{step: step, body: body} }

// send sends a request to path (a path and query under keygate) with the
// browser's cookies and keeps the cookies the answer sets.
func (b *browser) send(ctx context.Context, method, path, ctype string, body []byte, header http.Header) (reply, error) {
	u, err := b.base.Parse(path)
	if err != nil {
		return reply{}, fmt.Errorf("%s: %w", path, err)
	}
	if u.Host != b.base.Host {
		return reply{}, fmt.Errorf("refusing to leave keygate for %s", u.Redacted())
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) keygate-load")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	for name, value := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return reply{}, fmt.Errorf("read body: %w", err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

func (b *browser) get(ctx context.Context, path string) (reply, error) {
	return b.send(ctx, http.MethodGet, path, "", nil, nil)
}

func (b *browser) postForm(ctx context.Context, path string, form url.Values) (reply, error) {
	return b.send(ctx, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
}

// postJSON is web/static/webauthn.js's post: a JSON body and the CSRF
// token in the X-CSRF-Token header.
func (b *browser) postJSON(ctx context.Context, path, csrf string, body []byte) (reply, error) {
	return b.send(ctx, http.MethodPost, path, "application/json", body, http.Header{"X-Csrf-Token": {csrf}})
}

// follow follows keygate's redirects from r: it returns the first answer
// that is not a redirect, or the redirect that leaves keygate (to the
// app), whose location it returns too.
func (b *browser) follow(ctx context.Context, r reply) (reply, *url.URL, error) {
	for range 10 {
		if r.status < 300 || r.status > 399 {
			return r, nil, nil
		}
		loc, err := b.base.Parse(r.location())
		if err != nil {
			return r, nil, badBody("redirect", []byte(r.location()))
		}
		if loc.Host != b.base.Host {
			return r, loc, nil
		}
		if r, err = b.get(ctx, loc.RequestURI()); err != nil {
			return r, nil, err
		}
	}
	return r, nil, errors.New("more than 10 redirects")
}

// getFollow is get, then follow.
func (b *browser) getFollow(ctx context.Context, path string) (reply, *url.URL, error) {
	r, err := b.get(ctx, path)
	if err != nil {
		return r, nil, err
	}
	return b.follow(ctx, r)
}

var (
	reCSRFField  = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
	reFlowField  = regexp.MustCompile(`name="flow" value="([^"]*)"`)
	reTokenField = regexp.MustCompile(`name="token" value="([^"]*)"`)
	reDataCSRF   = regexp.MustCompile(`data-csrf="([^"]*)"`)
	reDataFlow   = regexp.MustCompile(`data-flow="([^"]*)"`)
	reTOTPSecret = regexp.MustCompile(`data-secret="([^"]*)"`)
)

// scrape is what re's first group captures from a page, HTML entities
// decoded.
func scrape(step string, r reply, re *regexp.Regexp) (string, error) {
	m := re.FindSubmatch(r.body)
	if m == nil {
		return "", badBody(step, r.body)
	}
	return html.UnescapeString(string(m[1])), nil
}
