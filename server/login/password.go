package login

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's second recommended set (19 MiB, 2 passes),
// about 30 ms on one core here — slow for guessing, fine for sign-in.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// PasswordCheckMemory is what one password check at today's parameters
// holds while it runs: argon2id's memory, in bytes.
const PasswordCheckMemory = argonMemory << 10

// PasswordChecks is how many password checks may run at once, the bound of
// the gate every check passes (newGate's default): one per two cores. A
// check (p=1) keeps one core busy for its whole run, so half the cores
// stay free for everything else during a password spray — single sign-on,
// passkeys, tokens — and the memory checks hold stays bounded: on two
// cores one check in flight and the soft limit at 46 MiB keep a storm of
// wrong passwords under 100 MiB of RSS, which two checks and 65 MiB did
// not (the binary's mapped pages take another 27 MiB).
func PasswordChecks() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// MinPasswordLength follows NIST SP 800-63B for a password that is never
// the only factor.
const MinPasswordLength = 12

// HashPassword returns a PHC-format argon2id hash.
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := idKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("login: malformed password hash")

// Bounds on the parameters a stored hash may name. Argon2 panics on zero
// passes or lanes, and a corrupt or hostile row could otherwise ask one
// sign-in for terabytes of memory or years of work.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 64
)

// VerifyPassword checks password against a PHC argon2id hash, with the
// parameters the hash names (so raising them later keeps old hashes valid).
func VerifyPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return false, errBadHash
	}
	if iters < 1 || iters > maxArgonTime || threads < 1 || mem > maxArgonMemory {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := idKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// idKey is argon2.IDKey, with its memory given back to the system once
// password checks pause (see releaser).
func idKey(password, salt []byte, passes, memory uint32, threads uint8, keyLen uint32) []byte {
	argonMemoryRelease.begin()
	defer argonMemoryRelease.end()
	return argon2.IDKey(password, salt, passes, memory, threads, keyLen)
}

// argonMemoryRelease waits a second after the last check: long enough that
// a steady stream of sign-ins reuses the memory (a fresh 19 MiB costs page
// faults), short enough that a burst's memory does not stay with an idle
// process.
var argonMemoryRelease = &releaser{idle: time.Second, free: debug.FreeOSMemory}

// A releaser gives a password check's memory back to the system when no
// check has run for a while. A check's 19 MiB are garbage when it ends, and
// the heap keeps them for the next one (serve's memory limit leaves room
// for that); without checks, the collector has no reason to run and the
// scavenger keeps what the heap goal allows, so a burst of sign-ins would
// leave the process tens of MiB larger for good.
type releaser struct {
	idle time.Duration
	free func()

	mu      sync.Mutex
	running int
	timer   *time.Timer
}

func (r *releaser) begin() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running++
	if r.timer != nil {
		r.timer.Stop()
	}
}

func (r *releaser) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running--
	if r.running > 0 {
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(r.idle, r.free)
	} else {
		r.timer.Reset(r.idle)
	}
}

// dummyHash is verified against when the account does not exist, so the
// response time does not tell which emails are registered. It is made on
// first use: hashing costs ~30 ms that start-up should not pay.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("keygate-dummy-password")
	return h
})

// newPasswordProblem says what is wrong with a new password and its
// confirmation, or "".
func newPasswordProblem(password, confirm string) string {
	switch {
	case len(password) < MinPasswordLength:
		return "Use at least 12 characters."
	case len(password) > 1024:
		return "That password is too long."
	case password != confirm:
		return "The two passwords differ."
	}
	return ""
}

// hashPassword hashes a new password through the gate that bounds
// concurrent hashing; a busy gate asks the browser to retry.
func (h *Handler) hashPassword(ctx context.Context, w http.ResponseWriter, password string) (string, error) {
	var hash string
	var err error
	if gerr := h.gate.do(ctx, func() { hash, err = HashPassword(password) }); gerr != nil {
		if errors.Is(gerr, errBusy) {
			w.Header().Set("Retry-After", "2")
		}
		return "", gerr
	}
	return hash, err
}
