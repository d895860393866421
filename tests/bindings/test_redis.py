#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# PyGObject (3.42) binding test against a real redis-server.
# Run through tests/with-redis-server.py, which exports REDIS_PORT/REDIS_URL.

import os
import subprocess
import sys
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Gio, Redis  # noqa: E402

from harness import (PORT, URL, assert_finalized, assert_no_live_replies,  # noqa: E402
                     run_async, spin_until, watch_finalized)


def b(*items):
    return [GLib.Bytes.new(x if isinstance(x, bytes) else x.encode()) for x in items]


@unittest.skipUnless(PORT, 'REDIS_PORT not set: run through tests/with-redis-server.py')
class RedisBindingTest(unittest.TestCase):

    def setUp(self):
        self.pool = Redis.Pool(port=PORT, pool_size=3)
        self.pool.init(None)
        self.pool.command_sync(['FLUSHDB'])

    def tearDown(self):
        pool = self.pool
        del self.pool
        if not pool.get_info().unpack().get('closed'):
            self.assertTrue(pool.close_sync(None))
        finalized = watch_finalized(pool)
        del pool
        assert_finalized(self, finalized, 'RedisPool')
        assert_no_live_replies(self)

    # -- construction ---------------------------------------------------------

    def test_pool_from_properties(self):
        self.assertEqual(self.pool.props.pool_size, 3)
        self.assertEqual(self.pool.get_size(), 3)
        self.assertEqual(self.pool.props.port, PORT)
        self.assertEqual(self.pool.get_strategy(), Redis.PoolStrategy.ROUND_ROBIN)
        r = self.pool.command_sync(['PING'])
        self.assertEqual(r.get_kind(), Redis.ReplyKind.STATUS)
        self.assertEqual(r.get_string(), 'PONG')

    def test_init_again(self):
        # GInitable is idempotent: a second init succeeds and keeps the pool open.
        self.assertTrue(self.pool.init(None))
        self.assertEqual(self.pool.command_sync(['PING']).get_string(), 'PONG')
        self.assertFalse(self.pool.get_info().unpack()['closed'])

    def test_max_leases(self):
        pool = Redis.Pool(port=PORT, pool_size=1, max_leases=1, command_timeout=200)
        pool.init(None)
        try:
            self.assertEqual(pool.props.max_leases, 1)
            lease = pool.acquire_sync(None)
            with self.assertRaises(GLib.Error) as cm:
                pool.acquire_sync(None)
            self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.POOL_EXHAUSTED),
                            cm.exception)
            pool.release(lease)
            del lease
            # The connection that came back is reused.
            lease = pool.acquire_sync(None)
            pool.release(lease)
            del lease
        finally:
            self.assertTrue(pool.close_sync(None))

    def test_pool_from_uri(self):
        pool = Redis.Pool.new_sync(URL + '?pool_size=2', None)
        try:
            self.assertEqual(pool.get_size(), 2)
            self.assertEqual(pool.command_sync(['ECHO', 'uri']).get_string(), 'uri')
        finally:
            self.assertTrue(pool.close_sync(None))

    def test_pool_from_uri_async(self):
        pool = run_async(Redis.Pool.new_async, Redis.Pool.new_finish, URL)
        try:
            self.assertIsInstance(pool, Redis.Pool)
            self.assertEqual(pool.command_sync(['PING']).get_string(), 'PONG')
        finally:
            self.assertTrue(run_async(pool.close_async, pool.close_finish))

    def test_bad_uri(self):
        with self.assertRaises(GLib.Error) as cm:
            Redis.Pool.new_sync('http://nope', None)
        self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.INVALID_ARGUMENT),
                        cm.exception)

    # -- commands -------------------------------------------------------------

    def test_command_sync(self):
        self.assertEqual(self.pool.command_sync(['SET', 'greeting', 'hello']).get_string(), 'OK')
        r = self.pool.command_sync(['GET', 'greeting'])
        self.assertEqual(r.get_kind(), Redis.ReplyKind.STRING)
        self.assertEqual(r.get_bytes().get_data(), b'hello')
        self.assertEqual(self.pool.command_sync(['INCRBY', 'n', '41']).get_integer(), 41)
        self.assertTrue(self.pool.command_sync(['GET', 'missing']).is_nil())
        r = self.pool.command_sync(['RPUSH', 'l', 'a', 'b', 'c'])
        self.assertEqual(r.get_integer(), 3)
        r = self.pool.command_sync(['LRANGE', 'l', '0', '-1'])
        self.assertEqual(r.get_kind(), Redis.ReplyKind.ARRAY)
        self.assertEqual(r.get_n_elements(), 3)
        self.assertEqual([e.get_string() for e in r.get_elements()], ['a', 'b', 'c'])
        self.assertEqual(r.get_element(1).get_string(), 'b')
        # to_variant(): UTF-8 strings become 's', other bytes 'ay', arrays 'av'.
        self.assertEqual(r.to_variant().unpack(), ['a', 'b', 'c'])
        self.pool.command_bytes_sync(b('SET', 'bin', b'\xff\x00'))
        v = self.pool.command_sync(['GET', 'bin']).to_variant()
        self.assertEqual(v.get_type_string(), 'ay')
        self.assertEqual(bytes(v.unpack()), b'\xff\x00')

    def test_command_async(self):
        r = run_async(self.pool.command_async, self.pool.command_finish, ['SET', 'a', '1'])
        self.assertEqual(r.get_string(), 'OK')
        # Several in flight at once, completed by one main loop.
        loop = GLib.MainLoop()
        results = {}

        def done(pool, res, i):
            results[i] = pool.command_finish(res).get_integer()
            if len(results) == 20:
                loop.quit()

        for i in range(20):
            self.pool.command_async(['INCR', 'a'], None, done, i)
        loop.run()
        self.assertEqual(sorted(results.values()), list(range(2, 22)))

    def test_command_bytes_binary(self):
        value = b'\x00bin\xffary\x00\xfe\x80 not utf-8\r\n\x00'
        key = b'k\x00\xff'
        r = self.pool.command_bytes_sync(b('SET', key, value))
        self.assertEqual(r.get_string(), 'OK')
        r = self.pool.command_bytes_sync(b('GET', key))
        self.assertEqual(r.get_bytes().get_data(), value)
        # Not text: get_string() refuses instead of cutting at the first NUL;
        # get_data() is the binary-safe accessor.
        self.assertIsNone(r.get_string())
        self.assertEqual(bytes(r.get_data()), value)
        r = run_async(self.pool.command_bytes_async, self.pool.command_bytes_finish,
                      b('STRLEN', key))
        self.assertEqual(r.get_integer(), len(value))
        r = run_async(self.pool.command_bytes_async, self.pool.command_bytes_finish,
                      b('GET', key))
        self.assertEqual(r.get_bytes().get_data(), value)
        # Binary-safe batch too.
        batch = Redis.Batch.new().add_bytes(b('SET', b'x', b'\x00\x01')).add_bytes(b('GET', b'x'))
        res = self.pool.pipeline_sync(batch)
        self.assertEqual(res[1].get_bytes().get_data(), b'\x00\x01')

    # -- pipelines and transactions -------------------------------------------

    def test_pipeline(self):
        batch = Redis.Batch()
        batch.add(['SET', 'p', 'v']).add(['GET', 'p']).add(['LPUSH', 'p', 'x']).add(['INCR', 'c'])
        self.assertEqual(batch.get_n_commands(), 4)
        res = self.pool.pipeline_sync(batch)
        self.assertEqual(len(res), 4)
        self.assertEqual(res[0].get_string(), 'OK')
        self.assertEqual(res[1].get_string(), 'v')
        # An error-kind reply inside a pipeline does not fail the call.
        self.assertEqual(res[2].get_kind(), Redis.ReplyKind.ERROR)
        self.assertEqual(res[2].get_error_prefix(), 'WRONGTYPE')
        self.assertEqual(res[3].get_integer(), 1)
        res = run_async(self.pool.pipeline_async, self.pool.pipeline_finish,
                        Redis.Batch().add(['INCR', 'c']).add(['INCR', 'c']))
        self.assertEqual([r.get_integer() for r in res], [2, 3])

    def test_transaction(self):
        batch = Redis.Batch().add(['SET', 't', '10']).add(['INCRBY', 't', '5']).add(['GET', 't'])
        res = self.pool.transaction_sync(batch)
        self.assertEqual([r.get_kind() for r in res],
                         [Redis.ReplyKind.STATUS, Redis.ReplyKind.INTEGER, Redis.ReplyKind.STRING])
        self.assertEqual(res[1].get_integer(), 15)
        self.assertEqual(res[2].get_string(), '15')
        res = run_async(self.pool.transaction_async, self.pool.transaction_finish,
                        Redis.Batch().add(['INCR', 't']).add(['LPUSH', 't', 'x']))
        self.assertEqual(res[0].get_integer(), 16)
        self.assertEqual(res[1].get_kind(), Redis.ReplyKind.ERROR)
        # A command refused while queueing aborts the whole transaction.
        with self.assertRaises(GLib.Error) as cm:
            self.pool.transaction_sync(Redis.Batch().add(['INCR', 't']).add(['NOSUCHCOMMAND']))
        self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.TRANSACTION_ABORTED),
                        cm.exception)
        self.assertEqual(self.pool.command_sync(['GET', 't']).get_string(), '16')

    def test_noreply(self):
        # Only INCRs: the three calls may go to three connections of the pool
        # and run in any order (a no-reply SET could land after an INCR).
        self.assertTrue(self.pool.noreply_command_sync(['INCR', 'nr']))
        self.assertTrue(self.pool.noreply_pipeline_sync(Redis.Batch().add(['INCR', 'nr'])))
        self.assertTrue(run_async(self.pool.noreply_command_async, self.pool.noreply_command_finish,
                                  ['INCR', 'nr']))
        # Written is not yet applied; poll until all three ran.
        self.assertTrue(spin_until(
            lambda: self.pool.command_sync(['GET', 'nr']).get_string() == '3', 5))

    # -- a pipeline cut mid-stream (issue 11 item 3) ---------------------------

    def start_fault_proxy(self):
        """tests/fault-proxy.py in front of the server; returns its port and a
        function sending it one command."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fault-proxy.py')
        proxy = subprocess.Popen([sys.executable, script, str(PORT)], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        def stop():
            proxy.stdin.close()
            proxy.wait(timeout=10)
            proxy.stdout.close()

        self.addCleanup(stop)

        def do(command):
            proxy.stdin.write(command + '\n')
            proxy.stdin.flush()
            self.assertEqual(proxy.stdout.readline().strip(), 'ok', command)

        return int(proxy.stdout.readline().split()[1]), do

    def cut_batch(self, n_keys, arrived):
        """n_keys SET then n_keys GET, and how many reply bytes the first
        `arrived` replies take."""
        batch = Redis.Batch()
        for i in range(n_keys):
            batch.add(['SET', 'cut:%d' % i, str(i)])
        for i in range(n_keys):
            batch.add(['GET', 'cut:%d' % i])
        size = n_keys * len('+OK\r\n')
        size += sum(len('$%d\r\n%d\r\n' % (len(str(i)), i)) for i in range(arrived - n_keys))
        return batch, size

    def check_prefix(self, replies, n_keys, arrived):
        self.assertEqual(len(replies), arrived)
        for r in replies[:n_keys]:
            self.assertEqual(r.get_string(), 'OK')
        for i, r in enumerate(replies[n_keys:]):
            self.assertEqual(r.get_string(), str(i))

    def test_pipeline_cut_partial(self):
        port, proxy = self.start_fault_proxy()
        n_keys, arrived = 100, 150
        batch, cut = self.cut_batch(n_keys, arrived)

        # Sync: pipeline_partial_sync() never raises; the error is returned
        # with the replies that arrived and the number of commands written.
        conn = Redis.Connection(port=port)
        conn.init(None)
        proxy('close-after %d down' % (cut + 2))
        replies, failure, n_written = conn.pipeline_partial_sync(batch, None)
        self.assertIsInstance(failure, GLib.Error)
        self.assertTrue(failure.matches(Redis.error_quark(), Redis.Error.CONNECTION_LOST), failure)
        self.assertFalse(Redis.Error.is_retry_safe(failure))
        self.check_prefix(replies, n_keys, arrived)
        self.assertEqual(n_written, 2 * n_keys)
        conn.close_sync(None)

        # Async: pipeline_finish() raises as before; get_partial() on the
        # same result gives the rest.
        conn = Redis.Connection(port=port)
        conn.init(None)
        proxy('close-after %d down' % (cut + 2))
        with self.assertRaises(GLib.Error) as cm:
            run_async(conn.pipeline_async, conn.pipeline_finish, batch)
        self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.CONNECTION_LOST))
        loop = GLib.MainLoop()
        box = {}

        def done(client, res):
            try:
                client.pipeline_finish(res)
            except GLib.Error as e:
                box['error'] = e
            box['partial'] = client.get_partial(res)
            loop.quit()

        conn.close_sync(None)
        conn = Redis.Connection(port=port)
        conn.init(None)
        proxy('close-after %d down' % (cut + 2))
        conn.pipeline_async(batch, None, done)
        loop.run()
        self.assertTrue(box['error'].matches(Redis.error_quark(), Redis.Error.CONNECTION_LOST))
        replies, n_written = box['partial']
        self.check_prefix(replies, n_keys, arrived)
        self.assertEqual(n_written, 2 * n_keys)
        conn.close_sync(None)
        del replies, box

        # The server holds every key: all the SETs ran.
        self.assertEqual(self.pool.command_sync(['DBSIZE']).get_integer(), n_keys)

    def test_pipeline_partial_not_sent_and_success(self):
        batch = Redis.Batch().add(['SET', 'a', '1']).add(['GET', 'a'])
        # Success: everything, no failure.
        replies, failure, n_written = self.pool.pipeline_partial_sync(batch, None)
        self.assertIsNone(failure)
        self.assertEqual([r.get_string() for r in replies], ['OK', '1'])
        self.assertEqual(n_written, 2)
        # After a successful async call there is nothing partial to report.
        box = {}
        loop = GLib.MainLoop()

        def done(client, res):
            box['value'] = client.pipeline_finish(res)
            box['partial'] = client.get_partial(res)
            loop.quit()

        self.pool.pipeline_async(batch, None, done)
        loop.run()
        self.assertEqual(len(box['value']), 2)
        # (NULL in C; PyGObject turns a NULL array into an empty list.)
        self.assertEqual(box['partial'], ([], 0))
        del box
        # Never sent: CLOSED, nothing written, safe to retry.
        conn = Redis.Connection(port=PORT)
        conn.init(None)
        conn.close_sync(None)
        replies, failure, n_written = conn.pipeline_partial_sync(batch, None)
        self.assertTrue(failure.matches(Redis.error_quark(), Redis.Error.CLOSED), failure)
        self.assertTrue(Redis.Error.is_retry_safe(failure))
        self.assertEqual((replies, n_written), ([], 0))

    # -- errors ---------------------------------------------------------------

    def test_server_error(self):
        self.pool.command_sync(['SET', 's', 'string'])
        with self.assertRaises(GLib.Error) as cm:
            self.pool.command_sync(['LPUSH', 's', 'x'])
        e = cm.exception
        self.assertTrue(e.matches(Redis.error_quark(), Redis.Error.SERVER))
        self.assertEqual(e.domain, 'redis-error-quark')
        self.assertEqual(e.code, int(Redis.Error.SERVER))
        self.assertTrue(e.message.startswith('WRONGTYPE'), e.message)
        self.assertEqual(Redis.error_get_server_prefix(e), 'WRONGTYPE')
        with self.assertRaises(GLib.Error) as cm:
            run_async(self.pool.command_async, self.pool.command_finish, ['NOSUCHCOMMAND'])
        self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.SERVER))
        self.assertEqual(Redis.error_get_server_prefix(cm.exception), 'ERR')

    def test_server_text_not_utf8(self):
        # Issue 16: server text that is not UTF-8, or holds control
        # characters, reaches GError messages and to_string() escaped; the
        # raw bytes stay in the reply.
        script = "return redis.error_reply('ERR ' .. string.char(255, 254, 27))"
        with self.assertRaises(GLib.Error) as cm:
            self.pool.command_sync(['EVAL', script, '0'])
        e = cm.exception
        self.assertTrue(e.matches(Redis.error_quark(), Redis.Error.SERVER), e)
        self.assertEqual(e.message, 'ERR \\xff\\xfe\\x1b')
        self.assertEqual(Redis.error_get_server_prefix(e), 'ERR')
        with self.assertRaises(GLib.Error) as cm:
            run_async(self.pool.command_async, self.pool.command_finish, ['EVAL', script, '0'])
        self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.SERVER))
        self.assertEqual(cm.exception.message, 'ERR \\xff\\xfe\\x1b')

        res = self.pool.pipeline_sync(Redis.Batch().add(['EVAL', script, '0']))
        self.assertEqual(res[0].get_kind(), Redis.ReplyKind.ERROR)
        self.assertEqual(res[0].to_string(), '(error) ERR \\xff\\xfe\\x1b')
        self.assertEqual(res[0].get_bytes().get_data(), b'ERR \xff\xfe\x1b')
        self.assertEqual(res[0].get_error_prefix(), 'ERR')

        r = self.pool.command_sync(['EVAL', 'return redis.status_reply(string.char(255, 254))', '0'])
        self.assertEqual(r.get_kind(), Redis.ReplyKind.STATUS)
        self.assertEqual(r.to_string(), '\\xff\\xfe')
        self.assertIsInstance(str(r), str)
        self.assertEqual(r.get_bytes().get_data(), b'\xff\xfe')
        self.assertEqual(r.to_variant().get_type_string(), 's')

    def test_state_command_refused_on_pool(self):
        with self.assertRaises(GLib.Error) as cm:
            self.pool.command_sync(['WATCH', 'k'])
        self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.INVALID_ARGUMENT))

    def test_blocking_command_on_pool(self):
        # Runs on a dedicated connection; its deadline includes the block time.
        self.assertTrue(self.pool.command_sync(['BLPOP', 'empty', '0.1']).is_nil())

    def test_timeout(self):
        pool = Redis.Pool(port=PORT, pool_size=1, command_timeout=200)
        pool.init(None)
        try:
            t0 = GLib.get_monotonic_time()
            with self.assertRaises(GLib.Error) as cm:
                pool.command_sync(['DEBUG', 'SLEEP', '0.5'])
            elapsed_ms = (GLib.get_monotonic_time() - t0) / 1000
            self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.TIMEOUT),
                            cm.exception)
            self.assertLess(elapsed_ms, 450)
            with self.assertRaises(GLib.Error) as cm:
                run_async(pool.command_async, pool.command_finish, ['DEBUG', 'SLEEP', '0.5'])
            self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.TIMEOUT))
            # The pool is still usable once the server is awake again.
            self.assertTrue(spin_until(lambda: self._ping_ok(pool), 5))
        finally:
            pool.close_sync(None)

    @staticmethod
    def _ping_ok(pool):
        try:
            return pool.command_sync(['PING']).get_string() == 'PONG'
        except GLib.Error:
            return False

    def test_cancellation(self):
        cancellable = Gio.Cancellable()
        GLib.timeout_add(50, lambda: (cancellable.cancel(), GLib.SOURCE_REMOVE)[1])
        t0 = GLib.get_monotonic_time()
        with self.assertRaises(GLib.Error) as cm:
            run_async(self.pool.command_async, self.pool.command_finish,
                      ['DEBUG', 'SLEEP', '0.3'], cancellable=cancellable)
        elapsed_ms = (GLib.get_monotonic_time() - t0) / 1000
        self.assertTrue(cm.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED),
                        cm.exception)
        self.assertLess(elapsed_ms, 280)
        # Already cancelled: a sync call fails at once.
        with self.assertRaises(GLib.Error) as cm:
            self.pool.command_sync(['PING'], cancellable)
        self.assertTrue(cm.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))
        self.assertTrue(spin_until(lambda: self._ping_ok(self.pool), 5))

    # -- signals and info -----------------------------------------------------

    def test_connection_signals(self):
        pool = Redis.Pool(port=PORT, pool_size=2, backoff_initial=50)
        pool.init(None)
        admin = Redis.Connection.new_sync(URL, None)
        lost, replaced = [], []
        h1 = pool.connect('connection-lost', lambda p, index, error: lost.append((index, error)))
        h2 = pool.connect('connection-replaced', lambda p, index: replaced.append(index))
        try:
            info = pool.get_info().unpack()
            self.assertIsInstance(info, dict)
            self.assertEqual(info['size'], 2)
            self.assertEqual(info['active'], 2)
            conns = info['connections']
            self.assertEqual([c['index'] for c in conns], [0, 1])
            victim = conns[1]['client-id']
            self.assertGreater(victim, 0)
            self.assertGreater(admin.get_client_id(), 0)
            r = admin.command_sync(['CLIENT', 'KILL', 'ID', str(victim), 'SKIPME', 'no'])
            self.assertEqual(r.get_integer(), 1)
            self.assertTrue(spin_until(lambda: replaced, 10), 'no connection-replaced')
            self.assertEqual([i for i, _ in lost], [1])
            self.assertIsInstance(lost[0][1], GLib.Error)
            self.assertEqual(replaced, [1])
            info = pool.get_info().unpack()
            self.assertEqual(info['active'], 2)
            self.assertGreaterEqual(info['reconnects'], 1)
            new_id = info['connections'][1]['client-id']
            self.assertNotEqual(new_id, victim)
            self.assertGreater(new_id, 0)
            self.assertEqual(pool.command_sync(['PING']).get_string(), 'PONG')
        finally:
            pool.disconnect(h1)
            pool.disconnect(h2)
            lost.clear()
            admin.close_sync(None)
            pool.close_sync(None)

    def test_info(self):
        info = self.pool.get_info()
        self.assertEqual(info.get_type_string(), 'a{sv}')
        d = info.unpack()
        for key in ('size', 'active', 'strategy', 'in-flight', 'queued', 'reconnects',
                    'leased', 'closed', 'connections'):
            self.assertIn(key, d)
        self.assertEqual(d['strategy'], 'round-robin')
        self.assertFalse(d['closed'])
        self.assertEqual(len(d['connections']), 3)
        self.assertTrue(all(c['state'] == 'ready' for c in d['connections']))

    # -- leases ---------------------------------------------------------------

    def test_lease_watch_failed(self):
        self.pool.command_sync(['SET', 'k', '1'])
        lease = self.pool.acquire_sync(None)
        try:
            self.assertIsInstance(lease, Redis.Connection)
            self.assertEqual(lease.get_state(), Redis.ConnectionState.READY)
            self.assertEqual(self.pool.get_info().unpack()['leased'], 1)
            self.assertEqual(lease.command_sync(['WATCH', 'k']).get_string(), 'OK')
            self.assertEqual(lease.command_sync(['GET', 'k']).get_string(), '1')
            self.pool.command_sync(['SET', 'k', 'changed'])
            with self.assertRaises(GLib.Error) as cm:
                lease.transaction_sync(Redis.Batch().add(['SET', 'k', '2']))
            self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.WATCH_FAILED),
                            cm.exception)
        finally:
            self.pool.release(lease)
        self.assertEqual(self.pool.command_sync(['GET', 'k']).get_string(), 'changed')
        # Lease again, asynchronously; WATCH without a conflict succeeds.
        lease = run_async(self.pool.acquire_async, self.pool.acquire_finish)
        try:
            lease.command_sync(['WATCH', 'k'])
            res = lease.transaction_sync(Redis.Batch().add(['SET', 'k', '3']))
            self.assertEqual(res[0].get_string(), 'OK')
        finally:
            self.pool.release(lease)
        del lease
        # The reset after release (DISCARD, UNWATCH, SELECT) is asynchronous.
        self.assertTrue(spin_until(lambda: self.pool.get_info().unpack()['leased'] == 0, 5))

    # -- close ----------------------------------------------------------------

    def test_close(self):
        self.assertTrue(run_async(self.pool.close_async, self.pool.close_finish))
        self.assertTrue(self.pool.get_info().unpack()['closed'])
        with self.assertRaises(GLib.Error) as cm:
            self.pool.command_sync(['PING'])
        self.assertTrue(cm.exception.matches(Redis.error_quark(), Redis.Error.CLOSED), cm.exception)


if __name__ == '__main__':
    unittest.main(verbosity=2)
