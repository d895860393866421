/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* RedisClusterPool against a real 3-primary cluster on loopback: key
 * slots (vectors and CLUSTER KEYSLOT), routing to the owners, CROSSSLOT
 * refused client-side, MOVED after CLUSTER SETSLOT … NODE, ASK during a
 * slot migration, pipelines across nodes, transactions in one slot;
 * redirections per command of a pipeline and of a whole transaction,
 * TRYAGAIN retried to the call's deadline, the broadcast commands and
 * their response policies, the address-mapping hook (nodes announcing
 * an unreachable 127.0.0.2); the built-in key table against the
 * server's own key positions (COMMAND GETKEYS). */

#include <string.h>

#include "redis-test-server.h"
#include "cluster-fixture.h"
#include "redis-cluster-broadcast-private.h"
#include "redis-cluster-keys-private.h"
#include "redis-command-private.h"
#include "redis-reply-private.h"
#include "test-client-helpers.h"

#define N_NODES 3

/* The cluster of the whole run (cluster-fixture.h), started by main();
 * nodes and node_ids alias its arrays for brevity. */
static ClusterFixture *fixture;
static RedisTestServer **nodes;
static char **node_ids;

#define CLI(i, ...) CLUSTER_FIXTURE_CLI (fixture, (i), __VA_ARGS__)

static char *
port_string (guint index)
{
  return cluster_fixture_port_string (fixture, index);
}

static char *
cluster_uri (void)
{
  return g_strdup_printf ("redis://127.0.0.1:%u?addr=127.0.0.1:%u",
                          redis_test_server_get_port (nodes[0]),
                          redis_test_server_get_port (nodes[1]));
}

static void
start_cluster (void)
{
  fixture = cluster_fixture_new (N_NODES, 0, NULL);
  nodes = fixture->servers;
  node_ids = fixture->ids;
}

static guint
owner_of_slot (guint slot)
{
  return cluster_fixture_initial_owner (fixture, slot);
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
  return cluster_fixture_key_on_node (fixture, node, skip);
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

#define CMD(c, ...) CLUSTER_FIXTURE_CMD ((c), __VA_ARGS__)

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
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);

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

/* ---- the key table against the server ----------------------------------- */

/* The slot of the command @argv as the slow path finds it: COMMAND INFO
 * @info_name (the subcommand's own, "object|encoding": a container has
 * no flags of its own) and COMMAND GETKEYS asked of @node, their replies
 * read by redis_cluster_key_query_finish() (what routing does for a
 * command outside the table), no cache. */
static gint
slow_slot (RedisPool           *node,
           const char          *info_name,
           const char * const  *argv,
           const guint8        *data,
           gsize                len,
           gboolean            *readonly)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) getkeys_argv = NULL;
  g_autoptr(RedisReply) getkeys = NULL;
  g_autoptr(RedisReply) info = NULL;
  const char *info_argv[] = { "COMMAND", "INFO", info_name, NULL };
  gint slot;

  g_strv_builder_add_many (builder, "COMMAND", "GETKEYS", NULL);
  g_strv_builder_addv (builder, (const char **) argv);
  getkeys_argv = g_strv_builder_end (builder);
  /* A command of its name alone has no key, and COMMAND GETKEYS refuses
   * it: the answer it gives a keyless command is the one it would give. */
  if (argv[1] == NULL)
    g_set_error_literal (&error, REDIS_ERROR, REDIS_ERROR_SERVER, "ERR The command has no key arguments");
  else
    getkeys = redis_client_command_sync (REDIS_CLIENT (node), (const char * const *) getkeys_argv,
                                         NULL, &error);
  /* The server's error replies come back as SERVER errors: only "no key
   * arguments" is an answer; anything else is a command this test
   * built wrong, and would compare as keyless. */
  if (error != NULL)
    {
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
      if (strstr (error->message, "no key arguments") == NULL)
        g_error ("COMMAND GETKEYS %s: %s", argv[0], error->message);
      getkeys = redis_reply_new_text (REDIS_REPLY_KIND_ERROR, error->message, strlen (error->message));
      g_clear_error (&error);
    }
  info = redis_client_command_sync (REDIS_CLIENT (node), info_argv, NULL, &error);
  g_assert_no_error (error);

  slot = redis_cluster_key_query_finish (NULL, data, len, info, getkeys, readonly, &error);
  g_assert_true ((slot == REDIS_CLUSTER_SLOT_INVALID) == (error != NULL));
  return slot;
}

/* COMMAND INFO of @name: its arity, and the first of its subcommands other
 * than HELP (NULL: none). */
static gint
command_arity (RedisPool   *node,
               const char  *name,
               char       **subcommand)
{
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "COMMAND", "INFO", name, NULL };
  g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (node), argv, NULL, &error);
  RedisReply *entry;

  g_assert_no_error (error);
  entry = redis_reply_get_element (reply, 0);
  g_assert_cmpint (redis_reply_get_kind (entry), ==, REDIS_REPLY_KIND_ARRAY);   /* known to the server */
  *subcommand = NULL;
  if (redis_reply_get_n_elements (entry) > 9)
    {
      RedisReply *subs = redis_reply_get_element (entry, 9);

      for (guint i = 0; i < redis_reply_get_n_elements (subs) && *subcommand == NULL; i++)
        {
          const char *full = redis_reply_get_text (redis_reply_get_element (redis_reply_get_element (subs, i), 0));
          const char *bar = strchr (full, '|');

          g_assert_nonnull (bar);
          if (g_ascii_strcasecmp (bar + 1, "help") != 0)
            *subcommand = g_ascii_strup (bar + 1, -1);
        }
    }
  return (gint) redis_reply_get_integer (redis_reply_get_element (entry, 1));
}

/* For every command of the built-in key table, the slot the fast path
 * (redis_cluster_command_slot(): the table, the RESP encoding) computes
 * equals the slow path's (the server's own key positions), and so does
 * the read-only flag: with all arguments in one slot but one, moved in
 * turn over every position, a key position the table gets wrong changes
 * the answer (a slot, NONE, or INVALID for two slots). */
