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
// never wait on anything slow. The wire format is in docs/PROTOCOL.md, built in internal/wire.
//
// Where things are. In this package: datapath.go what both ends run
// (the device reader, the inbound path, the too-big check and answer,
// single device writes); inbound.go and outbound.go the server's loops
// that act on the hub's decisions; client.go the client's; stats.go the
// drop reasons and counters; status.go the copies Server.Sessions,
// Server.Status and Client.Status hand out; config.go the configs, which
// validate themselves and return ConfigErrors naming their fields;
// errors.go and control.go the typed errors and close codes a caller
// turns into advice; kick.go Server.Kick. Below it, each with one job and none importing this
// package:
//
//   - internal/wire: the datagram header, FRAGMENT and the control
//     messages (the format of docs/PROTOCOL.md, standard library only);
//   - internal/hub: the route table, the MAC table and the hub's
//     forwarding decisions, pure functions of those tables;
//   - internal/udp: the UDP socket (buffers, transient send errors taken
//     as loss), its GRO reader and the receive gate, counting into the
//     udp.Counters that Counters embeds;
//   - package packet: IP and Ethernet parsing, checksums, ICMP too-big
//     and the MSS clamp, shared with package device;
//   - package state: address leases and revocations, behind the
//     interfaces in ServerConfig.
package quictun
