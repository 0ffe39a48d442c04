package quictun

import (
	"context"
	"crypto/x509"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	qcrypto "github.com/quictun/quictun/crypto"
)

// ExpiryWarning is how long before a certificate expires that the server
// and the client start warning about it: in the log (once a day per
// certificate), in status (ExpiresSoon) and in the metrics.
const ExpiryWarning = 30 * 24 * time.Hour

// expiryRepeat is how long after a warning about a certificate the next
// one about it comes, while it stays near its expiry.
const expiryRepeat = 24 * time.Hour

// expiryCheckEvery is how often the certificates in use are looked at
// again: hourly, so that each is warned about once a day (within an hour),
// whenever it came near its expiry or connected. A few certificates an
// hour cost nothing.
const expiryCheckEvery = time.Hour

// The kinds of CertificateInfo: whose certificate it is.
const (
	CertServer = "server"
	CertClient = "client"
	CertCA     = "ca"
)

// CertificateInfo describes a certificate an end uses: its own, or a CA
// it verifies its peers against.
type CertificateInfo struct {
	// Kind is CertServer or CertClient (the end's own certificate), or
	// CertCA.
	Kind string
	// Name is the certificate's subject (its CommonName, if it has one).
	Name string
	// Fingerprint is the lower-case hex SHA-256 of the certificate.
	Fingerprint string
	// NotAfter is when it expires.
	NotAfter time.Time
}

// ExpiresSoon reports whether a certificate that expires at notAfter is
// within ExpiryWarning of its expiry at now, or past it. A zero notAfter
// (not known) is not.
func ExpiresSoon(notAfter, now time.Time) bool {
	return !notAfter.IsZero() && notAfter.Sub(now) < ExpiryWarning
}

// DaysLeft returns the days until notAfter at now, rounded up (a
// certificate that expires in 9 days and 23 hours expires "in 10 days");
// 0 or less once it has expired.
func DaysLeft(notAfter, now time.Time) int {
	return int(math.Ceil(notAfter.Sub(now).Hours() / 24))
}

// certificateInfo describes cert as a certificate of kind.
func certificateInfo(kind string, cert *x509.Certificate) CertificateInfo {
	return CertificateInfo{Kind: kind, Name: qcrypto.SubjectName(cert.Subject), Fingerprint: qcrypto.Fingerprint(cert),
		NotAfter: cert.NotAfter}
}

// watchedCerts is an end's own certificate and its CAs, which its expiry
// warnings and Status cover; fixed for the life of the server or client.
type watchedCerts struct {
	own     *x509.Certificate // nil: not known
	ownKind string
	cas     []*x509.Certificate
}

// infos returns a new CertificateInfo slice: the own certificate first,
// then the CAs.
func (w watchedCerts) infos() []CertificateInfo {
	var out []CertificateInfo
	if w.own != nil {
		out = append(out, certificateInfo(w.ownKind, w.own))
	}
	for _, ca := range w.cas {
		out = append(out, certificateInfo(CertCA, ca))
	}
	return out
}

// check has warn look at the own certificate and the CAs.
func (w watchedCerts) check(warn *expiryWarner, now time.Time) {
	if w.own != nil {
		warn.check(w.ownKind, w.own, now)
	}
	for _, ca := range w.cas {
		warn.check(CertCA, ca, now)
	}
}

// expiryWarner logs the certificates within ExpiryWarning of their
// expiry, each at most once per expiryRepeat however often it is
// checked (at every connection of a client, every hour).
type expiryWarner struct {
	log *slog.Logger
	mu  sync.Mutex
	// last is when each certificate (by fingerprint) was last warned
	// about; entries older than expiryRepeat are dropped, so it holds
	// only the certificates warned about within a day. Guarded by mu.
	last map[string]time.Time
}

// check logs a warning about cert (of kind, with attrs added) if it
// expires within ExpiryWarning of now, or an error if it has expired,
// unless one was logged within expiryRepeat. It reports whether it
// logged.
func (w *expiryWarner) check(kind string, cert *x509.Certificate, now time.Time, attrs ...any) bool {
	if !ExpiresSoon(cert.NotAfter, now) {
		return false
	}
	fp := qcrypto.Fingerprint(cert)
	w.mu.Lock()
	if w.last == nil {
		w.last = make(map[string]time.Time)
	}
	for k, t := range w.last {
		if now.Sub(t) >= expiryRepeat {
			delete(w.last, k)
		}
	}
	_, recent := w.last[fp]
	if !recent {
		w.last[fp] = now
	}
	w.mu.Unlock()
	if recent {
		return false
	}
	attrs = append([]any{"kind", kind, "name", qcrypto.SubjectName(cert.Subject), "not_after", cert.NotAfter.UTC(),
		"days_left", DaysLeft(cert.NotAfter, now)}, attrs...)
	if now.After(cert.NotAfter) {
		w.log.Error("certificate has expired", attrs...)
	} else {
		w.log.Warn("certificate expires soon: renew it", attrs...)
	}
	return true
}

// watchExpiry checks the server's certificates now and then every
// expiryCheckEvery until the server stops: its own, the CAs, and those of
// the connected clients (a client is also checked when it connects).
func (s *Server) watchExpiry() {
	defer s.wg.Done()
	s.certs.check(&s.expiry, time.Now())
	t := time.NewTicker(expiryCheckEvery)
	defer t.Stop()
	var arr [64]*session
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			s.certs.check(&s.expiry, now)
			for _, ss := range s.readySessions(arr[:0], nil) {
				s.checkClientExpiry(ss.conn, ss.name, now)
			}
		}
	}
}

// checkClientExpiry checks the certificate of the client on conn.
func (s *Server) checkClientExpiry(conn *quic.Conn, name string, now time.Time) {
	if certs := conn.ConnectionState().TLS.PeerCertificates; len(certs) > 0 {
		s.expiry.check(CertClient, certs[0], now, "peer", name)
	}
}

// watchExpiry checks the client's certificates now and then every
// expiryCheckEvery until ctx is done: its own, the CAs, and the server's
// while connected (which is also checked when the tunnel comes up).
func (c *Client) watchExpiry(ctx context.Context) {
	c.certs.check(&c.expiry, time.Now())
	t := time.NewTicker(expiryCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			c.certs.check(&c.expiry, now)
			if conn := c.conn.Load(); conn != nil {
				c.checkServerExpiry(conn, now)
			}
		}
	}
}

// checkServerExpiry checks the certificate of the server on conn.
func (c *Client) checkServerExpiry(conn *quic.Conn, now time.Time) {
	if certs := conn.ConnectionState().TLS.PeerCertificates; len(certs) > 0 {
		c.expiry.check(CertServer, certs[0], now, "server", c.cfg.Server)
	}
}
