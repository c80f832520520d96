package mail

import "time"

var signInKind = parseKind("signin")

// SignInNotice tells a user of a sign-in to their account that the risk
// engine found new (a new device, a new country), with what it found, and
// carries the link that lets them say it was not them.
type SignInNotice struct {
	Issuer      string
	Email, Name string // the user's
	Time        time.Time
	Place       string   // "Berlin, DE"; "" when unknown
	IP          string   // "" when unknown
	Device      string   // "Chrome on Linux"
	App         string   // the app signed in to; "" for keygate itself
	Reasons     []string // the risk engine's, most serious first
	// ReportURL is the single-use "this wasn't me" link, under Issuer,
	// usable until ReportExpires.
	ReportURL     string
	ReportExpires time.Time
}

// Message renders the notice. It is sent even after its link expired: a
// sign-in the user did not make is worth knowing of late.
func (n SignInNotice) Message() (Message, error) {
	if err := underIssuer(n.ReportURL, n.Issuer); err != nil {
		return Message{}, err
	}
	v, err := newView(n.Issuer, "")
	if err != nil {
		return Message{}, err
	}
	v.Subject = "New sign-in to your account at " + v.Host
	reasons := make([]string, len(n.Reasons))
	for i, r := range n.Reasons {
		reasons[i] = oneLine(r)
	}
	data := struct {
		view
		Name, Email, Time, Place, IP, Device, App, ReportURL, ReportExpires string
		Reasons                                                             []string
	}{v, oneLine(n.Name), n.Email, n.Time.UTC().Format(expiresLayout), oneLine(n.Place), oneLine(n.IP),
		oneLine(n.Device), oneLine(n.App), n.ReportURL, n.ReportExpires.UTC().Format(expiresLayout), reasons}
	return signInKind.render(n.Email, n.Name, v.Subject, data)
}
