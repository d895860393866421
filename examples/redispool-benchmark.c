/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* redispool-benchmark: a redis-benchmark-style load generator for redispool.
 *
 *   redispool-benchmark [-h HOST] [-p PORT] [-s SOCKET] [-a PASSWORD] [--uri URI]
 *                       [-c CALLERS] [--pool-size N] [-n REQUESTS] [-P PIPELINE]
 *                       [-d VALUE_SIZE] [-t get,set,ping,incr,lpush] [--sync] [-q]
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
 * the key is SET once to a value of VALUE_SIZE bytes. */

#include <redispool.h>

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* options */
static char *opt_host = NULL;
static int opt_port = 6379;
static char *opt_socket = NULL;
static char *opt_password = NULL;
static char *opt_uri = NULL;
static int opt_callers = 50;
static int opt_pool_size = 0;
static int opt_requests = 100000;
static int opt_pipeline = 1;
static int opt_data_size = 3;
static char *opt_tests = NULL;
static gboolean opt_sync = FALSE;
static gboolean opt_quiet = FALSE;
static gboolean opt_help = FALSE;
static gboolean opt_no_latency = FALSE;

static GOptionEntry entries[] = {
  { "host", 'h', 0, G_OPTION_ARG_STRING, &opt_host, "Server hostname (default 127.0.0.1)", "HOST" },
  { "port", 'p', 0, G_OPTION_ARG_INT, &opt_port, "Server port (default 6379)", "PORT" },
  { "socket", 's', 0, G_OPTION_ARG_FILENAME, &opt_socket, "Server unix socket (overrides host and port)", "SOCKET" },
  { "password", 'a', 0, G_OPTION_ARG_STRING, &opt_password, "Password for AUTH", "PASSWORD" },
  { "uri", 0, 0, G_OPTION_ARG_STRING, &opt_uri, "Server URI (overrides -h/-p/-s/-a)", "URI" },
  { "callers", 'c', 0, G_OPTION_ARG_INT, &opt_callers, "Number of concurrent callers (default 50)", "CALLERS" },
  { "pool-size", 0, 0, G_OPTION_ARG_INT, &opt_pool_size, "Connections in the pool (default min(CALLERS, 5))", "N" },
  { "requests", 'n', 0, G_OPTION_ARG_INT, &opt_requests, "Total number of commands per test (default 100000)", "REQUESTS" },
  { "pipeline", 'P', 0, G_OPTION_ARG_INT, &opt_pipeline, "Commands per pipeline (default 1: no pipelining)", "PIPELINE" },
  { "data-size", 'd', 0, G_OPTION_ARG_INT, &opt_data_size, "Value size in bytes for SET/GET/LPUSH (default 3)", "VALUE_SIZE" },
  { "tests", 't', 0, G_OPTION_ARG_STRING, &opt_tests, "Comma-separated tests to run: ping,set,get,incr,lpush (default all)", "TESTS" },
  { "sync", 0, 0, G_OPTION_ARG_NONE, &opt_sync, "Blocking calls from CALLERS threads instead of async callers", NULL },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "Quiet: one line per test plus its RESULT line", NULL },
  { "no-latency", 0, 0, G_OPTION_ARG_NONE, &opt_no_latency, "Do not time each request (for tools/bench-cost.sh)", NULL },
  { "help", 0, 0, G_OPTION_ARG_NONE, &opt_help, "Show help options", NULL },
  { NULL }
};

typedef struct
{
  const char *name;
  const char *argv[4];
} Test;

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

/* ---------------------------------------------------------------- async */

typedef struct _Run Run;

typedef struct
{
  Run *run;
  RedisBatch *batch; /* NULL without pipelining */
  gint64 started;
} Caller;

struct _Run
{
  RedisClient *client;
  const Test *test;
  Samples samples;
  guint64 issued;    /* commands sent */
  guint64 completed; /* commands answered */
  guint64 total;
  guint n_active;    /* callers still running */
  GError *error;
  GMainLoop *loop;
};

static void caller_issue (Caller *caller);

static void
caller_stop (Caller *caller)
{
  Run *run = caller->run;

  if (--run->n_active == 0)
    g_main_loop_quit (run->loop);
}

static void
command_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Caller *caller = user_data;
  Run *run = caller->run;
  GError *error = NULL;
  RedisReply *reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  if (!opt_no_latency)
    samples_add (&run->samples, now_ns () - caller->started);
  if (reply == NULL)
    {
      if (run->error == NULL)
        run->error = error;
      else
        g_error_free (error);
      caller_stop (caller);
      return;
    }
  redis_reply_unref (reply);
  run->completed++;
  caller_issue (caller);
}

static void
pipeline_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Caller *caller = user_data;
  Run *run = caller->run;
  GError *error = NULL;
  GPtrArray *replies = redis_client_pipeline_finish (REDIS_CLIENT (source), result, &error);

  if (!opt_no_latency)
    samples_add (&run->samples, now_ns () - caller->started);
  if (replies == NULL)
    {
      if (run->error == NULL)
        run->error = error;
      else
        g_error_free (error);
      caller_stop (caller);
      return;
    }
  run->completed += replies->len;
  g_ptr_array_unref (replies);
  caller_issue (caller);
}

static void
caller_issue (Caller *caller)
{
  Run *run = caller->run;

  if (run->error != NULL || run->issued >= run->total)
    {
      caller_stop (caller);
      return;
    }
  if (!opt_no_latency)
    caller->started = now_ns ();
  if (caller->batch != NULL)
    {
      run->issued += (guint64) opt_pipeline;
      redis_client_pipeline_async (run->client, caller->batch, NULL, pipeline_done, caller);
    }
  else
    {
      run->issued++;
      redis_client_command_async (run->client, run->test->argv, NULL, command_done, caller);
    }
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
      if (opt_pipeline > 1)
        {
          callers[i].batch = redis_batch_new ();
          for (int j = 0; j < opt_pipeline; j++)
            redis_batch_add (callers[i].batch, run->test->argv);
        }
    }
  for (int i = 0; i < opt_callers; i++)
    caller_issue (&callers[i]);
  if (run->n_active > 0)
    g_main_loop_run (run->loop);
  for (int i = 0; i < opt_callers; i++)
    g_clear_object (&callers[i].batch);
  g_free (callers);
  g_main_loop_unref (run->loop);
}

/* ----------------------------------------------------------------- sync */

typedef struct
{
  Run *run;
  Samples samples;
  guint64 completed;
  GError *error;
} Worker;

static gint64 sync_issued; /* atomic */
static gint sync_failed;   /* atomic */

static gpointer
worker_main (gpointer data)
{
  Worker *w = data;
  Run *run = w->run;
  RedisBatch *batch = NULL;
  gint64 step = opt_pipeline > 1 ? opt_pipeline : 1;

  if (opt_pipeline > 1)
    {
      batch = redis_batch_new ();
      for (int j = 0; j < opt_pipeline; j++)
        redis_batch_add (batch, run->test->argv);
    }

  while (!g_atomic_int_get (&sync_failed))
    {
      gint64 started;
      gint64 before = __atomic_fetch_add (&sync_issued, step, __ATOMIC_RELAXED);

      if ((guint64) before >= run->total)
        break;

      started = opt_no_latency ? 0 : now_ns ();
      if (batch != NULL)
        {
          GPtrArray *replies = redis_client_pipeline_sync (run->client, batch, NULL, &w->error);
          if (replies == NULL)
            break;
          w->completed += replies->len;
          g_ptr_array_unref (replies);
        }
      else
        {
          RedisReply *reply = redis_client_command_sync (run->client, run->test->argv, NULL, &w->error);
          if (reply == NULL)
            break;
          w->completed++;
          redis_reply_unref (reply);
        }
      if (!opt_no_latency)
        samples_add (&w->samples, now_ns () - started);
    }
  if (w->error != NULL)
    g_atomic_int_set (&sync_failed, 1);
  g_clear_object (&batch);
  return NULL;
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
            g_error_free (workers[i].error);
        }
    }
  run->issued = run->completed;
  g_free (threads);
  g_free (workers);
}

/* ----------------------------------------------------------------- main */

