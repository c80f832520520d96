package mail

import "time"

// Enrollment is the message that carries an enrolment link to its user.
type Enrollment struct {
	Issuer      string
	Email, Name string // the user's
	URL         string // the single-use link, under Issuer
	Expires     time.Time
	// Again: a new link for an existing account, not a new account.
	Again bool
}

// expiresLayout is how a link's end is written: unambiguous whatever the
// reader's zone.
const expiresLayout = "Mon 2 January 2006, 15:04 MST"

// Message renders the enrolment mail.
func (e Enrollment) Message() (Message, error) {
	if err := underIssuer(e.URL, e.Issuer); err != nil {
		return Message{}, err
	}
	v, err := newView(e.Issuer, "")
	if err != nil {
		return Message{}, err
	}
	v.Subject = "Set up your sign-in at " + v.Host
	if e.Again {
		v.Subject = "A new link to set up your sign-in at " + v.Host
	}
	data := struct {
		view
		Name, Email, URL, Expires string
		Again                     bool
	}{v, oneLine(e.Name), e.Email, e.URL, e.Expires.UTC().Format(expiresLayout), e.Again}
	m, err := enrollmentKind.render(e.Email, e.Name, v.Subject, data)
	m.Expires = e.Expires
	return m, err
}
