#!/bin/sh
# mkcerts.sh DIR - certificates and keys for the policy tests
#
# Keys are made here, not kept in git: git does not keep file modes, and
# the tests depend on them (a world-readable key is an error).
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077
q() { "$@" >/dev/null 2>&1 || { echo "mkcerts.sh: failed: $*" >&2; exit 1; }; }

# a good RSA pair, valid for a year
q openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem \
	-subj /CN=mail.test -days 365 -addext subjectAltName=DNS:mail.test,DNS:localhost,IP:127.0.0.1
# an ECDSA pair
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout ec.key -out ec.pem -subj /CN=mail.test -days 365
# a key that matches nothing here
q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key
# an ECDSA key and an Ed25519 pair and key that match nothing here either:
# wolfSSL's own check compares RSA keys only
q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-other.key
q openssl req -x509 -newkey ed25519 -nodes -keyout ed25519.key -out ed25519.pem \
	-subj /CN=mail.test -days 365
q openssl genpkey -algorithm ed25519 -out ed25519-other.key
# a certificate that expires in 10 days
q openssl req -x509 -newkey rsa:2048 -nodes -keyout expiring.key -out expiring.pem \
	-subj /CN=expiring.test -days 10
# a certificate that expired in 2021
cat > ca.cnf <<'EOC'
[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
[p]
commonName = supplied
EOC
: > index.txt
echo 01 > serial
q openssl req -new -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj /CN=expired.test
q openssl ca -batch -config ca.cnf -selfsign -keyfile expired.key -in expired.csr \
	-out expired.pem -startdate 20200101000000Z -enddate 20210101000000Z -notext
rm -f ca.cnf index.txt* serial* expired.csr 01.pem
# the good key, readable by everyone
cp rsa.key worldreadable.key
chmod 644 worldreadable.key
# a passphrase-protected key
q openssl pkey -in rsa.key -out encrypted.key -aes256 -passout pass:secret
# not PEM at all
echo "this is not a certificate" > garbage.pem
chmod 644 *.pem
