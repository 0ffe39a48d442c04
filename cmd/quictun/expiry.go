package main

import (
	"crypto/x509"
	"log/slog"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
)

// caCerts returns the certificates of --ca, for the core's expiry
// warnings and status (the pool loadTLS built cannot list them). loadTLS
// has read the file already; should a second read fail (the file replaced
// meanwhile), the CAs' expiry is not watched and the log says so.
func caCerts(c *cli.Context, log *slog.Logger) []*x509.Certificate {
	certs, err := qcrypto.LoadCertificates(c.String("ca"))
	if err != nil {
		log.Warn("the CA's expiry is not watched", "ca", c.String("ca"), "err", err)
		return nil
	}
	return certs
}
