package crypto

import (
	stdcrypto "crypto"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// DeriveKey derives a 32-byte secret from a private key, stable across
// restarts: HKDF-SHA256 with the key's PKCS#8 DER as the secret, no salt,
// and label as the info. The server uses it for its QUIC stateless-reset
// key and its TLS session-ticket keys, so that clients recognise a
// restarted server. The same key and label always give the same result;
// different labels give unrelated ones.
func DeriveKey(key stdcrypto.PrivateKey, label string) ([32]byte, error) {
	var out [32]byte
	if key == nil {
		return out, errors.New("derive key: no private key")
	}
	if label == "" {
		return out, errors.New("derive key: empty label")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return out, fmt.Errorf("derive key %q: %w", label, err)
	}
	b, err := hkdf.Key(sha256.New, der, nil, label, len(out))
	if err != nil {
		return out, fmt.Errorf("derive key %q: %w", label, err)
	}
	copy(out[:], b)
	return out, nil
}
