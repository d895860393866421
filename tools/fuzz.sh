#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Fuzzing: tools/fuzz.sh [SECONDS]   (default 60 s per target)
#
# Builds the libFuzzer targets tests/fuzz/fuzz-reader.c (reply path: bytes →
# RedisReader → RedisReply → GVariant/string, with small limits),
# tests/fuzz/fuzz-uri.c (URI parsing, password never shown) and
# tests/fuzz/fuzz-encode.c (request path: argv → RESP → the reader → the
# same argv; block times and deadlines) with clang, ASan and UBSan in
# FUZZ_BUILD_DIR (default _build-asan, the same build dir tools/test.sh uses
# for its ASan pass), then runs them for SECONDS each, in parallel, starting
# from the seed corpora tests/fuzz/corpus-*/.
#
# New coverage goes to a scratch corpus in the build dir; set FUZZ_MERGE=1 to
# merge it (minimized) into the seed corpus afterwards. Crashes, leaks and
# timeouts are saved under tests/fuzz/crashes/ and fail the run: add each one
# to tests/fuzz/regressions/ (tests/test-fuzz-regressions.c replays it) once
# the bug is fixed. Reproduce one with: FUZZ_BUILD_DIR/tests/fuzz-reader FILE
#
# CI runs the 30-second form as the meson tests fuzz-reader, fuzz-uri and
# fuzz-encode (suite fuzz) in tools/test.sh's ASan pass.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
build_dir=${FUZZ_BUILD_DIR:-_build-asan}
crashes=tests/fuzz/crashes

if [ ! -f "$build_dir/build.ninja" ]; then
  CC=clang meson setup "$build_dir" \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled || exit 1
fi
meson compile -C "$build_dir" tests/fuzz-reader tests/fuzz-uri tests/fuzz-encode || {
  echo "tools/fuzz.sh: cannot build the fuzzers (clang with libFuzzer is needed:" \
       "apt-get install clang libclang-rt-14-dev; and CC=clang in $build_dir)" >&2
  exit 1
}

mkdir -p "$crashes"
pids=()
for target in reader uri encode; do
  work="$build_dir/tests/fuzz-corpus/$target"
  mkdir -p "$work"
  log="$build_dir/tests/fuzz-$target.log"
  echo "==> fuzz-$target for ${seconds}s (log: $log)"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0} \
  LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp} \
    "$build_dir/tests/fuzz-$target" \
      -max_total_time="$seconds" -timeout=10 -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=2048 -max_len=16384 \
      -print_final_stats=1 -dict="tests/fuzz/$target.dict" \
      -artifact_prefix="$crashes/$target-" \
      "$work" "tests/fuzz/corpus-$target" >"$log" 2>&1 &
  pids+=($!)
done

status=0
i=0
for target in reader uri encode; do
  if wait "${pids[$i]}"; then
    result=ok
  else
    result=FAILED
    status=1
  fi
  log="$build_dir/tests/fuzz-$target.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  corpus=$(ls "$build_dir/tests/fuzz-corpus/$target" | wc -l)
  seeds=$(ls "tests/fuzz/corpus-$target" | wc -l)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz-$target: $result, ${execs:-?} execs, $cov, corpus $seeds seeds + $corpus found"
  if [ "$result" = FAILED ]; then
    grep -m1 -A12 -E 'ERROR: |==ERROR|Redis-(CRITICAL|WARNING|ERROR)|\*\*' "$log" | sed 's/^/    /'
    grep -E '^artifact_prefix|Test unit written to' "$log" | sed 's/^/    /'
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$result" = ok ]; then
    "$build_dir/tests/fuzz-$target" -merge=1 "tests/fuzz/corpus-$target" \
      "$build_dir/tests/fuzz-corpus/$target" >/dev/null 2>&1 &&
      echo "fuzz-$target: merged into tests/fuzz/corpus-$target ($(ls "tests/fuzz/corpus-$target" | wc -l) files)"
  fi
  i=$((i + 1))
done
exit "$status"
