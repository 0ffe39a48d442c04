package device

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const protoTCP = 6

var (
	testMACa = net.HardwareAddr{0x02, 0x77, 0, 0, 0, 1}
	testMACb = net.HardwareAddr{0x02, 0x77, 0, 0, 0, 2}
)

// tcpFrameSpec describes a TCP frame built by tcpFrame.
type tcpFrameSpec struct {
	v6      bool
	vlan    bool
	seq     uint32
	flags   uint8
	payload []byte
	ipID    uint16
}

// tcpFrame returns an Ethernet frame carrying a TCP segment (with 12 bytes of
// options, as with timestamps) and the offset of its IP and TCP headers.
// The TCP checksum field holds the folded pseudo-header sum, as the kernel
// leaves it for checksum offload; the IPv4 header checksum is valid.
func tcpFrame(s tcpFrameSpec) (frame []byte, ipOff, tcpOff int) {
	f := append([]byte(nil), testMACb...)
	f = append(f, testMACa...)
	if s.vlan {
		f = append(f, 0x81, 0x00, 0x00, 0x2a)
	}
	ipOff = len(f) + 2
	tcpLen := 32
	if s.v6 {
		f = append(f, 0x86, 0xdd)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen+len(s.payload)))
		ip[6] = protoTCP
		ip[7] = 64
		copy(ip[8:], net.ParseIP("fd77::1").To16())
		copy(ip[24:], net.ParseIP("fd77::2").To16())
		f = append(f, ip...)
	} else {
		f = append(f, 0x08, 0x00)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+tcpLen+len(s.payload)))
		binary.BigEndian.PutUint16(ip[4:], s.ipID)
		binary.BigEndian.PutUint16(ip[6:], 0x4000)
		ip[8], ip[9] = 64, protoTCP
		copy(ip[12:], []byte{10, 79, 0, 1, 10, 79, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))
		f = append(f, ip...)
	}
	tcpOff = len(f)
	tcp := make([]byte, tcpLen)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], 777)
	tcp[12] = byte(tcpLen/4) << 4
	tcp[13] = s.flags
	binary.BigEndian.PutUint16(tcp[14:], 502)
	copy(tcp[20:], []byte{1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8}) // NOP NOP TS
	f = append(f, tcp...)
	f = append(f, s.payload...)
	// Partial checksum: the folded pseudo-header sum, not complemented.
	binary.BigEndian.PutUint16(f[tcpOff+16:], ^checksum(0, pseudoHeader(f, ipOff, len(f)-tcpOff)))
	return f, ipOff, tcpOff
}

// pseudoHeader returns the TCP/UDP pseudo-header of the IP packet at
// frame[ipOff:], for a transport length l4Len.
func pseudoHeader(frame []byte, ipOff, l4Len int) []byte {
	ip := frame[ipOff:]
	var p []byte
	if ip[0]>>4 == 6 {
		p = append(p, ip[8:40]...)
		p = append(p, byte(l4Len>>24), byte(l4Len>>16), byte(l4Len>>8), byte(l4Len), 0, 0, 0, ip[6])
	} else {
		p = append(p, ip[12:20]...)
		p = append(p, 0, ip[9], byte(l4Len>>8), byte(l4Len))
	}
	return p
}

// checkTCPFrame verifies, from scratch, the lengths and checksums of a TCP
// segment in an Ethernet frame with its IP header at ipOff, and returns the
// TCP header and payload.
func checkTCPFrame(t *testing.T, f []byte, ipOff int) (tcp, payload []byte) {
	t.Helper()
	ip := f[ipOff:]
	var l4 []byte
	switch ip[0] >> 4 {
	case 4:
		ihl := int(ip[0]&0xf) * 4
		if got := int(binary.BigEndian.Uint16(ip[2:])); got != len(ip) {
			t.Fatalf("IPv4 total length %d, frame holds %d", got, len(ip))
		}
		if checksum(0, ip[:ihl]) != 0 {
			t.Fatalf("bad IPv4 header checksum %#04x", binary.BigEndian.Uint16(ip[10:]))
		}
		l4 = ip[ihl:]
	case 6:
		if got := int(binary.BigEndian.Uint16(ip[4:])); got != len(ip)-40 {
			t.Fatalf("IPv6 payload length %d, frame holds %d", got, len(ip)-40)
		}
		l4 = ip[40:]
	default:
		t.Fatalf("IP version %d", ip[0]>>4)
	}
	sum := append(pseudoHeader(f, ipOff, len(l4)), l4...)
	if checksum(0, sum) != 0 {
		t.Fatalf("bad TCP checksum %#04x", binary.BigEndian.Uint16(l4[16:]))
	}
	off := int(l4[12]>>4) * 4
	return l4[:off], l4[off:]
}

