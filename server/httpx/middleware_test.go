package httpx_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/httpx"
)

func TestChainAppliesTheFirstMiddlewareOutermost(t *testing.T) {
	var order []string
	mw := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := httpx.Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "handler") }),
		mw("a"), mw("b"), mw("c"))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got := strings.Join(order, ","); got != "a,b,c,handler" {
		t.Fatalf("order = %s", got)
	}
}

func TestRequestID(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"a request without an id gets a fresh one", "", false},
		{"a sane incoming id is kept", "lb-4f2a_9.c", true},
		{"an id of exactly 64 characters is kept", strings.Repeat("b", 64), true},
		{"an id longer than 64 characters is replaced", long, false},
		{"an id with forbidden characters is replaced", "abc\r\nSet-Cookie: x=1", false},
		{"an id with spaces is replaced", "a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			h := httpx.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = httpx.RequestIDFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			if tt.incoming != "" {
				req.Header.Set("X-Request-Id", tt.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if seen == "" {
				t.Fatal("no request id in the context")
			}
			if got := rec.Header().Get("X-Request-Id"); got != seen {
				t.Errorf("response header %q differs from context id %q", got, seen)
			}
			if tt.keep && seen != tt.incoming {
				t.Errorf("id = %q, want the incoming %q", seen, tt.incoming)
			}
			if !tt.keep && seen == tt.incoming {
				t.Errorf("incoming id %q was kept", tt.incoming)
			}
			if !regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`).MatchString(seen) {
				t.Errorf("id %q is not sane", seen)
			}
		})
	}

	t.Run("two requests get different ids", func(t *testing.T) {
		h := httpx.RequestID(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		a, b := httptest.NewRecorder(), httptest.NewRecorder()
		h.ServeHTTP(a, httptest.NewRequest("GET", "/", nil))
		h.ServeHTTP(b, httptest.NewRequest("GET", "/", nil))
		if a.Header().Get("X-Request-Id") == b.Header().Get("X-Request-Id") {
			t.Fatal("ids repeat")
		}
	})
	t.Run("a context that never went through the middleware has no id", func(t *testing.T) {
		if id := httpx.RequestIDFrom(t.Context()); id != "" {
			t.Fatalf("id = %q", id)
		}
	})
}

func TestClientIP(t *testing.T) {
	trusted := httpx.ClientIPConfig{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}}
	tests := []struct {
		name       string
		cfg        httpx.ClientIPConfig
		remoteAddr string
		xff        []string
		want       string
	}{
		{"without trusted proxies the peer is the client", httpx.ClientIPConfig{}, "203.0.113.9:5555", nil, "203.0.113.9"},
		{"without trusted proxies X-Forwarded-For is ignored", httpx.ClientIPConfig{}, "203.0.113.9:5555", []string{"198.51.100.1"}, "203.0.113.9"},
		{"an untrusted peer's X-Forwarded-For is ignored", trusted, "203.0.113.9:5555", []string{"198.51.100.1"}, "203.0.113.9"},
		{"a trusted peer without X-Forwarded-For is the client", trusted, "10.0.0.1:5555", nil, "10.0.0.1"},
		{"a trusted peer's rightmost untrusted entry is the client", trusted, "10.0.0.1:5555", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted hops in the chain are skipped", trusted, "10.0.0.1:5555", []string{"198.51.100.1, 10.0.0.3, 10.0.0.2"}, "198.51.100.1"},
		{"entries left of the client (client-supplied) are not believed", trusted, "10.0.0.1:5555", []string{"1.2.3.4, 198.51.100.1, 10.0.0.2"}, "198.51.100.1"},
		{"several header lines are read as one list", trusted, "10.0.0.1:5555", []string{"1.2.3.4, 198.51.100.1", "10.0.0.3", "10.0.0.2"}, "198.51.100.1"},
		{"a malformed entry stops the walk at the last trusted hop", trusted, "10.0.0.1:5555", []string{"198.51.100.1, not-an-ip, 10.0.0.2"}, "10.0.0.2"},
		{"a malformed rightmost entry leaves the peer as the client", trusted, "10.0.0.1:5555", []string{"198.51.100.1, garbage"}, "10.0.0.1"},
		{"an empty entry is malformed", trusted, "10.0.0.1:5555", []string{"198.51.100.1,,10.0.0.2"}, "10.0.0.2"},
		{"a chain made only of trusted hops yields the leftmost", trusted, "10.0.0.1:5555", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"entries with a port are accepted", trusted, "10.0.0.1:5555", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 peers and entries work", trusted, "[fd00::1]:443", []string{"2001:db8::7, fd00::2"}, "2001:db8::7"},
		{"IPv4-mapped IPv6 is unmapped and matched as IPv4", trusted, "[::ffff:10.0.0.1]:443", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"an unparseable RemoteAddr gives no client IP", trusted, "@", []string{"198.51.100.1"}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got netip.Addr
			h := httpx.ClientIP(tt.cfg)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = httpx.ClientIPFrom(r.Context())
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.remoteAddr
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got.String() != tt.want {
				t.Fatalf("client IP = %s, want %s", got, tt.want)
			}
		})
	}
}

var nonceRE = regexp.MustCompile(`'nonce-([^']+)'`)

