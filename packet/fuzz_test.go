package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// The fuzz targets of the parsers every untrusted packet meets (make fuzz,
// testdata/fuzz.sh). Each checks what the function promises, against the
// bytes read from scratch, not only that it does not panic.

// fuzzSeedPackets are well-formed packets the targets start from: IPv4 and
// IPv6 TCP SYNs with an MSS option, a v6 SYN behind an extension header,
// fragments, ICMP errors and echoes, UDP.
func fuzzSeedPackets() [][]byte {
	syn4 := buildTestTCP("10.77.0.11", "192.168.50.7", tcpFlagSYN, mssOpt(1460), nil)
	syn6 := buildTestTCP("fd77::b", "fd50::7", tcpFlagSYN|0x10, append([]byte{tcpOptNOP}, append(mssOpt(8940), 4, 2)...), nil)
	return [][]byte{
		buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, syn4),
		buildTestIPv6("fd77::b", "fd50::7", protoTCP, nil, syn6),
		buildTestIPv6("fd77::b", "fd50::7", protoHopByHop, extHdr(protoTCP), syn6),
		buildTestIPv4("10.77.0.11", "192.168.50.7", protoUDP, 0x2000, make([]byte, 1400)),
		buildTestIPv4("10.77.0.11", "192.168.50.7", protoUDP, 0x0010, make([]byte, 30)),
		buildTestIPv6("fd00::1", "fd00::2", protoFragment, fragHdr(protoICMPv6, 0, true), []byte{128, 0, 0, 0}),
		buildTestIPv6("fd00::1", "fd00::2", protoRouting, append(extHdr(protoFragment), fragHdr(protoUDP, 3, false)...), make([]byte, 16)),
		buildTestIPv4("10.77.0.11", "192.168.50.7", protoICMP, 0x4000, []byte{3, 4, 0, 0, 0, 0, 5, 0xdc}),
		buildTestIPv4("10.77.0.11", "192.168.50.7", protoICMP, 0x4000, append([]byte{8, 0, 0, 0, 0, 1, 0, 1}, make([]byte, 1000)...)),
		buildTestIPv6("fd00::1", "ff02::1", protoUDP, nil, make([]byte, 8)),
		append(buildTestIPv4("10.77.0.11", "10.77.0.12", protoUDP, 0x4000, make([]byte, 12)), 0, 0, 0), // link padding
	}
}

