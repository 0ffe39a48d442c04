package quictun

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// ProtocolVersion is the version of the control protocol and datagram
// format this implementation speaks (docs/PROTOCOL.md).
const ProtocolVersion = 1

// maxControlMessage bounds one control message (the length prefix is 16 bits).
const maxControlMessage = 65535

// Control message types (the "type" member of every message).
const (
	msgHello  = "hello"
	msgConfig = "config"
	msgReady  = "ready"
	msgError  = "error"
	msgGoAway = "goaway"
)

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

// controlMsg is the union of all control messages. Every message is one
// JSON object preceded by its length as a big-endian uint16. Unknown members
// are ignored, so later versions can add members.
type controlMsg struct {
	Type    string `json:"type"`
	Version int    `json:"version,omitempty"`

	// hello (client → server)
	Instance string `json:"instance,omitempty"` // random per client process, hex

	// hello: the mode the client insists on ("" = whatever the server runs).
	// config: the mode the server runs.
	Mode string `json:"mode,omitempty"`
	// hello: the largest packet the client can take (capped by its MTU setting), 0 = no limit.
	// config: the device MTU the client must use.
	MTU int `json:"mtu,omitempty"`

	// config (server → client)
	Addresses   []netip.Prefix `json:"addresses,omitempty"`
	Gateways    []netip.Addr   `json:"gateways,omitempty"`
	Routes      []netip.Prefix `json:"routes,omitempty"`
	KeepaliveMS int64          `json:"keepalive_ms,omitempty"`
	IdleMS      int64          `json:"idle_timeout_ms,omitempty"`
	Name        string         `json:"name,omitempty"` // the client's identity as the server sees it

	// error / goaway
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// writeControl writes one length-prefixed control message.
func writeControl(w io.Writer, m *controlMsg) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	if len(body) > maxControlMessage {
		return fmt.Errorf("encode %s message: %d bytes exceeds %d", m.Type, len(body), maxControlMessage)
	}
	buf := make([]byte, 2+len(body))
	binary.BigEndian.PutUint16(buf, uint16(len(body)))
	copy(buf[2:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	return nil
}

// readControl reads one length-prefixed control message.
func readControl(r io.Reader) (*controlMsg, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read control message: %w", err)
	}
	n := binary.BigEndian.Uint16(hdr[:])
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read control message body: %w", err)
	}
	m := new(controlMsg)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("decode control message: %w", err)
	}
	if m.Type == "" {
		return nil, errors.New("decode control message: no type")
	}
	return m, nil
}

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
