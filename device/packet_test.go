package device

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Minimal packet building and parsing for the device tests.

const (
	protoICMP   = 1
	protoUDP    = 17
	protoICMPv6 = 58

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
)

// checksum is the Internet checksum of b, starting from sum.
func checksum(sum uint32, b []byte) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// ipv4 returns an IPv4 packet (DF set, TTL 64) carrying payload.
func ipv4(src, dst netip.Addr, proto byte, payload []byte) []byte {
	p := make([]byte, 20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[6:], 0x4000)
	p[8] = 64
	p[9] = proto
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], checksum(0, p[:20]))
	copy(p[20:], payload)
	return p
}

// udp4 returns an IPv4 UDP packet with a correct checksum.
func udp4(src, dst netip.AddrPort, data []byte) []byte {
	u := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], data)
	s, d := src.Addr().As4(), dst.Addr().As4()
	pseudo := append(append(s[:], d[:]...), 0, protoUDP, byte(len(u)>>8), byte(len(u)))
	var sum uint32
	for i := 0; i < len(pseudo); i += 2 {
		sum += uint32(pseudo[i])<<8 | uint32(pseudo[i+1])
	}
	c := checksum(sum, u)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return ipv4(src.Addr(), dst.Addr(), protoUDP, u)
}

// echo4 returns an IPv4 ICMP echo request.
func echo4(src, dst netip.Addr, id, seq uint16, data []byte) []byte {
	m := make([]byte, 8+len(data))
	m[0] = 8 // echo request
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], checksum(0, m))
	return ipv4(src, dst, protoICMP, m)
}

// ipInfo is what the tests look at in an IP packet.
type ipInfo struct {
	version  int
	src, dst netip.Addr
	proto    byte
	payload  []byte // the transport header and data
}

// parseIP parses an IPv4 or IPv6 packet without extension headers.
func parseIP(p []byte) (ipInfo, bool) {
	if len(p) < 1 {
		return ipInfo{}, false
	}
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&0xf) * 4
		if len(p) < 20 || ihl < 20 || len(p) < ihl {
			return ipInfo{}, false
		}
		return ipInfo{
			version: 4,
			src:     netip.AddrFrom4([4]byte(p[12:16])),
			dst:     netip.AddrFrom4([4]byte(p[16:20])),
			proto:   p[9],
			payload: p[ihl:],
		}, true
	case 6:
		if len(p) < 40 {
			return ipInfo{}, false
		}
		return ipInfo{
			version: 6,
			src:     netip.AddrFrom16([16]byte(p[8:24])),
			dst:     netip.AddrFrom16([16]byte(p[24:40])),
			proto:   p[6],
			payload: p[40:],
		}, true
	}
	return ipInfo{}, false
}

// isUDPTo reports whether p is a UDP packet to dst.
func isUDPTo(p []byte, dst netip.AddrPort) bool {
	ip, ok := parseIP(p)
	return ok && ip.proto == protoUDP && ip.dst == dst.Addr() && len(ip.payload) >= 8 &&
		binary.BigEndian.Uint16(ip.payload[2:]) == dst.Port()
}

// ether returns an Ethernet frame.
func ether(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	f := make([]byte, 14+len(payload))
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], etherType)
	copy(f[14:], payload)
	return f
}

// arp4 returns an ARP payload for IPv4 over Ethernet.
func arp4(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	a := make([]byte, 28)
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	s, t := spa.As4(), tpa.As4()
	copy(a[8:], sha)
	copy(a[14:], s[:])
	copy(a[18:], tha)
	copy(a[24:], t[:])
	return a
}
