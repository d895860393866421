/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <gio/gunixsocketaddress.h>

#include "redis-engine-private.h"
#include "redis-error.h"
#include "redis-reader-private.h"
#include "redis-reply-private.h"
#include "redis-sentinel-private.h"
#include "redis-text-private.h"
#include "redis-tls-private.h"
#include "redis-unblock-private.h"
#include "redis-worker-private.h"

/*
 * Where the work happens. An engine's state is guarded by its I/O lock
 * (io_lock), not owned by a thread: whoever holds the lock may write, read
 * and complete calls. Three kinds of holder take it, each for short,
 * non-blocking steps:
 *
 *  - the engine's sources (read, write, flush) in its *drive* context;
 *  - a sync caller driving its own call (redis_engine_drive()): it writes,
 *    polls the socket itself with the lock released, and reads;
 *  - the I/O thread, for the cold paths: connecting, timers (deadlines,
 *    stall detection, health checks), closing, CLIENT UNBLOCK.
 *
 * The drive context is the engine's *home* (the thread-default main
 * context of whoever created its connection or pool) while every call in
 * flight either belongs to that context or is driven by a sync caller:
 * async calls made from the home context are then flushed and completed in
 * that context's own loop, with no other thread woken. As soon as a call
 * that needs progress whatever the home loop does is in flight (an async
 * call of another context, a sync call queued behind a connect, an
 * internal call), the sources move to the I/O thread, and come back on the
 * next home call once no such call is left (n_foreign). Sources move only
 * between turns, under the lock; a callback of a source that was moved
 * away finds it destroyed and stops.
 *
 * Nothing a holder completes is handed out while it holds the lock
 * (redis_call_defer_begin/end(), and the closed handler after a
 * shutdown): callbacks may call back into the engine.
 *
 * How a call travels:
 *
 *   submit (any thread) ──► incoming (locked) ──► flush ──┬─► waiting (not READY yet)
 *                                                          ├─► backlog (held back)
 *                                                          └─► wbuf + inflight (FIFO)
 *   inflight head ◄── replies from the reader, in order
 *
 * A call leaves inflight only when all of its replies have arrived, even if
 * it was completed earlier (timeout, cancellation, no-reply): its slot keeps
 * the FIFO in step and its late replies are dropped. Stream offsets
 * (total_queued / total_written) tell which calls had no byte written when
 * the connection died: those are handed back for another connection.
 *
 * The backlog holds calls that may not join wbuf yet, in order: while wbuf
 * is over WBUF_SOFT_LIMIT (so that its 32-bit length can never wrap however
 * many large calls arrive), and while a blocking command that was given up
 * on (cancelled, timed out) is being ended on the server (see
 * redis-unblock-private.h): CLIENT UNBLOCK ends whatever the connection is
 * blocked in, so nothing new may be written behind that command until its
 * reply is in. Such an abandoned call completes when its reply comes: with
 * its error if the server ended the wait, with the reply if the server had
 * served it first (no element popped for it is ever dropped); with
 * CONNECTION_LOST if the connection goes first (it may have been served).
 */

/* Past this many unwritten bytes, calls wait in the backlog (one call,
 * whatever its size, always goes: it is bounded by the encoder's limit). */
#define WBUF_SOFT_LIMIT ((gsize) 64 * 1024 * 1024)

typedef enum
{
  PHASE_TCP,
  PHASE_TLS,
  PHASE_HANDSHAKE,
  PHASE_READY,
} ConnectPhase;

struct _RedisEngine
{
  gint                   ref_count;
  RedisOptions          *options;
  char                  *address;           /* for messages */
  char                  *group_address;     /* Sentinel: address before discovery, kept
                                               alive for messages built without io_lock */

  GMainContext          *home;              /* immutable */

  GMutex                 lock;
  /* Protected by lock (taken after io_lock when both are). */
  GQueue                 incoming;
  gboolean               accepting;
  RedisEngineClosedFunc  closed_func;
  gpointer               closed_data;
  GDestroyNotify         closed_notify;
  gboolean               notifying;         /* the closed handler is running */
  GSList                *stale_notifies;    /* NotifyLater*, freed after it */
  GSource               *flush_source;      /* written under io_lock too */
  GMainContext          *drive;             /* home or the I/O thread's; ditto */

  gint64                 client_id;         /* written under io_lock and lock */

  /* Set before connecting, then immutable: see redis_engine_set_push_func(). */
  RedisEnginePushFunc    push_func;
  gpointer               push_data;
  GDestroyNotify         push_notify;

  /* Atomic. */
  gint                   state;             /* RedisConnectionState */
  gint                   n_pending;
  gint                   n_foreign;         /* calls needing the I/O thread's loop */

  GMutex                 io_lock;
  /* Protected by io_lock. */
  GSource               *timer_source;
  GSource               *read_source;
  gpointer               read_tag;          /* its socket fd */
  GSource               *write_source;
  GSource               *connect_timer;
  GSource               *connect_cancel_source;
  GSource               *close_timer;
  GSocketClient         *client;
  GIOStream             *stream;
  GPollableInputStream  *in;
  GPollableOutputStream *out;
  int                    fd;                /* the socket's, for polling */
  GCancellable          *connect_cancellable;
  GTask                 *connect_task;
  GTask                 *close_task;
  ConnectPhase           phase;
  GQueue                 waiting;
  GQueue                 backlog;
  GQueue                 inflight;
  GQueue                 unwritten_noreply;
  GByteArray            *wbuf;
  gsize                  wpos;
  gboolean               wbuf_has_secret;   /* zero it once written */
  guint                  n_abandoned;       /* abandoned blocking calls in inflight */
  gboolean               unblocking;        /* the unblocker may be sending */
  guint64                total_queued;
  guint64                total_written;
  gint64                 last_read_time;    /* monotonic µs of the last byte read */
  RedisReader           *reader;
  gboolean               closed;
  /* A shutdown done under io_lock, finished when the lock is let go. */
  GError                *shutdown_reason;
  GQueue                 shutdown_unsent;
  GTask                 *shutdown_connect_task;
  GTask                 *shutdown_close_task;

  /* I/O thread only: the side connection ending abandoned blocking
   * calls, while n_abandoned > 0 (started and stopped there in order). */
  RedisUnblocker        *unblocker;
  guint                  n_stopping;        /* unblockers stopped, not done yet */
};

/* Reads go through a buffer of the reading thread: any thread may drive
 * a connection's reads, so the buffer is never shared between threads. */
#define READ_BUFFER_SIZE (64 * 1024)
static GPrivate read_buffer_key = G_PRIVATE_INIT (g_free);

static char *
get_read_buffer (void)
{
  char *buffer = g_private_get (&read_buffer_key);

  if (G_UNLIKELY (buffer == NULL))
    {
      buffer = g_malloc (READ_BUFFER_SIZE);
      g_private_set (&read_buffer_key, buffer);
    }
  return buffer;
}

/* How engine_shutdown() words the error of the calls it finds written
 * (see shutdown_fail_written()): always REDIS_ERROR_CONNECTION_LOST, as
 * they may have run; only the message differs. */
typedef enum
{
  WORDING_LOST,              /* "Connection to … lost after … was sent …: <reason>" */
  WORDING_CLOSED_BY_OWNER,   /* "The connection to … was closed after … was sent …" */
} WrittenWording;

static void engine_shutdown (RedisEngine *self,
                             GError      *reason);
static void try_write       (RedisEngine *self);

/* The flush source: ready while its flag is set. Submitters set the flag
 * and wake the I/O thread once; unlike a ready time, clearing the flag in
 * dispatch costs no extra wake-up (g_source_set_ready_time() signals the
 * context every time it changes). */
typedef struct
{
  GSource source;
  gint    pending;    /* atomic */
} FlushSource;

static gboolean
flush_prepare (GSource *source,
               gint    *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((FlushSource *) source)->pending) != 0;
}

static gboolean
flush_check (GSource *source)
{
  return g_atomic_int_get (&((FlushSource *) source)->pending) != 0;
}

static gboolean
flush_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  g_atomic_int_set (&((FlushSource *) source)->pending, 0);
  return callback (user_data);
}

static GSourceFuncs flush_source_funcs = {
  flush_prepare, flush_check, flush_dispatch, NULL, NULL, NULL,
};

static GSource *
flush_source_new (GSourceFunc   func,
                  RedisEngine  *self,
                  GMainContext *context)
{
  GSource *source = g_source_new (&flush_source_funcs, sizeof (FlushSource));

  g_source_set_static_name (source, "[redispool] flush");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, redis_engine_ref (self),
                         (GDestroyNotify) redis_engine_unref);
  g_source_attach (source, context);
  return source;
}

/* With lock held. The thread iterating the drive context needs no wake-up:
 * it checks the flag before it next polls. */
