/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* RedisClusterPool while the cluster changes under a live load, on 3
 * primaries + 3 replicas (cluster-fixture.h): a manual CLUSTER FAILOVER,
 * a slot range resharded with MIGRATE, a node added and picked up by the
 * periodic refresh, and a primary killed with SIGKILL.
 *
 * The load is a few caller threads, each doing sync INCRBY then GET on a
 * key of its own. Every caller's step is different, so a reply that went
 * to the wrong caller shows (its value is not a multiple of the step). The
 * callers count their acknowledged writes and the errors that say a write
 * may have run (CONNECTION_LOST, TIMEOUT); any other error is a failure.
 * At the end the server's counter must hold at most acknowledged +
 * ambiguous writes (at-most-once), and at least the acknowledged ones
 * where Redis keeps acknowledged writes (not after a SIGKILL: replication
 * is asynchronous).
 *
 * Timings are measured and printed (g_test_message, and on stderr with
 * REDISPOOL_TEST_VERBOSE), never asserted: only correctness is, with
 * scaled deadlines. Each test finds the roles it needs from the live
 * cluster, so they also run alone (-p).
 *
 * After the SIGKILL, calls already queued for the dead primary's pool
 * follow its slots to the promoted replica once the cluster pool's map
 * says they moved: none may fail unsent after that moment. */

#include <string.h>

#include "cluster-fixture.h"
#include "test-client-helpers.h"

#define N_PRIMARIES 3
#define N_CALLERS   6
#define SLOTS       16384

static ClusterFixture *fixture;

#define CLI(i, ...) CLUSTER_FIXTURE_CLI (fixture, (i), __VA_ARGS__)

static void
report (const char *format,
        ...) G_GNUC_PRINTF (1, 2);

/* Figures for the lead to quote: in the TAP log, and on stderr when asked
 * for (meson hides the TAP comments of a passing test). */
static void
report (const char *format,
        ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_test_message ("%s", text);
  if (g_getenv ("REDISPOOL_TEST_VERBOSE") != NULL)
    g_printerr ("%s\n", text);
}

static double
ms_since (gint64 from,
          gint64 to)
{
  return (double) (to - from) / G_TIME_SPAN_MILLISECOND;
}

static RedisClusterPool *
new_cluster_pool_query (guint       refresh_interval_s,
                        const char *query)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *seeds = cluster_fixture_uri (fixture);
  g_autofree char *uri = query != NULL ? g_strdup_printf ("%s&%s", seeds, query) : g_strdup (seeds);
  RedisClusterPool *cluster = g_initable_new (REDIS_TYPE_CLUSTER_POOL, NULL, &error,
                                              "uri", uri,
                                              "topology-refresh-interval", refresh_interval_s,
                                              NULL);

  g_assert_no_error (error);
  return cluster;
}

static RedisClusterPool *
new_cluster_pool (guint refresh_interval_s)
{
  return new_cluster_pool_query (refresh_interval_s, NULL);
}

/* Closes and drops @cluster and waits until it is finalized, so that
 * nothing of one test (a refresh in flight, a signal) reaches the next. */
static void
release_cluster_pool (RedisClusterPool *cluster)
{
  GObject *alive = G_OBJECT (cluster);

  g_object_add_weak_pointer (alive, (gpointer *) &alive);
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (cluster), NULL, NULL));
  g_object_unref (cluster);
  WAIT_UNTIL (alive == NULL, 10000);
}

static guint64
info_u64 (RedisClusterPool *cluster,
          const char       *name)
{
  g_autoptr(GVariant) info = redis_cluster_pool_get_info (cluster);
  guint64 value = 0;

  g_assert_true (g_variant_lookup (info, name, "t", &value));
  return value;
}

static guint32
info_u32 (RedisClusterPool *cluster,
          const char       *name)
{
  g_autoptr(GVariant) info = redis_cluster_pool_get_info (cluster);
  guint32 value = 0;

  g_assert_true (g_variant_lookup (info, name, "u", &value));
  return value;
}

static guint16
slot_of (const char *key)
{
  return redis_cluster_key_slot ((const guint8 *) key, strlen (key));
}

/* The @skip-th key "<prefix><n>" whose slot is in [@first, @last]. */
static char *
key_in_slots (const char *prefix,
              guint       first,
              guint       last,
              guint       skip)
{
  for (guint n = 0;; n++)
    {
      g_autofree char *key = g_strdup_printf ("%s%u", prefix, n);
      guint slot = slot_of (key);

      if (first <= slot && slot <= last && skip-- == 0)
        return g_steal_pointer (&key);
    }
}

/* ---- the load ------------------------------------------------------------ */

typedef struct
{
  RedisClusterPool *cluster;
  char             *key;
  guint64           step;         /* INCRBY amount, unique per caller */
  gboolean          lossless;     /* acknowledged writes never go back */
  gint             *stop;         /* atomic, shared */
  GMutex           *lock;         /* shared, guards last_write */
  gint64            last_write;   /* when the last write was acknowledged */
  GThread          *thread;

  /* written by the caller's thread, read after the join */
  guint64           writes_ok;
  guint64           reads_ok;
  guint64           ambiguous;    /* writes that may have run */
  guint64           reads_lost;   /* reads cut (CONNECTION_LOST, TIMEOUT) */
  guint64           not_sent;     /* calls refused unsent: no connection to the owner */
  gint64            last_not_sent; /* when the last of them failed */
  guint64           last_value;
  GArray           *write_times;  /* gint64: when each write was acknowledged */
  char             *failure;      /* the first unexpected error or mix-up */
} Caller;

