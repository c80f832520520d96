package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/mail"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// checkSendEmail refuses --send-email (a usage error, exit code 2) when the
// configuration has no usable smtp section, before anything is opened,
// read or changed.
func checkSendEmail(g *globalOptions, sendEmail bool) error {
	if !sendEmail {
		return nil
	}
	s, err := resolve(g, "", false)
	if err != nil {
		return err
	}
	c, problems := s.mailConfig(false)
	if c == nil {
		return usagef("--send-email: email is not set up: add an smtp section to the configuration file; nothing was changed")
	}
	if len(problems) > 0 {
		return usagef("--send-email: nothing was changed: the smtp section is wrong:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return nil
}

// emailing is m, made to also email every enrolment link it issues when
// sendEmail; `keygate serve` sends what it queues.
func emailing(m *manage.Manager, store storage.Outbox, master *keys.Master, sendEmail bool) *manage.Manager {
	if !sendEmail {
		return m
	}
	m.Mail = &mail.Queue{Outbox: store, Sealer: master, Now: m.Now}
	return m.Emailing()
}

// sendEmailFlag is the help of every --send-email.
const sendEmailFlag = "email the enrolment link to the user instead of printing it (needs the smtp section; keygate serve sends it)"

// printEmailed reports a link queued for email. The link itself is not
// printed: whoever holds it can set up the account, and with --send-email
// only its user should.
func printEmailed(nu manage.NewUser, asJSON, jsonLine bool) error {
	if asJSON || jsonLine {
		out := map[string]any{"user_id": nu.User.ID, "email": nu.User.Email, "email_queued": true,
			"expires_at": nu.ExpiresAt.UTC().Format(time.RFC3339)}
		if jsonLine {
			return printJSONLine(out)
		}
		return printJSON(out)
	}
	fmt.Printf("Queued an email to %s with their single-use enrolment link (valid until %s); keygate serve sends it.\n",
		nu.User.Email, nu.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}
