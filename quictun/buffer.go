package quictun

import "sync"

// headroom is the space kept before each packet in a buffer, so the
// datagram header can be written in front without copying.
const headroom = 16

// packetBuf holds one packet at data[headroom:headroom+n] on its way from
// a device reader or an inbound loop to a session's sender.
type packetBuf struct {
	data []byte
	n    int
	// origin is the session the packet came from (nil: the local device);
	// a too-big answer goes back there.
	origin *session
}

// packet returns the packet bytes.
func (pb *packetBuf) packet() []byte { return pb.data[headroom : headroom+pb.n] }

// bufPool recycles packetBufs of one size, so the data path does not
// allocate per packet.
type bufPool struct {
	size int
	pool sync.Pool
}

// newBufPool returns a pool of buffers that hold packets of up to maxPacket bytes.
func newBufPool(maxPacket int) *bufPool {
	p := &bufPool{size: headroom + maxPacket}
	p.pool.New = func() any { return &packetBuf{data: make([]byte, p.size)} }
	return p
}

func (p *bufPool) get() *packetBuf {
	pb := p.pool.Get().(*packetBuf)
	pb.n = 0
	pb.origin = nil
	return pb
}

func (p *bufPool) put(pb *packetBuf) {
	pb.origin = nil
	p.pool.Put(pb)
}

// copyOf returns a pooled copy of pkt (for the hub's forwarding and
// flooding), or nil when pkt is larger than a buffer holds: a packet is
// forwarded whole or not at all, never cut short.
func (p *bufPool) copyOf(pkt []byte, origin *session) *packetBuf {
	if headroom+len(pkt) > p.size {
		return nil
	}
	pb := p.get()
	pb.n = copy(pb.data[headroom:], pkt)
	pb.origin = origin
	return pb
}
