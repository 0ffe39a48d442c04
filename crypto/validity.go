package crypto

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// ErrNoCertificate is wrapped by the errors of VerifyChain and of the
// server's VerifyConnection (ServerTLSConfig) when the peer sent no
// certificate.
var ErrNoCertificate = errors.New("no certificate")

// ValidityError says that a certificate is used outside its validity
// period: it has expired, or it is not valid yet. Go's x509 reports both
// as one CertificateInvalidError ("has expired or is not yet valid");
// this says which, and when the certificate was or will be valid.
type ValidityError struct {
	// Role says whose certificate it is: "client", "server" or "CA".
	Role string
	// Name is the certificate's subject (its CommonName, if it has one).
	Name string
	// NotBefore and NotAfter are the certificate's validity period.
	NotBefore, NotAfter time.Time
	// Now is the time it was checked at, by the checker's clock.
	Now time.Time
	// Err is the verifier's own error, if it came from one (nil else).
	Err error
}

// NotYetValid reports whether the certificate is not valid yet (rather
// than expired).
func (e *ValidityError) NotYetValid() bool { return e.Now.Before(e.NotBefore) }

// Error implements error.
func (e *ValidityError) Error() string {
	if e.NotYetValid() {
		return fmt.Sprintf("%s certificate %q is not yet valid: valid from %s (now %s)",
			e.Role, e.Name, fmtTime(e.NotBefore), fmtTime(e.Now))
	}
	return fmt.Sprintf("%s certificate %q expired on %s (now %s)", e.Role, e.Name, fmtTime(e.NotAfter), fmtTime(e.Now))
}

// Unwrap returns the verifier's error, if any.
func (e *ValidityError) Unwrap() error { return e.Err }

// fmtTime renders a certificate time for messages: UTC, to the second.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// CheckValidity returns a *ValidityError if cert is not valid at now, else
// nil. role says whose certificate it is ("client", "server", "CA").
func CheckValidity(cert *x509.Certificate, role string, now time.Time) error {
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return validityError(cert, role, now, nil)
	}
	return nil
}

func validityError(cert *x509.Certificate, role string, now time.Time, err error) *ValidityError {
	return &ValidityError{Role: role, Name: SubjectName(cert.Subject), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		Now: now, Err: err}
}

// SubjectName is how messages name a certificate's subject or issuer: its
// CommonName, or the whole name when it has none.
func SubjectName(n pkix.Name) string {
	if n.CommonName != "" {
		return n.CommonName
	}
	return n.String()
}

// NameOfDER is SubjectName for a DER-encoded X.509 name, as a TLS
// CertificateRequest carries the CAs a server accepts; the hex of the
// bytes if they do not parse.
func NameOfDER(der []byte) string {
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdn); err != nil || len(rest) > 0 {
		return fmt.Sprintf("%x", der)
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return SubjectName(n)
}

// VerifyChain verifies a peer's chain (leaf first, the rest taken as
// intermediates) against roots at now for usage, as crypto/tls does. role
// names the leaf's holder ("client", "server") in a *ValidityError: when a
// certificate of the chain is outside its validity period, the error is
// one, saying which certificate and whether it has expired or is not yet
// valid, and it wraps the x509.CertificateInvalidError (so crypto/tls
// would answer it with the alert certificate_expired).
func VerifyChain(certs []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, role string, now time.Time) error {
	if len(certs) == 0 {
		return fmt.Errorf("%s sent %w", role, ErrNoCertificate)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) && ci.Reason == x509.Expired && ci.Cert != nil {
		r := role
		if ci.Cert != certs[0] && ci.Cert.IsCA {
			r = "CA"
		}
		return validityError(ci.Cert, r, now, err)
	}
	return err
}
