package storecopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/postgres"
	"github.com/keygate/keygate/storage/postgres/pgtest"
	"github.com/keygate/keygate/storage/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// source is a SQLite store of a test, at path.
type source struct {
	path string
	st   *sqlite.Store
}

// newSource opens a new SQLite store in t's directory, closed when t ends.
func newSource(t testing.TB) source {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keygate.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return source{path: path, st: st}
}

// exec runs SQL on the source's file directly, as a hand (or a bug) that
// bypasses keygate would.
func (s source) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite3", s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fill writes something into every table of a store, through the store,
// with the kinds of values each column takes: zero and non-zero times,
// empty and full lists, NULL and non-NULL blobs.
func fill(t testing.TB, st storage.Store) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ok(t, st.CreateUser(ctx, storage.User{ID: "u_ann", Email: "ann@example.com", Name: "Ann", PasswordHash: "$argon2id$x",
		Role: storage.RoleAdmin, EnrolledAt: now, CreatedAt: now, UpdatedAt: now}))
	ok(t, st.CreateUser(ctx, storage.User{ID: "u_bob", Email: "bob@example.com", Name: "Bob — ünïcode", SuspendedAt: now, CreatedAt: now}))
	ok(t, st.CreateEnrollment(ctx, storage.Enrollment{TokenHash: []byte("enrolment-hash"), UserID: "u_bob", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	ok(t, st.CreateLink(ctx, storage.Link{TokenHash: []byte("link-hash"), Purpose: storage.LinkSignInReport, UserID: "u_ann",
		SID: "sid-1", DeviceID: "device-1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	ok(t, st.PutTOTP(ctx, storage.TOTPCredential{UserID: "u_ann", Sealed: []byte{1, 2, 3}, CreatedAt: now}))
	ok(t, st.ConfirmTOTP(ctx, "u_ann", now))
	ok(t, st.UseTOTPStep(ctx, "u_ann", 58_000_000))
	ok(t, st.ReplaceRecoveryCodes(ctx, "u_ann", [][]byte{[]byte("code-1"), []byte("code-2")}))
	ok(t, st.UseRecoveryCode(ctx, "u_ann", []byte("code-1"), now))
	ok(t, st.CreateWebAuthnCredential(ctx, storage.WebAuthnCredential{ID: []byte("cred-1"), UserID: "u_ann", Name: "YubiKey",
		AAGUID: make([]byte, 16), PublicKey: []byte("cose"), AttestationFormat: "packed", Attested: true,
		Transports: []string{"usb", "nfc"}, SignCount: 4_000_000_000, BackupEligible: true, Discoverable: true, CreatedAt: now}))
	ok(t, st.CreateChallenge(ctx, storage.Challenge{ID: "ch_1", SessionHash: []byte("sh"), Kind: "passwordless", Data: []byte(`{}`),
		CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}))
	ok(t, st.CreateGroup(ctx, storage.Group{ID: "g_ops", Name: "Ops", Description: "on call", MinACR: "phr", CreatedAt: now, UpdatedAt: now}))
	ok(t, st.AddGroupMember(ctx, "g_ops", "u_ann", now))
	ok(t, st.CreateClient(ctx, storage.Client{ID: "c_wiki", Name: "Wiki", SecretHash: []byte("hash"),
		RedirectURIs: []string{"https://wiki.example.com/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "groups"}, Audience: []string{"c_wiki"}, MinACR: "mfa",
		MaxAuthAge: time.Hour, TokenFormat: "jwt", PreviousSecretHash: []byte("old"), PreviousSecretExpiresAt: now.Add(time.Hour),
		AccessTokenTTL: time.Minute, DenyRisky: true, IDTokenAlg: "ES256", AllowedGroups: []string{"g_ops"}, CreatedAt: now, UpdatedAt: now}))
	ok(t, st.CreateClient(ctx, storage.Client{ID: "c_spa", Name: "SPA", Public: true, CreatedAt: now}))
	ok(t, st.CreateSession(ctx, storage.BrowserSession{IDHash: []byte("session-hash"), SID: "sid-1", UserID: "u_ann",
		Data: []byte("values"), IP: "192.0.2.1", UserAgent: "Firefox", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))
	ok(t, st.CreateFlow(ctx, storage.Flow{ID: "f_1", SessionHash: []byte("session-hash"), ClientID: "c_wiki", Query: "a=b",
		State: storage.FlowVerified, UserID: "u_ann", RequiredACR: "phr", MaxAge: -1, ForceLogin: true, ACR: "phr",
		AMR: []string{"hwk", "pwd"}, AuthTime: now, Reasons: []string{"new device"}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	ok(t, st.CreateToken(ctx, storage.TokenRecord{Kind: storage.KindAccessToken, Signature: "at-1", RequestID: "r1", ClientID: "c_wiki",
		Subject: "u_ann", SID: "sid-1", Active: true, Request: []byte("req"), RequestedAt: now, ExpiresAt: now.Add(time.Hour)}))
	ok(t, st.CreateToken(ctx, storage.TokenRecord{Kind: storage.KindRefreshToken, Signature: "rt-1", RequestID: "r1", ClientID: "c_wiki",
		Subject: "u_ann", Active: true, AccessSignature: "at-1", Request: []byte("req"), RequestedAt: now, ExpiresAt: now.Add(24 * time.Hour)}))
	ok(t, st.MarkRotated(ctx, storage.KindRefreshToken, "rt-1", now))
	for i := range 3 {
		_, err := st.AppendAudit(ctx, storage.AuditEvent{Type: "test.event", Actor: "cli", UserID: "u_ann", Result: "success",
			Details: map[string]string{"n": fmt.Sprint(i), "note": "ünïcode"}})
		ok(t, err)
	}
	_, err := st.AppendAudit(ctx, storage.AuditEvent{Type: "test.bare", Actor: "system", Result: "success"})
	ok(t, err)
	_, err = st.EnqueueOutbox(ctx, storage.OutboxMessage{Kind: "alert", Target: "https://hooks.example.com", Payload: []byte(`{"a":1}`),
		NextAttemptAt: now, CreatedAt: now})
	ok(t, err)
	ok(t, st.CreateSigningKey(ctx, storage.SigningKey{KID: "k1", Alg: "RS256", Sealed: []byte("sealed"), PublicJWK: []byte(`{"kty":"RSA"}`), CreatedAt: now}))
	ok(t, st.RecordAttempt(ctx, "password", "ann@example.com", now))
	ok(t, st.TouchDevice(ctx, storage.Device{ID: "d1", UserID: "u_ann", UserAgent: "Firefox on Linux", FirstSeen: now, LastSeen: now,
		LastIP: "192.0.2.1", LastCountry: "DE", SignIns: 1}))
	_, err = st.RecordSignIn(ctx, storage.SignInRecord{UserID: "u_ann", Time: now, IP: "192.0.2.1", Country: "DE", City: "Berlin",
		Lat: 52.52, Lon: 13.405, HasCoords: true, DeviceID: "d1", ClientID: "c_wiki", ACR: "phr", Decision: "allow"})
	ok(t, err)
	ok(t, st.SetMeta(ctx, "issuer", "https://id.example.com"))
}

// copied runs Copy from src into dsn.
func copied(t testing.TB, src source, dsn string) (Result, error) {
	t.Helper()
	return Copy(t.Context(), src.path, dsn)
}

// tableRows reads every row of every copied table, both sides, as Go
// values that compare: the source's through convert, the target's as pgx
// reads them.
func tableRows(t *testing.T, src source, dsn string) (lite, pg map[string][][]any) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	ok(t, err)
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	ok(t, err)
	defer tx.Rollback(context.Background())
	tables, err := readPostgresSchema(ctx, tx)
	ok(t, err)
	db, err := sql.Open("sqlite3", src.path)
	ok(t, err)
	defer db.Close()

	lite, pg = map[string][][]any{}, map[string][][]any{}
	for _, tb := range tables {
		var cols, order []string
		for _, c := range tb.columns {
			cols = append(cols, sqliteIdent(c.name))
		}
		for _, k := range tb.key {
			order = append(order, sqliteIdent(k))
		}
		if len(order) == 0 {
			order = cols
		}
		q := `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + sqliteIdent(tb.name) + ` ORDER BY ` + strings.Join(order, ", ")
		rows, err := db.QueryContext(ctx, q)
		ok(t, err)
		for rows.Next() {
			raw := make([]any, len(cols))
			dest := make([]any, len(cols))
			for i := range raw {
				dest[i] = &raw[i]
			}
			ok(t, rows.Scan(dest...))
			for i, c := range tb.columns {
				v, reason := convert(c, raw[i])
				if reason != "" {
					t.Fatalf("%s.%s: %s", tb.name, c.name, reason)
				}
				raw[i] = normal(v)
			}
			lite[tb.name] = append(lite[tb.name], raw)
		}
		ok(t, rows.Err())
		rows.Close()

		// SQLite orders text byte-wise, as PostgreSQL's "C" collation does.
		pgOrder := order
		if len(tb.key) > 0 {
			pgOrder = nil
			for _, k := range tb.key {
				o := sqliteIdent(k)
				if i := slices.IndexFunc(tb.columns, func(c column) bool { return c.name == k }); tb.columns[i].pgType == "text" {
					o += ` COLLATE "C"`
				}
				pgOrder = append(pgOrder, o)
			}
		}
		pgRows, err := tx.Query(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+sqliteIdent(tb.name)+` ORDER BY `+strings.Join(pgOrder, ", "))
		ok(t, err)
		for pgRows.Next() {
			vals, err := pgRows.Values()
			ok(t, err)
			for i := range vals {
				vals[i] = normal(vals[i])
			}
			pg[tb.name] = append(pg[tb.name], vals)
		}
		ok(t, pgRows.Err())
	}
	return lite, pg
}

// normal makes equal values of both sides compare equal.
func normal(v any) any {
	switch v := v.(type) {
	case time.Time:
		return v.UTC()
	case []any: // a text[] as pgx reads it without a target type
		l := make([]string, len(v))
		for i, e := range v {
			l[i], _ = e.(string)
		}
		return l
	}
	return v
}

func TestCopy(t *testing.T) {
	src := newSource(t)
	fill(t, src.st)
	// SQLite never reuses an AUTOINCREMENT id, also after its row is
	// deleted: as if 500 sign-ins had been recorded and pruned.
	src.exec(t, `UPDATE sqlite_sequence SET seq = 500 WHERE name = 'signin'`)
	dsn := pgtest.Schema(t)

	res, err := copied(t, src, dsn)
	ok(t, err)

	lite, pg := tableRows(t, src, dsn)
	t.Run("every table of the schema had rows to copy", func(t *testing.T) {
		// So that a table a future migration adds is in this test too.
		for _, tr := range res.Tables {
			if tr.Rows == 0 {
				t.Errorf("table %s: nothing copied; fill() must write into it", tr.Table)
			}
		}
	})
	t.Run("every row of every table arrived, column for column", func(t *testing.T) {
		for name, rows := range lite {
			if !reflect.DeepEqual(rows, pg[name]) {
				t.Errorf("table %s:\n SQLite     %v\n PostgreSQL %v", name, rows, pg[name])
			}
		}
	})

	st, err := postgres.Open(t.Context(), dsn)
	ok(t, err)
	defer st.Close()
	ctx := t.Context()
	t.Run("the store reads back what the source's store reads", func(t *testing.T) {
		same := func(what string, read func(storage.Store) (any, error)) {
			t.Helper()
			want, err := read(src.st)
			ok(t, err)
			got, err := read(st)
			ok(t, err)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
			}
		}
		same("users", func(s storage.Store) (any, error) { return s.ListUsers(ctx) })
		same("clients", func(s storage.Store) (any, error) { return s.ListClients(ctx) })
		same("groups", func(s storage.Store) (any, error) { return s.ListGroups(ctx) })
		same("members", func(s storage.Store) (any, error) { return s.ListGroupMembers(ctx, "g_ops") })
		same("signing keys", func(s storage.Store) (any, error) { return s.ListSigningKeys(ctx) })
		same("session", func(s storage.Store) (any, error) { return s.GetSession(ctx, []byte("session-hash"), time.Now()) })
		same("refresh token", func(s storage.Store) (any, error) { return s.GetToken(ctx, storage.KindRefreshToken, "rt-1") })
		same("credentials", func(s storage.Store) (any, error) { return s.ListWebAuthnCredentials(ctx, "u_ann") })
		same("totp", func(s storage.Store) (any, error) { return s.GetTOTP(ctx, "u_ann") })
		same("devices", func(s storage.Store) (any, error) { return s.ListUserDevices(ctx, "u_ann") })
		same("sign-ins", func(s storage.Store) (any, error) { return s.RecentSignIns(ctx, "u_ann", 10) })
		same("flow", func(s storage.Store) (any, error) { return s.GetFlow(ctx, "f_1", time.Now()) })
		same("audit", func(s storage.Store) (any, error) { return s.ListAudit(ctx, storage.AuditFilter{}) })
	})
	t.Run("the audit chain verifies, and goes on from the copy", func(t *testing.T) {
		_, err := st.AppendAudit(ctx, storage.AuditEvent{Type: "after.copy", Actor: "cli", Result: "success"})
		ok(t, err)
		var v storage.ChainVerifier
		ok(t, st.WalkAudit(ctx, v.Check))
		if v.Count != res.AuditEvents+1 {
			t.Fatalf("%d events verified, want the %d copied and one more", v.Count, res.AuditEvents)
		}
	})
	t.Run("the chain's triggers are on again", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, dsn)
		ok(t, err)
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, `UPDATE audit_head SET seq = 0`); err == nil {
			t.Error("the chain head could be moved")
		}
		if _, err := conn.Exec(ctx, `INSERT INTO audit_event (seq, time, hash) VALUES (1000, now(), '\x00')`); err == nil {
			t.Error("an event out of the chain could be inserted")
		}
	})
	t.Run("new rows take ids after those SQLite gave out", func(t *testing.T) {
		id, err := st.RecordSignIn(ctx, storage.SignInRecord{UserID: "u_ann", Time: time.Now()})
		ok(t, err)
		if id != 501 {
			t.Fatalf("the next sign-in id is %d, want 501", id)
		}
		oid, err := st.EnqueueOutbox(ctx, storage.OutboxMessage{Kind: "alert", Target: "https://hooks.example.com"})
		ok(t, err)
		if oid != 2 {
			t.Fatalf("the next outbox id is %d, want 2", oid)
		}
	})
}

// empty reports the target's tables that hold rows, keygate's schema or
// not.
func nonEmpty(t *testing.T, dsn string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	ok(t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT IN ('schema_migrations', 'audit_head')`)
	ok(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	ok(t, err)
	var full []string
	for _, n := range names {
		var has bool
		ok(t, conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{n}.Sanitize()+`)`).Scan(&has))
		if has {
			full = append(full, n)
		}
	}
	var head int64
	ok(t, conn.QueryRow(t.Context(), `SELECT seq FROM audit_head`).Scan(&head))
	if head != 0 {
		full = append(full, fmt.Sprintf("audit_head at %d", head))
	}
	return full
}

func TestCopyRefuses(t *testing.T) {
	t.Run("a target that holds rows, leaving them as they were", func(t *testing.T) {
		src := newSource(t)
		fill(t, src.st)
		dsn := pgtest.Schema(t)
		first, err := copied(t, src, dsn)
		ok(t, err)
		_, err = copied(t, src, dsn)
		if !errors.Is(err, ErrNotEmpty) {
			t.Fatalf("second copy: %v, want ErrNotEmpty", err)
		}
		st, err := postgres.Open(t.Context(), dsn)
		ok(t, err)
		defer st.Close()
		var v storage.ChainVerifier
		ok(t, st.WalkAudit(t.Context(), v.Check))
		if v.Count != first.AuditEvents {
			t.Fatalf("%d audit events after the refused copy, want %d", v.Count, first.AuditEvents)
		}
	})
	t.Run("a target that holds a single row of meta", func(t *testing.T) {
		src := newSource(t)
		fill(t, src.st)
		dsn := pgtest.Schema(t)
		st, err := postgres.Open(t.Context(), dsn)
		ok(t, err)
		ok(t, st.SetMeta(t.Context(), "issuer", "https://other.example.com"))
		st.Close()
		if _, err := copied(t, src, dsn); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "meta") {
			t.Fatalf("copy: %v, want ErrNotEmpty naming meta", err)
		}
	})
	t.Run("a target at another schema version, unchanged", func(t *testing.T) {
		src := newSource(t)
		fill(t, src.st)
		dsn := pgtest.Schema(t)
		conn, err := pgx.Connect(t.Context(), dsn)
		ok(t, err)
		_, err = conn.Exec(t.Context(), `CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
			INSERT INTO schema_migrations (version) VALUES (1), (2), (3)`)
		conn.Close(context.Background())
		ok(t, err)
		if _, err := copied(t, src, dsn); !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), "version 3") {
			t.Fatalf("copy: %v, want ErrSchemaVersion naming version 3", err)
		}
		if v, err := targetVersion(t.Context(), dsn); err != nil || v != 3 {
			t.Fatalf("target version %d, %v: the refused copy migrated it", v, err)
		}
	})
	t.Run("an unreachable target", func(t *testing.T) {
		src := newSource(t)
		_, err := copied(t, src, "host=/nonexistent port=5432 dbname=keygate connect_timeout=5")
		if err == nil || !strings.Contains(err.Error(), "connect") {
			t.Fatalf("copy: %v, want a connection error", err)
		}
	})
	t.Run("a missing source, creating none", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keygate.db")
		_, err := Copy(t.Context(), path, pgtest.Schema(t))
		if !errors.Is(err, ErrNoSource) {
			t.Fatalf("copy: %v, want ErrNoSource", err)
		}
	})
	t.Run("a source whose audit chain is broken", func(t *testing.T) {
		src := newSource(t)
		fill(t, src.st)
		src.exec(t, `DROP TRIGGER audit_event_no_update`)
		src.exec(t, `UPDATE audit_event SET actor = 'someone else' WHERE seq = 2`)
		dsn := pgtest.Schema(t)
		if _, err := copied(t, src, dsn); !errors.Is(err, ErrAuditChain) || !strings.Contains(err.Error(), "audit event 2") {
			t.Fatalf("copy: %v, want ErrAuditChain at event 2", err)
		}
	})
}

func TestCopyStopsAtValuesPostgresCannotHold(t *testing.T) {
	sqlExec := func(query string, args ...any) func(*testing.T, source) {
		return func(t *testing.T, src source) { src.exec(t, query, args...) }
	}
	tests := []struct {
		name   string
		change func(*testing.T, source)
		want   BadValueError
	}{
		{"a NUL byte in a user's name", sqlExec(`UPDATE user SET name = CAST(? AS TEXT) WHERE id = 'u_bob'`, []byte("Bo\x00b")),
			BadValueError{Table: "user", Row: `id="u_bob"`, Column: "name", Reason: "contains a NUL byte (at byte 2)"}},
		{"invalid UTF-8 in an audit event's user agent", func(t *testing.T, src source) {
			// The chain is intact: the event was hashed as it is stored.
			_, err := src.st.AppendAudit(t.Context(), storage.AuditEvent{Type: "signin.failed", Actor: "anonymous",
				UserAgent: "Mozilla \xff", Result: "failure"})
			ok(t, err)
		}, BadValueError{Table: "audit_event", Row: "seq=5", Column: "user_agent", Reason: "is not valid UTF-8 (at byte 8)"}},
		{"invalid UTF-8 in a client's redirect URI", sqlExec(`UPDATE client SET redirect_uris = CAST(? AS TEXT) WHERE id = 'c_wiki'`, []byte("[\"https://wiki.example.com/\xc3(\"]")),
			BadValueError{Table: "client", Row: `id="c_wiki"`, Column: "redirect_uris", Reason: "is not valid UTF-8 (at byte 27)"}},
		{"a NUL escaped in a flow's reasons", sqlExec(`UPDATE flow SET reasons = '["new\u0000device"]' WHERE id = 'f_1'`),
			BadValueError{Table: "flow", Row: `id="f_1"`, Column: "reasons", Reason: "element 0 contains a NUL byte (at byte 3)"}},
		{"invalid UTF-8 in a session's user agent, keyed by a blob", sqlExec(`UPDATE browser_session SET user_agent = CAST(? AS TEXT)`, []byte("\xe2\x82")),
			BadValueError{Table: "browser_session", Row: `id_hash=x'73657373696f6e2d68617368'`, Column: "user_agent", Reason: "is not valid UTF-8 (at byte 0)"}},
		{"a flag that is neither 0 nor 1", sqlExec(`UPDATE client SET public = 2 WHERE id = 'c_spa'`),
			BadValueError{Table: "client", Row: `id="c_spa"`, Column: "public", Reason: "is not 0 or 1"}},
		{"a NUL byte in an attempt's key, which has no primary key", sqlExec(`UPDATE attempt SET key = CAST(? AS TEXT)`, []byte("ann\x00")),
			BadValueError{Table: "attempt", Row: "number 1", Column: "key", Reason: "contains a NUL byte (at byte 3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" stops the copy, which leaves the target empty", func(t *testing.T) {
			src := newSource(t)
			fill(t, src.st)
			tt.change(t, src)
			dsn := pgtest.Schema(t)
			_, err := copied(t, src, dsn)
			var bad *BadValueError
			if !errors.As(err, &bad) {
				t.Fatalf("copy: %v, want a BadValueError", err)
			}
			if bad.Table != tt.want.Table || bad.Row != tt.want.Row || bad.Column != tt.want.Column || !strings.HasPrefix(bad.Reason, tt.want.Reason) {
				t.Fatalf("error %q, want table %s, row %s, column %s: %s", err, tt.want.Table, tt.want.Row, tt.want.Column, tt.want.Reason)
			}
			if full := nonEmpty(t, dsn); len(full) > 0 {
				t.Fatalf("after the failed copy the target holds rows in %v", full)
			}
		})
	}
}

func TestCopyRefusesSchemasThatDoNotLineUp(t *testing.T) {
	tests := []struct {
		name   string
		change string
		want   string
	}{
		{"a column only SQLite has", `ALTER TABLE user ADD COLUMN nickname TEXT NOT NULL DEFAULT ''`, "column user.nickname is in SQLite but not in PostgreSQL"},
		{"a table only SQLite has", `CREATE TABLE webhook (id TEXT PRIMARY KEY) STRICT`, "table webhook is in SQLite but not in PostgreSQL"},
		{"a column of another type", `ALTER TABLE device DROP COLUMN sign_ins; ALTER TABLE device ADD COLUMN sign_ins TEXT`,
			"column device.sign_ins is int4 in PostgreSQL but TEXT in SQLite"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused before anything is written", func(t *testing.T) {
			src := newSource(t)
			fill(t, src.st)
			src.exec(t, tt.change)
			dsn := pgtest.Schema(t)
			_, err := copied(t, src, dsn)
			if !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("copy: %v, want ErrSchemaMismatch saying %q", err, tt.want)
			}
			if full := nonEmpty(t, dsn); len(full) > 0 {
				t.Fatalf("the target holds rows in %v", full)
			}
		})
	}
}

func TestCopyReadsOneSnapshotWhileTheSourceIsWritten(t *testing.T) {
	src := newSource(t)
	fill(t, src.st)
	ctx := t.Context()
	// Each writer adds a user and its audit event in one transaction, as
	// keygate does: in a consistent snapshot, every copied user has its
	// event and every copied event its user.
	const writers = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written atomic.Int64
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("u_w%d_%d", w, i)
				err := src.st.InTx(ctx, func(ctx context.Context) error {
					if err := src.st.CreateUser(ctx, storage.User{ID: id, Email: id + "@example.com"}); err != nil {
						return err
					}
					_, err := src.st.AppendAudit(ctx, storage.AuditEvent{Type: "user.created", Actor: "cli", UserID: id, Result: "success"})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				written.Add(1)
			}
		})
	}
	// Copy once the writers are well under way, so the snapshot falls
	// between their commits.
	for written.Load() < 50 {
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
			runtime.Gosched()
		}
	}
	dsn := pgtest.Schema(t)
	res, err := copied(t, src, dsn)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ok(t, err)

	st, err := postgres.Open(ctx, dsn)
	ok(t, err)
	defer st.Close()
	var v storage.ChainVerifier
	created := map[string]bool{}
	ok(t, st.WalkAudit(ctx, func(e storage.AuditEvent) error {
		if e.Type == "user.created" {
			created[e.UserID] = true
		}
		return v.Check(e)
	}))
	users, err := st.ListUsers(ctx)
	ok(t, err)
	copiedUsers := 0
	for _, u := range users {
		if strings.HasPrefix(u.ID, "u_w") {
			copiedUsers++
			if !created[u.ID] {
				t.Errorf("user %s was copied without its audit event", u.ID)
			}
		}
	}
	if copiedUsers != len(created) {
		t.Errorf("%d writers' users copied but %d of their events", copiedUsers, len(created))
	}
	if copiedUsers < 50 || int64(copiedUsers) >= written.Load() {
		t.Errorf("copied %d of the %d users written: the copy did not fall between the writers' commits", copiedUsers, written.Load())
	}
	t.Logf("copied %d of %d users written meanwhile, %d audit events verified", copiedUsers, written.Load(), res.AuditEvents)
}

