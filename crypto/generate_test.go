package crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	tests := []struct {
		name     string
		opts     CAOptions
		wantCN   string
		wantDays int
	}{
		{"defaults", CAOptions{}, DefaultCAName, DefaultCADays},
		{"named", CAOptions{Name: "Example CA", Days: 30}, "Example CA", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := NewCA(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			ca := mustParsePEMCert(t, certPEM)
			if ca.Subject.CommonName != tt.wantCN || ca.Issuer.CommonName != tt.wantCN {
				t.Errorf("subject %q issuer %q, want %q", ca.Subject.CommonName, ca.Issuer.CommonName, tt.wantCN)
			}
			if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
				t.Errorf("IsCA %v BasicConstraintsValid %v MaxPathLen %d MaxPathLenZero %v, want a CA with pathlen 0",
					ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
			}
			if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("KeyUsage %v, want CertSign|CRLSign", ca.KeyUsage)
			}
			if err := ca.CheckSignatureFrom(ca); err != nil {
				t.Errorf("not self-signed: %v", err)
			}
			checkValidity(t, ca, tt.wantDays)
			checkP256(t, ca)
			if bits := ca.SerialNumber.BitLen(); bits > 128 || bits < 64 {
				t.Errorf("serial has %d bits, want a random 128-bit number", bits)
			}
			if _, err := parseKeyPEM(keyPEM, "ca.key", nil); err != nil {
				t.Errorf("key does not parse: %v", err)
			}
			if !strings.HasPrefix(string(keyPEM), "-----BEGIN PRIVATE KEY-----") {
				t.Errorf("key is not PKCS#8 PEM: %.40q", keyPEM)
			}
		})
	}
	if _, _, err := NewCA(CAOptions{Days: -1}); err == nil {
		t.Error("NewCA with Days -1: no error")
	}
}

// checkValidity checks that c starts a few minutes ago and lasts days.
func checkValidity(t *testing.T, c *x509.Certificate, days int) {
	t.Helper()
	now := time.Now()
	if d := now.Sub(c.NotBefore); d < time.Minute || d > 10*time.Minute {
		t.Errorf("NotBefore is %v before now, want a few minutes (clock skew)", d)
	}
	want := now.AddDate(0, 0, days)
	if d := c.NotAfter.Sub(want); d < -time.Minute || d > time.Minute {
		t.Errorf("NotAfter %v, want about %v (%d days)", c.NotAfter, want, days)
	}
}

// checkP256 checks that c has an ECDSA P-256 key.
func checkP256(t *testing.T, c *x509.Certificate) {
	t.Helper()
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %s, want ECDSA P-256", keyType(c.PublicKey))
	}
}

