/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Credential rotation on a cluster: redis_cluster_pool_set_credentials()
 * and _set_credentials_provider() against a 3-primary cluster on loopback
 * (tests/cluster-fixture.c) whose nodes have `requirepass`/`masterauth`.
 *
 * What makes these cases fail without the feature:
 *  - once every node's password is changed (CONFIG SET requirepass) and
 *    every client killed, the node pools and the cluster subscriber's
 *    per-node subscribers reconnect; with the old password their AUTH is
 *    refused forever, so calls and shard messages never flow again;
 *  - a node the cluster meets after the rotation (a slot given to a fourth
 *    node, reached through MOVED) gets a node pool made then: with the
 *    URI's password it could not serve the call;
 *  - the provider case counts the requests: a cluster provider never asked
 *    leaves the count at 0, and its token is the only password. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "cluster-fixture.h"
#include "test-client-helpers.h"

#define N_PRIMARIES 3
#define ARGV(...) ((const char * const []) { __VA_ARGS__, NULL })

static ClusterFixture *fixture;
static guint extra_node;             /* no slots at the start: met later */
static char *password;               /* every node's, now */

/* redis-cli on @node with the current password. */
static char *
cli (guint               node,
     const char * const *argv)
{
  g_autoptr(GPtrArray) full = g_ptr_array_new ();

  g_ptr_array_add (full, "-a");
  g_ptr_array_add (full, password);
  g_ptr_array_add (full, "--no-auth-warning");
  for (guint i = 0; argv[i] != NULL; i++)
    g_ptr_array_add (full, (gpointer) argv[i]);
  g_ptr_array_add (full, NULL);
  return cluster_fixture_cli (fixture, node, (const char * const *) full->pdata);
}

/* Every node's password becomes @new_password (masterauth too: what a
 * replica would need). */
static void
rotate_server_password (const char *new_password)
{
  for (guint node = 0; node < fixture->n_nodes; node++)
    {
      g_autofree char *out = cli (node, ARGV ("CONFIG", "SET", "requirepass", new_password,
                                              "masterauth", new_password));

      g_assert_cmpstr (out, ==, "OK");
    }
  g_free (password);
  password = g_strdup (new_password);
}

static void
kill_every_client (void)
{
  for (guint node = 0; node < fixture->n_nodes; node++)
    {
      g_autofree char *normal = cli (node, ARGV ("CLIENT", "KILL", "TYPE", "normal"));
      g_autofree char *pubsub = cli (node, ARGV ("CLIENT", "KILL", "TYPE", "pubsub"));
    }
}

static RedisClusterPool *
cluster_new (const char *uri_password)
{
  g_autofree char *plain = cluster_fixture_uri (fixture);
  g_autofree char *uri = NULL;
  RedisClusterPool *cluster;

  g_assert_true (g_str_has_prefix (plain, "redis://"));
  if (uri_password != NULL)
    uri = g_strdup_printf ("redis://:%s@%s", uri_password, plain + strlen ("redis://"));
  else
    uri = g_strdup (plain);
  cluster = g_object_new (REDIS_TYPE_CLUSTER_POOL, "uri", uri, NULL);
  return cluster;
}

static void
cluster_init (RedisClusterPool *cluster)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  /* Async: a provider is asked in this thread's context. */
  g_async_initable_init_async (G_ASYNC_INITABLE (cluster), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &result);
  test_wait_for_result (&result, 20000);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (cluster), result, &error));
  g_assert_no_error (error);
}

/* SET @key @value through @cluster: TRUE if it worked. */
static gboolean
try_set (RedisClusterPool *cluster,
         const char       *key,
         const char       *value)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;

  redis_client_command_async (REDIS_CLIENT (cluster), ARGV ("SET", key, value), NULL,
                              store_result_cb, &result);
  test_wait_for_result (&result, 20000);
  reply = redis_client_command_finish (REDIS_CLIENT (cluster), result, &error);
  if (reply == NULL)
    g_test_message ("SET %s: %s", key, error->message);
  return reply != NULL;
}

/* No node pool has a connection connecting, so every started one is
 * past its wait-all initialization: a connection of a pool lost while
 * that runs is not retried (redis-pool-core.c,
 * slot_schedule_retry_locked()), which is not what these cases test.
 * (A node pool the cluster never used is not started: all down.) */
