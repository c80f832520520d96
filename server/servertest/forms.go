package servertest

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

// FormTypes are the content types PostHostile sends a form body as: what
// a form handler may be sent, whatever it expects.
var FormTypes = []string{
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=b",
	"",
	"text/plain",
}

// PostHostile posts body to path from browser b, as FormTypes[kind %
// len(FormTypes)]. A URL-encoded body gets b's CSRF token and fields in
// front, so the handler reads on past its checks to the body's own
// fields. It fails tb on a server error, and returns the reply and the
// body's fields as a form handler reads them.
func (in *Instance) PostHostile(tb testing.TB, b sessiontest.Browser, path string, kind uint8, fields url.Values, body []byte) (Reply, url.Values) {
	tb.Helper()
	ctype := FormTypes[int(kind)%len(FormTypes)]
	if ctype == FormTypes[0] {
		fields.Set("csrf_token", b.CSRF)
		body = append([]byte(fields.Encode()+"&"), body...)
	}
	r := in.Request(tb, http.MethodPost, path, ctype, body, nil)
	r.AddCookie(b.Cookie)
	reply := Read(tb, in.HTTP, r)
	if reply.Status >= 500 {
		tb.Fatalf("POST %s (%s) %q: %s", path, ctype, body, reply)
	}
	// A handler reads only a URL-encoded body past the CSRF check; for it,
	// this is what PostFormValue returns (errors skip a field, as there).
	form, _ := url.ParseQuery(string(body))
	return reply, form
}

// Flow stores a sign-in flow of browser b like f (a state, a user), for
// a handler to act on without the steps before it.
func (in *Instance) Flow(tb testing.TB, b sessiontest.Browser, f storage.Flow) storage.Flow {
	tb.Helper()
	id, err := keys.RandomToken(24)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	f.ID, f.SessionHash, f.RequiredACR, f.MaxAge = id, b.IDHash, session.ACRMFA, -1
	f.CreatedAt, f.ExpiresAt = now, now.Add(15*time.Minute)
	if err := in.DB.CreateFlow(tb.Context(), f); err != nil {
		tb.Fatal(err)
	}
	return f
}
