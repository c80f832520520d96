package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// selfSigned makes an ECDSA P-256 certificate for 127.0.0.1, ::1 and
// localhost that signs itself.
func selfSigned(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "keygate e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// trusting is an HTTP client whose only trusted root is cert.
func trusting(t *testing.T, cert *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// writeKeyPair writes cert and key as PEM files into dir: the key 0600.
func writeKeyPair(t *testing.T, dir string, cert *x509.Certificate, key *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestServesTLSNatively configures tls.cert and tls.key and an https
// issuer in the YAML file, and checks keygate itself terminates TLS with
// that certificate: health, discovery and a stock OIDC client work over
// it, HSTS is sent, plain HTTP on the port is refused, and a client that
// does not trust the certificate fails the handshake.
func TestServesTLSNatively(t *testing.T) {
	cert, key := selfSigned(t)
	certFile, keyFile := writeKeyPair(t, t.TempDir(), cert, key)

	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	issuer := "https://" + addr
	client := trusting(t, cert)
	kg := startKeygateConfig(t, t.TempDir(), issuer, fmt.Sprintf("issuer: %q\nlisten: %q\ntls:\n  cert: %q\n  key: %q\n",
		issuer, addr, certFile, keyFile), client)

	t.Run("healthz answers over TLS with our certificate", func(t *testing.T) {
		resp, err := client.Get(issuer + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %d %s", resp.StatusCode, body)
		}
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || !resp.TLS.PeerCertificates[0].Equal(cert) {
			t.Fatal("the response did not come over TLS with the configured certificate")
		}
		if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
			t.Errorf("Strict-Transport-Security = %q, want max-age=…", hsts)
		}
	})

	t.Run("discovery names the https issuer and sends HSTS", func(t *testing.T) {
		resp, err := client.Get(issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("discovery: %d %s", resp.StatusCode, readAll(t, resp.Body))
		}
		if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
			t.Errorf("Strict-Transport-Security = %q, want max-age=…", hsts)
		}
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc.Issuer != issuer || !strings.HasPrefix(doc.Issuer, "https://") {
			t.Errorf("issuer %q, want %q", doc.Issuer, issuer)
		}
		if !strings.HasPrefix(doc.JWKSURI, issuer+"/") {
			t.Fatalf("jwks_uri %q is not under %q", doc.JWKSURI, issuer)
		}
		jwks, err := client.Get(doc.JWKSURI)
		if err != nil {
			t.Fatal(err)
		}
		defer jwks.Body.Close()
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.NewDecoder(jwks.Body).Decode(&set); err != nil || jwks.StatusCode != http.StatusOK || len(set.Keys) == 0 {
			t.Errorf("JWKS over TLS: status %d, %d keys, err %v", jwks.StatusCode, len(set.Keys), err)
		}
	})

	t.Run("a stock OIDC client discovers the provider", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		provider, err := oidc.NewProvider(oidc.ClientContext(ctx, client), issuer)
		if err != nil {
			t.Fatal(err)
		}
		if ep := provider.Endpoint(); !strings.HasPrefix(ep.AuthURL, issuer+"/") || !strings.HasPrefix(ep.TokenURL, issuer+"/") {
			t.Errorf("endpoints %+v are not under %q", ep, issuer)
		}
	})

	t.Run("links serve prints use the https issuer", func(t *testing.T) {
		if !strings.HasPrefix(kg.enrollURL, issuer+"/enroll?token=") {
			t.Errorf("enrolment URL %q, want it under %q\nstdout:\n%s", kg.enrollURL, issuer, kg.stdout)
		}
	})

	t.Run("plain HTTP on the TLS port is refused", func(t *testing.T) {
		tr := &http.Transport{DisableKeepAlives: true}
		plain := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		resp, err := plain.Get("http://" + addr + "/healthz")
		if err != nil {
			// Go's TLS server answers a plain request with a 400 before
			// closing, so even an error here means something changed.
			t.Fatalf("plain HTTP: %v; want a 400 answer", err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "HTTP request to an HTTPS server") {
			t.Errorf("plain HTTP got %d %q, want 400 \"… HTTP request to an HTTPS server\"", resp.StatusCode, body)
		}
	})

	t.Run("a client that does not trust the certificate fails the handshake", func(t *testing.T) {
		other, _ := selfSigned(t) // same names, different key
		for name, c := range map[string]*http.Client{
			"system roots":             {Transport: &http.Transport{}, Timeout: 5 * time.Second},
			"another cert, same names": trusting(t, other),
		} {
			resp, err := c.Get(issuer + "/healthz")
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: GET /healthz succeeded (%d); want a certificate error", name, resp.StatusCode)
				continue
			}
			var verr *tls.CertificateVerificationError
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &verr) || !errors.As(err, &unknown) {
				t.Errorf("%s: %v; want an unknown-authority certificate error", name, err)
			}
		}
	})
}

// TestTLSBadKeyPairStopsStart: a key that does not match the certificate
// must stop serve before it says it is listening or prints an enrolment
// link (the pair used to be loaded only once serving had begun).
func TestTLSBadKeyPairStopsStart(t *testing.T) {
	cert, _ := selfSigned(t)
	_, otherKey := selfSigned(t)
	certFile, keyFile := writeKeyPair(t, t.TempDir(), cert, otherKey)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := filepath.Join(t.TempDir(), "keygate.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("issuer: %q\nlisten: %q\ntls:\n  cert: %q\n  key: %q\n",
		"https://"+addr, addr, certFile, keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--config", config)
	var stdout, stderr lineBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("serve exited 0 with a mismatched key")
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("serve kept running with a mismatched key\nstdout:\n%s", stdout.String())
	}
	if out := stdout.String(); strings.Contains(out, " listening on ") || strings.Contains(out, "/enroll?token=") {
		t.Errorf("serve announced itself before failing on the key pair:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "tls: ") {
		t.Errorf("stderr does not name the TLS problem:\n%s", tail(stderr.String(), 2000))
	}
}
