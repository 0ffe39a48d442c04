// Package state holds what a quictun server keeps about its clients
// beyond one connection: address leases and the set of revoked
// certificates. The server uses the interfaces; the in-memory
// implementations here are the default for one server, and a shared
// store (for a fleet of servers) implements the same interfaces without
// any change to the data path.
package state

import (
	"math/big"
	"net/netip"
)

// Leases hands out tunnel addresses to clients whose certificate carries
// none, from the server's pools. Implementations are safe for concurrent
// use.
type Leases interface {
	// Assign returns the address of identity in pool, the same one each
	// time for the same identity while its lease lasts, and holds it.
	// taken reports addresses that must not be handed out (in use by
	// another client).
	Assign(identity string, pool netip.Prefix, taken func(netip.Addr) bool) (netip.Addr, error)
	// Reserve marks a certificate-bound address so the pool never hands
	// it out.
	Reserve(a netip.Addr)
	// Renew tells the store that identity still holds a (a store with
	// expiring leases extends it); an error means the lease is gone.
	Renew(identity string, a netip.Addr) error
	// Release says identity no longer holds a. The store may keep it for
	// the identity for a while, so a reconnect gets the same address.
	Release(identity string, a netip.Addr)
}

// Revocations is the set of revoked client certificates, by serial number
// (certificates are issued by one CA). Implementations are safe for
// concurrent use.
type Revocations interface {
	// IsRevoked reports whether the certificate with this serial number is
	// revoked.
	IsRevoked(serial *big.Int) bool
	// Changed returns a channel that receives a value after the set
	// changes (coalesced: one value may stand for several changes), so the
	// server can close the sessions of certificates revoked since.
	Changed() <-chan struct{}
}
