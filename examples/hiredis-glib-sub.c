/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * hiredis-glib-sub: the reference for tools/bench.sh's pub/sub row. Plain
 * hiredis (0.14) async API on the GLib main loop through hiredis's own
 * GLib adapter (<hiredis/adapters/glib.h>, redis_source_new ()): SUBSCRIBE
 * to one channel and count the messages the reply callback receives. The
 * options and the READY/RESULT lines are those of
 * examples/redispool-sub-bench.c (dropped is always 0: hiredis has no
 * bound). A subscriber that falls behind is cut off by the server's
 * client-output-buffer-limit pubsub: the run then ends early, with
 * cut=1 on the RESULT line, and the rest of the messages are lost.
 *
 *   hiredis-glib-sub -p 6379 -c ch -n 100000
 */

#include <glib.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/glib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct
{
  GMainLoop *loop;
  guint64    expected;
  guint64    delivered;
  gint64     first_us;
  gint64     last_us;
  gint64     ready_us;
  guint      idle_ms;
  double     cpu0;
  gboolean   ready;
  gboolean   failed;
  gboolean   disconnected;   /* hiredis has freed the context */
  gboolean   stopping;       /* redisAsyncFree (): callbacks get NULL */
  gboolean   cut;            /* the server closed the connection */
} Counter;

static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Every push of the subscription: ["subscribe", ch, n] once, then
 * ["message", ch, payload]. */
static void
on_reply (redisAsyncContext *ac,
          void              *r,
          void              *privdata)
{
  Counter *c = privdata;
  redisReply *reply = r;

  if (c->stopping)
    return;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
      reply->element[0]->type != REDIS_REPLY_STRING)
    {
      if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        {
          /* Cut off once subscribed (the server's output-buffer limit
           * for a subscriber that falls behind): a result, with loss. */
          g_printerr ("hiredis-glib-sub: %s\n", reply != NULL ? reply->str : ac->errstr);
          if (reply != NULL || !c->ready)
            c->failed = TRUE;
          else
            c->cut = TRUE;
          g_main_loop_quit (c->loop);
        }
      return;
    }
  if (strcmp (reply->element[0]->str, "message") == 0)
    {
      c->last_us = g_get_monotonic_time ();
      if (c->delivered++ == 0)
        c->first_us = c->last_us;
      if (c->delivered == c->expected)
        g_main_loop_quit (c->loop);
    }
  else if (strcmp (reply->element[0]->str, "subscribe") == 0 && !c->ready)
    {
      c->ready = TRUE;
      c->cpu0 = cpu_seconds ();
      c->ready_us = g_get_monotonic_time ();
      printf ("READY\n");
      fflush (stdout);
    }
}

static void
on_disconnect (const redisAsyncContext *ac,
               int                      status)
{
  Counter *c = ac->data;

  if (status != REDIS_OK)
    g_printerr ("hiredis-glib-sub: disconnected: %s\n", ac->errstr);
  if (!c->stopping && c->ready)
    c->cut = TRUE;
  c->disconnected = TRUE;
  g_main_loop_quit (c->loop);
}

static gboolean
idle_check_cb (gpointer user_data)
{
  Counter *c = user_data;
  gint64 now = g_get_monotonic_time ();

  if (c->ready && (c->delivered > 0 ? now - c->last_us > c->idle_ms * 1000
                                    : now - c->ready_us > 60 * G_USEC_PER_SEC))
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
  GOptionContext *options = g_option_context_new ("- hiredis + GLib subscriber throughput");
  GError *error = NULL;
  redisAsyncContext *ac;
  GSource *source;
  Counter c = { 0 };
  double cpu1, span;
  guint idle_id;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  g_option_context_free (options);
  if (channel == NULL)
    channel = g_strdup ("ch");

  c.loop = g_main_loop_new (NULL, FALSE);
  c.expected = expected > 0 ? (guint64) expected : G_MAXUINT64;
  c.idle_ms = idle_ms;

  ac = redisAsyncConnect (host != NULL ? host : "127.0.0.1", port);
  if (ac == NULL || ac->err)
    {
      g_printerr ("hiredis-glib-sub: %s\n", ac != NULL ? ac->errstr : "out of memory");
      return 1;
    }
  ac->data = &c;
  source = redis_source_new (ac);
  g_source_attach (source, NULL);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  redisAsyncCommand (ac, on_reply, &c, "SUBSCRIBE %s", channel);

  idle_id = g_timeout_add (50, idle_check_cb, &c);
  g_main_loop_run (c.loop);
  cpu1 = cpu_seconds ();
  g_source_remove (idle_id);

  span = (c.last_us - c.first_us) / 1e6;
  printf ("RESULT delivered=%" G_GUINT64_FORMAT " msgs_per_s=%.0f cpu_us_per_msg=%.3f"
          " dropped=0 cut=%d\n",
          c.delivered, span > 0 ? (c.delivered - 1) / span : 0.0,
          c.delivered > 0 ? (cpu1 - c.cpu0) * 1e6 / c.delivered : 0.0, c.cut);

  c.stopping = TRUE;
  if (!c.disconnected)
    redisAsyncFree (ac);
  g_source_destroy (source);
  g_source_unref (source);
  g_main_loop_unref (c.loop);
  g_free (host);
  g_free (channel);
  return c.failed ? 1 : 0;
}
