// Package session owns browser sessions: a gorilla/sessions Store backed by
// storage (the cookie is a random 256-bit id, stored only as its SHA-256),
// and a typed view over it — who signed in, with what acr/amr and when, the
// CSRF token of its forms, and the enrolment in progress.
//
// A session gets a new id whenever its privilege changes (sign-in, start of
// enrolment), so a fixed id is never worth planting. Revoking a session is
// deleting its row; the next request finds nothing.
package session
