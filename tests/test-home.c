/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Home contexts and who drives the socket, against a real redis-server.
 *
 * Every RedisConnection and RedisPool has a home: the thread-default main
 * context of the thread that built it. Async calls made from the home
 * context while it runs complete in place, from the socket's read callback
 * on the home thread; sync calls write, poll and read on the calling thread.
 * Neither wakes the private I/O thread ("redis-io") per request, and a sync
 * call never iterates a main context, so no other callback runs during it.
 *
 * The wake-ups are counted from the I/O thread's voluntary context switches
 * (/proc/self/task/<tid>/status): an idle thread blocked in poll() has none.
 * Everything else here checks behaviour that any threading design must keep:
 * sync calls from any thread next to async traffic, objects whose home never
 * runs, and sync calls whose connection is disposed, cancelled, timed out or
 * killed while they wait. Slow replies come from CLIENT PAUSE … WRITE on a
 * side connection: the paused client's write waits on the server while the
 * server itself stays free to answer the side connection. */

#include <stdarg.h>
#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

#define ARGV(...) ((const char * const []) { __VA_ARGS__, NULL })

#define SKIP_WITHOUT_REDIS()                                  \
  G_STMT_START {                                              \
    if (!redis_test_server_available ())                      \
      {                                                       \
        g_test_skip ("redis-server not installed");           \
        return;                                               \
      }                                                       \
  } G_STMT_END

#define SKIP_WITHOUT_PROC()                                   \
  G_STMT_START {                                              \
    if (!g_file_test ("/proc/self/task", G_FILE_TEST_IS_DIR)) \
      {                                                       \
        g_test_skip ("no /proc/self/task to count wake-ups"); \
        return;                                               \
      }                                                       \
  } G_STMT_END

/* Requests per wake-up measurement, and the most I/O thread wake-ups
 * allowed for them: well below one per request, with room for the odd
 * timer or bookkeeping wake-up. */
#define N_MEASURED   300
#define N_WARM_UP    20
#define MAX_WAKEUPS  30

static GThread *main_thread;

/* ---- failures recorded on other threads --------------------------------- */

/* Worker threads record what went wrong instead of asserting, so that the
 * main thread reports every failure with its context. */
static GMutex failures_lock;
static GString *failures;
static guint n_failures;

static void
record_failure (const char *format,
                ...) G_GNUC_PRINTF (1, 2);

static void
record_failure (const char *format,
                ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_mutex_lock (&failures_lock);
  if (failures == NULL)
    failures = g_string_new (NULL);
  if (n_failures++ < 10)
    g_string_append_printf (failures, "\n  %s", message);
  g_mutex_unlock (&failures_lock);
}

static void
assert_no_failures_at (const char *file,
                       int         line,
                       const char *func)
{
  g_autofree char *message = NULL;

  g_mutex_lock (&failures_lock);
  if (n_failures > 0)
    message = g_strdup_printf ("%u failure(s) on other threads or in callbacks:%s",
                               n_failures, failures->str);
  n_failures = 0;
  if (failures != NULL)
    g_string_truncate (failures, 0);
  g_mutex_unlock (&failures_lock);

  if (message != NULL)
    g_assertion_message (G_LOG_DOMAIN, file, line, func, message);
}

#define assert_no_failures() assert_no_failures_at (__FILE__, __LINE__, G_STRFUNC)

/* ---- servers, clients, replies ------------------------------------------ */

static RedisTestServer *
server_new (void)
{
  g_autoptr(GError) error = NULL;
  RedisTestServer *server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (server);
  return server;
}

/* Health checks off everywhere: their timers would wake the I/O thread.
 * @command_timeout and @stall_timeout are passed as they are (0: none);
 * callers scale them. */
static RedisPool *
pool_new (guint16 port,
          guint   size,
          guint   command_timeout,
          guint   stall_timeout)
{
  g_autoptr(GError) error = NULL;
  RedisPool *pool;

  pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                         "port", (guint) port,
                         "pool-size", size,
                         "health-check-interval", 0,
                         "command-timeout", command_timeout,
                         "stall-timeout", stall_timeout,
                         "connect-timeout", test_scale_ms (5000),
                         "backoff-initial", 20,
                         "backoff-max", 200,
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  return pool;
}

static RedisConnection *
connection_new (guint16 port,
                guint   command_timeout,
                guint   stall_timeout)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) port,
                         "health-check-interval", 0,
                         "command-timeout", command_timeout,
                         "stall-timeout", stall_timeout,
                         "connect-timeout", test_scale_ms (5000),
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  return conn;
}

/* A command timeout no healthy call of this file gets near. */
static guint
long_timeout (void)
{
  return test_scale_ms (10000);
}

/* Closes @pool, drops it and waits until it is finalized. */
static void
pool_destroy (RedisPool *pool)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  unref_and_wait_finalized (pool);
}

static void
assert_no_live_replies (void)
{
  test_drain_main_context ();
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

static RedisReply *
run (gpointer            client,
     const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (client), argv, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  return reply;
}

static void
assert_string (RedisReply *reply,
               const char *expected)
{
  g_assert_nonnull (reply);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STRING);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, expected);
}

static void
assert_ok (RedisReply *reply)
{
  g_assert_nonnull (reply);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STATUS);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "OK");
}

static gint64
run_integer (gpointer            client,
             const char * const *argv)
{
  g_autoptr(RedisReply) reply = run (client, argv);

  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_INTEGER);
  return redis_reply_get_integer (reply);
}

/* A short, printable description of @reply for failure messages. */
static char *
describe_reply (RedisReply *reply)
{
  g_autofree char *text = NULL;

  if (reply == NULL)
    return g_strdup ("(no reply)");
  text = redis_reply_to_string (reply);
  if (strlen (text) > 80)
    return g_strdup_printf ("%.80s… (%zu bytes)", text, strlen (text));
  return g_steal_pointer (&text);
}

/* Whether @reply is the bulk string of @len bytes at @expected. */
static gboolean
reply_is_string (RedisReply *reply,
                 const char *expected,
                 gsize       len)
{
  const char *got;
  gsize got_len = 0;

  if (reply == NULL || redis_reply_get_kind (reply) != REDIS_REPLY_KIND_STRING)
    return FALSE;
  got = redis_reply_get_string (reply, &got_len);
  return got_len == len && memcmp (got, expected, len) == 0;
}

static gboolean
reply_is_ok (RedisReply *reply)
{
  return reply != NULL && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_STATUS &&
         g_strcmp0 (redis_reply_get_string (reply, NULL), "OK") == 0;
}

/* Any thread: runs @argv on @client and checks the reply is the bulk
 * string @expected (@len bytes), or +OK when @expected is NULL. Records a
 * failure otherwise. */
static gboolean
expect_sync (gpointer            client,
             const char * const *argv,
             const char         *expected,
             gsize               len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  gboolean ok;

  reply = redis_client_command_sync (REDIS_CLIENT (client), argv, NULL, &error);
  if (error != NULL)
    {
      record_failure ("%s %s: %s", argv[0], argv[1] ? argv[1] : "", error->message);
      return FALSE;
    }
  ok = expected != NULL ? reply_is_string (reply, expected, len) : reply_is_ok (reply);
  if (!ok)
    {
      g_autofree char *got = describe_reply (reply);

      record_failure ("%s %s: expected %.40s%s, got %s", argv[0], argv[1] ? argv[1] : "",
                      expected != NULL ? expected : "+OK",
                      expected != NULL && len > 40 ? "…" : "", got);
    }
  return ok;
}

