package quictun

import (
	"time"

	"github.com/quictun/quictun/quictun/internal/wire"
)

// ProtocolVersion is the version of the control protocol and datagram
// format this implementation speaks (docs/PROTOCOL.md). It is the version
// of package wire, which implements the format, repeated here because it
// is part of the core's API and packages outside quictun/ cannot import
// an internal package.
const ProtocolVersion = wire.Version

// refusalLinger bounds how long the server waits, after sending an
// "error" message, for the client to close the connection before closing
// it itself.
const refusalLinger = 2 * time.Second

// Error codes carried by an "error" control message (RemoteError.Code).
const (
	// CodeModeMismatch: the client asked for another mode than the server's.
	CodeModeMismatch = "mode_mismatch"
	// CodeVersion: the server does not speak the client's protocol version.
	CodeVersion = "unsupported_version"
	// CodeNoAddress: the server has no tunnel address for the client.
	CodeNoAddress = "no_address"
	// CodeAddressInUse: the client's address is held by another identity.
	CodeAddressInUse = "address_in_use"
	// CodeProtocol: the client broke the control protocol.
	CodeProtocol = "protocol"
)

// RemoteError is a refusal the peer sent as an "error" control message.
// The client's Run returns it, inside a PermanentError, when the server
// refused it for a reason a retry cannot fix (mode mismatch, no address,
// unsupported version); Code is one of the codes in docs/PROTOCOL.md.
type RemoteError struct {
	Code    string
	Message string
}

// Error implements error.
func (e *RemoteError) Error() string { return "server refused: " + e.Message }