func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestTCPSplit(t *testing.T) {
	const ack, fin, psh, cwr = 0x10, tcpFlagFIN, tcpFlagPSH, tcpFlagCWR
	tests := []struct {
		name    string
		v6      bool
		vlan    bool
		ecn     bool
		size    int
		gso     int
		flags   uint8
		seq     uint32
		wantSeg int
	}{
		{name: "ipv4", size: 10000, gso: 1448, flags: ack | psh, seq: 1, wantSeg: 7},
		{name: "ipv4 vlan", vlan: true, size: 65000, gso: 1448, flags: ack | psh | fin, seq: 0xffffff00, wantSeg: 45},
		{name: "ipv6", v6: true, size: 4000, gso: 1000, flags: ack | psh | cwr, seq: 99, wantSeg: 4},
		{name: "ipv6 vlan ecn", v6: true, vlan: true, ecn: true, size: 3001, gso: 1000, flags: ack | cwr | fin, seq: 5, wantSeg: 4},
		{name: "one segment", size: 500, gso: 1448, flags: ack | psh, seq: 7, wantSeg: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := patterned(tt.size)
			frame, ipOff, tcpOff := tcpFrame(tcpFrameSpec{v6: tt.v6, vlan: tt.vlan, seq: tt.seq, flags: tt.flags, payload: payload, ipID: 0xfffe})
			orig := append([]byte(nil), frame...)
			hdr := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, hdrLen: uint16(len(frame) / 2),
				gsoSize: uint16(tt.gso), csumStart: uint16(tcpOff), csumOffset: 16}
			if tt.v6 {
				hdr.gsoType = vnetGSOTCPv6
			}
			if tt.ecn {
				hdr.gsoType |= vnetGSOECN
			}
			var s tcpSplit
			if err := s.start(frame, hdr); err != nil {
				t.Fatal(err)
			}
			var got []byte
			out := make([]byte, 2000)
			for i := 0; s.pending(); i++ {
				if i == tt.wantSeg {
					t.Fatalf("more than %d segments", tt.wantSeg)
				}
				want := s.nextLen()
				n := s.segment(out)
				if n != want {
					t.Fatalf("segment %d: %d bytes, nextLen said %d", i, n, want)
				}
				seg := out[:n]
				if !bytes.Equal(seg[:ipOff], orig[:ipOff]) {
					t.Errorf("segment %d: Ethernet header %x, want %x", i, seg[:ipOff], orig[:ipOff])
				}
				tcp, data := checkTCPFrame(t, seg, ipOff)
				last := i == tt.wantSeg-1
				if len(data) != tt.gso && !last || len(data) > tt.gso {
					t.Errorf("segment %d: %d payload bytes, gso_size %d", i, len(data), tt.gso)
				}
				if seq := binary.BigEndian.Uint32(tcp[4:]); seq != tt.seq+uint32(len(got)) {
					t.Errorf("segment %d: seq %d, want %d", i, seq, tt.seq+uint32(len(got)))
				}
				wantFlags := tt.flags
				if !last {
					wantFlags &^= fin | psh
				}
				if i > 0 {
					wantFlags &^= cwr
				}
				if tcp[13] != wantFlags {
					t.Errorf("segment %d: flags %#02x, want %#02x", i, tcp[13], wantFlags)
				}
				if !bytes.Equal(tcp[20:], orig[tcpOff+20:tcpOff+32]) || !bytes.Equal(tcp[8:12], orig[tcpOff+8:tcpOff+12]) {
					t.Errorf("segment %d: TCP options or ack changed", i)
				}
				if !tt.v6 {
					if id := binary.BigEndian.Uint16(seg[ipOff+4:]); id != 0xfffe+uint16(i) {
						t.Errorf("segment %d: IPv4 ID %#x, want %#x", i, id, 0xfffe+uint16(i))
					}
				}
				got = append(got, data...)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("payloads joined: %d bytes, differ from the %d sent", len(got), len(payload))
			}
		})
	}
}

