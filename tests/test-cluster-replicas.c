/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* RedisClusterPool reading from replicas (read-from, read_from=): the
 * slot map's replicas as CLUSTER SHARDS and CLUSTER SLOTS give them, the
 * read-only flag of commands (built-in table, COMMAND INFO cache), and, on
 * a cluster of 3 primaries with one replica each, where the calls land,
 * told by each node's INFO commandstats: reads on the replicas (READONLY
 * sent again after a reconnect), writes, transactions and mixed pipelines
 * on the primaries, a MOVED from a replica followed to the primary, and
 * replica-preferred falling back to the primary when a replica stops. A
 * cluster of its own (cluster-fixture.h): test-cluster's has no replicas. */

#include <string.h>

#include "redispool.h"
#include "redis-cluster-keys-private.h"
#include "redis-cluster-slots-private.h"
#include "redis-reader-private.h"
#include "cluster-fixture.h"
#include "test-client-helpers.h"

#define N_PRIMARIES 3

/* ---- parsing (no server) ------------------------------------------------ */

static RedisReply *
parse_resp (const char *text)
{
  RedisReader *reader = redis_reader_new (1024 * 1024, 1024, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
  g_autoptr(GError) error = NULL;
  RedisReply *reply;

  g_assert_true (redis_reader_feed (reader, text, strlen (text), &error));
  g_assert_no_error (error);
  reply = redis_reader_pop (reader);
  g_assert_nonnull (reply);
  g_assert_null (redis_reader_pop (reader));
  redis_reader_free (reader);
  return reply;
}

/* One node of a CLUSTER SHARDS reply (RESP2 flat map). */
static char *
shard_node (const char *endpoint,
            guint       port,
            const char *role,
            const char *health)
{
  g_autofree char *port_text = g_strdup_printf ("%u", port);

  return g_strdup_printf ("*8\r\n$8\r\nendpoint\r\n$%zu\r\n%s\r\n$4\r\nport\r\n:%u\r\n"
                          "$4\r\nrole\r\n$%zu\r\n%s\r\n$6\r\nhealth\r\n$%zu\r\n%s\r\n",
                          strlen (endpoint), endpoint, port, strlen (role), role,
                          strlen (health), health);
}

static void
test_parse_shards_replicas (void)
{
  g_autofree char *a_primary = shard_node ("10.0.0.1", 7000, "master", "online");
  g_autofree char *a_replica = shard_node ("10.0.0.4", 7003, "replica", "online");
  g_autofree char *a_loading = shard_node ("10.0.0.5", 7004, "replica", "loading");
  g_autofree char *a_empty = shard_node ("", 7005, "replica", "online");
  g_autofree char *b_replica = shard_node ("10.0.0.6", 7006, "replica", "failed");
  g_autofree char *b_primary = shard_node ("10.0.0.2", 7001, "master", "online");
  /* The documentation says "failed", Redis 7.0 sends "fail": both count. */
  g_autofree char *c_failed = shard_node ("10.0.0.3", 7002, "master", "fail");
  g_autofree char *c_replica = shard_node ("10.0.0.7", 7007, "replica", "online");
  /* Shard a: slots 0-99 and 200-299, a primary, two online replicas (one
   * announcing no endpoint) and one still loading; shard b: its replica
   * failed, listed before the primary; shard c: the primary failed. */
  g_autofree char *text =
    g_strdup_printf ("*3\r\n"
                     "*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:99\r\n:200\r\n:299\r\n$5\r\nnodes\r\n*4\r\n%s%s%s%s"
                     "*4\r\n$5\r\nslots\r\n*2\r\n:100\r\n:199\r\n$5\r\nnodes\r\n*2\r\n%s%s"
                     "*4\r\n$5\r\nslots\r\n*2\r\n:300\r\n:399\r\n$5\r\nnodes\r\n*2\r\n%s%s",
                     a_primary, a_replica, a_loading, a_empty, b_replica, b_primary,
                     c_failed, c_replica);
  g_autoptr(RedisReply) reply = parse_resp (text);
  g_autoptr(GArray) ranges = redis_cluster_parse_shards (reply, "seed.example", FALSE);
  RedisClusterRange *range;

  g_assert_nonnull (ranges);
  g_assert_cmpuint (ranges->len, ==, 3);

  for (guint i = 0; i < 2; i++)
    {
      const char * const expected[] = { "10.0.0.4:7003", "seed.example:7005", NULL };

      range = &g_array_index (ranges, RedisClusterRange, i);
      g_assert_cmpuint (range->first, ==, i == 0 ? 0 : 200);
      g_assert_cmpstr (range->address, ==, "10.0.0.1:7000");
      g_assert_true (g_strv_equal ((const char * const *) range->replicas, expected));
    }
  range = &g_array_index (ranges, RedisClusterRange, 2);
  g_assert_cmpuint (range->first, ==, 100);
  g_assert_cmpuint (range->last, ==, 199);
  g_assert_cmpstr (range->address, ==, "10.0.0.2:7001");
  g_assert_nonnull (range->replicas);
  g_assert_null (range->replicas[0]);
}

static void
test_parse_slots_replicas (void)
{
  const char *text =
    "*2\r\n"
    "*5\r\n:0\r\n:8191\r\n"
      "*3\r\n$8\r\n10.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
      "*3\r\n$8\r\n10.0.0.4\r\n:7003\r\n$2\r\nid\r\n"
      "*3\r\n$0\r\n\r\n:7004\r\n$2\r\nid\r\n"
    "*3\r\n:8192\r\n:16383\r\n"
      "*3\r\n$8\r\n10.0.0.2\r\n:7001\r\n$2\r\nid\r\n";
  const char * const first_replicas[] = { "10.0.0.4:7003", "seed.example:7004", NULL };
  g_autoptr(RedisReply) reply = parse_resp (text);
  g_autoptr(GArray) ranges = redis_cluster_parse_slots (reply, "seed.example");
  g_autoptr(RedisReply) broken = NULL;
  g_autoptr(GArray) none = NULL;
  RedisClusterRange *range;

  g_assert_nonnull (ranges);
  g_assert_cmpuint (ranges->len, ==, 2);
  range = &g_array_index (ranges, RedisClusterRange, 0);
  g_assert_cmpstr (range->address, ==, "10.0.0.1:7000");
  g_assert_true (g_strv_equal ((const char * const *) range->replicas, first_replicas));
  range = &g_array_index (ranges, RedisClusterRange, 1);
  g_assert_cmpstr (range->address, ==, "10.0.0.2:7001");
  g_assert_null (range->replicas[0]);

  /* A replica entry that is not [host, port, …]: not a slot map. */
  broken = parse_resp ("*1\r\n*4\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:1\r\n$3\r\nbad\r\n");
  none = redis_cluster_parse_slots (broken, "seed.example");
  g_assert_null (none);
}

/* The RESP encoding of @argv, as the library writes a command. */
static GBytes *
encode (const char * const *argv)
{
  GString *out = g_string_new (NULL);
  guint argc = g_strv_length ((char **) argv);

  g_string_append_printf (out, "*%u\r\n", argc);
  for (guint i = 0; i < argc; i++)
    g_string_append_printf (out, "$%zu\r\n%s\r\n", strlen (argv[i]), argv[i]);
  return g_string_free_to_bytes (out);
}

static gint
slot_and_readonly (RedisClusterKeyCache *cache,
                   const char * const   *argv,
                   gboolean             *readonly)
{
  g_autoptr(GBytes) bytes = encode (argv);
  g_autoptr(GError) error = NULL;
  gsize len, consumed = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gint slot;

  *readonly = !*readonly;   /* must be written either way */
  slot = redis_cluster_command_slot (data, len, &consumed, cache, readonly, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (consumed, ==, len);
  return slot;
}

static void
test_readonly_flags (void)
{
  RedisClusterKeyCache *cache = redis_cluster_key_cache_new ();
  const struct { const char *argv[5]; gboolean readonly; } cases[] = {
    { { "GET", "k", NULL }, TRUE },
    { { "get", "k", NULL }, TRUE },
    { { "MGET", "{t}a", "{t}b", NULL }, TRUE },
    { { "HGETALL", "k", NULL }, TRUE },
    { { "EVAL_RO", "return 1", "1", "k", NULL }, TRUE },
    { { "SCAN", "0", NULL }, TRUE },
    { { "SET", "k", "v", NULL }, FALSE },
    { { "INCR", "k", NULL }, FALSE },
    { { "EVAL", "return 1", "1", "k", NULL }, FALSE },
    { { "MULTI", NULL }, FALSE },
    { { "PING", NULL }, FALSE },
  };
  g_autoptr(RedisReply) info_ro = NULL;
  g_autoptr(RedisReply) info_rw = NULL;
  g_autoptr(RedisReply) keys = NULL;
  gboolean readonly = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      slot_and_readonly (cache, cases[i].argv, &readonly);
      g_assert_cmpint (readonly, ==, cases[i].readonly);
    }

  /* Outside the table: not known until the servers tell, then cached. */
  g_assert_cmpint (slot_and_readonly (cache, (const char *[]) { "LCS", "{t}a", "{t}b", NULL }, &readonly),
                   ==, REDIS_CLUSTER_SLOT_UNKNOWN);
  g_assert_false (readonly);
  info_ro = parse_resp ("*1\r\n*3\r\n$3\r\nlcs\r\n:-3\r\n*1\r\n$8\r\nreadonly\r\n");
  keys = parse_resp ("*2\r\n$4\r\n{t}a\r\n$4\r\n{t}b\r\n");
  {
    g_autoptr(GBytes) bytes = encode ((const char *[]) { "LCS", "{t}a", "{t}b", NULL });
    g_autoptr(GError) error = NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data (bytes, &len);

    readonly = FALSE;
    g_assert_cmpint (redis_cluster_key_query_finish (cache, data, len, info_ro, keys, &readonly, &error),
                     ==, redis_cluster_key_slot ((const guint8 *) "{t}a", 4));
    g_assert_no_error (error);
    g_assert_true (readonly);
  }
  g_assert_cmpint (slot_and_readonly (cache, (const char *[]) { "LCS", "{t}a", "{t}b", NULL }, &readonly),
                   ==, redis_cluster_key_slot ((const guint8 *) "{t}a", 4));
  g_assert_true (readonly);

  /* One COMMAND INFO does not flag "readonly": a write, cached so too. */
  info_rw = parse_resp ("*1\r\n*3\r\n$7\r\nxsetid2\r\n:3\r\n*2\r\n$5\r\nwrite\r\n$7\r\ndenyoom\r\n");
  {
    g_autoptr(RedisReply) one_key = parse_resp ("*1\r\n$1\r\nk\r\n");
    g_autoptr(GBytes) bytes = encode ((const char *[]) { "XSETID2", "k", "0-1", NULL });
    g_autoptr(GError) error = NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data (bytes, &len);

    readonly = TRUE;
    redis_cluster_key_query_finish (cache, data, len, info_rw, one_key, &readonly, &error);
    g_assert_no_error (error);
    g_assert_false (readonly);
  }
  g_assert_cmpint (slot_and_readonly (cache, (const char *[]) { "XSETID2", "k", "0-1", NULL }, &readonly),
                   ==, redis_cluster_key_slot ((const guint8 *) "k", 1));
  g_assert_false (readonly);

  redis_cluster_key_cache_free (cache);
}

static void
test_uri_read_from_invalid (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisClusterPool) cluster =
    redis_cluster_pool_new_sync ("redis://127.0.0.1:1?read_from=replicas", NULL, &error);

  g_assert_null (cluster);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "read_from"));
}

