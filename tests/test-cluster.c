/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* RedisClusterPool against a real 3-primary cluster on loopback: key
 * slots (vectors and CLUSTER KEYSLOT), routing to the owners, CROSSSLOT
 * refused client-side, MOVED after CLUSTER SETSLOT … NODE, ASK during a
 * slot migration, pipelines across nodes, transactions in one slot. */

#include <string.h>

#include "redis-test-server.h"
#include "test-client-helpers.h"

#define N_NODES 3

static RedisTestServer *nodes[N_NODES];
static char *node_ids[N_NODES];
static char *bus_ports[N_NODES];

static char *
cli (guint               index,
     const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  char *out = redis_test_server_cli (nodes[index], argv, &error);

  g_assert_no_error (error);
  g_strstrip (out);
  return out;
}

#define CLI(i, ...) cli ((i), (const char *[]) { __VA_ARGS__, NULL })

static char *
port_string (guint index)
{
  return g_strdup_printf ("%u", redis_test_server_get_port (nodes[index]));
}

static char *
cluster_uri (void)
{
  return g_strdup_printf ("redis://127.0.0.1:%u?addr=127.0.0.1:%u",
                          redis_test_server_get_port (nodes[0]),
                          redis_test_server_get_port (nodes[1]));
}

static gboolean
cluster_ok_everywhere (void)
{
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *info = CLI (i, "CLUSTER", "INFO");

      if (strstr (info, "cluster_state:ok") == NULL ||
          strstr (info, "cluster_known_nodes:3") == NULL)
        return FALSE;
    }
  return TRUE;
}

/* A free loopback port below 55536 for the cluster bus (redis-server
 * refuses a data port above that without an explicit --cluster-port). */
static char *
free_bus_port (void)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GError) error = NULL;
  guint16 port = 0;

  for (guint attempt = 0; attempt < 100 && port == 0; attempt++)
    {
      g_autoptr(GSocketAddress) address =
        g_inet_socket_address_new (loopback, (guint16) g_random_int_range (20000, 55000));

      g_clear_object (&socket);
      socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
      g_assert_no_error (error);
      if (g_socket_bind (socket, address, FALSE, NULL))
        port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
    }
  g_assert_cmpuint (port, !=, 0);
  g_socket_close (socket, NULL);
  return g_strdup_printf ("%u", port);
}

static void
start_cluster (void)
{
  const guint ranges[N_NODES][2] = { { 0, 5460 }, { 5461, 10922 }, { 10923, 16383 } };

  for (guint i = 0; i < N_NODES; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *first = g_strdup_printf ("%u", ranges[i][0]);
      g_autofree char *last = g_strdup_printf ("%u", ranges[i][1]);
      g_autofree char *ok = NULL;
      const char *bus = bus_ports[i] = free_bus_port ();
      const char *args[] = {
        "--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
        "--cluster-config-file", "nodes.conf", "--cluster-port", bus, NULL
      };

      nodes[i] = redis_test_server_new (REDIS_TEST_SERVER_TCP, args, &error);
      g_assert_no_error (error);
      node_ids[i] = CLI (i, "CLUSTER", "MYID");
      ok = CLI (i, "CLUSTER", "ADDSLOTSRANGE", first, last);
      g_assert_cmpstr (ok, ==, "OK");
    }
  for (guint i = 1; i < N_NODES; i++)
    {
      g_autofree char *port = port_string (i);
      g_autofree char *ok = CLI (0, "CLUSTER", "MEET", "127.0.0.1", port, bus_ports[i]);

      g_assert_cmpstr (ok, ==, "OK");
    }
  WAIT_UNTIL (cluster_ok_everywhere (), 20000);
}

static guint
owner_of_slot (guint slot)
{
  return slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2;
}

static guint16
slot_of (const char *key)
{
  return redis_cluster_key_slot ((const guint8 *) key, strlen (key));
}

/* A key of @node's slots (as the cluster was made), key-<n>. */
static char *
key_on_node (guint node,
             guint skip)
{
  for (guint n = 0;; n++)
    {
      g_autofree char *key = g_strdup_printf ("key-%u", n);

      if (owner_of_slot (slot_of (key)) == node && skip-- == 0)
        return g_steal_pointer (&key);
    }
}

static RedisClusterPool *
new_cluster_pool (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = cluster_uri ();
  RedisClusterPool *cluster = redis_cluster_pool_new_sync (uri, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (cluster);
  return cluster;
}

static RedisReply *
command (RedisClusterPool   *cluster,
         const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);

  g_assert_no_error (error);
  return reply;
}

