package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// One headless Chromium serves every browser test; each test gets its own
// tab in its own browser context (fresh cookies) and its own virtual
// authenticators.
var chromium struct {
	once    sync.Once
	ctx     context.Context
	cancel  func()
	err     error
	dataDir string
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func startChromium() {
	path := chromiumPath()
	if path == "" {
		chromium.err = fmt.Errorf("no chromium found: install Debian's chromium (scripts/test.sh does)")
		return
	}
	dir, err := os.MkdirTemp("", "keygate-chromium")
	if err != nil {
		chromium.err = err
		return
	}
	chromium.dataDir = dir
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(dir),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		chromium.err = err
		cancel()
		cancelAlloc()
		return
	}
	chromium.ctx = ctx
	chromium.cancel = func() { cancel(); cancelAlloc(); os.RemoveAll(dir) }
}

func stopChromium() {
	if chromium.cancel != nil {
		chromium.cancel()
	}
}

// tab is one browser tab with its own cookies.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func newTab(t *testing.T) *tab {
	t.Helper()
	chromium.once.Do(startChromium)
	if chromium.err != nil {
		t.Fatalf("chromium: %v", chromium.err)
	}
	ctx, cancel := chromedp.NewContext(chromium.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first Run opens the tab and ties it to the context it runs with,
	// so it must run without a timeout; later actions get theirs.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	tb := &tab{t: t, ctx: ctx}
	tb.cdp(func(ctx context.Context, s cdp.Session) error {
		_, err := cdp.Call(ctx, s, webauthn.Enable, webauthn.EnableParams{})
		return err
	})
	return tb
}

// cdp runs raw DevTools commands in the tab.
func (tb *tab) cdp(f func(ctx context.Context, s cdp.Session) error) {
	tb.t.Helper()
	tb.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error { return f(ctx, t) }))
}

// do runs actions with a bound on how long they may take.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
}

func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func (tb *tab) eval(expr string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		tb.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true. A navigation in
// between destroys the page the poll runs in; that is retried, not failed.
func (tb *tab) waitFor(cond string) {
	tb.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(20*time.Millisecond)))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		if tb.ctx.Err() != nil {
			break
		}
	}
	tb.t.Fatalf("waiting for %s: %v\nat %s: %s", cond, lastErr, tb.location(), tb.bodyText())
}

func (tb *tab) bodyText() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	return s
}

// waitLocation waits until the tab's URL starts with prefix.
func (tb *tab) waitLocation(prefix string) string {
	tb.t.Helper()
	tb.waitFor(fmt.Sprintf("window.location.href.startsWith(%q) && document.readyState === 'complete'", prefix))
	return tb.location()
}

// Authenticator kinds the tests use.
var (
	securityKey = webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
		Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportUsb,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}
	// A synced passkey is told apart by its backup-eligible flag. It uses
	// the usb transport here because headless Chrome answers the sign-in
	// page's autofill (conditional) request by itself from an "internal"
	// authenticator, which would race the password form under test.
	syncedPasskey = webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
		Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportUsb,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		DefaultBackupEligibility: true, DefaultBackupState: true}
	u2fKey = webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolU2f,
		Transport: webauthn.AuthenticatorTransportUsb, AutomaticPresenceSimulation: true}
)

func (tb *tab) addAuthenticator(opts webauthn.VirtualAuthenticatorOptions) webauthn.AuthenticatorID {
	tb.t.Helper()
	var id webauthn.AuthenticatorID
	tb.cdp(func(ctx context.Context, s cdp.Session) error {
		res, err := cdp.Call(ctx, s, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &opts})
		id = res.AuthenticatorID
		return err
	})
	return id
}

func (tb *tab) removeAuthenticator(id webauthn.AuthenticatorID) {
	tb.cdp(func(ctx context.Context, s cdp.Session) error {
		_, err := cdp.Call(ctx, s, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id})
		return err
	})
}

func (tb *tab) credentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	var creds []*webauthn.Credential
	tb.cdp(func(ctx context.Context, s cdp.Session) error {
		res, err := cdp.Call(ctx, s, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		creds = res.Credentials
		return err
	})
	return creds
}

// navigate loads url and waits for the page.
func (tb *tab) navigate(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url))
}

// fill sets form fields by element id and submits with the button selector.
func (tb *tab) fill(fields map[string]string, submit string) {
	tb.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for id, v := range fields {
		steps = append(steps, chromedp.SetValue(chromedp.ID(id), v))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(submit)))
	tb.do(steps...)
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// swap replaces the tab's authenticator with a new one of opts holding
// creds, so a test decides exactly which key the browser offers.
func (tb *tab) swap(old webauthn.AuthenticatorID, opts webauthn.VirtualAuthenticatorOptions, creds ...*webauthn.Credential) webauthn.AuthenticatorID {
	tb.t.Helper()
	if old != "" {
		tb.removeAuthenticator(old)
	}
	id := tb.addAuthenticator(opts)
	for _, c := range creds {
		rpID := c.RpID
		if rpID == "" {
			rpID = "localhost" // U2F credentials come back without it
		}
		params := addCredentialParams{AuthenticatorID: id, Credential: plainCredential{
			CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: rpID,
			PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount,
			BackupEligibility: c.BackupEligibility, BackupState: c.BackupState,
		}}
		tb.cdp(func(ctx context.Context, s cdp.Session) error {
			_, err := cdp.Call(ctx, s, addCredential, params)
			return err
		})
	}
	return id
}

// addCredential is WebAuthn.addCredential without the credential-manager
// trust-group fields: cdproto always sends one of them, and Chromium then
// refuses the call on authenticators without that extension.
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      plainCredential          `json:"credential"`
}

type plainCredential struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId,omitempty"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
	BackupEligibility    bool    `json:"backupEligibility"`
	BackupState          bool    `json:"backupState"`
}

// enrollWithKey completes an enrolment link in the tab with its current
// authenticator, keeping the recovery codes, and lands on the account page.
func (tb *tab) enrollWithKey(issuer, link string) []string {
	tb.t.Helper()
	tb.navigate(link)
	tb.fill(map[string]string{"password": testPassword, "confirm": testPassword}, "form[action='/enroll'] button[type=submit]")
	tb.waitLocation(issuer + "/mfa/enroll")
	tb.click("#register-key")
	tb.waitFor("!document.getElementById('recovery-section').hidden")
	codes := strings.Fields(tb.eval("Array.from(document.querySelectorAll('#recovery-codes code')).map(c => c.textContent).join(' ')"))
	tb.click("#recovery-continue")
	tb.waitLocation(issuer + "/account")
	return codes
}

// screenshot saves the page as e2e/artifacts/<name>.png for a person to
// look at; artifacts are not committed.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.MkdirAll("artifacts", 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("artifacts", name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}
