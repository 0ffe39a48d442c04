package crypto

import (
	stdcrypto "crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a CA made by NewCA, parsed, with its PEM.
type testCA struct {
	cert            *x509.Certificate
	key             stdcrypto.Signer
	certPEM, keyPEM []byte
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	certPEM, keyPEM, err := NewCA(CAOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKeyPEM(keyPEM, "test CA key", nil)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{mustParsePEMCert(t, certPEM), key, certPEM, keyPEM}
}

// issueClient issues a client certificate from ca and returns it parsed.
func (ca testCA) issueClient(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	certPEM, _, err := Issue(ca.certPEM, ca.keyPEM, LeafOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return mustParsePEMCert(t, certPEM)
}

func TestCRLCreateParseVerify(t *testing.T) {
	ca := newTestCA(t, "CRL CA")
	a, b := ca.issueClient(t, "a"), ca.issueClient(t, "b")
	now := time.Now()
	crlPEM, already, err := CreateCRL(ca.cert, ca.key, CRLOptions{
		Revoke: []Revocation{{Serial: a.SerialNumber, Reason: ReasonKeyCompromise}}, Days: 7, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(already) != 0 {
		t.Errorf("already = %v on a new CRL", already)
	}
	if !strings.HasPrefix(string(crlPEM), "-----BEGIN X509 CRL-----\n") {
		t.Errorf("CRL does not start with the PEM header OpenSSL writes:\n%s", crlPEM)
	}
	file := writeTemp(t, "crl.pem", crlPEM)
	crl, err := LoadCRL(file, []*x509.Certificate{ca.cert})
	if err != nil {
		t.Fatal(err)
	}
	if crl.Number == nil || crl.Number.Int64() != 1 {
		t.Errorf("first CRL number %v, want 1", crl.Number)
	}
	if got := crl.NextUpdate.Sub(crl.ThisUpdate); got != 7*24*time.Hour {
		t.Errorf("nextUpdate - thisUpdate = %v, want 7 days", got)
	}
	if d := crl.ThisUpdate.Sub(now); d > time.Second || d < -time.Second {
		t.Errorf("thisUpdate %v, want about %v", crl.ThisUpdate, now)
	}
	if e := FindRevoked(crl, a.SerialNumber); e == nil || e.ReasonCode != int(ReasonKeyCompromise) {
		t.Errorf("entry of a: %+v, want reason keyCompromise", e)
	}
	if FindRevoked(crl, b.SerialNumber) != nil {
		t.Error("b is listed but was not revoked")
	}
	if CRLStale(crl, now) {
		t.Error("a fresh CRL is stale")
	}
	if !CRLStale(crl, now.Add(8*24*time.Hour)) {
		t.Error("a CRL 8 days into its 7 is not stale")
	}

	// Revoking b on top: a is kept with its reason and time, b added, a
	// second revocation of a reported and not listed twice, the number
	// one higher.
	crlPEM2, already, err := CreateCRL(ca.cert, ca.key, CRLOptions{
		Previous: crl,
		Revoke:   []Revocation{{Serial: b.SerialNumber, Reason: ReasonUnspecified}, {Serial: a.SerialNumber, Reason: ReasonSuperseded}},
		Now:      now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(already) != 1 || already[0].Cmp(a.SerialNumber) != 0 {
		t.Errorf("already = %v, want a's serial %x", already, a.SerialNumber)
	}
	crl2, err := ParseCRL(crlPEM2, "crl2")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCRLSignature(crl2, "crl2", []*x509.Certificate{ca.cert}); err != nil {
		t.Fatal(err)
	}
	if crl2.Number.Int64() != 2 {
		t.Errorf("second CRL number %v, want 2", crl2.Number)
	}
	if got := crl2.NextUpdate.Sub(crl2.ThisUpdate); got != DefaultCRLDays*24*time.Hour {
		t.Errorf("default validity %v, want %d days", got, DefaultCRLDays)
	}
	if n := len(crl2.RevokedCertificateEntries); n != 2 {
		t.Errorf("%d entries, want 2 (a once, b)", n)
	}
	ea := FindRevoked(crl2, a.SerialNumber)
	if ea == nil || ea.ReasonCode != int(ReasonKeyCompromise) || !ea.RevocationTime.Equal(crl.RevokedCertificateEntries[0].RevocationTime) {
		t.Errorf("a's entry after the second revocation: %+v, want its first reason and time", ea)
	}
	if eb := FindRevoked(crl2, b.SerialNumber); eb == nil || eb.ReasonCode != 0 {
		t.Errorf("b's entry: %+v, want reason unspecified", eb)
	}
	if got := RevokedSerials(crl2); len(got) != 2 {
		t.Errorf("RevokedSerials = %v", got)
	}

	// DER works too.
	blk, _ := pem.Decode(crlPEM2)
	derFile := writeTemp(t, "crl.der", blk.Bytes)
	if crl3, err := LoadCRL(derFile, []*x509.Certificate{ca.cert}); err != nil || len(crl3.RevokedCertificateEntries) != 2 {
		t.Errorf("DER CRL: %v, %v", crl3, err)
	}
}

func TestCRLWrongCARefused(t *testing.T) {
	ca, other := newTestCA(t, "Right CA"), newTestCA(t, "Other CA")
	crlPEM, _, err := CreateCRL(other.cert, other.key, CRLOptions{
		Revoke: []Revocation{{Serial: big.NewInt(42)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	file := writeTemp(t, "crl.pem", crlPEM)
	_, err = LoadCRL(file, []*x509.Certificate{ca.cert})
	if err == nil {
		t.Fatal("a CRL signed by another CA was accepted")
	}
	for _, want := range []string{file, "not signed by the CA", "Other CA", "Right CA"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// Either of several CAs may have signed it.
	if _, err := LoadCRL(file, []*x509.Certificate{ca.cert, other.cert}); err != nil {
		t.Errorf("CRL of the second CA in the list: %v", err)
	}
	// A key that is not the CA's own is refused before anything is signed.
	if _, _, err := CreateCRL(ca.cert, other.key, CRLOptions{}); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("CreateCRL with another CA's key: %v", err)
	}
}

func TestCRLParseErrors(t *testing.T) {
	ca := newTestCA(t, "Parse CA")
	tests := []struct {
		name, data, want string
	}{
		{"certificate", string(ca.certPEM), "holds CERTIFICATE, not a CRL"},
		{"key", string(ca.keyPEM), "holds PRIVATE KEY, not a CRL"},
		{"garbage", "hello", "not a valid X.509 CRL"},
		{"broken pem", "-----BEGIN X509 CRL-----\nnot base64!\n", "broken PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeTemp(t, "crl.pem", []byte(tt.data))
			_, err := ReadCRL(file)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), file) {
				t.Errorf("ReadCRL = %v, want an error naming %s and saying %q", err, file, tt.want)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "none.pem")
	if _, err := ReadCRL(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCRLNeedsCRLSign(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := mustParsePEMCert(t, selfSigned(t, key, &x509.Certificate{
		Subject: pkix.Name{CommonName: "no crl sign"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}))
	_, _, err = CreateCRL(cert, key, CRLOptions{})
	if err == nil || !strings.Contains(err.Error(), "cRLSign") {
		t.Errorf("CreateCRL with a CA lacking cRLSign: %v", err)
	}
}

func TestParseRevocationReason(t *testing.T) {
	tests := []struct {
		in      string
		want    RevocationReason
		wantErr string
	}{
		{"unspecified", ReasonUnspecified, ""},
		{"keyCompromise", ReasonKeyCompromise, ""},
		{"keycompromise", ReasonKeyCompromise, ""},
		{"cACompromise", ReasonCACompromise, ""},
		{"affiliationChanged", ReasonAffiliationChanged, ""},
		{"superseded", ReasonSuperseded, ""},
		{"cessationOfOperation", ReasonCessationOfOperation, ""},
		{"certificateHold", ReasonCertificateHold, ""},
		{"privilegeWithdrawn", ReasonPrivilegeWithdrawn, ""},
		{"aACompromise", ReasonAACompromise, ""},
		{"removeFromCRL", 0, "delta CRLs"},
		{"stolen", 0, "keyCompromise"},
		{"", 0, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRevocationReason(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("= %v, %v; want %v", got, err, tt.want)
			}
			if !strings.EqualFold(got.String(), tt.in) {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

// TestOpenSSLReadsOurCRL: `openssl crl -text` lists our entries with their
// reasons, checks our signature, and `openssl verify -crl_check` refuses
// the revoked certificate and accepts the other.
func TestOpenSSLReadsOurCRL(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	ca := newTestCA(t, "OpenSSL interop CA")
	revoked, kept := ca.issueClient(t, "revoked"), ca.issueClient(t, "kept")
	crlPEM, _, err := CreateCRL(ca.cert, ca.key, CRLOptions{
		Revoke: []Revocation{{Serial: revoked.SerialNumber, Reason: ReasonKeyCompromise}},
	})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("crl.pem", crlPEM)
	write("ca.crt", ca.certPEM)
	write("revoked.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: revoked.Raw}))
	write("kept.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kept.Raw}))

	text := openssl(t, dir, "crl", "-in", "crl.pem", "-text", "-noout")
	for _, want := range []string{
		"Serial Number: " + strings.ToUpper(revoked.SerialNumber.Text(16)),
		"Key Compromise", "X509v3 CRL Number", "Next Update", "Issuer: CN = OpenSSL interop CA",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, strings.ToUpper(kept.SerialNumber.Text(16))) {
		t.Errorf("openssl crl -text lists the certificate that was not revoked:\n%s", text)
	}
	// openssl crl -CAfile checks the signature and fails if it is wrong.
	openssl(t, dir, "crl", "-in", "crl.pem", "-CAfile", "ca.crt", "-noout")

	verify := func(cert string) (string, error) {
		cmd := exec.Command("openssl", "verify", "-crl_check", "-CAfile", "ca.crt", "-CRLfile", "crl.pem", cert)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify("revoked.crt"); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify -crl_check of the revoked certificate: %v\n%s", err, out)
	}
	if out, err := verify("kept.crt"); err != nil {
		t.Errorf("openssl verify -crl_check of the certificate not revoked: %v\n%s", err, out)
	}
}

// opensslCAConfig is a minimal config for `openssl ca -revoke` and
// `openssl ca -gencrl` in a directory holding ca.crt and ca.key.
const opensslCAConfig = `[ca]
default_ca = test_ca
[test_ca]
dir = .
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 30
[req]
distinguished_name = dn
prompt = no
[dn]
`

// TestWeReadOpenSSLCRL: a CRL that `openssl ca -gencrl` wrote, after
// `openssl ca -revoke -crl_reason keyCompromise`, is read and verified
// against the OpenSSL-made CA, lists the serial with its reason, and can
// be extended by CreateCRL (as `quictun cert revoke` does on a CRL it did
// not make), its number going on from OpenSSL's.
func TestWeReadOpenSSLCRL(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "openssl.cnf"), []byte(opensslCAConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crlnumber"), []byte("1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "ca.key", "-out", "ca.crt", "-days", "30", "-subj", "/CN=OpenSSL CRL CA",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	openssl(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "c1.key", "-out", "c1.csr", "-subj", "/CN=c1", "-addext", "extendedKeyUsage=clientAuth")
	openssl(t, dir, "x509", "-req", "-in", "c1.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
		"-days", "30", "-copy_extensions", "copy", "-out", "c1.crt")
	openssl(t, dir, "ca", "-config", "openssl.cnf", "-revoke", "c1.crt", "-crl_reason", "keyCompromise")
	openssl(t, dir, "ca", "-config", "openssl.cnf", "-gencrl", "-out", "crl.pem")

	path := func(n string) string { return filepath.Join(dir, n) }
	cas, err := LoadCertificates(path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c1, err := LoadCertificates(path("c1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := LoadCRL(path("crl.pem"), cas)
	if err != nil {
		t.Fatal(err)
	}
	e := FindRevoked(crl, c1[0].SerialNumber)
	if e == nil || e.ReasonCode != int(ReasonKeyCompromise) {
		t.Fatalf("OpenSSL's CRL: entry of c1 (%x) = %+v, want reason keyCompromise", c1[0].SerialNumber, e)
	}
	if CRLStale(crl, time.Now()) {
		t.Error("OpenSSL's fresh CRL is stale")
	}
	if crl.Number == nil || crl.Number.Int64() != 0x1000 {
		t.Errorf("OpenSSL's CRL number %v, want 4096 (crlnumber 1000, hex)", crl.Number)
	}

	key, err := parseKeyPEM(must(os.ReadFile(path("ca.key"))), "ca.key", nil)
	if err != nil {
		t.Fatal(err)
	}
	more, _, err := CreateCRL(cas[0], key, CRLOptions{Previous: crl, Revoke: []Revocation{{Serial: big.NewInt(7), Reason: ReasonSuperseded}}})
	if err != nil {
		t.Fatal(err)
	}
	crl2, err := ParseCRL(more, "more")
	if err != nil {
		t.Fatal(err)
	}
	if crl2.Number.Int64() != 0x1001 || FindRevoked(crl2, c1[0].SerialNumber) == nil || FindRevoked(crl2, big.NewInt(7)) == nil {
		t.Errorf("extended CRL: number %v, entries %d", crl2.Number, len(crl2.RevokedCertificateEntries))
	}
}

// TestWeReadEasyRSACRL: `easyrsa revoke` and `easyrsa gen-crl` in a
// fresh PKI (RSA, no CRL number) give a CRL that is read, verified and
// lists the client.
func TestWeReadEasyRSACRL(t *testing.T) {
	requireOpenSSL(t)
	easyrsa, err := exec.LookPath("easyrsa")
	if err != nil {
		easyrsa = "/usr/share/easy-rsa/easyrsa"
		if _, err := os.Stat(easyrsa); err != nil {
			t.Skip("easy-rsa is not installed (apt-get install easy-rsa): skipping")
		}
	}
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(easyrsa, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "EASYRSA_PKI="+pki, "EASYRSA_BATCH=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("easyrsa %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("init-pki")
	run("--req-cn=EasyRSA CRL CA", "build-ca", "nopass")
	run("build-client-full", "c1", "nopass")
	run("build-client-full", "c2", "nopass")
	// Read before revoke, which moves the certificate out of issued/.
	c1, err := LoadCertificates(filepath.Join(pki, "issued", "c1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := LoadCertificates(filepath.Join(pki, "issued", "c2.crt"))
	if err != nil {
		t.Fatal(err)
	}
	run("revoke", "c1", "keyCompromise")
	run("gen-crl")

	cas, err := LoadCertificates(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := LoadCRL(filepath.Join(pki, "crl.pem"), cas)
	if err != nil {
		t.Fatal(err)
	}
	if e := FindRevoked(crl, c1[0].SerialNumber); e == nil || e.ReasonCode != int(ReasonKeyCompromise) {
		t.Errorf("easy-rsa's CRL: entry of c1 = %+v, want reason keyCompromise", e)
	}
	if FindRevoked(crl, c2[0].SerialNumber) != nil {
		t.Error("easy-rsa's CRL lists c2, which was not revoked")
	}
	other := newTestCA(t, "Not easy-rsa's CA")
	if _, err := LoadCRL(filepath.Join(pki, "crl.pem"), []*x509.Certificate{other.cert}); err == nil {
		t.Error("easy-rsa's CRL verified against another CA")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestCRLRecipes runs the CRL recipes of docs/CERTIFICATES.md after the
// recipes that make the PKI, and checks that the CRL they write is signed
// by the recipe's CA and lists laptop1 for keyCompromise, and nothing else.
func TestCRLRecipes(t *testing.T) {
	tests := []struct {
		name, pki, crl string
		setup          func(t *testing.T) []string
	}{
		{"openssl", "openssl", "openssl-crl", func(t *testing.T) []string { requireOpenSSL(t); return nil }},
		{"easy-rsa", "easy-rsa", "easy-rsa-crl", func(t *testing.T) []string {
			requireOpenSSL(t)
			path := os.Getenv("PATH") + string(os.PathListSeparator) + "/usr/share/easy-rsa"
			for _, d := range filepath.SplitList(path) {
				if fi, err := os.Stat(filepath.Join(d, "easyrsa")); err == nil && !fi.IsDir() {
					return []string{"PATH=" + path}
				}
			}
			t.Skip("easy-rsa is not installed (apt-get install easy-rsa): skipping its recipe")
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.setup(t)
			// The PKI recipe may leave the shell in pki/; the CRL recipe
			// starts where the reader stands, above it.
			code := "top=$PWD\n" + recipe(t, tt.pki) + "cd \"$top\"\n" + recipe(t, tt.crl)
			dir := runRecipe(t, code, env...)
			cas, err := LoadCertificates(filepath.Join(dir, "pki", "ca.crt"))
			if err != nil {
				t.Fatal(err)
			}
			crl, err := LoadCRL(filepath.Join(dir, "pki", "crl.pem"), cas)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(crl.RevokedCertificateEntries); n != 1 {
				t.Fatalf("the CRL lists %d certificates, want 1 (laptop1)", n)
			}
			if e := crl.RevokedCertificateEntries[0]; e.ReasonCode != int(ReasonKeyCompromise) {
				t.Errorf("reason %d, want keyCompromise", e.ReasonCode)
			}
			// laptop1's certificate: where the recipe left it (easy-rsa
			// moves it to revoked/ by its serial).
			files, _ := filepath.Glob(filepath.Join(dir, "pki", "laptop1.crt"))
			more, _ := filepath.Glob(filepath.Join(dir, "pki", "revoked", "certs_by_serial", "*.crt"))
			files = append(files, more...)
			if len(files) != 1 {
				t.Fatalf("laptop1's certificate: found %q", files)
			}
			laptop, err := LoadCertificates(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if laptop[0].Subject.CommonName != "laptop1" || FindRevoked(crl, laptop[0].SerialNumber) == nil {
				t.Errorf("the CRL does not list %s (%q, serial %x)", files[0], laptop[0].Subject.CommonName, laptop[0].SerialNumber)
			}
		})
	}
}
