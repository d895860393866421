/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Vala (0.56) binding test, compiled against the generated VAPI and run
 * against a real redis-server through tests/with-redis-server.py, which
 * exports REDIS_PORT and REDIS_URL. Prints TAP.
 *
 * tests/meson.build also compiles the C that valac makes of this file with
 * -Werror=incompatible-pointer-types (and valac with --fatal-warnings), and
 * runs that build: the VAPI must give warning-free C. Calls rely on the
 * VAPI's defaults (no cancellable argument, get_string () without a
 * length), and the error declarations are precise: see
 * test_precise_errors ().
 */

static int failures = 0;
static int n_tests = 0;
static uint port;
static string url;

static void check (bool cond, string what) throws GLib.Error {
    if (!cond)
        throw new IOError.FAILED ("check failed: %s", what);
}

static string str (Redis.Reply r) {
    return r.get_string () ?? "(null)";
}

/* Deadlines scale like those of the C tests (tests/test-helpers.h). */
static uint scaled (uint ms) {
    var env = Environment.get_variable ("REDISPOOL_TEST_TIMEOUT_MULTIPLIER");
    uint factor = env != null ? (uint) uint64.parse (env) : 1;
    return ms * uint.max (factor, 1);
}

static Bytes b (string s) {
    return new Bytes (s.data);
}

static async void sleep_ms (uint ms) {
    Timeout.add (ms, () => {
        sleep_ms.callback ();
        return Source.REMOVE;
    });
    yield;
}

/* Poll @pred from the main loop for up to @timeout_ms. */
delegate bool Predicate ();

static async bool wait_for (Predicate pred, uint timeout_ms = 10000) {
    int64 end = get_monotonic_time () + (int64) scaled (timeout_ms) * 1000;
    while (!pred ()) {
        if (get_monotonic_time () > end)
            return false;
        yield sleep_ms (10);
    }
    return true;
}

static Redis.Pool new_pool (uint size = 3, uint command_timeout = 5000, uint backoff_initial = 100) throws GLib.Error {
    var pool = (Redis.Pool) Object.@new (typeof (Redis.Pool),
                                         "port", port,
                                         "pool-size", size,
                                         "command-timeout", command_timeout,
                                         "backoff-initial", backoff_initial);
    pool.init (null);
    return pool;
}

/* ---- tests ------------------------------------------------------------- */

static async void test_pool_from_properties () throws GLib.Error {
    var pool = new_pool ();
    check (pool.pool_size == 3, "pool_size property");
    check (pool.get_size () == 3, "get_size");
    check (pool.port == port, "port property");
    check (pool.strategy == Redis.PoolStrategy.ROUND_ROBIN, "strategy");
    var r = pool.command_sync ({ "PING" });
    check (r.get_kind () == Redis.ReplyKind.STATUS, "PING is a status");
    check (str (r) == "PONG", "PONG");
    yield pool.close_async ();
}

static async void test_pool_from_uri () throws GLib.Error {
    var pool = new Redis.Pool.sync (url + "?pool_size=2");
    check (pool.get_size () == 2, "size from the URI");
    check (str (pool.command_sync ({ "ECHO", "uri" })) == "uri", "ECHO");
    pool.close_sync ();

    var pool2 = yield new Redis.Pool (url);
    check (str (yield pool2.command_async ({ "PING" })) == "PONG", "async-constructed pool");
    yield pool2.close_async ();

    try {
        new Redis.Pool.sync ("http://nope");
        check (false, "bad URI accepted");
    } catch (Redis.Error.INVALID_ARGUMENT e) {
    }
}

