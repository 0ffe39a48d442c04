package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
)

// runCert runs `quictun cert args…` in-process and returns what it printed.
func runCert(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"quictun", "cert"}, args...))
	return out.String(), err
}

// mustRunCert is runCert failing the test on error.
func mustRunCert(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCert(t, args...)
	if err != nil {
		t.Fatalf("quictun cert %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// checkMode fails the test unless file has permission bits perm.
func checkMode(t *testing.T, file string, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", file, fi.Mode().Perm(), perm)
	}
}

func TestCertCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	file := func(name string) string { return filepath.Join(dir, name) }

	out := mustRunCert(t, "ca", "--dir", dir, "--name", "Example CA", "--days", "30")
	if !strings.Contains(out, file("ca.crt")) || !strings.Contains(out, "Example CA") {
		t.Errorf("cert ca printed %q", out)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, file("ca.key"), 0o600)
	checkMode(t, file("ca.crt"), 0o644)

	mustRunCert(t, "issue", "--dir", dir, "--name", "server", "--server", "--host", "203.0.113.7", "--host", "vpn.example.com")
	out = mustRunCert(t, "issue", "--dir", dir, "--name", "laptop1", "--ip", "10.77.0.11/24", "--ip", "fd77::11/64",
		"--route", "192.168.50.0/24", "--route", "fd00:1::/64", "--group", "eng", "--group", "ops", "--days", "10")
	for _, want := range []string{"laptop1.crt", "10.77.0.11, not the /24", "prefix length of its own --ip network"} {
		if !strings.Contains(out, want) {
			t.Errorf("cert issue printed %q, want it to contain %q", out, want)
		}
	}
	checkMode(t, file("laptop1.key"), 0o600)
	checkMode(t, file("laptop1.crt"), 0o644)
	out = mustRunCert(t, "issue", "--dir", dir, "--name", "phone")
	if !strings.Contains(out, "from its --pool") {
		t.Errorf("cert issue without --ip printed %q, want a note about the pool", out)
	}

	// What was written loads, verifies and says what was asked.
	pool, err := qcrypto.LoadCAPool(file("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := qcrypto.LoadKeyPair(file("laptop1.crt"), file("laptop1.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("laptop1 does not verify against the CA: %v", err)
	}
	id, err := qcrypto.IdentityOf(pair.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs := []netip.Addr{netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("fd77::11")}
	wantRoutes := []netip.Prefix{netip.MustParsePrefix("192.168.50.0/24"), netip.MustParsePrefix("fd00:1::/64")}
	if id.Name != "laptop1" || !slices.Equal(id.Addrs, wantAddrs) || !slices.Equal(id.Routes, wantRoutes) ||
		!slices.Equal(id.Groups, []string{"eng", "ops"}) {
		t.Errorf("identity %+v", id)
	}
	server, err := qcrypto.LoadKeyPair(file("server.crt"), file("server.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(server.Leaf.DNSNames, []string{"vpn.example.com"}) || len(server.Leaf.IPAddresses) != 1 {
		t.Errorf("server DNS %v IP %v", server.Leaf.DNSNames, server.Leaf.IPAddresses)
	}

	t.Run("show", func(t *testing.T) {
		out := mustRunCert(t, "show", file("laptop1.crt"))
		for _, want := range []string{
			"Subject:           CN=laptop1", "Issuer:            CN=Example CA", "Valid until:",
			"Key:               ECDSA P-256", "Usages:            client",
			"Tunnel addresses:  10.77.0.11, fd77::11", "Routes:            192.168.50.0/24, fd00:1::/64",
			"Groups:            eng, ops",
			"SHA-256:           " + id.Fingerprint,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("cert show lacks %q:\n%s", want, out)
			}
		}
		out = mustRunCert(t, "show", file("server.crt"), file("ca.crt"))
		for _, want := range []string{file("server.crt") + "\n", "Usages:            server", "Hosts:             vpn.example.com, 203.0.113.7",
			file("ca.crt") + "\n", "Usages:            CA"} {
			if !strings.Contains(out, want) {
				t.Errorf("cert show of two files lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("no overwrite without --force", func(t *testing.T) {
		before, err := os.ReadFile(file("laptop1.crt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"issue", "--dir", dir, "--name", "laptop1", "--ip", "10.77.0.99"},
			{"ca", "--dir", dir},
		} {
			_, err := runCert(t, args...)
			if err == nil || !strings.Contains(err.Error(), "already exists: use --force") || exitCode(err) != 2 {
				t.Errorf("cert %s: error %v (exit %d), want an 'already exists: use --force' usage error", args[0], err, exitCode(err))
			}
		}
		after, err := os.ReadFile(file("laptop1.crt"))
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("laptop1.crt changed (%v)", err)
		}
		mustRunCert(t, "issue", "--dir", dir, "--name", "laptop1", "--ip", "10.77.0.99", "--force")
		pair, err := qcrypto.LoadKeyPair(file("laptop1.crt"), file("laptop1.key"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := pair.Leaf.IPAddresses; len(got) != 1 || got[0].String() != "10.77.0.99" {
			t.Errorf("after --force laptop1 has addresses %v, want [10.77.0.99]", got)
		}
		checkMode(t, file("laptop1.key"), 0o600)
	})

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"bad --ip", []string{"issue", "--dir", dir, "--name", "x", "--ip", "10.77.0.300/24"}, `--ip "10.77.0.300/24"`},
			{"--ip network address", []string{"issue", "--dir", dir, "--name", "x", "--ip", "10.77.0.0/24"}, "network address"},
			{"bad --route", []string{"issue", "--dir", dir, "--name", "x", "--route", "192.168.50.0"}, `--route "192.168.50.0"`},
			{"--route with host bits", []string{"issue", "--dir", dir, "--name", "x", "--route", "192.168.50.1/24"}, "did you mean 192.168.50.0/24"},
			{"--server with --ip", []string{"issue", "--dir", dir, "--name", "x", "--server", "--host", "h.example", "--ip", "10.77.0.5/24"}, "--ip is for client certificates"},
			{"bad --group", []string{"issue", "--dir", dir, "--name", "x", "--group", "eng ops"}, `--group "eng ops": group name`},
			{"--server with --group", []string{"issue", "--dir", dir, "--name", "x", "--server", "--host", "h.example", "--group", "eng"}, "--group is for client certificates"},
			{"--server without --host", []string{"issue", "--dir", dir, "--name", "x", "--server"}, "--server needs at least one --host"},
			{"--host without --server", []string{"issue", "--dir", dir, "--name", "x", "--host", "h.example"}, "--host is for server certificates"},
			{"bad --host", []string{"issue", "--dir", dir, "--name", "x", "--server", "--host", "a b"}, `host "a b"`},
			{"no --name", []string{"issue", "--dir", dir}, "--name is required"},
			{"name with slash", []string{"issue", "--dir", dir, "--name", "../x"}, "must not contain '/'"},
			{"name with dot", []string{"issue", "--dir", dir, "--name", ".x"}, "must not start with '.'"},
			{"name ca", []string{"issue", "--dir", dir, "--name", "ca"}, "taken by the CA"},
			{"no CA", []string{"issue", "--dir", t.TempDir(), "--name", "x"}, "quictun cert ca --dir"},
			{"zero days", []string{"issue", "--dir", dir, "--name", "x", "--days", "0"}, "--days 0"},
			{"days not a number", []string{"issue", "--dir", dir, "--name", "x", "--days", "many"}, "days"},
			{"ca with argument", []string{"ca", "--dir", dir, "extra"}, "takes no arguments"},
			{"show nothing", []string{"show"}, "needs a certificate file"},
			{"show a key", []string{"show", file("laptop1.key")}, "holds a private key"},
			{"show missing", []string{"show", file("nope.crt")}, "does not exist"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := runCert(t, tt.args...)
				if err == nil {
					t.Fatal("no error")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q, want it to contain %q", err, tt.want)
				}
				var u usageError
				if !errors.As(err, &u) || exitCode(err) != 2 {
					t.Errorf("error %v is not a usage error (exit %d), want exit 2", err, exitCode(err))
				}
			})
		}
		if _, err := os.Stat(file("x.crt")); err == nil {
			t.Error("a failed cert issue left x.crt behind")
		}
	})
}

// TestCertEnvVars: the cert commands read QUICTUN_CERT_<FLAG>, and only
// those.
func TestCertEnvVars(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "envpki")
	t.Setenv("QUICTUN_CERT_DIR", dir)
	t.Setenv("QUICTUN_CERT_NAME", "Env CA")
	t.Setenv("QUICTUN_DIR", filepath.Join(t.TempDir(), "not-this-one"))
	t.Setenv("QUICTUN_NAME", "Not This CA")
	mustRunCert(t, "ca")
	certs, err := qcrypto.LoadCertificates(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if cn := certs[0].Subject.CommonName; cn != "Env CA" {
		t.Errorf("CA from QUICTUN_CERT_NAME has CN %q, want %q", cn, "Env CA")
	}
}

// TestCertIgnoresTunnelEnv: the variables of listen and connect on the same
// host never reach a certificate. A server's QUICTUN_IP once went into every
// client certificate issued beside it, and a client's QUICTUN_SERVER made
// cert issue fail to parse it as --server's bool.
func TestCertIgnoresTunnelEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	mustRunCert(t, "ca", "--dir", dir)
	t.Setenv("QUICTUN_IP", "10.77.0.1/24")
	t.Setenv("QUICTUN_SERVER", "host:4433")
	t.Setenv("QUICTUN_ROUTE", "192.168.10.0/24")
	mustRunCert(t, "issue", "--dir", dir, "--name", "phone2")
	pair, err := qcrypto.LoadKeyPair(filepath.Join(dir, "phone2.crt"), filepath.Join(dir, "phone2.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := qcrypto.IdentityOf(pair.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Leaf.IPAddresses) != 0 || len(id.Addrs) != 0 || len(id.Routes) != 0 {
		t.Errorf("phone2 issued with QUICTUN_IP and QUICTUN_ROUTE set holds addresses %v, routes %v; want none", id.Addrs, id.Routes)
	}
	if slices.Contains(pair.Leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Error("phone2 issued with QUICTUN_SERVER set is a server certificate")
	}

	// No variable of listen or connect is one a cert command reads.
	tunnel := map[string]string{}
	for _, cmd := range []*cli.Command{listenCommand(), connectCommand()} {
		for _, f := range cmd.Flags {
			for _, e := range f.(cli.DocGenerationFlag).GetEnvVars() {
				tunnel[e] = cmd.Name
			}
		}
	}
	for _, cmd := range certCommand().Subcommands {
		for _, f := range cmd.Flags {
			for _, e := range f.(cli.DocGenerationFlag).GetEnvVars() {
				if !strings.HasPrefix(e, "QUICTUN_CERT_") {
					t.Errorf("cert %s --%s reads %s, want QUICTUN_CERT_…", cmd.Name, f.Names()[0], e)
				}
				if c, ok := tunnel[e]; ok {
					t.Errorf("cert %s --%s reads %s, which is %s's", cmd.Name, f.Names()[0], e, c)
				}
			}
		}
	}
}

func TestCertHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"ca", "issue", "show", "private CA", "docs/CERTIFICATES.md"}},
		{[]string{"ca", "--help"}, []string{"--dir", "--name", "--days", "--force", "QUICTUN_CERT_DIR"}},
		{[]string{"issue", "--help"}, []string{"--server", "--host", "--ip", "--route", "--days", "--force",
			"prefix length", "--pool", "routed", "QUICTUN_CERT_IP"}},
		{[]string{"show", "--help"}, []string{"FILE.crt", "fingerprint"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustRunCert(t, tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestParseTunnelIP(t *testing.T) {
	tests := []struct {
		in, addr string
		bits     int // -1: no length given
		wantErr  string
	}{
		{in: "10.77.0.11/24", addr: "10.77.0.11", bits: 24},
		{in: "fd77::11/64", addr: "fd77::11", bits: 64},
		{in: "10.77.0.11", addr: "10.77.0.11", bits: -1},
		{in: "10.77.0.0/31", addr: "10.77.0.0", bits: 31},
		{in: "10.77.0.0/24", wantErr: "network address"},
		{in: "fd77::/64", wantErr: "network address"},
		{in: "0.0.0.0/0", wantErr: "unspecified"},
		{in: "::ffff:10.0.0.1/120", wantErr: "IPv4-mapped"},
		{in: "fe80::1%eth0", wantErr: "zone"},
		{in: "fe80::1%eth0/64", wantErr: "zone"},
		{in: "10.77.0.11/33", wantErr: "bad prefix length /33"},
		{in: "10.77.0", wantErr: "want the client's tunnel address"},
		{in: "", wantErr: "want the client's tunnel address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := parseTunnelIP(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Addr().String() != tt.addr || p.Bits() != tt.bits {
				t.Errorf("got %v bits %d, want %s bits %d", p.Addr(), p.Bits(), tt.addr, tt.bits)
			}
		})
	}
}
