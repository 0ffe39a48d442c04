package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestControlRoundTrip(t *testing.T) {
	msgs := []*ControlMsg{
		{Type: MsgHello, Version: 1, Mode: "tap", MTU: 1300, Instance: "00aa"},
		{Type: MsgConfig, Version: 1, Mode: "tun", MTU: 1414, Name: "laptop1",
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.11/24"), netip.MustParsePrefix("fd77::11/64")},
			Gateways:  []netip.Addr{netip.MustParseAddr("10.77.0.1")},
			Routes:    []netip.Prefix{netip.MustParsePrefix("192.168.10.0/24")}, KeepaliveMS: 10000, IdleMS: 30000},
		{Type: MsgReady},
		{Type: MsgError, Code: "mode_mismatch", Message: "the server runs in tun mode"},
		{Type: MsgGoAway, Message: "bye"},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteControl(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		got, err := ReadControl(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if gb, wb := mustJSON(t, got), mustJSON(t, want); gb != wb {
			t.Errorf("round trip:\n got %s\nwant %s", gb, wb)
		}
	}
	if _, err := ReadControl(&buf); err == nil {
		t.Error("read past the last message succeeded")
	}
}

func mustJSON(t *testing.T, m *ControlMsg) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteControl(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.String()[2:]
}

// frame returns body with its 16-bit length prefix.
func frame(body string) []byte {
	b := make([]byte, 2, 2+len(body))
	binary.BigEndian.PutUint16(b, uint16(len(body)))
	return append(b, body...)
}

func TestControlDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantErr string
		check   func(*ControlMsg) bool
	}{
		{"unknown members are ignored", frame(`{"type":"hello","version":2,"future":{"x":1},"mtu":1400}`), "",
			func(m *ControlMsg) bool { return m.Type == MsgHello && m.Version == 2 && m.MTU == 1400 }},
		{"no type", frame(`{"version":1}`), "no type", nil},
		{"not JSON", frame(`hello`), "decode", nil},
		{"truncated body", frame(`{"type":"ready"}`)[:8], "body", nil},
		{"empty stream", nil, "read control message", nil},
		{"bad address", frame(`{"type":"config","addresses":["10.77.0.300/24"]}`), "decode", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadControl(bytes.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(m) {
				t.Errorf("decoded %+v", m)
			}
		})
	}
}

func TestControlTooLarge(t *testing.T) {
	m := &ControlMsg{Type: MsgError, Message: strings.Repeat("x", maxControlMessage)}
	if err := WriteControl(io.Discard, m); err == nil {
		t.Fatal("a message over 65535 bytes was written")
	}
}
