package device

import (
	"crypto/sha256"
	"net"
)

// StableMAC derives an Ethernet address from seed: the first six bytes of
// SHA-256(seed), made locally administered and unicast. The same seed always
// gives the same address, so a TAP device (and a bridge whose address follows
// its ports) keeps its MAC across restarts.
func StableMAC(seed string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(seed))
	mac := make(net.HardwareAddr, 6)
	copy(mac, sum[:6])
	mac[0] = mac[0]&^1 | 2
	return mac
}