#define CMD(c, ...) command ((c), (const char *[]) { __VA_ARGS__, NULL })

static guint64
info_u64 (RedisClusterPool *cluster,
          const char       *name)
{
  g_autoptr(GVariant) info = redis_cluster_pool_get_info (cluster);
  guint64 value = 0;

  g_assert_true (g_variant_lookup (info, name, "t", &value));
  return value;
}

/* ---- key slots ------------------------------------------------------------ */

static void
test_key_slot_vectors (void)
{
  /* CRC16/XMODEM check value and the examples of the cluster spec. */
  g_assert_cmpuint (redis_cluster_key_slot ((const guint8 *) "123456789", 9), ==, 0x31c3 & 0x3fff);
  g_assert_cmpuint (slot_of ("foo"), ==, 12182);
  g_assert_cmpuint (slot_of (""), ==, 0);
  g_assert_cmpuint (redis_cluster_key_slot (NULL, 0), ==, 0);
  g_assert_cmpuint (slot_of ("{user1000}.following"), ==, slot_of ("user1000"));
  g_assert_cmpuint (slot_of ("{user1000}.followers"), ==, slot_of ("user1000"));
  /* An empty tag hashes the whole key; the tag ends at the first "}". */
  g_assert_cmpuint (slot_of ("foo{}{bar}"), !=, slot_of ("bar"));
  g_assert_cmpuint (slot_of ("foo{{bar}}zap"), ==, slot_of ("{bar"));
  g_assert_cmpuint (slot_of ("foo{bar}{zap}"), ==, slot_of ("bar"));
  g_assert_cmpuint (slot_of ("{"), !=, G_MAXUINT16);
  g_assert_cmpuint (slot_of ("}{"), ==, redis_cluster_key_slot ((const guint8 *) "}{", 2));
  /* Binary-safe: NUL bytes count. */
  g_assert_cmpuint (redis_cluster_key_slot ((const guint8 *) "a\0b", 3), !=, slot_of ("a"));
}

static void
test_key_slot_live (void)
{
  const char *keys[] = {
    "foo", "bar", "", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap",
    "foo{bar}{zap}", "{", "}", "{}", "}{", "{a", "a}", "x{y}z", "\xc3\xa9t\xc3\xa9",
    "a-rather-longer-key-with:colons:and:more", "{tag}1", "{tag}2",
  };

  for (guint i = 0; i < G_N_ELEMENTS (keys) + 40; i++)
    {
      g_autofree char *generated = i >= G_N_ELEMENTS (keys) ? g_strdup_printf ("k:%u:{%u}", i * 7919, i % 5) : NULL;
      const char *key = generated != NULL ? generated : keys[i];
      g_autofree char *out = CLI (i % N_NODES, "CLUSTER", "KEYSLOT", key);

      g_assert_cmpuint (g_ascii_strtoull (out, NULL, 10), ==, slot_of (key));
    }
}

/* ---- routing ----------------------------------------------------------------- */

static guint64
dbsize (guint index)
{
  g_autofree char *out = CLI (index, "DBSIZE");

  return g_ascii_strtoull (out, NULL, 10);
}

static void
flush_all (void)
{
  for (guint i = 0; i < N_NODES; i++)
    g_free (CLI (i, "FLUSHALL"));
}

static void
test_routing (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(GVariant) info = NULL;
  guint expected[N_NODES] = { 0 };
  guint32 covered = 0;
  const guint n_keys = 1000;

  flush_all ();
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (cluster)), ==, N_NODES);
  g_assert_true (g_list_model_get_item_type (G_LIST_MODEL (cluster)) == REDIS_TYPE_POOL);

  info = redis_cluster_pool_get_info (cluster);
  g_assert_true (g_variant_lookup (info, "slots-covered", "u", &covered));
  g_assert_cmpuint (covered, ==, 16384);
  {
    g_autoptr(GVariant) ranges = g_variant_lookup_value (info, "ranges", G_VARIANT_TYPE ("a(qqs)"));

    g_assert_cmpuint (g_variant_n_children (ranges), ==, N_NODES);
  }

  for (guint i = 0; i < n_keys; i++)
    {
      g_autofree char *key = g_strdup_printf ("route:%u", i);
      g_autofree char *value = g_strdup_printf ("v%u", i);
      g_autoptr(RedisReply) reply = CMD (cluster, "SET", key, value);

      expected[owner_of_slot (slot_of (key))]++;
    }
  for (guint i = 0; i < N_NODES; i++)
    {
      g_assert_cmpuint (expected[i], >, 0);
      g_assert_cmpuint (dbsize (i), ==, expected[i]);
    }
  for (guint i = 0; i < n_keys; i += 37)
    {
      g_autofree char *key = g_strdup_printf ("route:%u", i);
      g_autofree char *value = g_strdup_printf ("v%u", i);
      g_autoptr(RedisReply) reply = CMD (cluster, "GET", key);

      g_assert_cmpstr (redis_reply_get_text (reply), ==, value);
    }
  /* Every command went straight to its owner. */
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);

  /* Keyless commands go to a primary. */
  {
    g_autoptr(RedisReply) pong = CMD (cluster, "PING");

    g_assert_cmpstr (redis_reply_get_text (pong), ==, "PONG");
  }
}