static gboolean
no_node_connecting (RedisClusterPool *cluster)
{
  for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (cluster)); i++)
    {
      g_autoptr(RedisPool) pool = g_list_model_get_item (G_LIST_MODEL (cluster), i);
      g_autoptr(GVariant) info = redis_pool_get_info (pool);
      g_autoptr(GVariant) conns = g_variant_lookup_value (info, "connections", G_VARIANT_TYPE ("aa{sv}"));

      for (gsize c = 0; c < g_variant_n_children (conns); c++)
        {
          g_autoptr(GVariant) conn = g_variant_get_child_value (conns, c);
          const char *state = NULL;

          g_assert_true (g_variant_lookup (conn, "state", "&s", &state));
          if (g_str_equal (state, "connecting"))
            return FALSE;
        }
    }
  return TRUE;
}

/* A key (and shard channel) of each primary's slots. */
static char *keys[N_PRIMARIES + 1];   /* NULL-terminated */

static void
assert_calls_work (RedisClusterPool *cluster,
                   const char       *value)
{
  for (guint i = 0; i < N_PRIMARIES; i++)
    {
      g_autofree char *got = NULL;

      WAIT_UNTIL (try_set (cluster, keys[i], value), 10000);
      got = cli (i, ARGV ("GET", keys[i]));
      g_assert_cmpstr (got, ==, value);
    }
}

typedef struct
{
  guint messages;
  guint resubscribed;
} SubCounts;

static void
message_cb (RedisClusterSubscriber *sub,
            RedisMessage           *message,
            SubCounts              *counts)
{
  counts->messages++;
}

static void
resubscribed_cb (RedisClusterSubscriber *sub,
                 const char             *address,
                 SubCounts              *counts)
{
  counts->resubscribed++;
}

/* SPUBLISH on every primary's channel: each message arrives. */
static void
assert_messages_flow (SubCounts *counts)
{
  guint before = counts->messages;

  for (guint i = 0; i < N_PRIMARIES; i++)
    {
      g_autofree char *out = cli (i, ARGV ("SPUBLISH", keys[i], "hello"));

      g_assert_cmpstr (out, ==, "1");
    }
  WAIT_UNTIL (counts->messages == before + N_PRIMARIES, 5000);
}

/* Gives an empty slot to the extra node (no keys: nothing to migrate). */
static void
give_slot_to_extra_node (guint slot)
{
  g_autofree char *s = g_strdup_printf ("%u", slot);
  guint owner = cluster_fixture_initial_owner (fixture, slot);
  g_autofree char *on_target = cli (extra_node, ARGV ("CLUSTER", "SETSLOT", s, "NODE", fixture->ids[extra_node]));
  g_autofree char *on_owner = cli (owner, ARGV ("CLUSTER", "SETSLOT", s, "NODE", fixture->ids[extra_node]));

  g_assert_cmpstr (on_target, ==, "OK");
  g_assert_cmpstr (on_owner, ==, "OK");
  for (guint i = 0; i < N_PRIMARIES; i++)
    if (i != owner)
      g_free (cli (i, ARGV ("CLUSTER", "SETSLOT", s, "NODE", fixture->ids[extra_node])));
}

/* SETSLOT … NODE extra again on the primaries and the extra node
 * (idempotent; answers and failures ignored). */
static void
reassert_slot_of_extra_node (guint slot)
{
  g_autofree char *s = g_strdup_printf ("%u", slot);
  const char *argv[] = { "-a", password, "--no-auth-warning", "CLUSTER", "SETSLOT", s, "NODE",
                         fixture->ids[extra_node], NULL };

  for (guint i = 0; i <= N_PRIMARIES; i++)
    {
      guint node = i < N_PRIMARIES ? i : extra_node;
      g_autoptr(GError) error = NULL;

      g_free (redis_test_server_cli (fixture->servers[node], argv, &error));
    }
}

/* The password of every node rotated under a live cluster pool and cluster
 * subscriber; every client killed: they come back with the new one. Then a
 * node met after the rotation is served with it too. */