/* blocked_clients of INFO clients: clients whose command waits on the
 * server (CLIENT PAUSE postpones commands by blocking their client). */
static guint
blocked_clients (RedisConnection *admin)
{
  g_autoptr(RedisReply) reply = run (admin, ARGV ("INFO", "clients"));
  const char *text = redis_reply_get_string (reply, NULL);
  const char *field = strstr (text, "blocked_clients:");

  g_assert_nonnull (field);
  return (guint) g_ascii_strtoull (field + strlen ("blocked_clients:"), NULL, 10);
}

/* Bytes the server holds unparsed for client @id (qbuf of CLIENT LIST):
 * the commands written behind one that the server postponed. */
static guint64
client_qbuf (RedisConnection *admin,
             gint64           id)
{
  g_autofree char *id_str = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  g_autoptr(RedisReply) reply = run (admin, ARGV ("CLIENT", "LIST", "ID", id_str));
  const char *text = redis_reply_get_string (reply, NULL);
  const char *field = strstr (text, " qbuf=");

  if (field == NULL)
    return 0;
  return g_ascii_strtoull (field + strlen (" qbuf="), NULL, 10);
}

/* Length of @argv encoded in RESP, as it sits in the server's buffer. */
static gsize
resp_length (const char * const *argv)
{
  gsize n = 0, len = 0;

  for (; argv[n] != NULL; n++)
    {
      gsize arg_len = strlen (argv[n]);
      g_autofree char *head = g_strdup_printf ("$%zu\r\n", arg_len);

      len += strlen (head) + arg_len + 2;
    }
  {
    g_autofree char *head = g_strdup_printf ("*%zu\r\n", n);

    len += strlen (head);
  }
  return len;
}

/* Writes wait on the server from now on (reads do not), until unpause. */
static void
pause_writes (RedisConnection *admin)
{
  g_autofree char *ms = g_strdup_printf ("%u", test_scale_ms (60000));
  g_autoptr(RedisReply) reply = run (admin, ARGV ("CLIENT", "PAUSE", ms, "WRITE"));

  assert_ok (reply);
}

static void
unpause (RedisConnection *admin)
{
  g_autoptr(RedisReply) reply = run (admin, ARGV ("CLIENT", "UNPAUSE"));

  assert_ok (reply);
}

/* ---- main loops with a deadline ------------------------------------------ */

typedef struct
{
  GMainLoop *loop;
  gboolean   expired;
} Watchdog;

static gboolean
watchdog_cb (gpointer data)
{
  Watchdog *watchdog = data;

  watchdog->expired = TRUE;
  g_main_loop_quit (watchdog->loop);
  return G_SOURCE_REMOVE;
}

/* Runs @loop until something quits it; fails the test if that takes more
 * than @ms milliseconds (scaled). */
static void
run_loop_at (GMainLoop  *loop,
             guint       ms,
             const char *what,
             const char *file,
             int         line,
             const char *func)
{
  Watchdog watchdog = { loop, FALSE };
  GSource *source = g_timeout_source_new (test_scale_ms (ms));

  g_source_set_callback (source, watchdog_cb, &watchdog, NULL);
  g_source_attach (source, g_main_loop_get_context (loop));
  g_main_loop_run (loop);
  g_source_destroy (source);
  g_source_unref (source);

  if (watchdog.expired)
    {
      g_autofree char *message = g_strdup_printf ("main loop still running after %u ms: %s",
                                                  ms, what);
      g_assertion_message (G_LOG_DOMAIN, file, line, func, message);
    }
}

#define run_loop(loop, ms, what) run_loop_at ((loop), (ms), (what), __FILE__, __LINE__, G_STRFUNC)

/* ---- I/O thread wake-ups -------------------------------------------------- */

/* Voluntary context switches of the library's I/O thread so far: one per
 * time it blocked and was woken. 0 when there is no such thread (a thread
 * that does not exist was never woken either); @found tells which. */
static guint64
io_thread_switches (gboolean *found)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *tid;

  *found = FALSE;
  if (dir == NULL)
    return 0;
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *comm_path = g_build_filename ("/proc/self/task", tid, "comm", NULL);
      g_autofree char *status_path = g_build_filename ("/proc/self/task", tid, "status", NULL);
      g_autofree char *comm = NULL;
      g_autofree char *status = NULL;
      const char *field;

      if (!g_file_get_contents (comm_path, &comm, NULL, NULL) ||
          !g_str_equal (g_strchomp (comm), "redis-io"))
        continue;
      if (!g_file_get_contents (status_path, &status, NULL, NULL))
        return 0;
      /* Not "nonvoluntary_ctxt_switches:", which ends the same way. */
      field = strstr (status, "\nvoluntary_ctxt_switches:");
      g_assert_nonnull (field);
      *found = TRUE;
      return g_ascii_strtoull (field + strlen ("\nvoluntary_ctxt_switches:"), NULL, 10);
    }
  return 0;
}

/* Counts the I/O thread's wake-ups between begin and end. */
typedef struct
{
  guint64  before;
  gboolean found_before;
} WakeupCounter;

static void
wakeup_counter_begin (WakeupCounter *counter)
{
  counter->before = io_thread_switches (&counter->found_before);
}

static guint64
wakeup_counter_end (WakeupCounter *counter,
                    gboolean      *io_thread_seen)
{
  gboolean found_after;
  guint64 after = io_thread_switches (&found_after);

  if (io_thread_seen != NULL)
    *io_thread_seen = counter->found_before || found_after;
  return after - counter->before;
}

typedef struct
{
  char     *label;
  guint64   wakeups;
  gboolean  io_thread_seen;
} Measurement;

static void
measurement_clear (Measurement *m)
{
  g_clear_pointer (&m->label, g_free);
}

/* Reports every measurement, then fails on the first over MAX_WAKEUPS. */
static void
assert_few_wakeups (Measurement *measurements,
                    guint        n)
{
  for (guint i = 0; i < n; i++)
    g_test_message ("%s: %" G_GUINT64_FORMAT " I/O thread wake-ups for %u requests%s",
                    measurements[i].label, measurements[i].wakeups, N_MEASURED,
                    measurements[i].io_thread_seen ? "" : " (no redis-io thread)");
  for (guint i = 0; i < n; i++)
    {
      if (measurements[i].wakeups >= MAX_WAKEUPS)
        {
          g_autofree char *message =
            g_strdup_printf ("%s: the I/O thread was woken %" G_GUINT64_FORMAT " times for "
                             "%u requests (at most %u allowed): it is still on the path "
                             "of every request",
                             measurements[i].label, measurements[i].wakeups, N_MEASURED,
                             MAX_WAKEUPS - 1);
          g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, message);
        }
    }
}

/* ---- async chains ---------------------------------------------------------- */

