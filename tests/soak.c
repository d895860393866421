/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Soak run: a pool of 5 under mixed load against a throwaway redis-server
 * while one of its connections is killed (CLIENT KILL ID, from a separate
 * admin connection) every 2 s. Run by tools/soak.sh [SECONDS].
 *
 * Load: ~64 async calls in flight from the main loop (GET, SET, INCR, ECHO,
 * pipelines, transactions; every completion submits the next call) plus 2
 * threads of sync calls.
 *
 * Invariants (any break: exit 1):
 *   - completion: after the load stops every submitted call has completed,
 *     each within command_timeout + 2 s;
 *   - no mix-up: ECHO returns its own token; in a pipeline, GET returns the
 *     value the SET before it wrote; a sync thread's GET returns a value
 *     that thread may have written;
 *   - INCR: the final counter lies between the INCRs that succeeded and
 *     those plus the uncertain ones (CONNECTION_LOST / TIMEOUT: may have
 *     run);
 *   - errors: only CONNECTION_LOST, CLOSED and TIMEOUT;
 *   - resources: after a warm-up, RSS grows by at most --max-rss-growth MiB
 *     and the number of open fds by at most --max-fd-growth.
 *
 * Exit status: 0 pass, 1 failure, 77 skipped (no redis-server).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <redispool.h>

#include "redis-test-server.h"

#define N_CODES 32

/* ---- options ----------------------------------------------------------- */

static int opt_seconds = 600;
static int opt_inflight = 64;
static int opt_threads = 2;
static int opt_pool_size = 5;
static int opt_kill_interval_ms = 2000;
static int opt_command_timeout_ms = 3000;
static int opt_max_rss_growth_mib = 8;
static int opt_max_fd_growth = 4;
static int opt_warmup_s = -1;

static GOptionEntry entries[] = {
  { "seconds", 's', 0, G_OPTION_ARG_INT, &opt_seconds, "Duration of the load (default 600)", "S" },
  { "inflight", 0, 0, G_OPTION_ARG_INT, &opt_inflight, "Async calls in flight (default 64)", "N" },
  { "threads", 0, 0, G_OPTION_ARG_INT, &opt_threads, "Threads of sync calls (default 2)", "N" },
  { "pool-size", 0, 0, G_OPTION_ARG_INT, &opt_pool_size, "Pool size (default 5)", "N" },
  { "kill-interval", 0, 0, G_OPTION_ARG_INT, &opt_kill_interval_ms, "ms between connection kills (default 2000)", "MS" },
  { "command-timeout", 0, 0, G_OPTION_ARG_INT, &opt_command_timeout_ms, "Command timeout in ms (default 3000)", "MS" },
  { "max-rss-growth", 0, 0, G_OPTION_ARG_INT, &opt_max_rss_growth_mib, "Allowed RSS growth after warm-up, MiB (default 8)", "MIB" },
  { "max-fd-growth", 0, 0, G_OPTION_ARG_INT, &opt_max_fd_growth, "Allowed growth of open fds (default 4)", "N" },
  { "warmup", 0, 0, G_OPTION_ARG_INT, &opt_warmup_s, "Warm-up seconds before the RSS baseline (default: min(30, seconds/6))", "S" },
  { NULL }
};

/* ---- shared state -------------------------------------------------------- */

static RedisPool *pool;
static RedisConnection *admin;
static gint stop_load;                 /* atomic: threads and main loop stop */

static gint64 n_ok;                    /* atomic counters */
static gint64 n_errors[N_CODES];
static gint64 n_other_errors;
static gint64 incr_ok;
static gint64 incr_uncertain;
static gint64 n_kills;
static gint64 n_kill_failures;

static GMutex violations_lock;
static GPtrArray *violations;          /* first messages, bounded */
static gint n_violations;

/* main thread only */
static guint64 submitted;
static guint64 completed;
static guint inflight;
static guint64 seq;
static gint64 max_latency_us;

static void
violation (const char *format,
           ...) G_GNUC_PRINTF (1, 2);

static void
violation (const char *format,
           ...)
{
  va_list args;
  char *msg;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);

  g_atomic_int_inc (&n_violations);
  g_mutex_lock (&violations_lock);
  if (violations->len < 20)
    {
      g_printerr ("soak: INVARIANT BROKEN: %s\n", msg);
      g_ptr_array_add (violations, msg);
    }
  else
    g_free (msg);
  g_mutex_unlock (&violations_lock);
}

