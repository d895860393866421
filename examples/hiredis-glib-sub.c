/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * hiredis-glib-sub: the reference for tools/bench.sh's pub/sub row. Plain
 * hiredis (0.14) async API on the GLib main loop through hiredis's own
 * GLib adapter (<hiredis/adapters/glib.h>, redis_source_new ()): SUBSCRIBE
 * to one channel and count the messages the reply callback receives. The
 * options and the READY/RESULT lines are those of
 * examples/redispool-sub-bench.c (bench-common.h; dropped is always 0:
 * hiredis has no bound). A subscriber that falls behind is cut off by the server's
 * client-output-buffer-limit pubsub: the run then ends early, with
 * cut=1 on the RESULT line, and the rest of the messages are lost.
 *
 *   hiredis-glib-sub -p 6379 -c ch -n 100000
 */

#include <glib.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/glib.h>

#include <string.h>

#include "bench-common.h"

typedef struct
{
  BenchSub   sub;
  gboolean   failed;
  gboolean   disconnected;   /* hiredis has freed the context */
  gboolean   stopping;       /* redisAsyncFree (): callbacks get NULL */
  gboolean   cut;            /* the server closed the connection */
} Counter;

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
          if (reply != NULL || !c->sub.ready)
            c->failed = TRUE;
          else
            c->cut = TRUE;
          g_main_loop_quit (c->sub.loop);
        }
      return;
    }
  if (strcmp (reply->element[0]->str, "message") == 0)
    bench_sub_delivered (&c->sub);
  else if (strcmp (reply->element[0]->str, "subscribe") == 0 && !c->sub.ready)
    bench_sub_ready (&c->sub);
}

static void
on_disconnect (const redisAsyncContext *ac,
               int                      status)
{
  Counter *c = ac->data;

  if (status != REDIS_OK)
    g_printerr ("hiredis-glib-sub: disconnected: %s\n", ac->errstr);
  if (!c->stopping && c->sub.ready)
    c->cut = TRUE;
  c->disconnected = TRUE;
  g_main_loop_quit (c->sub.loop);
}

int
main (int   argc,
      char *argv[])
{
  redisAsyncContext *ac;
  GSource *source;
  Counter c = { 0 };
  int status;

  status = bench_sub_parse (&c.sub, "- hiredis + GLib subscriber throughput", &argc, &argv);
  if (status >= 0)
    return status;

  ac = redisAsyncConnect (c.sub.host, c.sub.port);
  if (ac == NULL || ac->err)
    {
      g_printerr ("hiredis-glib-sub: %s\n", ac != NULL ? ac->errstr : "out of memory");
      bench_sub_clear (&c.sub);
      return 1;
    }
  ac->data = &c;
  source = redis_source_new (ac);
  g_source_attach (source, NULL);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  redisAsyncCommand (ac, on_reply, &c, "SUBSCRIBE %s", c.sub.channel);

  bench_sub_run (&c.sub);
  bench_sub_report (&c.sub, 0, c.cut);

  c.stopping = TRUE;
  if (!c.disconnected)
    redisAsyncFree (ac);
  g_source_destroy (source);
  g_source_unref (source);
  bench_sub_clear (&c.sub);
  return c.failed ? 1 : 0;
}
