package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// buildTestTCP returns a TCP segment from src to dst with the given flags,
// options (followed by NOPs up to a multiple of 4) and payload, its checksum
// computed from scratch over the pseudo-header.
func buildTestTCP(src, dst string, flags byte, opts, payload []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, tcpOptNOP)
	}
	b := make([]byte, TCPHeaderLen, TCPHeaderLen+len(opts)+len(payload))
	binary.BigEndian.PutUint16(b[0:2], 40000)
	binary.BigEndian.PutUint16(b[2:4], 443)
	binary.BigEndian.PutUint32(b[4:8], 0x01020304)
	b[12] = byte((TCPHeaderLen + len(opts)) / 4 << 4)
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:16], 64240)
	b = append(append(b, opts...), payload...)
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	binary.BigEndian.PutUint16(b[16:18], ^refChecksum(refPseudoHeader(s, d, protoTCP, len(b)), b))
	return b
}

// mssOpt returns an MSS option.
func mssOpt(v uint16) []byte { return []byte{tcpOptMSS, tcpOptMSSLen, byte(v >> 8), byte(v)} }

// tcpMSS returns the MSS option value of the TCP segment in IP packet pkt
// (0 if none) and whether its checksum verifies, parsing from scratch.
func tcpMSS(t *testing.T, pkt []byte) (mss uint16, sumOK bool) {
	t.Helper()
	var src, dst netip.Addr
	var tcp []byte
	if pkt[0]>>4 == 4 {
		src, _ = netip.AddrFromSlice(pkt[12:16])
		dst, _ = netip.AddrFromSlice(pkt[16:20])
		tcp = pkt[int(pkt[0]&15)*4 : binary.BigEndian.Uint16(pkt[2:4])]
	} else {
		src, _ = netip.AddrFromSlice(pkt[8:24])
		dst, _ = netip.AddrFromSlice(pkt[24:40])
		tcp = pkt[40:] // tests use no extension headers here
	}
	sumOK = refChecksum(refPseudoHeader(src, dst, protoTCP, len(tcp)), tcp) == 0xffff
	opts := tcp[TCPHeaderLen : int(tcp[12]>>4)*4]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEnd:
			return 0, sumOK
		case tcpOptNOP:
			i++
			continue
		}
		if opts[i] == tcpOptMSS {
			return binary.BigEndian.Uint16(opts[i+2:]), sumOK
		}
		i += int(opts[i+1])
	}
	return 0, sumOK
}

