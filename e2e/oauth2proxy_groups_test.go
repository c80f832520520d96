package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestOAuth2ProxyAllowedGroup puts an app behind oauth2-proxy with
// --allowed-group, as a company would for a tool only support may use,
// and registers it in keygate for the same group: a member gets through
// (oauth2-proxy read the groups claim), a non-member is stopped at
// keygate's page, and a member removed from the group loses the app at
// once — the refresh is refused, the token inactive, the app told.
func TestOAuth2ProxyAllowedGroup(t *testing.T) {
	bin := oauth2ProxyBinary(t)
	kg := startKeygate(t, t.TempDir(), "")
	lr := newLogoutReceiver(t, kg.issuer)
	kg.cli("group", "add", "support")
	ada := enroll(t, newBrowser(t, kg.issuer), kg.addUser("ada@localhost"), "ada@localhost")
	bob := enroll(t, newBrowser(t, kg.issuer), kg.addUser("bob@localhost"), "bob@localhost")
	kg.cli("group", "member", "add", "support", ada.email)
	port := freePort(t)
	var app registered
	kg.cliJSON(&app, "client", "add", "--name", "Support console", "--redirect-uri", fmt.Sprintf("http://127.0.0.1:%d/oauth2/callback", port),
		"--allowed-group", "support", "--backchannel-logout-uri", lr.url)
	up := newUpstream(t)
	proxy := startOAuth2Proxy(t, bin, kg, app, port, up,
		"--scope=openid email profile groups offline_access", "--allowed-group=support", "--oidc-groups-claim=groups")

	t.Run("a non-member is stopped at keygate, with a page naming the app", func(t *testing.T) {
		b := newBrowser(t, kg.issuer)
		authURL := b.hopTo(proxy.url + "/")
		p := signIn(t, b, authRequest{url: authURL}, bob, "totp", nextCode(t, bob.totpSecret))
		if p.status != http.StatusForbidden || p.location != "" || !strings.Contains(p.body, "may not use Support console") {
			t.Fatalf("a non-member: %d at %s (location %q): %s", p.status, p.url, p.location, p.alert())
		}
		if up.count() != 0 {
			t.Error("the app was reached")
		}
	})

	t.Run("a member gets through, and loses the app the moment they leave the group", func(t *testing.T) {
		b := newBrowser(t, kg.issuer)
		authURL := b.hopTo(proxy.url + "/")
		p := signIn(t, b, authRequest{url: authURL}, ada, "totp", nextCode(t, ada.totpSecret))
		if !strings.HasPrefix(p.location, proxy.url+"/oauth2/callback?") {
			t.Fatalf("keygate did not send the member back to oauth2-proxy: %d %s: %s", p.status, p.url, p.alert())
		}
		// oauth2-proxy admits only a member of support by its groups claim.
		if p = b.visit(p.location); p.status != http.StatusOK || p.body != "upstream: hello "+ada.email {
			t.Fatalf("the member reached %d: %s", p.status, tail(p.body, 500))
		}
		token, seen := up.last().accessToken, up.count()
		failedBefore := len(kg.auditEvents("token.failed", app.ClientID))

		removed := time.Now()
		kg.cli("group", "member", "remove", "support", ada.email)
		if body := introspect(t, kg.issuer, app.ClientID, app.ClientSecret, token); body["active"] != false {
			t.Errorf("the removed member's access token is still active: %v", body)
		}
		_, got := lr.waitFor(t, func(c map[string]any) bool { return c["aud"] == app.ClientID })
		t.Logf("member removed: back-channel logout received after %v", got.Sub(removed).Round(time.Millisecond))
		eventually(t, 15*time.Second, "oauth2-proxy turning the removed member away", func() bool {
			return b.visit(proxy.url+"/").body != "upstream: hello "+ada.email
		})
		if !kg.refusedRefresh(app.ClientID, failedBefore) {
			t.Error("keygate recorded no refused refresh for the removed member")
		}
		up.noTokenSince(t, seen, token, "the removal")
	})

	t.Run("for an app keygate leaves open, oauth2-proxy itself refuses by the groups claim", func(t *testing.T) {
		port := freePort(t)
		var open registered
		kg.cliJSON(&open, "client", "add", "--name", "Status page", "--redirect-uri", fmt.Sprintf("http://127.0.0.1:%d/oauth2/callback", port))
		up := newUpstream(t)
		proxy := startOAuth2Proxy(t, bin, kg, open, port, up,
			"--scope=openid email profile groups offline_access", "--allowed-group=support", "--oidc-groups-claim=groups")
		b := newBrowser(t, kg.issuer)
		authURL := b.hopTo(proxy.url + "/")
		// Bob used this step's code above; a recovery code signs him in.
		p := signIn(t, b, authRequest{url: authURL}, bob, "recovery", bob.recovery[0])
		if !strings.HasPrefix(p.location, proxy.url+"/oauth2/callback?") {
			t.Fatalf("keygate did not answer the open app: %d %s: %s", p.status, p.url, p.alert())
		}
		if p = b.visit(p.location); p.status != http.StatusForbidden || up.count() != 0 {
			t.Errorf("oauth2-proxy let a user without the group through: %d %s", p.status, tail(p.body, 300))
		}
	})
}
