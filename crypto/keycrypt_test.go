package crypto

import (
	stdcrypto "crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixedPassphrase returns a Passphrase that always gives p.
func fixedPassphrase(p string) Passphrase {
	return func(string) ([]byte, error) { return []byte(p), nil }
}

// countingPassphrase returns a Passphrase giving p and the number of times
// it was asked, and for which files.
func countingPassphrase(p string) (Passphrase, *[]string) {
	var asked []string
	return func(file string) ([]byte, error) {
		asked = append(asked, file)
		return []byte(p), nil
	}, &asked
}

// writePairFiles writes a self-signed certificate for key and keyPEM into a
// fresh directory and returns their paths.
func writePairFiles(t *testing.T, key stdcrypto.Signer, keyPEM []byte) (crt, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	crt, keyFile = filepath.Join(dir, "k.crt"), filepath.Join(dir, "k.key")
	if err := os.WriteFile(crt, selfSigned(t, key, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return crt, keyFile
}

func TestEncryptKeyRoundTrip(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		key  stdcrypto.Signer
	}{{"RSA", rsaKey}, {"ECDSA", ecKey}, {"Ed25519", edKey}} {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := EncryptKey(tt.key, []byte("correct horse"))
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(enc); b == nil || b.Type != "ENCRYPTED PRIVATE KEY" {
				t.Fatalf("not an ENCRYPTED PRIVATE KEY PEM block:\n%s", enc)
			}
			crt, key := writePairFiles(t, tt.key, enc)

			pass, asked := countingPassphrase("correct horse")
			pair, err := LoadKeyPair(crt, key, pass)
			if err != nil {
				t.Fatal(err)
			}
			if len(*asked) != 1 || (*asked)[0] != key {
				t.Errorf("passphrase asked for %q, want once for %s", *asked, key)
			}
			if !publicKeyMatches(tt.key.Public(), pair.PrivateKey.(stdcrypto.Signer).Public()) {
				t.Error("the decrypted key is not the one encrypted")
			}

			_, err = LoadKeyPair(crt, key, fixedPassphrase("wrong horse"))
			if !errors.Is(err, ErrWrongPassphrase) || err.Error() != "wrong passphrase for "+key {
				t.Errorf("wrong passphrase: error %q, want exactly %q wrapping ErrWrongPassphrase", err, "wrong passphrase for "+key)
			}
			_, err = LoadKeyPair(crt, key, nil)
			if !errors.Is(err, ErrEncryptedKey) || !strings.Contains(err.Error(), "no passphrase was given") {
				t.Errorf("no passphrase source: error %v, want ErrEncryptedKey saying no passphrase was given", err)
			}
		})
	}
}

func TestEncryptKeyRefusesEmptyPassphrase(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EncryptKey(key, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("EncryptKey with an empty passphrase: error %v, want one saying it is empty", err)
	}
}

// TestEncryptKeyFormat pins what EncryptKey writes: PBES2, scrypt with
// OpenSSL's parameters (the most OpenSSL reads back), AES-256-CBC.
func TestEncryptKeyFormat(t *testing.T) {
	_, keyPEM, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptKeyPEM(keyPEM, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(enc)
	var info encryptedPrivateKeyInfo
	var params pbes2Params
	var sp scryptParams
	var iv []byte
	if _, err := asn1.Unmarshal(b.Bytes, &info); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &sp); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(params.Cipher.Parameters.FullBytes, &iv); err != nil {
		t.Fatal(err)
	}
	switch {
	case !info.Algorithm.Algorithm.Equal(oidPBES2):
		t.Errorf("scheme %v, want PBES2", info.Algorithm.Algorithm)
	case !params.KDF.Algorithm.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}):
		t.Errorf("KDF %v, want scrypt 1.3.6.1.4.1.11591.4.11", params.KDF.Algorithm)
	case sp.N != 16384 || sp.R != 8 || sp.P != 1 || len(sp.Salt) != 16 || sp.KeyLength != 0:
		t.Errorf("scrypt parameters %+v, want N=16384 r=8 p=1, a 16-byte salt, no key length", sp)
	case !params.Cipher.Algorithm.Equal(oidAES256CBC) || len(iv) != 16:
		t.Errorf("cipher %v IV %d bytes, want AES-256-CBC with a 16-byte IV", params.Cipher.Algorithm, len(iv))
	}
}