func TestIssue(t *testing.T) {
	caCert, caKey, err := NewCA(CAOptions{Name: "issue test CA"})
	if err != nil {
		t.Fatal(err)
	}
	ca := mustParsePEMCert(t, caCert)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	t.Run("server", func(t *testing.T) {
		certPEM, keyPEM, err := Issue(caCert, caKey, LeafOptions{Name: "server", Server: true,
			Hosts: []string{"203.0.113.7", "vpn.example.com", "2001:db8::7"}})
		if err != nil {
			t.Fatal(err)
		}
		c := mustParsePEMCert(t, certPEM)
		checkValidity(t, c, DefaultLeafDays)
		checkP256(t, c)
		if c.Subject.CommonName != "server" || c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("CN %q IsCA %v KeyUsage %v", c.Subject.CommonName, c.IsCA, c.KeyUsage)
		}
		if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			t.Errorf("ExtKeyUsage %v, want [ServerAuth]", c.ExtKeyUsage)
		}
		if got := strings.Join(c.DNSNames, ","); got != "vpn.example.com" {
			t.Errorf("DNSNames %q", got)
		}
		if len(c.IPAddresses) != 2 || c.IPAddresses[0].String() != "203.0.113.7" || c.IPAddresses[1].String() != "2001:db8::7" {
			t.Errorf("IPAddresses %v", c.IPAddresses)
		}
		for _, host := range []string{"vpn.example.com", "203.0.113.7", "2001:db8::7"} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
				t.Errorf("verify for %s: %v", host, err)
			}
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example.com"}); err == nil {
			t.Error("verify for a name not in the certificate: no error")
		}
		if _, err := LoadKeyPair(writeTemp(t, "s.crt", certPEM), writeTemp(t, "s.key", keyPEM), nil); err != nil {
			t.Errorf("load issued pair: %v", err)
		}
	})

	t.Run("client", func(t *testing.T) {
		opts := LeafOptions{Name: "laptop1",
			Addrs:  []netip.Addr{netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("fd77::11")},
			Routes: []netip.Prefix{netip.MustParsePrefix("192.168.50.0/24"), netip.MustParsePrefix("fd00:1::/64")},
			Days:   10}
		certPEM, _, err := Issue(caCert, caKey, opts)
		if err != nil {
			t.Fatal(err)
		}
		c := mustParsePEMCert(t, certPEM)
		checkValidity(t, c, 10)
		if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
			t.Errorf("ExtKeyUsage %v, want [ClientAuth]", c.ExtKeyUsage)
		}
		var uris []string
		for _, u := range c.URIs {
			uris = append(uris, u.String())
		}
		if got, want := strings.Join(uris, " "), "quictun:route:192.168.50.0/24 quictun:route:fd00:1::/64"; got != want {
			t.Errorf("URIs %q, want %q", got, want)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("verify as client: %v", err)
		}
		id, err := IdentityOf(c)
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != opts.Name || !slices.Equal(id.Addrs, opts.Addrs) || !slices.Equal(id.Routes, opts.Routes) {
			t.Errorf("identity %+v, want name/addrs/routes of %+v", id, opts)
		}
	})

	t.Run("capped at the CA's expiry", func(t *testing.T) {
		shortCA, shortKey, err := NewCA(CAOptions{Days: 5})
		if err != nil {
			t.Fatal(err)
		}
		certPEM, _, err := Issue(shortCA, shortKey, LeafOptions{Name: "c", Days: 100})
		if err != nil {
			t.Fatal(err)
		}
		if c, ca := mustParsePEMCert(t, certPEM), mustParsePEMCert(t, shortCA); !c.NotAfter.Equal(ca.NotAfter) {
			t.Errorf("NotAfter %v, want the CA's %v", c.NotAfter, ca.NotAfter)
		}
	})

	t.Run("random serials", func(t *testing.T) {
		a, _, err := Issue(caCert, caKey, LeafOptions{Name: "a"})
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := Issue(caCert, caKey, LeafOptions{Name: "a"})
		if err != nil {
			t.Fatal(err)
		}
		if mustParsePEMCert(t, a).SerialNumber.Cmp(mustParsePEMCert(t, b).SerialNumber) == 0 {
			t.Error("two certificates got the same serial")
		}
	})

	otherCA, otherKey, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leafCert, leafKey, err := Issue(caCert, caKey, LeafOptions{Name: "leaf"})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name          string
		caCert, caKey []byte
		opts          LeafOptions
		want          string
	}{
		{"no name", caCert, caKey, LeafOptions{}, "name is required"},
		{"server without host", caCert, caKey, LeafOptions{Name: "s", Server: true}, "at least one host"},
		{"server with tunnel address", caCert, caKey, LeafOptions{Name: "s", Server: true, Hosts: []string{"a.example"},
			Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, "cannot hold tunnel addresses"},
		{"client with host", caCert, caKey, LeafOptions{Name: "c", Hosts: []string{"a.example"}}, "hosts are for server"},
		{"bad host", caCert, caKey, LeafOptions{Name: "s", Server: true, Hosts: []string{"a b"}}, "want an IP address or a DNS name"},
		{"route with host bits", caCert, caKey, LeafOptions{Name: "c",
			Routes: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("192.168.50.1"), 24)}}, "no host bits"},
		{"unspecified address", caCert, caKey, LeafOptions{Name: "c", Addrs: []netip.Addr{netip.IPv4Unspecified()}}, "unspecified"},
		{"negative days", caCert, caKey, LeafOptions{Name: "c", Days: -3}, "positive"},
		{"key of another CA", caCert, otherKey, LeafOptions{Name: "c"}, "does not belong"},
		{"leaf as CA", leafCert, leafKey, LeafOptions{Name: "c"}, "is not a CA"},
		{"garbage CA", []byte("nope"), otherKey, LeafOptions{Name: "c"}, "not a PEM certificate"},
		{"key as CA cert", otherKey, otherCA, LeafOptions{Name: "c"}, "holds a private key"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Issue(tt.caCert, tt.caKey, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
