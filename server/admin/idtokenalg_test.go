package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/servertest"
)

// An app's ID token algorithm (id_token_signed_response_alg) through the
// API and the console: RS256 by default, ES256 when asked for, kept when a
// change leaves it out, and anything else refused with the reason.
func TestAppIDTokenAlgorithm(t *testing.T) {
	in := start(t)
	me := in.newUser(t, "admin@example.com", true)
	adm := in.key(t, me.ID)
	alg := func(t *testing.T, id string) string {
		t.Helper()
		return in.client(t, id).IDTokenSignedResponseAlg()
	}
	refused := func(t *testing.T, r servertest.Reply) {
		t.Helper()
		e := servertest.Decode[map[string]string](t, r)
		if r.Status != http.StatusBadRequest || e["error"] != "invalid_request" || !strings.Contains(e["error_description"], "RS256 or ES256") {
			t.Errorf("%v, want 400 invalid_request saying RS256 or ES256", r)
		}
	}

	t.Run("API", func(t *testing.T) {
		register := func(t *testing.T, body map[string]any) (servertest.Reply, string) {
			t.Helper()
			r := in.call(t, &adm, "", http.MethodPost, v1+"/clients", body)
			reg := servertest.Decode[struct {
				Client struct {
					ID  string `json:"id"`
					Alg string `json:"id_token_signed_response_alg"`
				} `json:"client"`
			}](t, r)
			if r.Status == http.StatusCreated && reg.Client.Alg != alg(t, reg.Client.ID) {
				t.Errorf("the answer says %q, the store %q", reg.Client.Alg, alg(t, reg.Client.ID))
			}
			return r, reg.Client.ID
		}
		app := map[string]any{"name": "Wiki", "redirect_uris": []string{"https://wiki.example.com/cb"}}
		r, plain := register(t, app)
		if r.Status != http.StatusCreated || alg(t, plain) != "RS256" {
			t.Fatalf("register without the field: %v, alg %q", r, alg(t, plain))
		}
		app["id_token_signed_response_alg"] = "ES256"
		r, fast := register(t, app)
		if r.Status != http.StatusCreated || alg(t, fast) != "ES256" {
			t.Fatalf("register with ES256: %v, alg %q", r, alg(t, fast))
		}
		for _, bad := range []string{"HS256", "none", "es256", "PS256"} {
			app["id_token_signed_response_alg"] = bad
			r, _ := register(t, app)
			refused(t, r)
		}

		put := func(body map[string]any) servertest.Reply {
			return in.call(t, &adm, "", http.MethodPut, v1+"/clients/"+fast, body)
		}
		if r := put(map[string]any{"name": "Wiki 2", "redirect_uris": []string{"https://wiki.example.com/cb"}}); r.Status != http.StatusOK || alg(t, fast) != "ES256" {
			t.Errorf("a PUT without the field: %v, alg %q, want it kept", r, alg(t, fast))
		}
		refused(t, put(map[string]any{"name": "Wiki 2", "redirect_uris": []string{"https://wiki.example.com/cb"}, "id_token_signed_response_alg": "RS512"}))
		if alg(t, fast) != "ES256" {
			t.Errorf("a refused PUT changed the algorithm to %q", alg(t, fast))
		}
		r = put(map[string]any{"name": "Wiki 2", "redirect_uris": []string{"https://wiki.example.com/cb"}, "id_token_signed_response_alg": "RS256"})
		if r.Status != http.StatusOK || servertest.Decode[map[string]any](t, r)["id_token_signed_response_alg"] != "RS256" || alg(t, fast) != "RS256" {
			t.Errorf("a PUT back to RS256: %v", r)
		}
		r = in.call(t, &adm, "", http.MethodGet, v1+"/clients", nil)
		if r.Status != http.StatusOK || strings.Count(string(r.Body), `"id_token_signed_response_alg":"RS256"`) < 2 {
			t.Errorf("the list does not show each app's algorithm: %s", r.Body)
		}
	})

	t.Run("console", func(t *testing.T) {
		selected := regexp.MustCompile(`<option value="(RS256|ES256)" selected>`)
		form := url.Values{"name": {"Support"}, "grant": {"authorization_code"}, "redirect_uris": {"https://support.example.com/cb"},
			"min_acr": {"mfa"}, "id_token_alg": {"ES256"}}
		r := in.form(t, &adm, "/admin/apps", form)
		if r.Status != http.StatusOK {
			t.Fatalf("register: %v", r)
		}
		id := servertest.Scrape(t, r, reClientID)
		if alg(t, id) != "ES256" {
			t.Fatalf("registered with the ES256 option, stored %q", alg(t, id))
		}
		page := in.get(t, &adm, "/admin/apps/"+id)
		if m := selected.FindStringSubmatch(string(page.Body)); page.Status != http.StatusOK || m == nil || m[1] != "ES256" ||
			!strings.Contains(string(page.Body), `<dd id="id-token-alg">signed with ES256</dd>`) {
			t.Errorf("the app's page does not show ES256 (selected %v)", m)
		}
		if list := in.get(t, &adm, "/admin/apps"); !strings.Contains(string(list.Body), "ES256 ID tokens") {
			t.Error("the list does not mark the ES256 app")
		}
		if page := in.get(t, &adm, "/admin/apps"); selected.FindStringSubmatch(string(page.Body))[1] != "RS256" {
			t.Error("the registration form does not offer RS256 first")
		}

		form.Set("id_token_alg", "HS256")
		r = in.form(t, &adm, "/admin/apps/"+id, form)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "RS256 or ES256") || alg(t, id) != "ES256" {
			t.Errorf("an edit with HS256: %v, stored %q; want 400 saying RS256 or ES256, nothing changed", r, alg(t, id))
		}
		form.Set("id_token_alg", "RS256")
		if r := in.form(t, &adm, "/admin/apps/"+id, form); r.Status != http.StatusSeeOther || alg(t, id) != "RS256" {
			t.Errorf("an edit to RS256: %v, stored %q", r, alg(t, id))
		}
	})
}
