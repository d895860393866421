/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-completion-private.h"
#include "redis-worker-private.h"

void
redis_call_partial_free (RedisCallPartial *partial)
{
  g_clear_pointer (&partial->replies, g_ptr_array_unref);
  g_free (partial);
}

/* ---- sync callers: the waiter ------------------------------------------- */

void
redis_call_waiter_init (RedisCallWaiter *waiter)
{
  memset (waiter, 0, sizeof *waiter);
  g_mutex_init (&waiter->lock);
  g_cond_init (&waiter->cond);
}

gboolean
redis_call_waiter_set_wake (RedisCallWaiter   *waiter,
                            const RedisWakeFd *wake)
{
  gboolean done;

  g_mutex_lock (&waiter->lock);
  done = waiter->done;
  waiter->wake = done ? NULL : wake;
  g_mutex_unlock (&waiter->lock);
  return !done;
}

gpointer
redis_call_waiter_wait (RedisCallWaiter  *waiter,
                        GError          **error)
{
  return redis_call_waiter_wait_partial (waiter, NULL, error);
}

gpointer
redis_call_waiter_wait_partial (RedisCallWaiter   *waiter,
                                RedisCallPartial **partial,
                                GError           **error)
{
  gpointer result;

  g_mutex_lock (&waiter->lock);
  while (!waiter->done)
    {
      waiter->waiting = TRUE;
      g_cond_wait (&waiter->cond, &waiter->lock);
    }
  g_mutex_unlock (&waiter->lock);

  result = waiter->result;
  if (waiter->error != NULL)
    g_propagate_error (error, waiter->error);
  if (partial != NULL)
    *partial = g_steal_pointer (&waiter->partial);
  else
    g_clear_pointer (&waiter->partial, redis_call_partial_free);
  g_mutex_clear (&waiter->lock);
  g_cond_clear (&waiter->cond);
  return result;
}

void
redis_call_waiter_deliver (RedisCallWaiter  *waiter,
                           gpointer          result,
                           GDestroyNotify    destroy,
                           GError           *error,
                           RedisCallPartial *partial)
{
  g_mutex_lock (&waiter->lock);
  waiter->result = result;
  waiter->result_destroy = destroy;
  waiter->error = error;
  waiter->partial = partial;
  waiter->done = TRUE;
  /* Only whoever waits is woken: a caller driving its own socket polls
   * its wake-up fd, one blocked on the condition needs the signal, and
   * one that has not started waiting needs nothing (the common case when
   * the caller read its own reply). */
  if (waiter->wake != NULL)
    redis_wake_fd_signal (waiter->wake);
  if (waiter->waiting)
    g_cond_signal (&waiter->cond);
  /* The waiter may be gone as soon as the lock is released. */
  g_mutex_unlock (&waiter->lock);
}

/* ---- async callers: tasks returned in their context --------------------- */

/* Completions made on the I/O thread are batched per destination main
 * context: each context that ever receives one gets one persistent
 * completion source, which is woken once for every task completed
 * meanwhile (not once per reply), and returns them from inside that
 * context, so GTask runs their callbacks right away. Keeping the source
 * (instead of a new idle source per batch) saves its allocation, attach,
 * destroy and a hash insert and removal on every batch.
 *
 * The source holds no reference to its context: a queued task does (GTask
 * keeps its context alive), so a context dies only when nothing is queued
 * for it, and then finalizes its source, which leaves the table. */
typedef struct
{
  GList                link;      /* in CompletionSource.items */
  GTask               *task;
  RedisCompletionType  type;
  gpointer             result;
  GDestroyNotify       destroy;
  GError              *error;
} Completion;

typedef struct
{
  GSource       source;
  GMainContext *context;     /* not a reference: the context owns us */
  gint          pending;     /* atomic: a wake-up is on its way */
  GQueue        items;       /* Completion, under completions_lock */
} CompletionSource;

static GMutex completions_lock;
static GHashTable *completion_sources;   /* GMainContext* → CompletionSource* */
/* The source found last: completions usually go to the same context in a row. */
static CompletionSource *last_source;

static void
return_completion (Completion *c)
{
  switch (c->type)
    {
    case REDIS_COMPLETION_POINTER:
      g_task_return_pointer (c->task, c->result, c->destroy);
      break;
    case REDIS_COMPLETION_TRUE:
      g_task_return_boolean (c->task, TRUE);
      break;
    case REDIS_COMPLETION_ERROR:
      g_task_return_error (c->task, c->error);
      break;
    default:
      g_assert_not_reached ();
    }
  g_object_unref (c->task);
}

static gboolean
completion_prepare (GSource *source,
                    gint    *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((CompletionSource *) source)->pending) != 0;
}

static gboolean
completion_check (GSource *source)
{
  return g_atomic_int_get (&((CompletionSource *) source)->pending) != 0;
}

