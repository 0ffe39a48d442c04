package device

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// groFrame returns a TCP segment as a peer would send it, checksums
// complete: seq, flags and payload of n bytes from stream at seq-1000.
func groFrame(v6, vlan bool, seq uint32, flags uint8, stream []byte, n int, id uint16) []byte {
	f, _, tcpOff := tcpFrame(tcpFrameSpec{v6: v6, vlan: vlan, seq: seq, flags: flags,
		payload: stream[seq-1000 : int(seq-1000)+n], ipID: id})
	if err := completeChecksum(f, tcpOff, 16); err != nil {
		panic(err)
	}
	return f
}

// groSegments builds count segments of size bytes (the last of last bytes,
// with PSH if psh), in sequence from 1000.
func groSegments(v6, vlan bool, count, size, last int, psh bool) [][]byte {
	stream := patterned(count*size + 1)
	var out [][]byte
	seq := uint32(1000)
	for i := range count {
		n, flags := size, uint8(tcpFlagACK)
		if i == count-1 {
			n = last
			if psh {
				flags |= tcpFlagPSH
			}
		}
		out = append(out, groFrame(v6, vlan, seq, flags, stream, n, uint16(100+i)))
		seq += uint32(n)
	}
	return out
}

// writeCollect writes frames with Write at offset 16 into buffers of
// capacity off+capacity, and returns what the peer received, one message
// per write(2).
func writeCollect(t *testing.T, frames [][]byte, capacity int) [][]byte {
	t.Helper()
	return writeCollectWith(t, frames, capacity, nil)
}

// writeCollectWith is writeCollect with setup, if not nil, run on the TAP
// first.
func writeCollectWith(t *testing.T, frames [][]byte, capacity int, setup func(*TunTap)) [][]byte {
	t.Helper()
	d, peer := fakeTAP(t)
	if setup != nil {
		setup(d)
	}
	const off = 16
	bufs := make([][]byte, len(frames))
	for i, f := range frames {
		bufs[i] = append(make([]byte, off, off+capacity), f...)
	}
	if n, err := d.Write(bufs, off); n != len(frames) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	var msgs [][]byte
	buf := make([]byte, 70000)
	raw, err := peer.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for more := true; more; {
		raw.Read(func(fd uintptr) bool {
			n, err := unix.Read(int(fd), buf)
			if err != nil {
				more = false // EAGAIN: nothing more
			} else {
				msgs = append(msgs, bytes.Clone(buf[:n]))
			}
			return true
		})
	}
	return msgs
}

// resplit checks a written message and returns the frames it stands for:
// the frame itself behind an all-zero header, or the segments of a
// super-frame, cut by tcpSplit after checking its headers.
func resplit(t *testing.T, msg []byte) [][]byte {
	t.Helper()
	h := decodeVnetHdr(msg)
	f := msg[vnetHdrLen:]
	if h == (vnetHdr{}) {
		return [][]byte{f}
	}
	ip, et, _ := etherPayload(f)
	v6 := et == 0x86dd
	l4 := ip + 20
	wantGSO := uint8(vnetGSOTCPv4)
	if v6 {
		l4, wantGSO = ip+40, vnetGSOTCPv6
	}
	hdrLen := l4 + int(f[l4+12]>>4)*4
	if h.flags != vnetFlagNeedsCsum || h.gsoType != wantGSO || int(h.hdrLen) != hdrLen || int(h.csumStart) != l4 || h.csumOffset != 16 || h.gsoSize == 0 {
		t.Fatalf("super-frame header %+v (IP at %d, TCP at %d, payload at %d)", h, ip, l4, hdrLen)
	}
	// Lengths and the IPv4 header checksum must be right; the TCP checksum
	// field holds the pseudo-header sum for the whole length.
	if got := binary.BigEndian.Uint16(f[l4+16:]); got != ^checksum(0, pseudoHeader(f, ip, len(f)-l4)) {
		t.Fatalf("partial checksum %#04x, want %#04x", got, ^checksum(0, pseudoHeader(f, ip, len(f)-l4)))
	}
	full := bytes.Clone(f)
	if err := completeChecksum(full, l4, 16); err != nil {
		t.Fatal(err)
	}
	checkTCPFrame(t, full, ip)
	var s tcpSplit
	if err := s.start(f, h); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for s.pending() {
		seg := make([]byte, s.nextLen())
		s.segment(seg)
		out = append(out, seg)
	}
	return out
}

