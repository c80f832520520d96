package fositestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fstorage "github.com/ory/fosite/storage"

	"github.com/keygate/keygate/storage"
)

// Every fosite storage interface the provider composes; compose discovers a
// missing method only at run time, the compiler does it here.
var (
	_ fosite.ClientManager               = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
	_ fosite.PARStorage                  = (*Store)(nil)
	_ fstorage.Transactional             = (*Store)(nil)
)

// Options tune the adapter.
type Options struct {
	// RefreshGrace is how long a rotated refresh token is still accepted, so
	// that two concurrent refreshes by one client both succeed. Past it, a
	// reuse revokes the whole token family.
	RefreshGrace time.Duration
	// NewSession makes an empty session of the provider's type (for PAR).
	NewSession func() fosite.Session
	// OnRefreshReuse is told when a refresh token is presented to the
	// refresh grant (a context from WithRefreshGrant) after it was rotated
	// past the grace window: the token-theft signal. Reading such a token
	// anywhere else (introspection, revocation) is no such signal.
	OnRefreshReuse func(ctx context.Context, rec storage.TokenRecord)
	// OnRefresh may bring a refresh grant's session up to date before new
	// tokens are made from it (the user's groups of now, say).
	OnRefresh func(ctx context.Context, rec storage.TokenRecord, s fosite.Session) error
	Now       func() time.Time
}

// Store implements fosite's storage interfaces over storage.Store.
type Store struct {
	db   storage.Store
	opts Options
}

func New(db storage.Store, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{db: db, opts: opts}
}

func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.db.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		// A database that cannot be reached stays storage.ErrUnavailable
		// down the chain, which fosite wraps as invalid_client; the
		// endpoints answer it 503.
		return nil, err
	}
	if c.Disabled {
		return nil, fosite.ErrNotFound
	}
	return newClient(c, s.opts.Now()), nil
}

// ClientAssertionJWTValid and SetClientAssertionJWT serve private_key_jwt,
// which fosite only reaches for OpenIDConnectClient clients; ours are not
// (see Client), so an assertion is refused before a jti is ever checked.
func (s *Store) ClientAssertionJWTValid(context.Context, string) error { return nil }

func (s *Store) SetClientAssertionJWT(context.Context, string, time.Time) error { return nil }

// create stores r under (kind, signature).
func (s *Store) create(ctx context.Context, kind, signature string, r fosite.Requester, tokenType fosite.TokenType) error {
	raw, err := encodeRequest(r)
	if err != nil {
		return err
	}
	rec := storage.TokenRecord{
		Kind:        kind,
		Signature:   signature,
		RequestID:   r.GetID(),
		ClientID:    r.GetClient().GetID(),
		Active:      true,
		Request:     raw,
		RequestedAt: r.GetRequestedAt(),
		ExpiresAt:   s.expiry(r, tokenType),
	}
	if sess := r.GetSession(); sess != nil {
		rec.Subject = sess.GetSubject()
		if sid, ok := sess.(interface{ SessionID() string }); ok {
			rec.SID = sid.SessionID()
		}
	}
	if d := deferredFrom(ctx); d != nil {
		d.Records = append(d.Records, rec)
		return nil
	}
	return s.db.CreateToken(ctx, rec)
}

// expiry is when the record may be garbage-collected. Records without a
// lifespan of their own (none are configured so) fall back to 30 days.
func (s *Store) expiry(r fosite.Requester, t fosite.TokenType) time.Time {
	if sess := r.GetSession(); sess != nil {
		if exp := sess.GetExpiresAt(t); !exp.IsZero() {
			return exp
		}
	}
	return s.opts.Now().Add(30 * 24 * time.Hour)
}

// get loads a record and its request; inactive records are returned with
// the request so callers can choose the fosite error.
func (s *Store) get(ctx context.Context, kind, signature string, session fosite.Session) (storage.TokenRecord, *fosite.Request, error) {
	rec, err := s.db.GetToken(ctx, kind, signature)
	if errors.Is(err, storage.ErrNotFound) {
		return rec, nil, fosite.ErrNotFound
	}
	if err != nil {
		return rec, nil, err
	}
	req, _, err := s.decodeRequest(ctx, rec.Request, session)
	return rec, req, err
}

func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.create(ctx, storage.KindAuthorizeCode, code, r, fosite.AuthorizeCode)
}

// GetAuthorizeCodeSession returns ErrInvalidatedAuthorizeCode (with the
// request) for a used code, so fosite revokes the tokens it issued.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindAuthorizeCode, code, session)
	if err != nil {
		return nil, err
	}
	if !rec.Active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession runs in the transaction that issues the
// code's tokens: it refuses a code that was used or revoked since fosite
// read it, or whose grant ended (see ErrGrantEnded).
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	if _, err := s.liveRecord(ctx, storage.KindAuthorizeCode, code); err != nil {
		return err
	}
	return s.db.DeactivateToken(ctx, storage.KindAuthorizeCode, code)
}

func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.create(ctx, storage.KindAccessToken, signature, r, fosite.AccessToken)
}

func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindAccessToken, signature, session)
	if err != nil {
		return nil, err
	}
	if !rec.Active {
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

// DeleteAccessTokenSession deactivates rather than deletes, so the audit
// trail and family revocation still find the record.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.db.DeactivateToken(ctx, storage.KindAccessToken, signature)
}

func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	raw, err := encodeRequest(r)
	if err != nil {
		return err
	}
	rec := storage.TokenRecord{
		Kind:            storage.KindRefreshToken,
		Signature:       signature,
		RequestID:       r.GetID(),
		ClientID:        r.GetClient().GetID(),
		Active:          true,
		AccessSignature: accessSignature,
		Request:         raw,
		RequestedAt:     r.GetRequestedAt(),
		ExpiresAt:       s.expiry(r, fosite.RefreshToken),
	}
	if sess := r.GetSession(); sess != nil {
		rec.Subject = sess.GetSubject()
		if sid, ok := sess.(interface{ SessionID() string }); ok {
			rec.SID = sid.SessionID()
		}
	}
	return s.db.CreateToken(ctx, rec)
}

