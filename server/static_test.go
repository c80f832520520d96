package server_test

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"

	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/web"
)

func TestStaticFiles(t *testing.T) {
	in := start(t)
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"an embedded file is served", "/static/style.css", http.StatusOK},
		{"a missing file is not found", "/static/nothing.css", http.StatusNotFound},
		{"a name that is not UTF-8 is not found", "/static/%ff", http.StatusNotFound},
		{"a directory name that is not UTF-8 is not found", "/static/%c3%28/x.css", http.StatusNotFound},
		{"a NUL byte is not found", "/static/style.css%00", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := servertest.Read(t, in.HTTP, in.Request(t, http.MethodGet, tc.path, "", nil, nil))
			if r.Status != tc.status {
				t.Errorf("GET %s: %s, want %d", tc.path, r, tc.status)
			}
		})
	}
}

// FuzzStaticPath: whatever path follows /static/, the answer is never a
// server error, and a 200 carries an embedded file as it is.
func FuzzStaticPath(f *testing.F) {
	h := servertest.Start(f).Srv.Handler()
	f.Fuzz(func(t *testing.T, name string) {
		r := httptest.NewRequest(http.MethodGet, "/static/", nil)
		r.URL.Path += name
		r.RequestURI = r.URL.RequestURI()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code >= 500:
			t.Fatalf("GET /static/%q: %d %s", name, w.Code, w.Body)
		case w.Code != http.StatusOK || strings.HasSuffix(r.URL.Path, "/"):
			return // a redirect to the clean path, a refusal, or the listing
		}
		want, err := fs.ReadFile(web.Static(), strings.TrimPrefix(path.Clean("/"+name), "/"))
		if err != nil || !bytes.Equal(w.Body.Bytes(), want) {
			t.Errorf("GET /static/%q: 200 with %d bytes that are no embedded file as it is (%v)", name, w.Body.Len(), err)
		}
	})
}