// onesEqual reports whether a and b are the same one's-complement number
// (0x0000 and 0xffff are both zero).
func onesEqual(a, b uint16) bool {
	return a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

// FuzzParseIP checks ParseIP against the header read from scratch: the
// version, addresses and lengths are the bytes', HdrLen ≤ TotalLen ≤
// len(b), and padding after TotalLen changes nothing.
func FuzzParseIP(f *testing.F) {
	for _, p := range fuzzSeedPackets() {
		f.Add(p)
	}
	f.Add([]byte{0x45})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, ok := ParseIP(b)
		if !ok {
			if info != (IPInfo{}) {
				t.Fatalf("refused, yet returned %+v", info)
			}
			if len(b) >= IPv4HeaderLen && b[0]>>4 == 4 {
				ihl, total := int(b[0]&15)*4, int(binary.BigEndian.Uint16(b[2:4]))
				if ihl >= IPv4HeaderLen && ihl <= total && total <= len(b) {
					t.Fatalf("refused a well-formed IPv4 header (IHL %d, total %d, %d bytes)", ihl, total, len(b))
				}
			}
			return
		}
		if info.Version != int(b[0]>>4) {
			t.Fatalf("version %d, nibble %d", info.Version, b[0]>>4)
		}
		if info.HdrLen > info.TotalLen || info.TotalLen > len(b) {
			t.Fatalf("HdrLen %d, TotalLen %d, %d bytes", info.HdrLen, info.TotalLen, len(b))
		}
		if info.Fragment && info.FirstFragment {
			t.Fatal("both a non-first and a first fragment")
		}
		switch info.Version {
		case 4:
			if info.HdrLen != int(b[0]&15)*4 || info.HdrLen < IPv4HeaderLen || info.TotalLen != int(binary.BigEndian.Uint16(b[2:4])) {
				t.Fatalf("IPv4 HdrLen %d, TotalLen %d from header %x", info.HdrLen, info.TotalLen, b[:4])
			}
			if info.Src != netip.AddrFrom4([4]byte(b[12:16])) || info.Dst != netip.AddrFrom4([4]byte(b[16:20])) || info.Proto != b[9] {
				t.Fatalf("IPv4 %v → %v proto %d from %x", info.Src, info.Dst, info.Proto, b[:20])
			}
			if info.DF != (b[6]&0x40 != 0) || info.Fragment != (binary.BigEndian.Uint16(b[6:8])&0x1fff != 0) {
				t.Fatalf("IPv4 DF %v Fragment %v from flags %x", info.DF, info.Fragment, b[6:8])
			}
		case 6:
			if info.TotalLen != ipv6HeaderLen+int(binary.BigEndian.Uint16(b[4:6])) || info.HdrLen < ipv6HeaderLen || (info.HdrLen-ipv6HeaderLen)%8 != 0 {
				t.Fatalf("IPv6 HdrLen %d, TotalLen %d", info.HdrLen, info.TotalLen)
			}
			if info.Src != netip.AddrFrom16([16]byte(b[8:24])) || info.Dst != netip.AddrFrom16([16]byte(b[24:40])) || info.DF {
				t.Fatalf("IPv6 %v → %v DF %v", info.Src, info.Dst, info.DF)
			}
			if info.HdrLen == ipv6HeaderLen && info.Proto != b[6] {
				t.Fatalf("IPv6 without extension headers: proto %d, next header %d", info.Proto, b[6])
			}
		default:
			t.Fatalf("version %d accepted", info.Version)
		}
		// The packet alone, and the packet with more padding, say the same.
		if again, ok := ParseIP(b[:info.TotalLen]); !ok || again != info {
			t.Fatalf("the packet without its %d bytes of padding parses as %+v, %v; with them %+v", len(b)-info.TotalLen, again, ok, info)
		}
		if again, ok := ParseIP(append(bytes.Clone(b), 0xff, 0, 0x45)); !ok || again != info {
			t.Fatalf("the packet with 3 more bytes parses as %+v, %v; without them %+v", again, ok, info)
		}
	})
}

// FuzzParseEth checks ParseEtherType and ParseEth against the frame read
// from scratch: payloadOff is past the header and exactly the tags
// skipped (each a VLAN TPID, at most maxTags), the ethertype is the two
// bytes before it and not a tag unless the limit stopped there, and
// ParseEth is ParseEtherType with two tags plus the addresses.
func FuzzParseEth(f *testing.F) {
	mac := []byte{0x02, 0x77, 0, 0, 0, 1, 0x02, 0x77, 0, 0, 0, 2}
	for _, tags := range [][]byte{nil, {0x81, 0, 0, 5}, {0x88, 0xa8, 0, 1, 0x81, 0, 0, 2}, {0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3}} {
		fr := append(append(bytes.Clone(mac), tags...), 0x08, 0)
		f.Add(append(fr, buildTestIPv4("10.0.0.1", "10.0.0.2", protoUDP, 0, make([]byte, 8))...), uint8(2))
		f.Add(fr[:len(fr)-1], uint8(255))
	}
	f.Fuzz(func(t *testing.T, frame []byte, maxTags uint8) {
		et, off, ok := ParseEtherType(frame, int(maxTags))
		if !ok {
			if et != 0 || off != 0 {
				t.Fatalf("refused, yet returned %#04x at %d", et, off)
			}
			if len(frame) >= EthHeaderLen && !isTag(binary.BigEndian.Uint16(frame[12:])) {
				t.Fatalf("refused an untagged frame of %d bytes", len(frame))
			}
		} else {
			tags := (off - EthHeaderLen) / VLANTagLen
			if off < EthHeaderLen || (off-EthHeaderLen)%VLANTagLen != 0 || off > len(frame) || tags > int(maxTags) {
				t.Fatalf("payloadOff %d in a frame of %d bytes, limit %d tags", off, len(frame), maxTags)
			}
			for i := range tags {
				if !isTag(binary.BigEndian.Uint16(frame[12+4*i:])) {
					t.Fatalf("skipped tag %d, TPID %x", i, frame[12+4*i:14+4*i])
				}
			}
			if et != binary.BigEndian.Uint16(frame[off-2:]) || (isTag(et) && tags < int(maxTags)) {
				t.Fatalf("ethertype %#04x after %d of at most %d tags", et, tags, maxTags)
			}
		}
		dst, src, et2, off2, ok2 := ParseEth(frame)
		wantET, wantOff, wantOK := ParseEtherType(frame, maxVLANTags)
		if et2 != wantET || off2 != wantOff || ok2 != wantOK {
			t.Fatalf("ParseEth says %#04x at %d, %v; ParseEtherType with 2 tags %#04x at %d, %v", et2, off2, ok2, wantET, wantOff, wantOK)
		}
		if ok2 && (!bytes.Equal(dst[:], frame[0:6]) || !bytes.Equal(src[:], frame[6:12])) {
			t.Fatalf("addresses %v, %v from %x", dst, src, frame[:12])
		}
		if !ok2 && (dst != MAC{} || src != MAC{}) {
			t.Fatal("refused, yet returned addresses")
		}
	})
}

