/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-command-private.h"
#include "redis-completion-private.h"
#include "redis-reply.h"

G_BEGIN_DECLS

/* The life cycle of one request: built (from an encoded payload, see
 * redis-command-private.h), handed to an engine, completed exactly once
 * with a result built from its replies or with an error, which then
 * travels to its caller (redis-completion-private.h). */

typedef enum
{
  REDIS_CALL_COMMAND,        /* one command, one reply (an error reply is a GError) */
  REDIS_CALL_PIPELINE,       /* n commands, n replies, returned as they are */
  REDIS_CALL_TRANSACTION,    /* MULTI, n commands, EXEC: EXEC's elements */
  REDIS_CALL_NOREPLY,        /* wrapped in CLIENT REPLY OFF/ON; done when written */
} RedisCallKind;

typedef struct _RedisCall RedisCall;

/* RedisCall.drive_engine while a sync caller offers to drive its call's
 * I/O itself and no engine has taken the call yet. */
#define REDIS_CALL_DRIVE_OFFERED ((gpointer) 1)

/* One request in flight: built on the caller's thread, then owned by the
 * engine of the connection it was given to; completed exactly once (the
 * first completion wins, later ones are dropped) through its GTask, whose
 * callback runs in the caller's thread-default main context. */
struct _RedisCall
{
  gint               ref_count;
  RedisCallKind      kind;
  const guint8      *data;           /* bytes to write, RESP encoded… */
  gsize              len;
  GBytes            *payload;        /* …owned by this, or inline (NULL) */
  guint              n_commands;     /* user commands in the payload */
  guint              n_replies;      /* replies expected on the wire */
  RedisCommandFlags  flags;
  gint64             block_ms;       /* extra time a blocking command may take; -1 = forever */
  const char        *label;          /* internal calls: what they are, for messages */
  char              *name;           /* see redis_call_get_name(); atomic */

  GTask             *task;           /* async calls complete through it… */
  RedisCallWaiter   *waiter;         /* …sync calls through this (neither: internal) */
  /* Atomic. A sync caller sets REDIS_CALL_DRIVE_OFFERED before handing
   * the call over; the first engine that takes it replaces that with
   * itself (a reference), and the caller then drives that engine's socket
   * until the call completes. See redis_engine_drive(). */
  gpointer           drive_engine;
  GCancellable      *cancellable;
  gint64             deadline;       /* monotonic µs, 0 = none; set on submit */
  gint               completed;      /* atomic */

  /* Owned by the engine, under its I/O lock. */
  GSource           *cancel_source;
  GPtrArray         *replies;        /* replies received so far… */
  RedisReply        *reply;          /* …or the one reply of a COMMAND call */
  guint              replies_left;
  guint64            write_start;    /* stream offsets of the payload */
  guint64            write_end;
  gboolean           internal;       /* the engine's own (handshake, health check):
                                        queued by it directly, past the READY gate */
  gboolean           no_retry;       /* never moved to another connection */
  gboolean           secret;         /* payload holds a password: zeroed once written */
  gboolean           self_driven;    /* its caller polls for it: no cancel source */
  gboolean           foreign;        /* counted in the engine's n_foreign */
  /* A written blocking call that was cancelled or timed out: the server is
   * asked to end its wait (CLIENT UNBLOCK … ERROR) and the call completes
   * when its reply arrives, with this error if the wait was ended there,
   * with the reply if the server had served it first; with
   * CONNECTION_LOST if the connection is lost before (it may have been
   * served). */
  GError            *abandon_error;
  char              *noreply_token;  /* NOREPLY: what the closing ECHO must return */
  guint              n_queued;       /* TRANSACTION: "+QUEUED" replies seen (I/O thread) */

  /* Called, with the engine's I/O lock held, when the call leaves an
   * engine for good (all replies in, or failed there); the pool uses it to
   * recycle the dedicated connection of a blocking command. */
  void             (*on_done)      (RedisCall *call,
                                    gpointer   data);
  gpointer           on_done_data;

  guint8             inline_data[];  /* the payload of a single command */
};

RedisCall *redis_call_new            (RedisCallKind        kind,
                                      GBytes              *payload,
                                      guint                n_commands,
                                      GTask               *task);
/* Like redis_call_new(), with a copy of @data in the call's own block:
 * one allocation for a small payload (a single command). */
