package crypto

import (
	"bytes"
	stdcrypto "crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// Encrypted private keys are PKCS#8 EncryptedPrivateKeyInfo (RFC 5958)
// with PBES2 (RFC 8018): a key derivation function and a CBC cipher. We
// write scrypt (RFC 7914 section 7) with AES-256-CBC, byte for byte the
// structure that `openssl pkcs8 -topk8 -scrypt -v2 aes-256-cbc` writes, so
// that `openssl pkcs8 -in`, `openssl pkey -in` and every tool built on
// OpenSSL read our keys. We read that and what OpenSSL 3 writes by default
// (`genpkey -aes256`, `pkcs8 -topk8`, `req -keyout`, and so easy-rsa):
// PBES2 with PBKDF2 (HMAC-SHA1/SHA2) and AES-CBC or DES-EDE3-CBC.
//
// x/crypto has scrypt but no PKCS#8 encryption (its pkcs12 package is
// PKCS#12's own PBE, read-only); the ASN.1 is small enough to write here.

// Passphrase returns the passphrase of the encrypted private key in file.
// The loaders call it only when the key is encrypted, so an unencrypted key
// never asks, and at most once per key. A nil Passphrase refuses encrypted
// keys with an error wrapping ErrEncryptedKey.
type Passphrase func(file string) ([]byte, error)

// ErrWrongPassphrase is wrapped by the errors of LoadKeyPair when the
// passphrase does not decrypt the key. Its message reads "wrong passphrase
// for <file>".
var ErrWrongPassphrase = errors.New("wrong passphrase")

// The scrypt parameters we write: OpenSSL's defaults, N=2^14, r=8, p=1
// (16 MiB, some 50 ms). They are also the most that OpenSSL reads back:
// it refuses scrypt above 32 MiB (N=2^15 with r=8 needs 32 MiB and a bit),
// and a CA key that openssl cannot open is not what we promise.
const (
	scryptN       = 1 << 14
	scryptR       = 8
	scryptP       = 1
	scryptSaltLen = 16 // OpenSSL writes 8; 16 is what NIST SP 800-132 asks
)

// Limits on what a key file may ask of us, so that a crafted file cannot
// make a load take gigabytes or hours: 1 GiB of scrypt memory (64 times
// what OpenSSL allows itself) and ten million PBKDF2 iterations.
const (
	maxScryptMemory = 1 << 30
	maxPBKDF2Iter   = 10_000_000
)

// ASN.1 object identifiers of the algorithms in an encrypted key.
var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// encryptedPrivateKeyInfo is PKCS#8's EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

// pbes2Params is RFC 8018's PBES2-params.
type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Cipher pkix.AlgorithmIdentifier
}

// scryptParams is RFC 7914's scrypt-params.
type scryptParams struct {
	Salt      []byte
	N         int
	R         int
	P         int
	KeyLength int `asn1:"optional"`
}

// pbkdf2Params is RFC 8018's PBKDF2-params, with the salt's "specified"
// choice (the other, otherSource, is reserved and unused).
type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"` // absent: HMAC-SHA1
}

// cbcCipher is a block cipher that PBES2 may name, in CBC mode.
type cbcCipher struct {
	name    string
	keyLen  int
	newFunc func(key []byte) (cipher.Block, error)
}

// cbcCiphers are the ciphers we decrypt with, by OID.
var cbcCiphers = []struct {
	oid asn1.ObjectIdentifier
	c   cbcCipher
}{
	{oidAES128CBC, cbcCipher{"AES-128-CBC", 16, aes.NewCipher}},
	{oidAES192CBC, cbcCipher{"AES-192-CBC", 24, aes.NewCipher}},
	{oidAES256CBC, cbcCipher{"AES-256-CBC", 32, aes.NewCipher}},
	{oidDESEDE3CBC, cbcCipher{"DES-EDE3-CBC", 24, des.NewTripleDESCipher}},
}

// pbkdf2PRFs are the PBKDF2 pseudo-random functions we read, by OID.
var pbkdf2PRFs = []struct {
	oid asn1.ObjectIdentifier
	h   func() hash.Hash
}{
	{oidHMACSHA1, sha1.New},
	{oidHMACSHA224, sha256.New224},
	{oidHMACSHA256, sha256.New},
	{oidHMACSHA384, sha512.New384},
	{oidHMACSHA512, sha512.New},
}