/* ---- a cluster with replicas ---------------------------------------------- */

static ClusterFixture *fixture;

#define CLI(i, ...) CLUSTER_FIXTURE_CLI (fixture, (i), __VA_ARGS__)

static guint
replica_of (guint primary)
{
  return cluster_fixture_replica (fixture, primary, 0);
}

static gboolean
replicas_caught_up (void)
{
  for (guint p = 0; p < N_PRIMARIES; p++)
    if (cluster_fixture_info_u64 (fixture, replica_of (p), "replication", "slave_repl_offset") <
        cluster_fixture_info_u64 (fixture, p, "replication", "master_repl_offset"))
      return FALSE;
  return TRUE;
}

/* Whether every node that @node's CLUSTER SHARDS lists is online. */
static gboolean
shards_all_online (guint node)
{
  g_autofree char *shards = CLI (node, "CLUSTER", "SHARDS");

  return strstr (shards, "loading") == NULL && strstr (shards, "failed") == NULL;
}

/* Redis 7.0 reports a replica that has replicated nothing yet (offset 0)
 * as "loading", and the pool leaves such a replica out: one write per
 * primary, then every seed must see all replicas online. */
static void
bring_replicas_online (void)
{
  for (guint p = 0; p < N_PRIMARIES; p++)
    {
      g_autofree char *key = cluster_fixture_key_on_node (fixture, p, 0);

      g_free (CLI (p, "SET", key, "warm"));
    }
  WAIT_UNTIL (replicas_caught_up (), 10000);
  for (guint p = 0; p < N_PRIMARIES; p++)
    WAIT_UNTIL (shards_all_online (p), 20000);
}

