package fositestore

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// A session as the provider stores a signed-in user's: compact, with the
// ID token claims and their extra claims.
const signedInSession = `{"sub":"u_alice","sid":"s_1","exp":{"access_token":1796593186422065273,"refresh_token":1799185186422065273},` +
	`"idt":{"iss":"https://id.example","sub":"u_alice","rat":1796592586000000000,"auth_time":1796592526000000000,` +
	`"acr":"phr","amr":["hwk","user"],"ext":{"email":"alice@example.com","email_verified":true,"groups":["ops","dev"]}}}`

// storedRecords are requests as encodeRequest writes them.
func storedRecords(t testing.TB) map[string][]byte {
	at := time.Date(2026, 12, 6, 21, 29, 46, 420990432, time.UTC)
	client := &Client{}
	client.ID = "c_xDZHXJn66P6aVpkGVvTO7A"

	cc := fosite.NewAccessRequest(&openid.DefaultSession{})
	cc.ID, cc.RequestedAt, cc.Client = "01a24d43-4eb6-7144-aa74-c4e5223cf92c", at, client
	cc.Form = url.Values{"grant_type": {"client_credentials"}}

	user := fosite.NewAuthorizeRequest()
	user.ID, user.RequestedAt, user.Client = "01a24d43-0000-7144-aa74-c4e5223cf92c", at, client
	user.RequestedScope = fosite.Arguments{"openid", "email", "groups", "offline_access"}
	user.GrantedScope = user.RequestedScope
	user.RequestedAudience = fosite.Arguments{"c_api"}
	user.GrantedAudience = fosite.Arguments{"c_api"}
	user.Form = url.Values{"scope": {"openid email groups offline_access"}, "nonce": {"n-0S6_WzA2Mj"},
		"login_hint": {"Zoë Åström"}, "code": {"never stored"}}
	user.ResponseTypes = fosite.Arguments{"code"}
	user.RedirectURI, _ = url.Parse("https://app.example/callback?x=1")
	user.State = "af0ifjsldkj"
	user.ResponseMode, user.DefaultResponseMode = fosite.ResponseModeQuery, fosite.ResponseModeQuery

	// encoding/json escapes <, > and & and the quote and backslash: strings
	// readRecord leaves to it.
	escaped := fosite.NewAccessRequest(&openid.DefaultSession{})
	escaped.ID, escaped.RequestedAt, escaped.Client = "r3", at.In(time.FixedZone("", 3600)), client
	escaped.Form = url.Values{"state": {`<a href="x">&\`}}

	out := map[string][]byte{}
	for name, r := range map[string]fosite.Requester{"client_credentials": cc, "signed in": user, "escaped": escaped} {
		raw, err := encodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = raw
	}
	// The session as the provider writes it, in place of the fosite form.
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(out["signed in"], &rec); err != nil {
		t.Fatal(err)
	}
	rec["session"] = json.RawMessage(signedInSession)
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	out["signed in"] = raw
	return out
}

// decodedLikeEncodingJSON fails unless decodeRecord reads raw exactly as
// encoding/json does: the same record, or an error for both.
func decodedLikeEncodingJSON(t *testing.T, raw []byte) {
	t.Helper()
	var want record
	wantErr := json.Unmarshal(raw, &want)
	got, err := decodeRecord(raw)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("decodeRecord(%q): error %v, encoding/json's %v", raw, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeRecord(%q)\n got %+v\nwant %+v", raw, got, want)
	}
	if _, fast := readRecord(raw); fast && wantErr != nil {
		t.Fatalf("readRecord accepts %q, which encoding/json refuses: %v", raw, wantErr)
	}
}

func TestReadRecordReadsWhatEncodeRequestWrites(t *testing.T) {
	for name, raw := range storedRecords(t) {
		t.Run(name, func(t *testing.T) {
			decodedLikeEncodingJSON(t, raw)
			_, fast := readRecord(raw)
			if want := name != "escaped"; fast != want {
				t.Errorf("read directly: %v, want %v (%s)", fast, want, raw)
			}
		})
	}
}

func TestReadRecordAgreesWithEncodingJSON(t *testing.T) {
	const base = `"id":"r1","requested_at":"2026-12-06T21:29:46.420990432Z","client_id":"c_1"`
	for _, tc := range []struct {
		name, raw string
		fast      bool // readRecord reads it itself
	}{
		{"space around every token", " {\n\t\"id\" : \"r1\" ,\r\"form\" : { \"a\" : [ \"b\" , \"c\" ] } , \"granted_scope\" : [ ] } \n", true},
		{"empty lists and form", `{` + base + `,"requested_scope":[],"form":{},"session":{}}`, true},
		{"an empty object", `{}`, true},
		{"a session with brackets and escapes in its strings", `{` + base + `,"session":{"a":"}]\"{","b":[{"c":"\\"}]}}`, true},
		{"a repeated form key keeps its last value", `{"form":{"a":["1"],"a":["2"]}}`, true},
		{"valid UTF-8", `{"state":"Zoë ☃ 𝄞"}`, true},
		{"PAR fields", `{"response_types":["code"],"redirect_uri":"https://a/cb","state":"s","response_mode":"query","default_response_mode":"fragment"}`, true},
		{"a time with an offset", `{"requested_at":"2026-12-06T22:29:46+01:00"}`, true},

		{"an escaped string", `{"id":"r\u0031"}`, false},
		{"a repeated key", `{"id":"a","id":"b"}`, false},
		{"an unknown key", `{` + base + `,"extra":1}`, false},
		{"a key in other case", `{"ID":"r1"}`, false},
		{"null", `{"id":null,"form":null,"granted_scope":null,"session":null}`, false},
		{"a session that is not an object", `{"session":"s"}`, false},
		{"invalid UTF-8", "{\"state\":\"a\xffb\"}", false},
		{"an encoded surrogate", "{\"state\":\"\xed\xa0\x80\"}", false},
		{"a number for a string", `{"id":1}`, false},

		{"a control character in a string", "{\"id\":\"a\tb\"}", false},
		{"an invalid session", `{"session":{"a":}}`, false},
		{"a session with mismatched brackets", `{"session":{"a":[1}]}`, false},
		{"an unterminated session", `{"session":{"a":"}"`, false},
		{"a trailing comma in a list", `{"granted_scope":["a",]}`, false},
		{"a trailing comma in the object", `{"id":"a",}`, false},
		{"a missing colon", `{"id" "a"}`, false},
		{"text after the object", `{"id":"a"} x`, false},
		{"two objects", `{"id":"a"}{}`, false},
		{"an unterminated object", `{"id":"a"`, false},
		{"a bad time", `{"requested_at":"2026-13-06T21:29:46Z"}`, false},
		{"a time that is not RFC 3339", `{"requested_at":"Sun Dec  6 21:29:46 UTC 2026"}`, false},
		{"not an object", `["id"]`, false},
		{"nothing", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decodedLikeEncodingJSON(t, []byte(tc.raw))
			if _, fast := readRecord([]byte(tc.raw)); fast != tc.fast {
				t.Errorf("read directly: %v, want %v", fast, tc.fast)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, raw := range storedRecords(f) {
		f.Add(raw)
	}
	f.Add([]byte(`{"form":{"a":["1"],"a":["2"]},"session":{"a":"}]\"{"}}`))
	f.Add([]byte(`{"requested_at":"2026-12-06T22:29:46+01:00","granted_scope":[]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		decodedLikeEncodingJSON(t, raw)
	})
}

// The session is handed to a session that decodes itself, and the result
// is what json.Unmarshal gives.
func TestDecodeSessionAsEncodingJSON(t *testing.T) {
	var want, got openid.DefaultSession
	raw := json.RawMessage(`{"subject":"u_alice","expires_at":{"access_token":"2026-12-06T21:39:46Z"}}`)
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if err := decodeSession(raw, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || got.Subject != "u_alice" {
		t.Fatalf("decodeSession: %+v, want %+v", got, want)
	}
	var into unmarshalerSession
	if err := decodeSession(raw, &into); err != nil || string(into.raw) != string(raw) {
		t.Fatalf("a session that decodes itself got %q (%v), want %q", into.raw, err, raw)
	}
}

type unmarshalerSession struct {
	openid.DefaultSession
	raw []byte
}

func (s *unmarshalerSession) UnmarshalJSON(b []byte) error {
	s.raw = b
	return nil
}

// Decoding the stored request of a token, which every lookup does:
//
//	go test ./storage/fositestore -run '^$' -bench DecodeRecord
func BenchmarkDecodeRecord(b *testing.B) {
	records := storedRecords(b)
	for _, name := range []string{"client_credentials", "signed in"} {
		raw := records[name]
		name = strings.ReplaceAll(name, " ", "_")
		b.Run(name+"/direct", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeRecord(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding_json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var rec record
				if err := json.Unmarshal(raw, &rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
