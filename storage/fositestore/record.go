package fositestore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/ory/fosite"
)

// sensitiveForm lists request parameters never written to storage: fosite
// keeps the whole form on the request, and some of it is credentials.
var sensitiveForm = []string{"client_secret", "client_assertion", "password", "refresh_token", "code", "code_verifier", "subject_token"}

// record is the stored form of a fosite request. The client is stored by id
// and re-read on load, so a disabled or deleted client stops its tokens.
type record struct {
	ID                string          `json:"id"`
	RequestedAt       time.Time       `json:"requested_at"`
	ClientID          string          `json:"client_id"`
	RequestedScope    []string        `json:"requested_scope,omitempty"`
	GrantedScope      []string        `json:"granted_scope,omitempty"`
	RequestedAudience []string        `json:"requested_audience,omitempty"`
	GrantedAudience   []string        `json:"granted_audience,omitempty"`
	Form              url.Values      `json:"form,omitempty"`
	Session           json.RawMessage `json:"session,omitempty"`

	// Authorize requests only (PAR).
	ResponseTypes []string `json:"response_types,omitempty"`
	RedirectURI   string   `json:"redirect_uri,omitempty"`
	State         string   `json:"state,omitempty"`
	ResponseMode  string   `json:"response_mode,omitempty"`
	DefaultMode   string   `json:"default_response_mode,omitempty"`
}

func encodeRequest(r fosite.Requester) ([]byte, error) {
	rec := record{
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt(),
		ClientID:          r.GetClient().GetID(),
		RequestedScope:    r.GetRequestedScopes(),
		GrantedScope:      r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              url.Values{},
	}
	for k, v := range r.GetRequestForm() {
		rec.Form[k] = v
	}
	for _, k := range sensitiveForm {
		rec.Form.Del(k)
	}
	if s := r.GetSession(); s != nil {
		raw, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("encode session: %w", err)
		}
		rec.Session = raw
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		for _, t := range ar.GetResponseTypes() {
			rec.ResponseTypes = append(rec.ResponseTypes, t)
		}
		if u := ar.GetRedirectURI(); u != nil {
			rec.RedirectURI = u.String()
		}
		rec.State = ar.GetState()
		rec.ResponseMode = string(ar.GetResponseMode())
		rec.DefaultMode = string(ar.GetDefaultResponseMode())
	}
	return json.Marshal(rec)
}

// decodeRequest rebuilds a request, hydrating session (which fosite passes
// in, so that its concrete type is the provider's).
func (s *Store) decodeRequest(ctx context.Context, raw []byte, session fosite.Session) (*fosite.Request, *record, error) {
	rec, err := decodeRecord(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("decode stored request: %w", err)
	}
	client, err := s.GetClient(ctx, rec.ClientID)
	if err != nil {
		return nil, nil, err
	}
	if session != nil && len(rec.Session) > 0 {
		if err := decodeSession(rec.Session, session); err != nil {
			return nil, nil, fmt.Errorf("decode stored session: %w", err)
		}
	}
	req := &fosite.Request{
		ID:                rec.ID,
		RequestedAt:       rec.RequestedAt,
		Client:            client,
		RequestedScope:    rec.RequestedScope,
		GrantedScope:      rec.GrantedScope,
		RequestedAudience: rec.RequestedAudience,
		GrantedAudience:   rec.GrantedAudience,
		Form:              rec.Form,
		Session:           session,
	}
	if req.Form == nil {
		req.Form = url.Values{}
	}
	return req, &rec, nil
}

// decodeRecord reads a stored request as json.Unmarshal reads it into a
// record. Every token lookup decodes one, and encoding/json's reflection
// and repeated scans of the nested session made that the largest cost of
// an introspection after the query itself; readRecord reads the shape
// encodeRequest writes directly and leaves anything else to encoding/json.
func decodeRecord(raw []byte) (record, error) {
	if rec, ok := readRecord(raw); ok {
		return rec, nil
	}
	var rec record
	err := json.Unmarshal(raw, &rec)
	return rec, err
}

// decodeSession hydrates session from its stored JSON, which decodeRecord
// has found valid: a session that decodes itself (the provider's) is
// handed the bytes directly, as json.Unmarshal would after scanning them
// once more.
func decodeSession(raw json.RawMessage, session fosite.Session) error {
	if u, ok := session.(json.Unmarshaler); ok {
		return u.UnmarshalJSON(raw)
	}
	return json.Unmarshal(raw, session)
}

