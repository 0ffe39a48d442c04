package crypto

import (
	stdcrypto "crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Validity defaults, in days.
const (
	// DefaultCADays is how long a CA made by NewCA is valid when
	// CAOptions.Days is 0: ten years.
	DefaultCADays = 3650
	// DefaultLeafDays is how long a certificate made by Issue is valid when
	// LeafOptions.Days is 0: 825 days, the longest that Apple's TLS clients
	// accept for a server certificate.
	DefaultLeafDays = 825
	// DefaultCAName is the CA's CommonName when CAOptions.Name is "".
	DefaultCAName = "quictun CA"
)

// backdate is how far in the past NotBefore is set, so that a peer whose
// clock is a little behind still accepts a certificate made just now.
const backdate = 5 * time.Minute

// CAOptions says what CA NewCA makes.
type CAOptions struct {
	// Name is the CA's subject CommonName; "" means DefaultCAName.
	Name string
	// Days is how long the CA is valid; 0 means DefaultCADays.
	Days int
}

// NewCA makes a self-signed CA: an ECDSA P-256 key, a random 128-bit
// serial, basicConstraints CA:TRUE with pathlen 0 (it signs leaves only),
// KeyUsage CertSign|CRLSign, NotBefore a few minutes in the past. It returns
// the certificate PEM and the PKCS#8 key PEM.
func NewCA(opts CAOptions) (certPEM, keyPEM []byte, err error) {
	if opts.Name == "" {
		opts.Name = DefaultCAName
	}
	if opts.Days == 0 {
		opts.Days = DefaultCADays
	}
	if opts.Days < 0 {
		return nil, nil, fmt.Errorf("new CA: days %d: want a positive number", opts.Days)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("new CA: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("new CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.Name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(0, 0, opts.Days),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("new CA: create certificate: %w", err)
	}
	keyPEM, err = marshalKeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("new CA: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), keyPEM, nil
}

// LeafOptions says what certificate Issue makes.
type LeafOptions struct {
	// Name is the subject CommonName: the identity of the peer. Required.
	Name string
	// Server makes a server certificate (ExtKeyUsage ServerAuth); false
	// makes a client certificate (ExtKeyUsage ClientAuth).
	Server bool
	// Hosts are the names a server is dialled by: IP addresses become IP
	// SANs, the others DNS SANs. At least one is required for a server;
	// none is allowed for a client.
	Hosts []string
	// Addrs are a client's tunnel addresses, written as IP SANs (the
	// address only: the server applies the prefix length of its own
	// network). nil lets the server assign one from its pool. Not allowed
	// for a server.
	Addrs []netip.Addr
	// Routes are networks routed behind a client, written as URI SANs
	// "quictun:route:<prefix>". They must have no host bits set.
	Routes []netip.Prefix
	// Groups are the groups a client belongs to, written as URI SANs
	// "quictun:group:<name>" (see CheckGroupName). Not allowed for a
	// server.
	Groups []string
	// Days is how long the certificate is valid; 0 means DefaultLeafDays.
	// NotAfter is capped at the CA's NotAfter.
	Days int
}

// Issue makes a leaf certificate signed by the CA in caCertPEM/caKeyPEM
// (which may be any CA with an RSA, ECDSA or Ed25519 key, e.g. one made by
// OpenSSL; the key unencrypted): a new ECDSA P-256 key, a random 128-bit
// serial, KeyUsage DigitalSignature, and ExtKeyUsage ServerAuth or
// ClientAuth. It returns the certificate PEM and the PKCS#8 key PEM.
func Issue(caCertPEM, caKeyPEM []byte, opts LeafOptions) (certPEM, keyPEM []byte, err error) {
	caCerts, err := parseCertsPEM(caCertPEM, "CA certificate")
	if err != nil {
		return nil, nil, fmt.Errorf("issue %q: %w", opts.Name, err)
	}
	caKey, err := parseKeyPEM(caKeyPEM, "CA key", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %q: %w", opts.Name, err)
	}
	return issue(caCerts[0], caKey, opts)
}

// IssueBy is Issue with the CA already loaded (by LoadKeyPair, which
// decrypts an encrypted CA key): ca.Leaf and ca.PrivateKey sign.
func IssueBy(ca tls.Certificate, opts LeafOptions) (certPEM, keyPEM []byte, err error) {
	caKey, ok := ca.PrivateKey.(stdcrypto.Signer)
	if ca.Leaf == nil || !ok {
		return nil, nil, fmt.Errorf("issue %q: the CA has no certificate or no signing key loaded", opts.Name)
	}
	return issue(ca.Leaf, caKey, opts)
}

// issue makes the leaf certificate of opts signed by ca with caKey.
func issue(ca *x509.Certificate, caKey stdcrypto.Signer, opts LeafOptions) (certPEM, keyPEM []byte, err error) {
	tmpl, err := leafTemplate(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %q: %w", opts.Name, err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("issue %q: CA certificate %q is not a CA (no basicConstraints CA:TRUE)", opts.Name, ca.Subject.CommonName)
	}
	if !publicKeyMatches(ca.PublicKey, caKey.Public()) {
		return nil, nil, fmt.Errorf("issue %q: the CA key does not belong to the CA certificate %q", opts.Name, ca.Subject.CommonName)
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	if !tmpl.NotAfter.After(time.Now()) {
		return nil, nil, fmt.Errorf("issue %q: the CA %q expired at %v: make a new CA", opts.Name, ca.Subject.CommonName, ca.NotAfter.UTC())
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %q: generate key: %w", opts.Name, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %q: create certificate: %w", opts.Name, err)
	}
	keyPEM, err = marshalKeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %q: %w", opts.Name, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), keyPEM, nil
}

// leafTemplate checks opts and builds the certificate template from them.
func leafTemplate(opts LeafOptions) (*x509.Certificate, error) {
	if strings.TrimSpace(opts.Name) == "" {
		return nil, errors.New("a name is required")
	}
	if opts.Days == 0 {
		opts.Days = DefaultLeafDays
	}
	if opts.Days < 0 {
		return nil, fmt.Errorf("days %d: want a positive number", opts.Days)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.Name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(0, 0, opts.Days),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if opts.Server {
		if len(opts.Hosts) == 0 {
			return nil, errors.New("a server certificate needs at least one host (the name or address clients dial)")
		}
		if len(opts.Addrs) > 0 {
			return nil, errors.New("a server certificate cannot hold tunnel addresses: the server's own tunnel address is part of its configuration, not of its certificate")
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		if len(opts.Hosts) > 0 {
			return nil, errors.New("hosts are for server certificates: a client's tunnel addresses are Addrs")
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range opts.Hosts {
		if a, err := netip.ParseAddr(h); err == nil {
			if a.Zone() != "" {
				return nil, fmt.Errorf("host %q: an address with a zone cannot be in a certificate", h)
			}
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.Unmap().AsSlice()))
			continue
		}
		if err := checkDNSName(h); err != nil {
			return nil, err
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	for _, a := range opts.Addrs {
		a = a.Unmap()
		if err := checkTunnelAddr(a); err != nil {
			return nil, fmt.Errorf("tunnel address: %w", err)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	for _, p := range opts.Routes {
		if _, err := parseRoute(p.String()); err != nil || !p.IsValid() {
			return nil, fmt.Errorf("route %v: want a network prefix with no host bits, like 192.168.50.0/24", p)
		}
		tmpl.URIs = append(tmpl.URIs, routeURI(p))
	}
	if opts.Server && len(opts.Groups) > 0 {
		return nil, errors.New("groups are for client certificates: access rules match the clients' groups")
	}
	for _, g := range opts.Groups {
		if err := CheckGroupName(g); err != nil {
			return nil, err
		}
		tmpl.URIs = append(tmpl.URIs, groupURI(g))
	}
	return tmpl, nil
}

// checkDNSName rejects host names that cannot be a DNS SAN.
func checkDNSName(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("host %q: want an IP address or a DNS name", h)
	}
	for _, label := range strings.Split(strings.TrimPrefix(h, "*."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host %q: want an IP address or a DNS name (empty or overlong label)", h)
		}
		for _, c := range label {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return fmt.Errorf("host %q: want an IP address or a DNS name (bad character %q)", h, c)
			}
		}
	}
	return nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for range 16 {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
	return nil, errors.New("random serial: got zero 16 times")
}

// marshalKeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func marshalKeyPEM(key stdcrypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}
