/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include <string.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "test-helpers.h"

G_BEGIN_DECLS

/* Helpers for suites that use the library (test-helpers.h is GLib only). */

/* A listening socket that never accepts: connects succeed (the kernel
 * completes them), the handshake is never answered. */
static inline GSocket *
silent_listener (guint16 *port)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_TCP, NULL);

  g_assert_true (g_socket_bind (sock, any, TRUE, NULL));
  g_socket_set_listen_backlog (sock, 64);
  g_assert_true (g_socket_listen (sock, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  return sock;
}

/* Drops @object and waits (scaled) until it is finalized. */
static inline void
unref_and_wait_finalized (gpointer object)
{
  GWeakRef weak;

  g_weak_ref_init (&weak, object);
  g_object_unref (object);
  test_drain_main_context ();
  WAIT_UNTIL (({ GObject *o = g_weak_ref_get (&weak);
                 gboolean gone = o == NULL;
                 if (o != NULL)
                   g_object_unref (o);
                 gone; }), 2000);
  g_weak_ref_clear (&weak);
}

/* Closes @conn (if needed), drains the main context and checks the
 * connection is finalized. Takes ownership of @conn. */
static inline void
close_and_finalize (RedisConnection *conn)
{
  g_autoptr(GError) error = NULL;

  if (redis_connection_get_state (conn) != REDIS_CONNECTION_STATE_CLOSED)
    {
      g_assert_true (redis_client_close_sync (REDIS_CLIENT (conn), NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_CLOSED);
  test_drain_main_context ();
  unref_and_wait_finalized (conn);
}

/* The server's count of connections accepted so far (INFO stats). Each
 * call is itself one (redis-cli), included in the number it reads: the
 * connections opened between two counts are the difference minus 1. */
static inline guint64
test_server_connections_received (RedisTestServer *server)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = redis_test_server_cli (server,
                                                (const char * const []) { "INFO", "stats", NULL },
                                                &error);
  const char *line;

  g_assert_no_error (error);
  line = strstr (out, "total_connections_received:");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen ("total_connections_received:"), NULL, 10);
}

G_END_DECLS
