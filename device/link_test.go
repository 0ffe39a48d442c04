package device

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestLinkConfigCheck(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		name    string
		cfg     LinkConfig
		wantErr string // empty: valid
	}{
		{name: "empty", cfg: LinkConfig{}},
		{name: "full", cfg: LinkConfig{
			Addrs:  []netip.Prefix{pfx("10.77.0.1/24"), pfx("fd77::1/64")},
			MTU:    1400,
			MAC:    StableMAC("x"),
			Bridge: "br0",
			Routes: []netip.Prefix{pfx("10.78.0.0/16"), pfx("::/0")},
		}},
		{name: "small MTU without IPv6", cfg: LinkConfig{Addrs: []netip.Prefix{pfx("10.0.0.1/24")}, MTU: 576}},
		{name: "negative MTU", cfg: LinkConfig{MTU: -1}, wantErr: "negative"},
		{name: "IPv6 MTU", cfg: LinkConfig{Addrs: []netip.Prefix{pfx("fd77::1/64")}, MTU: 1279}, wantErr: "IPv6 needs an MTU of at least 1280"},
		{name: "invalid address", cfg: LinkConfig{Addrs: []netip.Prefix{{}}}, wantErr: "not a valid"},
		{name: "mapped address", cfg: LinkConfig{Addrs: []netip.Prefix{pfx("::ffff:10.0.0.1/120")}}, wantErr: "IPv4-mapped"},
		{name: "unspecified address", cfg: LinkConfig{Addrs: []netip.Prefix{pfx("0.0.0.0/8")}}, wantErr: "cannot be assigned"},
		{name: "multicast address", cfg: LinkConfig{Addrs: []netip.Prefix{pfx("ff02::1/64")}}, wantErr: "cannot be assigned"},
		{name: "short MAC", cfg: LinkConfig{MAC: net.HardwareAddr{2, 0, 0}}, wantErr: "6-byte"},
		{name: "multicast MAC", cfg: LinkConfig{MAC: net.HardwareAddr{1, 0, 0, 0, 0, 1}}, wantErr: "multicast"},
		{name: "zero MAC", cfg: LinkConfig{MAC: make(net.HardwareAddr, 6)}, wantErr: "all zeros"},
		{name: "bad bridge name", cfg: LinkConfig{Bridge: "a-very-long-bridge-name"}, wantErr: "bridge"},
		{name: "route host bits", cfg: LinkConfig{Routes: []netip.Prefix{pfx("10.78.1.1/16")}}, wantErr: "did you mean 10.78.0.0/16"},
		{name: "invalid route", cfg: LinkConfig{Routes: []netip.Prefix{{}}}, wantErr: "not a valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.check()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("check() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("check() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}
