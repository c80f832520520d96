package fositestore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/keygate/keygate/internal/jsonscan"
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
	r := jsonscan.NewReader(raw)
	ok = r.Object(true, func(key string) (ok bool) {
		switch key {
		case "id":
			rec.ID, ok = r.Str()
		case "requested_at":
			var q []byte
			if q, ok = r.Quoted(); ok {
				// time.Time's own decoding, as encoding/json calls it.
				ok = rec.RequestedAt.UnmarshalJSON(q) == nil
			}
		case "client_id":
			rec.ClientID, ok = r.Str()
		case "requested_scope":
			rec.RequestedScope, ok = r.Strs()
		case "granted_scope":
			rec.GrantedScope, ok = r.Strs()
		case "requested_audience":
			rec.RequestedAudience, ok = r.Strs()
		case "granted_audience":
			rec.GrantedAudience, ok = r.Strs()
		case "form":
			// A repeated key keeps its last value, as encoding/json does.
			rec.Form = url.Values{}
			ok = r.Object(false, func(k string) (ok bool) {
				rec.Form[k], ok = r.Strs()
				return ok
			})
		case "session":
			// Checked here, so that a record read either way is valid
			// JSON as a whole (decodeSession relies on it).
			if rec.Session, ok = r.RawObject(); ok {
				ok = json.Valid(rec.Session)
			}
		case "response_types":
			rec.ResponseTypes, ok = r.Strs()
		case "redirect_uri":
			rec.RedirectURI, ok = r.Str()
		case "state":
			rec.State, ok = r.Str()
		case "response_mode":
			rec.ResponseMode, ok = r.Str()
		case "default_response_mode":
			rec.DefaultMode, ok = r.Str()
		}
		// Any other key is not the record's: encoding/json decides.
		return ok
	})
	if !ok || !r.End() {
		return record{}, false
	}
	return rec, true
}
