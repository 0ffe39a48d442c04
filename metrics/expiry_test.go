package metrics

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/quictun"
)

// TestCertificateExpiryMetrics connects a client whose certificate
// expires in 10 days and scrapes the server's endpoint: the client's
// certificate counts as expiring, the server's and the CA's (100 years)
// do not, and the CA's expiry is exported by name; the client's own
// collector counts its own certificate.
func TestCertificateExpiryMetrics(t *testing.T) {
	cas, err := qcrypto.LoadCertificates(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, quictun.ServerConfig{Listen: "127.0.0.1:0", CACerts: cas})
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := qcrypto.Issue(caPEM, caKey, qcrypto.LeafOptions{Name: "soon", Days: 10,
		Addrs: []netip.Addr{netip.MustParseAddr("10.77.0.30")}})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, s, "client1", quictun.ClientConfig{TLS: qcrypto.ClientTLSConfig(pair, caPool(t, "ca"), ""), CACerts: cas}, false)
	waitUntil(t, 10*time.Second, "server lists soon", func() bool {
		for _, si := range s.srv.Sessions() {
			if si.Name == "soon" {
				return true
			}
		}
		return false
	})

	ep, err := Listen("127.0.0.1:0", NewRegistry(NewServerCollector(s.srv, Options{})), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ep.Start()
	defer ep.Close()
	code, body, _ := get(t, "http://"+ep.Addr()+Path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d", Path, code)
	}
	for _, w := range []string{
		`quictun_certificates_expiring{kind="client"} 1` + "\n",
		`quictun_certificates_expiring{kind="server"} 0` + "\n",
		`quictun_certificates_expiring{kind="ca"} 0` + "\n",
		`quictun_ca_certificate_expiry_timestamp_seconds{name="quictun test CA"} `,
		`quictun_session_certificate_expiry_timestamp_seconds{peer="soon"} `,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}

	want(t, scrape(t, NewServerCollector(s.srv, Options{})), map[string]float64{
		`quictun_ca_certificate_expiry_timestamp_seconds{name="quictun test CA"}`: float64(cas[0].NotAfter.Unix()),
		`quictun_session_certificate_expiry_timestamp_seconds{peer="soon"}`:       float64(pair.Leaf.NotAfter.Unix()),
	})
	want(t, scrape(t, NewClientCollector(c.cl, Options{})), map[string]float64{
		`quictun_certificates_expiring{kind="client"}`:                            1,
		`quictun_certificates_expiring{kind="server"}`:                            0,
		`quictun_certificates_expiring{kind="ca"}`:                                0,
		`quictun_ca_certificate_expiry_timestamp_seconds{name="quictun test CA"}`: float64(cas[0].NotAfter.Unix()),
	})
}