static void
flush_source_wake (RedisEngine *self)
{
  GMainContext *drive = self->drive;

  g_atomic_int_set (&((FlushSource *) self->flush_source)->pending, 1);
  if (drive == redis_worker_get_context () ? !redis_worker_is_current ()
                                           : !g_main_context_is_owner (drive))
    g_main_context_wakeup (drive);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
set_state (RedisEngine          *self,
           RedisConnectionState  state)
{
  g_atomic_int_set (&self->state, state);
}

static void
release_call (RedisEngine *self,
              RedisCall   *call)
{
  g_atomic_int_add (&self->n_pending, -1);
  if (call->foreign)
    {
      call->foreign = FALSE;
      g_atomic_int_add (&self->n_foreign, -1);
    }
  if (call->on_done != NULL)
    call->on_done (call, call->on_done_data);
  redis_call_unref (call);
}

static gboolean flush_cb (gpointer data);
static gboolean timer_cb (gpointer data);
static void     finish_shutdown (RedisEngine *self);

/* ---- the I/O lock ------------------------------------------------------- */

static void
engine_lock (RedisEngine *self)
{
  g_mutex_lock (&self->io_lock);
  redis_call_defer_begin (FALSE);
}

/* In a callback of one of the engine's own sources: completions of calls
 * made in this context are returned in place. FALSE (and nothing locked)
 * if the source was moved to another context meanwhile. */
static gboolean
engine_lock_in_source (RedisEngine *self)
{
  g_mutex_lock (&self->io_lock);
  if (g_source_is_destroyed (g_main_current_source ()))
    {
      g_mutex_unlock (&self->io_lock);
      return FALSE;
    }
  redis_call_defer_begin (TRUE);
  return TRUE;
}

/* Lets go of the lock, then hands out what was completed under it: every
 * completion first, then the end of a shutdown (the closed handler, failed
 * unsent calls, the close task: a caller told that the close is done finds
 * the replies that came before it delivered already). The caller holds a
 * reference (a source's, or its own). */
static void
engine_unlock (RedisEngine *self)
{
  gboolean shut_down = self->shutdown_reason != NULL;

  g_mutex_unlock (&self->io_lock);
  redis_call_defer_end ();
  if (shut_down)
    finish_shutdown (self);
}

RedisEngine *
redis_engine_new (const RedisOptions *options,
                  GMainContext       *home)
{
  RedisEngine *self = g_new0 (RedisEngine, 1);

  self->ref_count = 1;
  self->options = redis_options_copy (options);
  self->address = redis_options_describe_address (options);
  self->home = home != NULL ? g_main_context_ref (home) : g_main_context_ref_thread_default ();
  /* Connecting happens on the I/O thread; the first home call brings the
   * sources home. */
  self->drive = redis_worker_get_context ();
  g_mutex_init (&self->lock);
  g_mutex_init (&self->io_lock);
  g_queue_init (&self->shutdown_unsent);
  g_queue_init (&self->incoming);
  g_queue_init (&self->waiting);
  g_queue_init (&self->backlog);
  g_queue_init (&self->inflight);
  g_queue_init (&self->unwritten_noreply);
  self->accepting = TRUE;
  self->state = REDIS_CONNECTION_STATE_DISCONNECTED;
  self->wbuf = g_byte_array_new ();
  self->reader = redis_reader_new (options->max_reply_bytes,
                                   options->max_elements,
                                   options->max_line_length,
                                   options->max_depth);
  self->flush_source = flush_source_new (flush_cb, self, self->drive);
  self->timer_source = redis_worker_deadline_source_new ("[redispool] deadline", timer_cb,
                                                         redis_engine_ref (self),
                                                         (GDestroyNotify) redis_engine_unref);
  return self;
}

RedisEngine *
redis_engine_ref (RedisEngine *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
redis_engine_unref (RedisEngine *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;

  /* The sources hold references, so the last one goes after shutdown. */
  g_assert (self->read_source == NULL && self->write_source == NULL);
  g_assert (g_queue_is_empty (&self->inflight) && g_queue_is_empty (&self->waiting));
  g_assert (g_queue_is_empty (&self->backlog) && self->unblocker == NULL);

  if (self->closed_notify != NULL)
    self->closed_notify (self->closed_data);
  if (self->push_notify != NULL)
    self->push_notify (self->push_data);
  clear_source (&self->flush_source);
  clear_source (&self->timer_source);
  g_clear_object (&self->client);
  g_clear_object (&self->stream);
  g_clear_object (&self->connect_cancellable);
  g_byte_array_unref (self->wbuf);
  redis_reader_free (self->reader);
  redis_options_free (self->options);
  g_free (self->address);
  g_free (self->group_address);
  g_main_context_unref (self->home);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->io_lock);
  g_free (self);
}

typedef struct
{
  GDestroyNotify notify;
  gpointer       data;
} NotifyLater;

static NotifyLater *
notify_later_new (GDestroyNotify notify,
                  gpointer       data)
{
  NotifyLater *later = g_new (NotifyLater, 1);

  later->notify = notify;
  later->data = data;
  return later;
}

static gboolean
notify_later_cb (gpointer user_data)
{
  NotifyLater *later = user_data;

  later->notify (later->data);
  return G_SOURCE_REMOVE;
}

void
redis_engine_set_closed_func (RedisEngine           *self,
                              RedisEngineClosedFunc  func,
                              gpointer               user_data,
                              GDestroyNotify         notify)
{
  GDestroyNotify old_notify;
  gpointer old_data;

  g_mutex_lock (&self->lock);
  old_notify = self->closed_notify;
  old_data = self->closed_data;
  self->closed_func = func;
  self->closed_data = user_data;
  self->closed_notify = notify;
  /* The handler may be running right now, on any thread, or we may be
   * inside it: its data is freed once it has returned. */
  if (old_notify != NULL && self->notifying)
    {
      self->stale_notifies = g_slist_prepend (self->stale_notifies,
                                              notify_later_new (old_notify, old_data));
      old_notify = NULL;
    }
  g_mutex_unlock (&self->lock);

  /* Not from inside whatever called us, which may hold references the
   * data's owner counts on. */
  if (old_notify != NULL)
    redis_worker_invoke (notify_later_cb, notify_later_new (old_notify, old_data), g_free);
}

void
redis_engine_set_push_func (RedisEngine         *self,
                            RedisEnginePushFunc  func,
                            gpointer             user_data,
                            GDestroyNotify       notify)
{
  g_return_if_fail (self->push_func == NULL);
  g_return_if_fail (g_atomic_int_get (&self->state) == REDIS_CONNECTION_STATE_DISCONNECTED);

  self->push_func = func;
  self->push_data = user_data;
  self->push_notify = notify;
}

RedisConnectionState
redis_engine_get_state (RedisEngine *self)
{
  return g_atomic_int_get (&self->state);
}

guint
redis_engine_get_n_pending (RedisEngine *self)
{
  return MAX (0, g_atomic_int_get (&self->n_pending));
}

gint64
redis_engine_get_client_id (RedisEngine *self)
{
  gint64 id;

  g_mutex_lock (&self->lock);
  id = self->client_id;
  g_mutex_unlock (&self->lock);
  return id;
}

const RedisOptions *
redis_engine_get_options (RedisEngine *self)
{
  return self->options;
}

gboolean
redis_engine_update_credentials (RedisEngine *self,
                                 const char  *username,
                                 const char  *password)
{
  gboolean taken = FALSE;

  /* Only start_session() and handshake_done_cb() read these, under
   * io_lock, and only once the session starts (PHASE_HANDSHAKE). */
  engine_lock (self);
  if (!self->closed && self->phase < PHASE_HANDSHAKE)
    {
      g_free (self->options->username);
      self->options->username = g_strdup (username);
      redis_options_clear_secret (&self->options->password);
      self->options->password = g_strdup (password);
      taken = TRUE;
    }
  engine_unlock (self);
  return taken;
}

/* ---- deadlines ---------------------------------------------------------- */

/* With io_lock held. The timer lives on the I/O thread: it fires at the
 * earliest deadline only, so moving it is rarely needed. */
static void
arm_timer (RedisEngine *self,
           gint64       deadline)
{
  gint64 current;

  if (deadline == 0 || self->timer_source == NULL)
    return;
  current = g_source_get_ready_time (self->timer_source);
  if (current == -1 || deadline < current)
    g_source_set_ready_time (self->timer_source, deadline);
}

static void
unblocker_failed_cb (GError   *error,
                     gpointer  data)
{
  RedisEngine *self = data;

  redis_engine_ref (self);
  engine_lock (self);
  engine_shutdown (self,
                   g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                "Could not end the wait of a cancelled blocking command "
                                "on %s, so the connection was closed: %s",
                                self->address, error->message));
  engine_unlock (self);
  redis_engine_unref (self);
  g_error_free (error);
}

/* I/O thread: an unblocker was stopped and nothing it sent can reach the
 * server any more. Until then nothing new was written: a CLIENT UNBLOCK
 * still on its way would end the next command. */
static gboolean
unblocker_stopped_cb (gpointer data)
{
  RedisEngine *self = data;

  self->n_stopping--;
  engine_lock (self);
  self->unblocking = self->unblocker != NULL || self->n_stopping > 0;
  if (!self->unblocking && !self->closed && self->phase == PHASE_READY)
    try_write (self);
  engine_unlock (self);
  return G_SOURCE_REMOVE;
}

/* I/O thread: starts or stops the side connection that ends abandoned
 * blocking calls, to match n_abandoned now. Scheduled after every change
 * of n_abandoned between 0 and 1, so the last one scheduled wins. */
static gboolean
update_unblocker_in_worker (gpointer data)
{
  RedisEngine *self = data;
  const RedisOptions *o = self->options;
  gboolean wanted;

  engine_lock (self);
  wanted = self->n_abandoned > 0 && !self->closed;
  engine_unlock (self);

  if (wanted && self->unblocker == NULL)
    self->unblocker = redis_unblocker_start (o, redis_engine_get_client_id (self),
                                             o->connect_timeout_ms +
                                               redis_options_get_internal_timeout_ms (o),
                                             unblocker_failed_cb, self);
  else if (!wanted && self->unblocker != NULL)
    {
      self->n_stopping++;
      redis_unblocker_stop (g_steal_pointer (&self->unblocker), unblocker_stopped_cb,
                            redis_engine_ref (self), (GDestroyNotify) redis_engine_unref);
    }
  return G_SOURCE_REMOVE;
}

static void
schedule_unblocker_update (RedisEngine *self)
{
  redis_worker_invoke (update_unblocker_in_worker, redis_engine_ref (self),
                       (GDestroyNotify) redis_engine_unref);
}

/* With io_lock held: the caller of @call gave up on it (@why: cancelled, timed
 * out). The call keeps its place in whichever queue holds it: unsent it is
 * skipped at write time; sent, its reply is dropped when it comes. But a
 * blocking command on the wire would stay blocked on the server and take
 * the next element pushed: its wait is ended there first, and it completes
 * when its reply comes (see the top of this file). */
static void
abandon_call (RedisEngine *self,
              RedisCall   *call,
              GError      *why)
{
  gboolean on_wire = call->write_end > 0;

  if (redis_call_is_completed (call) || call->abandon_error != NULL)
    {
      g_error_free (why);
      return;
    }
  if (!(call->flags & REDIS_COMMAND_FLAG_BLOCKING) || !on_wire || self->closed ||
      (call->kind != REDIS_CALL_COMMAND && call->kind != REDIS_CALL_PIPELINE))
    {
      redis_call_fail_written (call, why, self->total_written);
      return;
    }

  call->abandon_error = why;
  self->unblocking = TRUE;
  if (self->n_abandoned++ == 0)
    schedule_unblocker_update (self);
}

