package main

// nettool ping: ICMP echo, so that the demo needs no iputils-ping. It
// speaks ping's language where the scripts read it (the "N packets
// transmitted, M received, P% packet loss" and "rtt min/avg/max" lines) but
// is stricter about success: it exits 0 only when every echo is answered.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Bounds of the ping flags: a typo cannot start a ping that runs for hours.
const (
	pingMaxCount    = 1000
	pingMaxInterval = 10 * time.Second
	pingMaxWait     = 60 * time.Second
	pingMaxSize     = 65000
)

// IANA protocol numbers, as icmp.ParseMessage wants them.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// pingOptions is one run of ping.
type pingOptions struct {
	dst      netip.Addr
	count    int           // echo requests to send
	interval time.Duration // between requests
	wait     time.Duration // after the last request, for its reply
	size     int           // payload bytes per request
}

// pingResult is what a run saw.
type pingResult struct {
	sent, received int
	rtts           []time.Duration // of the replies, in arrival order
	sendErr        error           // the last error sending a request
}

func pingMain(args []string) error {
	fs := flag.NewFlagSet("ping", flag.ExitOnError)
	count := fs.Int("count", 3, fmt.Sprintf("echo requests to send (1..%d)", pingMaxCount))
	interval := fs.Duration("interval", 200*time.Millisecond, fmt.Sprintf("time between requests (at most %v)", pingMaxInterval))
	wait := fs.Duration("wait", time.Second, fmt.Sprintf("how long to wait for the last reply (at most %v)", pingMaxWait))
	size := fs.Int("size", 56, fmt.Sprintf("payload bytes per request (0..%d)", pingMaxSize))
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: nettool ping [-count N] [-interval D] [-wait D] [-size N] ADDR")
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want one address to ping")
	}
	dst, err := netip.ParseAddr(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("address %q: %w (an IPv4 or IPv6 address, not a name)", fs.Arg(0), err)
	}
	opt := pingOptions{dst: dst.Unmap(), count: *count, interval: *interval, wait: *wait, size: *size}
	if err := opt.check(); err != nil {
		return err
	}
	res, err := ping(opt, os.Stdout)
	if err != nil {
		return err
	}
	return res.verdict()
}

func (o pingOptions) check() error {
	switch {
	case o.count < 1 || o.count > pingMaxCount:
		return fmt.Errorf("-count %d: want 1..%d", o.count, pingMaxCount)
	case o.interval <= 0 || o.interval > pingMaxInterval:
		return fmt.Errorf("-interval %v: want more than 0, at most %v", o.interval, pingMaxInterval)
	case o.wait <= 0 || o.wait > pingMaxWait:
		return fmt.Errorf("-wait %v: want more than 0, at most %v", o.wait, pingMaxWait)
	case o.size < 0 || o.size > pingMaxSize:
		return fmt.Errorf("-size %d: want 0..%d", o.size, pingMaxSize)
	}
	return nil
}

// verdict is nil when every request was answered.
func (r pingResult) verdict() error {
	if r.received == r.sent {
		return nil
	}
	if r.sendErr != nil {
		return fmt.Errorf("%d of %d echoes answered; last send error: %w", r.received, r.sent, r.sendErr)
	}
	return fmt.Errorf("%d of %d echoes answered", r.received, r.sent)
}

