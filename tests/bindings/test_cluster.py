#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Redis.ClusterPool from PyGObject (3.42): the basic flow against a real
# 3-primary cluster on loopback that this test starts itself (redis-server
# --cluster-enabled yes, slots given with CLUSTER ADDSLOTSRANGE, nodes joined
# with CLUSTER MEET): routing by key, hash tags, CROSSSLOT refused
# client-side, a pipeline across the nodes, the list model of node pools,
# get_info() and Redis.cluster_key_slot(). Redirections are tested from C
# (tests/test-cluster.c).

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Redis  # noqa: E402

SERVER = os.environ.get('REDIS_SERVER') or shutil.which('redis-server')
CLI = os.environ.get('REDIS_CLI') or shutil.which('redis-cli')
SCALE = (max(1, int(os.environ.get('REDISPOOL_TEST_TIMEOUT_MULTIPLIER', '1'))) *
         max(1, int(os.environ.get('REDISPOOL_TEST_LOAD_FACTOR', '1'))))


def free_port():
    # Below 55536: the cluster bus port is the data port + 10000 by default.
    while True:
        port = 20000 + int.from_bytes(os.urandom(2), 'big') % 30000
        with socket.socket() as s, socket.socket() as bus:
            try:
                s.bind(('127.0.0.1', port))
                bus.bind(('127.0.0.1', port + 10000))
            except OSError:
                continue
            return port


def cli(port, *args):
    out = subprocess.run([CLI, '-h', '127.0.0.1', '-p', str(port)] + list(args),
                         check=True, capture_output=True, text=True,
                         timeout=10 * SCALE).stdout
    return out.strip()


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='redispool-cluster-')
        cls.procs = []
        cls.ports = []
        try:
            cls.start_cluster()
        except BaseException:
            cls.tearDownClass()   # not called when setUpClass fails
            raise

    @classmethod
    def start_node(cls):
        # A port found free may be taken before redis-server binds it (or
        # its bus port, +10000, may be in use): a server that exits is
        # retried on another port.
        for attempt in range(5):
            port = free_port()
            workdir = os.path.join(cls.tmp, str(port))
            os.mkdir(workdir)
            proc = subprocess.Popen(
                [SERVER, '--port', str(port), '--bind', '127.0.0.1', '--save', '',
                 '--appendonly', 'no', '--dir', workdir, '--cluster-enabled', 'yes',
                 '--cluster-node-timeout', '1000', '--logfile', 'redis.log'],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cls.procs.append(proc)
            deadline = time.monotonic() + 10 * SCALE
            while proc.poll() is None:
                try:
                    if cli(port, 'PING') == 'PONG':
                        cls.ports.append(port)
                        return port
                except subprocess.CalledProcessError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError('redis-server on port %d did not start' % port)
                time.sleep(0.05)
        raise RuntimeError('no redis-server started in 5 attempts')

    @classmethod
    def start_cluster(cls):
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        for first, last in ranges:
            port = cls.start_node()
            assert cli(port, 'CLUSTER', 'ADDSLOTSRANGE', str(first), str(last)) == 'OK'
        for port in cls.ports[1:]:
            assert cli(cls.ports[0], 'CLUSTER', 'MEET', '127.0.0.1', str(port)) == 'OK'
        deadline = time.monotonic() + 20 * SCALE
        while not all('cluster_state:ok' in cli(p, 'CLUSTER', 'INFO') and
                      'cluster_known_nodes:3' in cli(p, 'CLUSTER', 'INFO')
                      for p in cls.ports):
            if time.monotonic() > deadline:
                raise RuntimeError('the cluster did not form')
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        for proc in cls.procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def uri(self):
        return 'redis://127.0.0.1:%d?addr=127.0.0.1:%d&pool_size=2' % (self.ports[0], self.ports[1])

    def test_key_slot(self):
        self.assertEqual(Redis.cluster_key_slot(b'foo'), 12182)
        for key in [b'bar', b'{user1}.name', b'a{b}c', b'x{}{y}', '\u00e9t\u00e9'.encode()]:
            slot = int(cli(self.ports[0], 'CLUSTER', 'KEYSLOT', key.decode()))
            self.assertEqual(Redis.cluster_key_slot(key), slot)
        # Binary-safe: a NUL byte counts.
        self.assertNotEqual(Redis.cluster_key_slot(b'a\x00b'), Redis.cluster_key_slot(b'a'))
        self.assertEqual(Redis.cluster_key_slot(b'{user1}.name'),
                         Redis.cluster_key_slot(b'{user1}.mail'))

    def test_basic_flow(self):
        for port in self.ports:
            cli(port, 'FLUSHALL')
        cluster = Redis.ClusterPool.new_sync(self.uri(), None)
        try:
            self.assertEqual(cluster.get_n_items(), 3)
            self.assertEqual([pool.get_size() for pool in cluster], [2, 2, 2])
            for i in range(100):
                cluster.command_sync(['SET', 'py:%d' % i, str(i)], None)
            sizes = [int(cli(p, 'DBSIZE')) for p in self.ports]
            self.assertEqual(sum(sizes), 100)
            self.assertTrue(all(n > 0 for n in sizes))
            self.assertEqual(cluster.command_sync(['GET', 'py:42'], None).get_string(), '42')

            with self.assertRaises(GLib.Error) as caught:
                cluster.command_sync(['MGET', 'py:1', 'py:2', 'py:3'], None)
            self.assertTrue(caught.exception.matches(Redis.error_quark(),
                                                     Redis.Error.INVALID_ARGUMENT))

            batch = Redis.Batch()
            for i in range(30):
                batch.add(['GET', 'py:%d' % i])
            replies = cluster.pipeline_sync(batch, None)
            self.assertEqual([r.get_string() for r in replies], [str(i) for i in range(30)])

            info = cluster.get_info().unpack()
            self.assertEqual(info['slots-covered'], 16384)
            self.assertEqual(len(info['ranges']), 3)
            self.assertEqual(info['moved'], 0)
        finally:
            cluster.close_sync(None)

    def test_async(self):
        loop = GLib.MainLoop()
        got = {}

        def ready(source, result):
            got['cluster'] = Redis.ClusterPool.new_finish(result)
            got['cluster'].command_async(['INCR', '{async}n'], None, incremented)

        def incremented(source, result):
            got['value'] = source.command_finish(result).get_integer()
            loop.quit()

        Redis.ClusterPool.new_async(self.uri(), None, ready)
        GLib.timeout_add(10000 * SCALE, loop.quit)
        loop.run()
        self.assertEqual(got.get('value'), 1)
        got['cluster'].close_sync(None)


if __name__ == '__main__':
    unittest.main(verbosity=2)