static gboolean
is_ambiguous (const GError *error)
{
  return g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST) ||
         g_error_matches (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
}

/* The node of the slot could not be reached before the call's deadline:
 * the call did not run. */
static gboolean
is_unreachable (const GError *error)
{
  return g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED) ||
         g_error_matches (error, REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT) ||
         g_error_matches (error, REDIS_ERROR, REDIS_ERROR_QUEUE_FULL);
}

static void
caller_fail (Caller     *caller,
             const char *what,
             const char *detail)
{
  if (caller->failure == NULL)
    caller->failure = g_strdup_printf ("%s on %s: %s", what, caller->key, detail);
}

/* A value the caller's key may hold: a multiple of its step. */
static gboolean
caller_check_value (Caller     *caller,
                    const char *what,
                    gint64      value)
{
  g_autofree char *text = NULL;

  if (value >= 0 && (guint64) value % caller->step == 0)
    return TRUE;
  text = g_strdup_printf ("%" G_GINT64_FORMAT " is not a multiple of %" G_GUINT64_FORMAT
                          " (a reply of another caller?)", value, caller->step);
  caller_fail (caller, what, text);
  return FALSE;
}

static void
caller_write (Caller *caller)
{
  g_autofree char *step = g_strdup_printf ("%" G_GUINT64_FORMAT, caller->step);
  const char *argv[] = { "INCRBY", caller->key, step, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (caller->cluster), argv, NULL, &error);
  gint64 now = g_get_monotonic_time ();
  gint64 value;

  if (reply == NULL)
    {
      if (is_ambiguous (error))
        caller->ambiguous++;
      else if (is_unreachable (error))
        {
          caller->not_sent++;
          caller->last_not_sent = g_get_monotonic_time ();
        }
      else
        caller_fail (caller, "INCRBY", error->message);
      return;
    }
  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_INTEGER)
    {
      g_autofree char *text = redis_reply_to_string (reply);

      caller_fail (caller, "INCRBY", text);
      return;
    }
  value = redis_reply_get_integer (reply);
  if (!caller_check_value (caller, "INCRBY", value))
    return;
  if (caller->lossless && (guint64) value <= caller->last_value)
    caller_fail (caller, "INCRBY", "the counter went back");
  caller->last_value = (guint64) value;
  caller->writes_ok++;
  g_array_append_val (caller->write_times, now);
  g_mutex_lock (caller->lock);
  caller->last_write = now;
  g_mutex_unlock (caller->lock);
}

static void
caller_read (Caller *caller)
{
  const char *argv[] = { "GET", caller->key, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (caller->cluster), argv, NULL, &error);
  gint64 value;

  if (reply == NULL)
    {
      if (is_ambiguous (error))
        caller->reads_lost++;
      else if (is_unreachable (error))
        {
          caller->not_sent++;
          caller->last_not_sent = g_get_monotonic_time ();
        }
      else
        caller_fail (caller, "GET", error->message);
      return;
    }
  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_STRING)
    {
      g_autofree char *text = redis_reply_to_string (reply);

      caller_fail (caller, "GET", text);
      return;
    }
  value = g_ascii_strtoll (redis_reply_get_text (reply), NULL, 10);
  if (!caller_check_value (caller, "GET", value))
    return;
  /* Reads go to the primary, which has every acknowledged write. */
  if (caller->lossless && (guint64) value < caller->last_value)
    caller_fail (caller, "GET", "older than the last acknowledged write");
  caller->reads_ok++;
}

static gpointer
caller_thread (gpointer data)
{
  Caller *caller = data;

  while (!g_atomic_int_get (caller->stop))
    {
      caller_write (caller);
      caller_read (caller);
    }
  return NULL;
}

typedef struct
{
  Caller  callers[N_CALLERS];
  guint   n_callers;
  gint    stop;
  GMutex  lock;
} Load;

/* Starts a caller on each key; the key is emptied first. */
static void
load_start (Load              *load,
            RedisClusterPool  *cluster,
            char             **keys,
            gboolean           lossless)
{
  memset (load, 0, sizeof *load);
  g_mutex_init (&load->lock);
  for (guint i = 0; keys[i] != NULL; i++)
    {
      Caller *caller = &load->callers[load->n_callers++];
      const char *del[] = { "DEL", keys[i], NULL };
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (cluster), del, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (load->n_callers, <=, N_CALLERS);
      caller->cluster = cluster;
      caller->key = g_strdup (keys[i]);
      caller->step = 1000 + i;
      caller->lossless = lossless;
      caller->stop = &load->stop;
      caller->lock = &load->lock;
      caller->write_times = g_array_new (FALSE, FALSE, sizeof (gint64));
    }
  for (guint i = 0; i < load->n_callers; i++)
    load->callers[i].thread = g_thread_new ("caller", caller_thread, &load->callers[i]);
}

static void
load_stop (Load *load)
{
  g_atomic_int_set (&load->stop, TRUE);
  for (guint i = 0; i < load->n_callers; i++)
    g_thread_join (load->callers[i].thread);
}

static void
load_free (Load *load)
{
  for (guint i = 0; i < load->n_callers; i++)
    {
      g_free (load->callers[i].key);
      g_free (load->callers[i].failure);
      g_array_unref (load->callers[i].write_times);
    }
  g_mutex_clear (&load->lock);
}

