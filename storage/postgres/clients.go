package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
		&c.RedirectURIs, &c.PostLogoutRedirectURIs,
		&c.GrantTypes, &c.ResponseTypes, &c.Scopes, &c.Audience,
		&c.Public, &c.MinACR, &maxAuthAge, &c.TokenFormat, &c.BackchannelLogoutURI, &c.Disabled,
		&c.PreviousSecretHash, tsCol{&c.PreviousSecretExpiresAt}, &accessTTL, &refreshTTL,
		&c.DenyRisky, &c.AllowedGroups, tsCol{&c.CreatedAt}, tsCol{&c.UpdatedAt}, &c.IDTokenAlg)
	c.MaxAuthAge = time.Duration(maxAuthAge)
	c.AccessTokenTTL = time.Duration(accessTTL)
	c.RefreshTokenTTL = time.Duration(refreshTTL)
	nilEmpty(&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.GrantTypes, &c.ResponseTypes,
		&c.Scopes, &c.Audience, &c.AllowedGroups)
	return c, err
}

// clientArgs are c's values in clientColumns order ($1 is the id).
// Durations are stored in nanoseconds, time.Duration's own unit.
func clientArgs(c storage.Client) []any {
	return []any{c.ID, c.Name, c.SecretHash,
		list(c.RedirectURIs), list(c.PostLogoutRedirectURIs),
		list(c.GrantTypes), list(c.ResponseTypes), list(c.Scopes), list(c.Audience),
		c.Public, c.MinACR, int64(c.MaxAuthAge), c.TokenFormat, c.BackchannelLogoutURI, c.Disabled,
		c.PreviousSecretHash, ts(c.PreviousSecretExpiresAt),
		int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL), c.DenyRisky, list(c.AllowedGroups),
		ts(c.CreatedAt), ts(c.UpdatedAt), c.IDTokenAlg}
}

func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	tag, err := s.q(ctx).Exec(ctx, `
		INSERT INTO client (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
			$19, $20, $21, $22, $23, $24)
		ON CONFLICT DO NOTHING`,
		clientArgs(c)...)
	return inserted("create client", tag, err)
}

// clientCacheTTL bounds how long a cached client is served. A change is
// normally heard of at once (changes.go); this bounds what a change whose
// notice never arrived (a listener cut off without noticing, until its
// next ping) can leave behind. What must hold at once does not rely on
// the cache: writes that issue tokens re-read the client in their
// transaction, and disabling an app revokes its tokens.
const clientCacheTTL = 10 * time.Second

// GetClient runs on every token request (fosite re-reads the client of each
// stored token) and twice on every introspection. Outside a transaction
// it is answered from the cache, which follows changes from every replica
// (changes.go). Inside one it reads the row and locks it (FOR KEY SHARE),
// so a token issued in it is ordered with the app's disabling or secret
// rotation (see lock).
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if !storage.Storable(id) {
		return storage.Client{}, fmt.Errorf("get client: %w", storage.ErrNotFound)
	}
	read := func() (c storage.Client, err error) {
		err = s.keyLocked(ctx, lockKey("client", id), false, func(r pgx.Row) (err error) {
			c, err = scanClient(r)
			return err
		}, `SELECT `+clientColumns+` FROM client WHERE id = $1`+s.lock(ctx, forKeyShare), id)
		return c, wrapErr("get client", err)
	}
	if s.txFrom(ctx) != nil {
		return read()
	}
	return s.clients.Read(id, time.Now(), read)
}

func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.q(ctx).Query(ctx, `SELECT `+clientColumns+` FROM client ORDER BY id COLLATE "C"`)
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

// UpdateClient locks the row (FOR UPDATE) before fn sees it, as UpdateUser
// does: fn runs once, and transactions that read the client to issue a
// token wait for this one.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(c *storage.Client) error) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		var c storage.Client
		err := s.keyLocked(ctx, lockKey("client", id), true, func(r pgx.Row) (err error) {
			c, err = scanClient(r)
			return err
		}, `SELECT `+clientColumns+` FROM client WHERE id = $1 FOR UPDATE`, id)
		if err != nil {
			return wrapErr("update client", err)
		}
		if err := fn(&c); err != nil {
			return err
		}
		c.ID = id // the row's identity; a change by fn is ignored
		_, err = s.q(ctx).Exec(ctx, `
			UPDATE client SET name = $2, secret_hash = $3, redirect_uris = $4,
				post_logout_redirect_uris = $5, grant_types = $6, response_types = $7,
				scopes = $8, audience = $9, public = $10, min_acr = $11, max_auth_age = $12,
				token_format = $13, backchannel_logout_uri = $14, disabled = $15,
				previous_secret_hash = $16, previous_secret_expires_at = $17,
				access_token_ttl = $18, refresh_token_ttl = $19, deny_risky = $20,
				allowed_groups = $21, created_at = $22, updated_at = $23, id_token_alg = $24
			WHERE id = $1`+notify(25),
			append(clientArgs(c), s.notice(storage.TopicClients, id))...)
		s.invalidateClient(ctx, id)
		return wrapErr("update client", err)
	})
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	tag, err := s.q(ctx).Exec(ctx, `DELETE FROM client WHERE id = $1`+notify(2),
		id, s.notice(storage.TopicClients, id))
	s.invalidateClient(ctx, id)
	return affected("delete client", tag, err)
}

// invalidateClient drops the cached client once the write is visible to
// this store's other readers; other stores hear of it by the notice the
// write sent.
func (s *Store) invalidateClient(ctx context.Context, id string) {
	s.afterTx(ctx, func() { s.clients.Invalidate(id) })
}
