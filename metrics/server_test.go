package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun"
)

// TestServerCollector carries known traffic both ways through a real
// tunnel, provokes two drops (a spoofed source from the client, a packet
// to an address no client has from the server's device) and checks every
// figure the server and client collectors export for it.
func TestServerCollector(t *testing.T) {
	s := startServer(t, "127.0.0.1:0")
	c1 := startClient(t, s, "client1", quictun.ClientConfig{}, true)
	_, serverCert := loadCert(t, "server")
	_, client1Cert := loadCert(t, "client1")
	sc := NewServerCollector(s.srv, Options{CertificateExpiry: serverCert.NotAfter})
	cc := NewClientCollector(c1.cl, Options{CertificateExpiry: client1Cert.NotAfter})

	const up, upSize, down, downSize = 50, 200, 30, 300
	for range up {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("c1->srv"), upSize))
	}
	if got := s.peer.waitFor(up, []byte("c1->srv"), 5*time.Second); got != up {
		t.Fatalf("%d of %d packets reached the server's device", got, up)
	}
	for range down {
		s.peer.write(t, udp4("10.77.0.1", "10.77.0.11", []byte("srv->c1"), downSize))
	}
	if got := c1.peer.waitFor(down, []byte("srv->c1"), 5*time.Second); got != down {
		t.Fatalf("%d of %d packets reached the client's device", got, down)
	}
	c1.peer.write(t, udp4("10.77.0.99", "10.77.0.1", []byte("spoofed"), 100))
	s.peer.write(t, udp4("10.77.0.1", "10.77.0.50", []byte("nobody"), 120))
	waitUntil(t, 5*time.Second, "both drops counted", func() bool {
		m := scrape(t, sc)
		return m[`quictun_drops_total{reason="spoofed"}`] == 1 && m[`quictun_drops_total{reason="no_route"}`] == 1
	})

	m := scrape(t, sc)
	want(t, m, map[string]float64{
		"quictun_sessions": 1,
		// The spoofed packet was received, then dropped.
		"quictun_receive_packets_total":                                        up + 1,
		"quictun_receive_bytes_total":                                          up*upSize + 100,
		"quictun_transmit_packets_total":                                       down,
		"quictun_transmit_bytes_total":                                         down * downSize,
		`quictun_session_receive_packets_total{peer="client1"}`:                up + 1,
		`quictun_session_receive_bytes_total{peer="client1"}`:                  up*upSize + 100,
		`quictun_session_transmit_packets_total{peer="client1"}`:               down,
		`quictun_session_transmit_bytes_total{peer="client1"}`:                 down * downSize,
		`quictun_session_drops_total{peer="client1"}`:                          1,
		`quictun_drops_total{reason="spoofed"}`:                                1,
		`quictun_drops_total{reason="no_route"}`:                               1,
		`quictun_drops_total{reason="queue_full"}`:                             0,
		`quictun_handshakes_total{reason="",result="success"}`:                 1,
		`quictun_handshakes_total{reason="revoked",result="refused"}`:          0,
		"quictun_handshake_duration_seconds_count":                             1,
		"quictun_migrations_total":                                             0,
		`quictun_session_certificate_expiry_timestamp_seconds{peer="client1"}`: float64(client1Cert.NotAfter.Unix()),
		"quictun_peer_certificate_earliest_expiry_timestamp_seconds":           float64(client1Cert.NotAfter.Unix()),
		"quictun_certificate_expiry_timestamp_seconds":                         float64(serverCert.NotAfter.Unix()),
	})
	var drops int
	for k := range m {
		if strings.HasPrefix(k, "quictun_drops_total{") {
			drops++
		}
	}
	if n := len(quictun.DropReasons()); drops != n {
		t.Errorf("%d drop reasons exported, want all %d", drops, n)
	}
	if rtt := m[`quictun_session_rtt_seconds{peer="client1"}`]; rtt <= 0 || rtt > 1 {
		t.Errorf("session RTT %v s, want a loopback RTT above 0", rtt)
	}
	if d := m["quictun_handshake_duration_seconds_sum"]; d <= 0 || d > 10 {
		t.Errorf("handshake took %v s in all, want above 0 and within the control timeout", d)
	}

	m = scrape(t, cc)
	want(t, m, map[string]float64{
		"quictun_sessions":                                           1,
		"quictun_transmit_packets_total":                             up + 1,
		"quictun_transmit_bytes_total":                               up*upSize + 100,
		"quictun_receive_packets_total":                              down,
		"quictun_receive_bytes_total":                                down * downSize,
		`quictun_drops_total{reason="no_conn"}`:                      0,
		"quictun_reconnects_total":                                   0,
		"quictun_dial_failures_total":                                0,
		"quictun_handshake_duration_seconds_count":                   1,
		"quictun_peer_certificate_earliest_expiry_timestamp_seconds": float64(serverCert.NotAfter.Unix()),
		"quictun_certificate_expiry_timestamp_seconds":               float64(client1Cert.NotAfter.Unix()),
	})
	if rtt := m[`quictun_session_rtt_seconds{peer="`+s.srv.Addr()+`"}`]; rtt <= 0 || rtt > 1 {
		t.Errorf("client's session RTT %v s, want a loopback RTT above 0", rtt)
	}

	// The exposition: names, help, types, as a scraper sees them.
	if err := testutil.CollectAndCompare(sc, strings.NewReader(`
# HELP quictun_sessions Client sessions whose tunnel is up.
# TYPE quictun_sessions gauge
quictun_sessions 1
# HELP quictun_transmit_packets_total Packets sent into the tunnel (outbound: read from the device, sent as QUIC datagrams).
# TYPE quictun_transmit_packets_total counter
quictun_transmit_packets_total 30
`), "quictun_sessions", "quictun_transmit_packets_total"); err != nil {
		t.Error(err)
	}
	for name, col := range map[string]prometheus.Collector{"server": sc, "client": cc} {
		problems, err := testutil.CollectAndLint(col)
		if err != nil {
			t.Fatalf("%s: lint: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s collector: %s: %s", name, p.Metric, p.Text)
		}
	}
}

