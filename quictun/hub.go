package quictun

// The hub's decisions, as pure functions of its tables: where a packet
// goes, or why it is dropped. They do no I/O and hold no lock of the
// server's, so they are tested with tables alone (hub_test.go); the
// server's inbound and outbound loops act on what they return.

import (
	"net/netip"
	"time"

	"github.com/quictun/quictun/packet"
)

// hubAction is what the hub does with one packet.
type hubAction uint8

const (
	hubDrop     hubAction = iota // drop it, counting the reason
	hubToDevice                  // write it into the server's device
	hubToPort                    // queue it for one port (session)
	hubFlood                     // send it to every port but the ingress one
)

// decideTUNFromClient decides for a TUN packet (src → dst) that port from
// sent: link-local chatter is not routed; the source must be one of
// from's own addresses or routes (anti-spoofing); a destination owned by
// another ready port goes there, one owned by from is a loop, anything
// else goes to the device.
func decideTUNFromClient[T comparable](routes *routeTable[T], ready func(T) bool, from T, src, dst netip.Addr) (to T, act hubAction, why DropReason) {
	var zero T
	if src.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		// The client kernel's own link chatter (IPv6 router solicitations
		// from its link-local address): not for the hub, not spoofing.
		return zero, hubDrop, DropLinkLocal
	}
	if owner, ok := routes.lookup(src); !ok || owner != from {
		return zero, hubDrop, DropSpoofed
	}
	if owner, ok := routes.lookup(dst); ok && ready(owner) {
		if owner == from {
			return zero, hubDrop, DropLoop
		}
		return owner, hubToPort, 0
	}
	return zero, hubToDevice, 0
}

// decideTUNFromDevice decides for a TUN packet to dst read from the
// server's device: the ready port that owns dst, or no route.
func decideTUNFromDevice[T comparable](routes *routeTable[T], ready func(T) bool, dst netip.Addr) (to T, act hubAction, why DropReason) {
	if owner, ok := routes.lookup(dst); ok && ready(owner) {
		return owner, hubToPort, 0
	}
	var zero T
	return zero, hubDrop, DropNoRoute
}

// decideTAP learns that src was seen on port from and decides where a
// frame to dst goes: the port that owns dst, or a flood for broadcast,
// multicast and unknown unicast. A frame to the port it came from is
// already on its segment and dropped as a loop. learned is false when the
// MAC table was full and refused src (counted as DropMACTableFull; the
// frame is still switched).
func decideTAP[T comparable](macs *macTable[T], from T, src, dst packet.MAC, now time.Time) (to T, act hubAction, why DropReason, learned bool) {
	learned = macs.learn(src, from, now)
	if !dst.IsMulticast() {
		if owner, ok := macs.lookup(dst, now); ok {
			if owner == from {
				var zero T
				return zero, hubDrop, DropLoop, learned
			}
			return owner, hubToPort, 0, learned
		}
	}
	var zero T
	return zero, hubFlood, 0, learned
}
