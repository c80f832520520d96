// Package fositestore is fosite's storage, built on storage.Store: one token
// table keyed by kind and signature, each row holding the serialised fosite
// request (credentials stripped from its form). It decides the fosite-facing
// semantics: a used authorization code answers ErrInvalidatedAuthorizeCode so
// fosite revokes what it issued; a refresh token rotated longer ago than the
// grace window, or revoked, answers ErrInactiveToken so fosite revokes the
// whole family — and OnRefreshReuse lets the caller audit it.
package fositestore
