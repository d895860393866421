/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"
#include "redis-client.h"

G_BEGIN_DECLS

/**
 * RedisConnectionState:
 * @REDIS_CONNECTION_STATE_DISCONNECTED: not initialized yet
 * @REDIS_CONNECTION_STATE_CONNECTING: connecting, TLS handshake or
 *   AUTH/SELECT/CLIENT SETNAME under way
 * @REDIS_CONNECTION_STATE_READY: connected; commands are accepted
 * @REDIS_CONNECTION_STATE_CLOSING: a graceful close is waiting for replies
 * @REDIS_CONNECTION_STATE_CLOSED: closed; every call fails with
 *   %REDIS_ERROR_CLOSED
 *
 * The life cycle of a [class@Redis.Connection].
 */
typedef enum
{
  REDIS_CONNECTION_STATE_DISCONNECTED,
  REDIS_CONNECTION_STATE_CONNECTING,
  REDIS_CONNECTION_STATE_READY,
  REDIS_CONNECTION_STATE_CLOSING,
  REDIS_CONNECTION_STATE_CLOSED,
} RedisConnectionState;

#define REDIS_TYPE_CONNECTION (redis_connection_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisConnection, redis_connection, REDIS, CONNECTION, GObject)

REDIS_AVAILABLE_IN_ALL
RedisConnection      *redis_connection_new_sync       (const char           *uri,
                                                       GCancellable         *cancellable,
                                                       GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void                  redis_connection_new_async      (const char           *uri,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisConnection      *redis_connection_new_finish     (GAsyncResult         *result,
                                                       GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
RedisConnectionState  redis_connection_get_state      (RedisConnection      *self);
REDIS_AVAILABLE_IN_ALL
gint64                redis_connection_get_client_id  (RedisConnection      *self);
REDIS_AVAILABLE_IN_ALL
void                  redis_connection_set_credentials (RedisConnection     *self,
                                                        const char          *username,
                                                        const char          *password);
REDIS_AVAILABLE_IN_ALL
guint                 redis_connection_get_n_pending  (RedisConnection      *self);

G_END_DECLS