static RedisPool *
make_pool (GError **error)
{
  if (opt_uri != NULL)
    {
      g_autoptr(GString) uri = g_string_new (opt_uri);
      gboolean has_query = strchr (opt_uri, '?') != NULL;

      if (strstr (opt_uri, "pool_size=") == NULL)
        {
          g_string_append_printf (uri, "%spool_size=%d", has_query ? "&" : "?", opt_pool_size);
          has_query = TRUE;
        }
      if (strstr (opt_uri, "command_timeout=") == NULL)
        g_string_append_printf (uri, "%scommand_timeout=0", has_query ? "&" : "?");
      return redis_pool_new_sync (uri->str, NULL, error);
    }
  if (opt_socket != NULL)
    return g_initable_new (REDIS_TYPE_POOL, NULL, error,
                           "socket-path", opt_socket,
                           "password", opt_password,
                           "pool-size", (guint) opt_pool_size,
                           "command-timeout", 0u,
                           NULL);
  return g_initable_new (REDIS_TYPE_POOL, NULL, error,
                         "host", opt_host ? opt_host : "127.0.0.1",
                         "port", (guint) opt_port,
                         "password", opt_password,
                         "pool-size", (guint) opt_pool_size,
                         "command-timeout", 0u,
                         NULL);
}

static gboolean
run_test (RedisClient *client, const Test *test)
{
  Run run = { 0 };
  gint64 t0, t1, c0, c1;
  double secs, ops, cpu_per_op;
  double p50, p99, pmax;
  g_autofree char *upper = g_ascii_strup (test->name, -1);

  run.client = client;
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
      g_printerr ("%s: %s\n", upper, run.error->message);
      g_error_free (run.error);
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
      g_print ("  %d %s callers, pool of %d connections, pipeline %d, %d bytes payload\n",
               opt_callers, opt_sync ? "sync (threads)" : "async", opt_pool_size,
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

int
main (int argc, char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisPool) pool = NULL;
  g_auto(GStrv) names = NULL;
  g_autofree char *value = NULL;
  gboolean ok = TRUE;

  context = g_option_context_new ("- load generator for redispool, modelled on redis-benchmark");
  /* -h is the host, as in redis-benchmark; --help stays. */
  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("redispool-benchmark: %s\n", error->message);
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
      g_printerr ("redispool-benchmark: invalid option value\n");
      return 2;
    }
  if (opt_pool_size == 0)
    opt_pool_size = MIN (opt_callers, 5);

  value = g_malloc (opt_data_size + 1);
  memset (value, 'x', opt_data_size);
  value[opt_data_size] = '\0';

  {
    const Test tests[] = {
      { "ping", { "PING", NULL } },
      { "set", { "SET", "key:__rand_int__", value, NULL } },
      { "get", { "GET", "key:__rand_int__", NULL } },
      { "incr", { "INCR", "counter:__rand_int__", NULL } },
      { "lpush", { "LPUSH", "mylist", value, NULL } },
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
            g_printerr ("redispool-benchmark: unknown test '%s' (known: ping,set,get,incr,lpush)\n", names[i]);
            return 2;
          }
      }

    pool = make_pool (&error);
    if (pool == NULL)
      {
        g_printerr ("redispool-benchmark: cannot connect: %s\n", error->message);
        return 1;
      }

    for (guint i = 0; names[i] != NULL && ok; i++)
      for (guint j = 0; j < G_N_ELEMENTS (tests); j++)
        {
          if (g_ascii_strcasecmp (names[i], tests[j].name) != 0)
            continue;
          if (g_str_equal (tests[j].name, "get"))
            {
              const char *set_argv[] = { "SET", "key:__rand_int__", value, NULL };
              g_autoptr(RedisReply) reply =
                redis_client_command_sync (REDIS_CLIENT (pool), set_argv, NULL, &error);
              if (reply == NULL)
                {
                  g_printerr ("redispool-benchmark: SET before GET: %s\n", error->message);
                  ok = FALSE;
                  break;
                }
            }
          ok = run_test (REDIS_CLIENT (pool), &tests[j]);
        }
  }

  redis_client_close_sync (REDIS_CLIENT (pool), NULL, NULL);
  g_free (opt_host);
  g_free (opt_socket);
  g_free (opt_password);
  g_free (opt_uri);
  g_free (opt_tests);
  return ok ? 0 : 1;
}
