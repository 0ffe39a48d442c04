package quictun

import (
	"bytes"
	"testing"
	"time"

	"github.com/quictun/quictun/quictun/internal/wire"
)

// FuzzDecodeDatagram decodes a sequence of arbitrary datagrams (records of
// a big-endian uint16 length and that many bytes) the way every session's
// inbound path does, and checks that each is accounted for: a PACKET
// datagram delivers the bytes after its header, unless there are none; a
// KEEPALIVE delivers nothing; a FRAGMENT delivers a packet only when it
// completes one (counted as reassembled) no longer than the largest the
// format carries; and every datagram that delivers nothing counts exactly
// one drop unless it is a KEEPALIVE or a FRAGMENT the reassembler kept (or
// ignored as a duplicate). A FRAGMENT may also give up older packets
// (fragment_expired: the oldest to make room, or every one whose id it
// leaves stale), never more than the reassembler holds. Nothing delivered
// is ever also dropped.
func FuzzDecodeDatagram(f *testing.F) {
	const fuzzSlots = 3
	var fr wire.Fragmenter
	out := make([][]byte, wire.MaxFragments)
	for i := range out {
		out[i] = make([]byte, 0, 100)
	}
	pkt := bytes.Repeat([]byte{0x45, 1, 2, 3, 4}, 50)
	n, _ := fr.Split(pkt, 100, out)
	var seq []byte
	for _, d := range out[:n] {
		seq = append(seq, byte(len(d)>>8), byte(len(d)))
		seq = append(seq, d...)
	}
	f.Add(seq)
	f.Add([]byte{0, 0, 0, 1, 0, 0, 3, 0x40, 0x45, 0, 0, 1, 0x3f, 0, 64})
	f.Add([]byte{0, 5, wire.TypeFragment, 0, 1, 1, 2, 0, 6, 0xc1, 0, 1, 0, 2, 7})
	f.Fuzz(func(t *testing.T, seq []byte) {
		var c Counters
		// No timeout in a fuzz run: whether a packet expires must not
		// depend on how fast the machine is.
		reasm := newReassembler(fuzzSlots, time.Hour, &c)
		for len(seq) >= 2 {
			l := min(int(seq[0])<<8|int(seq[1]), len(seq)-2)
			dg := seq[2 : 2+l]
			seq = seq[2+l:]
			before, reassembled := c.Drops(), c.Reassembled.Load()
			got, ok := decodeDatagram(dg, reasm, &c)
			after := c.Drops()
			var drops, expired uint64
			for r := range after {
				if DropReason(r) == DropFragmentExpired {
					expired += after[r] - before[r]
				} else {
					drops += after[r] - before[r]
				}
			}
			typ := -1
			if len(dg) > 0 {
				typ = int(dg[0] & wire.TypeMask)
			}
			if ok && (drops != 0 || expired != 0 || len(got) == 0) {
				t.Fatalf("type %d: delivered %d bytes and counted %d drops, %d expired", typ, len(got), drops, expired)
			}
			if !ok && got != nil {
				t.Fatalf("type %d: not delivered, yet %d bytes returned", typ, len(got))
			}
			switch typ {
			case wire.TypePacket:
				if len(dg) > 1 && (!ok || !bytes.Equal(got, dg[1:])) {
					t.Fatalf("PACKET of %d bytes delivered %d: %v", len(dg)-1, len(got), ok)
				}
				if len(dg) == 1 && drops != 1 {
					t.Fatalf("empty PACKET: %d drops counted", drops)
				}
			case wire.TypeKeepalive:
				if ok || drops != 0 {
					t.Fatalf("KEEPALIVE delivered %v, %d drops", ok, drops)
				}
			case wire.TypeFragment:
				if ok != (c.Reassembled.Load() == reassembled+1) || (ok && len(got) > 65535+18) {
					t.Fatalf("FRAGMENT delivered %d bytes (%v), reassembled %d → %d", len(got), ok, reassembled, c.Reassembled.Load())
				}
				if drops > 1 || expired > fuzzSlots {
					t.Fatalf("FRAGMENT counted %d drops, %d expired", drops, expired)
				}
			default:
				if ok || drops != 1 {
					t.Fatalf("type %d delivered %v, %d drops", typ, ok, drops)
				}
			}
		}
	})
}
