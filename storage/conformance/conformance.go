// Package conformance is the behavioural suite every storage.Store backend
// must pass. A backend's test calls RunTests with a constructor:
//
//	func TestConformance(t *testing.T) {
//		conformance.RunTests(t, func(t *testing.T) storage.Store {
//			s := open(t) // a new, empty store
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A few checks need more than one new store: ClaimRace and EnsureKeyRace
// take several stores on one database (replicas, where a backend has
// them), TrimSignIns a backend's sweep with its bounds as arguments.
// RunTests runs the races on one store; a backend's tests run them on
// several, and run TrimSignIns.
//
// The suite checks what storage's doc comments promise and nothing about
// how: it imports no backend. It never sleeps and never reads the clock;
// every time it passes is explicit, in UTC and whole seconds, so a backend
// may keep any precision down to the microsecond.
package conformance

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
)

// NewStore returns a new, empty store; the caller's t.Cleanup closes it.
type NewStore = func(t *testing.T) storage.Store

// RunTests runs the whole suite. Tests never share a store, except the
// cases of one table, which share their parent test's.
//
// Where storage's doc comments leave it open, the suite pins the
// convention keygate relies on: a delete, deactivation or mark of a row
// that does not exist is ErrNotFound; an update closure's error is
// returned (errors.Is finds it); revocations count only the tokens they
// deactivated; disabling a WebAuthn credential that is disabled already
// succeeds and keeps its first time and reason; a device touch older than
// the device's LastSeen counts but leaves the last sighting as it was, and
// one at the same time replaces it; RecentSignIns with a limit <= 0 returns
// a default number of sign-ins rather than none; SearchUsers takes its
// query literally (no wildcards), pages 50 users by default and at most
// 500, counts a negative offset as 0 and reports the total even for a page
// past the end; DeleteSessionBySID refuses an empty SID with an error.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	groups := []struct {
		name string
		run  func(t *testing.T, newStore NewStore)
	}{
		{"users", testUsers},
		{"groups", testGroups},
		{"enrollments", testEnrollments},
		{"links", testLinks},
		{"totp", testTOTP},
		{"recovery codes", testRecoveryCodes},
		{"webauthn credentials", testWebAuthn},
		{"challenges", testChallenges},
		{"clients", testClients},
		{"browser sessions", testSessions},
		{"flows", testFlows},
		{"tokens", testTokens},
		{"audit", testAudit},
		{"outbox", testOutbox},
		{"signing keys", testSigningKeys},
		{"attempts", testAttempts},
		{"hostile text", testHostileText},
		{"devices", testDevices},
		{"forget device", testForgetDevice},
		{"sign-ins", testSignIns},
		{"meta", testMeta},
		{"transactions", testTransactions},
		{"concurrency", testConcurrency},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.run(t, newStore) })
	}
}

// t0 is the suite's "now"; at is a time relative to it.
var t0 = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails unless err matches target (errors.Is).
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// same fails unless got and want hold the same values; see equal.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !equal(reflect.ValueOf(got), reflect.ValueOf(want)) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// equal compares like reflect.DeepEqual except that times are compared
// with Equal (a backend may return another location) and that nil and
// empty slices or maps are alike (a backend need not tell them apart).
func equal(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == timeType {
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if !equal(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equal(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if !equal(a.MapIndex(k), b.MapIndex(k)) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}

// newUser stores a user that credentials, sessions and tokens can belong to.
func newUser(t *testing.T, ctx context.Context, st storage.Store, id string) storage.User {
	t.Helper()
	u := storage.User{
		ID:        id,
		Email:     id + "@example.com",
		Name:      "User " + id,
		CreatedAt: t0,
		UpdatedAt: t0,
	}
	ok(t, st.CreateUser(ctx, u))
	return u
}
