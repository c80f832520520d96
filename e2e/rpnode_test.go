package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeRP is the relying party in rp-node/rp.mjs: openid-client on Node.js
// with its default settings, run as a child process and spoken to in JSON
// lines over its stdin and stdout.
type nodeRP struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lineBuffer
}

// nodeAnswer is one answer of rp.mjs; which fields are set depends on the op.
type nodeAnswer struct {
	OK    bool       `json:"ok"`
	Error *nodeError `json:"error"`
	// Wire lists the HTTP requests openid-client made for the op.
	Wire []wireRequest `json:"wire"`

	URL          string         `json:"url"`
	State        string         `json:"state"`
	Nonce        string         `json:"nonce"`
	Metadata     map[string]any `json:"metadata"`
	SupportsPKCE bool           `json:"supports_pkce"`

	AccessToken  string         `json:"access_token"`
	RefreshToken string         `json:"refresh_token"`
	IDToken      string         `json:"id_token"`
	TokenType    string         `json:"token_type"`
	ExpiresIn    int            `json:"expires_in"`
	Scope        string         `json:"scope"`
	Claims       map[string]any `json:"claims"`

	UserInfo      map[string]any `json:"userinfo"`
	Introspection map[string]any `json:"introspection"`
}

type nodeError struct {
	Name             string `json:"name"`
	Message          string `json:"message"`
	Code             string `json:"code"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	Status           int    `json:"status"`
	Cause            string `json:"cause"`
}

func (e *nodeError) String() string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s %s: %s (error %q %q, status %d, cause %q)", e.Name, e.Code, e.Message, e.Error, e.ErrorDescription, e.Status, e.Cause)
}

// wireRequest is one request as rp.mjs saw it leave: the names of its
// form fields, never their values.
type wireRequest struct {
	URL           string   `json:"url"`
	Method        string   `json:"method"`
	Authorization bool     `json:"authorization"`
	Form          []string `json:"form"`
}

var nodeModules struct {
	once sync.Once
	dir  string
	err  error
}

// nodeModulesDir is where openid-client is installed: KEYGATE_E2E_NODE as
// scripts/test.sh sets it, or else what scripts/e2e-node.sh installs now
// (it finds or installs Node.js 20 or newer and the packages).
func nodeModulesDir(t *testing.T) string {
	t.Helper()
	nodeModules.once.Do(func() {
		if dir := os.Getenv("KEYGATE_E2E_NODE"); dir != "" {
			nodeModules.dir = dir
			return
		}
		cmd := exec.Command("../scripts/e2e-node.sh")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			nodeModules.err = fmt.Errorf("scripts/e2e-node.sh: %v\n%s", err, stderr.String())
			return
		}
		nodeModules.dir = strings.TrimSpace(string(out))
	})
	if nodeModules.err != nil {
		t.Fatalf("the Node.js relying party cannot run: %v", nodeModules.err)
	}
	if _, err := os.Stat(nodeModules.dir + "/node_modules/openid-client/package.json"); err != nil {
		t.Fatalf("openid-client is not installed in %s (KEYGATE_E2E_NODE; scripts/e2e-node.sh installs it): %v", nodeModules.dir, err)
	}
	return nodeModules.dir
}

// startNodeRP runs rp.mjs with Node trusting caFile, the issuer's
// certificate: openid-client insists on https unless told otherwise.
func startNodeRP(t *testing.T, caFile string) *nodeRP {
	t.Helper()
	dir := nodeModulesDir(t)
	n := &nodeRP{lines: make(chan string, 16), stderr: &lineBuffer{}}
	// scripts/e2e-node.sh links the Node.js 20+ it chose into dir; a
	// directory given by hand may not have one.
	node := filepath.Join(dir, "node")
	if _, err := os.Stat(node); err != nil {
		node = "node"
	}
	n.cmd = exec.Command(node, "rp-node/rp.mjs")
	n.cmd.Env = append(os.Environ(), "KEYGATE_E2E_NODE="+dir, "NODE_EXTRA_CA_CERTS="+caFile)
	n.cmd.Stderr = n.stderr
	var err error
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start node (scripts/e2e-node.sh installs Node.js): %v", err)
	}
	go func() {
		defer close(n.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		n.stdin.Close() // rp.mjs ends when its input does
		done := make(chan error, 1)
		go func() { done <- n.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node exited with %v\n%s", err, n.stderr)
			}
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-done
			t.Errorf("node did not exit within 10 s of its input closing")
		}
	})
	return n
}

// try sends one request and returns the answer, successful or not.
func (n *nodeRP) try(t *testing.T, op string, args map[string]any) nodeAnswer {
	t.Helper()
	req := map[string]any{"op": op}
	for k, v := range args {
		req[k] = v
	}
	line, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("%s: write to node: %v\n%s", op, err, n.stderr)
	}
	select {
	case out, ok := <-n.lines:
		if !ok {
			t.Fatalf("%s: node exited\n%s", op, n.stderr)
		}
		var a nodeAnswer
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("%s: %v in %q", op, err, out)
		}
		return a
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: node did not answer within 60 s\n%s", op, n.stderr)
	}
	return nodeAnswer{}
}

// call is try that fails the test when openid-client failed.
func (n *nodeRP) call(t *testing.T, op string, args map[string]any) nodeAnswer {
	t.Helper()
	a := n.try(t, op, args)
	if !a.OK {
		t.Fatalf("openid-client %s failed: %s", op, a.Error)
	}
	return a
}
