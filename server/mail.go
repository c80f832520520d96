package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/storage"
)

// errNoMailServer: mail is queued (by a command run with an smtp section)
// but this server has none. It is retried with backoff, so the mail goes
// out once the server is restarted with the section.
var errNoMailServer = errors.New("mail: an email is queued but the configuration has no smtp section")

// mailSender is the outbox's sender of email; without a mail server
// configured, one that fails.
func mailSender(cfg *mail.Config, master *keys.Master, now func() time.Time) func(context.Context, storage.OutboxMessage) error {
	if cfg == nil {
		return func(context.Context, storage.OutboxMessage) error { return errNoMailServer }
	}
	s := &mail.Sender{Config: *cfg, Sealer: master, Now: now}
	return s.Send
}

// mailQueue is where operations queue email; nil without a mail server, so
// asking to email is refused before anything changes.
func mailQueue(cfg *mail.Config, store storage.Outbox, master *keys.Master, now func() time.Time) *mail.Queue {
	if cfg == nil {
		return nil
	}
	return &mail.Queue{Outbox: store, Sealer: master, Now: now}
}

// logMail says at start where email goes, or that none is sent.
func logMail(ctx context.Context, logger *slog.Logger, cfg *mail.Config) {
	if cfg == nil {
		logger.InfoContext(ctx, "no smtp section configured: no email is sent")
		return
	}
	logger.InfoContext(ctx, "email is sent through", "smtp", cfg.Host+":"+strconv.Itoa(cfg.Port), "tls", cfg.TLS,
		"authenticated", cfg.Username != "")
}