/* A cluster pool reading from @read_from ("primary", "replica"…). */
static RedisClusterPool *
new_pool (const char *read_from)
{
  g_autofree char *query = g_strdup_printf ("read_from=%s", read_from);

  return cluster_fixture_pool_new (fixture, query);
}
#define CMD(c, ...) CLUSTER_FIXTURE_CMD ((c), __VA_ARGS__)

/* Writes key <prefix>:<i> = v<i> for i < n through @cluster, and waits
 * until the replicas have them. The keys of each primary are counted in
 * @per_primary. */
static void
write_keys (RedisClusterPool *cluster,
            const char       *prefix,
            guint             n,
            guint            *per_primary)
{
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s:%u", prefix, i);
      g_autofree char *value = g_strdup_printf ("v%u", i);
      g_autoptr(RedisReply) ok = CMD (cluster, "SET", key, value);

      g_assert_cmpstr (redis_reply_get_text (ok), ==, "OK");
      if (per_primary != NULL)
        per_primary[cluster_fixture_initial_owner (fixture, redis_cluster_key_slot ((const guint8 *) key, strlen (key)))]++;
    }
  WAIT_UNTIL (replicas_caught_up (), 10000);
}

/* Reads back what write_keys() wrote and checks that the replicas served
 * every GET: @per_primary[p] of them on the replica of primary p, none on
 * the primaries. */
