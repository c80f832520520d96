package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"time"

	"github.com/gorilla/sessions"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// ErrEnded is Save's answer for a session that was ended (a sign-out
// elsewhere, a suspension) while the request was in flight: the session is
// not written back and the user signs in again. The cookie is left as it
// is (see Store.Save): it names a session that is gone, which loads as a
// fresh one.
var ErrEnded = httpx.Errorf(http.StatusUnauthorized, "You were signed out. Sign in again to go on.", nil)

// Config sets the cookie and lifetime of browser sessions.
type Config struct {
	CookieName string
	Secure     bool          // Secure cookie flag; off only for plain-HTTP development
	Lifetime   time.Duration // absolute; a session never outlives it
	Now        func() time.Time
}

// Store is a gorilla/sessions Store whose cookie carries only a random id;
// the values live in storage under the id's SHA-256, so a database leak
// yields no usable cookie and deleting the row ends the session at once.
type Store struct {
	db  SessionDB
	cfg Config
}

var _ sessions.Store = (*Store)(nil)

// SessionDB is what the session store keeps its rows in.
type SessionDB interface {
	storage.BrowserSessions
	storage.Transactor
}

func NewStore(db SessionDB, cfg Config) *Store {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = 12 * time.Hour
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "keygate_session"
		if cfg.Secure {
			// __Host- binds the cookie to this origin: no Domain, Path=/, Secure.
			cfg.CookieName = "__Host-keygate_session"
		}
	}
	return &Store{db: db, cfg: cfg}
}

// Get returns the request's session, cached per request by gorilla's registry.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session named by the request's cookie, or starts an empty
// one. An unknown, expired or malformed cookie is not an error: the browser
// simply gets a fresh session.
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = s.options()
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) != 43 {
		return sess, nil
	}
	row, err := s.db.GetSession(r.Context(), hashID(c.Value), s.cfg.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, fmt.Errorf("load session: %w", err)
	}
	values, err := decodeValues(row.Data)
	if err != nil {
		return sess, nil
	}
	sess.Values = values
	sess.ID = c.Value
	sess.IsNew = false
	sess.Values[keySID] = row.SID
	sess.Values[keyCreated] = row.CreatedAt.Unix()
	sess.Values[loadedKey{}] = newLoaded(sess.Values, row)
	return sess, nil
}

// lastSeenResolution is how stale a session's last-seen time may get
// before a request that changed nothing else writes it anyway.
const lastSeenResolution = time.Minute

// loadedKey keys, in a loaded session's Values, what its row held; Save
// takes it out before encoding.
type loadedKey struct{}

type loaded struct {
	// idHash is the row's key: a session whose id was renewed (a sign-in)
	// deletes it when it saves the new one.
	idHash        []byte
	values        map[any]any
	ip, userAgent string
	lastSeen      time.Time
}

// newLoaded records values as row holds them.
func newLoaded(values map[any]any, row storage.BrowserSession) *loaded {
	return &loaded{idHash: row.IDHash, values: maps.Clone(values), ip: row.IP, userAgent: row.UserAgent, lastSeen: row.LastSeenAt}
}

// unchanged reports whether writing row would change nothing a reader
// needs: the same values, address and browser, and a last-seen time
// within lastSeenResolution. Most pages load the session and save it
// untouched; skipping their writes halves a sign-in's commits, and single
// sign-on writes nothing for the session at all.
func (l *loaded) unchanged(values map[any]any, row storage.BrowserSession) bool {
	return l != nil && bytes.Equal(row.IDHash, l.idHash) && row.IP == l.ip && row.UserAgent == l.userAgent &&
		row.LastSeenAt.Sub(l.lastSeen) < lastSeenResolution && reflect.DeepEqual(values, l.values)
}