static void
test_key_table_matches_server (void)
{
  g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u", redis_test_server_get_port (nodes[0]));
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisPool) node = redis_pool_new_sync (uri, NULL, &error);
  guint n_commands = 0, n_compared = 0, n_keyed = 0;
  const char *name;

  g_assert_no_error (error);
  for (guint c = 0; (name = redis_cluster_key_table_get_name (c)) != NULL; c++)
    {
      g_autofree char *sub = NULL;
      gint arity = command_arity (node, name, &sub);
      g_autofree char *info_name = sub != NULL ? g_strdup_printf ("%s|%s", name, sub) : g_strdup (name);
      /* The EVAL and FCALL forms: numkeys, then the keys. */
      gboolean numkeys = g_str_has_prefix (name, "EVAL") || g_str_has_prefix (name, "FCALL");
      guint first_arg = sub != NULL ? 2 : 1;
      guint argc;
      gboolean keyed = FALSE;

      if (sub != NULL)
        {
          g_autofree char *none = NULL;

          arity = command_arity (node, info_name, &none);
        }
      /* Variadic: two arguments more than the least, for the ranges. */
      argc = arity > 0 ? (guint) arity : (guint) -arity + 2;
      g_assert_cmpuint (argc, >, first_arg - 1);

      /* moved == argc: none moved, all in one slot. */
      for (guint moved = first_arg; moved <= argc; moved++)
        {
          g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
          g_autoptr(GByteArray) encoded = g_byte_array_new ();
          g_autoptr(GError) fast_error = NULL;
          gboolean fast_readonly = FALSE, slow_readonly = FALSE;
          gsize consumed = 0;
          gint fast, slow;

          if (numkeys && moved == 2)
            continue;
          /* Names in either case; keys of 2-digit lengths. */
          g_ptr_array_add (argv, moved % 2 == 0 ? g_strdup (name) : g_ascii_strdown (name, -1));
          if (sub != NULL)
            g_ptr_array_add (argv, g_strdup (sub));
          for (guint i = first_arg; i < argc; i++)
            g_ptr_array_add (argv, numkeys && i == 2 ? g_strdup ("2")
                                   : g_strdup_printf ("{%s}argument-%u", i == moved ? "other" : "same", i));
          g_ptr_array_add (argv, NULL);
          g_assert_true (redis_encode_strv (encoded, (const char * const *) argv->pdata,
                                            NULL, NULL, NULL, NULL));

          fast = redis_cluster_command_slot (encoded->data, encoded->len, &consumed, NULL,
                                             &fast_readonly, &fast_error);
          g_assert_cmpuint (consumed, ==, encoded->len);
          slow = slow_slot (node, info_name, (const char * const *) argv->pdata, encoded->data,
                            encoded->len, &slow_readonly);
          if (fast != slow || fast_readonly != slow_readonly)
            g_error ("%s%s%s (argument %u moved): the table says slot %d%s, the server %d%s",
                     name, sub != NULL ? " " : "", sub != NULL ? sub : "", moved,
                     fast, fast_readonly ? " read-only" : "", slow, slow_readonly ? " read-only" : "");
          keyed |= fast >= 0 || fast == REDIS_CLUSTER_SLOT_INVALID;
          n_compared++;
        }
      n_keyed += keyed;
      n_commands++;
    }
  g_test_message ("%u commands, %u with keys, %u forms compared", n_commands, n_keyed, n_compared);
  g_assert_cmpuint (n_commands, >, 100);
  g_assert_cmpuint (n_keyed, >, 80);
}

/* ---- commands outside the key table ---------------------------------------- */

/* The calls of `COMMAND GETKEYS` the nodes served since the last reset. */
static guint64
getkeys_calls (void)
{
  guint64 total = 0;

  for (guint i = 0; i < N_NODES; i++)
    total += cluster_fixture_cmdstat_calls (fixture, i, "command|getkeys");
  return total;
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
  cluster_fixture_reset_stats (fixture);
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
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "key-queries"), ==, 1);
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
    g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "key-queries"), ==, 4);
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
    guint64 queries = cluster_fixture_pool_info_u64 (cluster, "key-queries");
    g_autoptr(RedisReply) second = CMD (cluster, "LOLWUT", "VERSION", "5");

    g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "key-queries"), ==, queries);
  }
  /* An unknown command: the server's own error, not a routing one. */
  {
    const char *argv[] = { "NOSUCHCOMMAND", "k", NULL };
    g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);

    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
    g_assert_null (reply);
    g_clear_error (&error);
  }
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
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
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
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
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
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
  cluster_fixture_give_slot_of (fixture, key, 0, 1);

  {
    g_autoptr(RedisReply) ok = CMD (cluster, "SET", key, "moved");
    g_autoptr(RedisReply) value = CMD (cluster, "GET", key);

    g_assert_cmpstr (redis_reply_get_text (value), ==, "moved");
  }
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 1);   /* the slot was updated at once */
  g_assert_cmpuint (dbsize (1), ==, 1);
  g_assert_cmpuint (dbsize (0), ==, 0);
  /* One coalesced refresh, which sees the change. */
  WAIT_UNTIL (changed > 0, 10000);
  g_assert_cmpuint (changed, ==, 1);

  /* Back to node 0 (empty the slot first), async this time. */
  g_free (CLI (1, "DEL", key));
  cluster_fixture_give_slot_of (fixture, key, 1, 0);
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
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 2);
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
  cluster_fixture_give_slot_of (fixture, key, 2, 1);
  reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_assert_nonnull (strstr (error->message, "MOVED"));
  cluster_fixture_give_slot_of (fixture, key, 1, 2);
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
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "ask"), ==, 1);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);

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
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "ask"), ==, 2);

  /* Both keys at once, one on each side: TRYAGAIN from the source, retried
   * with backoff for the retry budget, then returned. */
  {
    const char *mget[] = { "MGET", key, other, NULL };
    g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (cluster), mget, NULL, &error);

    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
    g_assert_true (g_str_has_prefix (error->message, "TRYAGAIN"));
    g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "tryagain"), >=, 2);
    g_clear_error (&error);
  }

  /* Finish the migration. */
  g_free (CLI (0, "MIGRATE", "127.0.0.1", port1, other, "0", "5000"));
  cluster_fixture_give_slot_of (fixture, key, 0, 1);
  {
    g_autoptr(RedisReply) b = CMD (cluster, "GET", other);

    g_assert_cmpstr (redis_reply_get_text (b), ==, "stayed");
  }
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 1);
  g_free (CLI (1, "DEL", key, other));
  cluster_fixture_give_slot_of (fixture, key, 1, 0);
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

  cluster_fixture_give_slot_of (fixture, key, 1, 2);
  WAIT_UNTIL (changed > 0, 5000);
  /* Node 1's range is now split around the slot: two more ranges. */
  info = redis_cluster_pool_get_info (cluster);
  ranges = g_variant_lookup_value (info, "ranges", G_VARIANT_TYPE ("a(qqs)"));
  g_assert_cmpuint (g_variant_n_children (ranges), ==, N_NODES + 2);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
  {
    g_autoptr(RedisReply) ok = CMD (cluster, "SET", key, "x");
  }
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
  g_assert_cmpuint (dbsize (2), ==, 1);

  g_free (CLI (2, "DEL", key));
  cluster_fixture_give_slot_of (fixture, key, 2, 1);
}

