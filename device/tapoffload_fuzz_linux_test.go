package device

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// segChecksum is the folded one's-complement sum, recomputed from
// scratch, of the TCP segment at f[l4:] of the IP packet at f[ip:] with
// its pseudo-header: 0xffff when its checksum is right.
func segChecksum(f []byte, ip, l4 int) uint16 {
	var ph []byte
	n := len(f) - l4
	if f[ip]>>4 == 6 {
		ph = append(append(ph, f[ip+8:ip+40]...), byte(n>>24), byte(n>>16), byte(n>>8), byte(n), 0, 0, 0, protoTCP)
	} else {
		ph = append(append(ph, f[ip+12:ip+20]...), 0, protoTCP, byte(n>>8), byte(n))
	}
	return ^checksum(0, append(ph, f[l4:]...))
}

// FuzzTCPSplit feeds tcpSplit a TCP GSO super-frame (a well-formed one
// from tcpFrame that the fuzzer edits, or its own bytes), with extra bytes
// of payload appended so that frames up to the largest a TAP read takes
// are reached, under any virtio-net header. Whatever start accepts must
// split into segments that are each a valid frame — IP lengths that are
// the segment's, a right IPv4 header checksum and a right TCP checksum
// recomputed from scratch, the super-frame's headers otherwise, sequence
// numbers that follow the payload, FIN and PSH on the last segment only
// and CWR on the first only — at most hdr_len+gso_size bytes each, whose
// payloads concatenate to the super-frame's.
func FuzzTCPSplit(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		for _, vlan := range []bool{false, true} {
			fr, _, tcpOff := tcpFrame(tcpFrameSpec{v6: v6, vlan: vlan, seq: 0xfffff000, flags: 0x99, payload: patterned(3000), ipID: 0xfffe})
			gso := uint8(vnetGSOTCPv4)
			if v6 {
				gso = vnetGSOTCPv6
			}
			f.Add(fr, gso, uint16(1000), uint16(tcpOff), uint16(16), uint16(0))
			f.Add(fr, gso|vnetGSOECN, uint16(1448), uint16(tcpOff), uint16(16), uint16(62000))
			f.Add(fr, gso, uint16(65535), uint16(tcpOff), uint16(16), uint16(65535)) // the largest read
		}
	}
	f.Add([]byte{}, uint8(1), uint16(1), uint16(34), uint16(16), uint16(0))
	out := make([]byte, vnetHdrLen+tapFrameMax)
	f.Fuzz(func(t *testing.T, frame []byte, gsoType uint8, gsoSize, csumStart, csumOffset, extra uint16) {
		frame = append(bytes.Clone(frame), patterned(int(extra))...)
		if len(frame) > tapFrameMax {
			frame = frame[:tapFrameMax] // what a TAP read can return
		}
		orig := bytes.Clone(frame)
		h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: gsoType, gsoSize: gsoSize, csumStart: csumStart, csumOffset: csumOffset}
		var s tcpSplit
		if s.start(frame, h) != nil {
			if s.pending() {
				t.Fatal("refused, yet segments pending")
			}
			return
		}
		ip, l4, hdrLen, v6 := s.ip, s.l4, s.hdrLen, s.v6
		if hdrLen >= len(frame) || l4 != int(csumStart) {
			t.Fatalf("accepted headers of %d bytes, TCP at %d (csum_start %d) in %d bytes", hdrLen, l4, csumStart, len(frame))
		}
		seq0 := binary.BigEndian.Uint32(frame[l4+4:])
		id0 := binary.BigEndian.Uint16(frame[ip+4:])
		var payload []byte
		for i := 0; s.pending(); i++ {
			n := s.nextLen()
			if n > hdrLen+int(gsoSize) {
				t.Fatalf("segment %d of %d bytes, more than %d+%d", i, n, hdrLen, gsoSize)
			}
			if got := s.segment(out); got != n {
				t.Fatalf("segment %d: %d bytes, nextLen said %d", i, got, n)
			}
			seg := out[:n]
			last := !s.pending()
			if !last && n != hdrLen+int(gsoSize) {
				t.Fatalf("segment %d of %d bytes is not the last, yet shorter than %d+%d", i, n, hdrLen, gsoSize)
			}
			if v6 {
				if got := int(binary.BigEndian.Uint16(seg[ip+4:])); got != n-ip-40 {
					t.Fatalf("segment %d: IPv6 payload length %d of %d", i, got, n-ip-40)
				}
			} else {
				ihl := int(seg[ip]&0xf) * 4
				if got := int(binary.BigEndian.Uint16(seg[ip+2:])); got != n-ip {
					t.Fatalf("segment %d: IPv4 total length %d of %d", i, got, n-ip)
				}
				if ^checksum(0, seg[ip:ip+ihl]) != 0xffff {
					t.Fatalf("segment %d: bad IPv4 header checksum", i)
				}
				if got := binary.BigEndian.Uint16(seg[ip+4:]); got != id0+uint16(i) {
					t.Fatalf("segment %d: IPv4 ID %d, want %d", i, got, id0+uint16(i))
				}
			}
			if segChecksum(seg, ip, l4) != 0xffff {
				t.Fatalf("segment %d: bad TCP checksum", i)
			}
			if got, want := binary.BigEndian.Uint32(seg[l4+4:]), seq0+uint32(len(payload)); got != want {
				t.Fatalf("segment %d: sequence number %d, want %d", i, got, want)
			}
			flags, want := seg[l4+13], orig[l4+13]
			if !last {
				want &^= tcpFlagFIN | tcpFlagPSH
			}
			if i > 0 {
				want &^= tcpFlagCWR
			}
			if flags != want {
				t.Fatalf("segment %d: flags %#x, want %#x", i, flags, want)
			}
			// Every other header byte is the super-frame's.
			for j := range hdrLen {
				lengths := (v6 && j >= ip+4 && j < ip+6) || (!v6 && j >= ip+2 && j < ip+6) || (!v6 && j >= ip+10 && j < ip+12)
				if !lengths && j != l4+13 && !(j >= l4+4 && j < l4+8) && !(j >= l4+16 && j < l4+18) && seg[j] != orig[j] {
					t.Fatalf("segment %d: header byte %d is %#x, the super-frame's %#x", i, j, seg[j], orig[j])
				}
			}
			payload = append(payload, seg[hdrLen:]...)
			if i > len(frame) {
				t.Fatal("more segments than bytes")
			}
		}
		if !bytes.Equal(payload, orig[hdrLen:]) {
			t.Fatalf("segments carry %d bytes that are not the super-frame's %d", len(payload), len(orig)-hdrLen)
		}
	})
}