/* The first write of @caller acknowledged at or after @since; 0 if none. */
static gint64
first_write_since (Caller *caller,
                   gint64  since)
{
  for (guint i = 0; i < caller->write_times->len; i++)
    {
      gint64 t = g_array_index (caller->write_times, gint64, i);

      if (t >= since)
        return t;
    }
  return 0;
}

/* The longest time without an acknowledged write of @caller in
 * [@from, @to] (the edges count as writes); in @ended, when the write that
 * ended it was acknowledged (the outage's end, for a failover). */
static gint64
longest_gap (Caller *caller,
             gint64  from,
             gint64  to,
             gint64 *ended)
{
  gint64 previous = from, longest = 0, end = to;

  for (guint i = 0; i < caller->write_times->len; i++)
    {
      gint64 t = g_array_index (caller->write_times, gint64, i);

      if (t < from || t > to)
        continue;
      if (t - previous > longest)
        {
          longest = t - previous;
          end = t;
        }
      previous = t;
    }
  if (to - previous > longest)
    {
      longest = to - previous;
      end = to;
    }
  if (ended != NULL)
    *ended = end;
  return longest;
}

/* Every caller in @callers_mask had a write acknowledged at or after
 * @since (read while they run: under the load's lock). */
static gboolean
all_wrote_since (Load   *load,
                 guint   callers_mask,
                 gint64  since)
{
  gboolean all = TRUE;

  g_mutex_lock (&load->lock);
  for (guint i = 0; i < load->n_callers; i++)
    if ((callers_mask & (1u << i)) != 0 && load->callers[i].last_write < since)
      all = FALSE;
  g_mutex_unlock (&load->lock);
  return all;
}

/* After load_stop(): no caller saw an unexpected error or a mix-up; each
 * counter holds at most its acknowledged + ambiguous writes, and at least
 * the acknowledged ones when @lossless. Returns the acknowledged writes
 * lost (only when not lossless). */
static guint64
load_check (Load     *load,
            gboolean  lossless)
{
  guint64 lost = 0;

  for (guint i = 0; i < load->n_callers; i++)
    {
      Caller *caller = &load->callers[i];
      int owner = cluster_fixture_slot_owner (fixture, slot_of (caller->key));
      g_autofree char *out = NULL;
      guint64 value, count;

      g_assert_cmpstr (caller->failure, ==, NULL);
      g_assert_cmpint (owner, >=, 0);
      out = CLI ((guint) owner, "GET", caller->key);
      value = g_ascii_strtoull (out, NULL, 10);
      g_assert_cmpuint (value % caller->step, ==, 0);
      count = value / caller->step;
      g_assert_cmpuint (caller->writes_ok, >, 0);
      g_assert_cmpuint (count, <=, caller->writes_ok + caller->ambiguous);
      if (lossless)
        g_assert_cmpuint (count, >=, caller->writes_ok);
      else if (count < caller->writes_ok)
        lost += caller->writes_ok - count;
    }
  return lost;
}

static void
load_totals (Load    *load,
             guint64 *writes,
             guint64 *reads,
             guint64 *ambiguous,
             guint64 *reads_lost,
             guint64 *not_sent)
{
  *writes = *reads = *ambiguous = *reads_lost = *not_sent = 0;
  for (guint i = 0; i < load->n_callers; i++)
    {
      *not_sent += load->callers[i].not_sent;
      *writes += load->callers[i].writes_ok;
      *reads += load->callers[i].reads_ok;
      *ambiguous += load->callers[i].ambiguous;
      *reads_lost += load->callers[i].reads_lost;
    }
}

/* ---- roles and slots ------------------------------------------------------ */

/* The primaries serving slots now, in the order of their first slot. */
static guint
live_primaries (const int *owners,
                guint     *primaries)
{
  guint n = 0;

  for (guint s = 0; s < SLOTS; s++)
    {
      gboolean seen = FALSE;

      if (owners[s] < 0)
        continue;
      for (guint i = 0; i < n; i++)
        seen |= primaries[i] == (guint) owners[s];
      if (!seen)
        {
          g_assert_cmpuint (n, <, fixture->n_nodes);
          primaries[n++] = (guint) owners[s];
        }
    }
  return n;
}

/* Keys "<prefix><n>" for N_CALLERS callers, caller i on primaries[i % n];
 * *@mask gets the callers on @victim. */
static GStrv
keys_on_primaries (const char  *prefix,
                   const int   *owners,
                   const guint *primaries,
                   guint        n,
                   guint        victim,
                   guint       *mask)
{
  GStrv keys = g_new0 (char *, N_CALLERS + 1);
  guint next = 0;

  *mask = 0;
  for (guint i = 0; i < N_CALLERS; i++)
    {
      guint want = primaries[i % n];

      for (;; next++)
        {
          g_autofree char *key = g_strdup_printf ("%s%u", prefix, next);

          if (owners[slot_of (key)] == (int) want)
            {
              keys[i] = g_steal_pointer (&key);
              next++;
              break;
            }
        }
      if (want == victim)
        *mask |= 1u << i;
    }
  return keys;
}

static gboolean
became_primary (guint   node,
                gint64 *at)
{
  if (!cluster_fixture_is_primary (fixture, node))
    return FALSE;
  *at = g_get_monotonic_time ();
  return TRUE;
}

