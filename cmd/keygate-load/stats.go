package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Summary is what a run reports.
type Summary struct {
	Mode      string        `json:"mode"`
	URL       string        `json:"url"`
	Conns     int           `json:"connections"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Requests  int64         `json:"requests"` // answered requests, successful or not
	OK        int64         `json:"ok"`
	Errors    int64         `json:"errors"` // Non2xx + BadBody + NetErrors
	Non2xx    int64         `json:"non_2xx"`
	BadBody   int64         `json:"bad_body"`
	NetErrors int64         `json:"net_errors"`
	Waits     int64         `json:"totp_waits,omitempty"` // signin-totp: waits for a new TOTP step
	RPS       float64       `json:"requests_per_second"`  // successful requests per second
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
	Statuses  map[int]int64 `json:"statuses,omitempty"`
	FirstErr  string        `json:"first_error,omitempty"`
	// The server's resident set size (-server-pid): before the run (after
	// any users were enrolled), the highest sampled during it, and after.
	RSSBefore int64 `json:"server_rss_before_bytes,omitempty"`
	RSSPeak   int64 `json:"server_rss_peak_bytes,omitempty"`
	RSSAfter  int64 `json:"server_rss_after_bytes,omitempty"`
	// ServerCPU is the CPU time (user and system) the server used during
	// the run: per successful request, it is what a request costs however
	// busy the machine is, where the rate depends on what else runs.
	ServerCPU time.Duration `json:"server_cpu_ns,omitempty"`
}

// Summarize turns a run's raw result into its summary. It sorts
// r.Latencies in place.
func Summarize(r Result) Summary {
	slices.Sort(r.Latencies)
	s := Summary{
		Elapsed:   r.Elapsed,
		Requests:  int64(len(r.Latencies)),
		OK:        r.OK,
		Non2xx:    r.Non2xx,
		BadBody:   r.BadBody,
		NetErrors: r.NetErrors,
		Waits:     r.Waits,
		Errors:    r.Non2xx + r.BadBody + r.NetErrors,
		P50:       Percentile(r.Latencies, 50),
		P90:       Percentile(r.Latencies, 90),
		P99:       Percentile(r.Latencies, 99),
		Statuses:  r.Statuses,
		FirstErr:  r.FirstErr,
	}
	if n := len(r.Latencies); n > 0 {
		s.Max = r.Latencies[n-1]
	}
	if r.Elapsed > 0 {
		s.RPS = float64(r.OK) / r.Elapsed.Seconds()
	}
	return s
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value such that at least p% of the
// values are less than or equal to it. It is 0 for an empty slice; p <= 0
// gives the minimum and p >= 100 the maximum.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// rank = ceil(p/100 * n), 1-based. Integer arithmetic on p*1e6 avoids
	// float rounding turning an exact rank (p=50, n=10 → 5) into 6.
	num := int64(p*1e6+0.5) * int64(n)
	const den = 100 * 1e6
	rank := int((num + den - 1) / den)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// String renders the summary for a terminal.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s  %s  c=%d  %.2fs\n", s.Mode, s.URL, s.Conns, s.Elapsed.Seconds())
	fmt.Fprintf(&b, "  requests  %d (ok %d)  %.0f req/s\n", s.Requests+s.NetErrors, s.OK, s.RPS)
	fmt.Fprintf(&b, "  errors    %d (non-2xx %d, bad body %d, network %d)\n", s.Errors, s.Non2xx, s.BadBody, s.NetErrors)
	fmt.Fprintf(&b, "  latency   p50 %s  p90 %s  p99 %s  max %s\n",
		roundDur(s.P50), roundDur(s.P90), roundDur(s.P99), roundDur(s.Max))
	if len(s.Statuses) > 0 {
		codes := make([]int, 0, len(s.Statuses))
		for c := range s.Statuses {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		b.WriteString("  statuses ")
		for _, c := range codes {
			fmt.Fprintf(&b, " %d×%d", c, s.Statuses[c])
		}
		b.WriteByte('\n')
	}
	if s.Waits > 0 {
		fmt.Fprintf(&b, "  totp waits %d (a worker had no user with an unused TOTP step: raise -users)\n", s.Waits)
	}
	if s.RSSPeak > 0 {
		fmt.Fprintf(&b, "  server RSS before %.1f MiB  peak %.1f MiB  after %.1f MiB\n", mib(s.RSSBefore), mib(s.RSSPeak), mib(s.RSSAfter))
	}
	if s.ServerCPU > 0 && s.OK > 0 && s.Elapsed > 0 {
		fmt.Fprintf(&b, "  server CPU %.2f cores, %s per request\n",
			s.ServerCPU.Seconds()/s.Elapsed.Seconds(), roundDur(s.ServerCPU/time.Duration(s.OK)))
	}
	if s.FirstErr != "" {
		fmt.Fprintf(&b, "  first error: %s\n", s.FirstErr)
	}
	return b.String()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// roundDur keeps three significant-ish digits: 1.23ms, 456µs.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
