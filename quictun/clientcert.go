package quictun

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"sync"

	qcrypto "github.com/quictun/quictun/crypto"
)

// certRequest is what one dial learned when the server asked for our
// certificate: the CAs it accepts and the certificate we sent. The
// handshake fills it in on crypto/tls's goroutine; the dial's error is
// explained from it afterwards.
type certRequest struct {
	mu sync.Mutex
	// acceptable names the CAs the server accepts, as its certificate
	// request listed them; nil if it named none (or never asked, as on a
	// resumed session). Guarded by mu.
	acceptable []string
	// sent is the leaf we presented; nil if none was asked for. Guarded by mu.
	sent *x509.Certificate
	// mismatch: the server named CAs and none of them signed our chain.
	// Guarded by mu.
	mismatch bool
	// own is our configured certificate, for a refusal that came without a
	// certificate request (a resumed session); set at creation.
	own *x509.Certificate
}

// fallback returns our configured certificate.
func (r *certRequest) fallback() *x509.Certificate {
	if r == nil {
		return nil
	}
	return r.own
}

// snapshot returns copies of the fields.
func (r *certRequest) snapshot() (acceptable []string, sent *x509.Certificate, mismatch bool) {
	if r == nil {
		return nil, nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.acceptable...), r.sent, r.mismatch
}

// withCertRequest returns a copy of the client's TLS config for one dial
// that records in req what the server asks for and sends our certificate
// whatever CAs it names (crypto/tls, given only Certificates, would send
// none when they do not match: the user would read "certificate required"
// although a certificate was given). When the server names CAs and none of
// them signed our chain, the first such dial logs a warning naming both,
// since the handshake is then most likely refused. The copy shares base's
// session cache, so resumption still works.
func (c *Client) withCertRequest(base *tls.Config, req *certRequest) *tls.Config {
	out := base.Clone()
	get := base.GetClientCertificate
	out.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		var cert *tls.Certificate
		switch {
		case get != nil:
			var err error
			if cert, err = get(cri); err != nil {
				return nil, err
			}
		case len(base.Certificates) > 0:
			cert = &base.Certificates[0]
		}
		if cert == nil {
			cert = &tls.Certificate{}
		}
		leaf, chain := chainOf(cert)
		names := make([]string, len(cri.AcceptableCAs))
		for i, der := range cri.AcceptableCAs {
			names[i] = qcrypto.NameOfDER(der)
		}
		mismatch := len(cri.AcceptableCAs) > 0 && len(chain) > 0 && !signedByOneOf(chain, cri.AcceptableCAs)
		req.mu.Lock()
		req.acceptable, req.sent, req.mismatch = names, leaf, mismatch
		req.mu.Unlock()
		if mismatch && c.warnedCA.CompareAndSwap(false, true) {
			c.log.Warn("our certificate is not signed by a CA the server accepts; the server will likely refuse it",
				"server", c.cfg.Server, "server_accepts", quoteList(names), "ours_signed_by", qcrypto.SubjectName(leaf.Issuer))
		}
		return cert, nil
	}
	return out
}

// chainOf returns cert's leaf and its whole chain, parsed (nil, nil if it
// holds none that parses).
func chainOf(cert *tls.Certificate) (*x509.Certificate, []*x509.Certificate) {
	var chain []*x509.Certificate
	for i, der := range cert.Certificate {
		if i == 0 && cert.Leaf != nil {
			chain = append(chain, cert.Leaf)
			continue
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			break
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, nil
	}
	return chain[0], chain
}

// signedByOneOf reports whether a certificate of chain is issued by (or
// is) one of the CAs named by the DER subjects in cas, as crypto/tls
// matches a chain against a certificate request.
func signedByOneOf(chain []*x509.Certificate, cas [][]byte) bool {
	for _, c := range chain {
		for _, ca := range cas {
			if bytes.Equal(c.RawIssuer, ca) || bytes.Equal(c.RawSubject, ca) {
				return true
			}
		}
	}
	return false
}

// ownLeaf returns the leaf of the first certificate in cfg.Certificates
// (crypto.ClientTLSConfig and ServerTLSConfig put this end's there), or nil.
func ownLeaf(cfg *tls.Config) *x509.Certificate {
	if cfg == nil || len(cfg.Certificates) == 0 {
		return nil
	}
	leaf, _ := chainOf(&cfg.Certificates[0])
	return leaf
}