/* @n ECHO calls one after the other, each sent from the callback of the
 * previous one, the first from an idle callback: every call is made from
 * the home context while its loop runs. */
typedef struct
{
  RedisClient *client;
  GMainLoop   *loop;
  const char  *prefix;
  guint        n;
  guint        done;
  guint        wrong_thread;
} EchoChain;

static void echo_chain_next (EchoChain *chain);

static void
echo_chain_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  EchoChain *chain = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);
  g_autofree char *expected = g_strdup_printf ("%s-%u", chain->prefix, chain->done);

  if (g_thread_self () != main_thread)
    chain->wrong_thread++;
  if (error != NULL)
    record_failure ("async ECHO %s: %s", expected, error->message);
  else if (!reply_is_string (reply, expected, strlen (expected)))
    {
      g_autofree char *got = describe_reply (reply);

      record_failure ("async ECHO %s: got %s", expected, got);
    }

  if (++chain->done == chain->n)
    g_main_loop_quit (chain->loop);
  else
    echo_chain_next (chain);
}

static void
echo_chain_next (EchoChain *chain)
{
  g_autofree char *value = g_strdup_printf ("%s-%u", chain->prefix, chain->done);

  redis_client_command_async (chain->client, ARGV ("ECHO", value), NULL, echo_chain_cb, chain);
}

static gboolean
echo_chain_start_cb (gpointer data)
{
  echo_chain_next (data);
  return G_SOURCE_REMOVE;
}

/* Runs a chain of @n calls on the main thread's loop; returns the I/O
 * thread's wake-ups meanwhile. */
static guint64
run_echo_chain (gpointer    client,
                const char *prefix,
                guint       n,
                gboolean   *io_thread_seen)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  EchoChain chain = { REDIS_CLIENT (client), loop, prefix, n, 0, 0 };
  WakeupCounter counter;
  guint64 wakeups;

  g_idle_add (echo_chain_start_cb, &chain);
  wakeup_counter_begin (&counter);
  run_loop (loop, 30000, "a chain of async ECHO calls");
  wakeups = wakeup_counter_end (&counter, io_thread_seen);

  assert_no_failures ();
  g_assert_cmpuint (chain.done, ==, n);
  g_assert_cmpuint (chain.wrong_thread, ==, 0);
  return wakeups;
}

/* ---- /home/async-in-place ------------------------------------------------- */

static void
measure_async (Measurement *m,
               gpointer     client,
               const char  *label)
{
  run_echo_chain (client, "warm-up", N_WARM_UP, NULL);
  m->label = g_strdup (label);
  m->wakeups = run_echo_chain (client, label, N_MEASURED, &m->io_thread_seen);
}

/* Async calls made from the home context while its loop runs complete in
 * place: N_MEASURED calls in a row (each sent from the previous one's
 * callback) wake the I/O thread far fewer than N_MEASURED times. On a
 * connection and on a pool; with deadlines (command timeout, stall
 * detection) and without. */
static void
test_async_in_place (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  RedisConnection *conn;
  RedisPool *pool, *bare_pool;
  Measurement m[3] = { { NULL, 0, FALSE }, };

  SKIP_WITHOUT_REDIS ();
  SKIP_WITHOUT_PROC ();
  server = server_new ();
  conn = connection_new (redis_test_server_get_port (server), test_scale_ms (5000), 10000);
  pool = pool_new (redis_test_server_get_port (server), 2, test_scale_ms (5000), 10000);
  bare_pool = pool_new (redis_test_server_get_port (server), 2, 0, 0);

  measure_async (&m[0], bare_pool, "async, pool of 2 without deadlines");
  measure_async (&m[1], conn, "async, connection");
  measure_async (&m[2], pool, "async, pool of 2");
  assert_few_wakeups (m, G_N_ELEMENTS (m));

  for (guint i = 0; i < G_N_ELEMENTS (m); i++)
    measurement_clear (&m[i]);
  pool_destroy (bare_pool);
  pool_destroy (pool);
  close_and_finalize (conn);
  assert_no_live_replies ();
}

/* ---- /home/sync-no-io-thread-wakeup --------------------------------------- */

/* Any thread: @n sync ECHO calls on @client; returns the I/O thread's
 * wake-ups meanwhile. */
static guint64
run_sync_echoes (gpointer    client,
                 const char *prefix,
                 guint       n,
                 gboolean   *io_thread_seen)
{
  WakeupCounter counter;

  wakeup_counter_begin (&counter);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *value = g_strdup_printf ("%s-%u", prefix, i);

      expect_sync (client, ARGV ("ECHO", value), value, strlen (value));
    }
  return wakeup_counter_end (&counter, io_thread_seen);
}

typedef struct
{
  gpointer    client;
  Measurement m;
} SyncMeasureJob;

static gpointer
sync_measure_thread (gpointer data)
{
  SyncMeasureJob *job = data;

  run_sync_echoes (job->client, "thread-warm-up", N_WARM_UP, NULL);
  job->m.wakeups = run_sync_echoes (job->client, "thread", N_MEASURED, &job->m.io_thread_seen);
  return NULL;
}

static void
measure_sync (Measurement *m,
              gpointer     client,
              const char  *label)
{
  run_sync_echoes (client, "warm-up", N_WARM_UP, NULL);
  m->label = g_strdup (label);
  m->wakeups = run_sync_echoes (client, label, N_MEASURED, &m->io_thread_seen);
  assert_no_failures ();
}

/* Sync calls drive their own socket: N_MEASURED of them in a row wake the
 * I/O thread far fewer than N_MEASURED times, from the home thread with no
 * loop running and from another thread. */
static void
test_sync_no_io_thread_wakeup (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  RedisConnection *conn;
  RedisPool *pool, *bare_pool;
  Measurement m[4] = { { NULL, 0, FALSE }, };

  SKIP_WITHOUT_REDIS ();
  SKIP_WITHOUT_PROC ();
  server = server_new ();
  conn = connection_new (redis_test_server_get_port (server), test_scale_ms (5000), 10000);
  pool = pool_new (redis_test_server_get_port (server), 2, test_scale_ms (5000), 10000);
  bare_pool = pool_new (redis_test_server_get_port (server), 2, 0, 0);

  measure_sync (&m[0], bare_pool, "sync on the home thread, pool of 2 without deadlines");
  measure_sync (&m[1], conn, "sync on the home thread, connection");
  measure_sync (&m[2], pool, "sync on the home thread, pool of 2");
  {
    SyncMeasureJob job = { pool, { NULL, 0, FALSE } };
    GThread *thread = g_thread_new ("home-sync", sync_measure_thread, &job);

    g_thread_join (thread);
    assert_no_failures ();
    m[3] = job.m;
    m[3].label = g_strdup ("sync on another thread, pool of 2");
  }
  assert_few_wakeups (m, G_N_ELEMENTS (m));

  for (guint i = 0; i < G_N_ELEMENTS (m); i++)
    measurement_clear (&m[i]);
  pool_destroy (bare_pool);
  pool_destroy (pool);
  close_and_finalize (conn);
  assert_no_live_replies ();
}

/* ---- /home/sync-in-callback-no-reentrancy --------------------------------- */

