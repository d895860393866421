#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Python side of tools/bench.sh: redispool through PyGObject (Redis.Pool)
# against Debian's python3-redis (redis-py), on the same server.
#
#   W1: sequential GET, blocking calls, one connection
#   W3: sequential pipelines of 16 GETs, blocking calls, one connection
#       (redispool reuses one Redis.Batch; redis-py builds its pipeline each time,
#       which is how it is used)
#
#   bench_python.py --port PORT [--host 127.0.0.1] [--n 50000] [--reps 3]
#
# Prints one RESULT line per run and a Markdown table of medians.
# Needs Debian's /usr/bin/python3 with python3-gi, GI_TYPELIB_PATH and
# LD_LIBRARY_PATH pointing at the build (tools/bench.sh sets them).

import argparse
import os
import statistics
import sys
import time

KEY = 'key:__rand_int__'
PIPELINE = 16


def load_redispool():
    import gi
    gi.require_version('Redis', '1.0')
    from gi.repository import GObject, Redis  # noqa: F401
    return Redis


def bench_redispool_w1(Redis, host, port, n):
    pool = Redis.Pool.new_sync('redis://%s:%d?pool_size=1&command_timeout=0' % (host, port), None)
    cmd = ['GET', KEY]
    get = pool.command_sync
    get(cmd, None)
    t0 = time.perf_counter()
    for _ in range(n):
        get(cmd, None)
    dt = time.perf_counter() - t0
    pool.close_sync(None)
    return n / dt


def bench_redispool_w3(Redis, host, port, n):
    pool = Redis.Pool.new_sync('redis://%s:%d?pool_size=1&command_timeout=0' % (host, port), None)
    batch = Redis.Batch.new()
    for _ in range(PIPELINE):
        batch.add(['GET', KEY])
    run = pool.pipeline_sync
    rounds = max(1, n // PIPELINE)
    run(batch, None)
    t0 = time.perf_counter()
    for _ in range(rounds):
        run(batch, None)
    dt = time.perf_counter() - t0
    pool.close_sync(None)
    return rounds * PIPELINE / dt


def bench_redispy_w1(redis, host, port, n):
    r = redis.Redis(host=host, port=port)
    get = r.get
    get(KEY)
    t0 = time.perf_counter()
    for _ in range(n):
        get(KEY)
    dt = time.perf_counter() - t0
    r.close()
    return n / dt


def bench_redispy_w3(redis, host, port, n):
    r = redis.Redis(host=host, port=port)
    rounds = max(1, n // PIPELINE)
    r.get(KEY)
    t0 = time.perf_counter()
    for _ in range(rounds):
        p = r.pipeline(transaction=False)
        for _ in range(PIPELINE):
            p.get(KEY)
        p.execute()
    dt = time.perf_counter() - t0
    r.close()
    return rounds * PIPELINE / dt


def fmt(v):
    return 'n/a' if v is None else '%.0f' % v


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=int(os.environ.get('REDIS_PORT', '6379')))
    ap.add_argument('--n', type=int, default=50000, help='GETs per run')
    ap.add_argument('--reps', type=int, default=3)
    args = ap.parse_args()

    try:
        Redis = load_redispool()
    except Exception as e:  # noqa: BLE001
        print('bench_python: redispool bindings unavailable: %s' % e, file=sys.stderr)
        return 1
    try:
        import redis
    except ImportError:
        redis = None
        print('bench_python: python3-redis not installed; redis-py column is n/a '
              '(tools/deps.sh installs it)', file=sys.stderr)

    # Same 3-byte value redis-benchmark uses.
    pool = Redis.Pool.new_sync('redis://%s:%d?pool_size=1' % (args.host, args.port), None)
    pool.command_sync(['SET', KEY, 'xxx'], None)
    pool.close_sync(None)

    workloads = [
        ('P-W1', 'GET, sync, 1 connection', bench_redispool_w1, bench_redispy_w1),
        ('P-W3', 'GET, pipelines of %d, 1 connection' % PIPELINE, bench_redispool_w3, bench_redispy_w3),
    ]
    results = {w[0]: {'redispool': [], 'redis-py': []} for w in workloads}
    for rep in range(args.reps):
        for name, _desc, rp, py in workloads:
            if redis is not None:
                ops = py(redis, args.host, args.port, args.n)
                results[name]['redis-py'].append(ops)
                print('RESULT client=redis-py workload=%s rep=%d ops=%.2f' % (name, rep + 1, ops), flush=True)
            ops = rp(Redis, args.host, args.port, args.n)
            results[name]['redispool'].append(ops)
            print('RESULT client=redispool-gi workload=%s rep=%d ops=%.2f' % (name, rep + 1, ops), flush=True)

    print()
    print('| workload | redis-py ops/s | redispool (PyGObject) ops/s | ratio |')
    print('| --- | ---: | ---: | ---: |')
    for name, desc, _rp, _py in workloads:
        rp = statistics.median(results[name]['redispool'])
        py = statistics.median(results[name]['redis-py']) if results[name]['redis-py'] else None
        ratio = '%.2f' % (rp / py) if py else 'n/a'
        print('| %s: %s | %s | %s | %s |' % (name, desc, fmt(py), fmt(rp), ratio))
    return 0


if __name__ == '__main__':
    sys.exit(main())
