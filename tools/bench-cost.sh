#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tools/bench-cost.sh: deterministic client cost of redispool per command.
#
# Runs redispool-benchmark (with --no-latency, so the tool's own timing is not
# counted) on one throwaway redis-server, for
#   W1   GET, 1 caller, 1 connection               (-t get -c 1 --pool-size 1)
#   W1s  W1 with blocking calls from one thread    (-t get -c 1 --pool-size 1 --sync)
#   W2   GET, 50 callers over a pool of 5          (-t get -c 50 --pool-size 5)
#   W3   GET, pipelines of 16, 5 callers over 5    (-t get -c 5 --pool-size 5 -P 16)
#   W4   SET 1 KiB values, 50 callers over 5       (-t set -d 1024 -c 50 --pool-size 5)
# and, as reference rows, examples/hiredis-glib-bench --adapter lean (plain
# hiredis async API on the GLib main loop, same arguments) for W1 and W2,
# at two request counts N1 < N2, under
#   valgrind --tool=callgrind   instructions (Ir), self cost split by shared object
#                               (as callgrind_annotate --inclusive=no; kernel not counted;
#                               "other" is the benchmark itself, ld.so and the rest)
#   strace -c -f                system calls, all threads
#   perf stat -e context-switches   context switches, all threads (perf stat
#                               follows threads and children by default); skipped
#                               with a note if perf is missing or not permitted
#                               (kernel.perf_event_paranoid)
# and prints the marginal cost per command, (X(N2) - X(N1)) / (N2 - N1), which
# cancels start-up, connection set-up and shutdown.
#
# Environment: N1=20000 N2=40000, BUILD_DIR=_build, REDISPOOL_BENCHMARK,
# HIREDIS_GLIB_BENCH (default: next to REDISPOOL_BENCHMARK; SKIP_HIREDIS=1 drops
# the reference rows), REDIS_SERVER, REDIS_CLI, PERF=perf, KEEP=1 keeps the raw
# outputs (path printed).
# Note: valgrind serializes threads and strace slows every syscall, so the
# batching the library achieves under them can differ from a free run; the
# context switches come from a free run (perf stat costs next to nothing) and so
# depend on timing: expect some noise, unlike Ir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
srcdir="$(dirname "$here")"

N1="${N1:-20000}"
N2="${N2:-40000}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
BUILD_DIR="${BUILD_DIR:-$srcdir/_build}"

for tool in "$REDIS_SERVER" "$REDIS_CLI" valgrind callgrind_annotate strace; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench-cost.sh: $tool not found (tools/deps.sh installs it)" >&2
    exit 1
  fi
done

if [ -z "${REDISPOOL_BENCHMARK:-}" ]; then
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" "$srcdir" >/dev/null
  fi
  ninja -C "$BUILD_DIR" build.ninja >/dev/null
  meson compile -C "$BUILD_DIR" redispool-benchmark hiredis-glib-bench >/dev/null
  REDISPOOL_BENCHMARK="$BUILD_DIR/examples/redispool-benchmark"
fi
HIREDIS_GLIB_BENCH="${HIREDIS_GLIB_BENCH:-$(dirname "$REDISPOOL_BENCHMARK")/hiredis-glib-bench}"
if [ "${SKIP_HIREDIS:-0}" = 1 ]; then
  HIREDIS_GLIB_BENCH=""
elif [ ! -x "$HIREDIS_GLIB_BENCH" ]; then
  echo "bench-cost.sh: $HIREDIS_GLIB_BENCH not built; no hiredis reference rows" >&2
  HIREDIS_GLIB_BENCH=""
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/redispool-cost.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "bench-cost.sh: raw outputs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$tmp" --save '' --appendonly no \
  --daemonize no --logfile "$tmp/redis.log" &
server_pid=$!
for _ in $(seq 100); do
  if "$REDIS_CLI" -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
"$REDIS_CLI" -p "$port" ping >/dev/null