#define N_ASYNC_BEFORE 8
#define N_SYNC_IN_CALLBACK 10

typedef struct
{
  RedisClient *client;
  GMainLoop   *loop;
  gboolean     ordered;        /* one connection: completions in order */
  gboolean     in_sync;        /* a sync call of the callback is running */
  guint        n_async;        /* sent */
  guint        n_async_done;
  guint        reentered;      /* callbacks that ran while in_sync */
  gboolean     callback_done;
  gboolean     idle_ran;
  gboolean     timeout_ran;
} Reentrancy;

typedef struct
{
  Reentrancy *r;
  guint       index;
} ReentrancyCall;

static void
reentrancy_maybe_quit (Reentrancy *r)
{
  if (r->callback_done && r->idle_ran && r->timeout_ran && r->n_async_done == r->n_async)
    g_main_loop_quit (r->loop);
}

static void
reentrancy_async_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      data)
{
  ReentrancyCall *call = data;
  Reentrancy *r = call->r;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);
  g_autofree char *expected = g_strdup_printf ("async-%u", call->index);

  if (r->in_sync)
    r->reentered++;
  if (g_thread_self () != main_thread)
    record_failure ("async ECHO %s completed on another thread", expected);
  if (error != NULL)
    record_failure ("async ECHO %s: %s", expected, error->message);
  else if (!reply_is_string (reply, expected, strlen (expected)))
    {
      g_autofree char *got = describe_reply (reply);

      record_failure ("async ECHO %s: got %s", expected, got);
    }
  if (r->ordered && call->index != r->n_async_done)
    record_failure ("async ECHO %s completed as number %u", expected, r->n_async_done);
  r->n_async_done++;
  g_free (call);
  reentrancy_maybe_quit (r);
}

static void
reentrancy_send_async (Reentrancy *r)
{
  ReentrancyCall *call = g_new0 (ReentrancyCall, 1);
  g_autofree char *value = NULL;

  call->r = r;
  call->index = r->n_async++;
  value = g_strdup_printf ("async-%u", call->index);
  redis_client_command_async (r->client, ARGV ("ECHO", value), NULL, reentrancy_async_cb, call);
}

static gboolean
reentrancy_idle_cb (gpointer data)
{
  Reentrancy *r = data;

  if (r->in_sync)
    r->reentered++;
  r->idle_ran = TRUE;
  reentrancy_maybe_quit (r);
  return G_SOURCE_REMOVE;
}

static gboolean
reentrancy_timeout_cb (gpointer data)
{
  Reentrancy *r = data;

  if (r->in_sync)
    r->reentered++;
  r->timeout_ran = TRUE;
  reentrancy_maybe_quit (r);
  return G_SOURCE_REMOVE;
}

/* The main-loop callback making sync calls, with async calls in flight
 * before and between them and an idle and a timeout source ready. */
static gboolean
sync_in_callback_cb (gpointer data)
{
  Reentrancy *r = data;

  for (guint i = 0; i < N_ASYNC_BEFORE; i++)
    reentrancy_send_async (r);
  g_idle_add_full (G_PRIORITY_HIGH, reentrancy_idle_cb, r, NULL);
  g_timeout_add (0, reentrancy_timeout_cb, r);

  for (guint i = 0; i < N_SYNC_IN_CALLBACK; i++)
    {
      g_autofree char *value = g_strdup_printf ("sync-%u", i);
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) reply = NULL;

      r->in_sync = TRUE;
      reply = redis_client_command_sync (r->client, ARGV ("ECHO", value), NULL, &error);
      r->in_sync = FALSE;
      g_assert_no_error (error);
      assert_string (reply, value);
      reentrancy_send_async (r);
    }

  /* The replies of the async calls sent first came in before the sync
   * calls' own (same connection) or next to them: none was given to its
   * callback here, and neither source ran. */
  g_assert_cmpuint (r->reentered, ==, 0);
  g_assert_cmpuint (r->n_async_done, ==, 0);
  g_assert_false (r->idle_ran);
  g_assert_false (r->timeout_ran);
  r->callback_done = TRUE;
  return G_SOURCE_REMOVE;
}

static void
check_sync_in_callback (gpointer    client,
                        gboolean    ordered,
                        const char *label)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Reentrancy r = { REDIS_CLIENT (client), loop, ordered, };

  g_test_message ("%s", label);
  g_idle_add (sync_in_callback_cb, &r);
  run_loop (loop, 10000, "sync calls inside a callback, then the async calls around them");
  assert_no_failures ();
  g_assert_true (r.callback_done);
  g_assert_cmpuint (r.reentered, ==, 0);
  g_assert_cmpuint (r.n_async_done, ==, N_ASYNC_BEFORE + N_SYNC_IN_CALLBACK);
}

/* A sync call made inside a main-loop callback on the home thread runs no
 * other callback: neither those of async calls whose replies it reads (or
 * that arrive on another connection of the pool meanwhile), nor idle and
 * timeout sources. They all run once the callback returns, with the right
 * replies. */
static void
test_sync_in_callback_no_reentrancy (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  RedisConnection *conn;
  RedisPool *pool1, *pool2;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  conn = connection_new (redis_test_server_get_port (server), long_timeout (), 0);
  pool1 = pool_new (redis_test_server_get_port (server), 1, long_timeout (), 0);
  pool2 = pool_new (redis_test_server_get_port (server), 2, long_timeout (), 0);

  check_sync_in_callback (conn, TRUE, "connection");
  check_sync_in_callback (pool1, TRUE, "pool of 1");
  check_sync_in_callback (pool2, FALSE, "pool of 2");

  pool_destroy (pool2);
  pool_destroy (pool1);
  close_and_finalize (conn);
  assert_no_live_replies ();
}

/* ---- /home/sync-8-threads-with-async-traffic ------------------------------- */

#define N_SYNC_THREADS 8
#define N_ASYNC_CHAINS 4
#define LARGE_VALUE    (100 * 1024)

typedef struct
{
  RedisPool *pool;
  guint      index;
  guint      iterations;
  gint      *n_done;     /* atomic, shared by the workers */
} SyncWorker;

/* A value of its own for each thread and iteration; now and then larger
 * than one read, so that replies arrive in several pieces. */
static char *
make_value (const char *who,
            guint       i,
            GRand      *rand,
            gsize      *len)
{
  g_autofree char *head = g_strdup_printf ("%s:%u:%08x:", who, i, g_rand_int (rand));
  GString *value = g_string_new (head);

  if (i % 16 == 5)
    {
      while (value->len < LARGE_VALUE)
        g_string_append_c (value, 'a' + (value->len + i) % 26);
    }
  *len = value->len;
  return g_string_free (value, FALSE);
}