static async void test_commands () throws GLib.Error {
    var pool = new_pool ();
    pool.command_sync ({ "FLUSHDB" });
    check (str (pool.command_sync ({ "SET", "greeting", "hello" })) == "OK", "SET");
    var r = yield pool.command_async ({ "GET", "greeting" });
    check (r.get_kind () == Redis.ReplyKind.STRING, "GET kind");
    check (str (r) == "hello", "GET value");
    check ((yield pool.command_async ({ "INCRBY", "n", "41" })).get_integer () == 41, "INCRBY");
    check ((yield pool.command_async ({ "GET", "missing" })).is_nil (), "nil");
    pool.command_sync ({ "RPUSH", "l", "a", "b", "c" });
    var arr = yield pool.command_async ({ "LRANGE", "l", "0", "-1" });
    check (arr.get_kind () == Redis.ReplyKind.ARRAY, "array kind");
    check (arr.get_n_elements () == 3, "3 elements");
    var elements = arr.get_elements ();
    check (elements.length == 3 && str (elements[0]) == "a" && str (elements[2]) == "c", "get_elements");
    check (str (arr.get_element (1)) == "b", "get_element");
    check (arr.to_variant ().print (false) == "[<'a'>, <'b'>, <'c'>]", "to_variant");
    check (arr.to_string () != null, "to_string");

    /* Several in flight at once. */
    int done = 0;
    int64 sum = 0;
    for (int i = 0; i < 20; i++) {
        pool.command_async.begin ({ "INCR", "ctr" }, null, (obj, res) => {
            try {
                sum += ((Redis.Pool) obj).command_async.end (res).get_integer ();
            } catch (GLib.Error e) {
                warning ("%s", e.message);
            }
            done++;
        });
    }
    check (yield wait_for (() => done == 20), "20 calls completed");
    check (sum == 210, "20 INCRs");
    yield pool.close_async ();
}

static async void test_binary () throws GLib.Error {
    var pool = new_pool ();
    uint8[] value = { 0, 'b', 0xff, 0xfe, 0x80, 0, '\r', '\n', 0xc3, 0x28, 0 };
    uint8[] key = { 'k', 0, 0xff };
    var r = yield pool.command_bytes_async ({ b ("SET"), new Bytes (key), new Bytes (value) });
    check (str (r) == "OK", "SET binary");
    r = pool.command_bytes_sync ({ b ("GET"), new Bytes (key) });
    var got = r.get_bytes ();
    check (got != null && got.compare (new Bytes (value)) == 0, "binary round trip");
    size_t len;
    r.get_string (out len);
    check (len == value.length, "get_string (out len) gives the whole length");
    check (r.get_string () == null, "no text for a value with NUL");
    unowned uint8[]? data = r.get_data ();
    check (data != null && data.length == value.length && Memory.cmp (data, value, value.length) == 0,
           "get_data round trip");
    r = yield pool.command_bytes_async ({ b ("STRLEN"), new Bytes (key) });
    check (r.get_integer () == value.length, "STRLEN");
    var batch = new Redis.Batch ();
    batch.add_bytes ({ b ("SET"), b ("x"), new Bytes ({ 0, 1, 0xff }) })
         .add_bytes ({ b ("GET"), b ("x") });
    var res = yield pool.pipeline_async (batch);
    check (res[1].get_bytes ().compare (new Bytes ({ 0, 1, 0xff })) == 0, "binary batch");
    yield pool.close_async ();
}

/* get_string () without a length: the text, or null when the value is not
 * NUL-free UTF-8 (never cut at a NUL); get_data (): the bytes. */