static void
read_keys_from_replicas (RedisClusterPool *cluster,
                         const char       *prefix,
                         guint             n,
                         const guint      *per_primary)
{
  cluster_fixture_reset_stats (fixture);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s:%u", prefix, i);
      g_autofree char *value = g_strdup_printf ("v%u", i);
      g_autoptr(RedisReply) reply = CMD (cluster, "GET", key);

      g_assert_cmpstr (redis_reply_get_text (reply), ==, value);
    }
  for (guint p = 0; p < N_PRIMARIES; p++)
    {
      g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, p, "get"), ==, 0);
      g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica_of (p), "get"), ==, per_primary[p]);
    }
}

static void
test_info_and_property (void)
{
  g_autoptr(RedisClusterPool) primary = NULL;
  g_autoptr(RedisClusterPool) replica = new_pool ("replica");
  g_autoptr(GVariant) info = redis_cluster_pool_get_info (replica);
  RedisClusterReadFrom read_from;
  guint32 replicas = 0;

  g_assert_cmpint (redis_cluster_pool_get_read_from (replica), ==, REDIS_CLUSTER_READ_FROM_REPLICA);
  g_object_get (replica, "read-from", &read_from, NULL);
  g_assert_cmpint (read_from, ==, REDIS_CLUSTER_READ_FROM_REPLICA);
  g_assert_true (g_variant_lookup (info, "replicas", "u", &replicas));
  g_assert_cmpuint (replicas, ==, N_PRIMARIES);
  /* Each replica has a pool of its own, in the list model. */
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (replica)), ==, 2 * N_PRIMARIES);

  /* Reading from primaries: the replicas are counted, but get no pool. */
  primary = new_pool ("primary");
  g_clear_pointer (&info, g_variant_unref);
  info = redis_cluster_pool_get_info (primary);
  g_assert_true (g_variant_lookup (info, "replicas", "u", &replicas));
  g_assert_cmpuint (replicas, ==, N_PRIMARIES);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (primary)), ==, N_PRIMARIES);
  g_assert_cmpint (redis_cluster_pool_get_read_from (primary), ==, REDIS_CLUSTER_READ_FROM_PRIMARY);
}

static void
test_reads_go_to_replicas (void)
{
  g_autoptr(RedisClusterPool) cluster = new_pool ("replica");
  guint per_primary[N_PRIMARIES] = { 0 };
  const guint n = 300;

  cluster_fixture_reset_stats (fixture);
  write_keys (cluster, "ro", n, per_primary);
  /* Writes went to the primaries, straight. */
  for (guint p = 0; p < N_PRIMARIES; p++)
    {
      g_assert_cmpuint (per_primary[p], >, 0);
      g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, p, "set"), ==, per_primary[p]);
    }

  read_keys_from_replicas (cluster, "ro", n, per_primary);
  /* The replicas served them after READONLY: no MOVED came back. */
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
}

