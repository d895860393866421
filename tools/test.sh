#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs the whole redispool test suite on a Debian 12 machine:
#   deps -> meson setup (_build, reused) -> compile -> meson test (all suites)
#   -> meson test --setup=valgrind --suite c (skip with REDISPOOL_VALGRIND=0)
#   -> _build-asan (clang, ASan+UBSan): meson test --setup=asan --suite c,
#      then --suite fuzz (libFuzzer, 30 s each) (skip with REDISPOOL_ASAN=0)
# and prints a subtest-level summary whose last line is
#   "N passed, N failed, N skipped".
# Exits non-zero if any step or any test failed.
#
# Environment: BUILD_DIR (default _build), REDISPOOL_VALGRIND (default 1),
# ASAN_BUILD_DIR (default _build-asan), REDISPOOL_ASAN (default 1),
# REDISPOOL_TEST_LOAD_FACTOR (default: from the load average, see below).
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-_build}
PYTHON=/usr/bin/python3   # not the pyenv python3 on PATH
status=0
extra=()

step() { printf '\n==> %s\n' "$*"; }

# A busy machine stretches every deadline (a TLS handshake under ASan with
# other work running took over 3 s). Before each pass, the 1-minute load
# average per CPU gives a factor for the tests' deadlines (test_scale_ms()
# multiplies it in, REDISPOOL_TEST_LOAD_FACTOR) and for meson's own test
# timeouts: 1 up to one runnable task per CPU, one more per CPU's worth
# above that, at most 4. Set REDISPOOL_TEST_LOAD_FACTOR to fix it instead.
fixed_load_factor=${REDISPOOL_TEST_LOAD_FACTOR:-}
load_factor() {
  if [ -n "$fixed_load_factor" ]; then
    echo "$fixed_load_factor"
    return
  fi
  local load ncpu
  read -r load _ < /proc/loadavg 2>/dev/null || { echo 1; return; }
  ncpu=$(nproc 2>/dev/null || echo 1)
  awk -v l="$load" -v n="$ncpu" 'BEGIN {
    f = int (l / n) + (l > n ? 1 : 0)
    if (f < 1) f = 1
    if (f > 4) f = 4
    print f
  }'
}
# Sets REDISPOOL_TEST_LOAD_FACTOR for the next pass, and meson_t to the
# -t argument for a setup whose timeout multiplier is $1.
scale_for_load() {
  REDISPOOL_TEST_LOAD_FACTOR=$(load_factor)
  export REDISPOOL_TEST_LOAD_FACTOR
  meson_t=$(( $1 * REDISPOOL_TEST_LOAD_FACTOR ))
  echo "load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null) on $(nproc 2>/dev/null) CPUs:" \
       "deadlines x$REDISPOOL_TEST_LOAD_FACTOR, meson timeouts x$meson_t"
}

step "tools/deps.sh"
if ! bash tools/deps.sh; then
  extra+=(--extra-failure "tools/deps.sh failed")
  status=1
fi

step "meson setup $BUILD_DIR"
if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
  echo "reusing $BUILD_DIR (meson regenerates it when needed)"
elif ! meson setup "$BUILD_DIR"; then
  extra+=(--extra-failure "meson setup failed")
  status=1
fi

logs=()
if [ "$status" -eq 0 ] || [ -f "$BUILD_DIR/build.ninja" ]; then
  step "meson compile"
  if ! meson compile -C "$BUILD_DIR"; then
    extra+=(--extra-failure "meson compile failed")
    status=1
  else
    rm -f "$BUILD_DIR"/meson-logs/testlog*.json

    step "meson test"
    scale_for_load 1
    if ! meson test -C "$BUILD_DIR" -t "$meson_t" --print-errorlogs --no-rebuild; then
      status=1
    fi
    [ -f "$BUILD_DIR/meson-logs/testlog.json" ] &&
      logs+=("$BUILD_DIR/meson-logs/testlog.json")

    if [ "${REDISPOOL_VALGRIND:-1}" != 0 ]; then
      if command -v valgrind >/dev/null; then
        step "meson test --setup=valgrind --suite c"
        scale_for_load 10   # the valgrind setup's timeout_multiplier
        if ! meson test -C "$BUILD_DIR" --setup=valgrind --suite c -t "$meson_t" \
               --print-errorlogs --no-rebuild; then
          status=1
        fi
        [ -f "$BUILD_DIR/meson-logs/testlog-valgrind.json" ] &&
          logs+=("$BUILD_DIR/meson-logs/testlog-valgrind.json")
      else
        echo "valgrind not installed: skipping the memcheck run" >&2
      fi
    fi
  fi
fi

# ---- ASan+UBSan pass and fuzzers ----
# A second build dir compiled by clang with -Db_sanitize=address,undefined
# (introspection/vapi/docs off): `meson test --setup=asan --suite c`
# (results labelled [asan]), then the libFuzzer targets for 30 s each
# (`--suite fuzz`, labelled [fuzz-asan]). Skip with REDISPOOL_ASAN=0.
if [ "${REDISPOOL_ASAN:-1}" != 0 ]; then
  ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-_build-asan}
  step "meson setup $ASAN_BUILD_DIR (clang, ASan+UBSan)"
  asan_ok=1
  if [ -f "$ASAN_BUILD_DIR/meson-private/coredata.dat" ]; then
    echo "reusing $ASAN_BUILD_DIR"
  elif ! CC=clang meson setup "$ASAN_BUILD_DIR" \
         -Db_sanitize=address,undefined -Db_lundef=false \
         -Dintrospection=disabled -Dvapi=disabled -Ddocs=disabled; then
    extra+=(--extra-failure "meson setup $ASAN_BUILD_DIR failed")
    status=1
    asan_ok=0
  fi
  if [ "$asan_ok" = 1 ]; then
    step "meson compile -C $ASAN_BUILD_DIR"
    if ! meson compile -C "$ASAN_BUILD_DIR"; then
      extra+=(--extra-failure "meson compile -C $ASAN_BUILD_DIR failed")
      status=1
    else
      rm -f "$ASAN_BUILD_DIR"/meson-logs/testlog*.json
      step "meson test --setup=asan --suite c ($ASAN_BUILD_DIR)"
      scale_for_load 3   # the asan setup's timeout_multiplier
      if ! meson test -C "$ASAN_BUILD_DIR" --setup=asan --suite c -t "$meson_t" \
             --print-errorlogs --no-rebuild; then
        status=1
      fi
      [ -f "$ASAN_BUILD_DIR/meson-logs/testlog-asan.json" ] &&
        logs+=("$ASAN_BUILD_DIR/meson-logs/testlog-asan.json")
      step "meson test --setup=asan --suite fuzz ($ASAN_BUILD_DIR)"
      scale_for_load 3
      if ! meson test -C "$ASAN_BUILD_DIR" --setup=asan --suite fuzz -t "$meson_t" \
             --logbase testlog-fuzz --print-errorlogs --no-rebuild; then
        status=1
      fi
      [ -f "$ASAN_BUILD_DIR/meson-logs/testlog-fuzz-asan.json" ] &&
        logs+=("$ASAN_BUILD_DIR/meson-logs/testlog-fuzz-asan.json")
    fi
  fi
fi

step "results"
if ! "$PYTHON" tools/count-results.py "${extra[@]}" "${logs[@]}"; then
  status=1
fi
exit "$status"
