package mail

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/keygate/keygate/web"
)

// Templates are parsed on first use, so no start-up parse stops a broken
// one: every kind in web/mail must parse here.
func TestEveryKindParses(t *testing.T) {
	names, err := fs.Glob(web.Mail(), "*.txt")
	if err != nil {
		t.Fatal(err)
	}
	kinds := 0
	for _, file := range names {
		name := strings.TrimSuffix(file, ".txt")
		if name == "layout" {
			continue
		}
		kinds++
		if _, err := parseKind(name).parse(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if kinds < 5 {
		t.Errorf("found %d kinds of message in web/mail, want the five keygate sends", kinds)
	}
}

func TestMissingTemplateIsAnError(t *testing.T) {
	v, err := newView("https://id.example.com", "Hello")
	if err != nil {
		t.Fatal(err)
	}
	_, err = parseKind("no-such-kind").render("ada@example.com", "Ada", "Hello", v)
	if err == nil || !strings.Contains(err.Error(), "no-such-kind") {
		t.Fatalf("rendering a kind without templates: %v, want an error naming it", err)
	}
}
