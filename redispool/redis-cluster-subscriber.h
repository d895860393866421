/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"
#include "redis-message.h"

G_BEGIN_DECLS

#define REDIS_TYPE_CLUSTER_SUBSCRIBER (redis_cluster_subscriber_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisClusterSubscriber, redis_cluster_subscriber, REDIS, CLUSTER_SUBSCRIBER, GObject)

REDIS_AVAILABLE_IN_ALL
void     redis_cluster_subscriber_subscribe_async    (RedisClusterSubscriber *self,
                                                      RedisSubscriptionKind   kind,
                                                      const char * const     *names,
                                                      GCancellable           *cancellable,
                                                      GAsyncReadyCallback     callback,
                                                      gpointer                user_data);
REDIS_AVAILABLE_IN_ALL
gboolean redis_cluster_subscriber_subscribe_finish   (RedisClusterSubscriber *self,
                                                      GAsyncResult           *result,
                                                      GError                **error);
REDIS_AVAILABLE_IN_ALL
gboolean redis_cluster_subscriber_subscribe_sync     (RedisClusterSubscriber *self,
                                                      RedisSubscriptionKind   kind,
                                                      const char * const     *names,
                                                      GCancellable           *cancellable,
                                                      GError                **error);

REDIS_AVAILABLE_IN_ALL
void     redis_cluster_subscriber_unsubscribe_async  (RedisClusterSubscriber *self,
                                                      RedisSubscriptionKind   kind,
                                                      const char * const     *names,
                                                      GCancellable           *cancellable,
                                                      GAsyncReadyCallback     callback,
                                                      gpointer                user_data);
REDIS_AVAILABLE_IN_ALL
gboolean redis_cluster_subscriber_unsubscribe_finish (RedisClusterSubscriber *self,
                                                      GAsyncResult           *result,
                                                      GError                **error);
REDIS_AVAILABLE_IN_ALL
gboolean redis_cluster_subscriber_unsubscribe_sync   (RedisClusterSubscriber *self,
                                                      RedisSubscriptionKind   kind,
                                                      const char * const     *names,
                                                      GCancellable           *cancellable,
                                                      GError                **error);

REDIS_AVAILABLE_IN_ALL
char   **redis_cluster_subscriber_dup_subscriptions  (RedisClusterSubscriber *self,
                                                      RedisSubscriptionKind   kind) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
char    *redis_cluster_subscriber_dup_node_address   (RedisClusterSubscriber *self,
                                                      RedisSubscriptionKind   kind,
                                                      const char             *name) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void     redis_cluster_subscriber_close              (RedisClusterSubscriber *self);

G_END_DECLS