// checkWrites checks that msgs hold frames, in order, grouped as want
// (segments per message).
func checkWrites(t *testing.T, msgs, frames [][]byte, want []int) {
	t.Helper()
	var got []int
	var all [][]byte
	for _, m := range msgs {
		segs := resplit(t, m)
		got = append(got, len(segs))
		all = append(all, segs...)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("writes of %v segments, want %v", got, want)
	}
	if len(all) != len(frames) {
		t.Fatalf("%d frames written, want %d", len(all), len(frames))
	}
	for i := range all {
		if !bytes.Equal(all[i], frames[i]) {
			t.Errorf("frame %d written differs:\n got %x\nwant %x", i, all[i], frames[i])
		}
	}
}

func TestTAPWriteGRO(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, vlan := range []bool{false, true} {
			for _, capacity := range []int{OffloadBufSize - 16, 2000} {
				t.Run(fmt.Sprintf("v6=%v,vlan=%v,cap=%d", v6, vlan, capacity), func(t *testing.T) {
					frames := groSegments(v6, vlan, 6, 1000, 500, true)
					msgs := writeCollect(t, cloneFrames(frames), capacity)
					checkWrites(t, msgs, frames, []int{6})
					h := decodeVnetHdr(msgs[0])
					if h.gsoSize != 1000 {
						t.Errorf("gso_size %d, want 1000", h.gsoSize)
					}
					f := msgs[0][vnetHdrLen:]
					if f[h.csumStart+13] != tcpFlagACK|tcpFlagPSH {
						t.Errorf("super-frame flags %#x, want ACK|PSH", f[h.csumStart+13])
					}
					if got := len(f) - int(h.hdrLen); got != 5500 {
						t.Errorf("super-frame payload %d bytes, want 5500", got)
					}
					if !bytes.Equal(f[h.hdrLen:], patterned(6001)[:5500]) {
						t.Errorf("super-frame payload is not the concatenation")
					}
				})
			}
		}
	}
}

const tcpFlagSYN = 0x02

func cloneFrames(frames [][]byte) [][]byte {
	out := make([][]byte, len(frames))
	for i, f := range frames {
		out[i] = bytes.Clone(f)
	}
	return out
}

