/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* RedisPool against a real redis-server: dispatch strategies, replacement of
 * lost connections (signals, backoff), calls queued while no connection is
 * live, leases, blocking commands, info, close/dispose and threads. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"
#include "test-listener.h"

#define SKIP_WITHOUT_REDIS()                                  \
  G_STMT_START {                                              \
    if (!redis_test_server_available ())                      \
      {                                                       \
        g_test_skip ("redis-server not installed");           \
        return;                                               \
      }                                                       \
  } G_STMT_END

#define ARGV(...) ((const char * const []) { __VA_ARGS__, NULL })
#define CMD(client, error, ...) \
  redis_client_command_sync (REDIS_CLIENT (client), ARGV (__VA_ARGS__), NULL, (error))

static GThread *main_thread;

/* ---- small helpers ------------------------------------------------------ */

static double
ms_since (gint64 t0)
{
  return (g_get_monotonic_time () - t0) / 1000.0;
}

static RedisTestServer *
server_new (void)
{
  g_autoptr(GError) error = NULL;
  RedisTestServer *server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (server);
  return server;
}

typedef struct
{
  guint                 size;             /* 0: 5 */
  RedisPoolStrategy     strategy;
  guint                 backoff_initial;  /* 0: 100 */
  guint                 backoff_max;      /* 0: 1000 */
  guint                 command_timeout;  /* 0: 2000, scaled; else as given */
  guint                 connect_timeout;  /* 0: 2000, scaled; else as given */
  RedisPoolConnectMode  connect_mode;
  gboolean              no_reconnect;
  guint                 max_queued;       /* 0: 10000 */
  guint                 max_leases;       /* 0: 32 */
} PoolOpts;

static RedisPool *
pool_new_opts (guint16         port,
               const PoolOpts *o)
{
  g_autoptr(GError) error = NULL;
  RedisPool *pool;

  pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                         "port", (guint) port,
                         "pool-size", o->size ? o->size : 5,
                         "strategy", o->strategy,
                         "backoff-initial", o->backoff_initial ? o->backoff_initial : 100,
                         "backoff-max", o->backoff_max ? o->backoff_max : 1000,
                         "command-timeout", o->command_timeout ? o->command_timeout : test_scale_ms (2000),
                         "connect-timeout", o->connect_timeout ? o->connect_timeout : test_scale_ms (2000),
                         "connect-mode", o->connect_mode,
                         "reconnect", !o->no_reconnect,
                         "max-queued", o->max_queued ? o->max_queued : 10000,
                         "max-leases", o->max_leases ? o->max_leases : 32,
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  /* Dispatch the notifications of the initial connections, so that
   * handlers connected from now on only see what the test does. */
  test_drain_main_context ();
  return pool;
}

static RedisPool *
pool_new (guint16           port,
          RedisPoolStrategy strategy)
{
  PoolOpts o = { 0 };

  o.strategy = strategy;
  return pool_new_opts (port, &o);
}

/* Closes the pool, checks that nothing else holds it and that no reply
 * leaked. */
static void
pool_destroy (RedisPool *pool)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  g_assert_finalize_object (pool);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

static gint64
pool_client_id (RedisPool *pool)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = CMD (pool, &error, "CLIENT", "ID");

  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_INTEGER);
  return redis_reply_get_integer (reply);
}

/* ---- info --------------------------------------------------------------- */

static guint
info_u (RedisPool  *pool,
        const char *key)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  guint32 v = 0;

  g_assert_true (g_variant_lookup (info, key, "u", &v));
  return v;
}

static guint64
info_t (RedisPool  *pool,
        const char *key)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  guint64 v = 0;

  g_assert_true (g_variant_lookup (info, key, "t", &v));
  return v;
}

/* The info dictionary of slot @index. */
static GVariantDict *
info_slot (RedisPool *pool,
           guint      index)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  g_autoptr(GVariant) conns = g_variant_lookup_value (info, "connections", G_VARIANT_TYPE ("aa{sv}"));
  g_autoptr(GVariant) slot = NULL;
  guint32 idx = G_MAXUINT32;
  GVariantDict *dict;

  g_assert_nonnull (conns);
  g_assert_cmpuint (index, <, g_variant_n_children (conns));
  slot = g_variant_get_child_value (conns, index);
  dict = g_variant_dict_new (slot);
  g_assert_true (g_variant_dict_lookup (dict, "index", "u", &idx));
  g_assert_cmpuint (idx, ==, index);
  return dict;
}

/* Looks up @key (GVariant @format) in the info dictionary of slot @index,
 * storing the value in @out; returns whether the slot has @key. */
static gboolean
slot_lookup (RedisPool  *pool,
             guint       index,
             const char *key,
             const char *format,
             gpointer    out)
{
  GVariantDict *d = info_slot (pool, index);
  gboolean found = g_variant_dict_lookup (d, key, format, out);

  g_variant_dict_unref (d);
  return found;
}

/* Defines `ctype slot_<name> (RedisPool *pool, guint index)`: the value of
 * @key (GVariant @format) in the info dictionary of slot @index, which must
 * have @key. */
#define DEFINE_SLOT_ACCESSOR(name, ctype, key, format)            \
  static ctype                                                    \
  slot_##name (RedisPool *pool,                                   \
               guint      index)                                  \
  {                                                               \
    ctype v = 0;                                                  \
                                                                  \
    g_assert_true (slot_lookup (pool, index, key, format, &v));   \
    return v;                                                     \
  }

DEFINE_SLOT_ACCESSOR (client_id, gint64, "client-id", "x")
DEFINE_SLOT_ACCESSOR (in_flight, guint32, "in-flight", "u")
DEFINE_SLOT_ACCESSOR (state, char *, "state", "s")
DEFINE_SLOT_ACCESSOR (reconnects, guint64, "reconnects", "t")

#undef DEFINE_SLOT_ACCESSOR

/* NULL when the slot has no last error (the key is optional). */
static char *
slot_last_error (RedisPool *pool,
                 guint      index)
{
  char *s = NULL;

  if (!slot_lookup (pool, index, "last-error", "s", &s))
    s = NULL;
  return s;
}

/* Client ids of every slot (all ready, all distinct). */
static void
slot_ids (RedisPool *pool,
          gint64    *ids,
          guint      n)
{
  for (guint i = 0; i < n; i++)
    {
      ids[i] = slot_client_id (pool, i);
      g_assert_cmpint (ids[i], >, 0);
      for (guint j = 0; j < i; j++)
        g_assert_cmpint (ids[i], !=, ids[j]);
    }
}

static int
index_of (const gint64 *ids,
          guint         n,
          gint64        id)
{
  for (guint i = 0; i < n; i++)
    if (ids[i] == id)
      return (int) i;
  return -1;
}

/* ---- signals ------------------------------------------------------------ */

#define MAX_SLOTS 16

typedef struct
{
  guint lost[MAX_SLOTS];
  guint replaced[MAX_SLOTS];
  guint n_lost;
  guint n_replaced;
  guint n_notify;
  guint min_active;        /* lowest active-connections seen in notify */
  gint  last_lost_code;
  gboolean wrong_thread;
} Signals;

static void
on_lost (RedisPool    *pool,
         guint         index,
         const GError *error,
         Signals      *s)
{
  g_autoptr(GVariant) info = NULL;

  if (g_thread_self () != main_thread)
    s->wrong_thread = TRUE;
  g_assert_cmpuint (index, <, MAX_SLOTS);
  g_assert_cmpuint (index, <, redis_pool_get_size (pool));
  g_assert_nonnull (error);
  g_assert_true (error->domain == REDIS_ERROR);
  s->last_lost_code = error->code;
  s->lost[index]++;
  s->n_lost++;
  /* Handlers may call back into the pool. */
  info = redis_pool_get_info (pool);
  g_assert_nonnull (info);
}

static void
on_replaced (RedisPool *pool,
             guint      index,
             Signals   *s)
{
  if (g_thread_self () != main_thread)
    s->wrong_thread = TRUE;
  g_assert_cmpuint (index, <, MAX_SLOTS);
  s->replaced[index]++;
  s->n_replaced++;
  (void) redis_pool_get_active_connections (pool);
}

static void
on_notify_active (RedisPool  *pool,
                  GParamSpec *pspec,
                  Signals    *s)
{
  guint active = 0;

  g_object_get (pool, "active-connections", &active, NULL);
  s->n_notify++;
  s->min_active = MIN (s->min_active, active);
}

static void
signals_connect (RedisPool *pool,
                 Signals   *s)
{
  memset (s, 0, sizeof *s);
  s->min_active = G_MAXUINT;
  s->last_lost_code = -1;
  g_signal_connect (pool, "connection-lost", G_CALLBACK (on_lost), s);
  g_signal_connect (pool, "connection-replaced", G_CALLBACK (on_replaced), s);
  g_signal_connect (pool, "notify::active-connections", G_CALLBACK (on_notify_active), s);
}

static void
signals_disconnect (RedisPool *pool,
                    Signals   *s)
{
  g_assert_false (s->wrong_thread);
  g_assert_cmpuint (g_signal_handlers_disconnect_by_data (pool, s), ==, 3);
}

/* ---- async load --------------------------------------------------------- */

typedef struct
{
  RedisClient *client;
  const char  *key;          /* INCR key */
  guint        issued;
  guint        pending;
  guint        ok;
  guint        failed;
  guint        failed_by_code[16];
  guint        failed_other;
  char        *first_error;
} Load;

static void
load_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Load *load = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (load->client, result, &error);

  if (g_thread_self () != main_thread)
    load->failed_other += 1000;   /* makes the test fail loudly */
  load->pending--;
  if (reply != NULL)
    {
      g_assert_no_error (error);
      load->ok++;
      return;
    }
  load->failed++;
  if (load->first_error == NULL)
    load->first_error = g_strdup (error->message);
  if (error->domain == REDIS_ERROR && error->code >= 0 && error->code < 16)
    load->failed_by_code[error->code]++;
  else
    load->failed_other++;
}

static void
load_init (Load        *load,
           RedisClient *client,
           const char  *key)
{
  memset (load, 0, sizeof *load);
  load->client = client;
  load->key = key;
}

static void
load_clear (Load *load)
{
  g_clear_pointer (&load->first_error, g_free);
}

/* Tops the INCRs in flight up to @max_in_flight while fewer than @total
 * were issued. Returns TRUE (so it can sit in a WAIT_UNTIL condition). */
static gboolean
load_pump (Load  *load,
           guint  max_in_flight,
           guint  total)
{
  while (load->pending < max_in_flight && load->issued < total)
    {
      load->issued++;
      load->pending++;
      redis_client_command_async (load->client, ARGV ("INCR", load->key), NULL, load_cb, load);
    }
  return TRUE;
}