// TestDecryptRefusesCostlyKDF: a crafted key file cannot make a load take
// gigabytes of memory or hours: it is refused before scrypt or PBKDF2 runs.
func TestDecryptRefusesCostlyKDF(t *testing.T) {
	iv, _ := asn1.Marshal(make([]byte, 16))
	build := func(kdfOID asn1.ObjectIdentifier, kdfParams any) []byte {
		kdf, err := asn1.Marshal(kdfParams)
		if err != nil {
			t.Fatal(err)
		}
		params, _ := asn1.Marshal(pbes2Params{
			KDF:    pkix.AlgorithmIdentifier{Algorithm: kdfOID, Parameters: asn1.RawValue{FullBytes: kdf}},
			Cipher: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: iv}},
		})
		der, _ := asn1.Marshal(encryptedPrivateKeyInfo{
			Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
			Data:      make([]byte, 32),
		})
		return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
	}
	tests := []struct {
		name string
		pem  []byte
		want string
	}{
		{"scrypt N=2^30", build(oidScrypt, scryptParams{Salt: []byte("salt"), N: 1 << 30, R: 8, P: 1}), "scrypt N=1073741824"},
		{"scrypt N not a power of 2", build(oidScrypt, scryptParams{Salt: []byte("salt"), N: 1000, R: 8, P: 1}), "scrypt N=1000"},
		{"PBKDF2 2^40 iterations", build(oidPBKDF2, pbkdf2Params{Salt: []byte("salt"), Iterations: 1 << 40}), "PBKDF2 with 1099511627776 iterations"},
		{"unknown KDF", build(asn1.ObjectIdentifier{1, 2, 3}, pbkdf2Params{Salt: []byte("salt"), Iterations: 1}), "key derivation function 1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeTemp(t, "k.key", tt.pem)
			start := time.Now()
			_, err := parseKeyPEM(tt.pem, file, fixedPassphrase("x"))
			if !errors.Is(err, ErrEncryptedKey) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "openssl pkcs8 -topk8 -scrypt -in "+file) {
				t.Errorf("error %v, want ErrEncryptedKey saying %q and how to re-encrypt", err, tt.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("refusing took %v: the KDF ran", d)
			}
		})
	}
}

// TestUnencryptedKeyAsksNoPassphrase: a passphrase source is asked only for
// an encrypted key.
func TestUnencryptedKeyAsksNoPassphrase(t *testing.T) {
	pass := func(file string) ([]byte, error) {
		t.Errorf("passphrase asked for the unencrypted key %s", file)
		return nil, errors.New("not to be asked")
	}
	if _, err := LoadKeyPair(filepath.Join(pkiDir, "client1.crt"), filepath.Join(pkiDir, "client1.key"), pass); err != nil {
		t.Fatal(err)
	}
}

// TestPassphraseErrorReturned: the error of the passphrase source (e.g. a
// missing passphrase file) is what the loader returns.
func TestPassphraseErrorReturned(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptKey(key, []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	crt, keyFile := writePairFiles(t, key, enc)
	want := errors.New("passphrase file gone")
	if _, err := LoadKeyPair(crt, keyFile, func(string) ([]byte, error) { return nil, want }); !errors.Is(err, want) {
		t.Errorf("error %v, want the passphrase source's", err)
	}
}

func TestCheckKeyFileMode(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		want string // "" for no error
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, "mode 0640, so others than its owner may read it"},
		{0o644, "mode 0644, so others than its owner may read it"},
		{0o604, "mode 0604, so others than its owner may read it"},
		{0o620, "mode 0620, so others than its owner may change it"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			f := writeTemp(t, "k.key", []byte("x"))
			if err := os.Chmod(f, tt.mode); err != nil {
				t.Fatal(err)
			}
			err := CheckKeyFileMode(f)
			if tt.want == "" {
				if err != nil {
					t.Errorf("error %v, want none", err)
				}
				return
			}
			if !errors.Is(err, ErrKeyFileOpen) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "run `chmod 600 "+f+"`") {
				t.Errorf("error %v, want ErrKeyFileOpen saying %q and the chmod", err, tt.want)
			}
		})
	}
	if err := CheckKeyFileMode(filepath.Join(t.TempDir(), "missing.key")); err != nil {
		t.Errorf("missing file: %v, want nil (the loader reports it)", err)
	}
}