static void
sync_worker_pipeline (SyncWorker *w,
                      const char *key,
                      const char *value,
                      gsize       len,
                      const char *counter,
                      gint64      expected_count)
{
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;

  redis_batch_add (batch, ARGV ("SET", key, value));
  redis_batch_add (batch, ARGV ("GET", key));
  redis_batch_add (batch, ARGV ("INCR", counter));
  replies = redis_client_pipeline_sync (REDIS_CLIENT (w->pool), batch, NULL, &error);
  if (error != NULL)
    {
      record_failure ("thread %u: pipeline: %s", w->index, error->message);
      return;
    }
  if (replies->len != 3)
    {
      record_failure ("thread %u: pipeline: %u replies", w->index, replies->len);
      return;
    }
  if (!reply_is_ok (g_ptr_array_index (replies, 0)))
    record_failure ("thread %u: pipeline SET %s: not +OK", w->index, key);
  if (!reply_is_string (g_ptr_array_index (replies, 1), value, len))
    {
      g_autofree char *got = describe_reply (g_ptr_array_index (replies, 1));

      record_failure ("thread %u: pipeline GET %s: got %s", w->index, key, got);
    }
  {
    RedisReply *incr = g_ptr_array_index (replies, 2);

    if (redis_reply_get_kind (incr) != REDIS_REPLY_KIND_INTEGER ||
        redis_reply_get_integer (incr) != expected_count)
      {
        g_autofree char *got = describe_reply (incr);

        record_failure ("thread %u: pipeline INCR %s: expected %" G_GINT64_FORMAT ", got %s",
                        w->index, counter, expected_count, got);
      }
  }
}

static gpointer
sync_worker_thread (gpointer data)
{
  SyncWorker *w = data;
  g_autoptr(GRand) rand = g_rand_new_with_seed (w->index);
  g_autofree char *who = g_strdup_printf ("t%u", w->index);
  g_autofree char *counter = g_strdup_printf ("t%u:counter", w->index);
  gint64 count = 0;

  for (guint i = 0; i < w->iterations; i++)
    {
      g_autofree char *key = g_strdup_printf ("t%u:k%u", w->index, i % 4);
      gsize len;
      g_autofree char *value = make_value (who, i, rand, &len);

      if (i % 10 == 9)
        sync_worker_pipeline (w, key, value, len, counter, ++count);
      else if (expect_sync (w->pool, ARGV ("SET", key, value), NULL, 0))
        expect_sync (w->pool, ARGV ("GET", key), value, len);
    }

  g_atomic_int_inc (w->n_done);
  return NULL;
}

/* Async SET then GET of a key of its own, over and over, on the home loop,
 * until every sync worker is done. */
typedef struct
{
  RedisPool *pool;
  GMainLoop *loop;
  guint      index;
  GRand     *rand;
  char      *key;
  char      *value;
  gsize      len;
  guint      rounds;
  gint      *n_workers_done;   /* atomic */
  guint     *n_chains_running;
} SetGetChain;

static void set_get_chain_set (SetGetChain *chain);

static void
set_get_chain_got_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      data)
{
  SetGetChain *chain = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  if (error != NULL)
    record_failure ("chain %u: GET: %s", chain->index, error->message);
  else if (!reply_is_string (reply, chain->value, chain->len))
    {
      g_autofree char *got = describe_reply (reply);

      record_failure ("chain %u: GET %s: got %s", chain->index, chain->key, got);
    }
  chain->rounds++;

  if (g_atomic_int_get (chain->n_workers_done) == N_SYNC_THREADS)
    {
      if (--*chain->n_chains_running == 0)
        g_main_loop_quit (chain->loop);
      return;
    }
  set_get_chain_set (chain);
}

static void
set_get_chain_set_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      data)
{
  SetGetChain *chain = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  if (error != NULL)
    record_failure ("chain %u: SET: %s", chain->index, error->message);
  else if (!reply_is_ok (reply))
    record_failure ("chain %u: SET: not +OK", chain->index);
  redis_client_command_async (REDIS_CLIENT (chain->pool), ARGV ("GET", chain->key), NULL,
                              set_get_chain_got_cb, chain);
}

static void
set_get_chain_set (SetGetChain *chain)
{
  g_free (chain->value);
  chain->value = make_value (chain->key, chain->rounds, chain->rand, &chain->len);
  redis_client_command_async (REDIS_CLIENT (chain->pool),
                              ARGV ("SET", chain->key, chain->value), NULL,
                              set_get_chain_set_cb, chain);
}

typedef struct
{
  SyncWorker *workers;
  GThread   **threads;
  SetGetChain *chains;
} ThreadsAndChains;

static gboolean
start_threads_and_chains_cb (gpointer data)
{
  ThreadsAndChains *tc = data;

  for (guint i = 0; i < N_ASYNC_CHAINS; i++)
    set_get_chain_set (&tc->chains[i]);
  for (guint i = 0; i < N_SYNC_THREADS; i++)
    tc->threads[i] = g_thread_new ("home-sync-worker", sync_worker_thread, &tc->workers[i]);
  return G_SOURCE_REMOVE;
}

/* 8 threads make sync calls on a pool of 4 (SET and GET of their own keys,
 * pipelines of SET, GET and INCR, values up to 100 KiB) while the home loop
 * runs async SET/GET chains on the same pool: every reply is the one its
 * call asked for. */
static void
test_sync_8_threads_with_async_traffic (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  RedisPool *pool;
  SyncWorker workers[N_SYNC_THREADS];
  GThread *threads[N_SYNC_THREADS] = { NULL, };
  SetGetChain chains[N_ASYNC_CHAINS];
  ThreadsAndChains tc = { workers, threads, chains };
  guint iterations = test_scale_ms (1) > 1 ? 30 : 150;
  gint n_workers_done = 0;
  guint n_chains_running = N_ASYNC_CHAINS;
  guint total_rounds = 0;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  pool = pool_new (redis_test_server_get_port (server), 4, long_timeout (), 0);

  for (guint i = 0; i < N_SYNC_THREADS; i++)
    workers[i] = (SyncWorker) { pool, i, iterations, &n_workers_done };
  for (guint i = 0; i < N_ASYNC_CHAINS; i++)
    chains[i] = (SetGetChain) {
      .pool = pool,
      .loop = loop,
      .index = i,
      .rand = g_rand_new_with_seed (100 + i),
      .key = g_strdup_printf ("main:%u", i),
      .n_workers_done = &n_workers_done,
      .n_chains_running = &n_chains_running,
    };

  g_idle_add (start_threads_and_chains_cb, &tc);
  run_loop (loop, 60000, "8 threads of sync calls next to async chains");
  for (guint i = 0; i < N_SYNC_THREADS; i++)
    g_thread_join (threads[i]);
  assert_no_failures ();

  for (guint i = 0; i < N_ASYNC_CHAINS; i++)
    {
      g_assert_cmpuint (chains[i].rounds, >, 0);
      total_rounds += chains[i].rounds;
      g_rand_free (chains[i].rand);
      g_free (chains[i].key);
      g_free (chains[i].value);
    }
  g_test_message ("%u threads x %u sync iterations, %u async SET/GET rounds meanwhile",
                  N_SYNC_THREADS, iterations, total_rounds);

  /* What the threads left behind is theirs. */
  for (guint i = 0; i < N_SYNC_THREADS; i++)
    {
      g_autofree char *counter = g_strdup_printf ("t%u:counter", i);
      g_autoptr(RedisReply) reply = run (pool, ARGV ("GET", counter));

      g_assert_cmpint (g_ascii_strtoll (redis_reply_get_string (reply, NULL), NULL, 10), ==,
                       iterations / 10);
    }

  pool_destroy (pool);
  assert_no_live_replies ();
}