/* ---- redirections everywhere (helper H2) ------------------------------------- */

/* Puts the slot of @key in migration from node @from to node @to, with
 * @key moved already and @stays (same slot) left on @from: the state in
 * which the source answers ASK for @key and TRYAGAIN for both at once. */
static void
start_migration (const char *key,
                 const char *stays,
                 guint       from,
                 guint       to)
{
  g_autofree char *slot = g_strdup_printf ("%u", slot_of (key));
  g_autofree char *port = port_string (to);
  g_autofree char *out = NULL;

  g_assert_cmpuint (slot_of (key), ==, slot_of (stays));
  g_free (CLI (to, "CLUSTER", "SETSLOT", slot, "IMPORTING", node_ids[from]));
  g_free (CLI (from, "CLUSTER", "SETSLOT", slot, "MIGRATING", node_ids[to]));
  out = CLI (from, "MIGRATE", "127.0.0.1", port, key, "0", "5000");
  g_assert_cmpstr (out, ==, "OK");
}

/* Ends it: the rest moved, the slot given to @to, then everything deleted
 * and the slot given back to @from, as the cluster was made. */
static void
end_migration (const char *key,
               const char *stays,
               guint       from,
               guint       to)
{
  g_autofree char *port = port_string (to);

  g_free (CLI (from, "MIGRATE", "127.0.0.1", port, stays, "0", "5000"));
  cluster_fixture_give_slot_of (fixture, key, from, to);
  g_free (CLI (to, "DEL", key, stays));
  cluster_fixture_give_slot_of (fixture, key, to, from);
}

/* A key of the slot of @key, other than it. */
static char *
same_slot_key (const char *key)
{
  for (guint n = 0;; n++)
    {
      g_autofree char *other = g_strdup_printf ("{%s}%u", key, n);

      if (slot_of (other) == slot_of (key))
        return g_steal_pointer (&other);
    }
}

static gint64
get_integer (guint       node,
             const char *key)
{
  g_autofree char *out = CLI (node, "GET", key);

  return g_ascii_strtoll (out, NULL, 10);
}

/* TRYAGAIN is retried until the call's own deadline (command_timeout of
 * the URI), not for a fixed time: a short timeout gives up sooner, a
 * longer one keeps trying longer. */
static void
test_tryagain_deadline (void)
{
  g_autofree char *key = key_on_node (0, 21);
  g_autofree char *stays = same_slot_key (key);
  const char *mget[] = { "MGET", key, stays, NULL };
  /* Scaled: a slow run must not time out reading the slot map. */
  const guint timeouts_ms[] = { test_scale_ms (300), test_scale_ms (1500) };

  flush_all ();
  {
    g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
    g_autoptr(RedisReply) a = CMD (cluster, "SET", key, "a");
    g_autoptr(RedisReply) b = CMD (cluster, "SET", stays, "b");
  }
  start_migration (key, stays, 0, 1);

  for (guint t = 0; t < G_N_ELEMENTS (timeouts_ms); t++)
    {
      g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u?command_timeout=%ums",
                                              redis_test_server_get_port (nodes[0]), timeouts_ms[t]);
      g_autoptr(RedisClusterPool) cluster = redis_cluster_pool_new_sync (uri, NULL, NULL);
      g_autoptr(RedisReply) reply = NULL;
      g_autoptr(GError) error = NULL;
      gint64 start = g_get_monotonic_time ();
      gint64 elapsed_ms;

      g_assert_nonnull (cluster);
      reply = redis_client_command_sync (REDIS_CLIENT (cluster), mget, NULL, &error);
      elapsed_ms = (g_get_monotonic_time () - start) / 1000;
      g_test_message ("command_timeout=%ums: TRYAGAIN returned after %" G_GINT64_FORMAT " ms, "
                      "%" G_GUINT64_FORMAT " retries", timeouts_ms[t], elapsed_ms,
                      cluster_fixture_pool_info_u64 (cluster, "tryagain"));
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
      g_assert_true (g_str_has_prefix (error->message, "TRYAGAIN"));
      g_assert_cmpint (elapsed_ms, >=, timeouts_ms[t] - 20);
      g_assert_cmpint (elapsed_ms, <, timeouts_ms[t] + test_scale_ms (1000));
      g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "tryagain"), >=, 2);
    }

  /* Async: the same bound, without blocking the context. */
  {
    g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u?command_timeout=%ums",
                                            redis_test_server_get_port (nodes[0]),
                                            timeouts_ms[0]);
    g_autoptr(RedisClusterPool) cluster = redis_cluster_pool_new_sync (uri, NULL, NULL);
    g_autoptr(RedisReply) reply = NULL;
    g_autoptr(GError) error = NULL;
    GAsyncResult *result = NULL;
    gint64 start = g_get_monotonic_time ();

    redis_client_command_async (REDIS_CLIENT (cluster), mget, NULL, store_result_cb, &result);
    WAIT_UNTIL (result != NULL, 5000);
    g_assert_cmpint ((g_get_monotonic_time () - start) / 1000, >=, timeouts_ms[0] - 20);
    reply = redis_client_command_finish (REDIS_CLIENT (cluster), result, &error);
    g_object_unref (result);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  }
  end_migration (key, stays, 0, 1);
}