static gint64
get_int (RedisPool  *pool,
         const char *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = CMD (pool, &error, "GET", key);
  const char *s;

  g_assert_no_error (error);
  if (redis_reply_is_nil (reply))
    return 0;
  s = redis_reply_get_string (reply, NULL);
  return g_ascii_strtoll (s, NULL, 10);
}

/* ---- killing connections from outside (redis-cli on a thread) ----------- */

typedef struct
{
  RedisTestServer *server;
  char            *argv[8];
  char            *out;
  GError          *error;
  gint             done;
} CliJob;

static gpointer
cli_thread (gpointer data)
{
  CliJob *job = data;

  job->out = redis_test_server_cli (job->server, (const char * const *) job->argv, &job->error);
  g_atomic_int_set (&job->done, 1);
  return NULL;
}

static GThread *
cli_start (CliJob          *job,
           RedisTestServer *server,
           const char      *a0,
           ...)
{
  va_list ap;
  const char *a;
  guint n = 0;

  memset (job, 0, sizeof *job);
  job->server = server;
  va_start (ap, a0);
  for (a = a0; a != NULL && n < G_N_ELEMENTS (job->argv) - 1; a = va_arg (ap, const char *))
    job->argv[n++] = g_strdup (a);
  va_end (ap);
  return g_thread_new ("redis-cli", cli_thread, job);
}

/* Joins the thread; returns the number redis-cli printed. */
static gint64
cli_finish (CliJob  *job,
            GThread *thread)
{
  gint64 n;

  g_thread_join (thread);
  g_assert_no_error (job->error);
  g_assert_nonnull (job->out);
  n = g_ascii_strtoll (job->out, NULL, 10);
  g_free (job->out);
  for (guint i = 0; job->argv[i] != NULL; i++)
    g_free (job->argv[i]);
  return n;
}

static void
kill_client_id (RedisTestServer *server,
                gint64           id)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *id_str = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_autofree char *out = redis_test_server_cli (server, ARGV ("CLIENT", "KILL", "ID", id_str), &error);

  g_assert_no_error (error);
  g_assert_cmpstr (g_strstrip (out), ==, "1");
}

/* ---- strategies --------------------------------------------------------- */

static void
test_strategy_round_robin (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  RedisPool *pool;
  gint64 ids[5];
  guint counts[5] = { 0 };
  int first = -1;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  g_assert_cmpint (redis_pool_get_strategy (pool), ==, REDIS_POOL_STRATEGY_ROUND_ROBIN);
  slot_ids (pool, ids, 5);

  for (guint i = 0; i < 100; i++)
    {
      int slot = index_of (ids, 5, pool_client_id (pool));

      g_assert_cmpint (slot, >=, 0);
      if (i == 0)
        first = slot;
      else
        g_assert_cmpint (slot, ==, (first + (int) i) % 5);
      counts[slot]++;
    }
  for (guint i = 0; i < 5; i++)
    g_assert_cmpuint (counts[i], ==, 20);

  pool_destroy (pool);
}

static void
test_strategy_random (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  RedisPool *pool;
  gint64 ids[5];
  guint counts[5] = { 0 };
  int prev = -1;
  guint in_rotation = 0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_RANDOM);
  g_assert_cmpint (redis_pool_get_strategy (pool), ==, REDIS_POOL_STRATEGY_RANDOM);
  slot_ids (pool, ids, 5);

  for (guint i = 0; i < 100; i++)
    {
      int slot = index_of (ids, 5, pool_client_id (pool));

      g_assert_cmpint (slot, >=, 0);
      if (prev >= 0 && slot == (prev + 1) % 5)
        in_rotation++;
      prev = slot;
      counts[slot]++;
    }
  for (guint i = 0; i < 5; i++)
    {
      g_test_message ("random: slot %u served %u of 100", i, counts[i]);
      /* Binomial(100, 0.2): outside [5, 40] has a probability ~1e-5. */
      g_assert_cmpuint (counts[i], >=, 5);
      g_assert_cmpuint (counts[i], <=, 40);
    }
  /* Not a disguised round-robin: a random pick follows its predecessor's
   * successor about 1 time in 5, not 99 times in 99. */
  g_assert_cmpuint (in_rotation, <, 60);

  pool_destroy (pool);
}

/* DEBUG SLEEP blocks the whole (single-threaded) server, so it holds up
 * every connection alike and cannot single one out. A connection is held up
 * alone by a large reply instead: while 32 MiB stream in on it, its call is
 * pending and the other connections answer at once. */
static void
test_strategy_least_pending (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) big_result = NULL;
  g_autoptr(RedisReply) big = NULL;
  g_autoptr(RedisReply) reply = NULL;
  PoolOpts o = { 0 };
  RedisPool *pool;
  gint64 ids[5];
  int busy = -1;
  guint while_busy = 0;
  gsize len = 0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  o.strategy = REDIS_POOL_STRATEGY_LEAST_PENDING;
  o.command_timeout = test_scale_ms (30000);
  pool = pool_new_opts (redis_test_server_get_port (server), &o);
  g_assert_cmpint (redis_pool_get_strategy (pool), ==, REDIS_POOL_STRATEGY_LEAST_PENDING);
  slot_ids (pool, ids, 5);

  reply = CMD (pool, &error, "SETRANGE", "big", "33554431", "x");
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_integer (reply), ==, 32 * 1024 * 1024);

  /* As many rounds as it takes (within reason) to issue 10 calls while a
   * 32 MiB reply streams: how many fit in one depends on how fast the
   * client parses (ASan, valgrind, load). */
  for (guint round = 0; round < 20; round++)
    {
      /* Idle pool: least-pending spreads calls over every connection. */
      guint seen[5] = { 0 };

      for (guint i = 0; i < 10; i++)
        seen[index_of (ids, 5, pool_client_id (pool))]++;
      for (guint i = 0; i < 5; i++)
        g_assert_cmpuint (seen[i], >, 0);

      /* A sync call may return a moment before its connection's pending
       * count drops (the count is updated after the reply is handed over). */
      WAIT_UNTIL (info_u (pool, "in-flight") == 0, 1000);
      redis_client_command_async (REDIS_CLIENT (pool), ARGV ("GET", "big"), NULL,
                                  store_result_cb, &big_result);
      for (guint i = 0; i < 5; i++)
        if (slot_in_flight (pool, i) > 0)
          {
            g_assert_cmpint (busy, ==, -1);
            busy = (int) i;
          }
      g_assert_cmpint (busy, >=, 0);

      /* Only calls issued while the big reply is still streaming count. */
      for (guint i = 0; i < 20 && slot_in_flight (pool, busy) > 0; i++)
        {
          gint64 id = pool_client_id (pool);

          g_assert_cmpint (index_of (ids, 5, id), >=, 0);
          g_assert_cmpint (id, !=, ids[busy]);
          while_busy++;
        }

      test_wait_for_result (&big_result, 20000);
      big = redis_client_command_finish (REDIS_CLIENT (pool), big_result, &error);
      g_assert_no_error (error);
      g_assert_nonnull (redis_reply_get_string (big, &len));
      g_assert_cmpuint (len, ==, 32 * 1024 * 1024);
      g_clear_pointer (&big, redis_reply_unref);
      g_clear_object (&big_result);
      busy = -1;
      if (while_busy >= 10)
        break;
    }
  g_test_message ("least-pending: %u calls issued while one connection was busy", while_busy);
  g_assert_cmpuint (while_busy, >=, 10);

  g_clear_pointer (&reply, redis_reply_unref);
  pool_destroy (pool);
}

/* ---- replacement -------------------------------------------------------- */

static void
test_replace_kill_one_under_load (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autofree char *state = NULL;
  g_autofree char *last_error = NULL;
  RedisPool *pool;
  Signals sig;
  Load load;
  CliJob job;
  GThread *thread;
  gint64 ids[5];
  gint64 counter;
  const guint victim = 2;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  signals_connect (pool, &sig);
  slot_ids (pool, ids, 5);
  load_init (&load, REDIS_CLIENT (pool), "counter");

  WAIT_UNTIL ((load_pump (&load, 40, 100000), load.ok >= 200), 10000);

  {
    g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, ids[victim]);
    thread = cli_start (&job, server, "CLIENT", "KILL", "ID", id, NULL);
  }
  WAIT_UNTIL ((load_pump (&load, 40, 100000), g_atomic_int_get (&job.done)), 10000);
  g_assert_cmpint (cli_finish (&job, thread), ==, 1);

  /* The load goes on while the slot is replaced, and some more after. */
  WAIT_UNTIL ((load_pump (&load, 40, 100000), sig.n_replaced >= 1), 5000);
  {
    guint until = load.issued + 200;

    WAIT_UNTIL ((load_pump (&load, 40, until), load.pending == 0 && load.issued == until), 10000);
  }

  g_test_message ("kill one under load: %u calls, %u ok, %u failed (%s)",
                  load.issued, load.ok, load.failed,
                  load.first_error ? load.first_error : "-");
  g_assert_cmpuint (sig.n_lost, ==, 1);
  g_assert_cmpuint (sig.lost[victim], ==, 1);
  g_assert_cmpuint (sig.n_replaced, ==, 1);
  g_assert_cmpuint (sig.replaced[victim], ==, 1);
  g_assert_cmpint (sig.last_lost_code, ==, REDIS_ERROR_CONNECTION_LOST);

  /* Only calls written on the killed connection may fail, and only so. */
  g_assert_cmpuint (load.failed, ==, load.failed_by_code[REDIS_ERROR_CONNECTION_LOST]);
  g_assert_cmpuint (load.failed_other, ==, 0);
  g_assert_cmpuint (load.failed, <=, 40);
  g_assert_cmpuint (load.ok + load.failed, ==, load.issued);
  counter = get_int (pool, "counter");
  g_assert_cmpint (counter, >=, load.ok);
  g_assert_cmpint (counter, <=, load.ok + load.failed);

  /* info: one reconnect, on that slot, with a new client id. */
  g_assert_cmpuint (info_u (pool, "active"), ==, 5);
  g_assert_cmpuint (info_t (pool, "reconnects"), ==, 1);
  g_assert_cmpuint (slot_reconnects (pool, victim), ==, 1);
  for (guint i = 0; i < 5; i++)
    if (i != victim)
      {
        g_assert_cmpuint (slot_reconnects (pool, i), ==, 0);
        g_assert_cmpint (slot_client_id (pool, i), ==, ids[i]);
      }
  g_assert_cmpint (slot_client_id (pool, victim), !=, ids[victim]);
  g_assert_cmpint (slot_client_id (pool, victim), >, 0);
  state = slot_state (pool, victim);
  g_assert_cmpstr (state, ==, "ready");
  last_error = slot_last_error (pool, victim);
  g_assert_nonnull (last_error);
  g_assert_cmpuint (sig.n_notify, >, 0);
  g_assert_cmpuint (sig.min_active, <=, 4);

  /* No late or repeated signals. */
  test_iterate_for (300);
  g_assert_cmpuint (sig.n_lost, ==, 1);
  g_assert_cmpuint (sig.n_replaced, ==, 1);

  load_clear (&load);
  signals_disconnect (pool, &sig);
  pool_destroy (pool);
}

static void
test_replace_kill_all (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  RedisPool *pool;
  Signals sig;
  gint64 ids[5], new_ids[5];

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  signals_connect (pool, &sig);
  slot_ids (pool, ids, 5);

  /* redis-cli skips itself; the pool's five connections are the others. */
  out = redis_test_server_cli (server, ARGV ("CLIENT", "KILL", "TYPE", "normal"), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_strstrip (out), ==, "5");

  WAIT_UNTIL (sig.n_replaced >= 5 && redis_pool_get_active_connections (pool) == 5, 5000);
  test_iterate_for (300);
  g_test_message ("kill all: %u connection-lost, %u connection-replaced", sig.n_lost, sig.n_replaced);
  g_assert_cmpuint (sig.n_lost, ==, 5);
  g_assert_cmpuint (sig.n_replaced, ==, 5);
  for (guint i = 0; i < 5; i++)
    {
      g_assert_cmpuint (sig.lost[i], ==, 1);
      g_assert_cmpuint (sig.replaced[i], ==, 1);
    }
  g_assert_cmpuint (info_t (pool, "reconnects"), ==, 5);
  slot_ids (pool, new_ids, 5);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (index_of (ids, 5, new_ids[i]), ==, -1);
  g_assert_cmpint (index_of (new_ids, 5, pool_client_id (pool)), >=, 0);

  signals_disconnect (pool, &sig);
  pool_destroy (pool);
}

static void
test_replace_server_restart (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisPool *pool;
  Signals sig;
  gint64 t0;
  double recovery;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  signals_connect (pool, &sig);

  g_assert_true (redis_test_server_stop (server));
  WAIT_UNTIL (sig.n_lost == 5, 3000);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 0);

  /* Down for 2 s: no repeated signals, one prober per slot. */
  test_iterate_for (2000);
  g_assert_cmpuint (sig.n_lost, ==, 5);
  g_assert_cmpuint (sig.n_replaced, ==, 0);
  g_assert_cmpuint (info_u (pool, "active"), ==, 0);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *state = slot_state (pool, i);
      g_autofree char *last_error = slot_last_error (pool, i);

      g_assert_cmpuint (sig.lost[i], ==, 1);
      g_assert_true (g_str_equal (state, "down") || g_str_equal (state, "connecting"));
      g_assert_nonnull (last_error);
    }

  t0 = g_get_monotonic_time ();
  g_assert_true (redis_test_server_restart (server, &error));
  g_assert_no_error (error);
  /* backoff-max (1000) + 1 s */
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == 5 && sig.n_replaced == 5, 2000);
  recovery = ms_since (t0);
  g_test_message ("server restart: recovered in %.0f ms after the restart began; "
                  "%u connection-lost, %u connection-replaced",
                  recovery, sig.n_lost, sig.n_replaced);
  g_assert_cmpfloat (recovery, <=, test_scale_ms (2000));

  test_iterate_for (300);
  g_assert_cmpuint (sig.n_lost, ==, 5);
  g_assert_cmpuint (sig.n_replaced, ==, 5);
  for (guint i = 0; i < 5; i++)
    {
      g_assert_cmpuint (sig.lost[i], ==, 1);
      g_assert_cmpuint (sig.replaced[i], ==, 1);
    }
  g_assert_cmpuint (info_t (pool, "reconnects"), ==, 5);

  reply = CMD (pool, &error, "PING");
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "PONG");
  g_clear_pointer (&reply, redis_reply_unref);

  signals_disconnect (pool, &sig);
  pool_destroy (pool);
}

/* A "dead server" (Refuser, test-listener.h): accepts connections and
 * closes them at once, recording when each attempt arrived. */

static void
test_replace_backoff_spacing (void)
{
  Refuser ds;
  g_autoptr(GArray) times = NULL;
  g_autofree char *last_error = NULL;
  GString *gaps = g_string_new (NULL);
  PoolOpts o = { 0 };
  RedisPool *pool;
  Signals sig;
  guint n;

  refuser_start (&ds);

  o.size = 1;
  o.backoff_initial = 100;
  o.backoff_max = 800;
  o.connect_mode = REDIS_POOL_CONNECT_MODE_BACKGROUND;
  pool = pool_new_opts (ds.port, &o);
  signals_connect (pool, &sig);

  /* Ceilings 100, 200, 400, 800, 800 …, each gap in [1, ceiling] (full
   * jitter, redis-backoff.c; tests/test-backoff.c checks the spread). */
  test_iterate_for (2800);

  times = refuser_times (&ds);
  n = times->len;

  for (guint i = 1; i < n; i++)
    {
      double gap = (g_array_index (times, gint64, i) - g_array_index (times, gint64, i - 1)) / 1000.0;
      double base = MIN (100u << MIN (i - 1, 10u), 800u);

      g_string_append_printf (gaps, " %.0f", gap);
      /* Never longer than the ceiling (full jitter has no floor). */
      g_assert_cmpfloat (gap, <=, base + test_scale_ms (250));
    }
  g_test_message ("backoff: %u attempts in 2.8 s, gaps (ms):%s", n, gaps->str);
  g_string_free (gaps, TRUE);
  /* Expected about 10 (0, ~50, ~150, ~350, ~750, ~1150 … every ~400):
   * at least 4 (every gap at its ceiling), more than 17 with probability
   * about 1e-4 (simulated); a backoff that stopped growing (ceiling 100
   * ms) would make ~56, two probers twice as many. */
  g_assert_cmpuint (n, >=, 4);
  g_assert_cmpuint (n, <=, 17);

  /* Never connected: no signals, nothing active, the reason kept. */
  g_assert_cmpuint (sig.n_lost, ==, 0);
  g_assert_cmpuint (sig.n_replaced, ==, 0);
  g_assert_cmpuint (info_u (pool, "active"), ==, 0);
  g_assert_cmpuint (info_t (pool, "reconnects"), ==, 0);
  last_error = slot_last_error (pool, 0);
  g_assert_nonnull (last_error);

  signals_disconnect (pool, &sig);
  pool_destroy (pool);

  /* Closed: no more attempts. */
  n = refuser_count (&ds);
  test_iterate_for (1000);
  g_assert_cmpuint (refuser_count (&ds), ==, n);

  refuser_stop (&ds);
}

static void
test_replace_no_reconnect (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autofree char *state = NULL;
  PoolOpts o = { 0 };
  RedisPool *pool;
  Signals sig;
  gint64 ids[5];
  const guint victim = 1;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  o.no_reconnect = TRUE;
  pool = pool_new_opts (redis_test_server_get_port (server), &o);
  signals_connect (pool, &sig);
  slot_ids (pool, ids, 5);

  kill_client_id (server, ids[victim]);
  WAIT_UNTIL (sig.n_lost == 1, 3000);
  g_assert_cmpuint (sig.lost[victim], ==, 1);
  test_iterate_for (1000);
  g_assert_cmpuint (sig.n_lost, ==, 1);
  g_assert_cmpuint (sig.n_replaced, ==, 0);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 4);
  g_assert_cmpuint (info_t (pool, "reconnects"), ==, 0);
  state = slot_state (pool, victim);
  g_assert_cmpstr (state, ==, "down");
  g_assert_cmpuint (sig.n_notify, >, 0);
  g_assert_cmpuint (sig.min_active, ==, 4);

  /* The others go on serving; the dead slot is skipped. */
  for (guint i = 0; i < 20; i++)
    {
      gint64 id = pool_client_id (pool);

      g_assert_cmpint (index_of (ids, 5, id), >=, 0);
      g_assert_cmpint (id, !=, ids[victim]);
    }

  signals_disconnect (pool, &sig);
  pool_destroy (pool);
}

/* ---- calls queued while no connection is live --------------------------- */

static void
test_queue_complete_on_start (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *results[3] = { NULL, };
  PoolOpts o = { 0 };
  RedisPool *pool;
  gint64 t0, t_restart;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  g_assert_true (redis_test_server_stop (server));

  o.connect_mode = REDIS_POOL_CONNECT_MODE_BACKGROUND;
  o.command_timeout = test_scale_ms (4000);
  o.backoff_initial = 50;
  o.backoff_max = 200;
  pool = pool_new_opts (redis_test_server_get_port (server), &o);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 0);

  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < 3; i++)
    redis_client_command_async (REDIS_CLIENT (pool), ARGV ("INCR", "queued"), NULL,
                                store_result_cb, &results[i]);
  test_iterate_for (500);
  for (guint i = 0; i < 3; i++)
    g_assert_null (results[i]);
  g_assert_cmpuint (info_u (pool, "queued"), ==, 3);

  t_restart = g_get_monotonic_time ();
  g_assert_true (redis_test_server_restart (server, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (results[0] != NULL && results[1] != NULL && results[2] != NULL, 3000);
  g_test_message ("queued calls completed %.0f ms after the restart began", ms_since (t_restart));
  g_assert_cmpfloat (ms_since (t0), <, test_scale_ms (4000));
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (pool), results[i], &error);

      g_assert_no_error (error);
      g_assert_cmpint (redis_reply_get_integer (reply), >=, 1);
      g_clear_object (&results[i]);
    }
  g_assert_cmpint (get_int (pool, "queued"), ==, 3);
  g_assert_cmpuint (info_u (pool, "queued"), ==, 0);

  pool_destroy (pool);
}

static void
test_queue_deadline (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  PoolOpts o = { 0 };
  RedisPool *pool;
  gint64 t0;
  double elapsed;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  g_assert_true (redis_test_server_stop (server));

  o.connect_mode = REDIS_POOL_CONNECT_MODE_BACKGROUND;
  o.command_timeout = 500;
  pool = pool_new_opts (redis_test_server_get_port (server), &o);

  t0 = g_get_monotonic_time ();
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("GET", "k"), NULL, store_result_cb, &result);
  test_wait_for_result (&result, 3000);
  elapsed = ms_since (t0);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), result, &error);
  g_assert_null (reply);
  /* Never written: safe to retry, and said so. */
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT);
  g_assert_true (redis_error_is_retry_safe (error));
  g_test_message ("queued call timed out after %.0f ms (deadline 500 ms)", elapsed);
  g_assert_cmpfloat (elapsed, >=, 450);
  g_assert_cmpfloat (elapsed, <=, 500 + test_scale_ms (300));
  g_assert_cmpuint (info_u (pool, "queued"), ==, 0);

  /* Sync calls time out the same way. */
  g_clear_error (&error);
  t0 = g_get_monotonic_time ();
  reply = CMD (pool, &error, "PING");
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT);
  g_assert_cmpfloat (ms_since (t0), >=, 450);
  g_assert_cmpfloat (ms_since (t0), <=, 500 + test_scale_ms (300));

  g_clear_object (&result);
  pool_destroy (pool);
}

