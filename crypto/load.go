package crypto

import (
	stdcrypto "crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrEncryptedKey is wrapped by the errors of LoadKeyPair (and Issue) for an
// encrypted private key that cannot be read: no Passphrase was given, or it
// is encrypted in a form quictun does not read (the legacy "Proc-Type:
// 4,ENCRYPTED" PEM encryption, PBES1, an unknown cipher). The message says
// how to convert it.
var ErrEncryptedKey = errors.New("private key is encrypted")

// PEM block types.
const (
	pemCertificate  = "CERTIFICATE"
	pemPKCS8        = "PRIVATE KEY"
	pemPKCS1        = "RSA PRIVATE KEY"
	pemSEC1         = "EC PRIVATE KEY"
	pemECParameters = "EC PARAMETERS"
	pemEncrypted    = "ENCRYPTED PRIVATE KEY"
)

// LoadKeyPair loads a certificate (or a chain, leaf first) and its private
// key from PEM files, as made by quictun cert, OpenSSL or easy-rsa. The key
// may be RSA, ECDSA or Ed25519 in PKCS#1 ("RSA PRIVATE KEY"), PKCS#8
// ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") form; an "EC PARAMETERS" block
// before it is skipped. An encrypted PKCS#8 key ("ENCRYPTED PRIVATE KEY",
// PBES2 with scrypt or PBKDF2) is decrypted with the passphrase that pass
// returns; pass is called only for such a key, and may be nil when no
// passphrase can be had. The returned certificate has Leaf filled in.
//
// Every error names the file and what to do: a missing or unreadable file,
// a file that is not PEM, a key given where the certificate belongs (or the
// reverse), an encrypted key that cannot be read (wrapping
// ErrEncryptedKey), a wrong passphrase (wrapping ErrWrongPassphrase), and a
// key that does not belong to the certificate. Errors of pass are returned
// as they are.
func LoadKeyPair(certFile, keyFile string, pass Passphrase) (tls.Certificate, error) {
	certs, err := LoadCertificates(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readFile(keyFile, "private key")
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := parseKeyPEM(keyPEM, keyFile, pass)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf := certs[0]
	if !publicKeyMatches(leaf.PublicKey, key.Public()) {
		return tls.Certificate{}, fmt.Errorf("the key in %s does not belong to the certificate in %s (subject %q): give the key file made together with that certificate", keyFile, certFile, leaf.Subject.CommonName)
	}
	out := tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range certs {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	return out, nil
}

// LoadCAPool loads the CA certificates in a PEM file (one or more) into a
// pool to verify peers with. It fails if the file holds no certificate or
// one that is not a CA (for example a leaf given as the CA).
func LoadCAPool(file string) (*x509.CertPool, error) {
	certs, err := LoadCertificates(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		if !c.IsCA {
			return nil, fmt.Errorf("%s: certificate %q is not a CA certificate (no basicConstraints CA:TRUE): give the CA's certificate (e.g. pki/ca.crt), not a server or client certificate", file, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// LoadCertificates reads every certificate in a PEM file, in file order (for
// a chain: leaf first). Other PEM blocks are skipped unless the file has no
// certificate at all, which is an error that says what the file holds.
func LoadCertificates(file string) ([]*x509.Certificate, error) {
	data, err := readFile(file, "certificate")
	if err != nil {
		return nil, err
	}
	return parseCertsPEM(data, file)
}

// parseCertsPEM parses the CERTIFICATE blocks of data, read from file.
func parseCertsPEM(data []byte, file string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	var others []string
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != pemCertificate {
			others = append(others, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: PEM block %d is not a valid X.509 certificate: %w", file, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	if len(others) == 0 {
		return nil, fmt.Errorf("%s is not a PEM certificate file (no -----BEGIN CERTIFICATE----- block): if it is DER, convert it with `openssl x509 -inform der -in %s -out %s.pem`", file, file, strings.TrimSuffix(file, filepath.Ext(file)))
	}
	if isKeyType(others[0]) {
		return nil, fmt.Errorf("%s holds a private key (%s), not a certificate: give the certificate (.crt) here and the key (.key) as the key", file, others[0])
	}
	return nil, fmt.Errorf("%s holds %s, not a certificate (-----BEGIN CERTIFICATE-----)", file, strings.Join(others, ", "))
}

// isKeyType reports whether a PEM block type holds a private key.
func isKeyType(t string) bool {
	return strings.HasSuffix(t, "PRIVATE KEY")
}

// readFile reads a file and turns the common failures into messages that
// say what to do. what names the file's role ("certificate").
func readFile(file, what string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, readError(err, file, what)
	}
	return data, nil
}

// readError is readFile's message for err, which reading file failed with.
func readError(err error, file, what string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s file %s does not exist: check the path (quictun cert ca / cert issue make them)", what, file)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot read %s file %s: permission denied: run as a user that may read it, or fix its owner or mode", what, file)
	default:
		return fmt.Errorf("read %s file %s: %w", what, file, err)
	}
}

// parseKeyPEM finds and parses the private key in data, read from file,
// decrypting it with the passphrase of pass if it is encrypted.
func parseKeyPEM(data []byte, file string, pass Passphrase) (stdcrypto.Signer, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == pemECParameters:
			continue
		case b.Headers["Proc-Type"] == "4,ENCRYPTED":
			// Read only to say so: its key derivation is one round of
			// MD5 (EVP_BytesToKey), which makes a stolen file cheap to
			// brute-force, and Go deprecated its decryption for that.
			// One openssl command converts it.
			return nil, fmt.Errorf("%w: %s holds a legacy encrypted PEM key (%s with Proc-Type: 4,ENCRYPTED, DEK-Info %s), whose MD5 key derivation quictun does not accept: convert it to PKCS#8 with scrypt with `openssl pkcs8 -topk8 -scrypt -in %s -out %s` (it asks for the old passphrase and a new one) and give that file", ErrEncryptedKey, file, b.Type, dekCipher(b), file, otherName(file, "-scrypt"))
		case b.Type == pemEncrypted:
			return decryptKeyBlock(b, file, pass)
		case b.Type == pemCertificate:
			return nil, fmt.Errorf("%s holds a certificate, not a private key: give the key (.key) here and the certificate (.crt) as the certificate", file)
		case !isKeyType(b.Type):
			return nil, fmt.Errorf("%s holds a %s PEM block, not a private key (want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", file, b.Type)
		}
		k, err := parseKeyDER(b.Type, b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot parse the %s: %w", file, b.Type, err)
		}
		return k, nil
	}
	if strings.Contains(string(data), "OPENSSH PRIVATE KEY") {
		return nil, fmt.Errorf("%s is an OpenSSH key, not a PEM private key: make a key with quictun cert issue or openssl", file)
	}
	return nil, fmt.Errorf("%s is not a PEM private key file (no -----BEGIN PRIVATE KEY----- block): if it is DER, convert it with `openssl pkey -inform der -in %s -out %s`", file, file, strings.TrimSuffix(file, filepath.Ext(file))+"-pem.key")
}

// decryptKeyBlock decrypts and parses the "ENCRYPTED PRIVATE KEY" block b
// of file with the passphrase of pass.
func decryptKeyBlock(b *pem.Block, file string, pass Passphrase) (stdcrypto.Signer, error) {
	if pass == nil {
		return nil, fmt.Errorf("%w: %s holds an encrypted private key (ENCRYPTED PRIVATE KEY, PKCS#8) and no passphrase was given: give its passphrase, or decrypt it with `openssl pkey -in %s -out %s` and give that file (keep it mode 0600)", ErrEncryptedKey, file, file, otherName(file, "-plain"))
	}
	p, err := pass(file)
	if err != nil {
		return nil, err
	}
	plain, err := decryptPKCS8(b.Bytes, p)
	var unsupported errUnsupportedEncryption
	switch {
	case errors.Is(err, ErrWrongPassphrase):
		return nil, fmt.Errorf("%w for %s", ErrWrongPassphrase, file)
	case errors.As(err, &unsupported):
		return nil, fmt.Errorf("%w: %s is encrypted with %s: re-encrypt it with `openssl pkcs8 -topk8 -scrypt -in %s -out %s` and give that file", ErrEncryptedKey, file, unsupported.what, file, otherName(file, "-scrypt"))
	case err != nil:
		return nil, fmt.Errorf("%s: cannot decrypt the ENCRYPTED PRIVATE KEY: %w", file, err)
	}
	k, err := parseKeyDER(pemPKCS8, plain)
	clear(plain)
	if err != nil {
		// The padding came out right by chance (one time in 256):
		// what was decrypted is no key.
		return nil, fmt.Errorf("%w for %s", ErrWrongPassphrase, file)
	}
	return k, nil
}

// dekCipher returns the cipher named by the DEK-Info header of a legacy
// encrypted PEM block.
func dekCipher(b *pem.Block) string {
	c, _, _ := strings.Cut(b.Headers["DEK-Info"], ",")
	return c
}

// otherName suggests a file name for a converted copy of key file f.
func otherName(f, suffix string) string {
	ext := filepath.Ext(f)
	return strings.TrimSuffix(f, ext) + suffix + ".key"
}

// parseKeyDER parses a DER private key. The PEM type picks the first parser
// tried; the others follow, since some tools label keys loosely.
func parseKeyDER(typ string, der []byte) (stdcrypto.Signer, error) {
	type parser func([]byte) (any, error)
	pkcs8 := x509.ParsePKCS8PrivateKey
	pkcs1 := func(d []byte) (any, error) { return x509.ParsePKCS1PrivateKey(d) }
	sec1 := func(d []byte) (any, error) { return x509.ParseECPrivateKey(d) }
	order := []parser{pkcs8, pkcs1, sec1}
	switch typ {
	case pemPKCS1:
		order = []parser{pkcs1, pkcs8, sec1}
	case pemSEC1:
		order = []parser{sec1, pkcs8, pkcs1}
	}
	var first error
	for _, p := range order {
		k, err := p(der)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(stdcrypto.Signer), nil
		default:
			return nil, fmt.Errorf("unsupported key type %T (want RSA, ECDSA or Ed25519)", k)
		}
	}
	return nil, first
}

// publicKeyMatches reports whether two public keys are equal.
func publicKeyMatches(a, b stdcrypto.PublicKey) bool {
	e, ok := a.(interface {
		Equal(stdcrypto.PublicKey) bool
	})
	return ok && e.Equal(b)
}
