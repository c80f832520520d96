package mail

import "time"

var resetKind = parseKind("reset")

// PasswordReset carries a "forgot password" link to its user.
type PasswordReset struct {
	Issuer      string
	Email, Name string // the user's
	URL         string // the single-use link, under Issuer
	Expires     time.Time
}

// Message renders the mail; one still queued when its link expires is
// dropped, not sent.
func (p PasswordReset) Message() (Message, error) {
	if err := underIssuer(p.URL, p.Issuer); err != nil {
		return Message{}, err
	}
	v, err := newView(p.Issuer, "")
	if err != nil {
		return Message{}, err
	}
	v.Subject = "Choose a new password at " + v.Host
	data := struct {
		view
		Name, Email, URL, Expires string
	}{v, oneLine(p.Name), p.Email, p.URL, p.Expires.UTC().Format(expiresLayout)}
	m, err := resetKind.render(p.Email, p.Name, v.Subject, data)
	m.Expires = p.Expires
	return m, err
}
