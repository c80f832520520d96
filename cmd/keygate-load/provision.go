package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
)

// newUser is a user as `keygate user import` prints it.
type newUser struct {
	ID            string `json:"user_id"`
	Email         string `json:"email"`
	EnrollmentURL string `json:"enrollment_url"`
}

// appCreds is a registered confidential app.
type appCreds struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// provisioner does what an administrator does before people sign in:
// add users (each gets an enrolment link) and register an app.
type provisioner interface {
	addUsers(ctx context.Context, emails []string) ([]newUser, error)
	// addApp registers a confidential app whose ID tokens are signed with
	// idTokenAlg (RS256 or ES256).
	addApp(ctx context.Context, name, redirectURI, idTokenAlg string) (appCreds, error)
}

// cli provisions through the keygate command on the server's data: the
// binary bin, run with args (e.g. --data-dir DIR) before each command.
type cli struct {
	bin  string
	args []string
}

func (c cli) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.bin, append(append([]string{}, c.args...), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", c.bin, args[0]+" "+args[1], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// addUsers imports the users in one go (`keygate user import`), which is
// one command and one transaction however many there are.
func (c cli) addUsers(ctx context.Context, emails []string) ([]newUser, error) {
	dir, err := os.MkdirTemp("", "keygate-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "users.csv")
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"email", "name", "groups"})
	for _, e := range emails {
		_ = w.Write([]string{e, "Load " + strings.SplitN(e, "@", 2)[0], ""})
	}
	w.Flush()
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	out, err := c.run(ctx, "user", "import", file)
	if err != nil {
		return nil, err
	}
	var users []newUser
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var u newUser
		if err := dec.Decode(&u); err != nil {
			return nil, fmt.Errorf("keygate user import printed %.200q: %w", out, err)
		}
		users = append(users, u)
	}
	if len(users) != len(emails) {
		return nil, fmt.Errorf("keygate user import added %d users, want %d", len(users), len(emails))
	}
	return users, nil
}

func (c cli) addApp(ctx context.Context, name, redirectURI, idTokenAlg string) (appCreds, error) {
	out, err := c.run(ctx, "client", "add", "--name", name, "--redirect-uri", redirectURI,
		"--grant", "authorization_code", "--grant", "refresh_token", "--id-token-alg", idTokenAlg, "--json")
	if err != nil {
		return appCreds{}, err
	}
	var a appCreds
	if err := json.Unmarshal(out, &a); err != nil || a.ID == "" || a.Secret == "" {
		return appCreds{}, fmt.Errorf("keygate client add printed %.200q (%v): want a client id and secret", out, err)
	}
	return a, nil
}

// enrolPath is how every enrolment link's path and query begin.
const enrolPath = "/enroll?"

