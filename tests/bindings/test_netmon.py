#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Network awareness from PyGObject (3.42): the network-monitor property of
# Redis.Pool and Redis.Subscriber, and get_info()'s network-available,
# against a real redis-server on loopback (always reachable: the monitor
# is not asked). Run through tests/with-redis-server.py (REDIS_PORT). The
# offline/online behaviour is tested from C (tests/test-netmon.c), which
# can make a loopback server monitored.

import os
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import Gio, Redis  # noqa: E402

PORT = int(os.environ.get('REDIS_PORT', '0'))


class NetmonTest(unittest.TestCase):
    def test_default_monitor(self):
        pool = Redis.Pool(port=PORT, pool_size=1)
        pool.init(None)
        try:
            self.assertIs(pool.props.network_monitor, Gio.NetworkMonitor.get_default())
            info = pool.get_info().unpack()
            self.assertIs(info['network-available'], True)
            self.assertEqual(pool.command_sync(['PING']).get_string(), 'PONG')
        finally:
            pool.close_sync(None)

    def test_explicit_monitor(self):
        monitor = Gio.NetworkMonitor.get_default()
        pool = Redis.Pool(port=PORT, pool_size=1, network_monitor=monitor)
        pool.init(None)
        try:
            self.assertIs(pool.props.network_monitor, monitor)
            self.assertIs(pool.get_info().unpack()['network-available'], True)
            sub = pool.create_subscriber()
            self.assertIs(sub.props.network_monitor, monitor)
        finally:
            pool.close_sync(None)

    def test_subscriber_property(self):
        monitor = Gio.NetworkMonitor.get_default()
        sub = Redis.Subscriber(port=PORT, network_monitor=monitor)
        self.assertIs(sub.props.network_monitor, monitor)
        sub.init(None)
        self.assertTrue(sub.get_connected())
        sub.close()


if __name__ == '__main__':
    unittest.main()
