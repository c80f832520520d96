package mfa

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// testSecret is a fixed 160-bit base32 seed.
const testSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// t0 is 10 seconds into time step t0Step.
var (
	t0     = time.Date(2030, 6, 15, 12, 0, 10, 0, time.UTC)
	t0Step = t0.Unix() / totpPeriod
)

// codeAt is what an authenticator app shows for testSecret during step.
func codeAt(t *testing.T, secret string, step int64) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
		Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func TestMatchTOTP(t *testing.T) {
	tests := []struct {
		name   string
		offset int64 // steps from t0's step the code was made for
		ok     bool
	}{
		{"the current step's code is accepted", 0, true},
		{"the previous step's code is accepted (clock skew)", -1, true},
		{"the next step's code is accepted (clock skew)", +1, true},
		{"a code two steps old is refused", -2, false},
		{"a code two steps ahead is refused", +2, false},
		{"a code from an hour ago is refused", -120, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := t0Step + tt.offset
			code := codeAt(t, testSecret, want)
			if tt.offset != 0 {
				// The codes of neighbouring steps could collide by chance;
				// then the case proves nothing.
				for d := int64(-1); d <= 1; d++ {
					if !tt.ok && code == codeAt(t, testSecret, t0Step+d) {
						t.Skipf("code of step %+d equals that of step %+d", tt.offset, d)
					}
				}
			}
			step, ok := matchTOTP(testSecret, code, t0)
			if ok != tt.ok {
				t.Fatalf("matchTOTP(code of step %+d) ok = %v, want %v", tt.offset, ok, tt.ok)
			}
			if ok && step != want {
				t.Fatalf("matchTOTP returned step %d, want %d (the step the code was made for)", step, want)
			}
		})
	}

	t.Run("the step follows the clock: at the last second of a step its code still matches that step", func(t *testing.T) {
		end := time.Unix((t0Step+1)*totpPeriod-1, 0)
		step, ok := matchTOTP(testSecret, codeAt(t, testSecret, t0Step), end)
		if !ok || step != t0Step {
			t.Fatalf("matchTOTP = %d, %v; want %d, true", step, ok, t0Step)
		}
	})

	t.Run("a code made with another secret is refused", func(t *testing.T) {
		other := codeAt(t, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", t0Step)
		for d := int64(-1); d <= 1; d++ {
			if other == codeAt(t, testSecret, t0Step+d) {
				t.Skip("the two secrets' codes collide at this time")
			}
		}
		if _, ok := matchTOTP(testSecret, other, t0); ok {
			t.Fatal("a code of another secret matched")
		}
	})

	current := codeAt(t, testSecret, t0Step)
	malformed := []struct {
		name, code string
	}{
		{"an empty code", ""},
		{"a five-digit code", current[:5]},
		{"a seven-digit code", current + "0"},
		{"the code with a space in it", current[:3] + " " + current[3:]},
		{"the code surrounded by spaces", " " + current + " "},
		{"six letters", "abcdef"},
		{"the code with a leading sign", "+" + current[1:]},
		{"a very long string of digits", strings.Repeat(current, 100)},
	}
	for _, tt := range malformed {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			if step, ok := matchTOTP(testSecret, tt.code, t0); ok {
				t.Fatalf("matchTOTP(%q) = %d, true; want refused", tt.code, step)
			}
		})
	}

	t.Run("a seed that is not base32 matches nothing", func(t *testing.T) {
		if _, ok := matchTOTP("not base32 at all!", current, t0); ok {
			t.Fatal("a code matched an unreadable seed")
		}
	})
}

func TestNewTOTPKey(t *testing.T) {
	key, err := newTOTPKey("keygate id.example.com", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want string
	}{
		{"the issuer is the one given", key.Issuer(), "keygate id.example.com"},
		{"the account is the one given", key.AccountName(), "ann@example.com"},
		{"the period is 30 seconds", time.Duration(key.Period() * uint64(time.Second)).String(), "30s"},
		{"the algorithm is SHA-1, which every app understands", key.Algorithm().String(), "SHA1"},
		{"codes have six digits", key.Digits().String(), "6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	t.Run("the secret is 160 bits and codes made from it match", func(t *testing.T) {
		if n := len(key.Secret()); n != 32 { // 20 bytes in unpadded base32
			t.Fatalf("secret has %d base32 characters, want 32", n)
		}
		step, ok := matchTOTP(key.Secret(), codeAt(t, key.Secret(), t0Step), t0)
		if !ok || step != t0Step {
			t.Fatalf("matchTOTP = %d, %v", step, ok)
		}
	})
	t.Run("the QR code is a PNG data URI", func(t *testing.T) {
		uri, err := qrDataURI(key)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(uri, "data:image/png;base64,iVBORw0KGgo") {
			t.Fatalf("QR data URI starts %.40q", uri)
		}
	})
}
