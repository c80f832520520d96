package oidc

import (
	"encoding/json"
	"net/http"
)

// discoveryJSON is built once: the document never changes while serving.
func discoveryJSON(issuer string) ([]byte, error) {
	doc := map[string]any{
		"issuer":                                        issuer,
		"authorization_endpoint":                        issuer + "/oauth2/authorize",
		"token_endpoint":                                issuer + "/oauth2/token",
		"userinfo_endpoint":                             issuer + "/oauth2/userinfo",
		"jwks_uri":                                      issuer + "/oauth2/jwks",
		"end_session_endpoint":                          issuer + "/oauth2/logout",
		"introspection_endpoint":                        issuer + "/oauth2/introspect",
		"revocation_endpoint":                           issuer + "/oauth2/revoke",
		"pushed_authorization_request_endpoint":         issuer + "/oauth2/par",
		"scopes_supported":                              []string{"openid", "email", "profile", "groups", "offline_access"},
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         idTokenAlgs,
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":              []string{"S256"},
		"acr_values_supported":                          []string{"mfa", "phr", "phrh"},
		"prompt_values_supported":                       []string{"none", "login"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
			"acr", "amr", "sid", "email", "email_verified", "name", "preferred_username", "groups"},
		"claims_parameter_supported":                     false,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"frontchannel_logout_supported":                  false,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"authorization_response_iss_parameter_supported": false,
	}
	return json.Marshal(doc)
}

func (h *Handler) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	writeCachedJSON(w, h.discovery, "public, max-age=3600")
}

// serveJWKS serves the keyring's pre-marshalled set; a short cache lets
// clients pick up a rotation within minutes.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	writeCachedJSON(w, h.d.Keys.Current().JWKSJSON(), "public, max-age=300")
}

func writeCachedJSON(w http.ResponseWriter, body []byte, cache string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", cache)
	hd.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(body)
}
