// Package hub holds the hub's forwarding state and decisions: the route
// table that maps tunnel addresses and client routes to ports (Routes),
// the MAC table of the TAP learning switch (MACs), and pure functions of
// those tables that say where a packet goes or why it is dropped. A port
// is whatever the caller switches between (the server's sessions, and
// its device). Nothing here does I/O or holds a lock of the server's, so
// the decisions are tested with tables alone; the server's inbound and
// outbound loops act on what they return and count the drops.
package hub

import (
	"net/netip"
	"time"

	"github.com/quictun/quictun/packet"
)

// Action is what the hub does with one packet.
type Action uint8

// The actions.
const (
	Drop     Action = iota // drop it, counting the Reason
	ToDevice               // write it into the server's device
	ToPort                 // queue it for one port (session)
	Flood                  // send it to every port but the ingress one
)

// Reason says why a decision is Drop; it is zero for every other action.
// The caller counts it under its own drop reasons.
type Reason uint8

// The reasons a decision drops a packet.
const (
	// Spoofed: a TUN packet from a port whose source address the port
	// does not own; with TAPPolicy.PinMACs, a frame from a port whose
	// source MAC is live on another port.
	Spoofed Reason = iota + 1
	// NoRoute: a TUN packet from the device to an address no ready port
	// owns.
	NoRoute
	// LinkLocal: a port's own link-local chatter (e.g. IPv6 router
	// solicitations), or the server device's link-local multicast, which
	// the hub does not route.
	LinkLocal
	// Loop: a TUN packet a port sent to one of its own addresses, or a
	// frame to a MAC on the port it came from, already on its segment.
	Loop
	// Denied: a packet the administrator's policy forbids, e.g. with
	// TAPPolicy.Isolate a frame from one client port to another's MAC.
	Denied
)

// DecideTUNFromClient decides for a TUN packet (src → dst) that port from
// sent: link-local chatter is not routed; the source must be one of
// from's own addresses or routes (anti-spoofing); a destination owned by
// another ready port goes there, one owned by from is a loop, anything
// else goes to the device. ready reports whether a port takes packets.
func DecideTUNFromClient[T comparable](routes *Routes[T], ready func(T) bool, from T, src, dst netip.Addr) (to T, act Action, why Reason) {
	var zero T
	if src.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		// The client kernel's own link chatter (IPv6 router solicitations
		// from its link-local address): not for the hub, not spoofing.
		return zero, Drop, LinkLocal
	}
	if owner, ok := routes.Lookup(src); !ok || owner != from {
		return zero, Drop, Spoofed
	}
	if owner, ok := routes.Lookup(dst); ok && ready(owner) {
		if owner == from {
			return zero, Drop, Loop
		}
		return owner, ToPort, 0
	}
	return zero, ToDevice, 0
}

// DecideTUNFromDevice decides for a TUN packet to dst read from the
// server's device: the ready port that owns dst, or no route. The server
// kernel's own link-local multicast (IGMP and MLD reports, router
// solicitations) is its link chatter, not a packet without a route.
func DecideTUNFromDevice[T comparable](routes *Routes[T], ready func(T) bool, dst netip.Addr) (to T, act Action, why Reason) {
	var zero T
	if dst.IsLinkLocalMulticast() {
		return zero, Drop, LinkLocal
	}
	if owner, ok := routes.Lookup(dst); ok && ready(owner) {
		return owner, ToPort, 0
	}
	return zero, Drop, NoRoute
}

// TAPPolicy is what DecideTAP enforces beyond plain learning. The zero
// value (but for Local) is a plain learning switch: every port reaches
// every other, and a MAC moves to the port it was last seen on.
type TAPPolicy[T comparable] struct {
	// Local is the port that stands for the server's own device; every
	// other port is a client. Isolate and PinMACs need it.
	Local T
	// Isolate keeps clients apart: a frame from a client goes to Local
	// only (broadcast, multicast and unknown unicast too), and one to a
	// MAC learned on another client is dropped as Policy. Frames from
	// Local are switched as ever, floods reaching every client.
	Isolate bool
	// PinMACs stops a client from sending with a source MAC that is live
	// on another port (another client's, or one of the device's LAN
	// hosts): the frame is dropped as Spoofed, not learned and not
	// forwarded. An entry that ages out (or leaves with its port) no
	// longer pins. Local is trusted as the server's own LAN: its frames
	// always learn, so a MAC a client claimed moves back to the device
	// as soon as the real host speaks there.
	PinMACs bool
}

// DecideTAP learns that src was seen on port from and decides where a
// frame to dst goes: the port that owns dst, or a flood for broadcast,
// multicast and unknown unicast, within what p allows. A frame to the port
// it came from is already on its segment and dropped as a loop. learned is
// false when the MAC table was full and refused src (the caller counts
// that; the frame is still switched).
func DecideTAP[T comparable](macs *MACs[T], p TAPPolicy[T], from T, src, dst packet.MAC, now time.Time) (to T, act Action, why Reason, learned bool) {
	var zero T
	client := from != p.Local
	if client && p.PinMACs {
		var pinned bool
		learned, pinned = macs.LearnPinned(src, from, now)
		if pinned {
			return zero, Drop, Spoofed, true
		}
	} else {
		learned = macs.Learn(src, from, now)
	}
	isolated := client && p.Isolate
	if !dst.IsMulticast() {
		if owner, ok := macs.Lookup(dst, now); ok {
			switch {
			case owner == from:
				return zero, Drop, Loop, learned
			case isolated && owner != p.Local:
				return zero, Drop, Denied, learned
			}
			return owner, ToPort, 0, learned
		}
	}
	if isolated {
		// The device's side of the flood only. The bridge the device is a
		// port of does not send a frame back out of the port it came in by
		// (unless that port is in hairpin mode), so nothing reaches
		// another client that way either.
		return p.Local, ToPort, 0, learned
	}
	return zero, Flood, 0, learned
}