static RedisPool *pool_of_node (RedisClusterPool *cluster,
                                guint             node);

static gboolean
all_replica_pools_full (RedisClusterPool *cluster)
{
  for (guint p = 0; p < N_PRIMARIES; p++)
    {
      g_autoptr(RedisPool) pool = pool_of_node (cluster, replica_of (p));

      if (redis_pool_get_active_connections (pool) < redis_pool_get_size (pool))
        return FALSE;
    }
  return TRUE;
}

typedef struct
{
  guint lost;
  guint replaced;
} Reconnects;

static void
lost_cb (RedisClusterPool *cluster,
         const char       *address,
         guint             index,
         const GError     *error,
         Reconnects       *counts)
{
  counts->lost++;
}

static void
replaced_cb (RedisClusterPool *cluster,
             const char       *address,
             guint             index,
             Reconnects       *counts)
{
  counts->replaced++;
}

/* Reads keep going to the replicas after their connections are killed:
 * READONLY is sent again at each reconnect. */
static void
test_readonly_after_reconnect (void)
{
  g_autoptr(RedisClusterPool) cluster = new_pool ("replica");
  guint per_primary[N_PRIMARIES] = { 0 };
  Reconnects counts = { 0, 0 };
  guint64 killed = 0;
  const guint n = 60;

  g_signal_connect (cluster, "connection-lost", G_CALLBACK (lost_cb), &counts);
  g_signal_connect (cluster, "connection-replaced", G_CALLBACK (replaced_cb), &counts);
  write_keys (cluster, "again", n, per_primary);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("again:%u", i);
      g_autoptr(RedisReply) reply = CMD (cluster, "GET", key);
    }
  /* The node may also kill connections of the pools of earlier tests,
   * still closing: only this pool's are counted. */
  WAIT_UNTIL (all_replica_pools_full (cluster), 10000);
  for (guint p = 0; p < N_PRIMARIES; p++)
    {
      g_autoptr(RedisPool) pool = pool_of_node (cluster, replica_of (p));
      g_autofree char *out = CLI (replica_of (p), "CLIENT", "KILL", "TYPE", "normal");

      g_assert_cmpuint (g_ascii_strtoull (out, NULL, 10), >=, redis_pool_get_size (pool));
      killed += redis_pool_get_size (pool);
    }
  /* Every connection seen lost, and every slot of the replicas' pools up
   * again (after its handshake). */
  WAIT_UNTIL (counts.lost >= killed && all_replica_pools_full (cluster), 20000);
  g_assert_cmpuint (counts.replaced, >, 0);

  read_keys_from_replicas (cluster, "again", n, per_primary);
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 0);
}

/* The replica of primary 0 announced at the address of the replica of
 * primary 1, which does not serve those slots. */
static char *
misdirect_replica (const char *host,
                   guint16     port,
                   gpointer    user_data)
{
  if (port != cluster_fixture_port (fixture, replica_of (0)))
    return NULL;
  return g_strdup_printf ("127.0.0.1:%u", cluster_fixture_port (fixture, replica_of (1)));
}

/* A replica that answers MOVED: the read goes to the primary named, and
 * the slot's reads stay on it until the map is read again. */
static void
test_moved_from_replica (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *seeds = cluster_fixture_uri (fixture);
  g_autofree char *uri = g_strdup_printf ("%s&read_from=replica", seeds);
  g_autoptr(RedisClusterPool) cluster = g_object_new (REDIS_TYPE_CLUSTER_POOL, "uri", uri, NULL);
  g_autofree char *key = cluster_fixture_key_on_node (fixture, 0, 2);

  redis_cluster_pool_set_address_map (cluster, misdirect_replica, NULL, NULL);
  g_assert_true (g_initable_init (G_INITABLE (cluster), NULL, &error));
  g_assert_no_error (error);
  g_free (CLI (0, "SET", key, "moved"));
  WAIT_UNTIL (replicas_caught_up (), 10000);

  cluster_fixture_reset_stats (fixture);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(RedisReply) reply = CMD (cluster, "GET", key);

      g_assert_cmpstr (redis_reply_get_text (reply), ==, "moved");
    }
  /* The first went to the wrong replica and followed its MOVED; the
   * second went to the primary at once. */
  g_assert_cmpuint (cluster_fixture_pool_info_u64 (cluster, "moved"), ==, 1);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, 0, "get"), ==, 2);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica_of (1), "get"), ==, 0);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica_of (0), "get"), ==, 0);
}

