#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tools/bench.sh: redispool-benchmark against redis-benchmark and against plain
# hiredis on the GLib main loop (examples/hiredis-glib-bench), and redispool's
# Python bindings against redis-py, on one throwaway redis-server.
#
#   tools/bench.sh            full run (about 4-6 minutes on a 2-core machine)
#   tools/bench.sh --smoke    tiny counts, one repetition (CI: meson test --suite bench)
#
# Environment:
#   REPS=3                 repetitions; each workload is run interleaved (redis-benchmark,
#                          redispool, hiredis shipped, hiredis lean, next workload, ...),
#                          medians reported
#   N=...                  requests per run for every workload (overrides the defaults below)
#   N_W1 N_W2 N_W3 N_W4    requests per run for one workload
#   N_PY                   GETs per Python run
#   N_PUBSUB N_PUBSUB_1K   messages per pub/sub run, 16-byte and 1 KiB payloads
#   SMOKE=1                same as --smoke
#   BUILD_DIR=_build       meson build directory (set up if missing)
#   REDISPOOL_BENCHMARK    path to a built redispool-benchmark (skips the build step)
#   HIREDIS_GLIB_BENCH     path to a built hiredis-glib-bench (default: next to
#                          REDISPOOL_BENCHMARK; SKIP_HIREDIS=1 leaves it out)
#   REDIS_SERVER, REDIS_BENCHMARK, REDIS_CLI   server and tool binaries
#   PYTHON=/usr/bin/python3  interpreter with PyGObject for tools/bench_python.py
#   SKIP_PYTHON=1          skip the Python comparison
#
# Workloads:
#   W1  GET, 1 caller, 1 connection, request/response   vs redis-benchmark -t get -c 1
#   W1s W1 with blocking calls from one thread (--sync)  vs redis-benchmark -t get -c 1
#   W2  GET, 50 callers over a pool of 5                 vs redis-benchmark -t get -c 5 -P 10
#   W3  GET, pipelines of 16, 5 callers over 5           vs redis-benchmark -t get -c 5 -P 16
#   W4  SET 1 KiB values, 50 callers over 5              vs redis-benchmark -t set -d 1024 -c 5 -P 10
# and the same redispool-benchmark arguments to hiredis-glib-bench, the
# client a GNOME developer would write instead: hiredis's async API with
#   shipped  hiredis 0.14's own GLib adapter (<hiredis/adapters/glib.h>)
#   lean     an adapter whose hooks do not call g_main_context_wakeup() and whose
#            source can recurse
# (W1s: blocking hiredis calls from one thread, reported in the "lean" column).
#   PS  Pub/Sub: messages/s delivered to a handler and client CPU per message,
#       redispool-sub-bench (a RedisSubscriber) and hiredis-glib-sub (hiredis +
#       its GLib adapter), interleaved, each while
#       redis-benchmark -P 16 -n N PUBLISH <channel> <payload> publishes 16-byte
#       and 1 KiB payloads; published counted by the server (commandstats),
#       loss = published - delivered.
#
# No timing assertions: the script fails only if a tool fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
srcdir="$(dirname "$here")"

SMOKE="${SMOKE:-0}"
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    -h|--help) sed -n '3,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

if [ "$SMOKE" = 1 ]; then
  REPS="${REPS:-1}"
  N="${N:-2000}"
  N_PY="${N_PY:-2000}"
  N_PUBSUB="${N_PUBSUB:-2000}"
  N_PUBSUB_1K="${N_PUBSUB_1K:-2000}"
fi
REPS="${REPS:-3}"
N_W1="${N_W1:-${N:-200000}}"
N_W2="${N_W2:-${N:-1000000}}"
N_W3="${N_W3:-${N:-2000000}}"
N_W4="${N_W4:-${N:-500000}}"
N_PY="${N_PY:-${N:-50000}}"
N_PUBSUB="${N_PUBSUB:-${N:-300000}}"
N_PUBSUB_1K="${N_PUBSUB_1K:-${N:-100000}}"

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
  meson compile -C "$BUILD_DIR" redispool-benchmark pool-rss hiredis-glib-bench \
    redispool-sub-bench hiredis-glib-sub >/dev/null
  REDISPOOL_BENCHMARK="$BUILD_DIR/examples/redispool-benchmark"
  export GI_TYPELIB_PATH="$BUILD_DIR/redispool${GI_TYPELIB_PATH:+:$GI_TYPELIB_PATH}"
  export LD_LIBRARY_PATH="$BUILD_DIR/redispool${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

