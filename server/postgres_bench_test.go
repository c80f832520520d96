package server_test

// The token and introspection benchmarks on PostgreSQL, with the round
// trips to the database each request takes (each statement, and each
// pipelined batch, is one):
//
//	./scripts/test.sh sets KEYGATE_TEST_POSTGRES; or let pgtest start one:
//	go test ./server -run '^$' -bench Postgres

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/keygate/storage/postgres"
	"github.com/keygate/keygate/storage/postgres/pgtest"
)

// roundTrips counts what a pgx connection sends and waits for.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// newPostgresBenchServer is newBenchServer on a PostgreSQL schema of its
// own, counting round trips.
func newPostgresBenchServer(b *testing.B) (*benchServer, *roundTrips) {
	cfg, err := pgxpool.ParseConfig(pgtest.Schema(b))
	if err != nil {
		b.Fatal(err)
	}
	rt := &roundTrips{}
	cfg.ConnConfig.Tracer = rt
	store, err := postgres.OpenConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return newBenchServerOn(b, store, slog.LevelWarn), rt
}

// measure runs op b.N times and reports the round trips each took.
func measure(b *testing.B, rt *roundTrips, op func()) {
	op() // prepares the statements on a connection
	rt.n.Store(0)
	n := 0
	for b.Loop() {
		op()
		n++
	}
	b.ReportMetric(float64(rt.n.Load())/float64(n), "roundtrips/op")
}

func BenchmarkTokenClientCredentialsPostgres(b *testing.B) {
	s, rt := newPostgresBenchServer(b)
	measure(b, rt, func() { s.token(b) })
}

func BenchmarkIntrospectPostgres(b *testing.B) {
	s, rt := newPostgresBenchServer(b)
	tok := s.token(b)
	form := "token=" + tok
	measure(b, rt, func() { s.do(b, s.post("/oauth2/introspect", form), `"active":true`) })
}