// FuzzCompleteChecksum completes a partial checksum anywhere in arbitrary
// bytes: it must refuse a field outside the frame, change nothing but the
// field, and leave a field that makes the sum from start, seeded with what
// the field held, right when recomputed from scratch (never 0, which UDP
// reads as no checksum).
func FuzzCompleteChecksum(f *testing.F) {
	fr, _, tcpOff := tcpFrame(tcpFrameSpec{payload: patterned(101), flags: 0x18})
	f.Add(fr, uint16(tcpOff), uint16(16))
	f.Add(make([]byte, 10), uint16(0), uint16(6))
	f.Add([]byte{1, 2, 3}, uint16(1), uint16(1))
	f.Fuzz(func(t *testing.T, frame []byte, start, off uint16) {
		orig := bytes.Clone(frame)
		at := int(start) + int(off)
		err := completeChecksum(frame, int(start), int(off))
		if int(start) >= len(frame) || at+2 > len(frame) {
			if err == nil {
				t.Fatalf("completed a field at %d+%d of a %d-byte frame", start, off, len(frame))
			}
			return
		}
		if err != nil {
			t.Fatalf("refused the field at %d+%d of %d bytes: %v", start, off, len(frame), err)
		}
		for i := range frame {
			if (i < at || i >= at+2) && frame[i] != orig[i] {
				t.Fatalf("byte %d changed", i)
			}
		}
		if binary.BigEndian.Uint16(frame[at:]) == 0 {
			t.Fatal("checksum 0")
		}
		seed := []byte{orig[at], orig[at+1]}
		if at%2 != int(start)%2 {
			// The field is not word-aligned in the sum: the recomputation
			// needs no special case for it, the check does.
			return
		}
		if ^checksum(0, append(seed, frame[start:]...)) != 0xffff {
			t.Fatalf("sum with the completed field is %#04x", ^checksum(0, append(seed, frame[start:]...)))
		}
	})
}

