/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-worker-private.h"

static GMainContext *worker_context;
static GThread *worker_thread;
/* Asked on every completion: a plain thread-local is much cheaper than
 * g_thread_self () (a GPrivate lookup). */
static __thread gboolean on_worker_thread;

static gpointer
worker_main (gpointer data)
{
  GMainContext *context = data;

  on_worker_thread = TRUE;
  g_main_context_push_thread_default (context);
  /* Runs for the life of the process, like GDBus' worker thread. */
  for (;;)
    g_main_context_iteration (context, TRUE);

  return NULL;
}

GMainContext *
redis_worker_get_context (void)
{
  if (g_once_init_enter (&worker_context))
    {
      GMainContext *context = g_main_context_new ();

      worker_thread = g_thread_new ("redis-io", worker_main, g_main_context_ref (context));
      g_once_init_leave (&worker_context, context);
    }

  return worker_context;
}

gboolean
redis_worker_is_current (void)
{
  return on_worker_thread;
}

void
redis_worker_invoke (GSourceFunc     func,
                     gpointer        data,
                     GDestroyNotify  notify)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, data, notify);
  g_source_set_static_name (source, "[redispool] invoke");
  g_source_attach (source, redis_worker_get_context ());
  g_source_unref (source);
}

static gboolean
deadline_dispatch (GSource     *source,
                   GSourceFunc  callback,
                   gpointer     user_data)
{
  g_source_set_ready_time (source, -1);
  return callback (user_data);
}

static GSourceFuncs deadline_source_funcs = {
  NULL, NULL, deadline_dispatch, NULL, NULL, NULL,
};

GSource *
redis_worker_deadline_source_new (const char     *name,
                                  GSourceFunc     func,
                                  gpointer        data,
                                  GDestroyNotify  notify)
{
  GSource *source = g_source_new (&deadline_source_funcs, sizeof (GSource));

  g_source_set_static_name (source, name);
  g_source_set_ready_time (source, -1);
  g_source_set_callback (source, func, data, notify);
  g_source_attach (source, redis_worker_get_context ());
  return source;
}
