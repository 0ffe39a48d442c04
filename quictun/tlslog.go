package quictun

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
)

// logRefusals returns a copy of a server's TLS config under which every
// client certificate the handshake refuses is counted in st and logged
// with the client's address and why ("client refused"). A refused handshake never reaches
// Accept, so without this an operator sees nothing of it.
//
// Go's own verification of the chain (RequireAndVerifyClientCert) fails
// before any callback runs, so when base asks for it, the copy only
// requests a certificate and verifies the chain itself, first thing in
// VerifyConnection, the way crypto/tls would (roots base.ClientCAs, the
// peer's other certificates as intermediates, clientAuth usage). The
// client then reads TLS alert "bad certificate" for every refusal, where
// crypto/tls would have sent "unknown certificate authority" or
// "certificate expired"; the server's log line says which.
func logRefusals(base *tls.Config, log *slog.Logger, rl *rateLimiter, st *serverStats) *tls.Config {
	out := base.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if base.GetConfigForClient != nil {
			return base.GetConfigForClient(hello)
		}
		remote := "unknown"
		if hello.Conn != nil && hello.Conn.RemoteAddr() != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		c := base.Clone()
		verifyChain := c.ClientAuth == tls.RequireAndVerifyClientCert
		if verifyChain {
			// Ask, do not require: a client without a certificate is then
			// refused (and logged) in VerifyConnection too.
			c.ClientAuth = tls.RequestClientCert
		}
		next := base.VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			var err error
			if verifyChain && !cs.DidResume {
				err = qcrypto.VerifyChain(cs.PeerCertificates, base.ClientCAs, x509.ExtKeyUsageClientAuth, "client", time.Now())
			}
			if err == nil && next != nil {
				err = next(cs)
			}
			if err != nil {
				st.certRefused(cs.PeerCertificates, err, time.Now())
			}
			if err != nil && rl.allow(time.Now()) {
				name := ""
				if len(cs.PeerCertificates) > 0 {
					name = cs.PeerCertificates[0].Subject.CommonName
				}
				log.Warn("client refused", "remote", remote, "peer", name, "reason", "certificate", "err", err)
			}
			return qcrypto.WithAlert(err)
		}
		return c, nil
	}
	return out
}
