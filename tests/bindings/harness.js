// SPDX-License-Identifier: LGPL-2.1-or-later
//
// What the GJS binding tests (test_redis.js, test_subscriber.js) share: the
// server's address from tests/with-redis-server.py, scaled deadlines,
// assertions, and run(), which runs a table of async tests as TAP, checks
// no reply wrapper outlives them and exits.

import GLib from 'gi://GLib';
import Redis from '../../redispool/gjs/redispool.js';
import System from 'system';

export const PORT = parseInt(GLib.getenv('REDIS_PORT') ?? '0');
export const URL = GLib.getenv('REDIS_URL');
export const enc = new TextEncoder();
// Deadlines scale like those of the C tests' test_scale_ms()
// (tests/test-helpers.h): the multiplier of the ASan and valgrind passes
// times the load factor tools/test.sh reads from the load average.
const factor = name => Math.max(1, parseFloat(GLib.getenv(name) ?? '1') || 1);
const SCALE = factor('REDISPOOL_TEST_TIMEOUT_MULTIPLIER') * factor('REDISPOOL_TEST_LOAD_FACTOR');
export const scaled = ms => Math.round(ms * SCALE);

export function assert(cond, msg) {
    if (!cond)
        throw new Error(`assertion failed: ${msg}`);
}

export function assertEq(a, b, msg = '') {
    const sa = JSON.stringify(a), sb = JSON.stringify(b);
    if (sa !== sb)
        throw new Error(`assertion failed: ${sa} !== ${sb} ${msg}`);
}

// @e, caught, is the GLib.Error @domain/@code: returned; anything else
// is thrown on.
function expectedError(e, domain, code, msg) {
    if (!(e instanceof GLib.Error))
        throw e;
    assert(e.matches(domain, code), `${msg}: unexpected error ${e} (code ${e.code})`);
    return e;
}

export async function assertRejects(promiseOrFn, domain, code, msg) {
    try {
        await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
    } catch (e) {
        return expectedError(e, domain, code, msg);
    }
    throw new Error(`assertion failed: ${msg}: no error`);
}

export function assertThrows(fn, domain, code, msg) {
    try {
        fn();
    } catch (e) {
        return expectedError(e, domain, code, msg);
    }
    throw new Error(`assertion failed: ${msg}: no error`);
}

export function sleep(ms) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

// Waits (scaled) until pred() holds; false if it never did.
export async function waitFor(pred, timeoutMs = 5000) {
    const end = GLib.get_monotonic_time() + scaled(timeoutMs) * 1000;
    while (!pred()) {
        if (GLib.get_monotonic_time() > end)
            return false;
        // eslint-disable-next-line no-await-in-loop
        await sleep(10);
    }
    return true;
}

// Runs @tests (name: async function; $ONLY=a,b picks some) as TAP, then
// checks that every reply wrapper is gone after a full GC, and exits: 1 if
// anything failed. Without REDIS_PORT, a skipped plan.
export function run(tests) {
    const loop = new GLib.MainLoop(null, false);
    let failures = 0;

    async function main() {
        const only = GLib.getenv('ONLY');
        const names = Object.keys(tests).filter(t => !only || only.split(',').includes(t));
        print(`1..${names.length + 1}`);
        let n = 0;
        for (const name of names) {
            n++;
            try {
                // eslint-disable-next-line no-await-in-loop
                await tests[name]();
                print(`ok ${n} - ${name}`);
            } catch (e) {
                failures++;
                print(`not ok ${n} - ${name}`);
                printerr(`${name}: ${e}\n${e.stack ?? ''}`);
            }
        }
        // Leak check: every reply wrapper is gone after a full GC.
        n++;
        await sleep(50);
        System.gc();
        await sleep(10);
        System.gc();
        const live = Redis.reply_get_live_count();
        if (live === 0) {
            print(`ok ${n} - no leaked replies`);
        } else {
            failures++;
            print(`not ok ${n} - ${live} replies still alive`);
        }
    }

    if (!PORT) {
        print('1..0 # SKIP REDIS_PORT not set: run through tests/with-redis-server.py');
    } else {
        main().catch(e => {
            failures++;
            logError(e);
        }).finally(() => loop.quit());
        loop.run();
    }
    System.exit(failures > 0 ? 1 : 0);
}
