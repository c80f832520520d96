package server_test

import (
	"bytes"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/browsertest"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
)

// fuzzApp is the one app FuzzEveryRoute's server knows: the only place
// besides keygate itself a response may send the browser.
const fuzzApp = "https://app.example"

// bodyTypes are the content types FuzzEveryRoute sends a body as.
var bodyTypes = []string{"application/x-www-form-urlencoded", "application/json", "multipart/form-data; boundary=b", ""}

var reWildcard = regexp.MustCompile(`\{[^}]*\}`)

// FuzzEveryRoute sends hostile requests to every route of the server —
// the OAuth endpoints, the sign-in pages, the account, the console —
// anonymous or from a signed-in browser, with or without the app's
// client credentials. Whatever comes in, the answer is never a server
// error, and a redirect sends the browser only to keygate or to the app's
// registered addresses, as a browser reads the Location.
func FuzzEveryRoute(f *testing.F) {
	in := servertest.Start(f)
	routes := in.Srv.Routes()
	nu, err := in.Manager().CreateUser(f.Context(), manage.UserSpec{Email: "routes@example.com"})
	if err != nil {
		f.Fatal(err)
	}
	app, err := in.Manager().RegisterClient(f.Context(), manage.ClientSpec{Name: "App",
		RedirectURIs: []string{fuzzApp + "/cb"}, PostLogoutRedirectURIs: []string{fuzzApp + "/bye"}})
	if err != nil {
		f.Fatal(err)
	}
	issuer, _ := url.Parse(in.Issuer)
	appURL, _ := url.Parse(fuzzApp)
	h := in.Srv.Handler()

	f.Fuzz(func(t *testing.T, route string, signedIn, asClient bool, wildcard, query string, ctype uint8, body []byte) {
		rt := routes[0]
		found := false
		for _, r := range routes {
			if r.String() == route {
				rt, found = r, true
			}
		}
		if !found {
			sum := fnv.New32a()
			sum.Write([]byte(route))
			rt = routes[int(sum.Sum32()%uint32(len(routes)))]
		}
		method := rt.Method
		if method == "" {
			method = http.MethodGet
		}
		path := reWildcard.ReplaceAllStringFunc(rt.Pattern, func(w string) string {
			if w == "{$}" {
				return ""
			}
			return url.PathEscape(wildcard)
		})
		// "{client}" in the input stands for the app's id, which no stored
		// input can know.
		client := strings.NewReplacer("{client}", url.QueryEscape(app.Client.ID))
		query, body = client.Replace(query), []byte(client.Replace(string(body)))
		u, err := url.ParseRequestURI(path + "?" + query)
		if err != nil {
			return // no HTTP request can carry it
		}
		kind := bodyTypes[int(ctype)%len(bodyTypes)]
		header := http.Header{}
		if signedIn {
			b := in.Mint(t, session.Auth{UserID: nu.User.ID, ACR: session.ACRMFA, AMR: []string{"pwd", "otp"}, AuthTime: time.Now()})
			header.Set("Cookie", b.Cookie.String())
			header.Set("X-CSRF-Token", b.CSRF)
			if kind == bodyTypes[0] {
				body = append([]byte("csrf_token="+url.QueryEscape(b.CSRF)+"&"), body...)
			}
		}
		if kind != "" {
			header.Set("Content-Type", kind)
		}
		r := httptest.NewRequestWithContext(t.Context(), method, "/", bytes.NewReader(body))
		r.URL, r.RequestURI, r.Host, r.Header = u, u.RequestURI(), issuer.Host, header
		if asClient {
			r.SetBasicAuth(url.QueryEscape(app.Client.ID), url.QueryEscape(app.Secret))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s (%s) %q: %d %s", method, u, kind, body, w.Code, w.Body)
		}
		if w.Code < 300 || w.Code >= 400 || w.Code == http.StatusNotModified {
			return
		}
		loc := w.Header().Get("Location")
		to, err := browsertest.Resolve(issuer, loc)
		if err != nil || !browsertest.SameOrigin(issuer, to) && !browsertest.SameOrigin(appURL, to) {
			t.Fatalf("%s %s (%s) %q: %d to %q, which takes the browser to %v (%v)", method, u, kind, body, w.Code, loc, to, err)
		}
	})
}
