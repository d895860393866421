/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-call-private.h"
#include "redis-connection.h"
#include "redis-options-private.h"

G_BEGIN_DECLS

/* One socket to one server: connect + TLS + handshake, the write queue, the
 * FIFO of calls waiting for replies, the reader, the deadline timer. Its
 * I/O runs in its home main context, on the I/O thread (redis-worker), or
 * in a sync caller's thread, under its I/O lock (see redis-engine.c); every
 * function here may be called from any thread.
 *
 * Life cycle: new → connect → READY → CLOSED (on failure or close). An
 * engine is never reused after it closes; the pool makes a new one. While
 * connected, the engine's sources keep it alive, so an owner must close it. */
typedef struct _RedisEngine RedisEngine;

/* Called once, on any thread (never with the engine locked), when the
 * engine closes for any reason.
 * @unsent holds the calls that were never written: the handler may take
 * them (g_queue_pop_head) to send elsewhere; those it leaves fail with
 * REDIS_ERROR_CLOSED. */
typedef void (*RedisEngineClosedFunc) (RedisEngine  *engine,
                                       const GError *reason,
                                       GQueue       *unsent,
                                       gpointer      user_data);

/* What a push handler (redis_engine_set_push_func()) makes of a top-level
 * reply. */
typedef enum
{
  REDIS_ENGINE_PUSH_PASS,      /* not a push: the reply of the call at the FIFO's head */
  REDIS_ENGINE_PUSH_TAKEN,     /* a push, taken by the handler (no call's) */
  REDIS_ENGINE_PUSH_INVALID,   /* a malformed frame: close with PROTOCOL */
} RedisEnginePushResult;

/* Sees every top-level reply, before the FIFO does, with the I/O lock held
 * (on whichever thread reads): it must not call back into the engine.
 * Takes nothing: it refs @reply to keep it. */
typedef RedisEnginePushResult (*RedisEnginePushFunc) (RedisReply *reply,
                                                      gpointer    user_data);

/* @home: the main context whose async calls the engine serves in place
 * (NULL: the thread-default one). */
RedisEngine          *redis_engine_new              (const RedisOptions     *options,
                                                     GMainContext           *home);
RedisEngine          *redis_engine_ref              (RedisEngine            *self);
void                  redis_engine_unref            (RedisEngine            *self);
void                  redis_engine_set_closed_func  (RedisEngine            *self,
                                                     RedisEngineClosedFunc   func,
                                                     gpointer                user_data,
                                                     GDestroyNotify          notify);
/* Before connecting, once: a connection in subscribed mode (RedisSubscriber)
 * routes its pushes (messages) past the FIFO. Unset, the reading path is
 * unchanged (one predicted-false test per reply). @notify runs when the
 * engine is freed. */
void                  redis_engine_set_push_func    (RedisEngine            *self,
                                                     RedisEnginePushFunc     func,
                                                     gpointer                user_data,
                                                     GDestroyNotify          notify);
void                  redis_engine_connect_async    (RedisEngine            *self,
                                                     GCancellable           *cancellable,
                                                     GAsyncReadyCallback     callback,
                                                     gpointer                user_data);
gboolean              redis_engine_connect_finish   (RedisEngine            *self,
                                                     GAsyncResult           *result,
                                                     GError                **error);
/* Takes a reference on @call. FALSE when the engine no longer accepts calls
 * (closing or closed): the call is untouched and the caller decides. */
gboolean              redis_engine_submit           (RedisEngine            *self,
                                                     RedisCall              *call);
/* A sync caller drives @call, which this engine took from it (see
 * RedisCall.drive_engine): it writes it, then polls the socket itself and
 * reads, in its own thread, until the call completes (@waiter then holds
 * the result), or until the call needs a connection first or moved to
 * another engine (then the caller waits on @waiter). Never iterates a main
 * context; no callback runs in it. */
void                  redis_engine_drive            (RedisEngine            *self,
                                                     RedisCall              *call,
                                                     RedisCallWaiter        *waiter);
/* Immediate close by its owner: calls not yet written fail with CLOSED,
 * written ones with CONNECTION_LOST (they may have run). Takes @reason
 * (nullable). */
void                  redis_engine_close            (RedisEngine            *self,
                                                     GError                 *reason);
/* Graceful close: accept nothing more, wait up to @timeout_ms for the
 * replies in flight, then close. */
void                  redis_engine_close_async      (RedisEngine            *self,
                                                     guint                   timeout_ms,
                                                     GCancellable           *cancellable,
                                                     GAsyncReadyCallback     callback,
                                                     gpointer                user_data);
gboolean              redis_engine_close_finish     (RedisEngine            *self,
                                                     GAsyncResult           *result,
                                                     GError                **error);
RedisConnectionState  redis_engine_get_state        (RedisEngine            *self);
guint                 redis_engine_get_n_pending    (RedisEngine            *self);
gint64                redis_engine_get_client_id    (RedisEngine            *self);
const RedisOptions   *redis_engine_get_options      (RedisEngine            *self);
/* Credential rotation (redis-credentials.c): TRUE if the engine took
 * @username and @password for its handshake (it has not sent it yet);
 * FALSE once the session started (re-authenticate with AUTH) or closed. */
gboolean              redis_engine_update_credentials (RedisEngine          *self,
                                                       const char           *username,
                                                       const char           *password);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisEngine, redis_engine_unref)

G_END_DECLS
