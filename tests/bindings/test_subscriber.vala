/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Redis.Subscriber from Vala (0.56), compiled against the generated VAPI
 * and run against a real redis-server through tests/with-redis-server.py,
 * which exports REDIS_PORT and REDIS_URL. Prints TAP.
 *
 * Like test_redis.vala, tests/meson.build also compiles the C that valac
 * makes of this file with -Werror=incompatible-pointer-types (the string[]
 * names of subscribe_sync () and the others are `const char * const *` in
 * C: vapi/Redis-1.0-custom.vala), and runs that build. Calls rely on the
 * VAPI's defaults (no cancellable; unsubscribe () without names).
 */

static int failures = 0;
static int n_tests = 0;
static uint port;
static string url;

static void check (bool cond, string what) throws GLib.Error {
    if (!cond)
        throw new IOError.FAILED ("check failed: %s", what);
}

/* Deadlines scale like those of the C tests (tests/test-helpers.h). */
static uint scaled (uint ms) {
    var env = Environment.get_variable ("REDISPOOL_TEST_TIMEOUT_MULTIPLIER");
    uint factor = env != null ? (uint) uint64.parse (env) : 1;
    return ms * uint.max (factor, 1);
}

static async void sleep_ms (uint ms) {
    Timeout.add (ms, () => {
        sleep_ms.callback ();
        return Source.REMOVE;
    });
    yield;
}

delegate bool Predicate ();

static async bool wait_for (Predicate pred, uint timeout_ms = 5000) {
    int64 end = get_monotonic_time () + (int64) scaled (timeout_ms) * 1000;
    while (!pred ()) {
        if (get_monotonic_time () > end)
            return false;
        yield sleep_ms (10);
    }
    return true;
}

static bool same (Bytes bytes, uint8[] expected) {
    return bytes.compare (new Bytes (expected)) == 0;
}

/* An admin pool, a subscriber, and every message it delivers (kept: Vala
 * takes a reference to each). Compact, not a GObject: the type
 * registration valac writes for a class trips -Werror=incompatible-pointer-types
 * (g_once_init_enter () on a volatile) in the strict build. */
[Compact]
class Fixture {
    public Redis.Pool admin;
    public Redis.Subscriber sub;
    public GenericArray<Redis.Message> messages;
    public ulong handler;

    public int64 publish (uint8[] channel, uint8[] payload) throws GLib.Error {
        Bytes[] args = { new Bytes ("PUBLISH".data), new Bytes (channel), new Bytes (payload) };
        return admin.command_bytes_sync (args).get_integer ();
    }

    public int64 publish_text (string channel, string payload) throws GLib.Error {
        return admin.command_sync ({ "PUBLISH", channel, payload }).get_integer ();
    }

    public int64 numsub (string channel) throws GLib.Error {
        return admin.command_sync ({ "PUBSUB", "NUMSUB", channel }).get_element (1).get_integer ();
    }

    public unowned Redis.Message last () {
        return messages[messages.length - 1];
    }
}

static async Fixture new_fixture () throws GLib.Error {
    var f = new Fixture ();
    f.admin = (Redis.Pool) Object.@new (typeof (Redis.Pool), "port", port, "pool-size", 1);
    f.admin.init (null);
    f.sub = yield new Redis.Subscriber (url);
    var messages = new GenericArray<Redis.Message> ();
    f.messages = messages;
    f.handler = f.sub.message.connect ((s, m) => messages.add (m));
    return f;
}

static async void close_fixture (Fixture f) throws GLib.Error {
    f.sub.disconnect (f.handler);
    f.sub.close ();
    yield f.admin.close_async ();
}

/* ---- tests ------------------------------------------------------------- */

