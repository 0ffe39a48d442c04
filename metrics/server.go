package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quictun/quictun/quictun"
)

// ServerSource is what a ServerCollector reads: a *quictun.Server.
type ServerSource interface {
	Sessions() []quictun.SessionInfo
	Status() quictun.ServerStatus
}

// ServerCollector exports a server's state. Each scrape takes one
// Sessions and one Status snapshot; the server's totals (bytes, packets,
// drops, migrations) include the sessions that have ended, so they only
// go up, while the per-session series (label peer, the client's identity)
// exist while the client is connected.
type ServerCollector struct {
	src ServerSource
	common
	handshakes *prometheus.Desc
	migrations *prometheus.Desc
	inFlight   *prometheus.Desc
	stray      *prometheus.Desc

	sessTxPackets, sessTxBytes *prometheus.Desc
	sessRxPackets, sessRxBytes *prometheus.Desc
	sessDrops                  *prometheus.Desc
	sessExpiry                 *prometheus.Desc
}

// NewServerCollector returns a collector of src's metrics.
func NewServerCollector(src ServerSource, opts Options) *ServerCollector {
	return &ServerCollector{
		src: src,
		common: newCommon(opts,
			"Client sessions whose tunnel is up.",
			"Time from a client's first packet to its tunnel being up (TLS handshake and control exchange), of the handshakes that succeeded.",
			"The earliest expiry among the connected clients' certificates, in seconds since the Unix epoch; absent while no client is connected."),
		handshakes: desc("handshakes_total",
			"Clients' attempts to bring a tunnel up, by result (success, refused, failed) and the reason of a refusal or failure.",
			"result", "reason"),
		inFlight: desc("handshakes_in_flight",
			"QUIC handshakes under way: first Initial received, not yet accepted or ended."),
		stray: desc("stray_packets_total",
			"Datagrams dropped on the server's port for no connection (junk, scanners, packets of connections gone), by reason.",
			"reason"),
		migrations: desc("migrations_total",
			"Changes of a client's underlay address (QUIC connection migration, NAT rebinding), over all sessions."),
		sessTxPackets: desc("session_transmit_packets_total", "Packets sent to this client.", "peer"),
		sessTxBytes:   desc("session_transmit_bytes_total", "Bytes of the packets sent to this client.", "peer"),
		sessRxPackets: desc("session_receive_packets_total", "Packets received from this client.", "peer"),
		sessRxBytes:   desc("session_receive_bytes_total", "Bytes of the packets received from this client.", "peer"),
		sessDrops:     desc("session_drops_total", "Drops of this client's session, all reasons together (quictun status shows them by reason).", "peer"),
		sessExpiry: desc("session_certificate_expiry_timestamp_seconds",
			"When this client's certificate expires, in seconds since the Unix epoch.", "peer"),
	}
}

// Describe implements prometheus.Collector.
func (c *ServerCollector) Describe(ch chan<- *prometheus.Desc) {
	c.describe(ch)
	for _, d := range []*prometheus.Desc{c.handshakes, c.inFlight, c.stray, c.migrations, c.sessTxPackets, c.sessTxBytes,
		c.sessRxPackets, c.sessRxBytes, c.sessDrops, c.sessExpiry} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ServerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	sessions := c.src.Sessions()

	gauge(ch, c.sessions, float64(st.Sessions))
	t := st.Total
	drops := st.Drops
	for i := range drops {
		drops[i] += t.Drops[i]
	}
	c.collectTraffic(ch, t.TxPackets, t.TxBytes, t.RxPackets, t.RxBytes, drops)
	counter(ch, c.migrations, t.RemoteChanges)
	for _, o := range quictun.HandshakeOutcomes() {
		counter(ch, c.handshakes, st.Handshakes.Get(o), o.Result(), o.Reason())
	}
	c.collectHistogram(ch, st.HandshakeTimes)
	gauge(ch, c.inFlight, float64(st.HandshakesInFlight))
	for _, r := range quictun.StrayReasons() {
		counter(ch, c.stray, st.Stray.Get(r), r.String())
	}

	var earliest time.Time
	peers := make([]time.Time, 0, len(sessions))
	for _, si := range sessions {
		counter(ch, c.sessTxPackets, si.TxPackets, si.Name)
		counter(ch, c.sessTxBytes, si.TxBytes, si.Name)
		counter(ch, c.sessRxPackets, si.RxPackets, si.Name)
		counter(ch, c.sessRxBytes, si.RxBytes, si.Name)
		counter(ch, c.sessDrops, si.Drops.Total(), si.Name)
		gauge(ch, c.rtt, si.RTT.Seconds(), si.Name)
		if !si.NotAfter.IsZero() {
			peers = append(peers, si.NotAfter)
			gauge(ch, c.sessExpiry, unixSeconds(si.NotAfter), si.Name)
			if earliest.IsZero() || si.NotAfter.Before(earliest) {
				earliest = si.NotAfter
			}
		}
	}
	c.collectExpiry(ch, earliest, st.Certificates, quictun.CertClient, peers)
}
