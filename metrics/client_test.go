package metrics

import (
	"testing"
	"time"

	"github.com/quictun/quictun/quictun"
)

// TestClientCollectorReconnects stops the server under a connected
// client, leaves it down for 2 s (longer than one dial's 1.5 s handshake
// timeout) and starts a new one on the same address: the client's
// collector counts the failed dials, one reconnect and two handshakes, and
// its traffic counters carry on over both connections.
func TestClientCollectorReconnects(t *testing.T) {
	s := startServer(t, "127.0.0.1:0")
	addr := s.srv.Addr()
	c1 := startClient(t, s, "client1", quictun.ClientConfig{}, true)
	cc := NewClientCollector(c1.cl, Options{})
	for range 5 {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("before"), 100))
	}
	if got := s.peer.waitFor(5, []byte("before"), 5*time.Second); got != 5 {
		t.Fatalf("%d of 5 packets arrived", got)
	}
	want(t, scrape(t, cc), map[string]float64{"quictun_sessions": 1, "quictun_reconnects_total": 0})

	s.stop()
	waitUntil(t, 5*time.Second, "client notices the server is gone", func() bool {
		return c1.cl.Status().State != quictun.StateUp
	})
	m := scrape(t, cc)
	want(t, m, map[string]float64{"quictun_sessions": 0})
	for k := range m {
		if k == `quictun_session_rtt_seconds{peer="`+addr+`"}` {
			t.Errorf("%s exported while the tunnel is down", k)
		}
	}
	time.Sleep(2 * time.Second)

	s2 := startServer(t, addr)
	waitUntil(t, 10*time.Second, "client back up", func() bool {
		return c1.cl.Status().State == quictun.StateUp
	})
	for range 5 {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("after"), 100))
	}
	if got := s2.peer.waitFor(5, []byte("after"), 5*time.Second); got != 5 {
		t.Fatalf("%d of 5 packets arrived after the reconnect", got)
	}
	m = scrape(t, cc)
	want(t, m, map[string]float64{
		"quictun_sessions":                         1,
		"quictun_reconnects_total":                 1,
		"quictun_handshake_duration_seconds_count": 2,
		"quictun_transmit_packets_total":           10,
		"quictun_transmit_bytes_total":             1000,
	})
	if f := m["quictun_dial_failures_total"]; f < 1 {
		t.Errorf("quictun_dial_failures_total = %v after the server was down for 2 s, want at least 1", f)
	}
}
