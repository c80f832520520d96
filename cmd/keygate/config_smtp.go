package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/keygate/keygate/server/mail"
)

// smtpFile is the `smtp:` section: the mail server keygate sends through.
// Without it keygate sends no email.
type smtpFile struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	TLS          string `yaml:"tls"` // starttls (default), tls or none
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	From         string `yaml:"from"`
}

// mailConfig validates the smtp section: nil and no problems without one.
// The password (password_file, else KEYGATE_SMTP_PASSWORD) is read only
// when withPassword: serve sends and needs it, the other commands only
// queue mail for serve and need not hold it. No problem names it.
func (s settings) mailConfig(withPassword bool) (*mail.Config, []string) {
	sf := s.file.SMTP
	if sf == nil {
		return nil, nil
	}
	c := mail.Config{Host: sf.Host, Port: sf.Port, TLS: sf.TLS, Username: sf.Username, From: sf.From}.WithDefaults()
	var problems []string
	// A password not read (or not readable) counts as there, so that the
	// other problems are all reported, and that one once.
	const unread = "(not read)"
	switch {
	case !withPassword:
		if sf.Username != "" {
			c.Password = unread
		}
	case sf.PasswordFile != "":
		b, err := os.ReadFile(sf.PasswordFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("smtp.password_file: %v", err))
			b = []byte(unread)
		}
		c.Password = mail.Password(bytes.TrimRight(b, "\r\n"))
	default:
		c.Password = mail.Password(os.Getenv("KEYGATE_SMTP_PASSWORD"))
	}
	return &c, append(problems, c.Problems()...)
}
