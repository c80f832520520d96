package oidc

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/keygate/keygate/internal/jsonscan"
)

// storedSession is the form a Session takes in storage. fosite's own JSON
// of a session writes every field, empty or not, and times as text: a
// client_credentials token carried 380 bytes of zeros, and decoding them
// was the largest cost of an introspection. This form leaves out what is
// empty and writes times as integers; it holds the same content.
type storedSession struct {
	Subject   string                     `json:"sub,omitempty"`
	Username  string                     `json:"usr,omitempty"`
	SID       string                     `json:"sid,omitempty"`
	ExpiresAt map[fosite.TokenType]nanos `json:"exp,omitempty"`
	Claims    *storedClaims              `json:"idt,omitempty"`
	Headers   map[string]any             `json:"hdr,omitempty"`
	// Legacy is a session stored in fosite's form, before this one.
	Legacy json.RawMessage `json:"id_token,omitempty"`
}

type storedClaims struct {
	JTI         string         `json:"jti,omitempty"`
	Issuer      string         `json:"iss,omitempty"`
	Subject     string         `json:"sub,omitempty"`
	Audience    []string       `json:"aud,omitempty"`
	Nonce       string         `json:"nonce,omitempty"`
	ExpiresAt   nanos          `json:"exp,omitempty"`
	IssuedAt    nanos          `json:"iat,omitempty"`
	RequestedAt nanos          `json:"rat,omitempty"`
	AuthTime    nanos          `json:"auth_time,omitempty"`
	AtHash      string         `json:"at_hash,omitempty"`
	ACR         string         `json:"acr,omitempty"`
	AMR         []string       `json:"amr,omitempty"`
	CodeHash    string         `json:"c_hash,omitempty"`
	Extra       map[string]any `json:"ext,omitempty"`
}

// nanos is a time as Unix nanoseconds, 0 for the zero time.
type nanos int64

func toNanos(t time.Time) nanos {
	if t.IsZero() {
		return 0
	}
	return nanos(t.UnixNano())
}

func (n nanos) time() time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

// MarshalJSON writes the storedSession form.
func (s *Session) MarshalJSON() ([]byte, error) {
	st := storedSession{SID: s.SID}
	if d := s.DefaultSession; d != nil {
		st.Subject, st.Username = d.Subject, d.Username
		if len(d.ExpiresAt) > 0 {
			st.ExpiresAt = make(map[fosite.TokenType]nanos, len(d.ExpiresAt))
			for k, t := range d.ExpiresAt {
				st.ExpiresAt[k] = toNanos(t)
			}
		}
		if d.Headers != nil {
			st.Headers = d.Headers.Extra
		}
		if c := d.Claims; c != nil {
			sc := storedClaims{
				JTI: c.JTI, Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, Nonce: c.Nonce,
				ExpiresAt: toNanos(c.ExpiresAt), IssuedAt: toNanos(c.IssuedAt),
				RequestedAt: toNanos(c.RequestedAt), AuthTime: toNanos(c.AuthTime),
				AtHash: c.AccessTokenHash, ACR: c.AuthenticationContextClassReference,
				AMR: c.AuthenticationMethodsReferences, CodeHash: c.CodeHash, Extra: c.Extra,
			}
			if !sc.empty() {
				st.Claims = &sc
			}
		}
	}
	return json.Marshal(st)
}

// empty reports whether c holds nothing, as a client_credentials
// session's claims do.
func (c *storedClaims) empty() bool {
	return c.JTI == "" && c.Issuer == "" && c.Subject == "" && len(c.Audience) == 0 && c.Nonce == "" &&
		c.ExpiresAt == 0 && c.IssuedAt == 0 && c.RequestedAt == 0 && c.AuthTime == 0 && c.AtHash == "" &&
		c.ACR == "" && len(c.AMR) == 0 && c.CodeHash == "" && len(c.Extra) == 0
}