// TestIssueByEncryptedCA: a CA whose key is encrypted signs once loaded.
func TestIssueByEncryptedCA(t *testing.T) {
	certPEM, keyPEM, err := NewCA(CAOptions{Name: "enc CA"})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptKeyPEM(keyPEM, []byte("ca pass"))
	if err != nil {
		t.Fatal(err)
	}
	crt, key := writeTemp(t, "ca.crt", certPEM), writeTemp(t, "ca.key", enc)
	ca, err := LoadKeyPair(crt, key, fixedPassphrase("ca pass"))
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, _, err := IssueBy(ca, LeafOptions{Name: "laptop1"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustParsePEMCert(t, leafPEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("issued certificate does not verify against the CA: %v", err)
	}
	if _, _, err := Issue(certPEM, enc, LeafOptions{Name: "laptop2"}); !errors.Is(err, ErrEncryptedKey) {
		t.Errorf("Issue with the encrypted CA key PEM: %v, want ErrEncryptedKey", err)
	}
}

// TestOpenSSLReadsOurEncryptedKey: `openssl pkcs8` and `openssl pkey` open
// what EncryptKey writes with the passphrase, find the same key, and refuse
// a wrong passphrase.
func TestOpenSSLReadsOurEncryptedKey(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	certPEM, keyPEM, err := NewCA(CAOptions{Name: "openssl reads"})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncryptKeyPEM(keyPEM, []byte("s3cret pass"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.crt": certPEM, "ca.key": enc} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	openssl(t, dir, "pkcs8", "-in", "ca.key", "-passin", "pass:s3cret pass", "-out", "plain.key")
	plain, err := LoadKeyPair(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "plain.key"), nil)
	if err != nil {
		t.Fatalf("the key openssl pkcs8 decrypted does not load as the CA's: %v", err)
	}
	ours, err := LoadKeyPair(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), fixedPassphrase("s3cret pass"))
	if err != nil {
		t.Fatal(err)
	}
	if !plain.PrivateKey.(*ecdsa.PrivateKey).Equal(ours.PrivateKey) {
		t.Error("openssl pkcs8 decrypted another key than ours")
	}
	// openssl pkey: the public key it derives is the certificate's.
	pub := openssl(t, dir, "pkey", "-in", "ca.key", "-passin", "pass:s3cret pass", "-pubout")
	certPub := openssl(t, dir, "x509", "-in", "ca.crt", "-noout", "-pubkey")
	if pub != certPub {
		t.Errorf("openssl pkey -pubout:\n%s\nthe certificate's public key:\n%s", pub, certPub)
	}
	cmd := exec.Command(requireOpenSSL(t), "pkey", "-in", "ca.key", "-passin", "pass:wrong", "-noout")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("openssl pkey opened our key with a wrong passphrase:\n%s", out)
	}
}

// TestWeReadOpenSSLEncryptedKeys: the encrypted keys OpenSSL 3 writes by
// default and with -scrypt decrypt with the passphrase, and a wrong one is
// the one line "wrong passphrase for <file>".
func TestWeReadOpenSSLEncryptedKeys(t *testing.T) {
	requireOpenSSL(t)
	ec := []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "plain.key"}
	topk8 := func(extra ...string) []string {
		return append([]string{"pkcs8", "-topk8", "-in", "plain.key", "-out", "k.key", "-passout", "pass:secret"}, extra...)
	}
	tests := []struct {
		name  string
		plain []string // openssl command writing plain.key first, if any
		make  []string // openssl command writing k.key with passphrase "secret"
		want  string   // what openssl asn1parse shows of k.key, to pin the format under test
	}{
		{"pkcs8 -topk8 -scrypt", ec, topk8("-scrypt"), ":scrypt"},
		{"pkcs8 -topk8 -v2 aes-256-cbc (PBKDF2)", ec, topk8("-v2", "aes-256-cbc"), ":aes-256-cbc"},
		{"pkcs8 -topk8 (default)", ec, topk8(), ":PBKDF2"},
		{"pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA1", ec, topk8("-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"), ":aes-128-cbc"},
		{"pkcs8 -topk8 -v2 aes-192-cbc -v2prf hmacWithSHA512", ec, topk8("-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA512"), ":hmacWithSHA512"},
		{"genpkey EC -aes256", nil, []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:secret", "-out", "k.key"}, ":hmacWithSHA256"},
		{"genrsa -aes256", nil, []string{"genrsa", "-aes256", "-passout", "pass:secret", "-out", "k.key", "2048"}, ":PBES2"},
		{"req -newkey -keyout (easy-rsa, DES-EDE3-CBC)", nil, []string{"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", "k.key", "-out", "k.csr", "-subj", "/CN=k", "-passout", "pass:secret"}, ":des-ede3-cbc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.plain != nil {
				openssl(t, dir, tt.plain...)
			}
			openssl(t, dir, tt.make...)
			if parsed := openssl(t, dir, "asn1parse", "-in", "k.key"); !strings.Contains(parsed, tt.want) {
				t.Fatalf("k.key is not the format under test (no %q):\n%s", tt.want, parsed)
			}
			openssl(t, dir, "req", "-x509", "-key", "k.key", "-passin", "pass:secret", "-subj", "/CN=k", "-days", "1", "-out", "k.crt")
			crt, key := filepath.Join(dir, "k.crt"), filepath.Join(dir, "k.key")
			if err := CheckKeyFileMode(key); err != nil {
				t.Errorf("the key as openssl writes it: %v", err)
			}
			if _, err := LoadKeyPair(crt, key, fixedPassphrase("secret")); err != nil {
				t.Fatalf("with the passphrase: %v", err)
			}
			_, err := LoadKeyPair(crt, key, fixedPassphrase("Secret"))
			if !errors.Is(err, ErrWrongPassphrase) || err.Error() != "wrong passphrase for "+key {
				t.Errorf("wrong passphrase: error %q, want exactly %q", err, "wrong passphrase for "+key)
			}
		})
	}
}