// EncryptKey encodes key as a PKCS#8 "ENCRYPTED PRIVATE KEY" PEM block,
// PBES2 with scrypt and AES-256-CBC under passphrase, as `openssl pkcs8
// -topk8 -scrypt` writes it. The passphrase must not be empty.
func EncryptKey(key stdcrypto.Signer, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("encrypt key: the passphrase is empty")
	}
	plain, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	salt := make([]byte, scryptSaltLen)
	iv := make([]byte, aes.BlockSize)
	rand.Read(salt)
	rand.Read(iv)
	dk, err := scrypt.Key(passphrase, salt, scryptN, scryptR, scryptP, 32)
	if err != nil {
		return nil, fmt.Errorf("encrypt key: scrypt: %w", err)
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	data := append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(data, data)

	kdf, err := asn1.Marshal(scryptParams{Salt: salt, N: scryptN, R: scryptR, P: scryptP})
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	params, err := asn1.Marshal(pbes2Params{
		KDF:    pkix.AlgorithmIdentifier{Algorithm: oidScrypt, Parameters: asn1.RawValue{FullBytes: kdf}},
		Cipher: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
		Data:      data,
	})
	if err != nil {
		return nil, fmt.Errorf("encrypt key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncrypted, Bytes: der}), nil
}

// EncryptKeyPEM encrypts the unencrypted private key in keyPEM (as NewCA
// and Issue return it, or any form LoadKeyPair reads) as EncryptKey does.
func EncryptKeyPEM(keyPEM, passphrase []byte) ([]byte, error) {
	key, err := parseKeyPEM(keyPEM, "key", nil)
	if err != nil {
		return nil, err
	}
	return EncryptKey(key, passphrase)
}

// errUnsupportedEncryption is the cause of an encrypted key we cannot read
// (another PBES, KDF or cipher); decryptPKCS8's caller says how to convert.
type errUnsupportedEncryption struct{ what string }

func (e errUnsupportedEncryption) Error() string { return e.what }

// decryptPKCS8 decrypts the DER of an "ENCRYPTED PRIVATE KEY" block and
// returns the PKCS#8 PrivateKeyInfo inside. A wrong passphrase shows as
// bad CBC padding here (or, one time in 256, as a PrivateKeyInfo that does
// not parse: the caller checks that too) and returns ErrWrongPassphrase.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return nil, errors.New("not a valid PKCS#8 EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, errUnsupportedEncryption{fmt.Sprintf("encryption scheme %v (PBES1 or PKCS#12; quictun reads PBES2)", info.Algorithm.Algorithm)}
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) > 0 {
		return nil, errors.New("invalid PBES2 parameters")
	}
	var c *cbcCipher
	for i := range cbcCiphers {
		if cbcCiphers[i].oid.Equal(params.Cipher.Algorithm) {
			c = &cbcCiphers[i].c
		}
	}
	if c == nil {
		return nil, errUnsupportedEncryption{fmt.Sprintf("cipher %v (quictun reads AES-128/192/256-CBC and DES-EDE3-CBC)", params.Cipher.Algorithm)}
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.Cipher.Parameters.FullBytes, &iv); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("invalid %s parameters (want the IV)", c.name)
	}
	dk, err := deriveKey(params.KDF, passphrase, c.keyLen)
	if err != nil {
		return nil, err
	}
	block, err := c.newFunc(dk)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("%s: IV of %d bytes, want %d", c.name, len(iv), bs)
	}
	if len(info.Data) == 0 || len(info.Data)%bs != 0 {
		return nil, fmt.Errorf("%s: encrypted data of %d bytes is not a whole number of blocks", c.name, len(info.Data))
	}
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > bs || !hmac.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, ErrWrongPassphrase
	}
	return plain[:len(plain)-pad], nil
}

// deriveKey runs the key derivation function kdf on passphrase for a key
// of keyLen bytes.
func deriveKey(kdf pkix.AlgorithmIdentifier, passphrase []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, errors.New("invalid scrypt parameters")
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("scrypt key length %d does not fit the cipher's %d", p.KeyLength, keyLen)
		}
		if p.N <= 1 || p.N&(p.N-1) != 0 || p.R <= 0 || p.P <= 0 || p.R > maxScryptMemory/128 || p.N > maxScryptMemory/(128*p.R) || p.P > 1<<10 {
			return nil, errUnsupportedEncryption{fmt.Sprintf("scrypt N=%d r=%d p=%d (beyond the %d MiB quictun allows a key to ask)", p.N, p.R, p.P, maxScryptMemory>>20)}
		}
		dk, err := scrypt.Key(passphrase, p.Salt, p.N, p.R, p.P, keyLen)
		if err != nil {
			return nil, fmt.Errorf("scrypt: %w", err)
		}
		return dk, nil
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, errors.New("invalid PBKDF2 parameters")
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("PBKDF2 key length %d does not fit the cipher's %d", p.KeyLength, keyLen)
		}
		if p.Iterations <= 0 || p.Iterations > maxPBKDF2Iter {
			return nil, errUnsupportedEncryption{fmt.Sprintf("PBKDF2 with %d iterations (quictun allows 1 to %d)", p.Iterations, maxPBKDF2Iter)}
		}
		h := sha1.New
		if len(p.PRF.Algorithm) > 0 {
			h = nil
			for _, prf := range pbkdf2PRFs {
				if prf.oid.Equal(p.PRF.Algorithm) {
					h = prf.h
				}
			}
			if h == nil {
				return nil, errUnsupportedEncryption{fmt.Sprintf("PBKDF2 PRF %v (quictun reads HMAC-SHA1, -SHA224, -SHA256, -SHA384, -SHA512)", p.PRF.Algorithm)}
			}
		}
		dk, err := pbkdf2.Key(h, string(passphrase), p.Salt, p.Iterations, keyLen)
		if err != nil {
			return nil, fmt.Errorf("PBKDF2: %w", err)
		}
		return dk, nil
	}
	return nil, errUnsupportedEncryption{fmt.Sprintf("key derivation function %v (quictun reads scrypt and PBKDF2)", kdf.Algorithm)}
}
