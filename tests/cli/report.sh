#!/bin/sh
# report.sh - tlspolicyctl report on a fixed log, compared with golden files
#
# tests/cli/report/sample.txt holds tlspolicy lines in every form report
# reads (traditional syslog "Nov 29 09:05:01 host tlspolicy[812]: ...",
# RFC 3339 with and without fraction and zone offset, journalctl's
# short-iso "+0000", the shim's "tlspolicy: ..." without a pid, the
# "tlspolicy: ..." stderr form of tlspolicyd -f without a time), quoted
# values with spaces, other programs' lines and garbage; a NUL byte and a
# line over 8 KiB are added here.  expected.txt and expected.json are the
# whole report; expected-since.* the report with --since of the same log
# without its traditional lines (they have no year, so which side of a
# date they fall on depends on the year the test runs in).
#
# UPDATE=1 rewrites the golden files in $TESTS_SRC/cli/report from the
# output; read them before committing.

. "$TESTS_SRC/cli/lib.sh"
golden=$TESTS_SRC/cli/report
TZ=UTC
export TZ

cd "$tmp" || exit 1
{
	cat "$golden/sample.txt"
	printf 'Nov 29 09:16:04 mx tlspolicy[812]: port=587 action=relay bad\000byte\n'
	i=0
	while [ $i -lt 90 ]; do
		printf 'port=587 action=relay %0100d' 0
		i=$((i + 1))
	done
	echo
	printf '2026-11-29T09:20:00+00:00 mx tlspolicy[812]: port=25 client=203.0.113.1:5 mode=opportunistic action=relay tls_by=module'
} >sample.log
grep -av '^[A-Z][a-z][a-z] [ 0-9][0-9] ' sample.log >dated.log

# golden NAME EXPECTED_EXIT CMD... - stdout of CMD is the golden file NAME
golden() {
	file=$1; shift
	run "$@"
	if [ -n "$UPDATE" ]; then
		cp "$tmp/out" "$golden/$file"
		echo "updated $golden/$file"
	elif diff -u "$golden/$file" "$tmp/out" >"$tmp/diff"; then
		ok "$file matches"
	else
		fail "$file differs:"; cat "$tmp/diff"
	fi
}

golden expected.txt 0 "report, text" "$TLSPOLICYCTL" report --log sample.log
golden expected.json 0 "report, JSON from stdin" sh -c '"$0" report --json --log - <sample.log' "$TLSPOLICYCTL"
golden expected-since.txt 0 "report --since, text" \
	"$TLSPOLICYCTL" report --log dated.log --since 2026-11-29T09:00
golden expected-since.json 0 "report --since, JSON" \
	"$TLSPOLICYCTL" report --log dated.log --since 2026-11-29T09:00 --json

# the JSON is JSON, and its numbers are the text's
if [ -n "$PYTHON3" ] && [ -x "$(command -v "$PYTHON3")" ]; then
	check "expected.json parses" "$PYTHON3" -c 'import json, sys; json.load(open(sys.argv[1]))' \
		"$golden/expected.json"
fi

# --log twice: both read, both named
grep -a '^tlspolicy: ' sample.log >stderr.log
run 0 "two logs" "$TLSPOLICYCTL" report --log dated.log --log stderr.log
has "$tmp/out" 'source:  dated.log, stderr.log' "both sources named"

# --since: the stderr form has no time, so with --since it is skipped, and said so
run 0 "--since 30m on the stderr form" "$TLSPOLICYCTL" report --since 30m --log stderr.log --json
has "$tmp/out" '"lines":0,"skipped":5,"garbage":0,"undated":5' "undated lines skipped and counted"
run 0 "--since 2d" "$TLSPOLICYCTL" report --since 2d --log stderr.log
has "$tmp/out" 'skipped: 0 unreadable, 5 without a time (--since)' "text says how many were skipped"
run 0 "--since a date" "$TLSPOLICYCTL" report --since 2026-11-29 --log dated.log

# bounded: at most 256 ports and 4096 refused clients per port, and said so
awk 'BEGIN { for (i = 1; i <= 300; i++)
	printf "tlspolicy: port=%d client=10.0.0.1:1 mode=starttls action=relay\n", i }' >ports.log
run 0 "300 ports" "$TLSPOLICYCTL" report --log ports.log
has "$tmp/out" 'note: more than 256 ports; 44 decisions on the others not counted' "port cap said"
awk 'BEGIN { for (i = 0; i < 5000; i++)
	printf "tlspolicy: port=587 client=10.%d.%d.1:1 mode=starttls action=refuse reason=x\n",
		int(i / 256), i % 256 }' >clients.log
run 0 "5000 refused clients" "$TLSPOLICYCTL" report --log clients.log
has "$tmp/out" 'more than 4096 refused clients: 904 refusals of the rest not ranked' "client cap said"
has "$tmp/out" 'refused                                      5000' "every refusal still counted"
run 0 "5000 refused clients, JSON" "$TLSPOLICYCTL" report --log clients.log --json
has "$tmp/out" '"capped":true' "JSON says capped"

# errors
run 1 "a missing log" "$TLSPOLICYCTL" report --log "$tmp/no-such.log"
has "$tmp/err" "no-such.log: No such file or directory" "the missing file is named"
run 0 "one missing log of two" "$TLSPOLICYCTL" report --log "$tmp/no-such.log" --log dated.log
has "$tmp/err" "no-such.log: No such file or directory" "the missing one is named"
has "$tmp/out" 'source:  dated.log' "the other one is read"
run 2 "a bad --since" "$TLSPOLICYCTL" report --since yesterday --log dated.log
has "$tmp/err" '--since "yesterday"' "the bad value is named"
run 2 "--since 2026-13-01" "$TLSPOLICYCTL" report --since 2026-13-01 --log dated.log
run 2 "an argument" "$TLSPOLICYCTL" report dated.log
run 2 "an unknown option" "$TLSPOLICYCTL" report --follow

# without --log and without journalctl: /var/log/mail.log, or a clear error
if [ -r /var/log/mail.log ]; then
	run 0 "no journalctl: mail.log" env PATH=/nonexistent "$TLSPOLICYCTL" report
	has "$tmp/out" 'source:  /var/log/mail.log' "mail.log named as the source"
else
	run 1 "no journalctl, no mail.log" env PATH=/nonexistent "$TLSPOLICYCTL" report
	has "$tmp/err" 'no log to read' "says there is no log"
	has "$tmp/err" '--log FILE' "says how to give one"
fi
finish
