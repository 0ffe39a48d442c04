package main

import (
	"bytes"
	stdcrypto "crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
)

// crlName is the CRL's file name in a --dir, where easy-rsa keeps its
// CRL too.
const crlName = "crl.pem"

func certRevokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "revoke",
		Usage:     "revoke a certificate: add it to <dir>/crl.pem, signed by <dir>/ca.*",
		UsageText: "quictun cert revoke --dir pki (--name NAME | --cert FILE | --serial HEX) [--reason REASON] [--days N]",
		Description: `Adds the certificate's serial number to the CRL <dir>/crl.pem (made if
missing; an existing one is read, checked against the CA, and signed again
with its entries kept and its CRL number one higher). The file is replaced
atomically. A server running with --crl <dir>/crl.pem notices the new file
within a second and closes the revoked client's session; the client exits
saying its certificate is revoked, and is refused from then on, resumed
sessions too. Copy the file to the server if it runs elsewhere.

The certificate is named by --name (<dir>/<name>.crt), --cert FILE, or
--serial HEX (as cert show or openssl x509 -serial print it) when the
certificate itself is gone. Revoking a certificate twice changes nothing.

Reasons (RFC 5280): ` + strings.Join(qcrypto.RevocationReasonNames(), ", ") + `.
Examples:
  quictun cert revoke --dir pki --name laptop1 --reason keyCompromise
  quictun cert revoke --dir pki --serial 3f:a1:...:07 --reason cessationOfOperation
  openssl crl -in pki/crl.pem -text -noout     # what the CRL lists`,
		Flags: []cli.Flag{
			dirFlag(),
			&cli.StringFlag{Name: "name", EnvVars: certEnv("name"),
				Usage: "revoke <dir>/`NAME`.crt (the name given to cert issue)"},
			&cli.StringFlag{Name: "cert", EnvVars: certEnv("cert"), TakesFile: true,
				Usage: "revoke the certificate in this PEM `FILE` (it must be signed by <dir>/ca.crt)"},
			&cli.StringFlag{Name: "serial", EnvVars: certEnv("serial"),
				Usage: "revoke the certificate with this serial number, in `HEX` (colons allowed)"},
			&cli.StringFlag{Name: "reason", Value: qcrypto.ReasonUnspecified.String(), EnvVars: certEnv("reason"),
				Usage: "why, as RFC 5280 names it: keyCompromise (a stolen laptop), superseded, cessationOfOperation, affiliationChanged, …"},
			crlDaysFlag(),
			caPassphraseFlag(),
		},
		Action: certRevoke,
	}
}

func certCRLCommand() *cli.Command {
	return &cli.Command{
		Name:      "crl",
		Usage:     "(re)write <dir>/crl.pem, the CA-signed list of revoked certificates",
		UsageText: "quictun cert crl --dir pki [--days N]",
		Description: `Signs <dir>/crl.pem anew with the CA in <dir>: the same entries (none for
a new one), a CRL number one higher, thisUpdate now and nextUpdate --days
from now. A server warns about a CRL past its nextUpdate (and still enforces
it): run this before then, e.g. from a monthly timer, and copy the file to
the server. It lists what the CRL holds.
Examples:
  quictun cert crl --dir pki --days 30
  openssl crl -in pki/crl.pem -text -noout     # what the CRL lists`,
		Flags:  []cli.Flag{dirFlag(), crlDaysFlag(), caPassphraseFlag()},
		Action: certCRL,
	}
}

// crlDaysFlag is --days of cert revoke and cert crl.
func crlDaysFlag() cli.Flag {
	return &cli.IntFlag{Name: "days", Value: qcrypto.DefaultCRLDays, EnvVars: certEnv("days"),
		Usage: "how many days the CRL is current (its nextUpdate); sign it again before then"}
}

