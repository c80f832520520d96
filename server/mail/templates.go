package mail

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	"sync"
	texttemplate "text/template"

	"github.com/keygate/keygate/web"
)

// A kind of message is a pair of templates in web/mail, name.txt and
// name.html, each defining "body" inside its layout. They are parsed on the
// first message of the kind, not at start: most processes send few kinds
// or none (every CLI command, a server without SMTP), and parsing all ten
// was the second-largest package initialisation of the binary in heap. A
// missing or broken template is an error of every message of its kind;
// the tests parse and render every kind.
type kind struct {
	parse func() (parsedKind, error)
}

type parsedKind struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// parseKind names a kind; its templates are parsed once, on first use.
func parseKind(name string) kind {
	return kind{parse: sync.OnceValues(func() (parsedKind, error) {
		files := web.Mail()
		text, err := texttemplate.ParseFS(files, "layout.txt", name+".txt")
		if err != nil {
			return parsedKind{}, fmt.Errorf("mail: the %s templates: %w", name, err)
		}
		html, err := htmltemplate.ParseFS(files, "layout.html", name+".html")
		if err != nil {
			return parsedKind{}, fmt.Errorf("mail: the %s templates: %w", name, err)
		}
		return parsedKind{text: text, html: html}, nil
	})}
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
	t, err := k.parse()
	if err != nil {
		return Message{}, err
	}
	var text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&text, "layout", data); err != nil {
		return Message{}, fmt.Errorf("mail: %w", err)
	}
	if err := t.html.ExecuteTemplate(&html, "layout", data); err != nil {
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
