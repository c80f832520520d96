package audit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/clocktest"
	"github.com/keygate/keygate/server/audit"
	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/postgres/pgtest"
	"github.com/keygate/keygate/storage/postgres/postgrestest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func queueAlerts(t *testing.T, s storage.Outbox, target string, n int) {
	t.Helper()
	for i := range n {
		_, err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{Kind: audit.OutboxAlert, Target: target,
			Payload: fmt.Appendf(nil, `{"n":%d}`, i), NextAttemptAt: t0, CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeliverersOnThreeReplicasSendEachAlertOnce(t *testing.T) {
	rs := postgrestest.Replicas(t, 3)
	wh, srv := startWebhook(t)
	const alerts = 90
	queueAlerts(t, rs[0], srv.URL, alerts)
	clk := clocktest.New(t0.Add(time.Second))

	var wg sync.WaitGroup
	delivered := make(chan int, 2*len(rs))
	for _, s := range rs {
		for range 2 {
			d := &audit.Deliverer{DB: s, Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}
			wg.Go(func() {
				n, err := d.RunOnce(t.Context())
				if err != nil {
					t.Error(err)
				}
				delivered <- n
			})
		}
	}
	wg.Wait()
	close(delivered)
	total := 0
	for n := range delivered {
		total += n
	}
	sent := map[string]int{}
	for _, d := range wh.deliveries() {
		sent[string(d.body)]++
	}
	for body, n := range sent {
		if n != 1 {
			t.Errorf("%s was sent %d times", body, n)
		}
	}
	if len(sent) != alerts || total != alerts {
		t.Fatalf("%d distinct alerts sent, %d reported delivered; want %d", len(sent), total, alerts)
	}
	if left := pending(t, rs[0]); len(left) != 0 {
		t.Fatalf("%d messages still pending", len(left))
	}
}

// A replica that dies while it sends leaves its claimed message leased:
// another replica sends it once the lease has run out, not before.
func TestAMessageWhoseDelivererDiedIsSentByAnotherAfterItsLease(t *testing.T) {
	rs := postgrestest.Replicas(t, 2)
	ctx := t.Context()
	arrived := make(chan struct{}, 1)
	var mu sync.Mutex
	hang := true
	received := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received++
		h := hang
		mu.Unlock()
		if h {
			// Read to the end, or the server would not watch the
			// connection and see the sender go.
			_, _ = io.Copy(io.Discard, r.Body)
			arrived <- struct{}{}
			<-r.Context().Done() // until the sender is gone
		}
	}))
	t.Cleanup(srv.Close)
	queueAlerts(t, rs[0], srv.URL, 1)
	clk := clocktest.New(t0)

	dying, die := context.WithCancel(ctx)
	first := &audit.Deliverer{DB: rs[0], Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = first.RunOnce(dying)
	}()
	<-arrived
	// The replica dies mid-send: its database connections go with it, so
	// nothing marks the message delivered or failed (a deliverer that is
	// only stopped still marks it).
	rs[0].Close()
	die()
	<-done
	mu.Lock()
	hang = false
	mu.Unlock()

	second := &audit.Deliverer{DB: rs[1], Client: srv.Client(), Secret: secret, Logger: quiet, Now: clk.Now}
	clk.Advance(time.Minute)
	if n, err := second.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("RunOnce within the lease = %d, %v; want 0", n, err)
	}
	clk.Advance(time.Hour)
	if n, err := second.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce after the lease = %d, %v; want 1", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if received != 2 {
		t.Fatalf("the webhook saw %d requests, want 2 (the dead replica's and the retry)", received)
	}
}