// ping sends o.count echo requests to o.dst over a raw ICMP socket (which
// needs root or CAP_NET_RAW: ICMP datagram sockets are off for root too in
// a new network namespace, whose net.ipv4.ping_group_range is empty), and
// prints a line per reply and ping's summary lines to out. It returns when
// every reply is in or o.wait after the last request, whichever is first:
// at most (count-1)·interval + wait.
func ping(o pingOptions, out io.Writer) (pingResult, error) {
	network, laddr, proto := "ip4:icmp", "0.0.0.0", protoICMP
	var reqType, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if o.dst.Is6() {
		network, laddr, proto = "ip6:ipv6-icmp", "::", protoICMPv6
		reqType, replyType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	c, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return pingResult{}, fmt.Errorf("open raw ICMP socket (needs root or CAP_NET_RAW): %w", err)
	}
	defer c.Close()

	// A raw socket sees every ICMP message of the namespace: our own
	// requests on loopback, other pings' replies, neighbour discovery. Ours
	// carry this run's identifier, and their payload comes back unchanged.
	id := int(rand.N[uint16](1<<16-1)) + 1
	payload := make([]byte, o.size)
	for i := range payload {
		payload[i] = byte(i)
	}
	dst := &net.IPAddr{IP: o.dst.AsSlice(), Zone: o.dst.Zone()}
	fmt.Fprintf(out, "PING %s: %d echoes of %d bytes\n", o.dst, o.count, o.size)

	var res pingResult
	sentAt := make([]time.Time, o.count)
	answered := make([]bool, o.count)
	buf := make([]byte, pingMaxSize+512)
	next, end := time.Now(), time.Time{}
	for {
		now := time.Now()
		if res.sent < o.count && !now.Before(next) {
			i := res.sent // icmp_seq i+1, as ping counts
			msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: i + 1, Data: payload}}
			b, err := msg.Marshal(nil) // the kernel sums ICMPv6 (pseudo-header) itself
			if err != nil {
				return res, fmt.Errorf("marshal echo %d: %w", i+1, err)
			}
			sentAt[i] = now
			if _, err := c.WriteTo(b, dst); err != nil {
				res.sendErr = err
				fmt.Fprintf(out, "send echo %d: %v\n", i+1, err)
			}
			res.sent++
			next = now.Add(o.interval)
			if res.sent == o.count {
				end = now.Add(o.wait)
			}
			continue
		}
		if res.sent == o.count && (res.received == o.count || !now.Before(end)) {
			break
		}
		deadline := end
		if res.sent < o.count {
			deadline = next
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return res, err
		}
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return res, fmt.Errorf("read: %w", err)
		}
		ip, ok := peer.(*net.IPAddr)
		if !ok {
			continue
		}
		from, ok := netip.AddrFromSlice(ip.IP)
		if !ok || from.Unmap() != o.dst.WithZone("") {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok || echo.ID != id {
			continue
		}
		i := echo.Seq - 1
		if i < 0 || i >= res.sent || answered[i] {
			continue
		}
		if !bytes.Equal(echo.Data, payload) {
			fmt.Fprintf(out, "reply to echo %d from %s with a changed payload: not counted\n", echo.Seq, o.dst)
			continue
		}
		answered[i] = true
		rtt := time.Since(sentAt[i])
		res.received++
		res.rtts = append(res.rtts, rtt)
		fmt.Fprintf(out, "%d bytes from %s: icmp_seq=%d time=%s ms\n", n, o.dst, echo.Seq, ms(rtt))
	}
	res.summary(out, o.dst)
	return res, nil
}

// summary prints ping's closing lines.
func (r pingResult) summary(out io.Writer, dst netip.Addr) {
	loss := 100 * (r.sent - r.received) / r.sent
	fmt.Fprintf(out, "--- %s ping statistics ---\n", dst)
	fmt.Fprintf(out, "%d packets transmitted, %d received, %d%% packet loss\n", r.sent, r.received, loss)
	if len(r.rtts) == 0 {
		return
	}
	lo, hi, sum := r.rtts[0], r.rtts[0], time.Duration(0)
	for _, d := range r.rtts {
		lo, hi, sum = min(lo, d), max(hi, d), sum+d
	}
	fmt.Fprintf(out, "rtt min/avg/max = %s/%s/%s ms\n", ms(lo), ms(sum/time.Duration(len(r.rtts))), ms(hi))
}

// ms formats d in milliseconds with microsecond resolution, as ping does.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }
