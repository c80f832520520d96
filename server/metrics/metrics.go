package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds keygate's collectors and the registry they are exposed
// from. Build it with New; all methods are safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	signins  *prometheus.CounterVec
	tokens   *prometheus.CounterVec
}

// New returns a Metrics registered on a fresh registry, together with the
// Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_signins_total",
			Help: "Sign-in attempts, by result.",
		}, []string{"result"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_tokens_issued_total",
			Help: "Tokens issued, by OAuth 2.0 grant type.",
		}, []string{"grant_type"}),
	}
	m.reg.MustRegister(
		m.requests, m.duration, m.signins, m.tokens,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// Count exposition errors in promhttp_metric_handler_errors_total.
		Registry: m.reg,
	})
	return m
}

// Registry returns the registry, for registering further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler { return m.handler }

// SignIn counts one sign-in attempt. result should come from a small fixed
// set (e.g. "success", "bad_credentials", "locked", "mfa_failed"): every
// distinct value is a new series.
func (m *Metrics) SignIn(result string) { m.signins.WithLabelValues(result).Inc() }

// TokenIssued counts one token issued for the grant type
// (e.g. "authorization_code", "refresh_token", "client_credentials").
func (m *Metrics) TokenIssued(grant string) { m.tokens.WithLabelValues(grant).Inc() }

// methods is the fixed set the method label is folded to; anything else is
// counted as "OTHER" so arbitrary method tokens cannot create series.
var methods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace, "OTHER",
}

func methodIndex(m string) uint32 {
	for i, k := range methods[:len(methods)-1] {
		if m == k {
			return uint32(i)
		}
	}
	return uint32(len(methods) - 1)
}

// routeMetrics is the per-route state built when Middleware wraps a route:
// the label vectors curried with the route, and a copy-on-write cache of the
// children already used, so the request path is one atomic load and one map
// lookup instead of label hashing.
type routeMetrics struct {
	requests *prometheus.CounterVec
	duration prometheus.ObserverVec

	mu    sync.Mutex // serialises cache misses
	cache atomic.Pointer[map[uint32]series]
}

type series struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func (rm *routeMetrics) series(method uint32, code int) series {
	if code < 100 || code > 999 {
		code = 0
	}
	key := method<<16 | uint32(code)
	if p := rm.cache.Load(); p != nil {
		if s, ok := (*p)[key]; ok {
			return s
		}
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	old := rm.cache.Load()
	if old != nil {
		if s, ok := (*old)[key]; ok {
			return s
		}
	}
	codeLabel := "unknown"
	if code != 0 {
		codeLabel = strconv.Itoa(code)
	}
	s := series{
		count:    rm.requests.WithLabelValues(methods[method], codeLabel),
		duration: rm.duration.WithLabelValues(methods[method]),
	}
	next := make(map[uint32]series, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[key] = s
	rm.cache.Store(&next)
	return s
}

func lenOf(p *map[uint32]series) int {
	if p == nil {
		return 0
	}
	return len(*p)
}

// Middleware counts and times the requests next serves under the label
// route, which must be the route pattern (e.g. "/oauth2/token" or
// "/admin/clients/{id}"), never the raw path. A request whose handler
// panics is counted with code 500 before the panic travels on.
func (m *Metrics) Middleware(route string, next http.Handler) http.Handler {
	rm := &routeMetrics{
		requests: m.requests.MustCurryWith(prometheus.Labels{"route": route}),
		duration: m.duration.MustCurryWith(prometheus.Labels{"route": route}),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		completed := false
		defer func() {
			code := sw.status
			if code == 0 {
				code = http.StatusOK
				if !completed {
					code = http.StatusInternalServerError
				}
			}
			s := rm.series(methodIndex(r.Method), code)
			s.duration.Observe(time.Since(start).Seconds())
			s.count.Inc()
		}()
		next.ServeHTTP(sw, r)
		completed = true
	})
}

// statusWriter records the final status code. Flush is forwarded and
// Unwrap keeps http.ResponseController working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
