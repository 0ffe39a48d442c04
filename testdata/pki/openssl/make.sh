#!/bin/sh
# make.sh writes an RSA test PKI made with plain OpenSSL (3.0 or later), to
# check that quictun loads certificates and keys made by other tools:
#   ca.crt/ca.key                  CA "openssl test CA" (key PKCS#8)
#   server.crt/server.key          server, SAN IP:127.0.0.1, DNS:localhost (key PKCS#8)
#   client-pool.crt/client-pool.key client "openssl-pool", no tunnel address (key PKCS#1)
#   client21.crt/client21.key      client "openssl-client21", SAN IP:10.77.0.21 (key PKCS#8)
# All valid 36500 days. Test keys only: never use them for a real tunnel.
# Run it from anywhere: it writes next to itself, replacing the files.
set -eu
cd "$(dirname "$0")"
DAYS=36500

serial() { echo "0x$(openssl rand -hex 16)"; }

# The CA: self-signed, may sign leaves only (pathlen:0).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca.key
openssl req -x509 -new -key ca.key -subj "/CN=openssl test CA" -days "$DAYS" \
	-set_serial "$(serial)" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out ca.crt

# leaf NAME SAN EKU KEYFORMAT: a key, a CSR carrying the SAN and EKU, and the
# certificate signed by the CA with the CSR's extensions copied.
leaf() {
	name=$1 cn=$2 san=$3 eku=$4 keyform=$5
	if [ "$keyform" = pkcs1 ]; then
		openssl genrsa -traditional -out "$name.key" 2048
	else
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name.key"
	fi
	set -- -addext "keyUsage=critical,digitalSignature,keyEncipherment" -addext "extendedKeyUsage=$eku"
	if [ -n "$san" ]; then
		set -- "$@" -addext "subjectAltName=$san"
	fi
	openssl req -new -key "$name.key" -subj "/CN=$cn" "$@" -out "$name.csr"
	openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -set_serial "$(serial)" \
		-days "$DAYS" -copy_extensions copy -out "$name.crt"
	rm -f "$name.csr"
}

leaf server server "IP:127.0.0.1,DNS:localhost" serverAuth pkcs8
leaf client-pool openssl-pool "" clientAuth pkcs1
leaf client21 openssl-client21 "IP:10.77.0.21" clientAuth pkcs8
chmod 600 ./*.key
