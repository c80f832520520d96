package oidc

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
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
	r := sessionReader{b: data, s: string(data)}
	ok := r.object(true, func(key string) (ok bool) {
		switch key {
		case "sub":
			st.Subject, ok = r.str()
		case "usr":
			st.Username, ok = r.str()
		case "sid":
			st.SID, ok = r.str()
		case "exp":
			st.ExpiresAt = map[fosite.TokenType]nanos{}
			ok = r.object(false, func(k string) (ok bool) {
				st.ExpiresAt[fosite.TokenType(k)], ok = r.nanos()
				return ok
			})
		case "idt":
			st.Claims = &storedClaims{}
			ok = r.object(true, st.Claims.read(&r))
		case "hdr":
			ok = r.anyMap(&st.Headers)
		}
		// Any other key is the legacy form or one of another spelling.
		return ok
	})
	r.space()
	return ok && r.i == len(r.b)
}

// read returns what reads the value of each key of c's object.
func (c *storedClaims) read(r *sessionReader) func(key string) bool {
	return func(key string) (ok bool) {
		switch key {
		case "jti":
			c.JTI, ok = r.str()
		case "iss":
			c.Issuer, ok = r.str()
		case "sub":
			c.Subject, ok = r.str()
		case "aud":
			c.Audience, ok = r.strs()
		case "nonce":
			c.Nonce, ok = r.str()
		case "exp":
			c.ExpiresAt, ok = r.nanos()
		case "iat":
			c.IssuedAt, ok = r.nanos()
		case "rat":
			c.RequestedAt, ok = r.nanos()
		case "auth_time":
			c.AuthTime, ok = r.nanos()
		case "at_hash":
			c.AtHash, ok = r.str()
		case "acr":
			c.ACR, ok = r.str()
		case "amr":
			c.AMR, ok = r.strs()
		case "c_hash":
			c.CodeHash, ok = r.str()
		case "ext":
			ok = r.anyMap(&c.Extra)
		}
		return ok
	}
}

// sessionReader reads the few JSON forms readStoredSession accepts; each
// method reports false for anything it does not, without saying why.
type sessionReader struct {
	b []byte
	s string // b as a string, which the strings read are cut from
	i int
}

func (r *sessionReader) space() {
	for r.i < len(r.b) && (r.b[r.i] == ' ' || r.b[r.i] == '\t' || r.b[r.i] == '\n' || r.b[r.i] == '\r') {
		r.i++
	}
}

// next consumes c, after any space, if it comes next.
func (r *sessionReader) next(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// object reads an object whose values value reads, key by key. A key seen
// twice fails if the object is a struct's (fields), and otherwise keeps
// its last value, as encoding/json does with a map's.
func (r *sessionReader) object(fields bool, value func(key string) bool) bool {
	if !r.next('{') {
		return false
	}
	var seen [16]string
	n := 0
	for more := !r.next('}'); more; {
		key, ok := r.str()
		if !ok || !r.next(':') {
			return false
		}
		if fields {
			if n == len(seen) || slices.Contains(seen[:n], key) {
				return false
			}
			seen[n] = key
			n++
		}
		if !value(key) {
			return false
		}
		if more = !r.next('}'); more && !r.next(',') {
			return false
		}
	}
	return true
}

// str reads a string without escapes or control characters, of valid
// UTF-8 (encoding/json would replace invalid bytes with U+FFFD).
func (r *sessionReader) str() (string, bool) {
	if !r.next('"') {
		return "", false
	}
	ascii := true
	for j := r.i; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			v := r.s[r.i:j]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			r.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// strs reads an array of strings; [] is an empty slice, not nil.
func (r *sessionReader) strs() ([]string, bool) {
	if !r.next('[') {
		return nil, false
	}
	out := []string{}
	for more := !r.next(']'); more; {
		v, ok := r.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if more = !r.next(']'); more && !r.next(',') {
			return nil, false
		}
	}
	return out, true
}

// nanos reads an integer as JSON writes it: no fraction, exponent or
// leading zero.
func (r *sessionReader) nanos() (nanos, bool) {
	r.space()
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && '0' <= r.b[r.i] && r.b[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || (r.b[digits] == '0' && r.i > digits+1) {
		return 0, false
	}
	if r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		return 0, false
	}
	n, err := strconv.ParseInt(r.s[start:r.i], 10, 64)
	return nanos(n), err == nil
}

// anyMap decodes the object that comes next into *m with encoding/json,
// which checks it: its members may be any JSON. The object is found by
// matching its brackets outside strings.
func (r *sessionReader) anyMap(m *map[string]any) bool {
	r.space()
	if r.i >= len(r.b) || r.b[r.i] != '{' {
		return false
	}
	depth, inString := 0, false
	for j := r.i; j < len(r.b); j++ {
		c := r.b[j]
		switch {
		case inString && c == '\\':
			j++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				v := r.b[r.i : j+1]
				r.i = j + 1
				return json.Unmarshal(v, m) == nil
			}
		}
	}
	return false
}