func isTag(tpid uint16) bool { return tpid == etherTypeVLAN || tpid == etherTypeQinQ }

// tcpSegmentSum is the folded one's-complement sum, recomputed from
// scratch, of the TCP segment of an IP packet with its pseudo-header:
// 0xffff when its checksum is right.
func tcpSegmentSum(pkt []byte, info IPInfo) uint16 {
	tcp := pkt[info.HdrLen:info.TotalLen]
	return refChecksum(refPseudoHeader(info.Src, info.Dst, protoTCP, len(tcp)), tcp)
}

// refMSSOption walks the options of the TCP segment tcp the way RFC 9293
// reads them, from scratch, and returns the offset in tcp of the first MSS
// option's value, or -1 when there is none before the end of the list or
// the list is malformed before it.
func refMSSOption(tcp []byte) int {
	if len(tcp) < TCPHeaderLen {
		return -1
	}
	end := int(tcp[12]>>4) * 4
	if end < TCPHeaderLen || end > len(tcp) {
		return -1
	}
	for i := TCPHeaderLen; i < end; {
		switch tcp[i] {
		case 0:
			return -1
		case 1:
			i++
			continue
		}
		if i+2 > end || tcp[i+1] < 2 || i+int(tcp[i+1]) > end {
			return -1
		}
		if tcp[i] == 2 {
			if tcp[i+1] != 4 {
				return -1
			}
			return i + 2
		}
		i += int(tcp[i+1])
	}
	return -1
}

