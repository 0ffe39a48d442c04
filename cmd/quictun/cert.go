package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
)

// certCommand is `quictun cert`: make a private CA, issue server and client
// certificates signed by it, and show what a certificate holds.
func certCommand() *cli.Command {
	return &cli.Command{
		Name:  "cert",
		Usage: "make a private CA, issue server and client certificates, show a certificate, revoke one",
		Description: `quictun authenticates both ends with certificates signed by one private CA.
  quictun cert ca    --dir pki                      # pki/ca.crt, pki/ca.key
  quictun cert issue --dir pki --name server --server --host vpn.example.com
  quictun cert issue --dir pki --name laptop1 --ip 10.77.0.11/24 --route 192.168.50.0/24
  quictun cert show  pki/laptop1.crt
  quictun cert revoke --dir pki --name laptop1 --reason keyCompromise   # pki/crl.pem
  quictun cert crl   --dir pki --days 30                 # sign pki/crl.pem anew

Keys are ECDSA P-256, written mode 0600; existing files are never
overwritten without --force. Keep ca.key off the VPN server if you can: the
server needs only ca.crt, server.crt and server.key. --encrypt protects a
key with a passphrase (PKCS#8, scrypt, AES-256-CBC, as OpenSSL reads it):
  quictun cert ca    --dir pki --encrypt          # asks twice, or --passphrase-file FILE
  quictun cert issue --dir pki --name laptop1     # asks for ca.key's, or --passphrase-file FILE
  quictun cert issue --dir pki --name laptop2 --encrypt --key-passphrase-file laptop2.pass
Certificates made with OpenSSL or easy-rsa work too: see docs/CERTIFICATES.md.`,
		Subcommands: []*cli.Command{certCACommand(), certIssueCommand(), certShowCommand(), certRevokeCommand(), certCRLCommand()},
		Action:      unknownCommand(cli.ShowSubcommandHelp),
	}
}

// dirFlag is the --dir flag shared by cert ca and cert issue.
func dirFlag() cli.Flag {
	return &cli.StringFlag{Name: "dir", Value: "pki", EnvVars: certEnv("dir"), TakesFile: true,
		Usage: "directory of the CA and certificates (made, mode 0700, if missing)"}
}

// forceFlag is the --force flag shared by cert ca and cert issue.
func forceFlag() cli.Flag {
	return &cli.BoolFlag{Name: "force", EnvVars: certEnv("force"),
		Usage: "overwrite existing certificate and key files"}
}

func certCACommand() *cli.Command {
	return &cli.Command{
		Name:  "ca",
		Usage: "make a private CA: <dir>/ca.crt and <dir>/ca.key",
		Description: `Makes a self-signed CA (ECDSA P-256, signs leaf certificates only) that signs
the server's and the clients' certificates. Give ca.crt to the server and to
every client (--ca); keep ca.key secret and offline if you can.`,
		Flags: []cli.Flag{
			dirFlag(),
			&cli.StringFlag{Name: "name", Value: qcrypto.DefaultCAName, EnvVars: certEnv("name"),
				Usage: "the CA's subject common name, shown in every certificate it signs"},
			&cli.IntFlag{Name: "days", Value: qcrypto.DefaultCADays, EnvVars: certEnv("days"),
				Usage: "how many days the CA is valid; certificates it signs end no later"},
			&cli.BoolFlag{Name: "encrypt", EnvVars: certEnv("encrypt"),
				Usage: "encrypt ca.key with a passphrase, asked twice on the terminal or read from --passphrase-file; cert issue and every command that signs then ask for it"},
			&cli.StringFlag{Name: caPassphraseFileFlag, EnvVars: certEnv(caPassphraseFileFlag), TakesFile: true,
				Usage: "with --encrypt: read the CA key's passphrase from the first line of `FILE` instead of asking"},
			forceFlag(),
		},
		Action: certCA,
	}
}