typedef struct
{
  guint       left;
  GPtrArray  *replies;
  GError     *error;
} AsyncState;

static void
async_command_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  AsyncState *state = user_data;
  GError *error = NULL;
  RedisReply *reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  if (reply == NULL && state->error == NULL)
    state->error = error;
  else if (reply == NULL)
    g_error_free (error);
  else
    g_ptr_array_add (state->replies, reply);
  state->left--;
}

static void
test_routing_async (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  AsyncState state = { 0, g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref), NULL };
  const guint n = 300;

  flush_all ();
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("async:%u", i);
      const char *argv[] = { "INCR", key, NULL };

      state.left++;
      redis_client_command_async (REDIS_CLIENT (cluster), argv, NULL, async_command_cb, &state);
    }
  WAIT_UNTIL (state.left == 0, 10000);
  g_assert_no_error (state.error);
  g_assert_cmpuint (state.replies->len, ==, n);
  g_assert_cmpuint (dbsize (0) + dbsize (1) + dbsize (2), ==, n);
  g_ptr_array_unref (state.replies);
}

static void
test_crossslot (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autofree char *a = key_on_node (0, 0);
  g_autofree char *b = key_on_node (1, 0);
  g_autofree char *slot_a = g_strdup_printf ("%u", slot_of (a));
  g_autofree char *slot_b = g_strdup_printf ("%u", slot_of (b));
  const char *mset[] = { "MSET", a, "1", b, "2", NULL };
  const char *del[] = { "DEL", a, b, NULL };

  flush_all ();
  reply = redis_client_command_sync (REDIS_CLIENT (cluster), mset, NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_null (reply);
  g_assert_nonnull (strstr (error->message, slot_a));
  g_assert_nonnull (strstr (error->message, slot_b));
  g_clear_error (&error);

  reply = redis_client_command_sync (REDIS_CLIENT (cluster), del, NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* Nothing reached a server. */
  g_assert_cmpuint (dbsize (0) + dbsize (1) + dbsize (2), ==, 0);

  /* With a hash tag, they share a slot. */
  {
    g_autoptr(RedisReply) ok = CMD (cluster, "MSET", "{t}a", "1", "{t}b", "2");
    g_autoptr(RedisReply) values = CMD (cluster, "MGET", "{t}a", "{t}b");

    g_assert_cmpuint (redis_reply_get_n_elements (values), ==, 2);
    g_assert_cmpstr (redis_reply_get_text (redis_reply_get_element (values, 1)), ==, "2");
  }
  /* EVAL: the keys after numkeys. */
  {
    const char *eval[] = { "EVAL", "return 1", "2", a, b, NULL };

    reply = redis_client_command_sync (REDIS_CLIENT (cluster), eval, NULL, &error);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  }
}

/* ---- commands outside the key table ---------------------------------------- */

/* The calls of `COMMAND GETKEYS` the nodes served since the last reset. */
static guint64
getkeys_calls (void)
{
  guint64 total = 0;

  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *stats = CLI (i, "INFO", "commandstats");
      const char *line = strstr (stats, "cmdstat_command|getkeys:calls=");

      if (line != NULL)
        total += g_ascii_strtoull (line + strlen ("cmdstat_command|getkeys:calls="), NULL, 10);
    }
  return total;
}

static void
reset_stats (void)
{
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *ok = CLI (i, "CONFIG", "RESETSTAT");

      g_assert_cmpstr (ok, ==, "OK");
    }
}

/* LINSERT (fixed key position), SINTERCARD (keys after numkeys: they move
 * with the arguments) and LOLWUT (keyless) are not in the built-in table:
 * COMMAND GETKEYS tells where their keys are, its answer cached by name
 * and number of arguments unless the keys move. */