static async void test_detailed_and_undetailed () throws GLib.Error {
    var f = yield new_fixture ();
    string[] news = {};
    string[] sport = {};
    var h1 = f.sub.message["news"].connect ((s, m) => news += m.get_payload_text ());
    var h2 = f.sub.message["sport"].connect ((s, m) => sport += m.get_payload_text ());
    check (yield f.sub.subscribe_async ({ "news", "sport", "other" }), "subscribe_async");
    check (f.sub.dup_subscriptions (Redis.SubscriptionKind.CHANNEL).length == 3, "3 subscriptions");
    for (int i = 0; i < 3; i++)
        check (f.publish_text ("news", "n%d".printf (i)) == 1, "one receiver");
    f.publish_text ("sport", "s0");
    f.publish_text ("other", "o0");
    check (yield wait_for (() => f.messages.length == 5), "five messages");
    check (news.length == 3 && news[0] == "n0" && news[2] == "n2", "detailed news");
    check (sport.length == 1 && sport[0] == "s0", "detailed sport");
    string[] all = { "n0", "n1", "n2", "s0", "o0" };
    for (int i = 0; i < 5; i++)
        check (f.messages[i].get_payload_text () == all[i], "undetailed, in order");
    check (f.messages[0].get_kind () == Redis.SubscriptionKind.CHANNEL, "kind");
    check (f.messages[0].get_channel () == "news", "channel");
    check (f.messages[0].get_pattern () == null, "no pattern");
    f.sub.disconnect (h1);
    f.sub.disconnect (h2);
    yield close_fixture (f);
}

static async void test_binary_payload () throws GLib.Error {
    var f = yield new_fixture ();
    uint8[] channel = { 'b', 0x00, 0xff };
    uint8[] payload = { 0x00, 0xff, 0x00, 'A', 0xff };
    check (f.sub.subscribe_bytes_sync (Redis.SubscriptionKind.CHANNEL, { new Bytes (channel) }),
           "subscribe_bytes_sync");
    check (f.publish (channel, payload) == 1, "one receiver");
    check (yield wait_for (() => f.messages.length == 1), "binary message");
    check (same (f.messages[0].get_payload (), payload), "payload bytes");
    check (same (f.messages[0].get_channel_bytes (), channel), "channel bytes");
    check (yield f.sub.unsubscribe_bytes_async (Redis.SubscriptionKind.CHANNEL, { new Bytes (channel) }),
           "unsubscribe_bytes_async");
    check (f.publish (channel, payload) == 0, "no receiver");
    yield close_fixture (f);
}

static async void test_pattern_message () throws GLib.Error {
    var f = yield new_fixture ();
    string[] detailed = {};
    var h = f.sub.message["news.*"].connect ((s, m) => detailed += m.get_channel ());
    check (f.sub.psubscribe_sync ({ "news.*" }), "psubscribe_sync");
    check (f.publish_text ("news.sport", "goal") == 1, "one receiver");
    check (yield wait_for (() => f.messages.length == 1), "pattern message");
    var m = f.messages[0];
    check (m.get_kind () == Redis.SubscriptionKind.PATTERN, "kind");
    check (m.get_pattern () == "news.*", "pattern");
    check (m.get_channel () == "news.sport", "channel");
    check (m.get_payload_text () == "goal", "payload");
    check (detailed.length == 1 && detailed[0] == "news.sport", "detailed by pattern");
    check (yield f.sub.punsubscribe_async (), "punsubscribe_async, no names");
    check (f.sub.dup_subscriptions (Redis.SubscriptionKind.PATTERN).length == 0, "no patterns");
    f.sub.disconnect (h);
    yield close_fixture (f);
}

static async void test_resubscribe_after_client_kill () throws GLib.Error {
    var f = yield new_fixture ();
    int lost = 0, resubscribed = 0;
    GLib.Error? lost_error = null;
    bool[] connected = {};
    var h1 = f.sub.connection_lost.connect ((s, e) => { lost++; lost_error = e.copy (); });
    var h2 = f.sub.resubscribed.connect (() => resubscribed++);
    var h3 = f.sub.notify["connected"].connect (() => connected += f.sub.connected);
    yield f.sub.subscribe_async ({ "news" });
    yield f.sub.psubscribe_async ({ "p.*" });
    check (f.sub.connected, "connected");
    var killed = yield f.admin.command_async ({ "CLIENT", "KILL", "TYPE", "pubsub" });
    check (killed.get_integer () == 1, "one client killed");
    check (yield wait_for (() => resubscribed > 0), "resubscribed emitted");
    check (lost == 1, "one connection-lost");
    check (lost_error != null && lost_error.matches (Redis.Error.quark (), Redis.Error.CONNECTION_LOST),
           "CONNECTION_LOST");
    check (f.sub.get_connected (), "connected again");
    check (connected.length >= 2 && !connected[0] && connected[connected.length - 1], "notify::connected");
    check (f.numsub ("news") == 1, "NUMSUB back to 1");
    f.publish_text ("news", "after");
    f.publish_text ("p.x", "after");
    check (yield wait_for (() => f.messages.length == 2), "messages after resubscribe");
    /* Nothing more comes of it. */
    check (yield f.sub.ping_async (), "ping");
    yield sleep_ms (50);
    check (lost == 1 && resubscribed == 1, "exactly one of each");
    f.sub.disconnect (h1);
    f.sub.disconnect (h2);
    f.sub.disconnect (h3);
    yield close_fixture (f);
}

