package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Modes: which endpoint a run drives.
const (
	modeToken      = "token"      // POST /oauth2/token, grant_type=client_credentials
	modeIntrospect = "introspect" // POST /oauth2/introspect with one token obtained first
	modeDiscovery  = "discovery"  // GET /.well-known/openid-configuration
	modeJWKS       = "jwks"       // GET /oauth2/jwks
)

// maxBody bounds how much of a response is read; keygate's answers on these
// endpoints are a few hundred bytes.
const maxBody = 1 << 20

// loopbackURL parses raw and accepts it only if its host is loopback:
// "localhost" or a literal address in 127.0.0.0/8 or ::1. Nothing is
// resolved here; the dialer checks the address actually dialled as well.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-url %q: scheme must be http or https", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("-url %q: give only scheme, host, port and optional path", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("-url %q: refusing a non-loopback host (only localhost, 127.0.0.0/8 and ::1 are allowed)", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// isLoopbackHost reports whether host (no port) names loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// loopbackDialer dials only loopback addresses: "localhost" is resolved by
// the system, and whatever it resolves to is checked before connecting.
func loopbackDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		ap, perr := netip.ParseAddrPort(conn.RemoteAddr().String())
		if perr != nil || !ap.Addr().Unmap().IsLoopback() {
			conn.Close()
			return nil, fmt.Errorf("refusing non-loopback peer %s", conn.RemoteAddr())
		}
		return conn, nil
	}
}

// loader holds what every worker shares: one Transport (so connections are
// pooled and kept alive, MaxIdleConnsPerHost = c) and the request recipe.
type loader struct {
	cfg       Config
	target    *url.URL // the endpoint's full URL
	transport *http.Transport
	client    *http.Client
	method    string
	header    http.Header // per-request headers (copied per worker)
	body      []byte      // request body, nil for GET
	want      []byte      // a 2xx body must contain this to count as success
}

func newLoader(cfg Config) (*loader, error) {
	base, err := loopbackURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 nil, // never send loopback traffic through an environment proxy
		DialContext:           loopbackDialer(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}),
		MaxIdleConns:          cfg.Conns,
		MaxIdleConnsPerHost:   cfg.Conns,
		MaxConnsPerHost:       cfg.Conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		DisableCompression:    true, // measure the server, not gzip
		ForceAttemptHTTP2:     false,
	}
	l := &loader{
		cfg:       cfg,
		transport: tr,
		client: &http.Client{
			Transport: tr,
			// Never follow a redirect: it could point anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		header: http.Header{"User-Agent": {"keygate-load"}},
	}
	path := map[string]string{
		modeToken:      "/oauth2/token",
		modeIntrospect: "/oauth2/introspect",
		modeDiscovery:  "/.well-known/openid-configuration",
		modeJWKS:       "/oauth2/jwks",
	}[cfg.Mode]
	target := *base
	target.Path = base.Path + path // base.Path has no trailing slash; path starts with one
	target.RawPath = ""
	l.target = &target
	switch cfg.Mode {
	case modeDiscovery:
		l.method, l.want = http.MethodGet, []byte(`"issuer"`)
	case modeJWKS:
		l.method, l.want = http.MethodGet, []byte(`"keys"`)
	case modeToken:
		l.method, l.want = http.MethodPost, []byte(`"access_token"`)
		l.body = l.clientForm(url.Values{"grant_type": {"client_credentials"}})
	case modeIntrospect:
		// The body (with the token) is set by prepare.
		l.method, l.want = http.MethodPost, []byte(`"active":true`)
	}
	if l.method == http.MethodPost {
		l.header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cfg.Auth == "basic" {
			// RFC 6749 §2.3.1: form-encode id and secret, then Basic.
			cred := url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(cfg.ClientSecret)
			l.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
		}
	}
	return l, nil
}

// clientForm encodes form, adding the client's credentials for
// client_secret_post.
func (l *loader) clientForm(form url.Values) []byte {
	if l.cfg.Auth == "post" {
		form.Set("client_id", l.cfg.ClientID)
		form.Set("client_secret", l.cfg.ClientSecret)
	}
	return []byte(form.Encode())
}

