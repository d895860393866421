// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Promises for redispool in GJS (1.74 and later). Import this module
// instead of 'gi://Redis' and every asynchronous method returns a promise
// when it is called without a callback:
//
//     import GLib from 'gi://GLib';
//     import Redis from 'file:///usr/share/redispool-1.0/gjs/redispool.js';
//
//     const pool = await Redis.Pool.new_async('redis://localhost', null);
//     await pool.command_async(['SET', 'k', 'v'], null);
//     const reply = await pool.command_async(['GET', 'k'], null);
//     print(reply.get_string());
//
// (the path is <datadir>/redispool-1.0/gjs/redispool.js of the install
// prefix; an application can also copy the file into its own GResource).
//
// What it does: Gio._promisify() on every foo_async()/foo_finish() pair of
// every class of the Redis namespace, the methods of the Redis interfaces
// a class implements included (GJS does not reach interface methods through
// Redis.Client.prototype, so they are wrapped on each class), the async
// constructors (Redis.Pool.new_async(), Redis.Connection.new_async()), and
// Gio.AsyncInitable.init_async(). The pairs are read from the typelib, so
// methods added to the library are covered without a change here.
//
// GJS 1.74 never lets a trailing nullable argument be left out: pass the
// cancellable (null) explicitly. A call given a callback works as before.

import GIRepository from 'gi://GIRepository?version=2.0';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import Redis from 'gi://Redis?version=1.0';

const {InfoType} = GIRepository;

function methodsOf(info) {
    const isInterface = info.get_type() === InfoType.INTERFACE;
    const n = isInterface
        ? GIRepository.interface_info_get_n_methods(info)
        : GIRepository.object_info_get_n_methods(info);
    const methods = new Map();
    for (let i = 0; i < n; i++) {
        const m = isInterface
            ? GIRepository.interface_info_get_method(info, i)
            : GIRepository.object_info_get_method(info, i);
        const flags = GIRepository.function_info_get_flags(m);
        methods.set(m.get_name(), (flags & GIRepository.FunctionInfoFlags.IS_METHOD) !== 0);
    }
    return methods;
}

const repo = GIRepository.Repository.get_default();
for (let i = 0; i < repo.get_n_infos('Redis'); i++) {
    const info = repo.get_info('Redis', i);
    if (info.get_type() !== InfoType.OBJECT)
        continue;
    const klass = Redis[info.get_name()];
    const methods = methodsOf(info);
    for (let j = 0; j < GIRepository.object_info_get_n_interfaces(info); j++) {
        const iface = GIRepository.object_info_get_interface(info, j);
        if (iface.get_namespace() === 'Redis') {
            for (const [name, isMethod] of methodsOf(iface))
                methods.set(name, isMethod);
        }
    }
    for (const [name, isMethod] of methods) {
        const finish = name.replace(/_async$/, '_finish');
        if (finish !== name && methods.has(finish))
            Gio._promisify(isMethod ? klass.prototype : klass, name, finish);
    }
    if (GObject.type_is_a(klass.$gtype, Gio.AsyncInitable.$gtype))
        Gio._promisify(klass.prototype, 'init_async', 'init_finish');
}

export default Redis;
