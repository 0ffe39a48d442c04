package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quictun/quictun/quictun"
)

// ClientSource is what a ClientCollector reads: a *quictun.Client.
type ClientSource interface {
	Status() quictun.ClientStatus
}

// ClientCollector exports a client's state. Each scrape takes one Status
// snapshot. The traffic counters count over all the client's connections.
type ClientCollector struct {
	src ClientSource
	common
	reconnects   *prometheus.Desc
	dialFailures *prometheus.Desc
}

// NewClientCollector returns a collector of src's metrics.
func NewClientCollector(src ClientSource, opts Options) *ClientCollector {
	return &ClientCollector{
		src: src,
		common: newCommon(opts,
			"1 while the tunnel is up, else 0.",
			"Time from dialling the server to the tunnel being up (TLS handshake and control exchange), of the dials that succeeded.",
			"When the server's certificate expires, in seconds since the Unix epoch; absent while not connected."),
		reconnects: desc("reconnects_total",
			"Times the tunnel came up again after it had been up before."),
		dialFailures: desc("dial_failures_total",
			"Attempts to reach the server that did not bring the tunnel up (unreachable, refused, handshake failed)."),
	}
}

// Describe implements prometheus.Collector.
func (c *ClientCollector) Describe(ch chan<- *prometheus.Desc) {
	c.describe(ch)
	ch <- c.reconnects
	ch <- c.dialFailures
}

// Collect implements prometheus.Collector.
func (c *ClientCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	si := st.Session
	up := 0.0
	if st.State == quictun.StateUp {
		up = 1
	}
	gauge(ch, c.sessions, up)
	c.collectTraffic(ch, si.TxPackets, si.TxBytes, si.RxPackets, si.RxBytes, si.Drops)
	counter(ch, c.reconnects, st.Reconnects)
	counter(ch, c.dialFailures, st.DialFailures)
	c.collectHistogram(ch, st.HandshakeTimes)
	if st.State == quictun.StateUp {
		gauge(ch, c.rtt, si.RTT.Seconds(), st.Server)
	}
	// si.NotAfter is zero while there is no connection.
	c.collectExpiry(ch, si.NotAfter, st.Certificates, quictun.CertServer, []time.Time{si.NotAfter})
}
