#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""leaderboard: a page-hit counter with a top-3 leaderboard.

Page views arrive in bursts; each burst is recorded with one pipeline
(ZINCRBY per view plus an INCR of the total, one round trip), the last
burst asynchronously. The leaderboard is read with ZREVRANGE ... WITHSCORES.

    REDIS_URL=redis://127.0.0.1:6379/0 python3 examples/leaderboard.py

Needs PyGObject and the Redis-1.0 typelib (GI_TYPELIB_PATH when not installed).
"""

import os
import sys

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Redis  # noqa: E402

BOARD = 'leaderboard:%d:pages' % os.getpid()
TOTAL = 'leaderboard:%d:total' % os.getpid()

BURSTS = [
    ['/', '/docs', '/', '/download', '/docs/pool', '/'],
    ['/docs', '/docs', '/blog/1.0', '/', '/docs/pool', '/docs'],
    ['/download', '/', '/docs', '/blog/1.0', '/docs'],
]
LAST_BURST = ['/docs', '/download', '/download', '/about']


def record(pool, views):
    """Record a burst of page views in one pipeline; return the new total."""
    batch = Redis.Batch()
    for page in views:
        batch.add(['ZINCRBY', BOARD, '1', page])
    batch.add(['INCRBY', TOTAL, str(len(views))])
    replies = pool.pipeline_sync(batch)
    for reply in replies:
        if reply.get_kind() == Redis.ReplyKind.ERROR:
            raise RuntimeError(reply.to_string())
    return replies[-1].get_integer()


def record_async(pool, views):
    """The same through pipeline_async, completed by a main loop."""
    loop = GLib.MainLoop()
    result = {}

    def done(source, res):
        try:
            result['replies'] = source.pipeline_finish(res)
        except GLib.Error as e:
            result['error'] = e
        loop.quit()

    batch = Redis.Batch()
    for page in views:
        batch.add(['ZINCRBY', BOARD, '1', page])
    batch.add(['INCRBY', TOTAL, str(len(views))])
    pool.pipeline_async(batch, None, done)
    loop.run()
    if 'error' in result:
        raise result['error']
    return result['replies'][-1].get_integer()


def top(pool, n):
    reply = pool.command_sync(['ZREVRANGE', BOARD, '0', str(n - 1), 'WITHSCORES'])
    flat = [e.get_bytes().get_data().decode() for e in reply.get_elements()]
    return [(flat[i], int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]


def main():
    url = os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0')
    print('connecting to', url)
    try:
        pool = Redis.Pool.new_sync(url + ('&' if '?' in url else '?') + 'pool_size=2', None)
    except GLib.Error as e:
        print('cannot connect:', e.message, file=sys.stderr)
        return 1

    try:
        for i, views in enumerate(BURSTS, 1):
            total = record(pool, views)
            print('burst %d: %d views recorded in one pipeline, %d in total'
                  % (i, len(views), total))
        total = record_async(pool, LAST_BURST)
        print('burst %d (async): %d views recorded, %d in total'
              % (len(BURSTS) + 1, len(LAST_BURST), total))

        board = top(pool, 3)
        print('top 3 pages:')
        for rank, (page, hits) in enumerate(board, 1):
            print('  %d. %-12s %3d hits' % (rank, page, hits))

        expected = sum(len(b) for b in BURSTS) + len(LAST_BURST)
        ok = (total == expected and board[0] == ('/docs', 7) and
              [p for p, _ in board] == ['/docs', '/', '/download'])
        pool.command_sync(['DEL', BOARD, TOTAL])
    except GLib.Error as e:
        print('redis error:', e.message, file=sys.stderr)
        return 1
    finally:
        pool.close_sync(None)

    if not ok:
        print('unexpected leaderboard', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
