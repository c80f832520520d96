package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

// The apps (clients) of the JSON API.

type clientJSON struct {
	ID                      string     `json:"id"`
	Name                    string     `json:"name"`
	RedirectURIs            []string   `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string   `json:"post_logout_redirect_uris"`
	GrantTypes              []string   `json:"grant_types"`
	Scopes                  []string   `json:"scopes"`
	Audience                []string   `json:"audience"`
	Public                  bool       `json:"public"`
	MinACR                  string     `json:"min_acr"`
	MaxAuthAge              string     `json:"max_auth_age,omitempty"`
	AccessTokenTTL          string     `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL         string     `json:"refresh_token_ttl,omitempty"`
	BackchannelLogoutURI    string     `json:"backchannel_logout_uri,omitempty"`
	AdminAPI                bool       `json:"admin_api"`
	TokenFormat             string     `json:"token_format"`
	IDTokenAlg              string     `json:"id_token_signed_response_alg"`
	DenyRisky               bool       `json:"deny_risky"`
	AllowedGroups           []string   `json:"allowed_groups"` // names; none: every enrolled user
	Disabled                bool       `json:"disabled"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// toClientJSON describes c; names maps group ids to names.
func (h *Handler) toClientJSON(c storage.Client, names map[string]string) clientJSON {
	out := clientJSON{AllowedGroups: manage.GroupNames(c.AllowedGroups, names), ID: c.ID, Name: c.Name, RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		GrantTypes: nonNil(c.GrantTypes), Scopes: nonNil(c.Scopes), Audience: nonNil(c.Audience), Public: c.Public, MinACR: c.MinACR,
		MaxAuthAge: durationField(c.MaxAuthAge), AccessTokenTTL: durationField(c.AccessTokenTTL),
		RefreshTokenTTL: durationField(c.RefreshTokenTTL), BackchannelLogoutURI: c.BackchannelLogoutURI,
		AdminAPI: hasAdminAPI(c), TokenFormat: c.TokenFormat, IDTokenAlg: c.IDTokenSignedResponseAlg(), DenyRisky: c.DenyRisky, Disabled: c.Disabled, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	if len(c.PreviousSecretHash) > 0 && c.PreviousSecretExpiresAt.After(h.d.Now()) {
		out.PreviousSecretExpiresAt = optTime(c.PreviousSecretExpiresAt)
	}
	return out
}

// clientJSON describes c with its groups' names.
func (h *Handler) clientJSON(ctx context.Context, c storage.Client) (clientJSON, error) {
	names, _, err := manage.GroupIndex(ctx, h.d.Store)
	return h.toClientJSON(c, names), err
}

// clientSpecJSON is the body of POST and PUT clients. Durations are Go
// durations ("15m", "8h") or whole days ("7d").
type clientSpecJSON struct {
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	Public                 bool     `json:"public"`
	MinACR                 string   `json:"min_acr"`
	MaxAuthAge             string   `json:"max_auth_age"`
	AccessTokenTTL         string   `json:"access_token_ttl"`
	RefreshTokenTTL        string   `json:"refresh_token_ttl"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri"`
	AdminAPI               bool     `json:"admin_api"`
	TokenFormat            string   `json:"token_format"`
	IDTokenAlg             string   `json:"id_token_signed_response_alg"` // RS256 or ES256; left out: RS256 when new, unchanged on PUT
	DenyRisky              bool     `json:"deny_risky"`
	Audience               []string `json:"audience"`
	// AllowedGroups are group names. Left out of a PUT, the app keeps
	// its groups; [] opens it to every enrolled user.
	AllowedGroups *[]string `json:"allowed_groups"`
}

func (s clientSpecJSON) spec() clientSpec {
	var groups []string
	if s.AllowedGroups != nil {
		groups = nonNil(*s.AllowedGroups)
	}
	return clientSpec{AllowedGroups: groups, Name: s.Name, RedirectURIs: s.RedirectURIs, PostLogoutRedirectURIs: s.PostLogoutRedirectURIs,
		GrantTypes: s.GrantTypes, Public: s.Public, MinACR: s.MinACR, MaxAuthAge: s.MaxAuthAge,
		AccessTokenTTL: s.AccessTokenTTL, RefreshTokenTTL: s.RefreshTokenTTL,
		BackchannelLogoutURI: s.BackchannelLogoutURI, AdminAPI: s.AdminAPI,
		TokenFormat: s.TokenFormat, IDTokenAlg: s.IDTokenAlg, DenyRisky: s.DenyRisky, Audience: s.Audience}
}

func (h *Handler) apiListClients(w http.ResponseWriter, r *http.Request, _ *principal) error {
	clients, err := h.d.Store.ListClients(r.Context())
	if err != nil {
		return err
	}
	names, _, err := manage.GroupIndex(r.Context(), h.d.Store)
	if err != nil {
		return err
	}
	out := []clientJSON{}
	for _, c := range clients {
		out = append(out, h.toClientJSON(c, names))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"clients": out})
	return nil
}

func (h *Handler) apiRegisterClient(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in clientSpecJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	spec, err := in.spec().spec()
	if err != nil {
		return err
	}
	nc, err := h.manager(r, p).RegisterClient(r.Context(), spec)
	if err != nil {
		return err
	}
	j, err := h.clientJSON(r.Context(), nc.Client)
	if err != nil {
		return err
	}
	out := map[string]any{"client": j}
	if nc.Secret != "" {
		out["client_secret"] = nc.Secret // this response only
	}
	httpx.WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) apiGetClient(w http.ResponseWriter, r *http.Request, _ *principal) error {
	return h.writeClient(w, r, r.PathValue("id"))
}

func (h *Handler) writeClient(w http.ResponseWriter, r *http.Request, id string) error {
	c, err := h.getClient(r.Context(), id)
	if err != nil {
		return err
	}
	j, err := h.clientJSON(r.Context(), c)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, j)
	return nil
}

func (h *Handler) apiUpdateClient(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in clientSpecJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	spec, err := in.spec().spec()
	if err != nil {
		return err
	}
	// Allowed groups left out (nil) stay as they are, so a client of the
	// API that does not know the field cannot open an app to everyone.
	id := r.PathValue("id")
	if err := h.manager(r, p).UpdateClient(r.Context(), id, spec); err != nil {
		return err
	}
	return h.writeClient(w, r, id)
}

func (h *Handler) apiDeleteClient(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := h.manager(r, p).DeleteClient(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) apiRotateSecret(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Overlap string `json:"overlap"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	overlap, ok := duration(in.Overlap)
	if !ok {
		return apiErr(http.StatusBadRequest, "invalid_request", `overlap is a duration such as "0", "1h", "24h" or "7d".`)
	}
	id := r.PathValue("id")
	secret, err := h.manager(r, p).RotateClientSecret(r.Context(), id, overlap)
	if err != nil {
		return err
	}
	out := map[string]any{"client_id": id, "client_secret": secret}
	if overlap > 0 {
		out["previous_secret_expires_at"] = h.d.Now().Add(overlap).UTC()
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) apiDisableClient(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.manager(r, p).SetClientDisabled(r.Context(), id, true); err != nil {
		return err
	}
	return h.writeClient(w, r, id)
}

func (h *Handler) apiEnableClient(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.manager(r, p).SetClientDisabled(r.Context(), id, false); err != nil {
		return err
	}
	return h.writeClient(w, r, id)
}
