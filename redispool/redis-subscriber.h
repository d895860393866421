/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"
#include "redis-credentials.h"
#include "redis-message.h"

G_BEGIN_DECLS

/**
 * REDIS_SUBSCRIBER_DEFAULT_MAX_PENDING_MESSAGES:
 *
 * The default of [property@Redis.Subscriber:max-pending-messages].
 */
#define REDIS_SUBSCRIBER_DEFAULT_MAX_PENDING_MESSAGES 100000

#define REDIS_TYPE_SUBSCRIBER (redis_subscriber_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisSubscriber, redis_subscriber, REDIS, SUBSCRIBER, GObject)

/**
 * RedisSubscriberCredentialsProvider:
 * @subscriber: the [class@Redis.Subscriber] that needs credentials
 * @request: the request to answer, now or later
 * @user_data: the data given to
 *   [method@Redis.Subscriber.set_credentials_provider]
 *
 * Asked by @subscriber for credentials before it connects: see
 * [method@Redis.Subscriber.set_credentials_provider].
 */
typedef void (*RedisSubscriberCredentialsProvider) (RedisSubscriber         *subscriber,
                                                    RedisCredentialsRequest *request,
                                                    gpointer                 user_data);

REDIS_AVAILABLE_IN_ALL
RedisSubscriber *redis_subscriber_new_sync          (const char           *uri,
                                                     GCancellable         *cancellable,
                                                     GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_new_async         (const char           *uri,
                                                     GCancellable         *cancellable,
                                                     GAsyncReadyCallback   callback,
                                                     gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisSubscriber *redis_subscriber_new_finish        (GAsyncResult         *result,
                                                     GError              **error) G_GNUC_WARN_UNUSED_RESULT;

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_subscribe_async  (RedisSubscriber      *self,
                                                    const char * const   *names,
                                                    GCancellable         *cancellable,
                                                    GAsyncReadyCallback   callback,
                                                    gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_subscribe_finish (RedisSubscriber      *self,
                                                    GAsyncResult         *result,
                                                    GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_subscribe_sync   (RedisSubscriber      *self,
                                                    const char * const   *names,
                                                    GCancellable         *cancellable,
                                                    GError              **error);

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_psubscribe_async  (RedisSubscriber      *self,
                                                     const char * const   *names,
                                                     GCancellable         *cancellable,
                                                     GAsyncReadyCallback   callback,
                                                     gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_psubscribe_finish (RedisSubscriber      *self,
                                                     GAsyncResult         *result,
                                                     GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_psubscribe_sync   (RedisSubscriber      *self,
                                                     const char * const   *names,
                                                     GCancellable         *cancellable,
                                                     GError              **error);

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_ssubscribe_async  (RedisSubscriber      *self,
                                                     const char * const   *names,
                                                     GCancellable         *cancellable,
                                                     GAsyncReadyCallback   callback,
                                                     gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_ssubscribe_finish (RedisSubscriber      *self,
                                                     GAsyncResult         *result,
                                                     GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_ssubscribe_sync   (RedisSubscriber      *self,
                                                     const char * const   *names,
                                                     GCancellable         *cancellable,
                                                     GError              **error);

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_unsubscribe_async  (RedisSubscriber      *self,
                                                      const char * const   *names,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_unsubscribe_finish (RedisSubscriber      *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_unsubscribe_sync   (RedisSubscriber      *self,
                                                      const char * const   *names,
                                                      GCancellable         *cancellable,
                                                      GError              **error);

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_punsubscribe_async  (RedisSubscriber      *self,
                                                       const char * const   *names,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_punsubscribe_finish (RedisSubscriber      *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_punsubscribe_sync   (RedisSubscriber      *self,
                                                       const char * const   *names,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_sunsubscribe_async  (RedisSubscriber      *self,
                                                       const char * const   *names,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_sunsubscribe_finish (RedisSubscriber      *self,
                                                       GAsyncResult         *result,
                                                       GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_sunsubscribe_sync   (RedisSubscriber      *self,
                                                       const char * const   *names,
                                                       GCancellable         *cancellable,
                                                       GError              **error);

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_subscribe_bytes_async    (RedisSubscriber       *self,
                                                            RedisSubscriptionKind  kind,
                                                            GBytes               **names,
                                                            gsize                  n_names,
                                                            GCancellable          *cancellable,
                                                            GAsyncReadyCallback    callback,
                                                            gpointer               user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_subscribe_bytes_finish   (RedisSubscriber       *self,
                                                            GAsyncResult          *result,
                                                            GError               **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_subscribe_bytes_sync     (RedisSubscriber       *self,
                                                            RedisSubscriptionKind  kind,
                                                            GBytes               **names,
                                                            gsize                  n_names,
                                                            GCancellable          *cancellable,
                                                            GError               **error);
REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_unsubscribe_bytes_async  (RedisSubscriber       *self,
                                                            RedisSubscriptionKind  kind,
                                                            GBytes               **names,
                                                            gsize                  n_names,
                                                            GCancellable          *cancellable,
                                                            GAsyncReadyCallback    callback,
                                                            gpointer               user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_unsubscribe_bytes_finish (RedisSubscriber       *self,
                                                            GAsyncResult          *result,
                                                            GError               **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_unsubscribe_bytes_sync   (RedisSubscriber       *self,
                                                            RedisSubscriptionKind  kind,
                                                            GBytes               **names,
                                                            gsize                  n_names,
                                                            GCancellable          *cancellable,
                                                            GError               **error);

REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_ping_async        (RedisSubscriber      *self,
                                                     GCancellable         *cancellable,
                                                     GAsyncReadyCallback   callback,
                                                     gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_ping_finish       (RedisSubscriber      *self,
                                                     GAsyncResult         *result,
                                                     GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_ping_sync         (RedisSubscriber      *self,
                                                     GCancellable         *cancellable,
                                                     GError              **error);

REDIS_AVAILABLE_IN_ALL
char           **redis_subscriber_dup_subscriptions (RedisSubscriber       *self,
                                                     RedisSubscriptionKind  kind) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
gboolean         redis_subscriber_get_connected     (RedisSubscriber      *self);
REDIS_AVAILABLE_IN_ALL
guint            redis_subscriber_get_max_pending_messages (RedisSubscriber *self);
REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_set_max_pending_messages (RedisSubscriber *self,
                                                            guint            max_pending);
REDIS_AVAILABLE_IN_ALL
guint64          redis_subscriber_get_messages_dropped (RedisSubscriber   *self);
REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_set_credentials   (RedisSubscriber      *self,
                                                     const char           *username,
                                                     const char           *password);
REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_set_credentials_provider (RedisSubscriber                    *self,
                                                            RedisSubscriberCredentialsProvider  provider,
                                                            gpointer                            user_data,
                                                            GDestroyNotify                      destroy);
REDIS_AVAILABLE_IN_ALL
void             redis_subscriber_close             (RedisSubscriber      *self);

G_END_DECLS