/* A pipeline over several nodes: the commands answered MOVED (a slot
 * moved behind the pool's back) are sent again to the new owner, those
 * answered ASK (a slot in migration) again with ASKING; the others ran
 * once, and are not sent again. Replies in order, no redirection among
 * them. */
static void
check_pipeline_redirects (gboolean async)
{
  g_autoptr(RedisClusterPool) cluster = NULL;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *moved = key_on_node (0, 31);      /* slot given to node 1 */
  g_autofree char *asked = key_on_node (2, 31);      /* migrated to node 1 */
  g_autofree char *stays = same_slot_key (asked);    /* still on node 2 */
  g_autofree char *fixed = key_on_node (1, 31);      /* never moves */

  flush_all ();
  cluster = new_cluster_pool ();
  {
    g_autoptr(RedisReply) a = CMD (cluster, "SET", asked, "20");
    g_autoptr(RedisReply) b = CMD (cluster, "SET", stays, "10");
  }
  cluster_fixture_give_slot_of (fixture, moved, 0, 1);
  start_migration (asked, stays, 2, 1);

  redis_batch_add (batch, (const char *[]) { "INCR", fixed, NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", moved, NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", stays, NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", asked, NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", moved, NULL });
  redis_batch_add (batch, (const char *[]) { "PING", NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", fixed, NULL });
  if (async)
    {
      GAsyncResult *result = NULL;

      redis_client_pipeline_async (REDIS_CLIENT (cluster), batch, NULL, store_result_cb, &result);
      WAIT_UNTIL (result != NULL, 10000);
      replies = redis_client_pipeline_finish (REDIS_CLIENT (cluster), result, &error);
      g_object_unref (result);
    }
  else
    replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 7);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[0]), ==, 1);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[1]), ==, 1);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[2]), ==, 11);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[3]), ==, 21);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[4]), ==, 2);
  g_assert_cmpstr (redis_reply_get_text (replies->pdata[5]), ==, "PONG");
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[6]), ==, 2);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), >=, 1);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "ask"), ==, 1);
  /* What ran once is there once, where it belongs. */
  g_assert_cmpint (get_integer (1, fixed), ==, 2);
  g_assert_cmpint (get_integer (1, moved), ==, 2);
  g_assert_cmpint (get_integer (2, stays), ==, 11);
  {
    /* (node 1 answers MOVED to a GET without ASKING while it imports) */
    g_autoptr(RedisReply) value = CMD (cluster, "GET", asked);

    g_assert_cmpstr (redis_reply_get_text (value), ==, "21");
  }
  g_assert_cmpuint (dbsize (0), ==, 0);

  /* A pipeline of one slot whose later command is redirected: the first
   * ran on the source, only the second goes to the target. */
  {
    g_autoptr(RedisBatch) one_slot = redis_batch_new ();
    g_autoptr(GPtrArray) more = NULL;

    redis_batch_add (one_slot, (const char *[]) { "INCR", stays, NULL });
    redis_batch_add (one_slot, (const char *[]) { "INCR", asked, NULL });
    more = redis_client_pipeline_sync (REDIS_CLIENT (cluster), one_slot, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (redis_reply_get_integer (more->pdata[0]), ==, 12);
    g_assert_cmpint (redis_reply_get_integer (more->pdata[1]), ==, 22);
    g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "ask"), ==, 3);   /* with the GET above */
  }

  end_migration (asked, stays, 2, 1);
  g_free (CLI (1, "DEL", moved));
  cluster_fixture_give_slot_of (fixture, moved, 1, 0);
}

static void
test_pipeline_redirects (void)
{
  check_pipeline_redirects (FALSE);
}

static void
test_pipeline_redirects_async (void)
{
  check_pipeline_redirects (TRUE);
}

/* A pipeline's command answered TRYAGAIN (its keys on both sides of a
 * slot migration) did not run: it alone is tried again, until the call's
 * deadline (then its reply is the TRYAGAIN error), or until the migration
 * ends and it follows the MOVED to the new owner. The other commands ran
 * once. */
static void
test_pipeline_tryagain (void)
{
  g_autofree char *key = key_on_node (0, 71);
  g_autofree char *stays = same_slot_key (key);
  g_autofree char *fixed = key_on_node (2, 71);
  g_autofree char *base = cluster_uri ();
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;

  flush_all ();
  {
    g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
    g_autoptr(RedisReply) a = CMD (cluster, "SET", key, "a");
    g_autoptr(RedisReply) b = CMD (cluster, "SET", stays, "b");
  }
  start_migration (key, stays, 0, 1);
  redis_batch_add (batch, (const char *[]) { "INCR", fixed, NULL });
  redis_batch_add (batch, (const char *[]) { "MGET", key, stays, NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", fixed, NULL });

  /* A short deadline: the TRYAGAIN error is the command's reply. */
  {
    g_autofree char *uri = g_strdup_printf ("%s&command_timeout=%u", base, test_scale_ms (300));
    g_autoptr(RedisClusterPool) cluster = redis_cluster_pool_new_sync (uri, NULL, NULL);
    g_autoptr(GPtrArray) replies = NULL;
    gint64 start = g_get_monotonic_time ();

    replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint ((g_get_monotonic_time () - start) / 1000, >=, test_scale_ms (300) - 20);
    g_assert_cmpint (redis_reply_get_integer (replies->pdata[0]), ==, 1);
    g_assert_true (g_str_has_prefix (redis_reply_get_text (replies->pdata[1]), "TRYAGAIN"));
    g_assert_cmpint (redis_reply_get_integer (replies->pdata[2]), ==, 2);
    g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "tryagain"), >=, 2);
  }

  /* A long one: the migration ends while the pipeline waits. */
  {
    g_autofree char *uri = g_strdup_printf ("%s&command_timeout=%u", base, test_scale_ms (30000));
    g_autoptr(RedisClusterPool) cluster = redis_cluster_pool_new_sync (uri, NULL, NULL);
    g_autoptr(GPtrArray) replies = NULL;
    g_autofree char *port = port_string (1);
    GAsyncResult *result = NULL;
    RedisReply *both;

    redis_client_pipeline_async (REDIS_CLIENT (cluster), batch, NULL, store_result_cb, &result);
    WAIT_UNTIL (cluster_fixture_pool_info_u64 (cluster, "tryagain") >= 2, 5000);
    g_assert_null (result);
    g_free (CLI (0, "MIGRATE", "127.0.0.1", port, stays, "0", "5000"));
    cluster_fixture_give_slot_of (fixture, key, 0, 1);
    WAIT_UNTIL (result != NULL, 10000);
    replies = redis_client_pipeline_finish (REDIS_CLIENT (cluster), result, &error);
    g_object_unref (result);
    g_assert_no_error (error);
    g_assert_cmpint (redis_reply_get_integer (replies->pdata[0]), ==, 3);
    both = replies->pdata[1];
    g_assert_cmpuint (redis_reply_get_kind (both), ==, REDIS_REPLY_KIND_ARRAY);
    g_assert_cmpstr (redis_reply_get_text (redis_reply_get_element (both, 0)), ==, "a");
    g_assert_cmpstr (redis_reply_get_text (redis_reply_get_element (both, 1)), ==, "b");
    g_assert_cmpint (redis_reply_get_integer (replies->pdata[2]), ==, 4);
    g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), >=, 1);
  }
  g_assert_cmpint (get_integer (2, fixed), ==, 4);

  g_free (CLI (1, "DEL", key, stays));
  cluster_fixture_give_slot_of (fixture, key, 1, 0);
}

