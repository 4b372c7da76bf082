#!/bin/sh
# demo.sh - walk through tlspolicyctl on the shipped policy (make demo)
set -u
ctl=${TLSPOLICYCTL:-cli/tlspolicyctl}
conf=${1:-policy/tlspolicy.conf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step() { printf '\n== %s\n$ %s\n' "$1" "$2"; }

step "1. Check the shipped hardened policy, warnings counted as errors" \
	"tlspolicyctl validate --strict -c $conf"
$ctl validate --strict -c "$conf"
echo "(exit $?)"

step "2. What must a client do on the submission port?" "tlspolicyctl explain -c $conf 587"
$ctl explain -c "$conf" 587

step "3. ... and on the IMAPS port?" "tlspolicyctl explain -c $conf 993"
$ctl explain -c "$conf" 993 | sed -n '1,12p'

cat > "$tmp/tlspolicy.conf" <<'EOC'
[global]
min_protocol = SSLv3
ban_cipher = RC4
certificate = /etc/ssl/certs/ssl-cert-snakeoil.pem
private_key = /etc/ssl/private/ssl-cert-snakeoil.key

[port 465]
protocol = smtps
tls = ssl

[port 587]
protocol = smtp
tls = implicit
EOC
step "4. A policy with the usual mistakes: every problem is reported, with file:line and a fix" \
	"tlspolicyctl validate -c broken.conf"
sed 's/^/    | /' "$tmp/tlspolicy.conf"
(cd "$tmp" && $ctl validate -c tlspolicy.conf)
echo "(exit $?: nothing would be published)"

step "5. The banned classes against what wolfSSL really offers" "tlspolicyctl show --ciphers | grep -E 'RC4|3DES|anon'"
$ctl show --ciphers | grep -E 'RC4|3DES|_anon_'
printf '\nNone of these is in the policy'"'"'s suite lists (tlspolicyctl show prints them per port).\n'
