//go:build ignore

// gen_testdata writes the fixed test certificates of testdata/pki (valid
// 100 years) with this package's own NewCA and Issue. Run it from the
// repository root:
//
//	go run ./crypto/gen_testdata.go
//
// It overwrites the files. The OpenSSL-made set in testdata/pki/openssl has
// its own script, make.sh.
package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	qcrypto "github.com/quictun/quictun/crypto"
)

const (
	dir  = "testdata/pki"
	days = 36500
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "gen_testdata: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	caCert, caKey, err := qcrypto.NewCA(qcrypto.CAOptions{Name: "quictun test CA", Days: days})
	if err != nil {
		return err
	}
	if err := write("ca", caCert, caKey); err != nil {
		return err
	}
	otherCert, otherKey, err := qcrypto.NewCA(qcrypto.CAOptions{Name: "other CA", Days: days})
	if err != nil {
		return err
	}
	if err := write("other-ca", otherCert, otherKey); err != nil {
		return err
	}
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	leaves := []struct {
		file          string
		caCert, caKey []byte
		opts          qcrypto.LeafOptions
	}{
		{"server", caCert, caKey, qcrypto.LeafOptions{Name: "server", Server: true,
			Hosts: []string{"127.0.0.1", "::1", "localhost", "quictun-server", "10.99.0.1"}}},
		{"client1", caCert, caKey, qcrypto.LeafOptions{Name: "client1",
			Addrs:  addrs("10.77.0.11", "fd77::11"),
			Routes: []netip.Prefix{netip.MustParsePrefix("192.168.50.0/24")}}},
		{"client2", caCert, caKey, qcrypto.LeafOptions{Name: "client2", Addrs: addrs("10.77.0.12", "fd77::12")}},
		{"nopool", caCert, caKey, qcrypto.LeafOptions{Name: "nopool"}},
		{"other-client", otherCert, otherKey, qcrypto.LeafOptions{Name: "other-client", Addrs: addrs("10.77.0.13")}},
	}
	for _, l := range leaves {
		l.opts.Days = days
		c, k, err := qcrypto.Issue(l.caCert, l.caKey, l.opts)
		if err != nil {
			return err
		}
		if err := write(l.file, c, k); err != nil {
			return err
		}
	}
	return nil
}

// write writes <dir>/<name>.crt (0644) and .key (0600), replacing them.
func write(name string, certPEM, keyPEM []byte) error {
	if err := qcrypto.WriteFile(filepath.Join(dir, name+".key"), keyPEM, 0o600, true); err != nil {
		return err
	}
	return qcrypto.WriteFile(filepath.Join(dir, name+".crt"), certPEM, 0o644, true)
}