/* Records an error; returns TRUE if the call may have run (uncertain). */
static gboolean
note_error (const GError *error,
            const char   *what)
{
  if (error->domain == REDIS_ERROR && error->code >= 0 && error->code < N_CODES)
    g_atomic_pointer_add (&n_errors[error->code], 1);
  else
    g_atomic_pointer_add (&n_other_errors, 1);

  if (error->domain != REDIS_ERROR ||
      (error->code != REDIS_ERROR_CONNECTION_LOST &&
       error->code != REDIS_ERROR_CLOSED &&
       error->code != REDIS_ERROR_TIMEOUT &&
       error->code != REDIS_ERROR_SEND_TIMEOUT))
    {
      violation ("%s failed with an error that is not allowed: %s #%d: %s",
                 what, g_quark_to_string (error->domain), error->code, error->message);
      return TRUE;
    }
  return error->code != REDIS_ERROR_CLOSED;
}

static const char *
code_name (int code)
{
  GEnumClass *klass = g_type_class_ref (REDIS_TYPE_ERROR);
  GEnumValue *value = g_enum_get_value (klass, code);
  const char *name = value != NULL ? value->value_nick : "?";

  g_type_class_unref (klass);
  return name;
}

/* ---- resources ------------------------------------------------------------ */

static gint64
rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, "\nVmRSS:");
  if (line == NULL)
    return -1;
  return g_ascii_strtoll (line + 7, NULL, 10);
}

static int
open_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n - 1;   /* the GDir's own fd */
}

/* What each open fd is, for a message when fds were left behind. */
static char *
describe_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  GString *s = g_string_new (NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/fd/%s", name);
      g_autofree char *target = g_file_read_link (path, NULL);

      g_string_append_printf (s, "%s%s->%s", s->len > 0 ? " " : "", name,
                              target != NULL ? target : "?");
    }
  return g_string_free (s, FALSE);
}

static void
print_stats (const char *label,
             gint64      rss,
             int         fds)
{
  g_autoptr(GString) errors = g_string_new (NULL);

  for (int code = 0; code < N_CODES; code++)
    {
      gint64 n = (gint64) g_atomic_pointer_get (&n_errors[code]);

      if (n > 0)
        g_string_append_printf (errors, " %s=%" G_GINT64_FORMAT, code_name (code), n);
    }
  if (g_atomic_pointer_get (&n_other_errors) != 0)
    g_string_append_printf (errors, " other=%" G_GINT64_FORMAT,
                            (gint64) g_atomic_pointer_get (&n_other_errors));

  g_print ("soak: %-8s ops=%" G_GINT64_FORMAT " submitted=%" G_GUINT64_FORMAT
           " completed=%" G_GUINT64_FORMAT " inflight=%u kills=%" G_GINT64_FORMAT
           " errors:%s rss=%" G_GINT64_FORMAT "KiB fds=%d active=%u\n",
           label, (gint64) g_atomic_pointer_get (&n_ok), submitted, completed, inflight,
           (gint64) g_atomic_pointer_get (&n_kills),
           errors->len > 0 ? errors->str : " none", rss, fds,
           pool != NULL ? redis_pool_get_active_connections (pool) : 0);
}

/* ---- async load ---------------------------------------------------------- */

typedef enum
{
  OP_GET,
  OP_SET,
  OP_INCR,
  OP_ECHO,
  OP_PIPELINE,
  OP_TRANSACTION,
  N_OPS
} OpKind;

static const char *op_names[] = { "GET", "SET", "INCR", "ECHO", "pipeline", "transaction" };

typedef struct
{
  OpKind  kind;
  gint64  started;
  char   *token;   /* ECHO token / SET value */
  char   *key;
} Op;

static void submit (void);

static void
op_free (Op *op)
{
  g_free (op->token);
  g_free (op->key);
  g_free (op);
}

static gboolean
reply_is_string (RedisReply *reply,
                 const char *expected)
{
  const char *s;

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_STRING)
    return FALSE;
  s = redis_reply_get_string (reply, NULL);
  return expected == NULL || g_strcmp0 (s, expected) == 0;
}

