# lib.sh - shared by the tlspolicyctl test scripts (sourced)
# Every check prints "ok ..." or "FAIL ..."; finish prints "N passed, M failed".
: "${TLSPOLICYCTL:?run from make check}"
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); echo "ok $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# check NAME COMMAND... - passes if the command succeeds
check() {
	name=$1; shift
	if "$@"; then ok "$name"; else fail "$name"; fi
}

# run EXPECTED_EXIT NAME CMD... - runs CMD, output in $tmp/out and $tmp/err
run() {
	want=$1; name=$2; shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$name (exit $rc)"
	else
		fail "$name: exit $rc, wanted $want"
		sed 's/^/  stdout: /' "$tmp/out"
		sed 's/^/  stderr: /' "$tmp/err"
	fi
}

# has FILE TEXT NAME - FILE contains the fixed string TEXT
has() {
	if grep -qF -- "$2" "$1"; then ok "$3"; else
		fail "$3: \"$2\" not in output:"; sed 's/^/  | /' "$1"; fi
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}
