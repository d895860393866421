/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"
#include "redis-client.h"
#include "redis-cluster-subscriber.h"
#include "redis-connection.h"
#include "redis-pool.h"

G_BEGIN_DECLS

/**
 * RedisClusterReadFrom:
 * @REDIS_CLUSTER_READ_FROM_PRIMARY: every call goes to the primary that
 *   owns the slot (the default)
 * @REDIS_CLUSTER_READ_FROM_REPLICA: read-only commands go to the replicas
 *   of the slot, in turn (to the primary when the slot has none known)
 * @REDIS_CLUSTER_READ_FROM_REPLICA_PREFERRED: as
 *   %REDIS_CLUSTER_READ_FROM_REPLICA, but a replica whose pool has no live
 *   connection is passed over, for another replica or the primary
 *
 * Where a [class@Redis.ClusterPool] sends read-only commands (see
 * [property@Redis.ClusterPool:read-from]). Writes, transactions, no-reply
 * calls and leases always go to the primary.
 */
typedef enum
{
  REDIS_CLUSTER_READ_FROM_PRIMARY,
  REDIS_CLUSTER_READ_FROM_REPLICA,
  REDIS_CLUSTER_READ_FROM_REPLICA_PREFERRED,
} RedisClusterReadFrom;

#define REDIS_TYPE_CLUSTER_POOL (redis_cluster_pool_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisClusterPool, redis_cluster_pool, REDIS, CLUSTER_POOL, GObject)

/**
 * RedisClusterAddressMapFunc:
 * @host: the host a node is announced at by the cluster (in its slot map,
 *   or in a `MOVED` or `ASK` redirection)
 * @port: the port it is announced at
 * @user_data: the data given to [method@Redis.ClusterPool.set_address_map]
 *
 * Rewrites the address the cluster announces for a node into the one to
 * connect to, for nodes behind NAT or in containers whose announced
 * address cannot be reached from here.
 *
 * Returns: (transfer full) (nullable): the address to connect to, as
 *   `host:port` (`[::1]:7000` for an IPv6 address), or %NULL to use the
 *   announced one
 */
typedef char *(*RedisClusterAddressMapFunc) (const char *host,
                                             guint16     port,
                                             gpointer    user_data);

/**
 * RedisClusterCredentialsProvider:
 * @cluster: the [class@Redis.ClusterPool] one of whose nodes needs
 *   credentials
 * @request: the request to answer, now or later
 * @user_data: the data given to
 *   [method@Redis.ClusterPool.set_credentials_provider]
 *
 * Asked by @cluster for credentials before a connection to one of its
 * nodes connects: see [method@Redis.ClusterPool.set_credentials_provider].
 */
typedef void (*RedisClusterCredentialsProvider) (RedisClusterPool        *cluster,
                                                 RedisCredentialsRequest *request,
                                                 gpointer                 user_data);

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
void              redis_cluster_pool_set_address_map       (RedisClusterPool     *self,
                                                            RedisClusterAddressMapFunc func,
                                                            gpointer              user_data,
                                                            GDestroyNotify        notify);
REDIS_AVAILABLE_IN_ALL
guint             redis_cluster_pool_get_max_redirects     (RedisClusterPool     *self);
REDIS_AVAILABLE_IN_ALL
RedisClusterReadFrom redis_cluster_pool_get_read_from      (RedisClusterPool     *self);
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
RedisClusterSubscriber *redis_cluster_pool_create_subscriber (RedisClusterPool *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void              redis_cluster_pool_set_credentials       (RedisClusterPool     *self,
                                                            const char           *username,
                                                            const char           *password);
REDIS_AVAILABLE_IN_ALL
void              redis_cluster_pool_set_credentials_provider (RedisClusterPool                *self,
                                                               RedisClusterCredentialsProvider  provider,
                                                               gpointer                         user_data,
                                                               GDestroyNotify                   destroy);
REDIS_AVAILABLE_IN_ALL
RedisConnection  *redis_cluster_pool_acquire_for_key_finish (RedisClusterPool    *self,
                                                            GAsyncResult         *result,
                                                            GError              **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
