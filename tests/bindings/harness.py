# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the PyGObject binding tests share: the server's address from
# tests/with-redis-server.py (REDIS_PORT, REDIS_URL), deadlines that scale
# like the C tests' test_scale_ms() (tests/test-helpers.h), spinning the
# main context, async calls, and the leak checks of their tearDown().
# Imported from the test's own folder (sys.path[0]).

import gc
import os

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Redis  # noqa: E402

PORT = int(os.environ.get('REDIS_PORT', '0'))
URL = os.environ.get('REDIS_URL', '')


def _factor(name):
    return min(1000, max(1, int(os.environ.get(name, '1') or 1)))


# $REDISPOOL_TEST_TIMEOUT_MULTIPLIER (valgrind, asan) times
# $REDISPOOL_TEST_LOAD_FACTOR (tools/test.sh), as test_scale_ms().
SCALE = _factor('REDISPOOL_TEST_TIMEOUT_MULTIPLIER') * _factor('REDISPOOL_TEST_LOAD_FACTOR')


def spin_until(predicate, timeout_s=5):
    """Iterate the default main context until predicate() is true; False
    after timeout_s (scaled) seconds."""
    ctx = GLib.MainContext.default()
    deadline = GLib.get_monotonic_time() + timeout_s * SCALE * 1000000
    while not predicate():
        if GLib.get_monotonic_time() > deadline:
            return False
        # Wake up at least every 10 ms so the deadline is honoured.
        src = GLib.timeout_add(10, lambda: GLib.SOURCE_REMOVE)
        ctx.iteration(True)
        if ctx.find_source_by_id(src) is not None:
            GLib.source_remove(src)
    return True


def run_async(start, finish, *args, cancellable=None, timeout_s=10):
    """Call start(*args, cancellable, callback) and spin the default main
    context until finish(result) is known; return it or raise its
    GLib.Error. AssertionError after timeout_s (scaled) seconds."""
    box = {}

    def done(_source, res):
        try:
            box['value'] = finish(res)
        except GLib.Error as e:
            box['error'] = e

    start(*args, cancellable, done)
    if not spin_until(lambda: box, timeout_s):
        raise AssertionError('async call did not complete within %d s' % (timeout_s * SCALE))
    if 'error' in box:
        raise box['error']
    return box['value']


def watch_finalized(obj):
    """A list that becomes [True] once obj is finalized."""
    finalized = []
    obj.weak_ref(lambda: finalized.append(True))
    return finalized


def assert_finalized(test, finalized, what):
    """After the last reference given to watch_finalized() was dropped:
    the object is finalized (it may hold itself until its last callback
    has run)."""
    gc.collect()
    spin_until(lambda: finalized, 5)
    test.assertEqual(finalized, [True], '%s leaked' % what)


def assert_no_live_replies(test):
    """Every RedisReply is gone. Replies of a pool's own calls (the lease
    reset after a release) are dropped on its I/O thread, possibly a
    moment later."""
    gc.collect()
    spin_until(lambda: Redis.reply_get_live_count() == 0, 2)
    test.assertEqual(Redis.reply_get_live_count(), 0, 'RedisReply leaked')
