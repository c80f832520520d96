// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp) on
// a loopback TCP port for tests: STARTTLS with a certificate made for the
// test (or TLS from the first byte, or no TLS at all), AUTH PLAIN required
// before any mail, and every accepted message recorded as the bytes that
// arrived. It can be taken down and brought back
// on the same port, refuse a recipient with a 5xx, and change its password.
//
// It is a test helper: only _test.go files import it.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/keygate/keygate/internal/porttest"
)

// Username and Password are what the server accepts unless changed.
const (
	Username = "keygate"
	Password = "correct horse battery staple"
)

// Received is one message the server accepted.
type Received struct {
	From   string   // MAIL FROM
	Rcpt   []string // RCPT TO
	Raw    []byte   // the message as it arrived after DATA
	Header mail.Header
	Body   []byte // the raw body, after the header
	TLS    bool   // the session was encrypted when the message came
	User   string // who authenticated
}

// Server is a running SMTP server.
type Server struct {
	Host string // 127.0.0.1
	Port int
	CA   *x509.CertPool // verifies the server's certificate
	// CAFile is that certificate in PEM, for a process of its own to trust
	// (SSL_CERT_FILE).
	CAFile string

	t    testing.TB
	mode Option // how it speaks TLS
	open bool   // NoAuth
	tls  *tls.Config
	mu   sync.Mutex
	ln   net.Listener
	srv  *smtp.Server
	pass string
	// refused recipients get a 550 at RCPT TO.
	refused  map[string]bool
	received []Received
	authFail int
	auths    int           // AUTH exchanges begun, whatever their outcome
	arrived  chan struct{} // closed and replaced at each message and failed AUTH
}

// Option changes how a server talks.
type Option int

const (
	// ImplicitTLS speaks TLS from the first byte (port 465 style) instead
	// of offering STARTTLS.
	ImplicitTLS Option = iota + 1
	// NoTLS offers no STARTTLS and takes AUTH in plain text: a server, or a
	// man in the middle, that strips STARTTLS.
	NoTLS
	// NoAuth takes mail without AUTH, as a relay on the same machine may.
	NoAuth
)

// Start runs a server until t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cert, pool := certificate(t)
	caFile := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{Host: "127.0.0.1", CA: pool, CAFile: caFile, t: t, pass: Password, refused: map[string]bool{},
		tls:     &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		arrived: make(chan struct{})}
	for _, o := range opts {
		if o == NoAuth {
			s.open = true
		} else {
			s.mode = o
		}
	}
	// A port from porttest, not the kernel's: while the server is Down, the
	// kernel could give a port of its own to another socket, and Up would
	// find it taken.
	port, err := porttest.Pick()
	if err != nil {
		t.Fatal(err)
	}
	s.listen(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	t.Cleanup(s.Down)
	return s
}

// ImplicitTLS reports whether the server speaks TLS from the first byte
// (ImplicitTLS) rather than after STARTTLS.
func (s *Server) ImplicitTLS() bool { return s.mode == ImplicitTLS }

func (s *Server) listen(addr string) {
	s.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(s.session))
	srv.Domain = "mail.test"
	switch s.mode {
	case ImplicitTLS:
		ln = tls.NewListener(ln, s.tls)
	case NoTLS:
		srv.AllowInsecureAuth = true
	default:
		srv.TLSConfig = s.tls
	}
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = discard{}
	s.mu.Lock()
	s.ln, s.srv = ln, srv
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Down stops the server: connections are refused until Up.
func (s *Server) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up starts the server again on the same port.
func (s *Server) Up() {
	s.t.Helper()
	s.listen(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
}

// SetPassword changes the password the server accepts.
func (s *Server) SetPassword(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pass = p
}

// Refuse makes the server answer 550 to RCPT TO addr.
func (s *Server) Refuse(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[addr] = true
}

// Received returns the messages accepted so far.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Auths counts AUTH exchanges begun, whatever their outcome: a client
// that gave its password away shows here.
func (s *Server) Auths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// AuthFailures counts refused AUTH attempts.
func (s *Server) AuthFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authFail
}

// Wait blocks until cond holds for the server's state, checked at every
// message and failed AUTH; it fails t if t's context ends first.
func (s *Server) Wait(t testing.TB, cond func(s *Server) bool) {
	t.Helper()
	for {
		s.mu.Lock()
		ch := s.arrived
		s.mu.Unlock()
		if cond(s) {
			return
		}
		select {
		case <-ch:
		case <-t.Context().Done():
			t.Fatal("the mail server did not see what the test waited for")
		}
	}
}

func (s *Server) notify() {
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *Server) session(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, c: c}, nil
}

type session struct {
	s    *Server
	c    *smtp.Conn
	user string
	from string
	to   []string
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		x.s.mu.Lock()
		defer x.s.mu.Unlock()
		x.s.auths++
		if user != Username || pass != x.s.pass {
			x.s.authFail++
			x.s.notify()
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.user == "" && !x.s.open {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.refused[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "unreadable message: " + err.Error()}
	}
	body, _ := io.ReadAll(msg.Body)
	_, encrypted := x.c.TLSConnectionState()
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.received = append(x.s.received, Received{From: x.from, Rcpt: append([]string(nil), x.to...), Raw: raw,
		Header: msg.Header, Body: body, TLS: encrypted, User: x.user})
	x.s.notify()
	return nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

// certificate makes a self-signed certificate for localhost, 127.0.0.1
// and ::1, and the pool that trusts it.
func certificate(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}
