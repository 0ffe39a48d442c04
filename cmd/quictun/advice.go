package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"syscall"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/quictun"
)

// configFlags names the flag that sets each ServerConfig/ClientConfig
// field a quictun.ConfigError can name.
var configFlags = map[string]string{
	"Networks":       "--ip",
	"Pools":          "--pool",
	"Routes":         "--route",
	"MTU":            "--mtu",
	"PacketSize":     "--packet-size",
	"Server":         "--server",
	"MaxRetries":     "--max-retries",
	"Mode":           "--mode",
	"TLS":            "--cert/--key/--ca",
	"Rules":          "--rule",
	"ClientToClient": "--client-to-client",

	// The TAP switch's policy (tappolicy.go).
	"IsolateClients": "--isolate-clients",
	"PinMACs":        "--pin-macs",
}

// advise turns an error of the core, which speaks of config fields and
// conditions, into the one-line advice about flags a user of this command
// line needs. Errors it does not know pass through unchanged.
func advise(err error) error {
	if err == nil {
		return nil
	}
	var ce *quictun.ConfigError
	var mm *quictun.ModeMismatchError
	var sc *quictun.ServerCertError
	var cr *quictun.CertRejectedError
	var re *quictun.RemoteError
	switch {
	case errors.Is(err, quictun.ErrRevoked):
		// Exit status 2, which the systemd units do not restart: every
		// restart would be refused again.
		return usageError{err}
	case errors.As(err, &ce):
		flag, ok := configFlags[ce.Field]
		if !ok {
			return err
		}
		return usageError{fmt.Errorf("%s: %s", flag, ce.Msg)}
	case errors.As(err, &mm):
		return fmt.Errorf("%w: use --mode %s or leave --mode out", err, mm.Server)
	case errors.As(err, &sc):
		switch sc.Problem {
		case quictun.ServerCertUnknownAuthority:
			return fmt.Errorf("%w: check --ca", err)
		case quictun.ServerCertWrongName:
			return fmt.Errorf("%w: dial a host it names, or set --server-name", err)
		case quictun.ServerCertExpired, quictun.ServerCertNotYetValid:
			if strings.HasPrefix(sc.Detail, "CA ") {
				return fmt.Errorf("%w (--ca)", err) // our own CA, not the server's certificate
			}
		}
	case errors.As(err, &cr):
		switch tls.AlertError(cr.Code) {
		case qcrypto.AlertCertificateExpired:
			return fmt.Errorf("%w (--cert)", err)
		case qcrypto.AlertUnknownCA:
			return fmt.Errorf("%w: give a --cert issued by the CA the server trusts (its --ca)", err)
		}
		return fmt.Errorf("%w: is --cert signed by the CA the server trusts (its --ca), valid, and made for a client?", err)
	case errors.As(err, &re) && re.Code == quictun.CodeModeMismatch:
		return fmt.Errorf("%w: set --mode to the server's mode, or leave --mode out", err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w (--listen)", err)
	}
	return err
}
