#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Sentinel from PyGObject (3.42): the sentinels / master-name / role /
# sentinel-password properties, Redis.ServerRole, the redis+sentinel://
# and rediss+sentinel:// URIs (tls-server-name), the primary-changed signal, and a clear CONNECT_FAILED when no
# sentinel answers. Discovery and failover against real sentinels are
# tested from C (tests/test-sentinel.c).

import socket
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Redis  # noqa: E402


def refused_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class SentinelTest(unittest.TestCase):
    def test_properties(self):
        pool = Redis.Pool(sentinels=['127.0.0.1:26379', '[::1]:26380'],
                          master_name='mymaster', role=Redis.ServerRole.REPLICA,
                          sentinel_username='su', sentinel_password='secret')
        self.assertEqual(list(pool.props.sentinels), ['127.0.0.1:26379', '[::1]:26380'])
        self.assertEqual(pool.props.master_name, 'mymaster')
        self.assertEqual(pool.props.role, Redis.ServerRole.REPLICA)
        self.assertEqual(pool.props.sentinel_username, 'su')
        self.assertNotIn('secret', pool.props.uri)
        # The signal exists with its two addresses.
        seen = []
        pool.connect('primary-changed', lambda p, old, new: seen.append((old, new)))

    def test_uri(self):
        conn = Redis.Connection(uri='redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/grp/3'
                                    '?sentinel_password=spw&role=primary')
        self.assertEqual(list(conn.props.sentinels), ['127.0.0.1:1', '127.0.0.1:2'])
        self.assertEqual(conn.props.master_name, 'grp')
        self.assertEqual(conn.props.database, 3)
        self.assertEqual(conn.props.role, Redis.ServerRole.PRIMARY)
        self.assertNotIn('pw', conn.props.uri)

    def test_uri_tls(self):
        # rediss+sentinel:// sets tls; tls_server_name is the tls-server-name
        # property; both are printed back, the passwords never.
        conn = Redis.Connection(uri='rediss+sentinel://:pw@127.0.0.1:1/grp'
                                    '?tls_server_name=redis.example&sentinel_password=spw')
        self.assertTrue(conn.props.tls)
        self.assertEqual(conn.props.tls_server_name, 'redis.example')
        uri = conn.props.uri
        self.assertTrue(uri.startswith('rediss+sentinel://127.0.0.1:1/grp/0?'), uri)
        self.assertIn('tls_server_name=redis.example', uri)
        self.assertNotIn('pw', uri)
        again = Redis.Connection(uri=uri)
        self.assertTrue(again.props.tls)
        self.assertEqual(again.props.tls_server_name, 'redis.example')

    def test_no_sentinel_answers(self):
        a, b = refused_port(), refused_port()
        with self.assertRaises(GLib.Error) as cm:
            Redis.Connection.new_sync(
                f'redis+sentinel://127.0.0.1:{a},127.0.0.1:{b}/grp?sentinel_password=spw-hidden',
                None)
        err = cm.exception
        self.assertTrue(err.matches(Redis.error_quark(), Redis.Error.CONNECT_FAILED))
        self.assertIn(f'127.0.0.1:{a}', err.message)
        self.assertIn(f'127.0.0.1:{b}', err.message)
        self.assertNotIn('spw-hidden', err.message)


if __name__ == '__main__':
    unittest.main()
