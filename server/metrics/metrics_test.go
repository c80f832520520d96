package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/metrics"
)

// scrape returns the text exposition of m.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("metrics handler status %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMiddlewareCountsByRoutePattern(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.Handle("/clients/{id}", m.Middleware("/clients/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})))
	mux.Handle("/boom", m.Middleware("/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	serve := func(method, path string) {
		defer func() { _ = recover() }()
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}
	serve("GET", "/clients/1")
	serve("GET", "/clients/2")
	serve("GET", "/clients/3")
	serve("GET", "/clients/missing")
	serve("POST", "/clients/1")
	serve("FROBNICATE", "/clients/1")
	serve("GET", "/boom")
	out := scrape(t, m)

	tests := []struct {
		name string
		want string
	}{
		{"requests to different paths of one pattern share one series", `http_requests_total{code="200",method="GET",route="/clients/{id}"} 3`},
		{"the status code is a label", `http_requests_total{code="404",method="GET",route="/clients/{id}"} 1`},
		{"the method is a label", `http_requests_total{code="200",method="POST",route="/clients/{id}"} 1`},
		{"an unknown method is folded into OTHER", `http_requests_total{code="200",method="OTHER",route="/clients/{id}"} 1`},
		{"a panicking handler is counted as 500", `http_requests_total{code="500",method="GET",route="/boom"} 1`},
		{"durations are observed per route and method", `http_request_duration_seconds_count{method="GET",route="/clients/{id}"} 4`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(out, tt.want) {
				t.Fatalf("exposition lacks %s\n%s", tt.want, grep(out, "http_"))
			}
		})
	}
	t.Run("raw paths never become labels", func(t *testing.T) {
		for _, raw := range []string{"/clients/1", "/clients/missing", "FROBNICATE"} {
			if strings.Contains(out, `"`+raw+`"`) {
				t.Errorf("exposition contains %q", raw)
			}
		}
	})
}

func TestBusinessCountersAndCollectors(t *testing.T) {
	m := metrics.New()
	m.SignIn("success")
	m.SignIn("success")
	m.SignIn("bad_credentials")
	m.TokenIssued("authorization_code")
	out := scrape(t, m)
	tests := []struct {
		name string
		want string
	}{
		{"sign-ins are counted by result", `keygate_signins_total{result="success"} 2`},
		{"failed sign-ins have their own series", `keygate_signins_total{result="bad_credentials"} 1`},
		{"tokens are counted by grant type", `keygate_tokens_issued_total{grant_type="authorization_code"} 1`},
		{"the Go collector is registered", `go_goroutines `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(out, tt.want) {
				t.Fatalf("exposition lacks %s", tt.want)
			}
		})
	}
}

func TestInstancesAreIndependent(t *testing.T) {
	a, b := metrics.New(), metrics.New() // a shared default registry would panic here
	a.SignIn("success")
	if strings.Contains(scrape(t, b), "keygate_signins_total{") {
		t.Fatal("a sign-in on one instance shows up on another")
	}
}

func TestMiddlewareKeepsFlusher(t *testing.T) {
	m := metrics.New()
	h := m.Middleware("/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the middleware: %v", err)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/stream", nil))
	if !rec.Flushed {
		t.Fatal("flush did not reach the recorder")
	}
}

func grep(s, substr string) string {
	var keep []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, substr) && !strings.HasPrefix(line, "#") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func BenchmarkMiddleware(b *testing.B) {
	m := metrics.New()
	h := m.Middleware("/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	req := httptest.NewRequest("GET", "/ping", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

func TestMiddlewareIsSafeForConcurrentUse(t *testing.T) {
	m := metrics.New()
	h := m.Middleware("/c", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200 + len(r.URL.Query().Get("n")))
	}))
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/c?n="+strings.Repeat("x", (g+i)%5), nil))
			}
		}()
	}
	for range 8 {
		<-done
	}
	out := scrape(t, m)
	if got := strings.Count(grep(out, `http_requests_total{`), "\n") + 1; got != 5 {
		t.Fatalf("want 5 series (codes 200-204), got %d:\n%s", got, grep(out, "http_requests_total{"))
	}
}
