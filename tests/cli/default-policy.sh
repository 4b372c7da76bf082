#!/bin/sh
# default-policy.sh - the shipped policy validates clean with --strict
# against Debian's ssl-cert snakeoil certificate
. "$TESTS_SRC/cli/lib.sh"
key=/etc/ssl/private/ssl-cert-snakeoil.key
if ! [ -r "$key" ] || ! [ -r /etc/ssl/certs/ssl-cert-snakeoil.pem ]; then
	if [ "${CI:-}" = true ]; then
		fail "snakeoil pair not readable in CI: install ssl-cert and run as root"
		finish
	fi
	echo "SKIP: $key is not readable (install ssl-cert, run as root)"
	exit 77
fi
run 0 "shipped policy, --strict" "$TLSPOLICYCTL" validate --strict -c "$top_srcdir/policy/tlspolicy.conf"
has "$tmp/out" 'valid, 7 ports managed, 0 warnings' "seven ports, no warning"
if [ -s "$tmp/err" ]; then fail "diagnostics printed:"; sed 's/^/  /' "$tmp/err"; else ok "no diagnostics"; fi
for port in 25 110 143 465 587 993 995; do
	run 0 "port $port explained" "$TLSPOLICYCTL" explain -c "$top_srcdir/policy/tlspolicy.conf" $port
done
finish