static void
test_set_credentials (void)
{
  g_autoptr(RedisClusterPool) cluster = cluster_new ("S3cret-Alpha-71f0");
  g_autoptr(RedisClusterSubscriber) sub = NULL;
  g_autoptr(GError) error = NULL;
  const char *new_key = "h6:new-node-key";
  guint n_nodes;
  SubCounts counts = { 0 };

  cluster_init (cluster);
  assert_calls_work (cluster, "before");
  WAIT_UNTIL (no_node_connecting (cluster), 10000);
  n_nodes = g_list_model_get_n_items (G_LIST_MODEL (cluster));

  sub = redis_cluster_pool_create_subscriber (cluster);
  g_signal_connect (sub, "message", G_CALLBACK (message_cb), &counts);
  g_signal_connect (sub, "resubscribed", G_CALLBACK (resubscribed_cb), &counts);
  g_assert_true (redis_cluster_subscriber_subscribe_sync (sub, REDIS_SUBSCRIPTION_KIND_SHARD,
                                                          (const char * const *) keys, NULL, &error));
  g_assert_no_error (error);
  assert_messages_flow (&counts);

  rotate_server_password ("S3cret-Beta-a2c9");
  redis_cluster_pool_set_credentials (cluster, NULL, "S3cret-Beta-a2c9");
  /* The live connections keep their sessions (and were re-authenticated). */
  assert_calls_work (cluster, "rotated");
  assert_messages_flow (&counts);

  kill_every_client ();
  assert_calls_work (cluster, "reconnected");
  WAIT_UNTIL (counts.resubscribed >= N_PRIMARIES, 10000);
  assert_messages_flow (&counts);

  /* A node met now: its pool is made after the rotation. */
  give_slot_to_extra_node (redis_cluster_key_slot ((const guint8 *) new_key, strlen (new_key)));
  /* The assignment is told to every node again while the SET fails: under
   * valgrind a node once kept the slot unassigned ("CLUSTERDOWN Hash slot
   * not served") for good. */
  WAIT_UNTIL (try_set (cluster, new_key, "on-the-extra-node") ||
              (reassert_slot_of_extra_node (redis_cluster_key_slot ((const guint8 *) new_key,
                                                                    strlen (new_key))), FALSE),
              10000);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (cluster)), ==, n_nodes + 1);
  {
    g_autofree char *got = cli (extra_node, ARGV ("GET", new_key));
    g_assert_cmpstr (got, ==, "on-the-extra-node");
  }

  redis_cluster_subscriber_close (sub);
  redis_client_close_sync (REDIS_CLIENT (cluster), NULL, &error);
  g_assert_no_error (error);
}

typedef struct
{
  guint asked;
  guint stale;
} ProviderCounts;

/* Answers at once with the nodes' current password. */
static void
cluster_provider (RedisClusterPool        *cluster,
                  RedisCredentialsRequest *request,
                  gpointer                 user_data)
{
  ProviderCounts *counts = user_data;

  g_assert_true (REDIS_IS_CLUSTER_POOL (cluster));
  counts->asked++;
  if (redis_credentials_request_get_stale (request))
    counts->stale++;
  redis_credentials_request_complete (request, NULL, password);
}

/* A cluster provider, set before initialization (the URI has no
 * password): asked for every node's connections, and again after a
 * rotation and the clients killed. */
static void
test_provider (void)
{
  g_autoptr(RedisClusterPool) cluster = cluster_new (NULL);
  g_autoptr(GError) error = NULL;
  ProviderCounts counts = { 0 };
  guint asked;

  redis_cluster_pool_set_credentials_provider (cluster, cluster_provider, &counts, NULL);
  cluster_init (cluster);
  assert_calls_work (cluster, "provided");
  WAIT_UNTIL (no_node_connecting (cluster), 10000);
  g_assert_cmpuint (counts.asked, >=, N_PRIMARIES);

  asked = counts.asked;
  rotate_server_password ("S3cret-Gamma-0be4");
  kill_every_client ();
  assert_calls_work (cluster, "provided-again");
  g_assert_cmpuint (counts.asked, >, asked);
  g_test_message ("provider asked %u times", counts.asked);

  redis_client_close_sync (REDIS_CLIENT (cluster), NULL, &error);
  g_assert_no_error (error);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_assert_true (redis_test_server_available ());

  fixture = cluster_fixture_new (N_PRIMARIES, 0, NULL);
  /* Met before the passwords are set (the fixture's redis-cli has none);
   * it gets slots only later, in test_set_credentials(). */
  extra_node = cluster_fixture_add_node (fixture);
  for (guint node = 0; node < fixture->n_nodes; node++)
    {
      g_autofree char *out = CLUSTER_FIXTURE_CLI (fixture, node, "CONFIG", "SET",
                                                  "requirepass", "S3cret-Alpha-71f0",
                                                  "masterauth", "S3cret-Alpha-71f0");
      g_assert_cmpstr (out, ==, "OK");
    }
  password = g_strdup ("S3cret-Alpha-71f0");
  for (guint i = 0; i < N_PRIMARIES; i++)
    keys[i] = cluster_fixture_key_on_node (fixture, i, 0);

  g_test_add_func ("/cluster-credentials/set-credentials", test_set_credentials);
  g_test_add_func ("/cluster-credentials/provider", test_provider);

  ret = g_test_run ();
  for (guint i = 0; i < N_PRIMARIES; i++)
    g_free (keys[i]);
  cluster_fixture_free (fixture);
  g_free (password);
  return ret;
}
