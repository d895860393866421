/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* bench-common: options, workloads, timing and report shared by
 * redispool-benchmark and hiredis-glib-bench (see bench-common.h). */

#include "bench-common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* ------------------------------------------------------------ options */

static void
test_init (BenchTest *test, BenchTestId id, const char *name, const char *const *argv)
{
  test->id = id;
  test->name = name;
  test->argc = 0;
  for (; argv[test->argc] != NULL; test->argc++)
    {
      test->argv[test->argc] = argv[test->argc];
      test->argvlen[test->argc] = strlen (argv[test->argc]);
    }
  test->argv[test->argc] = NULL;
  test->argvlen[test->argc] = 0;
}

/* Returns: -1 when the program goes on; otherwise what main() returns: 0
 * after --help, 2 after a bad option (the message is printed). */
int
bench_options_parse (BenchOptions *opts, const BenchProgram *program, int *argc, char ***argv)
{
  GOptionEntry server_entries[] = {
    { "host", 'h', 0, G_OPTION_ARG_STRING, &opts->host, "Server hostname (default 127.0.0.1)", "HOST" },
    { "port", 'p', 0, G_OPTION_ARG_INT, &opts->port, "Server port (default 6379)", "PORT" },
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &opts->socket, "Server unix socket (overrides host and port)", "SOCKET" },
    { "password", 'a', 0, G_OPTION_ARG_STRING, &opts->password, "Password for AUTH", "PASSWORD" },
    { NULL }
  };
  GOptionEntry load_entries[] = {
    { "callers", 'c', 0, G_OPTION_ARG_INT, &opts->callers, "Number of concurrent callers (default 50)", "CALLERS" },
    { "pool-size", 0, 0, G_OPTION_ARG_INT, &opts->pool_size, program->pool_size_help, "N" },
    { "requests", 'n', 0, G_OPTION_ARG_INT, &opts->requests, "Total number of commands per test (default 100000)", "REQUESTS" },
    { "pipeline", 'P', 0, G_OPTION_ARG_INT, &opts->pipeline, "Commands per pipeline (default 1: no pipelining)", "PIPELINE" },
    { "data-size", 'd', 0, G_OPTION_ARG_INT, &opts->data_size, "Value size in bytes for SET/GET/LPUSH (default 3)", "VALUE_SIZE" },
    { "tests", 't', 0, G_OPTION_ARG_STRING, &opts->tests, "Comma-separated tests to run: ping,set,get,incr,lpush (default all)", "TESTS" },
    { NULL }
  };
  GOptionEntry mode_entries[] = {
    { "sync", 0, 0, G_OPTION_ARG_NONE, &opts->sync, program->sync_help, NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opts->quiet, "Quiet: one line per test plus its RESULT line", NULL },
    { "no-latency", 0, 0, G_OPTION_ARG_NONE, &opts->no_latency, "Do not time each request (for tools/bench-cost.sh)", NULL },
    { "help", 0, 0, G_OPTION_ARG_NONE, &opts->help, "Show help options", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;

  opts->program = program;
  opts->port = 6379;
  opts->callers = 50;
  opts->requests = 100000;
  opts->pipeline = 1;
  opts->data_size = 3;

  context = g_option_context_new (program->summary);
  /* -h is the host, as in redis-benchmark; --help stays. */
  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, server_entries, NULL);
  if (program->server_entries != NULL)
    g_option_context_add_main_entries (context, program->server_entries, NULL);
  g_option_context_add_main_entries (context, load_entries, NULL);
  if (program->test_entries != NULL)
    g_option_context_add_main_entries (context, program->test_entries, NULL);
  g_option_context_add_main_entries (context, mode_entries, NULL);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr ("%s: %s\n", program->name, error->message);
      return 2;
    }
  if (opts->help)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      g_print ("%s", help);
      return 0;
    }
  if (opts->callers < 1 || opts->requests < 1 || opts->pipeline < 1 || opts->data_size < 0 ||
      opts->pool_size < 0 || opts->port < 1 || opts->port > 65535)
    {
      g_printerr ("%s: invalid option value\n", program->name);
      return 2;
    }
  if (opts->pool_size == 0)
    opts->pool_size = MIN (opts->callers, 5);

  opts->value = g_malloc (opts->data_size + 1);
  memset (opts->value, 'x', opts->data_size);
  opts->value[opts->data_size] = '\0';

  test_init (&opts->all_tests[BENCH_TEST_PING], BENCH_TEST_PING, "ping",
             (const char *[]) { "PING", NULL });
  test_init (&opts->all_tests[BENCH_TEST_SET], BENCH_TEST_SET, "set",
             (const char *[]) { "SET", "key:__rand_int__", opts->value, NULL });
  test_init (&opts->all_tests[BENCH_TEST_GET], BENCH_TEST_GET, "get",
             (const char *[]) { "GET", "key:__rand_int__", NULL });
  test_init (&opts->all_tests[BENCH_TEST_INCR], BENCH_TEST_INCR, "incr",
             (const char *[]) { "INCR", "counter:__rand_int__", NULL });
  test_init (&opts->all_tests[BENCH_TEST_LPUSH], BENCH_TEST_LPUSH, "lpush",
             (const char *[]) { "LPUSH", "mylist", opts->value, NULL });
  return -1;
}

