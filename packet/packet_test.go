package packet

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
)

// refChecksum is a deliberately naive Internet checksum (RFC 1071) over the
// concatenation of parts, used by the tests to check the package's own
// checksum code from scratch. The result is the folded one's-complement sum
// (not complemented): 0xffff over data that includes a correct checksum.
func refChecksum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var sum uint32
	for i := 0; i < len(all); i += 2 {
		sum += uint32(all[i])<<8 | uint32(all[i+1])
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// refPseudoHeader returns the TCP/UDP/ICMPv6 pseudo-header bytes for src,
// dst, proto and upper-layer length n.
func refPseudoHeader(src, dst netip.Addr, proto uint8, n int) []byte {
	var b []byte
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	if src.Is4() {
		return append(b, 0, proto, byte(n>>8), byte(n))
	}
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, proto)
}

// buildTestIPv4 returns an IPv4 packet (no options) from src to dst with the
// given protocol, flags/fragment-offset word and payload, header checksum set.
func buildTestIPv4(src, dst string, proto uint8, flagsOff uint16, payload []byte) []byte {
	b := make([]byte, IPv4HeaderLen+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:6], 0x1234)
	binary.BigEndian.PutUint16(b[6:8], flagsOff)
	b[8] = 64
	b[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], ^refChecksum(b[:IPv4HeaderLen]))
	copy(b[IPv4HeaderLen:], payload)
	return b
}

// buildTestIPv6 returns an IPv6 packet from src to dst whose first next
// header is next, followed by ext (raw extension headers, already chained)
// and payload.
func buildTestIPv6(src, dst string, next uint8, ext, payload []byte) []byte {
	b := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(ext)+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(len(ext)+len(payload)))
	b[6] = next
	b[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	b = append(b, ext...)
	return append(b, payload...)
}

// extHdr returns an 8-byte IPv6 option-style extension header (hop-by-hop,
// routing or destination options) whose next header is next.
func extHdr(next uint8) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} }

// fragHdr returns an IPv6 fragment header with the given next header,
// offset (in 8-byte units) and More Fragments flag.
func fragHdr(next uint8, offset uint16, more bool) []byte {
	fo := offset << 3
	if more {
		fo |= 1
	}
	return []byte{next, 0, byte(fo >> 8), byte(fo), 0, 0, 0, 42}
}