static async void test_unsubscribe_stops_delivery () throws GLib.Error {
    var f = yield new_fixture ();
    yield f.sub.subscribe_async ({ "a", "b" });
    f.publish_text ("a", "before");
    check (yield wait_for (() => f.messages.length == 1), "first message");
    /* Published before the unsubscribe is sent: never emitted. */
    for (int i = 0; i < 100; i++)
        f.publish_text ("a", "late%d".printf (i));
    check (f.sub.unsubscribe_sync ({ "a" }), "unsubscribe_sync");
    check (f.numsub ("a") == 0, "NUMSUB 0");
    check (f.publish_text ("a", "after") == 0, "no receiver");
    f.publish_text ("b", "marker");
    check (yield wait_for (() => f.last ().get_channel () == "b"), "marker");
    check (f.sub.ping_sync (), "ping");
    yield sleep_ms (50);
    check (f.messages.length == 2, "nothing of a after the unsubscribe (%u messages)".printf (f.messages.length));
    check (f.messages[0].get_channel () == "a" && f.messages[1].get_channel () == "b", "a then b");
    var subs = f.sub.dup_subscriptions (Redis.SubscriptionKind.CHANNEL);
    check (subs.length == 1 && subs[0] == "b", "only b left");
    check (f.sub.unsubscribe_sync (), "unsubscribe all");
    check (f.sub.dup_subscriptions (Redis.SubscriptionKind.CHANNEL).length == 0, "none left");
    yield close_fixture (f);
}

static async void test_errors () throws GLib.Error {
    try {
        var sub = new Redis.Subscriber.sync ("redis://127.0.0.1:1");
        check (sub == null, "connection refused expected");
    } catch (Redis.Error e) {
    }
    var f = yield new_fixture ();
    f.sub.close ();
    try {
        yield f.sub.subscribe_async ({ "x" });
        check (false, "CLOSED expected");
    } catch (Redis.Error.CLOSED e) {
    }
    yield close_fixture (f);
    /* The subscriber is finalized once the last reference goes. */
    var weak = WeakRef (f.sub);
    f = null;
    check (yield wait_for (() => weak.get () == null, 2000), "subscriber finalized");
}

/* ---- driver ------------------------------------------------------------ */

static async void run_all (MainLoop loop) {
    string[] names = {
        "detailed_and_undetailed", "binary_payload", "pattern_message",
        "resubscribe_after_client_kill", "unsubscribe_stops_delivery", "errors"
    };
    print ("1..%d\n", names.length + 1);
    foreach (var name in names) {
        n_tests++;
        try {
            switch (name) {
            case "detailed_and_undetailed": yield test_detailed_and_undetailed (); break;
            case "binary_payload": yield test_binary_payload (); break;
            case "pattern_message": yield test_pattern_message (); break;
            case "resubscribe_after_client_kill": yield test_resubscribe_after_client_kill (); break;
            case "unsubscribe_stops_delivery": yield test_unsubscribe_stops_delivery (); break;
            case "errors": yield test_errors (); break;
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

    /* Leak check, at program end: every reply is gone, the replies inside
     * the messages included. */
    n_tests++;
    uint live = Redis.Reply.get_live_count ();
    if (live == 0) {
        print ("ok %d - no leaked replies or messages\n", n_tests);
    } else {
        failures++;
        print ("not ok %d - %u replies still alive\n", n_tests, live);
    }
    return failures > 0 ? 1 : 0;
}
