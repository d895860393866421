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
# ASAN_BUILD_DIR (default _build-asan), REDISPOOL_ASAN (default 1).
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-_build}
PYTHON=/usr/bin/python3   # not the pyenv python3 on PATH
status=0
extra=()

step() { printf '\n==> %s\n' "$*"; }

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
    if ! meson test -C "$BUILD_DIR" --print-errorlogs --no-rebuild; then
      status=1
    fi
    [ -f "$BUILD_DIR/meson-logs/testlog.json" ] &&
      logs+=("$BUILD_DIR/meson-logs/testlog.json")

    if [ "${REDISPOOL_VALGRIND:-1}" != 0 ]; then
      if command -v valgrind >/dev/null; then
        step "meson test --setup=valgrind --suite c"
        if ! meson test -C "$BUILD_DIR" --setup=valgrind --suite c \
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
      if ! meson test -C "$ASAN_BUILD_DIR" --setup=asan --suite c \
             --print-errorlogs --no-rebuild; then
        status=1
      fi
      [ -f "$ASAN_BUILD_DIR/meson-logs/testlog-asan.json" ] &&
        logs+=("$ASAN_BUILD_DIR/meson-logs/testlog-asan.json")
      step "meson test --setup=asan --suite fuzz ($ASAN_BUILD_DIR)"
      if ! meson test -C "$ASAN_BUILD_DIR" --setup=asan --suite fuzz \
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
