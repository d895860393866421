/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * redispool-sub-bench: the subscriber side of tools/bench.sh's pub/sub row.
 * A RedisSubscriber subscribes to one channel and counts the messages its
 * "message::CHANNEL" handler receives while something else publishes
 * (redis-benchmark PUBLISH). examples/hiredis-glib-sub.c does the same
 * with plain hiredis on the GLib main loop; both print the same lines:
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

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <redispool.h>

typedef struct
{
  GMainLoop *loop;
  guint64    expected;
  guint64    delivered;
  gint64     first_us;
  gint64     last_us;
  gint64     ready_us;
  guint      idle_ms;
  guint      n_lost;     /* connection-lost signals */
} Counter;

static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
on_message (RedisSubscriber *sub,
            RedisMessage    *message,
            gpointer         user_data)
{
  Counter *c = user_data;

  c->last_us = g_get_monotonic_time ();
  if (c->delivered++ == 0)
    c->first_us = c->last_us;
  if (c->delivered == c->expected)
    g_main_loop_quit (c->loop);
}

/* The server's client-output-buffer-limit pubsub cuts off a subscriber
 * that falls behind; the subscriber reconnects, and what was published
 * meanwhile is lost. */
static void
on_connection_lost (RedisSubscriber *sub,
                    const GError    *error,
                    gpointer         user_data)
{
  Counter *c = user_data;

  c->n_lost++;
  g_printerr ("redispool-sub-bench: connection lost after %" G_GUINT64_FORMAT
              " messages: %s\n", c->delivered, error->message);
}

static gboolean
idle_check_cb (gpointer user_data)
{
  Counter *c = user_data;
  gint64 now = g_get_monotonic_time ();

  if (c->delivered > 0 ? now - c->last_us > c->idle_ms * 1000
                       : now - c->ready_us > 60 * G_USEC_PER_SEC)
    g_main_loop_quit (c->loop);
  return G_SOURCE_CONTINUE;
}

int
main (int   argc,
      char *argv[])
{
  char *host = NULL, *channel = NULL;
  int port = 6379, idle_ms = 1000;
  gint64 expected = 0;
  GOptionEntry entries[] = {
    { "host", 'h', 0, G_OPTION_ARG_STRING, &host, "Server (127.0.0.1)", "HOST" },
    { "port", 'p', 0, G_OPTION_ARG_INT, &port, "Port (6379)", "PORT" },
    { "channel", 'c', 0, G_OPTION_ARG_STRING, &channel, "Channel (ch)", "NAME" },
    { "requests", 'n', 0, G_OPTION_ARG_INT64, &expected, "Messages to wait for (0: until idle)", "N" },
    { "idle-ms", 0, 0, G_OPTION_ARG_INT, &idle_ms, "End after this long without a message (1000)", "MS" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- RedisSubscriber throughput");
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisSubscriber) sub = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *detailed = NULL;
  Counter c = { 0 };
  double cpu0, cpu1, span;
  guint idle_id;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  uri = g_strdup_printf ("redis://%s:%d", host != NULL ? host : "127.0.0.1", port);
  if (channel == NULL)
    channel = g_strdup ("ch");

  sub = redis_subscriber_new_sync (uri, NULL, &error);
  if (sub == NULL)
    {
      g_printerr ("redispool-sub-bench: %s\n", error->message);
      return 1;
    }
  c.loop = g_main_loop_new (NULL, FALSE);
  c.expected = expected > 0 ? (guint64) expected : G_MAXUINT64;
  c.idle_ms = idle_ms;
  detailed = g_strconcat ("message::", channel, NULL);
  g_signal_connect (sub, detailed, G_CALLBACK (on_message), &c);
  g_signal_connect (sub, "connection-lost", G_CALLBACK (on_connection_lost), &c);
  if (!redis_subscriber_subscribe_sync (sub, (const char *[]) { channel, NULL }, NULL, &error))
    {
      g_printerr ("redispool-sub-bench: SUBSCRIBE: %s\n", error->message);
      return 1;
    }

  cpu0 = cpu_seconds ();
  c.ready_us = g_get_monotonic_time ();
  g_print ("READY\n");
  fflush (stdout);
  idle_id = g_timeout_add (50, idle_check_cb, &c);
  g_main_loop_run (c.loop);
  cpu1 = cpu_seconds ();
  g_source_remove (idle_id);

  span = (c.last_us - c.first_us) / 1e6;
  g_print ("RESULT delivered=%" G_GUINT64_FORMAT " msgs_per_s=%.0f cpu_us_per_msg=%.3f"
           " dropped=%" G_GUINT64_FORMAT " cut=%u\n",
           c.delivered, span > 0 ? (c.delivered - 1) / span : 0.0,
           c.delivered > 0 ? (cpu1 - cpu0) * 1e6 / c.delivered : 0.0,
           redis_subscriber_get_messages_dropped (sub), c.n_lost);

  redis_subscriber_close (sub);
  g_main_loop_unref (c.loop);
  g_free (host);
  g_free (channel);
  return 0;
}