static void
check_batch (Op        *op,
             GPtrArray *replies)
{
  RedisReply *r;

  if (op->kind == OP_PIPELINE)
    {
      /* ECHO t, INCR c, SET k v, GET k */
      if (replies->len != 4)
        {
          violation ("pipeline: %u replies instead of 4", replies->len);
          return;
        }
      if (!reply_is_string (replies->pdata[0], op->token))
        violation ("pipeline: ECHO %s got something else", op->token);
      r = replies->pdata[1];
      if (redis_reply_get_kind (r) == REDIS_REPLY_KIND_INTEGER)
        g_atomic_pointer_add (&incr_ok, 1);
      else
        violation ("pipeline: INCR did not return an integer");
      if (redis_reply_get_kind (replies->pdata[2]) != REDIS_REPLY_KIND_STATUS)
        violation ("pipeline: SET did not return a status");
      if (!reply_is_string (replies->pdata[3], op->token))
        violation ("pipeline: GET %s did not return the value just SET (%s)", op->key, op->token);
    }
  else
    {
      /* MULTI; INCR c; ECHO t; EXEC */
      if (replies->len != 2)
        {
          violation ("transaction: %u replies instead of 2", replies->len);
          return;
        }
      if (redis_reply_get_kind (replies->pdata[0]) == REDIS_REPLY_KIND_INTEGER)
        g_atomic_pointer_add (&incr_ok, 1);
      else
        violation ("transaction: INCR did not return an integer");
      if (!reply_is_string (replies->pdata[1], op->token))
        violation ("transaction: ECHO %s got something else", op->token);
    }
}

static void
op_done (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Op *op = user_data;
  RedisClient *client = REDIS_CLIENT (source);
  g_autoptr(GError) error = NULL;
  gint64 latency = g_get_monotonic_time () - op->started;

  if (op->kind == OP_PIPELINE || op->kind == OP_TRANSACTION)
    {
      g_autoptr(GPtrArray) replies =
        op->kind == OP_PIPELINE ? redis_client_pipeline_finish (client, result, &error)
                                : redis_client_transaction_finish (client, result, &error);

      if (replies != NULL)
        {
          g_ptr_array_set_free_func (replies, (GDestroyNotify) redis_reply_unref);
          check_batch (op, replies);
        }
      else if (note_error (error, op_names[op->kind]))
        g_atomic_pointer_add (&incr_uncertain, 1);
    }
  else
    {
      g_autoptr(RedisReply) reply = redis_client_command_finish (client, result, &error);

      if (reply == NULL)
        {
          if (note_error (error, op_names[op->kind]) && op->kind == OP_INCR)
            g_atomic_pointer_add (&incr_uncertain, 1);
        }
      else
        switch (op->kind)
          {
          case OP_GET:
            if (!redis_reply_is_nil (reply) && !reply_is_string (reply, NULL))
              violation ("GET %s: neither nil nor a string", op->key);
            break;
          case OP_SET:
            if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_STATUS)
              violation ("SET %s: not a status reply", op->key);
            break;
          case OP_INCR:
            if (redis_reply_get_kind (reply) == REDIS_REPLY_KIND_INTEGER)
              g_atomic_pointer_add (&incr_ok, 1);
            else
              violation ("INCR: not an integer reply");
            break;
          case OP_ECHO:
            if (!reply_is_string (reply, op->token))
              violation ("ECHO %s got someone else's reply", op->token);
            break;
          default:
            g_assert_not_reached ();
          }
    }

  if (error == NULL)
    g_atomic_pointer_add (&n_ok, 1);

  if (latency > max_latency_us)
    max_latency_us = latency;
  if (latency > (gint64) (opt_command_timeout_ms + 2000) * 1000)
    violation ("%s completed after %" G_GINT64_FORMAT " ms (deadline %d ms + 2 s)",
               op_names[op->kind], latency / 1000, opt_command_timeout_ms);

  completed++;
  inflight--;
  op_free (op);

  if (!g_atomic_int_get (&stop_load))
    submit ();
}