static async void test_text_and_data () throws GLib.Error {
    var pool = new_pool ();
    pool.command_sync ({ "SET", "text", "h\u00e9llo" });
    var r = yield pool.command_async ({ "GET", "text" });
    check (r.get_string () == "h\u00e9llo", "get_string () text");
    unowned uint8[] text = "h\u00e9llo".data;
    check (r.get_data ().length == text.length && Memory.cmp (r.get_data (), text, text.length) == 0,
           "get_data () gives the UTF-8 bytes");
    pool.command_bytes_sync ({ b ("SET"), b ("bin"), new Bytes ({ 'a', 0, 'b', 0xff }) });
    r = pool.command_sync ({ "GET", "bin" });
    check (r.get_string () == null, "binary value: no text");
    unowned uint8[]? data = r.get_data ();
    check (data.length == 4 && data[0] == 'a' && data[1] == 0 && data[2] == 'b' && data[3] == 0xff,
           "binary value: get_data");
    pool.command_bytes_sync ({ b ("SET"), b ("latin1"), new Bytes ({ 0xe9 }) });
    check (pool.command_sync ({ "GET", "latin1" }).get_string () == null, "invalid UTF-8: no text");
    check (str (pool.command_sync ({ "PING" })) == "PONG", "status text");
    pool.command_sync ({ "SET", "empty", "" });
    r = pool.command_sync ({ "GET", "empty" });
    check (r.get_string () == "" && r.get_data () != null && r.get_data ().length == 0, "empty value");
    r = pool.command_sync ({ "INCR", "text-n" });
    check (r.get_string () == null && r.get_data () == null, "integer: no text, no data");
    r = pool.command_sync ({ "GET", "no-such-key" });
    check (r.get_string () == null && r.get_data () == null, "nil: no text, no data");
    yield pool.close_async ();
}

static async void test_pipeline_transaction () throws GLib.Error {
    var pool = new_pool ();
    pool.command_sync ({ "FLUSHDB" });
    var batch = new Redis.Batch ()
        .add ({ "SET", "p", "v" }).add ({ "GET", "p" }).add ({ "LPUSH", "p", "x" }).add ({ "INCR", "c" });
    check (batch.get_n_commands () == 4, "4 commands");
    var res = yield pool.pipeline_async (batch);
    check (res.length == 4, "4 replies");
    check (str (res[0]) == "OK" && str (res[1]) == "v", "SET/GET in pipeline");
    check (res[2].get_kind () == Redis.ReplyKind.ERROR, "error-kind reply in a pipeline");
    check (res[2].get_error_prefix () == "WRONGTYPE", "error prefix");
    check (res[3].get_integer () == 1, "INCR");
    res = pool.pipeline_sync (new Redis.Batch ().add ({ "INCR", "c" }));
    check (res[0].get_integer () == 2, "pipeline_sync");

    res = yield pool.transaction_async (new Redis.Batch ()
        .add ({ "SET", "t", "10" }).add ({ "INCRBY", "t", "5" }).add ({ "LPUSH", "t", "x" }));
    check (res.length == 3, "3 EXEC replies");
    check (res[0].get_kind () == Redis.ReplyKind.STATUS, "MULTI SET");
    check (res[1].get_integer () == 15, "MULTI INCRBY");
    check (res[2].get_kind () == Redis.ReplyKind.ERROR, "error inside EXEC");
    res = pool.transaction_sync (new Redis.Batch ().add ({ "GET", "t" }));
    check (str (res[0]) == "15", "transaction_sync");
    try {
        yield pool.transaction_async (new Redis.Batch ().add ({ "INCR", "t" }).add ({ "NOSUCHCOMMAND" }));
        check (false, "EXECABORT expected");
    } catch (Redis.Error.TRANSACTION_ABORTED e) {
    }
    check (str (pool.command_sync ({ "GET", "t" })) == "15", "aborted transaction did not run");

    check (yield pool.noreply_command_async ({ "SET", "nr", "1" }), "noreply");
    check (pool.noreply_pipeline_sync (new Redis.Batch ().add ({ "INCR", "nr" })), "noreply pipeline");
    check (yield wait_for (() => {
        try {
            return str (pool.command_sync ({ "GET", "nr" })) == "2";
        } catch (GLib.Error e) {
            return false;
        }
    }, 5000), "noreply commands applied");
    yield pool.close_async ();
}

