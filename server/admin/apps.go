package admin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
)

// AppsData is the app list and the registration form.
type AppsData struct {
	Base
	Apps []AppRow
	Form AppForm
}

// AppRow is one app in the list.
type AppRow struct {
	ID, Name, Grants, MinACR, Created string
	Public, Disabled, AdminAPI        bool
	IDTokenAlg                        string // RS256 or ES256
	// Groups are the names of the groups allowed to use the app; none
	// means every enrolled user.
	Groups []string
}

// AppForm is the register and edit form.
type AppForm struct {
	Name, RedirectURIs, PostLogoutURIs, Audience    string
	GrantCode, GrantRefresh, GrantClientCredentials bool
	Public, AdminAPI, DenyRisky, JWT                bool
	MinACR                                          string
	MaxAuthAge, AccessTokenTTL, RefreshTokenTTL     string
	BackchannelLogoutURI                            string
	ACRs                                            []Option
	// IDTokenAlgs are the ID token signing algorithms, the app's selected.
	IDTokenAlgs []Option
	// Groups are every group, the app's allowed ones selected.
	Groups []Option
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
	Selected     bool
}

// idTokenAlgOptions are the ID token algorithms; selected is the app's.
func idTokenAlgOptions(selected string) []Option {
	return []Option{
		{"RS256", "RS256: RSA, which every OpenID Connect library accepts (the default)", selected != "ES256"},
		{"ES256", "ES256: ECDSA P-256, over ten times cheaper for keygate to sign; the app's library must accept it", selected == "ES256"},
	}
}

func acrOptions(selected string) []Option {
	if selected == "" {
		selected = "mfa"
	}
	return []Option{
		{"mfa", "mfa: two factors (an authenticator app is enough)", selected == "mfa"},
		{"phr", "phr: phishing-resistant (a security key or passkey)", selected == "phr"},
		{"phrh", "phrh: phishing-resistant and hardware-bound", selected == "phrh"},
	}
}

// appRow describes c; names maps group ids to names (nil: leave the
// groups out).
func appRow(c storage.Client, names map[string]string) AppRow {
	row := AppRow{ID: c.ID, Name: c.Name, Grants: strings.Join(c.GrantTypes, ", "), MinACR: c.MinACR,
		Created: when(c.CreatedAt), Public: c.Public, Disabled: c.Disabled, AdminAPI: hasAdminAPI(c),
		IDTokenAlg: c.IDTokenSignedResponseAlg()}
	if names != nil {
		row.Groups = manage.GroupNames(c.AllowedGroups, names)
	}
	return row
}

// groupChoices are the app form's group checkboxes.
func groupChoices(groups []storage.Group, allowed []string) []Option {
	var out []Option
	for _, g := range groups {
		out = append(out, Option{Value: g.Name, Label: g.Name, Selected: slices.Contains(allowed, g.ID)})
	}
	return out
}

func formOf(c storage.Client, groups []storage.Group) AppForm {
	return AppForm{Name: c.Name, RedirectURIs: strings.Join(c.RedirectURIs, "\n"),
		PostLogoutURIs:         strings.Join(c.PostLogoutRedirectURIs, "\n"),
		Audience:               strings.Join(c.Audience, "\n"),
		GrantCode:              slices.Contains(c.GrantTypes, "authorization_code"),
		GrantRefresh:           slices.Contains(c.GrantTypes, "refresh_token"),
		GrantClientCredentials: slices.Contains(c.GrantTypes, "client_credentials"),
		Public:                 c.Public, AdminAPI: hasAdminAPI(c), DenyRisky: c.DenyRisky, JWT: c.TokenFormat == "jwt", MinACR: c.MinACR,
		MaxAuthAge: durationField(c.MaxAuthAge), AccessTokenTTL: durationField(c.AccessTokenTTL),
		RefreshTokenTTL: durationField(c.RefreshTokenTTL), BackchannelLogoutURI: c.BackchannelLogoutURI,
		ACRs: acrOptions(c.MinACR), IDTokenAlgs: idTokenAlgOptions(c.IDTokenSignedResponseAlg()),
		Groups: groupChoices(groups, c.AllowedGroups)}
}

// specFromForm reads the register or edit form.
func specFromForm(r *http.Request) clientSpec {
	if err := r.ParseForm(); err != nil {
		return clientSpec{}
	}
	f := r.PostForm
	var grants []string
	for _, g := range f["grant"] {
		if !slices.Contains(grants, g) {
			grants = append(grants, g)
		}
	}
	return clientSpec{Name: f.Get("name"), RedirectURIs: lines(f.Get("redirect_uris")),
		PostLogoutRedirectURIs: lines(f.Get("post_logout_redirect_uris")), GrantTypes: grants,
		Public: f.Get("public") != "", MinACR: f.Get("min_acr"), MaxAuthAge: f.Get("max_auth_age"),
		AccessTokenTTL: f.Get("access_token_ttl"), RefreshTokenTTL: f.Get("refresh_token_ttl"),
		BackchannelLogoutURI: f.Get("backchannel_logout_uri"), AdminAPI: f.Get("admin_api") != "",
		TokenFormat: tokenFormat(f.Get("jwt") != ""), IDTokenAlg: f.Get("id_token_alg"), DenyRisky: f.Get("deny_risky") != "",
		Audience: lines(f.Get("audience")), AllowedGroups: nonNil(f["allowed_group"])}
}

