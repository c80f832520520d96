package mail

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
)

// OutboxKind is the outbox kind of an email; its Target is the recipient's
// address and its Payload the sealed Message.
const OutboxKind = "email"

// Message is one email to one person.
type Message struct {
	// ID is random, set when queued; it becomes the Message-ID, the same on
	// every attempt, so a message sent twice (a crash between sending and
	// recording it) is recognisably one message.
	ID      string `json:"id"`
	To      string `json:"to"`      // the address
	ToName  string `json:"to_name"` // may be empty
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
	// Expires is when the message stops being of use (its link has
	// expired): one still queued then is dropped, not sent. Zero: never.
	Expires time.Time `json:"expires,omitzero"`
}

// check refuses a message that must not be sent: a recipient that is not
// exactly one plain address (so nothing can be smuggled into a header), or
// an empty body.
func (m Message) check() error {
	addr, err := mail.ParseAddress(m.To)
	if err != nil || addr.Address != m.To || addr.Name != "" {
		return fmt.Errorf("mail: %q is not an email address", m.To)
	}
	if m.Subject == "" || m.Text == "" || m.HTML == "" {
		return fmt.Errorf("mail: a message needs a subject, a text and an HTML body")
	}
	return nil
}

// oneLine turns every control character (CR, LF, tab, …) of s into a space
// and trims it: names and subjects go into headers, where a line break
// would start a header of its own. The mail library encodes what is left.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s))
}
