package quictun

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
)

// Application error codes sent in QUIC CONNECTION_CLOSE frames
// (docs/PROTOCOL.md).
const (
	// CloseNormal: an orderly close (a client or server stopping).
	CloseNormal quic.ApplicationErrorCode = 0x0
	// CloseReplaced: a newer connection of the same identity replaced this one.
	CloseReplaced quic.ApplicationErrorCode = 0x1
	// CloseProtocol: the peer broke the control protocol.
	CloseProtocol quic.ApplicationErrorCode = 0x2
	// CloseRefused: the server refused the client (see the error message
	// sent on the control stream before the close).
	CloseRefused quic.ApplicationErrorCode = 0x3
	// CloseShutdown: the server is shutting down; clients should redial.
	CloseShutdown quic.ApplicationErrorCode = 0x4
	// CloseRevoked: the client's certificate is revoked; redialling with it
	// cannot succeed.
	CloseRevoked quic.ApplicationErrorCode = 0x5
	// CloseKicked: the server's administrator closed this session
	// (Server.Kick); the client redials as after a server restart.
	CloseKicked quic.ApplicationErrorCode = 0x6
)

// PermanentError is an error a redial cannot fix: the client gives up
// and returns it from Run. The message says what to do.
type PermanentError struct {
	Msg string
	Err error
}

