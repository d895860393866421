#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Redis.ClusterPool from PyGObject (3.42): the basic flow against a real
# 3-primary cluster on loopback that this test starts itself with
# cluster_harness.py (redis-server
# --cluster-enabled yes, slots given with CLUSTER ADDSLOTSRANGE, nodes joined
# with CLUSTER MEET): routing by key, hash tags, CROSSSLOT refused
# client-side, a pipeline across the nodes, the list model of node pools,
# get_info(), Redis.cluster_key_slot(), sharded pub/sub
# (Redis.ClusterSubscriber) and the address-mapping hook set between new and
# init (a Python callable, scope notified), and read_from=replica on a
# cluster with a replica per primary (Cluster(replicas=1)): the list model
# shows the replicas' pools, a GET is served by a replica (INFO
# commandstats), a SET by the primary. Redirections and moved slots are tested from C
# (tests/test-cluster.c, tests/test-cluster-subscriber.c).

import time
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Redis  # noqa: E402

from cluster_harness import RANGES, SCALE, Cluster, cli  # noqa: E402


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The cluster is started by tests/bindings/cluster_harness.py,
        # shared with the GJS and Vala cluster tests.
        cls.cluster = Cluster().start()
        cls.ports = cls.cluster.ports

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

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

    def announce(self, host, endpoint_type):
        # What the nodes announce to clients (slot map, MOVED, ASK); the
        # cluster bus keeps the real addresses. Waits for the gossip.
        for port in self.ports:
            cli(port, 'CONFIG', 'SET', 'cluster-announce-hostname', host)
            cli(port, 'CONFIG', 'SET', 'cluster-preferred-endpoint-type', endpoint_type)
        deadline = time.monotonic() + 10 * SCALE
        while not all(cli(p, 'CLUSTER', 'SLOTS').count(host or '127.0.0.1') >= 3
                      for p in self.ports):
            self.assertLess(time.monotonic(), deadline, 'the nodes never announced ' + host)
            time.sleep(0.05)

    def test_address_map(self):
        # The servers listen on 127.0.0.1 only and announce 127.0.0.2: the
        # hook, set between new and init, maps the announced addresses back.
        seen = []

        def to_loopback(host, port):
            seen.append(host)
            return '127.0.0.1:%d' % port if host == '127.0.0.2' else None

        self.announce('127.0.0.2', 'hostname')
        try:
            cluster = Redis.ClusterPool(uri=self.uri())
            cluster.set_address_map(to_loopback)
            self.assertTrue(cluster.init(None))
            for i in range(30):
                cluster.command_sync(['SET', 'map:%d' % i, str(i)], None)
            self.assertEqual(cluster.command_sync(['GET', 'map:7'], None).get_string(), '7')
            self.assertIn('127.0.0.2', seen)
            info = cluster.get_info().unpack()
            self.assertTrue(all(a.startswith('127.0.0.1:') for a in info['nodes']), info['nodes'])
            cluster.close_sync(None)
        finally:
            self.announce('', 'ip')

    def test_sharded_pubsub(self):
        # One shard channel in each node's slots: each is subscribed on its
        # owner, and an SPUBLISH through the cluster pool reaches it with
        # the channel as the signal's detail.
        cluster = Redis.ClusterPool.new_sync(self.uri(), None)
        sub = cluster.create_subscriber()
        names = []
        for first, last in [(0, 5460), (5461, 10922), (10923, 16383)]:
            names.append(next('py-shard-%d' % n for n in range(100000)
                              if first <= Redis.cluster_key_slot(b'py-shard-%d' % n) <= last))
        seen = {}
        for name in names:
            sub.connect('message::' + name,
                        lambda s, m, name=name: seen.setdefault(name, []).append(
                            (m.get_kind(), m.get_channel(), m.get_payload_text())))
        sub.subscribe_sync(Redis.SubscriptionKind.SHARD, names, None)
        self.assertEqual(sub.dup_subscriptions(Redis.SubscriptionKind.SHARD), sorted(names))
        for port, name in zip(self.ports, names):
            self.assertEqual(sub.dup_node_address(Redis.SubscriptionKind.SHARD, name),
                             '127.0.0.1:%d' % port)
            self.assertEqual(cluster.command_sync(['SPUBLISH', name, 'hi ' + name],
                                                  None).get_integer(), 1)
        loop = GLib.MainLoop()
        GLib.timeout_add(50, lambda: loop.quit() if len(seen) == 3 else True)
        GLib.timeout_add(10000 * SCALE, loop.quit)
        loop.run()
        self.assertEqual(seen, {name: [(Redis.SubscriptionKind.SHARD, name, 'hi ' + name)]
                                for name in names})

        sub.unsubscribe_sync(Redis.SubscriptionKind.SHARD, None, None)
        self.assertEqual(cluster.command_sync(['SPUBLISH', names[0], 'gone'],
                                              None).get_integer(), 0)
        sub.close()
        cluster.close_sync(None)


class ClusterReplicaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(replicas=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_read_from_replica(self):
        primaries, replicas = self.cluster.ports[:3], self.cluster.replica_ports
        uri = 'redis://127.0.0.1:%d?read_from=replica' % primaries[0]
        cluster = Redis.ClusterPool.new_sync(uri, None)
        try:
            self.assertEqual(cluster.get_read_from(), Redis.ClusterReadFrom.REPLICA)
            # A replica is listed once its primary says it is online.
            deadline = time.monotonic() + 20 * SCALE
            while (cluster.get_info().unpack()['replicas'] < len(replicas) and
                   time.monotonic() < deadline):
                time.sleep(0.1)
                self._refresh(cluster)
            self.assertEqual(cluster.get_info().unpack()['replicas'], len(replicas))
            # The list model: a pool per node, the replicas' too.
            self.assertEqual(cluster.get_n_items(), len(primaries) + len(replicas))
            self.assertEqual(len(list(cluster)), 6)

            for port in self.cluster.ports:
                cli(port, 'CONFIG', 'RESETSTAT')
            key = 'py:replica'
            owner = primaries[[i for i, (first, last) in enumerate(RANGES)
                               if first <= Redis.cluster_key_slot(key.encode()) <= last][0]]
            replica = replicas[primaries.index(owner)]
            self.assertEqual(cluster.command_sync(['SET', key, 'v'], None).get_string(), 'OK')
            self.assertEqual(cli(owner, 'GET', key), 'v')
            # Replication is asynchronous: wait until the replica has it.
            self.assertEqual(cli(owner, 'WAIT', '1', str(10000 * SCALE)), '1')
            self.assertEqual(cluster.command_sync(['GET', key], None).get_string(), 'v')
            self.assertEqual(self._calls(replica, 'get'), 1)
            self.assertEqual(self._calls(owner, 'get'), 1)   # ours, above, by redis-cli
            # The SET ran on the primary (the replica counts it too: it
            # runs the replication stream, so it proves nothing there).
            self.assertEqual(self._calls(owner, 'set'), 1)
        finally:
            cluster.close_sync(None)

    @staticmethod
    def _refresh(cluster):
        loop = GLib.MainLoop()
        cluster.refresh_async(None, lambda c, r: (c.refresh_finish(r), loop.quit()))
        loop.run()

    @staticmethod
    def _calls(port, command):
        for line in cli(port, 'INFO', 'commandstats').splitlines():
            if line.startswith('cmdstat_%s:' % command):
                return int(line.split('calls=')[1].split(',')[0])
        return 0


if __name__ == '__main__':
    unittest.main(verbosity=2)