static void
test_getkeys (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(GError) error = NULL;
  const guint n_keys = 30;
  guint on_node[N_NODES] = { 0 };

  flush_all ();
  reset_stats ();
  for (guint i = 0; i < n_keys; i++)
    {
      g_autofree char *key = g_strdup_printf ("gk:%u", i);
      g_autoptr(RedisReply) pushed = CMD (cluster, "RPUSH", key, "a");
      g_autoptr(RedisReply) inserted = CMD (cluster, "LINSERT", key, "BEFORE", "a", "b");

      g_assert_cmpint (redis_reply_get_integer (inserted), ==, 2);
      on_node[owner_of_slot (slot_of (key))]++;
    }
  for (guint i = 0; i < N_NODES; i++)
    g_assert_cmpuint (on_node[i], >, 0);
  /* Each went straight to its owner: no MOVED; one query, then the cache. */
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);
  g_assert_cmpuint (info_u64 (cluster, "key-queries"), ==, 1);
  g_assert_cmpuint (getkeys_calls (), ==, 1);

  /* Keys that move with the arguments: asked every time. */
  {
    g_autoptr(RedisReply) a = CMD (cluster, "SADD", "{s}a", "x", "y");
    g_autoptr(RedisReply) b = CMD (cluster, "SADD", "{s}b", "y", "z");

    for (guint i = 0; i < 3; i++)
      {
        g_autoptr(RedisReply) card = CMD (cluster, "SINTERCARD", "2", "{s}a", "{s}b");

        g_assert_cmpint (redis_reply_get_integer (card), ==, 1);
      }
    g_assert_cmpuint (info_u64 (cluster, "key-queries"), ==, 4);
  }
  /* …and keys in two slots are refused before the command is sent. */
  {
    g_autofree char *a = key_on_node (0, 0);
    g_autofree char *b = key_on_node (1, 0);
    g_autofree char *slot_a = g_strdup_printf ("%u", slot_of (a));
    const char *argv[] = { "SINTERCARD", "2", a, b, NULL };
    g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);

    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, slot_a));
    g_assert_null (reply);
    g_clear_error (&error);
  }
  /* A keyless answer is cached too. */
  {
    g_autoptr(RedisReply) first = CMD (cluster, "LOLWUT", "VERSION", "5");
    guint64 queries = info_u64 (cluster, "key-queries");
    g_autoptr(RedisReply) second = CMD (cluster, "LOLWUT", "VERSION", "5");

    g_assert_cmpuint (info_u64 (cluster, "key-queries"), ==, queries);
  }
  /* An unknown command: the server's own error, not a routing one. */
  {
    const char *argv[] = { "NOSUCHCOMMAND", "k", NULL };
    g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);

    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
    g_assert_null (reply);
    g_clear_error (&error);
  }
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);
}

/* The same from async calls, and inside a pipeline split over nodes. */
static void
test_getkeys_async (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  AsyncState state = { 0, g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref), NULL };
  const guint n = 30;

  flush_all ();
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("gka:%u", i);
      g_autoptr(RedisReply) pushed = CMD (cluster, "RPUSH", key, "a");
      const char *argv[] = { "LINSERT", key, "AFTER", "a", "b", NULL };

      state.left++;
      redis_client_command_async (REDIS_CLIENT (cluster), argv, NULL, async_command_cb, &state);
    }
  WAIT_UNTIL (state.left == 0, 10000);
  g_assert_no_error (state.error);
  g_assert_cmpuint (state.replies->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (redis_reply_get_integer (state.replies->pdata[i]), ==, 2);
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);
  g_ptr_array_unref (state.replies);

  {
    g_autoptr(RedisBatch) batch = redis_batch_new ();
    g_autoptr(GPtrArray) replies = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *a = key_on_node (0, 1);
    g_autofree char *b = key_on_node (1, 1);
    g_autofree char *c = key_on_node (2, 1);
    const char *keys[] = { a, b, c };

    for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
      {
        redis_batch_add (batch, (const char *[]) { "RPUSH", keys[i], "a", NULL });
        redis_batch_add (batch, (const char *[]) { "LINSERT", keys[i], "BEFORE", "a", keys[i], NULL });
        redis_batch_add (batch, (const char *[]) { "HSTRLEN", keys[i], "f", NULL });
      }
    replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (replies->len, ==, 3 * G_N_ELEMENTS (keys));
    for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
      {
        g_assert_cmpint (redis_reply_get_integer (replies->pdata[3 * i + 1]), ==, 2);
        /* WRONGTYPE from the owner, not MOVED. */
        g_assert_cmpuint (redis_reply_get_kind (replies->pdata[3 * i + 2]), ==, REDIS_REPLY_KIND_ERROR);
        g_assert_true (g_str_has_prefix (redis_reply_get_text (replies->pdata[3 * i + 2]), "WRONGTYPE"));
      }
  }
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);
}

