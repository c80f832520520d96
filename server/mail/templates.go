package mail

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"

	"github.com/keygate/keygate/web"
)

// A kind of message is a pair of templates in web/mail, name.txt and
// name.html, each defining "body" inside its layout. Both are parsed once,
// at start; a missing or broken one stops the binary (tests parse them all).
type kind struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

func parseKind(name string) kind {
	files := web.Mail()
	return kind{
		text: texttemplate.Must(texttemplate.ParseFS(files, "layout.txt", name+".txt")),
		html: htmltemplate.Must(htmltemplate.ParseFS(files, "layout.html", name+".html")),
	}
}

var enrollmentKind = parseKind("enrollment")

// view is what every template sees: the message's own data and where it
// comes from.
type view struct {
	Subject string
	Issuer  string // https://id.example.com
	Host    string // id.example.com
}

func newView(issuer, subject string) (view, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return view{}, fmt.Errorf("mail: issuer %q is not an http(s) URL", issuer)
	}
	return view{Subject: subject, Issuer: issuer, Host: u.Host}, nil
}

// render builds the message of kind k to one recipient; data embeds view.
func (k kind) render(to, toName, subject string, data any) (Message, error) {
	var text, html bytes.Buffer
	if err := k.text.ExecuteTemplate(&text, "layout", data); err != nil {
		return Message{}, fmt.Errorf("mail: %w", err)
	}
	if err := k.html.ExecuteTemplate(&html, "layout", data); err != nil {
		return Message{}, fmt.Errorf("mail: %w", err)
	}
	m := Message{To: to, ToName: oneLine(toName), Subject: oneLine(subject), Text: text.String(), HTML: html.String()}
	return m, m.check()
}

// underIssuer refuses a link anywhere but under the issuer: a message may
// only send its reader back to keygate.
func underIssuer(link, issuer string) error {
	if !strings.HasPrefix(link, issuer+"/") {
		return fmt.Errorf("mail: link %q is not under the issuer %s", link, issuer)
	}
	return nil
}
