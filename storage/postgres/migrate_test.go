package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

var t0 = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

func TestMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest := len(ms)
	if latest < 9 {
		t.Fatalf("%d migrations embedded, want at least 9, numbered as storage/sqlite's", latest)
	}
	versions := func(t *testing.T, s *Store) []int {
		t.Helper()
		rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		var vs []int
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		return vs
	}
	all := make([]int, latest)
	for i := range all {
		all[i] = i + 1
	}

	t.Run("they apply to an empty database, and again are a no-op", func(t *testing.T) {
		dsn := pgtest.Empty(t)
		s := openDSN(t, dsn)
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != latest {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
		}
		if err := s.SetMeta(t.Context(), "k", "v"); err != nil {
			t.Fatal(err)
		}
		again := openDSN(t, dsn)
		if vs := versions(t, again); !slices.Equal(vs, all) {
			t.Fatalf("schema_migrations holds %v, want %v", vs, all)
		}
		if v, err := again.GetMeta(t.Context(), "k"); err != nil || v != "v" {
			t.Fatalf("GetMeta after opening again = %q, %v", v, err)
		}
	})

	t.Run("replicas opening a new database at once migrate it once", func(t *testing.T) {
		dsn := pgtest.Empty(t)
		const replicas = 6
		stores := make([]*Store, replicas)
		errs := make([]error, replicas)
		start := make(chan struct{})
		done := make(chan int)
		for i := range replicas {
			go func() {
				<-start
				stores[i], errs[i] = Open(t.Context(), dsn)
				done <- i
			}()
		}
		close(start)
		for range replicas {
			<-done
		}
		for i, s := range stores {
			if errs[i] != nil {
				t.Fatalf("replica %d: %v", i, errs[i])
			}
			t.Cleanup(func() { s.Close() })
		}
		if vs := versions(t, stores[0]); !slices.Equal(vs, all) {
			t.Fatalf("schema_migrations holds %v, want %v", vs, all)
		}
	})

	t.Run("a database from a newer keygate is refused", func(t *testing.T) {
		dsn := pgtest.Empty(t)
		s := openDSN(t, dsn)
		if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES ($1)`, latest+1); err != nil {
			t.Fatal(err)
		}
		newer, err := Open(t.Context(), dsn)
		if err == nil {
			newer.Close()
			t.Fatal("Open accepted a database newer than its migrations")
		}
		if !strings.Contains(err.Error(), "newer keygate") {
			t.Fatalf("Open's error does not say why: %v", err)
		}
	})

	t.Run("a database at version 7 counts as enrolled exactly the users with a confirmed factor, keeps its administrators and gives OpenID apps the groups scope", func(t *testing.T) {
		ctx := t.Context()
		dsn := pgtest.Empty(t)
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		old := &Store{pool: pool}
		if err := old.applyMigrations(ctx, ms[:7]); err != nil {
			pool.Close()
			t.Fatal(err)
		}
		for _, q := range []string{
			`INSERT INTO "user" (id, email, password_hash, admin, created_at) VALUES
				('totp', 'totp@example.com', 'h', false, $1), ('key', 'key@example.com', 'h', true, $1),
				('pending', 'pending@example.com', 'h', false, $1), ('new', 'new@example.com', '', false, $1)`,
			`INSERT INTO totp_credential (user_id, sealed, confirmed_at) VALUES ('totp', 's', $1), ('pending', 's', NULL)`,
			`INSERT INTO webauthn_credential (id, user_id, created_at) VALUES ('k', 'key', $1)`,
			`INSERT INTO client (id, scopes, created_at) VALUES ('oidc', '{openid,email}', $1), ('api', '{read}', $1), ('both', '{openid,groups}', $1)`,
		} {
			if _, err = pool.Exec(ctx, q, t0); err != nil {
				break
			}
		}
		pool.Close()
		if err != nil {
			t.Fatal(err)
		}
		s := openDSN(t, dsn)
		for id, want := range map[string]bool{"totp": true, "key": true, "pending": false, "new": false} {
			u, err := s.GetUser(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if u.Enrolled() != want {
				t.Errorf("user %s: enrolled %v, want %v", id, u.Enrolled(), want)
			}
			if wantRole := map[bool]string{true: storage.RoleAdmin}[id == "key"]; u.Role != wantRole {
				t.Errorf("user %s: role %q, want %q", id, u.Role, wantRole)
			}
		}
		for id, want := range map[string][]string{"oidc": {"openid", "email", "groups"}, "api": {"read"}, "both": {"openid", "groups"}} {
			c, err := s.GetClient(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Scopes, want) {
				t.Errorf("client %s: scopes %v, want %v", id, c.Scopes, want)
			}
		}
	})
}

func TestBackupSaysToUsePgDump(t *testing.T) {
	s := openFresh(t)
	err := s.Backup(t.Context(), t.TempDir()+"/backup")
	if !errors.Is(err, ErrBackup) || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("Backup = %v, want ErrBackup naming pg_dump", err)
	}
}

// Methods answer taken keys and missing references without an error in
// the database, so a transaction goes on after them, as on SQLite.
func TestExpectedAnswersLeaveTheTransactionUsable(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u", Email: "u@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(ctx, storage.Group{ID: "g", Name: "G"}); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		for _, step := range []struct {
			err  error
			want error
		}{
			{s.CreateUser(ctx, storage.User{ID: "u", Email: "other@example.com"}), storage.ErrAlreadyExists},
			{s.CreateUser(ctx, storage.User{ID: "v", Email: "U@example.com"}), storage.ErrAlreadyExists},
			{s.AddGroupMember(ctx, "g", "u", t0), nil},
			{s.AddGroupMember(ctx, "g", "u", t0), storage.ErrAlreadyExists},
			{s.AddGroupMember(ctx, "g", "ghost", t0), storage.ErrNotFound},
			{s.CreateGroup(ctx, storage.Group{ID: "g2", Name: "g"}), storage.ErrAlreadyExists},
			{s.UpdateUser(ctx, "u", func(u *storage.User) error { u.Email = "u@example.com"; return nil }), nil},
			{s.PutTOTP(ctx, storage.TOTPCredential{UserID: "ghost"}), storage.ErrNotFound},
			{s.CreateEnrollment(ctx, storage.Enrollment{TokenHash: []byte("h"), UserID: "ghost"}), storage.ErrNotFound},
			{s.CreateWebAuthnCredential(ctx, storage.WebAuthnCredential{ID: []byte("k"), UserID: "ghost"}), storage.ErrNotFound},
			{s.TouchDevice(ctx, storage.Device{ID: "d", UserID: "ghost"}), storage.ErrNotFound},
			{s.CreateSession(ctx, storage.BrowserSession{IDHash: []byte("s"), UserID: "ghost"}), storage.ErrNotFound},
			{s.CreateToken(ctx, storage.TokenRecord{Kind: storage.KindAccessToken, Signature: "a"}), nil},
			{s.CreateToken(ctx, storage.TokenRecord{Kind: storage.KindAccessToken, Signature: "a"}), storage.ErrAlreadyExists},
			{s.UseTOTPStep(ctx, "u", 1), storage.ErrNotFound},
		} {
			if !errors.Is(step.err, step.want) && (step.want != nil || step.err != nil) {
				t.Errorf("got %v, want %v", step.err, step.want)
			}
		}
		return s.SetMeta(ctx, "after", "all of them")
	})
	if err != nil {
		t.Fatalf("the transaction failed: %v", err)
	}
	if v, err := s.GetMeta(ctx, "after"); err != nil || v != "all of them" {
		t.Fatalf("a write after the expected answers: %q, %v", v, err)
	}
}