/* A transaction whose slot moved: EXEC is refused (a queued command got
 * MOVED, nothing ran) and the whole transaction goes to the new owner,
 * once. */
static void
test_transaction_moved (void)
{
  g_autoptr(RedisClusterPool) cluster = NULL;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *key = key_on_node (2, 41);
  g_autofree char *other = same_slot_key (key);

  flush_all ();
  cluster = new_cluster_pool ();
  cluster_fixture_give_slot_of (fixture, key, 2, 0);

  redis_batch_add (batch, (const char *[]) { "INCR", key, NULL });
  redis_batch_add (batch, (const char *[]) { "INCRBY", other, "5", NULL });
  replies = redis_client_transaction_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[0]), ==, 1);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[1]), ==, 5);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 1);
  g_assert_cmpint (get_integer (0, key), ==, 1);
  g_assert_cmpint (get_integer (0, other), ==, 5);
  g_assert_cmpuint (dbsize (2), ==, 0);
  g_clear_pointer (&replies, g_ptr_array_unref);

  /* And back, async. */
  g_free (CLI (0, "DEL", key, other));
  cluster_fixture_give_slot_of (fixture, key, 0, 2);
  {
    GAsyncResult *result = NULL;

    redis_client_transaction_async (REDIS_CLIENT (cluster), batch, NULL, store_result_cb, &result);
    WAIT_UNTIL (result != NULL, 10000);
    replies = redis_client_transaction_finish (REDIS_CLIENT (cluster), result, &error);
    g_object_unref (result);
    g_assert_no_error (error);
    g_assert_cmpint (redis_reply_get_integer (replies->pdata[1]), ==, 5);
  }
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 2);
  g_assert_cmpint (get_integer (2, key), ==, 1);
}

/* A transaction in a slot being migrated: when every key it touches is
 * gone from the source (ASK for each), it is sent whole to the target
 * after ASKING (where a key that is on neither node would get TRYAGAIN:
 * the target takes keys it does not have only one by one); when some are
 * still on the source (QUEUED there), it straddles the migration, is not
 * sent to the target, and waits as for TRYAGAIN (here until its deadline:
 * nothing ran, anywhere). */
static void
test_transaction_ask (void)
{
  g_autofree char *asked = key_on_node (1, 81);
  g_autofree char *stays = same_slot_key (asked);
  g_autofree char *base = cluster_uri ();
  g_autofree char *uri = g_strdup_printf ("%s&command_timeout=%u", base, test_scale_ms (300));
  g_autoptr(RedisClusterPool) cluster = NULL;
  g_autoptr(RedisBatch) moved_keys = redis_batch_new ();
  g_autoptr(RedisBatch) straddling = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;

  flush_all ();
  cluster = redis_cluster_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  {
    g_autoptr(RedisReply) a = CMD (cluster, "SET", asked, "20");
    g_autoptr(RedisReply) b = CMD (cluster, "SET", stays, "10");
  }
  start_migration (asked, stays, 1, 2);

  redis_batch_add (moved_keys, (const char *[]) { "INCR", asked, NULL });
  redis_batch_add (moved_keys, (const char *[]) { "INCRBY", asked, "5", NULL });
  replies = redis_client_transaction_sync (REDIS_CLIENT (cluster), moved_keys, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[0]), ==, 21);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[1]), ==, 26);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "ask"), ==, 1);

  redis_batch_add (straddling, (const char *[]) { "INCR", stays, NULL });
  redis_batch_add (straddling, (const char *[]) { "INCR", asked, NULL });
  g_clear_pointer (&replies, g_ptr_array_unref);
  replies = redis_client_transaction_sync (REDIS_CLIENT (cluster), straddling, NULL, &error);
  g_assert_null (replies);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TRANSACTION_ABORTED);
  g_assert_nonnull (strstr (error->message, "ASK"));
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "tryagain"), >=, 2);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "ask"), ==, 1);
  g_assert_cmpint (get_integer (1, stays), ==, 10);
  {
    g_autoptr(RedisReply) value = CMD (cluster, "GET", asked);

    g_assert_cmpstr (redis_reply_get_text (value), ==, "26");
  }

  end_migration (asked, stays, 1, 2);
}

/* ---- broadcast ------------------------------------------------------------- */

/* The response policies on replies made up here: what each combines, and
 * how a failure names its node. */
