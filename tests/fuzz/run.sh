#!/bin/sh
# run.sh SECONDS SEEDS NAME DICT CORPUS - run one fuzz target for make fuzz
#
# Runs tests/fuzz/bin/fuzz_NAME (in the build tree) for SECONDS on a fresh
# copy of its seeds: the checked-in CORPUS directory, then SEEDS/NAME (the
# unit table's rows, written by make), so the source tree is only read.
# Prints one line: time, executions and corpus size from libFuzzer's final
# stats, and the result.  Exits non-zero when libFuzzer found a crash, a
# sanitizer report, a timeout or a broken invariant; the input that did
# it is in tests/fuzz/work/NAME/crashes/, the output in .../log.
set -u
seconds=$1 seeds=$2 name=$3 dict=$4 corpus=$5
bin=tests/fuzz/bin/fuzz_$name
work=tests/fuzz/work/$name

rm -rf "$work"
mkdir -p "$work/corpus" "$work/crashes" || exit 1
for dir in "$corpus" "$seeds/$name"; do
	if [ -d "$dir" ]; then
		find "$dir" -type f -exec cp {} "$work/corpus/" \; || exit 1
	fi
done
chmod -R u+w "$work/corpus"
echo "fuzz_$name: running $seconds s on $(ls "$work/corpus" | wc -l) seeds, log in $work/log"
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-dict="$dict" -artifact_prefix="$work/crashes/" "$work/corpus" >"$work/log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log" | tail -n 1)
size=$(ls "$work/corpus" | wc -l)
if [ "$rc" -eq 0 ]; then
	result="no crash"
else
	result="FAILED (exit $rc): $(ls "$work/crashes" | tr '\n' ' ')see $work/log"
	grep -m 3 -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z]+: )' "$work/log" | sed 's/^/  /'
fi
line="fuzz_$name: ${secs:-?} s, ${execs:-?} executions, corpus $size inputs, $result"
echo "$line" | tee "$work/summary"
exit "$rc"