# Rows: key, label, binary, arguments.
rows=(W1 W1s W2 W3 W4)
declare -A label=(
  [W1]="W1" [W1s]="W1s (sync)" [W2]="W2" [W3]="W3" [W4]="W4"
  [H1]="W1 hiredis lean" [H2]="W2 hiredis lean"
)
declare -A bin=(
  [W1]="$REDISPOOL_BENCHMARK" [W1s]="$REDISPOOL_BENCHMARK" [W2]="$REDISPOOL_BENCHMARK"
  [W3]="$REDISPOOL_BENCHMARK" [W4]="$REDISPOOL_BENCHMARK"
  [H1]="$HIREDIS_GLIB_BENCH" [H2]="$HIREDIS_GLIB_BENCH"
)
declare -A args=(
  [W1]="-t get -c 1 --pool-size 1"
  [W1s]="-t get -c 1 --pool-size 1 --sync"
  [W2]="-t get -c 50 --pool-size 5"
  [W3]="-t get -c 5 --pool-size 5 -P 16"
  [W4]="-t set -d 1024 -c 50 --pool-size 5"
  [H1]="-t get -c 1 --pool-size 1 --adapter lean"
  [H2]="-t get -c 50 --pool-size 5 --adapter lean"
)
if [ -n "$HIREDIS_GLIB_BENCH" ]; then
  rows+=(H1 H2)
fi

# perf stat: usable if it can count a trivial command.
PERF="${PERF:-perf}"
perf_note=""
if ! command -v "$PERF" >/dev/null; then
  perf_note="perf not found (tools/deps.sh installs linux-perf)"
elif ! "$PERF" stat -x, -e context-switches -o "$tmp/perf.probe" -- true >/dev/null 2>&1 ||
     ! awk -F, '$3 ~ /^context-switches/ && $1 ~ /^[0-9]+$/ { ok = 1 } END { exit !ok }' "$tmp/perf.probe"; then
  perf_note="perf stat -e context-switches not permitted or not supported (kernel.perf_event_paranoid = $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?'))"
fi
if [ -n "$perf_note" ]; then
  echo "bench-cost.sh: note: $perf_note; context switches skipped" >&2
fi
groups=(libredispool libglib libgobject libgio libhiredis libc other total)

# Self cost per group, as "group Ir" lines. The callgrind output is read
# directly (callgrind_annotate --inclusive=no gives the same self costs but
# omits the object of entries for inlined code, so it cannot be split by object):
# a cost line belongs to the current ob= (names are shared with cob=), except
# the line after calls=, which is the inclusive cost of a call.
ir_by_group() {
  awk '
    function objname(s,    id, rest) {
      if (match(s, /^\([0-9]+\)/)) {
        id = substr(s, RSTART, RLENGTH); rest = substr(s, RLENGTH + 1); sub(/^ /, "", rest)
        if (rest != "") names[id] = rest
        return names[id]
      }
      return s
    }
    /^ob=/ { ob = objname(substr($0, 4)); next }
    /^cob=/ { objname(substr($0, 5)); next }
    /^calls=/ { skip = 1; next }
    /^[0-9+*-]/ {
      if (skip) { skip = 0; next }
      self[ob] += $2
      next
    }
    END {
      for (o in self) {
        n = split(o, parts, "/"); base = parts[n]; v = self[o]
        if (base ~ /^libredispool/) g = "libredispool"
        else if (base ~ /^libglib-2/) g = "libglib"
        else if (base ~ /^libgobject-2/) g = "libgobject"
        else if (base ~ /^libgio-2/) g = "libgio"
        else if (base ~ /^libhiredis/) g = "libhiredis"
        else if (base ~ /^libc\.so/ || base ~ /^libm\.so/) g = "libc"
        else g = "other"
        sum[g] += v; total += v
      }
      for (g in sum) print g, sum[g]
      print "total", total
    }' "$1"
}

# Calls per syscall from an strace -c summary, as "name calls" lines.
syscalls() {
  awk '$1 ~ /^[0-9.]+$/ && NF >= 5 { print $NF, $4 }' "$1"
}

marginal() { awk -v a="$1" -v b="$2" -v n1="$N1" -v n2="$N2" 'BEGIN { printf "%.2f", (b - a) / (n2 - n1) }'; }

# Context switches from a perf stat -x, output file, as "context-switches N".
ctxsw() {
  awk -F, '$3 ~ /^context-switches/ && $1 ~ /^[0-9]+$/ { print "context-switches", $1 }' "$1"
}

