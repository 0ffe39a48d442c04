package quictun

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
)

func TestExpiryWarnerOncePerDay(t *testing.T) {
	var logs syncBuffer
	w := expiryWarner{log: slog.New(slog.NewTextHandler(&logs, nil))}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	soon := &x509.Certificate{Raw: []byte("soon"), Subject: pkix.Name{CommonName: "soon"}, NotAfter: t0.Add(10 * 24 * time.Hour)}
	later := &x509.Certificate{Raw: []byte("later"), Subject: pkix.Name{CommonName: "later"}, NotAfter: t0.Add(31 * 24 * time.Hour)}
	gone := &x509.Certificate{Raw: []byte("gone"), Subject: pkix.Name{CommonName: "gone"}, NotAfter: t0.Add(-time.Hour)}
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		at   time.Time
		want bool
	}{
		{"first check warns", soon, t0, true},
		{"an hour later: not again", soon, t0.Add(time.Hour), false},
		{"23h later: not again", soon, t0.Add(23 * time.Hour), false},
		{"a day later: again", soon, t0.Add(24 * time.Hour), true},
		{"31 days left: no warning", later, t0, false},
		{"30 days minus a second left: warns", later, later.NotAfter.Add(-ExpiryWarning + time.Second), true},
		{"expired: an error", gone, t0, true},
		{"expired, an hour later: not again", gone, t0.Add(time.Hour), false},
	} {
		if got := w.check(CertClient, tt.cert, tt.at, "peer", tt.cert.Subject.CommonName); got != tt.want {
			t.Errorf("%s: check = %v, want %v", tt.name, got, tt.want)
		}
	}
	out := logs.String()
	if n := strings.Count(out, `msg="certificate expires soon: renew it" kind=client name=soon not_after=2030-01-11T00:00:00.000Z days_left=10 peer=soon`); n != 1 {
		t.Errorf("first warning about soon logged %d times, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "days_left=9 peer=soon") {
		t.Errorf("the next day's warning about soon missing:\n%s", out)
	}
	if !strings.Contains(out, `level=ERROR msg="certificate has expired" kind=client name=gone`) {
		t.Errorf("no error for the expired certificate:\n%s", out)
	}
	if len(w.last) > 3 {
		t.Errorf("%d certificates remembered, want at most the 3 warned about", len(w.last))
	}
}

func TestDaysLeft(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		left time.Duration
		want int
	}{
		{10*24*time.Hour - time.Minute, 10}, {10 * 24 * time.Hour, 10}, {time.Hour, 1}, {-time.Hour, 0}, {-25 * time.Hour, -1},
	} {
		if got := DaysLeft(now.Add(tt.left), now); got != tt.want {
			t.Errorf("DaysLeft(%v) = %d, want %d", tt.left, got, tt.want)
		}
	}
}

// issueTLS returns a client TLS config with a fresh certificate for name
// from the test CA, valid for days (crypto.Issue).
func issueTLS(t *testing.T, name string, days int) *tls.Config {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := qcrypto.Issue(caPEM, caKey, qcrypto.LeafOptions{Name: name, Days: days})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return qcrypto.ClientTLSConfig(cert, pool, "")
}

// TestExpiryWarnings connects a client whose certificate expires in 10
// days: the server warns about it in its log when it connects, its session
// shows the expiry, and the server's Status lists its own certificate and
// the CA; the client warns about its own certificate.
func TestExpiryWarnings(t *testing.T) {
	var srvLogs, cliLogs syncBuffer
	cas, err := qcrypto.LoadCertificates(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
		CACerts:  cas,
		Logger:   slog.New(slog.NewTextHandler(&srvLogs, nil)),
	})
	c := startClient(t, s, "soon", "ca", ClientConfig{TLS: issueTLS(t, "soon", 10), CACerts: cas,
		Logger: slog.New(slog.NewTextHandler(&cliLogs, nil))}, true)

	want := `msg="certificate expires soon: renew it" kind=client name=soon`
	for i := 0; i < 100 && !strings.Contains(srvLogs.String(), want); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if got := srvLogs.String(); !strings.Contains(got, want) || !strings.Contains(got, "days_left=10 peer=soon") {
		t.Errorf("the server logged\n%s\nwant a line with %q, days_left=10 and peer=soon", got, want)
	}
	if strings.Contains(srvLogs.String(), "kind=server") || strings.Contains(srvLogs.String(), "kind=ca") {
		t.Errorf("the server warned about its own certificate or the CA, which last 100 years:\n%s", srvLogs.String())
	}
	if !strings.Contains(cliLogs.String(), want) {
		t.Errorf("the client logged\n%s\nwant a warning about its own certificate (%q)", cliLogs.String(), want)
	}

	now := time.Now()
	var found bool
	for _, si := range s.srv.Sessions() {
		if si.Name == "soon" {
			found = true
			if !ExpiresSoon(si.NotAfter, now) || DaysLeft(si.NotAfter, now) != 10 {
				t.Errorf("session soon: NotAfter %v (%d days left), want in 10 days and ExpiresSoon", si.NotAfter, DaysLeft(si.NotAfter, now))
			}
		}
	}
	if !found {
		t.Fatal("no session soon")
	}
	certs := s.srv.Status().Certificates
	if len(certs) != 2 || certs[0].Kind != CertServer || certs[0].Name != "server" || certs[1].Kind != CertCA ||
		certs[1].Name != "quictun test CA" || certs[1].NotAfter != cas[0].NotAfter || ExpiresSoon(certs[1].NotAfter, now) {
		t.Errorf("server Status().Certificates = %+v, want the server's and the CA's, not expiring soon", certs)
	}
	cc := c.cl.Status().Certificates
	if len(cc) != 2 || cc[0].Kind != CertClient || cc[0].Name != "soon" || !ExpiresSoon(cc[0].NotAfter, now) || cc[1].Kind != CertCA {
		t.Errorf("client Status().Certificates = %+v, want its own (expiring soon) and the CA", cc)
	}
}

// TestExpiryWarningOwnCertificate starts a server whose own certificate
// expires in 5 days: it warns at start, once, and lists it as expiring.
func TestExpiryWarningOwnCertificate(t *testing.T) {
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := qcrypto.Issue(caPEM, caKey, qcrypto.LeafOptions{Name: "short-server", Server: true, Hosts: []string{"127.0.0.1"}, Days: 5})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	var logs syncBuffer
	s := startServer(t, device.TUN, ServerConfig{
		TLS:      qcrypto.ServerTLSConfig(cert, pool),
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	want := `msg="certificate expires soon: renew it" kind=server name=short-server`
	for i := 0; i < 100 && !strings.Contains(logs.String(), want); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if got := logs.String(); strings.Count(got, want) != 1 || !strings.Contains(got, "days_left=5") {
		t.Errorf("the server logged\n%s\nwant one line with %q and days_left=5", got, want)
	}
	// A client connects: the server's certificate is not warned about again.
	startClient(t, s, "client1", "ca", ClientConfig{}, true)
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Errorf("warned %d times about the server's certificate, want once a day", n)
	}
	if c := s.srv.Status().Certificates; len(c) != 1 || c[0].Kind != CertServer || !ExpiresSoon(c[0].NotAfter, time.Now()) {
		t.Errorf("Status().Certificates = %+v, want the server's own, expiring soon (no CACerts given)", c)
	}
}