RedisCall *redis_call_new_inline     (RedisCallKind        kind,
                                      const guint8        *data,
                                      gsize                len,
                                      guint                n_commands);
/* A call completed through @waiter (a sync call) instead of a GTask. */
RedisCall *redis_call_new_sync       (RedisCallKind        kind,
                                      GBytes              *payload,
                                      guint                n_commands,
                                      GCancellable        *cancellable,
                                      RedisCallWaiter     *waiter);
/* An internal call: the library's own @commands (a NULL-terminated list of
 * NULL-terminated argv), encoded into one payload (@kind COMMAND for one
 * command, PIPELINE for more), named @label in messages, with a deadline
 * @timeout_ms from now (0: none). With @callback, it completes through a
 * GTask (no source object, no cancellable) that calls back in the
 * thread-default main context of the caller (a PIPELINE returns its
 * replies, as redis_call_finish_replies() builds them); without, nobody
 * waits for it (its outcome is dropped, or read from the call by on_done).
 * What only some internal calls are (internal, no_retry, secret) the
 * caller sets on the call it gets. */
RedisCall *redis_call_new_internal   (RedisCallKind                kind,
                                      const char * const * const  *commands,
                                      const char                  *label,
                                      guint                        timeout_ms,
                                      GAsyncReadyCallback          callback,
                                      gpointer                     user_data);
/* The commands a call of @kind writes around its user commands, appended
 * to @out before them (open) and after them (close): MULTI … EXEC for a
 * transaction; CLIENT REPLY OFF … CLIENT REPLY ON, ECHO <token> for a
 * no-reply call, whose random token is returned in @noreply_token (see
 * redis_call_reply_in_step()); nothing for the other kinds. FALSE with
 * @error (INVALID_ARGUMENT) if that takes @out over the payload limit. */
gboolean   redis_call_wrap_open      (RedisCallKind        kind,
                                      GByteArray          *out,
                                      GError             **error);
gboolean   redis_call_wrap_close     (RedisCallKind        kind,
                                      GByteArray          *out,
                                      char               **noreply_token,
                                      GError             **error);
/* What the call is, for messages: its label, or the name of its first user
 * command, derived from the payload on first use (error paths only, so the
 * per-call path copies nothing). Any thread; never NULL. */
const char *redis_call_get_name      (RedisCall           *self);
RedisCall *redis_call_ref            (RedisCall           *self);
void       redis_call_unref          (RedisCall           *self);
gboolean   redis_call_is_completed   (RedisCall           *self);
/* Computes the deadline from @timeout_ms (0 = none) and the block time. */
void       redis_call_set_timeout    (RedisCall           *self,
                                      guint                timeout_ms);
/* Completes with an error (takes @error). FALSE if already completed. */
gboolean   redis_call_fail           (RedisCall           *self,
                                      GError              *error);
/* With the engine's I/O lock held: like redis_call_fail() for a call of
 * the engine whose stream has had @total_written bytes written so far;
 * its caller learns which of its commands were written whole and, for a
 * pipeline, gets the replies that arrived (see RedisCallPartial). A plain
 * redis_call_fail() of a call that was put on the wire counts all its
 * commands as written. */
gboolean   redis_call_fail_written   (RedisCall           *self,
                                      GError              *error,
                                      guint64              total_written);
/* Completes with the replies collected (builds the result by kind). */
void       redis_call_finish_replies (RedisCall           *self);
/* Completes a no-reply call successfully. */
void       redis_call_finish_written (RedisCall           *self);
/* I/O thread: FALSE when @reply, the reply number @index (0-based) of the
 * call on the wire, cannot be what the server sends in step with the call's
 * payload (e.g. the acknowledgements of a no-reply call): the stream is out
 * of step and the connection must close with PROTOCOL. To be called for
 * every reply of the call, in order, whether or not the call has completed
 * already (a transaction counts its "+QUEUED" replies here to check EXEC's
 * array against them; when they differ, the call is failed here with
 * PROTOCOL before FALSE is returned).
 *
 * A no-reply call expects two replies: "+OK" from CLIENT REPLY ON, then the
 * ECHO of @noreply_token (a server that ignores CLIENT REPLY OFF answers the
 * commands too, and never in the token's place). */
gboolean   redis_call_reply_in_step  (RedisCall           *self,
                                      guint                index,
                                      RedisReply          *reply);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisCall, redis_call_unref)

G_END_DECLS
