/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* bench-common: what redispool-benchmark and hiredis-glib-bench share, so that
 * both take the same options, run the same workloads and print the same
 * report (and, at the end, what the pub/sub pair redispool-sub-bench and
 * hiredis-glib-sub share). GLib only: how a program connects and issues its requests stays in
 * the program.
 *
 * A program parses its options with bench_options_parse(), picks the tests
 * with bench_options_select_tests(), connects, and runs them with
 * bench_run_tests(), which times each one, measures the client's CPU and
 * prints the report:
 *
 *   RESULT test=get ops=81234.56 p50_us=30.1 p99_us=52.0 max_us=410.3 cpu_us_per_op=6.12
 *
 * The program's run function either keeps callers on the main loop
 * (bench_caller_stop(), bench_run_loop()) or starts blocking callers on
 * threads (bench_run_threads(), bench_worker_next(), bench_worker_record()). */

#pragma once

#include <glib.h>

#include <time.h>

G_BEGIN_DECLS

/* ------------------------------------------------------------ options */

/* What sets one program's options apart from the other's. */
typedef struct
{
  const char *name;                    /* prefix of error messages */
  const char *summary;                 /* for g_option_context_new() */
  const char *pool_size_help;
  const char *sync_help;
  const GOptionEntry *server_entries;  /* listed after --password; NULL-terminated, or NULL */
  const GOptionEntry *test_entries;    /* listed after --tests; NULL-terminated, or NULL */
} BenchProgram;

typedef enum
{
  BENCH_TEST_PING,
  BENCH_TEST_SET,
  BENCH_TEST_GET,
  BENCH_TEST_INCR,
  BENCH_TEST_LPUSH,
  BENCH_N_TESTS
} BenchTestId;

/* One workload: a command sent again and again. Keys follow redis-benchmark
 * without -r: "key:__rand_int__" for GET/SET, "counter:__rand_int__" for INCR
 * and "mylist" for LPUSH. */
typedef struct
{
  BenchTestId id;
  const char *name;     /* "get" */
  int argc;
  const char *argv[4];  /* NULL-terminated */
  size_t argvlen[4];
} BenchTest;

typedef struct
{
  const BenchProgram *program;

  char *host;
  int port;
  char *socket;
  char *password;
  int callers;
  int pool_size;        /* min(callers, 5) when not given */
  int requests;
  int pipeline;
  int data_size;
  char *tests;
  gboolean sync;
  gboolean quiet;
  gboolean help;
  gboolean no_latency;

  char *value;          /* data_size bytes of 'x' */
  BenchTest all_tests[BENCH_N_TESTS];
  GPtrArray *selected;  /* of BenchTest *, by bench_options_select_tests() */
} BenchOptions;

/* bench_options_parse() returns -1 when the program goes on, otherwise the
 * status main() returns: 0 after --help, 2 after a bad option (printed).
 * bench_options_select_tests() fills opts->selected from --tests; FALSE,
 * printed, for an unknown name. */
int      bench_options_parse        (BenchOptions        *opts,
                                     const BenchProgram  *program,
                                     int                 *argc,
                                     char              ***argv);
gboolean bench_options_select_tests (BenchOptions        *opts);
void     bench_options_clear        (BenchOptions        *opts);

/* ------------------------------------------------------------ samples */

/* Latencies are kept in nanoseconds; guint32 caps one at ~4.3 s. */
typedef struct
{
  guint32 *values;
  gsize len;
  gsize cap;
} BenchSamples;

void bench_samples_init  (BenchSamples *s,
                          gsize         cap);
void bench_samples_merge (BenchSamples *into,
                          BenchSamples *from);

static inline void
bench_samples_add (BenchSamples *s, gint64 ns)
{
  if (G_UNLIKELY (s->len == s->cap))
    {
      s->cap *= 2;
      s->values = g_renew (guint32, s->values, s->cap);
    }
  s->values[s->len++] = ns > G_MAXUINT32 ? G_MAXUINT32 : (guint32) MAX (ns, 0);
}

static inline gint64
bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* --------------------------------------------------------------- runs */