/* With io_lock held: an abandoned call's replies are all in. */
static void
resolve_abandoned (RedisEngine *self,
                   RedisCall   *call)
{
  if (!redis_call_is_completed (call))
    {
      RedisReply *reply = call->reply;

      /* `CLIENT UNBLOCK … ERROR` makes the command answer -UNBLOCKED: the
       * wait was ended and nothing was served. Anything else is what the
       * server produced first, and it is the caller's. */
      if (reply != NULL && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR &&
          g_str_has_prefix (redis_reply_get_string (reply, &(gsize) { 0 }), "UNBLOCKED"))
        redis_call_fail (call, g_steal_pointer (&call->abandon_error));
      else
        redis_call_finish_replies (call);
    }

  if (--self->n_abandoned == 0)
    {
      schedule_unblocker_update (self);
      try_write (self);   /* what waited behind it */
    }
}

typedef struct
{
  RedisEngine *engine;
  RedisCall   *call;
} CancelWatch;

static void
cancel_watch_free (gpointer data)
{
  CancelWatch *watch = data;

  redis_engine_unref (watch->engine);
  redis_call_unref (watch->call);
  g_free (watch);
}

static gboolean
call_cancelled_cb (GCancellable *cancellable,
                   gpointer      data)
{
  CancelWatch *watch = data;

  engine_lock (watch->engine);
  abandon_call (watch->engine, watch->call,
                g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled"));
  engine_unlock (watch->engine);
  return G_SOURCE_REMOVE;
}

/* With io_lock held: a call has just arrived from the incoming queue. A
 * sync caller driving its own call watches its cancellable itself. */
static void
watch_call (RedisEngine *self,
            RedisCall   *call)
{
  arm_timer (self, call->deadline);

  if (call->cancellable != NULL && call->cancel_source == NULL && !call->self_driven)
    {
      CancelWatch *watch = g_new (CancelWatch, 1);

      watch->engine = redis_engine_ref (self);
      watch->call = redis_call_ref (call);
      call->cancel_source = g_cancellable_source_new (call->cancellable);
      g_source_set_static_name (call->cancel_source, "[redispool] cancel");
      g_source_set_callback (call->cancel_source, (GSourceFunc) call_cancelled_cb,
                             watch, cancel_watch_free);
      g_source_attach (call->cancel_source, redis_worker_get_context ());
    }
}

static void queue_write (RedisEngine *self,
                         RedisCall   *call);

/* With io_lock held: one PING, internal (no caller waits; its reply is
 * dropped). */
static void
send_health_check (RedisEngine *self)
{
  RedisCall *call;

  call = redis_call_new_internal (REDIS_CALL_COMMAND,
                                  (const char * const *[]) { (const char *[]) { "PING", NULL }, NULL },
                                  "PING (health check)",
                                  redis_options_get_internal_timeout_ms (self->options),
                                  NULL, NULL);
  call->internal = TRUE;
  queue_write (self, call);
  try_write (self);
}

static gboolean timer_locked (RedisEngine *self);

static gboolean
timer_cb (gpointer data)
{
  RedisEngine *self = data;
  gboolean again;

  engine_lock (self);
  again = !self->closed && timer_locked (self);
  engine_unlock (self);
  return again ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void     move_sources_locked (RedisEngine  *self,
                                     GMainContext *target);
static gboolean read_available      (RedisEngine  *self,
                                     guint         max_rounds);

/* Keeps in *@next the earliest of the times it is given (0: none yet). */
static void
keep_earliest (gint64 *next,
               gint64  time)
{
  if (*next == 0 || time < *next)
    *next = time;
}

/* When an idle connection is due for its next health check. */
static gint64
health_check_due (RedisEngine *self)
{
  return self->last_read_time + (gint64) self->options->health_check_ms * G_TIME_SPAN_MILLISECOND;
}

/* Whether a written call is overdue, or a health check is. */
static gboolean
anything_due (RedisEngine *self,
              gint64       now)
{
  if (self->options->health_check_ms > 0 && g_queue_is_empty (&self->inflight) &&
      now >= health_check_due (self))
    return TRUE;
  for (GList *l = self->inflight.head; l != NULL; l = l->next)
    {
      RedisCall *call = l->data;

      if (call->deadline != 0 && call->deadline <= now)
        return TRUE;
    }
  return FALSE;
}

/* Timer, job 1: calls not written yet (waiting for the connection, or in
 * the backlog) whose deadline passed fail with SEND_TIMEOUT: never sent,
 * safe to retry. Completed ones leave. */
static void
expire_unsent (RedisEngine *self,
               gint64       now,
               gint64      *next)
{
  for (GQueue *queue = &self->waiting; queue != NULL;
       queue = queue == &self->waiting ? &self->backlog : NULL)
    for (GList *l = queue->head, *next_l; l != NULL; l = next_l)
      {
        RedisCall *call = l->data;

        next_l = l->next;
        if (!redis_call_is_completed (call) && call->deadline != 0 && call->deadline <= now)
          redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT,
                                              "%s was not sent before its deadline: %s",
                                              redis_call_get_name (call),
                                              queue == &self->waiting ?
                                                "no connection yet" :
                                                "the calls before it were still being written"));
        if (redis_call_is_completed (call))
          {
            g_queue_delete_link (queue, l);
            release_call (self, call);
          }
        else if (call->deadline != 0)
          keep_earliest (next, call->deadline);
      }
}

/* Timer, job 2: written calls whose deadline passed are given up on with
 * TIMEOUT (abandon_call(): they keep their slot in the FIFO). */
static void
expire_inflight (RedisEngine *self,
                 gint64       now,
                 gint64      *next)
{
  for (GList *l = self->inflight.head; l != NULL; l = l->next)
    {
      RedisCall *call = l->data;

      if (redis_call_is_completed (call) || call->deadline == 0 || call->abandon_error != NULL)
        continue;
      if (call->deadline <= now)
        abandon_call (self, call,
                      g_error_new (REDIS_ERROR, REDIS_ERROR_TIMEOUT,
                                   "No reply to %s from %s before the deadline; "
                                   "the command may still run and its late "
                                   "reply will be discarded",
                                   redis_call_get_name (call),
                                   self->address));
      else
        keep_earliest (next, call->deadline);
    }
}

/* Timer, job 3, stall detection: the oldest written call is overdue (even
 * if it was abandoned) and nothing at all has come from the server for
 * stall-timeout since. A blackholed or half-open connection looks like
 * that; a slow command (DEBUG SLEEP) usually does not last that long. The
 * connection is then closed as lost (FALSE), and a pool replaces it. */
static gboolean
detect_stall (RedisEngine *self,
              gint64       now,
              gint64      *next)
{
  RedisCall *head = g_queue_peek_head (&self->inflight);
  gint64 quiet_since, stall_at;

  if (self->options->stall_timeout_ms == 0 || self->phase != PHASE_READY ||
      head == NULL || head->deadline == 0 || head->write_start >= self->total_written)
    return TRUE;

  quiet_since = MAX (self->last_read_time, head->deadline);
  stall_at = quiet_since + (gint64) self->options->stall_timeout_ms * G_TIME_SPAN_MILLISECOND;
  if (now >= stall_at)
    {
      engine_shutdown (self,
                       g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                    "The connection to %s stalled: replies are overdue "
                                    "and nothing arrived for %u ms",
                                    self->address, self->options->stall_timeout_ms));
      return FALSE;
    }
  keep_earliest (next, stall_at);
  return TRUE;
}

/* Timer, job 4, health check: an idle connection gets a PING every
 * interval, so that a peer that vanished (half-open) is found by the stall
 * detection before a user command meets it. FALSE if the engine closed. */
static gboolean
check_health (RedisEngine *self,
              gint64       now,
              gint64      *next)
{
  gint64 due;

  if (self->options->health_check_ms == 0 || self->phase != PHASE_READY ||
      !g_queue_is_empty (&self->inflight))
    return TRUE;

  due = health_check_due (self);
  if (now >= due)
    {
      send_health_check (self);
      if (self->closed)
        return FALSE;
      due = now + (gint64) self->options->health_check_ms * G_TIME_SPAN_MILLISECOND;
    }
  keep_earliest (next, due);
  return TRUE;
}

/* With io_lock held, when the timer fires: the four jobs above, then the
 * timer is set for the earliest time one of them is due again. FALSE if
 * the engine closed meanwhile. */
static gboolean
timer_locked (RedisEngine *self)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = 0;

  /* Something is due while the sources are in the home context, whose
   * loop may not be running (maybe that is why): the I/O thread takes the
   * reading over, and reads what has come before judging anything overdue
   * or stalled. The next home call brings the sources back. */
  if (self->phase == PHASE_READY && self->drive != redis_worker_get_context () &&
      anything_due (self, now))
    {
      move_sources_locked (self, redis_worker_get_context ());
      read_available (self, 0);
      if (self->closed)
        return FALSE;
    }

  expire_unsent (self, now, &next);
  expire_inflight (self, now, &next);
  if (!detect_stall (self, now, &next) || !check_health (self, now, &next))
    return FALSE;

  if (next != 0)
    g_source_set_ready_time (self->timer_source, next);
  return TRUE;
}

/* ---- writing ------------------------------------------------------------ */

/* With io_lock held: whether @len more bytes must wait in the backlog. */
static gboolean
must_hold_back (RedisEngine *self,
                gsize        len)
{
  gsize unwritten = self->wbuf->len - self->wpos;

  return self->n_abandoned > 0 || self->unblocking ||
         (unwritten > 0 && len > WBUF_SOFT_LIMIT - MIN (unwritten, WBUF_SOFT_LIMIT));
}

static void put_on_wire (RedisEngine *self,
                         RedisCall   *call);

/* With io_lock held: put @call (owned) on the wire, after everything before it. */
static void
queue_write (RedisEngine *self,
             RedisCall   *call)
{
  if (redis_call_is_completed (call))
    {
      /* Cancelled or timed out before a byte was written: never sent. */
      release_call (self, call);
      return;
    }

  if (!g_queue_is_empty (&self->backlog) ||
      must_hold_back (self, call->len))
    g_queue_push_tail (&self->backlog, call);
  else
    put_on_wire (self, call);
}

