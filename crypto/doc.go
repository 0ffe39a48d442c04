// Package crypto holds quictun's certificates and TLS: generating a private
// CA and the leaf certificates it signs, loading certificates and keys made
// by quictun or by other tools (OpenSSL, easy-rsa), reading what a peer's
// certificate says about it (its Identity: name, tunnel addresses, routes),
// the mutual-TLS 1.3 configurations of the server and the client, and
// certificate revocation lists: made and extended here (CreateCRL), or by
// OpenSSL and easy-rsa, read in PEM or DER and checked against the CA
// (LoadCRL).
//
// The package shadows the standard library's crypto; import it under an
// alias (for example qcrypto) in files that need both.
//
// How tunnel addresses and routes sit in a certificate: each tunnel address
// is an IP subjectAltName holding the address only (the prefix length comes
// from the server's own network that contains it), and each network routed
// behind a client is a URI subjectAltName "quictun:route:<prefix>", e.g.
// "quictun:route:192.168.50.0/24". docs/CERTIFICATES.md explains why and how
// to write them with OpenSSL or easy-rsa.
package crypto

// ALPN is quictun's ALPN protocol id. Both ends offer only this protocol,
// so a TLS handshake with anything else fails early.
const ALPN = "quictun/1"
