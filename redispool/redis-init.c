/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-init-private.h"

/* One init call waiting for the outcome. Completed exactly once: by
 * redis_init_once_return(), or earlier by its own cancellable (then the
 * outcome, when it comes, skips it). Whoever flips @done completes it. */
typedef struct             /* a g_atomic_rc_box */
{
  gint     done;            /* atomic */
  GTask   *task;
  GSource *cancel_source;   /* set before the waiter is shared */
} InitWaiter;

static InitWaiter *
init_waiter_ref (InitWaiter *waiter)
{
  return g_atomic_rc_box_acquire (waiter);
}

static void
init_waiter_clear (InitWaiter *waiter)
{
  g_clear_pointer (&waiter->cancel_source, g_source_unref);
  g_object_unref (waiter->task);
}

static void
init_waiter_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, (GDestroyNotify) init_waiter_clear);
}

static gboolean
init_waiter_cancelled_cb (GCancellable *cancellable,
                          gpointer      data)
{
  InitWaiter *waiter = data;

  if (g_atomic_int_compare_and_exchange (&waiter->done, 0, 1) &&
      !g_task_return_error_if_cancelled (waiter->task))
    g_task_return_new_error (waiter->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "Operation was cancelled");
  return G_SOURCE_REMOVE;
}

static void
init_waiter_return (InitWaiter   *waiter,
                    const GError *error)
{
  if (g_atomic_int_compare_and_exchange (&waiter->done, 0, 1))
    {
      if (error != NULL)
        g_task_return_error (waiter->task, g_error_copy (error));
      else
        g_task_return_boolean (waiter->task, TRUE);
    }
  if (waiter->cancel_source != NULL)
    g_source_destroy (waiter->cancel_source);
}

void
redis_init_once_init (RedisInitOnce *once)
{
  g_mutex_init (&once->lock);
  once->state = REDIS_INIT_NONE;
  once->error = NULL;
  g_queue_init (&once->waiters);
}

void
redis_init_once_clear (RedisInitOnce *once)
{
  /* Every waiter holds a reference to the object that owns @once. */
  g_assert (g_queue_is_empty (&once->waiters));
  g_clear_error (&once->error);
  g_mutex_clear (&once->lock);
}

gboolean
redis_init_once_begin (RedisInitOnce *once,
                       GTask         *task)
{
  InitWaiter *waiter;
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  g_mutex_lock (&once->lock);
  switch (once->state)
    {
    case REDIS_INIT_DONE:
      error = once->error != NULL ? g_error_copy (once->error) : NULL;
      g_mutex_unlock (&once->lock);
      if (error != NULL)
        g_task_return_error (task, error);
      else
        g_task_return_boolean (task, TRUE);
      return FALSE;

    case REDIS_INIT_NONE:
    case REDIS_INIT_RUNNING:
    default:
      break;
    }

  waiter = g_atomic_rc_box_new0 (InitWaiter);
  waiter->task = g_object_ref (task);

  if (once->state == REDIS_INIT_NONE)
    {
      /* The first call: its cancellable is the initialization's. */
      g_atomic_int_set (&once->state, REDIS_INIT_RUNNING);
      g_queue_push_tail (&once->waiters, waiter);
      g_mutex_unlock (&once->lock);
      return TRUE;
    }

  if (cancellable != NULL)
    {
      waiter->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_static_name (waiter->cancel_source, "[redispool] init waiter cancelled");
      g_source_set_callback (waiter->cancel_source, (GSourceFunc) init_waiter_cancelled_cb,
                             init_waiter_ref (waiter), init_waiter_unref);
      g_source_attach (waiter->cancel_source, g_task_get_context (task));
    }
  g_queue_push_tail (&once->waiters, waiter);
  g_mutex_unlock (&once->lock);
  return FALSE;
}

gboolean
redis_init_once_begin_lazy (RedisInitOnce *once)
{
  gboolean first;

  /* The fast path of every call on a started object: no lock. */
  if (G_LIKELY (g_atomic_int_get (&once->state) != REDIS_INIT_NONE))
    return FALSE;

  g_mutex_lock (&once->lock);
  first = once->state == REDIS_INIT_NONE;
  if (first)
    g_atomic_int_set (&once->state, REDIS_INIT_RUNNING);
  g_mutex_unlock (&once->lock);
  return first;
}

void
redis_init_once_set_done (RedisInitOnce *once)
{
  g_mutex_lock (&once->lock);
  g_assert (once->state == REDIS_INIT_NONE);
  g_atomic_int_set (&once->state, REDIS_INIT_DONE);
  g_mutex_unlock (&once->lock);
}

GQueue *
redis_init_once_settle (RedisInitOnce *once,
                        const GError  *error)
{
  GQueue *waiters;

  g_mutex_lock (&once->lock);
  if (once->state == REDIS_INIT_DONE)
    {
      g_mutex_unlock (&once->lock);
      return NULL;
    }
  g_atomic_int_set (&once->state, REDIS_INIT_DONE);
  once->error = error != NULL ? g_error_copy (error) : NULL;
  waiters = g_queue_copy (&once->waiters);
  g_queue_clear (&once->waiters);
  g_mutex_unlock (&once->lock);
  return waiters;
}

void
redis_init_once_return (RedisInitOnce *once,
                        GQueue        *waiters)
{
  InitWaiter *waiter;

  /* The outcome is immutable once recorded: no lock needed to read it. */
  while ((waiter = g_queue_pop_head (waiters)) != NULL)
    {
      init_waiter_return (waiter, once->error);
      init_waiter_unref (waiter);
    }
  g_queue_free (waiters);
}

gboolean
redis_init_once_complete (RedisInitOnce *once,
                          const GError  *error)
{
  GQueue *waiters = redis_init_once_settle (once, error);

  if (waiters == NULL)
    return FALSE;
  redis_init_once_return (once, waiters);
  return TRUE;
}

RedisInitState
redis_init_once_get_state (RedisInitOnce *once)
{
  RedisInitState state;

  g_mutex_lock (&once->lock);
  state = once->state;
  g_mutex_unlock (&once->lock);
  return state;
}
