/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* hiredis-glib-bench: the reference client for tools/bench.sh — what a GNOME
 * developer would write instead of redispool: hiredis's async API on the GLib
 * main loop, or its blocking API from threads. It does not use redispool.
 *
 *   hiredis-glib-bench [-h HOST] [-p PORT] [-s SOCKET] [-a PASSWORD]
 *                      [-c CALLERS] [--pool-size N] [-n REQUESTS] [-P PIPELINE]
 *                      [-d VALUE_SIZE] [-t get,set,ping,incr,lpush] [--sync] [-q]
 *                      [--no-latency] [--adapter shipped|lean]
 *
 * The options, the workloads and the output (including the line
 *
 *   RESULT test=get ops=81234.56 p50_us=30.1 p99_us=52.0 max_us=410.3 cpu_us_per_op=6.12
 *
 * ) are those of redispool-benchmark, so the scripts treat both alike.
 *
 * Async mode (the default): --pool-size redisAsyncContexts, each watched by one
 * GSource on the default main context. CALLERS logical callers are spread over
 * them round-robin (caller i uses connection i % pool size); each keeps one
 * request (or, with -P > 1, P commands issued back to back) in flight and issues
 * the next one from the reply callback of the last, until REQUESTS commands have
 * been sent. The GSource is one of:
 *
 *   --adapter shipped  hiredis 0.14's own <hiredis/adapters/glib.h>
 *                      (redis_source_new()): every addRead/delRead/addWrite/
 *                      delWrite hook calls g_main_context_wakeup(), and the
 *                      source cannot recurse, so GLib removes and re-adds its
 *                      poll fd around every dispatch.
 *   --adapter lean     (default) the same GPollFD adapter without those costs:
 *                      the hooks only flip the poll events (GLib reads them at
 *                      the next iteration; everything runs on the loop's thread,
 *                      so nothing has to be woken), and the source has
 *                      g_source_set_can_recurse (TRUE). It does not use
 *                      g_source_modify_unix_fd(): in GLib 2.74 that function
 *                      itself calls g_main_context_wakeup() (an eventfd write).
 *
 * --sync: CALLERS threads make blocking hiredis calls (redisCommandArgv(), or
 * P x redisAppendCommandArgv() then P x redisGetReply()) on --pool-size
 * redisContexts. With CALLERS <= pool size each thread owns one connection;
 * otherwise the threads take connections from a GAsyncQueue and put them back.
 *
 * Client CPU per command is getrusage (RUSAGE_SELF), user + system, all
 * threads. */

#include <glib.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/glib.h>

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* options */
static char *opt_host = NULL;
static int opt_port = 6379;
static char *opt_socket = NULL;
static char *opt_password = NULL;
static int opt_callers = 50;
static int opt_pool_size = 0;
static int opt_requests = 100000;
static int opt_pipeline = 1;
static int opt_data_size = 3;
static char *opt_tests = NULL;
static char *opt_adapter = NULL;
static gboolean opt_sync = FALSE;
static gboolean opt_quiet = FALSE;
static gboolean opt_help = FALSE;
static gboolean opt_no_latency = FALSE;
static gboolean adapter_lean = TRUE;

