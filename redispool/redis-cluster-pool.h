/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"
#include "redis-client.h"
#include "redis-connection.h"
#include "redis-pool.h"

G_BEGIN_DECLS

#define REDIS_TYPE_CLUSTER_POOL (redis_cluster_pool_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisClusterPool, redis_cluster_pool, REDIS, CLUSTER_POOL, GObject)

REDIS_AVAILABLE_IN_ALL
guint16           redis_cluster_key_slot                   (const guint8         *key,
                                                            gsize                 len);

REDIS_AVAILABLE_IN_ALL
RedisClusterPool *redis_cluster_pool_new_sync              (const char           *uri,
                                                            GCancellable         *cancellable,
                                                            GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void              redis_cluster_pool_new_async             (const char           *uri,
                                                            GCancellable         *cancellable,
                                                            GAsyncReadyCallback   callback,
                                                            gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisClusterPool *redis_cluster_pool_new_finish            (GAsyncResult         *result,
                                                            GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
guint             redis_cluster_pool_get_max_redirects     (RedisClusterPool     *self);
REDIS_AVAILABLE_IN_ALL
GVariant         *redis_cluster_pool_get_info              (RedisClusterPool     *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
RedisPool        *redis_cluster_pool_get_pool_for_key      (RedisClusterPool     *self,
                                                            const guint8         *key,
                                                            gsize                 len) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void              redis_cluster_pool_refresh_async         (RedisClusterPool     *self,
                                                            GCancellable         *cancellable,
                                                            GAsyncReadyCallback   callback,
                                                            gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean          redis_cluster_pool_refresh_finish        (RedisClusterPool     *self,
                                                            GAsyncResult         *result,
                                                            GError              **error);
REDIS_AVAILABLE_IN_ALL
void              redis_cluster_pool_acquire_for_key_async (RedisClusterPool     *self,
                                                            const guint8         *key,
                                                            gsize                 len,
                                                            GCancellable         *cancellable,
                                                            GAsyncReadyCallback   callback,
                                                            gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisConnection  *redis_cluster_pool_acquire_for_key_finish (RedisClusterPool    *self,
                                                            GAsyncResult         *result,
                                                            GError              **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