/* With io_lock held: moves what may go from the backlog to wbuf. */
static void
drain_backlog (RedisEngine *self)
{
  RedisCall *call;

  while ((call = g_queue_peek_head (&self->backlog)) != NULL)
    {
      if (redis_call_is_completed (call))
        {
          g_queue_pop_head (&self->backlog);
          release_call (self, call);
          continue;
        }
      if (must_hold_back (self, call->len))
        break;
      g_queue_pop_head (&self->backlog);
      put_on_wire (self, call);
    }
}

static void
put_on_wire (RedisEngine *self,
             RedisCall   *call)
{
  gsize len = call->len;
  const guint8 *data = call->data;

  call->write_start = self->total_queued;
  g_byte_array_append (self->wbuf, data, len);
  self->total_queued += len;
  call->write_end = self->total_queued;
  if (call->secret)
    {
      /* The only copy left is in wbuf, zeroed once written. */
      explicit_bzero ((gpointer) data, len);
      self->wbuf_has_secret = TRUE;
    }
  /* One command, one reply: no array needed (the common case). */
  if (call->kind != REDIS_CALL_COMMAND)
    call->replies = g_ptr_array_new_full (call->n_replies, (GDestroyNotify) redis_reply_unref);
  g_queue_push_tail (&self->inflight, call);

  if (call->kind == REDIS_CALL_NOREPLY)
    g_queue_push_tail (&self->unwritten_noreply, redis_call_ref (call));
}

static gboolean
writable_cb (GObject  *stream,
             gpointer  data)
{
  RedisEngine *self = data;

  if (!engine_lock_in_source (self))
    return G_SOURCE_REMOVE;
  g_clear_pointer (&self->write_source, g_source_unref);
  try_write (self);
  engine_unlock (self);
  return G_SOURCE_REMOVE;
}

static void
watch_writable (RedisEngine *self)
{
  self->write_source = g_pollable_output_stream_create_source (self->out, NULL);
  g_source_set_static_name (self->write_source, "[redispool] write");
  /* Not blocked around dispatch: that removes and re-adds its poll fd,
   * waking the context twice per dispatch. */
  g_source_set_can_recurse (self->write_source, TRUE);
  g_source_set_callback (self->write_source, (GSourceFunc) writable_cb,
                         redis_engine_ref (self),
                         (GDestroyNotify) redis_engine_unref);
  g_source_attach (self->write_source, self->drive);
}

static void
complete_written_noreply (RedisEngine *self)
{
  RedisCall *call;

  while ((call = g_queue_peek_head (&self->unwritten_noreply)) != NULL &&
         call->write_end <= self->total_written)
    {
      g_queue_pop_head (&self->unwritten_noreply);
      redis_call_finish_written (call);
      redis_call_unref (call);
    }
}

/* With io_lock held: write as much of wbuf as the socket takes, without blocking. */
static void
try_write (RedisEngine *self)
{
  while (self->wpos < self->wbuf->len)
    {
      GError *error = NULL;
      gssize n;

      n = g_pollable_output_stream_write_nonblocking (self->out,
                                                      self->wbuf->data + self->wpos,
                                                      self->wbuf->len - self->wpos,
                                                      NULL, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_error_free (error);
              if (self->write_source == NULL)
                watch_writable (self);
              break;
            }

          engine_shutdown (self,
                           g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                        "Writing to %s failed: %s",
                                        self->address, error->message));
          g_error_free (error);
          return;
        }

      self->wpos += n;
      self->total_written += n;
    }

  if (self->wpos == self->wbuf->len)
    {
      if (self->wbuf_has_secret)
        {
          explicit_bzero (self->wbuf->data, self->wbuf->len);
          self->wbuf_has_secret = FALSE;
        }
      self->wpos = 0;
      /* Keep a moderate buffer for the next turn; drop a huge one. */
      if (self->wbuf->len > 1024 * 1024)
        {
          g_byte_array_unref (self->wbuf);
          self->wbuf = g_byte_array_new ();
        }
      else
        g_byte_array_set_size (self->wbuf, 0);
    }
  else if (self->wpos > 64 * 1024 && self->wpos > self->wbuf->len / 2)
    {
      if (self->wbuf_has_secret)
        explicit_bzero (self->wbuf->data, self->wpos);
      g_byte_array_remove_range (self->wbuf, 0, self->wpos);
      self->wpos = 0;
    }

  complete_written_noreply (self);

  /* Room again: what waited in the backlog goes in the same turn. */
  if (self->wpos == 0 && self->wbuf->len == 0 && !g_queue_is_empty (&self->backlog))
    {
      drain_backlog (self);
      if (self->wbuf->len > 0)
        try_write (self);
    }
}

/* With io_lock held, before writing to a connection with nothing in
 * flight: whatever the server sent meanwhile belongs to no call, and must
 * be found now (PROTOCOL: the connection closes, and what was about to be
 * written goes elsewhere), not taken later for the reply of the next
 * command. From a source of the drive context the last poll tells, for
 * free, whether the socket has anything; a sync caller reads to see. */
static void
account_for_stray_bytes (RedisEngine *self,
                         gboolean     from_source)
{
  if (self->phase != PHASE_READY || self->closed || !g_queue_is_empty (&self->inflight))
    return;
  if (from_source)
    {
      if (self->read_source == NULL ||
          !(g_source_query_unix_fd (self->read_source, self->read_tag) & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
        return;
    }
  read_available (self, 0);
}

/* With io_lock held: takes in what was submitted. */
static void
flush_locked (RedisEngine *self)
{
  GQueue batch = G_QUEUE_INIT;
  RedisCall *call;
  gboolean ready;

  g_mutex_lock (&self->lock);
  batch = self->incoming;
  g_queue_init (&self->incoming);
  g_mutex_unlock (&self->lock);

  if (self->closed)
    {
      /* Raced with shutdown: shutdown already took the queue. */
      g_assert (g_queue_is_empty (&batch));
      return;
    }

  ready = self->phase == PHASE_READY;
  while ((call = g_queue_pop_head (&batch)) != NULL)
    {
      watch_call (self, call);
      if (ready)
        queue_write (self, call);
      else
        g_queue_push_tail (&self->waiting, call);
    }

  if (ready)
    try_write (self);
}

static gboolean
flush_cb (gpointer data)
{
  RedisEngine *self = data;

  if (!engine_lock_in_source (self))
    return G_SOURCE_REMOVE;
  account_for_stray_bytes (self, TRUE);
  flush_locked (self);
  engine_unlock (self);
  return G_SOURCE_CONTINUE;
}

static GSource *read_source_new (RedisEngine  *self,
                                 GMainContext *context);

/* With io_lock held: moves the read, write and flush sources to @target
 * (the home context or the I/O thread's), between two turns of either. */
static void
move_sources_locked (RedisEngine  *self,
                     GMainContext *target)
{
  GSource *old_flush;

  if (self->closed || self->phase != PHASE_READY || self->drive == target)
    return;

  clear_source (&self->read_source);
  if (self->write_source != NULL)
    clear_source (&self->write_source);

  g_mutex_lock (&self->lock);
  self->drive = target;
  old_flush = g_steal_pointer (&self->flush_source);
  self->flush_source = flush_source_new (flush_cb, self, target);
  if (!g_queue_is_empty (&self->incoming))
    flush_source_wake (self);
  g_mutex_unlock (&self->lock);
  clear_source (&old_flush);

  self->read_source = read_source_new (self, target);
  if (self->wpos < self->wbuf->len)
    watch_writable (self);
}

/* Whether @call needs progress whatever the home loop does: the async
 * call of another context, a sync call its caller does not drive, an
 * internal call. */
static gboolean
is_foreign (RedisEngine *self,
            RedisCall   *call)
{
  if (call->task != NULL)
    return g_task_get_context (call->task) != self->home;
  return TRUE;
}

static void
move_sources (RedisEngine  *self,
              GMainContext *target)
{
  engine_lock (self);
  if (target == self->home && g_atomic_int_get (&self->n_foreign) > 0)
    target = NULL;   /* changed meanwhile */
  if (target != NULL)
    move_sources_locked (self, target);
  engine_unlock (self);
}

gboolean
redis_engine_submit (RedisEngine *self,
                     RedisCall   *call)
{
  GMainContext *worker = redis_worker_get_context ();
  GMainContext *target = NULL;
  gboolean driven = FALSE;

  g_mutex_lock (&self->lock);
  if (!self->accepting)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  /* A sync caller offering to drive its own call: the first engine that
   * takes the call says so, with a reference (see redis_engine_drive()). */
  if (g_atomic_pointer_get (&call->drive_engine) == REDIS_CALL_DRIVE_OFFERED)
    {
      redis_engine_ref (self);
      driven = g_atomic_pointer_compare_and_exchange (&call->drive_engine,
                                                      REDIS_CALL_DRIVE_OFFERED, self);
      if (!driven)
        redis_engine_unref (self);
    }
  g_atomic_int_inc (&self->n_pending);
  g_queue_push_tail (&self->incoming, redis_call_ref (call));
  if (!driven && is_foreign (self, call))
    {
      call->foreign = TRUE;
      if (g_atomic_int_add (&self->n_foreign, 1) == 0 && self->drive != worker)
        target = worker;
    }
  else if (!driven && self->drive != self->home && g_atomic_int_get (&self->n_foreign) == 0 &&
           g_atomic_int_get (&self->state) == REDIS_CONNECTION_STATE_READY)
    target = self->home;
  /* One wake-up per batch: the flush drains everything queued until then,
   * so commands submitted in one main-loop turn go out in one write. A
   * sync caller driving its call flushes it itself. */
  if (!driven && self->incoming.length == 1)
    flush_source_wake (self);
  g_mutex_unlock (&self->lock);

  if (target != NULL)
    move_sources (self, target);
  return TRUE;
}

/* ---- sync callers driving their own call -------------------------------- */

/* With io_lock held: the driver gives up driving @call (it waits in
 * `waiting` for a connection, or moved): from now on it needs the loop of
 * the I/O thread, like any call its caller does not drive. */
static void
stop_driving (RedisEngine *self,
              RedisCall   *call)
{
  gboolean wake = FALSE;

  call->self_driven = FALSE;
  g_mutex_lock (&self->lock);
  if (!call->foreign && g_queue_find (&self->incoming, call) != NULL)
    {
      call->foreign = TRUE;
      g_atomic_int_inc (&self->n_foreign);
      wake = TRUE;
    }
  if (wake)
    flush_source_wake (self);
  g_mutex_unlock (&self->lock);
  if (self->drive != redis_worker_get_context ())
    move_sources_locked (self, redis_worker_get_context ());
}

/* With io_lock held, while its caller drives @call (and so watches its
 * cancellable and deadline itself, not the timer): gives up on it if it
 * was cancelled, or its deadline passed (abandoned if written, see
 * abandon_call(); failed unsent otherwise). */
static void
drive_give_up_if_due (RedisEngine *self,
                      RedisCall   *call,
                      gint64       now)
{
  if (call->cancellable != NULL && g_cancellable_is_cancelled (call->cancellable))
    abandon_call (self, call, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                   "Operation was cancelled"));
  else if (call->deadline != 0 && call->deadline <= now && call->write_end > 0)
    abandon_call (self, call, g_error_new (REDIS_ERROR, REDIS_ERROR_TIMEOUT,
                                           "No reply to %s from %s before the deadline; "
                                           "the command may still run and its late "
                                           "reply will be discarded",
                                           redis_call_get_name (call), self->address));
  else if (call->deadline != 0 && call->deadline <= now)
    redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT,
                                        "%s was not sent before its deadline: "
                                        "the calls before it were still being written",
                                        redis_call_get_name (call)));
}