func TestClampMSS(t *testing.T) {
	const syn, ack, synack = 0x02, 0x10, 0x12
	sackPerm := []byte{4, 2}
	wscale := []byte{3, 3, 7}
	ts := []byte{8, 10, 1, 2, 3, 4, 0, 0, 0, 0}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	v4 := func(tcp []byte) []byte { return buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, tcp) }
	v6 := func(tcp []byte) []byte { return buildTestIPv6("fd77::b", "fd50::7", protoTCP, nil, tcp) }
	tcp4 := func(flags byte, opts []byte) []byte {
		return v4(buildTestTCP("10.77.0.11", "192.168.50.7", flags, opts, nil))
	}
	tcp6 := func(flags byte, opts []byte) []byte {
		return v6(buildTestTCP("fd77::b", "fd50::7", flags, opts, nil))
	}
	tests := []struct {
		name    string
		pkt     []byte
		mss     int
		changed bool
		want    uint16 // MSS after
	}{
		{"v4 SYN lowered", tcp4(syn, mssOpt(1460)), 1360, true, 1360},
		{"v4 SYN-ACK lowered", tcp4(synack, cat(mssOpt(1460), sackPerm, ts, wscale)), 1300, true, 1300},
		{"v4 SYN at odd offset", tcp4(syn, cat([]byte{tcpOptNOP}, mssOpt(65495), sackPerm, []byte{tcpOptNOP})), 1360, true, 1360},
		{"v4 SYN after other options", tcp4(syn, cat(ts, wscale, mssOpt(8960))), 1200, true, 1200},
		{"v4 SYN already small", tcp4(syn, mssOpt(1200)), 1360, false, 1200},
		{"v4 SYN equal", tcp4(syn, mssOpt(1360)), 1360, false, 1360},
		{"v4 ACK untouched", tcp4(ack, mssOpt(1460)), 1360, false, 1460},
		{"v4 SYN without MSS", tcp4(syn, cat(sackPerm, wscale)), 1360, false, 0},
		{"v4 end of options before MSS", tcp4(syn, cat([]byte{tcpOptEnd, 0, 0, 0}, mssOpt(1460))), 1360, false, 0},
		{"v4 zero mss", tcp4(syn, mssOpt(1460)), 0, false, 1460},
		{"v6 SYN lowered by 20 more", tcp6(syn, mssOpt(1440)), 1360, true, 1340},
		{"v6 SYN odd offset", tcp6(syn, cat([]byte{tcpOptNOP, tcpOptNOP, tcpOptNOP}, mssOpt(1440), ts)), 1300, true, 1280},
		{"v6 SYN already small", tcp6(syn, mssOpt(1340)), 1360, false, 1340},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := append([]byte{}, tt.pkt...)
			if got := clampMSS(pkt, tt.mss); got != tt.changed {
				t.Fatalf("clampMSS = %v, want %v", got, tt.changed)
			}
			if !tt.changed && !bytes.Equal(pkt, tt.pkt) {
				t.Fatal("packet modified though clampMSS returned false")
			}
			mss, ok := tcpMSS(t, pkt)
			if mss != tt.want {
				t.Errorf("MSS after = %d, want %d", mss, tt.want)
			}
			if !ok {
				t.Error("TCP checksum wrong after clamping")
			}
			// Only the MSS value and the checksum may differ.
			diff := 0
			for i := range pkt {
				if pkt[i] != tt.pkt[i] {
					diff++
				}
			}
			if diff > 4 {
				t.Errorf("%d bytes changed", diff)
			}
		})
	}
}

func TestClampMSSUntouched(t *testing.T) {
	synTCP := buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, mssOpt(1460), nil)
	badOff := append([]byte{}, synTCP...)
	badOff[12] = 15 << 4 // options past the segment
	badLen := buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, []byte{tcpOptMSS, 0}, nil)
	longOpt := buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, []byte{tcpOptMSS, 9, 5, 0xb4}, nil)
	mss3 := buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, []byte{tcpOptMSS, 3, 5, 0}, nil)
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"UDP", buildTestIPv4("10.77.0.11", "192.168.50.7", protoUDP, 0x4000, synTCP)},
		{"v4 first fragment", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x2000, synTCP)},
		{"v4 non-first fragment", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x0010, synTCP)},
		{"v6 non-first fragment", buildTestIPv6("fd77::b", "fd50::7", protoFragment, fragHdr(protoTCP, 8, false), synTCP)},
		{"truncated TCP header", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, synTCP[:19])},
		{"data offset past end", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, badOff)},
		{"option length 0", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, badLen)},
		{"option past options", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, longOpt)},
		{"MSS option of length 3", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, mss3)},
		{"malformed IP", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, synTCP)[:30]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := append([]byte{}, tt.pkt...)
			if clampMSS(pkt, 1000) {
				t.Error("clampMSS changed the packet")
			}
			if !bytes.Equal(pkt, tt.pkt) {
				t.Error("packet modified")
			}
		})
	}
}