static async void test_server_error () throws GLib.Error {
    var pool = new_pool ();
    pool.command_sync ({ "SET", "s", "string" });
    try {
        yield pool.command_async ({ "LPUSH", "s", "x" });
        check (false, "WRONGTYPE expected");
    } catch (Redis.Error.SERVER e) {
        check (e.domain == Redis.Error.quark (), "domain");
        check (e.code == Redis.Error.SERVER, "code");
        check (e.message.has_prefix ("WRONGTYPE"), "message");
        check (Redis.Error.get_server_prefix (e) == "WRONGTYPE", "server prefix");
    }
    try {
        pool.command_sync ({ "NOSUCHCOMMAND" });
        check (false, "ERR expected");
    } catch (Redis.Error.SERVER e) {
        check (Redis.Error.get_server_prefix (e) == "ERR", "ERR prefix");
    }
    try {
        pool.command_sync ({ "WATCH", "k" });
        check (false, "WATCH on the pool must be refused");
    } catch (Redis.Error.INVALID_ARGUMENT e) {
    }
    yield pool.close_async ();
}

/* The VAPI declares `throws Redis.Error, GLib.IOError` (a cancelled call
 * raises IOError.CANCELLED): this function, which declares no error, must
 * compile without "unhandled error" warnings with these two catch clauses
 * (the strict build runs valac with --fatal-warnings). */
static string precise_errors (Redis.Pool pool, Cancellable? cancellable) {
    try {
        pool.command_sync ({ "LPUSH", "s", "x" }, cancellable);
        return "no error";
    } catch (Redis.Error.SERVER e) {
        return "server: " + Redis.Error.get_server_prefix (e);
    } catch (Redis.Error e) {
        return "redis: " + e.message;
    } catch (IOError.CANCELLED e) {
        return "io: cancelled";
    } catch (IOError e) {
        return "io: " + e.message;
    }
}

static async string precise_errors_async (Redis.Client client) {
    try {
        yield client.transaction_async (new Redis.Batch ().add ({ "INCR", "t" }).add ({ "NOSUCHCOMMAND" }));
        return "no error";
    } catch (Redis.Error.TRANSACTION_ABORTED e) {
        return "aborted";
    } catch (Redis.Error e) {
        return "redis: " + e.message;
    } catch (IOError e) {
        return "io: " + e.message;
    }
}

static async void test_precise_errors () throws GLib.Error {
    var pool = new_pool ();
    pool.command_sync ({ "SET", "s", "string" });
    check (precise_errors (pool, null) == "server: WRONGTYPE", "Redis.Error.SERVER caught");
    var cancelled = new Cancellable ();
    cancelled.cancel ();
    check (precise_errors (pool, cancelled) == "io: cancelled", "IOError.CANCELLED caught");
    check ((yield precise_errors_async (pool)) == "aborted", "Redis.Error.TRANSACTION_ABORTED caught");
    /* The async constructor with its default cancellable. */
    var conn = yield new Redis.Connection (url);
    check (conn.get_state () == Redis.ConnectionState.READY, "async Connection, default cancellable");
    check ((yield precise_errors_async (conn)) == "aborted", "on a connection too");
    yield conn.close_async ();
    yield pool.close_async ();
}

static bool ping_ok (Redis.Pool pool) {
    try {
        return str (pool.command_sync ({ "PING" })) == "PONG";
    } catch (GLib.Error e) {
        return false;
    }
}

static async void test_timeout () throws GLib.Error {
    var pool = new_pool (1, scaled (200));
    var nap = (scaled (500) / 1000.0).to_string ();
    int64 t0 = get_monotonic_time ();
    try {
        yield pool.command_async ({ "DEBUG", "SLEEP", nap });
        check (false, "TIMEOUT expected");
    } catch (Redis.Error.TIMEOUT e) {
    }
    int64 ms = (get_monotonic_time () - t0) / 1000;
    check (ms < scaled (450), "timed out after " + ms.to_string () + " ms");
    try {
        pool.command_sync ({ "DEBUG", "SLEEP", nap });
        check (false, "sync TIMEOUT expected");
    } catch (Redis.Error.TIMEOUT e) {
    }
    check (yield wait_for (() => ping_ok (pool), 5000), "usable after timeouts");
    yield pool.close_async ();
}

