#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Redis.Subscriber from PyGObject (3.42) against a real redis-server.
# Run through tests/with-redis-server.py, which exports REDIS_PORT/REDIS_URL,
# with the overrides (bindings/python/gi/overrides/Redis.py) on the path, as
# meson does: the str/bytes convenience calls come from there.

import sys
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Redis  # noqa: E402

from harness import (PORT, URL, assert_finalized, assert_no_live_replies,  # noqa: E402
                     run_async, spin_until, watch_finalized)


def drain(ms=50):
    """Spin the main loop for ms milliseconds: after a PING round trip on
    the subscriber, whatever was on its way has arrived by then."""
    end = GLib.get_monotonic_time() + ms * 1000
    spin_until(lambda: GLib.get_monotonic_time() > end, 5)


@unittest.skipUnless(PORT, 'REDIS_PORT not set: run through tests/with-redis-server.py')
class SubscriberTest(unittest.TestCase):

    def setUp(self):
        self.admin = Redis.Pool(port=PORT, pool_size=1)
        self.admin.init(None)
        self.sub = Redis.Subscriber(uri=URL, backoff_initial=20, backoff_max=200)
        self.sub.init(None)
        self.messages = []
        self.handler = self.sub.connect('message', self._on_message)

    def _on_message(self, sub, message):
        self.assertIs(sub, self.sub)
        self.messages.append(message)

    def tearDown(self):
        sub = self.sub
        sub.disconnect(self.handler)
        del self.sub
        self.messages.clear()
        sub.close()
        finalized = watch_finalized(sub)
        del sub
        assert_finalized(self, finalized, 'RedisSubscriber')
        self.assertTrue(self.admin.close_sync(None))
        del self.admin
        assert_no_live_replies(self)

    def publish(self, channel, payload):
        """PUBLISH, binary-safe; the number of receivers."""
        reply = self.admin.command_bytes_sync(
            [GLib.Bytes.new(x if isinstance(x, bytes) else x.encode())
             for x in (b'PUBLISH', channel, payload)], None)
        return reply.get_integer()

    def numsub(self, channel):
        reply = self.admin.command_bytes_sync(
            [GLib.Bytes.new(x if isinstance(x, bytes) else x.encode())
             for x in (b'PUBSUB', b'NUMSUB', channel)], None)
        return reply.get_element(1).get_integer()

    # -- tests -----------------------------------------------------------------

    def test_detailed_and_undetailed(self):
        news, sport = [], []
        h1 = self.sub.connect('message::news', lambda s, m: news.append(m.get_payload_text()))
        h2 = self.sub.connect('message::sport', lambda s, m: sport.append(m.get_payload_text()))
        self.assertTrue(self.sub.subscribe_sync(['news', 'sport', 'other'], None))
        self.assertEqual(sorted(self.sub.dup_subscriptions(Redis.SubscriptionKind.CHANNEL)),
                         ['news', 'other', 'sport'])
        for i in range(3):
            self.assertEqual(self.publish('news', 'n%d' % i), 1)
        self.publish('sport', 's0')
        self.publish('other', 'o0')
        self.assertTrue(spin_until(lambda: len(self.messages) == 5))
        self.assertEqual(news, ['n0', 'n1', 'n2'])
        self.assertEqual(sport, ['s0'])
        self.assertEqual([m.get_payload_text() for m in self.messages],
                         ['n0', 'n1', 'n2', 's0', 'o0'])
        m = self.messages[0]
        self.assertEqual(m.get_kind(), Redis.SubscriptionKind.CHANNEL)
        self.assertEqual(m.get_channel(), 'news')
        self.assertIsNone(m.get_pattern())
        self.sub.disconnect(h1)
        self.sub.disconnect(h2)

    def test_async_subscribe(self):
        got = []
        h = self.sub.connect('message::async', lambda s, m: got.append(m.get_payload_text()))
        self.assertTrue(run_async(self.sub.subscribe_async, self.sub.subscribe_finish, ['async']))
        self.assertEqual(self.numsub('async'), 1)
        self.publish('async', 'hello')
        self.assertTrue(spin_until(lambda: got == ['hello']))
        self.assertTrue(run_async(self.sub.ping_async, self.sub.ping_finish))
        self.sub.disconnect(h)

    def test_binary_payload_bytes_form(self):
        channel = b'bin\x00\xffchan'
        payload = b'\x00\xff\x00zero\xff'
        self.assertTrue(self.sub.subscribe_bytes_sync(
            Redis.SubscriptionKind.CHANNEL, [GLib.Bytes.new(channel)], None))
        self.assertEqual(self.publish(channel, payload), 1)
        self.assertTrue(spin_until(lambda: len(self.messages) == 1))
        m = self.messages[0]
        self.assertEqual(m.get_payload().get_data(), payload)
        self.assertEqual(m.get_channel_bytes().get_data(), channel)
        self.assertTrue(self.sub.unsubscribe_bytes_sync(
            Redis.SubscriptionKind.CHANNEL, [GLib.Bytes.new(channel)], None))
        self.assertEqual(self.numsub(channel), 0)

    def test_pattern_message(self):
        detailed = []
        h = self.sub.connect('message::news.*', lambda s, m: detailed.append(m))
        self.assertTrue(self.sub.psubscribe_sync(['news.*'], None))
        self.assertEqual(self.publish('news.sport', 'goal'), 1)
        self.assertTrue(spin_until(lambda: len(self.messages) == 1))
        m = self.messages[0]
        self.assertEqual(m.get_kind(), Redis.SubscriptionKind.PATTERN)
        self.assertEqual(m.get_pattern(), 'news.*')
        self.assertEqual(m.get_pattern_bytes().get_data(), b'news.*')
        self.assertEqual(m.get_channel(), 'news.sport')
        self.assertEqual(m.get_payload_text(), 'goal')
        self.assertEqual(len(detailed), 1)
        self.assertTrue(self.sub.punsubscribe_sync(None, None))
        self.assertEqual(self.sub.dup_subscriptions(Redis.SubscriptionKind.PATTERN), [])
        self.sub.disconnect(h)

    def test_resubscribe_after_client_kill(self):
        lost, resubscribed, notified = [], [], []
        h1 = self.sub.connect('connection-lost', lambda s, e: lost.append(e))
        h2 = self.sub.connect('resubscribed', lambda s: resubscribed.append(True))
        h3 = self.sub.connect('notify::connected', lambda s, p: notified.append(s.props.connected))
        self.assertTrue(self.sub.subscribe_sync(['news'], None))
        self.assertTrue(self.sub.psubscribe_sync(['p.*'], None))
        self.assertTrue(self.sub.props.connected)
        killed = self.admin.command_sync(['CLIENT', 'KILL', 'TYPE', 'pubsub'], None)
        self.assertEqual(killed.get_integer(), 1)
        self.assertTrue(spin_until(lambda: resubscribed), 'resubscribed not emitted')
        self.assertEqual(len(lost), 1)
        self.assertTrue(lost[0].matches(Redis.error_quark(), Redis.Error.CONNECTION_LOST), lost[0])
        self.assertTrue(self.sub.get_connected())
        # One notification for the loss and one for the return (a handler
        # reads the current value, which may already be True again: the
        # property is not a snapshot of the moment of the notification).
        self.assertGreaterEqual(len(notified), 2)
        self.assertEqual(notified[-1], True)
        self.assertEqual(self.numsub('news'), 1)
        self.publish('news', 'after')
        self.publish('p.x', 'after')
        self.assertTrue(spin_until(lambda: len(self.messages) == 2))
        # Nothing more comes of it.
        self.assertTrue(self.sub.ping_sync(None))
        drain()
        self.assertEqual((len(lost), len(resubscribed)), (1, 1))
        for h in (h1, h2, h3):
            self.sub.disconnect(h)

    def test_unsubscribe_stops_delivery(self):
        self.assertTrue(self.sub.subscribe_sync(['a', 'b'], None))
        self.publish('a', 'before')
        self.assertTrue(spin_until(lambda: len(self.messages) == 1))
        # Published before the unsubscribe is even sent: never emitted.
        for i in range(100):
            self.publish('a', 'late%d' % i)
        self.assertTrue(self.sub.unsubscribe_sync(['a'], None))
        self.assertEqual(self.numsub('a'), 0)
        self.assertEqual(self.publish('a', 'after'), 0)
        self.publish('b', 'marker')
        self.assertTrue(spin_until(lambda: self.messages[-1].get_channel() == 'b'))
        self.assertTrue(self.sub.ping_sync(None))
        drain()
        channels = [m.get_channel() for m in self.messages]
        self.assertEqual(channels, ['a', 'b'], channels)
        self.assertEqual(self.sub.dup_subscriptions(Redis.SubscriptionKind.CHANNEL), ['b'])

    def test_override_str_and_bytes_names(self):
        self.assertIn('gi.overrides.Redis', sys.modules)
        self.assertTrue(self.sub.subscribe('text', b'raw\xff'))
        self.assertTrue(self.sub.psubscribe(['pat.*']))
        self.assertEqual(self.numsub('text'), 1)
        self.assertEqual(self.publish(b'raw\xff', b'\x00'), 1)
        self.assertEqual(self.publish('pat.1', 'p'), 1)
        self.assertTrue(spin_until(lambda: len(self.messages) == 2))
        self.assertEqual(self.messages[0].get_channel_bytes().get_data(), b'raw\xff')
        self.assertEqual(self.messages[0].get_payload().get_data(), b'\x00')
        with self.assertRaises(TypeError):
            self.sub.subscribe()
        with self.assertRaises(TypeError):
            self.sub.subscribe(3)
        self.assertTrue(self.sub.unsubscribe())
        self.assertTrue(self.sub.punsubscribe('pat.*'))
        self.assertEqual(self.sub.dup_subscriptions(Redis.SubscriptionKind.CHANNEL), [])
        self.assertEqual(self.sub.dup_subscriptions(Redis.SubscriptionKind.PATTERN), [])
        self.assertEqual(self.publish('text', 'x'), 0)

    def test_from_pool(self):
        sub = self.admin.create_subscriber()
        self.assertFalse(sub.get_connected())
        sub.init(None)
        try:
            self.assertTrue(sub.get_connected())
            self.assertEqual(sub.props.port, PORT)
            self.assertTrue(sub.ping_sync(None))
        finally:
            sub.close()

    def test_new_async(self):
        sub = run_async(Redis.Subscriber.new_async, Redis.Subscriber.new_finish, URL)
        try:
            self.assertIsInstance(sub, Redis.Subscriber)
            self.assertTrue(sub.subscribe_sync(['x'], None))
            self.assertEqual(self.numsub('x'), 1)
        finally:
            sub.close()

    def test_wrong_server_fails(self):
        with self.assertRaises(GLib.Error) as cm:
            Redis.Subscriber.new_sync('redis://127.0.0.1:1', None)
        self.assertTrue(Redis.error_matches(cm.exception), cm.exception)


if __name__ == '__main__':
    unittest.main(verbosity=2)