static GOptionEntry entries[] = {
  { "host", 'h', 0, G_OPTION_ARG_STRING, &opt_host, "Server hostname (default 127.0.0.1)", "HOST" },
  { "port", 'p', 0, G_OPTION_ARG_INT, &opt_port, "Server port (default 6379)", "PORT" },
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &opt_socket, "Server unix socket (overrides host and port)", "SOCKET" },
  { "password", 'a', 0, G_OPTION_ARG_STRING, &opt_password, "Password for AUTH", "PASSWORD" },
  { "callers", 'c', 0, G_OPTION_ARG_INT, &opt_callers, "Number of concurrent callers (default 50)", "CALLERS" },
  { "pool-size", 0, 0, G_OPTION_ARG_INT, &opt_pool_size, "Connections (default min(CALLERS, 5))", "N" },
  { "requests", 'n', 0, G_OPTION_ARG_INT, &opt_requests, "Total number of commands per test (default 100000)", "REQUESTS" },
  { "pipeline", 'P', 0, G_OPTION_ARG_INT, &opt_pipeline, "Commands per pipeline (default 1: no pipelining)", "PIPELINE" },
  { "data-size", 'd', 0, G_OPTION_ARG_INT, &opt_data_size, "Value size in bytes for SET/GET/LPUSH (default 3)", "VALUE_SIZE" },
  { "tests", 't', 0, G_OPTION_ARG_STRING, &opt_tests, "Comma-separated tests to run: ping,set,get,incr,lpush (default all)", "TESTS" },
  { "adapter", 0, 0, G_OPTION_ARG_STRING, &opt_adapter, "Main-loop adapter: shipped (hiredis's adapters/glib.h) or lean (default)", "ADAPTER" },
  { "sync", 0, 0, G_OPTION_ARG_NONE, &opt_sync, "Blocking hiredis calls from CALLERS threads instead of async callers", NULL },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "Quiet: one line per test plus its RESULT line", NULL },
  { "no-latency", 0, 0, G_OPTION_ARG_NONE, &opt_no_latency, "Do not time each request (for tools/bench-cost.sh)", NULL },
  { "help", 0, 0, G_OPTION_ARG_NONE, &opt_help, "Show help options", NULL },
  { NULL }
};

typedef struct
{
  const char *name;
  int argc;
  const char *argv[4];
  size_t argvlen[4];
} Test;

/* ------------------------------------------------------------- samples */

/* Latencies are kept in nanoseconds; guint32 caps one at ~4.3 s. */
typedef struct
{
  guint32 *values;
  gsize len;
  gsize cap;
} Samples;

static void
samples_init (Samples *s, gsize cap)
{
  s->cap = MAX (cap, 16);
  s->len = 0;
  s->values = g_new (guint32, s->cap);
}

static inline void
samples_add (Samples *s, gint64 ns)
{
  if (G_UNLIKELY (s->len == s->cap))
    {
      s->cap *= 2;
      s->values = g_renew (guint32, s->values, s->cap);
    }
  s->values[s->len++] = ns > G_MAXUINT32 ? G_MAXUINT32 : (guint32) MAX (ns, 0);
}

static void
samples_merge (Samples *into, Samples *from)
{
  for (gsize i = 0; i < from->len; i++)
    samples_add (into, from->values[i]);
}

static int
cmp_u32 (const void *a, const void *b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;
  return x < y ? -1 : x > y;
}

static double
samples_percentile_us (Samples *sorted, double p)
{
  gsize idx;

  if (sorted->len == 0)
    return 0;
  idx = (gsize) (p / 100.0 * (double) sorted->len);
  if (idx >= sorted->len)
    idx = sorted->len - 1;
  return sorted->values[idx] / 1000.0;
}

static inline gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static gint64
cpu_us (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (gint64) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* --------------------------------------------------------- lean adapter */

/* One GPollFD whose events the hiredis hooks flip in place. GLib copies the
 * events of every GPollFD into its poll array at each iteration
 * (g_main_context_query()), and all hooks run on the loop's own thread (from
 * a dispatch, or before the loop runs), so no wake-up is needed. */
typedef struct
{
  GSource source;
  redisAsyncContext *ac;
  GPollFD pfd;
} LeanSource;

static void
lean_add_read (void *data)
{
  ((LeanSource *) data)->pfd.events |= G_IO_IN;
}

static void
lean_del_read (void *data)
{
  ((LeanSource *) data)->pfd.events &= ~G_IO_IN;
}

static void
lean_add_write (void *data)
{
  ((LeanSource *) data)->pfd.events |= G_IO_OUT;
}

static void
lean_del_write (void *data)
{
  ((LeanSource *) data)->pfd.events &= ~G_IO_OUT;
}

/* hiredis frees the context: stop watching the fd. */
static void
lean_cleanup (void *data)
{
  LeanSource *self = data;

  self->ac = NULL;
  self->pfd.events = 0;
  if (self->pfd.fd >= 0)
    {
      g_source_remove_poll (&self->source, &self->pfd);
      self->pfd.fd = -1;
    }
}

static gboolean
lean_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
lean_check (GSource *source)
{
  LeanSource *self = (LeanSource *) source;

  return (self->pfd.revents & (self->pfd.events | G_IO_ERR | G_IO_HUP | G_IO_NVAL)) != 0;
}

static gboolean
lean_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  LeanSource *self = (LeanSource *) source;
  gushort revents = self->pfd.revents;

  self->pfd.revents = 0;
  /* hiredis may free the context (and call lean_cleanup) in either call. */
  if (self->ac != NULL && (revents & G_IO_OUT))
    redisAsyncHandleWrite (self->ac);
  if (self->ac != NULL && (revents & (G_IO_IN | G_IO_ERR | G_IO_HUP | G_IO_NVAL)))
    redisAsyncHandleRead (self->ac);
  return G_SOURCE_CONTINUE;
}