func TestTAPWriteGROBreaks(t *testing.T) {
	seg := func(f []byte, edit func(f []byte, ip, l4 int)) []byte {
		f = bytes.Clone(f)
		ip, et, _ := etherPayload(f)
		l4 := ip + 20
		if et == 0x86dd {
			l4 = ip + 40
		}
		edit(f, ip, l4)
		return f
	}
	// reTCP recomputes the TCP checksum after an edit.
	reTCP := func(f []byte, ip, l4 int) {
		binary.BigEndian.PutUint16(f[l4+16:], ^checksum(0, pseudoHeader(f, ip, len(f)-l4)))
		if err := completeChecksum(f, l4, 16); err != nil {
			panic(err)
		}
	}
	s := groSegments(false, false, 8, 1000, 1000, false)
	s6 := groSegments(true, true, 8, 1000, 1000, false)
	otherPort := func(f []byte) []byte {
		return seg(f, func(f []byte, ip, l4 int) { f[l4+1]++; reTCP(f, ip, l4) })
	}
	setFlags := func(f []byte, flags uint8) []byte {
		return seg(f, func(f []byte, ip, l4 int) { f[l4+13] = flags; reTCP(f, ip, l4) })
	}
	stream := patterned(8*1000 + 1)
	short := groFrame(false, false, 2000, tcpFlagACK, stream, 600, 101)
	afterShort := groFrame(false, false, 2600, tcpFlagACK, stream, 1000, 102)
	badSum := seg(s[2], func(f []byte, ip, l4 int) { f[len(f)-1] ^= 0x40 })
	badSum6 := seg(s6[2], func(f []byte, ip, l4 int) { f[len(f)-1] ^= 0x40 })
	badIP := seg(s[2], func(f []byte, ip, l4 int) { f[ip+10] ^= 1 })
	noDF := seg(s[2], func(f []byte, ip, l4 int) {
		f[ip+6] = 0
		binary.BigEndian.PutUint16(f[ip+10:], 0)
		binary.BigEndian.PutUint16(f[ip+10:], checksum(0, f[ip:ip+20]))
	})
	// IPv4 options: a 4-byte NOP option block in front of the TCP header.
	withOpts := func(f []byte) []byte {
		ip := 14
		g := append(append(bytes.Clone(f[:ip+20]), 1, 1, 1, 1), f[ip+20:]...)
		g[ip] = 0x46
		binary.BigEndian.PutUint16(g[ip+2:], uint16(len(g)-ip))
		binary.BigEndian.PutUint16(g[ip+10:], 0)
		binary.BigEndian.PutUint16(g[ip+10:], checksum(0, g[ip:ip+24]))
		return g
	}
	arp := ether(testMACa, testMACb, etherTypeARP, make([]byte, 28))
	otherTS := seg(s[2], func(f []byte, ip, l4 int) { f[l4+31]++; reTCP(f, ip, l4) })
	otherVLAN := seg(s6[2], func(f []byte, ip, l4 int) { f[15]++ })

	cases := []struct {
		name   string
		frames [][]byte
		want   []int
	}{
		{"run", s, []int{8}},
		{"other flow", [][]byte{s[0], s[1], otherPort(s[2]), otherPort(s[3]), s[4]}, []int{2, 2, 1}},
		{"gap", [][]byte{s[0], s[1], s[3], s[4]}, []int{2, 2}},
		{"PSH in the middle", [][]byte{s[0], setFlags(s[1], tcpFlagACK|tcpFlagPSH), s[2], s[3]}, []int{2, 2}},
		{"short in the middle", [][]byte{s[0], short, afterShort}, []int{2, 1}},
		{"FIN", [][]byte{s[0], s[1], setFlags(s[2], tcpFlagACK|tcpFlagFIN), s[3], s[4]}, []int{2, 1, 2}},
		{"SYN", [][]byte{setFlags(s[0], tcpFlagACK|tcpFlagSYN), s[1], s[2]}, []int{1, 2}},
		{"CWR", [][]byte{s[0], setFlags(s[1], tcpFlagACK|tcpFlagCWR), s[2]}, []int{1, 1, 1}},
		{"IPv4 options", [][]byte{s[0], s[1], withOpts(s[2]), s[3], s[4]}, []int{2, 1, 2}},
		{"no DF", [][]byte{s[0], s[1], noDF, s[3]}, []int{2, 1, 1}},
		{"bad TCP checksum", [][]byte{s[0], s[1], badSum, s[3], s[4]}, []int{2, 1, 2}},
		{"bad TCP checksum v6", [][]byte{s6[0], s6[1], badSum6, s6[3], s6[4]}, []int{2, 1, 2}},
		{"bad IPv4 header checksum", [][]byte{s[0], s[1], badIP, s[3]}, []int{2, 1, 1}},
		{"bad first", [][]byte{badSum, s[3], s[4], s[5]}, []int{1, 3}},
		{"not IP", [][]byte{s[0], s[1], arp, s[2], s[3]}, []int{2, 1, 2}},
		{"other options", [][]byte{s[0], s[1], otherTS, s[3]}, []int{2, 1, 1}},
		{"other VLAN", [][]byte{s6[0], s6[1], otherVLAN, s6[3]}, []int{2, 1, 1}},
		{"single", [][]byte{s[0]}, []int{1}},
		{"64 segments", groSegments(false, false, 70, 100, 100, false), []int{64, 6}},
		{"64 KiB", groSegments(true, false, 50, 1400, 1400, false), []int{46, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, capacity := range []int{OffloadBufSize - 16, 1600} {
				msgs := writeCollect(t, cloneFrames(c.frames), capacity)
				checkWrites(t, msgs, c.frames, c.want)
			}
		})
	}
}

func TestTAPWriteGRONoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	frames := groSegments(false, false, 8, 1400, 1400, false)
	for _, capacity := range []int{OffloadBufSize - 16, 1600} {
		d, peer := fakeTAP(t)
		const off = 16
		bufs := make([][]byte, len(frames))
		for i := range bufs {
			bufs[i] = make([]byte, off+len(frames[i]), off+capacity)
		}
		sink := make([]byte, 70000)
		allocs := testing.AllocsPerRun(100, func() {
			for i, f := range frames {
				copy(bufs[i][off:], f)
			}
			if n, err := d.Write(bufs, off); n != len(bufs) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if n, err := peer.Read(sink); err != nil || n != vnetHdrLen+14+20+32+8*1400 {
				t.Fatalf("peer read %d, %v; want one super-frame", n, err)
			}
		})
		if allocs != 0 {
			t.Errorf("capacity %d: Write allocates %.1f times per call, want 0", capacity, allocs)
		}
	}
}

// TestTAPWriteGRORealTCP has a kernel socket receive, through a real TAP,
// data that the peer (this test) writes as runs of segments that Write
// coalesces into super-frames: the socket must read every byte, in order.
func TestTAPWriteGRORealTCP(t *testing.T) {
	d, peer := tapWithPeer(t, "qtg")
	frames := pump(d)
	const iss = 5000
	synCh := make(chan []byte, 1)
	go func() {
		for f := range frames {
			if len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == etherTypeIPv4 && f[14+9] == protoTCP &&
				bytes.Equal(f[30:34], peer.AsSlice()) && f[14+20+13]&0x02 != 0 {
				if _, err := d.Write([][]byte{synAck(f, iss)}, 0); err != nil {
					t.Errorf("write SYN-ACK: %v", err)
				}
				select {
				case synCh <- bytes.Clone(f):
				default:
				}
			}
			// The kernel's ACKs are ignored.
		}
	}()
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp4", netip.AddrPortFrom(peer, 5201).String())
	if err != nil {
		t.Fatalf("connect through the TAP: %v", err)
	}
	defer conn.Close()
	syn := <-synCh
	ack := binary.BigEndian.Uint32(syn[14+20+4:]) + 1

	// 4 Writes of 10 segments of 1400 bytes, the last of each with PSH.
	const segs, size, perWrite = 40, 1400, 10
	sent := patterned(segs * size)
	const off = 16
	for w := 0; w < segs/perWrite; w++ {
		var bufs [][]byte
		for i := w * perWrite; i < (w+1)*perWrite; i++ {
			flags := uint8(tcpFlagACK)
			if i == (w+1)*perWrite-1 {
				flags |= tcpFlagPSH
			}
			f := peerSegment(syn, iss+1+uint32(i*size), ack, flags, nil, sent[i*size:(i+1)*size])
			bufs = append(bufs, append(make([]byte, off, off+OffloadBufSize), f...))
		}
		if n, err := d.Write(bufs, off); n != len(bufs) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	got := make([]byte, len(sent))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("the socket read %d of %d bytes: %v", n, len(sent), err)
	}
	if !bytes.Equal(got, sent) {
		t.Errorf("the socket read other bytes than were written")
	}
	if n := d.groWritten.Load(); n != segs/perWrite {
		t.Errorf("%d super-frames written, want %d", n, segs/perWrite)
	}
}
