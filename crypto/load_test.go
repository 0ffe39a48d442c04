package crypto

import (
	stdcrypto "crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeyPairFormats(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1 := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	// What `openssl ecparam -genkey` writes before the key: the curve OID.
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	tests := []struct {
		name   string
		key    stdcrypto.Signer
		keyPEM []byte
	}{
		{"RSA PKCS#1", rsaKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		{"RSA PKCS#8", rsaKey, pkcs8(rsaKey)},
		{"ECDSA SEC1", ecKey, sec1(ecKey)},
		{"ECDSA SEC1 after EC PARAMETERS", ecKey, append(ecParams, sec1(ecKey)...)},
		{"ECDSA P-384 PKCS#8", ec384, pkcs8(ec384)},
		{"ECDSA PKCS#8", ecKey, pkcs8(ecKey)},
		{"Ed25519 PKCS#8", edKey, pkcs8(edKey)},
		{"PKCS#8 labelled RSA PRIVATE KEY", ecKey, []byte(strings.ReplaceAll(string(pkcs8(ecKey)), "PRIVATE KEY", "RSA PRIVATE KEY"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM := selfSigned(t, tt.key, nil)
			pair, err := LoadKeyPair(writeTemp(t, "c.crt", certPEM), writeTemp(t, "c.key", tt.keyPEM), nil)
			if err != nil {
				t.Fatal(err)
			}
			if pair.Leaf == nil || len(pair.Certificate) != 1 {
				t.Fatalf("Leaf %v, %d certificates, want the leaf filled in and 1", pair.Leaf, len(pair.Certificate))
			}
			signer, ok := pair.PrivateKey.(stdcrypto.Signer)
			if !ok || !publicKeyMatches(tt.key.Public(), signer.Public()) {
				t.Errorf("loaded key %T does not match the one written", pair.PrivateKey)
			}
		})
	}
}

func TestLoadKeyPairChain(t *testing.T) {
	leaf := testPair(t, "client1")
	caPEM, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, err := os.ReadFile(filepath.Join(pkiDir, "client1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	chain := writeTemp(t, "chain.crt", append(leafPEM, caPEM...))
	pair, err := LoadKeyPair(chain, filepath.Join(pkiDir, "client1.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 || pair.Leaf.Subject.CommonName != "client1" {
		t.Errorf("%d certificates, leaf %q; want 2, client1", len(pair.Certificate), pair.Leaf.Subject.CommonName)
	}
	if string(pair.Certificate[0]) != string(leaf.Certificate[0]) {
		t.Error("first certificate of the chain is not the leaf")
	}
}

func TestLoadKeyPairErrors(t *testing.T) {
	crt := filepath.Join(pkiDir, "client1.crt")
	key := filepath.Join(pkiDir, "client1.key")
	otherKey := filepath.Join(pkiDir, "client2.key")
	legacy := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   []byte("not really ciphertext, but the header is what counts")})
	pkcs8Enc := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}})
	dir := t.TempDir()
	encFile := filepath.Join(dir, "k.key")
	if err := os.WriteFile(encFile, pkcs8Enc, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		cert, key     string
		want          []string
		wantEncrypted bool
	}{
		{name: "missing cert", cert: filepath.Join(dir, "nope.crt"), key: key,
			want: []string{"nope.crt", "does not exist"}},
		{name: "missing key", cert: crt, key: filepath.Join(dir, "nope.key"),
			want: []string{"nope.key", "does not exist"}},
		{name: "cert not PEM", cert: writeTemp(t, "der.crt", []byte{0x30, 0x82, 0x01}), key: key,
			want: []string{"der.crt", "not a PEM certificate", "openssl x509 -inform der"}},
		{name: "key given as cert", cert: key, key: key,
			want: []string{"client1.key", "holds a private key", "not a certificate"}},
		{name: "cert given as key", cert: crt, key: crt,
			want: []string{"client1.crt", "holds a certificate, not a private key"}},
		{name: "key not PEM", cert: crt, key: writeTemp(t, "junk.key", []byte("hello")),
			want: []string{"junk.key", "not a PEM private key"}},
		{name: "encrypted PKCS#8", cert: crt, key: encFile, wantEncrypted: true,
			want: []string{encFile, "encrypted", "openssl pkey -in " + encFile + " -out " + filepath.Join(dir, "k-plain.key")}},
		{name: "encrypted legacy PEM", cert: crt, key: writeTemp(t, "legacy.key", legacy), wantEncrypted: true,
			want: []string{"legacy.key", "legacy encrypted PEM key", "Proc-Type: 4,ENCRYPTED", "DEK-Info AES-256-CBC", "openssl pkcs8 -topk8 -scrypt -in"}},
		{name: "mismatched key", cert: crt, key: otherKey,
			want: []string{"the key in " + otherKey + " does not belong to the certificate in " + crt}},
		{name: "corrupt certificate", cert: writeTemp(t, "bad.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})), key: key,
			want: []string{"bad.crt", "not a valid X.509 certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKeyPair(tt.cert, tt.key, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if got := errors.Is(err, ErrEncryptedKey); got != tt.wantEncrypted {
				t.Errorf("errors.Is(err, ErrEncryptedKey) = %v, want %v", got, tt.wantEncrypted)
			}
		})
	}
}

func TestLoadKeyPairPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which may read a mode-000 file: permission errors cannot be provoked")
	}
	key := writeTemp(t, "locked.key", []byte("x"))
	if err := os.Chmod(key, 0); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKeyPair(filepath.Join(pkiDir, "client1.crt"), key, nil)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), key) {
		t.Errorf("error %v, want permission denied naming %s", err, key)
	}
}

func TestLoadCAPool(t *testing.T) {
	caPEM, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := os.ReadFile(filepath.Join(pkiDir, "other-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	client1 := testPair(t, "client1").Leaf
	other := testPair(t, "other-client").Leaf

	t.Run("two CAs", func(t *testing.T) {
		pool, err := LoadCAPool(writeTemp(t, "both.crt", append(caPEM, otherPEM...)))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*x509.Certificate{client1, other} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("%s does not verify: %v", c.Subject.CommonName, err)
			}
		}
	})
	t.Run("one CA", func(t *testing.T) {
		pool := testPool(t, "ca")
		if _, err := other.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Error("a client of another CA verifies")
		}
	})
	bad := []struct {
		name, file, want string
	}{
		{"empty", writeTemp(t, "empty.crt", nil), "not a PEM certificate"},
		{"leaf not CA", filepath.Join(pkiDir, "server.crt"), "not a CA certificate"},
		{"key", filepath.Join(pkiDir, "ca.key"), "holds a private key"},
		{"missing", filepath.Join(t.TempDir(), "ca.crt"), "does not exist"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCAPool(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %v, want one naming %s and containing %q", err, tt.file, tt.want)
			}
		})
	}
}
