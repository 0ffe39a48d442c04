package quic

import (
	"sync"

	"github.com/quictun/quictun/third_party/quic-go/internal/protocol"
)

// datagramBufferSize is the size of a pooled DATAGRAM payload buffer: no
// QUIC packet, and so no DATAGRAM frame, is larger.
const datagramBufferSize = protocol.MaxPacketBufferSize

// datagramBuffers holds the payload buffers of DATAGRAM frames: those
// queued by SendDatagram (returned once the frame is written into a packet)
// and those handed out by ReceiveDatagram (returned by ReleaseDatagram).
// Reusing them keeps a bulk transfer's datagrams out of the garbage
// collector and in warm memory.
var datagramBuffers = sync.Pool{New: func() any { return new([datagramBufferSize]byte) }}

// getDatagramBuffer returns a buffer of length n, pooled when n fits.
func getDatagramBuffer(n int) []byte {
	if n > datagramBufferSize {
		return make([]byte, n)
	}
	return datagramBuffers.Get().(*[datagramBufferSize]byte)[:n]
}

// putDatagramBuffer returns b to the pool if it came from there.
func putDatagramBuffer(b []byte) {
	if cap(b) != datagramBufferSize {
		return
	}
	datagramBuffers.Put((*[datagramBufferSize]byte)(b[:datagramBufferSize]))
}

// ReleaseDatagram hands a payload returned by Conn.ReceiveDatagram back for
// reuse. The caller must not touch b afterwards. Calling it is optional:
// a payload that is never released is garbage-collected as usual.
func ReleaseDatagram(b []byte) { putDatagramBuffer(b) }
