package device

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func TestStableMAC(t *testing.T) {
	seeds := []string{"", "a", "client-1", "server.example.com", "\x00\xff"}
	seen := make(map[string]string)
	for _, seed := range seeds {
		t.Run(seed, func(t *testing.T) {
			mac := StableMAC(seed)
			if len(mac) != 6 {
				t.Fatalf("len = %d, want 6", len(mac))
			}
			if mac[0]&1 != 0 {
				t.Errorf("%s is multicast", mac)
			}
			if mac[0]&2 == 0 {
				t.Errorf("%s is not locally administered", mac)
			}
			if again := StableMAC(seed); !bytes.Equal(mac, again) {
				t.Errorf("not stable: %s then %s", mac, again)
			}
			sum := sha256.Sum256([]byte(seed))
			if !bytes.Equal(mac[1:], sum[1:6]) || mac[0] != sum[0]&^1|2 {
				t.Errorf("%s is not derived from SHA-256 %x", mac, sum[:6])
			}
			if other, dup := seen[mac.String()]; dup {
				t.Errorf("seeds %q and %q give the same MAC %s", other, seed, mac)
			}
			seen[mac.String()] = seed
		})
	}
}
