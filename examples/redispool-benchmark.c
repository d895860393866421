/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* redispool-benchmark: a redis-benchmark-style load generator for redispool.
 *
 *   redispool-benchmark [-h HOST] [-p PORT] [-s SOCKET] [-a PASSWORD] [--uri URI]
 *                       [-c CALLERS] [--pool-size N] [-n REQUESTS] [-P PIPELINE]
 *                       [-d VALUE_SIZE] [-t get,set,ping,incr,lpush] [--sync] [-q]
 *                       [--cluster]
 *
 * Async mode (the default): CALLERS logical callers share one RedisPool; each
 * keeps one request (or, with -P > 1, one pipeline of P commands, sent with
 * redis_client_pipeline_async() and a RedisBatch built once per caller) in
 * flight on the main loop and issues the next one from its callback, until
 * REQUESTS commands have been sent.
 *
 * --sync: CALLERS threads each make blocking calls (redis_client_command_sync()
 * or redis_client_pipeline_sync()) on the shared pool.
 *
 * For every test it prints requests per second, p50/p99/max latency in
 * microseconds (per request; per pipeline round trip with -P > 1), and the
 * client's CPU time per command (getrusage (RUSAGE_SELF), user + system,
 * which includes the library's I/O thread), followed by one machine-readable
 * line:
 *
 *   RESULT test=get ops=81234.56 p50_us=30.1 p99_us=52.0 max_us=410.3 cpu_us_per_op=6.12
 *
 * Keys follow redis-benchmark without -r: "key:__rand_int__" for GET/SET,
 * "counter:__rand_int__" for INCR and "mylist" for LPUSH. Before the GET test,
 * the key is SET once to a value of VALUE_SIZE bytes.
 *
 * --cluster: the server is a Redis Cluster. The client is a RedisClusterPool
 * whose seeds are --uri (or -h/-p), with a pool of --pool-size connections
 * per node. One key would load one node only, so, like redis-benchmark
 * --cluster, every caller has a key of its own, the test's key with the
 * caller's number as a hash tag ("key:__rand_int__:{7}"), which spreads the
 * callers over the nodes; before the GET test every caller's key is SET.
 * tools/bench-cluster.sh runs this next to redis-benchmark --cluster. */

#include <redispool.h>

#include <string.h>

#include "bench-common.h"

static BenchOptions opt;
static char *opt_uri = NULL;
static gboolean opt_cluster = FALSE;

static GOptionEntry uri_entries[] = {
  { "uri", 0, 0, G_OPTION_ARG_STRING, &opt_uri, "Server URI (overrides -h/-p/-s/-a)", "URI" },
  { "cluster", 0, 0, G_OPTION_ARG_NONE, &opt_cluster,
    "A Redis Cluster: --uri (or -h/-p) are seeds, each caller has a key of its own", NULL },
  { NULL }
};

/* A caller's command: the test's, with --cluster the key tagged with the
 * caller's number. */
typedef struct
{
  const char *argv[4];
  char *key;
} CallerCommand;

static void
caller_command_init (CallerCommand   *command,
                     const BenchTest *test,
                     guint            index)
{
  memcpy (command->argv, test->argv, sizeof command->argv);
  command->key = NULL;
  if (opt_cluster && test->argc >= 2)
    command->argv[1] = command->key = g_strdup_printf ("%s:{%u}", test->argv[1], index);
}

static void
caller_command_clear (CallerCommand *command)
{
  g_clear_pointer (&command->key, g_free);
}

static const BenchProgram program = {
  .name = "redispool-benchmark",
  .summary = "- load generator for redispool, modelled on redis-benchmark",
  .pool_size_help = "Connections in the pool (default min(CALLERS, 5))",
  .sync_help = "Blocking calls from CALLERS threads instead of async callers",
  .server_entries = uri_entries,
};

/* ---------------------------------------------------------------- async */

