package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/conformance"
	"github.com/keygate/keygate/storage/internal/clientcache"
)

// openTemp opens a new database in the test's temporary directory.
func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keygate.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	conformance.RunTests(t, func(t *testing.T) storage.Store {
		s, _ := openTemp(t)
		return s
	})
}

var t0 = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

func TestMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest := len(ms)
	if latest < 4 {
		t.Fatalf("%d migrations embedded, want at least 4", latest)
	}

	t.Run("they apply to an empty database", func(t *testing.T) {
		s, _ := openTemp(t)
		ctx := t.Context()
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != latest {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
		}
		for _, table := range []string{"user", "enrollment", "totp_credential", "recovery_code",
			"client", "browser_session", "flow", "token", "audit_event", "outbox_message",
			"signing_key", "attempt", "meta", "schema_migrations",
			"webauthn_credential", "webauthn_challenge", "device", "signin"} {
			if n := countSchema(t, s, "table", table); n != 1 {
				t.Errorf("table %s: count %d", table, n)
			}
		}
		for _, index := range []string{"webauthn_credential_user_id", "webauthn_credential_aaguid",
			"webauthn_challenge_expires_at", "device_user_id_last_seen", "signin_user_id_time",
			"signin_time", "browser_session_sid"} {
			if n := countSchema(t, s, "index", index); n != 1 {
				t.Errorf("index %s: count %d", index, n)
			}
		}
	})

	t.Run("applying them again is a no-op", func(t *testing.T) {
		s, path := openTemp(t)
		ctx := t.Context()
		if err := s.SetMeta(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		if err := s.migrate(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var rows, first, last int
		if err := s.rdb.QueryRowContext(ctx,
			`SELECT count(*), min(version), max(version) FROM schema_migrations`).Scan(&rows, &first, &last); err != nil {
			t.Fatal(err)
		}
		if rows != latest || first != 1 || last != latest {
			t.Fatalf("schema_migrations has %d rows, versions %d to %d; want %d rows, 1 to %d",
				rows, first, last, latest, latest)
		}
		if v, err := s.GetMeta(ctx, "k"); err != nil || v != "v" {
			t.Fatalf("GetMeta after reopening = %q, %v", v, err)
		}
	})

	t.Run("a database at version 1 upgrades with its data intact", func(t *testing.T) {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "keygate.db")
		old := openAt(t, path, ms[:1])
		if v, err := old.schemaVersion(ctx, old.wdb); err != nil || v != 1 {
			t.Fatalf("schema version of the old database = %d, %v; want 1", v, err)
		}
		var n int
		if err := old.wdb.QueryRowContext(ctx,
			`SELECT count(*) FROM sqlite_schema WHERE name LIKE 'webauthn%'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a version 1 database has %d webauthn objects, %v", n, err)
		}
		// Only writes: a Store built by openAt has no reader pool.
		for _, err := range []error{
			oldUser(ctx, old, "u", "u@example.com", "U"),
			old.PutTOTP(ctx, storage.TOTPCredential{UserID: "u", Sealed: []byte("seed"), LastStep: 9, CreatedAt: t0}),
			old.ReplaceRecoveryCodes(ctx, "u", [][]byte{[]byte("a"), []byte("b")}),
			old.SetMeta(ctx, "issuer", "https://id.example.com"),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := old.AppendAudit(ctx, storage.AuditEvent{Time: t0, Type: "user.created", UserID: "u"}); err != nil {
			t.Fatal(err)
		}
		if err := old.wdb.Close(); err != nil {
			t.Fatal(err)
		}

		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v, err := s.SchemaVersion(ctx); err != nil || v != latest {
			t.Fatalf("SchemaVersion after the upgrade = %d, %v; want %d", v, err, latest)
		}
		if u, err := s.GetUser(ctx, "u"); err != nil || u.Name != "U" || !u.CreatedAt.Equal(t0) {
			t.Errorf("GetUser = %+v, %v", u, err)
		}
		if c, err := s.GetTOTP(ctx, "u"); err != nil || c.LastStep != 9 || string(c.Sealed) != "seed" {
			t.Errorf("GetTOTP = %+v, %v", c, err)
		}
		if n, err := s.CountRecoveryCodes(ctx, "u"); err != nil || n != 2 {
			t.Errorf("CountRecoveryCodes = %d, %v; want 2", n, err)
		}
		if v, err := s.GetMeta(ctx, "issuer"); err != nil || v != "https://id.example.com" {
			t.Errorf("GetMeta = %q, %v", v, err)
		}
		var v storage.ChainVerifier
		if err := s.WalkAudit(ctx, v.Check); err != nil || v.Count != 1 {
			t.Errorf("the chain after the upgrade: %d events, %v", v.Count, err)
		}

		// The new tables work, and reference the users the old ones hold.
		cred := storage.WebAuthnCredential{ID: []byte("k"), UserID: "u", AAGUID: make([]byte, 16), CreatedAt: t0}
		if err := s.CreateWebAuthnCredential(ctx, cred); err != nil {
			t.Fatal(err)
		}
		cred.ID = []byte("ghost's")
		cred.UserID = "ghost"
		if err := s.CreateWebAuthnCredential(ctx, cred); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a credential for an unknown user after the upgrade: %v, want ErrNotFound", err)
		}
		if err := s.CreateChallenge(ctx, storage.Challenge{ID: "c", ExpiresAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetWebAuthnCredential(ctx, []byte("k")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetWebAuthnCredential after DeleteUser: %v, want ErrNotFound", err)
		}
	})

	t.Run("a database at version 2 upgrades with its data intact", func(t *testing.T) {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "keygate.db")
		old := openAt(t, path, ms[:2])
		if v, err := old.schemaVersion(ctx, old.wdb); err != nil || v != 2 {
			t.Fatalf("schema version of the old database = %d, %v; want 2", v, err)
		}
		var n int
		if err := old.wdb.QueryRowContext(ctx,
			`SELECT count(*) FROM sqlite_schema WHERE name IN ('device', 'signin')`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a version 2 database has %d of the risk tables, %v", n, err)
		}
		cred := storage.WebAuthnCredential{ID: []byte("k"), UserID: "u", Name: "Key", AAGUID: make([]byte, 16),
			Transports: []string{"usb"}, SignCount: 41, CreatedAt: t0}
		// Only writes: a Store built by openAt has no reader pool.
		for _, err := range []error{
			oldUser(ctx, old, "u", "u@example.com", "U"),
			oldUser(ctx, old, "v", "v@example.com", ""),
			old.PutTOTP(ctx, storage.TOTPCredential{UserID: "u", Sealed: []byte("seed"), LastStep: 9, CreatedAt: t0}),
			old.CreateWebAuthnCredential(ctx, cred),
			old.SetMeta(ctx, "issuer", "https://id.example.com"),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := old.AppendAudit(ctx, storage.AuditEvent{Time: t0, Type: "user.created", UserID: "u"}); err != nil {
			t.Fatal(err)
		}
		if err := old.wdb.Close(); err != nil {
			t.Fatal(err)
		}

		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v, err := s.SchemaVersion(ctx); err != nil || v != latest {
			t.Fatalf("SchemaVersion after the upgrade = %d, %v; want %d", v, err, latest)
		}
		if u, err := s.GetUser(ctx, "u"); err != nil || u.Name != "U" || !u.CreatedAt.Equal(t0) {
			t.Errorf("GetUser = %+v, %v", u, err)
		}
		if c, err := s.GetTOTP(ctx, "u"); err != nil || c.LastStep != 9 || string(c.Sealed) != "seed" {
			t.Errorf("GetTOTP = %+v, %v", c, err)
		}
		if c, err := s.GetWebAuthnCredential(ctx, cred.ID); err != nil || c.SignCount != 41 || c.Name != "Key" ||
			len(c.Transports) != 1 || c.Transports[0] != "usb" {
			t.Errorf("GetWebAuthnCredential = %+v, %v", c, err)
		}
		if v, err := s.GetMeta(ctx, "issuer"); err != nil || v != "https://id.example.com" {
			t.Errorf("GetMeta = %q, %v", v, err)
		}
		var v storage.ChainVerifier
		if err := s.WalkAudit(ctx, v.Check); err != nil || v.Count != 1 {
			t.Errorf("the chain after the upgrade: %d events, %v", v.Count, err)
		}

		// The new tables work, and reference the users the old ones hold.
		for _, userID := range []string{"u", "v"} {
			if err := s.TouchDevice(ctx, storage.Device{ID: "d", UserID: userID, LastSeen: t0}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RecordSignIn(ctx, storage.SignInRecord{UserID: userID, Time: t0, Country: "FR"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TouchDevice(ctx, storage.Device{ID: "d", UserID: "ghost", LastSeen: t0}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a device for an unknown user after the upgrade: %v, want ErrNotFound", err)
		}
		if _, err := s.RecordSignIn(ctx, storage.SignInRecord{UserID: "ghost", Time: t0}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a sign-in for an unknown user after the upgrade: %v, want ErrNotFound", err)
		}
		if err := s.DeleteUser(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetDevice(ctx, "u", "d"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetDevice after DeleteUser: %v, want ErrNotFound", err)
		}
		if rs, err := s.RecentSignIns(ctx, "u", 0); err != nil || len(rs) != 0 {
			t.Errorf("RecentSignIns after DeleteUser = %d, %v; want none", len(rs), err)
		}
		if _, err := s.GetDevice(ctx, "v", "d"); err != nil {
			t.Errorf("GetDevice of another user after DeleteUser: %v", err)
		}
		if cs, err := s.SignInCountries(ctx, "v"); err != nil || len(cs) != 1 {
			t.Errorf("SignInCountries of another user after DeleteUser = %v, %v", cs, err)
		}
	})

	t.Run("a database at version 3 upgrades with its data intact", func(t *testing.T) {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "keygate.db")
		old := openAt(t, path, ms[:3])
		if v, err := old.schemaVersion(ctx, old.wdb); err != nil || v != 3 {
			t.Fatalf("schema version of the old database = %d, %v; want 3", v, err)
		}
		var n int
		if err := old.wdb.QueryRowContext(ctx,
			`SELECT count(*) FROM pragma_table_info('client') WHERE name LIKE 'previous_secret%' OR name LIKE '%token_ttl'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a version 3 database has %d of the new client columns, %v", n, err)
		}
		// The client as keygate 3 wrote it: the columns it knew, no more.
		// This Store's CreateClient would write the new columns too.
		if _, err := old.wdb.ExecContext(ctx, `
			INSERT INTO client (id, name, secret_hash, redirect_uris, grant_types, scopes,
				min_acr, max_auth_age, token_format, created_at, updated_at)
			VALUES ('app', 'The App', x'6f6c64', '["https://app.example.com/cb"]',
				'["authorization_code"]', '["openid"]', 'mfa', ?, 'jwt', ?, ?)`,
			int64(12*time.Hour), t0.UnixMicro(), t0.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		// Only writes: a Store built by openAt has no reader pool.
		for _, err := range []error{
			oldUser(ctx, old, "u", "ada@example.com", "Ada Lovelace"),
			oldUser(ctx, old, "v", "grace@example.com", "Grace Hopper"),
			old.CreateSession(ctx, storage.BrowserSession{IDHash: []byte("h"), SID: "sid-1", UserID: "u", ExpiresAt: t0.Add(time.Hour)}),
			old.CreateSession(ctx, storage.BrowserSession{IDHash: []byte("h2"), SID: "sid-2", UserID: "v", ExpiresAt: t0.Add(time.Hour)}),
			old.TouchDevice(ctx, storage.Device{ID: "d", UserID: "u", LastSeen: t0}),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			if _, err := old.AppendAudit(ctx, storage.AuditEvent{Time: t0, Type: "user.created", UserID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := old.wdb.Close(); err != nil {
			t.Fatal(err)
		}

		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v, err := s.SchemaVersion(ctx); err != nil || v != latest {
			t.Fatalf("SchemaVersion after the upgrade = %d, %v; want %d", v, err, latest)
		}

		// The old client reads back as written, with the new fields zero,
		// and the groups scope an OpenID app may now ask for (0009).
		want := storage.Client{ID: "app", Name: "The App", SecretHash: []byte("old"),
			RedirectURIs: []string{"https://app.example.com/cb"}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid", "groups"}, MinACR: "mfa", MaxAuthAge: 12 * time.Hour, TokenFormat: "jwt",
			CreatedAt: t0, UpdatedAt: t0}
		c, err := s.GetClient(ctx, "app")
		if err != nil || !reflect.DeepEqual(c, want) {
			t.Fatalf("GetClient after the upgrade =\n %+v, %v; want\n %+v", c, err, want)
		}
		// And takes the new ones.
		if err := s.UpdateClient(ctx, "app", func(c *storage.Client) error {
			c.PreviousSecretHash, c.SecretHash = c.SecretHash, []byte("new")
			c.PreviousSecretExpiresAt = t0.Add(time.Hour)
			c.AccessTokenTTL, c.RefreshTokenTTL = time.Minute, time.Hour
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want.PreviousSecretHash, want.SecretHash = []byte("old"), []byte("new")
		want.PreviousSecretExpiresAt = t0.Add(time.Hour)
		want.AccessTokenTTL, want.RefreshTokenTTL = time.Minute, time.Hour
		if c, err := s.GetClient(ctx, "app"); err != nil || !reflect.DeepEqual(c, want) {
			t.Fatalf("GetClient after an update =\n %+v, %v; want\n %+v", c, err, want)
		}

		if us, total, err := s.SearchUsers(ctx, "LOVELACE", 0, 0); err != nil || total != 1 || len(us) != 1 || us[0].ID != "u" {
			t.Errorf("SearchUsers after the upgrade = %+v, %d, %v; want user u", us, total, err)
		}
		if userID, err := s.DeleteSessionBySID(ctx, "sid-1"); err != nil || userID != "u" {
			t.Errorf("DeleteSessionBySID after the upgrade = %q, %v; want u", userID, err)
		}
		if _, err := s.GetSession(ctx, []byte("h2"), t0); err != nil {
			t.Errorf("the other session after DeleteSessionBySID: %v", err)
		}
		if _, err := s.GetDevice(ctx, "u", "d"); err != nil {
			t.Errorf("GetDevice after the upgrade: %v", err)
		}
		var v storage.ChainVerifier
		if err := s.WalkAudit(ctx, v.Check); err != nil || v.Count != 3 {
			t.Errorf("the chain after the upgrade: %d events, %v", v.Count, err)
		}
		if es, err := s.ListAudit(ctx, storage.AuditFilter{BeforeSeq: 3}); err != nil || len(es) != 2 || es[0].Seq != 2 {
			t.Errorf("ListAudit before seq 3 after the upgrade = %d events, %v", len(es), err)
		}
	})

	t.Run("a database at version 7 counts as enrolled exactly the users with a confirmed factor, and its administrators keep the role", func(t *testing.T) {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "keygate.db")
		old := openAt(t, path, ms[:7])
		for _, err := range []error{
			oldUser(ctx, old, "totp", "totp@example.com", ""),
			oldUser(ctx, old, "key", "key@example.com", ""),
			oldUser(ctx, old, "pending", "pending@example.com", ""),
			oldUser(ctx, old, "unconfirmed", "unconfirmed@example.com", ""),
			oldUser(ctx, old, "new", "new@example.com", ""),
			old.PutTOTP(ctx, storage.TOTPCredential{UserID: "totp", Sealed: []byte("s"), ConfirmedAt: t0, CreatedAt: t0}),
			old.PutTOTP(ctx, storage.TOTPCredential{UserID: "unconfirmed", Sealed: []byte("s"), CreatedAt: t0}),
			old.CreateWebAuthnCredential(ctx, storage.WebAuthnCredential{ID: []byte("k"), UserID: "key", AAGUID: make([]byte, 16), CreatedAt: t0}),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := old.wdb.ExecContext(ctx, `UPDATE user SET password_hash = 'h' WHERE id != 'new'`); err != nil {
			t.Fatal(err)
		}
		// And an administrator of the days of the admin flag.
		if _, err := old.wdb.ExecContext(ctx, `UPDATE user SET admin = 1 WHERE id = 'key'`); err != nil {
			t.Fatal(err)
		}
		if err := old.wdb.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for id, want := range map[string]bool{"totp": true, "key": true, "pending": false, "unconfirmed": false, "new": false} {
			u, err := s.GetUser(ctx, id)
			if err != nil || u.Enrolled() != want {
				t.Errorf("user %s: enrolled %v, %v; want %v", id, u.Enrolled(), err, want)
			}
			if wantRole := map[bool]string{true: storage.RoleAdmin}[id == "key"]; u.Role != wantRole {
				t.Errorf("user %s: role %q, want %q", id, u.Role, wantRole)
			}
		}
	})

	t.Run("a database from a newer keygate is refused", func(t *testing.T) {
		s, path := openTemp(t)
		ctx := t.Context()
		if _, err := s.wdb.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, latest+1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err := Open(ctx, path)
		if err == nil || !strings.Contains(err.Error(), "newer") && !strings.Contains(err.Error(), "only knows") {
			t.Fatalf("Open of a newer database: %v, want a refusal", err)
		}
	})
}

// countSchema counts the schema objects of a type with a name.
func countSchema(t *testing.T, s *Store, typ, name string) int {
	t.Helper()
	var n int
	err := s.rdb.QueryRowContext(t.Context(),
		`SELECT count(*) FROM sqlite_schema WHERE type = ? AND name = ?`, typ, name).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// oldUser inserts a user into a database at an older schema, whose user
// table may lack today's columns.
func oldUser(ctx context.Context, s *Store, id, email, name string) error {
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO user (id, email, name, created_at) VALUES (?, ?, ?, ?)`,
		id, email, name, micros(t0))
	return err
}

// openAt creates a database at path with only the migrations ms applied,
// as an older keygate would have left it. The Store it returns has just
// the writer; the caller closes it with s.wdb.Close.
func openAt(t *testing.T, path string, ms []migration) *Store {
	t.Helper()
	wdb, err := sql.Open("sqlite3", path+"?_foreign_keys=on&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	wdb.SetMaxOpenConns(1)
	t.Cleanup(func() { wdb.Close() })
	s := &Store{wdb: wdb, path: path, clients: clientcache.New(clientCacheTTL, false)}
	if err := s.applyMigrations(t.Context(), ms); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuditRowsCannotBeChangedEvenByHand(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	for i := range 3 {
		if _, err := s.AppendAudit(ctx, storage.AuditEvent{Time: t0.Add(time.Duration(i) * time.Second), Type: "x", Result: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{
		`UPDATE audit_event SET result = 'failure' WHERE seq = 2`,
		`UPDATE audit_event SET hash = x'00'`,
		`DELETE FROM audit_event WHERE seq = 3`,
		`DELETE FROM audit_event`,
		`INSERT OR REPLACE INTO audit_event (seq, hash) VALUES (1, x'00')`,
	} {
		t.Run(stmt, func(t *testing.T) {
			_, err := s.wdb.ExecContext(ctx, stmt)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("got %v, want the append-only trigger to abort it", err)
			}
		})
	}
	var v storage.ChainVerifier
	if err := s.WalkAudit(ctx, v.Check); err != nil || v.Count != 3 {
		t.Fatalf("chain after the attempts: %d events, %v", v.Count, err)
	}
}

func TestDataSurvivesReopening(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	tok := storage.TokenRecord{Kind: storage.KindAccessToken, Signature: "sig", RequestID: "r", Active: true,
		Request: []byte("{}"), RequestedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, storage.AuditEvent{Time: t0, Type: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetUser(ctx, "u"); err != nil {
		t.Error(err)
	}
	if got, err := s.GetToken(ctx, tok.Kind, tok.Signature); err != nil || !got.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("GetToken = %+v, %v", got, err)
	}
	e, err := s.AppendAudit(ctx, storage.AuditEvent{Time: t0, Type: "y"})
	if err != nil || e.Seq != 2 {
		t.Errorf("AppendAudit after reopening: seq %d, %v; want 2", e.Seq, err)
	}
}

func TestBackup(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, storage.AuditEvent{Time: t0, Type: "x"}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	dst := filepath.Join(dir, "backup.db")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Backup(cancelled, dst); err == nil {
		t.Fatal("a cancelled Backup succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("a cancelled Backup left %v", left)
	}
	if err := s.Backup(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, dst); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a second Backup to the same path: %v, want fs.ErrExist", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
		t.Fatalf("after two backups the directory holds %v, want the backup alone", left)
	}

	b, err := Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.GetUserByEmail(ctx, "U@example.com"); err != nil {
		t.Error(err)
	}
	var v storage.ChainVerifier
	if err := b.WalkAudit(ctx, v.Check); err != nil || v.Count != 1 {
		t.Errorf("the backup's chain: %d events, %v", v.Count, err)
	}
}

func TestForeignKeys(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()

	t.Run("a credential for an unknown user is not found", func(t *testing.T) {
		err := s.CreateEnrollment(ctx, storage.Enrollment{TokenHash: []byte("h"), UserID: "ghost", ExpiresAt: t0})
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})

	t.Run("deleting a user deletes their credentials", func(t *testing.T) {
		if err := s.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutTOTP(ctx, storage.TOTPCredential{UserID: "u", Sealed: []byte("s")}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceRecoveryCodes(ctx, "u", [][]byte{[]byte("a")}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTOTP(ctx, "u"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetTOTP after DeleteUser: %v", err)
		}
		if n, err := s.CountRecoveryCodes(ctx, "u"); err != nil || n != 0 {
			t.Errorf("CountRecoveryCodes after DeleteUser: %d, %v", n, err)
		}
	})
}

func TestFilesAreOwnerOnly(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	if err := s.SetMeta(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", backup} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group or others", filepath.Base(p), perm)
		}
	}
}

func TestReadersCannotWrite(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.rdb.ExecContext(t.Context(), `INSERT INTO meta (key, value) VALUES ('a', 'b')`); err == nil {
		t.Fatal("a write on the reader pool succeeded")
	}
}

func TestOpenRefusesNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file::memory:?cache=shared", "a?b.db"} {
		if s, err := Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestSweepDeletesInBatches(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	const n = sweepBatch*2 + 17
	err := s.InTx(ctx, func(ctx context.Context) error {
		for i := range n {
			if err := s.RecordAttempt(ctx, "s", "k", t0.Add(time.Duration(i)*time.Microsecond)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DeleteAttemptsBefore(ctx, t0.Add(time.Hour))
	if err != nil || got != n {
		t.Fatalf("DeleteAttemptsBefore = %d, %v; want %d", got, err, n)
	}
}

// SIDs are random, but nothing in the schema makes them unique: were two
// rows to share one, DeleteSessionBySID must not leave one behind.
func TestDeleteSessionBySIDDeletesEveryMatch(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"h1", "h2"} {
		if err := s.CreateSession(ctx, storage.BrowserSession{IDHash: []byte(h), SID: "dup", UserID: "u", ExpiresAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if userID, err := s.DeleteSessionBySID(ctx, "dup"); err != nil || userID != "u" {
		t.Fatalf("DeleteSessionBySID = %q, %v; want u", userID, err)
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM browser_session`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d sessions left, %v; want none", n, err)
	}
}
