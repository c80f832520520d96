package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// client add --id-token-alg registers the algorithm the app's ID tokens
// are signed with; list shows it, and anything but RS256 or ES256 is a
// usage error.
func TestClientIDTokenAlg(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	kg := cliOn(dataDir)
	if _, err := kg(t, "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb"); err != nil {
		t.Fatal(err)
	}
	t.Run("client add --id-token-alg ES256 registers an app for ES256 ID tokens", func(t *testing.T) {
		out, err := kg(t, "client", "add", "--name", "Fast", "--redirect-uri", "https://fast.example.com/cb", "--id-token-alg", "ES256", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		decodeJSON(t, out, &got)
		if got["id_token_signed_response_alg"] != "ES256" {
			t.Fatalf("output %s", out)
		}
		list, err := kg(t, "client", "list", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var apps []map[string]any
		decodeJSON(t, list, &apps)
		algs := map[any]any{}
		for _, a := range apps {
			algs[a["name"]] = a["id_token_signed_response_alg"]
		}
		if algs["Fast"] != "ES256" || algs["Wiki"] != "RS256" {
			t.Fatalf("client list: ID token algorithms %v, want Fast ES256 and Wiki (the default) RS256", algs)
		}
		table, err := kg(t, "client", "list")
		if err != nil || !strings.Contains(table, "ID_TOKEN_ALG") || !strings.Contains(table, "ES256") {
			t.Fatalf("client list table (%v):\n%s", err, table)
		}
	})
	t.Run("an unknown ID token algorithm is a usage error naming the flag", func(t *testing.T) {
		for _, alg := range []string{"HS256", "es256", "none", ""} {
			_, err := kg(t, "client", "add", "--name", "Bad", "--redirect-uri", "https://bad.example.com/cb", "--id-token-alg", alg)
			if !isUsage(err) || !strings.Contains(err.Error(), "--id-token-alg must be RS256 or ES256") {
				t.Errorf("--id-token-alg %q: err = %v, want a usage error naming the flag", alg, err)
			}
		}
	})
}
