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

#include <string.h>

#include "bench-common.h"

static BenchOptions opt;
static char *opt_adapter = NULL;
static gboolean adapter_lean = TRUE;

static GOptionEntry adapter_entries[] = {
  { "adapter", 0, 0, G_OPTION_ARG_STRING, &opt_adapter, "Main-loop adapter: shipped (hiredis's adapters/glib.h) or lean (default)", "ADAPTER" },
  { NULL }
};

static const BenchProgram program = {
  .name = "hiredis-glib-bench",
  .summary = "- hiredis + GLib reference client, same workloads as redispool-benchmark",
  .pool_size_help = "Connections (default min(CALLERS, 5))",
  .sync_help = "Blocking hiredis calls from CALLERS threads instead of async callers",
  .test_entries = adapter_entries,
};

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

typedef struct
{
  BenchRun *run;
  Conn *conn;
  guint pending; /* replies still due for this turn */
  gint64 started;
} Caller;

static Conn *conns;
static int n_conns;

static void
run_fail (BenchRun *run, redisAsyncContext *ac, redisReply *reply)
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
  conns = g_new0 (Conn, opt.pool_size);
  n_conns = opt.pool_size;
  for (int i = 0; i < n_conns; i++)
    {
      Conn *conn = &conns[i];
      const char *ping[] = { "PING" };
      size_t ping_len[] = { 4 };

      if (opt.socket != NULL)
        conn->ac = redisAsyncConnectUnix (opt.socket);
      else
        conn->ac = redisAsyncConnect (opt.host ? opt.host : "127.0.0.1", opt.port);
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

      if (opt.password != NULL)
        {
          const char *auth[] = { "AUTH", opt.password };
          size_t auth_len[] = { 4, strlen (opt.password) };

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
reply_done (redisAsyncContext *ac, void *r, void *privdata)
{
  Caller *caller = privdata;
  BenchRun *run = caller->run;
  redisReply *reply = r;

  if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
    {
      run_fail (run, ac, reply);
      if (--caller->pending == 0)
        bench_caller_stop (run);
      return;
    }
  run->completed++;
  if (--caller->pending > 0)
    return;
  if (!opt.no_latency)
    bench_samples_add (&run->samples, bench_now_ns () - caller->started);
  caller_issue (caller);
}

static void
caller_issue (Caller *caller)
{
  BenchRun *run = caller->run;
  BenchTest *test = run->test;
  redisAsyncContext *ac = caller->conn->ac;

  if (run->error != NULL || run->issued >= run->total || ac == NULL)
    {
      if (ac == NULL && run->error == NULL)
        run->error = g_strdup ("connection lost");
      bench_caller_stop (run);
      return;
    }
  if (!opt.no_latency)
    caller->started = bench_now_ns ();
  for (int j = 0; j < opt.pipeline; j++)
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
    bench_caller_stop (run);
}

static void
run_async (BenchRun *run)
{
  Caller *callers = g_new0 (Caller, opt.callers);

  for (int i = 0; i < opt.callers; i++)
    {
      callers[i].run = run;
      callers[i].conn = &conns[i % n_conns];
    }
  for (int i = 0; i < opt.callers; i++)
    caller_issue (&callers[i]);
  bench_run_loop (run);
  g_free (callers);
}

/* ----------------------------------------------------------------- sync */

static redisContext **sync_conns;
static GAsyncQueue *sync_queue; /* NULL when every thread owns a connection */

static char *
reply_error (redisContext *c, redisReply *reply)
{
  if (reply == NULL)
    return g_strdup (c->errstr[0] ? c->errstr : "connection lost");
  if (reply->type == REDIS_REPLY_ERROR)
    return g_strdup_printf ("server error: %s", reply->str);
  return NULL;
}

static void
worker_main (BenchWorker *w)
{
  BenchTest *test = w->run->test;
  redisContext *own = sync_queue == NULL ? sync_conns[w->index] : NULL;

  while (bench_worker_next (w))
    {
      redisContext *c = own ? own : g_async_queue_pop (sync_queue);

      if (opt.pipeline > 1)
        {
          for (int j = 0; j < opt.pipeline; j++)
            redisAppendCommandArgv (c, test->argc, test->argv, test->argvlen);
          for (int j = 0; j < opt.pipeline && w->error == NULL; j++)
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
      if (own == NULL)
        g_async_queue_push (sync_queue, c);
      bench_worker_record (w);
    }
}

static gboolean
sync_connect (char **error)
{
  sync_conns = g_new0 (redisContext *, opt.pool_size);
  for (int i = 0; i < opt.pool_size; i++)
    {
      redisContext *c;
      redisReply *r;

      if (opt.socket != NULL)
        c = sync_conns[i] = redisConnectUnix (opt.socket);
      else
        c = sync_conns[i] = redisConnect (opt.host ? opt.host : "127.0.0.1", opt.port);
      if (c == NULL || c->err)
        {
          *error = g_strdup (c ? c->errstr : "out of memory");
          return FALSE;
        }
      if (opt.password != NULL)
        {
          const char *auth[] = { "AUTH", opt.password };
          size_t auth_len[] = { 4, strlen (opt.password) };

          r = redisCommandArgv (c, 2, auth, auth_len);
          *error = reply_error (c, r);
          if (r != NULL)
            freeReplyObject (r);
          if (*error != NULL)
            return FALSE;
        }
    }
  if (opt.callers > opt.pool_size)
    {
      sync_queue = g_async_queue_new ();
      for (int i = 0; i < opt.pool_size; i++)
        g_async_queue_push (sync_queue, sync_conns[i]);
    }
  return TRUE;
}

static void
sync_close (void)
{
  g_clear_pointer (&sync_queue, g_async_queue_unref);
  for (int i = 0; i < opt.pool_size && sync_conns != NULL; i++)
    if (sync_conns[i] != NULL)
      redisFree (sync_conns[i]);
  g_clear_pointer (&sync_conns, g_free);
}

static void
run_sync (BenchRun *run)
{
  bench_run_threads (run, worker_main);
}

/* ----------------------------------------------------------------- main */

/* One command outside the timed part (the SET before GET). */
static gboolean
command_once (BenchTest *test, gpointer user_data, char **error)
{
  if (opt.sync)
    {
      redisReply *r = redisCommandArgv (sync_conns[0], test->argc, test->argv, test->argvlen);

      *error = reply_error (sync_conns[0], r);
      if (r != NULL)
        freeReplyObject (r);
      return *error == NULL;
    }
  return conn_roundtrip (&conns[0], test->argc, test->argv, test->argvlen, error);
}

int
main (int argc, char *argv[])
{
  g_autofree char *setup = NULL;
  char *failure = NULL;
  int status;
  gboolean ok = FALSE;

  status = bench_options_parse (&opt, &program, &argc, &argv);
  if (status >= 0)
    return status;
  if (opt_adapter != NULL && g_str_equal (opt_adapter, "shipped"))
    adapter_lean = FALSE;
  else if (opt_adapter != NULL && !g_str_equal (opt_adapter, "lean"))
    {
      g_printerr ("hiredis-glib-bench: --adapter must be shipped or lean\n");
      return 2;
    }
  if (!bench_options_select_tests (&opt))
    return 2;

  if (opt.sync)
    setup = g_strdup_printf ("%d sync (threads) callers, %d hiredis connections, pipeline %d, %d bytes payload",
                             opt.callers, opt.pool_size, opt.pipeline, opt.data_size);
  else
    setup = g_strdup_printf ("%d async callers, %d hiredis connections (%s GLib adapter), pipeline %d, %d bytes payload",
                             opt.callers, opt.pool_size, adapter_lean ? "lean" : "shipped",
                             opt.pipeline, opt.data_size);

  if (!(opt.sync ? sync_connect (&failure) : async_connect (&failure)))
    {
      g_printerr ("hiredis-glib-bench: cannot connect: %s\n", failure);
      g_free (failure);
    }
  else
    ok = bench_run_tests (&opt, setup, opt.sync ? run_sync : run_async, command_once, NULL);

  if (opt.sync)
    sync_close ();
  else
    async_close ();
  g_free (opt_adapter);
  bench_options_clear (&opt);
  return ok ? 0 : 1;
}