/* ---- /home/pool-from-unlooped-thread -------------------------------------- */

typedef struct
{
  guint16          port;
  GMutex           lock;
  GCond            cond;
  RedisPool       *pool;
  RedisConnection *conn;
  gint             ready;   /* atomic */
  gboolean         quit;
} Creator;

/* Builds a pool and a connection with a home context of its own that is
 * never iterated, hands them over, and stays alive until told to quit. */
static gpointer
creator_thread (gpointer data)
{
  Creator *c = data;
  GMainContext *home = g_main_context_new ();

  g_main_context_push_thread_default (home);
  c->pool = pool_new (c->port, 2, long_timeout (), 0);
  c->conn = connection_new (c->port, long_timeout (), 0);
  g_atomic_int_set (&c->ready, 1);

  g_mutex_lock (&c->lock);
  while (!c->quit)
    g_cond_wait (&c->cond, &c->lock);
  g_mutex_unlock (&c->lock);

  g_main_context_pop_thread_default (home);
  g_main_context_unref (home);
  return NULL;
}

static gboolean
sync_echoes_in_callback_cb (gpointer data)
{
  gpointer *args = data;

  run_sync_echoes (args[0], "main-in-callback", 20, NULL);
  g_main_loop_quit (args[1]);
  return G_SOURCE_REMOVE;
}

static void
use_from_main (gpointer    client,
               const char *label)
{
  g_test_message ("%s: async from the main loop", label);
  run_echo_chain (client, label, 100, NULL);

  g_test_message ("%s: sync from the main thread, no loop running", label);
  run_sync_echoes (client, label, 100, NULL);
  assert_no_failures ();

  g_test_message ("%s: sync inside a callback of the main loop", label);
  {
    g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
    gpointer args[2] = { client, loop };

    g_idle_add (sync_echoes_in_callback_cb, args);
    run_loop (loop, 10000, "sync calls inside a callback");
    assert_no_failures ();
  }
}

/* A pool and a connection built on a thread whose home context never runs
 * serve the main thread: async calls complete in the main loop, on the main
 * thread; sync calls work with and without the main loop running. Once
 * dropped, both are finalized. */
static void
test_pool_from_unlooped_thread (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  Creator c = { 0 };
  GThread *thread;
  GWeakRef pool_ref, conn_ref;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  c.port = redis_test_server_get_port (server);
  g_mutex_init (&c.lock);
  g_cond_init (&c.cond);
  thread = g_thread_new ("home-creator", creator_thread, &c);
  WAIT_UNTIL (g_atomic_int_get (&c.ready), 10000);

  use_from_main (c.pool, "pool");
  use_from_main (c.conn, "connection");

  g_weak_ref_init (&pool_ref, c.pool);
  g_weak_ref_init (&conn_ref, c.conn);
  {
    g_autoptr(GError) error = NULL;

    g_assert_true (redis_client_close_sync (REDIS_CLIENT (c.pool), NULL, &error));
    g_assert_no_error (error);
    g_assert_true (redis_client_close_sync (REDIS_CLIENT (c.conn), NULL, &error));
    g_assert_no_error (error);
  }
  g_clear_object (&c.pool);
  g_clear_object (&c.conn);

  g_mutex_lock (&c.lock);
  c.quit = TRUE;
  g_cond_signal (&c.cond);
  g_mutex_unlock (&c.lock);
  g_thread_join (thread);

  WAIT_UNTIL (({ GObject *o = g_weak_ref_get (&pool_ref);
                 gboolean gone = o == NULL;
                 g_clear_object (&o);
                 gone; }), 2000);
  WAIT_UNTIL (({ GObject *o = g_weak_ref_get (&conn_ref);
                 gboolean gone = o == NULL;
                 g_clear_object (&o);
                 gone; }), 2000);
  g_weak_ref_clear (&pool_ref);
  g_weak_ref_clear (&conn_ref);
  g_mutex_clear (&c.lock);
  g_cond_clear (&c.cond);
  assert_no_live_replies ();
}

/* ---- sync calls on other threads ------------------------------------------ */

typedef struct
{
  RedisClient  *client;
  char        **argv;
  GCancellable *cancellable;
  RedisReply   *reply;
  GError       *error;
  gint64        returned_at;   /* monotonic µs */
  gint          done;          /* atomic */
  GThread      *thread;
} SyncJob;

static gpointer
sync_job_thread (gpointer data)
{
  SyncJob *job = data;

  job->reply = redis_client_command_sync (job->client, (const char * const *) job->argv,
                                          job->cancellable, &job->error);
  job->returned_at = g_get_monotonic_time ();
  g_atomic_int_set (&job->done, 1);
  return NULL;
}

/* Starts a sync call of @argv on @client on a thread of its own. */
static void
sync_job_start (SyncJob            *job,
                gpointer            client,
                const char * const *argv)
{
  memset (job, 0, sizeof *job);
  job->client = g_object_ref (client);
  job->argv = g_strdupv ((char **) argv);
  job->thread = g_thread_new ("home-sync-job", sync_job_thread, job);
}

static void
sync_job_join (SyncJob *job)
{
  g_thread_join (g_steal_pointer (&job->thread));
}

static void
sync_job_clear (SyncJob *job)
{
  g_assert_null (job->thread);
  g_clear_object (&job->client);
  g_clear_pointer (&job->argv, g_strfreev);
  g_clear_pointer (&job->reply, redis_reply_unref);
  g_clear_error (&job->error);
}

/* ---- /home/close-while-sync-drives ---------------------------------------- */

/* Disposes @client from the main thread while another thread's sync SET
 * waits on the server: the call fails CONNECTION_LOST (it was written)
 * within a scaled deadline. */
static void
check_dispose_while_sync_waits (gpointer         client,
                                RedisConnection *admin,
                                const char      *label)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  SyncJob job;
  gint64 disposed_at;

  g_test_message ("%s", label);
  pause_writes (admin);
  sync_job_start (&job, client, ARGV ("SET", "dispose:key", "value"));
  WAIT_UNTIL (blocked_clients (admin) == 1, 5000);
  g_assert_false (g_atomic_int_get (&job.done));

  disposed_at = g_get_monotonic_time ();
  g_object_run_dispose (G_OBJECT (client));
  WAIT_UNTIL (g_atomic_int_get (&job.done), 2000);
  sync_job_join (&job);
  g_test_message ("%s: the sync call returned %.1f ms after dispose", label,
                  (job.returned_at - disposed_at) / 1000.0);
  g_assert_null (job.reply);
  g_assert_error (job.error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  sync_job_clear (&job);

  /* A disposed client refuses calls at once. */
  reply = redis_client_command_sync (REDIS_CLIENT (client), ARGV ("PING"), NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);

  unpause (admin);
}

/* A graceful close (close_async) while another thread's sync SET waits on
 * the server: the close waits for the reply, the call gets it, and calls
 * made after the close fail CLOSED. */
