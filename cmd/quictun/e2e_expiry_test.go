package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// e2eOpenSSLCAConfig is the config of `openssl ca` in a lab's ossl/: it
// signs a client certificate with chosen validity dates (-startdate/-enddate:
// OpenSSL 3.0's x509 -req cannot set a start date; TestE2EExpiry gives the
// lab's quictun CA with -cert/-keyfile), and revokes and writes CRLs with
// ossl/ca.* (TestE2ERevokeOtherCRLs).
const e2eOpenSSLCAConfig = `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ossl
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 30
policy = policy_any
x509_extensions = client_ext
unique_subject = no
[ policy_any ]
commonName = supplied
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = IP:10.77.0.12
[ req ]
distinguished_name = dn
[ dn ]
`

// TestE2EExpiry: a client whose certificate was issued for 10 days
// (`quictun cert issue --days 10`) connects, and the server warns about it
// in its log, `quictun status` marks it, and the metrics count it; the
// client warns about its own certificate too. A client certificate valid
// only from tomorrow (made with openssl ca -startdate) is refused, and the
// client's error says "not yet valid", never "expired", as the server's
// log does. A client certificate from another CA is refused with an error
// that names the CA the server wants.
func TestE2EExpiry(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "openssl")
	l := nsNewLab(t, "exp")
	star := l.Star(2)
	srvNS, c1NS, xNS := star.Server, star.Clients[0], star.Clients[1]

	l.Cert("ca", "--dir", "pki", "--name", "E2E Expiry CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "soon", "--ip", "10.77.0.11/24", "--days", "10")
	l.Cert("ca", "--dir", "pki2", "--name", "E2E Other CA")
	l.Cert("issue", "--dir", "pki2", "--name", "evil", "--ip", "10.77.0.13/24")
	l.Host("mkdir", "-p", "ossl/new")
	l.Host("sh", "-c", "cat > ossl/ca.cnf <<'EOF'\n"+e2eOpenSSLCAConfig+"EOF\n: > ossl/index.txt; echo 01 > ossl/serial")
	l.Host("openssl", "req", "-new", "-config", "ossl/ca.cnf", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "ossl/early.key", "-subj", "/CN=early", "-out", "ossl/early.csr")
	start := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	l.Host("openssl", "ca", "-batch", "-config", "ossl/ca.cnf", "-cert", "pki/ca.crt", "-keyfile", "pki/ca.key",
		"-in", "ossl/early.csr", "-out", "ossl/early.crt", "-notext",
		"-startdate", start.Format("20060102150405Z"), "-enddate", start.AddDate(0, 0, 30).Format("20060102150405Z"))

	const metricsAddr = "127.0.0.1:9477"
	srv := l.StartQuictun(srvNS, "server", e2eListenArgs("--dev", "qt0", "--ip", "10.77.0.1/24", "--metrics", metricsAddr)...)
	soon := l.StartQuictun(c1NS, "soon", e2eConnectArgs("soon", "--dev", "qt0")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)

	t.Run("server log", func(t *testing.T) {
		warning := regexp.MustCompile(`level=WARN msg="certificate expires soon: renew it" kind=client name=soon not_after=\S+ days_left=10 peer=soon`)
		for i := 0; i < 100 && !warning.MatchString(srv.Stderr()); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if !warning.MatchString(srv.Stderr()) {
			t.Errorf("the server's log has no line matching %v:\n%s", warning, srv.Dump())
		}
		if strings.Contains(srv.Stderr(), "kind=server") || strings.Contains(srv.Stderr(), "kind=ca") {
			t.Errorf("the server warned about its own certificate or the CA, valid for years:\n%s", srv.Dump())
		}
	})

	t.Run("client log", func(t *testing.T) {
		if !soon.WaitOutput(`msg="certificate expires soon: renew it" kind=client name=soon`, 5*time.Second) {
			t.Errorf("the client does not warn about its own certificate:\n%s", soon.Dump())
		}
	})

	t.Run("status", func(t *testing.T) {
		l := l.With(t)
		out, code := e2eCtl(l, srvNS, "status", "--dev", "qt0")
		if code != 0 {
			t.Fatalf("quictun status: exit %d\n%s", code, out)
		}
		t.Logf("quictun status:\n%s", out)
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^session soon\n(?:  .*\n)*  cert expires: +\d{4}-\d\d-\d\d \(WARNING: expires in 10 days\)$`),
			regexp.MustCompile(`(?m)^  ca: +E2E Expiry CA \([0-9a-f]{16}\), expires \d{4}-\d\d-\d\d \(in 36\d\d days\)$`),
		} {
			if !re.MatchString(out) {
				t.Errorf("quictun status does not match %v", re)
			}
		}
		st := e2eStatus(l, srvNS, "--dev", "qt0")
		if s := e2eSession(st, "soon"); s == nil || !s.PeerExpiresSoon || st.Certificate.ExpiresSoon ||
			len(st.CAs) != 1 || st.CAs[0].ExpiresSoon {
			t.Errorf("status --json: session %+v, certificate %+v, cas %+v; want the session's peer certificate expiring soon, nothing else", s, st.Certificate, st.CAs)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := e2eScrape(t, srvNS, metricsAddr)
		for k, v := range map[string]float64{
			`quictun_certificates_expiring{kind="client"}`: 1,
			`quictun_certificates_expiring{kind="server"}`: 0,
			`quictun_certificates_expiring{kind="ca"}`:     0,
		} {
			if got, ok := m[k]; !ok || got != v {
				t.Errorf("%s = %v (exported %v), want %v", k, got, ok, v)
			}
		}
		left := m[`quictun_session_certificate_expiry_timestamp_seconds{peer="soon"}`] - float64(time.Now().Unix())
		if left < 9*86400 || left > 10*86400 {
			t.Errorf("the client's certificate expires in %.0f s, want about 10 days", left)
		}
		if exp := m[`quictun_ca_certificate_expiry_timestamp_seconds{name="E2E Expiry CA"}`]; exp < float64(time.Now().AddDate(9, 0, 0).Unix()) {
			t.Errorf("the CA's expiry is exported as %v, want about ten years from now", exp)
		}
	})

	// reject runs a client that must give up with a `quictun: …` line.
	reject := func(t *testing.T, name string, args ...string) string {
		l := l.With(t)
		code, stderr, exited := l.RunQuictun(xNS, name, e2eRejectTimeout, args...)
		line := e2eErrorLine(stderr)
		if !exited || code == 0 || line == "" {
			t.Fatalf("%s: exited %v with %d, error line %q; want a non-zero exit with one\n%s", name, exited, code, line, stderr)
		}
		t.Logf("%s: %s", name, line)
		return line
	}

	t.Run("not yet valid", func(t *testing.T) {
		before := len(srv.Stderr())
		line := reject(t, "early", "connect", "--server", "10.0.0.1:4433",
			"--cert", "ossl/early.crt", "--key", "ossl/early.key", "--ca", "pki/ca.crt", "--dev", "qtx1")
		want := `our certificate "early": it is not yet valid (valid from ` + start.Format("2006-01-02 15:04:05 UTC")
		if !strings.Contains(line, want) || !strings.Contains(line, "check this machine's clock") || strings.Contains(line, "expired") {
			t.Errorf("error line %q\nwant %q and the clock to check, and no \"expired\"", line, want)
		}
		logged := `client certificate \"early\" is not yet valid: valid from ` + start.Format("2006-01-02 15:04:05 UTC")
		if !srv.WaitOutput(logged, 5*time.Second) {
			t.Errorf("the server's log lacks %q:\n%s", logged, srv.Stderr()[before:])
		}
	})

	t.Run("another CA", func(t *testing.T) {
		line := reject(t, "evil", "connect", "--server", "10.0.0.1:4433",
			"--cert", "pki2/evil.crt", "--key", "pki2/evil.key", "--ca", "pki/ca.crt", "--dev", "qtx2")
		want := `the server wants certificates from CA "E2E Expiry CA"; ours is signed by "E2E Other CA"`
		if !strings.Contains(line, want) || strings.Contains(line, "certificate required") {
			t.Errorf("error line %q\nwant %q", line, want)
		}
	})

	l.PingAll(c1NS, "10.77.0.1", 2)
}
