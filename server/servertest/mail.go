package servertest

import (
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/mail/mailtest"
)

// MailConfig is a keygate mail configuration for the test SMTP server s.
// It lives here, not in mailtest, so that the end-to-end suite can run a
// mail server without depending on keygate's packages.
func MailConfig(s *mailtest.Server) mail.Config {
	mode := mail.StartTLS
	if s.ImplicitTLS() {
		mode = mail.TLS
	}
	return mail.Config{Host: s.Host, Port: s.Port, TLS: mode, Username: mailtest.Username,
		Password: mail.Password(mailtest.Password), From: "keygate <keygate@id.example.com>", RootCAs: s.CA}
}