// TestOpenSSLPBES1Refused: a key encrypted with the old PBES1 (openssl
// pkcs8 -v1) is refused with the command that re-encrypts it.
func TestOpenSSLPBES1Refused(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "plain.key")
	openssl(t, dir, "req", "-x509", "-key", "plain.key", "-subj", "/CN=k", "-days", "1", "-out", "k.crt")
	openssl(t, dir, "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", "plain.key", "-out", "k.key", "-passout", "pass:secret")
	crt, key := filepath.Join(dir, "k.crt"), filepath.Join(dir, "k.key")
	_, err := LoadKeyPair(crt, key, fixedPassphrase("secret"))
	advice := "openssl pkcs8 -topk8 -scrypt -in " + key + " -out " + filepath.Join(dir, "k-scrypt.key")
	if !errors.Is(err, ErrEncryptedKey) || !strings.Contains(err.Error(), "PBES1") || !strings.Contains(err.Error(), advice) {
		t.Fatalf("error %v, want ErrEncryptedKey naming PBES1 and saying %q", err, advice)
	}
	openssl(t, dir, "pkcs8", "-topk8", "-scrypt", "-in", "k.key", "-out", "k-scrypt.key", "-passin", "pass:secret", "-passout", "pass:new")
	if _, err := LoadKeyPair(crt, filepath.Join(dir, "k-scrypt.key"), fixedPassphrase("new")); err != nil {
		t.Errorf("the key re-encrypted as advised does not load: %v", err)
	}
}

