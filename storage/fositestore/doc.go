// Package fositestore is fosite's storage, built on storage.Store: one token
// table keyed by kind and signature, each row holding the serialised fosite
// request (credentials stripped from its form). It decides the fosite-facing
// semantics: a used authorization code answers ErrInvalidatedAuthorizeCode so
// fosite revokes what it issued; a refresh token rotated longer ago than the
// grace window answers ErrInactiveToken so fosite revokes the whole family —
// and OnRefreshReuse lets the caller audit it; a revoked one that was never
// used is only not found.
//
// fosite reads a code or a refresh token before it opens the transaction
// that writes the new tokens, so a kill action (a suspension, a sign-out, a
// disabled app, a removed group member) can commit in between. The writes
// check again inside that transaction (grant.go): the record is still
// active, and LiveGrant — the app enabled, its secret still the one that
// authenticated, the user there, not suspended and in a group the app
// allows. A grant that ended answers ErrGrantEnded.
package fositestore
