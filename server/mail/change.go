package mail

import "time"

var changeKind = parseKind("change")

// AccountChange tells a user of a change to how their account is signed
// in to or what it may do: a security key or authenticator app added or
// removed, recovery codes regenerated, a role granted.
type AccountChange struct {
	Issuer      string
	Email, Name string // the user's
	// Summary is one sentence of keygate's own words, used as the subject
	// too: "A security key was added to your account".
	Summary string
	// Detail names what changed, e.g. the key's name; it may be chosen by
	// the user, so it never reaches a header.
	Detail string
	Time   time.Time
	// ByAdmin: an administrator made the change, not the user.
	ByAdmin bool
}

// Message renders the notice.
func (c AccountChange) Message() (Message, error) {
	v, err := newView(c.Issuer, "")
	if err != nil {
		return Message{}, err
	}
	v.Subject = c.Summary + " at " + v.Host
	data := struct {
		view
		Name, Email, Summary, Detail, Time string
		ByAdmin                            bool
	}{v, oneLine(c.Name), c.Email, oneLine(c.Summary), oneLine(c.Detail), c.Time.UTC().Format(expiresLayout), c.ByAdmin}
	return changeKind.render(c.Email, c.Name, v.Subject, data)
}