static gboolean
completion_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  CompletionSource *self = (CompletionSource *) source;
  GQueue items;
  GList *l;

  /* Cleared before taking the queue: a completion queued after this
   * wakes us again. */
  g_atomic_int_set (&self->pending, 0);
  g_mutex_lock (&completions_lock);
  items = self->items;
  g_queue_init (&self->items);
  g_mutex_unlock (&completions_lock);

  while ((l = g_queue_pop_head_link (&items)) != NULL)
    {
      Completion *c = l->data;

      return_completion (c);
      g_free (c);
    }
  return G_SOURCE_CONTINUE;
}

static void
completion_finalize (GSource *source)
{
  CompletionSource *self = (CompletionSource *) source;

  /* Only when the context itself dies: no task is queued for it then. */
  g_mutex_lock (&completions_lock);
  g_assert (g_queue_is_empty (&self->items));
  if (g_hash_table_lookup (completion_sources, self->context) == self)
    g_hash_table_remove (completion_sources, self->context);
  if (last_source == self)
    last_source = NULL;
  g_mutex_unlock (&completions_lock);
}

static GSourceFuncs completion_source_funcs = {
  completion_prepare, completion_check, completion_dispatch, completion_finalize, NULL, NULL,
};

/* Called with completions_lock held. */
static CompletionSource *
completion_source_get (GMainContext *context)
{
  CompletionSource *self;

  if (last_source != NULL && last_source->context == context)
    return last_source;

  if (completion_sources == NULL)
    completion_sources = g_hash_table_new (NULL, NULL);
  self = g_hash_table_lookup (completion_sources, context);
  if (self == NULL)
    {
      self = (CompletionSource *) g_source_new (&completion_source_funcs,
                                                sizeof (CompletionSource));
      self->context = context;
      g_queue_init (&self->items);
      g_source_set_priority (&self->source, G_PRIORITY_DEFAULT);
      g_source_set_static_name (&self->source, "[redispool] completions");
      g_hash_table_insert (completion_sources, context, self);
      g_source_attach (&self->source, context);
      g_source_unref (&self->source);   /* the context owns it */
    }
  last_source = self;
  return self;
}

/* Completions made while an engine is locked wait in a list of the thread
 * until it lets go (redis_call_defer_end()): a callback may call back into
 * that engine, and must never run with its lock held. */
static __thread guint defer_depth;
static __thread gboolean defer_in_place;
static __thread GQueue deferred = G_QUEUE_INIT;

static Completion *
completion_new (GTask               *task,
                RedisCompletionType  type,
                gpointer             result,
                GDestroyNotify       destroy,
                GError              *error)
{
  Completion *c = g_new (Completion, 1);

  c->link.data = c;
  c->link.prev = c->link.next = NULL;
  c->task = task;
  c->type = type;
  c->result = result;
  c->destroy = destroy;
  c->error = error;
  return c;
}

/* Queues @c (owned) on the completion source of its task's context. */
static void
post_completion (Completion *c)
{
  CompletionSource *source;
  GMainContext *context = g_task_get_context (c->task);

  g_mutex_lock (&completions_lock);
  source = completion_source_get (context);
  g_queue_push_tail_link (&source->items, &c->link);
  /* One wake-up per batch: the dispatch takes everything queued by then.
   * Under the lock: until the dispatch takes it, the task just queued keeps
   * the context alive (g_main_context_wakeup() takes no context lock). */
  if (g_atomic_int_compare_and_exchange (&source->pending, 0, 1))
    g_main_context_wakeup (context);
  g_mutex_unlock (&completions_lock);
}

void
redis_call_defer_begin (gboolean in_place)
{
  if (defer_depth++ == 0)
    defer_in_place = in_place;
}

void
redis_call_defer_end (void)
{
  GList *l;

  g_assert (defer_depth > 0);
  if (--defer_depth > 0)
    return;

  /* Returned right here only from inside a dispatch of one of the
   * engine's sources in the task's own context (its read callback, in the
   * home context): GTask then calls back at once, as from any I/O
   * callback. Anywhere else (a caller driving its own socket, the I/O
   * thread), the callback must run later, from its context's loop. */
  while ((l = g_queue_pop_head_link (&deferred)) != NULL)
    {
      Completion *c = l->data;
      GSource *current = defer_in_place ? g_main_current_source () : NULL;

      if (current != NULL && g_source_get_context (current) == g_task_get_context (c->task))
        {
          return_completion (c);
          g_free (c);
        }
      else
        post_completion (c);
    }
}

void
redis_completion_return_task (GTask               *task,
                              RedisCompletionType  type,
                              gpointer             result,
                              GDestroyNotify       destroy,
                              GError              *error)
{
  if (defer_depth > 0)
    g_queue_push_tail_link (&deferred, &completion_new (task, type, result, destroy, error)->link);
  else if (redis_worker_is_current ())
    post_completion (completion_new (task, type, result, destroy, error));
  else
    {
      /* A caller's own thread (a call refused or failed at once): GTask
       * decides, and never calls back inside the _async function. */
      Completion now = { { 0, }, task, type, result, destroy, error };

      return_completion (&now);
    }
}