// UnmarshalJSON decodes into s as encoding/json would decode fosite's
// form: every field is overwritten, but maps are merged into the ones s
// already has. fosite relies on that: it loads an authorization code into
// the session it has just given the access token's expiry, which must
// survive.
func (s *Session) UnmarshalJSON(data []byte) error {
	if s == nil {
		return errors.New("oidc: UnmarshalJSON into a nil *Session")
	}
	var st storedSession
	if !readStoredSession(data, &st) {
		st = storedSession{}
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
	}
	s.SID = st.SID
	if s.DefaultSession == nil {
		s.DefaultSession = &openid.DefaultSession{}
	}
	d := s.DefaultSession
	if st.Legacy != nil {
		return json.Unmarshal(st.Legacy, d)
	}
	d.Subject, d.Username = st.Subject, st.Username
	if len(st.ExpiresAt) > 0 && d.ExpiresAt == nil {
		d.ExpiresAt = make(map[fosite.TokenType]time.Time, len(st.ExpiresAt))
	}
	for k, n := range st.ExpiresAt {
		d.ExpiresAt[k] = n.time()
	}
	if d.Headers == nil {
		d.Headers = &jwt.Headers{}
	}
	d.Headers.Extra = mergeMap(d.Headers.Extra, st.Headers)
	if d.Claims == nil {
		d.Claims = &jwt.IDTokenClaims{}
	}
	c, sc := d.Claims, st.Claims
	if sc == nil {
		sc = &storedClaims{}
	}
	c.JTI, c.Issuer, c.Subject, c.Audience, c.Nonce = sc.JTI, sc.Issuer, sc.Subject, sc.Audience, sc.Nonce
	c.ExpiresAt, c.IssuedAt = sc.ExpiresAt.time(), sc.IssuedAt.time()
	c.RequestedAt, c.AuthTime = sc.RequestedAt.time(), sc.AuthTime.time()
	c.AccessTokenHash, c.AuthenticationContextClassReference = sc.AtHash, sc.ACR
	c.AuthenticationMethodsReferences, c.CodeHash = sc.AMR, sc.CodeHash
	c.Extra = mergeMap(c.Extra, sc.Extra)
	return nil
}

func mergeMap(into, from map[string]any) map[string]any {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		return from
	}
	for k, v := range from {
		into[k] = v
	}
	return into
}

// readStoredSession decodes data into st, a zero storedSession, as
// encoding/json does, provided data has the shape MarshalJSON writes:
// objects of storedSession's and storedClaims' own keys, each once and
// spelt exactly, strings without escapes, times as integers. The claims'
// and headers' extra members, which may hold any JSON, are decoded by
// encoding/json. For anything else, malformed input included, it reports
// false and the caller asks encoding/json for the whole. Every token
// lookup decodes a session, and encoding/json's reflection made it the
// largest cost of a lookup after the query.
func readStoredSession(data []byte, st *storedSession) bool {
	r := jsonscan.NewReader(data)
	ok := r.Object(true, func(key string) (ok bool) {
		switch key {
		case "sub":
			st.Subject, ok = r.Str()
		case "usr":
			st.Username, ok = r.Str()
		case "sid":
			st.SID, ok = r.Str()
		case "exp":
			st.ExpiresAt = map[fosite.TokenType]nanos{}
			ok = r.Object(false, func(k string) (ok bool) {
				st.ExpiresAt[fosite.TokenType(k)], ok = readNanos(r)
				return ok
			})
		case "idt":
			st.Claims = &storedClaims{}
			ok = r.Object(true, st.Claims.read(r))
		case "hdr":
			ok = readAnyMap(r, &st.Headers)
		}
		// Any other key is the legacy form or one of another spelling.
		return ok
	})
	return ok && r.End()
}

// read returns what reads the value of each key of c's object.
func (c *storedClaims) read(r *jsonscan.Reader) func(key string) bool {
	return func(key string) (ok bool) {
		switch key {
		case "jti":
			c.JTI, ok = r.Str()
		case "iss":
			c.Issuer, ok = r.Str()
		case "sub":
			c.Subject, ok = r.Str()
		case "aud":
			c.Audience, ok = r.Strs()
		case "nonce":
			c.Nonce, ok = r.Str()
		case "exp":
			c.ExpiresAt, ok = readNanos(r)
		case "iat":
			c.IssuedAt, ok = readNanos(r)
		case "rat":
			c.RequestedAt, ok = readNanos(r)
		case "auth_time":
			c.AuthTime, ok = readNanos(r)
		case "at_hash":
			c.AtHash, ok = r.Str()
		case "acr":
			c.ACR, ok = r.Str()
		case "amr":
			c.AMR, ok = r.Strs()
		case "c_hash":
			c.CodeHash, ok = r.Str()
		case "ext":
			ok = readAnyMap(r, &c.Extra)
		}
		return ok
	}
}

// readNanos reads an integer of nanoseconds.
func readNanos(r *jsonscan.Reader) (nanos, bool) {
	n, ok := r.Int()
	return nanos(n), ok
}

// readAnyMap decodes the object that comes next into *m with
// encoding/json, which checks it: its members may be any JSON.
func readAnyMap(r *jsonscan.Reader, m *map[string]any) bool {
	v, ok := r.RawObject()
	return ok && json.Unmarshal(v, m) == nil
}
