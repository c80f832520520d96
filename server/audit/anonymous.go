package audit

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// Anonymous failures are requests refused before the caller proved
// anything (no valid client secret, no session). Each costs an attacker
// one request; written one event each, they would let anyone on the
// network grow the append-only audit log at line rate. So in each window,
// the first anonPerSource of a type from one address (an IPv6 /64 counts
// as one) are written in full, up to anonPerWindow in all; the rest are
// counted, and when the window ends one summary event per event type says
// how many were left out, from how many addresses, and which address sent
// most. A flood of one type thus hides no other type's first events from
// an address, and the server log keeps its line for every request.
const (
	anonWindow    = time.Minute
	anonPerSource = 10
	anonPerWindow = 100
	// anonSources bounds the types and addresses remembered in a window;
	// requests from further ones are left out and counted.
	anonSources = 4096
)

// SummaryActor is the actor of the events that count left-out failures.
const SummaryActor = "anonymous"

type anonLimiter struct {
	mu        sync.Mutex
	start     time.Time // of the current window; zero before the first
	written   int
	perSource map[string]int      // by event type and address
	left      map[string]*leftOut // by event type
}

type leftOut struct {
	n        int
	bySource map[string]int
	overflow bool // more addresses than anonSources
}

// admit says whether an event of type typ from source is written, and
// hands back the summaries of a window that has ended.
func (l *anonLimiter) admit(now time.Time, typ, source string) (bool, []storage.AuditEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	summaries := l.roll(now, false)
	if l.perSource == nil {
		l.perSource = make(map[string]int)
	}
	key := typ + " " + source
	n, known := l.perSource[key]
	if (known || len(l.perSource) < anonSources) && n < anonPerSource && l.written < anonPerWindow {
		l.perSource[key] = n + 1
		l.written++
		return true, summaries
	}
	if l.left == nil {
		l.left = make(map[string]*leftOut)
	}
	lo := l.left[typ]
	if lo == nil {
		lo = &leftOut{bySource: make(map[string]int)}
		l.left[typ] = lo
	}
	lo.n++
	if _, ok := lo.bySource[source]; ok || len(lo.bySource) < anonSources {
		lo.bySource[source]++
	} else {
		lo.overflow = true
	}
	return false, summaries
}

// roll starts a new window if the current one has ended (or if all is
// set) and returns the summaries of the one that ended.
func (l *anonLimiter) roll(now time.Time, all bool) []storage.AuditEvent {
	if !all && !l.start.IsZero() && now.Before(l.start.Add(anonWindow)) {
		return nil
	}
	var out []storage.AuditEvent
	for _, typ := range slices.Sorted(maps.Keys(l.left)) {
		out = append(out, l.left[typ].summary(typ, l.start, now))
	}
	l.start, l.written, l.perSource, l.left = now, 0, nil, nil
	return out
}

func (lo *leftOut) summary(typ string, start, end time.Time) storage.AuditEvent {
	var top string
	for src, n := range lo.bySource {
		if n > lo.bySource[top] || (n == lo.bySource[top] && src < top) {
			top = src
		}
	}
	sources := strconv.Itoa(len(lo.bySource))
	if lo.overflow {
		sources = "more than " + sources
	}
	return storage.AuditEvent{Type: typ, Actor: SummaryActor, Result: Failure, Details: map[string]string{
		"left_out":             strconv.Itoa(lo.n),
		"addresses":            sources,
		"top_address":          top,
		"top_address_left_out": strconv.Itoa(lo.bySource[top]),
		"since":                start.UTC().Format(time.RFC3339),
		"until":                end.UTC().Format(time.RFC3339),
	}}
}

// source is the address a limit applies to: an IPv4 address, or the /64
// an IPv6 address is in (one host usually has a whole /64).
func source(ip netip.Addr) string {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return "unknown"
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// RecordAnonymous records e, a failure of a caller who proved nothing, as
// RecordRequest does — unless its address or everyone together has used
// up this window's share, in which case it is only counted (see
// anonPerSource). Summaries of an ended window are written first.
func (r *Recorder) RecordAnonymous(req *http.Request, e storage.AuditEvent) error {
	write, summaries := r.anon.admit(r.now(), e.Type, source(httpx.ClientIPFrom(req.Context())))
	if err := r.recordAll(req.Context(), summaries); err != nil {
		return err
	}
	if !write {
		return nil
	}
	return r.RecordRequest(req, e)
}

// FlushAnonymous writes the summaries of a window that has ended without
// another anonymous failure to end it; with all, of the current one too
// (at shutdown). The server calls it periodically.
func (r *Recorder) FlushAnonymous(ctx context.Context, all bool) error {
	r.anon.mu.Lock()
	summaries := r.anon.roll(r.now(), all)
	r.anon.mu.Unlock()
	return r.recordAll(ctx, summaries)
}

func (r *Recorder) recordAll(ctx context.Context, events []storage.AuditEvent) error {
	var errs []error
	for _, e := range events {
		errs = append(errs, r.Record(ctx, e))
	}
	return errors.Join(errs...)
}