func TestSecurityHeaders(t *testing.T) {
	serve := func(cfg httpx.SecurityConfig) (*httptest.ResponseRecorder, string) {
		var nonce string
		h := httpx.SecurityHeaders(cfg)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			nonce = httpx.NonceFrom(r.Context())
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec, nonce
	}

	t.Run("the CSP nonce is in the header and matches NonceFrom", func(t *testing.T) {
		rec, nonce := serve(httpx.SecurityConfig{})
		csp := rec.Header().Get("Content-Security-Policy")
		m := nonceRE.FindStringSubmatch(csp)
		if m == nil || nonce == "" || m[1] != nonce {
			t.Fatalf("CSP %q, NonceFrom %q", csp, nonce)
		}
		if len(nonce) < 22 || !regexp.MustCompile(`^[A-Za-z0-9+/_-]+$`).MatchString(nonce) {
			t.Errorf("nonce %q is short or not base64-ish", nonce)
		}
	})
	t.Run("the nonce differs per response", func(t *testing.T) {
		seen := map[string]bool{}
		for range 20 {
			_, n := serve(httpx.SecurityConfig{})
			if seen[n] {
				t.Fatalf("nonce %q repeated", n)
			}
			seen[n] = true
		}
	})
	t.Run("the CSP is strict and leaves form-action unset", func(t *testing.T) {
		rec, _ := serve(httpx.SecurityConfig{})
		csp := rec.Header().Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self' 'nonce-", "style-src 'self'",
			"img-src 'self' data:", "connect-src 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("CSP %q lacks %q", csp, d)
			}
		}
		if strings.Contains(csp, "form-action") {
			t.Errorf("CSP %q restricts form-action, which breaks the redirect after the login POST", csp)
		}
	})
	t.Run("the fixed headers are set", func(t *testing.T) {
		rec, _ := serve(httpx.SecurityConfig{})
		for k, v := range map[string]string{
			"X-Content-Type-Options":     "nosniff",
			"Referrer-Policy":            "no-referrer",
			"X-Frame-Options":            "DENY",
			"Cross-Origin-Opener-Policy": "same-origin",
		} {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if got := rec.Header().Get("Cache-Control"); got != "" {
			t.Errorf("Cache-Control = %q; it is the handler's choice", got)
		}
	})
	for _, tt := range []struct {
		name string
		hsts bool
		want string
	}{
		{"HSTS is sent when TLS is on", true, "max-age=31536000"},
		{"HSTS is not sent when TLS is off", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, _ := serve(httpx.SecurityConfig{HSTS: tt.hsts})
			if got := rec.Header().Get("Strict-Transport-Security"); got != tt.want {
				t.Fatalf("Strict-Transport-Security = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	type result struct {
		called bool
		read   int
		err    error
	}
	tests := []struct {
		name       string
		body       string
		chunked    bool
		wantStatus int
		wantCalled bool
		wantMaxErr bool
	}{
		{"a body within the limit is read whole", "0123456789", false, 200, true, false},
		{"a declared Content-Length over the limit is refused with 413 before the handler", "0123456789A", false, 413, false, false},
		{"an undeclared body over the limit fails while reading", "0123456789ABCDEF", true, 200, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res result
			h := httpx.BodyLimit(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				res.called = true
				b, err := io.ReadAll(r.Body)
				res.read, res.err = len(b), err
			}))
			req := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if res.called != tt.wantCalled {
				t.Fatalf("handler called = %v, want %v", res.called, tt.wantCalled)
			}
			var mbe *http.MaxBytesError
			if got := errors.As(res.err, &mbe); got != tt.wantMaxErr {
				t.Fatalf("read error = %v, want MaxBytesError: %v", res.err, tt.wantMaxErr)
			}
		})
	}
}