HIREDIS_GLIB_BENCH="${HIREDIS_GLIB_BENCH:-$(dirname "$REDISPOOL_BENCHMARK")/hiredis-glib-bench}"
if [ "${SKIP_HIREDIS:-0}" = 1 ]; then
  HIREDIS_GLIB_BENCH=""
elif [ ! -x "$HIREDIS_GLIB_BENCH" ]; then
  echo "bench.sh: $HIREDIS_GLIB_BENCH not built; skipping the hiredis comparison" >&2
  HIREDIS_GLIB_BENCH=""
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

run_client() { # binary n args...: redispool-benchmark or hiredis-glib-bench
  local bin="$1" n="$2"; shift 2
  local out
  out="$("$bin" -h 127.0.0.1 -p "$port" -n "$n" -q "$@")"
  printf '%s\n' "$(basename "$bin") $*" "$out" >>"$tmp/log"
  # "ops cpu_us_per_op"
  printf '%s\n' "$out" | sed -n 's/^RESULT .* ops=\([0-9.]*\) .*cpu_us_per_op=\([0-9.]*\).*/\1 \2/p' | head -n 1
}

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# name | description | requests | redis-benchmark args | redispool-benchmark args | adapters
# hiredis-glib-bench gets the redispool-benchmark args; "adapters" lists the
# --adapter values to run it with ("sync": once, blocking, in the lean column).
workloads=(
  "W1|GET, 1 caller, 1 connection|$N_W1|-t get -c 1|-t get -c 1 --pool-size 1|shipped lean"
  "W1s|GET, 1 thread, 1 connection, --sync|$N_W1|-t get -c 1|-t get -c 1 --pool-size 1 --sync|sync"
  "W2|GET, 50 callers / pool 5 (rb: -c 5 -P 10)|$N_W2|-t get -c 5 -P 10|-t get -c 50 --pool-size 5|shipped lean"
  "W3|GET, pipelines of 16, 5 callers / 5 conns|$N_W3|-t get -c 5 -P 16|-t get -c 5 --pool-size 5 -P 16|shipped lean"
  "W4|SET 1 KiB, 50 callers / pool 5 (rb: -c 5 -P 10)|$N_W4|-t set -d 1024 -c 5 -P 10|-t set -d 1024 -c 50 --pool-size 5|shipped lean"
)

# ops[tool:workload] and cpu[tool:workload]: space-separated values, one per rep;
# tools: rb (redis-benchmark), rp (redispool), hs (hiredis shipped), hl (hiredis lean)
declare -A ops cpu
fail_parse() {
  echo "bench.sh: $1: could not parse a result; log:" >&2
  cat "$tmp/log" >&2
  exit 1
}
echo "bench.sh: redis-server $("$REDIS_SERVER" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port, REPS=$REPS, $(nproc) CPUs"
echo "bench.sh: load before: $(uptime | sed 's/.*load average/load average/')"
for rep in $(seq "$REPS"); do
  for w in "${workloads[@]}"; do
    IFS='|' read -r name desc n rb_args rp_args adapters <<<"$w"
    line="$(printf 'rep %d %-4s' "$rep" "$name")"
    # GET runs read the same 3-byte value redis-benchmark's default -d would write.
    rcli set 'key:__rand_int__' xxx
    # shellcheck disable=SC2086
    v="$(run_rb "$n" $rb_args)"
    [ -n "$v" ] || fail_parse "$name redis-benchmark"
    ops[rb:$name]+=" $v"
    line+="$(printf '  rb %.0f' "$v")"

    runs=("rp|$REDISPOOL_BENCHMARK|")
    if [ -n "$HIREDIS_GLIB_BENCH" ]; then
      for a in $adapters; do
        case "$a" in
          shipped) runs+=("hs|$HIREDIS_GLIB_BENCH|--adapter shipped") ;;
          lean) runs+=("hl|$HIREDIS_GLIB_BENCH|--adapter lean") ;;
          sync) runs+=("hl|$HIREDIS_GLIB_BENCH|") ;; # --sync is in rp_args
        esac
      done
    fi
    for r in "${runs[@]}"; do
      IFS='|' read -r tool bin extra <<<"$r"
      rcli set 'key:__rand_int__' xxx
      # shellcheck disable=SC2086
      read -r v c <<<"$(run_client "$bin" "$n" $rp_args $extra)"
      { [ -n "$v" ] && [ -n "$c" ]; } || fail_parse "$name $tool"
      ops[$tool:$name]+=" $v"
      cpu[$tool:$name]+=" $c"
      line+="$(printf '  %s %.0f (%.2f us/op)' "$tool" "$v" "$c")"
    done
    echo "$line"
  done