/* ---- per-node signals ---------------------------------------------------------- */

typedef struct
{
  GPtrArray *lost;       /* addresses */
  GPtrArray *replaced;   /* addresses */
  GError    *error;
} NodeSignals;

static void
on_node_lost (RedisClusterPool *cluster,
              const char       *address,
              guint             index,
              const GError     *error,
              NodeSignals      *seen)
{
  g_ptr_array_add (seen->lost, g_strdup (address));
  if (seen->error == NULL)
    seen->error = g_error_copy (error);
}

static void
on_node_replaced (RedisClusterPool *cluster,
                  const char       *address,
                  guint             index,
                  NodeSignals      *seen)
{
  g_ptr_array_add (seen->replaced, g_strdup (address));
}

/* CLIENT KILL on one node: its pool's connection-lost and
 * connection-replaced come from the cluster pool, with that node's
 * address, and from no other node. */
static void
test_node_signals (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autofree char *victim = g_strdup_printf ("127.0.0.1:%u", redis_test_server_get_port (nodes[1]));
  g_autofree char *key = key_on_node (1, 0);
  NodeSignals seen = { g_ptr_array_new_with_free_func (g_free), g_ptr_array_new_with_free_func (g_free), NULL };

  g_signal_connect (cluster, "connection-lost", G_CALLBACK (on_node_lost), &seen);
  g_signal_connect (cluster, "connection-replaced", G_CALLBACK (on_node_replaced), &seen);

  /* A connection to every node. */
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *k = key_on_node (i, 0);
      g_autoptr(RedisReply) reply = CMD (cluster, "SET", k, "1");
    }
  {
    g_autofree char *killed = CLI (1, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");

    g_assert_cmpuint (g_ascii_strtoull (killed, NULL, 10), >=, 1);
  }
  WAIT_UNTIL (seen.lost->len > 0, 5000);
  for (guint i = 0; i < seen.lost->len; i++)
    g_assert_cmpstr (seen.lost->pdata[i], ==, victim);
  g_assert_nonnull (seen.error);

  /* Calls to that node go on; its connection is replaced. */
  {
    g_autoptr(RedisReply) reply = CMD (cluster, "GET", key);
  }
  WAIT_UNTIL (seen.replaced->len >= seen.lost->len, 5000);
  for (guint i = 0; i < seen.replaced->len; i++)
    g_assert_cmpstr (seen.replaced->pdata[i], ==, victim);

  g_ptr_array_unref (seen.lost);
  g_ptr_array_unref (seen.replaced);
  g_clear_error (&seen.error);
}

/* ---- pipelines and transactions --------------------------------------------- */

static void
test_pipeline_across_nodes (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  const guint n = 60;

  flush_all ();
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("pipe:%u", i);
      g_autofree char *value = g_strdup_printf ("%u", i * 3);

      redis_batch_add (batch, (const char *[]) { "SET", key, value, NULL });
      redis_batch_add (batch, (const char *[]) { "GET", key, NULL });
    }
  redis_batch_add (batch, (const char *[]) { "PING", NULL });

  replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2 * n + 1);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *value = g_strdup_printf ("%u", i * 3);

      g_assert_cmpstr (redis_reply_get_text (replies->pdata[2 * i]), ==, "OK");
      g_assert_cmpstr (redis_reply_get_text (replies->pdata[2 * i + 1]), ==, value);
    }
  g_assert_cmpstr (redis_reply_get_text (replies->pdata[2 * n]), ==, "PONG");
  for (guint i = 0; i < N_NODES; i++)
    g_assert_cmpuint (dbsize (i), >, 0);
  g_clear_pointer (&replies, g_ptr_array_unref);

  /* The same, async. */
  {
    GAsyncResult *result = NULL;

    redis_client_pipeline_async (REDIS_CLIENT (cluster), batch, NULL, store_result_cb, &result);
    WAIT_UNTIL (result != NULL, 10000);
    replies = redis_client_pipeline_finish (REDIS_CLIENT (cluster), result, &error);
    g_object_unref (result);
    g_assert_no_error (error);
    g_assert_cmpuint (replies->len, ==, 2 * n + 1);
    g_assert_cmpstr (redis_reply_get_text (replies->pdata[2 * (n - 1) + 1]), ==, "177");
  }
}