static void
test_queue_full (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) fourth = NULL;
  g_autoptr(GAsyncResult) fifth = NULL;
  g_autoptr(RedisReply) reply = NULL;
  GAsyncResult *results[3] = { NULL, };
  PoolOpts o = { 0 };
  RedisPool *pool;
  gint64 t0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  g_assert_true (redis_test_server_stop (server));

  o.connect_mode = REDIS_POOL_CONNECT_MODE_BACKGROUND;
  o.command_timeout = 1000;
  o.max_queued = 3;
  pool = pool_new_opts (redis_test_server_get_port (server), &o);

  for (guint i = 0; i < 3; i++)
    redis_client_command_async (REDIS_CLIENT (pool), ARGV ("PING"), NULL, store_result_cb, &results[i]);
  t0 = g_get_monotonic_time ();
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("PING"), NULL, store_result_cb, &fourth);
  test_wait_for_result (&fourth, 500);
  g_assert_cmpfloat (ms_since (t0), <, test_scale_ms (100));
  reply = redis_client_command_finish (REDIS_CLIENT (pool), fourth, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_QUEUE_FULL);
  g_clear_error (&error);
  g_clear_object (&fourth);
  for (guint i = 0; i < 3; i++)
    g_assert_null (results[i]);
  g_assert_cmpuint (info_u (pool, "queued"), ==, 3);

  /* The three keep their own deadline. */
  WAIT_UNTIL (results[0] != NULL && results[1] != NULL && results[2] != NULL, 3000);
  g_assert_cmpfloat (ms_since (t0), >=, 900);
  for (guint i = 0; i < 3; i++)
    {
      reply = redis_client_command_finish (REDIS_CLIENT (pool), results[i], &error);
      g_assert_null (reply);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT);
      g_clear_error (&error);
      g_clear_object (&results[i]);
    }

  /* Room again: a new call waits instead of failing at once. */
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("PING"), NULL, store_result_cb, &fifth);
  test_iterate_for (200);
  g_assert_null (fifth);
  g_assert_cmpuint (info_u (pool, "queued"), ==, 1);
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  test_wait_for_result (&fifth, 1000);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), fifth, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_object (&fifth);

  pool_destroy (pool);
}

/* ---- leases ------------------------------------------------------------- */

static void
test_lease_watch_failed (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisBatch) batch = NULL;
  g_autoptr(GPtrArray) results = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  RedisConnection *lease;
  RedisPool *pool;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);

  redis_pool_acquire_async (pool, NULL, store_result_cb, &result);
  test_wait_for_result (&result, 3000);
  lease = redis_pool_acquire_finish (pool, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (lease);
  g_clear_object (&result);
  g_assert_cmpuint (info_u (pool, "leased"), ==, 1);

  /* Control: WATCH, no writer → EXEC runs. */
  reply = CMD (lease, &error, "WATCH", "k");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  batch = redis_batch_new ();
  redis_batch_add (batch, ARGV ("SET", "k", "first"));
  results = redis_client_transaction_sync (REDIS_CLIENT (lease), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (results->len, ==, 1);
  g_clear_pointer (&results, g_ptr_array_unref);
  g_clear_object (&batch);

  /* WATCH, a writer through the pool → EXEC does nothing. */
  reply = CMD (lease, &error, "WATCH", "k");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  reply = CMD (pool, &error, "SET", "k", "writer");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  batch = redis_batch_new ();
  redis_batch_add (batch, ARGV ("SET", "k", "mine"));
  results = redis_client_transaction_sync (REDIS_CLIENT (lease), batch, NULL, &error);
  g_assert_null (results);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_WATCH_FAILED);
  g_clear_error (&error);

  reply = CMD (pool, &error, "GET", "k");
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "writer");
  g_clear_pointer (&reply, redis_reply_unref);

  redis_pool_release (pool, lease);
  g_object_unref (lease);
  WAIT_UNTIL (info_u (pool, "leased") == 0, 2000);
  pool_destroy (pool);
}

static void
test_lease_select_reset (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisConnection *lease;
  RedisPool *pool;
  gint64 id1, id2;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);

  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  reply = CMD (lease, &error, "CLIENT", "ID");
  g_assert_no_error (error);
  id1 = redis_reply_get_integer (reply);
  g_clear_pointer (&reply, redis_reply_unref);
  reply = CMD (lease, &error, "SELECT", "3");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  reply = CMD (lease, &error, "SET", "in-db3", "1");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  reply = CMD (lease, &error, "CLIENT", "INFO");
  g_assert_no_error (error);
  g_assert_nonnull (strstr (redis_reply_get_string (reply, NULL), " db=3 "));
  g_clear_pointer (&reply, redis_reply_unref);

  redis_pool_release (pool, lease);

  /* A released lease refuses calls. */
  reply = CMD (lease, &error, "PING");
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);
  g_object_unref (lease);

  /* Once reset, the connection is kept for the next lease. */
  WAIT_UNTIL (info_u (pool, "idle-leases") == 1, 3000);
  g_assert_cmpuint (info_u (pool, "leased"), ==, 0);

  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  reply = CMD (lease, &error, "CLIENT", "ID");
  g_assert_no_error (error);
  id2 = redis_reply_get_integer (reply);
  g_clear_pointer (&reply, redis_reply_unref);
  g_assert_cmpint (id2, ==, id1);
  reply = CMD (lease, &error, "CLIENT", "INFO");
  g_assert_no_error (error);
  g_assert_nonnull (strstr (redis_reply_get_string (reply, NULL), " db=0 "));
  g_clear_pointer (&reply, redis_reply_unref);
  reply = CMD (lease, &error, "EXISTS", "in-db3");
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_integer (reply), ==, 0);
  g_clear_pointer (&reply, redis_reply_unref);

  /* Dropping the last reference releases too. */
  g_object_unref (lease);
  WAIT_UNTIL (info_u (pool, "leased") == 0 && info_u (pool, "idle-leases") == 1, 3000);

  pool_destroy (pool);
}

static void
test_shared_state_refused (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  const char * const *refused[] = {
    ARGV ("SELECT", "3"), ARGV ("WATCH", "k"), ARGV ("MULTI"), ARGV ("UNWATCH"),
    ARGV ("select", "1"), ARGV ("CLIENT", "SETNAME", "x"),
  };
  RedisPool *pool;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GError) error = NULL;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(RedisReply) r = redis_client_command_sync (REDIS_CLIENT (pool), refused[i], NULL, &local);

      g_assert_null (r);
      g_assert_error (local, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    }

  /* Nothing was sent: every connection is still on db 0. */
  for (guint i = 0; i < 5; i++)
    {
      reply = CMD (pool, &error, "CLIENT", "INFO");
      g_assert_no_error (error);
      g_assert_nonnull (strstr (redis_reply_get_string (reply, NULL), " db=0 "));
      g_clear_pointer (&reply, redis_reply_unref);
    }

  pool_destroy (pool);
}

static gboolean
server_has_blocked_client (RedisTestServer *server)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = redis_test_server_cli (server, ARGV ("INFO", "clients"), &error);

  g_assert_no_error (error);
  return strstr (out, "blocked_clients:1") != NULL;
}

static void
test_shared_blpop (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) blpop = NULL;
  g_autoptr(RedisReply) reply = NULL;
  PoolOpts o = { 0 };
  RedisPool *pool;
  gint64 t0;
  double worst = 0, elapsed;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  o.command_timeout = 1000;    /* shorter than the block: proves the extension */
  pool = pool_new_opts (redis_test_server_get_port (server), &o);

  reply = CMD (pool, &error, "SET", "k", "v");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);

  t0 = g_get_monotonic_time ();
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("BLPOP", "empty-list", "2"), NULL,
                              store_result_cb, &blpop);
  g_assert_cmpuint (info_u (pool, "leased"), ==, 1);

  /* Wait until the BLPOP sits blocked on the server. The dedicated
   * connection is set up with callbacks in this (the caller's) context, so
   * it has to be iterated. */
  WAIT_UNTIL (server_has_blocked_client (server), 1500);

  for (guint i = 0; i < 10; i++)
    {
      gint64 t1 = g_get_monotonic_time ();
      double latency;

      reply = CMD (pool, &error, "GET", "k");
      latency = ms_since (t1);
      g_assert_no_error (error);
      g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "v");
      g_clear_pointer (&reply, redis_reply_unref);
      worst = MAX (worst, latency);
      g_usleep (50000);
    }
  g_assert_null (blpop);
  g_test_message ("BLPOP in flight: worst GET latency %.2f ms", worst);
  g_assert_cmpfloat (worst, <=, test_scale_ms (50));
  g_assert_cmpuint (info_u (pool, "in-flight"), ==, 0);

  test_wait_for_result (&blpop, 4000);
  elapsed = ms_since (t0);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), blpop, &error);
  g_assert_no_error (error);
  g_assert_true (redis_reply_is_nil (reply));
  g_clear_pointer (&reply, redis_reply_unref);
  g_test_message ("BLPOP 2 s with command-timeout 1 s returned nil after %.0f ms", elapsed);
  g_assert_cmpfloat (elapsed, >=, 1900);
  g_assert_cmpfloat (elapsed, <=, 2000 + test_scale_ms (600));
  g_clear_object (&blpop);

  /* The dedicated connection is kept for reuse, not leaked. */
  WAIT_UNTIL (info_u (pool, "leased") == 0, 2000);
  g_assert_cmpuint (info_u (pool, "idle-leases"), ==, 1);

  pool_destroy (pool);
}

/* ---- dedicated connections: bound, reuse, waiting ----------------------- */

/* Connections opened between two counts taken with
 * test_server_connections_received() (test-client-helpers.h; the second
 * count's own one left out). */
#define OPENED_SINCE(server, before) (test_server_connections_received (server) - (before) - 1)

#define CHURN_THREADS 4
#define CHURN_CYCLES  250

typedef struct
{
  RedisPool *pool;
  gint       ok;
  gint       failed;
  gint       over_bound;   /* leased + idle-leases seen above max-leases */
  guint      max_leases;
} Churn;

static gpointer
churn_thread (gpointer data)
{
  Churn *churn = data;

  for (guint i = 0; i < CHURN_CYCLES; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) reply = NULL;
      RedisConnection *lease = redis_pool_acquire_sync (churn->pool, NULL, &error);

      if (lease == NULL)
        {
          g_printerr ("acquire: %s\n", error->message);
          g_atomic_int_inc (&churn->failed);
          continue;
        }
      reply = CMD (lease, &error, "PING");
      if (reply != NULL && g_strcmp0 (redis_reply_get_string (reply, NULL), "PONG") == 0)
        g_atomic_int_inc (&churn->ok);
      else
        {
          g_printerr ("PING on a lease: %s\n", error != NULL ? error->message : "wrong reply");
          g_atomic_int_inc (&churn->failed);
        }
      {
        /* One snapshot: leased and idle-leases are read together. */
        g_autoptr(GVariant) info = redis_pool_get_info (churn->pool);
        guint32 leased = 0, idle = 0;

        g_assert_true (g_variant_lookup (info, "leased", "u", &leased));
        g_assert_true (g_variant_lookup (info, "idle-leases", "u", &idle));
        if (leased + idle > churn->max_leases)
          g_atomic_int_inc (&churn->over_bound);
      }
      redis_pool_release (churn->pool, lease);
      g_object_unref (lease);
    }
  return NULL;
}

/* 4 threads × 250 acquire → PING → release on a pool of 2. Returns the
 * number of connections the server saw opened. */
static guint64
run_churn (RedisTestServer *server,
           guint            max_leases)
{
  GThread *threads[CHURN_THREADS];
  PoolOpts o = { 0 };
  Churn churn = { 0 };
  guint64 before, opened;
  gint64 t0;

  o.size = 2;
  o.max_leases = max_leases;
  o.command_timeout = test_scale_ms (5000);
  churn.pool = pool_new_opts (redis_test_server_get_port (server), &o);
  churn.max_leases = max_leases;
  before = test_server_connections_received (server);

  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < CHURN_THREADS; i++)
    threads[i] = g_thread_new ("churn", churn_thread, &churn);
  for (guint i = 0; i < CHURN_THREADS; i++)
    g_thread_join (threads[i]);

  opened = OPENED_SINCE (server, before);
  g_test_message ("max-leases %u: %d cycles from %d threads opened %" G_GUINT64_FORMAT
                  " connections in %.0f ms", max_leases, CHURN_THREADS * CHURN_CYCLES,
                  CHURN_THREADS, opened, ms_since (t0));
  g_assert_cmpint (churn.failed, ==, 0);
  g_assert_cmpint (churn.ok, ==, CHURN_THREADS * CHURN_CYCLES);
  g_assert_cmpint (churn.over_bound, ==, 0);

  /* Every lease came back and is kept, within the bound. */
  WAIT_UNTIL (info_u (churn.pool, "leased") == 0, 3000);
  g_assert_cmpuint (info_u (churn.pool, "idle-leases"), <=, MIN (max_leases, CHURN_THREADS));
  g_assert_cmpuint (info_u (churn.pool, "idle-leases"), >=, 1);
  g_assert_cmpuint (info_u (churn.pool, "lease-waiters"), ==, 0);
  pool_destroy (churn.pool);
  return opened;
}

/* The repro: leases must not churn connections. */
static void
test_lease_churn (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  guint64 opened;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();

  /* Fewer dedicated connections than threads: acquirers queue. */
  opened = run_churn (server, 3);
  g_assert_cmpuint (opened, <=, 2 + 3);     /* the pool's 2 slots are up already */
  g_assert_cmpuint (opened, >=, 1);

  /* The default bound is above the thread count: a released lease is
   * reused (its reset in flight) rather than a new one opened, so no more
   * than one per thread is ever opened. */
  opened = run_churn (server, 32);
  g_assert_cmpuint (opened, <=, CHURN_THREADS);

  /* One at a time. */
  opened = run_churn (server, 1);
  g_assert_cmpuint (opened, ==, 1);
}

/* A lease released and acquired again at once reuses its connection,
 * whose reset is still in flight, instead of opening another. */
static void
test_lease_reuse_resetting (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  RedisPool *pool;
  RedisConnection *lease;
  guint64 before;
  gint64 first_id = 0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  before = test_server_connections_received (server);

  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(RedisReply) reply = NULL;

      lease = redis_pool_acquire_sync (pool, NULL, &error);
      g_assert_no_error (error);
      /* State left behind must not leak into the next lease. */
      reply = CMD (lease, &error, "CLIENT", "INFO");
      g_assert_no_error (error);
      g_assert_nonnull (strstr (redis_reply_get_string (reply, NULL), " db=0 "));
      g_assert_nonnull (strstr (redis_reply_get_string (reply, NULL), " multi=-1 "));
      g_clear_pointer (&reply, redis_reply_unref);
      reply = CMD (lease, &error, "CLIENT", "ID");
      g_assert_no_error (error);
      if (i == 0)
        first_id = redis_reply_get_integer (reply);
      g_assert_cmpint (redis_reply_get_integer (reply), ==, first_id);
      g_clear_pointer (&reply, redis_reply_unref);
      reply = CMD (lease, &error, "SELECT", "5");
      g_assert_no_error (error);
      g_clear_pointer (&reply, redis_reply_unref);
      reply = CMD (lease, &error, "MULTI");
      g_assert_no_error (error);
      g_clear_pointer (&reply, redis_reply_unref);
      redis_pool_release (pool, lease);
      g_object_unref (lease);
    }

  g_assert_cmpuint (OPENED_SINCE (server, before), ==, 1);
  WAIT_UNTIL (info_u (pool, "leased") == 0, 2000);
  g_assert_cmpuint (info_u (pool, "idle-leases"), ==, 1);

  /* A lease released with a call in flight that may never end (BLPOP 0)
   * is not waited for: the next acquire opens another connection at once. */
  {
    g_autoptr(GAsyncResult) blpop = NULL;
    g_autoptr(RedisReply) reply = NULL;
    RedisConnection *blocked;
    gint64 t0;

    blocked = redis_pool_acquire_sync (pool, NULL, &error);
    g_assert_no_error (error);
    redis_client_command_async (REDIS_CLIENT (blocked), ARGV ("BLPOP", "never", "0"), NULL,
                                store_result_cb, &blpop);
    WAIT_UNTIL (server_has_blocked_client (server), 2000);
    redis_pool_release (pool, blocked);

    t0 = g_get_monotonic_time ();
    lease = redis_pool_acquire_sync (pool, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpfloat (ms_since (t0), <, test_scale_ms (1000));
    reply = CMD (lease, &error, "CLIENT", "ID");
    g_assert_no_error (error);
    g_assert_cmpint (redis_reply_get_integer (reply), !=, first_id);
    g_clear_pointer (&reply, redis_reply_unref);
    redis_pool_release (pool, lease);
    g_object_unref (lease);

    /* The BLPOP still gets its element; then its connection comes back. */
    reply = CMD (pool, &error, "RPUSH", "never", "late");
    g_assert_no_error (error);
    g_clear_pointer (&reply, redis_reply_unref);
    test_wait_for_result (&blpop, 2000);
    reply = redis_client_command_finish (REDIS_CLIENT (blocked), blpop, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (redis_reply_get_string (redis_reply_get_element (reply, 1), NULL), ==, "late");
    g_clear_object (&blpop);
    g_object_unref (blocked);
    WAIT_UNTIL (info_u (pool, "leased") == 0 && info_u (pool, "idle-leases") == 2, 2000);
  }
  pool_destroy (pool);
}

static gboolean
cancel_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* max-leases 1: a second acquire waits for the first lease, gets the
 * same connection once it is released and reset, and fails with
 * POOL_EXHAUSTED at its deadline, or CANCELLED, or CLOSED; a blocking
 * command through the shared API waits the same way, and is never sent
 * when its deadline passes first. */
static void
test_lease_max_wait (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GCancellable) cancellable = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisConnection *lease, *second;
  PoolOpts o = { 0 };
  RedisPool *pool;
  guint timeout = test_scale_ms (400);
  gint64 id1, id2, t0;
  double elapsed;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  o.size = 1;
  o.max_leases = 1;
  o.command_timeout = timeout;
  pool = pool_new_opts (redis_test_server_get_port (server), &o);

  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  reply = CMD (lease, &error, "CLIENT", "ID");
  g_assert_no_error (error);
  id1 = redis_reply_get_integer (reply);
  g_clear_pointer (&reply, redis_reply_unref);

  /* (a) Waits, then gets the same connection once it is released. */
  redis_pool_acquire_async (pool, NULL, store_result_cb, &result);
  test_iterate_for (50);
  g_assert_null (result);
  g_assert_cmpuint (info_u (pool, "lease-waiters"), ==, 1);
  reply = CMD (lease, &error, "WATCH", "k");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  redis_pool_release (pool, lease);
  g_object_unref (lease);
  test_wait_for_result (&result, 2000);
  second = redis_pool_acquire_finish (pool, result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  reply = CMD (second, &error, "CLIENT", "ID");
  g_assert_no_error (error);
  id2 = redis_reply_get_integer (reply);
  g_clear_pointer (&reply, redis_reply_unref);
  g_assert_cmpint (id2, ==, id1);
  /* The reset ran before the hand-over: the WATCH is gone, so a write by
   * someone else does not abort a transaction. */
  reply = CMD (pool, &error, "SET", "k", "other");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  {
    g_autoptr(RedisBatch) batch = redis_batch_new ();
    g_autoptr(GPtrArray) results = NULL;

    redis_batch_add (batch, ARGV ("SET", "k", "mine"));
    results = redis_client_transaction_sync (REDIS_CLIENT (second), batch, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (results->len, ==, 1);
  }
  g_assert_cmpuint (info_u (pool, "lease-waiters"), ==, 0);

  /* (b) Nothing comes back: POOL_EXHAUSTED at the deadline
   * (command-timeout), from a sync acquire. */
  t0 = g_get_monotonic_time ();
  lease = redis_pool_acquire_sync (pool, NULL, &error);
  elapsed = ms_since (t0);
  g_assert_null (lease);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_POOL_EXHAUSTED);
  g_test_message ("exhausted after %.0f ms (timeout %u ms): %s", elapsed, timeout, error->message);
  g_assert_cmpfloat (elapsed, >=, timeout - 5);
  g_assert_cmpfloat (elapsed, <=, timeout + test_scale_ms (500));
  g_clear_error (&error);
  g_assert_cmpuint (info_u (pool, "lease-waiters"), ==, 0);

  /* (c) Cancelled while waiting: completes at once. */
  cancellable = g_cancellable_new ();
  redis_pool_acquire_async (pool, cancellable, store_result_cb, &result);
  g_timeout_add (20, cancel_cb, cancellable);
  t0 = g_get_monotonic_time ();
  test_wait_for_result (&result, 2000);
  g_assert_cmpfloat (ms_since (t0), <, timeout);
  g_assert_null (redis_pool_acquire_finish (pool, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&result);
  g_assert_cmpuint (info_u (pool, "lease-waiters"), ==, 0);

  /* (d) A blocking command through the shared API counts against the
   * bound: its deadline (command-timeout + block time) passes while it
   * waits, and it was never sent (a later push stays in the list). */
  t0 = g_get_monotonic_time ();
  reply = CMD (pool, &error, "BLPOP", "q", "0.1");
  elapsed = ms_since (t0);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_POOL_EXHAUSTED);
  g_test_message ("blocking command: %s after %.0f ms", error->message, elapsed);
  g_assert_cmpfloat (elapsed, >=, timeout + 100 - 5);
  g_clear_error (&error);
  reply = CMD (pool, &error, "RPUSH", "q", "x");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  test_iterate_for (50);
  reply = CMD (pool, &error, "LLEN", "q");
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_integer (reply), ==, 1);
  g_clear_pointer (&reply, redis_reply_unref);

  /* (e) A blocking command waiting gets the connection once the lease is
   * released, and runs on it. */
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("BLPOP", "q", "1"), NULL,
                              store_result_cb, &result);
  test_iterate_for (50);
  g_assert_null (result);
  g_assert_cmpuint (info_u (pool, "lease-waiters"), ==, 1);
  redis_pool_release (pool, second);
  g_object_unref (second);
  test_wait_for_result (&result, 2000);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_ARRAY);
  g_assert_cmpstr (redis_reply_get_string (redis_reply_get_element (reply, 1), NULL), ==, "x");
  g_clear_pointer (&reply, redis_reply_unref);
  g_clear_object (&result);
  WAIT_UNTIL (info_u (pool, "leased") == 0, 2000);
  g_assert_cmpuint (info_u (pool, "idle-leases"), ==, 1);

  /* (f) Closing the pool fails the waiters with CLOSED. */
  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  redis_pool_acquire_async (pool, NULL, store_result_cb, &result);
  test_iterate_for (20);
  g_assert_null (result);
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  test_wait_for_result (&result, 2000);
  g_assert_null (redis_pool_acquire_finish (pool, result, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);
  g_clear_object (&result);
  g_object_unref (lease);

  pool_destroy (pool);
}