/* The tests named by --tests (default all), in that order, into
 * opts->selected. FALSE, with the message printed, if one is unknown. */
gboolean
bench_options_select_tests (BenchOptions *opts)
{
  g_auto(GStrv) names = g_strsplit (opts->tests ? opts->tests : "ping,set,get,incr,lpush", ",", -1);

  opts->selected = g_ptr_array_new ();
  for (guint i = 0; names[i] != NULL; i++)
    {
      gboolean known = FALSE;

      g_strstrip (names[i]);
      for (guint j = 0; j < BENCH_N_TESTS; j++)
        if (g_ascii_strcasecmp (names[i], opts->all_tests[j].name) == 0)
          {
            g_ptr_array_add (opts->selected, &opts->all_tests[j]);
            known = TRUE;
          }
      if (!known && names[i][0] != '\0')
        {
          g_printerr ("%s: unknown test '%s' (known: ping,set,get,incr,lpush)\n",
                      opts->program->name, names[i]);
          return FALSE;
        }
    }
  return TRUE;
}

void
bench_options_clear (BenchOptions *opts)
{
  g_clear_pointer (&opts->host, g_free);
  g_clear_pointer (&opts->socket, g_free);
  g_clear_pointer (&opts->password, g_free);
  g_clear_pointer (&opts->tests, g_free);
  g_clear_pointer (&opts->value, g_free);
  g_clear_pointer (&opts->selected, g_ptr_array_unref);
}

/* ------------------------------------------------------------ samples */

void
bench_samples_init (BenchSamples *s, gsize cap)
{
  s->cap = MAX (cap, 16);
  s->len = 0;
  s->values = g_new (guint32, s->cap);
}

void
bench_samples_merge (BenchSamples *into, BenchSamples *from)
{
  for (gsize i = 0; i < from->len; i++)
    bench_samples_add (into, from->values[i]);
}

static int
cmp_u32 (const void *a, const void *b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;
  return x < y ? -1 : x > y;
}

static double
samples_percentile_us (BenchSamples *sorted, double p)
{
  gsize idx;

  if (sorted->len == 0)
    return 0;
  idx = (gsize) (p / 100.0 * (double) sorted->len);
  if (idx >= sorted->len)
    idx = sorted->len - 1;
  return sorted->values[idx] / 1000.0;
}

