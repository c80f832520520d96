package mfa_test

// The WebAuthn ceremonies through the whole server (package servertest),
// with hostile JSON where webauthn.js sends the authenticator's answer.

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/servertest"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/server/session/sessiontest"
	"github.com/keygate/keygate/storage"
)

// ceremony is a fuzzed call: which ceremony, and whether the input is the
// whole finish body or the parts of one the harness assembles around the
// real challenge (so the fuzzer reaches past the challenge check to the
// attestation and assertion parsers, as a signed-in attacker could).
type ceremony struct {
	name       string // register, assert or passwordless
	structured bool   // the body is built around the real challenge
	beginOnly  bool   // the input is the begin call's body
}

var ceremonies = []ceremony{
	{name: "register"}, {name: "assert"}, {name: "passwordless"},
	{name: "register", structured: true}, {name: "assert", structured: true}, {name: "passwordless", structured: true},
	{name: "assert", beginOnly: true}, {name: "passwordless", beginOnly: true},
}

// webauthnFuzz is the server and the user the ceremonies are for.
type webauthnFuzz struct {
	in   *servertest.Instance
	user storage.User
	rp   virtualwebauthn.RelyingParty
}

// call is webauthn.js's post: JSON, the CSRF token in a header.
func (x *webauthnFuzz) call(tb testing.TB, b sessiontest.Browser, path string, body []byte) servertest.Reply {
	tb.Helper()
	r := x.in.Request(tb, http.MethodPost, path, "application/json", body, http.Header{"X-Csrf-Token": {b.CSRF}})
	r.AddCookie(b.Cookie)
	return servertest.Read(tb, x.in.HTTP, r)
}

// begin starts ceremony c in a browser that may run it: signed in with a
// fresh key tap to register, on a flow waiting for it to sign in. The
// begin call's body is beginBody, or the flow's as webauthn.js sends it.
func (x *webauthnFuzz) begin(tb testing.TB, c ceremony, beginBody []byte) (sessiontest.Browser, servertest.Reply) {
	tb.Helper()
	if c.name == "register" {
		b := x.in.Mint(tb, session.Auth{UserID: x.user.ID, ACR: session.ACRPhr, AMR: []string{"pwd", "hwk"}, AuthTime: time.Now()})
		return b, x.call(tb, b, "/mfa/webauthn/register/begin", []byte(`{}`))
	}
	b := x.in.Mint(tb, session.Auth{})
	f := storage.Flow{State: storage.FlowSecondFactor, UserID: x.user.ID, AMR: []string{"pwd"}}
	if c.name == "passwordless" {
		f = storage.Flow{}
	}
	flow := x.in.Flow(tb, b, f)
	if beginBody == nil {
		beginBody, _ = json.Marshal(map[string]string{"flow": flow.ID})
	}
	return b, x.call(tb, b, "/mfa/webauthn/"+c.name+"/begin", beginBody)
}

// begun is a begin call's answer.
type begun struct {
	Challenge string          `json:"challenge"` // the stored challenge's id, for the finish URL
	Options   json.RawMessage `json:"options"`   // for navigator.credentials
}

// challenge is the challenge itself, as the client data must name it.
func (bg begun) challenge() string {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	_ = json.Unmarshal(bg.Options, &o)
	return o.PublicKey.Challenge
}

func decodeBegun(tb testing.TB, r servertest.Reply) begun {
	tb.Helper()
	if r.Status != http.StatusOK {
		tb.Fatalf("begin: %s", r)
	}
	return servertest.Decode[begun](tb, r)
}

// answer is the finish body for the parts: the client data names the real
// challenge and origin; the rest is as given.
func (x *webauthnFuzz) answer(c ceremony, challenge string, credID, data, sig, handle []byte) []byte {
	b64 := base64.RawURLEncoding.EncodeToString
	typ, response := "webauthn.get", map[string]string{"authenticatorData": b64(data), "signature": b64(sig), "userHandle": b64(handle)}
	if c.name == "register" {
		typ, response = "webauthn.create", map[string]string{"attestationObject": b64(data)}
	}
	clientData, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": x.rp.Origin, "crossOrigin": false})
	response["clientDataJSON"] = b64(clientData)
	body, _ := json.Marshal(map[string]any{"id": b64(credID), "rawId": b64(credID), "type": "public-key", "response": response})
	return body
}