static void
submit (void)
{
  Op *op = g_new0 (Op, 1);
  guint64 n = seq++;
  RedisClient *client = REDIS_CLIENT (pool);

  op->kind = (OpKind) (n % N_OPS);
  op->started = g_get_monotonic_time ();
  op->token = g_strdup_printf ("t%" G_GUINT64_FORMAT, n);
  op->key = g_strdup_printf ("soak:a:%" G_GUINT64_FORMAT, n % 1024);
  submitted++;
  inflight++;

  switch (op->kind)
    {
    case OP_GET:
      {
        const char *argv[] = { "GET", op->key, NULL };
        redis_client_command_async (client, argv, NULL, op_done, op);
      }
      break;
    case OP_SET:
      {
        const char *argv[] = { "SET", op->key, op->token, NULL };
        redis_client_command_async (client, argv, NULL, op_done, op);
      }
      break;
    case OP_INCR:
      {
        const char *argv[] = { "INCR", "soak:counter", NULL };
        redis_client_command_async (client, argv, NULL, op_done, op);
      }
      break;
    case OP_ECHO:
      {
        const char *argv[] = { "ECHO", op->token, NULL };
        redis_client_command_async (client, argv, NULL, op_done, op);
      }
      break;
    case OP_PIPELINE:
      {
        g_autoptr(RedisBatch) batch = redis_batch_new ();
        const char *echo[] = { "ECHO", op->token, NULL };
        const char *incr[] = { "INCR", "soak:counter", NULL };
        const char *set[] = { "SET", op->key, op->token, NULL };
        const char *get[] = { "GET", op->key, NULL };

        /* Its own key: no other SET of this key can come in between. */
        g_free (op->key);
        op->key = g_strdup_printf ("soak:p:%" G_GUINT64_FORMAT, n);
        set[1] = get[1] = op->key;
        redis_batch_add (batch, echo);
        redis_batch_add (batch, incr);
        redis_batch_add (batch, set);
        redis_batch_add (batch, get);
        redis_client_pipeline_async (client, batch, NULL, op_done, op);
      }
      break;
    case OP_TRANSACTION:
      {
        g_autoptr(RedisBatch) batch = redis_batch_new ();
        const char *incr[] = { "INCR", "soak:counter", NULL };
        const char *echo[] = { "ECHO", op->token, NULL };

        redis_batch_add (batch, incr);
        redis_batch_add (batch, echo);
        redis_client_transaction_async (client, batch, NULL, op_done, op);
      }
      break;
    default:
      g_assert_not_reached ();
    }
}

/* Pipeline keys are unique: expire them so memory on the server stays flat. */
static void
cleanup_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  (void) reply;
}

/* ---- sync threads --------------------------------------------------------- */

static gpointer
sync_thread (gpointer data)
{
  guint index = GPOINTER_TO_UINT (data);
  RedisClient *client = REDIS_CLIENT (pool);
  g_autofree char *key = g_strdup_printf ("soak:sync:%u", index);
  /* Values the key may hold: the last SET that succeeded plus any SET
   * since that failed in a way that may have run. */
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  gboolean known_empty = TRUE;
  guint64 i = 0;

  while (!g_atomic_int_get (&stop_load))
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *value = g_strdup_printf ("s%u-%" G_GUINT64_FORMAT, index, i);

      switch (i++ % 4)
        {
        case 0:
          {
            const char *argv[] = { "SET", key, value, "EX", "600", NULL };
            g_autoptr(RedisReply) reply = redis_client_command_sync (client, argv, NULL, &error);

            if (reply != NULL)
              {
                g_ptr_array_set_size (candidates, 0);
                g_ptr_array_add (candidates, g_steal_pointer (&value));
                known_empty = FALSE;
                g_atomic_pointer_add (&n_ok, 1);
              }
            else if (note_error (error, "sync SET"))
              g_ptr_array_add (candidates, g_steal_pointer (&value));
          }
          break;
        case 1:
        case 3:
          {
            const char *argv[] = { "GET", key, NULL };
            g_autoptr(RedisReply) reply = redis_client_command_sync (client, argv, NULL, &error);

            if (reply != NULL)
              {
                g_atomic_pointer_add (&n_ok, 1);
                if (redis_reply_is_nil (reply))
                  {
                    if (!known_empty || candidates->len > 0)
                      {
                        /* Only an uncertain first SET allows nil. */
                        if (!known_empty)
                          violation ("sync GET %s: nil after a successful SET", key);
                      }
                  }
                else
                  {
                    const char *got = redis_reply_get_string (reply, NULL);
                    gboolean found = FALSE;

                    for (guint c = 0; c < candidates->len && !found; c++)
                      found = g_strcmp0 (got, candidates->pdata[c]) == 0;
                    if (!found)
                      violation ("sync GET %s: got “%s”, which this thread never wrote there",
                                 key, got);
                    else
                      {
                        /* Settled: the server holds this one. */
                        g_ptr_array_set_size (candidates, 0);
                        g_ptr_array_add (candidates, g_strdup (got));
                        known_empty = FALSE;
                      }
                  }
              }
            else
              note_error (error, "sync GET");
          }
          break;
        case 2:
          {
            const char *argv[] = { "INCR", "soak:counter", NULL };
            g_autoptr(RedisReply) reply = redis_client_command_sync (client, argv, NULL, &error);

            if (reply != NULL)
              {
                g_atomic_pointer_add (&n_ok, 1);
                if (redis_reply_get_kind (reply) == REDIS_REPLY_KIND_INTEGER)
                  g_atomic_pointer_add (&incr_ok, 1);
                else
                  violation ("sync INCR: not an integer");
              }
            else if (note_error (error, "sync INCR"))
              g_atomic_pointer_add (&incr_uncertain, 1);
          }
          break;
        default:
          g_assert_not_reached ();
        }
    }
  return NULL;
}

