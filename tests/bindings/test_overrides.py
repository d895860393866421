#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The PyGObject overrides (bindings/python/gi/overrides/Redis.py) against a
# real redis-server. Run through tests/with-redis-server.py (REDIS_PORT,
# REDIS_URL) with the overrides on the path: meson puts bindings/python on
# PYTHONPATH, or test an installed copy with PYTHONPATH unset.

import gc
import os
import sys
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Gio, Redis  # noqa: E402

from harness import (PORT, URL, assert_finalized, assert_no_live_replies,  # noqa: E402
                     spin_until, watch_finalized)


def contains_variant(value):
    if isinstance(value, GLib.Variant):
        return True
    if isinstance(value, dict):
        return any(contains_variant(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_variant(v) for v in value)
    return False


class OverrideLoadedTest(unittest.TestCase):
    """Fails, rather than skips, when PyGObject did not find the module."""

    def test_loaded(self):
        self.assertIn('gi.overrides.Redis', sys.modules,
                      'gi/overrides/Redis.py not found on gi.overrides.__path__ %r'
                      % (gi.overrides.__path__,))
        expected = os.environ.get('REDISPOOL_PYTHON_OVERRIDES')
        if expected:
            self.assertEqual(os.path.dirname(sys.modules['gi.overrides.Redis'].__file__),
                             os.path.join(expected, 'gi', 'overrides'))
        self.assertTrue(hasattr(Redis.Reply, 'value'))
        self.assertTrue(issubclass(Redis.ReplyError, Exception))
        # The client methods come from the Redis.Client override, so every
        # implementation (pool, connection, lease) has them.
        self.assertIs(Redis.Pool.command, Redis.Client.command)
        self.assertIs(Redis.Connection.pipeline, Redis.Client.pipeline)


@unittest.skipUnless(PORT, 'REDIS_PORT not set: run through tests/with-redis-server.py')
class OverridesTest(unittest.TestCase):

    def setUp(self):
        self.pool = Redis.Pool.new_sync(URL + '?pool_size=3', None)
        self.pool.command('FLUSHDB')

    def tearDown(self):
        pool = self.pool
        del self.pool
        if not pool.get_info()['closed']:
            self.assertTrue(pool.close_sync(None))
        finalized = watch_finalized(pool)
        del pool
        assert_finalized(self, finalized, 'RedisPool')
        assert_no_live_replies(self)

    # -- arguments ------------------------------------------------------------

    def test_arguments(self):
        blob = b'\x00bin\xff\xfe\r\n\x00'
        r = self.pool.command('RPUSH', b'l\x00\xff', blob, 5, -17, 1.5, 0.1, 1e100,
                              bytearray(b'ba\x00'), memoryview(b'mv\xff'),
                              GLib.Bytes.new(b'gb\x00'), 'h\u00e9', '', 2 ** 70)
        self.assertEqual(r.value, 12)
        self.assertEqual(self.pool.command(['LRANGE', b'l\x00\xff', 0, -1]).value,
                         [blob, b'5', b'-17', b'1.5', b'0.1', b'1e+100', b'ba\x00',
                          b'mv\xff', b'gb\x00', 'h\u00e9'.encode(), b'',
                          b'1180591620717411303424'])
        # A tuple is an argument list too.
        self.assertEqual(self.pool.command(('LLEN', b'l\x00\xff')).value, 12)
        self.assertEqual(self.pool.command('INCRBYFLOAT', 'f', 0.25).value, b'0.25')
        for bad in (True, None, object(), ['nested']):
            with self.assertRaises(TypeError, msg=repr(bad)):
                self.pool.command('SET', 'k', bad)
        with self.assertRaises(TypeError):
            self.pool.command()
        self.assertEqual(self.pool.command('EXISTS', 'k').value, 0)

    def test_raw_api_unchanged(self):
        # The introspected methods still take what they took before.
        self.assertEqual(self.pool.command_sync(['SET', 'raw', 'x']).value, 'OK')
        r = self.pool.command_bytes_sync([GLib.Bytes.new(b'GET'), GLib.Bytes.new(b'raw')])
        self.assertEqual(r.get_bytes().get_data(), b'x')
        loop = GLib.MainLoop()
        box = {}

        def done(pool, res):
            box['reply'] = pool.command_finish(res)
            loop.quit()

        self.pool.command_async(['ECHO', 'async'], None, done)
        loop.run()
        self.assertIsInstance(box['reply'], Redis.Reply)
        self.assertEqual(box['reply'].value, b'async')
        box.clear()
        res = self.pool.pipeline_sync(Redis.Batch().add(['PING']).add(['ECHO', 'b']))
        self.assertEqual([r.value for r in res], ['PONG', b'b'])

    # -- replies --------------------------------------------------------------

    def test_reply_values(self):
        c = self.pool.command
        self.assertEqual(c('SET', 'k', b'a\x00b\xff').value, 'OK')
        self.assertIsInstance(c('PING').value, str)
        self.assertEqual(c('GET', 'k').value, b'a\x00b\xff')
        self.assertEqual(c('INCR', 'n').value, 1)
        self.assertIsNone(c('GET', 'missing').value)
        self.assertEqual(c('LRANGE', 'missing', 0, -1).value, [])
        # Nested arrays, nil, integers, a status and an error as elements.
        r = c('EVAL', "return {1, {'a', {false, 'b\\0c'}}, redis.status_reply('FINE'),"
                      " redis.error_reply('MYERR boom')}", 0)
        v = r.value
        self.assertEqual(v[:3], [1, [b'a', [None, b'b\x00c']], 'FINE'])
        err = v[3]
        self.assertIsInstance(err, Redis.ReplyError)
        self.assertIsInstance(err, Exception)
        self.assertEqual((err.prefix, err.message, err.data, str(err)),
                         ('MYERR', 'MYERR boom', b'MYERR boom', 'MYERR boom'))
        self.assertEqual(err, Redis.ReplyError(b'MYERR boom'))
        self.assertEqual(repr(err), "Redis.ReplyError('MYERR boom')")
        # A status that is not UTF-8 keeps its bytes.
        s = c('EVAL', 'return redis.status_reply(string.char(255, 79, 75))', 0).value
        self.assertEqual(s.encode('utf-8', 'surrogateescape'), b'\xffOK')
        # decoded(): bulk strings as str too (redis-py's decode_responses=True).
        self.assertEqual(r.decoded()[:3], [1, ['a', [None, 'b\x00c']], 'FINE'])
        with self.assertRaises(UnicodeDecodeError):
            c('GET', 'k').decoded()
        self.assertEqual(c('GET', 'k').decoded(errors='replace'), 'a\x00b\ufffd')

    def test_deep_nesting(self):
        # Deeper than Python's recursion limit (1000 frames) allows to recurse.
        conn = Redis.Connection.new_sync(URL + '?max_depth=1024', None)
        try:
            r = conn.command('EVAL', 'local t = {7} for i = 2, tonumber(ARGV[1]) do'
                                     ' t = {t} end return t', 0, 1000)
            for v in (r.value, r.decoded()):
                depth = 0
                while isinstance(v, list):
                    self.assertEqual(len(v), 1)
                    v, depth = v[0], depth + 1
                self.assertEqual((depth, v), (1000, 7))
            self.assertTrue(repr(r).startswith('Redis.Reply(ARRAY, [[[['), repr(r))
            del r
        finally:
            self.assertTrue(conn.close_sync(None))

    def test_reply_protocols(self):
        c = self.pool.command
        c('RPUSH', 'l', 'x', b'\x00', 42)
        r = c('LRANGE', 'l', 0, -1)
        self.assertEqual(len(r), 3)
        elements = list(r)
        self.assertTrue(all(isinstance(e, Redis.Reply) for e in elements))
        self.assertEqual([e.value for e in elements], [b'x', b'\x00', b'42'])
        self.assertEqual(r[0].value, b'x')
        self.assertEqual(r[-1].value, b'42')
        self.assertEqual([e.value for e in r[1:]], [b'\x00', b'42'])
        with self.assertRaises(IndexError):
            r[3]
        with self.assertRaises(IndexError):
            r[-4]
        self.assertEqual(int(r[2]), 42)
        self.assertEqual(float(r[2]), 42.0)
        self.assertEqual(bytes(r[1]), b'\x00')
        self.assertEqual(str(r[0]), 'x')
        self.assertEqual(repr(r), "Redis.Reply(ARRAY, [b'x', b'\\x00', b'42'])")
        # Equality with native values and other replies; hash follows it.
        self.assertEqual(r, [b'x', b'\x00', b'42'])
        self.assertEqual(r[0], b'x')
        self.assertNotEqual(r[0], 'x')
        self.assertEqual(r[0], c('LINDEX', 'l', 0))
        self.assertEqual(hash(r[0]), hash(b'x'))
        self.assertEqual({r[0]: 1}[b'x'], 1)
        with self.assertRaises(TypeError):
            hash(r)
        n = c('LLEN', 'l')
        self.assertEqual(n, 3)
        self.assertEqual((int(n), float(n), bytes(n), str(n)), (3, 3.0, b'3', '3'))
        self.assertEqual(repr(n), 'Redis.Reply(INTEGER, 3)')
        st = c('SET', 'f', 2.5)
        self.assertEqual((st, str(st), bytes(st), len(st)), ('OK', 'OK', b'OK', 2))
        self.assertEqual(float(c('GET', 'f')), 2.5)
        nil = c('GET', 'missing')
        self.assertEqual(nil, None)
        self.assertTrue(nil)   # a reply is an object; its value is None
        self.assertEqual(str(nil), nil.to_string())
        self.assertEqual(repr(nil), 'Redis.Reply(NIL, None)')
        s = c('GET', 'f')
        self.assertEqual(len(s), 3)
        for what in (lambda: len(n), lambda: iter(s), lambda: s[0], lambda: bytes(nil),
                     lambda: int(nil), lambda: int(r), lambda: len(nil)):
            with self.assertRaises(TypeError):
                what()
        with self.assertRaises(ValueError):
            int(c('SET', 'w', 'word') and c('GET', 'w'))

    # -- errors ---------------------------------------------------------------

    def test_error_matching(self):
        self.pool.command('SET', 's', 'string')
        with self.assertRaises(GLib.Error) as cm:
            self.pool.command('LPUSH', 's', 'x')
        e = cm.exception
        self.assertTrue(e.matches(Redis.Error.quark(), Redis.Error.SERVER))
        self.assertTrue(e.matches(Redis.error_quark(), Redis.Error.SERVER))
        self.assertFalse(e.matches(Redis.Error.quark(), Redis.Error.TIMEOUT))
        self.assertTrue(Redis.error_matches(e, Redis.Error.SERVER))
        self.assertTrue(Redis.error_matches(e))
        self.assertFalse(Redis.error_matches(e, Redis.Error.CLOSED))
        self.assertEqual(Redis.error_get_server_prefix(e), 'WRONGTYPE')
        # Not of the Redis domain.
        c = Gio.Cancellable()
        c.cancel()
        with self.assertRaises(GLib.Error) as cm:
            self.pool.command('PING', cancellable=c)
        self.assertTrue(cm.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))
        self.assertFalse(Redis.error_matches(cm.exception))
        self.assertFalse(Redis.error_matches(ValueError('x')))
        # The same server error as a value inside a pipeline.
        v = self.pool.pipeline([['LPUSH', 's', 'x']])[0].value
        self.assertIsInstance(v, Redis.ReplyError)
        self.assertEqual(v.prefix, 'WRONGTYPE')
        self.assertEqual(v.message, e.message)

    # -- info -----------------------------------------------------------------

    def test_get_info(self):
        info = self.pool.get_info()
        self.assertIsInstance(info, dict)
        self.assertFalse(contains_variant(dict(info)), info)
        self.assertEqual(info['size'], 3)
        self.assertEqual(info['strategy'], 'round-robin')
        self.assertIs(info['closed'], False)
        conns = info['connections']
        self.assertIsInstance(conns, list)
        self.assertEqual([c['index'] for c in conns], [0, 1, 2])
        self.assertTrue(all(c['state'] == 'ready' for c in conns), conns)
        self.assertTrue(all(isinstance(c['client-id'], int) for c in conns), conns)
        # Code written against the GVariant keeps working.
        self.assertEqual(info.get_type_string(), 'a{sv}')
        self.assertEqual(info.unpack(), dict(info))

    # -- pipelines, transactions, leases --------------------------------------

    def test_pipeline(self):
        res = self.pool.pipeline([['SET', b'p\x00', b'\xff\x00'], ('GET', b'p\x00'),
                                  ['INCRBY', 'c', 5], ['LPUSH', b'p\x00', 'x'],
                                  ['INCRBYFLOAT', 'c', 0.5]])
        self.assertIsInstance(res, list)
        self.assertTrue(all(isinstance(r, Redis.Reply) for r in res))
        self.assertEqual([r.value for r in res[:3]], ['OK', b'\xff\x00', 5])
        self.assertEqual(res[3].value.prefix, 'WRONGTYPE')
        self.assertEqual(res[4].value, b'5.5')
        # A generator of commands, and a ready Redis.Batch.
        res = self.pool.pipeline(['INCR', 'g'] for _ in range(3))
        self.assertEqual([r.value for r in res], [1, 2, 3])
        res = self.pool.pipeline(Redis.Batch().add(['GET', 'g']))
        self.assertEqual(res, [b'3'])
        with self.assertRaises(TypeError):
            self.pool.pipeline(['GET', 'g'])   # one command, not a list of them

    def test_pipeline_partial(self):
        replies, failure, n_written = self.pool.pipeline_partial([['SET', 'a', 1], ['GET', 'a']])
        self.assertIsNone(failure)
        self.assertEqual((replies, n_written), (['OK', b'1'], 2))
        conn = Redis.Connection.new_sync(URL, None)
        conn.close_sync(None)
        replies, failure, n_written = conn.pipeline_partial([['GET', 'a']])
        self.assertTrue(failure.matches(Redis.Error.quark(), Redis.Error.CLOSED), failure)
        self.assertEqual((replies, n_written), ([], 0))
        with self.assertRaises(GLib.Error) as cm:
            conn.pipeline([['GET', 'a']])
        self.assertTrue(Redis.error_matches(cm.exception, Redis.Error.CLOSED))

    def test_transaction(self):
        res = self.pool.transaction([['SET', 't', 10], ['INCRBY', 't', 5], ['GET', 't'],
                                     ['LPUSH', 't', b'\x00']])
        self.assertEqual([r.value for r in res[:3]], ['OK', 15, b'15'])
        self.assertIsInstance(res[3].value, Redis.ReplyError)
        with self.assertRaises(GLib.Error) as cm:
            self.pool.transaction([['INCR', 't'], ['NOSUCHCOMMAND']])
        self.assertTrue(Redis.error_matches(cm.exception, Redis.Error.TRANSACTION_ABORTED),
                        cm.exception)
        self.assertEqual(self.pool.command('GET', 't').value, b'15')

    def test_lease(self):
        self.pool.command('SET', 'k', 1)
        lease = self.pool.acquire_sync(None)
        try:
            self.assertIsInstance(lease, Redis.Connection)
            self.assertEqual(lease.command('WATCH', 'k').value, 'OK')
            self.assertEqual(lease.command('GET', 'k').value, b'1')
            self.pool.command('SET', 'k', b'changed\x00')
            with self.assertRaises(GLib.Error) as cm:
                lease.transaction([['SET', 'k', 2]])
            self.assertTrue(cm.exception.matches(Redis.Error.quark(), Redis.Error.WATCH_FAILED),
                            cm.exception)
            self.assertEqual(lease.pipeline([['WATCH', 'k'], ['GET', 'k']])[1].value,
                             b'changed\x00')
            self.assertEqual(lease.transaction([['INCR', 'n'], ['INCR', 'n']]), [1, 2])
        finally:
            self.pool.release(lease)
        del lease
        self.assertTrue(spin_until(lambda: self.pool.get_info()['leased'] == 0, 5))

    def test_connection(self):
        conn = Redis.Connection.new_sync(URL, None)
        try:
            self.assertEqual(conn.command('ECHO', b'\x00\xff').value, b'\x00\xff')
            self.assertEqual(conn.pipeline([['PING'], ['ECHO', 7]]), ['PONG', b'7'])
        finally:
            self.assertTrue(conn.close_sync(None))

    # -- construction with keywords -------------------------------------------

    def test_keyword_construction(self):
        # Never initialised explicitly: connects on first use (C side, issue
        # 15 item 1), as Redis.Pool.new_sync() would have.
        pool = Redis.Pool(host='127.0.0.1', port=PORT, pool_size=3)
        try:
            self.assertEqual(pool.command('PING').value, 'PONG')
            self.assertEqual(pool.get_info()['size'], 3)
        finally:
            pool.close_sync(None)
        conn = Redis.Connection(host='127.0.0.1', port=PORT)
        try:
            self.assertEqual(conn.command('ECHO', 'kw').value, b'kw')
        finally:
            conn.close_sync(None)

    def test_keyword_construction_then_init(self):
        # The GInitable pattern still works on a keyword-built pool.
        pool = Redis.Pool(port=PORT, pool_size=2)
        self.assertTrue(pool.init(None))
        try:
            self.assertEqual(pool.command('PING').value, 'PONG')
        finally:
            pool.close_sync(None)

    # -- leaks ----------------------------------------------------------------

    def test_no_reply_leak(self):
        gc.collect()
        base = Redis.reply_get_live_count()
        self.pool.command('RPUSH', 'big', *range(100))
        for _ in range(200):
            r = self.pool.command('EVAL', "return {redis.call('LRANGE', KEYS[1], 0, -1),"
                                          " redis.error_reply('E x'), false}", 1, 'big')
            v = r.value
            list(r)
            r[0][5]
            del r
        self.assertEqual(len(v[0]), 100)
        res = self.pool.pipeline([['GET', 'x']] * 50)
        del res
        gc.collect()
        # v holds Python values only: no reply stays alive for it.
        self.assertEqual(Redis.reply_get_live_count(), base)
        del v


if __name__ == '__main__':
    unittest.main(verbosity=2)
