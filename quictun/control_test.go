package quictun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
)

func TestControlRoundTrip(t *testing.T) {
	msgs := []*controlMsg{
		{Type: msgHello, Version: 1, Mode: "tap", MTU: 1300, Instance: "00aa"},
		{Type: msgConfig, Version: 1, Mode: "tun", MTU: 1414, Name: "laptop1",
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.11/24"), netip.MustParsePrefix("fd77::11/64")},
			Gateways:  []netip.Addr{netip.MustParseAddr("10.77.0.1")},
			Routes:    []netip.Prefix{netip.MustParsePrefix("192.168.10.0/24")}, KeepaliveMS: 10000, IdleMS: 30000},
		{Type: msgReady},
		{Type: msgError, Code: CodeModeMismatch, Message: "the server runs in tun mode"},
		{Type: msgGoAway, Message: "bye"},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := writeControl(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		got, err := readControl(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if gb, wb := mustJSON(t, got), mustJSON(t, want); gb != wb {
			t.Errorf("round trip:\n got %s\nwant %s", gb, wb)
		}
	}
	if _, err := readControl(&buf); err == nil {
		t.Error("read past the last message succeeded")
	}
}

func mustJSON(t *testing.T, m *controlMsg) string {
	t.Helper()
	var b bytes.Buffer
	if err := writeControl(&b, m); err != nil {
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
		check   func(*controlMsg) bool
	}{
		{"unknown members are ignored", frame(`{"type":"hello","version":2,"future":{"x":1},"mtu":1400}`), "",
			func(m *controlMsg) bool { return m.Type == msgHello && m.Version == 2 && m.MTU == 1400 }},
		{"no type", frame(`{"version":1}`), "no type", nil},
		{"not JSON", frame(`hello`), "decode", nil},
		{"truncated body", frame(`{"type":"ready"}`)[:8], "body", nil},
		{"empty stream", nil, "read control message", nil},
		{"bad address", frame(`{"type":"config","addresses":["10.77.0.300/24"]}`), "decode", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := readControl(bytes.NewReader(tt.in))
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
	m := &controlMsg{Type: msgError, Message: strings.Repeat("x", maxControlMessage)}
	if err := writeControl(io.Discard, m); err == nil {
		t.Fatal("a message over 65535 bytes was written")
	}
}

func TestAssignmentOf(t *testing.T) {
	good := &controlMsg{Type: msgConfig, Version: 1, Mode: "tun", MTU: 1414}
	if _, err := assignmentOf(good); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	for name, m := range map[string]*controlMsg{
		"mode":    {Type: msgConfig, Version: 1, Mode: "bogus", MTU: 1414},
		"version": {Type: msgConfig, Version: 2, Mode: "tun", MTU: 1414},
		"mtu":     {Type: msgConfig, Version: 1, Mode: "tun", MTU: 100},
	} {
		if _, err := assignmentOf(m); err == nil {
			t.Errorf("%s: a bad config was accepted", name)
		}
	}
}

// TestRefusalMessageArrives checks that a refused client receives the
// server's "error" message, not only the CONNECTION_CLOSE's reason
// phrase: Run returns a RemoteError with the code and the server's words.
func TestRefusalMessageArrives(t *testing.T) {
	tests := []struct {
		name     string
		mode     device.Kind
		client   device.Kind
		code     string
		contains string
	}{
		{"mode mismatch", device.TUN, device.TAP, CodeModeMismatch, "the server runs in tun mode but the client asked for tap mode"},
		{"mode mismatch tap", device.TAP, device.TUN, CodeModeMismatch, "the server runs in tap mode but the client asked for tun mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.mode, ServerConfig{Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}})
			tc := startClient(t, s, "client1", "ca", ClientConfig{Mode: tt.client}, false)
			var err error
			select {
			case err = <-tc.err:
			case <-time.After(10 * time.Second):
				t.Fatal("client still running 10s after a refusal")
			}
			var re *RemoteError
			var pe *PermanentError
			if !errors.As(err, &re) || !errors.As(err, &pe) {
				t.Fatalf("Run = %v (%T), want a PermanentError holding a RemoteError", err, err)
			}
			if re.Code != tt.code || !strings.Contains(re.Message, tt.contains) {
				t.Errorf("refusal code %q message %q, want %q containing %q", re.Code, re.Message, tt.code, tt.contains)
			}
			if strings.Contains(re.Message, "--") {
				t.Errorf("refusal %q names a command-line flag; the wire says what is wrong, not which flag", re.Message)
			}
		})
	}
}

// TestConfigErrorsNameFields checks that a bad config is reported by field
// name and condition, never by a command-line flag.
func TestConfigErrorsNameFields(t *testing.T) {
	tlsConf := serverTLS(t)
	v4 := []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}
	tests := []struct {
		name  string
		cfg   ServerConfig
		field string
	}{
		{"no mode", ServerConfig{TLS: tlsConf}, "Mode"},
		{"no tls", ServerConfig{Mode: device.TUN}, "TLS"},
		{"tun without network", ServerConfig{Mode: device.TUN, TLS: tlsConf}, "Networks"},
		{"pool outside", ServerConfig{Mode: device.TUN, TLS: tlsConf, Networks: v4, Pools: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/24")}}, "Pools"},
		{"packet size", ServerConfig{Mode: device.TUN, TLS: tlsConf, Networks: v4, PacketSize: 1000}, "PacketSize"},
		{"mtu too big", ServerConfig{Mode: device.TUN, TLS: tlsConf, Networks: v4, MTU: 9000}, "MTU"},
		{"mtu in tap", ServerConfig{Mode: device.TAP, TLS: tlsConf, MTU: 1400}, "MTU"},
		{"no listen address", ServerConfig{Mode: device.TAP, TLS: tlsConf, Listen: "-"}, "Listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Listen = "127.0.0.1:0"
			if tt.cfg.Listen == "-" {
				cfg.Listen = ""
			}
			_, err := NewServer(cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Fatalf("NewServer = %v, want a ConfigError for %s", err, tt.field)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("%q names a command-line flag", err)
			}
		})
	}
	_, err := NewClient(ClientConfig{Server: "127.0.0.1:1", TLS: tlsConf, SetupDevice: func(Assignment) (device.Device, error) { return nil, nil }, MTU: 100})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "MTU" {
		t.Errorf("NewClient with MTU 100 = %v, want a ConfigError for MTU", err)
	}
}
