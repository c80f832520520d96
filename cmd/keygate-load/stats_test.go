package main

import (
	"strings"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	ten := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", ms(7), 50, 7 * time.Millisecond},
		{"single p99", ms(7), 99, 7 * time.Millisecond},
		{"ten p50 exact rank", ten, 50, 5 * time.Millisecond},
		{"ten p90 exact rank", ten, 90, 9 * time.Millisecond},
		{"ten p99 rounds up", ten, 99, 10 * time.Millisecond},
		{"ten p10", ten, 10, 1 * time.Millisecond},
		{"ten p11 rounds up", ten, 11, 2 * time.Millisecond},
		{"hundred p99", hundred, 99, 99 * time.Millisecond},
		{"hundred p99.9", hundred, 99.9, 100 * time.Millisecond},
		{"hundred p0.5", hundred, 0.5, 1 * time.Millisecond},
		{"p0 is min", ten, 0, 1 * time.Millisecond},
		{"p100 is max", ten, 100, 10 * time.Millisecond},
		{"p>100 is max", ten, 150, 10 * time.Millisecond},
		{"four p50", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"four p75", ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{"four p76", ms(1, 2, 3, 4), 76, 4 * time.Millisecond},
	}
	for _, c := range cases {
		if got := Percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: Percentile(p=%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	r := Result{
		Elapsed: 2 * time.Second,
		// Unsorted on purpose: Summarize sorts.
		Latencies: ms(9, 1, 5, 3, 7, 2, 10, 4, 8, 6),
		OK:        8,
		Non2xx:    1,
		BadBody:   1,
		NetErrors: 3,
		Statuses:  map[int]int64{200: 9, 401: 1},
		FirstErr:  "401 Unauthorized",
	}
	s := Summarize(r)
	if s.Requests != 10 || s.OK != 8 || s.Errors != 5 {
		t.Errorf("counts: requests %d ok %d errors %d, want 10 8 5", s.Requests, s.OK, s.Errors)
	}
	if s.RPS != 4 {
		t.Errorf("RPS = %v, want 4 (8 ok in 2s)", s.RPS)
	}
	if s.P50 != 5*time.Millisecond || s.P90 != 9*time.Millisecond || s.P99 != 10*time.Millisecond || s.Max != 10*time.Millisecond {
		t.Errorf("percentiles p50 %v p90 %v p99 %v max %v", s.P50, s.P90, s.P99, s.Max)
	}
	out := s.String()
	for _, want := range []string{"4 req/s", "errors    5", "p50 5ms", "p99 10ms", "200×9", "401×1", "first error: 401"} {
		if !strings.Contains(out, want) {
			t.Errorf("String() lacks %q:\n%s", want, out)
		}
	}
}

func TestSummarizeEmpty(t *testing.T) {
	s := Summarize(Result{})
	if s.RPS != 0 || s.P50 != 0 || s.Max != 0 || s.Requests != 0 {
		t.Errorf("empty result: %+v", s)
	}
	_ = s.String()
}

func TestLoopbackOnly(t *testing.T) {
	ok := []string{
		"http://127.0.0.1:8080", "http://localhost:8080/", "http://LOCALHOST:1",
		"http://127.1.2.3:80", "http://[::1]:8080", "https://127.0.0.1:8443/base",
	}
	for _, u := range ok {
		if _, err := loopbackURL(u); err != nil {
			t.Errorf("loopbackURL(%q) refused: %v", u, err)
		}
	}
	bad := []string{
		"http://10.0.0.1:8080", "http://192.168.1.1", "http://example.com",
		"http://localhost.example.com", "http://127.0.0.1.nip.io", "http://0.0.0.0:8080",
		"http://[::ffff:8.8.8.8]:80", "http://[fe80::1%25lo]:80", "ftp://127.0.0.1",
		"http://user:pw@127.0.0.1", "http://127.0.0.1:8080/?x=1", "127.0.0.1:8080",
	}
	for _, u := range bad {
		if _, err := loopbackURL(u); err == nil {
			t.Errorf("loopbackURL(%q) accepted a non-loopback or malformed URL", u)
		}
	}
}

func TestConfigBounds(t *testing.T) {
	c := Config{BaseURL: "http://127.0.0.1:1", Conns: 16, Mode: modeDiscovery, Auth: "basic",
		Timeout: time.Second, MaxDuration: 2 * time.Minute}
	if err := c.normalise(); err != nil || c.Duration != 10*time.Second {
		t.Fatalf("defaults: err %v, duration %v, want 10s", err, c.Duration)
	}
	c.Duration, c.Requests = 0, 1000
	if err := c.normalise(); err != nil || c.Duration != 2*time.Minute {
		t.Fatalf("-n alone: err %v, duration %v, want the -max-d cap", err, c.Duration)
	}
	c.Duration = time.Hour
	if err := c.normalise(); err == nil {
		t.Error("-d beyond -max-d accepted")
	}
	c.Duration, c.MaxDuration = 0, time.Hour
	if err := c.normalise(); err == nil {
		t.Error("-max-d beyond the hard cap accepted")
	}
	c = Config{BaseURL: "http://127.0.0.1:1", Conns: 16, Mode: modeToken, Auth: "basic",
		Timeout: time.Second, MaxDuration: time.Minute}
	if err := c.normalise(); err == nil {
		t.Error("token mode without credentials accepted")
	}
}