// TestServerTotalsOutliveSessions: when a client disconnects, its series
// go and the server's totals keep what it carried (a counter never goes
// down); when it comes back, its series start again.
func TestServerTotalsOutliveSessions(t *testing.T) {
	s := startServer(t, "127.0.0.1:0")
	sc := NewServerCollector(s.srv, Options{})
	c1 := startClient(t, s, "client1", quictun.ClientConfig{}, true)
	for range 10 {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("first"), 500))
	}
	if got := s.peer.waitFor(10, []byte("first"), 5*time.Second); got != 10 {
		t.Fatalf("%d of 10 packets arrived", got)
	}
	c1.stop()
	waitUntil(t, 5*time.Second, "session gone", func() bool { return len(s.srv.Sessions()) == 0 })
	m := scrape(t, sc)
	want(t, m, map[string]float64{
		"quictun_sessions":              0,
		"quictun_receive_packets_total": 10,
		"quictun_receive_bytes_total":   5000,
	})
	for k := range m {
		if strings.HasPrefix(k, "quictun_session_") {
			t.Errorf("%s still exported after the client left", k)
		}
	}
	if _, ok := m["quictun_peer_certificate_earliest_expiry_timestamp_seconds"]; ok {
		t.Error("earliest peer certificate expiry exported with no client connected")
	}

	c1 = startClient(t, s, "client1", quictun.ClientConfig{}, true)
	for range 4 {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("again"), 250))
	}
	if got := s.peer.waitFor(4, []byte("again"), 5*time.Second); got != 4 {
		t.Fatalf("%d of 4 packets arrived", got)
	}
	want(t, scrape(t, sc), map[string]float64{
		"quictun_sessions":                                     1,
		"quictun_receive_packets_total":                        14,
		"quictun_receive_bytes_total":                          6000,
		`quictun_session_receive_bytes_total{peer="client1"}`:  1000,
		`quictun_handshakes_total{reason="",result="success"}`: 2,
		"quictun_handshake_duration_seconds_count":             2,
	})
}

// TestServerHandshakeRefusals: refused clients are counted by reason — a
// certificate from another CA (refused in the TLS handshake), a client
// the server has no address for, and one that insists on the other mode
// (refused in the control exchange).
func TestServerHandshakeRefusals(t *testing.T) {
	s := startServer(t, "127.0.0.1:0")
	sc := NewServerCollector(s.srv, Options{})
	for _, c := range []struct {
		cert string
		cfg  quictun.ClientConfig
	}{
		{"other-client", quictun.ClientConfig{}},
		{"nopool", quictun.ClientConfig{}},
		{"client2", quictun.ClientConfig{Mode: device.TAP}},
	} {
		tc := startClient(t, s, c.cert, c.cfg, false)
		select {
		case err := <-tc.err:
			var pe *quictun.PermanentError
			if !errors.As(err, &pe) {
				t.Errorf("%s: Run = %v, want a refusal", c.cert, err)
			}
			tc.err <- err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still running 10 s after it dialled a server that refuses it", c.cert)
		}
	}
	// A refusal in the control exchange is counted once the server has
	// seen the client close, just after the client's Run returned.
	waitUntil(t, 5*time.Second, "three refusals counted", func() bool {
		m := scrape(t, sc)
		var n float64
		for k, v := range m {
			if strings.HasPrefix(k, "quictun_handshakes_total{") {
				n += v
			}
		}
		return n >= 3
	})
	want(t, scrape(t, sc), map[string]float64{
		`quictun_handshakes_total{reason="unknown_authority",result="refused"}`: 1,
		`quictun_handshakes_total{reason="no_address",result="refused"}`:        1,
		`quictun_handshakes_total{reason="mode_mismatch",result="refused"}`:     1,
		`quictun_handshakes_total{reason="",result="success"}`:                  0,
		"quictun_handshake_duration_seconds_count":                              0,
		"quictun_sessions": 0,
	})
}
