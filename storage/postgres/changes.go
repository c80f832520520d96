package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/storage"
	"github.com/keygate/keygate/storage/internal/clientcache"
)

// Changes that other replicas must hear of at once travel by LISTEN and
// NOTIFY. A write to a client or a signing key sends a notice on
// changesChannel in its own statement (RETURNING pg_notify(…)), so in its
// transaction: PostgreSQL delivers it when, and only if, the transaction
// commits. Every Store listens on a connection of its own, drops the
// client a notice names from its cache, and tells its watchers
// (WatchChanges).
const changesChannel = "keygate_changes"

// change is a notice's payload. Schema tells the keygate stores sharing a
// database in separate schemas apart: the channel is the database's.
type change struct {
	Schema string `json:"s"`
	Topic  string `json:"t"`
	// Key is the changed row's id; "" means any row of the topic.
	Key string `json:"k,omitempty"`
}

// maxNoticeKey keeps a notice well below PostgreSQL's 8000-byte payload
// limit: a longer id is sent as "any row", so that no write fails for
// the length of its id.
const maxNoticeKey = 1000

// notice is the payload announcing a change to topic's row key.
func (s *Store) notice(topic, key string) string {
	if len(key) > maxNoticeKey {
		key = ""
	}
	b, _ := json.Marshal(change{Schema: s.schema, Topic: topic, Key: key})
	return string(b)
}

// notify is the RETURNING clause that sends the notice in $n.
func notify(n int) string {
	return ` RETURNING pg_notify('` + changesChannel + `', $` + itoa(n) + `)`
}

// listener keeps a connection that LISTENs on changesChannel and applies
// what it hears. While it has none, the client cache is suspended:
// changes made meanwhile go unheard, so nothing read before it listens
// again may be served after.
type listener struct {
	cfg    *pgx.ConnConfig
	schema string
	cache  *clientcache.Cache
	// pingAfter is how long the connection may be quiet before a ping
	// checks that it is still there.
	pingAfter time.Duration

	mu       sync.Mutex
	watchers map[*func(string)]struct{}
	state    listenState
	// changed is closed and replaced whenever state changes.
	changed chan struct{}

	stop context.CancelFunc
	done chan struct{}
}

// listenState is where the listener is, as tests follow it.
type listenState struct {
	listening   bool
	pid         uint32 // the listening connection's server process
	connections int    // how many times it has listened
	pings       int    // quiet spells the connection came through
}

// Timings of the listener. A connection that broke without a word (a
// network partition) is found by the ping after listenPing of silence;
// reconnecting waits between retryMin and retryMax.
const (
	listenPing = 5 * time.Second
	retryMin   = 100 * time.Millisecond
	retryMax   = 5 * time.Second
)

func startListener(cfg *pgx.ConnConfig, schema string, cache *clientcache.Cache, pingAfter time.Duration) *listener {
	ctx, stop := context.WithCancel(context.Background())
	l := &listener{cfg: cfg, schema: schema, cache: cache, pingAfter: pingAfter,
		watchers: map[*func(string)]struct{}{}, changed: make(chan struct{}),
		stop: stop, done: make(chan struct{})}
	go l.run(ctx)
	return l
}

// close stops the listener and waits for it.
func (l *listener) close() {
	l.stop()
	<-l.done
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	wait := retryMin
	for ctx.Err() == nil {
		conn, err := l.connect(ctx)
		if err != nil {
			// Jittered, so replicas that lost the database together do
			// not come back at one instant.
			select {
			case <-ctx.Done():
			case <-time.After(wait/2 + rand.N(wait/2)):
			}
			wait = min(2*wait, retryMax)
			continue
		}
		wait = retryMin
		// Listening from here on: serve from an empty cache, and tell the
		// watchers that anything may have changed while no one listened.
		// The state says listening only once they are told, so a test that
		// waits for it and then watches hears only later changes.
		l.cache.Resume()
		for _, topic := range storage.Topics {
			l.report(topic)
		}
		l.setState(func(st *listenState) {
			st.listening, st.pid = true, conn.PgConn().PID()
			st.connections++
		})
		l.listen(ctx, conn)
		l.cache.Suspend()
		l.setState(func(st *listenState) { st.listening = false })
		_ = conn.Close(context.Background())
	}
}

func (l *listener) setState(change func(*listenState)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	change(&l.state)
	close(l.changed)
	l.changed = make(chan struct{})
}

// current returns the state and a channel closed when it next changes.
func (l *listener) current() (listenState, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.changed
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+changesChannel); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// listen applies notices until the connection breaks or ctx ends.
func (l *listener) listen(ctx context.Context, conn *pgx.Conn) {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, l.pingAfter)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			l.apply(n.Payload)
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet: make sure the connection is still there.
			if err := conn.Ping(ctx); err != nil {
				return
			}
			l.setState(func(st *listenState) { st.pings++ })
		default:
			return
		}
	}
}

func (l *listener) apply(payload string) {
	var c change
	if json.Unmarshal([]byte(payload), &c) != nil || c.Schema != l.schema {
		return
	}
	if c.Topic == storage.TopicClients {
		if c.Key == "" {
			l.cache.Clear()
		} else {
			l.cache.Invalidate(c.Key)
		}
	}
	l.report(c.Topic)
}

func (l *listener) report(topic string) {
	l.mu.Lock()
	fns := make([]func(string), 0, len(l.watchers))
	for fn := range l.watchers {
		fns = append(fns, *fn)
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn(topic)
	}
}

// WatchChanges implements storage.ChangeWatcher: fn hears of every change
// to clients and signing keys committed through any Store on this
// database (this one included), until ctx ends.
func (s *Store) WatchChanges(ctx context.Context, fn func(topic string)) {
	l := s.changes
	key := &fn
	l.mu.Lock()
	l.watchers[key] = struct{}{}
	l.mu.Unlock()
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.watchers, key)
	})
}

var _ storage.ChangeWatcher = (*Store)(nil)
