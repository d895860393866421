/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include <string.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/* Loopback listeners for connect-failure tests (GLib only). */

/* A loopback port nothing listens on: bound, read, closed again. A
 * connect to it is refused at once. */
static inline guint16
closed_port (void)
{
  g_autoptr(GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                          G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  guint16 port;

  g_assert_true (g_socket_bind (sock, any, FALSE, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (sock, NULL);
  return port;
}

/* A listener on a loopback port that accepts every connection, records
 * when it arrived (monotonic µs) and closes it at once: each connect
 * attempt fails in its handshake, and is timed where it lands. */
typedef struct
{
  GSocket      *socket;
  GCancellable *cancellable;
  GMutex        lock;
  GArray       *times;        /* gint64, monotonic µs */
  guint16       port;
  GThread      *thread;
} Refuser;

static inline gpointer
refuser_thread (gpointer data)
{
  Refuser *r = data;

  for (;;)
    {
      GSocket *conn = g_socket_accept (r->socket, r->cancellable, NULL);
      gint64 now = g_get_monotonic_time ();

      if (conn == NULL)
        break;
      g_mutex_lock (&r->lock);
      g_array_append_val (r->times, now);
      g_mutex_unlock (&r->lock);
      g_socket_close (conn, NULL);
      g_object_unref (conn);
    }
  return NULL;
}

static inline void
refuser_start (Refuser *r)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  memset (r, 0, sizeof *r);
  g_mutex_init (&r->lock);
  r->times = g_array_new (FALSE, FALSE, sizeof (gint64));
  r->cancellable = g_cancellable_new ();
  r->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (r->socket, addr, TRUE, &error));
  g_assert_no_error (error);
  /* Room for a herd of simultaneous attempts (the default is 10). */
  g_socket_set_listen_backlog (r->socket, 64);
  g_assert_true (g_socket_listen (r->socket, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (r->socket, &error);
  g_assert_no_error (error);
  r->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  r->thread = g_thread_new ("refuser", refuser_thread, r);
}

/* The number of attempts so far. */
static inline guint
refuser_count (Refuser *r)
{
  guint n;

  g_mutex_lock (&r->lock);
  n = r->times->len;
  g_mutex_unlock (&r->lock);
  return n;
}

/* When attempt @i arrived (monotonic µs); it must have. */
static inline gint64
refuser_time (Refuser *r,
              guint    i)
{
  gint64 t;

  g_mutex_lock (&r->lock);
  g_assert_cmpuint (i, <, r->times->len);
  t = g_array_index (r->times, gint64, i);
  g_mutex_unlock (&r->lock);
  return t;
}

/* The first attempt at or after @since (monotonic µs), or 0. */
static inline gint64
refuser_first_since (Refuser *r,
                     gint64   since)
{
  gint64 t = 0;

  g_mutex_lock (&r->lock);
  for (guint i = 0; i < r->times->len && t == 0; i++)
    if (g_array_index (r->times, gint64, i) >= since)
      t = g_array_index (r->times, gint64, i);
  g_mutex_unlock (&r->lock);
  return t;
}

/* A copy of the attempt times so far (gint64, monotonic µs). */
static inline GArray *
refuser_times (Refuser *r)
{
  GArray *times;

  g_mutex_lock (&r->lock);
  times = g_array_copy (r->times);
  g_mutex_unlock (&r->lock);
  return times;
}

static inline void
refuser_stop (Refuser *r)
{
  g_cancellable_cancel (r->cancellable);
  g_thread_join (r->thread);
  g_socket_close (r->socket, NULL);
  g_object_unref (r->socket);
  g_object_unref (r->cancellable);
  g_array_unref (r->times);
  g_mutex_clear (&r->lock);
}

G_END_DECLS