/* Runs @script on @node and checks that every reply is OK. */
static void
script_ok (guint       node,
           const char *script)
{
  g_autofree char *out = cluster_fixture_cli_script (fixture, node, script);
  g_auto(GStrv) lines = g_strsplit (g_strstrip (out), "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    g_assert_cmpstr (g_strstrip (lines[i]), ==, "OK");
}

/* The same command for each slot of [@first, @last]: "<prefix> <slot> <suffix>". */
static char *
per_slot (const char *prefix,
          guint       first,
          guint       last,
          const char *suffix)
{
  GString *script = g_string_new (NULL);

  for (guint s = first; s <= last; s++)
    g_string_append_printf (script, "%s %u %s\n", prefix, s, suffix);
  return g_string_free (script, FALSE);
}

/* Moves the slots [@first, @last] from @source to @target as redis-cli
 * --cluster reshard does: IMPORTING on the target, MIGRATING on the
 * source, MIGRATE the keys of each slot, then SETSLOT … NODE on the
 * target, the source and every other primary in @primaries. One redis-cli
 * per step and node, not per slot: spawning is slow under valgrind. */
static void
move_slots (guint        first,
            guint        last,
            guint        source,
            guint        target,
            const guint *primaries,
            guint        n_primaries)
{
  g_autofree char *target_port = cluster_fixture_port_string (fixture, target);
  g_autofree char *migrating = NULL;
  g_autofree char *node = NULL;
  g_autofree char *get_keys = per_slot ("CLUSTER GETKEYSINSLOT", first, last, "100000");
  g_autofree char *keys_out = NULL;
  g_auto(GStrv) keys = NULL;
  GString *migrate = g_string_new (NULL);

  {
    g_autofree char *suffix = g_strdup_printf ("IMPORTING %s", fixture->ids[source]);
    g_autofree char *script = per_slot ("CLUSTER SETSLOT", first, last, suffix);

    script_ok (target, script);
  }
  {
    g_autofree char *suffix = g_strdup_printf ("MIGRATING %s", fixture->ids[target]);

    migrating = per_slot ("CLUSTER SETSLOT", first, last, suffix);
    script_ok (source, migrating);
  }

  /* The keys, then one MIGRATE per slot (a MIGRATE must not span slots). */
  keys_out = cluster_fixture_cli_script (fixture, source, get_keys);
  keys = g_strsplit (keys_out, "\n", -1);
  for (guint s = first; s <= last; s++)
    {
      gboolean any = FALSE;

      for (guint k = 0; keys[k] != NULL; k++)
        {
          const char *key = g_strstrip (keys[k]);

          if (*key == '\0' || slot_of (key) != s)
            continue;
          if (!any)
            g_string_append_printf (migrate, "MIGRATE 127.0.0.1 %s \"\" 0 5000 KEYS", target_port);
          g_string_append_printf (migrate, " %s", key);
          any = TRUE;
        }
      if (any)
        g_string_append_c (migrate, '\n');
    }
  if (migrate->len > 0)
    script_ok (source, migrate->str);
  g_string_free (migrate, TRUE);

  {
    g_autofree char *suffix = g_strdup_printf ("NODE %s", fixture->ids[target]);

    node = per_slot ("CLUSTER SETSLOT", first, last, suffix);
  }
  script_ok (target, node);
  script_ok (source, node);
  for (guint i = 0; i < n_primaries; i++)
    if (primaries[i] != source && primaries[i] != target)
      script_ok (primaries[i], node);
}

/* One key per slot, "probe:<n>". */
static GStrv
probe_keys (void)
{
  GStrv keys = g_new0 (char *, SLOTS + 1);
  guint filled = 0;

  for (guint n = 0; filled < SLOTS; n++)
    {
      g_autofree char *key = g_strdup_printf ("probe:%u", n);
      guint slot = slot_of (key);

      if (keys[slot] == NULL)
        {
          keys[slot] = g_steal_pointer (&key);
          filled++;
        }
    }
  return keys;
}

/* Every slot is served: one SET per slot, as one pipeline split over the
 * nodes, and every reply OK. */
static void
assert_every_slot_served (RedisClusterPool *cluster)
{
  g_auto(GStrv) keys = probe_keys ();
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;

  for (guint s = 0; s < SLOTS; s++)
    redis_batch_add (batch, (const char *[]) { "SET", keys[s], "served", NULL });
  replies = redis_client_pipeline_sync (REDIS_CLIENT (cluster), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, SLOTS);
  for (guint s = 0; s < SLOTS; s++)
    {
      g_autofree char *text = redis_reply_to_string (replies->pdata[s]);

      g_assert_cmpstr (text, ==, "OK");
    }
}

/* ---- the tests ------------------------------------------------------------ */

static void
test_manual_failover (void)
{
  RedisClusterPool *cluster = new_cluster_pool (1);
  g_autofree int *owners = cluster_fixture_slot_owners (fixture);
  g_autofree guint *primaries = g_new (guint, fixture->n_nodes);
  guint n = live_primaries (owners, primaries);
  guint victim = primaries[0];
  int replica = cluster_fixture_live_replica (fixture, victim);
  guint victim_mask = 0;
  g_auto(GStrv) keys = keys_on_primaries ("manual:", owners, primaries, n, victim, &victim_mask);
  g_autofree char *ok = NULL;
  gint64 t0, promoted = 0, first = G_MAXINT64, end, gap = 0;
  guint64 writes, reads, ambiguous, reads_lost, not_sent;
  Load load;

  g_assert_cmpint (replica, >=, 0);
  load_start (&load, cluster, keys, TRUE);
  WAIT_UNTIL (all_wrote_since (&load, (1u << load.n_callers) - 1, 1), 10000);

  t0 = g_get_monotonic_time ();
  ok = CLI ((guint) replica, "CLUSTER", "FAILOVER");
  g_assert_cmpstr (ok, ==, "OK");
  WAIT_UNTIL (became_primary ((guint) replica, &promoted), 20000);
  WAIT_UNTIL (all_wrote_since (&load, victim_mask, promoted), 20000);
  /* Some more load on the new layout, with the old primary now a replica. */
  test_iterate_for (300);
  end = g_get_monotonic_time ();
  load_stop (&load);
  cluster_fixture_wait_ok (fixture, 20000);

  load_check (&load, TRUE);
  g_assert_false (cluster_fixture_is_primary (fixture, victim));
  for (guint i = 0; i < load.n_callers; i++)
    if ((victim_mask & (1u << i)) != 0)
      {
        first = MIN (first, first_write_since (&load.callers[i], promoted));
        gap = MAX (gap, longest_gap (&load.callers[i], t0, end, NULL));
      }
  load_totals (&load, &writes, &reads, &ambiguous, &reads_lost, &not_sent);
  /* The old primary stays up: every call reaches a node. */
  g_assert_cmpuint (not_sent, ==, 0);
  report ("manual failover: replica promoted %.0f ms after CLUSTER FAILOVER; first write "
          "acknowledged by the new primary at %.0f ms; longest write gap of its callers "
          "%.0f ms; %" G_GUINT64_FORMAT " writes + %" G_GUINT64_FORMAT " reads acknowledged, "
          "%" G_GUINT64_FORMAT " ambiguous write errors, %" G_GUINT64_FORMAT " cut reads, "
          "%" G_GUINT64_FORMAT " MOVED followed",
          ms_since (t0, promoted), ms_since (t0, first), (double) gap / 1000.0,
          writes, reads, ambiguous, reads_lost, info_u64 (cluster, "moved"));
  load_free (&load);
  release_cluster_pool (cluster);
}

static void
test_reshard (void)
{
  const guint n_slots = 128, n_fill = 1000;
  RedisClusterPool *cluster = new_cluster_pool (60);
  g_autofree int *owners = cluster_fixture_slot_owners (fixture);
  g_autofree guint *primaries = g_new (guint, fixture->n_nodes);
  guint n = live_primaries (owners, primaries);
  guint source = primaries[0], target = primaries[1];
  guint first = 0, last, on_target = 0, on_source = 0;
  GStrv keys = g_new0 (char *, N_CALLERS + 1);
  gint64 t0, done, end, gap = 0;
  guint64 writes, reads, ambiguous, reads_lost, not_sent;
  Load load;

  /* n_slots consecutive slots of the source. */
  for (guint run = 0, s = 0; s < SLOTS && run < n_slots; s++)
    {
      run = owners[s] == (int) source ? run + 1 : 0;
      first = s + 1 - run;
    }
  last = first + n_slots - 1;
  g_assert_cmpint (owners[last], ==, (int) source);

  for (guint i = 0, filled = 0; filled < n_fill; i++)
    {
      g_autofree char *key = g_strdup_printf ("fill:%u", i);
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) reply = NULL;

      if (slot_of (key) < first || slot_of (key) > last)
        continue;
      reply = redis_client_command_sync (REDIS_CLIENT (cluster), (const char *[]) { "SET", key, "x", NULL }, NULL, &error);
      g_assert_no_error (error);
      filled++;
    }
  for (guint i = 0; i < N_CALLERS; i++)
    keys[i] = key_in_slots ("reshard:", first, last, i);
  load_start (&load, cluster, keys, TRUE);
  g_strfreev (keys);
  WAIT_UNTIL (all_wrote_since (&load, (1u << load.n_callers) - 1, 1), 10000);

  t0 = g_get_monotonic_time ();
  move_slots (first, last, source, target, primaries, n);
  done = g_get_monotonic_time ();
  WAIT_UNTIL (all_wrote_since (&load, (1u << load.n_callers) - 1, done), 10000);
  end = g_get_monotonic_time ();
  load_stop (&load);

  load_check (&load, TRUE);
  load_totals (&load, &writes, &reads, &ambiguous, &reads_lost, &not_sent);
  /* No error of any kind reached the callers. */
  g_assert_cmpuint (ambiguous, ==, 0);
  g_assert_cmpuint (reads_lost, ==, 0);
  g_assert_cmpuint (not_sent, ==, 0);
  for (guint s = first; s <= last; s++)
    {
      g_autofree char *slot = g_strdup_printf ("%u", s);
      g_autofree char *t = CLI (target, "CLUSTER", "COUNTKEYSINSLOT", slot);
      g_autofree char *o = CLI (source, "CLUSTER", "COUNTKEYSINSLOT", slot);

      on_target += (guint) g_ascii_strtoull (t, NULL, 10);
      on_source += (guint) g_ascii_strtoull (o, NULL, 10);
    }
  g_assert_cmpuint (on_target, ==, n_fill + load.n_callers);
  g_assert_cmpuint (on_source, ==, 0);

  for (guint i = 0; i < load.n_callers; i++)
    gap = MAX (gap, longest_gap (&load.callers[i], t0, end, NULL));
  report ("resharding: %u slots with %u keys moved in %.0f ms under load; longest write "
          "gap of a caller %.0f ms; %" G_GUINT64_FORMAT " writes + %" G_GUINT64_FORMAT
          " reads acknowledged, no error; %" G_GUINT64_FORMAT " ASK and %" G_GUINT64_FORMAT
          " MOVED followed",
          n_slots, on_target, ms_since (t0, done), (double) gap / 1000.0, writes, reads,
          info_u64 (cluster, "ask"), info_u64 (cluster, "moved"));
  load_free (&load);
  release_cluster_pool (cluster);
}

