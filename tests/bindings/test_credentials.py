#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Credential rotation from PyGObject (3.42): Redis.Pool.set_credentials and
# Redis.Connection.set_credentials against a real redis-server whose ACL
# users change. Run through tests/with-redis-server.py (REDIS_PORT).
#
# ACL DELUSER disconnects every client authenticated as the deleted user,
# so a connection that was not re-authenticated in place would be lost
# (its client id would change, the pool would count a reconnect).

import sys
import unittest

import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Redis  # noqa: E402

from harness import PORT, spin_until  # noqa: E402

SECRETS = ('Py-S3cret-one', 'Py-S3cret-two', 'Py-S3cret-bad')


class CredentialsTest(unittest.TestCase):
    def setUp(self):
        # The admin connection: the default user (no password).
        self.admin = Redis.Connection(port=PORT)
        for user in ('py_one', 'py_two'):
            self.acl('ACL', 'DELUSER', user)

    def tearDown(self):
        for user in ('py_one', 'py_two'):
            self.acl('ACL', 'DELUSER', user)
        self.admin.close_sync(None)

    def acl(self, *argv):
        return self.admin.command_sync(list(argv))

    def add_user(self, user, password):
        r = self.acl('ACL', 'SETUSER', user, 'on', '>' + password, '~*', '&*', '+@all')
        self.assertEqual(r.get_string(), 'OK')

    def clients_of(self, user):
        text = self.acl('CLIENT', 'LIST').get_string()
        return text.count(' user=%s ' % user)

    def assert_no_secret(self, text):
        for s in SECRETS:
            self.assertNotIn(s, text)

    def test_pool_set_credentials(self):
        self.add_user('py_one', SECRETS[0])
        pool = Redis.Pool(port=PORT, pool_size=2, username='py_one', password=SECRETS[0],
                          backoff_initial=20, backoff_max=200)
        self.assertEqual(pool.command_sync(['ACL', 'WHOAMI']).get_string(), 'py_one')
        self.assertTrue(spin_until(lambda: pool.get_active_connections() == 2))
        reconnects = pool.get_info().unpack()['reconnects']

        self.add_user('py_two', SECRETS[1])
        pool.set_credentials('py_two', SECRETS[1])
        self.assertTrue(spin_until(lambda: self.clients_of('py_one') == 0))
        self.acl('ACL', 'DELUSER', 'py_one')
        for _ in range(4):
            self.assertEqual(pool.command_sync(['ACL', 'WHOAMI']).get_string(), 'py_two')
        self.assertEqual(pool.get_info().unpack()['reconnects'], reconnects)

        # No secret in what the pool shows; the password stays write-only.
        self.assert_no_secret(repr(pool.get_info().unpack()))
        self.assert_no_secret(pool.props.uri)
        with self.assertRaises(TypeError):
            pool.get_property('password')

        # Credentials the server refuses, then a reconnect: AUTH_FAILED,
        # with no secret in the message.
        pool.set_credentials('py_two', SECRETS[2])
        self.acl('CLIENT', 'KILL', 'USER', 'py_two')
        self.assertTrue(spin_until(lambda: pool.get_active_connections() == 0))

        def refused():
            try:
                pool.command_sync(['PING'])
            except GLib.Error as e:
                self.assert_no_secret(e.message)
                return e.matches(Redis.error_quark(), Redis.Error.AUTH_FAILED)
            return False
        self.assertTrue(spin_until(refused))

        pool.set_credentials('py_two', SECRETS[1])
        self.assertTrue(spin_until(lambda: pool.get_active_connections() == 2))
        self.assertEqual(pool.command_sync(['PING']).get_string(), 'PONG')
        pool.close_sync(None)

    def test_pool_provider(self):
        # A provider that answers later (from the main loop) with a token
        # it caches, refreshed when the request says it is stale; it fails
        # while `failing` is set.
        self.add_user('py_one', SECRETS[0])
        state = {'token': SECRETS[0], 'cached': None, 'asked': 0, 'stale': 0,
                 'failing': False}

        def provider(pool, request, tag):
            self.assertIsInstance(pool, Redis.Pool)
            self.assertEqual(tag, 'tag')
            state['asked'] += 1
            if request.get_stale():
                state['stale'] += 1

            def later():
                if state['failing']:
                    request.fail('token service down')
                else:
                    if state['cached'] is None or request.get_stale():
                        state['cached'] = state['token']
                    request.complete('py_one', state['cached'])
                return GLib.SOURCE_REMOVE
            GLib.timeout_add(5, later)

        # Not initialized yet: the provider is asked for the first connects.
        pool = Redis.Pool(port=PORT, pool_size=2, backoff_initial=20, backoff_max=200,
                          connect_mode=Redis.PoolConnectMode.BACKGROUND)
        pool.set_credentials_provider(provider, 'tag')
        pool.init(None)
        # The provider runs in this thread's main context: wait there.
        self.assertTrue(spin_until(lambda: pool.get_active_connections() == 2))
        self.assertEqual(state['asked'], 2)
        self.assertEqual(pool.command_sync(['ACL', 'WHOAMI']).get_string(), 'py_one')

        # A new token on the server, the cached one removed: the reconnects
        # are refused once, and the provider is asked again, as stale.
        state['token'] = SECRETS[1]
        self.acl('ACL', 'SETUSER', 'py_one', '>' + SECRETS[1], '<' + SECRETS[0])
        self.acl('CLIENT', 'KILL', 'USER', 'py_one')
        self.assertTrue(spin_until(lambda: pool.get_info().unpack()['reconnects'] == 2 and
                                   pool.get_active_connections() == 2))
        self.assertGreater(state['stale'], 0)

        # A failing provider: AUTH_FAILED, saying why, with no secret.
        state['failing'] = True
        self.acl('CLIENT', 'KILL', 'USER', 'py_one')
        box = {}

        def refused():
            loop = GLib.MainLoop()

            def done(p, res):
                try:
                    p.command_finish(res)
                except GLib.Error as e:
                    box['error'] = e
                loop.quit()
            pool.command_async(['PING'], None, done)
            loop.run()
            e = box.pop('error', None)
            return e is not None and e.matches(Redis.error_quark(), Redis.Error.AUTH_FAILED)
        self.assertTrue(spin_until(refused))
        state['failing'] = False
        self.assertTrue(spin_until(lambda: pool.get_active_connections() == 2))
        self.assert_no_secret(repr(pool.get_info().unpack()))
        pool.set_credentials_provider(None, None)
        pool.close_sync(None)

    def test_subscriber_rotation(self):
        # A pool's subscriber follows the pool's rotation at its next
        # reconnect (a subscribed connection cannot AUTH: the live one keeps
        # its session); then its own set_credentials and provider.
        self.add_user('py_one', SECRETS[0])
        pool = Redis.Pool(port=PORT, pool_size=1, username='py_one', password=SECRETS[0])
        sub = pool.create_subscriber()
        sub.init(None)
        seen = {'messages': 0, 'resubscribed': 0}

        def on_message(s, message):
            seen['messages'] += 1

        def on_resubscribed(s):
            seen['resubscribed'] += 1
        sub.connect('message', on_message)
        sub.connect('resubscribed', on_resubscribed)
        self.assertTrue(sub.subscribe_sync(['py:chan'], None))

        def message_flows():
            before = seen['messages']
            self.assertEqual(self.acl('PUBLISH', 'py:chan', 'hi').get_integer(), 1)
            self.assertTrue(spin_until(lambda: seen['messages'] == before + 1))

        def kill_and_resubscribe():
            before = seen['resubscribed']
            self.acl('CLIENT', 'KILL', 'TYPE', 'pubsub')
            self.assertTrue(spin_until(lambda: seen['resubscribed'] == before + 1))
            message_flows()

        message_flows()
        self.acl('ACL', 'SETUSER', 'py_one', '>' + SECRETS[1], '<' + SECRETS[0])
        pool.set_credentials('py_one', SECRETS[1])
        message_flows()
        kill_and_resubscribe()

        # Its own credentials, the pool gone.
        pool.close_sync(None)
        del pool
        self.acl('ACL', 'SETUSER', 'py_one', '>' + SECRETS[0], '<' + SECRETS[1])
        sub.set_credentials('py_one', SECRETS[0])
        kill_and_resubscribe()

        # Its own provider, asked at the reconnect.
        asked = []

        def provider(s, request, data):
            self.assertIsInstance(s, Redis.Subscriber)
            asked.append(data)
            request.complete('py_one', SECRETS[1])
        self.acl('ACL', 'SETUSER', 'py_one', '>' + SECRETS[1], '<' + SECRETS[0])
        sub.set_credentials_provider(provider, 'tag')
        kill_and_resubscribe()
        self.assertEqual(asked, ['tag'])
        sub.set_credentials_provider(None, None)
        sub.close()

    def test_connection_set_credentials(self):
        self.add_user('py_one', SECRETS[0])
        self.add_user('py_two', SECRETS[1])
        # A wrong password, replaced before the first use.
        conn = Redis.Connection(port=PORT, username='py_one', password=SECRETS[2])
        conn.set_credentials('py_one', SECRETS[0])
        self.assertEqual(conn.command_sync(['ACL', 'WHOAMI']).get_string(), 'py_one')
        client_id = conn.get_client_id()

        conn.set_credentials('py_two', SECRETS[1])
        self.assertEqual(conn.command_sync(['ACL', 'WHOAMI']).get_string(), 'py_two')
        self.acl('ACL', 'DELUSER', 'py_one')
        self.assertEqual(conn.command_sync(['PING']).get_string(), 'PONG')
        self.assertEqual(conn.get_client_id(), client_id)
        # username=None: the default user's password (here: none needed).
        conn.set_credentials(None, None)
        self.assertEqual(conn.command_sync(['PING']).get_string(), 'PONG')
        conn.close_sync(None)


if __name__ == '__main__':
    unittest.main(verbosity=2)