// Save writes the session row and cookie; MaxAge < 0 deletes both.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	prev, _ := sess.Values[loadedKey{}].(*loaded)
	delete(sess.Values, loadedKey{})
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		var hashes [][]byte
		if sess.ID != "" {
			hashes = append(hashes, hashID(sess.ID))
		}
		if prev != nil && (sess.ID == "" || !bytes.Equal(prev.idHash, hashID(sess.ID))) {
			hashes = append(hashes, prev.idHash) // renewed, then destroyed
		}
		for _, h := range hashes {
			// Already gone (a concurrent sign-out) is as good as deleted.
			if err := s.db.DeleteSession(r.Context(), h); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("delete session: %w", err)
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	now := s.cfg.Now()
	if sess.ID == "" {
		sess.ID = randomID()
	}
	sid, _ := sess.Values[keySID].(string)
	if sid == "" {
		sid = randomID()
		sess.Values[keySID] = sid
	}
	created := now
	if c, ok := sess.Values[keyCreated].(int64); ok && c > 0 {
		created = time.Unix(c, 0)
	} else {
		sess.Values[keyCreated] = now.Unix()
	}
	uid, _ := sess.Values[keyUserID].(string)
	row := storage.BrowserSession{
		IDHash:     hashID(sess.ID),
		SID:        sid,
		UserID:     uid,
		IP:         clientIP(r),
		UserAgent:  truncate(r.UserAgent(), 256),
		CreatedAt:  created,
		LastSeenAt: now,
		ExpiresAt:  created.Add(s.cfg.Lifetime),
	}
	// A new id is inserted; a loaded one is only ever updated, so a request
	// that outlives a sign-out or a suspension cannot bring its session back.
	// An unchanged one is not written, only checked by a read that answers
	// as the update would; its cookie, set when it last changed, stands.
	if !sess.IsNew && prev.unchanged(sess.Values, row) {
		if err := s.db.SessionStands(r.Context(), row.IDHash, row.UserID, now); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return s.ended(r, sess)
			}
			return fmt.Errorf("save session: %w", err)
		}
		sess.Values[loadedKey{}] = prev
		return nil
	}
	data, err := encodeValues(sess.Values)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	row.Data = data
	write := s.db.UpdateSession
	if sess.IsNew {
		write = s.db.CreateSession
	}
	// In a transaction of its own, the write shares a commit (and its
	// fsync) with concurrent writers.
	err = s.db.InTx(r.Context(), func(ctx context.Context) error {
		if sess.IsNew && prev != nil {
			// Renewed: the row under the old id goes with the new one's
			// creation, so an id planted before sign-in is worthless.
			if err := s.db.DeleteSession(ctx, prev.idHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
		return write(ctx, row)
	})
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return s.ended(r, sess)
		}
		return fmt.Errorf("save session: %w", err)
	}
	prev = newLoaded(sess.Values, row)
	sess.Values[loadedKey{}] = prev
	sess.IsNew = false
	opts := *sess.Options
	opts.MaxAge = int(row.ExpiresAt.Sub(now).Seconds())
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, &opts))
	return nil
}

// ended answers a Save that found its session ended: its row deleted (a
// sign-out, an administrator, a sign-in in another tab that renewed the
// id) or its user suspended or deleted. A row a suspension has not yet
// deleted is deleted here, so that its cookie no longer loads it.
//
// No cookie is sent. The browser may hold a newer session's cookie by now
// (another tab signed in, which deletes the row this request loaded), and
// a clearing cookie landing after that tab's response would sign it out.
// The cookie this request came with names no row any more, and New loads
// such a cookie as a fresh session: the user is signed out either way.
func (s *Store) ended(r *http.Request, sess *sessions.Session) error {
	if !sess.IsNew {
		if err := s.db.DeleteSession(r.Context(), hashID(sess.ID)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("delete ended session: %w", err)
		}
	}
	return ErrEnded
}

func (s *Store) options() *sessions.Options {
	return &sessions.Options{
		Path:     "/",
		MaxAge:   int(s.cfg.Lifetime.Seconds()),
		Secure:   s.cfg.Secure,
		HttpOnly: true,
		// Lax, not Strict: an app's top-level redirect to /authorize must
		// carry the cookie for single sign-on to work.
		SameSite: http.SameSiteLaxMode,
	}
}

// randomID is 256 bits, base64url: 43 characters.
func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashID is how a cookie id is stored and how flows are bound to a session.
func hashID(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
