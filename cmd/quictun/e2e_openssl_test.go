package main

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2eOpenSSLConfig is the minimal openssl config the test's CA and CSRs use.
const e2eOpenSSLConfig = `[req]
distinguished_name = dn
prompt = no
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:10.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`

// TestE2EOpenSSL runs quictun on a PKI made with plain openssl commands
// (RSA 2048; server key PKCS#1, client key PKCS#8; the client certificate
// carries no tunnel address), so the client's address comes from the
// server's --pool, and must be the same again when the client reconnects.
func TestE2EOpenSSL(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "openssl")
	l := nsNewLab(t, "ossl")
	e2eOpenSSLPKI(l)
	star := l.Star(1)
	srvNS, cNS := star.Server, star.Clients[0]
	pool := netip.MustParsePrefix("10.77.0.128/25")

	l.StartQuictun(srvNS, "server", "listen", "--listen", "10.0.0.1:4433",
		"--cert", "ossl/server.crt", "--key", "ossl/server.key", "--ca", "ossl/ca.crt",
		"--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24", "--pool", pool.String())
	connect := []string{"connect", "--server", "10.0.0.1:4433",
		"--cert", "ossl/laptop.crt", "--key", "ossl/laptop.key", "--ca", "ossl/ca.crt", "--dev", "qt0"}

	c := l.StartQuictun(cNS, "client", connect...)
	first := e2eWaitIPv4(l, cNS, "qt0", nsPingTimeout)
	t.Logf("client got %v from the pool", first)
	if !pool.Contains(first.Addr()) {
		t.Errorf("client address %v is outside the pool %v", first, pool)
	}
	l.WaitPing(cNS, "10.77.0.1", nsPingTimeout)
	l.PingAll(srvNS, first.Addr().String(), 3)

	code, exited := c.Stop(syscall.SIGTERM, nsStopTimeout)
	if !exited || code != 0 {
		t.Errorf("client after SIGTERM: exited=%v (in %v) code=%d, want exit 0", exited, nsStopTimeout, code)
	}
	if l.LinkExists(cNS, "qt0") {
		t.Errorf("client left qt0 behind after SIGTERM")
	}

	l.StartQuictun(cNS, "client-again", connect...)
	again := e2eWaitIPv4(l, cNS, "qt0", nsPingTimeout)
	if again.Addr() != first.Addr() {
		t.Errorf("reconnected client got %v, first time %v; want the same address", again, first)
	}
	l.WaitPing(cNS, "10.77.0.1", nsPingTimeout)
	l.PingAll(srvNS, again.Addr().String(), 3)
}

// e2eOpenSSLPKI makes ossl/{ca,server,laptop}.{crt,key} with openssl.
func e2eOpenSSLPKI(l *nsLab) {
	l.t.Helper()
	l.Host("mkdir", "ossl")
	l.Host("sh", "-c", "cat > ossl/openssl.cnf <<'EOF'\n"+e2eOpenSSLConfig+"EOF\n")
	cnf := "ossl/openssl.cnf"
	l.Host("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ossl/ca.key")
	l.Host("openssl", "req", "-x509", "-new", "-config", cnf, "-extensions", "v3_ca", "-key", "ossl/ca.key",
		"-subj", "/CN=E2E OpenSSL CA", "-days", "30", "-sha256", "-out", "ossl/ca.crt")

	l.Host("openssl", "genrsa", "-out", "ossl/server.pkcs8.key", "2048")
	l.Host("openssl", "rsa", "-in", "ossl/server.pkcs8.key", "-traditional", "-out", "ossl/server.key")
	l.Host("openssl", "req", "-new", "-config", cnf, "-key", "ossl/server.key", "-subj", "/CN=server", "-out", "ossl/server.csr")
	l.Host("openssl", "x509", "-req", "-in", "ossl/server.csr", "-CA", "ossl/ca.crt", "-CAkey", "ossl/ca.key",
		"-CAcreateserial", "-days", "30", "-sha256", "-extfile", cnf, "-extensions", "server", "-out", "ossl/server.crt")

	l.Host("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ossl/laptop.key")
	l.Host("openssl", "req", "-new", "-config", cnf, "-key", "ossl/laptop.key", "-subj", "/CN=laptop-openssl", "-out", "ossl/laptop.csr")
	l.Host("openssl", "x509", "-req", "-in", "ossl/laptop.csr", "-CA", "ossl/ca.crt", "-CAkey", "ossl/ca.key",
		"-CAcreateserial", "-days", "30", "-sha256", "-extfile", cnf, "-extensions", "client", "-out", "ossl/laptop.crt")

	// The premises: the key formats, and no address in the client's cert.
	for file, header := range map[string]string{
		"ossl/server.key": "-----BEGIN RSA PRIVATE KEY-----",
		"ossl/laptop.key": "-----BEGIN PRIVATE KEY-----",
	} {
		if got := l.Host("head", "-n", "1", file); strings.TrimSpace(got) != header {
			l.t.Fatalf("%s starts with %q, want %q", file, got, header)
		}
	}
	if out := l.Host("openssl", "x509", "-in", "ossl/laptop.crt", "-noout", "-text"); strings.Contains(out, "Subject Alternative Name") {
		l.t.Fatalf("laptop.crt has a SAN:\n%s", out)
	}
	l.Host("openssl", "verify", "-CAfile", "ossl/ca.crt", "ossl/server.crt", "ossl/laptop.crt")
}

// e2eWaitIPv4 waits up to timeout until dev in ns has an IPv4 address and
// returns it with its prefix length.
func e2eWaitIPv4(l *nsLab, ns, dev string, timeout time.Duration) netip.Prefix {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	var out string
	for {
		var err error
		out, err = l.Run(ns, "ip", "-br", "-4", "addr", "show", "dev", dev)
		if err == nil {
			for _, f := range strings.Fields(out) {
				if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("no IPv4 address on %s in %s after %v: %v\n%s", dev, ns, timeout, err, out)
		}
		time.Sleep(nsPingInterval)
	}
}
