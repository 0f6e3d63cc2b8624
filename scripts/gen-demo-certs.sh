#!/usr/bin/env bash
# Writes the demo TLS files under examples/secrets/tls/ (for
# examples/web-config.yml and `scripts/demo.sh --tls`): a CA, a server
# certificate for localhost and 127.0.0.1, and a client certificate
# ("prometheus") for mutual TLS, all ECDSA P-256, valid for ten years.
# They are committed so the example works as shipped: they are demo
# credentials, published, and must never secure anything real.
set -euo pipefail
cd "$(dirname "$0")/../examples/secrets/tls"
days=3650
openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out ca.key
openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=model-monitor demo ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
issue() { # name, subject, extensions
  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
issue server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
issue client prometheus "subjectAltName=DNS:prometheus
extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
# The CA key is not kept: running this again makes a new CA.
rm -f ca.srl ca.key
ls