// Error implements error.
func (e *PermanentError) Error() string {
	switch {
	case e.Err == nil:
		return e.Msg
	case e.Msg == "":
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the underlying error, if any.
func (e *PermanentError) Unwrap() error { return e.Err }

// ErrRevoked is returned (inside a PermanentError) by Client.Run when the
// server closed the connection because the client's certificate is
// revoked.
var ErrRevoked = errors.New("the server says our certificate is revoked: ask the administrator for a new one")

// ErrServerBusy is returned, wrapped with quic-go's error, by a dial that
// the server refused with CONNECTION_REFUSED: too many handshakes at once
// (its accept queue full, or too many in flight from our address), or the
// server stopping. The client redials after its backoff.
var ErrServerBusy = errors.New("the server is busy (too many clients connecting at once) and refused the connection")

// busyError wraps err with ErrServerBusy if the server refused the
// connection at the QUIC level, and returns it as is otherwise.
func busyError(err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && te.ErrorCode == quic.ConnectionRefused && !errors.Is(err, ErrServerBusy) {
		return fmt.Errorf("%w: %w", ErrServerBusy, err)
	}
	return err
}

// TLS alerts (RFC 8446) that say the server did not accept our certificate.
var certAlerts = map[uint8]string{
	42:  "bad certificate",
	43:  "unsupported certificate",
	44:  "certificate revoked",
	45:  "certificate expired",
	46:  "certificate unknown",
	48:  "unknown certificate authority",
	49:  "access denied",
	116: "certificate required",
}

// classifyDialError turns a dial error into a PermanentError when retrying
// cannot help (certificates on either side), and otherwise returns it as
// is. req is what the dial learned of the server's certificate request
// (nil: nothing).
func classifyDialError(err error, server string, req *certRequest) error {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return err
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		alert := uint8(te.ErrorCode - 0x100)
		if !te.Remote {
			// We refused the server's certificate.
			return &PermanentError{Err: explainServerCertError(err, server, time.Now())}
		}
		if what, ok := certAlerts[alert]; ok {
			return &PermanentError{Err: certRejected(server, alert, what, req, time.Now())}
		}
		return &PermanentError{Msg: fmt.Sprintf("TLS handshake with %s failed (alert %d)", server, alert), Err: err}
	}
	if busy := busyError(err); busy != err {
		return busy
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote {
		switch quic.ApplicationErrorCode(ae.ErrorCode) {
		case CloseRefused:
			return &PermanentError{Msg: "server refused: " + ae.ErrorMessage}
		case CloseRevoked:
			return &PermanentError{Err: ErrRevoked}
		}
	}
	return err
}

// certRejected builds the CertRejectedError for the server's alert, with
// what the dial learned (req) and our own view of our certificate at now.
func certRejected(server string, alert uint8, what string, req *certRequest, now time.Time) *CertRejectedError {
	e := &CertRejectedError{Server: server, Alert: what, Code: alert, Now: now}
	acceptable, sent, _ := req.snapshot()
	e.ServerAccepts = acceptable
	if sent == nil {
		sent = req.fallback()
	}
	if sent != nil {
		e.Name, e.SignedBy = qcrypto.SubjectName(sent.Subject), qcrypto.SubjectName(sent.Issuer)
		e.NotBefore, e.NotAfter = sent.NotBefore, sent.NotAfter
	}
	return e
}

// CertRejectedError: the server rejected our certificate with a TLS
// alert. Returned (inside a PermanentError) by Client.Run. Its message
// says why as precisely as the alert and our own certificate allow: the
// server answers a certificate that has expired and one that is not valid
// yet with the same alert (certificate_expired: "expired or not currently
// valid"), so which of the two it is comes from our clock.
type CertRejectedError struct {
	Server string
	Alert  string // the alert's description, e.g. "unknown certificate authority"
	// Code is the TLS alert (crypto.AlertCertificateExpired, …).
	Code uint8
	// ServerAccepts names the CAs the server asked for certificates of;
	// nil if it named none.
	ServerAccepts []string
	// Name and SignedBy are our certificate's subject and issuer, and
	// NotBefore/NotAfter its validity (zero if we do not know which
	// certificate was sent).
	Name, SignedBy      string
	NotBefore, NotAfter time.Time
	// Now is when the refusal arrived, by our clock.
	Now time.Time
}

// Error implements error.
func (e *CertRejectedError) Error() string {
	known := !e.NotAfter.IsZero()
	switch tls.AlertError(e.Code) {
	case qcrypto.AlertCertificateExpired:
		switch {
		case known && e.Now.After(e.NotAfter):
			return fmt.Sprintf("the server %s refused our certificate %q: it expired on %s: get a new certificate", e.Server, e.Name, fmtCertTime(e.NotAfter))
		case known && e.Now.Before(e.NotBefore):
			return fmt.Sprintf("the server %s refused our certificate %q: it is not yet valid (valid from %s, now %s): check this machine's clock, or wait until then",
				e.Server, e.Name, fmtCertTime(e.NotBefore), fmtCertTime(e.Now))
		case known:
			return fmt.Sprintf("the server %s says our certificate %q (or its CA) has expired or is not yet valid, though by this machine's clock it is valid from %s until %s: check the server's clock, and whether the CA %q has expired",
				e.Server, e.Name, fmtCertTime(e.NotBefore), fmtCertTime(e.NotAfter), e.SignedBy)
		}
		return fmt.Sprintf("the server %s says our certificate has expired or is not yet valid: check the clocks, or get a new certificate", e.Server)
	case qcrypto.AlertUnknownCA:
		switch {
		case len(e.ServerAccepts) > 0 && e.SignedBy != "":
			return fmt.Sprintf("the server %s refused our certificate (unknown certificate authority): the server wants certificates from CA %s; ours is signed by %q",
				e.Server, quoteList(e.ServerAccepts), e.SignedBy)
		case e.SignedBy != "":
			return fmt.Sprintf("the server %s refused our certificate (unknown certificate authority): it does not trust the CA that signed ours, %q", e.Server, e.SignedBy)
		}
	case qcrypto.AlertCertificateRequired:
		return fmt.Sprintf("the server %s received no certificate from us (certificate required)", e.Server)
	}
	return fmt.Sprintf("the server %s rejected our certificate (%s): it must be signed by the CA the server trusts, valid now, and made for a client", e.Server, e.Alert)
}

// quoteList renders names as "a", "b" or "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// fmtCertTime renders a certificate time in messages: UTC, to the second.
func fmtCertTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// ServerCertProblem says what was wrong with a server's certificate.
type ServerCertProblem int

// The problems ServerCertError reports.
const (
	// ServerCertOther: it could not be verified for another reason.
	ServerCertOther ServerCertProblem = iota
	// ServerCertUnknownAuthority: not signed by the CA the client trusts.
	ServerCertUnknownAuthority
	// ServerCertWrongName: not valid for the name or address dialled.
	ServerCertWrongName
	// ServerCertInvalid: not for a server, or otherwise unusable.
	ServerCertInvalid
	// ServerCertExpired: it (or the CA it chains to) has expired, by our clock.
	ServerCertExpired
	// ServerCertNotYetValid: it (or its CA) is not valid yet, by our clock.
	ServerCertNotYetValid
)

// ServerCertError: the client did not accept the server's certificate.
// Returned (inside a PermanentError) by Client.Run.
type ServerCertError struct {
	Server  string
	Problem ServerCertProblem
	Detail  string // the verifier's words
}

// Error implements error.
func (e *ServerCertError) Error() string {
	switch e.Problem {
	case ServerCertUnknownAuthority:
		return fmt.Sprintf("the certificate of %s is not signed by our CA (%s)", e.Server, e.Detail)
	case ServerCertWrongName:
		return fmt.Sprintf("the certificate of %s is not valid for the dialled name (%s)", e.Server, e.Detail)
	case ServerCertInvalid:
		return fmt.Sprintf("the certificate of %s is not acceptable (%s)", e.Server, e.Detail)
	case ServerCertExpired:
		return fmt.Sprintf("the certificate of %s has expired (%s): it must be renewed, unless this machine's clock is wrong", e.Server, e.Detail)
	case ServerCertNotYetValid:
		return fmt.Sprintf("the certificate of %s is not yet valid (%s): check this machine's clock (and the server's)", e.Server, e.Detail)
	}
	return fmt.Sprintf("could not verify the certificate of %s: %s", e.Server, e.Detail)
}

// ModeMismatchError: the server runs in another mode than the client's
// Mode. Returned (inside a PermanentError) by Client.Run.
type ModeMismatchError struct {
	Server device.Kind // the server's mode
	Client device.Kind // what the client asked for
}

// Error implements error.
func (e *ModeMismatchError) Error() string {
	return fmt.Sprintf("the server runs in %s mode but the client is set to %s mode", e.Server, e.Client)
}

// explainServerCertError says why we did not accept the server's
// certificate (at now, by our clock).
func explainServerCertError(err error, server string, now time.Time) *ServerCertError {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return &ServerCertError{server, ServerCertUnknownAuthority, "x509: certificate signed by unknown authority"}
	case errors.As(err, &hn):
		return &ServerCertError{server, ServerCertWrongName, hn.Error()}
	case errors.As(err, &ci) && ci.Reason == x509.Expired && ci.Cert != nil:
		role := "server"
		if ci.Cert.IsCA {
			role = "CA"
		}
		var ve *qcrypto.ValidityError
		if errors.As(qcrypto.CheckValidity(ci.Cert, role, now), &ve) {
			if ve.NotYetValid() {
				return &ServerCertError{server, ServerCertNotYetValid, ve.Error()}
			}
			return &ServerCertError{server, ServerCertExpired, ve.Error()}
		}
		return &ServerCertError{server, ServerCertInvalid, ci.Error()}
	case errors.As(err, &ci):
		return &ServerCertError{server, ServerCertInvalid, ci.Error()}
	}
	// quic-go may flatten the error into a string; recognise the usual texts.
	s := err.Error()
	switch {
	case strings.Contains(s, "unknown authority"):
		return &ServerCertError{server, ServerCertUnknownAuthority, "x509: certificate signed by unknown authority"}
	case strings.Contains(s, "certificate is valid for"), strings.Contains(s, "doesn't contain any IP SANs"):
		return &ServerCertError{server, ServerCertWrongName, s}
	}
	return &ServerCertError{server, ServerCertOther, s}
}