func certCA(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("cert ca takes no arguments, got %q: use --dir and --name", c.Args().Slice())}
	}
	if c.Int("days") <= 0 {
		return usageError{fmt.Errorf("--days %d: want a positive number of days", c.Int("days"))}
	}
	name := c.String("name")
	if strings.TrimSpace(name) == "" {
		return usageError{errors.New("--name is empty: give the CA a name, e.g. --name \"Example CA\"")}
	}
	if c.IsSet(caPassphraseFileFlag) && !c.Bool("encrypt") {
		return usageError{fmt.Errorf("--%s is the passphrase to encrypt ca.key with: add --encrypt", caPassphraseFileFlag)}
	}
	dir := c.String("dir")
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := prepareOutputs(dir, c.Bool("force"), certFile, keyFile); err != nil {
		return err
	}
	var pass []byte
	if c.Bool("encrypt") {
		p, err := newPassphrase(c, caPassphraseFileFlag, keyFile)
		if err != nil {
			return err
		}
		pass = p
	}
	certPEM, keyPEM, err := qcrypto.NewCA(qcrypto.CAOptions{Name: name, Days: c.Int("days")})
	if err != nil {
		return err
	}
	if pass != nil {
		if keyPEM, err = qcrypto.EncryptKeyPEM(keyPEM, pass); err != nil {
			return err
		}
	}
	if err := writePair(certFile, keyFile, certPEM, keyPEM, c.Bool("force")); err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s and %s (key mode 0600%s): CA %q, valid %d days\n", certFile, keyFile, encryptedNote(pass), name, c.Int("days"))
	fmt.Fprintf(w, "next: quictun cert issue --dir %s --name server --server --host <name or IP clients dial>\n", dir)
	return nil
}

func certIssueCommand() *cli.Command {
	return &cli.Command{
		Name:      "issue",
		Usage:     "issue a server or client certificate signed by <dir>/ca.*: <dir>/<name>.crt and .key",
		UsageText: "quictun cert issue --dir pki --name NAME (--server --host HOST... | [--ip ADDR/LEN...] [--route NET/LEN...] [--group NAME...]) [--days N] [--passphrase-file FILE] [--encrypt [--key-passphrase-file FILE]] [--force]",
		Description: `A server certificate (--server) names the hosts that clients dial (--host,
repeatable: IP addresses and DNS names). A client certificate carries the
client's identity (--name) and may bind its tunnel addresses and the networks
routed behind it:
  --ip 10.77.0.11/24   a tunnel address of the client (repeatable, IPv4 or IPv6).
                       Only the address is stored: the prefix length comes
                       from the server's own --ip network that contains it.
                       Without --ip the server assigns an address from its --pool.
  --route 192.168.50.0/24
                       a network behind the client (a site); the server routes it
                       to this client and accepts packets from it.
  --group eng          a group the client belongs to (repeatable), written as the
                       URI SAN quictun:group:eng; listen --rule matches group:eng.
Examples:
  quictun cert issue --dir pki --name server --server --host 203.0.113.7 --host vpn.example.com
  quictun cert issue --dir pki --name laptop1 --ip 10.77.0.11/24 --ip fd77::11/64
  quictun cert issue --dir pki --name office --ip 10.77.0.20/24 --route 192.168.50.0/24
  quictun cert issue --dir pki --name alice --group eng --group ops
Passphrases, each asked on the terminal (without echo) unless its file is given:
  --passphrase-file FILE      of <dir>/ca.key, if it is encrypted (cert ca --encrypt)
  --key-passphrase-file FILE  of the new <name>.key, with --encrypt
  quictun cert issue --dir pki --name laptop1 --passphrase-file ca.pass --encrypt --key-passphrase-file laptop1.pass`,
		Flags: []cli.Flag{
			dirFlag(),
			&cli.StringFlag{Name: "name", EnvVars: certEnv("name"),
				Usage: "identity of the peer (subject common name); files are <dir>/<name>.crt and .key (required)"},
			&cli.BoolFlag{Name: "server", EnvVars: certEnv("server"),
				Usage: "make a server certificate (needs --host); without it, a client certificate"},
			&cli.StringSliceFlag{Name: "host", EnvVars: certEnv("host"),
				Usage: "`HOST` (IP or DNS name) that clients dial, for --server; repeat for several"},
			&cli.StringSliceFlag{Name: "ip", EnvVars: certEnv("ip"),
				Usage: "client tunnel address `ADDR/LEN`, e.g. 10.77.0.11/24 or fd77::11/64; only the address is stored, the length comes from the server's network; repeat for several"},
			&cli.StringSliceFlag{Name: "route", EnvVars: certEnv("route"),
				Usage: "client: network `NET/LEN` behind this client that the server routes to it, e.g. 192.168.50.0/24; repeat for several"},
			&cli.StringSliceFlag{Name: "group", EnvVars: certEnv("group"),
				Usage: "client: group `NAME` the client belongs to (letters, digits, . _ -), matched by listen --rule group:NAME; repeat for several"},
			&cli.IntFlag{Name: "days", Value: qcrypto.DefaultLeafDays, EnvVars: certEnv("days"),
				Usage: "how many days the certificate is valid (at most until the CA expires)"},
			caPassphraseFlag(),
			&cli.BoolFlag{Name: "encrypt", EnvVars: certEnv("encrypt"),
				Usage: "encrypt the new <name>.key with a passphrase of its own (not the CA's), asked twice on the terminal or read from --key-passphrase-file; connect and listen then ask for it or read their --key-passphrase-file"},
			&cli.StringFlag{Name: keyPassphraseFileFlag, EnvVars: certEnv(keyPassphraseFileFlag), TakesFile: true,
				Usage: "with --encrypt: read the new key's passphrase from the first line of `FILE` (the file connect --key-passphrase-file takes)"},
			forceFlag(),
		},
		Action: certIssue,
	}
}

