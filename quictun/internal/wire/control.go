package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// maxControlMessage bounds one control message (the length prefix is 16 bits).
const maxControlMessage = 65535

// Control message types (the "type" member of every message).
const (
	// MsgHello is the client's first message: what it speaks and wants.
	MsgHello = "hello"
	// MsgConfig is the server's answer to hello: the client's assignment.
	MsgConfig = "config"
	// MsgReady says the client's device is set up; datagrams may flow.
	MsgReady = "ready"
	// MsgError is the server's refusal of hello, with a code and a message.
	MsgError = "error"
	// MsgGoAway says the sender is about to close the connection.
	MsgGoAway = "goaway"
	// MsgRoutes is the server's full list of routes to push, sent after
	// ready whenever it changes; it replaces the list config carried.
	MsgRoutes = "routes"
)

// ControlMsg is the union of all control messages: one struct, so that a
// reader decodes a message before it knows its type, and members a type
// does not use stay empty and are left out. Every message is one JSON
// object preceded by its length as a big-endian uint16. Unknown members
// are ignored, so later versions can add members.
type ControlMsg struct {
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
	Routes      []netip.Prefix `json:"routes,omitempty"` // also in routes; absent: none
	KeepaliveMS int64          `json:"keepalive_ms,omitempty"`
	IdleMS      int64          `json:"idle_timeout_ms,omitempty"`
	Name        string         `json:"name,omitempty"` // the client's identity as the server sees it

	// error / goaway
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// WriteControl writes one length-prefixed control message in a single
// Write, so that a message is never interleaved with another writer's. It
// fails if the message encodes to more than 65535 bytes.
func WriteControl(w io.Writer, m *ControlMsg) error {
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

// ReadControl reads one length-prefixed control message, consuming exactly
// its bytes from r. It fails on a short read, on a body that is not a JSON
// object or gives a member of ControlMsg a value of the wrong kind, and on
// a message without a type. It does not check that the type is known:
// what an unknown type means depends on where in the exchange it arrives.
func ReadControl(r io.Reader) (*ControlMsg, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read control message: %w", err)
	}
	n := binary.BigEndian.Uint16(hdr[:])
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read control message body: %w", err)
	}
	m := new(ControlMsg)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("decode control message: %w", err)
	}
	if m.Type == "" {
		return nil, errors.New("decode control message: no type")
	}
	return m, nil
}
