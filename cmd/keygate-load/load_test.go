package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunAgainstFake drives a stand-in for keygate on loopback: the request
// budget is respected, good answers count as ok, and bad statuses and
// bodies count as errors.
func TestRunAgainstFake(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		switch {
		case r.URL.Path == "/oauth2/introspect":
			if r.Method != http.MethodPost || r.FormValue("token") != "tok" {
				http.Error(w, "bad", http.StatusBadRequest)
				return
			}
			if user, pass, _ := r.BasicAuth(); user != "id" || pass != "s3cret" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"active":true}`))
		case r.URL.Path == "/oauth2/token":
			_, _ = w.Write([]byte(`{"access_token":"tok"}`))
		case n%10 == 0:
			http.Error(w, "boom", http.StatusInternalServerError)
		case n%10 == 1:
			_, _ = w.Write([]byte(`{}`))
		default:
			_, _ = w.Write([]byte(`{"issuer":"x"}`))
		}
	}))
	defer srv.Close()

	cfg := Config{BaseURL: srv.URL, Conns: 4, Requests: 200, Mode: modeDiscovery, Auth: "basic",
		Timeout: 5 * time.Second, MaxDuration: 30 * time.Second}
	if err := cfg.normalise(); err != nil {
		t.Fatal(err)
	}
	l, err := newLoader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	s := Summarize(l.run(context.Background(), cfg.Duration, cfg.Requests))
	if s.Requests != 200 || s.OK+s.Errors != 200 {
		t.Fatalf("requests %d ok %d errors %d, want 200 in all", s.Requests, s.OK, s.Errors)
	}
	if s.Non2xx != 20 || s.BadBody != 20 || s.OK != 160 {
		t.Errorf("non2xx %d bad body %d ok %d, want 20 20 160", s.Non2xx, s.BadBody, s.OK)
	}

	cfg.Mode, cfg.ClientID, cfg.ClientSecret, cfg.Requests = modeIntrospect, "id", "s3cret", 50
	l2, err := newLoader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	if err := l2.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = Summarize(l2.run(context.Background(), cfg.Duration, cfg.Requests))
	if s.OK != 50 || s.Errors != 0 {
		t.Errorf("introspect: ok %d errors %d (%s), want 50 0", s.OK, s.Errors, s.FirstErr)
	}
}

// TestRunStopsByDuration checks a run without -n ends on time.
func TestRunStopsByDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	cfg := Config{BaseURL: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), Conns: 2,
		Duration: 200 * time.Millisecond, Mode: modeJWKS, Auth: "basic", Timeout: time.Second, MaxDuration: time.Second}
	if err := cfg.normalise(); err != nil {
		t.Fatal(err)
	}
	l, err := newLoader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	start := time.Now()
	s := Summarize(l.run(context.Background(), cfg.Duration, 0))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("run took %s, want about 200ms", took)
	}
	if s.OK == 0 || s.Errors != 0 {
		t.Errorf("ok %d errors %d (%s)", s.OK, s.Errors, s.FirstErr)
	}
}
