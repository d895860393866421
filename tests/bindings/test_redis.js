// SPDX-License-Identifier: LGPL-2.1-or-later
//
// GJS (1.74) binding test against a real redis-server: `gjs -m test_redis.js`,
// run through tests/with-redis-server.py, which exports REDIS_PORT/REDIS_URL.
// GJS 1.74 never lets a trailing nullable argument be omitted, so every call
// passes the cancellable (null) explicitly, and promisified calls only
// return a promise when everything but the callback is passed.
//
// Redis comes from the promise module shipped with the library
// (redispool/gjs/redispool.js, installed as
// <datadir>/redispool-1.0/gjs/redispool.js), as an application would use it.

import GIRepository from 'gi://GIRepository?version=2.0';
import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import GObject from 'gi://GObject';
import Redis from '../../redispool/gjs/redispool.js';
import {
    PORT, URL, enc, scaled, assert, assertEq, assertRejects, assertThrows, sleep, waitFor, run,
} from './harness.js';

const str = reply => reply.get_string();
// Binary values are read with Reply.get_data() (a Uint8Array). Do not call
// methods on the GLib.Bytes from get_bytes() here: GJS 1.74 leaks a GBytes
// reference on every method call on a GLib.Bytes wrapper (get_size(),
// get_data(), toArray()...; reproduced without redispool), and the leak
// check (harness.js, run()) would catch the reply it keeps alive.
const bytesOf = reply => reply.get_data();

// The foo_async() methods of a Redis class, its Redis interfaces' included,
// as the typelib lists them.
function asyncMethodsInTypelib(className) {
    const repo = GIRepository.Repository.get_default();
    const info = repo.find_by_name('Redis', className);
    const names = [];
    const collect = (n, get) => {
        for (let i = 0; i < n; i++) {
            const name = get(i).get_name();
            if (name.endsWith('_async'))
                names.push(name);
        }
    };
    collect(GIRepository.object_info_get_n_methods(info),
        i => GIRepository.object_info_get_method(info, i));
    for (let j = 0; j < GIRepository.object_info_get_n_interfaces(info); j++) {
        const iface = GIRepository.object_info_get_interface(info, j);
        if (iface.get_namespace() === 'Redis') {
            collect(GIRepository.interface_info_get_n_methods(iface),
                i => GIRepository.interface_info_get_method(iface, i));
        }
    }
    return names.sort();
}

// A call without its callback must give a promise.
function promised(result, what) {
    assert(result instanceof Promise, `${what} without a callback gives a promise`);
    return result;
}

// One call of each Redis.Client async method, through promises.
const CLIENT_CASES = {
    async command_async(c) {
        assertEq(str(await promised(c.command_async(['ECHO', 'p'], null), 'command_async')), 'p');
    },
    async command_bytes_async(c) {
        const r = await promised(c.command_bytes_async([enc.encode('ECHO'), new Uint8Array([0, 0xff])],
            null), 'command_bytes_async');
        assertEq(Array.from(bytesOf(r)), [0, 0xff]);
    },
    async pipeline_async(c) {
        const res = await promised(c.pipeline_async(new Redis.Batch().add(['ECHO', 'a']).add(['ECHO', 'b']),
            null), 'pipeline_async');
        assertEq(res.map(str), ['a', 'b']);
    },
    async transaction_async(c) {
        const res = await promised(c.transaction_async(new Redis.Batch().add(['ECHO', 't']), null),
            'transaction_async');
        assertEq(res.map(str), ['t']);
    },
    async noreply_command_async(c) {
        assertEq(await promised(c.noreply_command_async(['ECHO', 'n'], null), 'noreply_command_async'),
            true);
    },
    async noreply_pipeline_async(c) {
        assertEq(await promised(c.noreply_pipeline_async(new Redis.Batch().add(['ECHO', 'n']), null),
            'noreply_pipeline_async'), true);
    },
    async close_async(c) {
        assertEq(await promised(c.close_async(null), 'close_async'), true);
    },
};

async function newPool(props = {}) {
    const pool = new Redis.Pool({port: PORT, pool_size: 3, ...props});
    pool.init(null);
    return pool;
}