static void
test_transaction (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(RedisBatch) spread = redis_batch_new ();
  g_autoptr(RedisBatch) tagged = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *a = key_on_node (0, 1);
  g_autofree char *b = key_on_node (2, 1);

  flush_all ();
  redis_batch_add (spread, (const char *[]) { "SET", a, "1", NULL });
  redis_batch_add (spread, (const char *[]) { "SET", b, "1", NULL });
  replies = redis_client_transaction_sync (REDIS_CLIENT (cluster), spread, NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_null (replies);
  g_clear_error (&error);
  g_assert_cmpuint (dbsize (0) + dbsize (2), ==, 0);

  redis_batch_add (tagged, (const char *[]) { "INCR", "{acct}x", NULL });
  redis_batch_add (tagged, (const char *[]) { "INCRBY", "{acct}y", "5", NULL });
  replies = redis_client_transaction_sync (REDIS_CLIENT (cluster), tagged, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[1]), ==, 5);
  g_assert_cmpuint (dbsize (owner_of_slot (slot_of ("acct"))), ==, 2);
}

static void
test_acquire_for_key (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(RedisConnection) lease = NULL;
  g_autoptr(RedisPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  GAsyncResult *result = NULL;
  g_autofree char *key = key_on_node (2, 3);
  g_autofree char *port = port_string (2);
  const char *argv[] = { "CONFIG", "GET", "port", NULL };

  redis_cluster_pool_acquire_for_key_async (cluster, (const guint8 *) key, strlen (key), NULL,
                                            store_result_cb, &result);
  WAIT_UNTIL (result != NULL, 10000);
  lease = redis_cluster_pool_acquire_for_key_finish (cluster, result, &error);
  g_object_unref (result);
  g_assert_no_error (error);
  reply = redis_client_command_sync (REDIS_CLIENT (lease), argv, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_text (redis_reply_get_element (reply, 1)), ==, port);

  pool = redis_cluster_pool_get_pool_for_key (cluster, (const guint8 *) key, strlen (key));
  redis_pool_release (pool, lease);
}

/* A no-reply call goes to the owner of its slot as it is. */
static void
test_noreply (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(GError) error = NULL;
  g_autofree char *key = key_on_node (2, 2);
  const char *set[] = { "SET", key, "quiet", NULL };
  const char *cross[] = { "MSET", "a", "1", "b", "2", NULL };

  g_assert_cmpuint (owner_of_slot (slot_of ("a")), !=, owner_of_slot (slot_of ("b")));
  flush_all ();
  g_assert_true (redis_client_noreply_command_sync (REDIS_CLIENT (cluster), set, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (dbsize (2) == 1, 5000);
  g_assert_false (redis_client_noreply_command_sync (REDIS_CLIENT (cluster), cross, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_cmpuint (dbsize (0) + dbsize (1), ==, 0);
}

/* After close, every form of call fails with CLOSED, before the wire. */
static void
test_close (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *a = key_on_node (0, 4);
  g_autofree char *b = key_on_node (1, 4);
  const char *get[] = { "GET", a, NULL };

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (cluster), NULL, &error));
  g_assert_no_error (error);
  reply = redis_client_command_sync (REDIS_CLIENT (cluster), get, NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_assert_null (reply);
  g_clear_error (&error);

  redis_batch_add (batch, (const char *[]) { "GET", a, NULL });
  redis_batch_add (batch, (const char *[]) { "GET", b, NULL });
  replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_assert_null (replies);
}

/* ---- redirections ------------------------------------------------------------ */

static void
count_cb (gpointer  instance,
          gpointer  user_data)
{
  (*(guint *) user_data)++;
}

/* Whether every node sends a reader of @key to @node (and @node serves it). */
static gboolean
slot_settled (const char *key,
              guint       node)
{
  g_autofree char *port = port_string (node);

  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *out = CLI (i, "GET", key);
      gboolean moved = g_str_has_prefix (out, "MOVED");

      if (i == node ? moved : !moved || !g_str_has_suffix (out, port))
        {
          g_test_message ("node %u answers GET %s with “%s”, not yet settled on node %u",
                          i, key, out, node);
          return FALSE;
        }
    }
  return TRUE;
}

/* Gives the slot of @key from @from to @node behind the cluster pool's
 * back, as a resharding does: the new owner imports it and takes it first
 * (which bumps its config epoch, so that its claim wins the gossip), then
 * the others learn it; every node must agree before the test goes on. */
static void
set_slot_node (const char *key,
               guint       from,
               guint       node)
{
  g_autofree char *s = g_strdup_printf ("%u", slot_of (key));
  g_autofree char *importing = CLI (node, "CLUSTER", "SETSLOT", s, "IMPORTING", node_ids[from]);

  g_assert_cmpstr (importing, ==, "OK");
  for (guint k = 0; k < N_NODES; k++)
    {
      guint i = (node + k) % N_NODES;
      g_autofree char *ok = CLI (i, "CLUSTER", "SETSLOT", s, "NODE", node_ids[node]);

      g_assert_cmpstr (ok, ==, "OK");
    }
  WAIT_UNTIL (slot_settled (key, node), 10000);
}

static void
test_moved (void)
{
  g_autoptr(RedisClusterPool) cluster = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *key = key_on_node (0, 5);
  guint changed = 0;

  flush_all ();
  cluster = new_cluster_pool ();
  g_signal_connect (cluster, "topology-changed", G_CALLBACK (count_cb), &changed);

  /* An empty slot given to node 1 behind the pool's back. */
  set_slot_node (key, 0, 1);

  {
    g_autoptr(RedisReply) ok = CMD (cluster, "SET", key, "moved");
    g_autoptr(RedisReply) value = CMD (cluster, "GET", key);

    g_assert_cmpstr (redis_reply_get_text (value), ==, "moved");
  }
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 1);   /* the slot was updated at once */
  g_assert_cmpuint (dbsize (1), ==, 1);
  g_assert_cmpuint (dbsize (0), ==, 0);
  /* One coalesced refresh, which sees the change. */
  WAIT_UNTIL (changed > 0, 10000);
  g_assert_cmpuint (changed, ==, 1);

  /* Back to node 0 (empty the slot first), async this time. */
  g_free (CLI (1, "DEL", key));
  set_slot_node (key, 1, 0);
  {
    GAsyncResult *result = NULL;
    g_autoptr(RedisReply) reply = NULL;
    const char *argv[] = { "SET", key, "back", NULL };

    redis_client_command_async (REDIS_CLIENT (cluster), argv, NULL, store_result_cb, &result);
    WAIT_UNTIL (result != NULL, 10000);
    reply = redis_client_command_finish (REDIS_CLIENT (cluster), result, &error);
    g_object_unref (result);
    g_assert_no_error (error);
  }
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 2);
  g_assert_cmpuint (dbsize (0), ==, 1);
}

static void
test_max_redirects (void)
{
  g_autoptr(RedisClusterPool) cluster = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autofree char *key = key_on_node (2, 7);
  g_autofree char *uri = cluster_uri ();
  const char *argv[] = { "GET", key, NULL };

  cluster = g_initable_new (REDIS_TYPE_CLUSTER_POOL, NULL, &error,
                            "uri", uri, "max-redirects", 0,
                            "topology-refresh-interval", 0, NULL);
  g_assert_no_error (error);
  g_assert_cmpuint (redis_cluster_pool_get_max_redirects (cluster), ==, 0);
  set_slot_node (key, 2, 1);
  reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_assert_nonnull (strstr (error->message, "MOVED"));
  set_slot_node (key, 1, 2);
}

static void
test_ask (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autofree char *key = key_on_node (0, 9);
  g_autofree char *other = NULL;
  g_autofree char *slot = g_strdup_printf ("%u", slot_of (key));
  g_autofree char *port1 = port_string (1);
  g_autofree char *out = NULL;
  GAsyncResult *result = NULL;
  g_autoptr(GError) error = NULL;

  flush_all ();
  /* Two keys of the slot on node 0; migrating the slot to node 1, one
   * moved already. */
  for (guint n = 0;; n++)
    {
      g_free (other);
      other = g_strdup_printf ("{%s}%u", key, n);
      if (slot_of (other) == slot_of (key))
        break;
    }
  {
    g_autoptr(RedisReply) a = CMD (cluster, "SET", key, "migrated");
    g_autoptr(RedisReply) b = CMD (cluster, "SET", other, "stayed");
  }
  g_free (CLI (1, "CLUSTER", "SETSLOT", slot, "IMPORTING", node_ids[0]));
  g_free (CLI (0, "CLUSTER", "SETSLOT", slot, "MIGRATING", node_ids[1]));
  out = CLI (0, "MIGRATE", "127.0.0.1", port1, key, "0", "5000");
  g_assert_cmpstr (out, ==, "OK");

  /* The moved key: ASK, then ASKING + GET on node 1. */
  {
    g_autoptr(RedisReply) a = CMD (cluster, "GET", key);
    g_autoptr(RedisReply) b = CMD (cluster, "GET", other);

    g_assert_cmpstr (redis_reply_get_text (a), ==, "migrated");
    g_assert_cmpstr (redis_reply_get_text (b), ==, "stayed");
  }
  g_assert_cmpuint (info_u64 (cluster, "ask"), ==, 1);
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);

  /* Async too. */
  {
    g_autoptr(RedisReply) reply = NULL;
    const char *argv[] = { "GET", key, NULL };

    redis_client_command_async (REDIS_CLIENT (cluster), argv, NULL, store_result_cb, &result);
    WAIT_UNTIL (result != NULL, 10000);
    reply = redis_client_command_finish (REDIS_CLIENT (cluster), result, &error);
    g_object_unref (result);
    g_assert_no_error (error);
    g_assert_cmpstr (redis_reply_get_text (reply), ==, "migrated");
  }
  g_assert_cmpuint (info_u64 (cluster, "ask"), ==, 2);

  /* Both keys at once, one on each side: TRYAGAIN from the source, retried
   * with backoff for the retry budget, then returned. */
  {
    const char *mget[] = { "MGET", key, other, NULL };
    g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (cluster), mget, NULL, &error);

    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
    g_assert_true (g_str_has_prefix (error->message, "TRYAGAIN"));
    g_assert_cmpuint (info_u64 (cluster, "tryagain"), >=, 2);
    g_clear_error (&error);
  }

  /* Finish the migration. */
  g_free (CLI (0, "MIGRATE", "127.0.0.1", port1, other, "0", "5000"));
  set_slot_node (key, 0, 1);
  {
    g_autoptr(RedisReply) b = CMD (cluster, "GET", other);

    g_assert_cmpstr (redis_reply_get_text (b), ==, "stayed");
  }
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 1);
  g_free (CLI (1, "DEL", key, other));
  set_slot_node (key, 1, 0);
}

