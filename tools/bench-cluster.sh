#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tools/bench-cluster.sh: redispool-benchmark --cluster next to
# redis-benchmark --cluster, GET and SET, 50 callers, on a 3-primary Redis
# Cluster on loopback that the script starts (or on the cluster of URI).
#
#   tools/bench-cluster.sh [--smoke] [URI]
#
# Each repetition runs redis-benchmark --cluster -t set,get -c 50 and then
# redispool-benchmark --cluster -t set,get -c 50 --pool-size POOL_SIZE (per
# node), interleaved, and the medians are printed: ops/s, client CPU per
# command (getrusage of the whole process: redispool-benchmark's own RESULT
# line; /usr/bin/time for redis-benchmark), and the ratio redispool /
# redis-benchmark, for ops/s and for ops/s per connection (redis-benchmark
# opens one connection per client: 50; redispool POOL_SIZE per node).
# Keys: redis-benchmark --cluster gives each client a key on its node;
# redispool-benchmark --cluster gives each caller a key of its own, tagged
# with its number (spread over the nodes by their slots).
#
# Environment: REPS=3, N=200000 requests per test and run, POOL_SIZE=5,
# BUILD_DIR=_build, REDISPOOL_BENCHMARK (a built binary: skips the build),
# REDIS_SERVER, REDIS_CLI, REDIS_BENCHMARK. --smoke: REPS=1 N=2000 (CI).
# No timing assertions: the script fails only if a tool fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
srcdir="$(dirname "$here")"

uri=""
for arg in "$@"; do
  case "$arg" in
    --smoke) REPS="${REPS:-1}"; N="${N:-2000}" ;;
    -h|--help) sed -n '3,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    redis://*|rediss://*) uri="$arg" ;;
    *) echo "bench-cluster.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
REPS="${REPS:-3}"
N="${N:-200000}"
POOL_SIZE="${POOL_SIZE:-5}"
CALLERS=50
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
REDIS_BENCHMARK="${REDIS_BENCHMARK:-redis-benchmark}"
BUILD_DIR="${BUILD_DIR:-$srcdir/_build}"

for tool in "$REDIS_SERVER" "$REDIS_CLI" "$REDIS_BENCHMARK"; do
  command -v "$tool" >/dev/null || { echo "bench-cluster.sh: $tool not found" >&2; exit 1; }
done
if [ -z "${REDISPOOL_BENCHMARK:-}" ]; then
  [ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" "$srcdir" >/dev/null
  ninja -C "$BUILD_DIR" build.ninja >/dev/null
  meson compile -C "$BUILD_DIR" redispool-benchmark >/dev/null
  REDISPOOL_BENCHMARK="$BUILD_DIR/examples/redispool-benchmark"
  export LD_LIBRARY_PATH="$BUILD_DIR/redispool${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/redispool-bench-cluster.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the cluster -------------------------------------------------------------
if [ -z "$uri" ]; then
  ports=()
  for i in 0 1 2; do
    port="$(free_port)"
    # The bus port must be free too (and a data port above 55535 needs an
    # explicit one): ask for it rather than use port + 10000.
    bus="$(free_port)"
    mkdir -p "$tmp/node$i"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$tmp/node$i" --save '' \
      --appendonly no --daemonize no --logfile "$tmp/node$i/redis.log" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
      --cluster-port "$bus" &
    pids+=($!)
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 100); do "$REDIS_CLI" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  "$REDIS_CLI" --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
    --cluster-yes >"$tmp/create.log" 2>&1 || { cat "$tmp/create.log" >&2; exit 1; }
  for _ in $(seq 200); do
    ok=0
    for port in "${ports[@]}"; do
      "$REDIS_CLI" -p "$port" cluster info | grep -q 'cluster_state:ok' && ok=$((ok + 1))
    done
    [ "$ok" = 3 ] && break
    sleep 0.05
  done
  uri="redis://127.0.0.1:${ports[0]}?addr=127.0.0.1:${ports[1]}&addr=127.0.0.1:${ports[2]}"
fi
seed="${uri#*://}"; seed="${seed%%\?*}"; seed="${seed##*@}"
seed_host="${seed%:*}"; seed_port="${seed##*:}"
n_nodes="$("$REDIS_CLI" -h "$seed_host" -p "$seed_port" cluster nodes | grep -c master)"