func (h *Handler) appsPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	clients, err := h.d.Store.ListClients(r.Context())
	if err != nil {
		return err
	}
	names, groups, err := manage.GroupIndex(r.Context(), h.d.Store)
	if err != nil {
		return err
	}
	data := AppsData{Base: h.base(r, p, "apps"),
		Form: AppForm{GrantCode: true, GrantRefresh: true, MinACR: "mfa", ACRs: acrOptions("mfa"),
			IDTokenAlgs: idTokenAlgOptions("RS256"), Groups: groupChoices(groups, nil)}}
	for _, c := range clients {
		data.Apps = append(data.Apps, appRow(c, names))
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminApps, "Apps", data)
}

// SecretData shows a client secret, once.
type SecretData struct {
	Base
	ClientID, Name, Secret string
	Rotated                bool
	OldUntil               string
}

func (h *Handler) registerAppPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	spec, err := specFromForm(r).spec()
	if err != nil {
		return err
	}
	nc, err := h.manager(r, p).RegisterClient(r.Context(), spec)
	if err != nil {
		return err
	}
	if nc.Secret == "" {
		http.Redirect(w, r, "/admin/apps/"+url.PathEscape(nc.Client.ID), http.StatusSeeOther)
		return nil
	}
	// Shown in this response only; keygate keeps a keyed hash.
	return h.render(w, r, p, http.StatusOK, render.PageAdminSecret, "App registered", SecretData{Base: h.base(r, p, "apps"),
		ClientID: nc.Client.ID, Name: nc.Client.Name, Secret: nc.Secret})
}

// AppData is one app's page.
type AppData struct {
	Base
	App             AppRow
	Form            AppForm
	RedirectURIs    []string
	HasSecret       bool
	PreviousExpires string
	Overlaps        []Option
}

func (h *Handler) appPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	c, err := h.getClient(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	names, groups, err := manage.GroupIndex(r.Context(), h.d.Store)
	if err != nil {
		return err
	}
	data := AppData{Base: h.base(r, p, "apps"), App: appRow(c, names), Form: formOf(c, groups), RedirectURIs: c.RedirectURIs,
		HasSecret: !c.Public}
	if len(c.PreviousSecretHash) > 0 && c.PreviousSecretExpiresAt.After(h.d.Now()) {
		data.PreviousExpires = when(c.PreviousSecretExpiresAt)
	}
	for i, o := range overlaps {
		data.Overlaps = append(data.Overlaps, Option{Value: o.Value, Label: o.Label, Selected: i == 0})
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminApp, c.Name, data)
}

func backToApp(w http.ResponseWriter, r *http.Request, id, notice string) error {
	http.Redirect(w, r, withNotice("/admin/apps/"+url.PathEscape(id), notice), http.StatusSeeOther)
	return nil
}

func (h *Handler) updateAppPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	// The form always sends the allowed groups: none ticked opens the app
	// to every enrolled user.
	spec, err := specFromForm(r).spec()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.manager(r, p).UpdateClient(r.Context(), id, spec); err != nil {
		return err
	}
	return backToApp(w, r, id, "app-updated")
}

func (h *Handler) rotateSecretPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	overlap, ok := duration(r.PostFormValue("overlap"))
	if !ok {
		return httpx.Errorf(http.StatusBadRequest, "Choose how long the old secret keeps working.", nil)
	}
	c, err := h.getClient(r.Context(), id)
	if err != nil {
		return err
	}
	secret, err := h.manager(r, p).RotateClientSecret(r.Context(), id, overlap)
	if err != nil {
		return err
	}
	data := SecretData{Base: h.base(r, p, "apps"), ClientID: id, Name: c.Name, Secret: secret, Rotated: true}
	if overlap > 0 {
		data.OldUntil = when(h.d.Now().Add(overlap))
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminSecret, "New secret", data)
}

func (h *Handler) disableAppPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.manager(r, p).SetClientDisabled(r.Context(), id, true); err != nil {
		return err
	}
	return backToApp(w, r, id, "app-disabled")
}

func (h *Handler) enableAppPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := h.manager(r, p).SetClientDisabled(r.Context(), id, false); err != nil {
		return err
	}
	return backToApp(w, r, id, "app-enabled")
}

func (h *Handler) deleteAppPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	if err := h.manager(r, p).DeleteClient(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, withNotice("/admin/apps", "app-deleted"), http.StatusSeeOther)
	return nil
}

// tokenFormat is the form's access-token format checkbox as manage names it.
func tokenFormat(jwt bool) string {
	if jwt {
		return "jwt"
	}
	return "opaque"
}
