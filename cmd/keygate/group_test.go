package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestGroupsOnTheCommandLine(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	kg := cliOn(dataDir)
	mustKG := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := kg(t, args...)
		if err != nil {
			t.Fatalf("keygate %v: %v", args, err)
		}
		return out
	}
	users := func(t *testing.T) map[string]map[string]any {
		t.Helper()
		var list []map[string]any
		if err := json.Unmarshal([]byte(mustKG(t, "user", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		for _, u := range list {
			out[u["email"].(string)] = u
		}
		return out
	}
	groupsOf := func(u map[string]any) []string {
		var out []string
		for _, g := range u["groups"].([]any) {
			out = append(out, g.(string))
		}
		return out
	}

	t.Run("group add prints its id and name as JSON", func(t *testing.T) {
		var got map[string]string
		if err := json.Unmarshal([]byte(mustKG(t, "group", "add", "support", "--description", "The help desk", "--min-acr", "phrh", "--json")), &got); err != nil {
			t.Fatal(err)
		}
		if got["name"] != "support" || !strings.HasPrefix(got["group_id"], "g_") || len(got) != 2 {
			t.Fatalf("group add printed %v", got)
		}
		mustKG(t, "group", "add", "ops")
	})
	t.Run("bad groups are usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"group", "add", "Support"},                   // taken, in another case
			{"group", "add", "two words"},                 // a space
			{"group", "add", "x", "--min-acr", "strong"},  // not an acr
			{"group", "delete", "nobody"},                 // unknown
			{"group", "member", "add", "support"},         // no email
			{"group", "member", "add", "nobody", "a@b.c"}, // unknown group
			{"user", "add", "x@example.com", "--group", "nobody"},
			{"user", "add", "x@example.com", "--role", "root"},
			{"user", "add", "x@example.com", "--admin", "--role", "auditor"},
			{"client", "add", "--name", "X", "--redirect-uri", "https://x.example/cb", "--allowed-group", "nobody"},
		} {
			if _, err := kg(t, args...); err == nil || !isUsage(err) {
				t.Errorf("keygate %v = %v, want a usage error", args, err)
			}
		}
		if _, ok := users(t)["x@example.com"]; ok {
			t.Error("a refused user add left the user behind")
		}
	})
	t.Run("users join groups when added, by member add, and leave by member remove", func(t *testing.T) {
		mustKG(t, "user", "add", "ann@example.com", "--group", "support", "--group", "ops", "--role", "helpdesk")
		mustKG(t, "user", "add", "bob@example.com", "--admin")
		mustKG(t, "group", "member", "add", "SUPPORT", "bob@example.com")
		u := users(t)
		if g := groupsOf(u["ann@example.com"]); !slices.Equal(g, []string{"ops", "support"}) || u["ann@example.com"]["role"] != "helpdesk" {
			t.Errorf("ann: %v", u["ann@example.com"])
		}
		if g := groupsOf(u["bob@example.com"]); !slices.Equal(g, []string{"support"}) || u["bob@example.com"]["role"] != "admin" || u["bob@example.com"]["admin"] != true {
			t.Errorf("bob: %v", u["bob@example.com"])
		}
		mustKG(t, "group", "member", "remove", "support", "ann@example.com")
		if g := groupsOf(users(t)["ann@example.com"]); !slices.Equal(g, []string{"ops"}) {
			t.Errorf("ann after removal: %v", g)
		}
		if _, err := kg(t, "group", "member", "remove", "support", "ann@example.com"); err == nil || !isUsage(err) {
			t.Errorf("removing a non-member = %v, want a usage error", err)
		}
	})
	t.Run("group list counts members", func(t *testing.T) {
		var list []map[string]any
		if err := json.Unmarshal([]byte(mustKG(t, "group", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0]["name"] != "ops" || list[1]["name"] != "support" ||
			list[0]["members"] != float64(1) || list[1]["members"] != float64(1) || list[1]["min_acr"] != "phrh" {
			t.Fatalf("group list: %v", list)
		}
	})
	t.Run("an app's only allowed group cannot be deleted until the app names others", func(t *testing.T) {
		var app map[string]any
		if err := json.Unmarshal([]byte(mustKG(t, "client", "add", "--name", "CRM", "--redirect-uri", "https://crm.example/cb",
			"--allowed-group", "ops", "--json")), &app); err != nil {
			t.Fatal(err)
		}
		if ag, _ := app["allowed_groups"].([]any); len(ag) != 1 || ag[0] != "ops" {
			t.Fatalf("client add: allowed groups %v", app["allowed_groups"])
		}
		if _, err := kg(t, "group", "delete", "ops"); err == nil || !isUsage(err) || !strings.Contains(err.Error(), "CRM") {
			t.Fatalf("deleting the only group of CRM = %v, want a usage error naming the app", err)
		}
		mustKG(t, "group", "delete", "support")
		if g := groupsOf(users(t)["bob@example.com"]); len(g) != 0 {
			t.Errorf("bob is still in %v after the group was deleted", g)
		}
	})
}

func TestUserImport(t *testing.T) {
	clearEnv(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	kg := cliOn(dataDir)
	file := func(t *testing.T, content string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "users.csv")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := kg(t, "group", "add", "support"); err != nil {
		t.Fatal(err)
	}
	if _, err := kg(t, "group", "add", "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := kg(t, "user", "add", "taken@example.com"); err != nil {
		t.Fatal(err)
	}
	userCount := func(t *testing.T) int {
		out, err := kg(t, "user", "list", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var list []any
		_ = json.Unmarshal([]byte(out), &list)
		return len(list)
	}

	t.Run("a file with bad rows imports nothing and names every bad line", func(t *testing.T) {
		bad := file(t, "email,name,groups\n"+
			"ok@example.com,Ok,support\n"+ // line 2: fine
			"not-an-address,Nope,\n"+ // line 3
			"taken@example.com,Taken,\n"+ // line 4
			"dup@example.com,Dup,ops\n"+ // line 5: fine
			"DUP@example.com,Dup again,\n"+ // line 6
			"ghost@example.com,Ghost,support;nobody\n"+ // line 7
			"short@example.com,Short\n") // line 8
		_, err := kg(t, "user", "import", bad)
		if err == nil || !isUsage(err) {
			t.Fatalf("import = %v, want a usage error", err)
		}
		// The field count is checked first: a file whose shape is wrong
		// is refused before anything is looked up.
		if !strings.Contains(err.Error(), "line 8") {
			t.Errorf("the error does not name line 8: %v", err)
		}
		if n := userCount(t); n != 1 {
			t.Errorf("%d users after a refused import, want the 1 there was", n)
		}
		bad = file(t, "email,name,groups\nok@example.com,Ok,support\nnot-an-address,Nope,\ntaken@example.com,Taken,\n"+
			"dup@example.com,Dup,ops\nDUP@example.com,Dup again,\nghost@example.com,Ghost,support;nobody\n")
		_, err = kg(t, "user", "import", bad)
		if err == nil || !isUsage(err) {
			t.Fatalf("import = %v, want a usage error", err)
		}
		for _, line := range []string{"line 3", "line 4", "line 6", "line 7"} {
			if !strings.Contains(err.Error(), line) {
				t.Errorf("the error does not name %s: %v", line, err)
			}
		}
		for _, line := range []string{"line 2:", "line 5:"} {
			if strings.Contains(err.Error(), line) {
				t.Errorf("the error names good %s: %v", line, err)
			}
		}
		if n := userCount(t); n != 1 {
			t.Errorf("%d users after a refused import, want the 1 there was", n)
		}
	})
	t.Run("a good file adds every user with their groups and prints a JSON line each", func(t *testing.T) {
		good := file(t, "\ufeffEmail,Name,Groups\n\"Lee, Ann\" <ann@example.com>,x,\nann@example.com,\"Lee, Ann\",support;ops\nbo@example.com,Bo,\n")
		if _, err := kg(t, "user", "import", good); err == nil {
			t.Fatal("a display-name address was accepted")
		}
		good = file(t, "\ufeffEmail,Name,Groups\nann@example.com,\"Lee, Ann\",support; ops\nbo@example.com,Bo,\n")
		out, err := kg(t, "user", "import", good)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d lines printed, want 2:\n%s", len(lines), out)
		}
		for i, want := range []string{"ann@example.com", "bo@example.com"} {
			var got map[string]string
			if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
				t.Fatalf("line %d is not JSON: %v", i+1, err)
			}
			if got["email"] != want || !strings.HasPrefix(got["enrollment_url"], "https://id.example.com/enroll?token=") {
				t.Errorf("line %d: %v", i+1, got)
			}
		}
		out, err = kg(t, "user", "list", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `"ops",`) || !strings.Contains(out, `"Lee, Ann"`) {
			t.Errorf("ann's name or groups did not arrive: %s", out)
		}
	})
}