typedef struct
{
  BenchRun *run;
  CallerCommand command;
  RedisBatch *batch; /* NULL without pipelining */
  gint64 started;
} Caller;

static void caller_issue (Caller *caller);

/* Records the round trip; FALSE (the caller stops) if it failed. */
static gboolean
caller_done (Caller *caller, gboolean ok, GError *error)
{
  if (!opt.no_latency)
    bench_samples_add (&caller->run->samples, bench_now_ns () - caller->started);
  if (!ok)
    {
      bench_run_fail (caller->run, g_strdup (error->message));
      g_error_free (error);
      bench_caller_stop (caller->run);
    }
  return ok;
}

static void
command_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Caller *caller = user_data;
  GError *error = NULL;
  RedisReply *reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  if (!caller_done (caller, reply != NULL, error))
    return;
  redis_reply_unref (reply);
  caller->run->completed++;
  caller_issue (caller);
}

static void
pipeline_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Caller *caller = user_data;
  GError *error = NULL;
  GPtrArray *replies = redis_client_pipeline_finish (REDIS_CLIENT (source), result, &error);

  if (!caller_done (caller, replies != NULL, error))
    return;
  caller->run->completed += replies->len;
  g_ptr_array_unref (replies);
  caller_issue (caller);
}

static void
caller_issue (Caller *caller)
{
  BenchRun *run = caller->run;

  if (run->error != NULL || run->issued >= run->total)
    {
      bench_caller_stop (run);
      return;
    }
  if (!opt.no_latency)
    caller->started = bench_now_ns ();
  if (caller->batch != NULL)
    {
      run->issued += (guint64) opt.pipeline;
      redis_client_pipeline_async (run->user_data, caller->batch, NULL, pipeline_done, caller);
    }
  else
    {
      run->issued++;
      redis_client_command_async (run->user_data, caller->command.argv, NULL, command_done, caller);
    }
}

static RedisBatch *
batch_new (const CallerCommand *command)
{
  RedisBatch *batch = redis_batch_new ();

  for (int j = 0; j < opt.pipeline; j++)
    redis_batch_add (batch, command->argv);
  return batch;
}

static void
run_async (BenchRun *run)
{
  Caller *callers = g_new0 (Caller, opt.callers);

  for (int i = 0; i < opt.callers; i++)
    {
      callers[i].run = run;
      caller_command_init (&callers[i].command, run->test, (guint) i);
      if (opt.pipeline > 1)
        callers[i].batch = batch_new (&callers[i].command);
    }
  for (int i = 0; i < opt.callers; i++)
    caller_issue (&callers[i]);
  bench_run_loop (run);
  for (int i = 0; i < opt.callers; i++)
    {
      g_clear_object (&callers[i].batch);
      caller_command_clear (&callers[i].command);
    }
  g_free (callers);
}

/* ----------------------------------------------------------------- sync */

static void
worker_main (BenchWorker *w)
{
  RedisClient *client = w->run->user_data;
  CallerCommand command;
  RedisBatch *batch;
  g_autoptr(GError) error = NULL;

  caller_command_init (&command, w->run->test, w->index);
  batch = opt.pipeline > 1 ? batch_new (&command) : NULL;

  while (bench_worker_next (w))
    {
      if (batch != NULL)
        {
          GPtrArray *replies = redis_client_pipeline_sync (client, batch, NULL, &error);
          if (replies == NULL)
            break;
          w->completed += replies->len;
          g_ptr_array_unref (replies);
        }
      else
        {
          RedisReply *reply = redis_client_command_sync (client, command.argv, NULL, &error);
          if (reply == NULL)
            break;
          w->completed++;
          redis_reply_unref (reply);
        }
      bench_worker_record (w);
    }
  if (error != NULL)
    w->error = g_strdup (error->message);
  g_clear_object (&batch);
  caller_command_clear (&command);
}

static void
run_sync (BenchRun *run)
{
  bench_run_threads (run, worker_main);
}

/* ----------------------------------------------------------------- main */

