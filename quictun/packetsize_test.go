package quictun

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
)

// sizeRelay forwards UDP between one client and a server on loopback and
// records the size of every packet it forwards, per direction.
type sizeRelay struct {
	front, back *net.UDPConn // front faces the client, back the server
	server      *net.UDPAddr
	mu          sync.Mutex
	client      *net.UDPAddr
	up, down    sizeCount // up: client → server
}

type sizeCount struct {
	full atomic.Int64 // packets of exactly the expected size
	over atomic.Int64 // packets larger than it
	max  atomic.Int64
}

func (c *sizeCount) add(n, want int) {
	switch {
	case n == want:
		c.full.Add(1)
	case n > want:
		c.over.Add(1)
	}
	for {
		m := c.max.Load()
		if int64(n) <= m || c.max.CompareAndSwap(m, int64(n)) {
			return
		}
	}
}

func startSizeRelay(t *testing.T, server string, want int) *sizeRelay {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	r := &sizeRelay{front: front, back: back, server: srv}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → server
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = from
			r.mu.Unlock()
			r.up.add(n, want)
			back.WriteToUDP(buf[:n], srv)
		}
	}()
	go func() { // server → client
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := back.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			to := r.client
			r.mu.Unlock()
			r.down.add(n, want)
			if to != nil {
				front.WriteToUDP(buf[:n], to)
			}
		}
	}()
	t.Cleanup(func() {
		front.Close()
		back.Close()
		wg.Wait()
	})
	return r
}

// TestFullPacketFillsQUICPacket checks the sizing that lets quic-go send a
// bulk transfer in GSO batches: a tunnel packet of the full TUN MTU must
// travel in a UDP datagram of exactly the configured packet size (quic-go
// batches only exactly-full packets), and nothing may exceed that size.
func TestFullPacketFillsQUICPacket(t *testing.T) {
	for _, size := range []int{DefaultPacketSize, 1350} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s := startServer(t, device.TUN, ServerConfig{
				Networks:   []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
				PacketSize: size,
			})
			relay := startSizeRelay(t, s.srv.Addr(), size)
			c := startClient(t, s, "client1", "ca", ClientConfig{Server: relay.front.LocalAddr().String(), PacketSize: size}, true)
			if c.a.MTU != TUNMTU(size) {
				t.Fatalf("client MTU = %d, want %d", c.a.MTU, TUNMTU(size))
			}
			const n = 40
			payload := make([]byte, c.a.MTU-28)
			for i := 0; i < n; i++ {
				copy(payload, fmt.Sprintf("up-%02d", i))
				c.peer.write(t, udp4("10.77.0.11", "10.77.0.1", payload, true))
				if s.peer.next(5*time.Second, hasPayload([]byte(fmt.Sprintf("up-%02d", i)))) == nil {
					t.Fatalf("full-size packet %d did not reach the server", i)
				}
				copy(payload, fmt.Sprintf("dn-%02d", i))
				s.peer.write(t, udp4("10.77.0.1", "10.77.0.11", payload, true))
				if c.peer.next(5*time.Second, hasPayload([]byte(fmt.Sprintf("dn-%02d", i)))) == nil {
					t.Fatalf("full-size packet %d did not reach the client", i)
				}
			}
			for dir, cnt := range map[string]*sizeCount{"client→server": &relay.up, "server→client": &relay.down} {
				if got := cnt.full.Load(); got < n {
					t.Errorf("%s: %d UDP datagrams of exactly %d bytes, want at least %d (largest seen %d)", dir, got, size, n, cnt.max.Load())
				}
				if got := cnt.over.Load(); got > 0 {
					t.Errorf("%s: %d UDP datagrams larger than %d bytes (largest %d)", dir, got, size, cnt.max.Load())
				}
			}
		})
	}
}
