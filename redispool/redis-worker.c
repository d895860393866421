/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <errno.h>
#include <unistd.h>
#ifdef HAVE_EVENTFD
#include <sys/eventfd.h>
#endif
#include <glib-unix.h>

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

/* ---- wake-up fds -------------------------------------------------------- */

static void
wake_fd_free (gpointer data)
{
  RedisWakeFd *wake = data;

  if (wake->write_fd != wake->read_fd)
    close (wake->write_fd);
  close (wake->read_fd);
  g_free (wake);
}

static GPrivate wake_fd_key = G_PRIVATE_INIT (wake_fd_free);

const RedisWakeFd *
redis_wake_fd_get (void)
{
  RedisWakeFd *wake = g_private_get (&wake_fd_key);
  int fds[2] = { -1, -1 };

  if (G_LIKELY (wake != NULL))
    return wake;

#ifdef HAVE_EVENTFD
  fds[0] = fds[1] = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
#endif
  if (fds[0] < 0 &&
      (!g_unix_open_pipe (fds, FD_CLOEXEC, NULL) ||
       !g_unix_set_fd_nonblocking (fds[0], TRUE, NULL) ||
       !g_unix_set_fd_nonblocking (fds[1], TRUE, NULL)))
    g_error ("redispool: cannot create a wake-up fd: %s", g_strerror (errno));

  wake = g_new (RedisWakeFd, 1);
  wake->read_fd = fds[0];
  wake->write_fd = fds[1];
  g_private_set (&wake_fd_key, wake);
  return wake;
}

void
redis_wake_fd_signal (const RedisWakeFd *wake)
{
  guint64 one = 1;
  ssize_t n;

  /* An eventfd takes 8 bytes; a pipe takes any. */
  do
    n = write (wake->write_fd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  /* EAGAIN: a wake-up is pending already, which is all it takes. */
}

void
redis_wake_fd_drain (const RedisWakeFd *wake)
{
  char buffer[64];
  ssize_t n;

  do
    n = read (wake->read_fd, buffer, sizeof buffer);
  while (n > 0 || (n < 0 && errno == EINTR));
}
