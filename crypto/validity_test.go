package crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testCert makes a certificate valid from notBefore to notAfter: a CA
// (self-signed when parent is nil) or a client leaf signed by parent.
func testCert(t *testing.T, name string, isCA bool, notBefore, notAfter time.Time, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func TestCheckValidity(t *testing.T) {
	nb := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	na := nb.AddDate(1, 0, 0)
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "laptop1"}, NotBefore: nb, NotAfter: na}
	for _, tt := range []struct {
		name    string
		at      time.Time
		want    string // "" for valid
		notYet  bool
		notWant string
	}{
		{name: "valid", at: nb.Add(time.Hour)},
		{name: "not yet valid", at: nb.Add(-time.Minute), notYet: true,
			want: `client certificate "laptop1" is not yet valid: valid from 2030-01-02 03:04:05 UTC (now 2030-01-02 03:03:05 UTC)`, notWant: "expired"},
		{name: "expired", at: na.Add(time.Minute),
			want: `client certificate "laptop1" expired on 2031-01-02 03:04:05 UTC (now 2031-01-02 03:05:05 UTC)`, notWant: "not yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckValidity(cert, "client", tt.at)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidityError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T), want a *ValidityError", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q\nwant  %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.notWant) || ve.NotYetValid() != tt.notYet {
				t.Errorf("error %q (NotYetValid %v) mentions %q", err, ve.NotYetValid(), tt.notWant)
			}
			if AlertFor(err) != AlertCertificateExpired {
				t.Errorf("alert %v, want certificate_expired", AlertFor(err))
			}
		})
	}
}

// TestVerifyChainSaysWhich: Go's x509 says "has expired or is not yet
// valid"; VerifyChain says which, of the leaf or of the CA.
func TestVerifyChainSaysWhich(t *testing.T) {
	now := time.Now()
	ca, caKey := testCert(t, "Test CA", true, now.Add(-time.Hour), now.Add(24*time.Hour), nil, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	leaf := func(nb, na time.Time) []*x509.Certificate {
		c, _ := testCert(t, "laptop1", false, nb, na, ca, caKey)
		return []*x509.Certificate{c}
	}
	good := leaf(now.Add(-time.Hour), now.Add(time.Hour))
	for _, tt := range []struct {
		name  string
		certs []*x509.Certificate
		at    time.Time
		want  string
		alert tls.AlertError
	}{
		{"good", good, now, "", 0},
		{"leaf not yet valid", leaf(now.Add(time.Hour), now.Add(2*time.Hour)), now, `client certificate "laptop1" is not yet valid: valid from`, AlertCertificateExpired},
		{"leaf expired", leaf(now.Add(-2*time.Hour), now.Add(-time.Hour)), now, `client certificate "laptop1" expired on`, AlertCertificateExpired},
		{"CA expired", good, now.Add(30 * time.Hour), `CA certificate "Test CA" expired on`, AlertCertificateExpired},
		{"none", nil, now, "client sent no certificate", AlertCertificateRequired},
		{"other CA", []*x509.Certificate{testPair(t, "other-client").Leaf}, now, "unknown authority", AlertUnknownCA},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The CA-expired case is checked at a time the leaf is expired
			// too: Go checks the leaf first, so use a leaf that lasts.
			certs := tt.certs
			if tt.name == "CA expired" {
				certs = leaf(now.Add(-time.Hour), now.Add(48*time.Hour))
			}
			err := VerifyChain(certs, roots, x509.ExtKeyUsageClientAuth, "client", tt.at)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if got := AlertFor(err); got != tt.alert {
				t.Errorf("alert %d, want %d", got, tt.alert)
			}
			var ci x509.CertificateInvalidError
			if tt.alert == AlertCertificateExpired && !errors.As(err, &ci) {
				t.Errorf("error %v does not wrap the x509.CertificateInvalidError", err)
			}
		})
	}
}

func TestWithAlert(t *testing.T) {
	if WithAlert(nil) != nil {
		t.Error("WithAlert(nil) is not nil")
	}
	plain := errors.New("client certificate \"x\" is not for client authentication")
	err := WithAlert(plain)
	var a tls.AlertError
	if !errors.As(err, &a) || a != AlertBadCertificate || err.Error() != plain.Error() || !errors.Is(err, plain) {
		t.Errorf("WithAlert(%v) = %q carrying %v; want the same text, the error, and bad_certificate", plain, err, a)
	}
	revoked := fmt.Errorf("revoked: %w", AlertCertificateRevoked)
	if got := WithAlert(revoked); got != revoked {
		t.Errorf("an error with an alert was wrapped again: %v", got)
	}
	// The config's own VerifyConnection sends certificate_expired for a
	// client certificate that is not valid yet.
	cfg := ServerTLSConfig(testPair(t, "server"), testPool(t, "ca"))
	now := time.Now()
	early, _ := testCert(t, "early", false, now.Add(time.Hour), now.Add(2*time.Hour), nil, nil)
	err = cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{early}})
	if !errors.As(err, &a) || a != AlertCertificateExpired || !strings.Contains(err.Error(), "not yet valid") {
		t.Errorf("VerifyConnection of a not-yet-valid certificate: %v (alert %d), want certificate_expired and \"not yet valid\"", err, a)
	}
}

func TestNameOfDER(t *testing.T) {
	ca := testPair(t, "server").Leaf
	if got := NameOfDER(ca.RawIssuer); got != "quictun test CA" {
		t.Errorf("NameOfDER(issuer of server.crt) = %q, want quictun test CA", got)
	}
	if got := NameOfDER([]byte{1, 2}); got != "0102" {
		t.Errorf("NameOfDER(garbage) = %q, want the hex", got)
	}
	if got := SubjectName(pkix.Name{Organization: []string{"Acme"}}); got != "O=Acme" {
		t.Errorf("SubjectName without CN = %q, want O=Acme", got)
	}
}
