package udp

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// fakeBatch hands out prepared datagrams, one batch per ReadBatch call.
type fakeBatch struct {
	batches [][]fakeDatagram
	calls   int
}

type fakeDatagram struct {
	data []byte
	oob  []byte
	addr net.Addr
}

func (f *fakeBatch) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	f.calls++
	if len(f.batches) == 0 {
		return 0, net.ErrClosed
	}
	b := f.batches[0]
	f.batches = f.batches[1:]
	for i, d := range b {
		ms[i].N = copy(ms[i].Buffers[0], d.data)
		ms[i].NN = copy(ms[i].OOB, d.oob)
		ms[i].Addr = d.addr
	}
	return len(b), nil
}

// groCmsg builds a UDP_GRO control message saying size, preceded by an
// unrelated one (IP_TOS) that the parser must skip.
func groCmsg(t *testing.T, size int) []byte {
	t.Helper()
	b := cmsg(unix.IPPROTO_IP, unix.IP_TOS, []byte{0x02})
	v := make([]byte, 4)
	binary.NativeEndian.PutUint32(v, uint32(size))
	return append(b, cmsg(unix.IPPROTO_UDP, unix.UDP_GRO, v)...)
}

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func messages(n, size int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
		ms[i].OOB = make([]byte, 128)
	}
	return ms
}

// TestGROReaderSplits feeds coalesced and plain datagrams through the
// splitter and checks every segment comes out whole, in order, with its
// sender and control messages, across calls with fewer slots than segments.
func TestGROReaderSplits(t *testing.T) {
	a := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4433}
	b := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 4433}
	run := bytes.Repeat([]byte("0123456789"), 350) // 3500 bytes: segments of 1000, 1000, 1000, 500
	plain := bytes.Repeat([]byte{0xee}, 700)
	oob := groCmsg(t, 1000)
	f := &fakeBatch{batches: [][]fakeDatagram{
		{{data: run, oob: oob, addr: a}, {data: plain, addr: b}},
		{{data: run[:2000], oob: oob, addr: b}}, // exactly two segments
	}}
	g := newGROReader(f)
	type seg struct {
		data []byte
		addr net.Addr
		gro  bool
	}
	want := []seg{
		{run[0:1000], a, true}, {run[1000:2000], a, true}, {run[2000:3000], a, true},
		{run[3000:3500], a, true}, {plain, b, false},
		{run[0:1000], b, true}, {run[1000:2000], b, true},
	}
	var got []seg
	calls := []int{3, 2, 2} // segments per call with 3 slots
	for i, n := range calls {
		ms := messages(3, 1452)
		k, err := g.ReadBatch(ms, 0)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if k != n {
			t.Fatalf("call %d returned %d messages, want %d", i, k, n)
		}
		for _, m := range ms[:k] {
			if m.Flags != 0 {
				t.Errorf("flags %#x on a whole segment", m.Flags)
			}
			got = append(got, seg{bytes.Clone(m.Buffers[0][:m.N]), m.Addr, groSegmentSize(m.OOB[:m.NN]) > 0})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d segments, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].data, want[i].data) || got[i].addr != want[i].addr || got[i].gro != want[i].gro {
			t.Errorf("segment %d: %d bytes from %v (gro cmsg %v), want %d bytes from %v (%v)",
				i, len(got[i].data), got[i].addr, got[i].gro, len(want[i].data), want[i].addr, want[i].gro)
		}
	}
	if f.calls != 2 {
		t.Errorf("%d reads of the socket, want 2", f.calls)
	}
	// The source is exhausted: its error comes through.
	if _, err := g.ReadBatch(messages(3, 1452), 0); err != net.ErrClosed {
		t.Errorf("after the last datagram: %v, want %v", err, net.ErrClosed)
	}
}