func TestParseIP(t *testing.T) {
	payload := make([]byte, 12)
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	v4 := buildTestIPv4("10.0.0.1", "10.0.0.2", protoUDP, 0x4000, payload)
	v4padded := append(append([]byte{}, v4...), 0, 0, 0, 0) // link-layer padding
	v4badIHL := append([]byte{}, v4...)
	v4badIHL[0] = 0x44
	v4longIHL := append([]byte{}, v4...)
	v4longIHL[0] = 0x4f // 60 bytes, beyond total length 32
	v4short := append([]byte{}, v4...)
	binary.BigEndian.PutUint16(v4short[2:4], uint16(len(v4)+1))

	tests := []struct {
		name string
		pkt  []byte
		ok   bool
		want IPInfo
	}{
		{"empty", nil, false, IPInfo{}},
		{"unknown version", []byte{0x50, 0, 0, 0}, false, IPInfo{}},
		{"v4 truncated header", v4[:19], false, IPInfo{}},
		{"v4 IHL below 5", v4badIHL, false, IPInfo{}},
		{"v4 IHL past total length", v4longIHL, false, IPInfo{}},
		{"v4 total length past buffer", v4short, false, IPInfo{}},
		{"v4 DF", v4, true, IPInfo{Version: 4, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
			Proto: protoUDP, DF: true, HdrLen: 20, TotalLen: 32}},
		{"v4 padded", v4padded, true, IPInfo{Version: 4, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
			Proto: protoUDP, DF: true, HdrLen: 20, TotalLen: 32}},
		{"v4 first fragment", buildTestIPv4("1.2.3.4", "5.6.7.8", protoTCP, 0x2000, payload), true, IPInfo{Version: 4,
			Src: netip.MustParseAddr("1.2.3.4"), Dst: netip.MustParseAddr("5.6.7.8"), Proto: protoTCP, FirstFragment: true, HdrLen: 20, TotalLen: 32}},
		{"v4 non-first fragment", buildTestIPv4("1.2.3.4", "5.6.7.8", protoTCP, 0x0003, payload), true, IPInfo{Version: 4,
			Src: netip.MustParseAddr("1.2.3.4"), Dst: netip.MustParseAddr("5.6.7.8"), Proto: protoTCP, Fragment: true, HdrLen: 20, TotalLen: 32}},
		{"v6 plain", buildTestIPv6("fd00::1", "fd00::2", protoTCP, nil, payload), true, IPInfo{Version: 6,
			Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), Proto: protoTCP, HdrLen: 40, TotalLen: 52}},
		{"v6 truncated header", buildTestIPv6("fd00::1", "fd00::2", protoTCP, nil, nil)[:39], false, IPInfo{}},
		{"v6 payload length past buffer", buildTestIPv6("fd00::1", "fd00::2", protoTCP, nil, payload)[:51], false, IPInfo{}},
		{"v6 hop-by-hop, routing, dest opts", buildTestIPv6("fd00::1", "fd00::2", protoHopByHop,
			cat(extHdr(protoRouting), extHdr(protoDestOpts), extHdr(protoICMPv6)), payload), true, IPInfo{Version: 6,
			Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), Proto: protoICMPv6, HdrLen: 64, TotalLen: 76}},
		{"v6 extension header past end", buildTestIPv6("fd00::1", "fd00::2", protoHopByHop,
			[]byte{protoTCP, 3, 0, 0, 0, 0, 0, 0}, payload), false, IPInfo{}},
		{"v6 first fragment", buildTestIPv6("fd00::1", "fd00::2", protoFragment, fragHdr(protoUDP, 0, true), payload), true,
			IPInfo{Version: 6, Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), Proto: protoUDP,
				FirstFragment: true, HdrLen: 48, TotalLen: 60}},
		{"v6 atomic fragment", buildTestIPv6("fd00::1", "fd00::2", protoFragment, fragHdr(protoUDP, 0, false), payload), true,
			IPInfo{Version: 6, Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), Proto: protoUDP,
				HdrLen: 48, TotalLen: 60}},
		{"v6 non-first fragment", buildTestIPv6("fd00::1", "fd00::2", protoDestOpts,
			cat(extHdr(protoFragment), fragHdr(protoTCP, 100, false)), payload), true,
			IPInfo{Version: 6, Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), Proto: protoTCP,
				Fragment: true, HdrLen: 56, TotalLen: 68}},
		{"v6 fragment header truncated", buildTestIPv6("fd00::1", "fd00::2", protoFragment, nil, make([]byte, 4)), false, IPInfo{}},
		{"v6 endless extension chain", buildTestIPv6("fd00::1", "fd00::2", protoDestOpts,
			func() []byte {
				var b []byte
				for range maxIPv6ExtHdrs + 1 {
					b = append(b, extHdr(protoDestOpts)...)
				}
				return b
			}(), nil), false, IPInfo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseIP(tt.pkt)
			if ok != tt.ok {
				t.Fatalf("ParseIP ok = %v, want %v", ok, tt.ok)
			}
			if got != tt.want {
				t.Errorf("ParseIP = %+v\nwant      %+v", got, tt.want)
			}
		})
	}
}

