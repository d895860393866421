/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Reconnect backoff (redispool/redis-backoff.c): the bounds of the delay
 * function, and how a herd of pools that lose the server together spreads
 * its retries (attempt times recorded at the server side, by a listener
 * that accepts and closes at once). */

#include <math.h>
#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-backoff-private.h"
#include "test-helpers.h"
#include "test-listener.h"

/* ---- the delay function ------------------------------------------------- */

static void
test_delay_bounds (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  static const struct { guint initial, max; } cases[] = {
    { 1, 1 }, { 1, 10 }, { 100, 1000 }, { 500, 30000 }, { 7, 5 },
    { G_MAXUINT / 2, G_MAXUINT }, { 1000, G_MAXUINT },
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    for (guint attempts = 0; attempts < 70; attempts++)
      {
        /* backoff-max below backoff-initial counts as backoff-initial */
        guint64 ceiling = MIN ((guint64) cases[c].initial << MIN (attempts, 20u),
                               (guint64) MAX (cases[c].max, cases[c].initial));

        for (guint i = 0; i < 200; i++)
          {
            guint d = redis_backoff_delay (rand, cases[c].initial, cases[c].max, attempts);

            g_assert_cmpuint (d, >=, 1);
            g_assert_cmpuint (d, <=, MAX (ceiling, 1));
          }
      }
}

/* Full jitter: uniform over [1, ceiling]. The mean of many draws is near
 * ceiling / 2 and draws reach both ends: below the old equal-jitter floor
 * (ceiling / 2) about half the time, and near the ceiling too. */
static void
test_delay_distribution (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  const guint n = 20000;

  for (guint attempts = 0; attempts < 6; attempts++)
    {
      guint ceiling = MIN (100u << attempts, 2000u);
      double sum = 0;
      guint below_half = 0, low = 0, high = 0;

      for (guint i = 0; i < n; i++)
        {
          guint d = redis_backoff_delay (rand, 100, 2000, attempts);

          sum += d;
          below_half += d < ceiling / 2;
          low += d <= ceiling / 10;
          high += d >= ceiling - ceiling / 10;
        }
      /* Standard error of the mean: ceiling / sqrt (12 n) ≈ 0.002 ceiling. */
      g_assert_cmpfloat (fabs (sum / n - (ceiling + 1) / 2.0), <, 0.02 * ceiling);
      g_assert_cmpfloat ((double) below_half / n, >, 0.45);
      g_assert_cmpfloat ((double) below_half / n, <, 0.55);
      g_assert_cmpuint (low, >, n / 20);
      g_assert_cmpuint (high, >, n / 20);
    }
}

/* ---- a herd against a refusing listener --------------------------------- */

/* Refuser (test-listener.h): accepts each connect attempt, times it and
 * closes it at once. */

#define N_POOLS 10
/* Scaled, so that a slow run (valgrind) keeps the floors far above the
 * time an attempt takes. */
#define HERD_INITIAL_MS test_scale_ms (200)

static gboolean
all_have (Refuser *r,
          guint    n_each)
{
  for (guint i = 0; i < N_POOLS; i++)
    if (refuser_count (&r[i]) < n_each)
      return FALSE;
  return TRUE;
}

static void
mean_sd (const double *v,
         guint         n,
         double       *mean,
         double       *sd)
{
  double s = 0, ss = 0;

  for (guint i = 0; i < n; i++)
    s += v[i];
  *mean = s / n;
  for (guint i = 0; i < n; i++)
    ss += (v[i] - *mean) * (v[i] - *mean);
  *sd = sqrt (ss / (n - 1));
}

/* Ten pools of one connection started together against listeners that
 * refuse them (one listener per pool, so that each pool's attempts are
 * told apart at the server side).
 *
 * The old backoff ("equal jitter") waited base/2 + U[0, base/2]: its
 * retries could never come sooner than half the current base after the
 * previous attempt, so the herd stayed together. Full jitter waits
 * U[1, base]: each gap is under that old floor with probability 1/2. The
 * assertion counts, over the 2 × 10 gaps between the first three attempts,
 * the gaps shorter than the old floor: 0 under equal jitter whatever the
 * load (a loaded machine only makes gaps longer), Binomial(20, 1/2) under
 * full jitter, so at least 2 fails with probability 21 / 2^20 ≈ 2e-5 on
 * an idle machine. Load stretches gaps and lowers that count a little:
 * the floors are 100 and 200 ms (scaled), far above scheduling noise. The spread
 * of the third attempts (coefficient of variation) is reported. */
static void
test_herd_spread (void)
{
  Refuser refusers[N_POOLS];
  RedisPool *pools[N_POOLS];
  double third[N_POOLS], gaps[2 * N_POOLS];
  double mean, sd, lo = G_MAXDOUBLE, hi = 0;
  guint below_floor = 0;
  GString *report = g_string_new (NULL);
  gint64 t0;

  for (guint i = 0; i < N_POOLS; i++)
    refuser_start (&refusers[i]);

  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < N_POOLS; i++)
    {
      g_autoptr(GError) error = NULL;

      pools[i] = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                                 "port", (guint) refusers[i].port,
                                 "pool-size", 1,
                                 "backoff-initial", HERD_INITIAL_MS,
                                 "backoff-max", 60000,
                                 "connect-timeout", test_scale_ms (2000),
                                 "connect-mode", REDIS_POOL_CONNECT_MODE_BACKGROUND,
                                 NULL);
      g_assert_no_error (error);
    }

  /* Worst case: 200 + 400 ms of backoff (scaled). */
  WAIT_UNTIL (all_have (refusers, 3), 5000);

  for (guint i = 0; i < N_POOLS; i++)
    {
      Refuser *r = &refusers[i];
      double t1 = (refuser_time (r, 0) - t0) / 1000.0;
      double t2 = (refuser_time (r, 1) - t0) / 1000.0;
      double t3 = (refuser_time (r, 2) - t0) / 1000.0;

      third[i] = t3;
      gaps[2 * i] = t2 - t1;
      gaps[2 * i + 1] = t3 - t2;
      below_floor += gaps[2 * i] < HERD_INITIAL_MS / 2.0;
      below_floor += gaps[2 * i + 1] < HERD_INITIAL_MS;
      lo = MIN (lo, t3);
      hi = MAX (hi, t3);
      g_string_append_printf (report, " [%.0f %.0f %.0f]", t1, t2, t3);
    }
  mean_sd (third, N_POOLS, &mean, &sd);
  g_test_message ("attempt times (ms since start):%s", report->str);
  g_test_message ("third attempts: %.0f..%.0f ms (range %.0f ms), mean %.0f ms, "
                  "sd %.0f ms, coefficient of variation %.2f; gaps under the "
                  "equal-jitter floor: %u of %u",
                  lo, hi, hi - lo, mean, sd, sd / mean, below_floor, 2 * N_POOLS);
  g_string_free (report, TRUE);

  g_assert_cmpuint (below_floor, >=, 2);

  for (guint i = 0; i < N_POOLS; i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (redis_client_close_sync (REDIS_CLIENT (pools[i]), NULL, &error));
      g_assert_no_error (error);
      g_object_unref (pools[i]);
    }
  test_drain_main_context ();
  for (guint i = 0; i < N_POOLS; i++)
    refuser_stop (&refusers[i]);
}