// TestGROReaderTruncates cuts a segment longer than quic-go's buffer, as
// the kernel would, and flags it.
func TestGROReaderTruncates(t *testing.T) {
	a := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4433}
	f := &fakeBatch{batches: [][]fakeDatagram{{{data: make([]byte, 2000), oob: groCmsg(t, 1000), addr: a}}}}
	g := newGROReader(f)
	ms := messages(4, 800)
	n, err := g.ReadBatch(ms, 0)
	if err != nil || n != 2 {
		t.Fatalf("ReadBatch = %d, %v; want 2 messages", n, err)
	}
	for i, m := range ms[:n] {
		if m.N != 800 || m.Flags&msgTrunc == 0 {
			t.Errorf("message %d: %d bytes, flags %#x; want 800 and MSG_TRUNC", i, m.N, m.Flags)
		}
	}
}

// TestGROReaderNoAlloc: splitting allocates nothing per datagram.
func TestGROReaderNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	a := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4433}
	oob := groCmsg(t, 1000)
	d := []fakeDatagram{{data: make([]byte, 40000), oob: oob, addr: a}}
	f := &fakeBatch{}
	g := newGROReader(f)
	ms := messages(8, 1452)
	allocs := testing.AllocsPerRun(100, func() {
		f.batches = append(f.batches[:0], d)
		for k := 0; k < 5; k++ {
			if _, err := g.ReadBatch(ms, 0); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 1 { // the fake's own append
		t.Errorf("%.1f allocations per 40 segments", allocs)
	}
}

// TestUDPConnGROKernel sends ten datagrams as one GSO write over loopback to
// a socket from listenUDP: the kernel must hand them over coalesced (one
// receive) and ReadBatch must give them back one by one, intact.
func TestUDPConnGROKernel(t *testing.T) {
	for _, tc := range []struct{ name, listen, send string }{
		{"IPv4", "127.0.0.1:0", "127.0.0.1"},
		{"IPv6", "[::1]:0", "::1"},
		{"IPv4 on a dual-stack socket", "[::]:0", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) { testUDPConnGRO(t, tc.listen, tc.send) })
	}
}

func testUDPConnGRO(t *testing.T, listen, send string) {
	rc, err := Listen(listen, discardLogger(), new(Counters))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	g, ok := rc.batch.(*groReader)
	if !ok {
		t.Skip("this kernel has no UDP_GRO (Linux 5.0+)")
	}
	sc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(send)})
	if err != nil {
		t.Skipf("no %s here: %v", send, err)
	}
	defer sc.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(send), Port: rc.LocalAddr().(*net.UDPAddr).Port}
	const segs, size = 10, 1200
	payload := make([]byte, 0, segs*size)
	for i := 0; i < segs; i++ {
		payload = append(payload, bytes.Repeat([]byte{byte('a' + i)}, size)...)
	}
	v := make([]byte, 2)
	binary.NativeEndian.PutUint16(v, size)
	if _, _, err := sc.WriteMsgUDP(payload, cmsg(unix.IPPROTO_UDP, unix.UDP_SEGMENT, v), dst); err != nil {
		t.Skipf("this kernel cannot send with UDP GSO: %v", err)
	}
	var got [][]byte
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < segs {
		ms := messages(4, 1452)
		n, err := rc.ReadBatch(ms, 0)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		for _, m := range ms[:n] {
			if a, ok := m.Addr.(*net.UDPAddr); !ok || !a.IP.Equal(sc.LocalAddr().(*net.UDPAddr).IP) || a.Port != sc.LocalAddr().(*net.UDPAddr).Port {
				t.Errorf("datagram from %v, want %v", m.Addr, sc.LocalAddr())
			}
			got = append(got, bytes.Clone(m.Buffers[0][:m.N]))
		}
	}
	for i, d := range got {
		if !bytes.Equal(d, payload[i*size:(i+1)*size]) {
			t.Errorf("datagram %d: %d bytes starting %q, want %d of %q", i, len(d), d[:min(1, len(d))], size, rune('a'+i))
		}
	}
	if g.n != 1 || g.msgs[0].N != segs*size {
		t.Errorf("the kernel handed over %d buffers (first %d bytes), want 1 of %d: no receive offload", g.n, g.msgs[0].N, segs*size)
	}
}
