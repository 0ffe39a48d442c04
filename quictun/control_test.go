package quictun

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/wire"
)

func TestAssignmentOf(t *testing.T) {
	good := &wire.ControlMsg{Type: wire.MsgConfig, Version: 1, Mode: "tun", MTU: 1414}
	if _, err := assignmentOf(good); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	for name, m := range map[string]*wire.ControlMsg{
		"mode":    {Type: wire.MsgConfig, Version: 1, Mode: "bogus", MTU: 1414},
		"version": {Type: wire.MsgConfig, Version: 2, Mode: "tun", MTU: 1414},
		"mtu":     {Type: wire.MsgConfig, Version: 1, Mode: "tun", MTU: 100},
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
