package main

import (
	"bufio"
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

func newDialer() *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
}

// loader holds what every worker shares: the request recipe, and a client
// for the one-off requests of prepare. Each worker keeps one connection of
// its own and writes the same request bytes on it, serialised once by
// net/http: a load generator that shares the machine with the server must
// spend as little CPU per request as it can, and an http.Transport's
// per-request goroutine hand-offs cost as much as the server's work on
// the cheaper endpoints.
type loader struct {
	cfg       Config
	target    *url.URL // the endpoint's full URL
	transport *http.Transport
	client    *http.Client
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	method    string
	header    http.Header // per-request headers
	body      []byte      // request body, nil for GET
	want      []byte      // a 2xx body must contain this to count as success
	wire      []byte      // the whole request as sent, built by run
}

func newLoader(cfg Config) (*loader, error) {
	base, err := loopbackURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	dial := loopbackDialer(newDialer())
	tr := &http.Transport{
		Proxy:                 nil, // never send loopback traffic through an environment proxy
		DialContext:           dial,
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
		dial:      dial,
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

func (l *loader) where() string { return l.target.String() }

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
	Waits     int64 // signin-totp: times a worker waited for a new TOTP step
	Statuses  map[int]int64
	FirstErr  string // one example, for diagnosis
}

// worker is one connection's loop state; nothing in it is shared.
type worker struct {
	id       int             // 0 to conns-1: which share of a sign-in mode's users it drives
	stop     <-chan struct{} // closed when the measured time is over
	waits    int64
	lat      []time.Duration
	ok       int64
	non2xx   int64
	badBody  int64
	netErr   int64
	statuses map[int]int64
	firstErr string
	buf      bytes.Buffer
	conn     net.Conn // kept alive across requests; nil until dialled
	br       *bufio.Reader
}

// hangUp closes w's connection, if any; the next request dials anew.
func (w *worker) hangUp() {
	if w.conn != nil {
		w.conn.Close()
		w.conn, w.br = nil, nil
	}
}

// run drives the endpoint from cfg.Conns workers until d has passed, or n
// requests (if n > 0) were started, or ctx ends.
func (l *loader) run(ctx context.Context, d time.Duration, n int64) Result {
	if err := l.serialize(); err != nil {
		return Result{FirstErr: err.Error()}
	}
	return drive(ctx, l.cfg.Conns, d, n, l.once)
}

// drive runs once from conns workers until d has passed, or n calls (if
// n > 0) were started, or ctx ends, and adds up what the workers recorded.
// When d passes no new call starts, but those in flight finish (each
// bounded by -timeout) and are counted: cutting them off would make the
// server log cancelled work and would close the kept-alive connections.
func drive(ctx context.Context, conns int, d time.Duration, n int64, once func(context.Context, *worker)) Result {
	var stop atomic.Bool
	stopped := make(chan struct{})
	timer := time.AfterFunc(d, func() { stop.Store(true); close(stopped) })
	defer timer.Stop()
	var budget atomic.Int64
	budget.Store(n)
	workers := make([]*worker, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{id: i, stop: stopped, statuses: map[int]int64{}, lat: make([]time.Duration, 0, 4096)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && ctx.Err() == nil {
				if n > 0 && budget.Add(-1) < 0 {
					return
				}
				once(ctx, w)
			}
			w.hangUp()
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
		res.Waits += w.waits
		for k, v := range w.statuses {
			res.Statuses[k] += v
		}
		if res.FirstErr == "" {
			res.FirstErr = w.firstErr
		}
	}
	return res
}

// serialize builds the request bytes every worker sends.
func (l *loader) serialize() error {
	req := &http.Request{
		Method: l.method, URL: l.target, Host: l.target.Host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: l.header.Clone(),
	}
	if l.body != nil {
		req.Body = io.NopCloser(bytes.NewReader(l.body))
		req.ContentLength = int64(len(l.body))
	}
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return fmt.Errorf("serialise the request: %w", err)
	}
	l.wire = buf.Bytes()
	return nil
}

// once sends one request and records its outcome on w.
func (l *loader) once(ctx context.Context, w *worker) {
	t0 := time.Now()
	status, err := l.roundTrip(ctx, w)
	if err != nil {
		w.hangUp()
		if ctx.Err() != nil {
			return // interrupted (Ctrl-C) while this request was in flight
		}
		w.netErr++
		w.note(err.Error())
		return
	}
	lat := time.Since(t0)
	w.lat = append(w.lat, lat)
	w.statuses[status]++
	switch {
	case status < 200 || status > 299:
		w.non2xx++
		w.note(fmt.Sprintf("%d: %.200s", status, w.buf.Bytes()))
	case !bytes.Contains(w.buf.Bytes(), l.want):
		w.badBody++
		w.note(fmt.Sprintf("unexpected body: %.200s", w.buf.Bytes()))
	default:
		w.ok++
	}
}

// roundTrip writes the request on w's connection, dialling one if it has
// none, and reads the answer's body into w.buf.
func (l *loader) roundTrip(ctx context.Context, w *worker) (int, error) {
	if w.conn == nil {
		conn, err := l.dial(ctx, "tcp", l.target.Host)
		if err != nil {
			return 0, err
		}
		w.conn, w.br = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	if err := w.conn.SetDeadline(time.Now().Add(l.cfg.Timeout)); err != nil {
		return 0, err
	}
	if _, err := w.conn.Write(l.wire); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return 0, err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read body: %w", err)
	}
	if resp.Close {
		w.hangUp()
	}
	return resp.StatusCode, nil
}

func (w *worker) note(msg string) {
	if w.firstErr == "" {
		w.firstErr = msg
	}
}
