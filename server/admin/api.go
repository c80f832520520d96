package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The JSON API shares the console's guard, permissions and manage calls;
// its resources are in api_users.go, api_groups.go and api_apps.go. Their
// JSON shapes name what the console may show and nothing else: no
// password hash, secret hash, seed, public key or session cookie ever
// leaves through them.

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// decode reads a JSON body into v, strictly: one object, known fields.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apiErr(http.StatusUnsupportedMediaType, "invalid_request", "Send a JSON body (Content-Type: application/json).")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return apiErr(http.StatusBadRequest, "invalid_request", "The request needs a JSON body.")
		}
		return apiErr(http.StatusBadRequest, "invalid_request", "The body is not valid JSON for this request: "+err.Error())
	}
	if dec.More() {
		return apiErr(http.StatusBadRequest, "invalid_request", "The body must be a single JSON object.")
	}
	return nil
}

// ---- audit ----

// apiAudit streams matching events, newest first, as JSON Lines; limit
// (optional) caps how many, before_seq pages on.
func (h *Handler) apiAudit(w http.ResponseWriter, r *http.Request, p *principal) error {
	aq, err := h.parseAuditQuery(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return apiErr(http.StatusBadRequest, "invalid_request", "limit is a positive number.")
		}
	}
	return h.exportAudit(w, r, p, aq, limit, false)
}
