/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Redis.ClusterPool and Redis.ClusterSubscriber from Vala (0.56), the basic
 * flow against a real 3-primary cluster on loopback, run through
 * tests/bindings/cluster_harness.py, which starts the cluster and exports
 * REDIS_CLUSTER_URL and REDIS_CLUSTER_PORTS. Prints TAP. Built twice, as
 * test_redis.vala is (tests/meson.build): the VAPI must give warning-free C.
 * Redirections and moved slots are tested from C.
 */

static int failures = 0;
static int n_tests = 0;
static string cluster_url;
static string[] ports;
static Redis.ClusterPool cluster;

const uint16 RANGE_FIRST[] = { 0, 5461, 10923 };
const uint16 RANGE_LAST[] = { 5460, 10922, 16383 };

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

static async bool wait_for (Predicate pred, uint timeout_ms = 10000) {
    int64 end = get_monotonic_time () + (int64) scaled (timeout_ms) * 1000;
    while (!pred ()) {
        if (get_monotonic_time () > end)
            return false;
        yield sleep_ms (10);
    }
    return true;
}

static uint16 slot_of (string name) {
    return Redis.cluster_key_slot (name.data);
}

/* The first "<prefix>-<n>" whose slot is in node @node's range. */
static string name_on_node (string prefix, int node) {
    for (int n = 0; ; n++) {
        var name = "%s-%d".printf (prefix, n);
        var slot = slot_of (name);
        if (slot >= RANGE_FIRST[node] && slot <= RANGE_LAST[node])
            return name;
    }
}

/* ---- tests ------------------------------------------------------------- */

static async void test_new_from_uri () throws GLib.Error {
    cluster = yield new Redis.ClusterPool (cluster_url);
    check (cluster.get_max_redirects () == 5, "max-redirects default");
    var sync_made = new Redis.ClusterPool.sync (cluster_url);
    check (sync_made.get_n_items () == 3, "the sync constructor too");
    sync_made.close_sync ();
}

static async void test_list_model () throws GLib.Error {
    check (cluster.get_n_items () == 3, "3 nodes");
    check (cluster.get_item_type () == typeof (Redis.Pool), "item type");
    for (uint i = 0; i < 3; i++)
        check (cluster.get_item (i) is Redis.Pool, "a Redis.Pool");
}

static async void test_set_get_routed () throws GLib.Error {
    for (int i = 0; i < 60; i++)
        yield cluster.command_async ({ "SET", "vala:%d".printf (i), i.to_string () });
    int64 total = 0;
    for (uint i = 0; i < 3; i++) {
        var pool = (Redis.Pool) cluster.get_item (i);
        var n = (yield pool.command_async ({ "DBSIZE" })).get_integer ();
        check (n > 0, "every node has keys");
        total += n;
    }
    check (total == 60, "60 keys over the 3 nodes");
    check ((yield cluster.command_async ({ "GET", "vala:42" })).get_string () == "42", "GET");
}

static async void test_crossslot () throws GLib.Error {
    try {
        yield cluster.command_async ({ "MGET", "vala:1", "vala:2", "vala:3" });
        check (false, "CROSSSLOT accepted");
    } catch (Redis.Error.INVALID_ARGUMENT e) {
        check ("slot" in e.message, "the message names the slots");
    }
}

static async void test_key_slot () throws GLib.Error {
    check (slot_of ("foo") == 12182, "foo");
    check (slot_of ("{user1}.name") == slot_of ("{user1}.mail"), "hash tags");
    var pool = (Redis.Pool) cluster.get_item (0);
    var reply = yield pool.command_async ({ "CLUSTER", "KEYSLOT", "vala:7" });
    check (reply.get_integer () == slot_of ("vala:7"), "CLUSTER KEYSLOT agrees");
}