// readRecord decodes raw into a record as encoding/json does, provided
// raw has the shape encodeRequest writes: one object of the record's own
// keys, each once and spelt exactly, whose strings hold no escape and are
// valid UTF-8, and whose session is an object. For anything else, malformed
// input included, ok is false and the caller asks encoding/json, so the
// two ways never disagree about what a record says.
func readRecord(raw []byte) (rec record, ok bool) {
	// One string for the record; its strings are cut from it.
	r := jsonReader{b: raw, s: string(raw)}
	if !r.next('{') {
		return record{}, false
	}
	var seen uint16
	for more := !r.next('}'); more; {
		key, ok := r.str()
		if !ok || !r.next(':') {
			return record{}, false
		}
		field, ok := recordFields[key]
		if !ok || seen&(1<<field) != 0 {
			return record{}, false
		}
		seen |= 1 << field
		switch field {
		case fieldID:
			rec.ID, ok = r.str()
		case fieldRequestedAt:
			var i, j int
			if i, j, ok = r.quoted(); ok {
				// time.Time's own decoding, as encoding/json calls it.
				ok = rec.RequestedAt.UnmarshalJSON(r.b[i:j]) == nil
			}
		case fieldClientID:
			rec.ClientID, ok = r.str()
		case fieldRequestedScope:
			rec.RequestedScope, ok = r.strs()
		case fieldGrantedScope:
			rec.GrantedScope, ok = r.strs()
		case fieldRequestedAudience:
			rec.RequestedAudience, ok = r.strs()
		case fieldGrantedAudience:
			rec.GrantedAudience, ok = r.strs()
		case fieldForm:
			rec.Form, ok = r.form()
		case fieldSession:
			// Checked here, so that a record read either way is valid
			// JSON as a whole (decodeSession relies on it).
			if rec.Session, ok = r.object(); ok {
				ok = json.Valid(rec.Session)
			}
		case fieldResponseTypes:
			rec.ResponseTypes, ok = r.strs()
		case fieldRedirectURI:
			rec.RedirectURI, ok = r.str()
		case fieldState:
			rec.State, ok = r.str()
		case fieldResponseMode:
			rec.ResponseMode, ok = r.str()
		case fieldDefaultMode:
			rec.DefaultMode, ok = r.str()
		}
		if !ok {
			return record{}, false
		}
		if more = !r.next('}'); more && !r.next(',') {
			return record{}, false
		}
	}
	r.space()
	return rec, r.i == len(r.b)
}

const (
	fieldID = iota
	fieldRequestedAt
	fieldClientID
	fieldRequestedScope
	fieldGrantedScope
	fieldRequestedAudience
	fieldGrantedAudience
	fieldForm
	fieldSession
	fieldResponseTypes
	fieldRedirectURI
	fieldState
	fieldResponseMode
	fieldDefaultMode
)

// recordFields are record's JSON keys.
var recordFields = map[string]int{
	"id": fieldID, "requested_at": fieldRequestedAt, "client_id": fieldClientID,
	"requested_scope": fieldRequestedScope, "granted_scope": fieldGrantedScope,
	"requested_audience": fieldRequestedAudience, "granted_audience": fieldGrantedAudience,
	"form": fieldForm, "session": fieldSession, "response_types": fieldResponseTypes,
	"redirect_uri": fieldRedirectURI, "state": fieldState, "response_mode": fieldResponseMode,
	"default_response_mode": fieldDefaultMode,
}

// jsonReader reads the few JSON forms readRecord accepts; each method
// reports false for anything it does not, without saying why.
type jsonReader struct {
	b []byte
	s string // b as a string
	i int
}

func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// next consumes c, after any space, if it comes next.
func (r *jsonReader) next(c byte) bool {
	r.space()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// quoted consumes a string without escapes or control characters and
// returns where it starts and ends, quotes included.
func (r *jsonReader) quoted() (start, end int, ok bool) {
	r.space()
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return 0, 0, false
	}
	ascii := true
	for j := r.i + 1; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			// encoding/json would replace invalid UTF-8 with U+FFFD.
			if !ascii && !utf8.ValidString(r.s[r.i:j]) {
				return 0, 0, false
			}
			start, r.i = r.i, j+1
			return start, r.i, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, 0, false
}

func (r *jsonReader) str() (string, bool) {
	i, j, ok := r.quoted()
	if !ok {
		return "", false
	}
	return r.s[i+1 : j-1], true
}

// strs reads an array of strings; [] is an empty slice, not nil, as
// encoding/json makes it.
func (r *jsonReader) strs() ([]string, bool) {
	if !r.next('[') {
		return nil, false
	}
	var buf [8]string
	out := buf[:0]
	for more := !r.next(']'); more; {
		s, ok := r.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if more = !r.next(']'); more && !r.next(',') {
			return nil, false
		}
	}
	return append([]string{}, out...), true
}

// form reads an object of string arrays. A repeated key keeps its last
// value, as encoding/json does.
func (r *jsonReader) form() (url.Values, bool) {
	if !r.next('{') {
		return nil, false
	}
	out := url.Values{}
	for more := !r.next('}'); more; {
		k, ok := r.str()
		if !ok || !r.next(':') {
			return nil, false
		}
		if out[k], ok = r.strs(); !ok {
			return nil, false
		}
		if more = !r.next('}'); more && !r.next(',') {
			return nil, false
		}
	}
	return out, true
}

// object returns the bytes of the object that comes next, found by
// matching its brackets outside strings; it does not check what is
// between them.
func (r *jsonReader) object() ([]byte, bool) {
	r.space()
	if r.i >= len(r.b) || r.b[r.i] != '{' {
		return nil, false
	}
	depth, inString := 0, false
	for j := r.i; j < len(r.b); j++ {
		c := r.b[j]
		if inString {
			switch c {
			case '\\':
				j++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				v := r.b[r.i : j+1]
				r.i = j + 1
				return v, true
			}
		}
	}
	return nil, false
}
