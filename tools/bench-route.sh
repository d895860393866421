#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tools/bench-route.sh: instructions (Ir, callgrind) per command for routing
# a command in a cluster — the slot computation, the key-table lookup and the
# node pick — measured on tests/bench-cluster-route (see its top comment for
# what each bench_* function covers). Prints Ir per iteration of each part
# and the total per command: slot_<cmd> + (pick - key_slot).
#
# Environment: N=100000 iterations, BUILD_DIR=_build (the program is built
# there if missing), KEEP=1 keeps the callgrind output (path printed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
srcdir="$(dirname "$here")"
N="${N:-100000}"
BUILD_DIR="${BUILD_DIR:-$srcdir/_build}"

for tool in valgrind callgrind_annotate redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "bench-route.sh: $tool not found" >&2; exit 1; }
done
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" "$srcdir" >/dev/null
ninja -C "$BUILD_DIR" tests/bench-cluster-route >/dev/null

out="$(mktemp -d)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$out"' EXIT

# The cluster's redis-server and redis-cli children are not traced.
G_TEST_SRCDIR="$srcdir/tests" valgrind --tool=callgrind --collect-atstart=no \
  --toggle-collect='bench_*' --callgrind-out-file="$out/callgrind.out" \
  "$BUILD_DIR/tests/bench-cluster-route" "$N" >"$out/stdout" 2>"$out/stderr"

callgrind_annotate --inclusive=yes "$out/callgrind.out" >"$out/annotate"
ir_of () {
  # Inclusive Ir of the function $1, from its "1,234,567 (12.3%)  file:fn [obj]" line.
  grep -E ":$1( |\$)" "$out/annotate" | head -n 1 | awk '{ gsub(/,/, "", $1); print $1 }'
}
printf 'callgrind, %s iterations: Ir per iteration\n' "$N"
for part in slot_get slot_set slot_mget key_slot pick; do
  ir="$(ir_of "bench_$part")"
  printf '  %-10s %8.1f\n' "$part" "$(echo "${ir:-0} / $N" | bc -l)"
  eval "ir_$part=${ir:-0}"
done
printf 'routing per command (slot + node pick):\n'
for cmd in get set mget; do
  eval "slot=\$ir_slot_$cmd"
  printf '  %-5s %8.1f Ir\n' "${cmd^^}" "$(echo "($slot + $ir_pick - $ir_key_slot) / $N" | bc -l)"
done
[ -z "${KEEP:-}" ] || echo "callgrind output: $out"