/* The periodic refresh sees a slot that moved with no call to tell it. */
static void
test_periodic_refresh (void)
{
  g_autoptr(RedisClusterPool) cluster = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GVariant) ranges = NULL;
  g_autofree char *uri = cluster_uri ();
  g_autofree char *key = key_on_node (1, 11);
  guint changed = 0;

  flush_all ();
  cluster = g_initable_new (REDIS_TYPE_CLUSTER_POOL, NULL, &error,
                            "uri", uri, "topology-refresh-interval", 1, NULL);
  g_assert_no_error (error);
  g_signal_connect (cluster, "topology-changed", G_CALLBACK (count_cb), &changed);

  set_slot_node (key, 1, 2);
  WAIT_UNTIL (changed > 0, 5000);
  /* Node 1's range is now split around the slot: two more ranges. */
  info = redis_cluster_pool_get_info (cluster);
  ranges = g_variant_lookup_value (info, "ranges", G_VARIANT_TYPE ("a(qqs)"));
  g_assert_cmpuint (g_variant_n_children (ranges), ==, N_NODES + 2);
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);
  {
    g_autoptr(RedisReply) ok = CMD (cluster, "SET", key, "x");
  }
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, 0);
  g_assert_cmpuint (dbsize (2), ==, 1);

  g_free (CLI (2, "DEL", key));
  set_slot_node (key, 2, 1);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/cluster/key-slot/vectors", test_key_slot_vectors);
  if (!redis_test_server_available ())
    {
      g_test_add_data_func ("/cluster/live", "redis-server not found", test_skip_cb);
      return g_test_run ();
    }
    {
      start_cluster ();
      g_test_add_func ("/cluster/key-slot/live", test_key_slot_live);
      g_test_add_func ("/cluster/routing/sync", test_routing);
      g_test_add_func ("/cluster/routing/async", test_routing_async);
      g_test_add_func ("/cluster/crossslot", test_crossslot);
      g_test_add_func ("/cluster/getkeys/sync", test_getkeys);
      g_test_add_func ("/cluster/getkeys/async", test_getkeys_async);
      g_test_add_func ("/cluster/node-signals", test_node_signals);
      g_test_add_func ("/cluster/pipeline/across-nodes", test_pipeline_across_nodes);
      g_test_add_func ("/cluster/transaction", test_transaction);
      g_test_add_func ("/cluster/noreply", test_noreply);
      g_test_add_func ("/cluster/close", test_close);
      g_test_add_func ("/cluster/acquire-for-key", test_acquire_for_key);
      g_test_add_func ("/cluster/redirect/moved", test_moved);
      g_test_add_func ("/cluster/redirect/max-redirects", test_max_redirects);
      g_test_add_func ("/cluster/redirect/ask", test_ask);
      g_test_add_func ("/cluster/topology/periodic-refresh", test_periodic_refresh);
    }

  status = g_test_run ();

  for (guint i = 0; i < N_NODES; i++)
    {
      g_clear_pointer (&nodes[i], redis_test_server_free);
      g_free (node_ids[i]);
      g_free (bus_ports[i]);
    }
  return status;
}
