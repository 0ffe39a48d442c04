package crypto

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// sessionCacheSize is how many resumption tickets a client keeps: one
// server per tunnel, a few spare for reconnects to other addresses.
const sessionCacheSize = 8

// ServerTLSConfig returns the server's TLS configuration: TLS 1.3 only,
// NextProtos [ALPN], the server's certificate, and client certificates
// required and verified against ca (ClientAuth RequireAndVerifyClientCert).
//
// Its VerifyConnection checks the client's leaf again on every handshake,
// resumed ones included (where VerifyPeerCertificate is skipped): it must
// have ExtKeyUsage ClientAuth (or "any", or no ExtKeyUsage at all) and be
// within its validity now (else a *ValidityError says whether it has
// expired or is not valid yet); on a resumed session it must still chain
// to ca, which may have changed since the ticket was issued. Its errors
// carry the TLS alert that says why (WithAlert), which a QUIC client
// receives. Set session ticket keys (see DeriveKey) on the result so that
// a restarted server can resume its clients' sessions.
func ServerTLSConfig(cert tls.Certificate, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPN},
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return WithAlert(verifyClient(cs, ca, time.Now()))
		},
	}
}

// verifyClient is the server's VerifyConnection at time now.
func verifyClient(cs tls.ConnectionState, ca *x509.CertPool, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("client sent %w", ErrNoCertificate)
	}
	leaf := cs.PeerCertificates[0]
	name := leaf.Subject.CommonName
	if !clientUsageOK(leaf) {
		return fmt.Errorf("client certificate %q is not for client authentication (its extended key usage lacks clientAuth)", name)
	}
	if err := CheckValidity(leaf, "client", now); err != nil {
		return err
	}
	if cs.DidResume {
		if err := VerifyChain(cs.PeerCertificates, ca, x509.ExtKeyUsageClientAuth, "client", now); err != nil {
			return fmt.Errorf("resumed session: client certificate %q: %w", name, err)
		}
	}
	return nil
}

// clientUsageOK reports whether cert may authenticate a client: it has
// ExtKeyUsage ClientAuth or Any, or no ExtKeyUsage at all.
func clientUsageOK(cert *x509.Certificate) bool {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// ClientTLSConfig returns the client's TLS configuration: TLS 1.3 only,
// NextProtos [ALPN], the client's certificate, the server verified against
// ca for serverName, and a session cache (LRU of 8) so that reconnects
// resume. serverName may be "": quic-go then takes it from the host that
// is dialled (crypto/tls alone would refuse to verify without one).
//
// The certificate is presented by GetClientCertificate, always; it is
// also the one entry of Certificates (which crypto/tls then ignores), so
// that a reader of the config (the expiry warnings) finds it there.
func ClientTLSConfig(cert tls.Certificate, ca *x509.CertPool, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{ALPN},
		RootCAs:            ca,
		ServerName:         serverName,
		Certificates:       []tls.Certificate{cert},
		ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
		// Always present the configured chain: with Certificates, crypto/tls
		// sends none when the chain does not match the CAs the server
		// names, and the user reads "certificate required" although a
		// certificate was given, while the server cannot say which one it
		// refused.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
	}
}
