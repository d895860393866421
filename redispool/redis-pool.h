/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"
#include "redis-client.h"
#include "redis-connection.h"
#include "redis-credentials.h"
#include "redis-subscriber.h"

G_BEGIN_DECLS

/**
 * RedisPoolStrategy:
 * @REDIS_POOL_STRATEGY_ROUND_ROBIN: each call goes to the next live
 *   connection in turn
 * @REDIS_POOL_STRATEGY_RANDOM: each call goes to a live connection picked
 *   at random
 * @REDIS_POOL_STRATEGY_LEAST_PENDING: each call goes to the live connection
 *   with the fewest commands in flight
 *
 * How a [class@Redis.Pool] picks the connection for a call.
 */
typedef enum
{
  REDIS_POOL_STRATEGY_ROUND_ROBIN,
  REDIS_POOL_STRATEGY_RANDOM,
  REDIS_POOL_STRATEGY_LEAST_PENDING,
} RedisPoolStrategy;

/**
 * RedisPoolConnectMode:
 * @REDIS_POOL_CONNECT_MODE_WAIT_ALL: initialization waits until every
 *   connection is up and fails if any cannot connect
 * @REDIS_POOL_CONNECT_MODE_BACKGROUND: initialization returns at once;
 *   connections are made in the background and calls wait for one within
 *   their deadline
 *
 * When a [class@Redis.Pool] considers itself initialized.
 */
typedef enum
{
  REDIS_POOL_CONNECT_MODE_WAIT_ALL,
  REDIS_POOL_CONNECT_MODE_BACKGROUND,
} RedisPoolConnectMode;

#define REDIS_TYPE_POOL (redis_pool_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisPool, redis_pool, REDIS, POOL, GObject)

/**
 * RedisCredentialsProvider:
 * @pool: the [class@Redis.Pool] that needs credentials
 * @request: the request to answer, now or later
 * @user_data: the data given to [method@Redis.Pool.set_credentials_provider]
 *
 * Asked by @pool for credentials before it connects: see
 * [method@Redis.Pool.set_credentials_provider].
 */
typedef void (*RedisCredentialsProvider) (RedisPool               *pool,
                                          RedisCredentialsRequest *request,
                                          gpointer                 user_data);

REDIS_AVAILABLE_IN_ALL
RedisPool         *redis_pool_new_sync               (const char           *uri,
                                                      GCancellable         *cancellable,
                                                      GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void               redis_pool_new_async              (const char           *uri,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisPool         *redis_pool_new_finish             (GAsyncResult         *result,
                                                      GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
guint              redis_pool_get_size               (RedisPool            *self);
REDIS_AVAILABLE_IN_ALL
guint              redis_pool_get_active_connections (RedisPool            *self);
REDIS_AVAILABLE_IN_ALL
RedisPoolStrategy  redis_pool_get_strategy           (RedisPool            *self);
REDIS_AVAILABLE_IN_ALL
GVariant          *redis_pool_get_info               (RedisPool            *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void               redis_pool_set_credentials        (RedisPool            *self,
                                                      const char           *username,
                                                      const char           *password);
REDIS_AVAILABLE_IN_ALL
void               redis_pool_set_credentials_provider (RedisPool                *self,
                                                        RedisCredentialsProvider  provider,
                                                        gpointer                  user_data,
                                                        GDestroyNotify            destroy);

REDIS_AVAILABLE_IN_ALL
void               redis_pool_acquire_async          (RedisPool            *self,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisConnection   *redis_pool_acquire_finish         (RedisPool            *self,
                                                      GAsyncResult         *result,
                                                      GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
RedisConnection   *redis_pool_acquire_sync           (RedisPool            *self,
                                                      GCancellable         *cancellable,
                                                      GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void               redis_pool_release                (RedisPool            *self,
                                                      RedisConnection      *connection);
REDIS_AVAILABLE_IN_ALL
RedisSubscriber   *redis_pool_create_subscriber      (RedisPool            *self) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