func TestTCPSplitRejects(t *testing.T) {
	frame, _, tcpOff := tcpFrame(tcpFrameSpec{payload: patterned(3000), flags: 0x18})
	good := vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 1000, csumStart: uint16(tcpOff), csumOffset: 16}
	v6frame, _, v6tcpOff := tcpFrame(tcpFrameSpec{v6: true, payload: patterned(3000), flags: 0x18})
	bad := func(f func(h *vnetHdr)) vnetHdr { h := good; f(&h); return h }
	tests := []struct {
		name  string
		frame []byte
		hdr   vnetHdr
	}{
		{"TCPv6 type on IPv4", frame, bad(func(h *vnetHdr) { h.gsoType = vnetGSOTCPv6 })},
		{"TCPv4 type on IPv6", v6frame, vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 1000, csumStart: uint16(v6tcpOff), csumOffset: 16}},
		{"UDP type", frame, bad(func(h *vnetHdr) { h.gsoType = 5 })},
		{"zero gso_size", frame, bad(func(h *vnetHdr) { h.gsoSize = 0 })},
		{"csum_start off the TCP header", frame, bad(func(h *vnetHdr) { h.csumStart += 4 })},
		{"csum_offset not TCP", frame, bad(func(h *vnetHdr) { h.csumOffset = 6 })},
		{"headers only", frame[:tcpOff+32], good},
		{"cut in the TCP header", frame[:tcpOff+10], good},
		{"not IP", append(append([]byte(nil), frame[:12]...), 0x08, 0x06, 0, 0), good},
	}
	for _, tt := range tests {
		var s tcpSplit
		if err := s.start(append([]byte(nil), tt.frame...), tt.hdr); !errors.Is(err, errBadFrame) || s.pending() {
			t.Errorf("%s: start = %v, pending %v; want errBadFrame and nothing pending", tt.name, err, s.pending())
		}
	}
}

// TestTCPSplitNoPanic feeds start random headers over frames of every
// length: it must refuse or split, never panic or split out of bounds.
func TestTCPSplitNoPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base, _, tcpOff := tcpFrame(tcpFrameSpec{payload: patterned(300), flags: 0x18})
	base6, _, _ := tcpFrame(tcpFrameSpec{v6: true, vlan: true, payload: patterned(300), flags: 0x18})
	out := make([]byte, 1000)
	for i := range 20000 {
		f := base
		if i%2 == 1 {
			f = base6
		}
		f = append([]byte(nil), f[:r.IntN(len(f)+1)]...)
		if r.IntN(4) == 0 && len(f) > 0 {
			f[r.IntN(len(f))] = byte(r.Uint32())
		}
		h := vnetHdr{gsoType: []uint8{1, 4, 0x81, 3}[r.IntN(4)], gsoSize: uint16(r.IntN(400)),
			csumStart: uint16(tcpOff - 8 + r.IntN(40)), csumOffset: uint16(r.IntN(20))}
		var s tcpSplit
		if s.start(f, h) != nil {
			continue
		}
		for s.pending() {
			if s.nextLen() > len(out) {
				t.Fatalf("segment of %d bytes from a frame of %d", s.nextLen(), len(f))
			}
			s.segment(out)
		}
		_ = completeChecksum(f, int(h.csumStart), int(h.csumOffset))
	}
}