echo "bench-cost.sh: N1=$N1 and N2=$N2 requests, load: $(uptime | sed 's/.*load average/load average/')"
for w in "${rows[@]}"; do
  for n in "$N1" "$N2"; do
    cmd=("${bin[$w]}" -h 127.0.0.1 -p "$port" -n "$n" -q --no-latency)
    # shellcheck disable=SC2206
    cmd+=(${args[$w]})
    "$REDIS_CLI" -p "$port" flushall >/dev/null
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$w.$n" "${cmd[@]}" \
      >"$tmp/cg.$w.$n.out" 2>&1 || { cat "$tmp/cg.$w.$n.out" >&2; exit 1; }
    ir_by_group "$tmp/cg.$w.$n" >"$tmp/ir.$w.$n"
    strace -c -f -o "$tmp/st.$w.$n" "${cmd[@]}" \
      >"$tmp/st.$w.$n.out" 2>&1 || { cat "$tmp/st.$w.$n.out" >&2; exit 1; }
    syscalls "$tmp/st.$w.$n" >"$tmp/sc.$w.$n"
    if [ -z "$perf_note" ]; then
      "$PERF" stat -x, -e context-switches -o "$tmp/ps.$w.$n" -- "${cmd[@]}" \
        >"$tmp/ps.$w.$n.out" 2>&1 || { cat "$tmp/ps.$w.$n.out" >&2; exit 1; }
      ctxsw "$tmp/ps.$w.$n" >"$tmp/cs.$w.$n"
    fi
  done
  echo "bench-cost.sh: ${label[$w]} done"
done

lookup() { awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' "$1"; }

echo
echo "Instructions per command (callgrind Ir, marginal between N1 and N2, self cost by object):"
echo
printf '| workload |'; for g in "${groups[@]}"; do printf ' %s |' "$g"; done; echo
printf '| --- |'; for _ in "${groups[@]}"; do printf ' ---: |'; done; echo
for w in "${rows[@]}"; do
  printf '| %s |' "${label[$w]}"
  for g in "${groups[@]}"; do
    printf ' %.0f |' "$(marginal "$(lookup "$tmp/ir.$w.$N1" "$g")" "$(lookup "$tmp/ir.$w.$N2" "$g")")"
  done
  echo
done

echo
echo "System calls per command (strace -c -f, marginal between N1 and N2):"
echo
names="$(cat "$tmp"/sc.* | awk '$1 != "total" { print $1 }' | sort -u)"
shown=()
for s in $names; do
  keep=0
  for w in "${rows[@]}"; do
    m="$(marginal "$(lookup "$tmp/sc.$w.$N1" "$s")" "$(lookup "$tmp/sc.$w.$N2" "$s")")"
    if awk -v m="$m" 'BEGIN { exit !(m >= 0.005 || m <= -0.005) }'; then keep=1; fi
  done
  if [ "$keep" = 1 ]; then shown+=("$s"); fi
done
shown+=(total)
printf '| workload |'; for s in "${shown[@]}"; do printf ' %s |' "$s"; done; echo
printf '| --- |'; for _ in "${shown[@]}"; do printf ' ---: |'; done; echo
for w in "${rows[@]}"; do
  printf '| %s |' "${label[$w]}"
  for s in "${shown[@]}"; do
    printf ' %s |' "$(marginal "$(lookup "$tmp/sc.$w.$N1" "$s")" "$(lookup "$tmp/sc.$w.$N2" "$s")")"
  done
  echo
done

echo
echo "Per command, marginal between N1 and N2: callgrind Ir (total), strace -c -f system calls,"
echo "perf stat -e context-switches (all threads):"
if [ -n "$perf_note" ]; then
  echo "(context switches skipped: $perf_note)"
fi
echo
echo "| workload | instructions (Ir) | system calls | context switches |"
echo "| --- | ---: | ---: | ---: |"
for w in "${rows[@]}"; do
  if [ -n "$perf_note" ]; then
    cs="n/a"
  else
    cs="$(marginal "$(lookup "$tmp/cs.$w.$N1" context-switches)" "$(lookup "$tmp/cs.$w.$N2" context-switches)")"
  fi
  printf '| %s | %.0f | %s | %s |\n' "${label[$w]}" \
    "$(marginal "$(lookup "$tmp/ir.$w.$N1" total)" "$(lookup "$tmp/ir.$w.$N2" total)")" \
    "$(marginal "$(lookup "$tmp/sc.$w.$N1" total)" "$(lookup "$tmp/sc.$w.$N2" total)")" \
    "$cs"
done

echo
echo "Top functions by self cost, W2 at N2 (share of all instructions):"
callgrind_annotate --inclusive=no --auto=no --threshold=100 "$tmp/cg.W2.$N2" |
  awk '/^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ && n++ < 15' |
  sed -e 's/^ *[0-9,]* (/(/' -e 's/ \[\([^]]*\/\)\{0,1\}\([^]/]*\)\]$/ [\2]/'
