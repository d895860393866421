/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * redispool-sub-bench: the subscriber side of tools/bench.sh's pub/sub row.
 * A RedisSubscriber subscribes to one channel and counts the messages its
 * "message::CHANNEL" handler receives while something else publishes
 * (redis-benchmark PUBLISH). examples/hiredis-glib-sub.c does the same
 * with plain hiredis on the GLib main loop; both take the same options and
 * print the same lines (bench-common.h):
 *
 *   READY                       once the server has confirmed SUBSCRIBE
 *   RESULT delivered=N msgs_per_s=R cpu_us_per_msg=C dropped=D cut=L
 *
 * The run ends when -n messages have arrived, or when none has come for
 * --idle-ms (default 1000) after the first one (or for 60 s before it).
 * msgs_per_s counts from the first message to the last; cpu_us_per_msg is
 * the process's CPU time (all threads, getrusage) from READY to the end,
 * per delivered message; dropped is messages-dropped (the backpressure
 * bound, max-pending-messages, was reached); cut is the number of
 * connection losses (the server's client-output-buffer-limit pubsub cuts
 * off a subscriber that falls behind; it reconnects, and what is published
 * meanwhile is lost).
 *
 *   redispool-sub-bench -p 6379 -c ch -n 100000
 */

#include <redispool.h>

#include "bench-common.h"

typedef struct
{
  BenchSub sub;
  guint    n_lost;     /* connection-lost signals */
} Counter;

static void
on_message (RedisSubscriber *subscriber,
            RedisMessage    *message,
            gpointer         user_data)
{
  Counter *c = user_data;

  bench_sub_delivered (&c->sub);
}

/* The server's client-output-buffer-limit pubsub cuts off a subscriber
 * that falls behind; the subscriber reconnects, and what was published
 * meanwhile is lost. */
static void
on_connection_lost (RedisSubscriber *subscriber,
                    const GError    *error,
                    gpointer         user_data)
{
  Counter *c = user_data;

  c->n_lost++;
  g_printerr ("redispool-sub-bench: connection lost after %" G_GUINT64_FORMAT
              " messages: %s\n", c->sub.delivered, error->message);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisSubscriber) sub = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *detailed = NULL;
  Counter c = { 0 };
  int status;

  status = bench_sub_parse (&c.sub, "- RedisSubscriber throughput", &argc, &argv);
  if (status >= 0)
    return status;
  uri = g_strdup_printf ("redis://%s:%d", c.sub.host, c.sub.port);

  sub = redis_subscriber_new_sync (uri, NULL, &error);
  if (sub == NULL)
    {
      g_printerr ("redispool-sub-bench: %s\n", error->message);
      bench_sub_clear (&c.sub);
      return 1;
    }
  detailed = g_strconcat ("message::", c.sub.channel, NULL);
  g_signal_connect (sub, detailed, G_CALLBACK (on_message), &c);
  g_signal_connect (sub, "connection-lost", G_CALLBACK (on_connection_lost), &c);
  if (!redis_subscriber_subscribe_sync (sub, (const char *[]) { c.sub.channel, NULL }, NULL, &error))
    {
      g_printerr ("redispool-sub-bench: SUBSCRIBE: %s\n", error->message);
      bench_sub_clear (&c.sub);
      return 1;
    }

  bench_sub_ready (&c.sub);
  bench_sub_run (&c.sub);
  bench_sub_report (&c.sub, redis_subscriber_get_messages_dropped (sub), c.n_lost);

  redis_subscriber_close (sub);
  bench_sub_clear (&c.sub);
  return 0;
}
