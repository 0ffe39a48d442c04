// Command quictun is a VPN that carries TUN (layer 3) or TAP (layer 2)
// traffic in QUIC DATAGRAM frames, authenticated both ways with TLS 1.3 and
// certificates from a private CA.
//
// One file per command: listen.go, connect.go, cert.go, status.go,
// kick.go, reload.go (control.go: the control socket they share),
// version.go, completion.go, man.go.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// env returns the environment variable that can set flag name of listen,
// connect or the global flags: QUICTUN_<NAME> with dashes turned into
// underscores.
func env(name string) []string { return envVar("QUICTUN_", name) }

// certEnv returns the environment variable that can set flag name of the
// cert commands: QUICTUN_CERT_<NAME>. A namespace of their own keeps the
// variables of a server or client (QUICTUN_IP, QUICTUN_SERVER) out of the
// certificates issued on the same host.
func certEnv(name string) []string { return envVar("QUICTUN_CERT_", name) }

// envVar returns prefix followed by flag name in upper case, dashes as
// underscores.
func envVar(prefix, name string) []string {
	b := []byte(prefix)
	for _, c := range []byte(name) {
		switch {
		case c == '-':
			c = '_'
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return []string{string(b)}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "quictun",
		Usage: "a VPN over QUIC datagrams: TUN or TAP, mutual TLS with a private CA",
		Description: `quictun joins a TUN (IP) or TAP (Ethernet) device to QUIC DATAGRAM frames.
The flags of listen and connect, and the global flags, can also be set by an
environment variable QUICTUN_<FLAG> (upper case, dashes as underscores), e.g.
QUICTUN_CERT=pki/laptop.crt. The flags of the cert commands read
QUICTUN_CERT_<FLAG> instead, e.g. QUICTUN_CERT_DIR=pki, so that a server's
QUICTUN_IP never ends up in a client's certificate.

A quick start:
  quictun cert ca    --dir pki
  quictun cert issue --dir pki --name server --server --host vpn.example.com
  quictun cert issue --dir pki --name laptop1 --ip 10.77.0.11/24
  quictun listen  --cert pki/server.crt --key pki/server.key --ca pki/ca.crt --ip 10.77.0.1/24
  quictun connect --server vpn.example.com:4433 --cert pki/laptop1.crt --key pki/laptop1.key --ca pki/ca.crt`,
		Flags: globalFlags(),
		Before: func(c *cli.Context) error {
			if err := setupLogging(c); err != nil {
				return err
			}
			return startProfile(c)
		},
		After:   stopProfile,
		Version: thisVersion().Short(),
		Commands: withExamples(withUsageErrors([]*cli.Command{listenCommand(), connectCommand(), certCommand(), statusCommand(), kickCommand(), reloadCommand(),
			versionCommand(), completionCommand(), manCommand()})),
		Action:          unknownCommand(cli.ShowAppHelp),
		HideHelpCommand: true,
		OnUsageError:    onUsageError,
		// Errors are returned, never exited on inside Run: main prints
		// them and picks the status (exitCode).
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func main() {
	fromMain = true
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "quictun: %v\n", err)
		os.Exit(exitCode(err))
	}
}
