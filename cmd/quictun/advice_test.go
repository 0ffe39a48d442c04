package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun"
)

// TestAdvise checks that the core's errors, which name config fields and
// conditions, reach the user as advice that names this CLI's flags.
func TestAdvise(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
		exit int
	}{
		{"no network", &quictun.ConfigError{Field: "Networks", Msg: "a TUN server needs its own tunnel address, e.g. 10.77.0.1/24"},
			"--ip: a TUN server needs its own tunnel address", 2},
		{"pool", &quictun.ConfigError{Field: "Pools", Msg: "10.9.0.0/24 is outside"}, "--pool: 10.9.0.0/24 is outside", 2},
		{"route", &quictun.ConfigError{Field: "Routes", Msg: "192.168.10.1/24 has host bits set"}, "--route: 192.168.10.1/24 has host bits", 2},
		{"mode mismatch", &quictun.PermanentError{Err: &quictun.ModeMismatchError{Server: device.TAP, Client: device.TUN}},
			"use --mode tap or leave --mode out", 1},
		{"unknown CA", &quictun.PermanentError{Err: &quictun.ServerCertError{Server: "s:1", Problem: quictun.ServerCertUnknownAuthority}},
			"not signed by our CA (): check --ca", 1},
		{"wrong name", &quictun.PermanentError{Err: &quictun.ServerCertError{Server: "s:1", Problem: quictun.ServerCertWrongName}},
			"set --server-name", 1},
		{"rejected", &quictun.PermanentError{Err: &quictun.CertRejectedError{Server: "s:1", Alert: "bad certificate"}},
			"is --cert signed by the CA the server trusts (its --ca)", 1},
		{"rejected as not yet valid", &quictun.PermanentError{Err: &quictun.CertRejectedError{Server: "s:1", Alert: "certificate expired", Code: 45,
			Name: "laptop1", NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(48 * time.Hour), Now: time.Now()}},
			"it is not yet valid (valid from", 1},
		{"rejected by another CA", &quictun.PermanentError{Err: &quictun.CertRejectedError{Server: "s:1", Alert: "unknown certificate authority", Code: 48,
			ServerAccepts: []string{"Their CA"}, SignedBy: "Our CA"}},
			`wants certificates from CA "Their CA"; ours is signed by "Our CA": give a --cert issued by`, 1},
		{"server cert expired", &quictun.PermanentError{Err: &quictun.ServerCertError{Server: "s:1", Problem: quictun.ServerCertExpired,
			Detail: `server certificate "vpn" expired on 2026-12-01 10:00:00 UTC`}}, "has expired (server certificate", 1},
		{"our CA expired", &quictun.PermanentError{Err: &quictun.ServerCertError{Server: "s:1", Problem: quictun.ServerCertExpired,
			Detail: `CA certificate "Our CA" expired on 2026-12-01 10:00:00 UTC`}}, "unless this machine's clock is wrong (--ca)", 1},
		{"refused for mode", &quictun.PermanentError{Err: &quictun.RemoteError{Code: quictun.CodeModeMismatch, Message: "the server runs in tun mode"}},
			"set --mode to the server's mode", 1},
		{"revoked", &quictun.PermanentError{Err: quictun.ErrRevoked}, "certificate is revoked", 2},
		{"port in use", fmt.Errorf("listen on :4433: %w", syscall.EADDRINUSE), "(--listen)", 1},
		{"other", fmt.Errorf("something else"), "something else", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := advise(tt.err)
			if !strings.Contains(got.Error(), tt.want) || exitCode(got) != tt.exit {
				t.Errorf("advise = %q (exit %d), want it to contain %q (exit %d)", got, exitCode(got), tt.want, tt.exit)
			}
		})
	}
}