func certIssue(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("cert issue takes no arguments, got %q: use --name, --host, --ip, --route", c.Args().Slice())}
	}
	name := c.String("name")
	if err := checkCertName(name); err != nil {
		return usageError{err}
	}
	if c.Int("days") <= 0 {
		return usageError{fmt.Errorf("--days %d: want a positive number of days", c.Int("days"))}
	}
	opts := qcrypto.LeafOptions{Name: name, Server: c.Bool("server"), Hosts: c.StringSlice("host"), Days: c.Int("days")}
	var prefixes []netip.Prefix
	for _, s := range c.StringSlice("ip") {
		p, err := parseTunnelIP(s)
		if err != nil {
			return usageError{fmt.Errorf("--ip %q: %w", s, err)}
		}
		prefixes = append(prefixes, p)
		opts.Addrs = append(opts.Addrs, p.Addr())
	}
	for _, s := range c.StringSlice("route") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return usageError{fmt.Errorf("--route %q: want a network like 192.168.50.0/24 or fd00:1::/64", s)}
		}
		if m := p.Masked(); m != p {
			return usageError{fmt.Errorf("--route %q has host bits set: did you mean %v?", s, m)}
		}
		opts.Routes = append(opts.Routes, p)
	}
	for _, g := range c.StringSlice("group") {
		if err := qcrypto.CheckGroupName(g); err != nil {
			return usageError{fmt.Errorf("--group %q: %w", g, err)}
		}
		opts.Groups = append(opts.Groups, g)
	}
	switch {
	case opts.Server && len(opts.Addrs) > 0:
		return usageError{errors.New("--ip is for client certificates: a server certificate cannot hold tunnel addresses (the server's own address is set with listen --ip)")}
	case opts.Server && len(opts.Routes) > 0:
		return usageError{errors.New("--route is for client certificates: the server's routes are set when it listens")}
	case opts.Server && len(opts.Groups) > 0:
		return usageError{errors.New("--group is for client certificates: access rules (listen --rule) match the clients' groups")}
	case opts.Server && len(opts.Hosts) == 0:
		return usageError{errors.New("--server needs at least one --host: the IP address or DNS name that clients dial")}
	case !opts.Server && len(opts.Hosts) > 0:
		return usageError{errors.New("--host is for server certificates: add --server, or use --ip for a client's tunnel address")}
	}

	if c.IsSet(keyPassphraseFileFlag) && !c.Bool("encrypt") {
		return usageError{fmt.Errorf("--%s is the passphrase to encrypt the new key with: add --encrypt (the CA key's passphrase is --%s)", keyPassphraseFileFlag, caPassphraseFileFlag)}
	}

	dir := c.String("dir")
	ca, err := openCA(c, dir)
	if err != nil {
		return err
	}

	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := prepareOutputs(dir, c.Bool("force"), certFile, keyFile); err != nil {
		return err
	}
	var pass []byte
	if c.Bool("encrypt") {
		if pass, err = newPassphrase(c, keyPassphraseFileFlag, keyFile); err != nil {
			return err
		}
	}
	certPEM, keyPEM, err := qcrypto.IssueBy(ca.cert, opts)
	if err != nil {
		return usageError{err}
	}
	if pass != nil {
		if keyPEM, err = qcrypto.EncryptKeyPEM(keyPEM, pass); err != nil {
			return err
		}
	}
	if err := writePair(certFile, keyFile, certPEM, keyPEM, c.Bool("force")); err != nil {
		return err
	}

	w := c.App.Writer
	kind := "client"
	if opts.Server {
		kind = "server"
	}
	fmt.Fprintf(w, "wrote %s and %s (key mode 0600%s): %s certificate %q signed by %q\n", certFile, keyFile, encryptedNote(pass), kind, name, ca.cert.Leaf.Subject.CommonName)
	if want := time.Now().AddDate(0, 0, opts.Days); ca.cert.Leaf.NotAfter.Before(want.Add(-time.Hour)) {
		fmt.Fprintf(w, "note: valid only until %s, when the CA expires (not %d days)\n", ca.cert.Leaf.NotAfter.UTC().Format(time.DateOnly), opts.Days)
	}
	for _, p := range prefixes {
		if p.Bits() >= 0 {
			fmt.Fprintf(w, "note: the certificate holds the tunnel address %v, not the /%d: the server applies the prefix length of its own --ip network that contains %v\n", p.Addr(), p.Bits(), p.Addr())
		}
	}
	if !opts.Server && len(opts.Addrs) == 0 {
		fmt.Fprintf(w, "note: no --ip: the server assigns %q a tunnel address from its --pool\n", name)
	}
	return nil
}