func certRevoke(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("cert revoke takes no arguments, got %q: use --name, --cert or --serial", c.Args().Slice())}
	}
	n := 0
	for _, f := range []string{"name", "cert", "serial"} {
		if c.String(f) != "" {
			n++
		}
	}
	if n != 1 {
		return usageError{errors.New("say which certificate to revoke with exactly one of --name NAME, --cert FILE or --serial HEX")}
	}
	if c.Int("days") <= 0 {
		return usageError{fmt.Errorf("--days %d: want a positive number of days", c.Int("days"))}
	}
	reason, err := qcrypto.ParseRevocationReason(c.String("reason"))
	if err != nil {
		return usageError{fmt.Errorf("--reason: %w", err)}
	}
	dir := c.String("dir")
	ca, err := openCA(c, dir)
	if err != nil {
		return err
	}
	serial, what, err := revokeTarget(c, dir, ca.cert.Leaf)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, crlName)
	prev, err := readOwnCRL(file, ca.cert.Leaf)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if e := qcrypto.FindRevoked(prev, serial); e != nil {
		fmt.Fprintf(w, "%s is already revoked in %s (since %s, reason %s): nothing changed\n",
			what, file, e.RevocationTime.UTC().Format(time.RFC3339), qcrypto.RevocationReason(e.ReasonCode))
		return nil
	}
	crl, err := writeCRL(file, ca, qcrypto.CRLOptions{
		Previous: prev, Revoke: []qcrypto.Revocation{{Serial: serial, Reason: reason}}, Days: c.Int("days"),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "revoked %s, reason %s\nwrote %s: %s\n", what, reason, file, crlSummary(crl))
	fmt.Fprintf(w, "next: a server running with --crl %s refuses it within a second; copy the file to the server if it runs elsewhere\n", file)
	return nil
}

func certCRL(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("cert crl takes no arguments, got %q: use --dir and --days", c.Args().Slice())}
	}
	if c.Int("days") <= 0 {
		return usageError{fmt.Errorf("--days %d: want a positive number of days", c.Int("days"))}
	}
	dir := c.String("dir")
	ca, err := openCA(c, dir)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, crlName)
	prev, err := readOwnCRL(file, ca.cert.Leaf)
	if err != nil {
		return err
	}
	crl, err := writeCRL(file, ca, qcrypto.CRLOptions{Previous: prev, Days: c.Int("days")})
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s: %s\n", file, crlSummary(crl))
	listCRL(w, dir, crl)
	return nil
}

// revokeTarget returns the serial that --name, --cert or --serial names
// and how to call it in messages. A certificate must be one the CA in dir
// signed, and not the CA itself.
func revokeTarget(c *cli.Context, dir string, ca *x509.Certificate) (*big.Int, string, error) {
	if s := c.String("serial"); s != "" {
		serial, err := parseSerial(s)
		if err != nil {
			return nil, "", usageError{fmt.Errorf("--serial %q: %w", s, err)}
		}
		return serial, "serial " + fmtSerial(serial), nil
	}
	file := c.String("cert")
	if name := c.String("name"); name != "" {
		if err := checkCertName(name); err != nil {
			return nil, "", usageError{err}
		}
		file = filepath.Join(dir, name+".crt")
	}
	certs, err := qcrypto.LoadCertificates(file)
	if err != nil {
		return nil, "", usageError{err}
	}
	cert := certs[0]
	if cert.IsCA {
		return nil, "", usageError{fmt.Errorf("%s is a CA certificate: a CRL cannot revoke its own CA; make a new CA and new certificates instead", file)}
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return nil, "", usageError{fmt.Errorf("%s (issuer %q) is not signed by the CA in %s (%q): revoke it with the CA that issued it", file, cert.Issuer.String(), dir, ca.Subject.String())}
	}
	return cert.SerialNumber, fmt.Sprintf("%q (%s, serial %s)", cert.Subject.CommonName, file, fmtSerial(cert.SerialNumber)), nil
}

// parseSerial parses a serial number in hex: "3fa1…", "0x3fa1…", or with
// colons or spaces as OpenSSL prints them.
func parseSerial(s string) (*big.Int, error) {
	h := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || h == "" {
		return nil, errors.New("want the serial number in hex, as `quictun cert show` or `openssl x509 -noout -serial` prints it")
	}
	if n.Sign() <= 0 {
		return nil, errors.New("want a positive serial number")
	}
	return n, nil
}

