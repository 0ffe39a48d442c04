// Package udp is the tunnel's UDP socket as quic-go sees it: large
// socket buffers, send errors that only mean "no route right now" taken as
// loss, UDP receive offload (GRO) split back into datagrams, and a receive
// gate that keeps quic-go's small datagram queue from overflowing.
//
// It counts what it does into Counters, which its caller owns and reads;
// it imports nothing of the core, so the core can import it.
package udp
