package login

import (
	"net/url"
	"path"
	"strings"
)

// maxReturnTo bounds return_to: a console URL is far shorter.
const maxReturnTo = 2048

// safeReturn accepts only a path on keygate itself, so a crafted link
// cannot send the user elsewhere after sign-in; it returns "" for
// anything else, and otherwise the path re-serialised.
//
// A browser reads a Location more loosely than net/url does: it drops
// tabs and newlines anywhere and reads a backslash as a slash, so
// "/\t/evil.example" and "/\\evil.example" are "//evil.example", another
// host. Rather than list such tricks, only printable ASCII without
// spaces or backslashes is let through, and what is handed back is built
// from the parsed path (dot segments and repeated slashes removed) and
// query: a single leading slash, never two.
func safeReturn(p string) string {
	if len(p) > maxReturnTo || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return ""
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return ""
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.User != nil || u.Host != "" {
		return ""
	}
	clean := path.Clean(u.EscapedPath())
	if strings.HasSuffix(u.EscapedPath(), "/") && clean != "/" {
		clean += "/"
	}
	if !strings.HasPrefix(clean, "/") || strings.HasPrefix(clean, "//") {
		return ""
	}
	if u.RawQuery != "" {
		clean += "?" + u.RawQuery
	}
	return clean
}