func TestCompleteChecksum(t *testing.T) {
	for _, odd := range []bool{false, true} {
		n := 1000
		if odd {
			n = 1001
		}
		frame, ipOff, tcpOff := tcpFrame(tcpFrameSpec{vlan: odd, payload: patterned(n), flags: 0x18})
		if err := completeChecksum(frame, tcpOff, 16); err != nil {
			t.Fatal(err)
		}
		checkTCPFrame(t, frame, ipOff)
	}
	// A UDP datagram whose checksum folds to zero is sent as 0xffff.
	f := make([]byte, 8+2)
	f[8], f[9] = 0xff, 0xff // the data sums to -0
	if err := completeChecksum(f, 0, 6); err != nil || binary.BigEndian.Uint16(f[6:]) != 0xffff {
		t.Errorf("checksum of a zero-sum datagram %#04x, %v; want 0xffff", binary.BigEndian.Uint16(f[6:]), err)
	}
	for _, bad := range [][2]int{{20, 0}, {0, 9}, {9, 0}} {
		if err := completeChecksum(make([]byte, 10), bad[0], bad[1]); !errors.Is(err, errBadFrame) {
			t.Errorf("completeChecksum(10 bytes, %d, %d) = %v, want errBadFrame", bad[0], bad[1], err)
		}
	}
}

// fakeTAP returns a TunTap reading and writing frames behind virtio-net
// headers over a SOCK_SEQPACKET socket pair, and the other end.
func fakeTAP(t *testing.T) (*TunTap, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newTAP(os.NewFile(uintptr(fds[0]), "fake tap"), "qtfake", true, true)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "fake tap peer")
	t.Cleanup(func() { d.Close(); peer.Close() })
	return d, peer
}

func vnetFrame(h vnetHdr, frame []byte) []byte {
	b := make([]byte, vnetHdrLen, vnetHdrLen+len(frame))
	b[0], b[1] = h.flags, h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
	return append(b, frame...)
}

func TestTAPReadVnet(t *testing.T) {
	d, peer := fakeTAP(t)
	send := func(h vnetHdr, f []byte) {
		t.Helper()
		if _, err := peer.Write(vnetFrame(h, f)); err != nil {
			t.Fatal(err)
		}
	}
	payload := patterned(5000)
	super, ipOff, tcpOff := tcpFrame(tcpFrameSpec{payload: payload, seq: 10, flags: 0x18})
	plain, _, _ := tcpFrame(tcpFrameSpec{payload: []byte("plain"), seq: 1, flags: 0x18})
	gsoHdr := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, hdrLen: uint16(tcpOff + 32), gsoSize: 1000, csumStart: uint16(tcpOff), csumOffset: 16}
	csumHdr := vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(tcpOff), csumOffset: 16}

	send(vnetHdr{gsoType: 5, gsoSize: 100}, plain) // UDP_L4: dropped
	send(gsoHdr, super)                            // 5 segments
	send(csumHdr, plain)                           // checksum completed
	const off = 16
	bufs, sizes := newBufs(3, off+1600)
	var got []byte
	var segs int
	for read := 0; segs < 6; read++ {
		if read == 5 {
			t.Fatalf("only %d frames after 5 Reads", segs)
		}
		n, err := d.Read(bufs, sizes, off)
		if err != nil {
			t.Fatal(err)
		}
		if read == 0 && n != 3 {
			t.Errorf("first Read returned %d frames, want all 3 buffers filled", n)
		}
		for i := range n {
			f := bufs[i][off : off+sizes[i]]
			_, data := checkTCPFrame(t, f, ipOff)
			if segs < 5 {
				got = append(got, data...)
			} else if string(data) != "plain" {
				t.Errorf("last frame carries %q", data)
			}
			segs++
		}
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("segments carry %d bytes, not the %d sent", len(got), len(payload))
	}
	if d.Dropped() != 1 || d.gsoRead.Load() != 1 {
		t.Errorf("Dropped %d, super-frames %d; want 1, 1", d.Dropped(), d.gsoRead.Load())
	}

	// A segment larger than the buffer: ErrShortBuffer, the rest of the
	// super-frame dropped, and the next frame read as usual.
	send(gsoHdr, super)
	send(csumHdr, plain)
	small, smallSizes := newBufs(2, off+600)
	if n, err := d.Read(small, smallSizes, off); n != 0 || !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("Read into short buffers = %d, %v; want 0, ErrShortBuffer", n, err)
	}
	if n, err := d.Read(small, smallSizes, off); n != 1 || err != nil || smallSizes[0] != len(plain) {
		t.Fatalf("Read after the short buffer = %d, %v (size %d); want the plain frame", n, err, smallSizes[0])
	}
}

