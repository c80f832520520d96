package server_test

import (
	"net/http"
	"testing"

	"github.com/keygate/keygate/server/servertest"
)

func TestReadyz(t *testing.T) {
	t.Run("a database that answers is ready, whatever it holds yet", func(t *testing.T) {
		in := start(t)
		r := servertest.Read(t, in.HTTP, in.Request(t, http.MethodGet, "/readyz", "", nil, nil))
		if r.Status != http.StatusOK {
			t.Errorf("GET /readyz on a new store: %s", r)
		}
	})
	t.Run("a database that does not answer is not ready", func(t *testing.T) {
		in := start(t)
		if err := in.DB.Close(); err != nil {
			t.Fatal(err)
		}
		r := servertest.Read(t, in.HTTP, in.Request(t, http.MethodGet, "/readyz", "", nil, nil))
		if r.Status != http.StatusServiceUnavailable {
			t.Errorf("GET /readyz on a closed store: %s", r)
		}
	})
}