// FuzzWebAuthn: whatever a browser sends to a ceremony's begin or finish,
// the answer is never a server error; a sign-in never finishes without a
// signature over this ceremony's challenge by a key the user registered;
// and a registration that finishes stores the key it named, for this user.
func FuzzWebAuthn(f *testing.F) {
	x := &webauthnFuzz{in: servertest.Start(f)}
	x.rp = virtualwebauthn.RelyingParty{ID: "localhost", Name: "keygate", Origin: x.in.Issuer}
	nu, err := x.in.Manager().CreateUser(f.Context(), manage.UserSpec{Email: "keys@example.com"})
	if err != nil {
		f.Fatal(err)
	}
	x.user = nu.User
	x.addSeeds(f)
	f.Fuzz(func(t *testing.T, call uint8, body, credID, data, sig []byte) {
		c := ceremonies[int(call)%len(ceremonies)]
		if c.beginOnly {
			if _, r := x.begin(t, c, body); r.Status >= 500 {
				t.Fatalf("%s begin with %q: %s", c.name, body, r)
			}
			return
		}
		b, r := x.begin(t, c, nil)
		bg := decodeBegun(t, r)
		if c.structured {
			body = x.answer(c, bg.challenge(), credID, data, sig, body)
		}
		r = x.call(t, b, "/mfa/webauthn/"+c.name+"/finish?challenge="+url.QueryEscape(bg.Challenge), body)
		switch {
		case r.Status >= 500:
			t.Fatalf("%s finish with %q: %s", c.name, body, r)
		case r.Status < 300 && !(c.name == "register" && c.structured):
			t.Fatalf("%s finish accepted %q: %s", c.name, body, r)
		case r.Status < 300:
			stored, err := x.in.DB.GetWebAuthnCredential(t.Context(), credID)
			if err != nil || stored.UserID != x.user.ID {
				t.Fatalf("registration of %x finished, but the key stored is %+v (%v)", credID, stored, err)
			}
			// Keep the user's key list short: the next begin lists them all.
			if err := x.in.DB.DeleteWebAuthnCredential(t.Context(), credID); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// addSeeds registers a virtual key for the user, as a browser would, and
// adds what the browser sent as seeds; the user then has a key, so the
// sign-in ceremonies have something to ask for.
func (x *webauthnFuzz) addSeeds(f *testing.F) {
	key := virtualwebauthn.NewAuthenticator()
	cred := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeRSA)
	reg := ceremony{name: "register"}
	b, r := x.begin(f, reg, nil)
	bg := decodeBegun(f, r)
	opts, err := virtualwebauthn.ParseAttestationOptions(string(bg.Options))
	if err != nil {
		f.Fatal(err)
	}
	body := []byte(virtualwebauthn.CreateAttestationResponse(x.rp, key, cred, *opts))
	if r := x.call(f, b, "/mfa/webauthn/register/finish?challenge="+url.QueryEscape(bg.Challenge), body); r.Status != http.StatusOK {
		f.Fatalf("register a key: %s", r)
	}
	var att struct {
		Response struct {
			AttestationObject string `json:"attestationObject"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &att); err != nil {
		f.Fatal(err)
	}
	object, _ := base64.RawURLEncoding.DecodeString(att.Response.AttestationObject)
	f.Add(uint8(0), body, []byte(nil), []byte(nil), []byte(nil))
	f.Add(uint8(3), []byte(nil), cred.ID, object, []byte(nil))
	// A second key, attested with "none", which signs nothing: it registers
	// under any challenge.
	other := virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeRSA)
	var att2 struct {
		Response struct {
			AttestationObject string `json:"attestationObject"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(virtualwebauthn.CreateAttestationResponse(x.rp, key, other, *opts)), &att2); err != nil {
		f.Fatal(err)
	}
	packed, _ := base64.RawURLEncoding.DecodeString(att2.Response.AttestationObject)
	f.Add(uint8(3), []byte(nil), other.ID, noneAttestation(f, packed), []byte(nil))

	sign := ceremony{name: "assert"}
	_, r = x.begin(f, sign, nil)
	bg = decodeBegun(f, r)
	aopts, err := virtualwebauthn.ParseAssertionOptions(string(bg.Options))
	if err != nil {
		f.Fatal(err)
	}
	body = []byte(virtualwebauthn.CreateAssertionResponse(x.rp, key, cred, *aopts))
	var as struct {
		Response struct {
			AuthenticatorData, Signature, UserHandle string
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &as); err != nil {
		f.Fatal(err)
	}
	data, _ := base64.RawURLEncoding.DecodeString(as.Response.AuthenticatorData)
	sig, _ := base64.RawURLEncoding.DecodeString(as.Response.Signature)
	handle, _ := base64.RawURLEncoding.DecodeString(as.Response.UserHandle)
	f.Add(uint8(1), body, []byte(nil), []byte(nil), []byte(nil))
	f.Add(uint8(4), handle, cred.ID, data, sig)
	f.Add(uint8(5), []byte(x.user.ID), cred.ID, data, sig)
}

// noneAttestation is the attestation object with the same authenticator
// data, in the "none" format: CBOR {"fmt": "none", "attStmt": {},
// "authData": ...}, written by hand to need no CBOR library.
func noneAttestation(tb testing.TB, object []byte) []byte {
	tb.Helper()
	key := append([]byte{0x60 | 8}, "authData"...) // text string of 8 bytes
	i := bytes.Index(object, key)
	if i < 0 || i+len(key)+3 > len(object) || object[i+len(key)] != 0x59 {
		tb.Fatalf("no authData with a two-byte length in %x", object)
	}
	i += len(key)
	n := int(binary.BigEndian.Uint16(object[i+1:]))
	out := append([]byte{0xa3, 0x63}, "fmt"...)
	out = append(append(out, 0x64), "none"...)
	out = append(append(out, 0x67), "attStmt"...)
	out = append(append(out, 0xa0), key...)
	return append(out, object[i:i+3+n]...)
}