static void
count_cb (RedisClusterPool *cluster,
          guint            *count)
{
  (*count)++;
}

static void
test_new_node (void)
{
  RedisClusterPool *cluster = new_cluster_pool (1);
  g_autofree int *owners = cluster_fixture_slot_owners (fixture);
  g_autofree guint *primaries = g_new (guint, fixture->n_nodes + 1);
  guint n = live_primaries (owners, primaries);
  const char *key = "new-node:key";
  guint slot = slot_of (key);
  guint source = (guint) owners[slot];
  guint n_items = g_list_model_get_n_items (G_LIST_MODEL (cluster));
  guint changed = 0, node;
  guint64 moved, refreshes;
  gint64 moved_at, seen_at;
  g_autofree char *value = NULL;

  gulong handler = g_signal_connect (cluster, "topology-changed", G_CALLBACK (count_cb), &changed);
  node = cluster_fixture_add_node (fixture);
  primaries[n] = node;
  move_slots (slot, slot, source, node, primaries, n + 1);
  moved_at = g_get_monotonic_time ();
  refreshes = info_u64 (cluster, "refreshes");

  /* Nothing is sent in between: only the periodic refresh can tell. */
  WAIT_UNTIL (changed > 0 && g_list_model_get_n_items (G_LIST_MODEL (cluster)) == n_items + 1, 15000);
  seen_at = g_get_monotonic_time ();
  g_assert_cmpuint (info_u64 (cluster, "refreshes"), >, refreshes);

  moved = info_u64 (cluster, "moved");
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(RedisReply) reply =
      redis_client_command_sync (REDIS_CLIENT (cluster), (const char *[]) { "SET", key, "on-the-new-node", NULL }, NULL, &error);

    g_assert_no_error (error);
  }
  /* Sent straight to the new node. */
  g_assert_cmpuint (info_u64 (cluster, "moved"), ==, moved);
  value = CLI (node, "GET", key);
  g_assert_cmpstr (value, ==, "on-the-new-node");
  report ("new node: slot %u given to a node added with CLUSTER MEET; the periodic refresh "
          "(every 1 s) saw it %.0f ms later", slot, ms_since (moved_at, seen_at));
  /* @changed is on this stack. */
  g_signal_handler_disconnect (cluster, handler);
  release_cluster_pool (cluster);
}

