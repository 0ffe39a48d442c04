package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TestE2EMetrics runs a TUN server with --metrics 127.0.0.1:9477 and two
// clients on the star underlay, client1 with --metrics on the same address
// in its own namespace and client2 without, and scrapes /metrics from
// inside the namespaces. It checks the byte and packet counters of both
// ends against a known number of pings, that provoked drops (a spoofed
// source from client1, a packet to a tunnel address nobody has from the
// server) and a refused client show up under their reasons, that the Go
// and process collectors are there, that nothing listens where --metrics
// is not given, and that a second server whose metrics port is taken
// fails before it creates its device.
func TestE2EMetrics(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "met")
	star := l.Star(2)
	srvNS, c1NS, c2NS := star.Server, star.Clients[0], star.Clients[1]

	l.Cert("ca", "--dir", "pki", "--name", "E2E Metrics CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	l.Cert("issue", "--dir", "pki", "--name", "c2", "--ip", "10.77.0.12/24")
	l.Cert("issue", "--dir", "pki", "--name", "far", "--ip", "10.99.0.9/24") // outside the server's network
	const metricsAddr = "127.0.0.1:9477"
	srv := l.StartQuictun(srvNS, "server", e2eListenArgs("--dev", "qt0", "--ip", "10.77.0.1/24", "--metrics", metricsAddr)...)
	c1 := l.StartQuictun(c1NS, "client1", e2eConnectArgs("c1", "--dev", "qt0", "--metrics", metricsAddr)...)
	l.StartQuictun(c2NS, "client2", e2eConnectArgs("c2", "--dev", "qt0")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	l.WaitPing(c2NS, "10.77.0.1", nsPingTimeout)
	for _, p := range []*nsProc{srv, c1} {
		if !p.WaitOutput("serving metrics", 5*time.Second) {
			t.Fatalf("%s does not say it serves metrics:\n%s", p.name, p.Dump())
		}
	}
	scrapeSrv := func(t *testing.T) e2eMetrics { return e2eScrape(t, srvNS, metricsAddr) }
	scrapeC1 := func(t *testing.T) e2eMetrics { return e2eScrape(t, c1NS, metricsAddr) }

	t.Run("nothing listens without --metrics", func(t *testing.T) {
		l := l.With(t)
		if out := strings.TrimSpace(l.Must(c2NS, "ss", "-Hltn")); out != "" {
			t.Errorf("client2, started without --metrics, has TCP listeners:\n%s", out)
		}
		for _, ns := range []string{srvNS, c1NS} {
			out := strings.TrimSpace(l.Must(ns, "ss", "-Hltn"))
			if lines := strings.Split(out, "\n"); len(lines) != 1 || !strings.Contains(out, metricsAddr) {
				t.Errorf("%s: want one TCP listener on %s, got:\n%s", ns, metricsAddr, out)
			}
		}
	})

	t.Run("collectors", func(t *testing.T) {
		for name, m := range map[string]e2eMetrics{"server": scrapeSrv(t), "client1": scrapeC1(t)} {
			for _, k := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds",
				"quictun_certificate_expiry_timestamp_seconds", "quictun_peer_certificate_earliest_expiry_timestamp_seconds",
				"quictun_handshake_duration_seconds_count"} {
				if _, ok := m[k]; !ok {
					t.Errorf("%s: %s missing", name, k)
				}
			}
			if exp := m["quictun_certificate_expiry_timestamp_seconds"]; exp < float64(time.Now().Unix()) {
				t.Errorf("%s: own certificate expires at %v, want the future", name, exp)
			}
		}
		m := scrapeSrv(t)
		if m["quictun_sessions"] != 2 {
			t.Errorf("server: quictun_sessions = %v, want 2", m["quictun_sessions"])
		}
		if rtt := m[`quictun_session_rtt_seconds{peer="c1"}`]; rtt <= 0 || rtt > 0.5 {
			t.Errorf("server: RTT of c1 %v s, want a veth's (above 0)", rtt)
		}
		if m := scrapeC1(t); m["quictun_sessions"] != 1 || m["quictun_reconnects_total"] != 0 {
			t.Errorf("client1: sessions %v, reconnects %v; want 1 and 0", m["quictun_sessions"], m["quictun_reconnects_total"])
		}
	})

	t.Run("bytes and packets", func(t *testing.T) {
		// 200 echoes of 1000 bytes of data: 1028-byte IP packets each way.
		const count, size = 200, 1028
		srv0, c0 := scrapeSrv(t), scrapeC1(t)
		out, err := nsPing(c1NS, "-c", strconv.Itoa(count), "-i", "0.01", "-s", strconv.Itoa(size-28), "-w", "20", "10.77.0.1")
		if sent, got, ok := nsPingCounts(out); err != nil || !ok || sent != count || got != count {
			t.Fatalf("ping: want %d/%d replies: %v\n%s", count, count, err, out)
		}
		srv1, c1m := scrapeSrv(t), scrapeC1(t)
		for _, c := range []struct {
			name    string
			m0, m1  e2eMetrics
			key     string
			want    float64
			minimum bool
		}{
			{"server", srv0, srv1, `quictun_session_receive_bytes_total{peer="c1"}`, count * size, false},
			{"server", srv0, srv1, `quictun_session_receive_packets_total{peer="c1"}`, count, false},
			{"server", srv0, srv1, `quictun_session_transmit_bytes_total{peer="c1"}`, count * size, false},
			{"server", srv0, srv1, `quictun_session_transmit_packets_total{peer="c1"}`, count, false},
			{"server", srv0, srv1, "quictun_receive_bytes_total", count * size, true},
			{"server", srv0, srv1, "quictun_transmit_bytes_total", count * size, true},
			{"client1", c0, c1m, "quictun_transmit_bytes_total", count * size, false},
			{"client1", c0, c1m, "quictun_transmit_packets_total", count, false},
			{"client1", c0, c1m, "quictun_receive_bytes_total", count * size, false},
			{"client1", c0, c1m, "quictun_receive_packets_total", count, false},
		} {
			d := c.m1[c.key] - c.m0[c.key]
			switch {
			case c.minimum && d < c.want:
				t.Errorf("%s: %s grew by %v, want at least %v", c.name, c.key, d, c.want)
			case !c.minimum && math.Abs(d-c.want) > 0.03*c.want:
				t.Errorf("%s: %s grew by %v, want %v ± 3%%", c.name, c.key, d, c.want)
			default:
				t.Logf("%s: %s grew by %v (sent %v)", c.name, c.key, d, c.want)
			}
		}
	})

	t.Run("drops by reason", func(t *testing.T) {
		l := l.With(t)
		m0 := scrapeSrv(t)
		// From the server's device, to a tunnel address no client has.
		if out, err := nsPing(srvNS, "-c", "3", "-i", "0.2", "-W", "1", "10.77.0.50"); err == nil {
			t.Errorf("ping to 10.77.0.50 (no client) was answered:\n%s", out)
		}
		// From client1, with a source address that is not its own.
		l.Must(c1NS, "ip", "addr", "add", "10.77.0.99/32", "dev", "qt0")
		if out, err := nsPing(c1NS, "-c", "4", "-i", "0.2", "-W", "1", "-I", "10.77.0.99", "10.77.0.1"); err == nil {
			t.Errorf("ping from spoofed 10.77.0.99 was answered:\n%s", out)
		}
		l.Must(c1NS, "ip", "addr", "del", "10.77.0.99/32", "dev", "qt0")
		m1 := scrapeSrv(t)
		// The kernels' own chatter (IPv6 router solicitations from the
		// clients, counted as link_local; multicast from the server's
		// device, no_route) may add a few drops at any time, so the
		// counts that see it are checked for at least what was sent.
		for _, c := range []struct {
			key     string
			want    float64
			atLeast bool
		}{
			{`quictun_drops_total{reason="no_route"}`, 3, true},
			{`quictun_drops_total{reason="spoofed"}`, 4, false},
			{`quictun_session_drops_total{peer="c1"}`, 4, true},
		} {
			d := m1[c.key] - m0[c.key]
			switch _, ok := m1[c.key]; {
			case !ok:
				t.Errorf("%s missing", c.key)
			case d < c.want || !c.atLeast && d != c.want:
				t.Errorf("%s grew by %v, want %v (at least: %v)", c.key, d, c.want, c.atLeast)
			default:
				t.Logf("%s grew by %v", c.key, d)
			}
		}
		if d := m1[`quictun_drops_total{reason="queue_full"}`] - m0[`quictun_drops_total{reason="queue_full"}`]; d != 0 {
			t.Errorf("queue_full drops grew by %v, want 0", d)
		}
	})

	t.Run("handshakes", func(t *testing.T) {
		l := l.With(t)
		code, stderr, exited := l.RunQuictun(c2NS, "far", e2eRejectTimeout, e2eConnectArgs("far", "--dev", "qt9")...)
		if !exited || code != 1 {
			t.Fatalf("client with an address outside the server's network: exited %v code %d, want exit 1\n%s", exited, code, stderr)
		}
		// The server counts a refusal once the client has closed the
		// connection, about when the client exits.
		refused := `quictun_handshakes_total{reason="no_address",result="refused"}`
		deadline := time.Now().Add(5 * time.Second)
		m := scrapeSrv(t)
		for m[refused] == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			m = scrapeSrv(t)
		}
		for key, want := range map[string]float64{
			`quictun_handshakes_total{reason="",result="success"}`:           2,
			`quictun_handshakes_total{reason="no_address",result="refused"}`: 1,
			`quictun_handshakes_total{reason="revoked",result="refused"}`:    0,
			"quictun_handshake_duration_seconds_count":                       2,
		} {
			if got, ok := m[key]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
			}
		}
		if sum := m["quictun_handshake_duration_seconds_sum"]; sum <= 0 || sum > 10 {
			t.Errorf("handshakes took %v s in all, want above 0 and below 10", sum)
		}
	})

	t.Run("port in use fails before the device", func(t *testing.T) {
		l := l.With(t)
		// A device made and removed again before the process exits would
		// be gone by the time the test looks: watch the links instead,
		// with a marker link made and deleted before and after to know
		// that the watch saw everything in between.
		mon := l.Start(srvNS, "link-monitor", "ip", "-o", "monitor", "link")
		marker := func(name string) {
			l.Must(srvNS, "ip", "link", "add", name, "type", "veth", "peer", "name", name+"p")
			l.Must(srvNS, "ip", "link", "del", name)
			if !mon.WaitOutput(name, 5*time.Second) {
				t.Fatalf("ip monitor did not report %s:\n%s", name, mon.Dump())
			}
		}
		marker("mark0")
		code, stderr, exited := l.RunQuictun(srvNS, "second-server", 10*time.Second, "listen",
			"--listen", "10.0.0.1:4434", "--cert", "pki/server.crt", "--key", "pki/server.key", "--ca", "pki/ca.crt",
			"--dev", "qtm1", "--ip", "10.78.0.1/24", "--metrics", metricsAddr)
		line := e2eErrorLine(stderr)
		if !exited || code != 1 || !strings.Contains(line, "--metrics "+metricsAddr) || !strings.Contains(line, "in use") {
			t.Errorf("second server on a taken metrics port: exited %v code %d, line %q; want exit 1 naming --metrics and the port in use\n%s",
				exited, code, line, stderr)
		}
		marker("mark1")
		if strings.Contains(mon.Stdout(), "qtm1") {
			t.Errorf("the failed server created its device qtm1:\n%s", mon.Stdout())
		}
		if m := scrapeSrv(t); m["quictun_sessions"] != 2 {
			t.Errorf("the first server's metrics after the failed start: sessions %v, want 2", m["quictun_sessions"])
		}
	})
}

// e2eMetrics holds the samples of one scrape by `name{label="value",…}`
// (labels as the exposition writes them, sorted by name).
type e2eMetrics map[string]float64

// e2eScrape fetches http://addr/metrics from inside namespace ns and
// parses the text format; it fails the test on error.
func e2eScrape(t *testing.T, ns, addr string) e2eMetrics {
	t.Helper()
	body, err := nsHTTPGet(ns, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatalf("scrape %s in %s: %v", addr, ns, err)
	}
	m := make(e2eMetrics)
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("scrape %s in %s: bad line %q", addr, ns, line)
		}
		m[line[:i]] = v
	}
	return m
}

// nsHTTPGet GETs url with a TCP connection made inside namespace ns: the
// dial runs on an OS thread moved into ns for the socket() call (a socket
// stays in the namespace it was made in), and moved back after.
func nsHTTPGet(ns, url string) (string, error) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("enter namespace %s: %w", ns, err)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		// A thread left in ns must not run other goroutines: unlocked only
		// once back, otherwise it ends with this goroutine.
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		return conn, err
	}
	client := &http.Client{
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), nil
}
