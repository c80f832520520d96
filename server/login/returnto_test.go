package login

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/keygate/keygate/internal/browsertest"
)

// FuzzSafeReturn: whatever return_to a link carries, where the browser
// lands after sign-in is on keygate's origin. The seeds in
// testdata/fuzz/FuzzSafeReturn are the known tricks: tabs, newlines and
// backslashes a browser reads as "//", scheme-relative and absolute URLs,
// dot segments.
func FuzzSafeReturn(f *testing.F) {
	issuer, err := url.Parse("https://id.example.com/login/continue?flow=x")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, returnTo string) {
		got := safeReturn(returnTo)
		if got == "" {
			return
		}
		if again := safeReturn(got); again != got {
			t.Errorf("safeReturn(%q) = %q, but safeReturn of that is %q", returnTo, got, again)
		}
		if browsertest.Clean(got) != got {
			t.Errorf("safeReturn(%q) = %q holds what a browser strips or rewrites", returnTo, got)
		}
		// What the browser is sent is http.Redirect's Location, not got.
		w := httptest.NewRecorder()
		http.Redirect(w, httptest.NewRequest(http.MethodGet, issuer.String(), nil), got, http.StatusSeeOther)
		for _, loc := range []string{got, w.Header().Get("Location")} {
			to, err := browsertest.Resolve(issuer, loc)
			if err != nil || !browsertest.SameOrigin(issuer, to) {
				t.Errorf("safeReturn(%q) = %q: Location %q takes the browser to %v (%v)", returnTo, got, loc, to, err)
			}
		}
	})
}