/* A lease that dies while others wait makes room: a waiter opens a new
 * connection instead of waiting out its deadline. */
static void
test_lease_lost_makes_room (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisConnection *lease, *second;
  PoolOpts o = { 0 };
  RedisPool *pool;
  gint64 id1, id2;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  o.size = 1;
  o.max_leases = 1;
  o.command_timeout = test_scale_ms (3000);
  pool = pool_new_opts (redis_test_server_get_port (server), &o);

  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  reply = CMD (lease, &error, "CLIENT", "ID");
  g_assert_no_error (error);
  id1 = redis_reply_get_integer (reply);
  g_clear_pointer (&reply, redis_reply_unref);

  redis_pool_acquire_async (pool, NULL, store_result_cb, &result);
  test_iterate_for (20);
  g_assert_null (result);

  /* The lease's connection is killed; its release finds it dead. */
  kill_client_id (server, id1);
  WAIT_UNTIL (redis_connection_get_state (lease) == REDIS_CONNECTION_STATE_CLOSED, 2000);
  redis_pool_release (pool, lease);
  g_object_unref (lease);

  test_wait_for_result (&result, 3000);
  second = redis_pool_acquire_finish (pool, result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  reply = CMD (second, &error, "CLIENT", "ID");
  g_assert_no_error (error);
  id2 = redis_reply_get_integer (reply);
  g_clear_pointer (&reply, redis_reply_unref);
  g_assert_cmpint (id2, !=, id1);
  g_object_unref (second);

  WAIT_UNTIL (info_u (pool, "leased") == 0, 2000);
  g_assert_cmpuint (info_u (pool, "idle-leases"), ==, 1);
  pool_destroy (pool);
}

/* ---- info --------------------------------------------------------------- */

static void
test_info (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GVariant) conns = NULL;
  const char *strategy = NULL;
  gboolean closed = TRUE;
  guint size = 0, active = 0;
  RedisPool *pool;
  Signals sig;
  gint64 ids[5];

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  signals_connect (pool, &sig);

  info = redis_pool_get_info (pool);
  g_assert_true (g_variant_is_of_type (info, G_VARIANT_TYPE_VARDICT));
  g_assert_false (g_variant_is_floating (info));
  g_assert_true (g_variant_lookup (info, "strategy", "&s", &strategy));
  g_assert_cmpstr (strategy, ==, "round-robin");
  g_assert_true (g_variant_lookup (info, "closed", "b", &closed));
  g_assert_false (closed);
  conns = g_variant_lookup_value (info, "connections", G_VARIANT_TYPE ("aa{sv}"));
  g_assert_cmpuint (g_variant_n_children (conns), ==, 5);
  g_assert_cmpuint (info_u (pool, "size"), ==, 5);
  g_assert_cmpuint (info_u (pool, "active"), ==, 5);
  g_assert_cmpuint (info_u (pool, "in-flight"), ==, 0);
  g_assert_cmpuint (info_u (pool, "queued"), ==, 0);
  g_assert_cmpuint (info_u (pool, "leased"), ==, 0);
  g_assert_cmpuint (info_u (pool, "idle-leases"), ==, 0);
  g_assert_cmpuint (info_t (pool, "reconnects"), ==, 0);
  g_object_get (pool, "pool-size", &size, "active-connections", &active, NULL);
  g_assert_cmpuint (size, ==, 5);
  g_assert_cmpuint (active, ==, 5);
  g_assert_cmpuint (redis_pool_get_size (pool), ==, 5);
  slot_ids (pool, ids, 5);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *state = slot_state (pool, i);
      g_autofree char *last_error = slot_last_error (pool, i);

      g_assert_cmpstr (state, ==, "ready");
      g_assert_null (last_error);
      g_assert_cmpuint (slot_reconnects (pool, i), ==, 0);
    }
  /* The ids are the server's. */
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (index_of (ids, 5, pool_client_id (pool)), >=, 0);

  /* Two kills, one after the other. */
  for (guint k = 0; k < 2; k++)
    {
      kill_client_id (server, ids[k * 3]);
      WAIT_UNTIL (sig.n_replaced == k + 1 && redis_pool_get_active_connections (pool) == 5, 3000);
    }
  g_assert_cmpuint (sig.n_lost, ==, 2);
  g_assert_cmpuint (sig.lost[0], ==, 1);
  g_assert_cmpuint (sig.lost[3], ==, 1);
  g_assert_cmpuint (info_t (pool, "reconnects"), ==, 2);
  g_assert_cmpuint (slot_reconnects (pool, 0), ==, 1);
  g_assert_cmpuint (slot_reconnects (pool, 3), ==, 1);
  g_assert_cmpuint (slot_reconnects (pool, 1), ==, 0);
  g_assert_cmpuint (info_u (pool, "active"), ==, 5);
  g_test_message ("info: %u notify::active-connections during two kills, lowest value %u",
                  sig.n_notify, sig.min_active);
  g_assert_cmpuint (sig.n_notify, >=, 2);
  g_assert_cmpuint (sig.min_active, ==, 4);

  signals_disconnect (pool, &sig);
  g_clear_pointer (&conns, g_variant_unref);
  g_clear_pointer (&info, g_variant_unref);

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, NULL));
  info = redis_pool_get_info (pool);
  g_assert_true (g_variant_lookup (info, "closed", "b", &closed));
  g_assert_true (closed);
  g_assert_cmpuint (info_u (pool, "active"), ==, 0);
  g_clear_pointer (&info, g_variant_unref);
  pool_destroy (pool);
}

/* ---- close and dispose -------------------------------------------------- */

static void
test_close_drains (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) sleep_result = NULL;
  g_autoptr(GAsyncResult) later_result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisPool *pool;
  Signals sig;
  gint64 t0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  signals_connect (pool, &sig);

  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("DEBUG", "SLEEP", "0.3"), NULL,
                              store_result_cb, &sleep_result);
  t0 = g_get_monotonic_time ();
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  g_test_message ("close_sync waited %.0f ms for DEBUG SLEEP 0.3", ms_since (t0));
  g_assert_cmpfloat (ms_since (t0), <=, 300 + test_scale_ms (1000));

  test_wait_for_result (&sleep_result, 2000);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), sleep_result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STATUS);
  g_clear_pointer (&reply, redis_reply_unref);

  /* Later calls fail at once, sync and async; so does acquire. */
  reply = CMD (pool, &error, "PING");
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("PING"), NULL, store_result_cb, &later_result);
  test_wait_for_result (&later_result, 1000);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), later_result, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_null (redis_pool_acquire_sync (pool, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);

  /* No signals after close, even when the server goes away. */
  g_assert_true (redis_test_server_stop (server));
  test_iterate_for (300);
  g_assert_cmpuint (sig.n_lost, ==, 0);
  g_assert_cmpuint (sig.n_replaced, ==, 0);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 0);

  /* Closing twice is fine. */
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);

  signals_disconnect (pool, &sig);
  g_clear_object (&sleep_result);
  g_clear_object (&later_result);
  pool_destroy (pool);
}

static void
test_dispose_pending (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *results[3] = { NULL, };
  GAsyncResult *after = NULL;
  RedisPool *pool;
  Signals sig;
  guint n_closed = 0, n_lost = 0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  signals_connect (pool, &sig);

  for (guint i = 0; i < 3; i++)
    redis_client_command_async (REDIS_CLIENT (pool), ARGV ("DEBUG", "SLEEP", "0.5"), NULL,
                                store_result_cb, &results[i]);
  /* The pending calls' tasks hold references: dispose explicitly. */
  g_object_run_dispose (G_OBJECT (pool));
  WAIT_UNTIL (results[0] != NULL && results[1] != NULL && results[2] != NULL, 1000);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (pool), results[i], &local);

      g_assert_null (reply);
      g_assert_nonnull (local);
      g_assert_true (local->domain == REDIS_ERROR);
      if (local->code == REDIS_ERROR_CLOSED)
        n_closed++;
      else if (local->code == REDIS_ERROR_CONNECTION_LOST)
        n_lost++;
      else
        g_assert_not_reached ();
      g_clear_object (&results[i]);
    }
  g_test_message ("dispose: %u pending calls failed CLOSED, %u CONNECTION_LOST", n_closed, n_lost);

  /* A disposed pool refuses calls instead of crashing. */
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("PING"), NULL, store_result_cb, &after);
  test_wait_for_result (&after, 1000);
  {
    g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (pool), after, &error);

    g_assert_null (reply);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
    g_clear_error (&error);
    g_clear_object (&after);
  }

  /* Closing a disposed pool is a no-op, not a crash. */
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);

  test_iterate_for (200);
  g_assert_cmpuint (sig.n_lost, ==, 0);
  g_assert_false (sig.wrong_thread);
  /* Dispose destroyed the handlers already. */
  g_assert_cmpuint (g_signal_handlers_disconnect_by_data (pool, &sig), ==, 0);
  test_drain_main_context ();
  g_assert_finalize_object (pool);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

