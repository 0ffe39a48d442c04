package device

import (
	"bytes"
	"encoding/binary"

	"golang.org/x/sys/unix"

	"github.com/quictun/quictun/packet"
)

// Write of a TAP with offloads coalesces runs of TCP segments (GRO): the
// segments of one flow that follow each other in bufs, in sequence, become
// one super-frame written behind a virtio-net header asking the kernel for
// TCP segmentation (gso_type TCPV4/TCPV6) and a partial checksum
// (NEEDS_CSUM). The rules are those of wireguard-go's tcpGRO, kept strict:
//
//   - only frames of one Write call, and only a run of consecutive frames
//     (a frame that does not join the run ends it), so that every frame is
//     written after the frames before it in bufs;
//   - the same Ethernet header (addresses, VLAN tags, ethertype); IPv4
//     without options, with DF set and not a fragment, or IPv6 without
//     extension headers; the same addresses, TOS/traffic class (and IPv6
//     flow label) and TTL/hop limit; the same ports, acknowledgment number,
//     window, urgent pointer and TCP options bytes (compared exactly);
//     flags ACK, or ACK|PSH with PSH allowed only on the last segment;
//   - contiguous sequence numbers; every segment but the last carries
//     exactly the payload size of the first (gso_size), the last at most
//     that; at most 64 segments and 65535 bytes of IP packet;
//   - every segment's IPv4 header and TCP checksums verified first: the
//     kernel does not check the payload of a NEEDS_CSUM frame, so a
//     corrupted segment is written alone, as it came, for the kernel to drop.
//
// The super-frame is built in place in the first frame's buffer when its
// capacity allows (offset+tapFrameMax), otherwise in the TunTap's write
// scratch buffer (under wmu).

const (
	// groMaxSegs caps the segments of one coalesced super-frame.
	groMaxSegs = 64

	tcpFlagACK = 0x10
)

// groSeg is the layout of a TCP segment Write may coalesce.
type groSeg struct {
	ip, l4, payload int // offsets of the IP and TCP headers and of the payload
	v6              bool
	seq             uint32
	psh             bool
}

// parseGROSeg reports whether the Ethernet frame f is a TCP segment Write
// may coalesce, and its layout. It does not verify checksums.
func parseGROSeg(f []byte) (s groSeg, ok bool) {
	if len(f) > tapFrameMax {
		return s, false
	}
	ip, et, ok := etherPayload(f)
	if !ok {
		return s, false
	}
	s.ip = ip
	switch et {
	case packet.EtherTypeIPv4:
		// Version 4, no options, total length matching the frame (no
		// Ethernet padding), DF alone and offset 0, TCP.
		if len(f) < ip+20 || f[ip] != 0x45 || int(binary.BigEndian.Uint16(f[ip+2:])) != len(f)-ip ||
			f[ip+6] != 0x40 || f[ip+7] != 0 || f[ip+9] != unix.IPPROTO_TCP {
			return s, false
		}
		s.l4 = ip + 20
	default: // packet.EtherTypeIPv6
		if len(f) < ip+40 || f[ip]>>4 != 6 || f[ip+6] != unix.IPPROTO_TCP ||
			int(binary.BigEndian.Uint16(f[ip+4:])) != len(f)-ip-40 {
			return s, false
		}
		s.l4, s.v6 = ip+40, true
	}
	if len(f) < s.l4+20 {
		return s, false
	}
	tcpLen := int(f[s.l4+12]>>4) * 4
	if tcpLen < 20 || f[s.l4+12]&0x0f != 0 || s.l4+tcpLen >= len(f) {
		return s, false // bad header, reserved/AE bits, or no payload
	}
	switch f[s.l4+13] {
	case tcpFlagACK:
	case tcpFlagACK | tcpFlagPSH:
		s.psh = true
	default:
		return s, false
	}
	s.payload = s.l4 + tcpLen
	s.seq = binary.BigEndian.Uint32(f[s.l4+4:])
	return s, true
}

// groChecksumsOK verifies the IPv4 header checksum and the TCP checksum of
// the segment f laid out as s.
func groChecksumsOK(f []byte, s groSeg) bool {
	if !s.v6 && packet.ChecksumFold(packet.ChecksumAdd(0, f[s.ip:s.l4])) != 0xffff {
		return false
	}
	return packet.ChecksumFold(packet.ChecksumAdd(tcpPseudoSum(f[s.ip:], s.v6, len(f)-s.l4), f[s.l4:])) == 0xffff
}

// groSameFlow reports whether the segment p may follow the segment h in one
// super-frame as far as their headers go; both are laid out as s.
func groSameFlow(h, p []byte, s groSeg) bool {
	ip, l4 := s.ip, s.l4
	if !bytes.Equal(h[:ip], p[:ip]) { // MAC addresses, VLAN tags, ethertype
		return false
	}
	if s.v6 {
		// Version, traffic class, flow label; hop limit; addresses.
		if !bytes.Equal(h[ip:ip+4], p[ip:ip+4]) || h[ip+7] != p[ip+7] || !bytes.Equal(h[ip+8:ip+40], p[ip+8:ip+40]) {
			return false
		}
	} else if h[ip+1] != p[ip+1] || h[ip+8] != p[ip+8] || !bytes.Equal(h[ip+12:ip+20], p[ip+12:ip+20]) {
		return false // TOS, TTL, addresses
	}
	// Ports; acknowledgment number; data offset; window; urgent pointer
	// (meaningless without URG, which no segment here has, but a segment
	// that carries one is written with it); options.
	return bytes.Equal(h[l4:l4+4], p[l4:l4+4]) && bytes.Equal(h[l4+8:l4+13], p[l4+8:l4+13]) &&
		bytes.Equal(h[l4+14:l4+16], p[l4+14:l4+16]) && bytes.Equal(h[l4+18:s.payload], p[l4+18:s.payload])
}

