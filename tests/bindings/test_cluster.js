// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Redis.ClusterPool and Redis.ClusterSubscriber from GJS (1.74), the
// basic flow against a real 3-primary cluster on loopback:
// `gjs -m test_cluster.js`, run through tests/bindings/cluster_harness.py,
// which starts the cluster and exports REDIS_CLUSTER_URL and
// REDIS_CLUSTER_PORTS. Prints TAP. Redirections and moved slots are
// tested from C (tests/test-cluster.c, tests/test-cluster-subscriber.c).
//
// Redis comes from the promise module (redispool/gjs/redispool.js): every
// _async method returns a promise when called without a callback.

import GLib from 'gi://GLib';
import Redis from '../../redispool/gjs/redispool.js';
import {enc, assert, assertEq, assertRejects, waitFor, run} from './harness.js';

const CLUSTER_URL = GLib.getenv('REDIS_CLUSTER_URL');
const PORTS = (GLib.getenv('REDIS_CLUSTER_PORTS') ?? '').split(',').map(p => parseInt(p));
const RANGES = [[0, 5460], [5461, 10922], [10923, 16383]];
const slotOf = name => Redis.cluster_key_slot(enc.encode(name));

// The first "<prefix>-<n>" whose slot is in node @i's range.
function nameOnNode(prefix, i) {
    for (let n = 0; ; n++) {
        const slot = slotOf(`${prefix}-${n}`);
        if (slot >= RANGES[i][0] && slot <= RANGES[i][1])
            return `${prefix}-${n}`;
    }
}

let cluster = null;

// The node pools of the list model, keyed by port.
async function dbsizes() {
    const sizes = {};
    for (let i = 0; i < cluster.get_n_items(); i++) {
        const pool = cluster.get_item(i);
        // eslint-disable-next-line no-await-in-loop
        const reply = await pool.command_async(['DBSIZE'], null);
        const port = (await pool.command_async(['CONFIG', 'GET', 'port'], null)).get_element(1).get_string();
        sizes[port] = reply.get_integer();
    }
    return sizes;
}

run({
    async new_from_uri() {
        assert(CLUSTER_URL, 'REDIS_CLUSTER_URL is set');
        cluster = await Redis.ClusterPool.new_async(CLUSTER_URL, null);
        assert(cluster instanceof Redis.ClusterPool, 'a cluster pool');
        assert(cluster instanceof Redis.Client, 'a Redis.Client');
    },

    async list_model() {
        assertEq(cluster.get_n_items(), 3);
        for (let i = 0; i < 3; i++)
            assert(cluster.get_item(i) instanceof Redis.Pool, `item ${i} is a Redis.Pool`);
        assertEq(cluster.get_item_type().name, 'RedisPool');
    },

    async set_get_routed_to_three_nodes() {
        for (let i = 0; i < 60; i++)
            // eslint-disable-next-line no-await-in-loop
            await cluster.command_async(['SET', `gjs:${i}`, `${i}`], null);
        const sizes = await dbsizes();
        assertEq(Object.keys(sizes).sort(), PORTS.map(String).sort());
        assertEq(Object.values(sizes).reduce((a, b) => a + b, 0), 60);
        assert(Object.values(sizes).every(n => n > 0), `every node has keys: ${JSON.stringify(sizes)}`);
        assertEq((await cluster.command_async(['GET', 'gjs:42'], null)).get_string(), '42');
    },

    async crossslot_refused() {
        const e = await assertRejects(cluster.command_async(['MGET', 'gjs:1', 'gjs:2', 'gjs:3'], null),
            Redis.error_quark(), Redis.Error.INVALID_ARGUMENT, 'MGET over several slots');
        assert(e.message.includes('slot'), `the message names the slots: ${e.message}`);
    },

    async cluster_key_slot() {
        assertEq(slotOf('foo'), 12182);
        assertEq(slotOf('{user1}.name'), slotOf('{user1}.mail'));
        const pool = cluster.get_item(0);
        const reply = await pool.command_async(['CLUSTER', 'KEYSLOT', 'gjs:7'], null);
        assertEq(slotOf('gjs:7'), reply.get_integer());
    },

    async pipeline_across_nodes() {
        const batch = new Redis.Batch();
        for (let i = 0; i < 30; i++)
            batch.add(['GET', `gjs:${i}`]);
        const replies = await cluster.pipeline_async(batch, null);
        assertEq(replies.map(r => r.get_string()), [...Array(30).keys()].map(String));
    },

    async topology_changed_connectable() {
        let changed = 0;
        const id = cluster.connect('topology-changed', c => {
            assert(c === cluster, 'the instance is the cluster pool');
            changed++;
        });
        assert(id > 0, 'connected');
        assertEq(await cluster.refresh_async(null), true);
        // The same map read again: no change.
        assertEq(changed, 0);
        cluster.disconnect(id);
    },

    async sharded_pubsub() {
        const sub = cluster.create_subscriber();
        const names = [0, 1, 2].map(i => nameOnNode('gjs-shard', i));
        const seen = {};
        for (const name of names) {
            sub.connect(`message::${name}`, (s, m) => {
                seen[name] = [m.get_kind(), m.get_channel(), m.get_payload_text()];
            });
        }
        assertEq(await sub.subscribe_async(Redis.SubscriptionKind.SHARD, names, null), true);
        for (const [i, name] of names.entries()) {
            assertEq(sub.dup_node_address(Redis.SubscriptionKind.SHARD, name), `127.0.0.1:${PORTS[i]}`);
            // eslint-disable-next-line no-await-in-loop
            const receivers = await cluster.command_async(['SPUBLISH', name, `hi ${name}`], null);
            assertEq(receivers.get_integer(), 1);
        }
        assert(await waitFor(() => Object.keys(seen).length === 3, 10000), 'three messages');
        for (const name of names)
            assertEq(seen[name], [Redis.SubscriptionKind.SHARD, name, `hi ${name}`]);
        assertEq(await sub.unsubscribe_async(Redis.SubscriptionKind.SHARD, null, null), true);
        sub.close();
    },

    async close() {
        assertEq(await cluster.close_async(null), true);
        cluster = null;
    },
});