static void
test_broadcast_combine (void)
{
  const char *addresses[] = { "h:1", "h:2" };
  RedisClusterBroadcast sum = { "DBSIZE", NULL, REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_AGG_SUM };
  RedisClusterBroadcast and = { "SCRIPT", "EXISTS", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_AGG_LOGICAL_AND };
  RedisClusterBroadcast one = { "SCRIPT", "KILL", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ONE_SUCCEEDED };
  RedisClusterBroadcast all = { "FLUSHALL", NULL, REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED };
  RedisReply *ints[2] = { redis_reply_new_integer (3), redis_reply_new_integer (4) };
  RedisReply *arrays[2] = { redis_reply_new_array (2), redis_reply_new_array (2) };
  RedisReply *mixed[2] = { redis_reply_new_text (REDIS_REPLY_KIND_ERROR, "NOTBUSY no", 10),
                           redis_reply_new_text (REDIS_REPLY_KIND_STATUS, "OK", 2) };
  RedisReply *short_array[2] = { arrays[0], redis_reply_new_array (0) };
  GError *none[2] = { NULL, NULL };
  GError *down[2] = { NULL, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED, "refused") };
  g_autoptr(GError) error = NULL;
  RedisReply *reply;

  g_assert_cmpuint (redis_cluster_broadcast_lookup ((const guint8 *) "*1\r\n$6\r\ndbsize\r\n", 16)->response, ==,
                    REDIS_CLUSTER_RESPONSE_AGG_SUM);
  g_assert_null (redis_cluster_broadcast_lookup ((const guint8 *) "*2\r\n$6\r\nSCRIPT\r\n$4\r\nSHOW\r\n", 26));
  g_assert_null (redis_cluster_broadcast_lookup ((const guint8 *) "*1\r\n$6\r\nSCRIPT\r\n", 16));
  g_assert_null (redis_cluster_broadcast_lookup ((const guint8 *) "*1\r\n$9\r\nDBSIZ", 13));

  reply = redis_cluster_broadcast_combine (&sum, addresses, ints, none, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_integer (reply), ==, 7);
  redis_reply_unref (reply);

  redis_reply_set_element (arrays[0], 0, redis_reply_new_integer (1));
  redis_reply_set_element (arrays[0], 1, redis_reply_new_integer (1));
  redis_reply_set_element (arrays[1], 0, redis_reply_new_integer (1));
  redis_reply_set_element (arrays[1], 1, redis_reply_new_integer (0));
  reply = redis_cluster_broadcast_combine (&and, addresses, arrays, none, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_integer (redis_reply_get_element (reply, 0)), ==, 1);
  g_assert_cmpint (redis_reply_get_integer (redis_reply_get_element (reply, 1)), ==, 0);
  redis_reply_unref (reply);

  /* Arrays of different lengths, an integer where an array is due. */
  reply = redis_cluster_broadcast_combine (&and, addresses, short_array, none, 2, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
  g_clear_error (&error);
  reply = redis_cluster_broadcast_combine (&sum, addresses, arrays, none, 2, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
  g_assert_true (g_str_has_prefix (error->message, "h:1 "));
  g_clear_error (&error);

  /* One success is enough for one_succeeded, not for all_succeeded. */
  reply = redis_cluster_broadcast_combine (&one, addresses, mixed, none, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_text (reply), ==, "OK");
  redis_reply_unref (reply);
  reply = redis_cluster_broadcast_combine (&all, addresses, mixed, none, 2, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_assert_cmpstr (error->message, ==, "h:1: NOTBUSY no");
  g_clear_error (&error);

  /* A node that could not be reached: its own error, named. */
  {
    RedisReply *first_only[2] = { ints[0], NULL };

    reply = redis_cluster_broadcast_combine (&sum, addresses, first_only, down, 2, &error);
    g_assert_null (reply);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
    g_assert_cmpstr (error->message, ==, "h:2: refused");
    g_clear_error (&error);
  }

  for (guint i = 0; i < 2; i++)
    {
      redis_reply_unref (ints[i]);
      redis_reply_unref (arrays[i]);
      redis_reply_unref (mixed[i]);
    }
  redis_reply_unref (short_array[1]);
  g_error_free (down[1]);
}

/* The built-in table says what the servers' own tips say. */
static void
test_broadcast_table (void)
{
  guint n_rules;
  const RedisClusterBroadcast *rules = redis_cluster_broadcast_rules (&n_rules);

  for (guint i = 0; i < n_rules; i++)
    {
      g_autofree char *name = rules[i].subcommand != NULL ?
                              g_strdup_printf ("%s|%s", rules[i].name, rules[i].subcommand) :
                              g_strdup (rules[i].name);
      g_autofree char *lower = g_ascii_strdown (name, -1);
      g_autofree char *info = CLI (0, "COMMAND", "INFO", lower);
      const char *request = rules[i].request == REDIS_CLUSTER_REQUEST_ALL_NODES ?
                            "request_policy:all_nodes" : "request_policy:all_shards";
      const char *responses[] = {
        [REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED] = "response_policy:all_succeeded",
        [REDIS_CLUSTER_RESPONSE_ONE_SUCCEEDED] = "response_policy:one_succeeded",
        [REDIS_CLUSTER_RESPONSE_AGG_SUM] = "response_policy:agg_sum",
        [REDIS_CLUSTER_RESPONSE_AGG_LOGICAL_AND] = "response_policy:agg_logical_and",
        [REDIS_CLUSTER_RESPONSE_CONCATENATE] = NULL,
      };

      g_assert_nonnull (strstr (info, request));
      if (responses[rules[i].response] != NULL)
        g_assert_nonnull (strstr (info, responses[rules[i].response]));
      else
        g_assert_null (strstr (info, "response_policy"));
    }
}

static void
test_broadcast (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autoptr(GHashTable) expected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *sha = NULL;
  const guint n_keys = 90;

  flush_all ();
  for (guint i = 0; i < n_keys; i++)
    {
      char *key = g_strdup_printf ("bc:%u", i);
      g_autoptr(RedisReply) ok = CMD (cluster, "SET", key, "1");

      g_hash_table_add (expected, key);
    }

  /* agg_sum: DBSIZE is the sum over the primaries. */
  {
    g_autoptr(RedisReply) size = CMD (cluster, "DBSIZE");

    for (guint i = 0; i < N_NODES; i++)
      g_assert_cmpuint (dbsize (i), >, 0);
    g_assert_cmpint (redis_reply_get_integer (size), ==, dbsize (0) + dbsize (1) + dbsize (2));
    g_assert_cmpint (redis_reply_get_integer (size), ==, n_keys);
  }

  /* KEYS: the arrays of every primary, together. */
  {
    g_autoptr(RedisReply) keys = CMD (cluster, "KEYS", "bc:*");

    g_assert_cmpuint (redis_reply_get_n_elements (keys), ==, n_keys);
    for (guint i = 0; i < n_keys; i++)
      g_assert_true (g_hash_table_remove (expected, redis_reply_get_text (redis_reply_get_element (keys, i))));
    g_assert_cmpuint (g_hash_table_size (expected), ==, 0);
  }

  /* all_nodes: a script loaded once runs by its SHA on every node. */
  {
    g_autoptr(RedisReply) loaded = CMD (cluster, "SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])");

    sha = g_strdup (redis_reply_get_text (loaded));
    for (guint node = 0; node < N_NODES; node++)
      {
        g_autofree char *key = key_on_node (node, 51);
        g_autoptr(RedisReply) set = CMD (cluster, "SET", key, "scripted");
        g_autoptr(RedisReply) got = CMD (cluster, "EVALSHA", sha, "1", key);
        g_autofree char *exists = CLI (node, "SCRIPT", "EXISTS", sha);

        g_assert_cmpstr (redis_reply_get_text (got), ==, "scripted");
        g_assert_cmpstr (exists, ==, "1");
      }
  }

  /* agg_logical_and: known everywhere, or not. */
  {
    g_autoptr(RedisReply) both = CMD (cluster, "SCRIPT", "EXISTS", sha, "0000000000000000000000000000000000000000");

    g_assert_cmpuint (redis_reply_get_n_elements (both), ==, 2);
    g_assert_cmpint (redis_reply_get_integer (redis_reply_get_element (both, 0)), ==, 1);
    g_assert_cmpint (redis_reply_get_integer (redis_reply_get_element (both, 1)), ==, 0);
    /* Flushed on one node only: no longer everywhere. */
    g_free (CLI (2, "SCRIPT", "FLUSH"));
    g_clear_pointer (&both, redis_reply_unref);
    both = CMD (cluster, "SCRIPT", "EXISTS", sha);
    g_assert_cmpint (redis_reply_get_integer (redis_reply_get_element (both, 0)), ==, 0);
  }

  /* all_succeeded: every node's configuration; the first error names its
   * node. */
  {
    g_autoptr(RedisReply) ok = CMD (cluster, "CONFIG", "SET", "slowlog-max-len", "77");
    const char *bad[] = { "CONFIG", "SET", "no-such-parameter", "1", NULL };
    g_autoptr(RedisReply) none = NULL;
    g_autofree char *first = g_strdup_printf ("127.0.0.1:%u", redis_test_server_get_port (nodes[0]));

    for (guint i = 0; i < N_NODES; i++)
      {
        g_autofree char *out = CLI (i, "CONFIG", "GET", "slowlog-max-len");

        g_assert_nonnull (strstr (out, "77"));
        g_free (CLI (i, "CONFIG", "SET", "slowlog-max-len", "128"));
      }
    none = redis_client_command_sync (REDIS_CLIENT (cluster), bad, NULL, &error);
    g_assert_null (none);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
    g_assert_true (g_str_has_prefix (error->message, first));
    g_clear_error (&error);
  }

  /* FLUSHALL empties every node; async. */
  {
    GAsyncResult *result = NULL;
    g_autoptr(RedisReply) reply = NULL;
    const char *argv[] = { "FLUSHALL", NULL };

    redis_client_command_async (REDIS_CLIENT (cluster), argv, NULL, store_result_cb, &result);
    WAIT_UNTIL (result != NULL, 10000);
    reply = redis_client_command_finish (REDIS_CLIENT (cluster), result, &error);
    g_object_unref (result);
    g_assert_no_error (error);
    g_assert_cmpstr (redis_reply_get_text (reply), ==, "OK");
    for (guint i = 0; i < N_NODES; i++)
      g_assert_cmpuint (dbsize (i), ==, 0);
  }
}

static gboolean
node_busy (guint node)
{
  g_autofree char *pong = CLI (node, "PING");

  return g_str_has_prefix (pong, "BUSY");
}

/* one_succeeded: SCRIPT KILL is answered OK by the node running a script
 * and NOTBUSY by the others, which is success; with no script anywhere,
 * the first node's error. */
static void
test_broadcast_one_succeeded (void)
{
  g_autoptr(RedisClusterPool) cluster = new_cluster_pool ();
  g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u", redis_test_server_get_port (nodes[2]));
  g_autoptr(RedisPool) busy = NULL;
  g_autoptr(RedisReply) killed = NULL;
  g_autoptr(GError) error = NULL;
  const char *kill[] = { "SCRIPT", "KILL", NULL };
  const char *loop[] = { "EVAL", "while true do end", "0", NULL };
  GAsyncResult *result = NULL;

  killed = redis_client_command_sync (REDIS_CLIENT (cluster), kill, NULL, &error);
  g_assert_null (killed);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_assert_nonnull (strstr (error->message, "NOTBUSY"));
  g_clear_error (&error);

  /* Node 2 busy (and answering BUSY after 100 ms rather than 5 s). */
  g_free (CLI (2, "CONFIG", "SET", "busy-reply-threshold", "100"));
  busy = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  redis_client_command_async (REDIS_CLIENT (busy), loop, NULL, store_result_cb, &result);
  WAIT_UNTIL (node_busy (2), 5000);

  killed = redis_client_command_sync (REDIS_CLIENT (cluster), kill, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_text (killed), ==, "OK");
  WAIT_UNTIL (result != NULL, 5000);
  {
    g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (busy), result, &error);

    g_assert_null (reply);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
    g_clear_error (&error);
  }
  g_object_unref (result);
  g_free (CLI (2, "CONFIG", "SET", "busy-reply-threshold", "5000"));
}

/* ---- address mapping -------------------------------------------------------- */

/* Whether every node's slot map names every primary at @host. */
static gboolean
endpoints_are (const char *host)
{
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *slots = CLI (i, "CLUSTER", "SLOTS");
      guint count = 0;

      for (const char *p = slots; (p = strstr (p, host)) != NULL; p++)
        count++;
      if (count < N_NODES)
        return FALSE;
    }
  return TRUE;
}

