#!/usr/bin/env bash
# Test PKI for hush-template's ESO golden cases: root -> intermediate -> leaf (RSA and EC), a
# second disjunct root, PKCS#12 files in openssl's default (AES/PBKDF2/SHA-256) and -legacy
# (RC2/3DES/SHA-1) forms, with and without a password; RSA-OAEP ciphertexts for rsaDecrypt.
set -euo pipefail
# Usage: tools/gotemplate-oracle/make_eso_fixtures.sh crates/template/tests/golden/eso
out="${1:-.}"; cd "$out"
days=36500
ext_ca="basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always"
ext_leaf="basicConstraints=CA:FALSE
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
subjectAltName=DNS:foo.example.com,DNS:*.foo.example.com,IP:10.0.0.1,IP:2001:db8::1,email:ops@example.com,URI:spiffe://example.com/ns/a"
openssl req -x509 -newkey rsa:2048 -nodes -keyout root.key -out root.crt -days $days -subj "/CN=hush test root" -addext "subjectKeyIdentifier=hash" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout inter.key -out inter.csr -subj "/CN=hush test intermediate" 2>/dev/null
openssl x509 -req -in inter.csr -CA root.crt -CAkey root.key -CAcreateserial -out inter.crt -days $days -extfile <(echo "$ext_ca") 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=foo.example.com/O=hush" 2>/dev/null
openssl x509 -req -in leaf.csr -CA inter.crt -CAkey inter.key -CAcreateserial -out leaf.crt -days $days -extfile <(echo "$ext_leaf") 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out ec.sec1.key
openssl pkcs8 -topk8 -nocrypt -in ec.sec1.key -out ec.key
openssl req -new -key ec.key -out ec.csr -subj "/CN=ec.example.com" 2>/dev/null
openssl x509 -req -in ec.csr -CA inter.crt -CAkey inter.key -CAcreateserial -out ec.crt -days $days -extfile <(echo "$ext_leaf") 2>/dev/null
openssl rsa -in leaf.key -traditional -out leaf.pkcs1.key 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days $days -subj "/CN=hush other root" 2>/dev/null
cat leaf.crt inter.crt root.crt > chain.pem
cat root.crt leaf.crt inter.crt > chain-shuffled.pem
cat leaf.crt other.crt > disjunct.pem
openssl pkcs12 -export -inkey leaf.key -in leaf.crt -certfile <(cat inter.crt root.crt) -passout pass: -out leaf-nopass.pfx
openssl pkcs12 -export -inkey leaf.key -in leaf.crt -certfile <(cat root.crt inter.crt) -passout pass:s3cret -out leaf-pass.pfx
openssl pkcs12 -export -legacy -inkey leaf.key -in leaf.crt -certfile inter.crt -passout pass:s3cret -out leaf-legacy.pfx
openssl pkcs12 -export -inkey ec.key -in ec.crt -passout pass: -out ec-nopass.pfx
openssl pkcs12 -export -inkey leaf.key -in leaf.crt -certfile other.crt -passout pass: -out leaf-disjunct.pfx
for h in sha1 sha256 sha512; do
  printf 'plain secret %s' "$h" |
    openssl pkeyutl -encrypt -pubin -inkey <(openssl rsa -in leaf.key -pubout 2>/dev/null) \
      -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:$h -pkeyopt rsa_mgf1_md:$h |
    base64 -w0 > "oaep-$h.b64"
done
rm -f *.csr *.srl