/* One test being run. */
typedef struct
{
  const BenchOptions *opts;
  BenchTest *test;
  gpointer user_data;   /* given to bench_run_tests() */
  BenchSamples samples; /* per request; per pipeline with -P > 1 */
  guint64 issued;       /* commands sent */
  guint64 completed;    /* commands answered */
  guint64 total;        /* commands to send */
  char *error;          /* the first failure */

  /* callers on the main loop */
  guint n_active;       /* callers still running */
  GMainLoop *loop;

  /* callers on threads (atomic) */
  gint64 claimed;
  gint failed;
} BenchRun;

/* Issues the test's commands and waits for the answers: fills run->samples
 * and run->completed, or sets run->error. */
typedef void (*BenchRunFunc) (BenchRun *run);

/* Sends @test's command once, outside the timed part; FALSE with a message
 * in @error if it failed. */
typedef gboolean (*BenchOnceFunc) (BenchTest  *test,
                                   gpointer    user_data,
                                   char      **error);

gboolean bench_run_tests (BenchOptions  *opts,
                          const char    *setup,
                          BenchRunFunc   func,
                          BenchOnceFunc  once,
                          gpointer       user_data);
void     bench_run_fail  (BenchRun      *run,
                          char          *error);

/* Callers on the main loop: opts->callers of them; each calls
 * bench_caller_stop() once when it is done, and bench_run_loop() iterates the
 * main loop until all are. */
void bench_caller_stop (BenchRun *run);
void bench_run_loop    (BenchRun *run);

/* Blocking callers: one thread each, which take turns with
 * bench_worker_next() until it returns FALSE; a turn is one request, or one
 * pipeline of opts->pipeline commands, and ends with bench_worker_record(). */
typedef struct _BenchWorker BenchWorker;
typedef void (*BenchWorkerFunc) (BenchWorker *worker);

struct _BenchWorker
{
  BenchRun *run;
  guint index;          /* 0 .. opts->callers - 1 */
  BenchSamples samples;
  guint64 completed;    /* commands answered */
  char *error;          /* set to stop every worker */
  gint64 started;
  BenchWorkerFunc func;
};

void     bench_run_threads   (BenchRun        *run,
                              BenchWorkerFunc  func);
gboolean bench_worker_next   (BenchWorker     *worker);

static inline void
bench_worker_record (BenchWorker *worker)
{
  if (!worker->run->opts->no_latency)
    bench_samples_add (&worker->samples, bench_now_ns () - worker->started);
}

/* -------------------------------------------------------- subscribers */

/* What redispool-sub-bench and hiredis-glib-sub share: the options (-h, -p,
 * -c, -n, --idle-ms), the count of delivered messages, the end of the run
 * and the lines they print:
 *
 *   READY                       once the server has confirmed SUBSCRIBE
 *   RESULT delivered=N msgs_per_s=R cpu_us_per_msg=C dropped=D cut=L
 *
 * A program parses with bench_sub_parse(), subscribes, calls
 * bench_sub_ready() once the subscription is confirmed and
 * bench_sub_delivered() for each message, runs bench_sub_run() and prints
 * with bench_sub_report(). The run ends when -n messages have arrived, or
 * when none has come for --idle-ms after the first one (or for 60 s before
 * it), or when the program quits sub->loop. */
typedef struct
{
  /* options */
  char      *host;       /* "127.0.0.1" when not given */
  int        port;
  char      *channel;    /* "ch" when not given */
  gint64     requests;
  int        idle_ms;

  GMainLoop *loop;
  guint64    expected;   /* -n, or G_MAXUINT64 */
  guint64    delivered;
  gint64     first_us;   /* monotonic */
  gint64     last_us;
  gint64     ready_us;
  gint64     cpu0_us;    /* process CPU time at READY */
  gint64     cpu1_us;    /* and at the end */
  gboolean   ready;
} BenchSub;

/* Returns -1 when the program goes on, otherwise the status main()
 * returns (2 after a bad option, printed). */
int  bench_sub_parse     (BenchSub    *sub,
                          const char  *summary,
                          int         *argc,
                          char      ***argv);
void bench_sub_ready     (BenchSub    *sub);
void bench_sub_delivered (BenchSub    *sub);
void bench_sub_run       (BenchSub    *sub);
void bench_sub_report    (BenchSub    *sub,
                          guint64      dropped,
                          guint        cut);
void bench_sub_clear     (BenchSub    *sub);

G_END_DECLS
