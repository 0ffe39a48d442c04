package crypto

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// handshakeResult is what each end of a test handshake saw.
type handshakeResult struct {
	server    tls.ConnectionState
	serverErr error
	client    tls.ConnectionState
	clientErr error
}

// handshake runs one TLS connection over loopback TCP between srv and cli.
// After its handshake the server writes one byte and the client reads it, so
// that a client certificate refused by the server (which in TLS 1.3 the
// client learns only after its own handshake) shows as a client error too.
func handshake(t *testing.T, srv, cli *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()

	type serverOut struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan serverOut, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- serverOut{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		s := tls.Server(c, srv)
		if err := s.HandshakeContext(ctx); err != nil {
			done <- serverOut{err: err}
			return
		}
		_, err = s.Write([]byte{1})
		done <- serverOut{state: s.ConnectionState(), err: err}
	}()

	var res handshakeResult
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	cl := tls.Client(c, cli)
	res.clientErr = cl.HandshakeContext(ctx)
	if res.clientErr == nil {
		var b [1]byte
		_, res.clientErr = io.ReadFull(cl, b[:])
		res.client = cl.ConnectionState()
	}
	out := <-done
	res.server, res.serverErr = out.state, out.err
	return res
}

func TestHandshake(t *testing.T) {
	ca := testPool(t, "ca")
	server := ServerTLSConfig(testPair(t, "server"), ca)
	tests := []struct {
		name       string
		client     string
		serverName string
		wantErr    string // in the server's or the client's error; "" for success
		// sendAnyway makes the client send its certificate even when it is
		// not from a CA the server asks for (crypto/tls holds it back).
		sendAnyway bool
	}{
		{name: "good client", client: "client1", serverName: "localhost"},
		{name: "good client dialling the IP", client: "client2", serverName: "127.0.0.1"},
		{name: "client without tunnel address", client: "nopool", serverName: "quictun-server"},
		{name: "client of another CA", client: "other-client", serverName: "localhost", wantErr: "unknown authority"},
		{name: "client of another CA, sent anyway", client: "other-client", serverName: "localhost", sendAnyway: true,
			wantErr: "certificate signed by unknown authority"},
		{name: "server name not in the certificate", client: "client1", serverName: "vpn.example.com", wantErr: "not vpn.example.com"},
		{name: "server certificate used as client", client: "server", serverName: "localhost", wantErr: "incompatible key usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair := testPair(t, tt.client)
			cli := ClientTLSConfig(pair, ca, tt.serverName)
			if tt.sendAnyway {
				cli.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
			}
			res := handshake(t, server, cli)
			if tt.wantErr != "" {
				if res.serverErr == nil || res.clientErr == nil {
					t.Fatalf("server error %v, client error %v: want both to fail", res.serverErr, res.clientErr)
				}
				if !strings.Contains(res.serverErr.Error(), tt.wantErr) && !strings.Contains(res.clientErr.Error(), tt.wantErr) {
					t.Errorf("server error %q, client error %q: want one containing %q", res.serverErr, res.clientErr, tt.wantErr)
				}
				return
			}
			if res.serverErr != nil || res.clientErr != nil {
				t.Fatalf("server error %v, client error %v", res.serverErr, res.clientErr)
			}
			if res.server.Version != tls.VersionTLS13 || res.server.NegotiatedProtocol != ALPN {
				t.Errorf("version %x ALPN %q, want TLS 1.3 and %q", res.server.Version, res.server.NegotiatedProtocol, ALPN)
			}
			id, err := IdentityOf(res.server.PeerCertificates[0])
			if err != nil || id.Name != tt.client {
				t.Errorf("server sees identity %q (%v), want %q", id.Name, err, tt.client)
			}
		})
	}
}

func TestHandshakeOpenSSLCerts(t *testing.T) {
	ca := testPool(t, "openssl/ca")
	server := ServerTLSConfig(testPair(t, "openssl/server"), ca)
	for _, client := range []string{"openssl/client21", "openssl/client-pool"} {
		t.Run(client, func(t *testing.T) {
			res := handshake(t, server, ClientTLSConfig(testPair(t, client), ca, "localhost"))
			if res.serverErr != nil || res.clientErr != nil {
				t.Fatalf("server error %v, client error %v", res.serverErr, res.clientErr)
			}
		})
	}
}

