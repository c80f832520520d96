package browsertest

import (
	"net/url"
	"testing"
)

func TestResolve(t *testing.T) {
	base, _ := url.Parse("https://id.example/login")
	tests := []struct {
		name, ref, want string
	}{
		{"a local path stays local", "/account?x=1", "https://id.example/account?x=1"},
		{"a scheme-relative reference names another host", "//evil.example/x", "https://evil.example/x"},
		{"a tab inside is dropped, leaving two slashes", "/\t/evil.example/x", "https://evil.example/x"},
		{"a newline inside is dropped", "/\n/evil.example", "https://evil.example"},
		{"a backslash is a slash", `/\evil.example`, "https://evil.example"},
		{"a tab and a backslash together", "/\t\\evil.example", "https://evil.example"},
		{"leading spaces and controls are trimmed", " \x01//evil.example", "https://evil.example"},
		{"a backslash in the query stays", `/a?b\c`, `https://id.example/a?b\c`},
		{"dot segments are removed", "/a/../b", "https://id.example/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Resolve(base, tt.ref)
			if err != nil || u.String() != tt.want {
				t.Errorf("Resolve(%q) = %v, %v; want %s", tt.ref, u, err, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, raw, host string
	}{
		{"an https URL", "https://app.example/cb", "app.example"},
		{"a backslash ends the host in an http URL", `http://localhost\@evil.example/`, "localhost"},
		{"a custom scheme keeps its backslashes", `com.example.app:/cb\x`, ""},
		{"a tab in the host is dropped", "https://app.\texample/cb", "app.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Parse(tt.raw)
			if tt.host == "" {
				if err == nil && u.Host != "" {
					t.Errorf("Parse(%q) has host %q, want none or an error", tt.raw, u.Host)
				}
				return
			}
			if err != nil || u.Host != tt.host {
				t.Errorf("Parse(%q) = %v, %v; want host %s", tt.raw, u, err, tt.host)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	base, _ := url.Parse("https://id.example/")
	for raw, want := range map[string]bool{
		"https://id.example/x":       true,
		"https://ID.EXAMPLE/x":       true,
		"http://id.example/x":        false,
		"https://id.example:8443/x":  false,
		"https://u@id.example/x":     false,
		"https://evil.example/x":     false,
		"https://id.example.evil/x":  false,
		"https://evil.example@x.com": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := SameOrigin(base, u); got != want {
			t.Errorf("SameOrigin(%s) = %v, want %v", raw, got, want)
		}
	}
}