// signingCA is the CA of a --dir, loaded to sign with: its certificate
// and key (decrypted if it was encrypted), and the PEM file of the
// certificate.
type signingCA struct {
	cert    tls.Certificate // Leaf and PrivateKey set
	certPEM []byte
}

// openCA loads <dir>/ca.crt and <dir>/ca.key for cert issue and every
// other command that signs, with errors that say what to do. An encrypted
// ca.key is decrypted with the passphrase of --passphrase-file (add
// caPassphraseFlag to the command) or, without it, asked on the terminal;
// a wrong one is the one line "wrong passphrase for <dir>/ca.key". A
// ca.key open to others is warned about.
func openCA(c *cli.Context, dir string) (*signingCA, error) {
	caCert, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, err := os.Stat(caCert); errors.Is(err, fs.ErrNotExist) {
		return nil, usageError{fmt.Errorf("no CA in %s (%s is missing): make one first with `quictun cert ca --dir %s`", dir, caCert, dir)}
	}
	if err := qcrypto.CheckKeyFileMode(caKey); err != nil {
		warnf(c, "%v", err)
	}
	cert, err := qcrypto.LoadKeyPair(caCert, caKey, passphraseSource(c, caPassphraseFileFlag))
	var u usageError
	switch {
	case errors.Is(err, qcrypto.ErrWrongPassphrase), errors.As(err, &u):
		return nil, usageError{err}
	case err != nil:
		return nil, usageError{fmt.Errorf("load CA: %w", err)}
	}
	if !cert.Leaf.IsCA {
		return nil, usageError{fmt.Errorf("%s is not a CA certificate: remake it with `quictun cert ca --dir %s --force`", caCert, dir)}
	}
	certPEM, err := os.ReadFile(caCert)
	if err != nil {
		return nil, usageError{fmt.Errorf("read CA certificate: %w", err)}
	}
	return &signingCA{cert: cert, certPEM: certPEM}, nil
}

// encryptedNote is what cert ca and cert issue add to "key mode 0600"
// when they encrypted the key with pass.
func encryptedNote(pass []byte) string {
	if pass == nil {
		return ""
	}
	return ", encrypted with the passphrase"
}