static void
test_dispose_queued (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  GAsyncResult *results[3] = { NULL, };
  PoolOpts o = { 0 };
  RedisPool *pool;
  gint64 t0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  g_assert_true (redis_test_server_stop (server));
  o.connect_mode = REDIS_POOL_CONNECT_MODE_BACKGROUND;
  o.command_timeout = test_scale_ms (5000);
  pool = pool_new_opts (redis_test_server_get_port (server), &o);

  for (guint i = 0; i < 3; i++)
    redis_client_command_async (REDIS_CLIENT (pool), ARGV ("PING"), NULL, store_result_cb, &results[i]);
  test_iterate_for (100);
  g_assert_cmpuint (info_u (pool, "queued"), ==, 3);

  t0 = g_get_monotonic_time ();
  g_object_run_dispose (G_OBJECT (pool));
  WAIT_UNTIL (results[0] != NULL && results[1] != NULL && results[2] != NULL, 1000);
  g_assert_cmpfloat (ms_since (t0), <, test_scale_ms (500));
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (pool), results[i], &local);

      g_assert_null (reply);
      g_assert_error (local, REDIS_ERROR, REDIS_ERROR_CLOSED);
      g_clear_object (&results[i]);
    }
  test_drain_main_context ();
  g_assert_finalize_object (pool);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* ---- threads ------------------------------------------------------------ */

#define N_THREADS 8
#define N_ITERATIONS 200

typedef struct
{
  RedisPool *pool;
  gint       ok_incr;
  gint       failed_incr;
  gint       failed_echo;
  gint       bad_failures;     /* any error but CONNECTION_LOST */
  gint       echo_mismatch;
  gint       wrong_context;
  gint       calls_done;
  gint       at_barrier;
  gint       kill_done;
} ThreadShared;

typedef struct
{
  ThreadShared *shared;
  guint         index;
} ThreadArg;

static void
thread_async_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GAsyncResult **slot = user_data;

  *slot = g_object_ref (result);
}

/* One async call from this thread: its callback must run here. */
static void
thread_async_call (ThreadShared *shared,
                   guint         index)
{
  GMainContext *ctx = g_main_context_new ();
  GAsyncResult *result = NULL;
  g_autofree char *text = g_strdup_printf ("async-%u", index);
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;

  g_main_context_push_thread_default (ctx);
  redis_client_command_async (REDIS_CLIENT (shared->pool), ARGV ("ECHO", text), NULL,
                              thread_async_cb, &result);
  while (result == NULL)
    g_main_context_iteration (ctx, TRUE);
  reply = redis_client_command_finish (REDIS_CLIENT (shared->pool), result, &error);
  if (reply == NULL || g_strcmp0 (redis_reply_get_string (reply, NULL), text) != 0)
    g_atomic_int_inc (&shared->wrong_context);
  g_object_unref (result);
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
}

static gpointer
worker_thread (gpointer data)
{
  ThreadArg *arg = data;
  ThreadShared *shared = arg->shared;

  thread_async_call (shared, arg->index);

  for (guint i = 0; i < N_ITERATIONS; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) reply = NULL;

      /* Half way, wait until the kill has happened (calls in flight on
       * every connection when it lands, and plenty after it). */
      if (i == N_ITERATIONS / 2)
        {
          g_atomic_int_inc (&shared->at_barrier);
          while (!g_atomic_int_get (&shared->kill_done))
            g_usleep (1000);
        }

      if (i % 2 == 0)
        {
          reply = CMD (shared->pool, &error, "INCR", "counter");
          if (reply != NULL)
            g_atomic_int_inc (&shared->ok_incr);
          else
            g_atomic_int_inc (&shared->failed_incr);
        }
      else
        {
          g_autofree char *text = g_strdup_printf ("thread-%u-%u", arg->index, i);

          reply = CMD (shared->pool, &error, "ECHO", text);
          if (reply != NULL && g_strcmp0 (redis_reply_get_string (reply, NULL), text) != 0)
            g_atomic_int_inc (&shared->echo_mismatch);
          if (reply == NULL)
            g_atomic_int_inc (&shared->failed_echo);
        }
      if (error != NULL && !g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST))
        {
          g_printerr ("thread %u: unexpected error: %s\n", arg->index, error->message);
          g_atomic_int_inc (&shared->bad_failures);
        }
      g_atomic_int_inc (&shared->calls_done);
    }

  thread_async_call (shared, arg->index);
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  ThreadShared shared = { 0 };
  ThreadArg args[N_THREADS];
  GThread *threads[N_THREADS];
  PoolOpts o = { 0 };
  RedisPool *pool;
  Signals sig;
  Load load;
  CliJob job;
  GThread *cli;
  gint64 ids[5];
  gint64 counter, ok_total, failed_total;
  gint64 t0 = g_get_monotonic_time ();

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  o.command_timeout = test_scale_ms (5000);
  pool = pool_new_opts (redis_test_server_get_port (server), &o);
  signals_connect (pool, &sig);
  slot_ids (pool, ids, 5);
  shared.pool = pool;
  load_init (&load, REDIS_CLIENT (pool), "counter");

  for (guint i = 0; i < N_THREADS; i++)
    {
      args[i].shared = &shared;
      args[i].index = i;
      threads[i] = g_thread_new ("pool-worker", worker_thread, &args[i]);
    }

  /* Main loop async load while the threads run; kill one connection once
   * every thread is past a third of its calls. */
  WAIT_UNTIL ((load_pump (&load, 20, 100000),
               g_atomic_int_get (&shared.calls_done) >= N_THREADS * N_ITERATIONS / 3), 30000);
  {
    g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, ids[4]);
    cli = cli_start (&job, server, "CLIENT", "KILL", "ID", id, NULL);
  }
  WAIT_UNTIL ((load_pump (&load, 20, 100000), g_atomic_int_get (&job.done)), 10000);
  g_assert_cmpint (cli_finish (&job, cli), ==, 1);
  g_atomic_int_set (&shared.kill_done, 1);

  WAIT_UNTIL ((load_pump (&load, 20, 100000),
               g_atomic_int_get (&shared.calls_done) == N_THREADS * N_ITERATIONS), 60000);
  for (guint i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);
  WAIT_UNTIL ((load_pump (&load, 20, load.issued), load.pending == 0), 10000);
  WAIT_UNTIL (sig.n_replaced == 1, 3000);

  ok_total = g_atomic_int_get (&shared.ok_incr) + load.ok;
  failed_total = g_atomic_int_get (&shared.failed_incr) + load.failed;
  counter = get_int (pool, "counter");
  g_test_message ("threads: %d sync INCR ok, %d failed; %d ECHO failed; %u async INCR ok, "
                  "%u failed; counter %" G_GINT64_FORMAT "; %.0f ms",
                  shared.ok_incr, shared.failed_incr, shared.failed_echo, load.ok, load.failed,
                  counter, ms_since (t0));
  g_assert_cmpint (shared.echo_mismatch, ==, 0);
  g_assert_cmpint (shared.bad_failures, ==, 0);
  g_assert_cmpint (shared.wrong_context, ==, 0);
  g_assert_cmpuint (load.failed, ==, load.failed_by_code[REDIS_ERROR_CONNECTION_LOST]);
  g_assert_cmpuint (load.failed_other, ==, 0);
  /* At most the calls in flight on the killed connection failed. */
  g_assert_cmpint (failed_total + shared.failed_echo, <=, N_THREADS + 20);
  g_assert_cmpint (counter, >=, ok_total);
  g_assert_cmpint (counter, <=, ok_total + failed_total);
  if (failed_total == 0)
    g_assert_cmpint (counter, ==, ok_total);
  g_assert_cmpuint (sig.n_lost, ==, 1);
  g_assert_cmpuint (sig.lost[4], ==, 1);
  g_assert_cmpuint (sig.replaced[4], ==, 1);

  load_clear (&load);
  signals_disconnect (pool, &sig);
  pool_destroy (pool);
}

/* ---- initialization is idempotent --------------------------------------- */

static void
test_init_twice (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisPool *pool;
  guint64 before;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), REDIS_POOL_STRATEGY_ROUND_ROBIN);
  before = test_server_connections_received (server);

  /* Sync (Python's pool.init(None)), then async: success, nothing else. */
  g_assert_true (g_initable_init (G_INITABLE (pool), NULL, &error));
  g_assert_no_error (error);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &result);
  test_wait_for_result (&result, 2000);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  /* Still open, same connections. */
  reply = CMD (pool, &error, "PING");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 5);
  g_assert_cmpuint (OPENED_SINCE (server, before), ==, 0);

  /* A lease comes initialized. */
  {
    RedisConnection *lease = redis_pool_acquire_sync (pool, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (g_initable_init (G_INITABLE (lease), NULL, &error));
    g_assert_no_error (error);
    g_async_initable_init_async (G_ASYNC_INITABLE (lease), G_PRIORITY_DEFAULT, NULL,
                                 store_result_cb, &result);
    test_wait_for_result (&result, 2000);
    g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (lease), result, &error));
    g_assert_no_error (error);
    g_clear_object (&result);
    reply = CMD (lease, &error, "SELECT", "1");
    g_assert_no_error (error);
    g_clear_pointer (&reply, redis_reply_unref);
    redis_pool_release (pool, lease);
    g_object_unref (lease);
  }
  pool_destroy (pool);
}

/* Two init_async at once (and a sync one from another thread): one set of
 * connections, the same outcome for all. */
static gpointer
init_in_thread (gpointer data)
{
  g_autoptr(GError) error = NULL;

  return GINT_TO_POINTER (g_initable_init (G_INITABLE (data), NULL, &error) && error == NULL);
}

static void
test_init_concurrent (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) r1 = NULL;
  g_autoptr(GAsyncResult) r2 = NULL;
  g_autoptr(GAsyncResult) r3 = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisPool *pool;
  GThread *thread;
  guint64 before;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = g_object_new (REDIS_TYPE_POOL,
                       "port", (guint) redis_test_server_get_port (server),
                       "pool-size", 3,
                       "connect-timeout", test_scale_ms (2000),
                       NULL);
  before = test_server_connections_received (server);

  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r1);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r2);
  thread = g_thread_new ("init", init_in_thread, pool);
  test_wait_for_result (&r1, 3000);
  test_wait_for_result (&r2, 3000);
  g_assert_true (GPOINTER_TO_INT (g_thread_join (thread)));
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r1, &error));
  g_assert_no_error (error);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r2, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 3);
  g_assert_cmpuint (OPENED_SINCE (server, before), ==, 3);

  /* And later. */
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r3);
  test_wait_for_result (&r3, 2000);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r3, &error));
  g_assert_no_error (error);
  reply = CMD (pool, &error, "PING");
  g_assert_no_error (error);
  g_clear_pointer (&reply, redis_reply_unref);

  /* The results hold the pool. */
  g_clear_object (&r1);
  g_clear_object (&r2);
  g_clear_object (&r3);
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  unref_and_wait_finalized (pool);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* A pool that failed to start: every init call, concurrent or later, gets
 * the same error, and the pool stays closed. */
