#!/bin/sh
# validate-golden.sh - `tlspolicyctl validate` on every broken policy in
# tests/policies/invalid and tests/policies/contexts, compared with its
# golden file
#
# invalid/ holds what the policy library finds (tests/unit/check_policy
# compares the same golden files with its diagnostics); contexts/ what only
# validate finds by building the TLS contexts tlspolicyd will build
# (policy/tlsctx.h): what the installed wolfSSL cannot do.
#
# Each case is a directory NN-name holding tlspolicy.conf (and maybe a
# tlspolicy.d/ of drop-ins) and "expected": what validate prints on stderr
# when run from the work directory, then "exit N" (its exit code) and
# "strict-exit N" (the exit code with --strict).  A case whose expected
# output has an "error:" line must also exit 1 and say how many errors in
# the summary line on stdout.
#
# Dates ("YYYY-MM-DD HH:MM:SS UTC") become DATE and day counts ("in 9
# days") "in N days", both in the golden files and in the output, so the
# certificates made at test time compare equal.  Nothing else varies: a
# path in a message must not depend on where the tree was built.
#
# Environment: TLSPOLICYCTL (the CLI), TESTS_WORK (the copy of
# tests/policies with certs/ made by mkcerts.sh); TESTS_SRC (the source
# tests/ directory) for UPDATE=1.
#
# Then every policy validate accepts (valid/, and the cases above that
# exit 0) must start tlspolicyd: it is run on each, as root, with a drop-in
# giving it a relay socket of its own, until it logs action=start (or
# exits, which fails the case).  This is what validate promises.
#
# UPDATE=1 rewrites the golden files from the CLI's output (in
# $TESTS_SRC/policies/invalid when TESTS_SRC is set, else in TESTS_WORK):
#     make check TESTS=tests/cli/validate-golden.sh UPDATE=1
# Read every rewritten file before committing it: a golden file states
# what a sysadmin should see, not whatever the library happens to print.

: "${TLSPOLICYCTL:?run from make check (TLSPOLICYCTL unset)}"
: "${TESTS_WORK:?run from make check (TESTS_WORK unset)}"
MIN_CASES=40

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

cd "$TESTS_WORK" || exit 1

normalise() {
	sed -e 's/[0-9]\{4\}-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] UTC/DATE/g' \
	    -e 's/in [0-9][0-9]* days/in N days/g'
}

passed=0
failed=0
cases=0

if [ ! -d invalid ]; then
	echo "FAIL no invalid/ in $TESTS_WORK"
	echo "0 passed, 1 failed"
	exit 1
fi

for dir in invalid/*/ contexts/*/; do
	dir=${dir%/}
	name=${dir#*/}
	[ -f "$dir/tlspolicy.conf" ] || continue
	cases=$((cases + 1))
	conf=$dir/tlspolicy.conf

	"$TLSPOLICYCTL" validate -c "$conf" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	"$TLSPOLICYCTL" validate --strict -c "$conf" >/dev/null 2>&1
	src=$?
	{ cat "$tmp/err"; echo "exit $rc"; echo "strict-exit $src"; } | normalise >"$tmp/actual"

	if [ "${UPDATE:-0}" = 1 ]; then
		if [ -n "${TESTS_SRC:-}" ]; then
			golden=$TESTS_SRC/policies/$dir/expected
		else
			golden=$dir/expected
		fi
		if [ -f "$golden" ] && cmp -s "$tmp/actual" "$golden"; then
			echo "ok $name (unchanged)"
		else
			cp "$tmp/actual" "$golden" && echo "ok $name (updated $golden)"
		fi
		passed=$((passed + 1))
		continue
	fi

	why=
	if [ ! -f "$dir/expected" ]; then
		why="no golden file $dir/expected"
	else
		normalise <"$dir/expected" >"$tmp/expected"
		if ! diff -u "$tmp/expected" "$tmp/actual" >"$tmp/diff"; then
			why="output differs from $dir/expected"
		fi
		# an error, whatever the wording, fails validation and is counted
		nerr=$(grep -c ': error: ' "$tmp/expected")
		if [ "$nerr" -gt 0 ]; then
			if [ "$rc" -ne 1 ]; then
				why="${why:+$why; }$nerr error(s) expected but exit $rc"
			fi
			if ! grep -Eq "^$conf: $nerr errors?, [0-9]+ warnings?; the policy is invalid\$" "$tmp/out"; then
				why="${why:+$why; }stdout does not report $nerr error(s): $(cat "$tmp/out")"
			fi
		fi
	fi
	if [ -z "$why" ]; then
		passed=$((passed + 1))
		echo "ok $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
		echo "  $why"
		[ -s "$tmp/diff" ] && sed 's/^/  /' "$tmp/diff"
	fi
	rm -f "$tmp/diff"
done

# starts NAME DIR - tlspolicyd starts with DIR/tlspolicy.conf
TLSPOLICYD=${TLSPOLICYD:-${TLSPOLICYCTL%/cli/tlspolicyctl}/module/tlspolicyd}
starts() {
	dropin=$2/tlspolicy.d/zz-validate-golden-$$.conf
	mkdir -p "$2/tlspolicy.d"
	printf '[global]\nrelay_socket = @tlspolicy-validate-golden-%s\n' "$$" >"$dropin"
	mkdir -p "$tmp/run"
	TLSPOLICY_RUNDIR=$tmp/run "$TLSPOLICYD" -f --insecure-run-as-root -c "$2/tlspolicy.conf" \
		>"$tmp/daemon.log" 2>&1 &
	pid=$!
	i=0
	while [ $i -lt 100 ] && kill -0 "$pid" 2>/dev/null &&
	      ! grep -q 'action=start socket=' "$tmp/daemon.log"; do
		sleep 0.1
		i=$((i + 1))
	done
	if grep -q 'action=start socket=' "$tmp/daemon.log"; then
		echo "ok starts $1"
		passed=$((passed + 1))
	else
		echo "FAIL starts $1: validate accepts it, tlspolicyd does not start"
		sed 's/^/  /' "$tmp/daemon.log"
		failed=$((failed + 1))
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$dropin"
	rmdir "$2/tlspolicy.d" 2>/dev/null
	return 0
}

if [ "${UPDATE:-0}" != 1 ] && [ -x "$TLSPOLICYD" ]; then
	for dir in valid/*/ invalid/*/ contexts/*/; do
		dir=${dir%/}
		[ -f "$dir/tlspolicy.conf" ] || continue
		"$TLSPOLICYCTL" validate -c "$dir/tlspolicy.conf" >/dev/null 2>&1 || continue
		starts "$dir" "$dir"
	done
elif [ "${UPDATE:-0}" != 1 ]; then
	echo "FAIL no tlspolicyd at $TLSPOLICYD"
	failed=$((failed + 1))
fi

if [ "$cases" -lt "$MIN_CASES" ]; then
	echo "FAIL only $cases cases in $TESTS_WORK/invalid, at least $MIN_CASES wanted"
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
