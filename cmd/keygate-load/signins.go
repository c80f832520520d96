package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// signIns drives a sign-in mode. prepare creates the users through the
// CLI and enrols them through the pages; then each worker signs in its
// own share of the users (user i belongs to worker i mod c), one at a
// time, so no passkey counter or TOTP step is ever used by two sign-ins
// at once.
type signIns struct {
	cfg       Config
	out       io.Writer // progress notes
	site      *site
	transport *http.Transport
	accounts  []*account
	cursor    []int // per worker: the index of its next account
}

func newSignIns(cfg Config, prov provisioner, out io.Writer) (*signIns, error) {
	base, err := loopbackURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 nil, // never send loopback traffic through an environment proxy
		DialContext:           loopbackDialer(newDialer()),
		MaxIdleConns:          cfg.Conns * 2,
		MaxIdleConnsPerHost:   cfg.Conns * 2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		DisableCompression:    true,
	}
	cursor := make([]int, cfg.Conns)
	for i := range cursor {
		cursor[i] = i
	}
	return &signIns{
		cfg: cfg, out: out, transport: tr, cursor: cursor,
		site: &site{
			client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
				// Never follow a redirect: the browser does, within keygate.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
			base: base, prov: prov, password: "load " + rand.Text(), runID: rand.Text()[:8], now: time.Now,
			idTokenAlg: cfg.IDTokenAlg,
		},
	}, nil
}

func (l *signIns) where() string { return l.site.base.String() }

func (l *signIns) close() { l.transport.CloseIdleConnections() }

// prepare registers the app, then creates and enrols cfg.Users users: with
// an authenticator app for signin-totp, with a passkey otherwise. Every
// enrolment ends signed in; sso keeps that session, refresh turns it into
// a refresh token.
func (l *signIns) prepare(ctx context.Context) error {
	s := l.site
	if err := s.discover(ctx); err != nil {
		return err
	}
	var err error
	if s.app, err = s.prov.addApp(ctx, "load "+l.cfg.Mode+" "+s.runID, appRedirect, s.idTokenAlg); err != nil {
		return err
	}
	enrol := s.enrolPasskey
	if l.cfg.Mode == modeSignInTOTP {
		enrol = s.enrolTOTP
	}
	fmt.Fprintf(l.out, "creating and enrolling %d users…\n", l.cfg.Users)
	start := time.Now()
	if l.accounts, err = s.enrolAll(ctx, l.cfg.Mode, l.cfg.Users, enrol); err != nil {
		return err
	}
	fmt.Fprintf(l.out, "enrolled %d users in %s\n", len(l.accounts), time.Since(start).Round(time.Millisecond))
	if l.cfg.Mode == modeRefresh {
		for _, acc := range l.accounts {
			if err := s.obtainRefresh(ctx, acc); err != nil {
				return fmt.Errorf("obtain a refresh token for %s: %w", acc.user.Email, err)
			}
		}
	}
	return nil
}

func (l *signIns) run(ctx context.Context, d time.Duration, n int64) Result {
	return drive(ctx, l.cfg.Conns, d, n, l.once)
}

// once is one sign-in (one refresh for refresh) by worker w.
func (l *signIns) once(ctx context.Context, w *worker) {
	s := l.site
	if l.cfg.Mode == modeSignInTOTP {
		acc, step, ok := l.nextTOTP(ctx, w)
		if !ok {
			return
		}
		start := time.Now()
		w.record(ctx, start, s.signInTOTP(ctx, acc, step))
		return
	}
	acc := l.next(w)
	start := time.Now()
	var err error
	switch l.cfg.Mode {
	case modeSignInPasskey:
		err = s.signInPasskey(ctx, acc)
	case modeSSO:
		err = s.signInSSO(ctx, acc)
	case modeRefresh:
		err = s.refreshOnce(ctx, acc)
	}
	w.record(ctx, start, err)
}

// next is worker w's next account, in turn.
func (l *signIns) next(w *worker) *account {
	i := l.cursor[w.id]
	l.cursor[w.id] = i + l.cfg.Conns
	if l.cursor[w.id] >= len(l.accounts) {
		l.cursor[w.id] = w.id
	}
	return l.accounts[i]
}

// nextTOTP is worker w's next account whose TOTP code for the current step
// is unused. When every account of w's share has used it, w waits for the
// next step (counted in Waits: raise -users until there are none); ok is
// false if the run ends meanwhile.
func (l *signIns) nextTOTP(ctx context.Context, w *worker) (*account, int64, bool) {
	for {
		step := l.site.now().Unix() / totpPeriod
		share := (len(l.accounts) - w.id + l.cfg.Conns - 1) / l.cfg.Conns
		for range share {
			if acc := l.next(w); acc.lastStep < step {
				return acc, step, true
			}
		}
		w.waits++
		t := time.NewTimer(time.Until(time.Unix((step+1)*totpPeriod, 0)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, 0, false
		case <-w.stop:
			t.Stop()
			return nil, 0, false
		}
	}
}

// record notes one sign-in's outcome on w: it counts only if it succeeded
// to the end; a step that got the wrong answer is a non-2xx or a bad body
// error, anything else a network error.
func (w *worker) record(ctx context.Context, start time.Time, err error) {
	if err != nil && ctx.Err() != nil {
		return // interrupted (Ctrl-C)
	}
	var se *stepError
	switch {
	case err == nil:
		w.lat = append(w.lat, time.Since(start))
		w.ok++
	case errors.As(err, &se):
		w.lat = append(w.lat, time.Since(start))
		if se.status != 0 {
			w.non2xx++
			w.statuses[se.status]++
		} else {
			w.badBody++
		}
		w.note(err.Error())
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		w.netErr++
		w.note(err.Error())
	}
}