// setPassword opens u's enrolment link in b and sets the password, as the
// user does; b is then admitted to the factor enrolment.
func (s *site) setPassword(ctx context.Context, b *browser, u newUser) error {
	link, err := linkPath(u.EnrollmentURL)
	if err != nil {
		return err
	}
	page, err := b.get(ctx, link)
	if err != nil {
		return err
	}
	if page.status != 200 {
		return unexpected("enrolment page", page)
	}
	csrf, err := scrape("enrolment page", page, reCSRFField)
	if err != nil {
		return err
	}
	token, err := scrape("enrolment page", page, reTokenField)
	if err != nil {
		return err
	}
	form := formOf("csrf_token", csrf, "token", token, "password", s.password, "confirm", s.password)
	// Hashing the password takes an argon2id slot: when they are all busy
	// keygate answers 503 with Retry-After, and the user tries again.
	for try := 0; ; try++ {
		r, err := b.postForm(ctx, "/enroll", form)
		if err != nil {
			return err
		}
		if r.status == 303 && r.location() == "/mfa/enroll" {
			return nil
		}
		if r.status != 503 || try == 10 {
			return unexpected("set password", r)
		}
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || wait < 1 || wait > 30 {
			wait = 1
		}
		t := time.NewTimer(time.Duration(wait) * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// linkPath is an enrolment link's path and query: the link names the
// issuer, which may be another spelling of the address the generator uses.
func linkPath(link string) (string, error) {
	_, rest, ok := strings.Cut(link, "://")
	if i := strings.IndexByte(rest, '/'); ok && i >= 0 && strings.HasPrefix(rest[i:], enrolPath) {
		return rest[i:], nil
	}
	return "", fmt.Errorf("not an enrolment link: %q", link)
}

// enrolTOTP finishes u's enrolment with an authenticator app: it reads the
// secret from the page, as a password manager would from the QR code, and
// confirms it with the current code. The browser ends signed in.
func (s *site) enrolTOTP(ctx context.Context, u newUser) (*account, error) {
	b := s.browser(nil)
	if err := s.setPassword(ctx, b, u); err != nil {
		return nil, err
	}
	page, err := b.get(ctx, "/mfa/totp/enroll")
	if err != nil {
		return nil, err
	}
	if page.status != 200 {
		return nil, unexpected("authenticator app page", page)
	}
	secret, err := scrape("authenticator app page", page, reTOTPSecret)
	if err != nil {
		return nil, err
	}
	csrf, err := scrape("authenticator app page", page, reCSRFField)
	if err != nil {
		return nil, err
	}
	// Confirm with the previous step's code, which keygate still accepts
	// (one step of clock skew): the user can then sign in with the
	// current step's code at once, instead of up to 30 s later. A step
	// that ends while the code is on its way makes it too old: try again.
	for try := 0; ; try++ {
		step := s.now().Unix()/totpPeriod - 1
		code, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return nil, err
		}
		r, err := b.postForm(ctx, "/mfa/totp/enroll", formOf("csrf_token", csrf, "code", code))
		if err != nil {
			return nil, err
		}
		if r.status == 200 && bytes.Contains(r.body, []byte("recovery")) {
			return &account{user: u, totpSecret: secret, lastStep: step, cookies: b.cookies}, nil
		}
		if r.status != 400 || try == 2 {
			return nil, unexpected("confirm the authenticator app", r)
		}
	}
}

// enrolPasskey finishes u's enrolment with a passkey of its own, as
// web/static/webauthn.js registers one. The browser ends signed in.
func (s *site) enrolPasskey(ctx context.Context, u newUser) (*account, error) {
	b := s.browser(nil)
	if err := s.setPassword(ctx, b, u); err != nil {
		return nil, err
	}
	page, err := b.get(ctx, "/mfa/enroll")
	if err != nil {
		return nil, err
	}
	if page.status != 200 {
		return nil, unexpected("factor page", page)
	}
	csrf, err := scrape("factor page", page, reDataCSRF)
	if err != nil {
		return nil, err
	}
	r, err := b.postJSON(ctx, "/mfa/webauthn/register/begin", csrf, []byte(`{}`))
	if err != nil {
		return nil, err
	}
	var begun struct {
		Challenge string          `json:"challenge"`
		Options   json.RawMessage `json:"options"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &begun) != nil || begun.Challenge == "" {
		return nil, unexpected("register begin", r)
	}
	key, err := newPasskey(s.rp)
	if err != nil {
		return nil, err
	}
	body, err := key.create(begun.Options)
	if err != nil {
		return nil, err
	}
	r, err = b.postJSON(ctx, "/mfa/webauthn/register/finish?"+formOf("challenge", begun.Challenge, "name", "load passkey").Encode(), csrf, body)
	if err != nil {
		return nil, err
	}
	var done struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &done) != nil || len(done.RecoveryCodes) == 0 {
		return nil, unexpected("register finish", r)
	}
	return &account{user: u, key: key, cookies: b.cookies}, nil
}

// enrolAll creates n users and enrols each with enrol, a few at a time:
// setting a password costs an argon2id hash, which keygate runs at most
// one per core and refuses beyond a short queue.
func (s *site) enrolAll(ctx context.Context, prefix string, n int, enrol func(context.Context, newUser) (*account, error)) ([]*account, error) {
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("%s-%s-%d@load.example.com", prefix, s.runID, i)
	}
	users, err := s.prov.addUsers(ctx, emails)
	if err != nil {
		return nil, err
	}
	accounts := make([]*account, n)
	errs := make([]error, n)
	next := make(chan int)
	done := make(chan struct{})
	const parallel = 4
	for range parallel {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				accounts[i], errs[i] = enrol(ctx, users[i])
			}
		}()
	}
	for i := range users {
		next <- i
	}
	close(next)
	for range parallel {
		<-done
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("enrol %s: %w", users[i].Email, err)
		}
	}
	return accounts, nil
}