# --- runners -----------------------------------------------------------------
# "set_ops get_ops cpu_us_per_op" of one redis-benchmark run (CPU: user + sys of
# the process over both tests, per command).
run_rb() {
  local out
  out="$(/usr/bin/time -f 'TIME %U %S' "$REDIS_BENCHMARK" --cluster -h "$seed_host" -p "$seed_port" \
    -t set,get -c "$CALLERS" -n "$N" -q --csv 2>"$tmp/rb.time")"
  printf '%s\n' "redis-benchmark" "$out" "$(cat "$tmp/rb.time")" >>"$tmp/log"
  printf '%s %s %s\n' \
    "$(printf '%s\n' "$out" | awk -F'","' '/^"SET"/ { print $2 }')" \
    "$(printf '%s\n' "$out" | awk -F'","' '/^"GET"/ { print $2 }')" \
    "$(awk -v n="$N" '/^TIME/ { printf "%.3f", ($2 + $3) * 1e6 / (2 * n) }' "$tmp/rb.time")"
}

# "set_ops set_cpu get_ops get_cpu" of one redispool-benchmark run.
run_rp() {
  local out
  out="$("$REDISPOOL_BENCHMARK" --cluster --uri "$uri" -t set,get -c "$CALLERS" \
    --pool-size "$POOL_SIZE" -n "$N" -q)"
  printf '%s\n' "redispool-benchmark" "$out" >>"$tmp/log"
  printf '%s %s\n' \
    "$(printf '%s\n' "$out" | sed -n 's/^RESULT test=set ops=\([0-9.]*\) .*cpu_us_per_op=\([0-9.]*\).*/\1 \2/p')" \
    "$(printf '%s\n' "$out" | sed -n 's/^RESULT test=get ops=\([0-9.]*\) .*cpu_us_per_op=\([0-9.]*\).*/\1 \2/p')"
}

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fail_parse() { echo "bench-cluster.sh: $1: could not parse a result; log:" >&2; cat "$tmp/log" >&2; exit 1; }

echo "bench-cluster.sh: $n_nodes primaries ($uri), REPS=$REPS, N=$N, $CALLERS callers, $(nproc) CPUs"
echo "bench-cluster.sh: load before: $(uptime | sed 's/.*load average/load average/')"
rb_set="" rb_get="" rb_cpu="" rp_set="" rp_get="" rp_set_cpu="" rp_get_cpu=""
for rep in $(seq "$REPS"); do
  read -r s g c <<<"$(run_rb)"
  [ -n "${c:-}" ] || fail_parse "redis-benchmark"
  rb_set+=" $s"; rb_get+=" $g"; rb_cpu+=" $c"
  read -r s sc g gc <<<"$(run_rp)"
  [ -n "${gc:-}" ] || fail_parse "redispool-benchmark"
  rp_set+=" $s"; rp_get+=" $g"; rp_set_cpu+=" $sc"; rp_get_cpu+=" $gc"
  printf 'rep %d  rb SET %.0f GET %.0f (%.2f us/op)  rp SET %.0f (%.2f us/op) GET %.0f (%.2f us/op)\n' \
    "$rep" "${rb_set##* }" "${rb_get##* }" "${rb_cpu##* }" "$s" "$sc" "$g" "$gc"
done
echo "bench-cluster.sh: load after: $(uptime | sed 's/.*load average/load average/')"

rb_conns="$CALLERS"
rp_conns=$(( POOL_SIZE * n_nodes ))
echo
echo "Medians of $REPS run(s), $N requests per test; redis-benchmark --cluster -c $CALLERS"
echo "($rb_conns connections) vs redispool-benchmark --cluster -c $CALLERS --pool-size $POOL_SIZE"
echo "($rp_conns connections); client CPU per command, all threads (redis-benchmark: SET and GET together):"
echo
echo "| test | redis-benchmark ops/s | redispool ops/s | rp / rb | rp / rb per connection | redis-benchmark us/op | redispool us/op |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for t in SET GET; do
  if [ "$t" = SET ]; then rb="$(median <<<"$rb_set")"; rp="$(median <<<"$rp_set")"; rpc="$(median <<<"$rp_set_cpu")"
  else rb="$(median <<<"$rb_get")"; rp="$(median <<<"$rp_get")"; rpc="$(median <<<"$rp_get_cpu")"; fi
  per_conn="$(awk -v a="$rp" -v b="$rb" -v ca="$rp_conns" -v cb="$rb_conns" 'BEGIN { if (b > 0) printf "%.2f", (a / ca) / (b / cb); else print "n/a" }')"
  printf '| %s | %.0f | %.0f | %s | %s | %s | %s |\n' "$t" "$rb" "$rp" "$(ratio "$rp" "$rb")" "$per_conn" \
    "$(median <<<"$rb_cpu")" "$rpc"
done
