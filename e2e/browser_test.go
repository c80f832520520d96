package e2e

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// browser is a cookie-keeping HTTP client that follows redirects within
// keygate and stops at the first redirect that leaves it (to an app), the
// way a user's browser would hand over to the app.
type browser struct {
	t      *testing.T
	c      *http.Client
	origin string
}

func newBrowser(t *testing.T, issuer string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, origin: issuer}
	b.c = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), b.origin+"/") {
			return http.ErrUseLastResponse
		}
		if len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is a fetched response, parsed when it is HTML.
type page struct {
	t        *testing.T
	url      *url.URL
	status   int
	body     string
	location string // set when a redirect left keygate
	doc      *html.Node
}

func (b *browser) get(rawURL string) *page {
	b.t.Helper()
	resp, err := b.c.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return b.read(resp)
}

func (b *browser) post(rawURL string, form url.Values) *page {
	b.t.Helper()
	resp, err := b.c.PostForm(rawURL, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", rawURL, err)
	}
	return b.read(resp)
}

func (b *browser) read(resp *http.Response) *page {
	defer resp.Body.Close()
	p := &page{t: b.t, url: resp.Request.URL, status: resp.StatusCode, body: readAll(b.t, resp.Body)}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		p.location = resp.Header.Get("Location")
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		doc, err := html.Parse(strings.NewReader(p.body))
		if err != nil {
			b.t.Fatal(err)
		}
		p.doc = doc
	}
	return p
}

// submit fills the form posting to action with values (on top of its
// hidden fields, CSRF token included) and posts it.
func (b *browser) submit(p *page, action string, values map[string]string) *page {
	b.t.Helper()
	form := p.form(action)
	for k, v := range values {
		form.Set(k, v)
	}
	target, err := p.url.Parse(action)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.post(target.String(), form)
}

// form returns the fields of the form whose action is action.
func (p *page) form(action string) url.Values {
	p.t.Helper()
	if p.doc == nil {
		p.t.Fatalf("%s is not an HTML page (status %d): %s", p.url, p.status, tail(p.body, 500))
	}
	var found *html.Node
	walk(p.doc, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && n.Data == "form" && attr(n, "action") == action {
			found = n
		}
	})
	if found == nil {
		p.t.Fatalf("no form posting to %s on %s (status %d):\n%s", action, p.url, p.status, tail(p.body, 1500))
	}
	v := url.Values{}
	walk(found, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") != "" {
			v.Set(attr(n, "name"), attr(n, "value"))
		}
	})
	return v
}

// byID returns the element with id, or nil.
func (p *page) byID(id string) *html.Node {
	var found *html.Node
	if p.doc == nil {
		return nil
	}
	walk(p.doc, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && attr(n, "id") == id {
			found = n
		}
	})
	return found
}

// alert is the page's error message, if any.
func (p *page) alert() string {
	var msg string
	if p.doc == nil {
		return ""
	}
	walk(p.doc, func(n *html.Node) {
		if msg == "" && n.Type == html.ElementNode && attr(n, "role") == "alert" {
			msg = textOf(n)
		}
	})
	return msg
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var sb strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			sb.WriteString(c.Data)
		}
	})
	return strings.TrimSpace(sb.String())
}