static async void test_pipeline_across_nodes () throws GLib.Error {
    var batch = new Redis.Batch ();
    for (int i = 0; i < 30; i++)
        batch.add ({ "GET", "vala:%d".printf (i) });
    var replies = yield cluster.pipeline_async (batch);
    check (replies.length == 30, "30 replies");
    for (int i = 0; i < 30; i++)
        check (replies[i].get_string () == i.to_string (), "in order");
}

static async void test_topology_changed () throws GLib.Error {
    int changed = 0;
    var id = cluster.topology_changed.connect (() => changed++);
    check (id > 0, "connected");
    check (yield cluster.refresh_async (), "refreshed");
    check (changed == 0, "the same map: no change");
    cluster.disconnect (id);
}

static async void test_sharded_pubsub () throws GLib.Error {
    var sub = cluster.create_subscriber ();
    string[] names = { name_on_node ("vala-shard", 0), name_on_node ("vala-shard", 1),
                       name_on_node ("vala-shard", 2) };
    int seen = 0;
    foreach (var name in names) {
        sub.message[name].connect ((m) => {
            if (m.get_channel () == name && m.get_payload_text () == "hi " + name &&
                m.get_kind () == Redis.SubscriptionKind.SHARD)
                seen++;
        });
    }
    check (yield sub.subscribe_async (Redis.SubscriptionKind.SHARD, names), "subscribed");
    for (int i = 0; i < 3; i++) {
        check (sub.dup_node_address (Redis.SubscriptionKind.SHARD, names[i]) == "127.0.0.1:" + ports[i],
               "on its owner");
        var receivers = yield cluster.command_async ({ "SPUBLISH", names[i], "hi " + names[i] });
        check (receivers.get_integer () == 1, "one receiver");
    }
    check (yield wait_for (() => seen == 3), "three messages, each with its detail");
    check (yield sub.unsubscribe_async (Redis.SubscriptionKind.SHARD), "unsubscribed");
    check (sub.dup_subscriptions (Redis.SubscriptionKind.SHARD).length == 0, "none left");
    sub.close ();
}

/* ---- driver ------------------------------------------------------------ */

static async void run_all (MainLoop loop) {
    string[] names = {
        "new_from_uri", "list_model", "set_get_routed", "crossslot", "key_slot",
        "pipeline_across_nodes", "topology_changed", "sharded_pubsub"
    };
    print ("1..%d\n", names.length);
    foreach (var name in names) {
        n_tests++;
        try {
            switch (name) {
            case "new_from_uri": yield test_new_from_uri (); break;
            case "list_model": yield test_list_model (); break;
            case "set_get_routed": yield test_set_get_routed (); break;
            case "crossslot": yield test_crossslot (); break;
            case "key_slot": yield test_key_slot (); break;
            case "pipeline_across_nodes": yield test_pipeline_across_nodes (); break;
            case "topology_changed": yield test_topology_changed (); break;
            case "sharded_pubsub": yield test_sharded_pubsub (); break;
            default: assert_not_reached ();
            }
            print ("ok %d - %s\n", n_tests, name);
        } catch (GLib.Error e) {
            failures++;
            print ("not ok %d - %s\n", n_tests, name);
            printerr ("%s: %s (%s, %d)\n", name, e.message, e.domain.to_string (), e.code);
        }
    }
    try {
        if (cluster != null)
            yield cluster.close_async ();
    } catch (GLib.Error e) {
        printerr ("close: %s\n", e.message);
        failures++;
    }
    loop.quit ();
}

int main (string[] args) {
    cluster_url = Environment.get_variable ("REDIS_CLUSTER_URL");
    var ports_env = Environment.get_variable ("REDIS_CLUSTER_PORTS");
    if (cluster_url == null || ports_env == null) {
        print ("1..0 # SKIP REDIS_CLUSTER_URL not set: run through tests/bindings/cluster_harness.py\n");
        return 77;
    }
    ports = ports_env.split (",");

    var loop = new MainLoop ();
    run_all.begin (loop);
    loop.run ();
    return failures > 0 ? 1 : 0;
}