static void
check_close_while_sync_waits (RedisPool       *pool,
                              RedisConnection *admin)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  GAsyncResult *close_result = NULL;
  SyncJob job;

  g_test_message ("pool of 2, close_async");
  pause_writes (admin);
  sync_job_start (&job, pool, ARGV ("SET", "close:key", "value"));
  WAIT_UNTIL (blocked_clients (admin) == 1, 5000);

  redis_client_close_async (REDIS_CLIENT (pool), NULL, store_result_cb, &close_result);
  reply = redis_client_command_sync (REDIS_CLIENT (pool), ARGV ("PING"), NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_false (g_atomic_int_get (&job.done));

  unpause (admin);
  WAIT_UNTIL (g_atomic_int_get (&job.done), 5000);
  sync_job_join (&job);
  g_assert_no_error (job.error);
  assert_ok (job.reply);
  sync_job_clear (&job);

  test_wait_for_result (&close_result, 5000);
  g_assert_true (redis_client_close_finish (REDIS_CLIENT (pool), close_result, &error));
  g_assert_no_error (error);
  g_clear_object (&close_result);
  g_clear_pointer (&reply, redis_reply_unref);
  reply = run (admin, ARGV ("GET", "close:key"));
  assert_string (reply, "value");
}

/* Dispose of a pool or a connection, from the main thread, while another
 * thread's sync call waits for a slow reply: the call fails promptly with
 * CONNECTION_LOST, never hangs. A graceful close instead lets it finish. */
static void
test_close_while_sync_drives (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  RedisConnection *admin;
  RedisPool *pool;
  RedisConnection *conn;
  guint16 port;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  port = redis_test_server_get_port (server);
  admin = connection_new (port, long_timeout (), 0);

  /* No command timeout: only the dispose may end the call. */
  pool = pool_new (port, 2, 0, 0);
  run_sync_echoes (pool, "warm-up", 4, NULL);
  assert_no_failures ();
  check_dispose_while_sync_waits (pool, admin, "pool of 2, dispose");
  unref_and_wait_finalized (pool);

  conn = connection_new (port, 0, 0);
  run_sync_echoes (conn, "warm-up", 4, NULL);
  assert_no_failures ();
  check_dispose_while_sync_waits (conn, admin, "connection, dispose");
  unref_and_wait_finalized (conn);

  pool = pool_new (port, 2, long_timeout (), 0);
  check_close_while_sync_waits (pool, admin);
  unref_and_wait_finalized (pool);

  close_and_finalize (admin);
  assert_no_live_replies ();
}

/* ---- /home/sync-cancel-and-timeout ---------------------------------------- */

typedef struct
{
  RedisConnection *admin;
  GCancellable    *cancellable;
  gint64           cancelled_at;   /* monotonic µs */
  gboolean         saw_blocked;
} Canceller;

/* Waits until the server holds the paused call, then a short scaled delay,
 * then cancels. */
static gpointer
canceller_thread (gpointer data)
{
  Canceller *c = data;
  gint64 give_up = g_get_monotonic_time () + test_scale_ms (5000) * G_TIME_SPAN_MILLISECOND;
  g_autoptr(GError) error = NULL;

  while (g_get_monotonic_time () < give_up)
    {
      g_autoptr(RedisReply) reply =
        redis_client_command_sync (REDIS_CLIENT (c->admin), ARGV ("INFO", "clients"), NULL, &error);

      if (reply == NULL)
        break;
      if (strstr (redis_reply_get_string (reply, NULL), "blocked_clients:1") != NULL)
        {
          c->saw_blocked = TRUE;
          break;
        }
      g_usleep (5 * G_TIME_SPAN_MILLISECOND);
    }
  if (error != NULL)
    record_failure ("canceller: INFO: %s", error->message);

  g_usleep (test_scale_ms (50) * G_TIME_SPAN_MILLISECOND);
  c->cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (c->cancellable);
  return NULL;
}

/* The call after a given-up one on the same client gets its own reply (the
 * late one, the old value of @key, is discarded), and the given-up SET did
 * run once the server went on. */
static void
check_usable_after (gpointer         client,
                    RedisConnection *admin,
                    const char      *key,
                    const char      *new_value)
{
  g_autoptr(RedisReply) reply = NULL;

  unpause (admin);
  reply = run (client, ARGV ("GET", "other"));
  assert_string (reply, "other-value");
  g_clear_pointer (&reply, redis_reply_unref);
  reply = run (client, ARGV ("GET", key));
  assert_string (reply, new_value);
}

static void
check_cancel (gpointer         client,
              RedisConnection *admin,
              const char      *label)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  Canceller c = { admin, cancellable, 0, FALSE };
  GThread *thread;
  gint64 returned_at;

  g_test_message ("%s: cancelled", label);
  redis_reply_unref (run (admin, ARGV ("SET", "cancel:key", "old")));
  pause_writes (admin);
  thread = g_thread_new ("home-canceller", canceller_thread, &c);
  reply = redis_client_command_sync (REDIS_CLIENT (client),
                                     ARGV ("SET", "cancel:key", "new", "GET"),
                                     cancellable, &error);
  returned_at = g_get_monotonic_time ();
  g_thread_join (thread);
  assert_no_failures ();
  g_assert_true (c.saw_blocked);

  g_assert_null (reply);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_test_message ("%s: returned %.1f ms after the cancel", label,
                  (returned_at - c.cancelled_at) / 1000.0);
  g_assert_cmpint (returned_at, >=, c.cancelled_at);
  g_assert_cmpint (returned_at - c.cancelled_at, <,
                   (gint64) test_scale_ms (2000) * G_TIME_SPAN_MILLISECOND);

  check_usable_after (client, admin, "cancel:key", "new");
}

static void
check_timeout (gpointer         client,
               RedisConnection *admin,
               guint            timeout_ms,
               const char      *label)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  gint64 start, elapsed_ms;

  g_test_message ("%s: timed out", label);
  redis_reply_unref (run (admin, ARGV ("SET", "timeout:key", "old")));
  pause_writes (admin);
  start = g_get_monotonic_time ();
  reply = redis_client_command_sync (REDIS_CLIENT (client),
                                     ARGV ("SET", "timeout:key", "new", "GET"),
                                     NULL, &error);
  elapsed_ms = (g_get_monotonic_time () - start) / 1000;
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
  g_test_message ("%s: timed out after %" G_GINT64_FORMAT " ms (command-timeout %u ms)",
                  label, elapsed_ms, timeout_ms);
  /* Not before its deadline (a little slack for clock rounding), and not
   * long after. */
  g_assert_cmpint (elapsed_ms, >=, timeout_ms - MIN (timeout_ms / 10, 20));
  g_assert_cmpint (elapsed_ms, <, timeout_ms + test_scale_ms (2000));
  g_assert_cmpuint (blocked_clients (admin), ==, 1);

  check_usable_after (client, admin, "timeout:key", "new");
}

/* A sync call waiting for a slow reply: cancelled from another thread it
 * fails CANCELLED promptly; past its command timeout it fails TIMEOUT. The
 * connection stays usable either way: the late reply is discarded and the
 * next call gets its own. On a connection and on a pool of 1 (the pool
 * keeps the same connection). */
