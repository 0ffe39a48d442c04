// Package quictun is the tunnel core: it joins a device.Device (TUN or TAP)
// to QUIC DATAGRAM frames on one or many connections.
//
// A Server is a hub: one device, many clients. In TUN mode it routes each
// packet by destination address to the client that owns it (longest-prefix
// match over the clients' tunnel addresses and routes) and drops packets
// whose source is not one of the sending client's addresses. In TAP mode it
// is a learning switch between its device and all clients. Client↔client
// traffic is forwarded by the hub itself.
//
// A Client dials the server, learns its mode, addresses, MTU and routes over
// the control stream, asks the caller to set up its device, and carries
// packets; it redials when the connection is lost and keeps its device.
//
// The data path, with the words used everywhere in this package
// (outbound = device → QUIC, inbound = QUIC → device):
//
//	outbound:  device.Read ──► classify (dst IP / dst MAC) ──► session queue ──► sender ──► conn.SendDatagram
//	                                   └► too big: ICMP back into the device, or split into fragments
//	inbound:   conn.ReceiveDatagram ──► header / reassembly ──► check source (anti-spoof) ──► device.Write
//	                                                                        └► hub: another session's queue
//
// quic-go's SendDatagram blocks when its queue is full, and its receive
// queue drops beyond 128 datagrams, so on the server each session has a
// bounded queue drained by its own sender goroutine, and the inbound loops
// never wait on anything slow. The wire format is in docs/PROTOCOL.md.
//
// Where things are: datapath.go holds what both ends run (the inbound
// path, the too-big check and answer, single device writes); hub.go the
// hub's forwarding decisions, pure functions of the route and MAC tables;
// inbound.go and outbound.go the server's loops that act on them;
// client.go the client's; stats.go the drop reasons and counters;
// status.go the copies Server.Sessions, Server.Status and Client.Status
// hand out; config.go the configs, which validate themselves and return
// ConfigErrors naming their fields; errors.go the typed errors a caller
// turns into advice. Address leases and revocations come from package
// state through the interfaces in ServerConfig.
package quictun