static async void test_cancellation () throws GLib.Error {
    var pool = new_pool ();
    var cancellable = new Cancellable ();
    Timeout.add (scaled (50), () => {
        cancellable.cancel ();
        return Source.REMOVE;
    });
    int64 t0 = get_monotonic_time ();
    try {
        yield pool.command_async ({ "DEBUG", "SLEEP", (scaled (300) / 1000.0).to_string () }, cancellable);
        check (false, "CANCELLED expected");
    } catch (IOError.CANCELLED e) {
    }
    int64 ms = (get_monotonic_time () - t0) / 1000;
    check (ms < scaled (280), "cancelled after " + ms.to_string () + " ms");
    try {
        pool.command_sync ({ "PING" }, cancellable);
        check (false, "already cancelled");
    } catch (IOError.CANCELLED e) {
    }
    check (yield wait_for (() => ping_ok (pool), 5000), "usable after cancellation");
    yield pool.close_async ();
}

static async void test_signals_and_info () throws GLib.Error {
    var pool = new_pool (2, 5000, 50);
    var admin = new Redis.Connection.sync (url);
    uint[] lost = {};
    uint[] replaced = {};
    GLib.Error? lost_error = null;
    ulong h1 = pool.connection_lost.connect ((index, error) => {
        lost += index;
        lost_error = error.copy ();
    });
    ulong h2 = pool.connection_replaced.connect ((index) => {
        replaced += index;
    });

    var info = new VariantDict (pool.get_info ());
    check (info.lookup_value ("size", VariantType.UINT32).get_uint32 () == 2, "info size");
    check (info.lookup_value ("active", VariantType.UINT32).get_uint32 () == 2, "info active");
    check (info.lookup_value ("strategy", VariantType.STRING).get_string () == "round-robin", "info strategy");
    var conns = info.lookup_value ("connections", new VariantType ("aa{sv}"));
    check (conns.n_children () == 2, "2 connections");
    var c1 = new VariantDict (conns.get_child_value (1));
    int64 victim = c1.lookup_value ("client-id", VariantType.INT64).get_int64 ();
    check (victim > 0, "client id");

    var r = yield admin.command_async ({ "CLIENT", "KILL", "ID", victim.to_string (), "SKIPME", "no" });
    check (r.get_integer () == 1, "one client killed");
    check (yield wait_for (() => replaced.length > 0), "connection-replaced emitted");
    check (lost.length == 1 && lost[0] == 1, "connection-lost for slot 1");
    check (lost_error != null, "connection-lost error");
    check (replaced.length == 1 && replaced[0] == 1, "connection-replaced for slot 1");

    info = new VariantDict (pool.get_info ());
    check (info.lookup_value ("active", VariantType.UINT32).get_uint32 () == 2, "active again");
    check (info.lookup_value ("reconnects", VariantType.UINT64).get_uint64 () >= 1, "reconnects");
    conns = info.lookup_value ("connections", new VariantType ("aa{sv}"));
    c1 = new VariantDict (conns.get_child_value (1));
    int64 new_id = c1.lookup_value ("client-id", VariantType.INT64).get_int64 ();
    check (new_id > 0 && new_id != victim, "new client id");
    check (str (yield pool.command_async ({ "PING" })) == "PONG", "PING after replacement");

    pool.disconnect (h1);
    pool.disconnect (h2);
    yield admin.close_async ();
    yield pool.close_async ();
}

