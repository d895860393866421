/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-client.h"
#include "redis-call-private.h"

G_BEGIN_DECLS

/* The interface is implemented only inside the library (RedisConnection,
 * RedisPool): its vfuncs take the private RedisCall, so the struct is not
 * part of the public headers. */
struct _RedisClientInterface
{
  GTypeInterface parent_iface;

  /* Takes over @call (adds its own reference) and completes it eventually,
   * from any thread. Sets the call's deadline from its own options. */
  void     (*submit)       (RedisClient          *self,
                            RedisCall            *call);
  void     (*close_async)  (RedisClient          *self,
                            GCancellable         *cancellable,
                            GAsyncReadyCallback   callback,
                            gpointer              user_data);
  gboolean (*close_finish) (RedisClient          *self,
                            GAsyncResult         *result,
                            GError              **error);
};

/* Runs an async call synchronously: begin pushes a private main context
 * (cached per thread), the async call gets redis_sync_call_store as its
 * callback and &sync as data, wait iterates until the result is there, end
 * pops the context and drops the result. */
typedef struct
{
  GMainContext *context;
  GAsyncResult *result;
} RedisSyncCall;

void redis_sync_call_begin (RedisSyncCall *sync);
void redis_sync_call_store (GObject       *object,
                            GAsyncResult  *result,
                            gpointer       user_data);
void redis_sync_call_wait  (RedisSyncCall *sync);
void redis_sync_call_end   (RedisSyncCall *sync);

/* GInitable.init() for objects whose real initialization is the
 * GAsyncInitable one: runs it through a RedisSyncCall. */
gboolean redis_sync_initable_init (GInitable     *initable,
                                   GCancellable  *cancellable,
                                   GError       **error);

G_END_DECLS