// GetRefreshTokenSession answers ErrInactiveToken for a token rotated
// longer than the grace window ago — a replay, the theft signal: fosite
// then revokes the family and OnRefreshReuse is told. A token that was
// revoked without being used (a sign-out, a suspension, a revocation) is
// only not found: its family is dead already, and presenting it once more
// is what an app does next, not an attack.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindRefreshToken, signature, session)
	if err != nil {
		return nil, err
	}
	switch {
	case s.rotatedPastGrace(rec):
		if s.opts.OnRefreshReuse != nil && ctx.Value(refreshGrantKey{}) != nil {
			s.opts.OnRefreshReuse(ctx, rec)
		}
		return req, fosite.ErrInactiveToken
	case !rec.Active:
		return nil, fosite.ErrNotFound
	}
	if s.opts.OnRefresh != nil && ctx.Value(refreshGrantKey{}) != nil {
		if err := s.opts.OnRefresh(ctx, rec, req.GetSession()); err != nil {
			return nil, err
		}
	}
	return req, nil
}

type refreshGrantKey struct{}

// WithRefreshGrant marks ctx as a refresh grant's: a reused refresh token
// presented under it is reported to OnRefreshReuse.
func WithRefreshGrant(ctx context.Context) context.Context {
	return context.WithValue(ctx, refreshGrantKey{}, true)
}

func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.db.DeactivateToken(ctx, storage.KindRefreshToken, signature)
}

// RotateRefreshToken runs in the transaction that issues the new tokens: it
// refuses a refresh token revoked or rotated past the grace window since
// fosite read it, or whose grant ended (see ErrGrantEnded). Then it marks
// the token rotated (first use only, so the grace window runs from the
// first refresh) and ends the access token issued with it.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	rec, err := s.liveRecord(ctx, storage.KindRefreshToken, signature)
	if err != nil {
		return err
	}
	if err := s.db.MarkRotated(ctx, storage.KindRefreshToken, signature, s.opts.Now()); err != nil {
		return err
	}
	if rec.AccessSignature == "" {
		return nil
	}
	err = s.db.DeactivateToken(ctx, storage.KindAccessToken, rec.AccessSignature)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.db.RevokeRequest(ctx, requestID, storage.KindRefreshToken)
}

func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.db.RevokeRequest(ctx, requestID, storage.KindAccessToken)
}

func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.create(ctx, storage.KindPKCE, signature, r, fosite.AuthorizeCode)
}

func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindPKCE, signature, session)
	if err != nil {
		return nil, err
	}
	if !rec.Active {
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return deleteOrDefer(ctx, func(ctx context.Context) error {
		return s.db.DeleteToken(ctx, storage.KindPKCE, signature)
	})
}

// fosite keys OpenID sessions by the authorization code itself, not its
// signature; we store a hash so the table holds no usable code.
func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.create(ctx, storage.KindOIDC, codeKey(code), r, fosite.AuthorizeCode)
}

func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	rec, req, err := s.get(ctx, storage.KindOIDC, codeKey(code), r.GetSession())
	if err != nil {
		return nil, err
	}
	if !rec.Active {
		return nil, fosite.ErrNotFound
	}
	return req, nil
}

func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	key := codeKey(code)
	return deleteOrDefer(ctx, func(ctx context.Context) error {
		return s.db.DeleteToken(ctx, storage.KindOIDC, key)
	})
}

func (s *Store) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return s.create(ctx, storage.KindPAR, codeKey(requestURI), r, fosite.PushedAuthorizeRequestContext)
}

func (s *Store) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	var session fosite.Session
	if s.opts.NewSession != nil {
		session = s.opts.NewSession()
	}
	rec, err := s.db.GetToken(ctx, storage.KindPAR, codeKey(requestURI))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !rec.Active) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	req, stored, err := s.decodeRequest(ctx, rec.Request, session)
	if err != nil {
		return nil, err
	}
	ar := &fosite.AuthorizeRequest{
		ResponseTypes:        stored.ResponseTypes,
		State:                stored.State,
		ResponseMode:         fosite.ResponseModeType(stored.ResponseMode),
		DefaultResponseMode:  fosite.ResponseModeType(stored.DefaultMode),
		HandledResponseTypes: fosite.Arguments{},
		Request:              *req,
	}
	if stored.RedirectURI != "" {
		if ar.RedirectURI, err = url.Parse(stored.RedirectURI); err != nil {
			return nil, err
		}
	}
	return ar, nil
}

func (s *Store) DeletePARSession(ctx context.Context, requestURI string) error {
	return s.db.DeleteToken(ctx, storage.KindPAR, codeKey(requestURI))
}

func (s *Store) BeginTX(ctx context.Context) (context.Context, error) { return s.db.BeginTx(ctx) }

// Commit first runs the context's BeforeCommit, if any, in the
// transaction: a failure there rolls everything back.
func (s *Store) Commit(ctx context.Context) error {
	b, _ := ctx.Value(beforeCommitKey{}).(*BeforeCommit)
	if b == nil || b.ran {
		return s.db.Commit(ctx)
	}
	b.ran = true
	if err := b.fn(ctx); err != nil {
		return errors.Join(err, s.db.Rollback(ctx))
	}
	err := s.db.Commit(ctx)
	b.committed = err == nil
	return err
}

func (s *Store) Rollback(ctx context.Context) error { return s.db.Rollback(ctx) }