void
redis_engine_drive (RedisEngine     *self,
                    RedisCall       *call,
                    RedisCallWaiter *waiter)
{
  const RedisWakeFd *wake = redis_wake_fd_get ();
  GPollFD fds[3];
  gboolean have_cancel_fd = FALSE;
  guint n_fds;

  engine_lock (self);
  if (self->closed)
    {
      /* The call was taken by the shutdown: it failed, or moved on. */
      engine_unlock (self);
      return;
    }
  if (self->phase != PHASE_READY)
    {
      stop_driving (self, call);
      engine_unlock (self);
      return;
    }

  /* Alone on the socket if nothing else needs the I/O thread: then no
   * other thread wakes when the reply comes. */
  if (self->drive == redis_worker_get_context () && self->home != self->drive &&
      g_atomic_int_get (&self->n_foreign) == 0)
    move_sources_locked (self, self->home);

  account_for_stray_bytes (self, FALSE);
  if (self->closed)
    {
      /* Stray bytes: the call, unsent, went to the closed handler. */
      engine_unlock (self);
      return;
    }
  call->self_driven = TRUE;
  flush_locked (self);

  if (call->cancellable != NULL)
    have_cancel_fd = g_cancellable_make_pollfd (call->cancellable, &fds[2]);

  while (!redis_call_is_completed (call) && !self->closed)
    {
      gint64 now;
      int timeout = -1;

      /* What has come, including a TLS layer's decrypted records. */
      read_available (self, 0);
      if (redis_call_is_completed (call) || self->closed)
        break;

      now = g_get_monotonic_time ();
      drive_give_up_if_due (self, call, now);
      if (redis_call_is_completed (call))
        break;
      if (call->deadline != 0)
        timeout = (int) MIN ((call->deadline - now + 999) / 1000, G_MAXINT);

      fds[0].fd = self->fd;
      fds[0].events = G_IO_IN | G_IO_HUP | G_IO_ERR | (self->wpos < self->wbuf->len ? G_IO_OUT : 0);
      fds[0].revents = 0;
      fds[1].fd = wake->read_fd;
      fds[1].events = G_IO_IN;
      fds[1].revents = 0;
      n_fds = have_cancel_fd ? 3 : 2;

      /* Whoever else completes the call (another thread reading this
       * socket, a timer, a shutdown) signals the wake-up fd. */
      if (!redis_call_waiter_set_wake (waiter, wake))
        break;
      engine_unlock (self);

      g_poll (fds, n_fds, timeout);

      redis_call_waiter_set_wake (waiter, NULL);
      if (fds[1].revents != 0)
        redis_wake_fd_drain (wake);
      engine_lock (self);

      if (!self->closed && (fds[0].revents & G_IO_OUT) && self->wpos < self->wbuf->len)
        try_write (self);
    }

  call->self_driven = FALSE;
  engine_unlock (self);

  if (have_cancel_fd)
    g_cancellable_release_fd (call->cancellable);
}

/* ---- reading ------------------------------------------------------------ */

static void
maybe_finish_graceful_close (RedisEngine *self)
{
  if (self->close_task != NULL && g_queue_is_empty (&self->inflight))
    engine_shutdown (self,
                     g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                  "The connection to %s was closed", self->address));
}

/* With io_lock held. Returns FALSE if the engine shut down. */
static gboolean
dispatch_reply (RedisEngine *self,
                RedisReply  *reply)
{
  RedisCall *call;
  const char *unusable = NULL;

  /* A subscribed connection: its pushes belong to no call. None comes
   * before the handshake is done (nothing is subscribed yet), whose
   * replies (ROLE: an array) are the handshake's. */
  if (G_UNLIKELY (self->push_func != NULL) && self->phase == PHASE_READY)
    switch (self->push_func (reply, self->push_data))
      {
      case REDIS_ENGINE_PUSH_TAKEN:
        redis_reply_unref (reply);
        return TRUE;
      case REDIS_ENGINE_PUSH_INVALID:
        redis_reply_unref (reply);
        engine_shutdown (self,
                         g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                      "Protocol error: %s sent a malformed push frame "
                                      "on a subscribed connection",
                                      self->address));
        return FALSE;
      case REDIS_ENGINE_PUSH_PASS:
      default:
        break;
      }

  call = g_queue_peek_head (&self->inflight);
  if (call == NULL || call->write_start >= self->total_written)
    {
      redis_reply_unref (reply);
      engine_shutdown (self,
                       g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                    "Protocol error: %s sent a reply nobody asked for",
                                    self->address));
      return FALSE;
    }

  if (!redis_call_reply_in_step (call, call->n_replies - call->replies_left, reply))
    {
      redis_reply_unref (reply);
      engine_shutdown (self,
                       g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                    "Protocol error: %s answered %s out of step (a reply "
                                    "that cannot be that call's: a stray reply taken for "
                                    "it, or for a no-reply call, a server that does not "
                                    "implement CLIENT REPLY)",
                                    self->address,
                                    redis_call_get_name (call)));
      return FALSE;
    }

  /* Sentinel: a server that says it is no longer what was asked for
   * (a demoted primary) is left for a new discovery, once this reply is
   * delivered. */
  if (G_UNLIKELY (self->options->sentinel != NULL) &&
      redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR)
    unusable = redis_sentinel_reply_means_unusable (self->options->role, reply);

  if (redis_call_is_completed (call))
    redis_reply_unref (reply);     /* a late reply: its caller has moved on */
  else
    {
      if (call->replies != NULL)
        g_ptr_array_add (call->replies, reply);
      else if (call->reply == NULL)
        call->reply = reply;
      else
        redis_reply_unref (reply);   /* cannot happen: one reply expected */
    }

  if (--call->replies_left == 0)
    {
      g_queue_pop_head (&self->inflight);
      if (call->abandon_error != NULL)
        resolve_abandoned (self, call);
      else if (!redis_call_is_completed (call))
        redis_call_finish_replies (call);
      if (call->internal)
        redis_call_unref (call);
      else
        release_call (self, call);
      maybe_finish_graceful_close (self);
    }

  if (G_UNLIKELY (unusable != NULL) && !self->closed)
    engine_shutdown (self,
                     g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                  "%s answered %s: the connection is replaced and the "
                                  "server discovered again through Sentinel",
                                  self->address, unusable));
  return !self->closed;
}

/* With io_lock held: reads and dispatches what the socket has, until it
 * would block, or, with @max_rounds, until that many full buffers were
 * read (then TRUE: there may be more). */
static gboolean
read_available (RedisEngine *self,
                guint        max_rounds)
{
  char *buffer = get_read_buffer ();
  guint round;

  for (round = 0; (max_rounds == 0 || round < max_rounds) && !self->closed; round++)
    {
      GError *error = NULL;
      RedisReply *reply;
      gboolean ok;
      gssize n;

      n = g_pollable_input_stream_read_nonblocking (self->in, buffer,
                                                    READ_BUFFER_SIZE, NULL, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_error_free (error);
              break;
            }
          engine_shutdown (self,
                           g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                        "Reading from %s failed: %s",
                                        self->address, error->message));
          g_error_free (error);
          return FALSE;
        }
      if (n == 0)
        {
          engine_shutdown (self,
                           g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                        "%s closed the connection", self->address));
          return FALSE;
        }
      self->last_read_time = g_get_monotonic_time ();

      ok = redis_reader_feed (self->reader, buffer, n, &error);
      while ((reply = redis_reader_pop (self->reader)) != NULL)
        if (!dispatch_reply (self, reply))
          {
            g_clear_error (&error);
            return FALSE;
          }

      if (ok && redis_reader_has_failed (self->reader))
        {
          ok = FALSE;
          error = g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                               "Protocol error: %s sent a reply that could not be parsed",
                               self->address);
        }

      if (!ok)
        {
          RedisCall *head = g_queue_peek_head (&self->inflight);

          /* The caller whose reply was bad learns why; the connection
           * cannot be trusted any more and closes. */
          if (head != NULL)
            redis_call_fail_written (head, g_error_copy (error), self->total_written);
          engine_shutdown (self, error);
          return FALSE;
        }

      /* A short read emptied a plain socket. A TLS stream may hold more
       * records already decrypted: a caller that polls the raw socket next
       * (max_rounds 0) reads until the stream would block. */
      if ((gsize) n < READ_BUFFER_SIZE && (max_rounds != 0 || !self->options->tls))
        break;
    }

  return !self->closed && max_rounds != 0 && round == max_rounds;
}