// FuzzTAPWriteGRO writes a run of TCP segments (count segments of size
// bytes, the last of last, in IPv4 or IPv6, tagged or not), edited by
// edits (records of segment, offset and value; the checksums recomputed
// after the edits when fix is set) through a TAP with offloads, and checks
// what comes out: every message is a single frame behind an empty
// virtio-net header or a super-frame whose header, lengths and partial
// checksum are right (resplit), and its segments, split again, are the
// frames written, in order, byte for byte but the IPv4 ID and header
// checksum a super-frame renumbers.
func FuzzTAPWriteGRO(f *testing.F) {
	f.Add(false, false, uint8(6), uint16(1000), uint16(500), true, []byte{}, false)
	f.Add(true, true, uint8(8), uint16(1000), uint16(1000), false, []byte{2, 0, 40, 0}, true)
	f.Add(false, true, uint8(64), uint16(900), uint16(900), false, []byte{3, 0, 60, 0x11}, false)
	f.Add(false, false, uint8(70), uint16(1000), uint16(1000), false, []byte{}, false)
	f.Fuzz(func(t *testing.T, v6, vlan bool, count uint8, size, last uint16, psh bool, edits []byte, fix bool) {
		n := 1 + int(count)%70
		sz := 1 + int(size)%1448
		ls := 1 + int(last)%sz
		frames := groSegments(v6, vlan, n, sz, ls, psh)
		for len(edits) >= 4 {
			fr := frames[int(edits[0])%n]
			if i := int(binary.BigEndian.Uint16(edits[1:3])) % len(fr); i >= 12 { // not the MACs: the fuzzer finds the rest
				fr[i] = edits[3]
			}
			edits = edits[4:]
		}
		if fix {
			for _, fr := range frames {
				ip, et, ok := etherPayload(fr)
				if !ok || (et == 0x86dd) != v6 || len(fr) < ip+40+20 {
					continue
				}
				l4 := ip + 20
				if v6 {
					l4 = ip + 40
				} else {
					setIPv4Checksum(fr[ip:], 20)
				}
				binary.BigEndian.PutUint16(fr[l4+16:], 0)
				binary.BigEndian.PutUint16(fr[l4+16:], ^checksum(0, pseudoHeader(fr, ip, len(fr)-l4)))
				if completeChecksum(fr, l4, 16) != nil {
					t.Fatal("cannot checksum a built frame")
				}
			}
		}
		msgs := writeCollectBig(t, cloneFrames(frames))
		var all [][]byte
		var coalesced []bool
		for _, m := range msgs {
			segs := resplit(t, m)
			for range segs {
				coalesced = append(coalesced, len(segs) > 1)
			}
			all = append(all, segs...)
		}
		if len(all) != len(frames) {
			t.Fatalf("%d frames written as %d messages holding %d", len(frames), len(msgs), len(all))
		}
		for i := range all {
			got, want := all[i], frames[i]
			if coalesced[i] {
				got, want = groNormal(got, v6), groNormal(want, v6)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("frame %d written differs:\n got %x\nwant %x", i, all[i], frames[i])
			}
		}
	})
}

// groNormal returns a copy of the TCP segment f without what coalescing
// and splitting again may change: the IPv4 ID and header checksum (the
// segments are renumbered) and the TCP checksum's form (0xffff and 0 are
// the same one's-complement zero; the split writes 0).
func groNormal(f []byte, v6 bool) []byte {
	f = bytes.Clone(f)
	ip, _, _ := etherPayload(f)
	l4 := ip + 40
	if !v6 {
		l4 = ip + 20
		f[ip+4], f[ip+5], f[ip+10], f[ip+11] = 0, 0, 0, 0
	}
	if f[l4+16] == 0xff && f[l4+17] == 0xff {
		f[l4+16], f[l4+17] = 0, 0
	}
	return f
}

// writeCollectBig is writeCollect with buffers room for a super-frame and
// a send buffer that takes a whole Write, so that a full one never fails
// for want of room in the socket pair.
func writeCollectBig(t *testing.T, frames [][]byte) [][]byte {
	t.Helper()
	return writeCollectWith(t, frames, OffloadBufSize-16, func(d *TunTap) {
		_ = d.raw.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20) })
	})
}