// FuzzClampMSS clamps the MSS of a packet (as IP, and as an Ethernet frame
// with tags tags%3 tags) and checks what clampMSS promises: the packet
// never changes length; a packet it reports unchanged is byte for byte the
// same; a changed one is a TCP SYN, not a fragment, whose MSS option (the
// first, found from scratch) went down to exactly the limit, with only
// those two bytes and the checksum changed and the segment's checksum, as
// recomputed from scratch, as right (or as wrong) as before; a second
// clamp changes nothing; and every SYN whose MSS is over the limit is
// clamped.
func FuzzClampMSS(f *testing.F) {
	for i, p := range fuzzSeedPackets() {
		f.Add(p, 1000+i*50, uint8(i))
	}
	f.Add(fuzzSeedPackets()[0], 0, uint8(0))
	f.Add(fuzzSeedPackets()[1], 21, uint8(0))
	f.Add(fuzzSeedPackets()[1], 1<<20, uint8(1))
	f.Fuzz(func(t *testing.T, pkt []byte, mss int, tags uint8) {
		check := func(what string, b []byte, limit int, clamp func([]byte) bool) {
			t.Helper()
			orig := bytes.Clone(b)
			changed := clamp(b)
			if len(b) != len(orig) {
				t.Fatalf("%s: length %d → %d", what, len(orig), len(b))
			}
			info, ok := ParseIP(b)
			want := -1 // offset in b of the MSS value to clamp, if any
			if ok && info.Proto == protoTCP && !info.Fragment && !info.FirstFragment &&
				info.TotalLen-info.HdrLen >= TCPHeaderLen && b[info.HdrLen+13]&tcpFlagSYN != 0 && limit > 0 {
				if o := refMSSOption(orig[info.HdrLen:info.TotalLen]); o >= 0 && int(binary.BigEndian.Uint16(orig[info.HdrLen+o:])) > limit {
					want = info.HdrLen + o
				}
			}
			if !changed {
				if !bytes.Equal(b, orig) {
					t.Fatalf("%s: reported unchanged, but changed", what)
				}
				if want >= 0 {
					t.Fatalf("%s: SYN with MSS %d at %d not clamped to %d", what, binary.BigEndian.Uint16(orig[want:]), want, limit)
				}
				return
			}
			if want < 0 {
				t.Fatalf("%s: clamped a packet that is not a SYN with an MSS over %d", what, limit)
			}
			if got := int(binary.BigEndian.Uint16(b[want:])); got != min(limit, 0xffff) {
				t.Fatalf("%s: MSS %d → %d, want %d", what, binary.BigEndian.Uint16(orig[want:]), got, min(limit, 0xffff))
			}
			sumAt := info.HdrLen + 16
			for i := range b {
				if b[i] != orig[i] && i != want && i != want+1 && i != sumAt && i != sumAt+1 {
					t.Fatalf("%s: byte %d changed (MSS value at %d, checksum at %d)", what, i, want, sumAt)
				}
			}
			if before, after := tcpSegmentSum(orig, info), tcpSegmentSum(b, info); !onesEqual(before, after) {
				t.Fatalf("%s: TCP checksum sum %#04x before, %#04x after", what, before, after)
			}
			if clamp(b) {
				t.Fatalf("%s: clamped twice", what)
			}
		}
		ipLimit := func(b []byte, m int) int {
			if len(b) > 0 && b[0]>>4 == 6 {
				return m - ipv6ExtraHeader
			}
			return m
		}
		check("IP", bytes.Clone(pkt), ipLimit(pkt, mss), func(b []byte) bool { return clampMSS(b, mss) })

		// The same packet in an Ethernet frame with 0 to 2 tags.
		n := int(tags % 3)
		frame := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
		for range n {
			frame = append(frame, 0x81, 0, 0, 7)
		}
		et := []byte{0x08, 0}
		if len(pkt) > 0 && pkt[0]>>4 == 6 {
			et = []byte{0x86, 0xdd}
		}
		frame = append(append(frame, et...), pkt...)
		off := EthHeaderLen + n*VLANTagLen
		origFrame := bytes.Clone(frame)
		check("frame", frame[off:], ipLimit(pkt, mss-n*VLANTagLen), func([]byte) bool { return ClampMSSFrame(frame, mss) })
		if !bytes.Equal(frame[:off], origFrame[:off]) {
			t.Fatal("ClampMSSFrame changed the Ethernet header")
		}
		// And the raw input as a frame: only the no-growth, no-change-when-
		// false promises are general enough to check.
		raw := bytes.Clone(pkt)
		if !ClampMSSFrame(raw, mss) && !bytes.Equal(raw, pkt) {
			t.Fatal("ClampMSSFrame reported a raw frame unchanged, but changed it")
		}
	})
}

