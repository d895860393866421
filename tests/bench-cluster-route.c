/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cost of routing one command in a cluster, for callgrind: what
 * RedisClusterPool does for every command before it is sent, apart from
 * the call's own bookkeeping. Each bench_* function runs one part N times
 * on a fixed input; tools/bench-route.sh runs this under
 *
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='bench_*'
 *
 * and divides each function's inclusive Ir by N:
 *
 *   bench_slot_get/_set/_mget   redis_cluster_command_slot() on the RESP
 *                               encoding of GET k / SET k v / MGET of three
 *                               keys sharing a hash tag: the command's
 *                               length, the key-table lookup, CRC16 of the
 *                               keys (the slot computation)
 *   bench_pick                  redis_cluster_pool_get_pool_for_key() and
 *                               the unref of the pool it returns: the key's
 *                               slot, then the node pick (the slot map under
 *                               its lock, a reference on the node's pool)
 *   bench_key_slot              redis_cluster_key_slot() of that key, to take
 *                               out of bench_pick: node pick = pick − key_slot
 *
 * Routing a command = bench_slot_<cmd> + (bench_pick − bench_key_slot).
 * The node pick needs a slot map: the program starts a 3-primary cluster
 * on loopback (cluster-fixture.c). Run alone, it prints the wall-clock
 * time per iteration, which callgrind's figures make redundant. */

#include <string.h>

#include "cluster-fixture.h"
#include "redis-cluster-keys-private.h"
#include "test-client-helpers.h"

#define KEY "user:1000:name"

static const char get_payload[] = "*2\r\n$3\r\nGET\r\n$14\r\n" KEY "\r\n";
static const char set_payload[] = "*3\r\n$3\r\nSET\r\n$14\r\n" KEY "\r\n$16\r\n0123456789abcdef\r\n";
static const char mget_payload[] =
  "*4\r\n$4\r\nMGET\r\n$12\r\n{user:1000}a\r\n$12\r\n{user:1000}b\r\n$12\r\n{user:1000}c\r\n";

/* Sinks the results so that the compiler keeps the loops. */
static volatile gint sink;

/* Not named bench_*: callgrind's --toggle-collect toggles again on entry
 * to a nested match, which would stop the collection. */
static G_GNUC_NO_INLINE void
slot_loop (const char *payload,
           gsize       len,
           guint       n)
{
  for (guint i = 0; i < n; i++)
    {
      gsize consumed = 0;
      gboolean readonly = FALSE;
      gint slot = redis_cluster_command_slot ((const guint8 *) payload, len, &consumed,
                                              NULL, &readonly, NULL);

      sink = slot + (gint) consumed + readonly;
    }
}

static G_GNUC_NO_INLINE void
bench_slot_get (guint n)
{
  slot_loop (get_payload, sizeof get_payload - 1, n);
}

static G_GNUC_NO_INLINE void
bench_slot_set (guint n)
{
  slot_loop (set_payload, sizeof set_payload - 1, n);
}

static G_GNUC_NO_INLINE void
bench_slot_mget (guint n)
{
  slot_loop (mget_payload, sizeof mget_payload - 1, n);
}

static G_GNUC_NO_INLINE void
bench_key_slot (guint n)
{
  for (guint i = 0; i < n; i++)
    sink = redis_cluster_key_slot ((const guint8 *) KEY, strlen (KEY));
}

static G_GNUC_NO_INLINE void
bench_pick (RedisClusterPool *cluster,
            guint             n)
{
  for (guint i = 0; i < n; i++)
    {
      RedisPool *pool = redis_cluster_pool_get_pool_for_key (cluster, (const guint8 *) KEY, strlen (KEY));

      sink = pool != NULL;
      g_object_unref (pool);
    }
}

static double
timed (void   (*run) (guint),
       guint    n)
{
  gint64 start = g_get_monotonic_time ();

  run (n);
  return (double) (g_get_monotonic_time () - start) * 1000.0 / n;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(ClusterFixture) fixture = NULL;
  g_autoptr(RedisClusterPool) cluster = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  guint n = argc > 1 ? (guint) g_ascii_strtoull (argv[1], NULL, 10) : 100000;
  gint64 start;
  gsize consumed;
  gboolean readonly;

  g_assert_cmpuint (n, >, 0);
  /* The encodings are what they claim: the slot of KEY, one command each. */
  g_assert_cmpint (redis_cluster_command_slot ((const guint8 *) get_payload, sizeof get_payload - 1,
                                               &consumed, NULL, &readonly, NULL),
                   ==, redis_cluster_key_slot ((const guint8 *) KEY, strlen (KEY)));
  g_assert_cmpuint (consumed, ==, sizeof get_payload - 1);
  g_assert_true (readonly);
  g_assert_cmpint (redis_cluster_command_slot ((const guint8 *) set_payload, sizeof set_payload - 1,
                                               &consumed, NULL, &readonly, NULL),
                   ==, redis_cluster_key_slot ((const guint8 *) KEY, strlen (KEY)));
  g_assert_cmpuint (consumed, ==, sizeof set_payload - 1);
  g_assert_false (readonly);
  g_assert_cmpint (redis_cluster_command_slot ((const guint8 *) mget_payload, sizeof mget_payload - 1,
                                               &consumed, NULL, &readonly, NULL),
                   ==, redis_cluster_key_slot ((const guint8 *) "user:1000", 9));
  g_assert_cmpuint (consumed, ==, sizeof mget_payload - 1);

  if (!redis_test_server_available ())
    {
      g_printerr ("bench-cluster-route: redis-server not found\n");
      return 77;
    }
  fixture = cluster_fixture_new (3, 0, NULL);
  uri = cluster_fixture_uri (fixture);
  cluster = redis_cluster_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);

  g_print ("ns per iteration (%u iterations; under callgrind, read its Ir instead)\n", n);
  g_print ("  slot GET   %8.1f\n", timed (bench_slot_get, n));
  g_print ("  slot SET   %8.1f\n", timed (bench_slot_set, n));
  g_print ("  slot MGET  %8.1f\n", timed (bench_slot_mget, n));
  g_print ("  key slot   %8.1f\n", timed (bench_key_slot, n));
  start = g_get_monotonic_time ();
  bench_pick (cluster, n);
  g_print ("  pick       %8.1f\n", (double) (g_get_monotonic_time () - start) * 1000.0 / n);

  redis_client_close_sync (REDIS_CLIENT (cluster), NULL, NULL);
  return 0;
}
