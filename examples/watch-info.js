// SPDX-License-Identifier: LGPL-2.1-or-later
//
// watch-info: an async GJS script (no Gtk) that prints the pool's info,
// follows its connection signals, kills one of its connections with
// CLIENT KILL and waits until the pool has replaced it.
//
//   REDIS_URL=redis://127.0.0.1:6379/0 gjs -m examples/watch-info.js
//
// Needs the Redis-1.0 typelib (GI_TYPELIB_PATH when not installed).
// GJS 1.74: pass every argument except the callback (null cancellable
// included) so that promisified calls return a promise.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Redis from 'gi://Redis?version=1.0';
import System from 'system';

Gio._promisify(Redis.Pool.prototype, 'command_async', 'command_finish');
Gio._promisify(Redis.Pool.prototype, 'close_async', 'close_finish');
Gio._promisify(Redis.Pool, 'new_async', 'new_finish');

function printInfo(pool, title) {
    const info = pool.get_info().recursiveUnpack();
    print(`${title}: ${info.active}/${info.size} connections active, ` +
        `strategy ${info.strategy}, ${info.reconnects} reconnects, ${info['in-flight']} in flight`);
    for (const c of info.connections) {
        print(`  slot ${c.index}: ${c.state}, client id ${c['client-id']}, ` +
            `${c.reconnects} reconnects${c['last-error'] ? `, last error: ${c['last-error']}` : ''}`);
    }
    return info;
}

async function main() {
    const url = GLib.getenv('REDIS_URL') ?? 'redis://127.0.0.1:6379/0';
    const sep = url.includes('?') ? '&' : '?';
    print(`connecting to ${url}`);
    const pool = await Redis.Pool.new_async(`${url}${sep}pool_size=2&backoff_initial=50`, null);

    const replaced = new Promise(resolve => {
        pool.connect('connection-lost', (_pool, index, error) => {
            print(`connection-lost: slot ${index} (${error.message})`);
        });
        pool.connect('connection-replaced', (_pool, index) => {
            print(`connection-replaced: slot ${index}`);
            resolve(index);
        });
    });

    const before = printInfo(pool, 'info');
    const victim = before.connections[0]['client-id'];

    // SKIPME no: the kill may travel on the very connection it kills.
    print(`CLIENT KILL ID ${victim}`);
    try {
        const reply = await pool.command_async(
            ['CLIENT', 'KILL', 'ID', `${victim}`, 'SKIPME', 'no'], null);
        print(`  killed ${reply.get_integer()} client(s)`);
    } catch (e) {
        if (!e.matches(Redis.Error, Redis.Error.CONNECTION_LOST))
            throw e;
        print('  the kill went out on the killed connection itself');
    }

    const timeout = new Promise((_, reject) => GLib.timeout_add_seconds(
        GLib.PRIORITY_DEFAULT, 10, () => {
            reject(new Error('no connection-replaced within 10 s'));
            return GLib.SOURCE_REMOVE;
        }));
    const slot = await Promise.race([replaced, timeout]);
    const after = printInfo(pool, 'info after replacement');

    const pong = await pool.command_async(['PING'], null);
    print(`PING -> ${pong.get_string()}`);
    await pool.close_async(null);
    print('closed');

    if (after.active !== after.size || after.connections[slot]['client-id'] === victim)
        throw new Error('the pool did not replace the connection');
}

const loop = new GLib.MainLoop(null, false);
let status = 0;
main().catch(e => {
    logError(e);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
