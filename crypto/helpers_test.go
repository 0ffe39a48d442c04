package crypto

import (
	stdcrypto "crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pkiDir is the fixed test PKI of testdata/pki.
const pkiDir = "../testdata/pki"

// testPair loads <pkiDir>/<name>.crt and .key.
func testPair(t *testing.T, name string) tls.Certificate {
	t.Helper()
	c, err := LoadKeyPair(filepath.Join(pkiDir, name+".crt"), filepath.Join(pkiDir, name+".key"), nil)
	if err != nil {
		t.Fatalf("load test pair %s: %v", name, err)
	}
	return c
}

// testPool loads <pkiDir>/<name>.crt as a CA pool.
func testPool(t *testing.T, name string) *x509.CertPool {
	t.Helper()
	p, err := LoadCAPool(filepath.Join(pkiDir, name+".crt"))
	if err != nil {
		t.Fatalf("load test CA %s: %v", name, err)
	}
	return p
}

// writeTemp writes data to a file named name in a fresh temporary directory
// and returns its path.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// selfSigned returns a PEM self-signed certificate for key, built from tmpl
// (or a minimal template when tmpl is nil).
func selfSigned(t *testing.T, key stdcrypto.Signer, tmpl *x509.Certificate) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.Certificate{}
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(1)
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject = pkix.Name{CommonName: "self-signed test"}
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("create test certificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// mustParsePEMCert parses the first certificate of a PEM block.
func mustParsePEMCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	certs, err := parseCertsPEM(certPEM, "test")
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}
