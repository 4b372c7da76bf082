#!/bin/sh
# explain.sh - tlspolicyctl explain says, in plain words, what a port wants
. "$TESTS_SRC/cli/lib.sh"
conf="$top_srcdir/policy/tlspolicy.conf"

run 0 "explain 587" "$TLSPOLICYCTL" explain -c "$conf" 587
has "$tmp/out" 'Port 587: SMTP, tls = starttls' "587 names protocol and mode"
has "$tmp/out" 'Client setting: "STARTTLS"' "587 matches the STARTTLS client setting"
has "$tmp/out" 'upgrade with STARTTLS' "587 says to upgrade with STARTTLS"
has "$tmp/out" '530 5.7.0 Must issue a STARTTLS command first' "587 quotes the refusal"
has "$tmp/out" 'TLSv1.2 or newer' "587 states the floor"

run 0 "explain 993" "$TLSPOLICYCTL" explain -c "$conf" 993
has "$tmp/out" 'Port 993: IMAP, tls = implicit' "993 names protocol and mode"
has "$tmp/out" 'implicit TLS, TLS from the first byte' "993 says implicit TLS"
has "$tmp/out" 'Client setting: "SSL/TLS"' "993 matches the SSL/TLS client setting"

run 0 "explain 110" "$TLSPOLICYCTL" explain -c "$conf" 110
has "$tmp/out" 'upgrade with STLS' "POP3 calls it STLS"
has "$tmp/out" '-ERR [AUTH] Cleartext authentication disallowed' "110 quotes the POP3 refusal"

run 0 "explain 25" "$TLSPOLICYCTL" explain -c "$conf" 25
has "$tmp/out" 'opportunistic, RFC 3207 section 4' "25 explains opportunistic TLS"

run 1 "explain an unmanaged port" "$TLSPOLICYCTL" explain -c "$conf" 8080
has "$tmp/out" 'Port 8080 is not managed by this policy' "unmanaged port said so"

mkdir -p "$tmp/refuse"
cat > "$tmp/refuse/tlspolicy.conf" <<'EOC'
[global]
tls_by = daemon
[port 143]
protocol = imap
tls = refuse
[port 993]
protocol = imap
tls = implicit
enforce = audit
EOC
run 0 "explain a refused port" "$TLSPOLICYCTL" explain -c "$tmp/refuse/tlspolicy.conf" 143
has "$tmp/out" '* BYE This plaintext port is disabled by policy; use port 993 with TLS' "refusal names port 993"
run 0 "explain an audited port" "$TLSPOLICYCTL" explain -c "$tmp/refuse/tlspolicy.conf" 993
has "$tmp/out" 'AUDIT MODE' "audit mode is said loudly"
has "$tmp/out" 'tls_by = daemon' "daemon role explained"

run 2 "explain without a port" "$TLSPOLICYCTL" explain -c "$conf"
run 2 "explain a non-number" "$TLSPOLICYCTL" explain -c "$conf" smtp
has "$tmp/err" 'is not a port number' "non-number refused with a reason"
finish