typedef struct
{
  guint replaced;   /* items-changed with one removed, one added */
} ItemsWatch;

static void
items_changed_cb (GListModel *model,
                  guint       position,
                  guint       removed,
                  guint       added,
                  ItemsWatch *watch)
{
  if (removed == 1 && added == 1)
    watch->replaced++;
}

/* GET @key through @cluster, asynchronously (a sync call in this thread
 * would hold back the refreshes, which run in its context); the error,
 * or NULL and the reply checked. */
static GError *
get_async (RedisClusterPool *cluster,
           const char       *key,
           const char       *expected)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  GError *error = NULL;

  redis_client_command_async (REDIS_CLIENT (cluster), (const char *[]) { "GET", key, NULL },
                              NULL, store_result_cb, &result);
  test_wait_for_result (&result, 20000);
  reply = redis_client_command_finish (REDIS_CLIENT (cluster), result, &error);
  if (reply != NULL)
    g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, expected);
  return error;
}

/* Reads the slot map again (async: its replies come in this thread's
 * context). */
static void
refresh_now (RedisClusterPool *cluster)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  redis_cluster_pool_refresh_async (cluster, NULL, store_result_cb, &result);
  test_wait_for_result (&result, 10000);
  g_assert_true (redis_cluster_pool_refresh_finish (cluster, result, &error));
  g_assert_no_error (error);
}

/* A node pool that failed its first connect is not dead for good. With
 * read_from=replica, a replica named by the slot map is stopped before
 * its pool ever connected: a read of its slot still succeeds (the hop
 * that reached no node is retried by the map read anew, which drops the
 * replica once the cluster marks it failed). Restarted, it serves reads
 * again: its pool, closed by the failed start, is replaced (items-changed
 * on the list model) rather than failing every call forever. */
