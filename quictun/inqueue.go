package quictun

import (
	"github.com/quictun/quictun/third_party/quic-go"

	"github.com/quictun/quictun/quictun/internal/udp"
)

// inboundQueueLen is how many received datagrams may wait for delivery.
// quic-go keeps only 128 and drops beyond that without a trace, so a
// goroutine does nothing but move datagrams from quic-go into this larger
// queue; delivery (reassembly, checks, device writes, forwarding) runs in
// another. The queue grows to this length only in a burst (see queue).
const inboundQueueLen = 4096

// receiveDatagrams moves conn's datagrams into q until the connection ends,
// then closes q. A full q drops the datagram and counts it. gate (nil: none)
// is told of each datagram taken out of quic-go.
func receiveDatagrams(conn *quic.Conn, gate *udp.RxGate, q *queue[[]byte], c *Counters) {
	defer q.close()
	ctx := conn.Context()
	for {
		dg, err := conn.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		gate.Done(len(dg))
		if !q.push(dg) {
			c.Drop(DropInboundFull)
			quic.ReleaseDatagram(dg)
		}
	}
}

// startInbound runs receiveDatagrams for conn in its own goroutine and
// returns the queue to deliver from.
func startInbound(conn *quic.Conn, gate *udp.RxGate, c *Counters) *queue[[]byte] {
	q := newQueue[[]byte](inboundQueueLen)
	go receiveDatagrams(conn, gate, q, c)
	return q
}