func TestCopyAsARoleThatDoesNotOwnTheTables(t *testing.T) {
	src := newSource(t)
	fill(t, src.st)
	ctx := t.Context()
	dsn := pgtest.Schema(t)
	st, err := postgres.Open(ctx, dsn) // migrated by the tables' owner
	ok(t, err)
	defer st.Close()

	// A role with every privilege on the rows, none on the tables.
	role := fmt.Sprintf("copier_%d", time.Now().UnixNano())
	conn, err := pgx.Connect(ctx, dsn)
	ok(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) }) // after the role's, below
	ident := pgx.Identifier{role}.Sanitize()
	_, err = conn.Exec(ctx, `CREATE ROLE `+ident+` LOGIN;
		GRANT USAGE ON SCHEMA `+pgx.Identifier{schemaOf(t, conn)}.Sanitize()+` TO `+ident+`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+pgx.Identifier{schemaOf(t, conn)}.Sanitize()+` TO `+ident+`;
		GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA `+pgx.Identifier{schemaOf(t, conn)}.Sanitize()+` TO `+ident)
	ok(t, err)
	t.Cleanup(func() {
		_, err := conn.Exec(context.Background(), `DROP OWNED BY `+ident+`; DROP ROLE `+ident)
		if err != nil {
			t.Error(err)
		}
	})

	res, err := Copy(ctx, src.path, withUser(dsn, role))
	ok(t, err)
	var v storage.ChainVerifier
	ok(t, st.WalkAudit(ctx, v.Check))
	if v.Count != res.AuditEvents || v.Count == 0 {
		t.Fatalf("%d events verified, %d copied", v.Count, res.AuditEvents)
	}
	if _, err := st.AppendAudit(ctx, storage.AuditEvent{Type: "after.copy", Actor: "cli", Result: "success"}); err != nil {
		t.Fatalf("appending after the copy: %v", err)
	}
}

// schemaOf is the schema a connection writes into.
func schemaOf(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var s string
	ok(t, conn.QueryRow(t.Context(), `SELECT current_schema()`).Scan(&s))
	return s
}

// withUser returns dsn connecting as user.
func withUser(dsn, user string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.User = url.User(user)
		return u.String()
	}
	return dsn + " user=" + user
}
