// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Redis.Subscriber from GJS (1.74) against a real redis-server:
// `gjs -m test_subscriber.js`, run through tests/with-redis-server.py,
// which exports REDIS_PORT/REDIS_URL. Prints TAP.
//
// Redis comes from the promise module shipped with the library
// (redispool/gjs/redispool.js), so subscribe_async() and the others return
// promises when called without a callback; GJS 1.74 never lets a trailing
// nullable argument be omitted, so every call passes its cancellable.

import GLib from 'gi://GLib';
import Redis from '../../redispool/gjs/redispool.js';
import System from 'system';
import {PORT, URL, enc, assert, assertEq, sleep, waitFor, run} from './harness.js';

// A GBytes' content, as an Array.
const dataOf = bytes => Array.from(bytes.toArray());

// What a handler saw. The fixture keeps the RedisMessage wrappers and reads
// them only after the handler returned: the signal passes its boxed
// argument without G_SIGNAL_TYPE_STATIC_SCOPE, so GJS takes a reference
// (with that flag a kept wrapper pointed to freed memory under valgrind).
function snapshot(m) {
    return {
        kind: m.get_kind(),
        channel: m.get_channel(),
        channelBytes: dataOf(m.get_channel_bytes()),
        pattern: m.get_pattern(),
        text: m.get_payload_text(),
        payload: dataOf(m.get_payload()),
    };
}

// Each test gets an admin pool (publishes, inspects) and a subscriber
// whose undetailed handler collects every message.
async function fixture() {
    const admin = new Redis.Pool({port: PORT, pool_size: 1});
    admin.init(null);
    const sub = await Redis.Subscriber.new_async(URL, null);
    const messages = [];
    const kept = [];
    const handler = sub.connect('message', (s, m) => {
        if (s !== sub)
            throw new Error('the signal\'s instance is not the subscriber');
        messages.push(snapshot(m));
        kept.push(m);
    });
    return {
        admin, sub, messages,
        publish: (channel, payload) =>
            admin.command_bytes_sync([enc.encode('PUBLISH'),
                typeof channel === 'string' ? enc.encode(channel) : channel,
                typeof payload === 'string' ? enc.encode(payload) : payload], null).get_integer(),
        numsub: channel =>
            admin.command_sync(['PUBSUB', 'NUMSUB', channel], null).get_element(1).get_integer(),
        async close() {
            // The wrappers kept past their handler still read the same.
            System.gc();
            kept.forEach((m, i) => {
                if (JSON.stringify(snapshot(m)) !== JSON.stringify(messages[i]))
                    throw new Error(`message ${i} changed after its handler`);
            });
            // A message holds its reply's buffer: let the leak check see 0.
            kept.length = 0;
            sub.disconnect(handler);
            sub.close();
            await admin.close_async(null);
        },
    };
}

