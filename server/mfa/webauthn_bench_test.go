package mfa

// The server-side cost of verifying one security-key assertion:
//
//	go test ./server/mfa -run '^$' -bench VerifyAssertion -benchmem
//
// ValidateLogin is go-webauthn's check alone over an assertion parsed once
// (client data, RP ID hash, flags, the ES256 signature, the counter);
// ParseAndValidate adds parsing the browser's JSON; FinishHandler is the
// whole finish endpoint over SQLite: session load, challenge consume, flow
// and credential reads, verification, then the sign-count and flow writes
// in one transaction.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/server/metrics"
	"github.com/keygate/keygate/server/session"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/sqlite/sqlitetest"
)

const benchOrigin = "https://id.example.com"

// benchKey is a device-bound key registered for one user through
// go-webauthn, as finishRegistration registers it.
type benchKey struct {
	p    *Passkeys
	rp   virtualwebauthn.RelyingParty
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
	user waUser
}

func newBenchKey(b *testing.B) *benchKey {
	b.Helper()
	p, err := NewPasskeys(WebAuthnConfig{Origins: []string{benchOrigin}})
	if err != nil {
		b.Fatal(err)
	}
	k := &benchKey{
		p:    p,
		rp:   virtualwebauthn.RelyingParty{ID: "id.example.com", Name: "keygate", Origin: benchOrigin},
		auth: virtualwebauthn.NewAuthenticator(),
		cred: virtualwebauthn.NewCredential(virtualwebauthn.KeyTypeEC2),
		user: waUser{u: storage.User{ID: "u_bench", Email: "bench@example.com"}},
	}
	opts, data, err := p.wa.BeginRegistration(k.user)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(opts)
	if err != nil {
		b.Fatal(err)
	}
	ao, err := virtualwebauthn.ParseAttestationOptions(string(raw))
	if err != nil {
		b.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(strings.NewReader(
		virtualwebauthn.CreateAttestationResponse(k.rp, k.auth, k.cred, *ao)))
	if err != nil {
		b.Fatal(err)
	}
	c, err := p.wa.CreateCredential(k.user, *data, parsed)
	if err != nil {
		b.Fatal(err)
	}
	k.user.creds = []storage.WebAuthnCredential{fromLib(k.user.u.ID, "Bench key", c, false, time.Now())}
	return k
}

// assertion begins a login and answers it with the key's counter at n.
func (k *benchKey) assertion(b *testing.B, n uint32) (*webauthn.SessionData, []byte) {
	b.Helper()
	opts, data, err := k.p.wa.BeginLogin(k.user, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(opts)
	if err != nil {
		b.Fatal(err)
	}
	ao, err := virtualwebauthn.ParseAssertionOptions(string(raw))
	if err != nil {
		b.Fatal(err)
	}
	k.cred.Counter = n
	return data, []byte(virtualwebauthn.CreateAssertionResponse(k.rp, k.auth, k.cred, *ao))
}

func BenchmarkVerifyAssertion(b *testing.B) {
	k := newBenchKey(b)

	b.Run("ValidateLogin", func(b *testing.B) {
		data, body := k.assertion(b, 1)
		parsed, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			cred, err := k.p.wa.ValidateLogin(k.user, *data, parsed)
			if err != nil || cred.Authenticator.CloneWarning {
				b.Fatal(err)
			}
		}
	})

	b.Run("ParseAndValidate", func(b *testing.B) {
		data, body := k.assertion(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			parsed, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.p.wa.ValidateLogin(k.user, *data, parsed); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("FinishHandler", func(b *testing.B) {
		ctx := b.Context()
		db := sqlitetest.Open(b)
		now := time.Now()
		k.user.u.CreatedAt, k.user.u.UpdatedAt = now, now
		if err := db.CreateUser(ctx, k.user.u); err != nil {
			b.Fatal(err)
		}
		if err := db.CreateWebAuthnCredential(ctx, k.user.creds[0]); err != nil {
			b.Fatal(err)
		}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		sessions := session.NewStore(db, session.Config{})
		h := New(Deps{Store: db, Passkeys: k.p, Sessions: sessions, Audit: audit.NewRecorder(db, logger, nil, nil),
			Metrics: metrics.New(), Logger: logger})

		// One browser session, and per iteration a flow at its second
		// factor, a stored challenge and the key's answer, counting up.
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		w := httptest.NewRecorder()
		sess, err := sessions.Load(r)
		if err != nil {
			b.Fatal(err)
		}
		csrf := sess.CSRFToken()
		if err := sess.Save(w); err != nil {
			b.Fatal(err)
		}
		cookie := w.Result().Cookies()[0]
		type call struct {
			challenge string
			body      []byte
		}
		calls := make([]call, b.N)
		for i := range calls {
			flowID := fmt.Sprintf("flow-%d", i)
			if err := db.CreateFlow(ctx, storage.Flow{ID: flowID, SessionHash: sess.IDHash(), UserID: k.user.u.ID,
				State: storage.FlowSecondFactor, RequiredACR: session.ACRMFA, MaxAge: -1, AMR: []string{"pwd"},
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			data, body := k.assertion(b, uint32(i+1))
			id, err := h.saveChallenge(ctx, sess, kindAssertion, k.user.u.ID, flowID, data)
			if err != nil {
				b.Fatal(err)
			}
			calls[i] = call{challenge: id, body: body}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, c := range calls {
			r := httptest.NewRequestWithContext(ctx, http.MethodPost,
				"/mfa/webauthn/assert/finish?challenge="+url.QueryEscape(c.challenge), bytes.NewReader(c.body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-CSRF-Token", csrf)
			r.AddCookie(cookie)
			w := httptest.NewRecorder()
			if err := h.finishAssertion(w, r); err != nil || w.Code != http.StatusOK {
				b.Fatalf("finish: %v, status %d: %s", err, w.Code, w.Body)
			}
		}
	})
}
