package sqlite

import (
	"context"
	"time"

	"github.com/keygate/keygate/storage"
)

const clientColumns = `id, name, secret_hash, redirect_uris, post_logout_redirect_uris,
	grant_types, response_types, scopes, audience, public, min_acr, max_auth_age,
	token_format, backchannel_logout_uri, disabled, previous_secret_hash,
	previous_secret_expires_at, access_token_ttl, refresh_token_ttl, deny_risky, allowed_groups, created_at, updated_at,
	id_token_alg`

func scanClient(sc rowScanner) (storage.Client, error) {
	var c storage.Client
	var maxAuthAge, accessTTL, refreshTTL int64
	err := sc.Scan(&c.ID, &c.Name, &c.SecretHash,
		listCol{&c.RedirectURIs}, listCol{&c.PostLogoutRedirectURIs},
		listCol{&c.GrantTypes}, listCol{&c.ResponseTypes}, listCol{&c.Scopes}, listCol{&c.Audience},
		&c.Public, &c.MinACR, &maxAuthAge, &c.TokenFormat, &c.BackchannelLogoutURI, &c.Disabled,
		&c.PreviousSecretHash, timeCol{&c.PreviousSecretExpiresAt}, &accessTTL, &refreshTTL,
		&c.DenyRisky, listCol{&c.AllowedGroups}, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, &c.IDTokenAlg)
	c.MaxAuthAge = time.Duration(maxAuthAge)
	c.AccessTokenTTL = time.Duration(accessTTL)
	c.RefreshTokenTTL = time.Duration(refreshTTL)
	return c, err
}

// clientArgs are c's values in clientColumns order, id last so the same
// list serves INSERT (with id moved) and UPDATE … WHERE id = ?. Durations
// are stored in nanoseconds (time.Duration's own unit), as the schema's
// conventions say.
func clientArgs(c storage.Client) []any {
	return []any{c.Name, c.SecretHash,
		listJSON(c.RedirectURIs), listJSON(c.PostLogoutRedirectURIs),
		listJSON(c.GrantTypes), listJSON(c.ResponseTypes), listJSON(c.Scopes), listJSON(c.Audience),
		c.Public, c.MinACR, int64(c.MaxAuthAge), c.TokenFormat, c.BackchannelLogoutURI, c.Disabled,
		c.PreviousSecretHash, micros(c.PreviousSecretExpiresAt),
		int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL), c.DenyRisky, listJSON(c.AllowedGroups),
		micros(c.CreatedAt), micros(c.UpdatedAt), c.IDTokenAlg, c.ID}
}

func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	_, err := s.w(ctx).ExecContext(ctx, `
		INSERT INTO client (name, secret_hash, redirect_uris, post_logout_redirect_uris,
			grant_types, response_types, scopes, audience, public, min_acr, max_auth_age,
			token_format, backchannel_logout_uri, disabled, previous_secret_hash,
			previous_secret_expires_at, access_token_ttl, refresh_token_ttl, deny_risky,
			allowed_groups, created_at, updated_at, id_token_alg, id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		clientArgs(c)...)
	return wrapErr("create client", err)
}

// clientCacheTTL bounds how stale a cached client may be. Changes made
// through this Store drop the entry when they commit; a change made by
// another process (the CLI) is seen within this time. What must hold at
// once does not rely on the cache: writes that issue tokens re-read the
// client in their transaction, and disabling an app revokes its tokens.
const clientCacheTTL = time.Second

// GetClient runs on every token request (fosite re-reads the client of each
// stored token), so it is one primary-key lookup on a cached statement.
// Reads outside a transaction may be answered from a cache at most
// clientCacheTTL old; inside one they always read the row.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	read := func() (storage.Client, error) {
		c, err := scanClient(s.r(ctx).QueryRowContext(ctx,
			`SELECT `+clientColumns+` FROM client WHERE id = ?`, id))
		return c, wrapErr("get client", err)
	}
	if s.txFrom(ctx) != nil {
		return read()
	}
	return s.clients.Read(id, time.Now(), read)
}

func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.r(ctx).QueryContext(ctx, `SELECT `+clientColumns+` FROM client ORDER BY id`)
	if err != nil {
		return nil, wrapErr("list clients", err)
	}
	defer rows.Close()
	var cs []storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrapErr("list clients", err)
		}
		cs = append(cs, c)
	}
	return cs, wrapErr("list clients", rows.Err())
}

// UpdateClient loads, applies fn and writes in one write transaction; see
// UpdateUser for why fn runs only once.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(c *storage.Client) error) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		c, err := s.GetClient(ctx, id)
		if err != nil {
			return wrapErr("update client", err)
		}
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = id // the row's identity; a change by fn is ignored
		_, err = s.w(ctx).ExecContext(ctx, `
			UPDATE client SET name = ?, secret_hash = ?, redirect_uris = ?,
				post_logout_redirect_uris = ?, grant_types = ?, response_types = ?,
				scopes = ?, audience = ?, public = ?, min_acr = ?, max_auth_age = ?,
				token_format = ?, backchannel_logout_uri = ?, disabled = ?,
				previous_secret_hash = ?, previous_secret_expires_at = ?,
				access_token_ttl = ?, refresh_token_ttl = ?, deny_risky = ?,
				allowed_groups = ?, created_at = ?, updated_at = ?, id_token_alg = ?
			WHERE id = ?`,
			clientArgs(c)...)
		s.invalidateClient(ctx, id)
		return wrapErr("update client", err)
	})
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res, err := s.w(ctx).ExecContext(ctx, `DELETE FROM client WHERE id = ?`, id)
	s.invalidateClient(ctx, id)
	return affected("delete client", res, err)
}

// invalidateClient drops the cached client once the write is visible to
// other readers: after the statement that made it, or after the commit of
// the transaction it ran in. The cache's generation keeps a read that
// began before then from storing the old row afterwards.
func (s *Store) invalidateClient(ctx context.Context, id string) {
	s.afterTx(ctx, func() { s.clients.Invalidate(id) })
}
