package mail_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/mail"
)

func TestConfigProblems(t *testing.T) {
	ok := mail.Config{Host: "smtp.example.com", Username: "u", Password: "p", From: "keygate <id@example.com>"}
	tests := []struct {
		name   string
		change func(*mail.Config)
		want   string // "" : no problem
	}{
		{"starttls on 587 is the default", func(*mail.Config) {}, ""},
		{"implicit TLS", func(c *mail.Config) { c.TLS = mail.TLS }, ""},
		{"no TLS to localhost", func(c *mail.Config) { c.TLS, c.Host = mail.NoTLS, "localhost" }, ""},
		{"no TLS to 127.0.0.1", func(c *mail.Config) { c.TLS, c.Host = mail.NoTLS, "127.0.0.1" }, ""},
		{"no TLS to ::1", func(c *mail.Config) { c.TLS, c.Host = mail.NoTLS, "::1" }, ""},
		{"no TLS to another host is refused", func(c *mail.Config) { c.TLS = mail.NoTLS }, "allowed only to a mail server on this machine"},
		{"no TLS to a LAN address is refused", func(c *mail.Config) { c.TLS, c.Host = mail.NoTLS, "10.0.0.5" }, "allowed only to a mail server on this machine"},
		{"no TLS to a name that starts like localhost is refused", func(c *mail.Config) { c.TLS, c.Host = mail.NoTLS, "localhost.evil.example" }, "allowed only"},
		{"an unknown TLS mode", func(c *mail.Config) { c.TLS = "ssl" }, `"ssl" must be starttls, tls or none`},
		{"no host", func(c *mail.Config) { c.Host = "" }, "smtp.host"},
		{"a URL for a host", func(c *mail.Config) { c.Host = "smtp://smtp.example.com" }, "smtp.host"},
		{"a port out of range", func(c *mail.Config) { c.Port = 70000 }, "smtp.port"},
		{"a user without a password", func(c *mail.Config) { c.Password = "" }, "set both username and a password"},
		{"no from", func(c *mail.Config) { c.From = "" }, "smtp.from"},
		{"a from with a line break", func(c *mail.Config) { c.From = "id@example.com\r\nBcc: eve@evil.example" }, "smtp.from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			problems := strings.Join(c.WithDefaults().Problems(), "\n")
			if tt.want == "" && problems != "" || !strings.Contains(problems, tt.want) {
				t.Fatalf("problems %q, want %q", problems, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	for mode, port := range map[string]int{"": 587, mail.StartTLS: 587, mail.TLS: 465, mail.NoTLS: 25} {
		if c := (mail.Config{TLS: mode}).WithDefaults(); c.Port != port {
			t.Errorf("tls %q: port %d, want %d", mode, c.Port, port)
		}
	}
}

func TestPasswordNeverPrints(t *testing.T) {
	const secret = "hunter2-s3cret"
	c := mail.Config{Host: "smtp.example.com", Username: "u", Password: secret, From: "id@example.com"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "smtp", c, "password", c.Password)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "smtp", c, "password", c.Password)
	printed := fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c.Password, c.Password) + logged.String()
	if strings.Contains(printed, secret) {
		t.Fatalf("the password was printed: %s", printed)
	}
}
