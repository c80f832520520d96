package fositestore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

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
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, nil, fmt.Errorf("decode stored request: %w", err)
	}
	client, err := s.GetClient(ctx, rec.ClientID)
	if err != nil {
		return nil, nil, err
	}
	if session != nil && len(rec.Session) > 0 {
		if err := json.Unmarshal(rec.Session, session); err != nil {
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
