package oidc

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

func fullSession() *Session {
	at := time.Date(2026, 11, 29, 8, 0, 0, 123456789, time.UTC)
	s := signedIn("https://id.example", "u1", "sid1", "phrh", []string{"hwk", "user"}, at, at.Add(-time.Minute),
		map[string]any{"email": "a@example.com", "email_verified": true})
	c := s.Claims
	c.JTI, c.Audience, c.Nonce = "jti", []string{"c_app", "api"}, "n-0S6"
	c.ExpiresAt, c.IssuedAt = at.Add(time.Hour), at
	c.AccessTokenHash, c.CodeHash = "at-hash", "c-hash"
	s.Username = "alice"
	s.Headers.Extra = map[string]any{"kid": "k1"}
	s.SetExpiresAt(fosite.AccessToken, at.Add(10*time.Minute))
	s.SetExpiresAt(fosite.RefreshToken, at.Add(720*time.Hour))
	return s
}

func TestStoredSessionRoundTrips(t *testing.T) {
	for name, s := range map[string]*Session{"full": fullSession(), "empty": NewSession()} {
		raw, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := NewSession()
		if err := json.Unmarshal(raw, got); err != nil {
			t.Fatal(err)
		}
		if name == "empty" {
			// Nothing to store leaves fresh maps as they were: nil.
			s.ExpiresAt = nil
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("%s: round trip through %s\n got %+v %+v\nwant %+v %+v", name, raw, got.DefaultSession, got.Claims, s.DefaultSession, s.Claims)
		}
	}
}

// fosite loads an authorization code into the session it has just set the
// access token's expiry on; that expiry must survive, as it does with
// encoding/json's decoding of fosite's own form.
func TestStoredSessionMergesExpiries(t *testing.T) {
	code := fullSession()
	code.ExpiresAt = map[fosite.TokenType]time.Time{fosite.AuthorizeCode: time.Unix(100, 0).UTC()}
	raw, _ := json.Marshal(code)
	into := NewSession()
	accessExp := time.Unix(200, 0).UTC()
	into.SetExpiresAt(fosite.AccessToken, accessExp)
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
	if got := into.GetExpiresAt(fosite.AccessToken); !got.Equal(accessExp) {
		t.Errorf("access token expiry %v after loading the code, want %v", got, accessExp)
	}
	if got := into.GetExpiresAt(fosite.AuthorizeCode); !got.Equal(time.Unix(100, 0)) {
		t.Errorf("code expiry %v, want the stored one", got)
	}
}

// Records written in fosite's form before the compact one still load.
func TestStoredSessionReadsFositeForm(t *testing.T) {
	want := fullSession()
	type fositeForm struct {
		*openid.DefaultSession `json:"id_token"`
		SID                    string `json:"sid,omitempty"`
	}
	raw, err := json.Marshal(fositeForm{DefaultSession: want.DefaultSession, SID: want.SID})
	if err != nil {
		t.Fatal(err)
	}
	got := NewSession()
	if err := json.Unmarshal(raw, got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fosite form %s\n got %+v %+v\nwant %+v %+v", raw, got.DefaultSession, got.Claims, want.DefaultSession, want.Claims)
	}
}

func TestStoredSessionIsCompact(t *testing.T) {
	s := NewSession()
	s.SetExpiresAt(fosite.AccessToken, time.Now())
	raw, _ := json.Marshal(s)
	if len(raw) > 60 {
		t.Errorf("a client_credentials session takes %d bytes: %s", len(raw), raw)
	}
}
