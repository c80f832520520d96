package server

import (
	"context"
	"net/http"
	"time"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// runWorkers does the server's periodic work until ctx ends: reloading
// signing keys (a `keygate keys rotate` in another process, or on another
// replica), delivering queued alerts, counting anonymous failures left out
// of the audit log, and dropping expired rows.
//
// Replicas sharing a database share this work without doing it twice:
// each outbox message is claimed by one deliverer (storage.Outbox), and
// garbage collection runs on one replica at a time (storage.Exclusive).
// Anonymous failures are counted in each replica's memory, so each flushes
// its own.
func (s *Server) runWorkers(ctx context.Context) {
	deliverer := &audit.Deliverer{DB: s.store, Client: &http.Client{Timeout: 10 * time.Second},
		Secret: s.cfg.AlertSecret, Logger: s.logger, Now: s.now,
		Senders: map[string]func(context.Context, storage.OutboxMessage) error{
			manage.OutboxBackchannelLogout: s.oidc.SendBackchannelLogout,
			mail.OutboxKind:                s.sendMail,
		}}
	go deliverer.Run(ctx, time.Second)

	keysChanged := s.watchKeys(ctx)
	keysTick := time.NewTicker(10 * time.Second)
	gcTick := time.NewTicker(time.Minute)
	defer keysTick.Stop()
	defer gcTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keysChanged:
			s.reloadKeys(ctx)
		case <-keysTick.C:
			s.reloadKeys(ctx)
			if err := s.audit.FlushAnonymous(ctx, false); err != nil {
				s.logger.ErrorContext(ctx, "audit anonymous failures", "err", err)
			}
		case <-gcTick.C:
			s.exclusive(ctx, "garbage collection", s.collectGarbage)
		}
	}
}

// watchKeys returns a channel that receives when the signing keys
// change, where the backend reports changes (storage.ChangeWatcher): a
// rotation on one replica is then served by every replica at once, and
// the timer is only the backstop. Elsewhere it never receives.
func (s *Server) watchKeys(ctx context.Context) <-chan struct{} {
	changed := make(chan struct{}, 1)
	if w, ok := s.store.(storage.ChangeWatcher); ok {
		w.WatchChanges(ctx, func(topic string) {
			if topic != storage.TopicSigningKeys {
				return
			}
			select {
			case changed <- struct{}{}:
			default: // a reload is pending already
			}
		})
	}
	return changed
}

func (s *Server) reloadKeys(ctx context.Context) {
	if err := s.keyring.Reload(ctx); err != nil {
		s.logger.ErrorContext(ctx, "reload signing keys", "err", err)
	}
}

// exclusive runs job on one replica at a time where the backend is
// shared (storage.Exclusive): a replica finding it running elsewhere
// skips this round. Elsewhere it just runs it.
func (s *Server) exclusive(ctx context.Context, job string, fn func(context.Context)) {
	ex, ok := s.store.(storage.Exclusive)
	if !ok {
		fn(ctx)
		return
	}
	ran, err := ex.RunExclusive(ctx, job, func(ctx context.Context) error {
		fn(ctx)
		return nil
	})
	switch {
	case err != nil && ctx.Err() == nil:
		s.logger.ErrorContext(ctx, "periodic job", "job", job, "err", err)
	case !ran:
		s.logger.DebugContext(ctx, "periodic job running on another replica", "job", job)
	}
}

func (s *Server) collectGarbage(ctx context.Context) {
	now := s.now()
	steps := []struct {
		name string
		run  func(context.Context, time.Time) (int, error)
	}{
		{"tokens", s.store.DeleteExpiredTokens},
		{"sessions", s.store.DeleteExpiredSessions},
		{"flows", s.store.DeleteExpiredFlows},
		{"challenges", s.store.DeleteExpiredChallenges},
		{"links", s.store.DeleteExpiredLinks},
		{"attempts", func(ctx context.Context, now time.Time) (int, error) {
			return s.store.DeleteAttemptsBefore(ctx, now.Add(-24*time.Hour))
		}},
	}
	// Backends keep the sign-in history bounded (storage.SignInRetention).
	if t, ok := s.store.(interface {
		TrimSignIns(context.Context, time.Time) (int, error)
	}); ok {
		steps = append(steps, struct {
			name string
			run  func(context.Context, time.Time) (int, error)
		}{"sign-ins", t.TrimSignIns})
	}
	for _, st := range steps {
		if n, err := st.run(ctx, now); err != nil {
			s.logger.ErrorContext(ctx, "garbage collection", "table", st.name, "err", err)
		} else if n > 0 {
			s.logger.DebugContext(ctx, "garbage collection", "table", st.name, "deleted", n)
		}
	}
}
