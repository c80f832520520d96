package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	// go-mail: maintained, pure Go (no cgo), and it does what sending
	// safely needs that net/smtp leaves to the caller: RFC 2047 encoding
	// of names and subjects, multipart/alternative bodies, mandatory
	// STARTTLS or implicit TLS, and SMTP AUTH with the strongest mechanism
	// the server offers. v0.8.1: v0.8.2 needs a newer Go than we build with.
	gomail "github.com/wneessen/go-mail"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
)

// Sender delivers queued messages over SMTP; its Send is the outbox
// deliverer's sender for OutboxKind.
type Sender struct {
	Config Config // with defaults, without Problems
	Sealer Sealer
	Now    func() time.Time
}

// connTimeout bounds each step of a connection to the mail server; the
// deliverer bounds the whole send.
const connTimeout = 10 * time.Second

// Send delivers one queued message. A refusal no retry can change — the
// server's 5xx for the recipient or the message, or a message past its
// Expires — is audit.ErrUndeliverable: the outbox keeps it with its error
// and does not try again. Anything else (the server down, a 4xx, a wrong
// password, a 5xx for the sender address, which is our configuration) is
// retried with backoff, so fixing the configuration lets it go out.
func (s *Sender) Send(ctx context.Context, om storage.OutboxMessage) error {
	m, err := open(s.Sealer, om)
	if err != nil {
		return fmt.Errorf("%w: mail: the queued message does not open: %v", audit.ErrUndeliverable, err)
	}
	if !m.Expires.IsZero() && !s.Now().Before(m.Expires) {
		return fmt.Errorf("%w: mail: not sent, its link expired at %s", audit.ErrUndeliverable, m.Expires.UTC().Format(time.RFC3339))
	}
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	client, err := gomail.NewClient(s.Config.Host, s.options()...)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return classify(fmt.Errorf("mail: %s:%d: %w", s.Config.Host, s.Config.Port, err))
	}
	return nil
}

// build turns m into the library's message; every header value is one of
// ours or encoded by the library.
func (s *Sender) build(m Message) (*gomail.Msg, error) {
	from, err := s.Config.from()
	if err != nil {
		return nil, fmt.Errorf("mail: smtp.from: %w", err)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	msg.ToMailAddress(&mail.Address{Name: oneLine(m.ToName), Address: m.To})
	msg.Subject(oneLine(m.Subject))
	msg.SetMessageIDWithValue(m.ID + "@" + domainOf(from.Address))
	msg.SetDateWithValue(s.Now())
	// RFC 3834: no out-of-office replies to a machine.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

func (s *Sender) options() []gomail.Option {
	c := s.Config
	tlsConfig := &tls.Config{ServerName: c.Host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}
	opts := []gomail.Option{gomail.WithPort(c.Port), gomail.WithTimeout(connTimeout), gomail.WithTLSConfig(tlsConfig)}
	switch c.TLS {
	case TLS:
		opts = append(opts, gomail.WithSSL())
	case NoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.Username != "" {
		// Auto-discovery picks the strongest mechanism the server offers,
		// and never PLAIN or LOGIN on a connection without TLS.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(c.Username), gomail.WithPassword(string(c.Password)))
	}
	return opts
}

// classify marks the refusals that retrying cannot change.
func classify(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 &&
		(se.Reason == gomail.ErrSMTPRcptTo || se.Reason == gomail.ErrSMTPData || se.Reason == gomail.ErrSMTPDataClose) {
		return fmt.Errorf("%w: %w", audit.ErrUndeliverable, err)
	}
	return err
}

func domainOf(addr string) string {
	_, domain, _ := strings.Cut(addr, "@")
	return domain
}
