package main

import (
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qcrypto "github.com/quictun/quictun/crypto"
)

// loadTestCRL loads dir/crl.pem checked against dir/ca.crt.
func loadTestCRL(t *testing.T, dir string) *x509.RevocationList {
	t.Helper()
	cas, err := qcrypto.LoadCertificates(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := qcrypto.LoadCRL(filepath.Join(dir, crlName), cas)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// serialOf returns the serial of the certificate in file.
func serialOf(t *testing.T, file string) *big.Int {
	t.Helper()
	certs, err := qcrypto.LoadCertificates(file)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].SerialNumber
}

func TestCertRevoke(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	file := func(name string) string { return filepath.Join(dir, name) }
	mustRunCert(t, "ca", "--dir", dir)
	for _, n := range []string{"laptop1", "laptop2", "phone", "kept"} {
		mustRunCert(t, "issue", "--dir", dir, "--name", n)
	}

	out := mustRunCert(t, "revoke", "--dir", dir, "--name", "laptop1", "--reason", "keyCompromise")
	for _, want := range []string{`revoked "laptop1"`, "reason keyCompromise", file(crlName), "1 revoked certificate", "CRL number 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("cert revoke printed %q, want %q in it", out, want)
		}
	}
	checkMode(t, file(crlName), 0o644)
	crl := loadTestCRL(t, dir)
	if e := qcrypto.FindRevoked(crl, serialOf(t, file("laptop1.crt"))); e == nil || e.ReasonCode != int(qcrypto.ReasonKeyCompromise) {
		t.Fatalf("laptop1's entry: %+v", e)
	}

	// Twice: reported, and the file is left as it was.
	before, _ := os.ReadFile(file(crlName))
	out = mustRunCert(t, "revoke", "--dir", dir, "--name", "laptop1", "--reason", "superseded")
	if !strings.Contains(out, "already revoked") || !strings.Contains(out, "keyCompromise") {
		t.Errorf("second revoke printed %q, want it to say laptop1 is already revoked (keyCompromise)", out)
	}
	if after, _ := os.ReadFile(file(crlName)); string(after) != string(before) {
		t.Error("revoking twice rewrote the CRL")
	}

	// --cert and --serial (with colons, as OpenSSL prints serials).
	mustRunCert(t, "revoke", "--dir", dir, "--cert", file("laptop2.crt"), "--reason", "cessationOfOperation")
	phone := serialOf(t, file("phone.crt"))
	hex := phone.Text(16)
	if len(hex)%2 == 1 {
		hex = "0" + hex
	}
	var colons []string
	for i := 0; i < len(hex); i += 2 {
		colons = append(colons, strings.ToUpper(hex[i:i+2]))
	}
	mustRunCert(t, "revoke", "--dir", dir, "--serial", strings.Join(colons, ":"))
	crl = loadTestCRL(t, dir)
	if n := len(crl.RevokedCertificateEntries); n != 3 {
		t.Errorf("%d entries after three revocations, want 3", n)
	}
	if crl.Number.Int64() != 3 {
		t.Errorf("CRL number %v after three writes, want 3", crl.Number)
	}
	if e := qcrypto.FindRevoked(crl, phone); e == nil || e.ReasonCode != 0 {
		t.Errorf("phone's entry (by --serial %s): %+v", strings.Join(colons, ":"), e)
	}
	if qcrypto.FindRevoked(crl, serialOf(t, file("kept.crt"))) != nil {
		t.Error("kept is on the CRL")
	}

	// cert show says so; for a certificate not on the list it says nothing.
	if out := mustRunCert(t, "show", file("laptop1.crt")); !strings.Contains(out, "Revoked:") || !strings.Contains(out, "keyCompromise") {
		t.Errorf("cert show of a revoked certificate:\n%s", out)
	}
	if out := mustRunCert(t, "show", file("kept.crt")); strings.Contains(out, "Revoked") {
		t.Errorf("cert show of a certificate not revoked:\n%s", out)
	}

	// cert crl signs it anew: same entries, number one higher, listed by name.
	out = mustRunCert(t, "crl", "--dir", dir, "--days", "7")
	for _, want := range []string{"3 revoked certificates", "CRL number 4", `"laptop1"`, "keyCompromise", `"laptop2"`, "cessationOfOperation"} {
		if !strings.Contains(out, want) {
			t.Errorf("cert crl printed %q, want %q in it", out, want)
		}
	}
	crl = loadTestCRL(t, dir)
	if n := len(crl.RevokedCertificateEntries); n != 3 || crl.Number.Int64() != 4 {
		t.Errorf("after cert crl: %d entries, number %v; want 3, 4", n, crl.Number)
	}
	if d := crl.NextUpdate.Sub(crl.ThisUpdate).Hours(); d != 7*24 {
		t.Errorf("cert crl --days 7: nextUpdate %v h after thisUpdate", d)
	}
}

func TestCertCRLNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	mustRunCert(t, "ca", "--dir", dir)
	out := mustRunCert(t, "crl", "--dir", dir)
	if !strings.Contains(out, "0 revoked certificates") || !strings.Contains(out, "CRL number 1") {
		t.Errorf("cert crl on a new CA printed %q", out)
	}
	crl := loadTestCRL(t, dir)
	if len(crl.RevokedCertificateEntries) != 0 {
		t.Errorf("a new CRL lists %d certificates", len(crl.RevokedCertificateEntries))
	}
}

func TestCertRevokeErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	other := filepath.Join(t.TempDir(), "other")
	mustRunCert(t, "ca", "--dir", dir, "--name", "Our CA")
	mustRunCert(t, "issue", "--dir", dir, "--name", "laptop1")
	mustRunCert(t, "ca", "--dir", other, "--name", "Their CA")
	mustRunCert(t, "issue", "--dir", other, "--name", "stranger")
	mustRunCert(t, "crl", "--dir", other)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"nothing named", []string{"--dir", dir}, []string{"exactly one of --name", "--cert", "--serial"}},
		{"two named", []string{"--dir", dir, "--name", "laptop1", "--serial", "12"}, []string{"exactly one of"}},
		{"bad reason", []string{"--dir", dir, "--name", "laptop1", "--reason", "stolen"}, []string{"--reason", "keyCompromise"}},
		{"removeFromCRL", []string{"--dir", dir, "--name", "laptop1", "--reason", "removeFromCRL"}, []string{"delta CRLs"}},
		{"bad serial", []string{"--dir", dir, "--serial", "xyz"}, []string{"--serial", "hex"}},
		{"zero serial", []string{"--dir", dir, "--serial", "0"}, []string{"positive"}},
		{"bad days", []string{"--dir", dir, "--name", "laptop1", "--days", "0"}, []string{"--days"}},
		{"missing cert", []string{"--dir", dir, "--name", "nobody"}, []string{"nobody.crt", "does not exist"}},
		{"other CA's cert", []string{"--dir", dir, "--cert", filepath.Join(other, "stranger.crt")}, []string{"stranger.crt", "not signed by the CA", "Their CA"}},
		{"the CA itself", []string{"--dir", dir, "--cert", filepath.Join(dir, "ca.crt")}, []string{"CA certificate"}},
		{"no CA", []string{"--dir", filepath.Join(t.TempDir(), "none"), "--name", "x"}, []string{"no CA in", "cert ca"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCert(t, append([]string{"revoke"}, tt.args...)...)
			if err == nil {
				t.Fatalf("cert revoke %q succeeded:\n%s", tt.args, out)
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code %d, want 2 (usage)", exitCode(err))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	// A crl.pem signed by another CA is not extended: the error names it.
	if err := os.Rename(filepath.Join(other, crlName), filepath.Join(dir, crlName)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"revoke", "--dir", dir, "--name", "laptop1"}, {"crl", "--dir", dir}} {
		_, err := runCert(t, args...)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, crlName)) || !strings.Contains(err.Error(), "not signed by the CA") {
			t.Errorf("cert %s with a foreign crl.pem: %v", args[0], err)
		}
	}
}
