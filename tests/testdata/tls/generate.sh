#!/usr/bin/env bash
# Makes the test CA and the relay's leaf certificate for 127.0.0.1, ::1 and localhost.
# Run from anywhere with OpenSSL 3; it rewrites ca.pem, localhost.crt and localhost.key here.
# The CA's key is thrown away: nothing else can be signed with it. See README.md.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fixed dates, not "now": a machine whose clock is behind the one that made them still accepts them.
start=20240101000000Z
end=20510101000000Z

cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
touch "$work/index.txt"
echo 01 >"$work/serial"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
openssl req -new -key "$work/ca.key" -subj "/CN=AlphaNET test CA" -out "$work/ca.csr"
openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile "$work/ca.key" -in "$work/ca.csr" \
  -extensions ca_ext -startdate "$start" -enddate "$end" -notext -out ca.pem 2>/dev/null

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out localhost.key
openssl req -new -key localhost.key -subj "/CN=localhost" -out "$work/leaf.csr"
openssl ca -batch -config "$work/ca.cnf" -cert ca.pem -keyfile "$work/ca.key" -in "$work/leaf.csr" \
  -extensions leaf_ext -startdate "$start" -enddate "$end" -notext -out localhost.crt 2>/dev/null

openssl verify -CAfile ca.pem localhost.crt
