// Package metrics exports a quictun server's or client's state as
// Prometheus metrics: collectors that read the core's snapshots
// (quictun.Server.Sessions and Status, quictun.Client.Status) when
// Prometheus scrapes, and the HTTP endpoint that serves them with the Go
// runtime's and the process's metrics.
//
// Nothing here touches the data path: the core counts with its own atomics
// whether metrics are on or not, and a scrape copies them. The core does
// not import this package (or Prometheus); only the command line does.
// The names, types and labels are listed in docs/OPERATIONS.md
// ("Metrics").
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quictun/quictun/quictun"
)

// namespace prefixes every metric of ours.
const namespace = "quictun"

// Options is what a collector needs that the core's snapshots do not
// carry. The zero value is ready.
type Options struct {
	// CertificateExpiry is when this process's own certificate expires.
	// Zero: quictun_certificate_expiry_timestamp_seconds is not exported.
	CertificateExpiry time.Time
}

// NewRegistry returns a registry with the Go runtime's and the process's
// collectors (go_*, process_*) and cs.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// desc returns the descriptor of quictun_<name>.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

// common are the metrics a server and a client both export.
type common struct {
	sessions              *prometheus.Desc
	txPackets, txBytes    *prometheus.Desc
	rxPackets, rxBytes    *prometheus.Desc
	drops                 *prometheus.Desc
	handshakeSeconds      *prometheus.Desc
	rtt                   *prometheus.Desc
	peerExpiry, ownExpiry *prometheus.Desc
	caExpiry, expiring    *prometheus.Desc
	certificateExpiry     time.Time
}

func newCommon(opts Options, sessionsHelp, handshakeHelp, peerExpiryHelp string) common {
	return common{
		sessions: desc("sessions", sessionsHelp),
		txPackets: desc("transmit_packets_total",
			"Packets sent into the tunnel (outbound: read from the device, sent as QUIC datagrams)."),
		txBytes: desc("transmit_bytes_total",
			"Bytes of the packets counted by quictun_transmit_packets_total (inner packets, without QUIC or UDP overhead)."),
		rxPackets: desc("receive_packets_total",
			"Packets received from the tunnel (inbound: QUIC datagrams carrying a packet, reassembled ones counted once)."),
		rxBytes: desc("receive_bytes_total",
			"Bytes of the packets counted by quictun_receive_packets_total (inner packets)."),
		drops: desc("drops_total",
			"Packets, frames or datagrams dropped, by reason (the names of the drop reasons in docs/OPERATIONS.md).", "reason"),
		handshakeSeconds: desc("handshake_duration_seconds", handshakeHelp),
		rtt:              desc("session_rtt_seconds", "QUIC's smoothed round-trip time estimate of the session.", "peer"),
		peerExpiry:       desc("peer_certificate_earliest_expiry_timestamp_seconds", peerExpiryHelp),
		ownExpiry: desc("certificate_expiry_timestamp_seconds",
			"When this process's own certificate expires, in seconds since the Unix epoch."),
		caExpiry: desc("ca_certificate_expiry_timestamp_seconds",
			"When each CA certificate this process verifies its peers against (--ca) expires, in seconds since the Unix epoch, by the CA's name.", "name"),
		expiring: desc("certificates_expiring",
			"Certificates within 30 days of their expiry or past it, the ones the log warns about once a day: by whose they are (server, client, ca); this process's own, its CAs, and its connected peers'.", "kind"),
		certificateExpiry: opts.CertificateExpiry,
	}
}

// describe sends the common descriptors.
func (m *common) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.sessions, m.txPackets, m.txBytes, m.rxPackets, m.rxBytes,
		m.drops, m.handshakeSeconds, m.rtt, m.peerExpiry, m.ownExpiry, m.caExpiry, m.expiring} {
		ch <- d
	}
}

// collectTraffic sends the traffic counters and the drops by reason (every
// reason, zeros included, so that a rate is defined from the first scrape).
func (m *common) collectTraffic(ch chan<- prometheus.Metric, txPackets, txBytes, rxPackets, rxBytes uint64, drops quictun.DropCounts) {
	counter(ch, m.txPackets, txPackets)
	counter(ch, m.txBytes, txBytes)
	counter(ch, m.rxPackets, rxPackets)
	counter(ch, m.rxBytes, rxBytes)
	for _, r := range quictun.DropReasons() {
		counter(ch, m.drops, drops.Get(r), r.String())
	}
}

// collectExpiry sends the own certificate's expiry, if known, the
// earliest of the peers' (zero: no peer), the CAs' (from certs, the
// snapshot's CertificateInfo), and the count of certificates near their
// expiry by kind: those of certs and the peers' (peerKind, peerNotAfter).
func (m *common) collectExpiry(ch chan<- prometheus.Metric, earliestPeer time.Time, certs []quictun.CertificateInfo,
	peerKind string, peerNotAfter []time.Time) {
	if !m.certificateExpiry.IsZero() {
		gauge(ch, m.ownExpiry, unixSeconds(m.certificateExpiry))
	}
	if !earliestPeer.IsZero() {
		gauge(ch, m.peerExpiry, unixSeconds(earliestPeer))
	}
	now := time.Now()
	expiring := map[string]int{quictun.CertServer: 0, quictun.CertClient: 0, quictun.CertCA: 0}
	seenCA := map[string]bool{}
	for _, c := range certs {
		if c.Kind == quictun.CertCA && !seenCA[c.Name] {
			// Two CAs of one name (a renewed CA next to the old one) keep
			// one series: the one listed first.
			seenCA[c.Name] = true
			gauge(ch, m.caExpiry, unixSeconds(c.NotAfter), c.Name)
		}
		if quictun.ExpiresSoon(c.NotAfter, now) {
			expiring[c.Kind]++
		}
	}
	for _, t := range peerNotAfter {
		if quictun.ExpiresSoon(t, now) {
			expiring[peerKind]++
		}
	}
	for _, k := range []string{quictun.CertServer, quictun.CertClient, quictun.CertCA} {
		gauge(ch, m.expiring, float64(expiring[k]), k)
	}
}

// collectHistogram sends h as a Prometheus histogram (cumulative buckets,
// in seconds).
func (m *common) collectHistogram(ch chan<- prometheus.Metric, h quictun.DurationHistogram) {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, b := range h.Bounds {
		n += h.Counts[i]
		buckets[b.Seconds()] = n
	}
	ch <- prometheus.MustNewConstHistogram(m.handshakeSeconds, h.Count(), h.Sum.Seconds(), buckets)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// unixSeconds returns t in seconds since the Unix epoch.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