static void
lean_finalize (GSource *source)
{
  LeanSource *self = (LeanSource *) source;

  if (self->ac != NULL)
    {
      /* The context outlives its source: detach the hooks. */
      memset (&self->ac->ev, 0, sizeof self->ac->ev);
      self->ac = NULL;
    }
}

static GSourceFuncs lean_funcs = {
  lean_prepare,
  lean_check,
  lean_dispatch,
  lean_finalize,
  NULL, NULL
};

static GSource *
lean_source_new (redisAsyncContext *ac)
{
  LeanSource *self = (LeanSource *) g_source_new (&lean_funcs, sizeof (LeanSource));

  g_source_set_name (&self->source, "hiredis (lean)");
  g_source_set_can_recurse (&self->source, TRUE);
  self->ac = ac;
  self->pfd.fd = ac->c.fd;
  self->pfd.events = 0;
  self->pfd.revents = 0;
  g_source_add_poll (&self->source, &self->pfd);

  ac->ev.data = self;
  ac->ev.addRead = lean_add_read;
  ac->ev.delRead = lean_del_read;
  ac->ev.addWrite = lean_add_write;
  ac->ev.delWrite = lean_del_write;
  ac->ev.cleanup = lean_cleanup;
  return &self->source;
}

/* ---------------------------------------------------------------- async */

typedef struct
{
  redisAsyncContext *ac; /* NULL once hiredis has freed it */
  GSource *source;
} Conn;

typedef struct _Run Run;

typedef struct
{
  Run *run;
  Conn *conn;
  guint pending; /* replies still due for this turn */
  gint64 started;
} Caller;

struct _Run
{
  Test *test;
  Samples samples;
  guint64 issued;    /* commands sent */
  guint64 completed; /* commands answered */
  guint64 total;
  guint n_active;    /* callers still running */
  char *error;
  GMainLoop *loop;
};

static Conn *conns;
static int n_conns;

static void
run_fail (Run *run, redisAsyncContext *ac, redisReply *reply)
{
  if (run->error != NULL)
    return;
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    run->error = g_strdup_printf ("server error: %s", reply->str);
  else
    run->error = g_strdup (ac->errstr[0] ? ac->errstr : "connection lost");
}

/* After either callback (a failed connect, or a disconnect) hiredis frees
 * the context. */
static void
conn_connected (const redisAsyncContext *ac, int status)
{
  Conn *conn = ac->data;

  if (status != REDIS_OK)
    conn->ac = NULL;
}

static void
conn_disconnected (const redisAsyncContext *ac, int status)
{
  Conn *conn = ac->data;

  conn->ac = NULL;
}

/* One command on one connection, waited for on the main context (set-up only). */
typedef struct
{
  gboolean done;
  char *error;
} Roundtrip;

static void
roundtrip_done (redisAsyncContext *ac, void *r, void *privdata)
{
  Roundtrip *rt = privdata;
  redisReply *reply = r;

  if (reply == NULL)
    rt->error = g_strdup (ac->errstr[0] ? ac->errstr : "connection lost");
  else if (reply->type == REDIS_REPLY_ERROR)
    rt->error = g_strdup (reply->str);
  rt->done = TRUE;
}