// FuzzBuildTooBig answers arbitrary packets with out buffers of any size
// up to 2000 bytes and checks every answer: at most 576 (IPv4) or 1280
// (IPv6) bytes and no more than out; a well-formed IP packet of the
// answered version from pkt's destination to its source, with the right
// header fields, ICMP type and MTU; both checksums right when recomputed
// from scratch; quoting exactly as much of pkt as fits; never answering a
// fragment, an IPv4 packet without DF, or an MTU out of range; and not
// answerable itself.
func FuzzBuildTooBig(f *testing.F) {
	for i, p := range fuzzSeedPackets() {
		f.Add(p, []int{1280, 576, 68, 1400, 1500}[i%5], uint16(1500))
	}
	f.Add(fuzzSeedPackets()[0], 1000, uint16(40))
	f.Add(fuzzSeedPackets()[1], 1280, uint16(56))
	f.Add(fuzzSeedPackets()[1], 65536, uint16(1500))
	f.Fuzz(func(t *testing.T, pkt []byte, mtu int, outLen uint16) {
		out := make([]byte, int(outLen)%2001)
		for i := range out {
			out[i] = 0xa5
		}
		n, ok := BuildTooBig(out, pkt, mtu)
		if !ok {
			if n != 0 {
				t.Fatalf("refused with a length of %d", n)
			}
			return
		}
		in, _ := ParseIP(pkt)
		if in.Fragment || mtu > 0xffff || (in.Version == 4 && (!in.DF || mtu < minMTUv4)) || (in.Version == 6 && mtu < minMTUv6) {
			t.Fatalf("answered %+v with MTU %d", in, mtu)
		}
		if in.Dst.IsMulticast() || in.Src.IsMulticast() || in.Src.IsUnspecified() {
			t.Fatalf("answered %v → %v", in.Src, in.Dst)
		}
		hdr, max := IPv4HeaderLen+icmpHeaderLen, icmpv4MaxAnswer
		if in.Version == 6 {
			hdr, max = ipv6HeaderLen+icmpHeaderLen, icmpv6MaxAnswer
		}
		if n > len(out) || n > max || n < hdr+8 {
			t.Fatalf("answer of %d bytes (out %d, at most %d)", n, len(out), max)
		}
		if quote := min(in.TotalLen, max-hdr, len(out)-hdr); n != hdr+quote {
			t.Fatalf("answer of %d bytes quotes %d, want %d", n, n-hdr, quote)
		}
		ans := out[:n]
		info, ok := ParseIP(ans)
		if !ok || info.TotalLen != n || info.Version != in.Version || info.Src != in.Dst || info.Dst != in.Src || info.Fragment || info.FirstFragment {
			t.Fatalf("answer %+v, %v to %+v", info, ok, in)
		}
		icmpMsg := ans[info.HdrLen:]
		if !bytes.Equal(icmpMsg[icmpHeaderLen:], pkt[:n-hdr]) {
			t.Fatal("the answer's quote is not the start of the packet")
		}
		if in.Version == 4 {
			if info.HdrLen != IPv4HeaderLen || info.Proto != protoICMP || ans[8] != icmpTTL || info.DF || refChecksum(ans[:IPv4HeaderLen]) != 0xffff {
				t.Fatalf("IPv4 header %x", ans[:IPv4HeaderLen])
			}
			if icmpMsg[0] != icmpv4DestUnreach || icmpMsg[1] != icmpv4FragNeeded || int(binary.BigEndian.Uint16(icmpMsg[6:8])) != mtu || refChecksum(icmpMsg) != 0xffff {
				t.Fatalf("ICMPv4 header %x, MTU %d", icmpMsg[:8], mtu)
			}
		} else {
			if info.HdrLen != ipv6HeaderLen || info.Proto != protoICMPv6 || ans[7] != icmpTTL {
				t.Fatalf("IPv6 header %x", ans[:ipv6HeaderLen])
			}
			if icmpMsg[0] != icmpv6PacketTooBig || icmpMsg[1] != 0 || int(binary.BigEndian.Uint32(icmpMsg[4:8])) != mtu ||
				refChecksum(refPseudoHeader(info.Src, info.Dst, protoICMPv6, len(icmpMsg)), icmpMsg) != 0xffff {
				t.Fatalf("ICMPv6 header %x, MTU %d", icmpMsg[:8], mtu)
			}
		}
		if _, again := BuildTooBig(make([]byte, 1500), ans, mtu); again {
			t.Fatal("BuildTooBig answers its own answer")
		}
	})
}
