#!/bin/sh
# Runs the snapshot-file fuzzer for a bounded time (LEAK_FUZZ_SECONDS, default 60) from the seed
# corpus of real dumps, and reports one TAP line.  New inputs go to a scratch corpus in the build
# tree, never into the source tree; a crash leaves its input there (crash-*) for the bug report.
seconds="${LEAK_FUZZ_SECONDS:-60}"
srcdir="${LIBLEAK_SRCDIR:-.}"
work="tests/fuzz-work"
rm -rf "$work" && mkdir -p "$work/corpus" || exit 1
cp "$srcdir"/tests/fuzz-corpus/snapfile/* "$work/corpus/" || exit 1
echo "1..1"
if ./tests/fuzz-snapfile -max_total_time="$seconds" -seed=1 -print_final_stats=1 \
     -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1; then
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  echo "ok 1 - fuzz-snapfile: ${runs:-?} inputs in ${seconds}s, no crash"
  rm -rf "$work"
else
  sed 's/^/# /' "$work/log" | tail -n 40
  echo "not ok 1 - fuzz-snapfile found a crash (input saved in $work/)"
  exit 1
fi