static gboolean
conn_roundtrip (Conn *conn, int argc, const char **argv, const size_t *argvlen, char **error)
{
  Roundtrip rt = { FALSE, NULL };

  if (conn->ac == NULL ||
      redisAsyncCommandArgv (conn->ac, roundtrip_done, &rt, argc, argv, argvlen) != REDIS_OK)
    {
      *error = g_strdup ("cannot send");
      return FALSE;
    }
  while (!rt.done)
    g_main_context_iteration (NULL, TRUE);
  if (rt.error != NULL)
    {
      *error = rt.error;
      return FALSE;
    }
  return TRUE;
}

static gboolean
async_connect (char **error)
{
  conns = g_new0 (Conn, opt_pool_size);
  n_conns = opt_pool_size;
  for (int i = 0; i < n_conns; i++)
    {
      Conn *conn = &conns[i];
      const char *ping[] = { "PING" };
      size_t ping_len[] = { 4 };

      if (opt_socket != NULL)
        conn->ac = redisAsyncConnectUnix (opt_socket);
      else
        conn->ac = redisAsyncConnect (opt_host ? opt_host : "127.0.0.1", opt_port);
      if (conn->ac == NULL || conn->ac->err)
        {
          *error = g_strdup (conn->ac ? conn->ac->errstr : "out of memory");
          if (conn->ac != NULL)
            redisAsyncFree (conn->ac);
          conn->ac = NULL;
          return FALSE;
        }
      conn->ac->data = conn;
      redisAsyncSetConnectCallback (conn->ac, conn_connected);
      redisAsyncSetDisconnectCallback (conn->ac, conn_disconnected);
      conn->source = adapter_lean ? lean_source_new (conn->ac) : redis_source_new (conn->ac);
      g_source_attach (conn->source, NULL);

      if (opt_password != NULL)
        {
          const char *auth[] = { "AUTH", opt_password };
          size_t auth_len[] = { 4, strlen (opt_password) };

          if (!conn_roundtrip (conn, 2, auth, auth_len, error))
            return FALSE;
        }
      if (!conn_roundtrip (conn, 1, ping, ping_len, error))
        return FALSE;
    }
  return TRUE;
}

static void
async_close (void)
{
  for (int i = 0; i < n_conns; i++)
    {
      /* Free the context first: the shipped adapter's cleanup hook needs
       * its source still attached. */
      if (conns[i].ac != NULL)
        redisAsyncFree (conns[i].ac);
      if (conns[i].source != NULL)
        {
          g_source_destroy (conns[i].source);
          g_source_unref (conns[i].source);
        }
    }
  g_free (conns);
  conns = NULL;
  n_conns = 0;
}

static void caller_issue (Caller *caller);

static void
caller_stop (Caller *caller)
{
  Run *run = caller->run;

  if (--run->n_active == 0)
    g_main_loop_quit (run->loop);
}

static void
reply_done (redisAsyncContext *ac, void *r, void *privdata)
{
  Caller *caller = privdata;
  Run *run = caller->run;
  redisReply *reply = r;

  if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
    {
      run_fail (run, ac, reply);
      if (--caller->pending == 0)
        caller_stop (caller);
      return;
    }
  run->completed++;
  if (--caller->pending > 0)
    return;
  if (!opt_no_latency)
    samples_add (&run->samples, now_ns () - caller->started);
  caller_issue (caller);
}

static void
caller_issue (Caller *caller)
{
  Run *run = caller->run;
  Test *test = run->test;
  redisAsyncContext *ac = caller->conn->ac;

  if (run->error != NULL || run->issued >= run->total || ac == NULL)
    {
      if (ac == NULL && run->error == NULL)
        run->error = g_strdup ("connection lost");
      caller_stop (caller);
      return;
    }
  if (!opt_no_latency)
    caller->started = now_ns ();
  for (int j = 0; j < opt_pipeline; j++)
    {
      if (redisAsyncCommandArgv (ac, reply_done, caller, test->argc, test->argv, test->argvlen) != REDIS_OK)
        {
          if (run->error == NULL)
            run->error = g_strdup ("cannot send");
          break;
        }
      caller->pending++;
      run->issued++;
    }
  if (caller->pending == 0)
    caller_stop (caller);
}