typedef struct
{
  guint   left;
  GError *error;
} Pending;

static void
pipeline_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GPtrArray) replies = redis_client_pipeline_finish (REDIS_CLIENT (source), result,
                                                               pending->error == NULL ? &pending->error : NULL);

  pending->left--;
}

static void
test_what_stays_on_primaries (void)
{
  g_autoptr(RedisClusterPool) cluster = new_pool ("replica");
  g_autofree char *key = cluster_fixture_key_on_node (fixture, 0, 0);
  g_autofree char *other = cluster_fixture_key_on_node (fixture, 1, 0);
  const guint primary = 0, replica = replica_of (0);
  g_autoptr(GError) error = NULL;

  write_keys (cluster, "stay", 1, NULL);
  g_free (CLI (primary, "SET", key, "x"));
  WAIT_UNTIL (replicas_caught_up (), 10000);

  /* A read-only pipeline, over two nodes: replicas. */
  cluster_fixture_reset_stats (fixture);
  {
    g_autoptr(RedisBatch) batch = redis_batch_new ();
    g_autoptr(GPtrArray) replies = NULL;

    redis_batch_add (batch, (const char *[]) { "GET", key, NULL });
    redis_batch_add (batch, (const char *[]) { "GET", other, NULL });
    redis_batch_add (batch, (const char *[]) { "GET", key, NULL });
    replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (redis_reply_get_text (replies->pdata[0]), ==, "x");
  }
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica, "get"), ==, 2);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica_of (1), "get"), ==, 1);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, primary, "get"), ==, 0);

  /* A pipeline with one write: all of it on the primaries. */
  cluster_fixture_reset_stats (fixture);
  {
    g_autoptr(RedisBatch) batch = redis_batch_new ();
    g_autoptr(GPtrArray) replies = NULL;

    redis_batch_add (batch, (const char *[]) { "GET", key, NULL });
    redis_batch_add (batch, (const char *[]) { "SET", key, "x", NULL });
    replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
    g_assert_no_error (error);
  }
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, primary, "get"), ==, 1);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica, "get"), ==, 0);

  /* The same, async. */
  cluster_fixture_reset_stats (fixture);
  {
    g_autoptr(RedisBatch) reads = redis_batch_new ();
    g_autoptr(RedisBatch) mixed = redis_batch_new ();
    Pending pending = { 2, NULL };

    redis_batch_add (reads, (const char *[]) { "GET", key, NULL });
    redis_batch_add (mixed, (const char *[]) { "GET", key, NULL });
    redis_batch_add (mixed, (const char *[]) { "INCR", "{stay}n", NULL });
    redis_client_pipeline_async (REDIS_CLIENT (cluster), reads, NULL, pipeline_done_cb, &pending);
    redis_client_pipeline_async (REDIS_CLIENT (cluster), mixed, NULL, pipeline_done_cb, &pending);
    WAIT_UNTIL (pending.left == 0, 10000);
    g_assert_no_error (pending.error);
  }
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica, "get"), ==, 1);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, primary, "get"), ==, 1);

  /* A transaction of reads: MULTI is no read, it stays on the primary. */
  cluster_fixture_reset_stats (fixture);
  {
    g_autoptr(RedisBatch) batch = redis_batch_new ();
    g_autoptr(GPtrArray) replies = NULL;

    redis_batch_add (batch, (const char *[]) { "GET", key, NULL });
    replies = redis_client_transaction_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
    g_assert_no_error (error);
  }
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, primary, "get"), ==, 1);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica, "get"), ==, 0);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica, "multi"), ==, 0);

  /* A command outside the key table that COMMAND INFO flags readonly
   * (LCS) goes to the replica once the servers told. */
  cluster_fixture_reset_stats (fixture);
  {
    g_autoptr(RedisReply) reply = CMD (cluster, "LCS", key, key);

    g_assert_cmpstr (redis_reply_get_text (reply), ==, "x");
  }
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica, "lcs"), ==, 1);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, primary, "lcs"), ==, 0);
}