func TestParseEth(t *testing.T) {
	dst := MAC{0x01, 0x00, 0x5e, 0, 0, 1}
	src := MAC{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
	base := append(append(append([]byte{}, dst[:]...), src[:]...), 0x08, 0x00, 0x45)
	tagged := append(append(append([]byte{}, dst[:]...), src[:]...), 0x81, 0x00, 0x00, 0x05, 0x86, 0xdd, 0x60)
	qinq := append(append(append([]byte{}, dst[:]...), src[:]...), 0x88, 0xa8, 0x00, 0x05, 0x81, 0x00, 0, 7, 0x08, 0)
	triple := append(append(append([]byte{}, dst[:]...), src[:]...), 0x88, 0xa8, 0x00, 0x05, 0x88, 0xa8, 0, 6, 0x81, 0x00, 0, 7, 0x08, 0)
	tests := []struct {
		name  string
		frame []byte
		ok    bool
		et    uint16
		off   int
	}{
		{"untagged", base, true, EtherTypeIPv4, 14},
		{"802.1Q", tagged, true, EtherTypeIPv6, 18},
		{"802.1ad and 802.1Q (QinQ)", qinq, true, EtherTypeIPv4, 22},
		{"three tags: the third is not skipped", triple, true, etherTypeVLAN, 22},
		{"inner tag truncated", qinq[:21], false, 0, 0},
		{"short", base[:13], false, 0, 0},
		{"tag truncated", tagged[:17], false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, s, et, off, ok := ParseEth(tt.frame)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if d != dst || s != src || et != tt.et || off != tt.off {
				t.Errorf("ParseEth = %v %v %#04x %d, want %v %v %#04x %d", d, s, et, off, dst, src, tt.et, tt.off)
			}
		})
	}
}

// TestParseEtherType checks the tag limit: ParseEth's two tags, none, or
// as many as the frame holds (the device's limit).
func TestParseEtherType(t *testing.T) {
	hdr := make([]byte, 12)
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	qinq := []byte{0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6}
	triple := cat(hdr, qinq, []byte{0x81, 0x00, 0, 7, 0x86, 0xdd, 0x60})
	tests := []struct {
		name    string
		frame   []byte
		maxTags int
		ok      bool
		et      uint16
		off     int
	}{
		{"untagged, no tags skipped", cat(hdr, []byte{0x08, 0x00}), 0, true, EtherTypeIPv4, 14},
		{"tagged, no tags skipped", cat(hdr, qinq, []byte{0x08, 0x00}), 0, true, etherTypeQinQ, 14},
		{"QinQ, one tag skipped", cat(hdr, qinq, []byte{0x08, 0x00}), 1, true, etherTypeVLAN, 18},
		{"three tags, two skipped", triple, maxVLANTags, true, etherTypeVLAN, 22},
		{"three tags, no limit", triple, math.MaxInt, true, EtherTypeIPv6, 26},
		{"third tag truncated, no limit", triple[:25], math.MaxInt, false, 0, 0},
		{"short", hdr, math.MaxInt, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			et, off, ok := ParseEtherType(tt.frame, tt.maxTags)
			if ok != tt.ok || et != tt.et || off != tt.off {
				t.Errorf("ParseEtherType = %#04x, %d, %v; want %#04x, %d, %v", et, off, ok, tt.et, tt.off, tt.ok)
			}
		})
	}
}

func TestMAC(t *testing.T) {
	tests := []struct {
		m     MAC
		multi bool
		str   string
	}{
		{MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true, "ff:ff:ff:ff:ff:ff"},
		{MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, true, "01:00:5e:00:00:fb"},
		{MAC{0x33, 0x33, 0, 0, 0, 1}, true, "33:33:00:00:00:01"},
		{MAC{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}, false, "02:42:ac:11:00:02"},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.m.IsMulticast(); got != tt.multi {
				t.Errorf("IsMulticast = %v, want %v", got, tt.multi)
			}
			if got := tt.m.String(); got != tt.str {
				t.Errorf("String = %q, want %q", got, tt.str)
			}
		})
	}
}

func TestInetChecksum(t *testing.T) {
	for n := range 70 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*37 + n)
		}
		if got, want := inetChecksum(b), ^refChecksum(b); got != want {
			t.Errorf("len %d: inetChecksum = %#04x, want %#04x", n, got, want)
		}
	}
}

func TestParseIPNoAlloc(t *testing.T) {
	v6 := buildTestIPv6("fd00::1", "fd00::2", protoHopByHop, extHdr(protoTCP), make([]byte, 20))
	v4 := buildTestIPv4("10.0.0.1", "10.0.0.2", protoTCP, 0x4000, make([]byte, 20))
	frame := append(make([]byte, 12), 0x08, 0x00)
	if n := testing.AllocsPerRun(100, func() {
		ParseIP(v4)
		ParseIP(v6)
		ParseEth(frame)
	}); n != 0 {
		t.Errorf("ParseIP/ParseEth allocate %v times per run, want 0", n)
	}
}
