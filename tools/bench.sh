#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tools/bench.sh: redispool-benchmark against redis-benchmark, and redispool's
# Python bindings against redis-py, on one throwaway redis-server.
#
#   tools/bench.sh            full run (about 3-5 minutes on a 2-core machine)
#   tools/bench.sh --smoke    tiny counts, one repetition (CI: meson test --suite bench)
#
# Environment:
#   REPS=3                 repetitions; each workload is run interleaved
#                          (redis-benchmark, redispool, next workload, ...), medians reported
#   N=...                  requests per run for every workload (overrides the defaults below)
#   N_W1 N_W2 N_W3 N_W4    requests per run for one workload
#   N_PY                   GETs per Python run
#   SMOKE=1                same as --smoke
#   BUILD_DIR=_build       meson build directory (set up if missing)
#   REDISPOOL_BENCHMARK    path to a built redispool-benchmark (skips the build step)
#   REDIS_SERVER, REDIS_BENCHMARK, REDIS_CLI   server and tool binaries
#   PYTHON=/usr/bin/python3  interpreter with PyGObject for tools/bench_python.py
#   SKIP_PYTHON=1          skip the Python comparison
#
# Workloads (issue 5):
#   W1  GET, 1 caller, 1 connection, request/response   vs redis-benchmark -t get -c 1
#   W1s W1 with blocking calls from one thread (--sync)  vs redis-benchmark -t get -c 1
#   W2  GET, 50 callers over a pool of 5                 vs redis-benchmark -t get -c 5 -P 10
#   W3  GET, pipelines of 16, 5 callers over 5           vs redis-benchmark -t get -c 5 -P 16
#   W4  SET 1 KiB values, 50 callers over 5              vs redis-benchmark -t set -d 1024 -c 5 -P 10
#
# No timing assertions: the script fails only if a tool fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
srcdir="$(dirname "$here")"

SMOKE="${SMOKE:-0}"
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    -h|--help) sed -n '3,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

if [ "$SMOKE" = 1 ]; then
  REPS="${REPS:-1}"
  N="${N:-2000}"
  N_PY="${N_PY:-2000}"
fi
REPS="${REPS:-3}"
N_W1="${N_W1:-${N:-200000}}"
N_W2="${N_W2:-${N:-1000000}}"
N_W3="${N_W3:-${N:-2000000}}"
N_W4="${N_W4:-${N:-500000}}"
N_PY="${N_PY:-${N:-50000}}"

REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_BENCHMARK="${REDIS_BENCHMARK:-redis-benchmark}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
PYTHON="${PYTHON:-/usr/bin/python3}"
BUILD_DIR="${BUILD_DIR:-$srcdir/_build}"

for tool in "$REDIS_SERVER" "$REDIS_BENCHMARK" "$REDIS_CLI"; do
  if ! command -v "$tool" >/dev/null; then
    echo "bench.sh: $tool not found (tools/deps.sh installs redis-server and redis-tools)" >&2
    exit 1
  fi
done

# --- build -------------------------------------------------------------------
if [ -z "${REDISPOOL_BENCHMARK:-}" ]; then
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" "$srcdir" >/dev/null
  fi
  # A stale build.ninja does not know new targets yet: regenerate, then build.
  ninja -C "$BUILD_DIR" build.ninja >/dev/null
  meson compile -C "$BUILD_DIR" redispool-benchmark pool-rss >/dev/null
  REDISPOOL_BENCHMARK="$BUILD_DIR/examples/redispool-benchmark"
  export GI_TYPELIB_PATH="$BUILD_DIR/redispool${GI_TYPELIB_PATH:+:$GI_TYPELIB_PATH}"
  export LD_LIBRARY_PATH="$BUILD_DIR/redispool${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# --- throwaway server --------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/redispool-bench.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$tmp" --save '' --appendonly no \
  --daemonize no --logfile "$tmp/redis.log" &
server_pid=$!
for _ in $(seq 100); do
  if "$REDIS_CLI" -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
"$REDIS_CLI" -p "$port" ping >/dev/null

rcli() { "$REDIS_CLI" -p "$port" "$@" >/dev/null; }

# --- runners -----------------------------------------------------------------
# Each prints ops/s on stdout; the full output is kept in $tmp/log.
run_rb() { # n redis-benchmark-args...
  local n="$1"; shift
  local out
  out="$("$REDIS_BENCHMARK" -h 127.0.0.1 -p "$port" -n "$n" -q --csv "$@")"
  printf '%s\n' "redis-benchmark $*" "$out" >>"$tmp/log"
  printf '%s\n' "$out" | awk -F'","' 'NR > 1 && NF > 1 { print $2; exit }'
}

