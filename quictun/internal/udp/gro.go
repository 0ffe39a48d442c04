package udp

import (
	"golang.org/x/net/ipv4"
)

// batchReader reads several UDP datagrams at once (recvmmsg on Linux). It is
// the interface quic-go looks for on the socket it is given: a socket that
// has ReadBatch is read through it instead of through the socket's file
// descriptor.
type batchReader interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

// groBufSize holds the largest datagram UDP GRO can hand over at once (a
// UDP payload of at most 65535 − 8 bytes).
const groBufSize = 1 << 16

// groBatch is how many coalesced datagrams one system call may return.
const groBatch = 4

// groReader reads a socket that has UDP generic receive offload (UDP_GRO)
// on: the kernel hands over runs of datagrams of one size from one sender
// as one buffer (up to 64 KiB) and says the size of each in a control
// message. groReader splits them again into quic-go's messages, so quic-go
// sees the datagrams one by one while the kernel did one receive for the
// run. A peer sending with GSO (quic-go does for full packets) makes such
// runs on the wire; a NIC or veth with GRO makes them of the rest.
//
// It is not safe for concurrent use: quic-go reads a socket from one
// goroutine.
type groReader struct {
	r    batchReader
	msgs []ipv4.Message // our large buffers
	n    int            // messages filled by the last read
	cur  int            // the message being split
	off  int            // where its next segment starts
	seg  int            // its segment size
}

func newGROReader(r batchReader) *groReader {
	g := &groReader{r: r, msgs: make([]ipv4.Message, groBatch)}
	for i := range g.msgs {
		g.msgs[i].Buffers = [][]byte{make([]byte, groBufSize)}
		g.msgs[i].OOB = make([]byte, 256)
	}
	return g
}

// ReadBatch fills ms with the next datagrams: segments left from the last
// system call first, or else it reads (blocking) and splits what came. Each
// message gets the sender's address and the control messages of the
// datagram it came from (ECN and packet info for quic-go; the UDP_GRO
// message quic-go ignores). A segment longer than its message's buffer is
// cut, and MSG_TRUNC set, as the kernel would.
func (g *groReader) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	if g.cur >= g.n {
		n, err := g.r.ReadBatch(g.msgs, flags)
		if n <= 0 || err != nil {
			return 0, err
		}
		g.n, g.cur, g.off = n, 0, 0
		g.seg = g.segmentSize(0)
	}
	i := 0
	for i < len(ms) && g.cur < g.n {
		m := &g.msgs[g.cur]
		end := min(g.off+g.seg, m.N)
		out := &ms[i]
		out.N = copy(out.Buffers[0], m.Buffers[0][g.off:end])
		out.Flags = 0
		if out.N < end-g.off {
			out.Flags = msgTrunc
		}
		out.NN = copy(out.OOB, m.OOB[:m.NN])
		out.Addr = m.Addr
		i++
		g.off = end
		if g.off >= m.N {
			g.cur++
			g.off = 0
			if g.cur < g.n {
				g.seg = g.segmentSize(g.cur)
			}
		}
	}
	return i, nil
}

// segmentSize is the size of each datagram in msgs[i]: the UDP_GRO control
// message's, or the whole buffer when the kernel did not coalesce.
func (g *groReader) segmentSize(i int) int {
	m := &g.msgs[i]
	if s := groSegmentSize(m.OOB[:m.NN]); s > 0 {
		return s
	}
	return m.N
}