/* ---- connection killer ----------------------------------------------------- */

static void
kill_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  if (reply != NULL && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_INTEGER &&
      redis_reply_get_integer (reply) == 1)
    g_atomic_pointer_add (&n_kills, 1);
  else
    g_atomic_pointer_add (&n_kill_failures, 1);
}

static void
list_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_auto(GStrv) lines = NULL;

  if (reply == NULL || g_atomic_int_get (&stop_load))
    {
      if (reply == NULL)
        g_atomic_pointer_add (&n_kill_failures, 1);
      return;
    }

  lines = g_strsplit (redis_reply_get_string (reply, NULL), "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], " name=soak ") != NULL && g_str_has_prefix (lines[i], "id="))
      g_ptr_array_add (ids, g_strndup (lines[i] + 3, strcspn (lines[i] + 3, " ")));

  if (ids->len > 0)
    {
      const char *argv[] = { "CLIENT", "KILL", "ID",
                             ids->pdata[g_random_int_range (0, ids->len)], NULL };

      redis_client_command_async (REDIS_CLIENT (admin), argv, NULL, kill_done, NULL);
    }
}

static gboolean
kill_tick (gpointer data)
{
  const char *argv[] = { "CLIENT", "LIST", "TYPE", "NORMAL", NULL };

  if (g_atomic_int_get (&stop_load))
    return G_SOURCE_REMOVE;
  redis_client_command_async (REDIS_CLIENT (admin), argv, NULL, list_done, NULL);
  return G_SOURCE_CONTINUE;
}

static gboolean
expire_tick (gpointer data)
{
  /* Pipeline keys are unique per call: drop them now and then so that the
   * server's memory stays flat over a long run. */
  const char *argv[] = { "EVAL",
    "local n = 0 for _, k in ipairs(redis.call('KEYS', 'soak:p:*')) do "
    "redis.call('DEL', k) n = n + 1 end return n", "0", NULL };

  if (g_atomic_int_get (&stop_load))
    return G_SOURCE_REMOVE;
  redis_client_command_async (REDIS_CLIENT (admin), argv, NULL, cleanup_done, NULL);
  return G_SOURCE_CONTINUE;
}

/* ---- main -------------------------------------------------------------------- */

static gboolean
flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
tick_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates the main context until *@flag or @cond() holds or @max_ms
 * passed; a 50 ms tick notices conditions changed by other threads. */
static void
iterate_until (gboolean *flag,
               guint     max_ms,
               gboolean (*cond) (void))
{
  gboolean expired = FALSE;
  guint timer = g_timeout_add (max_ms, flag_cb, &expired);
  guint tick = g_timeout_add (50, tick_cb, NULL);

  while (!expired && !(flag != NULL && *flag) && !(cond != NULL && cond ()))
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (timer);
  g_source_remove (tick);
}

static gboolean
drained (void)
{
  return inflight == 0;
}