run_rp() { # n redispool-benchmark-args...
  local n="$1"; shift
  local out
  out="$("$REDISPOOL_BENCHMARK" -h 127.0.0.1 -p "$port" -n "$n" -q "$@")"
  printf '%s\n' "redispool-benchmark $*" "$out" >>"$tmp/log"
  # "ops cpu_us_per_op"
  printf '%s\n' "$out" | sed -n 's/^RESULT .* ops=\([0-9.]*\) .*cpu_us_per_op=\([0-9.]*\).*/\1 \2/p' | head -n 1
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# name | description | requests | redis-benchmark args | redispool-benchmark args
workloads=(
  "W1|GET, 1 caller, 1 connection|$N_W1|-t get -c 1|-t get -c 1 --pool-size 1"
  "W1s|GET, 1 thread, 1 connection, --sync|$N_W1|-t get -c 1|-t get -c 1 --pool-size 1 --sync"
  "W2|GET, 50 callers / pool 5 (rb: -c 5 -P 10)|$N_W2|-t get -c 5 -P 10|-t get -c 50 --pool-size 5"
  "W3|GET, pipelines of 16, 5 callers / 5 conns|$N_W3|-t get -c 5 -P 16|-t get -c 5 --pool-size 5 -P 16"
  "W4|SET 1 KiB, 50 callers / pool 5 (rb: -c 5 -P 10)|$N_W4|-t set -d 1024 -c 5 -P 10|-t set -d 1024 -c 50 --pool-size 5"
)

declare -A rb_results rp_results rp_cpus
echo "bench.sh: redis-server $("$REDIS_SERVER" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port, REPS=$REPS, $(nproc) CPUs"
echo "bench.sh: load before: $(uptime | sed 's/.*load average/load average/')"
for rep in $(seq "$REPS"); do
  for w in "${workloads[@]}"; do
    IFS='|' read -r name desc n rb_args rp_args <<<"$w"
    # GET runs read the same 3-byte value redis-benchmark's default -d would write.
    rcli set 'key:__rand_int__' xxx
    # shellcheck disable=SC2086
    rb="$(run_rb "$n" $rb_args)"
    rcli set 'key:__rand_int__' xxx
    # shellcheck disable=SC2086
    read -r rp rp_cpu <<<"$(run_rp "$n" $rp_args)"
    if [ -z "$rb" ] || [ -z "$rp" ] || [ -z "$rp_cpu" ]; then
      echo "bench.sh: $name: could not parse a result; log:" >&2
      cat "$tmp/log" >&2
      exit 1
    fi
    rb_results[$name]+=" $rb"
    rp_results[$name]+=" $rp"
    rp_cpus[$name]+=" $rp_cpu"
    printf 'rep %d %-4s redis-benchmark %12.2f  redispool %12.2f ops/s (client CPU %.2f us/op)\n' \
      "$rep" "$name" "$rb" "$rp" "$rp_cpu"
  done
done
echo "bench.sh: load after: $(uptime | sed 's/.*load average/load average/')"

echo
echo "Medians of $REPS run(s), ops/s (requests: W1 $N_W1, W2 $N_W2, W3 $N_W3, W4 $N_W4):"
echo
echo "| workload | redis-benchmark ops/s | redispool ops/s | ratio | redispool CPU us/op |"
echo "| --- | ---: | ---: | ---: | ---: |"
for w in "${workloads[@]}"; do
  IFS='|' read -r name desc n rb_args rp_args <<<"$w"
  rbm="$(median <<<"${rb_results[$name]}")"
  rpm="$(median <<<"${rp_results[$name]}")"
  cpu="$(median <<<"${rp_cpus[$name]}")"
  ratio="$(awk -v a="$rpm" -v b="$rbm" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
  printf '| %s: %s | %.0f | %.0f | %s | %.2f |\n' "$name" "$desc" "$rbm" "$rpm" "$ratio" "$cpu"
done

# --- Python ------------------------------------------------------------------
if [ "${SKIP_PYTHON:-0}" != 1 ]; then
  echo
  echo "Python, medians of $REPS run(s), $N_PY GETs per run:"
  if "$PYTHON" -c 'import gi; gi.require_version("Redis", "1.0")' 2>/dev/null; then
    "$PYTHON" "$here/bench_python.py" --port "$port" --n "$N_PY" --reps "$REPS" | grep -v '^RESULT'
  else
    echo "(skipped: $PYTHON cannot load the Redis-1.0 typelib; build with introspection)"
  fi
fi

# --- memory ------------------------------------------------------------------
pool_rss="$(dirname "$REDISPOOL_BENCHMARK")/pool-rss"
if [ -x "$pool_rss" ]; then
  echo
  "$pool_rss" "redis://127.0.0.1:$port/0"
fi
