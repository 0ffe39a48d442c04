package device

import (
	"fmt"
	"net"
	"net/netip"
)

// MinIPv6MTU is the smallest link MTU IPv6 works on (RFC 8200); Linux
// disables IPv6 on a link whose MTU is below it.
const MinIPv6MTU = 1280

// LinkConfig is what Configure applies to a device's link.
type LinkConfig struct {
	// Addrs are the addresses to add (e.g. 10.77.0.1/24, fd77::1/64); the
	// prefix length gives the on-link network. Addresses the link already
	// has are left alone, and the undo function does not remove them.
	// IPv6 addresses are added without duplicate address detection, so they
	// are usable at once. Nil adds none.
	Addrs []netip.Prefix
	// MTU is the link MTU to set; 0 leaves it unchanged. With IPv6
	// addresses it must be at least MinIPv6MTU.
	MTU int
	// MAC is the Ethernet address to set, before the link is brought up.
	// TAP only; nil leaves it unchanged. See StableMAC.
	MAC net.HardwareAddr
	// Bridge names an existing bridge to make the link a port of. TAP only;
	// empty leaves bridge membership unchanged.
	Bridge string
	// Routes are the routes to add through the device (on-link, no gateway).
	// Routes through the device that already exist are skipped and not
	// removed by undo. Nil adds none.
	Routes []netip.Prefix
}

// check validates cfg on its own, without looking at the system.
func (cfg LinkConfig) check() error {
	if cfg.MTU < 0 {
		return fmt.Errorf("MTU %d is negative", cfg.MTU)
	}
	for _, a := range cfg.Addrs {
		if !a.IsValid() {
			return fmt.Errorf("address %v is not a valid address/prefix", a)
		}
		ip := a.Addr()
		switch {
		case ip.Is4In6():
			return fmt.Errorf("address %s is an IPv4-mapped IPv6 address; write it as IPv4", a)
		case ip.Zone() != "":
			return fmt.Errorf("address %s has a zone; give the address without it", a)
		case ip.IsUnspecified() || ip.IsMulticast():
			return fmt.Errorf("address %s cannot be assigned to an interface", a)
		}
		if ip.Is6() && cfg.MTU != 0 && cfg.MTU < MinIPv6MTU {
			return fmt.Errorf("MTU %d is too small for IPv6 address %s: IPv6 needs an MTU of at least %d", cfg.MTU, a, MinIPv6MTU)
		}
	}
	if cfg.MAC != nil {
		if len(cfg.MAC) != 6 {
			return fmt.Errorf("MAC %s is not a 6-byte Ethernet address", cfg.MAC)
		}
		if cfg.MAC[0]&1 != 0 {
			return fmt.Errorf("MAC %s is a multicast address; a link needs a unicast one", cfg.MAC)
		}
		if string(cfg.MAC) == string(make([]byte, 6)) {
			return fmt.Errorf("MAC %s is all zeros", cfg.MAC)
		}
	}
	if cfg.Bridge != "" {
		if err := CheckName(cfg.Bridge); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
	}
	return checkRoutes(cfg.Routes)
}

// checkRoutes validates route prefixes on their own.
func checkRoutes(routes []netip.Prefix) error {
	for _, r := range routes {
		switch {
		case !r.IsValid():
			return fmt.Errorf("route %v is not a valid prefix", r)
		case r.Addr().Is4In6():
			return fmt.Errorf("route %s is an IPv4-mapped IPv6 prefix; write it as IPv4", r)
		case r.Addr().Zone() != "":
			return fmt.Errorf("route %s has a zone; give the prefix without it", r)
		case r != r.Masked():
			return fmt.Errorf("route %s has host bits set; did you mean %s?", r, r.Masked())
		}
	}
	return nil
}