static void
run_async (Run *run)
{
  Caller *callers = g_new0 (Caller, opt_callers);

  run->loop = g_main_loop_new (NULL, FALSE);
  run->n_active = opt_callers;
  for (int i = 0; i < opt_callers; i++)
    {
      callers[i].run = run;
      callers[i].conn = &conns[i % n_conns];
    }
  for (int i = 0; i < opt_callers; i++)
    caller_issue (&callers[i]);
  if (run->n_active > 0)
    g_main_loop_run (run->loop);
  g_free (callers);
  g_main_loop_unref (run->loop);
}

/* ----------------------------------------------------------------- sync */

static redisContext **sync_conns;
static GAsyncQueue *sync_queue; /* NULL when every thread owns a connection */

typedef struct
{
  Run *run;
  redisContext *own; /* NULL: take one from sync_queue for each turn */
  Samples samples;
  guint64 completed;
  char *error;
} Worker;

static gint64 sync_issued; /* atomic */
static gint sync_failed;   /* atomic */

static char *
reply_error (redisContext *c, redisReply *reply)
{
  if (reply == NULL)
    return g_strdup (c->errstr[0] ? c->errstr : "connection lost");
  if (reply->type == REDIS_REPLY_ERROR)
    return g_strdup_printf ("server error: %s", reply->str);
  return NULL;
}

static gpointer
worker_main (gpointer data)
{
  Worker *w = data;
  Test *test = w->run->test;
  gint64 step = opt_pipeline;

  while (!g_atomic_int_get (&sync_failed) && w->error == NULL)
    {
      gint64 started;
      gint64 before = __atomic_fetch_add (&sync_issued, step, __ATOMIC_RELAXED);
      redisContext *c;

      if ((guint64) before >= w->run->total)
        break;

      started = opt_no_latency ? 0 : now_ns ();
      c = w->own ? w->own : g_async_queue_pop (sync_queue);
      if (opt_pipeline > 1)
        {
          for (int j = 0; j < opt_pipeline; j++)
            redisAppendCommandArgv (c, test->argc, test->argv, test->argvlen);
          for (int j = 0; j < opt_pipeline && w->error == NULL; j++)
            {
              void *r = NULL;

              if (redisGetReply (c, &r) != REDIS_OK)
                r = NULL;
              w->error = reply_error (c, r);
              if (r != NULL)
                freeReplyObject (r);
              if (w->error == NULL)
                w->completed++;
            }
        }
      else
        {
          redisReply *r = redisCommandArgv (c, test->argc, test->argv, test->argvlen);

          w->error = reply_error (c, r);
          if (r != NULL)
            freeReplyObject (r);
          if (w->error == NULL)
            w->completed++;
        }
      if (w->own == NULL)
        g_async_queue_push (sync_queue, c);
      if (!opt_no_latency)
        samples_add (&w->samples, now_ns () - started);
    }
  if (w->error != NULL)
    g_atomic_int_set (&sync_failed, 1);
  return NULL;
}

static gboolean
sync_connect (char **error)
{
  sync_conns = g_new0 (redisContext *, opt_pool_size);
  for (int i = 0; i < opt_pool_size; i++)
    {
      redisContext *c;
      redisReply *r;

      if (opt_socket != NULL)
        c = sync_conns[i] = redisConnectUnix (opt_socket);
      else
        c = sync_conns[i] = redisConnect (opt_host ? opt_host : "127.0.0.1", opt_port);
      if (c == NULL || c->err)
        {
          *error = g_strdup (c ? c->errstr : "out of memory");
          return FALSE;
        }
      if (opt_password != NULL)
        {
          const char *auth[] = { "AUTH", opt_password };
          size_t auth_len[] = { 4, strlen (opt_password) };

          r = redisCommandArgv (c, 2, auth, auth_len);
          *error = reply_error (c, r);
          if (r != NULL)
            freeReplyObject (r);
          if (*error != NULL)
            return FALSE;
        }
    }
  if (opt_callers > opt_pool_size)
    {
      sync_queue = g_async_queue_new ();
      for (int i = 0; i < opt_pool_size; i++)
        g_async_queue_push (sync_queue, sync_conns[i]);
    }
  return TRUE;
}

static void
sync_close (void)
{
  g_clear_pointer (&sync_queue, g_async_queue_unref);
  for (int i = 0; i < opt_pool_size && sync_conns != NULL; i++)
    if (sync_conns[i] != NULL)
      redisFree (sync_conns[i]);
  g_clear_pointer (&sync_conns, g_free);
}