static void
test_replica_restart (void)
{
  g_autofree int *owners = cluster_fixture_slot_owners (fixture);
  g_autofree char *uri = cluster_fixture_uri (fixture);
  g_autofree char *full = g_strdup_printf ("%s&read_from=replica", uri);
  g_autoptr(GError) error = NULL;
  g_autofree char *key = NULL;
  g_autofree char *set = NULL;
  RedisClusterPool *cluster;
  ItemsWatch watch = { 0 };
  int replica = -1;
  guint primary = 0, n = 0;
  gint64 deadline, t0, read_ok, served_at = 0;
  gulong handler;

  for (guint node = 0; node < fixture->n_nodes && replica < 0; node++)
    if (cluster_fixture_is_running (fixture, node) && cluster_fixture_is_primary (fixture, node) &&
        (replica = cluster_fixture_live_replica (fixture, node)) >= 0)
      primary = node;
  g_assert_cmpint (replica, >=, 0);
  do
    {
      g_free (key);
      key = g_strdup_printf ("restart:%u", n++);
    }
  while (owners[slot_of (key)] != (int) primary);
  set = CLI (primary, "SET", key, "kept");
  g_assert_cmpstr (set, ==, "OK");

  cluster = g_initable_new (REDIS_TYPE_CLUSTER_POOL, NULL, &error, "uri", full,
                            "topology-refresh-interval", 3600, NULL);
  g_assert_no_error (error);
  handler = g_signal_connect (cluster, "items-changed", G_CALLBACK (items_changed_cb), &watch);
  /* A replica is listed once the cluster says it is online (a fresh one
   * may not be yet). */
  deadline = g_get_monotonic_time () + test_scale_ms (20000) * G_TIME_SPAN_MILLISECOND;
  while (info_u32 (cluster, "replicas") == 0 && g_get_monotonic_time () < deadline)
    {
      test_iterate_for (100);
      refresh_now (cluster);
    }
  g_assert_cmpuint (info_u32 (cluster, "replicas"), >, 0);

  /* Its pool exists (the map names it) but never connected. */
  t0 = g_get_monotonic_time ();
  cluster_fixture_stop (fixture, (guint) replica);
  error = get_async (cluster, key, "kept");
  g_assert_no_error (error);
  read_ok = g_get_monotonic_time ();
  g_assert_cmpuint (info_u64 (cluster, "unreached"), >, 0);

  g_assert_true (redis_test_server_restart (fixture->servers[replica], &error));
  g_assert_no_error (error);
  cluster_fixture_wait_ok (fixture, 30000);
  cluster_fixture_reset_stats (fixture);

  /* Read until the replica answers: the map lists it again after a
   * refresh (asked for here: the periodic one is off). */
  deadline = g_get_monotonic_time () + test_scale_ms (20000) * G_TIME_SPAN_MILLISECOND;
  while (served_at == 0 && g_get_monotonic_time () < deadline)
    {
      refresh_now (cluster);
      error = get_async (cluster, key, "kept");
      g_assert_no_error (error);
      if (cluster_fixture_cmdstat_calls (fixture, (guint) replica, "get") > 0)
        served_at = g_get_monotonic_time ();
      else
        test_iterate_for (100);
    }
  g_assert_cmpint (served_at, !=, 0);
  g_assert_cmpuint (watch.replaced, >=, 1);
  report ("replica restart: a read of a stopped replica's slot served (by the primary) "
          "%.0f ms after the stop, %" G_GUINT64_FORMAT " hops retried unreached; the "
          "replica restarted serves reads again through a new pool (%u pool replaced)",
          ms_since (t0, read_ok), info_u64 (cluster, "unreached"), watch.replaced);
  g_signal_handler_disconnect (cluster, handler);
  release_cluster_pool (cluster);
}

/* The first time the cluster pool's map covers every slot again and
 * routes @key elsewhere than @from: when it moved the slot to the promoted
 * replica (checked on each topology-changed; while the dead primary is
 * marked failed, its slots are uncovered and routed to some node). */
typedef struct
{
  const char *key;
  RedisPool  *from;
  gint64      moved_at;
} MapWatch;

static void
map_watch_cb (RedisClusterPool *cluster,
              MapWatch         *watch)
{
  g_autoptr(RedisPool) now = NULL;

  if (watch->moved_at != 0)
    return;
  now = redis_cluster_pool_get_pool_for_key (cluster, (const guint8 *) watch->key, strlen (watch->key));
  if (now != watch->from && info_u32 (cluster, "slots-covered") == SLOTS)
    watch->moved_at = g_get_monotonic_time ();
}

static void
store_done_at_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  gint64 *done_at = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) replies = redis_client_pipeline_finish (REDIS_CLIENT (source), result, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, SLOTS);
  for (guint s = 0; s < SLOTS; s++)
    {
      g_autofree char *text = redis_reply_to_string (replies->pdata[s]);

      g_assert_cmpstr (text, ==, "OK");
    }
  *done_at = g_get_monotonic_time ();
}

/* SIGKILL of a primary with a replica, under load. The invariants: no
 * call fails unsent once the cluster pool's map says the slots moved
 * (calls queued for the dead node are routed again by the new map, and
 * the hops that reach no node are retried within the call's deadline);
 * at-most-once for writes (load_check()); no mix-up. A pipeline over
 * every slot, sent while the node is down, completes with no error: when
 * it does, every slot is served again. */
