package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// webhook receives keygate's alerts and checks their signatures the way
// a receiver should.
type webhook struct {
	url    string
	secret string
	mu     sync.Mutex
	alerts []alert
	bad    int // requests whose signature did not verify
}

type alert struct {
	Type    string            `json:"type"`
	UserID  string            `json:"user_id"`
	Details map[string]string `json:"details"`
}

func newWebhook(t *testing.T) *webhook {
	h := &webhook{secret: "a-test-alert-secret-of-enough-length"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.verify(r.Header.Get("Keygate-Signature"), body) {
			h.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var a alert
		_ = json.Unmarshal(body, &a)
		h.alerts = append(h.alerts, a)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// verify checks "t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>">".
func (h *webhook) verify(header string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	mac := hmac.New(sha256.New, []byte(h.secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	return ts != "" && hmac.Equal([]byte(sig), []byte(want))
}

// all is every alert that arrived with a good signature.
func (h *webhook) all() []alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.alerts)
}

// waitFor waits for an alert of this type (the server delivers every few
// seconds) and returns it.
func (h *webhook) waitFor(t *testing.T, typ string) alert {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, a := range h.alerts {
			if a.Type == typ {
				h.mu.Unlock()
				return a
			}
		}
		bad := h.bad
		h.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d alerts arrived with a bad signature", bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s alert arrived", typ)
	return alert{}
}