// TestEasyRSAEncryptedKeys: easy-rsa's keys with a passphrase (its default
// without nopass: the CA's from openssl genpkey -aes256, a client's from
// openssl req) decrypt, and the modes it writes them with pass
// CheckKeyFileMode.
func TestEasyRSAEncryptedKeys(t *testing.T) {
	requireOpenSSL(t)
	path := os.Getenv("PATH") + string(os.PathListSeparator) + "/usr/share/easy-rsa"
	easyrsa := ""
	for _, d := range filepath.SplitList(path) {
		if fi, err := os.Stat(filepath.Join(d, "easyrsa")); err == nil && !fi.IsDir() {
			easyrsa = filepath.Join(d, "easyrsa")
			break
		}
	}
	if easyrsa == "" {
		t.Skip("easy-rsa is not installed (apt-get install easy-rsa)")
	}
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	for _, args := range [][]string{
		{"init-pki"},
		{"--req-cn=Encrypted CA", "build-ca"},
		{"build-client-full", "laptop1"},
	} {
		cmd := exec.Command(easyrsa, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+path, "EASYRSA_PKI="+pki, "EASYRSA_BATCH=1",
			"EASYRSA_PASSOUT=pass:easy secret", "EASYRSA_PASSIN=pass:easy secret")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("easyrsa %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, pair := range []struct{ crt, key string }{
		{filepath.Join(pki, "ca.crt"), filepath.Join(pki, "private", "ca.key")},
		{filepath.Join(pki, "issued", "laptop1.crt"), filepath.Join(pki, "private", "laptop1.key")},
	} {
		if b, _ := os.ReadFile(pair.key); !strings.Contains(string(b), "ENCRYPTED PRIVATE KEY") {
			t.Fatalf("easy-rsa did not encrypt %s:\n%s", pair.key, b)
		}
		if err := CheckKeyFileMode(pair.key); err != nil {
			t.Errorf("the key as easy-rsa writes it: %v", err)
		}
		if _, err := LoadKeyPair(pair.crt, pair.key, fixedPassphrase("easy secret")); err != nil {
			t.Errorf("with the passphrase: %v", err)
		}
		_, err := LoadKeyPair(pair.crt, pair.key, fixedPassphrase("easy"))
		if !errors.Is(err, ErrWrongPassphrase) || err.Error() != "wrong passphrase for "+pair.key {
			t.Errorf("wrong passphrase: error %q, want exactly %q", err, "wrong passphrase for "+pair.key)
		}
	}
}

// TestProtectedKeysRecipe runs the OpenSSL commands of docs/CERTIFICATES.md,
// "Protected keys", as written, and checks that quictun reads what they
// make with the passphrase they were given.
func TestProtectedKeysRecipe(t *testing.T) {
	requireOpenSSL(t)
	dir := runRecipe(t, recipe(t, "protected-keys"))
	plain, err := parseKeyPEM(mustRead(t, filepath.Join(dir, "plain.key")), "plain.key", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file, pass string
		same       bool // the key of plain.key
	}{
		{"scrypt.key", "old secret", true},
		{"pbkdf2.key", "old secret", true},
		{"renewed.key", "new secret", true},
		{"decrypted.key", "", true},
		{"legacy-scrypt.key", "new secret", false},
	} {
		file := filepath.Join(dir, tt.file)
		var pass Passphrase
		if tt.pass != "" {
			pass = fixedPassphrase(tt.pass)
		}
		k, err := parseKeyPEM(mustRead(t, file), file, pass)
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if tt.same && !publicKeyMatches(plain.Public(), k.Public()) {
			t.Errorf("%s holds another key than plain.key", tt.file)
		}
		if err := CheckKeyFileMode(file); err != nil {
			t.Errorf("%s: %v", tt.file, err)
		}
	}
	legacy := filepath.Join(dir, "legacy.key")
	if _, err := parseKeyPEM(mustRead(t, legacy), legacy, fixedPassphrase("old secret")); !errors.Is(err, ErrEncryptedKey) {
		t.Errorf("legacy.key: %v, want it refused with ErrEncryptedKey", err)
	}
}

// mustRead returns the content of file.
func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
