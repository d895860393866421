#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Soak run: tools/soak.sh [SECONDS] [PROGRAM]   (default 600 s)
#
# Runs tests/soak.c (built by meson as the executable tests/soak) for
# SECONDS against a throwaway redis-server it starts itself: a pool of 5
# under mixed async + sync load, one of its connections killed every 2 s.
# Prints ops, errors by code, RSS and open fds at start and end; exits 1 if
# an invariant breaks (completion, no mix-up, exact INCR counter, allowed
# error codes) or RSS/fds grow beyond their bounds after the warm-up.
# Extra options go to the program (see `tests/soak --help`) through
# SOAK_ARGS, e.g. SOAK_ARGS="--inflight 128 --threads 4".
#
# CI runs the 60-second version as the meson test "soak" (suite soak).
# Environment: BUILD_DIR (default _build) when PROGRAM is not given.
set -euo pipefail

seconds=${1:-600}
program=${2:-}
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ -z "$program" ]; then
  build_dir=${BUILD_DIR:-_build}
  case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
  if [ ! -f "$build_dir/build.ninja" ]; then
    meson setup "$build_dir" "$root" >/dev/null
  fi
  meson compile -C "$build_dir" tests/soak >/dev/null
  program="$build_dir/tests/soak"
fi

# shellcheck disable=SC2086
exec "$program" ${SOAK_ARGS:-} "$seconds"