static gboolean
pool_full (void)
{
  return redis_pool_get_active_connections (pool) >= (guint) opt_pool_size;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *admin_uri = NULL;
  g_autoptr(GPtrArray) threads = g_ptr_array_new ();
  gint64 rss0, rss_warm, rss_end, rss_after;
  int fds0, fds_warm, fds_end, fds_after;
  gint64 t_start, t_end, t_warm;
  gboolean warm = FALSE, done = FALSE;
  gint64 last_report;
  gint64 counter = -1;
  gint64 ok, uncertain;
  int status = 0;

  context = g_option_context_new ("[SECONDS] — soak a RedisPool under load and connection kills");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("soak: %s\n", error->message);
      return 2;
    }
  if (argc > 1)
    opt_seconds = atoi (argv[1]);
  if (opt_seconds < 5)
    opt_seconds = 5;
  if (opt_warmup_s < 0)
    opt_warmup_s = MIN (30, opt_seconds / 6);

  violations = g_ptr_array_new_with_free_func (g_free);

  if (!redis_test_server_available ())
    {
      g_print ("soak: SKIP: redis-server not found\n");
      return 77;
    }

  rss0 = rss_kib ();
  fds0 = open_fds ();

  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  if (server == NULL)
    {
      g_printerr ("soak: cannot start redis-server: %s\n", error->message);
      return 1;
    }

  uri = g_strdup_printf ("redis://127.0.0.1:%u/0?pool_size=%d&client_name=soak"
                         "&command_timeout=%dms&connect_timeout=2s"
                         "&backoff_initial=20ms&backoff_max=500ms",
                         redis_test_server_get_port (server), opt_pool_size,
                         opt_command_timeout_ms);
  admin_uri = g_strdup_printf ("redis://127.0.0.1:%u/0?client_name=soak-admin&command_timeout=5s",
                               redis_test_server_get_port (server));

  pool = redis_pool_new_sync (uri, NULL, &error);
  if (pool == NULL)
    {
      g_printerr ("soak: cannot create the pool: %s\n", error->message);
      return 1;
    }
  admin = redis_connection_new_sync (admin_uri, NULL, &error);
  if (admin == NULL)
    {
      g_printerr ("soak: cannot connect the admin connection: %s\n", error->message);
      return 1;
    }

  g_print ("soak: %d s, pool of %d, %d async in flight, %d sync threads, a kill every %d ms, "
           "command timeout %d ms, warm-up %d s\n",
           opt_seconds, opt_pool_size, opt_inflight, opt_threads, opt_kill_interval_ms,
           opt_command_timeout_ms, opt_warmup_s);
  print_stats ("start", rss0, fds0);

  t_start = g_get_monotonic_time ();
  t_warm = t_start + (gint64) opt_warmup_s * G_USEC_PER_SEC;
  t_end = t_start + (gint64) opt_seconds * G_USEC_PER_SEC;
  last_report = t_start;
  rss_warm = rss_kib ();
  fds_warm = open_fds ();

  for (int i = 0; i < opt_inflight; i++)
    submit ();
  for (int i = 0; i < opt_threads; i++)
    g_ptr_array_add (threads, g_thread_new ("soak-sync", sync_thread, GUINT_TO_POINTER (i)));
  g_timeout_add (opt_kill_interval_ms, kill_tick, NULL);
  g_timeout_add_seconds (10, expire_tick, NULL);

  while (!done)
    {
      gint64 now;

      g_main_context_iteration (NULL, TRUE);
      now = g_get_monotonic_time ();
      if (!warm && now >= t_warm)
        {
          warm = TRUE;
          rss_warm = rss_kib ();
          fds_warm = open_fds ();
          print_stats ("warm", rss_warm, fds_warm);
        }
      if (now - last_report >= 10 * G_USEC_PER_SEC)
        {
          last_report = now;
          print_stats ("running", rss_kib (), open_fds ());
        }
      if (now >= t_end)
        done = TRUE;
    }

  /* Stop the load; everything in flight must complete. */
  g_atomic_int_set (&stop_load, 1);
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (threads->pdata[i]);
  iterate_until (NULL, opt_command_timeout_ms + 5000, drained);
  if (inflight != 0 || completed != submitted)
    violation ("completion: %" G_GUINT64_FORMAT " submitted, %" G_GUINT64_FORMAT
               " completed, %u still in flight %d ms after the load stopped",
               submitted, completed, inflight, opt_command_timeout_ms + 5000);

  /* Let the pool reconnect what the last kill took, then measure. */
  iterate_until (NULL, 5000, pool_full);
  rss_end = rss_kib ();
  fds_end = open_fds ();
  print_stats ("end", rss_end, fds_end);

  /* The counter. */
  for (int attempt = 0; attempt < 10 && counter < 0; attempt++)
    {
      const char *get[] = { "GET", "soak:counter", NULL };
      g_autoptr(GError) get_error = NULL;
      g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (pool), get, NULL, &get_error);

      if (reply != NULL)
        counter = redis_reply_is_nil (reply) ? 0 : g_ascii_strtoll (redis_reply_get_string (reply, NULL), NULL, 10);
    }
  ok = (gint64) g_atomic_pointer_get (&incr_ok);
  uncertain = (gint64) g_atomic_pointer_get (&incr_uncertain);
  g_print ("soak: counter=%" G_GINT64_FORMAT " successful INCRs=%" G_GINT64_FORMAT
           " uncertain=%" G_GINT64_FORMAT " max latency=%" G_GINT64_FORMAT " ms"
           " kills=%" G_GINT64_FORMAT " kill failures=%" G_GINT64_FORMAT "\n",
           counter, ok, uncertain, max_latency_us / 1000,
           (gint64) g_atomic_pointer_get (&n_kills), (gint64) g_atomic_pointer_get (&n_kill_failures));
  if (counter < ok || counter > ok + uncertain)
    violation ("INCR: counter %" G_GINT64_FORMAT " is not within [%" G_GINT64_FORMAT
               ", %" G_GINT64_FORMAT "]", counter, ok, ok + uncertain);

  if (opt_seconds >= 20 && g_atomic_pointer_get (&n_kills) == 0)
    violation ("no connection was killed: the soak did not test anything");

  /* Resources. */
  g_print ("soak: RSS start=%" G_GINT64_FORMAT " KiB warm=%" G_GINT64_FORMAT " KiB end=%" G_GINT64_FORMAT
           " KiB (growth after warm-up %+" G_GINT64_FORMAT " KiB, bound %d MiB); "
           "fds start=%d warm=%d end=%d (bound +%d)\n",
           rss0, rss_warm, rss_end, rss_end - rss_warm, opt_max_rss_growth_mib,
           fds0, fds_warm, fds_end, opt_max_fd_growth);
  if (rss_end - rss_warm > (gint64) opt_max_rss_growth_mib * 1024)
    violation ("RSS grew by %" G_GINT64_FORMAT " KiB after the warm-up (bound %d MiB)",
               rss_end - rss_warm, opt_max_rss_growth_mib);
  if (fds_end - fds_warm > opt_max_fd_growth)
    violation ("open fds grew from %d to %d (bound +%d)", fds_warm, fds_end, opt_max_fd_growth);

  /* Shut down; fds must go back to what they were before the pool. */
  if (!redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error))
    g_clear_error (&error);
  if (!redis_client_close_sync (REDIS_CLIENT (admin), NULL, &error))
    g_clear_error (&error);
  g_clear_object (&pool);
  g_clear_object (&admin);
  g_clear_pointer (&server, redis_test_server_free);
  iterate_until (NULL, 500, NULL);
  rss_after = rss_kib ();
  fds_after = open_fds ();
  g_print ("soak: after close: rss=%" G_GINT64_FORMAT " KiB fds=%d (before the pool: %d)\n",
           rss_after, fds_after, fds0);
  /* Besides the main contexts GLib and the I/O thread keep, the main
   * thread keeps the wake-up fd its sync calls poll (one per thread that
   * ever drove a call, closed when the thread exits: see
   * redis-worker-private.h). Nothing per pool or per connection stays. */
  if (fds_after - fds0 > opt_max_fd_growth + 1)
    {
      g_autofree char *open_now = describe_fds ();

      violation ("after closing the pool %d fds are open, %d before it: %s",
                 fds_after, fds0, open_now);
    }

  if (g_atomic_int_get (&n_violations) > 0)
    {
      g_print ("soak: FAIL: %d invariant violation(s)\n", g_atomic_int_get (&n_violations));
      status = 1;
    }
  else
    g_print ("soak: PASS\n");

  g_ptr_array_unref (violations);
  return status;
}