// parseTunnelIP parses a --ip value: an address with or without a prefix
// length ("10.77.0.11/24", "fd77::11"). A bare address gives Bits() -1. It
// rejects the network address of a prefix, which is almost always a typo
// for the client's own address.
func parseTunnelIP(s string) (netip.Prefix, error) {
	addr, bits, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, errors.New("want the client's tunnel address like 10.77.0.11/24 or fd77::11/64")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("a tunnel address cannot have a zone")
	}
	p := netip.PrefixFrom(a, -1)
	if hasBits {
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix length /%s: want the client's tunnel address like 10.77.0.11/24 or fd77::11/64", bits)
		}
	}
	switch {
	case a.Is4In6():
		return netip.Prefix{}, errors.New("an IPv4-mapped IPv6 address: write it as IPv4")
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		return netip.Prefix{}, errors.New("not a usable tunnel address (unspecified, multicast or loopback)")
	}
	if b := p.Bits(); b >= 0 && b < a.BitLen()-1 && p.Masked().Addr() == a {
		return netip.Prefix{}, fmt.Errorf("that is the network address of %v, not a client's address: give the client's own address, e.g. %v", p.Masked(), p.Addr().Next())
	}
	return p, nil
}

// checkCertName checks a --name for cert issue: it becomes a file name in
// --dir, so no path separators, no leading dot, and not the CA's own name.
func checkCertName(name string) error {
	switch {
	case name == "":
		return errors.New("--name is required: the identity of the server or client, e.g. --name laptop1")
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("--name %q: must not contain '/' or '\\' (it becomes the file name <dir>/<name>.crt)", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("--name %q: must not start with '.' (it becomes the file name <dir>/<name>.crt)", name)
	case name == "ca":
		return errors.New("--name \"ca\" is taken by the CA's own files ca.crt and ca.key: choose another name")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("--name %q: must not contain control characters", name)
		}
	}
	return nil
}

// prepareOutputs makes dir (mode 0700) if missing and, unless force, fails
// when any of files exists, before anything is generated or written.
func prepareOutputs(dir string, force bool, files ...string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return usageError{fmt.Errorf("make directory %s: %w", dir, err)}
	}
	if force {
		return nil
	}
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			return usageError{fmt.Errorf("%s already exists: use --force to overwrite it", f)}
		}
	}
	return nil
}

// writePair writes a key (0600) and then its certificate (0644).
func writePair(certFile, keyFile string, certPEM, keyPEM []byte, force bool) error {
	if err := qcrypto.WriteFile(keyFile, keyPEM, 0o600, force); err != nil {
		return usageError{err}
	}
	if err := qcrypto.WriteFile(certFile, certPEM, 0o644, force); err != nil {
		return usageError{err}
	}
	return nil
}

func certShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show what certificates hold: subject, issuer, validity, usages, hosts, tunnel addresses, routes, fingerprint",
		ArgsUsage: "FILE.crt [FILE.crt...]",
		Description: `Reads PEM certificate files (a chain shows every certificate, leaf first),
made by quictun or by OpenSSL/easy-rsa, and prints what quictun reads from
them. The SHA-256 fingerprint is the one the server logs for a client.`,
		Action: certShow,
	}
}

func certShow(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError{errors.New("cert show needs a certificate file, e.g. quictun cert show pki/laptop1.crt")}
	}
	type shown struct {
		file string
		i, n int
		text string
	}
	var out []shown
	for _, f := range c.Args().Slice() {
		certs, err := qcrypto.LoadCertificates(f)
		if err != nil {
			return usageError{err}
		}
		for i, cert := range certs {
			out = append(out, shown{f, i + 1, len(certs), qcrypto.Describe(cert) + revokedNote(f, cert)})
		}
	}
	w := c.App.Writer
	for i, s := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		switch {
		case s.n > 1:
			fmt.Fprintf(w, "%s (certificate %d of %d)\n", s.file, s.i, s.n)
		case len(out) > 1:
			fmt.Fprintf(w, "%s\n", s.file)
		}
		fmt.Fprint(w, s.text)
	}
	return nil
}