// groRun is the run of segments Write is coalescing.
type groRun struct {
	head     int    // index in bufs of the first segment; -1 if none
	seg      groSeg // its layout
	verified bool   // its checksums were verified
	n        int    // segments in the run
	gsoSize  int    // payload bytes of the first segment
	nextSeq  uint32 // sequence number the next segment must have
	closed   bool   // the last segment was short or had PSH
	psh      bool
	buf      []byte // virtio-net header and super-frame, once n ≥ 2
}

// newGRORun starts a run with the segment f, bufs[i] laid out as s;
// verified says whether its checksums were verified.
func newGRORun(i int, f []byte, s groSeg, verified bool) groRun {
	payload := len(f) - s.payload
	return groRun{head: i, seg: s, verified: verified, n: 1, gsoSize: payload,
		nextSeq: s.seq + uint32(payload), closed: s.psh, psh: s.psh}
}

// tapWriteGRO is Write of a TAP with offloads and offset ≥ vnetHdrLen.
func (t *TunTap) tapWriteGRO(bufs [][]byte, offset int) (int, error) {
	r := groRun{head: -1}
	locked := false // t.wmu is held: r.buf may be t.wscratch
	defer func() {
		if locked {
			t.wmu.Unlock()
		}
	}()
	for i, b := range bufs {
		f := b[offset:]
		s, ok := parseGROSeg(f)
		if ok && r.head >= 0 {
			switch t.groAppend(&r, bufs, offset, f, s, &locked) {
			case groAppended:
				continue
			case groBadSegment:
				ok = false // written alone below
			case groBadHead:
				if err := t.groFlush(&r, bufs, offset); err != nil {
					return r.head, err
				}
				r = newGRORun(i, f, s, true)
				continue
			}
		}
		if r.head >= 0 {
			if err := t.groFlush(&r, bufs, offset); err != nil {
				return r.head, err
			}
			r.head = -1
		}
		if ok {
			r = newGRORun(i, f, s, false)
			continue
		}
		if err := t.writePlain(b, offset); err != nil {
			return i, err
		}
	}
	if r.head >= 0 {
		if err := t.groFlush(&r, bufs, offset); err != nil {
			return r.head, err
		}
	}
	return len(bufs), nil
}

const (
	groNo         = iota // the segment does not join the run
	groAppended          // it joined the run
	groBadSegment        // its checksums are bad: write it alone
	groBadHead           // the run's single segment has bad checksums; the new one is good
)

// groAppend tries to append the segment f, laid out as s, to the run r.
func (t *TunTap) groAppend(r *groRun, bufs [][]byte, offset int, f []byte, s groSeg, locked *bool) int {
	payload := len(f) - s.payload
	if r.closed || r.n >= groMaxSegs || s.seq != r.nextSeq || payload > r.gsoSize ||
		s.ip != r.seg.ip || s.l4 != r.seg.l4 || s.payload != r.seg.payload || s.v6 != r.seg.v6 {
		return groNo
	}
	var head []byte
	if r.n == 1 {
		head = bufs[r.head][offset:]
	} else {
		head = r.buf[vnetHdrLen:]
	}
	if len(head)+payload > min(s.ip+65535, tapFrameMax) || !groSameFlow(head, f, s) {
		return groNo
	}
	if !groChecksumsOK(f, s) {
		return groBadSegment
	}
	if r.n == 1 {
		if !r.verified && !groChecksumsOK(head, r.seg) {
			return groBadHead
		}
		r.verified = true
		if hb := bufs[r.head]; cap(hb) >= offset+tapFrameMax {
			r.buf = hb[offset-vnetHdrLen:]
		} else {
			if !*locked {
				t.wmu.Lock()
				*locked = true
			}
			r.buf = t.wscratch[:vnetHdrLen+copy(t.wscratch[vnetHdrLen:], head)]
		}
	}
	r.buf = append(r.buf, f[s.payload:]...) // within capacity: checked above
	r.n++
	r.nextSeq += uint32(payload)
	r.psh = s.psh
	r.closed = s.psh || payload < r.gsoSize
	return groAppended
}

// groFlush writes the run r: its single segment as it came, or the
// super-frame with its headers fixed and a virtio-net header.
func (t *TunTap) groFlush(r *groRun, bufs [][]byte, offset int) error {
	if r.n == 1 {
		return t.writePlain(bufs[r.head], offset)
	}
	s := r.seg
	f := r.buf[vnetHdrLen:]
	ip := f[s.ip:]
	if s.v6 {
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-40))
	} else {
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		setIPv4Checksum(ip, 20)
	}
	if r.psh {
		f[s.l4+13] |= tcpFlagPSH
	}
	binary.BigEndian.PutUint16(f[s.l4+16:], packet.ChecksumFold(tcpPseudoSum(ip, s.v6, len(f)-s.l4)))
	h := r.buf[:vnetHdrLen]
	h[0] = vnetFlagNeedsCsum
	h[1] = vnetGSOTCPv4
	if s.v6 {
		h[1] = vnetGSOTCPv6
	}
	binary.NativeEndian.PutUint16(h[2:], uint16(s.payload))
	binary.NativeEndian.PutUint16(h[4:], uint16(r.gsoSize))
	binary.NativeEndian.PutUint16(h[6:], uint16(s.l4))
	binary.NativeEndian.PutUint16(h[8:], 16)
	t.groWritten.Add(1)
	return t.writeFrame(r.buf)
}
