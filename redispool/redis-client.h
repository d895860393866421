/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"
#include "redis-batch.h"
#include "redis-reply.h"

G_BEGIN_DECLS

#define REDIS_TYPE_CLIENT (redis_client_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (RedisClient, redis_client, REDIS, CLIENT, GObject)

/* command */
REDIS_AVAILABLE_IN_ALL
void        redis_client_command_async           (RedisClient          *self,
                                                  const char * const   *argv,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisReply *redis_client_command_finish          (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
RedisReply *redis_client_command_sync            (RedisClient          *self,
                                                  const char * const   *argv,
                                                  GCancellable         *cancellable,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;

/* command_bytes */
REDIS_AVAILABLE_IN_ALL
void        redis_client_command_bytes_async     (RedisClient          *self,
                                                  GBytes              **args,
                                                  gsize                 n_args,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
RedisReply *redis_client_command_bytes_finish    (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
RedisReply *redis_client_command_bytes_sync      (RedisClient          *self,
                                                  GBytes              **args,
                                                  gsize                 n_args,
                                                  GCancellable         *cancellable,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;

/* pipeline */
REDIS_AVAILABLE_IN_ALL
void        redis_client_pipeline_async          (RedisClient          *self,
                                                  RedisBatch           *batch,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
GPtrArray  *redis_client_pipeline_finish         (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
GPtrArray  *redis_client_pipeline_sync           (RedisClient          *self,
                                                  RedisBatch           *batch,
                                                  GCancellable         *cancellable,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
GPtrArray  *redis_client_pipeline_partial_sync   (RedisClient          *self,
                                                  RedisBatch           *batch,
                                                  GCancellable         *cancellable,
                                                  GError              **failure,
                                                  guint                *n_written) G_GNUC_WARN_UNUSED_RESULT;

/* what a failed call got done */
REDIS_AVAILABLE_IN_ALL
GPtrArray  *redis_client_get_partial             (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  guint                *n_written) G_GNUC_WARN_UNUSED_RESULT;

/* transaction */
REDIS_AVAILABLE_IN_ALL
void        redis_client_transaction_async       (RedisClient          *self,
                                                  RedisBatch           *batch,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
GPtrArray  *redis_client_transaction_finish      (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
GPtrArray  *redis_client_transaction_sync        (RedisClient          *self,
                                                  RedisBatch           *batch,
                                                  GCancellable         *cancellable,
                                                  GError              **error) G_GNUC_WARN_UNUSED_RESULT;

/* noreply_command */
REDIS_AVAILABLE_IN_ALL
void        redis_client_noreply_command_async   (RedisClient          *self,
                                                  const char * const   *argv,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean    redis_client_noreply_command_finish  (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean    redis_client_noreply_command_sync    (RedisClient          *self,
                                                  const char * const   *argv,
                                                  GCancellable         *cancellable,
                                                  GError              **error);

/* noreply_pipeline */
REDIS_AVAILABLE_IN_ALL
void        redis_client_noreply_pipeline_async  (RedisClient          *self,
                                                  RedisBatch           *batch,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean    redis_client_noreply_pipeline_finish (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean    redis_client_noreply_pipeline_sync   (RedisClient          *self,
                                                  RedisBatch           *batch,
                                                  GCancellable         *cancellable,
                                                  GError              **error);

/* close */
REDIS_AVAILABLE_IN_ALL
void        redis_client_close_async             (RedisClient          *self,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
REDIS_AVAILABLE_IN_ALL
gboolean    redis_client_close_finish            (RedisClient          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);
REDIS_AVAILABLE_IN_ALL
gboolean    redis_client_close_sync              (RedisClient          *self,
                                                  GCancellable         *cancellable,
                                                  GError              **error);

G_END_DECLS
