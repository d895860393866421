/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-worker-private.h"

G_BEGIN_DECLS

/* How the outcome of a call reaches its caller, wherever the call was
 * completed (an engine's source in its home context, the I/O thread, a
 * sync caller driving its own socket):
 *
 *  - an async call's GTask is returned in the task's own main context:
 *    in place when that is where it completed, otherwise through one
 *    persistent completion source per destination context, woken once per
 *    batch (redis_completion_return_task());
 *  - a sync call's waiter, on the caller's stack, is filled and its
 *    caller woken only if it waits (redis_call_waiter_deliver());
 *  - while an engine holds its I/O lock, completions made by its thread
 *    wait, and are handed out once it lets go (redis_call_defer_begin()
 *    and redis_call_defer_end()): a callback may call back into that
 *    engine, and must never run with its lock held.
 *
 * The call life cycle (redis-call.c) decides what the outcome is; this
 * only carries it. */

/* What a call that failed got done, handed to its caller with the error
 * (task data of its GTask, or through its waiter): the replies of a
 * pipeline that arrived before the failure (a prefix of them, in order),
 * and how many of the call's user commands were written whole (the others
 * never reached the server: safe to retry). A transaction counts as
 * written only once EXEC is (the server runs nothing of it before: all or
 * nothing). Where the library cannot tell how much was written, every
 * command counts as written (may have run). */
typedef struct
{
  GPtrArray *replies;     /* RedisReply; NULL: none arrived */
  guint      n_written;
} RedisCallPartial;

void redis_call_partial_free (RedisCallPartial *partial);

/* Where a sync call's result lands. Lives on the calling thread's stack;
 * never touched by others after done is set. Whoever completes the call
 * wakes the caller only if it waits: blocked on the cond (waiting), or
 * polling its own socket (wake, see redis_engine_drive()). */
typedef struct
{
  GMutex          lock;
  GCond           cond;
  gboolean        done;
  gboolean        waiting;
  const RedisWakeFd *wake;
  gpointer        result;
  GDestroyNotify  result_destroy;
  GError         *error;
  RedisCallPartial *partial;    /* with error, see redis_call_waiter_wait_partial() */
} RedisCallWaiter;

void       redis_call_waiter_init    (RedisCallWaiter     *waiter);
/* Blocks until the call completed; returns the result (transfer full) or
 * NULL with @error set, and clears the waiter. */
gpointer   redis_call_waiter_wait    (RedisCallWaiter     *waiter,
                                      GError             **error);
/* Like redis_call_waiter_wait(); on failure, also what the call got done
 * (transfer full, never NULL then; NULL on success). */
gpointer   redis_call_waiter_wait_partial (RedisCallWaiter  *waiter,
                                           RedisCallPartial **partial,
                                           GError           **error);
/* Whoever completes the call signals @wake (NULL: nobody polls). FALSE if
 * the call has completed already (then nothing will be signalled). */
gboolean   redis_call_waiter_set_wake (RedisCallWaiter   *waiter,
                                       const RedisWakeFd *wake);
/* Completes the call of @waiter (any thread): takes @result (with
 * @destroy), or @error and @partial, and wakes its caller if it waits.
 * The waiter may be gone as soon as this returns. */
void       redis_call_waiter_deliver (RedisCallWaiter     *waiter,
                                      gpointer             result,
                                      GDestroyNotify       destroy,
                                      GError              *error,
                                      RedisCallPartial    *partial);

/* What an async call's GTask returns. */
typedef enum
{
  REDIS_COMPLETION_POINTER,   /* g_task_return_pointer (result, destroy) */
  REDIS_COMPLETION_TRUE,      /* g_task_return_boolean (TRUE) */
  REDIS_COMPLETION_ERROR,     /* g_task_return_error (error) */
} RedisCompletionType;

/* Returns @task (taken) in its own context, as described above: deferred
 * while this thread holds an engine's lock; posted to the task's context
 * from the I/O thread; at once from a caller's own thread (a call refused
 * or failed there: GTask never calls back inside the _async function). */
void       redis_completion_return_task (GTask               *task,
                                         RedisCompletionType  type,
                                         gpointer             result,
                                         GDestroyNotify       destroy,
                                         GError              *error);

/* Between these, completions made by this thread wait, and are handed out
 * by the outermost end: an engine brackets the time it holds its I/O lock
 * with them, so that no callback runs with that lock held. With @in_place
 * (an engine source dispatching in its context), an async call whose
 * context that is completes at once; otherwise through its context's
 * completion source. Sync calls complete at once in either case. */
void       redis_call_defer_begin    (gboolean             in_place);
void       redis_call_defer_end      (void);

G_END_DECLS