static void
test_init_failed (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) first = NULL;
  g_autoptr(GAsyncResult) r1 = NULL;
  g_autoptr(GAsyncResult) r2 = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisPool *pool;
  guint16 port;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  port = redis_test_server_get_port (server);
  g_assert_true (redis_test_server_stop (server));

  pool = g_object_new (REDIS_TYPE_POOL, "port", (guint) port, "pool-size", 2,
                       "connect-timeout", test_scale_ms (2000), NULL);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r1);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r2);
  test_wait_for_result (&r1, 3000);
  test_wait_for_result (&r2, 3000);
  g_assert_false (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r1, &first));
  g_assert_error (first, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_false (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r2, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_cmpstr (error->message, ==, first->message);
  g_clear_error (&error);

  g_assert_false (g_initable_init (G_INITABLE (pool), NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_cmpstr (error->message, ==, first->message);
  g_clear_error (&error);

  /* It does not come up when the server does. */
  g_assert_true (redis_test_server_restart (server, &error));
  g_assert_no_error (error);
  reply = CMD (pool, &error, "PING");
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);

  g_clear_object (&r1);
  g_clear_object (&r2);
  unref_and_wait_finalized (pool);
}

/* A credentials provider that answers its first request at once and holds
 * the second until the test lets it go; later ones are answered at once. */
typedef struct
{
  guint                    asked;
  RedisCredentialsRequest *held;
} HoldSecond;

static void
hold_second_provider (RedisPool               *pool,
                      RedisCredentialsRequest *request,
                      gpointer                 user_data)
{
  HoldSecond *hs = user_data;

  if (++hs->asked == 2)
    hs->held = g_object_ref (request);
  else
    redis_credentials_request_complete (request, NULL, NULL);
}

/* A wait-all initialization that succeeds although one of its connections
 * was lost meanwhile: the lost one comes back (it used to stay down for
 * good, since no retry was scheduled while the initialization ran). The
 * second slot's connect is held (its provider request) while the first
 * slot's connection is killed. */
static void
test_init_lost_during_wait_all (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autofree char *out = NULL;
  HoldSecond hs = { 0, };
  RedisPool *pool;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = g_object_new (REDIS_TYPE_POOL,
                       "port", (guint) redis_test_server_get_port (server),
                       "pool-size", 2,
                       "connect-mode", REDIS_POOL_CONNECT_MODE_WAIT_ALL,
                       "backoff-initial", 50, "backoff-max", 50,
                       "connect-timeout", test_scale_ms (2000),
                       "command-timeout", test_scale_ms (2000),
                       NULL);
  redis_pool_set_credentials_provider (pool, hold_second_provider, &hs, NULL);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &result);

  WAIT_UNTIL (hs.held != NULL && redis_pool_get_active_connections (pool) == 1, 3000);
  g_assert_nonnull (hs.held);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 1);
  g_assert_null (result);

  out = redis_test_server_cli (server, ARGV ("CLIENT", "KILL", "TYPE", "normal"), &error);
  g_assert_no_error (error);
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == 0, 3000);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 0);

  redis_credentials_request_complete (hs.held, NULL, NULL);
  g_clear_object (&hs.held);
  test_wait_for_result (&result, 3000);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);   /* it holds the pool */

  WAIT_UNTIL (redis_pool_get_active_connections (pool) == 2, 3000);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 2);
  reply = CMD (pool, &error, "PING");
  g_assert_no_error (error);
  g_assert_nonnull (reply);

  unref_and_wait_finalized (pool);
}

/* Cancelling a call that waits for the first changes nothing; cancelling
 * the first cancels the initialization, and every call gets CANCELLED. */
static void
test_init_cancel (void)
{
  g_autoptr(GSocket) listener = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) r1 = NULL;
  g_autoptr(GAsyncResult) r2 = NULL;
  g_autoptr(GAsyncResult) r3 = NULL;
  g_autoptr(GCancellable) c1 = g_cancellable_new ();
  g_autoptr(GCancellable) c3 = g_cancellable_new ();
  RedisPool *pool;
  guint16 port;
  gint64 t0;

  listener = silent_listener (&port);
  pool = g_object_new (REDIS_TYPE_POOL, "port", (guint) port, "pool-size", 2,
                       "connect-timeout", test_scale_ms (10000), NULL);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, c1,
                               store_result_cb, &r1);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r2);
  g_async_initable_init_async (G_ASYNC_INITABLE (pool), G_PRIORITY_DEFAULT, c3,
                               store_result_cb, &r3);

  test_iterate_for (50);
  t0 = g_get_monotonic_time ();
  g_cancellable_cancel (c3);
  test_wait_for_result (&r3, 1000);
  g_assert_false (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r3, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_null (r1);
  g_assert_null (r2);

  g_cancellable_cancel (c1);
  test_wait_for_result (&r1, 1000);
  test_wait_for_result (&r2, 1000);
  g_test_message ("cancelled in %.1f ms", ms_since (t0));
  g_assert_false (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r1, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (g_async_initable_init_finish (G_ASYNC_INITABLE (pool), r2, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (g_initable_init (G_INITABLE (pool), NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (redis_pool_get_active_connections (pool) == 0);
  {
    g_autoptr(GVariant) info = redis_pool_get_info (pool);
    gboolean closed = FALSE;

    g_assert_true (g_variant_lookup (info, "closed", "b", &closed));
    g_assert_true (closed);
  }

  g_clear_object (&r1);
  g_clear_object (&r2);
  g_clear_object (&r3);
  /* The I/O thread that completed the calls may still be letting go of
   * them: wait for the last reference to go. */
  unref_and_wait_finalized (pool);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* ---- URI ---------------------------------------------------------------- */

static void
test_uri (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autofree char *uri = NULL;
  const char *strategy = NULL;
  guint pool_size = 0, backoff_initial = 0, backoff_max = 0, database = 99, port = 0;
  guint max_leases = 0;
  RedisPoolStrategy strategy_prop = 0;
  RedisPool *pool;
  const char * const bad[] = {
    "pool_size=0", "pool_size=abc", "strategy=fastest", "backoff_initial=0",
    "connect_mode=later", "reconnect=maybe", "no_such_param=1",
    "max_leases=0", "max_leases=-1", "max_leases=many",
  };

  SKIP_WITHOUT_REDIS ();
  server = server_new ();

  uri = g_strdup_printf ("redis://127.0.0.1:%u/2?pool_size=3&strategy=least_pending&backoff_initial=50ms"
                         "&max_leases=7",
                         redis_test_server_get_port (server));
  pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  g_object_get (pool,
                "pool-size", &pool_size, "strategy", &strategy_prop,
                "backoff-initial", &backoff_initial, "backoff-max", &backoff_max,
                "database", &database, "port", &port, "max-leases", &max_leases, NULL);
  g_assert_cmpuint (pool_size, ==, 3);
  g_assert_cmpuint (max_leases, ==, 7);
  g_assert_cmpint (strategy_prop, ==, REDIS_POOL_STRATEGY_LEAST_PENDING);
  g_assert_cmpint (redis_pool_get_strategy (pool), ==, REDIS_POOL_STRATEGY_LEAST_PENDING);
  g_assert_cmpuint (backoff_initial, ==, 50);
  g_assert_cmpuint (backoff_max, ==, 30000);
  g_assert_cmpuint (database, ==, 2);
  g_assert_cmpuint (port, ==, redis_test_server_get_port (server));
  g_assert_cmpuint (redis_pool_get_size (pool), ==, 3);
  g_assert_cmpuint (redis_pool_get_active_connections (pool), ==, 3);
  info = redis_pool_get_info (pool);
  g_assert_true (g_variant_lookup (info, "strategy", "&s", &strategy));
  g_assert_cmpstr (strategy, ==, "least-pending");
  g_assert_cmpuint (info_u (pool, "size"), ==, 3);

  /* Every connection is on database 2. */
  for (guint i = 0; i < 6; i++)
    {
      reply = CMD (pool, &error, "CLIENT", "INFO");
      g_assert_no_error (error);
      g_assert_nonnull (strstr (redis_reply_get_string (reply, NULL), " db=2 "));
      g_clear_pointer (&reply, redis_reply_unref);
    }
  g_clear_pointer (&info, g_variant_unref);
  pool_destroy (pool);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *bad_uri = g_strdup_printf ("redis://127.0.0.1:%u/0?%s",
                                                  redis_test_server_get_port (server), bad[i]);
      g_autoptr(GError) local = NULL;
      RedisPool *bad_pool = redis_pool_new_sync (bad_uri, NULL, &local);

      g_test_message ("%s → %s", bad_uri, local ? local->message : "(no error)");
      g_assert_null (bad_pool);
      g_assert_error (local, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  main_thread = g_thread_self ();

  g_test_add_func ("/pool/strategy/round-robin", test_strategy_round_robin);
  g_test_add_func ("/pool/strategy/random", test_strategy_random);
  g_test_add_func ("/pool/strategy/least-pending", test_strategy_least_pending);
  g_test_add_func ("/pool/replace/kill-one-under-load", test_replace_kill_one_under_load);
  g_test_add_func ("/pool/replace/kill-all", test_replace_kill_all);
  g_test_add_func ("/pool/replace/server-restart", test_replace_server_restart);
  g_test_add_func ("/pool/replace/backoff-spacing", test_replace_backoff_spacing);
  g_test_add_func ("/pool/replace/no-reconnect", test_replace_no_reconnect);
  g_test_add_func ("/pool/queue/complete-on-start", test_queue_complete_on_start);
  g_test_add_func ("/pool/queue/deadline", test_queue_deadline);
  g_test_add_func ("/pool/queue/full", test_queue_full);
  g_test_add_func ("/pool/lease/watch-failed", test_lease_watch_failed);
  g_test_add_func ("/pool/lease/select-reset", test_lease_select_reset);
  g_test_add_func ("/pool/lease/churn", test_lease_churn);
  g_test_add_func ("/pool/lease/reuse-resetting", test_lease_reuse_resetting);
  g_test_add_func ("/pool/lease/max-wait", test_lease_max_wait);
  g_test_add_func ("/pool/lease/lost-makes-room", test_lease_lost_makes_room);
  g_test_add_func ("/pool/shared/state-refused", test_shared_state_refused);
  g_test_add_func ("/pool/shared/blpop", test_shared_blpop);
  g_test_add_func ("/pool/info", test_info);
  g_test_add_func ("/pool/close/drains", test_close_drains);
  g_test_add_func ("/pool/close/dispose-pending", test_dispose_pending);
  g_test_add_func ("/pool/close/dispose-queued", test_dispose_queued);
  g_test_add_func ("/pool/threads", test_threads);
  g_test_add_func ("/pool/init/twice", test_init_twice);
  g_test_add_func ("/pool/init/concurrent", test_init_concurrent);
  g_test_add_func ("/pool/init/failed", test_init_failed);
  g_test_add_func ("/pool/init/lost-during-wait-all", test_init_lost_during_wait_all);
  g_test_add_func ("/pool/init/cancel", test_init_cancel);
  g_test_add_func ("/pool/uri", test_uri);

  return g_test_run ();
}