static async void test_lease_watch () throws GLib.Error {
    var pool = new_pool ();
    pool.command_sync ({ "SET", "k", "1" });
    var lease = pool.acquire_sync ();
    check (lease.get_state () == Redis.ConnectionState.READY, "lease ready");
    try {
        check (str (yield lease.command_async ({ "WATCH", "k" })) == "OK", "WATCH");
        check (str (lease.command_sync ({ "GET", "k" })) == "1", "GET on the lease");
        yield pool.command_async ({ "SET", "k", "changed" });
        try {
            yield lease.transaction_async (new Redis.Batch ().add ({ "SET", "k", "2" }));
            check (false, "WATCH_FAILED expected");
        } catch (Redis.Error.WATCH_FAILED e) {
        }
    } finally {
        pool.release (lease);
    }
    check (str (pool.command_sync ({ "GET", "k" })) == "changed", "transaction did not run");

    lease = yield pool.acquire_async ();
    try {
        lease.command_sync ({ "WATCH", "k" });
        var res = lease.transaction_sync (new Redis.Batch ().add ({ "SET", "k", "3" }));
        check (str (res[0]) == "OK", "transaction without conflict");
    } finally {
        pool.release (lease);
    }
    check (yield wait_for (() => {
        var d = new VariantDict (pool.get_info ());
        return d.lookup_value ("leased", VariantType.UINT32).get_uint32 () == 0;
    }, 5000), "lease returned");
    yield pool.close_async ();
}

static async void test_close () throws GLib.Error {
    var pool = new_pool ();
    check (yield pool.close_async (), "close");
    var info = new VariantDict (pool.get_info ());
    check (info.lookup_value ("closed", VariantType.BOOLEAN).get_boolean (), "closed in info");
    try {
        yield pool.command_async ({ "PING" });
        check (false, "CLOSED expected");
    } catch (Redis.Error.CLOSED e) {
    }
    /* The pool is finalized once the last reference goes. */
    var weak = WeakRef (pool);
    pool = null;
    yield sleep_ms (20);
    check (weak.get () == null, "pool finalized");
}

/* ---- driver ------------------------------------------------------------ */

static async void run_all (MainLoop loop) {
    string[] names = {
        "pool_from_properties", "pool_from_uri", "commands", "binary",
        "text_and_data", "pipeline_transaction", "server_error", "precise_errors", "timeout", "cancellation",
        "signals_and_info", "lease_watch", "close"
    };
    print ("1..%d\n", names.length + 1);
    foreach (var name in names) {
        n_tests++;
        try {
            switch (name) {
            case "pool_from_properties": yield test_pool_from_properties (); break;
            case "pool_from_uri": yield test_pool_from_uri (); break;
            case "commands": yield test_commands (); break;
            case "binary": yield test_binary (); break;
            case "text_and_data": yield test_text_and_data (); break;
            case "pipeline_transaction": yield test_pipeline_transaction (); break;
            case "server_error": yield test_server_error (); break;
            case "precise_errors": yield test_precise_errors (); break;
            case "timeout": yield test_timeout (); break;
            case "cancellation": yield test_cancellation (); break;
            case "signals_and_info": yield test_signals_and_info (); break;
            case "lease_watch": yield test_lease_watch (); break;
            case "close": yield test_close (); break;
            default: assert_not_reached ();
            }
            print ("ok %d - %s\n", n_tests, name);
        } catch (GLib.Error e) {
            failures++;
            print ("not ok %d - %s\n", n_tests, name);
            printerr ("%s: %s (%s, %d)\n", name, e.message, e.domain.to_string (), e.code);
        }
    }
    loop.quit ();
}

int main (string[] args) {
    var port_env = Environment.get_variable ("REDIS_PORT");
    if (port_env == null) {
        print ("1..0 # SKIP REDIS_PORT not set: run through tests/with-redis-server.py\n");
        return 77;
    }
    port = (uint) int.parse (port_env);
    url = Environment.get_variable ("REDIS_URL");

    var loop = new MainLoop ();
    run_all.begin (loop);
    loop.run ();

    /* Leak check, at program end: every reply is gone. */
    n_tests++;
    uint live = Redis.Reply.get_live_count ();
    if (live == 0) {
        print ("ok %d - no leaked replies\n", n_tests);
    } else {
        failures++;
        print ("not ok %d - %u replies still alive\n", n_tests, live);
    }
    return failures > 0 ? 1 : 0;
}
