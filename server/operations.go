package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/storage"
)

// operations serves what operators and orchestrators poll.
type operations struct {
	store   storage.Meta
	metrics *metrics.Metrics
}

func (o operations) Routes() []httpx.Route {
	return []httpx.Route{
		{Method: http.MethodGet, Pattern: "/healthz", Guard: httpx.GuardPublic, Handler: http.HandlerFunc(healthz)},
		{Method: http.MethodGet, Pattern: "/readyz", Guard: httpx.GuardPublic, Handler: http.HandlerFunc(o.readyz)},
		{Method: http.MethodGet, Pattern: "/metrics", Guard: httpx.GuardPublic, Handler: o.metrics.Handler()},
	}
}

// healthz says the process is serving.
func healthz(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says the database answers.
func (o operations) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := o.store.GetMeta(ctx, "issuer"); err != nil && !errors.Is(err, storage.ErrNotFound) {
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