static void
run_sync (Run *run)
{
  Worker *workers = g_new0 (Worker, opt_callers);
  GThread **threads = g_new0 (GThread *, opt_callers);

  sync_issued = 0;
  sync_failed = 0;
  for (int i = 0; i < opt_callers; i++)
    {
      workers[i].run = run;
      workers[i].own = sync_queue == NULL ? sync_conns[i] : NULL;
      samples_init (&workers[i].samples, run->total / (guint64) opt_callers / (guint64) opt_pipeline + 16);
      threads[i] = g_thread_new ("bench-caller", worker_main, &workers[i]);
    }
  for (int i = 0; i < opt_callers; i++)
    {
      g_thread_join (threads[i]);
      samples_merge (&run->samples, &workers[i].samples);
      g_free (workers[i].samples.values);
      run->completed += workers[i].completed;
      if (workers[i].error != NULL)
        {
          if (run->error == NULL)
            run->error = workers[i].error;
          else
            g_free (workers[i].error);
        }
    }
  run->issued = run->completed;
  g_free (threads);
  g_free (workers);
}

/* ----------------------------------------------------------------- main */

/* One command outside the timed part (the SET before GET). */
static gboolean
command_once (Test *test, char **error)
{
  if (opt_sync)
    {
      redisReply *r = redisCommandArgv (sync_conns[0], test->argc, test->argv, test->argvlen);

      *error = reply_error (sync_conns[0], r);
      if (r != NULL)
        freeReplyObject (r);
      return *error == NULL;
    }
  return conn_roundtrip (&conns[0], test->argc, test->argv, test->argvlen, error);
}

static gboolean
run_test (Test *test)
{
  Run run = { 0 };
  gint64 t0, t1, c0, c1;
  double secs, ops, cpu_per_op;
  double p50, p99, pmax;
  g_autofree char *upper = g_ascii_strup (test->name, -1);

  run.test = test;
  run.total = (guint64) opt_requests;
  samples_init (&run.samples, run.total / (guint64) opt_pipeline + 16);

  c0 = cpu_us ();
  t0 = now_ns ();
  if (opt_sync)
    run_sync (&run);
  else
    run_async (&run);
  t1 = now_ns ();
  c1 = cpu_us ();

  if (run.error != NULL)
    {
      g_printerr ("%s: %s\n", upper, run.error);
      g_free (run.error);
      g_free (run.samples.values);
      return FALSE;
    }

  qsort (run.samples.values, run.samples.len, sizeof (guint32), cmp_u32);
  secs = (t1 - t0) / 1e9;
  ops = run.completed / (secs > 0 ? secs : 1e-9);
  cpu_per_op = run.completed ? (double) (c1 - c0) / (double) run.completed : 0;
  p50 = samples_percentile_us (&run.samples, 50);
  p99 = samples_percentile_us (&run.samples, 99);
  pmax = run.samples.len ? run.samples.values[run.samples.len - 1] / 1000.0 : 0;

  if (opt_quiet)
    {
      g_print ("%s: %.2f requests per second, p50=%.1f us, p99=%.1f us, max=%.1f us, cpu=%.2f us/op\n",
               upper, ops, p50, p99, pmax, cpu_per_op);
    }
  else
    {
      g_print ("====== %s ======\n", upper);
      g_print ("  %" G_GUINT64_FORMAT " requests completed in %.2f seconds\n", run.completed, secs);
      if (opt_sync)
        g_print ("  %d sync (threads) callers, %d hiredis connections, pipeline %d, %d bytes payload\n",
                 opt_callers, opt_pool_size, opt_pipeline, opt_data_size);
      else
        g_print ("  %d async callers, %d hiredis connections (%s GLib adapter), pipeline %d, %d bytes payload\n",
                 opt_callers, opt_pool_size, adapter_lean ? "lean" : "shipped",
                 opt_pipeline, opt_data_size);
      g_print ("  latency (us, per %s): p50=%.1f p99=%.1f max=%.1f\n",
               opt_pipeline > 1 ? "pipeline" : "request", p50, p99, pmax);
      g_print ("  client CPU: %.2f us/op\n", cpu_per_op);
      g_print ("  throughput: %.2f requests per second\n\n", ops);
    }
  g_print ("RESULT test=%s ops=%.2f p50_us=%.1f p99_us=%.1f max_us=%.1f cpu_us_per_op=%.3f\n",
           test->name, ops, p50, p99, pmax, cpu_per_op);

  g_free (run.samples.values);
  return TRUE;
}