static RedisPool *
pool_of_node (RedisClusterPool *cluster,
              guint             node)
{
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%u", cluster_fixture_port (fixture, node));
  g_autoptr(GVariant) info = redis_cluster_pool_get_info (cluster);
  g_autoptr(GVariant) nodes = g_variant_lookup_value (info, "nodes", G_VARIANT_TYPE_STRING_ARRAY);

  for (guint i = 0; i < g_variant_n_children (nodes); i++)
    {
      g_autofree char *at = NULL;

      g_variant_get_child (nodes, i, "s", &at);
      if (g_str_equal (at, address))
        return g_list_model_get_item (G_LIST_MODEL (cluster), i);
    }
  g_assert_not_reached ();
}

static gboolean
all_replica_pools_up (RedisClusterPool *cluster)
{
  for (guint p = 0; p < N_PRIMARIES; p++)
    {
      g_autoptr(RedisPool) pool = pool_of_node (cluster, replica_of (p));

      if (redis_pool_get_active_connections (pool) == 0)
        return FALSE;
    }
  return TRUE;
}

/* Last: it stops the replica of primary 0. */
/* From fresh statistics: GET @key0 (holding "a") and @key1 ("b") @n
 * times each through @cluster. */
static void
read_a_and_b (RedisClusterPool *cluster,
              const char       *key0,
              const char       *key1,
              guint             n)
{
  cluster_fixture_reset_stats (fixture);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(RedisReply) a = CMD (cluster, "GET", key0);
      g_autoptr(RedisReply) b = CMD (cluster, "GET", key1);

      g_assert_cmpstr (redis_reply_get_text (a), ==, "a");
      g_assert_cmpstr (redis_reply_get_text (b), ==, "b");
    }
}

static void
test_replica_preferred_falls_back (void)
{
  g_autoptr(RedisClusterPool) cluster = new_pool ("replica_preferred");
  g_autoptr(RedisPool) stopped_pool = NULL;
  g_autofree char *key0 = cluster_fixture_key_on_node (fixture, 0, 1);
  g_autofree char *key1 = cluster_fixture_key_on_node (fixture, 1, 1);
  const guint n = 20;

  g_assert_cmpint (redis_cluster_pool_get_read_from (cluster), ==, REDIS_CLUSTER_READ_FROM_REPLICA_PREFERRED);
  write_keys (cluster, "pref", 1, NULL);
  g_free (CLI (0, "SET", key0, "a"));
  g_free (CLI (1, "SET", key1, "b"));
  WAIT_UNTIL (replicas_caught_up (), 10000);
  /* The replicas' pools connect on their own once the map is read. */
  WAIT_UNTIL (all_replica_pools_up (cluster), 10000);

  read_a_and_b (cluster, key0, key1, n);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica_of (0), "get"), ==, n);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica_of (1), "get"), ==, n);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, 0, "get"), ==, 0);

  stopped_pool = pool_of_node (cluster, replica_of (0));
  cluster_fixture_stop (fixture, replica_of (0));
  WAIT_UNTIL (redis_pool_get_active_connections (stopped_pool) == 0, 10000);

  read_a_and_b (cluster, key0, key1, n);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, 0, "get"), ==, n);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, replica_of (1), "get"), ==, n);
  g_assert_cmpuint (cluster_fixture_cmdstat_calls (fixture, 1, "get"), ==, 0);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/cluster-replicas/parse/shards", test_parse_shards_replicas);
  g_test_add_func ("/cluster-replicas/parse/slots", test_parse_slots_replicas);
  g_test_add_func ("/cluster-replicas/readonly-flags", test_readonly_flags);
  g_test_add_func ("/cluster-replicas/uri/invalid", test_uri_read_from_invalid);
  if (!redis_test_server_available ())
    {
      g_test_add_data_func ("/cluster-replicas/live", "redis-server not found", test_skip_cb);
      return g_test_run ();
    }

  fixture = cluster_fixture_new (N_PRIMARIES, 1, NULL);
  bring_replicas_online ();
  g_test_add_func ("/cluster-replicas/info", test_info_and_property);
  g_test_add_func ("/cluster-replicas/reads", test_reads_go_to_replicas);
  g_test_add_func ("/cluster-replicas/stay-on-primaries", test_what_stays_on_primaries);
  g_test_add_func ("/cluster-replicas/readonly-after-reconnect", test_readonly_after_reconnect);
  g_test_add_func ("/cluster-replicas/moved-from-replica", test_moved_from_replica);
  g_test_add_func ("/cluster-replicas/replica-preferred", test_replica_preferred_falls_back);

  status = g_test_run ();

  g_clear_pointer (&fixture, cluster_fixture_free);
  return status;
}
