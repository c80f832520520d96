package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/storage"
)

// SignatureHeader carries "t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>">":
// the receiver recomputes it with the shared secret and rejects old times,
// so a captured alert can neither be forged nor replayed later.
const SignatureHeader = "Keygate-Signature"

// Sign returns the SignatureHeader value for body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Deliverer sends due outbox messages and reschedules failures with
// exponential backoff (capped), so a webhook that is down gets every alert
// once it is back. Each message is claimed before it is sent
// (storage.Outbox), so deliverers on several replicas send it once.
type Deliverer struct {
	DB     storage.Outbox
	Client *http.Client
	Secret []byte
	Logger *slog.Logger
	Now    func() time.Time
	// Senders deliver other outbox kinds (back-channel logout); alerts are
	// this package's own.
	Senders map[string]func(ctx context.Context, m storage.OutboxMessage) error
}

// maxBackoff caps the wait between attempts.
const maxBackoff = time.Hour

// Backoff is the wait before attempt n+1 after n failures: 5s, 10s, 20s, …
func Backoff(failures int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// Deliveries are claimed a batch at a time and each send is given at
// most sendTimeout, so a claim's lease outlasts its batch: another
// replica takes a message only when its deliverer died before marking it.
// sendTimeout is a bound for every sender, above their own (a webhook's
// 10 s, a mail server's 10 s for each step of a conversation).
const (
	claimBatch  = 10
	sendTimeout = 30 * time.Second
	claimLease  = claimBatch*sendTimeout + time.Minute
)

// RunOnce delivers what is due now, a claimed batch at a time, and
// returns how many were delivered.
func (d *Deliverer) RunOnce(ctx context.Context) (int, error) {
	delivered := 0
	for {
		now := d.Now()
		due, err := d.DB.ClaimOutbox(ctx, now, now.Add(claimLease), claimBatch)
		if err != nil {
			return delivered, err
		}
		for _, m := range due {
			ok, err := d.deliver(ctx, m)
			if err != nil {
				return delivered, err
			}
			if ok {
				delivered++
			}
		}
		if len(due) < claimBatch {
			return delivered, nil
		}
	}
}

// deliver sends one claimed message and marks it delivered, or failed
// and due again after the backoff; err is the store's. The mark is made
// even when ctx ends meanwhile (the server stopping): an unmarked message
// stays claimed for claimLease, and a restarted server would send it only
// then.
func (d *Deliverer) deliver(ctx context.Context, m storage.OutboxMessage) (bool, error) {
	send := d.send
	if s, ok := d.Senders[m.Kind]; ok {
		send = s
	}
	sendCtx, cancel := context.WithTimeout(ctx, sendTimeout)
	err := send(sendCtx, m)
	cancel()
	ctx = context.WithoutCancel(ctx)
	if err != nil {
		next := d.Now().Add(Backoff(m.Attempts + 1))
		if errors.Is(err, ErrUndeliverable) {
			next = never
		}
		d.Logger.WarnContext(ctx, "outbox delivery failed", "kind", m.Kind, "outbox_id", m.ID, "attempts", m.Attempts+1, "err", err)
		return false, d.DB.MarkOutboxFailed(ctx, m.ID, next, err.Error())
	}
	return true, d.DB.MarkOutboxDelivered(ctx, m.ID, d.Now())
}

func (d *Deliverer) send(ctx context.Context, m storage.OutboxMessage) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Target, bytes.NewReader(m.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(d.Secret, m.Payload, d.Now()))
	resp, err := d.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// Run delivers every interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.Logger.ErrorContext(ctx, "outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
