package mail

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"strings"
)

// TLS modes of the connection to the mail server.
const (
	StartTLS = "starttls" // plain connection upgraded with STARTTLS, required
	TLS      = "tls"      // TLS from the first byte (often port 465)
	NoTLS    = "none"     // plain text: only to a mail server on this machine
)

// Config is the mail server keygate sends through.
type Config struct {
	Host     string
	Port     int    // 0: 587 for starttls, 465 for tls, 25 for none
	TLS      string // StartTLS (the default), TLS or NoTLS
	Username string // "": no authentication
	Password Password
	From     string // the From header: "keygate <id@example.com>" or an address
	// RootCAs verify the server's certificate; nil: the system's roots.
	RootCAs *x509.CertPool
}

// Password is the SMTP password; it prints as [redacted] whatever verb,
// logger or encoder prints it.
type Password string

const redacted = "[redacted]"

func (Password) String() string               { return redacted }
func (Password) GoString() string             { return redacted }
func (Password) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Password) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Password) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }

// WithDefaults fills in the TLS mode and the port.
func (c Config) WithDefaults() Config {
	if c.TLS == "" {
		c.TLS = StartTLS
	}
	if c.Port == 0 {
		c.Port = map[string]int{StartTLS: 587, TLS: 465, NoTLS: 25}[c.TLS]
	}
	return c
}

// Problems lists everything wrong with c (after WithDefaults), each as a
// line naming the setting; none names the password.
func (c Config) Problems() []string {
	var p []string
	if c.Host == "" || (strings.ContainsAny(c.Host, " /:@\r\n") && net.ParseIP(c.Host) == nil) {
		p = append(p, fmt.Sprintf("smtp.host: %q must be a host name or an IP address", c.Host))
	}
	if c.Port < 1 || c.Port > 65535 {
		p = append(p, fmt.Sprintf("smtp.port: %d is not a port", c.Port))
	}
	switch c.TLS {
	case StartTLS, TLS:
	case NoTLS:
		if !loopback(c.Host) {
			p = append(p, fmt.Sprintf("smtp.tls: none sends mail and password in plain text; it is allowed only to a mail server on this machine (localhost, 127.0.0.1, ::1), not to %q", c.Host))
		}
	default:
		p = append(p, fmt.Sprintf("smtp.tls: %q must be starttls, tls or none", c.TLS))
	}
	if (c.Username == "") != (c.Password == "") {
		p = append(p, "smtp: set both username and a password (password_file or KEYGATE_SMTP_PASSWORD), or neither")
	}
	if _, err := c.from(); err != nil {
		p = append(p, fmt.Sprintf("smtp.from: %q must be an address like keygate@example.com or \"keygate <keygate@example.com>\"", c.From))
	}
	return p
}

func (c Config) from() (*mail.Address, error) {
	if strings.ContainsAny(c.From, "\r\n") {
		return nil, fmt.Errorf("a line break")
	}
	return mail.ParseAddress(c.From)
}

// loopback: the host is this machine, so plain text never crosses a network.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