static gboolean
readable_cb (gpointer data)
{
  RedisEngine *self = data;
  gboolean more;

  if (!engine_lock_in_source (self))
    return G_SOURCE_REMOVE;

  /* Bounded per dispatch so one busy connection cannot starve the others;
   * stopped by the bound with data possibly left (in the socket or in the
   * TLS layer's buffer), it comes back on the next iteration. */
  more = read_available (self, 16);
  if (more)
    g_source_set_ready_time (self->read_source, 0);
  engine_unlock (self);
  return G_SOURCE_CONTINUE;
}

/* ---- shutdown ----------------------------------------------------------- */

static void
stream_closed_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      data)
{
  g_io_stream_close_finish (G_IO_STREAM (object), result, NULL);
  g_object_unref (object);
}

/* I/O thread: a shutdown may happen on any thread, including one whose
 * loop never runs again; the stream is closed where its close completes. */
static gboolean
close_stream_in_worker (gpointer data)
{
  g_io_stream_close_async (G_IO_STREAM (data), G_PRIORITY_DEFAULT, NULL,
                           stream_closed_cb, NULL);
  return G_SOURCE_REMOVE;
}

/* With io_lock held: refuse new calls; what was submitted and not taken
 * in yet joins @unsent. */
static void
shutdown_stop_accepting (RedisEngine *self,
                         GQueue      *unsent)
{
  g_mutex_lock (&self->lock);
  self->accepting = FALSE;
  *unsent = self->incoming;
  g_queue_init (&self->incoming);
  clear_source (&self->flush_source);
  g_mutex_unlock (&self->lock);

  set_state (self, REDIS_CONNECTION_STATE_CLOSED);
}

/* With io_lock held: nothing of the engine runs any more (its sources, a
 * connect in progress); the unblocker is told to stop. */
static void
shutdown_stop_sources (RedisEngine *self)
{
  clear_source (&self->read_source);
  clear_source (&self->write_source);
  clear_source (&self->timer_source);
  clear_source (&self->connect_timer);
  clear_source (&self->connect_cancel_source);
  clear_source (&self->close_timer);
  if (self->connect_cancellable != NULL)
    g_cancellable_cancel (self->connect_cancellable);
  if (self->n_abandoned > 0)
    schedule_unblocker_update (self);
}

/* With io_lock held: @call, taken from inflight, had bytes written. It
 * may have run, so it fails with CONNECTION_LOST, never CLOSED (which
 * promises the opposite), even when the close was its owner's (dispose):
 * @wording only picks the message. Its caller also learns which of its
 * commands were written whole, and gets the replies that arrived. */
static void
shutdown_fail_written (RedisEngine    *self,
                       RedisCall      *call,
                       WrittenWording  wording,
                       const GError   *reason)
{
  GError *error;

  if (call->abandon_error != NULL)
    {
      /* Its caller gave up on it, and the reply that would tell whether
       * the server ended its wait or served it first (a BLPOP popping an
       * element as the cancel came) is lost with the connection: it may
       * have run, like any written call. Not the caller's CANCELLED, which
       * would say that nothing happened. */
      g_clear_error (&call->abandon_error);
      if (wording == WORDING_CLOSED_BY_OWNER)
        error = g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                             "The connection to %s was closed before the server confirmed "
                             "the end of %s, given up on (it may have been served)",
                             self->address, redis_call_get_name (call));
      else
        error = g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                             "Connection to %s lost before the server confirmed the end of "
                             "%s, given up on (it may have been served): %s",
                             self->address, redis_call_get_name (call), reason->message);
      redis_call_fail_written (call, error, self->total_written);
      return;
    }
  if (redis_call_is_completed (call))
    return;

  if (wording == WORDING_CLOSED_BY_OWNER)
    error = g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                         "The connection to %s was closed after %s was sent, before its "
                         "reply (it may have run)",
                         self->address, redis_call_get_name (call));
  else
    error = g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                         "Connection to %s lost after %s was sent (it may have run): %s",
                         self->address, redis_call_get_name (call), reason->message);
  redis_call_fail_written (call, error, self->total_written);
}

/* With io_lock held: empties the engine's queues. Calls never put on the
 * wire (waiting, backlog) and those of inflight of which not a byte was
 * written join @unsent, safe to send elsewhere; written no-reply calls
 * complete; the other written calls fail (shutdown_fail_written()), and
 * internal ones with @reason. */
static void
shutdown_settle_calls (RedisEngine    *self,
                       GQueue         *unsent,
                       WrittenWording  wording,
                       const GError   *reason)
{
  RedisCall *call;

  while ((call = g_queue_pop_head (&self->waiting)) != NULL)
    g_queue_push_tail (unsent, call);
  while ((call = g_queue_pop_head (&self->backlog)) != NULL)
    g_queue_push_tail (unsent, call);

  while ((call = g_queue_pop_head (&self->unwritten_noreply)) != NULL)
    {
      if (call->write_end <= self->total_written)
        redis_call_finish_written (call);
      redis_call_unref (call);
    }

  while ((call = g_queue_pop_head (&self->inflight)) != NULL)
    {
      if (call->internal)
        {
          redis_call_fail (call, g_error_copy (reason));
          redis_call_unref (call);
        }
      else if (call->write_start >= self->total_written && call->abandon_error != NULL)
        {
          /* A blocking call given up on while it waited in wbuf: not a
           * byte of it went out, so it never ran and its caller's outcome
           * stands. Not sent elsewhere: it would run there with its
           * abandonment attached, and that engine would count an
           * abandoned call it never had. */
          redis_call_fail (call, g_steal_pointer (&call->abandon_error));
          release_call (self, call);
        }
      else if (call->write_start >= self->total_written && !redis_call_is_completed (call))
        {
          /* Not a byte of it was written: safe to send elsewhere. */
          g_clear_pointer (&call->replies, g_ptr_array_unref);
          g_clear_pointer (&call->reply, redis_reply_unref);
          call->replies_left = call->n_replies;
          call->write_start = call->write_end = 0;
          g_queue_push_tail (unsent, call);
        }
      else
        {
          shutdown_fail_written (self, call, wording, reason);
          release_call (self, call);
        }
    }

  self->n_abandoned = 0;
}

/* With io_lock held: calls moving to another engine get their
 * cancellation watched there, and count there as whatever they are
 * there. */
static void
shutdown_detach_unsent (RedisEngine *self,
                        GQueue      *unsent)
{
  for (GList *l = unsent->head; l != NULL; l = l->next)
    {
      RedisCall *moving = l->data;

      clear_source (&moving->cancel_source);
      moving->self_driven = FALSE;
      if (moving->foreign)
        {
          moving->foreign = FALSE;
          g_atomic_int_add (&self->n_foreign, -1);
        }
    }
}

/* With io_lock held. Takes @reason. The one way an engine ends: what it
 * owes to others (the closed handler, unsent calls, tasks) is done by
 * finish_shutdown() once the lock is let go. */
static void
engine_shutdown_worded (RedisEngine    *self,
                        WrittenWording  wording,
                        GError         *reason)
{
  GQueue unsent = G_QUEUE_INIT;

  g_assert (reason != NULL);

  if (self->closed)
    {
      g_error_free (reason);
      return;
    }
  self->closed = TRUE;

  /* Keep ourselves alive: destroying the sources drops their references. */
  redis_engine_ref (self);

  shutdown_stop_accepting (self, &unsent);
  shutdown_stop_sources (self);
  shutdown_settle_calls (self, &unsent, wording, reason);
  shutdown_detach_unsent (self, &unsent);

  if (self->stream != NULL)
    redis_worker_invoke (close_stream_in_worker, g_steal_pointer (&self->stream), NULL);

  self->shutdown_reason = reason;
  self->shutdown_unsent = unsent;
  self->shutdown_connect_task = g_steal_pointer (&self->connect_task);
  self->shutdown_close_task = g_steal_pointer (&self->close_task);
  /* The reference taken above goes in finish_shutdown(). */
}

/* The same, for a connection that was lost or failed (everything but an
 * owner's close). */
static void
engine_shutdown (RedisEngine *self,
                 GError      *reason)
{
  engine_shutdown_worded (self, WORDING_LOST, reason);
}

/* After engine_shutdown(), with io_lock let go: the closed handler first
 * (it may take the unsent calls for another engine), then the rest. */
static void
finish_shutdown (RedisEngine *self)
{
  GQueue unsent = G_QUEUE_INIT;
  RedisEngineClosedFunc closed_func;
  gpointer closed_data;
  GError *reason;
  GSList *stale;
  RedisCall *call;
  GTask *task;

  /* Taken once: the lock is free, but only this holder saw the reason. */
  g_mutex_lock (&self->io_lock);
  reason = g_steal_pointer (&self->shutdown_reason);
  unsent = self->shutdown_unsent;
  g_queue_init (&self->shutdown_unsent);
  g_mutex_unlock (&self->io_lock);
  if (reason == NULL)
    return;

  g_mutex_lock (&self->lock);
  closed_func = self->closed_func;
  closed_data = self->closed_data;
  self->notifying = TRUE;
  g_mutex_unlock (&self->lock);

  /* Internal handshake calls never sit in unsent (they are written first). */
  if (closed_func != NULL)
    closed_func (self, reason, &unsent, closed_data);

  g_mutex_lock (&self->lock);
  self->notifying = FALSE;
  stale = g_steal_pointer (&self->stale_notifies);
  g_mutex_unlock (&self->lock);
  for (GSList *l = stale; l != NULL; l = l->next)
    notify_later_cb (l->data);
  g_slist_free_full (stale, g_free);

  /* Calls the owner did not take (or the owner taking none) fail unsent. */
  while ((call = g_queue_pop_head (&unsent)) != NULL)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                          "%s was not sent: %s",
                                          redis_call_get_name (call),
                                          reason->message));
      release_call (self, call);
    }

  if ((task = g_steal_pointer (&self->shutdown_connect_task)) != NULL)
    {
      /* Whatever ends a connection before it is ready is a failure to
       * connect (auth, TLS and cancellation keep their own codes). */
      if (reason->domain == REDIS_ERROR &&
          (reason->code == REDIS_ERROR_CONNECTION_LOST || reason->code == REDIS_ERROR_PROTOCOL ||
           reason->code == REDIS_ERROR_REPLY_TOO_LARGE || reason->code == REDIS_ERROR_TIMEOUT))
        g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                                 "Could not connect to %s: %s", self->address, reason->message);
      else
        g_task_return_error (task, g_error_copy (reason));
      g_object_unref (task);
    }

  if ((task = g_steal_pointer (&self->shutdown_close_task)) != NULL)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }

  if (self->options->sentinel != NULL)
    redis_sentinel_untrack (self->options->sentinel, self);
  g_error_free (reason);
  redis_engine_unref (self);
}