const tests = {
    async detailedAndUndetailed() {
        const f = await fixture();
        const news = [], sport = [];
        const h1 = f.sub.connect('message::news', (s, m) => news.push(m.get_payload_text()));
        const h2 = f.sub.connect('message::sport', (s, m) => sport.push(m.get_payload_text()));
        assertEq(await f.sub.subscribe_async(['news', 'sport', 'other'], null), true);
        assertEq(f.sub.dup_subscriptions(Redis.SubscriptionKind.CHANNEL).sort(),
            ['news', 'other', 'sport']);
        for (let i = 0; i < 3; i++)
            assertEq(f.publish('news', `n${i}`), 1);
        f.publish('sport', 's0');
        f.publish('other', 'o0');
        assert(await waitFor(() => f.messages.length === 5), 'five messages');
        assertEq(news, ['n0', 'n1', 'n2']);
        assertEq(sport, ['s0']);
        assertEq(f.messages.map(m => m.text), ['n0', 'n1', 'n2', 's0', 'o0']);
        assertEq(f.messages[0].kind, Redis.SubscriptionKind.CHANNEL);
        assertEq(f.messages[0].channel, 'news');
        assertEq(f.messages[0].pattern, null);
        f.sub.disconnect(h1);
        f.sub.disconnect(h2);
        await f.close();
    },

    async binaryPayloadBytesForm() {
        const f = await fixture();
        const channel = new Uint8Array([0x62, 0x00, 0xff]);
        const payload = new Uint8Array([0x00, 0xff, 0x00, 0x41, 0xff]);
        assertEq(await f.sub.subscribe_bytes_async(Redis.SubscriptionKind.CHANNEL,
            [new GLib.Bytes(channel)], null), true);
        assertEq(f.publish(channel, payload), 1);
        assert(await waitFor(() => f.messages.length === 1), 'binary message');
        const m = f.messages[0];
        assertEq(m.payload, Array.from(payload));
        assertEq(m.channelBytes, Array.from(channel));
        // Uint8Array works where GBytes are expected, too.
        assertEq(await f.sub.unsubscribe_bytes_async(Redis.SubscriptionKind.CHANNEL,
            [channel], null), true);
        assertEq(f.publish(channel, payload), 0);
        await f.close();
    },

    async patternMessage() {
        const f = await fixture();
        const detailed = [];
        const h = f.sub.connect('message::news.*', (s, m) => detailed.push(m.get_channel()));
        assertEq(f.sub.psubscribe_sync(['news.*'], null), true);
        assertEq(f.publish('news.sport', 'goal'), 1);
        assert(await waitFor(() => f.messages.length === 1), 'pattern message');
        const m = f.messages[0];
        assertEq(m.kind, Redis.SubscriptionKind.PATTERN);
        assertEq(m.pattern, 'news.*');
        assertEq(m.channel, 'news.sport');
        assertEq(m.text, 'goal');
        assertEq(detailed, ['news.sport']);
        assertEq(await f.sub.punsubscribe_async(null, null), true);
        assertEq(f.sub.dup_subscriptions(Redis.SubscriptionKind.PATTERN), []);
        f.sub.disconnect(h);
        await f.close();
    },

    async resubscribeAfterClientKill() {
        const f = await fixture();
        const lost = [];
        let resubscribed = 0;
        const connected = [];
        const h1 = f.sub.connect('connection-lost', (s, e) => lost.push(e));
        const h2 = f.sub.connect('resubscribed', () => resubscribed++);
        const h3 = f.sub.connect('notify::connected', s => connected.push(s.connected));
        await f.sub.subscribe_async(['news'], null);
        await f.sub.psubscribe_async(['p.*'], null);
        assert(f.sub.connected, 'connected');
        const killed = await f.admin.command_async(['CLIENT', 'KILL', 'TYPE', 'pubsub'], null);
        assertEq(killed.get_integer(), 1);
        assert(await waitFor(() => resubscribed > 0), 'resubscribed emitted');
        assertEq(lost.length, 1);
        assert(lost[0].matches(Redis.Error, Redis.Error.CONNECTION_LOST), `${lost[0]}`);
        assert(f.sub.get_connected(), 'connected again');
        assert(connected.includes(false) && connected[connected.length - 1] === true,
            `notify::connected ${connected}`);
        assertEq(f.numsub('news'), 1);
        f.publish('news', 'after');
        f.publish('p.x', 'after');
        assert(await waitFor(() => f.messages.length === 2), 'messages after resubscribe');
        // Nothing more comes of it.
        assertEq(await f.sub.ping_async(null), true);
        await sleep(50);
        assertEq([lost.length, resubscribed], [1, 1]);
        [h1, h2, h3].forEach(h => f.sub.disconnect(h));
        await f.close();
    },

    async unsubscribeStopsDelivery() {
        const f = await fixture();
        await f.sub.subscribe_async(['a', 'b'], null);
        f.publish('a', 'before');
        assert(await waitFor(() => f.messages.length === 1), 'first message');
        // Published before the unsubscribe is sent: never emitted.
        for (let i = 0; i < 100; i++)
            f.publish('a', `late${i}`);
        assertEq(f.sub.unsubscribe_sync(['a'], null), true);
        assertEq(f.numsub('a'), 0);
        assertEq(f.publish('a', 'after'), 0);
        f.publish('b', 'marker');
        assert(await waitFor(() => f.messages[f.messages.length - 1].channel === 'b'), 'marker');
        assertEq(await f.sub.ping_async(null), true);
        await sleep(50);
        assertEq(f.messages.map(m => m.channel), ['a', 'b']);
        assertEq(f.sub.dup_subscriptions(Redis.SubscriptionKind.CHANNEL), ['b']);
        await f.close();
    },

    async fromPool() {
        const admin = new Redis.Pool({port: PORT, pool_size: 1});
        admin.init(null);
        const sub = admin.create_subscriber();
        assertEq(sub.connected, false);
        await sub.init_async(GLib.PRIORITY_DEFAULT, null);
        assertEq(sub.connected, true);
        assertEq(sub.port, PORT);
        assertEq(sub.ping_sync(null), true);
        sub.close();
        await admin.close_async(null);
    },
};

run(tests);