done
echo "bench.sh: load after: $(uptime | sed 's/.*load average/load average/')"

med() { median <<<"${1:-}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
num() { awk -v a="$1" -v f="$2" 'BEGIN { if (a == "n/a") print "n/a"; else printf f, a }'; }

echo
echo "Medians of $REPS run(s), ops/s (requests: W1 $N_W1, W2 $N_W2, W3 $N_W3, W4 $N_W4);"
echo "rb = redis-benchmark, rp = redispool, hiredis = hiredis-glib-bench (W1s: blocking hiredis):"
echo
echo "| workload | redis-benchmark | redispool | hiredis shipped | hiredis lean | rp / rb | rp / hiredis lean | rp / hiredis shipped |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for w in "${workloads[@]}"; do
  IFS='|' read -r name desc n rb_args rp_args adapters <<<"$w"
  rb="$(med "${ops[rb:$name]:-}")"; rp="$(med "${ops[rp:$name]:-}")"
  hs="$(med "${ops[hs:$name]:-}")"; hl="$(med "${ops[hl:$name]:-}")"
  printf '| %s: %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$desc" \
    "$(num "$rb" %.0f)" "$(num "$rp" %.0f)" "$(num "$hs" %.0f)" "$(num "$hl" %.0f)" \
    "$(ratio "$rp" "$rb")" "$(ratio "$rp" "$hl")" "$(ratio "$rp" "$hs")"
done

echo
echo "Client CPU per command (getrusage, all threads), medians, us/op:"
echo
echo "| workload | redispool | hiredis shipped | hiredis lean | rp / hiredis lean |"
echo "| --- | ---: | ---: | ---: | ---: |"
for w in "${workloads[@]}"; do
  IFS='|' read -r name desc n rb_args rp_args adapters <<<"$w"
  rp="$(med "${cpu[rp:$name]:-}")"; hs="$(med "${cpu[hs:$name]:-}")"; hl="$(med "${cpu[hl:$name]:-}")"
  printf '| %s | %s | %s | %s | %s |\n' "$name" \
    "$(num "$rp" %.2f)" "$(num "$hs" %.2f)" "$(num "$hl" %.2f)" "$(ratio "$rp" "$hl")"
done

# --- Pub/Sub -----------------------------------------------------------------
# One subscriber process at a time on channel bench-ch; it prints READY once
# subscribed, then redis-benchmark publishes; the subscriber ends 500 ms after
# its last message and prints
#   RESULT delivered=N msgs_per_s=R cpu_us_per_msg=C dropped=D cut=L
# (cut: connections the server closed, its client-output-buffer-limit pubsub
# for a subscriber that falls behind, reported on stderr)
# redis-benchmark may publish a few more than -n (whole pipelines), so the
# number published is the server's own count of PUBLISH calls.
sub_dir="$(dirname "$REDISPOOL_BENCHMARK")"
sub_runs=()
for b in redispool-sub-bench hiredis-glib-sub; do
  if [ -x "$sub_dir/$b" ]; then
    sub_runs+=("$b")
  else
    echo "bench.sh: $sub_dir/$b not built; left out of the pub/sub row" >&2
  fi
done

run_pubsub() { # binary n payload -> "published delivered msgs_per_s cpu_us dropped cut pub_rps"
  local bin="$1" n="$2" payload="$3" out="$tmp/sub.out" pid rb published
  : >"$out"
  rcli config resetstat
  "$bin" -h 127.0.0.1 -p "$port" -c bench-ch --idle-ms 500 >"$out" 2>>"$tmp/log" &
  pid=$!
  for _ in $(seq 1000); do
    grep -q '^READY' "$out" && break
    sleep 0.01
  done
  if ! grep -q '^READY' "$out"; then
    kill "$pid" 2>/dev/null || true
    fail_parse "pub/sub $(basename "$bin"): never READY"
  fi
  rb="$("$REDIS_BENCHMARK" -h 127.0.0.1 -p "$port" -n "$n" -P 16 -q --csv PUBLISH bench-ch "$payload")"
  printf '%s\n' "redis-benchmark PUBLISH (${#payload} bytes)" "$rb" >>"$tmp/log"
  wait "$pid" || fail_parse "pub/sub $(basename "$bin") failed"
  if grep -q '^RESULT.* cut=[1-9]' "$out"; then
    echo "bench.sh: pub/sub: the server cut $(basename "$bin") off (client-output-buffer-limit pubsub)" >&2
  fi
  printf '%s\n' "$(basename "$bin") (${#payload} bytes)" "$(cat "$out")" >>"$tmp/log"
  published="$("$REDIS_CLI" -p "$port" info commandstats | sed -n 's/^cmdstat_publish:calls=\([0-9]*\).*/\1/p')"
  printf '%s %s %s\n' "${published:-0}" \
    "$(sed -n 's/^RESULT delivered=\([0-9]*\) msgs_per_s=\([0-9.]*\) cpu_us_per_msg=\([0-9.]*\) dropped=\([0-9]*\) cut=\([0-9]*\).*/\1 \2 \3 \4 \5/p' "$out")" \
    "$(printf '%s\n' "$rb" | awk -F'","' 'NR > 1 && NF > 1 { print $2; exit }')"
}

if [ "${#sub_runs[@]}" -gt 0 ]; then
  declare -A ps_rate ps_cpu ps_pub ps_rb ps_lost ps_dropped ps_cut
  payload_16="$(printf '%016d' 0)"
  payload_1k="$(head -c 1024 /dev/zero | tr '\0' 'x')"
  echo
  echo "bench.sh: pub/sub, $REPS rep(s), $N_PUBSUB x 16 B and $N_PUBSUB_1K x 1 KiB messages per run"
  ps_start=$SECONDS
  for rep in $(seq "$REPS"); do
    for size in 16 1k; do
      if [ "$size" = 16 ]; then n="$N_PUBSUB"; payload="$payload_16"; else n="$N_PUBSUB_1K"; payload="$payload_1k"; fi
      line="$(printf 'rep %d PS %-3s' "$rep" "$size")"
      for b in "${sub_runs[@]}"; do
        read -r pub del rate c drop cut rbr <<<"$(run_pubsub "$sub_dir/$b" "$n" "$payload")"
        [ -n "${rbr:-}" ] || fail_parse "pub/sub $b"
        k="$b:$size"
        ps_rate[$k]+=" $rate"; ps_cpu[$k]+=" $c"; ps_rb[$k]+=" $rbr"
        ps_pub[$k]=$(( ${ps_pub[$k]:-0} + pub ))
        ps_lost[$k]=$(( ${ps_lost[$k]:-0} + pub - del ))
        ps_dropped[$k]=$(( ${ps_dropped[$k]:-0} + drop ))
        ps_cut[$k]=$(( ${ps_cut[$k]:-0} + cut ))
        line+="$(printf '  %s %.0f/s (%.2f us/msg, lost %d of %d, publisher %.0f/s)' \
          "${b%%-sub*}" "$rate" "$c" $(( pub - del )) "$pub" "$rbr")"
      done
      echo "$line"
    done
  done
  echo "bench.sh: pub/sub took $(( SECONDS - ps_start )) s"
  echo
  echo "Pub/Sub, medians of $REPS run(s): messages/s delivered to a handler, client CPU"
  echo "per message (all threads), while redis-benchmark -P 16 PUBLISHes to one channel;"
  echo "publisher = redis-benchmark's rate during the same runs; lost = published - delivered"
  echo "(sums over the runs; dropped = messages-dropped, the backpressure bound; cut ="
  echo "connections the server closed for client-output-buffer-limit pubsub):"
  echo
  echo "| payload | redispool msgs/s | hiredis msgs/s | rp / hiredis | redispool us/msg | hiredis us/msg | publisher msgs/s (rp, hiredis) | lost rp | lost hiredis | dropped rp | cut rp, hiredis |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for size in 16 1k; do
    rp="redispool-sub-bench:$size"; hr="hiredis-glib-sub:$size"
    r1="$(med "${ps_rate[$rp]:-}")"; r2="$(med "${ps_rate[$hr]:-}")"
    printf '| %s | %s | %s | %s | %s | %s | %s, %s | %s of %s | %s of %s | %s | %s, %s |\n' \
      "$([ "$size" = 16 ] && echo '16 B' || echo '1 KiB')" \
      "$(num "$r1" %.0f)" "$(num "$r2" %.0f)" "$(ratio "$r1" "$r2")" \
      "$(num "$(med "${ps_cpu[$rp]:-}")" %.2f)" "$(num "$(med "${ps_cpu[$hr]:-}")" %.2f)" \
      "$(num "$(med "${ps_rb[$rp]:-}")" %.0f)" "$(num "$(med "${ps_rb[$hr]:-}")" %.0f)" \
      "${ps_lost[$rp]:-n/a}" "${ps_pub[$rp]:-n/a}" "${ps_lost[$hr]:-n/a}" "${ps_pub[$hr]:-n/a}" \
      "${ps_dropped[$rp]:-n/a}" "${ps_cut[$rp]:-n/a}" "${ps_cut[$hr]:-n/a}"
  done
fi

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