typedef struct
{
  RedisEngine    *engine;
  WrittenWording  wording;
  GError         *reason;
} CloseRequest;

static gboolean
close_in_worker (gpointer data)
{
  CloseRequest *req = data;

  engine_lock (req->engine);
  engine_shutdown_worded (req->engine, req->wording, g_steal_pointer (&req->reason));
  engine_unlock (req->engine);
  return G_SOURCE_REMOVE;
}

static void
close_request_free (gpointer data)
{
  CloseRequest *req = data;

  if (req->reason != NULL)
    g_error_free (req->reason);
  redis_engine_unref (req->engine);
  g_free (req);
}

void
redis_engine_close (RedisEngine *self,
                    GError      *reason)
{
  CloseRequest *req = g_new0 (CloseRequest, 1);

  /* Refuse new calls at once; the rest happens on the I/O thread. */
  g_mutex_lock (&self->lock);
  self->accepting = FALSE;
  g_mutex_unlock (&self->lock);

  req->engine = redis_engine_ref (self);
  /* Written calls fail with CONNECTION_LOST (they may have run), worded
   * as closed by the owner. */
  req->wording = WORDING_CLOSED_BY_OWNER;
  req->reason = reason != NULL ? reason :
    g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED, "The connection to %s was closed",
                 self->address);

  /* Always deferred, even on the I/O thread: callers may be inside one of
   * this engine's own callbacks. */
  redis_worker_invoke (close_in_worker, req, close_request_free);
}

static gboolean
close_timeout_cb (gpointer data)
{
  RedisEngine *self = data;

  engine_lock (self);
  if (!g_source_is_destroyed (g_main_current_source ()))
    {
      g_clear_pointer (&self->close_timer, g_source_unref);
      engine_shutdown (self,
                       g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                    "The connection to %s was closed before all replies arrived",
                                    self->address));
    }
  engine_unlock (self);
  return G_SOURCE_REMOVE;
}

static gboolean
start_graceful_close (gpointer data)
{
  GTask *task = data;
  RedisEngine *self = g_task_get_task_data (task);
  guint timeout_ms = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (task), "timeout-ms"));

  engine_lock (self);
  if (self->closed || self->close_task != NULL)
    {
      engine_unlock (self);
      g_task_return_boolean (task, TRUE);
      return G_SOURCE_REMOVE;
    }

  g_mutex_lock (&self->lock);
  self->accepting = FALSE;
  g_mutex_unlock (&self->lock);

  /* Calls accepted before the close still go out, and their replies are
   * read on the I/O thread: the close must end whatever the home loop does
   * (a close_sync() blocks it). */
  move_sources_locked (self, redis_worker_get_context ());
  flush_locked (self);

  if (self->phase != PHASE_READY || g_queue_is_empty (&self->inflight))
    {
      self->close_task = g_object_ref (task);
      engine_shutdown (self,
                       g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                    "The connection to %s was closed", self->address));
      engine_unlock (self);
      return G_SOURCE_REMOVE;
    }

  set_state (self, REDIS_CONNECTION_STATE_CLOSING);
  self->close_task = g_object_ref (task);
  self->close_timer = g_timeout_source_new (timeout_ms);
  g_source_set_static_name (self->close_timer, "[redispool] close");
  g_source_set_callback (self->close_timer, close_timeout_cb,
                         redis_engine_ref (self), (GDestroyNotify) redis_engine_unref);
  g_source_attach (self->close_timer, redis_worker_get_context ());
  engine_unlock (self);
  return G_SOURCE_REMOVE;
}

void
redis_engine_close_async (RedisEngine         *self,
                          guint                timeout_ms,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, redis_engine_close_async);
  g_task_set_task_data (task, redis_engine_ref (self), (GDestroyNotify) redis_engine_unref);
  g_object_set_data (G_OBJECT (task), "timeout-ms", GUINT_TO_POINTER (MAX (timeout_ms, 1)));

  g_mutex_lock (&self->lock);
  self->accepting = FALSE;
  g_mutex_unlock (&self->lock);

  redis_worker_invoke (start_graceful_close, task, g_object_unref);
}

gboolean
redis_engine_close_finish (RedisEngine   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- connecting --------------------------------------------------------- */

static GError *
connect_error (RedisEngine *self,
               int          code,
               const char  *what,
               const GError *cause)
{
  return g_error_new (REDIS_ERROR, code, "%s %s: %s", what, self->address,
                      cause != NULL ? cause->message : "unknown error");
}

static gboolean
connect_timeout_cb (gpointer data)
{
  RedisEngine *self = data;
  const RedisOptions *o = self->options;
  GError *error;

  engine_lock (self);
  if (g_source_is_destroyed (g_main_current_source ()))
    {
      engine_unlock (self);
      return G_SOURCE_REMOVE;
    }
  g_clear_pointer (&self->connect_timer, g_source_unref);

  switch (self->phase)
    {
    case PHASE_TLS:
      error = g_error_new (REDIS_ERROR, REDIS_ERROR_TLS_FAILED,
                           "TLS handshake with %s did not finish within %u ms "
                           "(is the server speaking TLS?)", self->address, o->connect_timeout_ms);
      break;
    case PHASE_HANDSHAKE:
      error = g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                           "No answer from %s to the connection handshake "
                           "(AUTH/SELECT/CLIENT) within %u ms", self->address, o->connect_timeout_ms);
      break;
    case PHASE_TCP:
    case PHASE_READY:
    default:
      error = g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                           "Could not connect to %s within %u ms", self->address,
                           o->connect_timeout_ms);
      break;
    }

  engine_shutdown (self, error);
  engine_unlock (self);
  return G_SOURCE_REMOVE;
}

static gboolean
connect_cancelled_cb (GCancellable *cancellable,
                      gpointer      data)
{
  RedisEngine *self = data;

  engine_lock (self);
  if (!g_source_is_destroyed (g_main_current_source ()))
    {
      g_clear_pointer (&self->connect_cancel_source, g_source_unref);
      engine_shutdown (self,
                       g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                            "Operation was cancelled"));
    }
  engine_unlock (self);
  return G_SOURCE_REMOVE;
}

/* With io_lock held: FALSE (and the engine shut down) if the handshake command
 * @what failed. NOAUTH means the server wants a password we did not give. */
static gboolean
handshake_step_ok (RedisEngine *self,
                   RedisReply  *reply,
                   const char  *what)
{
  g_autofree char *escaped = NULL;
  const char *text;
  gsize len = 0;

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ERROR)
    return TRUE;

  /* The message gets the server's text escaped (valid UTF-8, no controls). */
  text = redis_reply_get_string (reply, &len);
  escaped = redis_text_escape (text, len);
  /* AUTH_FAILED messages start with the server's text, so that
   * redis_error_get_server_prefix() finds NOAUTH. */
  if (g_str_has_prefix (text, "NOAUTH"))
    engine_shutdown (self,
                     g_error_new (REDIS_ERROR, REDIS_ERROR_AUTH_FAILED,
                                  "%s (%s failed on %s)", escaped, what, self->address));
  else
    engine_shutdown (self,
                     g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                                  "%s failed on %s: %s", what, self->address, escaped));
  return FALSE;
}

static void
handshake_done_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      data)
{
  RedisEngine *self = data;
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  const RedisOptions *o = self->options;
  guint i = 0;
  RedisCall *call;
  GTask *task;

  replies = g_task_propagate_pointer (G_TASK (result), &error);
  engine_lock (self);
  if (replies == NULL || self->closed)
    goto out;   /* shutdown has reported the failure already */

  if (o->password != NULL)
    {
      RedisReply *r = g_ptr_array_index (replies, i++);

      if (redis_reply_get_kind (r) == REDIS_REPLY_KIND_ERROR)
        {
          gsize len = 0;
          const char *text = redis_reply_get_string (r, &len);
          g_autofree char *escaped = redis_text_escape (text, len);

          engine_shutdown (self,
                           g_error_new_literal (REDIS_ERROR, REDIS_ERROR_AUTH_FAILED, escaped));
          goto out;
        }
    }
  if (o->database != 0 && !handshake_step_ok (self, g_ptr_array_index (replies, i++), "SELECT"))
    goto out;
  if (o->client_name != NULL &&
      !handshake_step_ok (self, g_ptr_array_index (replies, i++), "CLIENT SETNAME"))
    goto out;
  if (o->readonly && !handshake_step_ok (self, g_ptr_array_index (replies, i++), "READONLY"))
    goto out;
  if (!handshake_step_ok (self, g_ptr_array_index (replies, i), "CLIENT ID"))
    goto out;
  if (o->sentinel != NULL)
    {
      GError *wrong = redis_sentinel_check_role (o->role, g_ptr_array_index (replies, i + 1),
                                                 self->address);

      if (wrong != NULL)
        {
          engine_shutdown (self, wrong);
          goto out;
        }
      /* Closed when Sentinel announces that this server was replaced. */
      redis_sentinel_track (o->sentinel, self, o, self->address);
    }
  g_mutex_lock (&self->lock);
  self->client_id = redis_reply_get_integer (g_ptr_array_index (replies, i));
  g_mutex_unlock (&self->lock);

  /* Ready: the calls that waited for the handshake go out now. */
  self->phase = PHASE_READY;
  set_state (self, REDIS_CONNECTION_STATE_READY);
  self->last_read_time = g_get_monotonic_time ();
  if (o->health_check_ms > 0)
    arm_timer (self, self->last_read_time + (gint64) o->health_check_ms * G_TIME_SPAN_MILLISECOND);
  clear_source (&self->connect_timer);
  clear_source (&self->connect_cancel_source);
  while ((call = g_queue_pop_head (&self->waiting)) != NULL)
    queue_write (self, call);
  flush_locked (self);
  task = g_steal_pointer (&self->connect_task);
  engine_unlock (self);

  if (task != NULL)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
  redis_engine_unref (self);
  return;

out:
  engine_unlock (self);
  redis_engine_unref (self);
}

