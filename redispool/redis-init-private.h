/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The once-only initialization that GInitable and GAsyncInitable require:
 * the first init call runs it; calls made while it runs wait for it; every
 * call, before or after, gets the result of that one run, and nothing runs
 * twice.
 *
 * The owner creates a GTask per init_async call and hands it to
 * redis_init_once_begin(). For the first call that returns TRUE: the owner
 * starts the work and, once it has the outcome, calls
 * redis_init_once_complete() (or _settle() and _return() when it must act
 * between recording the result and handing it out). Every task is then
 * completed with that outcome, in its own context.
 *
 * A waiting call whose own cancellable fires completes at once with
 * G_IO_ERROR_CANCELLED and changes nothing; the first call's cancellable is
 * the owner's to honour (it cancels the initialization itself, and every
 * caller then gets that error, as in GIO).
 *
 * Thread-safe. */
typedef struct
{
  GMutex   lock;
  gint     state;      /* RedisInitState; written under @lock, atomically */
  GError  *error;      /* the outcome once done: NULL for success */
  GQueue   waiters;    /* InitWaiter*, the first caller's task included */
} RedisInitOnce;

typedef enum
{
  REDIS_INIT_NONE,
  REDIS_INIT_RUNNING,
  REDIS_INIT_DONE,
} RedisInitState;

void            redis_init_once_init      (RedisInitOnce *once);
void            redis_init_once_clear     (RedisInitOnce *once);
/* Adds a reference to @task. TRUE if this is the first call: the caller
 * must run the initialization. FALSE: @task was completed with the stored
 * outcome, or waits for it. */
gboolean        redis_init_once_begin     (RedisInitOnce *once,
                                           GTask         *task);
/* For objects that start on first use: moves a never-started @once to
 * running with no caller waiting. TRUE if this call did: the caller must
 * then start the initialization, as after the first _begin(); later init
 * calls wait for its outcome as usual. FALSE (one atomic read once
 * started) if an initialization ran or runs already. */
gboolean        redis_init_once_begin_lazy (RedisInitOnce *once);
/* For objects that are born initialized: later calls succeed at once. */
void            redis_init_once_set_done  (RedisInitOnce *once);
/* Records the outcome (@error NULL: success) and returns the tasks to
 * complete with it, for redis_init_once_return(); NULL when an outcome was
 * recorded already (the first one stands). */
GQueue         *redis_init_once_settle    (RedisInitOnce *once,
                                           const GError  *error);
/* Completes, with the recorded outcome, the tasks _settle() returned, and
 * frees the queue. */
void            redis_init_once_return    (RedisInitOnce *once,
                                           GQueue        *waiters);
/* _settle() then _return(). FALSE if an outcome was recorded already. */
gboolean        redis_init_once_complete  (RedisInitOnce *once,
                                           const GError  *error);
RedisInitState  redis_init_once_get_state (RedisInitOnce *once);

G_END_DECLS
