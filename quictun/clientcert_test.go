package quictun

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
)

// testCA returns the test CA of testdata/pki and its key.
func testCA(t *testing.T) (*x509.Certificate, any) {
	t.Helper()
	certs, err := qcrypto.LoadCertificates(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0], key
}

// clientTLSValid returns a client TLS config (trusting the test CA) with
// a certificate for name, signed by the test CA, valid from notBefore to
// notAfter: crypto.Issue always starts a certificate now.
func clientTLSValid(t *testing.T, name string, notBefore, notAfter time.Time) *tls.Config {
	t.Helper()
	ca, caKey := testCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return qcrypto.ClientTLSConfig(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, "")
}

// TestTunnelCertRefusalsSayWhy runs clients the server must refuse over
// loopback and checks what both ends say: a certificate not yet valid is
// not called expired (on either side), an expired one is, with its date,
// and a client of another CA is told which CA the server wants.
func TestTunnelCertRefusalsSayWhy(t *testing.T) {
	var srvLogs syncBuffer
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
		Logger:   slog.New(slog.NewTextHandler(&srvLogs, nil)),
	})
	now := time.Now()
	tests := []struct {
		name      string
		tls       *tls.Config
		want      []string // in the client's error
		notWant   string
		serverLog string // in the server's "client refused" line
		clientLog string // in the client's log ("": nothing expected)
		outcome   HandshakeOutcome
	}{
		{name: "not yet valid", tls: clientTLSValid(t, "early", now.Add(2*time.Hour), now.Add(48*time.Hour)),
			want:      []string{`our certificate "early": it is not yet valid (valid from ` + fmtCertTime(now.Add(2*time.Hour)), "check this machine's clock"},
			notWant:   "expired",
			serverLog: `client certificate \"early\" is not yet valid: valid from`, outcome: HandshakeCertificateExpired},
		{name: "expired", tls: clientTLSValid(t, "late", now.Add(-48*time.Hour), now.Add(-time.Hour)),
			want:      []string{`our certificate "late": it expired on ` + fmtCertTime(now.Add(-time.Hour)), "get a new certificate"},
			notWant:   "not yet valid",
			serverLog: `client certificate \"late\" expired on`, outcome: HandshakeCertificateExpired},
		{name: "another CA", tls: clientTLS(t, "other-client", "ca"),
			want:      []string{`the server wants certificates from CA "quictun test CA"; ours is signed by "other CA"`},
			notWant:   "certificate required",
			serverLog: "unknown authority", clientLog: `server_accepts="\"quictun test CA\"" ours_signed_by="other CA"`,
			outcome: HandshakeUnknownAuthority},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cliLogs syncBuffer
			before := len(srvLogs.String())
			refusedBefore := s.srv.Status().Handshakes.Get(tt.outcome)
			c := startClient(t, s, tt.name, "ca", ClientConfig{TLS: tt.tls, Logger: slog.New(slog.NewTextHandler(&cliLogs, nil))}, false)
			var err error
			select {
			case err = <-c.err:
			case <-time.After(10 * time.Second):
				t.Fatal("client did not give up within 10s")
			}
			var pe *PermanentError
			var cr *CertRejectedError
			if !errors.As(err, &pe) || !errors.As(err, &cr) {
				t.Fatalf("Run = %v, want a PermanentError with a CertRejectedError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("client error %q\ndoes not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("client error %q says %q", err, tt.notWant)
			}
			for i := 0; i < 100 && !strings.Contains(srvLogs.String()[before:], tt.serverLog); i++ {
				time.Sleep(20 * time.Millisecond)
			}
			got := srvLogs.String()[before:]
			if !strings.Contains(got, "client refused") || !strings.Contains(got, tt.serverLog) {
				t.Errorf("the server logged %q, want a \"client refused\" line with %q", got, tt.serverLog)
			}
			if tt.notWant != "" && strings.Contains(got, tt.notWant) {
				t.Errorf("the server logged %q, which says %q", got, tt.notWant)
			}
			if tt.clientLog != "" && !strings.Contains(cliLogs.String(), tt.clientLog) {
				t.Errorf("the client logged %q, want %q", cliLogs.String(), tt.clientLog)
			}
			if n := s.srv.Status().Handshakes.Get(tt.outcome) - refusedBefore; n != 1 {
				t.Errorf("%s counted %d times, want 1", tt.outcome, n)
			}
		})
	}
}

func TestCertRejectedErrorWords(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	mine := func(nb, na time.Time) *certRequest {
		return &certRequest{sent: &x509.Certificate{Subject: pkix.Name{CommonName: "laptop1"},
			Issuer: pkix.Name{CommonName: "Our CA"}, NotBefore: nb, NotAfter: na}}
	}
	valid := mine(now.AddDate(0, 0, -1), now.AddDate(0, 0, 1))
	for _, tt := range []struct {
		name  string
		alert uint8
		req   *certRequest
		want  string
	}{
		{"expired", 45, mine(now.AddDate(0, 0, -10), now.AddDate(0, 0, -1)),
			`refused our certificate "laptop1": it expired on 2030-05-31 12:00:00 UTC: get a new certificate`},
		{"not yet valid", 45, mine(now.AddDate(0, 0, 1), now.AddDate(0, 0, 10)),
			`refused our certificate "laptop1": it is not yet valid (valid from 2030-06-02 12:00:00 UTC, now 2030-06-01 12:00:00 UTC): check this machine's clock`},
		{"valid by our clock", 45, valid,
			`says our certificate "laptop1" (or its CA) has expired or is not yet valid, though by this machine's clock it is valid from 2030-05-31 12:00:00 UTC until 2030-06-02 12:00:00 UTC: check the server's clock, and whether the CA "Our CA" has expired`},
		{"unknown CA, named", 48, &certRequest{acceptable: []string{"Their CA", "Old CA"}, sent: valid.sent},
			`the server wants certificates from CA "Their CA" or "Old CA"; ours is signed by "Our CA"`},
		{"unknown CA, none named", 48, valid, `it does not trust the CA that signed ours, "Our CA"`},
		{"no certificate request", 48, nil, "rejected our certificate (unknown certificate authority): it must be signed by the CA the server trusts"},
		{"falls back to our configured certificate", 45, &certRequest{own: valid.sent}, `valid from 2030-05-31`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := certRejected("vpn:4433", tt.alert, certAlerts[tt.alert], tt.req, now)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not say %q", err, tt.want)
			}
		})
	}
}

func TestExplainServerCertValidity(t *testing.T) {
	now := time.Now()
	cert := func(isCA bool, nb, na time.Time) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "vpn"}, IsCA: isCA, NotBefore: nb, NotAfter: na}
	}
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		want ServerCertProblem
		text string
	}{
		{"expired", cert(false, now.Add(-2*time.Hour), now.Add(-time.Hour)), ServerCertExpired, `has expired (server certificate "vpn" expired on`},
		{"not yet valid", cert(false, now.Add(time.Hour), now.Add(2*time.Hour)), ServerCertNotYetValid, `is not yet valid (server certificate "vpn" is not yet valid: valid from`},
		{"our CA expired", cert(true, now.Add(-2*time.Hour), now.Add(-time.Hour)), ServerCertExpired, `(CA certificate "vpn" expired on`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Cert: tt.cert, Reason: x509.Expired}}
			got := explainServerCertError(err, "vpn:4433", now)
			if got.Problem != tt.want || !strings.Contains(got.Error(), tt.text) {
				t.Errorf("got problem %d %q, want %d with %q", got.Problem, got, tt.want, tt.text)
			}
		})
	}
}
