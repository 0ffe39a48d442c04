package crypto

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// TLS alerts (RFC 8446, section 6.2) a verifier answers a refused
// certificate with.
const (
	AlertBadCertificate     tls.AlertError = 42
	AlertCertificateRevoked tls.AlertError = 44
	// AlertCertificateExpired: "a certificate has expired or is not
	// currently valid" — RFC 8446 has no alert of its own for a
	// certificate that is not valid yet.
	AlertCertificateExpired  tls.AlertError = 45
	AlertUnknownCA           tls.AlertError = 48
	AlertCertificateRequired tls.AlertError = 116
)

// WithAlert returns err (a certificate refusal from a VerifyConnection or
// VerifyPeerCertificate callback) wrapped with the TLS alert that says
// why, as crypto/tls picks it when it verifies a chain itself: unknown_ca
// for an x509.UnknownAuthorityError, certificate_expired for a
// *ValidityError or an x509 "expired" error, certificate_required when no
// certificate was sent, bad_certificate otherwise. An err that already
// carries an alert (tls.AlertError) is returned as it is, and so is nil.
//
// crypto/tls itself answers every callback error with bad_certificate over
// TCP; over QUIC it sends the alert the error carries, so the peer learns
// the reason. The error's text is unchanged.
func WithAlert(err error) error {
	if err == nil {
		return nil
	}
	var a tls.AlertError
	if errors.As(err, &a) {
		return err
	}
	return fmt.Errorf("%w%.0w", err, AlertFor(err))
}

// AlertFor returns the alert WithAlert wraps err with.
func AlertFor(err error) tls.AlertError {
	var a tls.AlertError
	var ve *ValidityError
	var ci x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &a):
		return a
	case errors.Is(err, ErrNoCertificate):
		return AlertCertificateRequired
	case errors.As(err, &ve), errors.As(err, &ci) && ci.Reason == x509.Expired:
		return AlertCertificateExpired
	case errors.As(err, &ua):
		return AlertUnknownCA
	}
	return AlertBadCertificate
}