func TestTLSConfigs(t *testing.T) {
	ca := testPool(t, "ca")
	s := ServerTLSConfig(testPair(t, "server"), ca)
	if s.MinVersion != tls.VersionTLS13 || s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs != ca ||
		len(s.NextProtos) != 1 || s.NextProtos[0] != ALPN || s.VerifyConnection == nil || len(s.Certificates) != 1 {
		t.Errorf("server config %+v", s)
	}
	c := ClientTLSConfig(testPair(t, "client1"), ca, "")
	if c.MinVersion != tls.VersionTLS13 || c.RootCAs != ca || c.ServerName != "" || c.ClientSessionCache == nil ||
		len(c.NextProtos) != 1 || c.NextProtos[0] != ALPN || c.GetClientCertificate == nil {
		t.Errorf("client config %+v", c)
	}
	// The chain is presented whatever CAs the server asks for.
	if got, err := c.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil || got == nil || len(got.Certificate) == 0 {
		t.Errorf("GetClientCertificate = %v, %v; want the client's certificate", got, err)
	}
}

func TestHandshakeResumes(t *testing.T) {
	ca := testPool(t, "ca")
	server := ServerTLSConfig(testPair(t, "server"), ca)
	var verified []bool // DidResume of each VerifyConnection call
	inner := server.VerifyConnection
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		verified = append(verified, cs.DidResume)
		return inner(cs)
	}
	cli := ClientTLSConfig(testPair(t, "client1"), ca, "localhost")
	for i, wantResumed := range []bool{false, true} {
		res := handshake(t, server, cli)
		if res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("connection %d: server error %v, client error %v", i, res.serverErr, res.clientErr)
		}
		if res.server.DidResume != wantResumed {
			t.Errorf("connection %d: DidResume %v, want %v", i, res.server.DidResume, wantResumed)
		}
		if id, err := IdentityOf(res.server.PeerCertificates[0]); err != nil || id.Name != "client1" {
			t.Errorf("connection %d: identity %q (%v)", i, id.Name, err)
		}
	}
	if len(verified) != 2 || verified[0] || !verified[1] {
		t.Errorf("VerifyConnection ran with DidResume %v, want [false true]", verified)
	}
}

func TestVerifyClient(t *testing.T) {
	ca := testPool(t, "ca")
	client := testPair(t, "client1").Leaf
	server := testPair(t, "server").Leaf
	other := testPair(t, "other-client").Leaf
	now := time.Now()
	tests := []struct {
		name    string
		certs   []*x509.Certificate
		resumed bool
		at      time.Time
		wantErr string
	}{
		{name: "good", certs: []*x509.Certificate{client}, at: now},
		{name: "good resumed", certs: []*x509.Certificate{client}, resumed: true, at: now},
		{name: "no certificate", at: now, wantErr: "no certificate"},
		{name: "server-only EKU", certs: []*x509.Certificate{server}, at: now, wantErr: "not for client authentication"},
		{name: "expired", certs: []*x509.Certificate{client}, at: client.NotAfter.Add(time.Minute), wantErr: "expired"},
		{name: "not yet valid", certs: []*x509.Certificate{client}, at: client.NotBefore.Add(-time.Minute), wantErr: "is not yet valid: valid from"},
		{name: "resumed, CA no longer trusted", certs: []*x509.Certificate{other}, resumed: true, at: now, wantErr: "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyClient(tls.ConnectionState{PeerCertificates: tt.certs, DidResume: tt.resumed}, ca, tt.at)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// The config's own VerifyConnection uses the clock: a server-only
	// certificate is refused there too.
	cfg := ServerTLSConfig(testPair(t, "server"), ca)
	if err := cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{server}, DidResume: true}); err == nil {
		t.Error("VerifyConnection accepted a server-only certificate")
	}
}
