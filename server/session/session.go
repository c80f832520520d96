package session

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/sessions"

	"github.com/keygate/keygate/server/httpx"
)

// Keys of the values a session holds.
const (
	keyUserID   = "uid"
	keyACR      = "acr"
	keyAMR      = "amr"
	keyAuthTime = "auth_time"
	keyCSRF     = "csrf"
	keySID      = "sid"
	keyCreated  = "created"
	keyEnroll   = "enroll_uid"
	keyEnrollLn = "enroll_link"
	keyDevice   = "device"
)

// Auth is what the browser's sign-in proved, and when, and on which
// device (the device cookie's id at sign-in).
type Auth struct {
	UserID   string
	ACR      string
	AMR      []string
	AuthTime time.Time
	DeviceID string
}

// Session is a typed view of a browser session. Handlers change it and call
// Save before writing the response.
type Session struct {
	raw   *sessions.Session
	store *Store
	r     *http.Request
}

// Load returns the request's session (a fresh one if it has none).
func (s *Store) Load(r *http.Request) (*Session, error) {
	raw, err := s.Get(r, s.cfg.CookieName)
	if err != nil {
		return nil, err
	}
	return &Session{raw: raw, store: s, r: r}, nil
}

// LoadForm is Load for a form post: the session, or ErrCSRF when the
// form's csrf_token is not the session's.
func (s *Store) LoadForm(r *http.Request) (*Session, error) {
	sess, err := s.Load(r)
	if err != nil {
		return nil, err
	}
	if !sess.ValidCSRF(r.PostFormValue("csrf_token")) {
		return nil, ErrCSRF
	}
	return sess, nil
}

// Auth returns the signed-in user, or a zero Auth.
func (x *Session) Auth() Auth {
	v := x.raw.Values
	a := Auth{}
	a.UserID, _ = v[keyUserID].(string)
	if a.UserID == "" {
		return Auth{}
	}
	a.ACR, _ = v[keyACR].(string)
	a.AMR, _ = v[keyAMR].([]string)
	if t, ok := v[keyAuthTime].(int64); ok {
		a.AuthTime = time.Unix(t, 0).UTC()
	}
	a.DeviceID, _ = v[keyDevice].(string)
	return a
}

// SignIn records a completed sign-in and gives the session a new id, so an
// id planted in the browser before sign-in (session fixation) is worthless.
func (x *Session) SignIn(a Auth) error {
	if err := x.renew(); err != nil {
		return err
	}
	v := x.raw.Values
	v[keyUserID] = a.UserID
	v[keyACR] = a.ACR
	v[keyAMR] = slices.Clone(a.AMR)
	v[keyAuthTime] = a.AuthTime.Unix()
	v[keyDevice] = a.DeviceID
	delete(v, keyEnroll)
	delete(v, keyEnrollLn)
	return nil
}

// renew clears the id; Save issues a new one and deletes the row under
// the old one, in one transaction.
func (x *Session) renew() error {
	x.raw.ID = ""
	x.raw.IsNew = true
	// A CSRF token seen before sign-in (on a shared screen, in a planted
	// session) must not work for the signed-in session.
	delete(x.raw.Values, keyCSRF)
	delete(x.raw.Values, keySID)
	delete(x.raw.Values, keyCreated)
	return nil
}

// Enrolling is the user an enrolment link admitted, while they set up
// their factors.
func (x *Session) Enrolling() string {
	uid, _ := x.raw.Values[keyEnroll].(string)
	return uid
}

// EnrollmentLink is the hash of the link that admitted the enrolling user:
// the enrolment is complete, and the link used up, only when a factor is
// confirmed.
func (x *Session) EnrollmentLink() []byte {
	h, _ := x.raw.Values[keyEnrollLn].(string)
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil
	}
	return b
}

// SetEnrolling admits userID, through the link whose hash is linkHash, to
// set up their factors.
func (x *Session) SetEnrolling(userID string, linkHash []byte) error {
	if err := x.renew(); err != nil {
		return err
	}
	for _, k := range []string{keyUserID, keyACR, keyAMR, keyAuthTime} {
		delete(x.raw.Values, k)
	}
	x.raw.Values[keyEnroll] = userID
	x.raw.Values[keyEnrollLn] = hex.EncodeToString(linkHash)
	return nil
}

// CSRFToken returns the session's form token, creating it on first use.
func (x *Session) CSRFToken() string {
	t, _ := x.raw.Values[keyCSRF].(string)
	if t == "" {
		t = randomID()
		x.raw.Values[keyCSRF] = t
	}
	return t
}

// ValidCSRF compares a submitted token in constant time.
func (x *Session) ValidCSRF(submitted string) bool {
	t, _ := x.raw.Values[keyCSRF].(string)
	return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(submitted)) == 1
}

// IDHash binds server-side records (login flows) to this browser session.
// It gives a new session its id now, so the binding holds after Save.
func (x *Session) IDHash() []byte {
	if x.raw.ID == "" {
		x.raw.ID = randomID()
	}
	return hashID(x.raw.ID)
}

// SID is the public session id ID tokens carry (empty until saved).
func (x *Session) SID() string {
	sid, _ := x.raw.Values[keySID].(string)
	if sid == "" {
		sid = randomID()
		x.raw.Values[keySID] = sid
	}
	return sid
}

func (x *Session) Save(w http.ResponseWriter) error { return x.raw.Save(x.r, w) }

// SaveIn is Save with ctx, a transaction's, for a handler that writes the
// session together with what it records about it.
func (x *Session) SaveIn(ctx context.Context, w http.ResponseWriter) error {
	return x.store.Save(x.r.WithContext(ctx), w, x.raw)
}

// Destroy deletes the session row and the cookie.
func (x *Session) Destroy(w http.ResponseWriter) error {
	x.raw.Options.MaxAge = -1
	return x.raw.Save(x.r, w)
}

func clientIP(r *http.Request) string {
	if ip := httpx.ClientIPFrom(r.Context()); ip.IsValid() {
		return ip.String()
	}
	return ""
}