#define TEST1(n, a) { n, 1, { a, NULL }, { sizeof a - 1, 0 } }
#define TEST2(n, a, b) { n, 2, { a, b, NULL }, { sizeof a - 1, sizeof b - 1, 0 } }

int
main (int argc, char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  g_autofree char *value = NULL;
  char *failure = NULL;
  gboolean ok = TRUE;

  context = g_option_context_new ("- hiredis + GLib reference client, same workloads as redispool-benchmark");
  /* -h is the host, as in redis-benchmark; --help stays. */
  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("hiredis-glib-bench: %s\n", error->message);
      return 2;
    }
  if (opt_help)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      g_print ("%s", help);
      return 0;
    }
  if (opt_callers < 1 || opt_requests < 1 || opt_pipeline < 1 || opt_data_size < 0 ||
      opt_pool_size < 0 || opt_port < 1 || opt_port > 65535)
    {
      g_printerr ("hiredis-glib-bench: invalid option value\n");
      return 2;
    }
  if (opt_adapter != NULL && g_str_equal (opt_adapter, "shipped"))
    adapter_lean = FALSE;
  else if (opt_adapter != NULL && !g_str_equal (opt_adapter, "lean"))
    {
      g_printerr ("hiredis-glib-bench: --adapter must be shipped or lean\n");
      return 2;
    }
  if (opt_pool_size == 0)
    opt_pool_size = MIN (opt_callers, 5);

  value = g_malloc (opt_data_size + 1);
  memset (value, 'x', opt_data_size);
  value[opt_data_size] = '\0';

  {
    Test tests[] = {
      TEST1 ("ping", "PING"),
      { "set", 3, { "SET", "key:__rand_int__", value, NULL }, { 3, 16, (size_t) opt_data_size, 0 } },
      TEST2 ("get", "GET", "key:__rand_int__"),
      TEST2 ("incr", "INCR", "counter:__rand_int__"),
      { "lpush", 3, { "LPUSH", "mylist", value, NULL }, { 5, 6, (size_t) opt_data_size, 0 } },
    };

    names = g_strsplit (opt_tests ? opt_tests : "ping,set,get,incr,lpush", ",", -1);
    for (guint i = 0; names[i] != NULL; i++)
      {
        gboolean known = FALSE;

        g_strstrip (names[i]);
        for (guint j = 0; j < G_N_ELEMENTS (tests); j++)
          known |= g_ascii_strcasecmp (names[i], tests[j].name) == 0;
        if (!known && names[i][0] != '\0')
          {
            g_printerr ("hiredis-glib-bench: unknown test '%s' (known: ping,set,get,incr,lpush)\n", names[i]);
            return 2;
          }
      }

    if (!(opt_sync ? sync_connect (&failure) : async_connect (&failure)))
      {
        g_printerr ("hiredis-glib-bench: cannot connect: %s\n", failure);
        g_free (failure);
        ok = FALSE;
      }

    for (guint i = 0; names[i] != NULL && ok; i++)
      for (guint j = 0; j < G_N_ELEMENTS (tests); j++)
        {
          if (g_ascii_strcasecmp (names[i], tests[j].name) != 0)
            continue;
          if (g_str_equal (tests[j].name, "get") && !command_once (&tests[1], &failure))
            {
              g_printerr ("hiredis-glib-bench: SET before GET: %s\n", failure);
              g_free (failure);
              ok = FALSE;
              break;
            }
          ok = run_test (&tests[j]);
        }
  }

  if (opt_sync)
    sync_close ();
  else
    async_close ();
  g_free (opt_host);
  g_free (opt_socket);
  g_free (opt_password);
  g_free (opt_tests);
  g_free (opt_adapter);
  return ok ? 0 : 1;
}
