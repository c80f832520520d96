package mail

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keygate/keygate/keys"
	"github.com/keygate/keygate/storage"
)

// Sealer encrypts and decrypts with associated data; *keys.Master is one.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// aad binds a sealed message to its recipient: the payload of one outbox
// row does not open under another row's address.
func aad(to string) []byte { return []byte("mail:" + to) }

// Queue puts messages in the outbox.
type Queue struct {
	Outbox storage.Outbox
	Sealer Sealer
	Now    func() time.Time
}

// Enqueue queues m in ctx's transaction, sealed. Call it in the
// transaction of the event that causes the message, so that the message
// exists if and only if the event does.
func (q *Queue) Enqueue(ctx context.Context, m Message) error {
	if err := m.check(); err != nil {
		return err
	}
	m.ToName, m.Subject = oneLine(m.ToName), oneLine(m.Subject)
	id, err := keys.RandomToken(16)
	if err != nil {
		return err
	}
	m.ID = id
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	sealed, err := q.Sealer.Seal(plain, aad(m.To))
	if err != nil {
		return fmt.Errorf("mail: seal: %w", err)
	}
	now := q.Now()
	_, err = q.Outbox.EnqueueOutbox(ctx, storage.OutboxMessage{Kind: OutboxKind, Target: m.To, Payload: sealed,
		NextAttemptAt: now, CreatedAt: now})
	return err
}

// open reads back a queued message.
func open(s Sealer, om storage.OutboxMessage) (Message, error) {
	plain, err := s.Open(om.Payload, aad(om.Target))
	if err != nil {
		return Message{}, err
	}
	var m Message
	if err := json.Unmarshal(plain, &m); err != nil {
		return Message{}, err
	}
	if m.To != om.Target {
		return Message{}, fmt.Errorf("mail: the message is for another recipient than its outbox row")
	}
	return m, m.check()
}
