package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/storage"
)

func newClient(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register and list apps (OAuth clients)"}
	var spec manage.ClientSpec
	var asJSON bool
	add := &cobra.Command{
		Use:   "add --name N [--redirect-uri U ...]",
		Short: "Register an app; a confidential app's secret is printed once",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(manage.IDTokenAlgs, spec.IDTokenAlg) {
				return usagef("--id-token-alg must be %s, not %q", strings.Join(manage.IDTokenAlgs, " or "), spec.IDTokenAlg)
			}
			return withData(cmd.Context(), g, func(s settings, store storage.Store, _ *keys.Master, m *manage.Manager) error {
				nc, err := m.RegisterClient(cmd.Context(), spec)
				if err != nil {
					return err
				}
				c := nc.Client
				if asJSON {
					names, _, err := manage.GroupIndex(cmd.Context(), store)
					if err != nil {
						return err
					}
					out := clientJSON(c, names)
					if nc.Secret != "" {
						out["client_secret"] = nc.Secret
					}
					out["discovery_url"] = m.Issuer + "/.well-known/openid-configuration"
					return printJSON(out)
				}
				fmt.Printf("Registered %s\n  client_id:     %s\n", c.Name, c.ID)
				if nc.Secret != "" {
					fmt.Printf("  client_secret: %s\n  (shown only now; keygate stores only a hash)\n", nc.Secret)
				}
				fmt.Printf("  discovery:     %s/.well-known/openid-configuration\n", m.Issuer)
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&spec.Name, "name", "", "the app's name, shown to users (required)")
	f.StringArrayVar(&spec.RedirectURIs, "redirect-uri", nil, "an exact redirect URI (repeatable)")
	f.StringArrayVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "an exact post-logout redirect URI (repeatable)")
	f.BoolVar(&spec.Public, "public", false, "a public client (SPA, native app): no secret, PKCE only")
	f.StringArrayVar(&spec.GrantTypes, "grant", nil, "authorization_code, refresh_token, client_credentials (repeatable; default the first two)")
	f.StringVar(&spec.MinACR, "acr", "mfa", "minimum assurance: mfa, phr or phrh")
	f.DurationVar(&spec.MaxAuthAge, "max-auth-age", 0, "the oldest sign-in this app accepts, e.g. 1h (0: no limit)")
	f.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "where to POST an OIDC back-channel logout token when a session of a user ends")
	f.DurationVar(&spec.AccessTokenTTL, "access-token-ttl", 0, "access token lifetime for this app (0: the server's default)")
	f.DurationVar(&spec.RefreshTokenTTL, "refresh-token-ttl", 0, "refresh token lifetime for this app (0: the server's default)")
	f.StringVar(&spec.TokenFormat, "token-format", "opaque", "access token format: opaque (introspect it) or jwt (RFC 9068, verifiable against the JWKS)")
	f.StringVar(&spec.IDTokenAlg, "id-token-alg", "RS256", "ID token signing algorithm: RS256 (every OIDC library accepts it) or ES256 (far cheaper for keygate to sign; the app's library must accept it)")
	f.BoolVar(&spec.DenyRisky, "deny-risky", false, "refuse, rather than step up, a sign-in to this app that looks risky")
	f.StringArrayVar(&spec.AllowedGroups, "allowed-group", nil, "a group whose members may use this app (repeatable; none: every enrolled user)")
	f.StringArrayVar(&spec.Audience, "audience", nil, "an API (its client id) this app may ask tokens for; that API may then introspect them (repeatable)")
	f.BoolVar(&spec.AdminAPI, "admin-api", false, "let this app call the admin API with a client_credentials token of scope keygate:admin")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	_ = add.MarkFlagRequired("name")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List registered apps",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withData(cmd.Context(), g, func(_ settings, store storage.Store, _ *keys.Master, _ *manage.Manager) error {
				clients, err := store.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				names, _, err := manage.GroupIndex(cmd.Context(), store)
				if err != nil {
					return err
				}
				if listJSON {
					out := make([]map[string]any, 0, len(clients))
					for _, c := range clients {
						out = append(out, clientJSON(c, names))
					}
					return printJSON(out)
				}
				rows := make([][]string, 0, len(clients))
				for _, c := range clients {
					kind := "confidential"
					if c.Public {
						kind = "public"
					}
					rows = append(rows, []string{c.Name, c.ID, kind, strings.Join(c.GrantTypes, ","), c.MinACR,
						c.IDTokenSignedResponseAlg(), cmp.Or(strings.Join(manage.GroupNames(c.AllowedGroups, names), ","), "everyone")})
				}
				return printTable(os.Stdout, []string{"NAME", "CLIENT_ID", "TYPE", "GRANTS", "MIN_ACR", "ID_TOKEN_ALG", "ALLOWED"}, rows)
			})
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(add, list)
	return cmd
}

func clientJSON(c storage.Client, groupNames map[string]string) map[string]any {
	return map[string]any{
		"client_id": c.ID, "name": c.Name, "redirect_uris": nonNil(c.RedirectURIs),
		"post_logout_redirect_uris": nonNil(c.PostLogoutRedirectURIs), "grant_types": nonNil(c.GrantTypes),
		"public": c.Public, "acr": c.MinACR, "disabled": c.Disabled, "scopes": nonNil(c.Scopes),
		"max_auth_age": c.MaxAuthAge.String(), "backchannel_logout_uri": c.BackchannelLogoutURI, "deny_risky": c.DenyRisky,
		"token_format": c.TokenFormat, "id_token_signed_response_alg": c.IDTokenSignedResponseAlg(), "audience": nonNil(c.Audience), "allowed_groups": manage.GroupNames(c.AllowedGroups, groupNames),
		"created_at": c.CreatedAt.UTC().Format(time.RFC3339),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