func TestClampMSSFrame(t *testing.T) {
	dst := []byte{0x02, 0, 0, 0, 0, 1}
	src := []byte{0x02, 0, 0, 0, 0, 2}
	ip4 := buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, mssOpt(1460), nil))
	ip6 := buildTestIPv6("fd77::b", "fd50::7", protoTCP, nil, buildTestTCP("fd77::b", "fd50::7", 0x02, mssOpt(1440), nil))
	frame := func(tag []byte, et uint16, ip []byte, pad int) []byte {
		f := append(append(append([]byte{}, dst...), src...), tag...)
		f = append(f, byte(et>>8), byte(et))
		return append(append(f, ip...), make([]byte, pad)...)
	}
	tests := []struct {
		name    string
		frame   []byte
		off     int
		changed bool
		want    uint16
	}{
		{"IPv4, padded to 60 bytes", frame(nil, EtherTypeIPv4, ip4, 60-14-len(ip4)), 14, true, 1360},
		{"IPv6", frame(nil, EtherTypeIPv6, ip6, 0), 14, true, 1340},
		{"VLAN-tagged IPv4", frame([]byte{0x81, 0x00, 0x00, 0x0a}, EtherTypeIPv4, ip4, 0), 18, true, 1356},
		{"QinQ-tagged IPv6", frame([]byte{0x88, 0xa8, 0x00, 0x0b, 0x81, 0x00, 0x00, 0x0a}, EtherTypeIPv6, ip6, 0), 22, true, 1332},
		{"ARP", frame(nil, 0x0806, ip4, 0), 14, false, 1460},
		{"IPv4 ethertype over IPv6", frame(nil, EtherTypeIPv4, ip6, 0), 14, false, 1440},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := append([]byte{}, tt.frame...)
			if got := ClampMSSFrame(f, 1360); got != tt.changed {
				t.Fatalf("ClampMSSFrame = %v, want %v", got, tt.changed)
			}
			mss, ok := tcpMSS(t, f[tt.off:])
			if mss != tt.want || !ok {
				t.Errorf("MSS %d (checksum ok %v), want %d", mss, ok, tt.want)
			}
		})
	}
	if ClampMSSFrame(frame(nil, EtherTypeIPv4, nil, 0)[:13], 1360) {
		t.Error("clamped a truncated frame")
	}
}

// TestClampMSSChecksumExhaustive checks the incremental checksum update
// against a from-scratch computation for many MSS values, offsets and
// payloads, including sums that fold around 0xffff.
func TestClampMSSChecksumExhaustive(t *testing.T) {
	for nops := range 4 {
		for _, from := range []uint16{0xffff, 0xff00, 0x8000, 1461, 1400} {
			for to := 536; to < 1400; to += 37 {
				for seed := range 4 {
					opts := append(bytes.Repeat([]byte{tcpOptNOP}, nops), mssOpt(from)...)
					payload := bytes.Repeat([]byte{byte(seed * 85), byte(to)}, seed*3)
					pkt := buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000,
						buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, opts, payload))
					if !clampMSS(pkt, to) {
						t.Fatalf("nops %d from %d to %d: not clamped", nops, from, to)
					}
					if mss, ok := tcpMSS(t, pkt); int(mss) != to || !ok {
						t.Fatalf("nops %d from %d to %d seed %d: MSS %d checksum ok %v", nops, from, to, seed, mss, ok)
					}
				}
			}
		}
	}
}

func TestClampMSSNoAlloc(t *testing.T) {
	pkt := buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, mssOpt(1460), nil))
	frame := append(append(make([]byte, 12), 0x08, 0x00), pkt...)
	if n := testing.AllocsPerRun(100, func() {
		clampMSS(pkt, 1360)
		ClampMSSFrame(frame, 1360)
	}); n != 0 {
		t.Errorf("clampMSS allocates %v times per run, want 0", n)
	}
}

func BenchmarkClampMSS(b *testing.B) {
	syn := buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000,
		buildTestTCP("10.77.0.11", "192.168.50.7", 0x02, []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7}, nil))
	data := buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000,
		buildTestTCP("10.77.0.11", "192.168.50.7", 0x10, nil, make([]byte, 1300)))
	b.Run("syn", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			binary.BigEndian.PutUint16(syn[20+22:], 1460) // restore (checksum drifts; irrelevant here)
			clampMSS(syn, 1360)
		}
	})
	b.Run("data", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clampMSS(data, 1360)
		}
	})
}
