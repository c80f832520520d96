// Package archtest holds the architecture test: which packages of the
// module may depend on which. It has no code besides its test.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/keygate/keygate"

// Markers usable in a rule's forbid list besides import-path prefixes.
const (
	anyModulePackage = module // every package of the module (minus except)
	anyNonStd        = "<any package outside the standard library>"
)

// capabilities are the feature packages of the server. They share storage
// records, never Go imports: none may depend on another.
var capabilities = []string{"server/oidc", "server/login", "server/mfa", "server/admin"}

// rule forbids pkg (relative to the module) from depending, directly or
// through anything it imports, on the forbidden import paths. A forbidden
// path covers itself and everything below it; except names exact
// module-relative packages allowed all the same. To add a rule, add a line.
type rule struct {
	pkg      string
	forbid   []string
	except   []string
	tests    bool // also check what the package's tests import
	optional bool // the package may not exist (yet)
	why      string
}

var rules = []rule{
	{pkg: "storage", forbid: []string{anyModulePackage, "github.com/ory/fosite"},
		why: "storage is the vocabulary every other package speaks; it depends on nothing of ours, and not on fosite"},
	{pkg: "storage/sqlite", forbid: []string{anyModulePackage, "github.com/ory/fosite"}, except: []string{"storage", "storage/internal/clientcache", "internal/jsonscan"},
		why: "a backend implements storage (with the client cache the backends share, and the standard-library JSON reader for its list columns) and knows nothing else of keygate"},
	{pkg: "storage/postgres", forbid: []string{anyModulePackage, "github.com/ory/fosite"}, except: []string{"storage", "storage/internal/clientcache"},
		why: "a backend implements storage (with the client cache the backends share) and knows nothing else of keygate"},
	{pkg: "storage/internal/clientcache", forbid: []string{anyModulePackage}, except: []string{"storage"},
		why: "the client cache the backends share sits as low as they do"},
	{pkg: "keys", forbid: []string{anyModulePackage}, except: []string{"storage"},
		why: "key handling sits below the server and depends only on storage"},
	{pkg: "storage", forbid: []string{module + "/server"}, why: "storage never reaches up into the server"},
	{pkg: "storage/sqlite", forbid: []string{module + "/server"}, why: "storage never reaches up into the server"},
	{pkg: "keys", forbid: []string{module + "/server"}, why: "keys never reach up into the server"},
	{pkg: "storage/storecopy", forbid: []string{module + "/server", module + "/keys", module + "/cmd"},
		why: "the copy moves rows between the backends as they are: it knows nothing of the server, and secrets travel sealed, never opened"},
	{pkg: "server/httpx", forbid: []string{anyModulePackage},
		why: "the HTTP toolkit is generic: it knows nothing of keygate"},
	{pkg: "server/risk", forbid: []string{anyNonStd}, optional: true,
		why: "risk scoring is pure logic over the standard library"},
	{pkg: "e2e", forbid: []string{anyModulePackage}, tests: true, except: []string{"server/geo/geotest", "storage/postgres/pgtest", "server/mail/mailtest", "internal/porttest"},
		why: "the end-to-end suite drives the built binary from outside, as a user would (geotest only writes test MMDB files, pgtest only finds a PostgreSQL server, mailtest only runs an SMTP server, porttest only picks ports)"},
	{pkg: "server/mail/mailtest", forbid: []string{anyModulePackage}, except: []string{"internal/porttest"},
		why: "the test SMTP server knows nothing of keygate, so the end-to-end suite can run it (servertest.MailConfig points keygate at it)"},
	{pkg: "web", forbid: []string{anyModulePackage},
		why: "web holds templates and static files only"},
	{pkg: "storage/postgres/pgtest", forbid: []string{anyModulePackage},
		why: "the PostgreSQL test helper deals in servers and databases only, so storage/postgres's own tests can use it"},
	{pkg: "storage/postgres/postgrestest", forbid: []string{anyModulePackage}, except: []string{"storage", "storage/postgres", "storage/postgres/pgtest", "storage/internal/clientcache"},
		why: "the PostgreSQL store helper sits as low as the backend, so the tests of storage packages can use it"},
	{pkg: "storage/sqlite/sqlitetest", forbid: []string{anyModulePackage}, except: []string{"storage", "storage/sqlite", "storage/internal/clientcache", "internal/jsonscan"},
		why: "the SQLite test helper sits as low as the backend, so the tests of storage packages can use it"},
	{pkg: "internal/jsonscan", forbid: []string{anyNonStd},
		why: "the JSON reader the token store, the session and the SQLite backend share is the standard library only, so all three can sit on it"},
	{pkg: "internal/clocktest", forbid: []string{anyNonStd},
		why: "the test clock is the standard library only, so the tests of any package can use it"},
	{pkg: "internal/browsertest", forbid: []string{anyNonStd},
		why: "the browser's URL reading is the standard library only, so the tests of any package can use it"},
	{pkg: "internal/porttest", forbid: []string{anyNonStd},
		why: "picking a port for a test server is the standard library only, so the tests of any package can use it"},
	{pkg: "server/mail", forbid: append(capabilityPaths(), module+"/server/manage"),
		why: "mail builds, queues and sends messages; manage and the capabilities call it, never the other way"},
	{pkg: "server/session/sessiontest", forbid: capabilityPaths(),
		why: "the capabilities' in-package tests mint sessions with it: it must not import them back"},
	{pkg: "cmd/keygate", forbid: []string{"google.golang.org/grpc", "go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "gopkg.in/yaml.v3"},
		why: "the binary links no tracing SDK or gRPC (go.mod puts internal/oryxshim in place of github.com/ory/x, which would pull them in for fosite) and one YAML library, not two: every linked package costs resident memory"},
}

// testHelpers are the packages that exist for tests only: they import
// package testing and fail the test they are given. Only _test.go files may
// import them: no other package may depend on them, even indirectly (see
// helperUsers). Every package of the module named *test must be listed.
var testHelpers = []string{
	"internal/browsertest",
	"internal/clocktest",
	"internal/porttest",
	"server/geo/geotest",
	"server/mail/mailtest",
	"server/servertest",
	"server/session/sessiontest",
	"storage/conformance",
	"storage/postgres/pgtest",
	"storage/postgres/postgrestest",
	"storage/sqlite/sqlitetest",
}

// capabilityPaths are the capabilities' import paths.
func capabilityPaths() []string {
	var out []string
	for _, c := range capabilities {
		out = append(out, module+"/"+c)
	}
	return out
}

// capabilityRules forbids each capability package from depending on every
// other one.
func capabilityRules() []rule {
	var out []rule
	for _, c := range capabilities {
		var others []string
		for _, o := range capabilities {
			if o != c {
				others = append(others, module+"/"+o)
			}
		}
		out = append(out, rule{pkg: c, forbid: others, optional: c == "server/admin",
			why: "capabilities share storage records, never Go imports"})
	}
	return out
}

// listed is the part of `go list -json` this test reads.
type listed struct {
	ImportPath string
	ForTest    string
	Standard   bool
	GoFiles    []string
	Deps       []string
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// graph is the module's dependency graph: for each module package, what it
// depends on transitively, without and with its tests.
type graph struct {
	deps     map[string][]string // import path -> transitive deps (non-test)
	testDeps map[string][]string // import path -> transitive deps of its test variants
	standard map[string]bool
	hasCode  map[string]bool // import path -> has non-test Go files
}

// stripVariant turns "p [q.test]" into "p".
func stripVariant(p string) string {
	if i := strings.Index(p, " ["); i >= 0 {
		return p[:i]
	}
	return p
}

func loadGraph(t *testing.T) graph {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "list", "-e", "-deps", "-test",
		"-json=ImportPath,ForTest,Standard,GoFiles,Deps,Error,DepsErrors", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := graph{deps: map[string][]string{}, testDeps: map[string][]string{}, standard: map[string]bool{}, hasCode: map[string]bool{}}
	var problems []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.Error != nil && strings.HasPrefix(p.ImportPath, module) {
			problems = append(problems, p.ImportPath+": "+p.Error.Err)
		}
		path := stripVariant(p.ImportPath)
		g.standard[path] = p.Standard
		var deps []string
		for _, d := range p.Deps {
			deps = append(deps, stripVariant(d))
		}
		switch {
		case p.ForTest != "":
			// "p [p.test]" or "p_test [p.test]": a test variant of p.
			g.testDeps[p.ForTest] = append(g.testDeps[p.ForTest], deps...)
		case !strings.HasSuffix(p.ImportPath, ".test"):
			g.deps[path] = deps
			g.hasCode[path] = len(p.GoFiles) > 0
		}
	}
	if len(problems) > 0 {
		t.Fatalf("go list found broken packages; the graph cannot be checked:\n%s", strings.Join(problems, "\n"))
	}
	return g
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// violations lists the dependencies of r.pkg that r forbids.
func (g graph) violations(r rule, deps []string) []string {
	self := module + "/" + r.pkg
	var bad []string
	for _, d := range deps {
		if d == self || strings.HasSuffix(d, ".test") || d == self+"_test" {
			continue
		}
		if slices.ContainsFunc(r.except, func(e string) bool { return d == module+"/"+e }) {
			continue
		}
		for _, f := range r.forbid {
			hit := false
			switch f {
			case anyNonStd:
				hit = !g.standard[d]
			default:
				hit = under(d, f)
			}
			if hit {
				bad = append(bad, d)
				break
			}
		}
	}
	sort.Strings(bad)
	return slices.Compact(bad)
}

func TestAllowedImports(t *testing.T) {
	g := loadGraph(t)
	for _, r := range append(slices.Clone(rules), capabilityRules()...) {
		name := r.pkg + " does not depend on " + strings.Join(describe(r), ", ")
		t.Run(name, func(t *testing.T) {
			path := module + "/" + r.pkg
			deps, ok := g.deps[path]
			if !ok {
				if r.optional {
					t.Skipf("%s does not exist (yet)", r.pkg)
				}
				t.Fatalf("%s is not a package of the module: fix the rule or restore the package", r.pkg)
			}
			if r.tests {
				deps = append(slices.Clone(deps), g.testDeps[path]...)
			}
			if bad := g.violations(r, deps); len(bad) > 0 {
				t.Errorf("%s depends on %s\nrule: %s", r.pkg, strings.Join(bad, ", "), r.why)
			}
		})
	}
}

// helperUsers lists, as "p depends on h", the module packages other than
// the helpers themselves that depend on one of the test helpers: only
// tests may. A helper may build on another.
func (g graph) helperUsers(helpers []string) []string {
	isHelper := func(p string) bool {
		return slices.ContainsFunc(helpers, func(h string) bool { return p == module+"/"+h })
	}
	var bad []string
	for p, deps := range g.deps {
		if !under(p, module) || isHelper(p) {
			continue
		}
		for _, d := range deps {
			if isHelper(d) {
				bad = append(bad, p+" depends on "+d)
			}
		}
	}
	sort.Strings(bad)
	return slices.Compact(bad)
}

// unlistedHelpers lists the module packages named *test, with code
// besides tests, that helpers does not list.
func (g graph) unlistedHelpers(helpers []string) []string {
	var out []string
	for p := range g.deps {
		rel, ok := strings.CutPrefix(p, module+"/")
		if ok && g.hasCode[p] && strings.HasSuffix(rel[strings.LastIndex(rel, "/")+1:], "test") && !slices.Contains(helpers, rel) {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

func TestTestHelpers(t *testing.T) {
	g := loadGraph(t)
	t.Run("every listed test helper is a package of the module", func(t *testing.T) {
		for _, h := range testHelpers {
			if _, ok := g.deps[module+"/"+h]; !ok {
				t.Errorf("%s is not a package of the module: fix testHelpers or restore the package", h)
			}
		}
	})
	t.Run("every package named *test is listed as a test helper", func(t *testing.T) {
		if missing := g.unlistedHelpers(testHelpers); len(missing) > 0 {
			t.Errorf("not in testHelpers: %s", strings.Join(missing, ", "))
		}
	})
	t.Run("only tests import the test helpers", func(t *testing.T) {
		for _, b := range g.helperUsers(testHelpers) {
			t.Error(b + ": test helpers are for _test.go files only")
		}
	})
}

// describe words a rule's forbid list for the subtest's name.
func describe(r rule) []string {
	var out []string
	for _, f := range r.forbid {
		switch {
		case f == anyModulePackage && len(r.except) > 0:
			out = append(out, "module packages other than "+strings.Join(r.except, ", "))
		case f == anyModulePackage:
			out = append(out, "any module package")
		case f == anyNonStd:
			out = append(out, "anything outside the standard library")
		case strings.HasPrefix(f, module+"/"):
			out = append(out, strings.TrimPrefix(f, module+"/"))
		default:
			out = append(out, f)
		}
	}
	return out
}

// TestRulesCanFail checks the checker: a graph that breaks each kind of
// rule is caught, so a green TestAllowedImports means something.
func TestRulesCanFail(t *testing.T) {
	g := graph{standard: map[string]bool{"fmt": true, "net/http": true}}
	tests := []struct {
		name string
		r    rule
		deps []string
		want []string
	}{
		{"a module package under a forbidden prefix is caught",
			rule{pkg: "storage", forbid: []string{module + "/server"}},
			[]string{"fmt", module + "/server/httpx"}, []string{module + "/server/httpx"}},
		{"a package merely sharing a name prefix is not caught",
			rule{pkg: "storage", forbid: []string{module + "/server"}},
			[]string{module + "/serverless"}, nil},
		{"an allowed exception passes but its neighbours do not",
			rule{pkg: "storage/sqlite", forbid: []string{anyModulePackage}, except: []string{"storage"}},
			[]string{module + "/storage", module + "/storage/conformance"}, []string{module + "/storage/conformance"}},
		{"the package itself and its test variants are not violations",
			rule{pkg: "e2e", forbid: []string{anyModulePackage}},
			[]string{module + "/e2e", module + "/e2e_test", module + "/e2e.test"}, nil},
		{"an external forbidden module is caught with its subpackages",
			rule{pkg: "storage", forbid: []string{"github.com/ory/fosite"}},
			[]string{"github.com/ory/fosite/handler/oauth2"}, []string{"github.com/ory/fosite/handler/oauth2"}},
		{"a non-standard package is caught where only the standard library is allowed",
			rule{pkg: "server/risk", forbid: []string{anyNonStd}},
			[]string{"fmt", "net/http", "golang.org/x/text"}, []string{"golang.org/x/text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := g.violations(tt.r, tt.deps); !slices.Equal(got, tt.want) {
				t.Fatalf("violations = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a package that is not a test helper depending on one is caught, directly or not", func(t *testing.T) {
		g := graph{deps: map[string][]string{
			module + "/server":            {module + "/server/session"},
			module + "/server/login":      {module + "/server/session", module + "/server/session/sessiontest"},
			module + "/cmd/keygate":       {module + "/server/login", module + "/server/session/sessiontest"},
			module + "/server/servertest": {module + "/server", module + "/server/session/sessiontest"},
		}}
		want := []string{
			module + "/cmd/keygate depends on " + module + "/server/session/sessiontest",
			module + "/server/login depends on " + module + "/server/session/sessiontest",
		}
		if got := g.helperUsers([]string{"server/servertest", "server/session/sessiontest"}); !slices.Equal(got, want) {
			t.Fatalf("helperUsers = %v, want %v", got, want)
		}
	})
	t.Run("a helper-named package missing from the list is caught, a test-only one is not", func(t *testing.T) {
		g := graph{deps: map[string][]string{module + "/x/footest": nil, module + "/internal/archtest": nil, module + "/contest/y": nil},
			hasCode: map[string]bool{module + "/x/footest": true, module + "/contest/y": true}}
		if got := g.unlistedHelpers(nil); !slices.Equal(got, []string{"x/footest"}) {
			t.Fatalf("unlistedHelpers = %v, want [x/footest]", got)
		}
	})
	t.Run("every capability is forbidden every other capability", func(t *testing.T) {
		rs := capabilityRules()
		if len(rs) != len(capabilities) {
			t.Fatalf("%d capability rules for %d capabilities", len(rs), len(capabilities))
		}
		for _, r := range rs {
			if len(r.forbid) != len(capabilities)-1 || slices.Contains(r.forbid, module+"/"+r.pkg) {
				t.Errorf("rule for %s forbids %v", r.pkg, r.forbid)
			}
		}
	})
}