/* The cluster pool: the seeds of --uri, or -h/-p. */
static RedisClusterPool *
make_cluster_pool (GError **error)
{
  g_autoptr(GString) uri = g_string_new (opt_uri);
  gboolean has_query;

  if (opt_uri == NULL)
    g_string_printf (uri, "redis://%s:%d", opt.host ? opt.host : "127.0.0.1", opt.port);
  has_query = strchr (uri->str, '?') != NULL;
  if (strstr (uri->str, "pool_size=") == NULL)
    {
      g_string_append_printf (uri, "%spool_size=%d", has_query ? "&" : "?", opt.pool_size);
      has_query = TRUE;
    }
  if (strstr (uri->str, "command_timeout=") == NULL)
    g_string_append_printf (uri, "%scommand_timeout=0", has_query ? "&" : "?");
  return redis_cluster_pool_new_sync (uri->str, NULL, error);
}

static RedisPool *
make_pool (GError **error)
{
  if (opt_uri != NULL)
    {
      g_autoptr(GString) uri = g_string_new (opt_uri);
      gboolean has_query = strchr (opt_uri, '?') != NULL;

      if (strstr (opt_uri, "pool_size=") == NULL)
        {
          g_string_append_printf (uri, "%spool_size=%d", has_query ? "&" : "?", opt.pool_size);
          has_query = TRUE;
        }
      if (strstr (opt_uri, "command_timeout=") == NULL)
        g_string_append_printf (uri, "%scommand_timeout=0", has_query ? "&" : "?");
      return redis_pool_new_sync (uri->str, NULL, error);
    }
  if (opt.socket != NULL)
    return g_initable_new (REDIS_TYPE_POOL, NULL, error,
                           "socket-path", opt.socket,
                           "password", opt.password,
                           "pool-size", (guint) opt.pool_size,
                           "command-timeout", 0u,
                           NULL);
  return g_initable_new (REDIS_TYPE_POOL, NULL, error,
                         "host", opt.host ? opt.host : "127.0.0.1",
                         "port", (guint) opt.port,
                         "password", opt.password,
                         "pool-size", (guint) opt.pool_size,
                         "command-timeout", 0u,
                         NULL);
}

/* The SET before GET: of every caller's key with --cluster. */
static gboolean
command_once (BenchTest *test, gpointer pool, char **error)
{
  guint n = opt_cluster ? (guint) opt.callers : 1;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(RedisReply) reply = NULL;
      CallerCommand command;

      caller_command_init (&command, test, i);
      reply = redis_client_command_sync (REDIS_CLIENT (pool), command.argv, NULL, &local_error);
      caller_command_clear (&command);
      if (reply == NULL)
        {
          *error = g_strdup (local_error->message);
          return FALSE;
        }
    }
  return TRUE;
}

int
main (int argc, char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) pool = NULL;
  g_autofree char *setup = NULL;
  int status;
  gboolean ok;

  status = bench_options_parse (&opt, &program, &argc, &argv);
  if (status >= 0)
    return status;
  if (!bench_options_select_tests (&opt))
    return 2;

  pool = opt_cluster ? G_OBJECT (make_cluster_pool (&error)) : G_OBJECT (make_pool (&error));
  if (pool == NULL)
    {
      g_printerr ("redispool-benchmark: cannot connect: %s\n", error->message);
      return 1;
    }

  setup = g_strdup_printf ("%d %s callers, pool of %d connections%s, pipeline %d, %d bytes payload",
                           opt.callers, opt.sync ? "sync (threads)" : "async", opt.pool_size,
                           opt_cluster ? " per cluster node" : "", opt.pipeline, opt.data_size);
  ok = bench_run_tests (&opt, setup, opt.sync ? run_sync : run_async, command_once, pool);

  redis_client_close_sync (REDIS_CLIENT (pool), NULL, NULL);
  g_free (opt_uri);
  bench_options_clear (&opt);
  return ok ? 0 : 1;
}
