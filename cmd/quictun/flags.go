package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
)

// devFlag returns --dev, or the default name for mode, checked.
func devFlag(c *cli.Context, mode device.Kind) (string, error) {
	name := c.String("dev")
	if name == "" {
		name = "qt0"
		if mode == device.TAP {
			name = "qtap0"
		}
	}
	if err := device.CheckName(name); err != nil {
		return "", usageError{fmt.Errorf("--dev: %w", err)}
	}
	return name, nil
}

// prefixesFlag parses a repeatable CIDR flag. masked requires a network
// (no host bits), as for --pool and --route.
func prefixesFlag(c *cli.Context, flag string, masked bool) ([]netip.Prefix, error) {
	out, err := parsePrefixes(c.StringSlice(flag), masked)
	if err != nil {
		return nil, usageError{fmt.Errorf("--%s %w", flag, err)}
	}
	return out, nil
}

// parsePrefixes parses a list of values of a CIDR flag (or config key),
// as parsePrefix does each; nil for none.
func parsePrefixes(ss []string, masked bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := parsePrefix(s, masked)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePrefix parses one value of a CIDR flag (or config key); its errors
// start with the value, for the caller to put the flag or key in front.
func parsePrefix(s string, masked bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want an address with prefix length, e.g. 10.77.0.1/24 or fd77::1/64", s)
	}
	if masked && p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// loadTLS loads --cert, --key and --ca and builds the TLS config. An
// encrypted --key is decrypted with the passphrase of --key-passphrase-file
// or, without it, asked on the terminal. A --key open to others than its
// owner is refused on a server, whose key every client trusts, and only
// warned about on a client, whose key speaks for one identity.
func loadTLS(c *cli.Context, server bool, serverName string) (tls.Certificate, *tls.Config, error) {
	if err := qcrypto.CheckKeyFileMode(c.String("key")); err != nil {
		if server {
			return tls.Certificate{}, nil, usageError{fmt.Errorf("--key: %w", err)}
		}
		slog.Warn("the private key of --key is open to others", "err", err)
	}
	cert, err := qcrypto.LoadKeyPair(c.String("cert"), c.String("key"), passphraseSource(c, keyPassphraseFileFlag))
	if err != nil {
		return tls.Certificate{}, nil, usageError{err}
	}
	pool, err := qcrypto.LoadCAPool(c.String("ca"))
	if err != nil {
		return tls.Certificate{}, nil, usageError{err}
	}
	if server {
		return cert, qcrypto.ServerTLSConfig(cert, pool), nil
	}
	return cert, qcrypto.ClientTLSConfig(cert, pool, serverName), nil
}