const tests = {
    async poolFromProperties() {
        const pool = await newPool();
        assertEq(pool.pool_size, 3);
        assertEq(pool.get_size(), 3);
        assertEq(pool.port, PORT);
        assertEq(pool.get_strategy(), Redis.PoolStrategy.ROUND_ROBIN);
        const r = pool.command_sync(['PING'], null);
        assertEq(r.get_kind(), Redis.ReplyKind.STATUS);
        assertEq(str(r), 'PONG');
        await pool.close_async(null);
    },

    async poolFromUri() {
        const pool = Redis.Pool.new_sync(`${URL}?pool_size=2`, null);
        assertEq(pool.get_size(), 2);
        assertEq(str(pool.command_sync(['ECHO', 'uri'], null)), 'uri');
        pool.close_sync(null);
        const pool2 = await Redis.Pool.new_async(URL, null);
        assert(pool2 instanceof Redis.Pool, 'new_async gives a pool');
        assertEq(str(await pool2.command_async(['PING'], null)), 'PONG');
        await pool2.close_async(null);
        assertThrows(() => Redis.Pool.new_sync('http://nope', null),
            Redis.Error, Redis.Error.INVALID_ARGUMENT, 'bad uri');
    },

    // Every async method of Redis.Pool and Redis.Connection (the Redis.Client
    // ones included) and their async constructors and init_async() give a
    // promise through redispool.js. The method list comes from the typelib:
    // an async method without a case here fails the test.
    async promisesForEveryAsyncMethod() {
        const covered = new Set([...Object.keys(CLIENT_CASES), 'new_async', 'acquire_async']);
        for (const cls of ['Pool', 'Connection']) {
            const names = asyncMethodsInTypelib(cls);
            assert(names.includes('command_async') && names.includes('new_async'),
                `${cls}: typelib lists ${names}`);
            for (const name of names)
                assert(covered.has(name), `Redis.${cls}.${name}: no case in this test`);
        }

        const pool = await promised(Redis.Pool.new_async(`${URL}?pool_size=2`, null), 'Pool.new_async');
        assert(pool instanceof Redis.Pool, 'Pool.new_async gives a pool');
        const lease = await promised(pool.acquire_async(null), 'acquire_async');
        assert(lease instanceof Redis.Connection, 'acquire_async gives a connection');
        pool.release(lease);
        const conn = await promised(Redis.Connection.new_async(URL, null), 'Connection.new_async');
        assert(conn instanceof Redis.Connection, 'Connection.new_async gives a connection');
        const pool2 = new Redis.Pool({port: PORT, pool_size: 1});
        assertEq(await promised(pool2.init_async(GLib.PRIORITY_DEFAULT, null), 'Pool.init_async'), true);
        const conn2 = new Redis.Connection({port: PORT});
        assertEq(await promised(conn2.init_async(GLib.PRIORITY_DEFAULT, null), 'Connection.init_async'),
            true);
        // Object.values() keeps the order of CLIENT_CASES: close_async last.
        for (const client of [pool, conn, pool2, conn2]) {
            for (const run of Object.values(CLIENT_CASES))
                await run(client);   // eslint-disable-line no-await-in-loop
        }
    },

    async commandSyncAsync() {
        const pool = await newPool();
        pool.command_sync(['FLUSHDB'], null);
        assertEq(str(pool.command_sync(['SET', 'greeting', 'hello'], null)), 'OK');
        const r = await pool.command_async(['GET', 'greeting'], null);
        assertEq(r.get_kind(), Redis.ReplyKind.STRING);
        assertEq(str(r), 'hello');
        assertEq((await pool.command_async(['INCRBY', 'n', '41'], null)).get_integer(), 41);
        assert((await pool.command_async(['GET', 'missing'], null)).is_nil(), 'nil');
        pool.command_sync(['RPUSH', 'l', 'a', 'b', 'c'], null);
        const arr = await pool.command_async(['LRANGE', 'l', '0', '-1'], null);
        assertEq(arr.get_kind(), Redis.ReplyKind.ARRAY);
        assertEq(arr.get_n_elements(), 3);
        assertEq(arr.get_elements().map(str), ['a', 'b', 'c']);
        assertEq(str(arr.get_element(2)), 'c');
        assertEq(arr.to_variant().recursiveUnpack(), ['a', 'b', 'c']);
        // Many in flight at once.
        const all = await Promise.all(
            Array.from({length: 20}, () => pool.command_async(['INCR', 'ctr'], null)));
        assertEq(all.map(x => x.get_integer()).sort((x, y) => x - y),
            Array.from({length: 20}, (_, i) => i + 1));
        // The callback form still works after promisify.
        const viaCallback = await new Promise((resolve, reject) => {
            pool.command_async(['ECHO', 'cb'], null, (p, res) => {
                try {
                    resolve(p.command_finish(res));
                } catch (e) {
                    reject(e);
                }
            });
        });
        assertEq(str(viaCallback), 'cb');
        await pool.close_async(null);
    },

    async binaryBytes() {
        const pool = await newPool();
        const value = new Uint8Array([0, 98, 0xff, 0xfe, 0x80, 0, 13, 10, 0xc3, 0x28, 0]);
        const key = new Uint8Array([107, 0, 0xff]);
        // Arguments as GLib.Bytes...
        let r = await pool.command_bytes_async([new GLib.Bytes(enc.encode('SET')),
            new GLib.Bytes(key), new GLib.Bytes(value)], null);
        assertEq(str(r), 'OK');
        // ...or as Uint8Array, sync and async: 0 and 0xff in keys and values
        // go through whole.
        r = pool.command_bytes_sync([enc.encode('GET'), key], null);
        assert(bytesOf(r) instanceof Uint8Array, 'get_data() gives a Uint8Array');
        assertEq(Array.from(bytesOf(r)), Array.from(value));
        r = await pool.command_bytes_async([enc.encode('STRLEN'), key], null);
        assertEq(r.get_integer(), value.length);
        r = await pool.command_bytes_async([enc.encode('SET'), new Uint8Array([0xff, 0]),
            new Uint8Array([0, 0xff, 0])], null);
        assertEq(str(r), 'OK');
        r = await pool.command_bytes_async([enc.encode('GET'), new Uint8Array([0xff, 0])], null);
        assertEq(Array.from(bytesOf(r)), [0, 0xff, 0]);
        assertEq(pool.command_bytes_sync([enc.encode('EXISTS'), new Uint8Array([0xff])], null)
            .get_integer(), 0, 'the key was not cut at its NUL');
        assertEq(pool.command_bytes_sync([enc.encode('EXISTS'), new Uint8Array([0xff, 0])], null)
            .get_integer(), 1);
        const v = pool.command_bytes_sync([enc.encode('GET'), key], null).to_variant();
        assertEq(v.get_type_string(), 'ay');
        const batch = new Redis.Batch();
        batch.add_bytes([enc.encode('SET'), enc.encode('x'), new Uint8Array([0, 1, 0xff])])
            .add_bytes([new GLib.Bytes(enc.encode('GET')), new GLib.Bytes(enc.encode('x'))]);
        const res = await pool.pipeline_async(batch, null);
        assertEq(Array.from(bytesOf(res[1])), [0, 1, 0xff]);
        await pool.close_async(null);
    },

    // get_string() gives a plain string (no [str, len]) or null when the value
    // is not text; get_data() gives the bytes, whatever they are.
    async textAndData() {
        const pool = await newPool();
        pool.command_sync(['SET', 'text', 'h\u00e9llo'], null);
        let r = pool.command_sync(['GET', 'text'], null);
        assertEq(typeof r.get_string(), 'string');
        assertEq(r.get_string(), 'h\u00e9llo');
        assertEq(Array.from(r.get_data()), Array.from(enc.encode('h\u00e9llo')));
        pool.command_bytes_sync([enc.encode('SET'), enc.encode('bin'),
            new Uint8Array([97, 0, 98, 0xff])], null);
        r = await pool.command_async(['GET', 'bin'], null);
        assertEq(r.get_string(), null, 'a value with NUL is not text (never cut at the NUL)');
        assertEq(Array.from(r.get_data()), [97, 0, 98, 0xff]);
        pool.command_bytes_sync([enc.encode('SET'), enc.encode('latin1'), new Uint8Array([0xe9])], null);
        assertEq(pool.command_sync(['GET', 'latin1'], null).get_string(), null, 'invalid UTF-8');
        r = pool.command_sync(['PING'], null);
        assertEq(r.get_string(), 'PONG');
        assertEq(Array.from(r.get_data()), Array.from(enc.encode('PONG')));
        pool.command_sync(['SET', 'empty', ''], null);
        r = pool.command_sync(['GET', 'empty'], null);
        assertEq(r.get_string(), '');
        assertEq(r.get_data().length, 0);
        for (const argv of [['INCR', 'text-n'], ['GET', 'no-such-key'], ['LRANGE', 'no-such-key', '0', '-1']]) {
            r = pool.command_sync(argv, null);
            assertEq(r.get_string(), null, `${argv[0]}: no text`);
            assertEq(r.get_data().length, 0, `${argv[0]}: no data`);
        }
        const res = pool.pipeline_sync(new Redis.Batch().add(['LPUSH', 'text', 'x']), null);
        assertEq(res[0].get_kind(), Redis.ReplyKind.ERROR);
        assert(res[0].get_string().startsWith('WRONGTYPE'), res[0].get_string());
        assertEq(new TextDecoder().decode(res[0].get_data()), res[0].get_string());
        await pool.close_async(null);
    },

    async pipelineTransaction() {
        const pool = await newPool();
        pool.command_sync(['FLUSHDB'], null);
        const batch = new Redis.Batch()
            .add(['SET', 'p', 'v']).add(['GET', 'p']).add(['LPUSH', 'p', 'x']).add(['INCR', 'c']);
        assertEq(batch.get_n_commands(), 4);
        let res = await pool.pipeline_async(batch, null);
        assertEq(res.length, 4);
        assertEq(str(res[0]), 'OK');
        assertEq(str(res[1]), 'v');
        assertEq(res[2].get_kind(), Redis.ReplyKind.ERROR);
        assertEq(res[2].get_error_prefix(), 'WRONGTYPE');
        assertEq(res[3].get_integer(), 1);
        res = pool.pipeline_sync(new Redis.Batch().add(['INCR', 'c']), null);
        assertEq(res[0].get_integer(), 2);

        res = await pool.transaction_async(new Redis.Batch()
            .add(['SET', 't', '10']).add(['INCRBY', 't', '5']).add(['LPUSH', 't', 'x']), null);
        assertEq(res.map(x => x.get_kind()),
            [Redis.ReplyKind.STATUS, Redis.ReplyKind.INTEGER, Redis.ReplyKind.ERROR]);
        assertEq(res[1].get_integer(), 15);
        res = pool.transaction_sync(new Redis.Batch().add(['GET', 't']), null);
        assertEq(str(res[0]), '15');
        await assertRejects(pool.transaction_async(
            new Redis.Batch().add(['INCR', 't']).add(['NOSUCHCOMMAND']), null),
        Redis.Error, Redis.Error.TRANSACTION_ABORTED, 'EXECABORT');
        assertEq(str(pool.command_sync(['GET', 't'], null)), '15');

        assert(await pool.noreply_command_async(['SET', 'nr', '1'], null), 'noreply');
        assert(await pool.noreply_pipeline_async(new Redis.Batch().add(['INCR', 'nr']), null),
            'noreply pipeline');
        assert(await waitFor(() => str(pool.command_sync(['GET', 'nr'], null)) === '2', 5000),
            'noreply commands applied');
        await pool.close_async(null);
    },

    async serverError() {
        const pool = await newPool();
        pool.command_sync(['SET', 's', 'string'], null);
        const e = await assertRejects(pool.command_async(['LPUSH', 's', 'x'], null),
            Redis.Error, Redis.Error.SERVER, 'WRONGTYPE');
        assert(e instanceof Redis.Error, 'instanceof Redis.Error');
        assertEq(e.domain, Redis.error_quark());
        assertEq(e.code, Redis.Error.SERVER);
        assert(e.message.startsWith('WRONGTYPE'), e.message);
        assertEq(Redis.error_get_server_prefix(e), 'WRONGTYPE');
        const e2 = assertThrows(() => pool.command_sync(['NOSUCHCOMMAND'], null),
            Redis.Error, Redis.Error.SERVER, 'unknown command');
        assertEq(Redis.error_get_server_prefix(e2), 'ERR');
        assertThrows(() => pool.command_sync(['WATCH', 'k'], null),
            Redis.Error, Redis.Error.INVALID_ARGUMENT, 'WATCH refused on the pool');
        await pool.close_async(null);
    },

    async timeout() {
        const pool = await newPool({pool_size: 1, command_timeout: scaled(200)});
        const nap = `${scaled(500) / 1000}`;
        const t0 = GLib.get_monotonic_time();
        await assertRejects(pool.command_async(['DEBUG', 'SLEEP', nap], null),
            Redis.Error, Redis.Error.TIMEOUT, 'timeout');
        const ms = (GLib.get_monotonic_time() - t0) / 1000;
        assert(ms < scaled(450), `timed out after ${ms} ms`);
        assertThrows(() => pool.command_sync(['DEBUG', 'SLEEP', nap], null),
            Redis.Error, Redis.Error.TIMEOUT, 'sync timeout');
        assert(await waitFor(() => {
            try {
                return str(pool.command_sync(['PING'], null)) === 'PONG';
            } catch (e) {
                return false;
            }
        }, 5000), 'pool usable after timeouts');
        await pool.close_async(null);
    },

    async cancellation() {
        const pool = await newPool();
        const cancellable = new Gio.Cancellable();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, scaled(50), () => {
            cancellable.cancel();
            return GLib.SOURCE_REMOVE;
        });
        const t0 = GLib.get_monotonic_time();
        await assertRejects(pool.command_async(['DEBUG', 'SLEEP', `${scaled(300) / 1000}`], cancellable),
            Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED, 'cancelled');
        const ms = (GLib.get_monotonic_time() - t0) / 1000;
        assert(ms < scaled(280), `cancelled after ${ms} ms`);
        assertThrows(() => pool.command_sync(['PING'], cancellable),
            Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED, 'already cancelled');
        await sleep(scaled(300));
        await pool.close_async(null);
    },

    async signalsAndInfo() {
        const pool = await newPool({pool_size: 2, backoff_initial: 50});
        const admin = Redis.Connection.new_sync(URL, null);
        const lost = [], replaced = [];
        const h1 = pool.connect('connection-lost', (p, index, error) => lost.push([index, error]));
        const h2 = pool.connect('connection-replaced', (p, index) => replaced.push(index));
        // recursiveUnpack() gives plain values all the way down (deepUnpack()
        // would leave the a{sv} of each connection as GLib.Variant values).
        let info = pool.get_info().recursiveUnpack();
        assertEq(typeof info.size, 'number');
        assert(Array.isArray(info.connections), 'connections is an array');
        assertEq(typeof info.connections[0]['client-id'], 'number');
        assertEq(info.size, 2);
        assertEq(info.active, 2);
        assertEq(info.strategy, 'round-robin');
        assertEq(info.closed, false);
        assertEq(info.connections.map(c => c.index), [0, 1]);
        assert(info.connections.every(c => c.state === 'ready'), 'all ready');
        const victim = info.connections[0]['client-id'];
        assert(victim > 0, 'client id');
        const r = await admin.command_async(
            ['CLIENT', 'KILL', 'ID', `${victim}`, 'SKIPME', 'no'], null);
        assertEq(r.get_integer(), 1);
        assert(await waitFor(() => replaced.length > 0, 10000), 'connection-replaced emitted');
        assertEq(lost.map(([i]) => i), [0]);
        assert(lost[0][1] instanceof GLib.Error, 'lost carries a GLib.Error');
        assertEq(replaced, [0]);
        info = pool.get_info().recursiveUnpack();
        assertEq(info.active, 2);
        assert(info.reconnects >= 1, 'reconnects counted');
        assert(info.connections[0]['client-id'] !== victim, 'new client id');
        assertEq(str(await pool.command_async(['PING'], null)), 'PONG');
        pool.disconnect(h1);
        pool.disconnect(h2);
        lost.length = 0;
        await admin.close_async(null);
        await pool.close_async(null);
    },

    async leaseWatch() {
        const pool = await newPool();
        pool.command_sync(['SET', 'k', '1'], null);
        let lease = pool.acquire_sync(null);
        assert(lease instanceof Redis.Connection, 'lease is a connection');
        assertEq(lease.get_state(), Redis.ConnectionState.READY);
        try {
            assertEq(str(await lease.command_async(['WATCH', 'k'], null)), 'OK');
            assertEq(str(lease.command_sync(['GET', 'k'], null)), '1');
            await pool.command_async(['SET', 'k', 'changed'], null);
            await assertRejects(lease.transaction_async(new Redis.Batch().add(['SET', 'k', '2']), null),
                Redis.Error, Redis.Error.WATCH_FAILED, 'watch failed');
        } finally {
            pool.release(lease);
        }
        assertEq(str(pool.command_sync(['GET', 'k'], null)), 'changed');
        lease = await pool.acquire_async(null);
        try {
            lease.command_sync(['WATCH', 'k'], null);
            const res = lease.transaction_sync(new Redis.Batch().add(['SET', 'k', '3']), null);
            assertEq(str(res[0]), 'OK');
        } finally {
            pool.release(lease);
        }
        assert(await waitFor(() => pool.get_info().recursiveUnpack().leased === 0, 5000),
            'lease returned');
        await pool.close_async(null);
    },

    async close() {
        const pool = await newPool();
        assert(await pool.close_async(null), 'close');
        assert(pool.get_info().recursiveUnpack().closed, 'closed in info');
        await assertRejects(pool.command_async(['PING'], null),
            Redis.Error, Redis.Error.CLOSED, 'closed');
    },
};

run(tests);