/* Client CPU time, user + system, of every thread. */
static gint64
cpu_us (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (gint64) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
         ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* --------------------------------------------------------------- runs */

/* Keeps the first failure; takes @error. */
void
bench_run_fail (BenchRun *run, char *error)
{
  if (run->error == NULL)
    run->error = error;
  else
    g_free (error);
}

/* Runs @test with @func, then prints its report: a paragraph (one line with
 * -q) whose second line, under the counts, is @setup, and the RESULT line.
 * Returns FALSE, with the error printed, if the run failed. */
static gboolean
run_test (const BenchOptions *opts, BenchTest *test, const char *setup,
          BenchRunFunc func, gpointer user_data)
{
  BenchRun run = { 0 };
  gint64 t0, t1, c0, c1;
  double secs, ops, cpu_per_op;
  double p50, p99, pmax;
  g_autofree char *upper = g_ascii_strup (test->name, -1);

  run.opts = opts;
  run.test = test;
  run.user_data = user_data;
  run.total = (guint64) opts->requests;
  bench_samples_init (&run.samples, run.total / (guint64) opts->pipeline + 16);

  c0 = cpu_us ();
  t0 = bench_now_ns ();
  if (!opts->sync)
    {
      run.loop = g_main_loop_new (NULL, FALSE);
      run.n_active = opts->callers;
    }
  func (&run);
  g_clear_pointer (&run.loop, g_main_loop_unref);
  t1 = bench_now_ns ();
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

  if (opts->quiet)
    {
      g_print ("%s: %.2f requests per second, p50=%.1f us, p99=%.1f us, max=%.1f us, cpu=%.2f us/op\n",
               upper, ops, p50, p99, pmax, cpu_per_op);
    }
  else
    {
      g_print ("====== %s ======\n", upper);
      g_print ("  %" G_GUINT64_FORMAT " requests completed in %.2f seconds\n", run.completed, secs);
      g_print ("  %s\n", setup);
      g_print ("  latency (us, per %s): p50=%.1f p99=%.1f max=%.1f\n",
               opts->pipeline > 1 ? "pipeline" : "request", p50, p99, pmax);
      g_print ("  client CPU: %.2f us/op\n", cpu_per_op);
      g_print ("  throughput: %.2f requests per second\n\n", ops);
    }
  g_print ("RESULT test=%s ops=%.2f p50_us=%.1f p99_us=%.1f max_us=%.1f cpu_us_per_op=%.3f\n",
           test->name, ops, p50, p99, pmax, cpu_per_op);

  g_free (run.samples.values);
  return TRUE;
}

/* Runs the selected tests in order until one fails. Before GET, the SET test's
 * command is sent once with @once, outside the timed part. Returns FALSE
 * after a failure (printed). */
gboolean
bench_run_tests (BenchOptions *opts, const char *setup,
                 BenchRunFunc func, BenchOnceFunc once, gpointer user_data)
{
  for (guint i = 0; i < opts->selected->len; i++)
    {
      BenchTest *test = g_ptr_array_index (opts->selected, i);

      if (test->id == BENCH_TEST_GET)
        {
          g_autofree char *error = NULL;

          if (!once (&opts->all_tests[BENCH_TEST_SET], user_data, &error))
            {
              g_printerr ("%s: SET before GET: %s\n", opts->program->name, error);
              return FALSE;
            }
        }
      if (!run_test (opts, test, setup, func, user_data))
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------ callers on the main loop */

void
bench_caller_stop (BenchRun *run)
{
  if (--run->n_active == 0)
    g_main_loop_quit (run->loop);
}

void
bench_run_loop (BenchRun *run)
{
  if (run->n_active > 0)
    g_main_loop_run (run->loop);
}

/* ------------------------------------------------- callers on threads */

static gpointer
worker_thread (gpointer data)
{
  BenchWorker *w = data;

  w->func (w);
  if (w->error != NULL)
    g_atomic_int_set (&w->run->failed, 1);
  return NULL;
}

gboolean
bench_worker_next (BenchWorker *w)
{
  BenchRun *run = w->run;
  gint64 before;

  if (w->error != NULL || g_atomic_int_get (&run->failed))
    return FALSE;
  before = __atomic_fetch_add (&run->claimed, (gint64) run->opts->pipeline, __ATOMIC_RELAXED);
  if ((guint64) before >= run->total)
    return FALSE;
  w->started = run->opts->no_latency ? 0 : bench_now_ns ();
  return TRUE;
}

/* Runs opts->callers threads of @func, then gathers what they measured. */
void
bench_run_threads (BenchRun *run, BenchWorkerFunc func)
{
  guint n = (guint) run->opts->callers;
  BenchWorker *workers = g_new0 (BenchWorker, n);
  GThread **threads = g_new0 (GThread *, n);

  run->claimed = 0;
  run->failed = 0;
  for (guint i = 0; i < n; i++)
    {
      workers[i].run = run;
      workers[i].index = i;
      workers[i].func = func;
      bench_samples_init (&workers[i].samples, run->total / n / (guint64) run->opts->pipeline + 16);
      threads[i] = g_thread_new ("bench-caller", worker_thread, &workers[i]);
    }
  for (guint i = 0; i < n; i++)
    {
      g_thread_join (threads[i]);
      bench_samples_merge (&run->samples, &workers[i].samples);
      g_free (workers[i].samples.values);
      run->completed += workers[i].completed;
      if (workers[i].error != NULL)
        bench_run_fail (run, workers[i].error);
    }
  run->issued = run->completed;
  g_free (threads);
  g_free (workers);
}

/* -------------------------------------------------------- subscribers */

int
bench_sub_parse (BenchSub *sub, const char *summary, int *argc, char ***argv)
{
  GOptionEntry entries[] = {
    { "host", 'h', 0, G_OPTION_ARG_STRING, &sub->host, "Server (127.0.0.1)", "HOST" },
    { "port", 'p', 0, G_OPTION_ARG_INT, &sub->port, "Port (6379)", "PORT" },
    { "channel", 'c', 0, G_OPTION_ARG_STRING, &sub->channel, "Channel (ch)", "NAME" },
    { "requests", 'n', 0, G_OPTION_ARG_INT64, &sub->requests, "Messages to wait for (0: until idle)", "N" },
    { "idle-ms", 0, 0, G_OPTION_ARG_INT, &sub->idle_ms, "End after this long without a message (1000)", "MS" },
    { NULL }
  };
  GOptionContext *options = g_option_context_new (summary);
  GError *error = NULL;

  memset (sub, 0, sizeof *sub);
  sub->port = 6379;
  sub->idle_ms = 1000;
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, argc, argv, &error))
    {
      g_printerr ("%s\n", error->message);
      g_error_free (error);
      g_option_context_free (options);
      return 2;
    }
  g_option_context_free (options);
  if (sub->host == NULL)
    sub->host = g_strdup ("127.0.0.1");
  if (sub->channel == NULL)
    sub->channel = g_strdup ("ch");
  sub->loop = g_main_loop_new (NULL, FALSE);
  sub->expected = sub->requests > 0 ? (guint64) sub->requests : G_MAXUINT64;
  return -1;
}

/* The subscription is confirmed: CPU accounting starts, READY is printed. */
void
bench_sub_ready (BenchSub *sub)
{
  sub->ready = TRUE;
  sub->cpu0_us = cpu_us ();
  sub->ready_us = g_get_monotonic_time ();
  g_print ("READY\n");
  fflush (stdout);
}

void
bench_sub_delivered (BenchSub *sub)
{
  sub->last_us = g_get_monotonic_time ();
  if (sub->delivered++ == 0)
    sub->first_us = sub->last_us;
  if (sub->delivered == sub->expected)
    g_main_loop_quit (sub->loop);
}

static gboolean
sub_idle_check_cb (gpointer user_data)
{
  BenchSub *sub = user_data;
  gint64 now = g_get_monotonic_time ();

  if (sub->ready && (sub->delivered > 0 ? now - sub->last_us > sub->idle_ms * G_GINT64_CONSTANT (1000)
                                        : now - sub->ready_us > 60 * G_USEC_PER_SEC))
    g_main_loop_quit (sub->loop);
  return G_SOURCE_CONTINUE;
}

void
bench_sub_run (BenchSub *sub)
{
  guint idle_id = g_timeout_add (50, sub_idle_check_cb, sub);

  g_main_loop_run (sub->loop);
  sub->cpu1_us = cpu_us ();
  g_source_remove (idle_id);
}

void
bench_sub_report (BenchSub *sub, guint64 dropped, guint cut)
{
  double span = (sub->last_us - sub->first_us) / 1e6;

  g_print ("RESULT delivered=%" G_GUINT64_FORMAT " msgs_per_s=%.0f cpu_us_per_msg=%.3f"
           " dropped=%" G_GUINT64_FORMAT " cut=%u\n",
           sub->delivered, span > 0 ? (sub->delivered - 1) / span : 0.0,
           sub->delivered > 0 ? (double) (sub->cpu1_us - sub->cpu0_us) / sub->delivered : 0.0,
           dropped, cut);
}

void
bench_sub_clear (BenchSub *sub)
{
  g_clear_pointer (&sub->loop, g_main_loop_unref);
  g_clear_pointer (&sub->host, g_free);
  g_clear_pointer (&sub->channel, g_free);
}
