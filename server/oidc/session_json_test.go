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

// Decoding a stored session into a fresh one, as every token lookup does:
//
//	go test ./server/oidc -run '^$' -bench SessionDecode
func BenchmarkSessionDecode(b *testing.B) {
	cc := NewSession()
	cc.SetExpiresAt(fosite.AccessToken, time.Now())
	for name, s := range map[string]*Session{"client_credentials": cc, "signed_in": fullSession()} {
		raw, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := NewSession().UnmarshalJSON(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// storedSessionLikeEncodingJSON fails unless readStoredSession reads raw
// as encoding/json does, or leaves it to encoding/json, and reports
// whether it read it itself.
func storedSessionLikeEncodingJSON(t *testing.T, raw []byte) bool {
	t.Helper()
	var want storedSession
	wantErr := json.Unmarshal(raw, &want)
	var got storedSession
	fast := readStoredSession(raw, &got)
	if fast && wantErr != nil {
		t.Fatalf("readStoredSession accepts %q, which encoding/json refuses: %v", raw, wantErr)
	}
	if fast && !reflect.DeepEqual(got, want) {
		t.Fatalf("readStoredSession(%q)\n got %+v %+v\nwant %+v %+v", raw, got, got.Claims, want, want.Claims)
	}
	// Called directly, as fositestore does with a record's session that
	// it has checked, UnmarshalJSON decodes as through json.Unmarshal,
	// which checks the syntax first.
	viaJSON, direct := NewSession(), NewSession()
	errJSON := json.Unmarshal(raw, viaJSON)
	errDirect := direct.UnmarshalJSON(raw)
	if (errJSON == nil) != (errDirect == nil) || (errJSON == nil && !reflect.DeepEqual(viaJSON, direct)) {
		t.Fatalf("UnmarshalJSON(%q) and json.Unmarshal disagree: %v, %v", raw, errDirect, errJSON)
	}
	return fast
}

func TestReadStoredSessionReadsWhatMarshalJSONWrites(t *testing.T) {
	cc := NewSession()
	cc.SetExpiresAt(fosite.AccessToken, time.Now())
	odd := fullSession()
	odd.Claims.Extra = map[string]any{"n": 1.5, "nested": map[string]any{"a": []any{"}", "[", nil, true}}, "q": `"\`}
	odd.Headers.Extra = map[string]any{"kid": "k1", "typ": "JWT"}
	for name, s := range map[string]*Session{"client_credentials": cc, "signed in": fullSession(), "empty": NewSession(),
		"odd extra claims": odd} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if !storedSessionLikeEncodingJSON(t, raw) {
				t.Errorf("%s was left to encoding/json", raw)
			}
		})
	}
}

func TestReadStoredSessionAgreesWithEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		fast      bool
	}{
		{"space around every token", " {\n\"sub\" : \"u\" , \"exp\" : { \"access_token\" : 5 } ,\t\"idt\":{ \"amr\" : [ \"pwd\" , \"otp\" ] } } ", true},
		{"empty objects and lists", `{"exp":{},"idt":{"aud":[],"ext":{}},"hdr":{}}`, true},
		{"a repeated expiry keeps the last", `{"exp":{"access_token":1,"access_token":2}}`, true},
		{"negative and zero times", `{"idt":{"exp":-5,"iat":0,"rat":-0}}`, true},

		{"a repeated key", `{"sub":"a","sub":"b"}`, false},
		{"a repeated claim", `{"idt":{"acr":"a","acr":"b"}}`, false},
		{"the legacy form", `{"id_token":{"subject":"u"},"sid":"s"}`, false},
		{"an unknown key", `{"sub":"u","x":1}`, false},
		{"an unknown claim", `{"idt":{"x":1}}`, false},
		{"a key in other case", `{"SUB":"u"}`, false},
		{"an escape", `{"sub":"\u0075"}`, false},
		{"null", `{"sub":null}`, false},
		{"null claims", `{"idt":null}`, false},
		{"a fraction", `{"exp":{"access_token":1.5}}`, false},
		{"an exponent", `{"exp":{"access_token":1e3}}`, false},
		{"a time too large", `{"exp":{"access_token":99999999999999999999}}`, false},
		{"a leading zero", `{"exp":{"access_token":01}}`, false},
		{"a string for a time", `{"idt":{"exp":"5"}}`, false},
		{"extra claims that are not an object", `{"idt":{"ext":[1]}}`, false},
		{"invalid extra claims", `{"idt":{"ext":{"a":}}}`, false},
		{"unterminated extra claims", `{"idt":{"ext":{"a":"}"`, false},
		{"invalid UTF-8", "{\"sub\":\"\xff\"}", false},
		{"a trailing comma", `{"sub":"u",}`, false},
		{"text after the object", `{"sub":"u"}x`, false},
		{"nothing", ``, false},
		{"a minus alone", `{"idt":{"exp":-}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if fast := storedSessionLikeEncodingJSON(t, []byte(tc.raw)); fast != tc.fast {
				t.Errorf("read directly: %v, want %v", fast, tc.fast)
			}
		})
	}
}

func FuzzReadStoredSession(f *testing.F) {
	for _, s := range []*Session{fullSession(), NewSession()} {
		raw, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"exp":{"access_token":1,"access_token":-0},"idt":{"ext":{"a":"}]\"{"}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		storedSessionLikeEncodingJSON(t, raw)
	})
}
