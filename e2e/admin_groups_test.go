package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestGroupsInTheConsole is an administrator giving an app to a group in
// Chromium: create the group with a minimum level, add members by email,
// register an app only the group may use, and see it from both sides.
// The pages are kept as screenshots in e2e/artifacts.
func TestGroupsInTheConsole(t *testing.T) {
	kg := startKeygate(t, t.TempDir(), "")
	kg.addUser("dana@localhost")
	kg.addUser("lee@localhost")

	console := newTab(t)
	console.addAuthenticator(securityKey)
	console.enrollWithKey(kg.issuer, kg.enrollURL)

	// A group, created from the list.
	console.navigate(kg.issuer + "/admin/groups")
	console.do(chromedp.SetValue(chromedp.ID("group-acr"), "phr"))
	console.fill(map[string]string{"group-name": "support", "group-description": "Customer support"},
		"form[action='/admin/groups'] button[type=submit]")
	console.waitLocation(kg.issuer + "/admin/groups/g_")
	groupPage := strings.Split(console.location(), "?")[0]

	// Its members, added by email.
	console.fill(map[string]string{"add-emails": "dana@localhost, lee@localhost"}, "form[action$='/members'] button[type=submit]")
	console.waitFor("document.querySelectorAll('#members tbody tr').length === 2")
	if s := console.eval("document.getElementById('min-acr').textContent"); !strings.Contains(s, "phr") {
		t.Errorf("the group's level reads %q", s)
	}
	console.screenshot("admin-group")

	console.navigate(kg.issuer + "/admin/groups")
	if row := console.eval("document.querySelector('#groups tbody tr').innerText"); !strings.Contains(row, "support") ||
		!strings.Contains(row, "2") || !strings.Contains(row, "phr") {
		t.Errorf("the list's row: %q", row)
	}
	console.screenshot("admin-groups")

	// An app only the group may use.
	console.navigate(kg.issuer + "/admin/apps")
	console.do(chromedp.Click(chromedp.CSS("input[name=allowed_group][value=support]")))
	console.fill(map[string]string{"app-name": "Support desk", "app-redirects": "http://127.0.0.1:9/cb"},
		"form[action='/admin/apps'] button[type=submit]")
	console.waitFor("document.getElementById('client-secret') !== null")
	clientID := console.eval("document.getElementById('client-id').textContent")
	console.navigate(kg.issuer + "/admin/apps/" + clientID)
	if s := console.eval("document.getElementById('allowed-groups').textContent"); s != "members of support" {
		t.Errorf("the app's page says %q may use it", s)
	}
	if !strings.Contains(console.eval("String(document.querySelector('input[name=allowed_group][value=support]').checked)"), "true") {
		t.Error("the app form does not tick the group")
	}
	console.screenshot("admin-app-groups")

	console.navigate(groupPage)
	if s := console.eval("document.getElementById('apps').innerText"); !strings.Contains(s, "Support desk") {
		t.Errorf("the group page lists the apps %q", s)
	}

	// A member's page shows their groups and the role selector.
	console.navigate(console.eval("document.querySelector('#members a').href"))
	if s := console.eval("document.getElementById('groups').innerText"); !strings.Contains(s, "support") {
		t.Errorf("the user's groups read %q", s)
	}
	console.screenshot("admin-user-groups")
}