func TestTAPWriteVnet(t *testing.T) {
	d, peer := fakeTAP(t)
	frame := ether(testMACa, testMACb, etherTypeARP, make([]byte, 28))
	for _, off := range []int{0, 4, 10, 16} {
		b := append(bytes.Repeat([]byte{0xee}, off), frame...)
		if n, err := d.Write([][]byte{b, b}, off); n != 2 || err != nil {
			t.Fatalf("offset %d: Write = %d, %v", off, n, err)
		}
		for range 2 {
			buf := make([]byte, 200)
			n, err := peer.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			want := append(make([]byte, vnetHdrLen), frame...)
			if !bytes.Equal(buf[:n], want) {
				t.Errorf("offset %d: wrote %x, want %x", off, buf[:n], want)
			}
		}
	}
}

func TestTAPVnetNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	d, peer := fakeTAP(t)
	super, _, tcpOff := tcpFrame(tcpFrameSpec{payload: patterned(20000), flags: 0x18})
	msg := vnetFrame(vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: 1400, csumStart: uint16(tcpOff), csumOffset: 16}, super)
	const off = 16
	bufs, sizes := newBufs(d.BatchSize(), off+1600)
	out := [][]byte{append(make([]byte, off), super[:1500]...)}
	sink := make([]byte, 70000)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if n, err := d.Read(bufs, sizes, off); n != 15 || err != nil {
			t.Fatalf("Read = %d, %v; want 15 segments", n, err)
		}
		if _, err := d.Write(out, off); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Read(sink); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Read and Write of a TAP allocate %.1f times per call, want 0", allocs)
	}
}

// synAck answers the TCP SYN frame syn (IPv4, no VLAN) from its
// destination: SYN|ACK, MSS 1460, window 65535, no window scaling.
func synAck(syn []byte, iss uint32) []byte {
	ack := binary.BigEndian.Uint32(syn[14+int(syn[14]&0xf)*4+4:]) + 1
	return peerSegment(syn, iss, ack, 0x12, []byte{2, 4, 0x05, 0xb4}, nil) // SYN|ACK, MSS 1460
}

// peerSegment returns a TCP segment from the peer of the connection whose
// SYN was syn (IPv4, no VLAN): the given sequence and ack numbers, flags,
// options (a multiple of 4 bytes) and data, window 65535, valid checksums.
func peerSegment(syn []byte, seq, ack uint32, flags uint8, opts, data []byte) []byte {
	ip := syn[14:]
	tcp := ip[int(ip[0]&0xf)*4:]
	hl := 20 + len(opts)
	seg := make([]byte, hl+len(data))
	copy(seg[0:2], tcp[2:4])
	copy(seg[2:4], tcp[0:2])
	binary.BigEndian.PutUint32(seg[4:], seq)
	binary.BigEndian.PutUint32(seg[8:], ack)
	seg[12] = byte(hl/4) << 4
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 65535)
	copy(seg[20:], opts)
	copy(seg[hl:], data)
	src, _ := netip.AddrFromSlice(ip[16:20])
	dst, _ := netip.AddrFromSlice(ip[12:16])
	p := ipv4(src, dst, protoTCP, seg)
	binary.BigEndian.PutUint16(p[20+16:], checksum(0, append(pseudoHeader(p, 0, len(seg)), seg...)))
	return ether(net.HardwareAddr(syn[6:12]), net.HardwareAddr(syn[0:6]), etherTypeIPv4, p)
}