static void
test_kill_primary (void)
{
  /* The calls' deadline (5 s, scaled) must outlast the promotion. */
  g_autofree char *timeout = g_strdup_printf ("command_timeout=%u", test_scale_ms (5000));
  RedisClusterPool *cluster = new_cluster_pool_query (1, timeout);
  g_autofree int *owners = cluster_fixture_slot_owners (fixture);
  g_autofree guint *primaries = g_new (guint, fixture->n_nodes);
  g_auto(GStrv) probe = probe_keys ();
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(RedisPool) victim_pool = NULL;
  guint n = live_primaries (owners, primaries);
  guint victim = G_MAXUINT, victim_mask = 0;
  int replica = -1;
  g_auto(GStrv) keys = NULL;
  gint64 t0, down_at, promoted = 0, recovered = 0, first_write = 0, all_served = 0, cluster_ok, end;
  guint64 writes, reads, ambiguous, reads_lost, not_sent, not_sent_after, lost;
  MapWatch watch = { NULL, NULL, 0 };
  gulong handler;
  Load load;

  for (guint i = 0; i < n && replica < 0; i++)
    if ((replica = cluster_fixture_live_replica (fixture, primaries[i])) >= 0)
      victim = primaries[i];
  g_assert_cmpint (replica, >=, 0);
  keys = keys_on_primaries ("kill:", owners, primaries, n, victim, &victim_mask);
  for (guint i = 0; keys[i] != NULL; i++)
    if ((victim_mask & (1u << i)) != 0 && watch.key == NULL)
      watch.key = keys[i];
  g_assert_nonnull (watch.key);
  victim_pool = redis_cluster_pool_get_pool_for_key (cluster, (const guint8 *) watch.key, strlen (watch.key));
  watch.from = victim_pool;
  handler = g_signal_connect (cluster, "topology-changed", G_CALLBACK (map_watch_cb), &watch);
  for (guint s = 0; s < SLOTS; s++)
    redis_batch_add (batch, (const char *[]) { "SET", probe[s], "served", NULL });

  load_start (&load, cluster, keys, FALSE);
  WAIT_UNTIL (all_wrote_since (&load, (1u << load.n_callers) - 1, 1), 10000);

  t0 = g_get_monotonic_time ();
  cluster_fixture_kill (fixture, victim);
  /* Sent once the pool knows its node is gone (written before, its part
   * could be cut: CONNECTION_LOST, which is not retried). */
  WAIT_UNTIL (redis_pool_get_active_connections (victim_pool) == 0, 10000);
  g_assert_cmpuint (redis_pool_get_active_connections (victim_pool), ==, 0);
  down_at = g_get_monotonic_time ();
  redis_client_pipeline_async (REDIS_CLIENT (cluster), batch, NULL, store_done_at_cb, &all_served);
  WAIT_UNTIL (became_primary ((guint) replica, &promoted), 30000);
  cluster_fixture_wait_ok (fixture, 30000);
  cluster_ok = g_get_monotonic_time ();
  WAIT_UNTIL (all_wrote_since (&load, victim_mask, promoted), 30000);
  WAIT_UNTIL (all_served != 0 && watch.moved_at != 0, 30000);
  test_iterate_for (300);
  end = g_get_monotonic_time ();
  load_stop (&load);
  g_signal_handler_disconnect (cluster, handler);

  lost = load_check (&load, FALSE);
  assert_every_slot_served (cluster);
  g_assert_cmpint (watch.moved_at, !=, 0);
  g_assert_cmpint (all_served, !=, 0);
  not_sent_after = 0;
  for (guint i = 0; i < load.n_callers; i++)
    {
      Caller *caller = &load.callers[i];

      if (caller->last_not_sent > watch.moved_at)
        not_sent_after++;
      if ((victim_mask & (1u << i)) != 0)
        {
          /* Writes acknowledged before the pool saw the node die do not
           * count (the kill takes a moment). */
          gint64 back, first = first_write_since (caller, down_at);

          longest_gap (caller, t0, end, &back);
          recovered = MAX (recovered, back);
          if (first != 0 && (first_write == 0 || first < first_write))
            first_write = first;
        }
    }
  load_totals (&load, &writes, &reads, &ambiguous, &reads_lost, &not_sent);
  report ("SIGKILL of a primary (cluster-node-timeout 1000): replica promoted at %.0f ms, "
          "the cluster pool's map moved its slots at %.0f ms, first write acknowledged on "
          "them (after the pool lost the node, at %.0f ms) at %.0f ms, every slot served at %.0f ms (a pipeline over all slots sent "
          "while the node was down), every caller of its slots served again at %.0f ms, "
          "cluster_state:ok everywhere at %.0f ms; %" G_GUINT64_FORMAT " writes + %"
          G_GUINT64_FORMAT " reads acknowledged, %" G_GUINT64_FORMAT " ambiguous write errors, %"
          G_GUINT64_FORMAT " cut reads, %" G_GUINT64_FORMAT " calls failed unsent (%"
          G_GUINT64_FORMAT " callers after the map moved), %" G_GUINT64_FORMAT
          " hops retried unreached, %" G_GUINT64_FORMAT " acknowledged writes lost with the "
          "primary (asynchronous replication); %.0f ms of load in all",
          ms_since (t0, promoted), ms_since (t0, watch.moved_at), ms_since (t0, down_at),
          ms_since (t0, first_write),
          ms_since (t0, all_served), ms_since (t0, recovered), ms_since (t0, cluster_ok),
          writes, reads, ambiguous, reads_lost, not_sent, not_sent_after,
          info_u64 (cluster, "unreached"), lost, ms_since (t0, end));
  g_assert_cmpuint (not_sent_after, ==, 0);
  load_free (&load);
  g_clear_object (&victim_pool);
  release_cluster_pool (cluster);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  if (!redis_test_server_available ())
    {
      g_test_add_data_func ("/cluster-failover", "redis-server not found", test_skip_cb);
      return g_test_run ();
    }

  fixture = cluster_fixture_new (N_PRIMARIES, 1, NULL);
  /* In this order: the SIGKILL leaves a node down. */
  g_test_add_func ("/cluster-failover/manual", test_manual_failover);
  g_test_add_func ("/cluster-failover/reshard", test_reshard);
  g_test_add_func ("/cluster-failover/new-node", test_new_node);
  g_test_add_func ("/cluster-failover/replica-restart", test_replica_restart);
  g_test_add_func ("/cluster-failover/kill-primary", test_kill_primary);
  status = g_test_run ();
  g_clear_pointer (&fixture, cluster_fixture_free);
  return status;
}