func (l *loader) close() { l.transport.CloseIdleConnections() }

// prepare does the one-off requests a mode needs: introspect obtains the
// token it will introspect.
func (l *loader) prepare(ctx context.Context) error {
	if l.cfg.Mode != modeIntrospect {
		return nil
	}
	tokenURL := *l.target
	tokenURL.Path = strings.TrimSuffix(tokenURL.Path, "/introspect") + "/token"
	body := l.clientForm(url.Values{"grant_type": {"client_credentials"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = l.header.Clone()
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("obtain token: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("obtain token: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &tok) != nil || tok.AccessToken == "" {
		return fmt.Errorf("obtain token: %s: %.200s", resp.Status, raw)
	}
	l.body = l.clientForm(url.Values{"token": {tok.AccessToken}})
	return nil
}

// Result is what one run measured.
type Result struct {
	Elapsed   time.Duration
	Latencies []time.Duration // successful and failed requests that got an answer
	OK        int64
	Non2xx    int64 // answered with a status outside 200-299
	BadBody   int64 // 2xx, but the body was not what the mode expects
	NetErrors int64 // no answer: connection or timeout errors
	Statuses  map[int]int64
	FirstErr  string // one example, for diagnosis
}

// worker is one connection's loop state; nothing in it is shared.
type worker struct {
	lat      []time.Duration
	ok       int64
	non2xx   int64
	badBody  int64
	netErr   int64
	statuses map[int]int64
	firstErr string
	buf      bytes.Buffer
	header   http.Header
}

// run drives the endpoint from cfg.Conns workers until d has passed, or n
// requests (if n > 0) were started, or ctx ends. When d passes no new
// request starts, but those in flight finish (each bounded by -timeout) and
// are counted: cutting them off would make the server log cancelled work
// and would close the kept-alive connections.
func (l *loader) run(ctx context.Context, d time.Duration, n int64) Result {
	var stop atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	var budget atomic.Int64
	budget.Store(n)
	workers := make([]*worker, l.cfg.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{statuses: map[int]int64{}, header: l.header.Clone(),
			lat: make([]time.Duration, 0, 4096)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				if n > 0 && budget.Add(-1) < 0 {
					return
				}
				l.once(ctx, w)
			}
		}()
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(start), Statuses: map[int]int64{}}
	for _, w := range workers {
		res.Latencies = append(res.Latencies, w.lat...)
		res.OK += w.ok
		res.Non2xx += w.non2xx
		res.BadBody += w.badBody
		res.NetErrors += w.netErr
		for k, v := range w.statuses {
			res.Statuses[k] += v
		}
		if res.FirstErr == "" {
			res.FirstErr = w.firstErr
		}
	}
	return res
}

// once sends one request and records its outcome on w.
func (l *loader) once(ctx context.Context, w *worker) {
	req := &http.Request{
		Method:     l.method,
		URL:        l.target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     w.header, // never modified by the client or transport
		Host:       l.target.Host,
	}
	if l.body != nil {
		req.Body = io.NopCloser(bytes.NewReader(l.body))
		req.ContentLength = int64(len(l.body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l.body)), nil }
	}
	req = req.WithContext(ctx)

	t0 := time.Now()
	// The Transport directly: the Client would only add redirect handling
	// (which must not happen here anyway) and per-request overhead.
	resp, err := l.transport.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			return // interrupted (Ctrl-C) while this request was in flight
		}
		w.netErr++
		w.note(err.Error())
		return
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	lat := time.Since(t0)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		w.netErr++
		w.note("read body: " + err.Error())
		return
	}
	w.lat = append(w.lat, lat)
	w.statuses[resp.StatusCode]++
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		w.non2xx++
		w.note(fmt.Sprintf("%s: %.200s", resp.Status, w.buf.Bytes()))
	case !bytes.Contains(w.buf.Bytes(), l.want):
		w.badBody++
		w.note(fmt.Sprintf("unexpected body: %.200s", w.buf.Bytes()))
	default:
		w.ok++
	}
}

func (w *worker) note(msg string) {
	if w.firstErr == "" {
		w.firstErr = msg
	}
}