// tapWithPeer opens a TAP with offloads (named after prefix) in the test's
// namespace, gives it 10.79.0.1/24 and a permanent neighbour 10.79.0.2 at
// testMACb, the peer the test plays; it skips when the kernel refuses the
// offloads.
func tapWithPeer(t *testing.T, prefix string) (*TunTap, netip.Addr) {
	t.Helper()
	inNetns(t)
	d := mustOpen(t, TAP, testName(t, prefix))
	if !d.offloads {
		t.Skip("the kernel refused TUNSETOFFLOAD")
	}
	local := netip.MustParsePrefix("10.79.0.1/24")
	peer := netip.MustParseAddr("10.79.0.2")
	if _, err := Configure(d.Name(), LinkConfig{Addrs: []netip.Prefix{local}, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByName(d.Name())
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: peer.AsSlice(), HardwareAddr: testMACb}); err != nil {
		t.Fatalf("ip neigh add: %v", err)
	}
	return d, peer
}

// TestTAPOffloadRealTCP has the kernel send TCP through a real TAP, to a
// peer that Read's caller plays: the TAP must hand over super-frames (TSO)
// and Read must turn them into valid segments of at most MTU+14 bytes.
func TestTAPOffloadRealTCP(t *testing.T) {
	d, peer := tapWithPeer(t, "qto")
	frames := pump(d)
	isTCPToPeer := func(f []byte) bool {
		return len(f) >= 54 && bytes.Equal(f[0:6], testMACb) && binary.BigEndian.Uint16(f[12:]) == etherTypeIPv4 &&
			f[14]>>4 == 4 && f[14+9] == protoTCP && bytes.Equal(f[30:34], peer.AsSlice())
	}

	// Answer the SYN, then keep what the kernel sends.
	const iss = 5000
	var isn uint32
	synDone := make(chan error, 1)
	data := make(chan []byte, 256)
	go func() {
		defer close(data)
		timeout := time.After(10 * time.Second)
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					return
				}
				if !isTCPToPeer(f) {
					continue
				}
				if f[14+20+13]&0x02 != 0 { // SYN
					isn = binary.BigEndian.Uint32(f[14+20+4:])
					_, err := d.Write([][]byte{synAck(f, iss)}, 0)
					synDone <- err
					continue
				}
				data <- f
			case <-timeout:
				return
			}
		}
	}()
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp4", netip.AddrPortFrom(peer, 5201).String())
	if err != nil {
		t.Fatalf("connect through the TAP: %v", err)
	}
	defer conn.Close()
	if err := <-synDone; err != nil {
		t.Fatalf("write SYN-ACK: %v", err)
	}
	sent := patterned(200_000)
	go func() {
		// Nothing acknowledges the data: the write ends at the deadline.
		conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
		conn.Write(sent)
	}()

	// The first flight (the initial window, 10 segments) comes as one or a
	// few super-frames; wait for its bytes.
	got := map[uint32][]byte{}
	var maxLen int
	deadline := time.After(5 * time.Second)
collect:
	for total := 0; total < 10*1460; {
		select {
		case f, ok := <-data:
			if !ok {
				break collect
			}
			if len(f) > 1500+14 {
				t.Errorf("frame of %d bytes, more than MTU+14", len(f))
			}
			maxLen = max(maxLen, len(f))
			tcp, payload := checkTCPFrame(t, f, 14)
			if len(payload) > 0 {
				seq := binary.BigEndian.Uint32(tcp[4:])
				if _, dup := got[seq]; !dup {
					total += len(payload)
				}
				got[seq] = payload
			}
		case <-deadline:
			break collect
		}
	}
	// The segments must hold the start of the stream, in sequence.
	var stream []byte
	for seq := isn + 1; ; {
		p, ok := got[seq]
		if !ok {
			break
		}
		stream = append(stream, p...)
		seq += uint32(len(p))
	}
	if len(stream) < 10*1460 || !bytes.Equal(stream, sent[:len(stream)]) {
		t.Errorf("got %d contiguous bytes of the stream (from %d segments), want 14600 matching what was sent", len(stream), len(got))
	}
	if d.gsoRead.Load() == 0 {
		t.Errorf("no TCP super-frame came from the TAP (largest frame %d bytes): TSO not in effect", maxLen)
	}
	t.Logf("%d segments, %d super-frames split, %d frames dropped", len(got), d.gsoRead.Load(), d.Dropped())
}