static void
test_sync_cancel_and_timeout (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  RedisConnection *admin, *conn, *quick_conn;
  RedisPool *pool, *quick_pool;
  guint16 port;
  guint timeout_ms = test_scale_ms (500);
  gint64 conn_id, pool_id;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  port = redis_test_server_get_port (server);
  admin = connection_new (port, long_timeout (), 0);
  redis_reply_unref (run (admin, ARGV ("SET", "other", "other-value")));

  conn = connection_new (port, long_timeout (), 0);
  pool = pool_new (port, 1, long_timeout (), 0);
  quick_conn = connection_new (port, timeout_ms, 0);
  quick_pool = pool_new (port, 1, timeout_ms, 0);
  conn_id = redis_connection_get_client_id (conn);
  pool_id = run_integer (pool, ARGV ("CLIENT", "ID"));

  check_cancel (conn, admin, "connection");
  check_cancel (pool, admin, "pool of 1");
  check_timeout (quick_conn, admin, timeout_ms, "connection");
  check_timeout (quick_pool, admin, timeout_ms, "pool of 1");

  /* Nothing was replaced. */
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  g_assert_cmpint (redis_connection_get_client_id (conn), ==, conn_id);
  g_assert_cmpint (run_integer (pool, ARGV ("CLIENT", "ID")), ==, pool_id);

  pool_destroy (quick_pool);
  pool_destroy (pool);
  close_and_finalize (quick_conn);
  close_and_finalize (conn);
  close_and_finalize (admin);
  assert_no_live_replies ();
}

/* ---- /home/sync-connection-killed ----------------------------------------- */

/* Kills the client @id on the server once the sync call of @first waits
 * there and those of @others are written behind it, then checks every one
 * of them failed CONNECTION_LOST. */
static void
kill_under_sync_calls (RedisConnection *admin,
                       gint64           id,
                       SyncJob         *first,
                       SyncJob         *others,
                       guint            n_others)
{
  g_autofree char *id_str = g_strdup_printf ("%" G_GINT64_FORMAT, id);
  guint64 behind = 0;

  WAIT_UNTIL (blocked_clients (admin) == 1, 5000);
  for (guint i = 0; i < n_others; i++)
    behind += resp_length ((const char * const *) others[i].argv);
  WAIT_UNTIL (client_qbuf (admin, id) == behind, 5000);
  g_assert_false (g_atomic_int_get (&first->done));

  g_assert_cmpint (run_integer (admin, ARGV ("CLIENT", "KILL", "ID", id_str)), ==, 1);
  unpause (admin);

  WAIT_UNTIL (g_atomic_int_get (&first->done), 5000);
  sync_job_join (first);
  g_assert_null (first->reply);
  g_assert_error (first->error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_test_message ("killed: %s", first->error->message);
  sync_job_clear (first);
  for (guint i = 0; i < n_others; i++)
    {
      WAIT_UNTIL (g_atomic_int_get (&others[i].done), 5000);
      sync_job_join (&others[i]);
      g_assert_null (others[i].reply);
      g_assert_error (others[i].error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
      sync_job_clear (&others[i]);
    }
}

typedef struct
{
  RedisPool *pool;
  guint      index;
} AfterKill;

static gpointer
after_kill_thread (gpointer data)
{
  AfterKill *a = data;

  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *key = g_strdup_printf ("after:%u", a->index);
      g_autofree char *value = g_strdup_printf ("after:%u:%u", a->index, i);

      if (expect_sync (a->pool, ARGV ("SET", key, value), NULL, 0))
        expect_sync (a->pool, ARGV ("GET", key), value, strlen (value));
    }
  return NULL;
}

/* The server kills the connection under sync calls of several threads,
 * one of them waiting for its reply and the others written behind it:
 * all fail CONNECTION_LOST. A pool replaces the connection and later sync
 * calls from several threads succeed; a connection stays closed and later
 * calls fail CLOSED. */
static void
test_sync_connection_killed (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisConnection *admin, *conn;
  RedisPool *pool;
  SyncJob first, others[2];
  guint16 port;
  gint64 id;

  SKIP_WITHOUT_REDIS ();
  server = server_new ();
  port = redis_test_server_get_port (server);
  admin = connection_new (port, long_timeout (), 0);

  /* A pool of 1: every call goes to the connection that is killed. */
  g_test_message ("pool of 1");
  pool = pool_new (port, 1, long_timeout (), 0);
  id = run_integer (pool, ARGV ("CLIENT", "ID"));
  pause_writes (admin);
  sync_job_start (&first, pool, ARGV ("SET", "killed:a", "a"));
  WAIT_UNTIL (blocked_clients (admin) == 1, 5000);
  sync_job_start (&others[0], pool, ARGV ("SET", "killed:b", "b"));
  sync_job_start (&others[1], pool, ARGV ("GET", "killed:c"));
  kill_under_sync_calls (admin, id, &first, others, G_N_ELEMENTS (others));

  {
    AfterKill after[4];
    GThread *threads[G_N_ELEMENTS (after)];

    for (guint i = 0; i < G_N_ELEMENTS (after); i++)
      {
        after[i] = (AfterKill) { pool, i };
        threads[i] = g_thread_new ("home-after-kill", after_kill_thread, &after[i]);
      }
    for (guint i = 0; i < G_N_ELEMENTS (after); i++)
      g_thread_join (threads[i]);
    assert_no_failures ();
  }
  g_assert_cmpint (run_integer (pool, ARGV ("CLIENT", "ID")), !=, id);
  pool_destroy (pool);

  /* A connection: it closes and stays closed. */
  g_test_message ("connection");
  conn = connection_new (port, long_timeout (), 0);
  id = redis_connection_get_client_id (conn);
  pause_writes (admin);
  sync_job_start (&first, conn, ARGV ("SET", "killed:a", "a"));
  WAIT_UNTIL (blocked_clients (admin) == 1, 5000);
  sync_job_start (&others[0], conn, ARGV ("GET", "killed:c"));
  kill_under_sync_calls (admin, id, &first, others, 1);

  WAIT_UNTIL (redis_connection_get_state (conn) == REDIS_CONNECTION_STATE_CLOSED, 5000);
  reply = redis_client_command_sync (REDIS_CLIENT (conn), ARGV ("PING"), NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  close_and_finalize (conn);

  close_and_finalize (admin);
  assert_no_live_replies ();
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  main_thread = g_thread_self ();

  g_test_add_func ("/home/async-in-place", test_async_in_place);
  g_test_add_func ("/home/sync-no-io-thread-wakeup", test_sync_no_io_thread_wakeup);
  g_test_add_func ("/home/sync-in-callback-no-reentrancy", test_sync_in_callback_no_reentrancy);
  g_test_add_func ("/home/sync-8-threads-with-async-traffic", test_sync_8_threads_with_async_traffic);
  g_test_add_func ("/home/pool-from-unlooped-thread", test_pool_from_unlooped_thread);
  g_test_add_func ("/home/close-while-sync-drives", test_close_while_sync_drives);
  g_test_add_func ("/home/sync-cancel-and-timeout", test_sync_cancel_and_timeout);
  g_test_add_func ("/home/sync-connection-killed", test_sync_connection_killed);

  return g_test_run ();
}