func TestRecover(t *testing.T) {
	t.Run("a panic becomes a 500 with the request id and is logged with its stack", func(t *testing.T) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, nil))
		h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Set-Cookie", "half=done")
			panic("boom")
		}), httpx.RequestID, httpx.Recover(logger))
		req := httptest.NewRequest("POST", "/oauth2/token?code=SECRETCODE", strings.NewReader("password=SECRETPW"))
		req.Header.Set("X-Request-Id", "req-123")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req) // must not panic

		if rec.Code != 500 {
			t.Fatalf("status = %d", rec.Code)
		}
		if !strings.Contains(rec.Body.String(), "req-123") || strings.Contains(rec.Body.String(), "boom") {
			t.Errorf("body = %q; want the request id and not the panic value", rec.Body.String())
		}
		if rec.Header().Get("Set-Cookie") != "" {
			t.Error("a cookie set before the panic was sent")
		}
		out := logs.String()
		for _, want := range []string{`"panic":"boom"`, `"request_id":"req-123"`, `"stack":"goroutine`, `"path":"/oauth2/token"`} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s: %s", want, out)
			}
		}
		for _, secret := range []string{"SECRETCODE", "SECRETPW"} {
			if strings.Contains(out, secret) {
				t.Errorf("log contains %s: %s", secret, out)
			}
		}
	})
	t.Run("a panic after the response started does not write a second status", func(t *testing.T) {
		h := httpx.Recover(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("partial"))
			panic("late")
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusAccepted || rec.Body.String() != "partial" {
			t.Fatalf("got %d %q", rec.Code, rec.Body.String())
		}
	})
	t.Run("http.ErrAbortHandler is passed on to net/http", func(t *testing.T) {
		h := httpx.Recover(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			panic(http.ErrAbortHandler)
		}))
		msg := catchPanic(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
		if msg != http.ErrAbortHandler.Error() {
			t.Fatalf("panic = %q", msg)
		}
	})
	t.Run("a real server keeps serving after a panic", func(t *testing.T) {
		n := 0
		srv := httptest.NewServer(httpx.Recover(slog.New(slog.DiscardHandler))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n++
			if n == 1 {
				panic("first")
			}
			_, _ = w.Write([]byte("ok"))
		})))
		defer srv.Close()
		for i, want := range []int{500, 200} {
			resp, err := srv.Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
			}
		}
	})
}

func TestSecurityHeaderKeysAreCanonical(t *testing.T) {
	rec := httptest.NewRecorder()
	httpx.SecurityHeaders(httpx.SecurityConfig{HSTS: true})(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	for k := range rec.Header() {
		if k != http.CanonicalHeaderKey(k) {
			t.Errorf("header key %q is not canonical", k)
		}
	}
	t.Run("a handler adding to a security header does not disturb the others", func(t *testing.T) {
		rec := httptest.NewRecorder()
		httpx.SecurityHeaders(httpx.SecurityConfig{HSTS: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("X-Content-Type-Options", "extra")
		})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if got := rec.Header().Values("Referrer-Policy"); len(got) != 1 || got[0] != "no-referrer" {
			t.Fatalf("Referrer-Policy = %q", got)
		}
	})
}