/* The cap and one prober per slot: a pool of one connection with
 * backoff-initial 10 ms and backoff-max 60 ms against a refusing listener.
 * With the cap, gaps average 30 ms (plus the failed handshake): ~40
 * attempts in 1.5 s on an idle machine; without it the ceiling would
 * double past 640 ms and give ~8. At most one attempt at a time, each at
 * least 1 ms after the previous one failed: fewer than 1500. */
static void
test_cap (void)
{
  Refuser r;
  g_autoptr(GError) error = NULL;
  RedisPool *pool;
  guint n;
  gint64 max_gap = 0;
  gboolean done = FALSE;

  refuser_start (&r);
  pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                         "port", (guint) r.port,
                         "pool-size", 1,
                         "backoff-initial", 10,
                         "backoff-max", 60,
                         "connect-timeout", test_scale_ms (2000),
                         "connect-mode", REDIS_POOL_CONNECT_MODE_BACKGROUND,
                         NULL);
  g_assert_no_error (error);

  g_timeout_add (1500, test_set_flag_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  g_object_unref (pool);
  test_drain_main_context ();

  n = refuser_count (&r);
  for (guint i = 1; i < n; i++)
    max_gap = MAX (max_gap, refuser_time (&r, i) - refuser_time (&r, i - 1));
  g_test_message ("cap 60 ms: %u attempts in 1.5 s, longest gap %.1f ms",
                  n, max_gap / 1000.0);
  g_assert_cmpuint (n, >=, 15);
  g_assert_cmpuint (n, <, 1500);
  refuser_stop (&r);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/backoff/delay/bounds", test_delay_bounds);
  g_test_add_func ("/backoff/delay/distribution", test_delay_distribution);
  g_test_add_func ("/backoff/herd/spread", test_herd_spread);
  g_test_add_func ("/backoff/cap", test_cap);

  return g_test_run ();
}