/* The nodes announce themselves at @host to clients (CLUSTER SLOTS and
 * SHARDS, MOVED, ASK) while the cluster bus keeps the real addresses. */
static void
announce_host (const char *host)
{
  for (guint i = 0; i < N_NODES; i++)
    {
      g_free (CLI (i, "CONFIG", "SET", "cluster-announce-hostname", host != NULL ? host : ""));
      g_free (CLI (i, "CONFIG", "SET", "cluster-preferred-endpoint-type", host != NULL ? "hostname" : "ip"));
    }
  WAIT_UNTIL (endpoints_are (host != NULL ? host : "127.0.0.1"), 10000);
}

static char *
to_loopback (const char *host,
             guint16     port,
             gpointer    user_data)
{
  (*(guint *) user_data)++;
  if (g_str_equal (host, "127.0.0.2"))
    return g_strdup_printf ("127.0.0.1:%u", port);
  return NULL;
}

static void
count_free (gpointer data)
{
  (*(guint *) data)++;
}

static void
test_address_map (void)
{
  g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u?connect_timeout=%u&command_timeout=%u",
                                          redis_test_server_get_port (nodes[0]),
                                          test_scale_ms (500), test_scale_ms (1000));
  g_autofree char *moved = key_on_node (0, 61);
  g_autoptr(GError) error = NULL;
  guint mapped = 0;

  flush_all ();
  /* The servers listen on 127.0.0.1 only: 127.0.0.2 is unreachable. */
  announce_host ("127.0.0.2");

  /* Without the hook: the slot map is read, its addresses fail. */
  {
    g_autoptr(RedisClusterPool) cluster = redis_cluster_pool_new_sync (uri, NULL, &error);
    g_autoptr(RedisReply) reply = NULL;
    g_autoptr(GVariant) info = NULL;
    g_autofree char *key = key_on_node (1, 61);
    const char *get[] = { "GET", key, NULL };

    g_assert_no_error (error);
    reply = redis_client_command_sync (REDIS_CLIENT (cluster), get, NULL, &error);
    g_assert_null (reply);
    g_assert_nonnull (error);
    g_test_message ("without the hook: %s", error->message);
    g_clear_error (&error);
    info = redis_cluster_pool_get_info (cluster);
    {
      g_autoptr(GVariant) ranges = g_variant_lookup_value (info, "ranges", G_VARIANT_TYPE ("a(qqs)"));
      const char *address;

      g_variant_get_child (ranges, 0, "(qq&s)", NULL, NULL, &address);
      g_assert_true (g_str_has_prefix (address, "127.0.0.2:"));
    }
  }

  /* With it, set between new and init as a binding would: everything
   * routes, a MOVED's address is mapped too. */
  {
    g_autoptr(RedisClusterPool) cluster = g_object_new (REDIS_TYPE_CLUSTER_POOL, "uri", uri, NULL);
    g_autoptr(GVariant) info = NULL;
    g_autoptr(GVariant) addresses = NULL;
    guint freed = 0;

    redis_cluster_pool_set_address_map (cluster, to_loopback, &mapped, NULL);
    g_assert_true (g_initable_init (G_INITABLE (cluster), NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (mapped, >=, N_NODES);
    for (guint node = 0; node < N_NODES; node++)
      {
        g_autofree char *key = key_on_node (node, 62);
        g_autoptr(RedisReply) ok = CMD (cluster, "SET", key, "mapped");
        g_autoptr(RedisReply) got = CMD (cluster, "GET", key);

        g_assert_cmpstr (redis_reply_get_text (got), ==, "mapped");
        g_assert_cmpuint (dbsize (node), ==, 1);
      }

    cluster_fixture_give_slot_of (fixture, moved, 0, 1);
    {
      g_autoptr(RedisReply) ok = CMD (cluster, "SET", moved, "x");
    }
    g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 1);
    g_assert_cmpuint (dbsize (1), ==, 2);

    info = redis_cluster_pool_get_info (cluster);
    addresses = g_variant_lookup_value (info, "nodes", G_VARIANT_TYPE_STRING_ARRAY);
    g_assert_cmpuint (g_variant_n_children (addresses), ==, N_NODES);
    for (gsize i = 0; i < g_variant_n_children (addresses); i++)
      {
        const char *address;

        g_variant_get_child (addresses, i, "&s", &address);
        g_assert_true (g_str_has_prefix (address, "127.0.0.1:"));
      }

    /* Replacing the hook frees the old data; unset, none is called. */
    redis_cluster_pool_set_address_map (cluster, to_loopback, &freed, count_free);
    g_assert_cmpuint (freed, ==, 0);
    redis_cluster_pool_set_address_map (cluster, NULL, NULL, NULL);
    g_assert_cmpuint (freed, ==, 1);
  }

  g_free (CLI (1, "DEL", moved));
  cluster_fixture_give_slot_of (fixture, moved, 1, 0);
  announce_host (NULL);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/cluster/key-slot/vectors", test_key_slot_vectors);
  g_test_add_func ("/cluster/broadcast/combine", test_broadcast_combine);
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
      g_test_add_func ("/cluster/key-table/matches-server", test_key_table_matches_server);
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
      g_test_add_func ("/cluster/redirect/tryagain-deadline", test_tryagain_deadline);
      g_test_add_func ("/cluster/redirect/pipeline/sync", test_pipeline_redirects);
      g_test_add_func ("/cluster/redirect/pipeline/async", test_pipeline_redirects_async);
      g_test_add_func ("/cluster/redirect/pipeline/tryagain", test_pipeline_tryagain);
      g_test_add_func ("/cluster/redirect/transaction", test_transaction_moved);
      g_test_add_func ("/cluster/redirect/transaction-ask", test_transaction_ask);
      g_test_add_func ("/cluster/broadcast/table", test_broadcast_table);
      g_test_add_func ("/cluster/broadcast/policies", test_broadcast);
      g_test_add_func ("/cluster/broadcast/one-succeeded", test_broadcast_one_succeeded);
      g_test_add_func ("/cluster/address-map", test_address_map);
    }

  status = g_test_run ();

  g_clear_pointer (&fixture, cluster_fixture_free);
  return status;
}