/* The read source watches the socket's fd directly rather than through
 * g_pollable_input_stream_create_source(): that one is a child source that
 * GLib blocks around every dispatch, removing and re-adding its fd, which
 * wakes the context twice per read. The callback reads until the stream
 * would block, so data buffered by a TLS layer is never left behind. */
static gboolean
read_dispatch (GSource     *source,
               GSourceFunc  callback,
               gpointer     user_data)
{
  if (g_source_get_ready_time (source) != -1)
    g_source_set_ready_time (source, -1);
  return callback (user_data);
}

static GSourceFuncs read_source_funcs = {
  NULL, NULL, read_dispatch, NULL, NULL, NULL,
};

/* The fd of the socket under @stream (plain or TLS). */
static int
stream_socket_fd (GIOStream *stream)
{
  g_autoptr(GIOStream) base = NULL;

  if (G_IS_SOCKET_CONNECTION (stream))
    base = g_object_ref (stream);
  else
    g_object_get (stream, "base-io-stream", &base, NULL);
  return g_socket_get_fd (g_socket_connection_get_socket (G_SOCKET_CONNECTION (base)));
}

static GSource *
read_source_new (RedisEngine  *self,
                 GMainContext *context)
{
  GSource *source = g_source_new (&read_source_funcs, sizeof (GSource));

  g_source_set_static_name (source, "[redispool] read");
  self->read_tag = g_source_add_unix_fd (source, self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_can_recurse (source, TRUE);
  g_source_set_callback (source, readable_cb, redis_engine_ref (self),
                         (GDestroyNotify) redis_engine_unref);
  g_source_attach (source, context);
  return source;
}

/* With io_lock held: the stream is up (plain or TLS): start reading, then
 * send AUTH, SELECT, CLIENT SETNAME, READONLY and CLIENT ID in one write. */
static void
start_session (RedisEngine *self,
               GIOStream   *stream)
{
  const RedisOptions *o = self->options;
  g_autofree char *db = g_strdup_printf ("%u", o->database);
  const char *auth[] = { "AUTH", o->password, NULL };
  const char *auth_user[] = { "AUTH", o->username, o->password, NULL };
  const char *select_db[] = { "SELECT", db, NULL };
  const char *set_name[] = { "CLIENT", "SETNAME", o->client_name, NULL };
  const char *client_id[] = { "CLIENT", "ID", NULL };
  const char *role[] = { "ROLE", NULL };
  const char *readonly[] = { "READONLY", NULL };
  const char * const *commands[7];
  guint n = 0;
  RedisCall *call;

  self->stream = stream;
  self->in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream));
  self->out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (stream));
  self->fd = stream_socket_fd (stream);
  self->phase = PHASE_HANDSHAKE;

  self->read_source = read_source_new (self, self->drive);

  /* handshake_done_cb() reads the replies in this order. */
  if (o->password != NULL)
    commands[n++] = o->username != NULL ? auth_user : auth;
  if (o->database != 0)
    commands[n++] = select_db;
  if (o->client_name != NULL)
    commands[n++] = set_name;
  if (o->readonly)
    commands[n++] = readonly;   /* a cluster replica serves reads once told */
  commands[n++] = client_id;
  if (o->sentinel != NULL)
    commands[n++] = role;   /* a server found through Sentinel: is it what was asked for? */
  commands[n] = NULL;

  call = redis_call_new_internal (REDIS_CALL_PIPELINE, commands, "AUTH/SELECT/CLIENT handshake",
                                  0, handshake_done_cb, redis_engine_ref (self));
  call->internal = TRUE;
  call->secret = o->password != NULL;
  queue_write (self, call);
  try_write (self);
}

static void
tls_handshake_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      data)
{
  RedisEngine *self = data;
  GTlsConnection *tls = G_TLS_CONNECTION (object);
  g_autoptr(GError) error = NULL;
  GError *failure;

  g_tls_connection_handshake_finish (tls, result, &error);
  engine_lock (self);
  if (self->closed)
    g_object_unref (tls);
  /* Checks the certificate again after every handshake: a resumed
   * session skips the handshake-time check (see redis-tls.c). */
  else if ((failure = redis_tls_client_check (tls, self->options, self->address, error)) != NULL)
    {
      engine_shutdown (self, failure);
      g_object_unref (tls);
    }
  else
    start_session (self, G_IO_STREAM (tls));
  engine_unlock (self);

  redis_engine_unref (self);
}

/* With io_lock held: layers TLS on @conn (taken), as the options say
 * (redis_tls_client_new(): verification, SNI, client certificate), and
 * starts its handshake, which tls_handshake_cb() finishes. */
static void
start_tls (RedisEngine       *self,
           GSocketConnection *conn)
{
  g_autoptr(GError) error = NULL;
  GIOStream *tls;

  self->phase = PHASE_TLS;
  tls = redis_tls_client_new (G_IO_STREAM (conn), self->options, self->address, &error);
  g_object_unref (conn);
  if (tls == NULL)
    {
      engine_shutdown (self, g_steal_pointer (&error));
      return;
    }

  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT,
                                    self->connect_cancellable,
                                    tls_handshake_cb, redis_engine_ref (self));
}

static void
socket_connected_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      data)
{
  RedisEngine *self = data;
  const RedisOptions *o = self->options;
  g_autoptr(GError) error = NULL;
  GSocketConnection *conn;

  conn = g_socket_client_connect_finish (G_SOCKET_CLIENT (object), result, &error);
  engine_lock (self);
  if (conn == NULL)
    {
      if (!self->closed)
        engine_shutdown (self,
                         connect_error (self, REDIS_ERROR_CONNECT_FAILED,
                                        "Could not connect to", error));
    }
  else if (self->closed)
    g_object_unref (conn);
  else
    {
      if (o->socket_path == NULL)
        g_socket_set_option (g_socket_connection_get_socket (conn),
                             IPPROTO_TCP, TCP_NODELAY, 1, NULL);
      if (o->tls)
        start_tls (self, conn);
      else
        start_session (self, G_IO_STREAM (conn));
    }
  engine_unlock (self);
  redis_engine_unref (self);
}

/* With io_lock held: the TCP (or unix socket) connect. */
static void
start_tcp (RedisEngine *self,
           const char  *host,
           guint        port)
{
  const RedisOptions *o = self->options;
  GSocketConnectable *connectable;

  self->client = g_socket_client_new ();
  g_socket_client_set_enable_proxy (self->client, FALSE);
  if (o->socket_path != NULL)
    connectable = G_SOCKET_CONNECTABLE (g_unix_socket_address_new (o->socket_path));
  else
    connectable = g_network_address_new (host, port);

  g_socket_client_connect_async (self->client, connectable, self->connect_cancellable,
                                 socket_connected_cb, redis_engine_ref (self));
  g_object_unref (connectable);
}

/* I/O thread: Sentinel named the server (or no sentinel did). */
static void
sentinel_found_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      data)
{
  RedisEngine *self = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *host = NULL;
  guint port = 0;
  gboolean found;

  found = redis_sentinel_discover_finish (result, &host, &port, &error);
  engine_lock (self);
  if (self->closed)
    ;   /* shutdown has reported the failure already */
  else if (!found)
    engine_shutdown (self, g_steal_pointer (&error));
  else
    {
      /* Messages name the server from now on; the group's description
       * stays valid for whoever read it before. */
      self->group_address = self->address;
      self->address = strchr (host, ':') != NULL ? g_strdup_printf ("[%s]:%u", host, port)
                                                 : g_strdup_printf ("%s:%u", host, port);
      start_tcp (self, host, port);
    }
  engine_unlock (self);
  redis_engine_unref (self);
}

static gboolean
start_connect (gpointer data)
{
  RedisEngine *self = data;
  const RedisOptions *o = self->options;
  GCancellable *user_cancellable;

  engine_lock (self);
  if (self->closed)
    {
      GTask *task = g_steal_pointer (&self->connect_task);

      engine_unlock (self);
      if (task != NULL)
        {
          g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CLOSED,
                                   "The connection was closed");
          g_object_unref (task);
        }
      return G_SOURCE_REMOVE;
    }
  user_cancellable = g_task_get_cancellable (self->connect_task);

  set_state (self, REDIS_CONNECTION_STATE_CONNECTING);
  self->phase = PHASE_TCP;
  self->connect_cancellable = g_cancellable_new ();

  self->connect_timer = g_timeout_source_new (o->connect_timeout_ms);
  g_source_set_static_name (self->connect_timer, "[redispool] connect timeout");
  g_source_set_callback (self->connect_timer, connect_timeout_cb,
                         redis_engine_ref (self), (GDestroyNotify) redis_engine_unref);
  g_source_attach (self->connect_timer, redis_worker_get_context ());

  if (user_cancellable != NULL)
    {
      self->connect_cancel_source = g_cancellable_source_new (user_cancellable);
      g_source_set_callback (self->connect_cancel_source, (GSourceFunc) connect_cancelled_cb,
                             redis_engine_ref (self), (GDestroyNotify) redis_engine_unref);
      g_source_attach (self->connect_cancel_source, redis_worker_get_context ());
    }

  /* Sentinel: the server is asked for first, on every connect. */
  if (o->sentinel != NULL && o->socket_path == NULL)
    {
      GCancellable *cancellable = g_object_ref (self->connect_cancellable);

      engine_unlock (self);
      redis_sentinel_discover_async (o, cancellable, sentinel_found_cb, redis_engine_ref (self));
      g_object_unref (cancellable);
      return G_SOURCE_REMOVE;
    }

  start_tcp (self, o->host, o->port);
  engine_unlock (self);
  return G_SOURCE_REMOVE;
}

void
redis_engine_connect_async (RedisEngine         *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, redis_engine_connect_async);
  g_task_set_name (task, "[redispool] connect");
  /* Handed to the I/O thread, which owns connect_task from then on. */
  g_mutex_lock (&self->io_lock);
  self->connect_task = task;
  g_mutex_unlock (&self->io_lock);
  redis_worker_invoke (start_connect, redis_engine_ref (self),
                       (GDestroyNotify) redis_engine_unref);
}

gboolean
redis_engine_connect_finish (RedisEngine   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
