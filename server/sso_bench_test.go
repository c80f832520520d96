package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
)

// BenchmarkSSOAuthorize is one single sign-on for a signed-in browser:
// /oauth2/authorize, where the risk engine checks the session and the code
// is issued, answering with the app's redirect URI and the code.
func BenchmarkSSOAuthorize(b *testing.B) {
	in := servertest.Start(b)
	m := in.Manager()
	ctx := b.Context()
	nu, err := m.CreateUser(ctx, manage.UserSpec{Email: "bench@localhost", Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	app, err := m.RegisterClient(ctx, manage.ClientSpec{Name: "Bench", RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil {
		b.Fatal(err)
	}
	br := in.Mint(b, session.Auth{UserID: nu.User.ID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"},
		AuthTime: time.Now().Add(-time.Minute)})
	q := authorizeQuery(app.Client.ID, "https://app.example/cb")
	get := func(target string) string {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.AddCookie(br.Cookie)
		resp, err := in.HTTP.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
			b.Fatalf("GET %s: %d", target, resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	b.ReportAllocs()
	for b.Loop() {
		if loc := get(in.Base + "/oauth2/authorize?" + q.Encode()); !strings.HasPrefix(loc, "https://app.example/cb?code=") {
			b.Fatalf("ended at %s", loc)
		}
	}
}
