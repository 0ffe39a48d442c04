package crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
)

func TestDeriveKey(t *testing.T) {
	server := testPair(t, "server").PrivateKey
	again := testPair(t, "server").PrivateKey // loaded anew, as after a restart
	rsaKey := testPair(t, "openssl/server").PrivateKey
	fresh, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	derive := func(key any, label string) [32]byte {
		t.Helper()
		k, err := DeriveKey(key, label)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	reset := derive(server, "quictun stateless reset")
	if reset == ([32]byte{}) {
		t.Fatal("derived key is all zero")
	}
	tests := []struct {
		name  string
		got   [32]byte
		equal bool
	}{
		{"same key loaded again, same label", derive(again, "quictun stateless reset"), true},
		{"same key, other label", derive(server, "quictun session ticket"), false},
		{"other key, same label", derive(fresh, "quictun stateless reset"), false},
		{"RSA key, same label", derive(rsaKey, "quictun stateless reset"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.got == reset) != tt.equal {
				t.Errorf("equal to the first derivation: %v, want %v", tt.got == reset, tt.equal)
			}
		})
	}
	if _, err := DeriveKey(nil, "x"); err == nil {
		t.Error("nil key: no error")
	}
	if _, err := DeriveKey(server, ""); err == nil {
		t.Error("empty label: no error")
	}
	if _, err := DeriveKey("not a key", "x"); err == nil {
		t.Error("not a key: no error")
	}
}
