package quictun

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/quictun/quictun/third_party/quic-go"

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
// cannot help (certificates on either side), and otherwise returns it as is.
func classifyDialError(err error, server string) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		alert := uint8(te.ErrorCode - 0x100)
		if !te.Remote {
			// We refused the server's certificate.
			return &PermanentError{Err: explainServerCertError(err, server)}
		}
		if what, ok := certAlerts[alert]; ok {
			return &PermanentError{Err: &CertRejectedError{Server: server, Alert: what}}
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

// CertRejectedError: the server rejected our certificate with a TLS
// alert. Returned (inside a PermanentError) by Client.Run.
type CertRejectedError struct {
	Server string
	Alert  string // the alert's description, e.g. "unknown certificate authority"
}

// Error implements error.
func (e *CertRejectedError) Error() string {
	return fmt.Sprintf("the server %s rejected our certificate (%s): it must be signed by the CA the server trusts, valid now, and made for a client", e.Server, e.Alert)
}

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
	// ServerCertInvalid: expired, not yet valid, or not for a server.
	ServerCertInvalid
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

// explainServerCertError says why we did not accept the server's certificate.
func explainServerCertError(err error, server string) *ServerCertError {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return &ServerCertError{server, ServerCertUnknownAuthority, "x509: certificate signed by unknown authority"}
	case errors.As(err, &hn):
		return &ServerCertError{server, ServerCertWrongName, hn.Error()}
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