// fmtSerial writes a serial as cert show does: lower-case hex.
func fmtSerial(n *big.Int) string { return n.Text(16) }

// readOwnCRL reads the CRL in file, checked against ca; nil if there is
// none yet.
func readOwnCRL(file string, ca *x509.Certificate) (*x509.RevocationList, error) {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	crl, err := qcrypto.LoadCRL(file, []*x509.Certificate{ca})
	if err != nil {
		return nil, usageError{fmt.Errorf("%w (move it away to start a new CRL)", err)}
	}
	return crl, nil
}

// writeCRL signs a CRL with ca as opts says, writes it to file (mode
// 0644, replaced atomically, so a server watching the file never reads
// half of it) and returns it parsed.
func writeCRL(file string, ca *signingCA, opts qcrypto.CRLOptions) (*x509.RevocationList, error) {
	key, ok := ca.cert.PrivateKey.(stdcrypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the CA key of %s cannot sign (a %T)", file, ca.cert.PrivateKey)
	}
	data, _, err := qcrypto.CreateCRL(ca.cert.Leaf, key, opts)
	if err != nil {
		return nil, usageError{err}
	}
	crl, err := qcrypto.ParseCRL(data, file)
	if err != nil {
		return nil, err
	}
	if err := qcrypto.WriteFile(file, data, 0o644, true); err != nil {
		return nil, usageError{err}
	}
	return crl, nil
}

// crlSummary says how many certificates crl lists, its number and until
// when it is current.
func crlSummary(crl *x509.RevocationList) string {
	n := len(crl.RevokedCertificateEntries)
	certs := "certificates"
	if n == 1 {
		certs = "certificate"
	}
	return fmt.Sprintf("%d revoked %s, CRL number %v, next update %s", n, certs, crl.Number,
		crl.NextUpdate.UTC().Format(time.RFC3339))
}

// listCRL prints crl's entries, one a line, with the name of the
// certificate in dir that has the serial where there is one.
func listCRL(w io.Writer, dir string, crl *x509.RevocationList) {
	names := certNamesBySerial(dir)
	for _, e := range crl.RevokedCertificateEntries {
		name := names[e.SerialNumber.Text(16)]
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(w, "  %s%s  revoked %s  %s\n", fmtSerial(e.SerialNumber), name,
			e.RevocationTime.UTC().Format(time.RFC3339), qcrypto.RevocationReason(e.ReasonCode))
	}
}

// certNamesBySerial maps the serials of the certificates in dir (*.crt,
// as cert issue writes them) to their common names.
func certNamesBySerial(dir string) map[string]string {
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
	for _, f := range files {
		certs, err := qcrypto.LoadCertificates(f)
		if err != nil || certs[0].IsCA {
			continue
		}
		out[certs[0].SerialNumber.Text(16)] = fmt.Sprintf("%q", certs[0].Subject.CommonName)
	}
	return out
}

// revokedNote is cert show's line about a certificate that the CRL beside
// it (crl.pem in the certificate's directory or its parent, where
// easy-rsa keeps it) lists; "" when none does.
func revokedNote(certFile string, cert *x509.Certificate) string {
	if cert.IsCA {
		return ""
	}
	dir := filepath.Dir(certFile)
	for _, d := range []string{dir, filepath.Dir(dir)} {
		file := filepath.Join(d, crlName)
		crl, err := qcrypto.ReadCRL(file)
		if err != nil || !bytes.Equal(crl.RawIssuer, cert.RawIssuer) {
			continue
		}
		if e := qcrypto.FindRevoked(crl, cert.SerialNumber); e != nil {
			return fmt.Sprintf("%-18s %s\n", "Revoked:", fmt.Sprintf("yes, since %s (%s), in %s",
				e.RevocationTime.UTC().Format(time.RFC3339), qcrypto.RevocationReason(e.ReasonCode), file))
		}
		return ""
	}
	return ""
}
