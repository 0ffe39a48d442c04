package crypto

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireOpenSSL returns the path of the openssl binary, or skips the test.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: skipping the OpenSSL interoperability test (apt-get install openssl)")
	}
	return p
}

// openssl runs openssl with args in dir and returns its standard output.
func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(requireOpenSSL(t), args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func TestOpenSSLReadsOurCertificates(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	caCert, caKey, err := NewCA(CAOptions{Name: "interop CA"})
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := Issue(caCert, caKey, LeafOptions{Name: "laptop1",
		Addrs:  []netip.Addr{netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("fd77::11")},
		Routes: []netip.Prefix{netip.MustParsePrefix("192.168.50.0/24"), netip.MustParsePrefix("fd00:1::/64")}})
	if err != nil {
		t.Fatal(err)
	}
	server, _, err := Issue(caCert, caKey, LeafOptions{Name: "server", Server: true, Hosts: []string{"vpn.example.com", "203.0.113.7"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.crt": caCert, "client.crt": client, "server.crt": server} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	text := openssl(t, dir, "x509", "-in", "client.crt", "-noout", "-text")
	for _, want := range []string{
		"IP Address:10.77.0.11", "IP Address:FD77:0:0:0:0:0:0:11",
		"URI:quictun:route:192.168.50.0/24", "URI:quictun:route:fd00:1::/64",
		"TLS Web Client Authentication", "Subject: CN = laptop1", "Issuer: CN = interop CA",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
		}
	}
	caText := openssl(t, dir, "x509", "-in", "ca.crt", "-noout", "-text")
	if !strings.Contains(caText, "CA:TRUE, pathlen:0") || !strings.Contains(caText, "Certificate Sign, CRL Sign") {
		t.Errorf("openssl sees a CA without pathlen:0 or the sign usages:\n%s", caText)
	}

	tests := []struct {
		name string
		args []string
	}{
		{"client", []string{"verify", "-CAfile", "ca.crt", "-purpose", "sslclient", "client.crt"}},
		{"server by name", []string{"verify", "-CAfile", "ca.crt", "-purpose", "sslserver", "-verify_hostname", "vpn.example.com", "server.crt"}},
		{"server by IP", []string{"verify", "-CAfile", "ca.crt", "-purpose", "sslserver", "-verify_ip", "203.0.113.7", "server.crt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out := openssl(t, dir, tt.args...); !strings.Contains(out, ": OK") {
				t.Errorf("openssl verify: %s", out)
			}
		})
	}
	t.Run("server as client refused", func(t *testing.T) {
		cmd := exec.Command(requireOpenSSL(t), "verify", "-CAfile", "ca.crt", "-purpose", "sslclient", "server.crt")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("openssl verify accepted a server certificate as a client: %s", out)
		}
	})
}

func TestOpenSSLKeys(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		make []string // openssl command writing k.key
		// For an encrypted key (passphrase "secret") loaded without a
		// passphrase: the advice in the error, and the openssl command
		// that follows it, writing fixed, which loads with passphrase
		// fixedPass ("" for none).
		advice, fixed, fixedPass string
		follow                   []string
	}{
		{name: "ecparam -genkey (EC PARAMETERS + SEC1)", make: []string{"ecparam", "-name", "prime256v1", "-genkey", "-out", "k.key"}},
		{name: "genrsa -traditional (PKCS#1)", make: []string{"genrsa", "-traditional", "-out", "k.key", "2048"}},
		{name: "genpkey ed25519 (PKCS#8)", make: []string{"genpkey", "-algorithm", "ed25519", "-out", "k.key"}},
		{name: "encrypted PKCS#8",
			make:   []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:secret", "-out", "k.key"},
			advice: "openssl pkey -in %[1]s/k.key -out %[1]s/k-plain.key", fixed: "k-plain.key",
			follow: []string{"pkey", "-in", "k.key", "-out", "k-plain.key", "-passin", "pass:secret"}},
		{name: "encrypted legacy PEM",
			make:   []string{"genrsa", "-traditional", "-aes256", "-passout", "pass:secret", "-out", "k.key", "2048"},
			advice: "openssl pkcs8 -topk8 -scrypt -in %[1]s/k.key -out %[1]s/k-scrypt.key", fixed: "k-scrypt.key", fixedPass: "new",
			follow: []string{"pkcs8", "-topk8", "-scrypt", "-in", "k.key", "-out", "k-scrypt.key", "-passin", "pass:secret", "-passout", "pass:new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(dir, strings.NewReplacer(" ", "_", "(", "", ")", "", "#", "").Replace(tt.name))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			openssl(t, dir, tt.make...)
			args := []string{"req", "-x509", "-key", "k.key", "-subj", "/CN=k", "-days", "1", "-out", "k.crt"}
			if tt.advice != "" {
				args = append(args, "-passin", "pass:secret")
			}
			openssl(t, dir, args...)
			crt, key := filepath.Join(dir, "k.crt"), filepath.Join(dir, "k.key")
			_, err := LoadKeyPair(crt, key, nil)
			if tt.advice == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrEncryptedKey) || !strings.Contains(err.Error(), key) {
				t.Fatalf("error %v, want ErrEncryptedKey naming %s", err, key)
			}
			// Follow the advice in the message.
			if advice := fmt.Sprintf(tt.advice, dir); !strings.Contains(err.Error(), advice) {
				t.Fatalf("error %q does not say %q", err, advice)
			}
			openssl(t, dir, tt.follow...)
			var pass Passphrase
			if tt.fixedPass != "" {
				pass = fixedPassphrase(tt.fixedPass)
			}
			if _, err := LoadKeyPair(crt, filepath.Join(dir, tt.fixed), pass); err != nil {
				t.Errorf("the key converted as advised does not load: %v", err)
			}
		})
	}
}

// TestOpenSSLGroupURIs: a client certificate made by OpenSSL with the
// group URIs docs/CERTIFICATES.md shows (subjectAltName in an extfile)
// carries its groups into the Identity.
func TestOpenSSLGroupURIs(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	caCert, caKey, err := NewCA(CAOptions{Name: "interop CA"})
	if err != nil {
		t.Fatal(err)
	}
	ext := "[client]\nextendedKeyUsage = clientAuth\nsubjectAltName = IP:10.77.0.11, URI:quictun:group:eng, URI:quictun:group:db-admins\n"
	for name, data := range map[string][]byte{"ca.crt": caCert, "ca.key": caKey, "ext.cnf": []byte(ext)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	openssl(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "laptop.key", "-subj", "/CN=laptop", "-out", "laptop.csr")
	openssl(t, dir, "x509", "-req", "-in", "laptop.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
		"-days", "30", "-extfile", "ext.cnf", "-extensions", "client", "-out", "laptop.crt")
	certPEM, err := os.ReadFile(filepath.Join(dir, "laptop.crt"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := IdentityOf(mustParsePEMCert(t, certPEM))
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Groups) != 2 || id.Groups[0] != "eng" || id.Groups[1] != "db-admins" {
		t.Errorf("Groups %q, want [eng db-admins]", id.Groups)
	}
	if text := openssl(t, dir, "x509", "-in", "laptop.crt", "-noout", "-text"); !strings.Contains(text, "URI:quictun:group:eng") {
		t.Errorf("openssl does not print the group URI:\n%s", text)
	}
}
