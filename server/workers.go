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
// signing keys (a `keygate keys rotate` in another process), delivering
// queued alerts, counting anonymous failures left out of the audit log,
// and dropping expired rows.
func (s *Server) runWorkers(ctx context.Context) {
	deliverer := &audit.Deliverer{DB: s.store, Client: &http.Client{Timeout: 10 * time.Second},
		Secret: s.cfg.AlertSecret, Logger: s.logger, Now: s.now,
		Senders: map[string]func(context.Context, storage.OutboxMessage) error{
			manage.OutboxBackchannelLogout: s.oidc.SendBackchannelLogout,
			mail.OutboxKind:                s.sendMail,
		}}
	go deliverer.Run(ctx, time.Second)

	keysTick := time.NewTicker(10 * time.Second)
	gcTick := time.NewTicker(time.Minute)
	defer keysTick.Stop()
	defer gcTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keysTick.C:
			if err := s.keyring.Reload(ctx); err != nil {
				s.logger.ErrorContext(ctx, "reload signing keys", "err", err)
			}
			if err := s.audit.FlushAnonymous(ctx, false); err != nil {
				s.logger.ErrorContext(ctx, "audit anonymous failures", "err", err)
			}
		case <-gcTick.C:
			s.collectGarbage(ctx)
		}
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
		{"attempts", func(ctx context.Context, now time.Time) (int, error) {
			return s.store.DeleteAttemptsBefore(ctx, now.Add(-24*time.Hour))
		}},
	}
	// Backends may keep sign-in history bounded; SQLite does.
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
