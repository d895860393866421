/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-client-private.h"
#include "redis-connection-private.h"
#include "redis-engine-private.h"
#include "redis-enums.h"
#include "redis-error.h"
#include "redis-init-private.h"
#include "redis-options-private.h"
#include "redis-pool.h"
#include "redis-worker-private.h"

/**
 * RedisPool:
 *
 * A pool of connections to one Redis server behind the same
 * [iface@Redis.Client] API as a single [class@Redis.Connection].
 *
 * The pool keeps [property@Redis.Pool:pool-size] connections. Each call goes
 * to a live connection picked by [property@Redis.Pool:strategy]; connections
 * are multiplexed, so many calls are in flight on each one, written together
 * and answered in order. A pipeline or a transaction always runs on one
 * connection.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisPool) pool =
 *   redis_pool_new_sync ("redis://127.0.0.1:6379/0?pool_size=5", NULL, &error);
 * g_autoptr(RedisReply) reply =
 *   redis_client_command_sync (REDIS_CLIENT (pool),
 *                              (const char *[]) { "INCR", "hits", NULL },
 *                              NULL, &error);
 * ```
 *
 * ## Lost connections
 *
 * When a connection dies (the server closed it, `CLIENT KILL`, a protocol
 * error), the pool emits [signal@Redis.Pool::connection-lost] once, then
 * reconnects that slot with exponential backoff and jitter
 * ([property@Redis.Pool:backoff-initial], [property@Redis.Pool:backoff-max])
 * and emits [signal@Redis.Pool::connection-replaced] once the new connection
 * has finished its handshake. While the server is down each slot has one
 * pending attempt at a time. Calls not yet written when their connection
 * died move to another live connection; calls already written fail with
 * %REDIS_ERROR_CONNECTION_LOST and are never sent again. Calls made while no
 * connection is live wait, each within its own deadline, up to
 * [property@Redis.Pool:max-queued] of them.
 *
 * ## Leases and connection state
 *
 * Commands that change the state of the connection they run on (SELECT,
 * WATCH, MULTI/EXEC sent one by one, AUTH, CLIENT SETNAME…) would leak into
 * other callers' commands on a shared connection; the pool refuses them with
 * %REDIS_ERROR_INVALID_ARGUMENT. Run them on a connection leased with
 * [method@Redis.Pool.acquire_async]: nobody else uses it until
 * [method@Redis.Pool.release], which restores its state (DISCARD, UNWATCH,
 * SELECT of the configured database) or closes it when that fails. Leased
 * connections are extra connections, kept for reuse, not pool slots; at
 * most [property@Redis.Pool:max-leases] of them exist at once. A lease
 * released and acquired again at once reuses the same connection (the
 * acquire waits for the reset, one round trip) instead of opening another;
 * when all of them are in use, acquires wait for one within their
 * deadline, then fail with %REDIS_ERROR_POOL_EXHAUSTED.
 *
 * Blocking commands (BLPOP, BRPOP, BLMOVE, BZPOPMIN/MAX, BLMPOP, XREAD and
 * XREADGROUP with BLOCK, WAIT…) sent through the shared API run on such a
 * dedicated connection, so they never hold up other callers, and their
 * deadline is extended by their own block time. They count against
 * [property@Redis.Pool:max-leases] like leases.
 *
 * ## Initialization
 *
 * [iface@Gio.Initable] and [iface@Gio.AsyncInitable] initialization is
 * idempotent, as GIO asks: a second call (also a concurrent one) gets the
 * outcome of the first without connecting again, and never closes a pool
 * that is up. A pool whose initialization failed, was cancelled (through
 * the first call's cancellable) or was closed meanwhile is closed, and
 * every later call gets that same error.
 *
 * ## Threads
 *
 * All methods may be called from any thread. Callbacks run in the
 * thread-default main context of the caller; the pool's signals and
 * property notifications are emitted in the thread-default main context that
 * was current when the pool was created, never after the pool was closed.
 */

typedef enum
{
  SLOT_DOWN,
  SLOT_CONNECTING,
  SLOT_READY,
  SLOT_FAILING,        /* refused a call: its engine is going away */
} SlotState;

static const char * const slot_state_names[] = { "down", "connecting", "ready", "failing" };

/* See RedisPool:max-leases. */
#define DEFAULT_MAX_LEASES 32

typedef struct _PoolCore PoolCore;

typedef struct
{
  guint         index;
  RedisEngine  *engine;
  SlotState     state;
  guint         attempts;        /* consecutive failed connects */
  GSource      *retry_source;
  gboolean      ever_ready;
  guint64       reconnects;
  GError       *last_error;
} Slot;

/* Everything the pool's connections and timers touch from the I/O thread
 * lives here, reference counted, so that callbacks still in flight after
 * the RedisPool object is disposed find valid memory (and a closed pool). */
struct _PoolCore
{
  gint                  ref_count;
  GMutex                lock;
  GWeakRef              pool;              /* for signals */
  GMainContext         *context;           /* where signals are emitted */

  /* Configuration, frozen at initialization. */
  RedisOptions         *options;
  guint                 size;
  RedisPoolStrategy     strategy;
  guint                 backoff_initial_ms;
  guint                 backoff_max_ms;
  RedisPoolConnectMode  connect_mode;
  gboolean              reconnect;
  guint                 max_queued;
  guint                 max_leases;

  /* Protected by lock. */
  Slot                 *slots;
  gboolean              started;
  gboolean              closed;
  guint                 rr_next;
  GQueue                queued;            /* RedisCall*: no live connection yet */
  guint                 active;
  guint64               reconnects;
  GRand                *rand;

  /* Dedicated connections (leases and blocking commands), protected by
   * lock; see "dedicated connections" below. n_leased + idle_leases.length
   * never exceeds max_leases. */
  GQueue                idle_leases;       /* RedisEngine*: ready for a lease */
  guint                 n_leased;          /* connecting, handed out, or resetting */
  guint                 n_resetting;       /* released, reset in flight */
  GQueue                lease_waiters;     /* LeaseRequest*: waiting for one */

  /* Initialization (see redis_pool_init_async()). The outcome and the
   * callers waiting for it are in init; the rest is protected by lock. */
  RedisInitOnce         init;
  gboolean              initializing;      /* a wait-all start counts its slots */
  guint                 init_pending;
  GError               *init_error;
  GSource              *init_cancel_source;

  GSource              *queue_timer;       /* I/O thread */
  GSource              *lease_timer;       /* I/O thread */
};

struct _RedisPool
{
  GObject      parent_instance;

  PoolCore    *core;
  char        *uri;
  GError      *uri_error;
  gint         init_state;
};

enum
{
  PROP_0,
  PROP_URI,
  PROP_POOL_SIZE,
  PROP_STRATEGY,
  PROP_BACKOFF_INITIAL,
  PROP_BACKOFF_MAX,
  PROP_CONNECT_MODE,
  PROP_RECONNECT,
  PROP_MAX_QUEUED,
  PROP_MAX_LEASES,
  PROP_SIZE,
  PROP_ACTIVE_CONNECTIONS,
  PROP_FIRST_OPTION,
  N_PROPS = PROP_FIRST_OPTION + REDIS_OPTIONS_N_PROPS,
};

enum
{
  CONNECTION_LOST,
  CONNECTION_REPLACED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void client_iface_init (RedisClientInterface *iface);
static void initable_iface_init (GInitableIface *iface);
static void async_initable_iface_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (RedisPool, redis_pool, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (REDIS_TYPE_CLIENT, client_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE, async_initable_iface_init))

static void core_route         (PoolCore  *core,
                                RedisCall *call);
static void slot_start         (PoolCore  *core,
                                guint      index);

/* ---- core life cycle ---------------------------------------------------- */

static PoolCore *
core_new (void)
{
  PoolCore *core = g_new0 (PoolCore, 1);

  core->ref_count = 1;
  g_mutex_init (&core->lock);
  g_weak_ref_init (&core->pool, NULL);
  core->context = g_main_context_ref_thread_default ();
  core->options = redis_options_new ();
  core->size = 5;
  core->strategy = REDIS_POOL_STRATEGY_ROUND_ROBIN;
  core->backoff_initial_ms = 500;
  core->backoff_max_ms = 30000;
  core->connect_mode = REDIS_POOL_CONNECT_MODE_WAIT_ALL;
  core->reconnect = TRUE;
  core->max_queued = 10000;
  core->max_leases = DEFAULT_MAX_LEASES;
  core->rand = g_rand_new ();
  g_queue_init (&core->queued);
  g_queue_init (&core->idle_leases);
  g_queue_init (&core->lease_waiters);
  redis_init_once_init (&core->init);
  return core;
}

static PoolCore *
core_ref (PoolCore *core)
{
  g_atomic_int_inc (&core->ref_count);
  return core;
}

static void
core_unref (PoolCore *core)
{
  if (!g_atomic_int_dec_and_test (&core->ref_count))
    return;

  g_assert (g_queue_is_empty (&core->queued));
  g_assert (g_queue_is_empty (&core->idle_leases));
  g_assert (g_queue_is_empty (&core->lease_waiters));
  g_assert (core->init_cancel_source == NULL);
  for (guint i = 0; core->slots != NULL && i < core->size; i++)
    {
      g_assert (core->slots[i].engine == NULL);
      g_assert (core->slots[i].retry_source == NULL);
      g_clear_error (&core->slots[i].last_error);
    }
  g_free (core->slots);
  if (core->queue_timer != NULL)
    {
      g_source_destroy (core->queue_timer);
      g_source_unref (core->queue_timer);
    }
  if (core->lease_timer != NULL)
    {
      g_source_destroy (core->lease_timer);
      g_source_unref (core->lease_timer);
    }
  redis_init_once_clear (&core->init);
  g_clear_error (&core->init_error);
  g_rand_free (core->rand);
  redis_options_free (core->options);
  g_weak_ref_clear (&core->pool);
  g_main_context_unref (core->context);
  g_mutex_clear (&core->lock);
  g_free (core);
}

/* ---- signals ------------------------------------------------------------ */

typedef struct
{
  PoolCore *core;
  guint     signal_id;
  guint     index;
  GError   *error;
  gboolean  notify_active;
} Emission;

static gboolean
emit_cb (gpointer data)
{
  Emission *e = data;
  g_autoptr(RedisPool) self = g_weak_ref_get (&e->core->pool);
  gboolean closed;

  g_mutex_lock (&e->core->lock);
  closed = e->core->closed;
  g_mutex_unlock (&e->core->lock);

  /* No signals after close: a closed pool is finished for its users. */
  if (self == NULL || closed)
    return G_SOURCE_REMOVE;

  if (e->signal_id == signals[CONNECTION_LOST])
    g_signal_emit (self, e->signal_id, 0, e->index, e->error);
  else if (e->signal_id != 0)
    g_signal_emit (self, e->signal_id, 0, e->index);
  if (e->notify_active)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE_CONNECTIONS]);
  return G_SOURCE_REMOVE;
}

static void
emission_free (gpointer data)
{
  Emission *e = data;

  core_unref (e->core);
  g_clear_error (&e->error);
  g_free (e);
}

/* Any thread: queue a signal for the pool's main context. */
static void
core_emit (PoolCore     *core,
           guint         signal_id,
           guint         index,
           const GError *error)
{
  Emission *e = g_new0 (Emission, 1);
  GSource *source = g_idle_source_new ();

  e->core = core_ref (core);
  e->signal_id = signal_id;
  e->index = index;
  e->error = error != NULL ? g_error_copy (error) : NULL;
  e->notify_active = TRUE;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (source, "[redispool] pool signal");
  g_source_set_callback (source, emit_cb, e, emission_free);
  g_source_attach (source, core->context);
  g_source_unref (source);
}

/* ---- the queue of calls waiting for a live connection ------------------- */

static gboolean
queue_timer_cb (gpointer data)
{
  PoolCore *core = data;
  GQueue expired = G_QUEUE_INIT;
  gint64 now = g_get_monotonic_time ();
  gint64 next = 0;
  GList *l, *next_l;
  RedisCall *call;
  g_autofree char *address = redis_options_describe_address (core->options);

  g_mutex_lock (&core->lock);
  for (l = core->queued.head; l != NULL; l = next_l)
    {
      call = l->data;
      next_l = l->next;
      if (redis_call_is_completed (call) || (call->deadline != 0 && call->deadline <= now))
        {
          g_queue_unlink (&core->queued, l);
          g_queue_push_tail_link (&expired, l);
        }
      else if (call->deadline != 0 && (next == 0 || call->deadline < next))
        next = call->deadline;
    }
  if (next != 0)
    g_source_set_ready_time (core->queue_timer, next);
  g_mutex_unlock (&core->lock);

  while ((call = g_queue_pop_head (&expired)) != NULL)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT,
                                          "%s was not sent: no connection to %s became "
                                          "available before its deadline",
                                          redis_call_get_name (call),
                                          address));
      redis_call_unref (call);
    }

  return G_SOURCE_CONTINUE;
}

static gboolean
queued_call_cancelled_cb (GCancellable *cancellable,
                          gpointer      data)
{
  redis_call_fail (data, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                              "Operation was cancelled"));
  return G_SOURCE_REMOVE;
}

/* Called with the lock held: when no slot is up and every slot's last
 * attempt was refused by AUTH, waiting cannot help; returns that error. */
static const GError *
auth_failure_locked (PoolCore *core)
{
  const GError *error = NULL;

  if (core->slots == NULL || core->active > 0)
    return NULL;
  for (guint i = 0; i < core->size; i++)
    {
      const GError *e = core->slots[i].last_error;

      if (core->slots[i].state == SLOT_READY || e == NULL ||
          !g_error_matches (e, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED))
        return NULL;
      error = e;
    }
  return error;
}

/* Called with the lock held. FALSE if the queue is full. */
static gboolean
core_queue_locked (PoolCore  *core,
                   RedisCall *call)
{
  if (core->queued.length >= core->max_queued)
    {
      /* Completed (cancelled) calls do not count against the bound. */
      GList *l, *next;

      for (l = core->queued.head; l != NULL; l = next)
        {
          next = l->next;
          if (redis_call_is_completed (l->data))
            {
              redis_call_unref (l->data);
              g_queue_delete_link (&core->queued, l);
            }
        }
      if (core->queued.length >= core->max_queued)
        return FALSE;
    }

  if (call->cancellable != NULL && call->cancel_source == NULL)
    {
      call->cancel_source = g_cancellable_source_new (call->cancellable);
      g_source_set_static_name (call->cancel_source, "[redispool] cancel");
      g_source_set_callback (call->cancel_source, (GSourceFunc) queued_call_cancelled_cb,
                             redis_call_ref (call), (GDestroyNotify) redis_call_unref);
      g_source_attach (call->cancel_source, redis_worker_get_context ());
    }

  g_queue_push_tail (&core->queued, redis_call_ref (call));
  if (call->deadline != 0)
    {
      gint64 current = g_source_get_ready_time (core->queue_timer);

      if (current == -1 || call->deadline < current)
        g_source_set_ready_time (core->queue_timer, call->deadline);
    }
  return TRUE;
}

/* Any thread: a slot became ready; send what waited. */
static void
core_drain_queue (PoolCore *core)
{
  GQueue pending;
  RedisCall *call;

  g_mutex_lock (&core->lock);
  pending = core->queued;
  g_queue_init (&core->queued);
  g_mutex_unlock (&core->lock);

  while ((call = g_queue_pop_head (&pending)) != NULL)
    {
      if (!redis_call_is_completed (call))
        core_route (core, call);
      redis_call_unref (call);
    }
}

/* ---- dispatch ----------------------------------------------------------- */

/* Called with the lock held: a referenced engine of a ready slot, or NULL. */
static RedisEngine *
pick_locked (PoolCore *core,
             guint    *out_index)
{
  guint start, best = G_MAXUINT, best_pending = G_MAXUINT;

  if (core->slots == NULL || core->active == 0)
    return NULL;

  switch (core->strategy)
    {
    case REDIS_POOL_STRATEGY_RANDOM:
      start = g_rand_int_range (core->rand, 0, core->size);
      break;
    case REDIS_POOL_STRATEGY_LEAST_PENDING:
    case REDIS_POOL_STRATEGY_ROUND_ROBIN:
    default:
      start = core->rr_next++;
      break;
    }

  for (guint i = 0; i < core->size; i++)
    {
      Slot *slot = &core->slots[(start + i) % core->size];
      guint pending;

      if (slot->state != SLOT_READY)
        continue;
      if (core->strategy != REDIS_POOL_STRATEGY_LEAST_PENDING)
        {
          best = slot->index;
          break;
        }
      /* Ties go to the first from a rotating start, spreading idle load. */
      pending = redis_engine_get_n_pending (slot->engine);
      if (pending < best_pending)
        {
          best = slot->index;
          best_pending = pending;
        }
    }

  if (best == G_MAXUINT)
    return NULL;
  *out_index = best;
  return redis_engine_ref (core->slots[best].engine);
}

static void
core_dispatch_shared (PoolCore  *core,
                      RedisCall *call)
{
  for (;;)
    {
      RedisEngine *engine;
      guint index = 0;
      gboolean ok;

      g_mutex_lock (&core->lock);
      if (core->closed)
        {
          g_mutex_unlock (&core->lock);
          redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                              "%s was not sent: the pool is closed",
                                              redis_call_get_name (call)));
          return;
        }

      engine = pick_locked (core, &index);
      if (engine == NULL && auth_failure_locked (core) != NULL)
        {
          GError *auth = g_error_copy (auth_failure_locked (core));

          /* Every connection is refused by AUTH: say so now rather than
           * let the call wait out its deadline. */
          g_mutex_unlock (&core->lock);
          g_prefix_error (&auth, "%s was not sent: ",
                          redis_call_get_name (call));
          redis_call_fail (call, auth);
          return;
        }
      if (engine == NULL)
        {
          gboolean can_recover = !core->started || core->reconnect;

          for (guint i = 0; !can_recover && i < core->size; i++)
            if (core->slots[i].state == SLOT_CONNECTING)
              can_recover = TRUE;

          if (!can_recover)
            {
              g_mutex_unlock (&core->lock);
              redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                  "%s was not sent: no connection is live and "
                                                  "the pool does not reconnect",
                                                  redis_call_get_name (call)));
              return;
            }

          ok = core_queue_locked (core, call);
          g_mutex_unlock (&core->lock);
          if (!ok)
            redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_QUEUE_FULL,
                                                "%s was not sent: no connection is live and "
                                                "%u calls are already waiting (max-queued)",
                                                redis_call_get_name (call),
                                                core->max_queued));
          return;
        }
      g_mutex_unlock (&core->lock);

      ok = redis_engine_submit (engine, call);
      if (!ok)
        {
          /* The engine is going away; keep the others from picking it. */
          g_mutex_lock (&core->lock);
          if (core->slots[index].engine == engine && core->slots[index].state == SLOT_READY)
            {
              core->slots[index].state = SLOT_FAILING;
              core->active--;
            }
          g_mutex_unlock (&core->lock);
        }
      redis_engine_unref (engine);
      if (ok)
        return;
    }
}

/* ---- dedicated connections (leases, blocking commands) ------------------ */

/*
 * A lease (redis_pool_acquire_async()) and a blocking command sent through
 * the shared API each run on a dedicated connection: one the pool opens
 * beside its slots, that nobody else writes to meanwhile. At most
 * max-leases of them exist (n_leased + idle_leases.length):
 *
 *   opened ──► handed out ──► lease released: reset in flight ──┬─► first waiter
 *                 │           (DISCARD/UNWATCH/SELECT)          ├─► idle_leases
 *                 └─ blocking call done ─────────────────────────┴─► closed (reset
 *                                                                    failed, lost)
 *
 * A request (an acquire, or a blocking call) takes an idle connection if
 * there is one. Otherwise, when more resets are in flight than requests
 * already wait, it waits for one of them: a reset is one round trip, a new
 * connection several, and reusing keeps the connections the server sees
 * flat. Otherwise it opens a new connection, while there is room under
 * max-leases; past that it waits, first come first served, until a
 * connection comes back, its deadline passes (POOL_EXHAUSTED: nothing was
 * sent), it is cancelled or the pool closes. A connection that comes back
 * goes to the first waiter, else to idle_leases; one that is closed makes
 * room for a waiter to open another.
 *
 * A request is completed by whoever takes it off lease_waiters (under the
 * lock), or by whoever holds it when it never waited. Engines are handed
 * to waiters on the I/O thread: a connection comes back from inside its
 * engine (on_done, with the engine's I/O lock held), where neither a
 * submit to it nor a caller's callback may run.
 */

static void lease_engine_closed_cb (RedisEngine  *engine,
                                    const GError *reason,
                                    GQueue       *unsent,
                                    gpointer      user_data);

typedef struct
{
  gint         ref_count;
  PoolCore    *core;
  RedisEngine *engine;
  RedisCall   *call;           /* a blocking call waiting for the connection */
  GTask       *task;           /* or an acquire waiting for it */
  gint64       deadline;       /* while in lease_waiters: monotonic µs, 0 = none */
  GSource     *cancel_source;  /* while in lease_waiters */
} LeaseRequest;

static LeaseRequest *
lease_request_new (PoolCore *core)
{
  LeaseRequest *req = g_new0 (LeaseRequest, 1);

  req->ref_count = 1;
  req->core = core_ref (core);
  return req;
}

static LeaseRequest *
lease_request_ref (LeaseRequest *req)
{
  g_atomic_int_inc (&req->ref_count);
  return req;
}

static void
lease_request_unref (LeaseRequest *req)
{
  if (!g_atomic_int_dec_and_test (&req->ref_count))
    return;
  g_assert (req->cancel_source == NULL);
  g_clear_pointer (&req->engine, redis_engine_unref);
  g_clear_pointer (&req->call, redis_call_unref);
  g_clear_object (&req->task);
  core_unref (req->core);
  g_free (req);
}

/* By whoever took @req off lease_waiters: it no longer watches its
 * cancellable. */
static void
lease_request_stop_waiting (LeaseRequest *req)
{
  if (req->cancel_source != NULL)
    {
      g_source_destroy (req->cancel_source);
      g_clear_pointer (&req->cancel_source, g_source_unref);
    }
}

/* Completes @req, which got no connection, with @code and @what (lower
 * case, for the message); nothing was sent. */
static void
lease_request_fail (LeaseRequest *req,
                    GQuark        domain,
                    int           code,
                    const char   *what)
{
  GError *error;

  if (domain == G_IO_ERROR && code == G_IO_ERROR_CANCELLED)
    error = g_error_new_literal (domain, code, "Operation was cancelled");
  else if (req->call != NULL)
    error = g_error_new (domain, code, "%s was not sent: %s",
                         redis_call_get_name (req->call), what);
  else
    error = g_error_new (domain, code, "No connection was leased: %s", what);

  if (req->call != NULL)
    redis_call_fail (req->call, error);
  else
    g_task_return_error (req->task, error);
}

/* I/O thread: the deadline timer of lease_waiters. */
static gboolean
lease_timer_cb (gpointer data)
{
  PoolCore *core = data;
  GQueue expired = G_QUEUE_INIT;
  gint64 now = g_get_monotonic_time ();
  gint64 next = 0;
  GList *l, *next_l;
  LeaseRequest *req;
  guint max_leases;

  g_mutex_lock (&core->lock);
  for (l = core->lease_waiters.head; l != NULL; l = next_l)
    {
      req = l->data;
      next_l = l->next;
      if (req->deadline != 0 && req->deadline <= now)
        {
          g_queue_unlink (&core->lease_waiters, l);
          g_queue_push_tail_link (&expired, l);
        }
      else if (req->deadline != 0 && (next == 0 || req->deadline < next))
        next = req->deadline;
    }
  if (next != 0)
    g_source_set_ready_time (core->lease_timer, next);
  max_leases = core->max_leases;
  g_mutex_unlock (&core->lock);

  while ((req = g_queue_pop_head (&expired)) != NULL)
    {
      g_autofree char *what =
        g_strdup_printf ("every dedicated connection (max-leases = %u) stayed in use "
                         "until the deadline", max_leases);

      lease_request_stop_waiting (req);
      lease_request_fail (req, REDIS_ERROR, REDIS_ERROR_POOL_EXHAUSTED, what);
      lease_request_unref (req);
    }
  return G_SOURCE_CONTINUE;
}

/* I/O thread: a waiting request was cancelled. */
static gboolean
lease_wait_cancelled_cb (GCancellable *cancellable,
                         gpointer      data)
{
  LeaseRequest *req = data;
  PoolCore *core = req->core;
  gboolean mine;

  g_mutex_lock (&core->lock);
  mine = g_queue_remove (&core->lease_waiters, req);
  g_mutex_unlock (&core->lock);

  if (mine)
    {
      lease_request_stop_waiting (req);
      lease_request_fail (req, G_IO_ERROR, G_IO_ERROR_CANCELLED, NULL);
      lease_request_unref (req);
    }
  return G_SOURCE_REMOVE;
}

/* Called with the lock held: @req (taken) waits for a connection, until
 * its deadline: a blocking call's own, command-timeout for an acquire. */
static void
core_lease_wait_locked (PoolCore     *core,
                        LeaseRequest *req)
{
  GCancellable *cancellable;

  if (req->call != NULL)
    {
      req->deadline = req->call->deadline;
      cancellable = req->call->cancellable;
    }
  else
    {
      guint ms = core->options->command_timeout_ms;

      req->deadline = ms != 0 ? g_get_monotonic_time () + (gint64) ms * G_TIME_SPAN_MILLISECOND : 0;
      cancellable = g_task_get_cancellable (req->task);
    }

  if (cancellable != NULL)
    {
      req->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_static_name (req->cancel_source, "[redispool] lease wait cancelled");
      g_source_set_callback (req->cancel_source, (GSourceFunc) lease_wait_cancelled_cb,
                             lease_request_ref (req), (GDestroyNotify) lease_request_unref);
      g_source_attach (req->cancel_source, redis_worker_get_context ());
    }

  g_queue_push_tail (&core->lease_waiters, req);
  if (req->deadline != 0)
    {
      gint64 current = g_source_get_ready_time (core->lease_timer);

      if (current == -1 || req->deadline < current)
        g_source_set_ready_time (core->lease_timer, req->deadline);
    }
}

/* Called with the lock held: whether a request behind @n_waiting others
 * (itself included) opens a new connection rather than wait. */
static gboolean
core_lease_may_open_locked (PoolCore *core,
                            guint     n_waiting)
{
  return n_waiting > core->n_resetting &&
         core->n_leased + core->idle_leases.length < core->max_leases;
}

/* Called with the lock held: moves to @to_open the waiters that may open
 * a new connection now (one was closed, or a reset failed). */
static void
core_lease_kick_locked (PoolCore *core,
                        GQueue   *to_open)
{
  while (!core->closed && core->lease_waiters.length > 0 &&
         core_lease_may_open_locked (core, core->lease_waiters.length))
    {
      core->n_leased++;
      g_queue_push_tail (to_open, g_queue_pop_head (&core->lease_waiters));
    }
}

static void lease_connected_cb (GObject      *object,
                                GAsyncResult *result,
                                gpointer      user_data);

static gboolean
lease_connect_in_worker (gpointer data)
{
  LeaseRequest *req = data;

  redis_engine_connect_async (req->engine, NULL, lease_connected_cb, req);
  return G_SOURCE_REMOVE;
}

/* Opens a new dedicated connection for @req (taken), counted in n_leased
 * already. */
static void
lease_open (LeaseRequest *req)
{
  PoolCore *core = req->core;

  req->engine = redis_engine_new (core->options, core->context);
  redis_engine_set_closed_func (req->engine, lease_engine_closed_cb, core_ref (core),
                                (GDestroyNotify) core_unref);
  /* Connect from the I/O thread so that the connection comes up whatever
   * the caller's main context is doing (a blocking call must not wait for
   * its caller to iterate a loop). */
  redis_worker_invoke (lease_connect_in_worker, req, NULL);
}

static void
lease_open_all (GQueue *to_open)
{
  LeaseRequest *req;

  while ((req = g_queue_pop_head (to_open)) != NULL)
    {
      lease_request_stop_waiting (req);
      lease_open (req);
    }
}

static void core_lease (LeaseRequest *req);

/* I/O thread: hands a connection that came back to the waiter it was
 * promised to. */
static gboolean
lease_hand_over_in_worker (gpointer data);

/* Any thread (also inside the engine, with its I/O lock held): a dedicated
 * connection comes back, from a lease (@was_resetting: after its reset) or
 * from a blocking call. When @reusable and still up, it goes to the first
 * waiter or is kept idle; otherwise it is closed, which makes room. */
static void
core_return_engine (PoolCore    *core,
                    RedisEngine *engine,
                    gboolean     reusable,
                    gboolean     was_resetting)
{
  GQueue to_open = G_QUEUE_INIT;
  LeaseRequest *next = NULL;
  gboolean keep = FALSE;

  g_mutex_lock (&core->lock);
  if (was_resetting && core->n_resetting > 0)
    core->n_resetting--;
  if (core->n_leased > 0)
    core->n_leased--;
  if (reusable && !core->closed &&
      redis_engine_get_state (engine) == REDIS_CONNECTION_STATE_READY)
    {
      keep = TRUE;
      next = g_queue_pop_head (&core->lease_waiters);
      if (next != NULL)
        {
          core->n_leased++;
          next->engine = redis_engine_ref (engine);
        }
      else
        g_queue_push_tail (&core->idle_leases, redis_engine_ref (engine));
    }
  core_lease_kick_locked (core, &to_open);
  g_mutex_unlock (&core->lock);

  if (!keep)
    {
      redis_engine_set_closed_func (engine, NULL, NULL, NULL);
      redis_engine_close (engine, REDIS_ERROR_CLOSED, NULL);
    }
  if (next != NULL)
    {
      lease_request_stop_waiting (next);
      redis_worker_invoke (lease_hand_over_in_worker, next, NULL);
    }
  lease_open_all (&to_open);
}

static gboolean
lease_hand_over_in_worker (gpointer data)
{
  LeaseRequest *req = data;

  if (redis_engine_get_state (req->engine) != REDIS_CONNECTION_STATE_READY)
    {
      /* Lost on the way: give it back and try again. */
      RedisEngine *engine = g_steal_pointer (&req->engine);

      core_return_engine (req->core, engine, FALSE, FALSE);
      redis_engine_unref (engine);
      core_lease (req);
      return G_SOURCE_REMOVE;
    }
  lease_connected_cb (NULL, NULL, req);
  return G_SOURCE_REMOVE;
}

typedef struct
{
  PoolCore    *core;
  RedisEngine *engine;
} BlockingLink;

static void
blocking_done_cb (RedisCall *call,
                  gpointer   data)
{
  BlockingLink *link = data;

  /* Runs once: the call left the dedicated engine. */
  call->on_done = NULL;
  call->on_done_data = NULL;
  core_return_engine (link->core, link->engine, TRUE, FALSE);
  redis_engine_unref (link->engine);
  core_unref (link->core);
  g_free (link);
}

/* Called with the lock held: an idle connection that is still up, or
 * NULL. */
static RedisEngine *
core_pop_idle_locked (PoolCore *core)
{
  RedisEngine *engine;

  while ((engine = g_queue_pop_head (&core->idle_leases)) != NULL)
    {
      if (redis_engine_get_state (engine) == REDIS_CONNECTION_STATE_READY)
        return engine;
      redis_engine_unref (engine);
    }
  return NULL;
}

/* Hands @req's call or task (taken) a connection: an idle one, soon one
 * whose reset is in flight, a new one, or, at max-leases, the first that
 * comes back. */
static void
core_lease (LeaseRequest *req)
{
  PoolCore *core = req->core;
  RedisEngine *engine = NULL;

  g_mutex_lock (&core->lock);
  if (core->closed)
    {
      g_mutex_unlock (&core->lock);
      lease_request_fail (req, REDIS_ERROR, REDIS_ERROR_CLOSED, "the pool is closed");
      lease_request_unref (req);
      return;
    }
  engine = core_pop_idle_locked (core);
  if (engine == NULL && !core_lease_may_open_locked (core, core->lease_waiters.length + 1))
    {
      core_lease_wait_locked (core, req);
      g_mutex_unlock (&core->lock);
      return;
    }
  core->n_leased++;
  g_mutex_unlock (&core->lock);

  if (engine != NULL)
    {
      req->engine = engine;
      lease_connected_cb (NULL, NULL, req);
    }
  else
    lease_open (req);
}

static void
lease_ended_cb (RedisEngine *engine,
                gpointer     user_data);

static void
lease_connected_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  LeaseRequest *req = user_data;
  PoolCore *core = req->core;
  GError *error = NULL;

  if (result != NULL && !redis_engine_connect_finish (req->engine, result, &error))
    {
      core_return_engine (core, req->engine, FALSE, FALSE);
      if (req->call != NULL)
        {
          g_prefix_error (&error, "%s was not sent: ", redis_call_get_name (req->call));
          redis_call_fail (req->call, error);
        }
      else
        g_task_return_error (req->task, error);
      lease_request_unref (req);
      return;
    }

  if (req->call != NULL)
    {
      BlockingLink *link = g_new0 (BlockingLink, 1);

      link->core = core_ref (core);
      link->engine = redis_engine_ref (req->engine);
      req->call->on_done = blocking_done_cb;
      req->call->on_done_data = link;
      if (!redis_engine_submit (req->engine, req->call))
        {
          blocking_done_cb (req->call, link);
          redis_call_fail (req->call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                   "%s was not sent: its connection closed",
                                                   redis_call_get_name (req->call)));
        }
    }
  else
    {
      RedisConnection *conn = redis_connection_new_lease (req->engine, core->options,
                                                          lease_ended_cb, core_ref (core),
                                                          (GDestroyNotify) core_unref);
      g_task_return_pointer (req->task, conn, g_object_unref);
    }

  lease_request_unref (req);
}

/* I/O thread: a dedicated connection died. Unsent blocking calls try again. */
static void
lease_engine_closed_cb (RedisEngine  *engine,
                        const GError *reason,
                        GQueue       *unsent,
                        gpointer      user_data)
{
  PoolCore *core = user_data;
  GQueue to_open = G_QUEUE_INIT;
  RedisCall *call;

  g_mutex_lock (&core->lock);
  if (g_queue_remove (&core->idle_leases, engine))
    {
      redis_engine_unref (engine);
      /* An idle one went: room for a waiter. */
      core_lease_kick_locked (core, &to_open);
    }
  g_mutex_unlock (&core->lock);
  lease_open_all (&to_open);

  while (unsent != NULL && (call = g_queue_pop_head (unsent)) != NULL)
    {
      /* The call moves on: detach it from this engine first. */
      if (call->on_done != NULL)
        call->on_done (call, call->on_done_data);
      if (call->no_retry)
        redis_call_fail (call, g_error_copy (reason));
      else
        core_route (core, call);
      redis_call_unref (call);
    }
}

typedef struct
{
  PoolCore    *core;
  RedisEngine *engine;
  gboolean     counted;     /* in n_resetting */
} RestoreData;

/* The reset of a released lease left its engine (usually with the
 * engine's I/O lock held). */
static void
restore_done_cb (RedisCall *call,
                 gpointer   user_data)
{
  RestoreData *data = user_data;
  gboolean ok;

  call->on_done = NULL;
  ok = call->replies != NULL && call->replies->len == 3 &&
       redis_reply_get_kind (g_ptr_array_index (call->replies, 1)) == REDIS_REPLY_KIND_STATUS &&
       redis_reply_get_kind (g_ptr_array_index (call->replies, 2)) == REDIS_REPLY_KIND_STATUS;

  /* When the reset failed its state is unknown: never reuse it. */
  core_return_engine (data->core, data->engine, ok, data->counted);

  redis_engine_unref (data->engine);
  core_unref (data->core);
  g_free (data);
}

/* Any thread: a lease ended. Reset the connection's state before reuse:
 * DISCARD (an open MULTI), UNWATCH, SELECT of the configured database.
 * Until the reset is answered the connection counts as resetting: the
 * next request waits for it rather than open another. Not when the holder
 * left calls in flight (a BLPOP 0 may never end): the reset waits behind
 * them, so the connection comes back when it comes back, and nobody is
 * made to wait for it. */
static void
lease_ended_cb (RedisEngine *engine,
                gpointer     user_data)
{
  PoolCore *core = user_data;
  g_autoptr(GByteArray) encoded = g_byte_array_new ();
  g_autoptr(GBytes) payload = NULL;
  g_autofree char *db = g_strdup_printf ("%u", core->options->database);
  RestoreData *data = g_new0 (RestoreData, 1);
  RedisCall *call;

  data->core = core_ref (core);
  data->engine = redis_engine_ref (engine);
  data->counted = redis_engine_get_n_pending (engine) == 0;

  if (data->counted)
    {
      g_mutex_lock (&core->lock);
      core->n_resetting++;
      g_mutex_unlock (&core->lock);
    }

  redis_encode_strv (encoded, (const char *[]) { "DISCARD", NULL }, NULL, NULL, NULL, NULL);
  redis_encode_strv (encoded, (const char *[]) { "UNWATCH", NULL }, NULL, NULL, NULL, NULL);
  redis_encode_strv (encoded, (const char *[]) { "SELECT", db, NULL }, NULL, NULL, NULL, NULL);
  payload = g_byte_array_free_to_bytes (g_steal_pointer (&encoded));

  /* Nobody waits for it: the outcome is read in restore_done_cb. */
  call = redis_call_new (REDIS_CALL_PIPELINE, payload, 3, NULL);
  call->label = "lease reset (DISCARD/UNWATCH/SELECT)";
  call->no_retry = TRUE;
  call->on_done = restore_done_cb;
  call->on_done_data = data;
  redis_call_set_timeout (call, core->options->command_timeout_ms ?
                                core->options->command_timeout_ms : 5000);
  if (!redis_engine_submit (engine, call))
    {
      redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED, "closed"));
      restore_done_cb (call, data);
    }
  redis_call_unref (call);
}

static void
core_dispatch_blocking (PoolCore  *core,
                        RedisCall *call)
{
  LeaseRequest *req = lease_request_new (core);

  req->call = redis_call_ref (call);
  core_lease (req);
}

/* Any thread: send @call where it belongs. */
static void
core_route (PoolCore  *core,
            RedisCall *call)
{
  if (call->flags & REDIS_COMMAND_FLAG_BLOCKING)
    core_dispatch_blocking (core, call);
  else
    core_dispatch_shared (core, call);
}

/* ---- slots -------------------------------------------------------------- */

typedef struct
{
  PoolCore *core;
  guint     index;
} SlotRef;

static SlotRef *
slot_ref_new (PoolCore *core,
              guint     index)
{
  SlotRef *ref = g_new0 (SlotRef, 1);

  ref->core = core_ref (core);
  ref->index = index;
  return ref;
}

static void
slot_ref_free (gpointer data)
{
  SlotRef *ref = data;

  core_unref (ref->core);
  g_free (ref);
}

/* What a connect attempt's callback needs: the slot and its engine. */
typedef struct
{
  PoolCore    *core;
  guint        index;
  RedisEngine *engine;
} ConnectRef;

static ConnectRef *
connect_ref_new (PoolCore    *core,
                 guint        index,
                 RedisEngine *engine)
{
  ConnectRef *ref = g_new0 (ConnectRef, 1);

  ref->core = core_ref (core);
  ref->index = index;
  ref->engine = redis_engine_ref (engine);
  return ref;
}

static void
connect_ref_free (ConnectRef *ref)
{
  redis_engine_unref (ref->engine);
  core_unref (ref->core);
  g_free (ref);
}

static gboolean
slot_retry_cb (gpointer data)
{
  SlotRef *ref = data;
  Slot *slot = &ref->core->slots[ref->index];

  g_mutex_lock (&ref->core->lock);
  g_clear_pointer (&slot->retry_source, g_source_unref);
  g_mutex_unlock (&ref->core->lock);

  slot_start (ref->core, ref->index);
  return G_SOURCE_REMOVE;
}

/* Called with the lock held. */
static void
slot_schedule_retry_locked (PoolCore *core,
                            Slot     *slot)
{
  guint64 base;
  guint delay;

  /* During a wait-all initialization a failure fails the pool instead. */
  if (core->closed || !core->reconnect || slot->retry_source != NULL || core->initializing)
    return;

  /* Exponential backoff with "equal jitter": half fixed, half random, so
   * slots (and pools) that lost the server together spread their retries. */
  base = (guint64) core->backoff_initial_ms << MIN (slot->attempts, 20);
  base = MIN (base, core->backoff_max_ms);
  delay = (guint) (base / 2 + g_rand_int_range (core->rand, 0, (gint32) MAX (base / 2, 1) + 1));
  delay = MIN (MAX (delay, 1), core->backoff_max_ms);
  slot->attempts++;

  slot->retry_source = g_timeout_source_new (delay);
  g_source_set_static_name (slot->retry_source, "[redispool] reconnect");
  g_source_set_callback (slot->retry_source, slot_retry_cb,
                         slot_ref_new (core, slot->index), slot_ref_free);
  g_source_attach (slot->retry_source, redis_worker_get_context ());
}

static void core_close (PoolCore *core,
                        GTask    *task);

/* Any thread: the initialization has its outcome (@error NULL: success).
 * Records it once (later outcomes are dropped), closes the pool if it
 * failed (a pool that could not connect all its connections is not
 * usable), then completes every init call waiting for it. */
static void
core_init_settle (PoolCore     *core,
                  const GError *error,
                  gboolean      close_on_error)
{
  GQueue *waiters = redis_init_once_settle (&core->init, error);
  GSource *cancel_source;

  if (waiters == NULL)
    return;

  g_mutex_lock (&core->lock);
  core->initializing = FALSE;
  g_clear_error (&core->init_error);
  cancel_source = g_steal_pointer (&core->init_cancel_source);
  g_mutex_unlock (&core->lock);

  if (cancel_source != NULL)
    {
      g_source_destroy (cancel_source);
      g_source_unref (cancel_source);
    }
  if (error != NULL && close_on_error)
    core_close (core, NULL);
  redis_init_once_return (&core->init, waiters);
}

/* A wait-all initialization: slot @error'd or connected. The last one
 * settles it. */
static void
core_init_step (PoolCore     *core,
                const GError *error)
{
  GError *init_error = NULL;
  gboolean last = FALSE;

  g_mutex_lock (&core->lock);
  if (core->initializing)
    {
      if (error != NULL && core->init_error == NULL)
        core->init_error = g_error_copy (error);
      if (--core->init_pending == 0)
        {
          core->initializing = FALSE;
          init_error = g_steal_pointer (&core->init_error);
          last = TRUE;
        }
    }
  g_mutex_unlock (&core->lock);

  if (last)
    core_init_settle (core, init_error, TRUE);
  g_clear_error (&init_error);
}

/* I/O thread: a slot's engine ended (lost, or a connect attempt failed). */
static void
slot_engine_closed_cb (RedisEngine  *engine,
                       const GError *reason,
                       GQueue       *unsent,
                       gpointer      user_data)
{
  SlotRef *ref = user_data;
  PoolCore *core = ref->core;
  Slot *slot = &core->slots[ref->index];
  gboolean lost = FALSE;
  GQueue refused = G_QUEUE_INIT;
  GError *auth_error = NULL;
  RedisCall *call;

  g_mutex_lock (&core->lock);
  if (slot->engine == engine)
    {
      lost = slot->state == SLOT_READY || slot->state == SLOT_FAILING;
      if (slot->state == SLOT_READY)
        core->active--;
      slot->state = SLOT_DOWN;
      g_clear_error (&slot->last_error);
      slot->last_error = g_error_copy (reason);
      slot->engine = NULL;
      redis_engine_unref (engine);
      if (lost)
        slot->attempts = 0;
      slot_schedule_retry_locked (core, slot);
    }
  if (auth_failure_locked (core) != NULL)
    {
      /* Calls waiting for a connection would only time out. */
      auth_error = g_error_copy (auth_failure_locked (core));
      refused = core->queued;
      g_queue_init (&core->queued);
    }
  g_mutex_unlock (&core->lock);

  while ((call = g_queue_pop_head (&refused)) != NULL)
    {
      GError *error = g_error_copy (auth_error);

      g_prefix_error (&error, "%s was not sent: ",
                      redis_call_get_name (call));
      redis_call_fail (call, error);
      redis_call_unref (call);
    }
  g_clear_error (&auth_error);

  /* Calls that never reached the wire go to another connection. */
  while (unsent != NULL && (call = g_queue_pop_head (unsent)) != NULL)
    {
      core_route (core, call);
      redis_call_unref (call);
    }

  if (lost)
    core_emit (core, signals[CONNECTION_LOST], ref->index, reason);
}

static void
slot_connected_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ConnectRef *ref = user_data;
  PoolCore *core = ref->core;
  Slot *slot = &core->slots[ref->index];
  RedisEngine *engine = ref->engine;
  g_autoptr(GError) error = NULL;
  gboolean replaced = FALSE;
  gboolean ready = FALSE;

  if (redis_engine_connect_finish (engine, result, &error))
    {
      g_mutex_lock (&core->lock);
      if (slot->engine == engine && slot->state == SLOT_CONNECTING && !core->closed)
        {
          slot->state = SLOT_READY;
          slot->attempts = 0;
          core->active++;
          ready = TRUE;
          if (slot->ever_ready)
            {
              replaced = TRUE;
              slot->reconnects++;
              core->reconnects++;
            }
          slot->ever_ready = TRUE;
        }
      g_mutex_unlock (&core->lock);

      if (ready)
        {
          core_drain_queue (core);
          core_emit (core, replaced ? signals[CONNECTION_REPLACED] : 0, ref->index, NULL);
        }
    }

  /* A failed attempt was handled by slot_engine_closed_cb (retry). */
  core_init_step (core, error);
  connect_ref_free (ref);
}

/* I/O thread (or init): open a new connection for slot @index. */
static void
slot_start (PoolCore *core,
            guint     index)
{
  Slot *slot = &core->slots[index];
  RedisEngine *engine;

  g_mutex_lock (&core->lock);
  if (core->closed || slot->engine != NULL)
    {
      g_mutex_unlock (&core->lock);
      return;
    }
  engine = redis_engine_new (core->options, core->context);
  slot->engine = engine;
  slot->state = SLOT_CONNECTING;
  g_mutex_unlock (&core->lock);

  redis_engine_set_closed_func (engine, slot_engine_closed_cb,
                                slot_ref_new (core, index), slot_ref_free);
  redis_engine_connect_async (engine, NULL, slot_connected_cb, connect_ref_new (core, index, engine));
}

static gboolean
core_start_all (gpointer data)
{
  PoolCore *core = data;

  for (guint i = 0; i < core->size; i++)
    slot_start (core, i);
  return G_SOURCE_REMOVE;
}

/* Any thread: close everything. @graceful waits for replies in flight. */
typedef struct
{
  GTask *task;
  guint  pending;
} CloseState;

static void
engine_closed_for_close_cb (GObject      *object,
                            GAsyncResult *result,
                            gpointer      user_data)
{
  CloseState *state = user_data;

  if (g_atomic_int_dec_and_test ((gint *) &state->pending))
    {
      g_task_return_boolean (state->task, TRUE);
      g_object_unref (state->task);
      g_free (state);
    }
}

static void
core_close (PoolCore *core,
            GTask    *task)
{
  GQueue queued, idle, lease_waiters;
  GPtrArray *engines = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_engine_unref);
  RedisCall *call;
  RedisEngine *engine;
  LeaseRequest *req;
  guint timeout = core->options->command_timeout_ms ? core->options->command_timeout_ms : 5000;

  g_mutex_lock (&core->lock);
  core->closed = TRUE;
  queued = core->queued;
  g_queue_init (&core->queued);
  idle = core->idle_leases;
  g_queue_init (&core->idle_leases);
  lease_waiters = core->lease_waiters;
  g_queue_init (&core->lease_waiters);
  for (guint i = 0; core->slots != NULL && i < core->size; i++)
    {
      Slot *slot = &core->slots[i];

      if (slot->retry_source != NULL)
        {
          g_source_destroy (slot->retry_source);
          g_clear_pointer (&slot->retry_source, g_source_unref);
        }
      if (slot->engine != NULL)
        {
          g_ptr_array_add (engines, g_steal_pointer (&slot->engine));
          if (slot->state == SLOT_READY)
            core->active--;
          slot->state = SLOT_DOWN;
        }
    }
  core->initializing = FALSE;
  g_mutex_unlock (&core->lock);

  while ((call = g_queue_pop_head (&queued)) != NULL)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                          "%s was not sent: the pool was closed",
                                          redis_call_get_name (call)));
      redis_call_unref (call);
    }
  while ((req = g_queue_pop_head (&lease_waiters)) != NULL)
    {
      lease_request_stop_waiting (req);
      lease_request_fail (req, REDIS_ERROR, REDIS_ERROR_CLOSED, "the pool was closed");
      lease_request_unref (req);
    }
  while ((engine = g_queue_pop_head (&idle)) != NULL)
    g_ptr_array_add (engines, engine);

  if (redis_init_once_get_state (&core->init) == REDIS_INIT_RUNNING)
    {
      g_autoptr(GError) error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                     "The pool was closed while connecting");

      core_init_settle (core, error, FALSE);
    }

  if (task != NULL && engines->len > 0)
    {
      CloseState *state = g_new0 (CloseState, 1);

      state->task = task;
      state->pending = engines->len;
      for (guint i = 0; i < engines->len; i++)
        redis_engine_close_async (g_ptr_array_index (engines, i), timeout, NULL,
                                  engine_closed_for_close_cb, state);
    }
  else
    {
      for (guint i = 0; i < engines->len; i++)
        redis_engine_close (g_ptr_array_index (engines, i), REDIS_ERROR_CLOSED, NULL);
      if (task != NULL)
        {
          g_task_return_boolean (task, TRUE);
          g_object_unref (task);
        }
    }

  g_ptr_array_unref (engines);
}

/* ---- GObject ------------------------------------------------------------ */

static gboolean
parse_pool_param (const char  *key,
                  const char  *value,
                  gpointer     user_data,
                  GError     **error)
{
  PoolCore *core = user_data;
  guint64 n;
  guint ms;

  if (g_str_equal (key, "pool_size"))
    {
      if (!g_ascii_string_to_unsigned (value, 10, 1, 1024, &n, NULL))
        goto bad;
      core->size = n;
    }
  else if (g_str_equal (key, "strategy"))
    {
      if (g_str_equal (value, "round_robin"))
        core->strategy = REDIS_POOL_STRATEGY_ROUND_ROBIN;
      else if (g_str_equal (value, "random"))
        core->strategy = REDIS_POOL_STRATEGY_RANDOM;
      else if (g_str_equal (value, "least_pending"))
        core->strategy = REDIS_POOL_STRATEGY_LEAST_PENDING;
      else
        goto bad;
    }
  else if (g_str_equal (key, "backoff_initial") || g_str_equal (key, "backoff_max"))
    {
      if (!redis_options_parse_duration_ms (value, &ms) || ms == 0)
        goto bad;
      if (key[8] == 'i')
        core->backoff_initial_ms = ms;
      else
        core->backoff_max_ms = ms;
    }
  else if (g_str_equal (key, "connect_mode"))
    {
      if (g_str_equal (value, "wait_all"))
        core->connect_mode = REDIS_POOL_CONNECT_MODE_WAIT_ALL;
      else if (g_str_equal (value, "background"))
        core->connect_mode = REDIS_POOL_CONNECT_MODE_BACKGROUND;
      else
        goto bad;
    }
  else if (g_str_equal (key, "reconnect"))
    {
      if (g_str_equal (value, "1") || g_str_equal (value, "true"))
        core->reconnect = TRUE;
      else if (g_str_equal (value, "0") || g_str_equal (value, "false"))
        core->reconnect = FALSE;
      else
        goto bad;
    }
  else if (g_str_equal (key, "max_queued"))
    {
      if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT, &n, NULL))
        goto bad;
      core->max_queued = n;
    }
  else if (g_str_equal (key, "max_leases"))
    {
      if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXINT, &n, NULL))
        goto bad;
      core->max_leases = n;
    }
  else
    {
      g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                   "Invalid Redis URI: unknown parameter “%s”", key);
      return FALSE;
    }
  return TRUE;

bad:
  g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
               "Invalid Redis URI: %s=“%s” is not valid", key, value);
  return FALSE;
}

static void
redis_pool_constructed (GObject *object)
{
  RedisPool *self = REDIS_POOL (object);
  PoolCore *core = self->core;

  G_OBJECT_CLASS (redis_pool_parent_class)->constructed (object);

  if (self->uri != NULL)
    {
      redis_options_parse_uri (core->options, self->uri, parse_pool_param, core, &self->uri_error);
      /* It may hold a password: keep only the parsed options. */
      redis_options_clear_secret (&self->uri);
    }

  if (core->backoff_max_ms < core->backoff_initial_ms)
    core->backoff_max_ms = core->backoff_initial_ms;

  core->slots = g_new0 (Slot, core->size);
  for (guint i = 0; i < core->size; i++)
    core->slots[i].index = i;

  core->queue_timer = redis_worker_deadline_source_new ("[redispool] pool queue deadline",
                                                       queue_timer_cb, core_ref (core),
                                                       (GDestroyNotify) core_unref);
  core->lease_timer = redis_worker_deadline_source_new ("[redispool] lease wait deadline",
                                                       lease_timer_cb, core_ref (core),
                                                       (GDestroyNotify) core_unref);

  g_weak_ref_set (&core->pool, self);
}

static void
redis_pool_dispose (GObject *object)
{
  RedisPool *self = REDIS_POOL (object);

  if (self->core != NULL)
    {
      /* Cleared here, on the disposing thread: see ConnectionLink in
       * redis-connection.c for why a GWeakRef must not be cleared from the
       * I/O thread while its object is being disposed. */
      g_weak_ref_set (&self->core->pool, NULL);
      core_close (self->core, NULL);
      if (self->core->queue_timer != NULL)
        g_source_destroy (self->core->queue_timer);
      if (self->core->lease_timer != NULL)
        g_source_destroy (self->core->lease_timer);
      g_clear_pointer (&self->core, core_unref);
    }

  G_OBJECT_CLASS (redis_pool_parent_class)->dispose (object);
}

static void
redis_pool_finalize (GObject *object)
{
  RedisPool *self = REDIS_POOL (object);

  redis_options_clear_secret (&self->uri);
  g_clear_error (&self->uri_error);

  G_OBJECT_CLASS (redis_pool_parent_class)->finalize (object);
}

static void
redis_pool_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  RedisPool *self = REDIS_POOL (object);
  PoolCore *core = self->core;

  if (core == NULL)
    return;

  switch (prop_id)
    {
    case PROP_URI:
      g_value_take_string (value, redis_options_to_uri (core->options));
      break;
    case PROP_POOL_SIZE:
    case PROP_SIZE:
      g_value_set_uint (value, core->size);
      break;
    case PROP_STRATEGY:
      g_value_set_enum (value, core->strategy);
      break;
    case PROP_BACKOFF_INITIAL:
      g_value_set_uint (value, core->backoff_initial_ms);
      break;
    case PROP_BACKOFF_MAX:
      g_value_set_uint (value, core->backoff_max_ms);
      break;
    case PROP_CONNECT_MODE:
      g_value_set_enum (value, core->connect_mode);
      break;
    case PROP_RECONNECT:
      g_value_set_boolean (value, core->reconnect);
      break;
    case PROP_MAX_QUEUED:
      g_value_set_uint (value, core->max_queued);
      break;
    case PROP_MAX_LEASES:
      g_value_set_uint (value, core->max_leases);
      break;
    case PROP_ACTIVE_CONNECTIONS:
      g_value_set_uint (value, redis_pool_get_active_connections (self));
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        redis_options_get_property (core->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_pool_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  RedisPool *self = REDIS_POOL (object);
  PoolCore *core = self->core;

  /* Every property is construct-only: GObject refuses later changes. */
  switch (prop_id)
    {
    case PROP_URI:
      redis_options_clear_secret (&self->uri);
      self->uri = g_value_dup_string (value);
      break;
    case PROP_POOL_SIZE:
      core->size = g_value_get_uint (value);
      break;
    case PROP_STRATEGY:
      core->strategy = g_value_get_enum (value);
      break;
    case PROP_BACKOFF_INITIAL:
      core->backoff_initial_ms = g_value_get_uint (value);
      break;
    case PROP_BACKOFF_MAX:
      core->backoff_max_ms = g_value_get_uint (value);
      break;
    case PROP_CONNECT_MODE:
      core->connect_mode = g_value_get_enum (value);
      break;
    case PROP_RECONNECT:
      core->reconnect = g_value_get_boolean (value);
      break;
    case PROP_MAX_QUEUED:
      core->max_queued = g_value_get_uint (value);
      break;
    case PROP_MAX_LEASES:
      core->max_leases = g_value_get_uint (value);
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        redis_options_set_property (core->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_pool_class_init (RedisPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->constructed = redis_pool_constructed;
  object_class->dispose = redis_pool_dispose;
  object_class->finalize = redis_pool_finalize;
  object_class->get_property = redis_pool_get_property;
  object_class->set_property = redis_pool_set_property;

  /**
   * RedisPool:uri:
   *
   * A `redis://`, `rediss://` or `unix://` URI that sets the options at
   * once; see [property@Redis.Connection:uri]. Pools also take the query
   * parameters `pool_size`, `strategy` (`round_robin`, `random`,
   * `least_pending`), `backoff_initial`, `backoff_max`, `connect_mode`
   * (`wait_all`, `background`), `reconnect`, `max_queued` and
   * `max_leases`. Read back, it has no password.
   */
  properties[PROP_URI] = g_param_spec_string ("uri", NULL, NULL, NULL, construct);

  /**
   * RedisPool:pool-size:
   *
   * The number of shared connections. Default 5 (the seed's `:pool_size`).
   */
  properties[PROP_POOL_SIZE] = g_param_spec_uint ("pool-size", NULL, NULL, 1, 1024, 5,
                                                  construct);

  /**
   * RedisPool:strategy:
   *
   * How calls are spread over the connections. Default round-robin.
   */
  properties[PROP_STRATEGY] =
    g_param_spec_enum ("strategy", NULL, NULL, REDIS_TYPE_POOL_STRATEGY,
                       REDIS_POOL_STRATEGY_ROUND_ROBIN, construct);

  /**
   * RedisPool:backoff-initial:
   *
   * Milliseconds before the first reconnect attempt of a lost connection;
   * each failed attempt doubles it (with jitter) up to
   * [property@Redis.Pool:backoff-max]. Default 500.
   */
  properties[PROP_BACKOFF_INITIAL] =
    g_param_spec_uint ("backoff-initial", NULL, NULL, 1, G_MAXINT, 500,
                       construct);

  /**
   * RedisPool:backoff-max:
   *
   * The longest wait between reconnect attempts, in milliseconds.
   * Default 30000.
   */
  properties[PROP_BACKOFF_MAX] =
    g_param_spec_uint ("backoff-max", NULL, NULL, 1, G_MAXINT, 30000,
                       construct);

  /**
   * RedisPool:connect-mode:
   *
   * Whether initialization waits for every connection (the default, and a
   * failure to connect fails it) or returns at once.
   */
  properties[PROP_CONNECT_MODE] =
    g_param_spec_enum ("connect-mode", NULL, NULL, REDIS_TYPE_POOL_CONNECT_MODE,
                       REDIS_POOL_CONNECT_MODE_WAIT_ALL, construct);

  /**
   * RedisPool:reconnect:
   *
   * Whether lost connections are replaced. %FALSE is the seed's
   * `exit_on_disconnection`: a lost slot stays down. Default %TRUE.
   */
  properties[PROP_RECONNECT] =
    g_param_spec_boolean ("reconnect", NULL, NULL, TRUE, construct);

  /**
   * RedisPool:max-queued:
   *
   * How many calls may wait while no connection is live; past it calls fail
   * at once with %REDIS_ERROR_QUEUE_FULL. Each waiting call still keeps its
   * own deadline. Default 10000.
   */
  properties[PROP_MAX_QUEUED] =
    g_param_spec_uint ("max-queued", NULL, NULL, 0, G_MAXUINT, 10000,
                       construct);

  /**
   * RedisPool:max-leases:
   *
   * The most dedicated connections the pool keeps open at once, beside its
   * [property@Redis.Pool:pool-size] shared ones: leases from
   * [method@Redis.Pool.acquire_async] (held, or being reset after
   * [method@Redis.Pool.release]), blocking commands sent through the
   * shared API, and the idle ones kept for reuse. When all are in use, an
   * acquire or a blocking command waits, first come first served, for one
   * to come back — an acquire up to [property@Redis.Pool:command-timeout]
   * (without limit when that is 0), a blocking command up to its own
   * deadline — and then fails with %REDIS_ERROR_POOL_EXHAUSTED; nothing was
   * sent. A released lease is handed to the next waiter once its reset is
   * answered, without opening a new connection.
   *
   * Default 32: as many concurrent transactions with WATCH or blocked
   * consumers as a process typically runs, while the pool stays well
   * under the server's `maxclients` (10000) even with many processes.
   * Raise it for more concurrent blocking consumers: a blocking command
   * holds its connection for its whole block time.
   */
  properties[PROP_MAX_LEASES] =
    g_param_spec_uint ("max-leases", NULL, NULL, 1, G_MAXINT, DEFAULT_MAX_LEASES,
                       construct);

  /**
   * RedisPool:size:
   *
   * The number of shared connections, as in the seed's `info`: the same
   * as [property@Redis.Pool:pool-size], read-only.
   */
  properties[PROP_SIZE] = g_param_spec_uint ("size", NULL, NULL, 0, G_MAXUINT, 0,
                                             G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * RedisPool:active-connections:
   *
   * The number of shared connections that are up. Notified when it
   * changes.
   */
  properties[PROP_ACTIVE_CONNECTIONS] =
    g_param_spec_uint ("active-connections", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * RedisPool:host:
   *
   * The host name or IP address of the server. Default `127.0.0.1`.
   */
  /**
   * RedisPool:port:
   *
   * The TCP port of the server. Default 6379.
   */
  /**
   * RedisPool:socket-path:
   *
   * The path of a Unix socket to connect to instead of TCP.
   */
  /**
   * RedisPool:database:
   *
   * The database every connection selects. Default 0.
   */
  /**
   * RedisPool:username:
   *
   * The ACL user name for AUTH, or %NULL for the default user.
   */
  /**
   * RedisPool:password:
   *
   * The password for AUTH. Write-only: never readable, logged, or printed
   * in an error, in [method@Redis.Pool.get_info] or in a URI.
   */
  /**
   * RedisPool:client-name:
   *
   * The name every connection sets with CLIENT SETNAME.
   */
  /**
   * RedisPool:tls:
   *
   * Whether to speak TLS. Set by `rediss://` URIs.
   */
  /**
   * RedisPool:tls-ca-file:
   *
   * A PEM file of CA certificates to verify the server with.
   */
  /**
   * RedisPool:tls-certificate-file:
   *
   * A PEM client certificate for servers that require one.
   */
  /**
   * RedisPool:tls-key-file:
   *
   * The private key of [property@Redis.Pool:tls-certificate-file].
   */
  /**
   * RedisPool:tls-validation-flags:
   *
   * The certificate checks that must pass. Default: all of them. Each
   * connection applies its own checks and [property@Redis.Pool:tls-ca-file],
   * also when it resumes the TLS session of an earlier connection.
   */
  /**
   * RedisPool:connect-timeout:
   *
   * Milliseconds allowed for connect, TLS and handshake together.
   * Default 5000.
   */
  /**
   * RedisPool:command-timeout:
   *
   * Milliseconds allowed for each call, including time spent waiting for a
   * connection; 0 for no limit. Default 5000.
   */
  /**
   * RedisPool:stall-timeout:
   *
   * Milliseconds of silence from the server, once a written call is past its
   * deadline, after which the connection is considered dead (blackholed or
   * half-open) and closed as lost; a pool then replaces it. 0 turns stall
   * detection off. Default 10000.
   */
  /**
   * RedisPool:health-check-interval:
   *
   * Milliseconds of idleness (nothing in flight, nothing received) after
   * which a connection sends a PING, so that a vanished peer is noticed
   * (through [property@Redis.Pool:stall-timeout]) before a user command meets it.
   * 0 turns it off. Default 30000.
   */
  /**
   * RedisPool:max-reply-bytes:
   *
   * The largest reply accepted, in bytes as they come on the wire (RESP
   * framing included). Default 512 MiB.
   */
  /**
   * RedisPool:max-elements:
   *
   * The largest array reply accepted, in elements. Default 16777216.
   */
  /**
   * RedisPool:max-line-length:
   *
   * The longest status, error or header line accepted. Default 65536.
   */
  /**
   * RedisPool:max-depth:
   *
   * The deepest nesting of arrays accepted in a reply (`*1\r\n:1\r\n` is
   * one level); a deeper reply fails with %REDIS_ERROR_REPLY_TOO_LARGE and
   * the connection is replaced. `COMMAND` nests 8 levels, `COMMAND DOCS`
   * 12. From 1 to 1024; default 64.
   */
  redis_options_install_properties (object_class, PROP_FIRST_OPTION,
                                    &properties[PROP_FIRST_OPTION]);
  g_object_class_install_properties (object_class, PROP_FIRST_OPTION, properties);

  /**
   * RedisPool::connection-lost:
   * @self: the pool
   * @index: the slot of the connection, from 0 to size - 1
   * @error: why it was lost
   *
   * Emitted once for each lost connection, in the main context the pool was
   * created in. Handlers may call back into the pool.
   */
  signals[CONNECTION_LOST] =
    g_signal_new ("connection-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_ERROR);

  /**
   * RedisPool::connection-replaced:
   * @self: the pool
   * @index: the slot of the connection, from 0 to size - 1
   *
   * Emitted once a lost connection has been replaced by a new one that has
   * finished its handshake.
   */
  signals[CONNECTION_REPLACED] =
    g_signal_new ("connection-replaced", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void
redis_pool_init (RedisPool *self)
{
  self->core = core_new ();
}

/* ---- RedisClient -------------------------------------------------------- */

static void
redis_pool_submit (RedisClient *client,
                   RedisCall   *call)
{
  RedisPool *self = REDIS_POOL (client);

  if (self->uri_error != NULL)
    {
      redis_call_fail (call, g_error_copy (self->uri_error));
      return;
    }

  /* Disposed: the core is gone. */
  if (self->core == NULL)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                          "%s was not sent: the pool is closed",
                                          redis_call_get_name (call)));
      return;
    }

  if (call->flags & REDIS_COMMAND_FLAG_CONNECTION_STATE)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                                          "%s changes the state of the connection it runs on; "
                                          "on a pool, run it on a connection leased with "
                                          "redis_pool_acquire_async()",
                                          redis_call_get_name (call)));
      return;
    }

  redis_call_set_timeout (call, self->core->options->command_timeout_ms);
  core_route (self->core, call);
}

static void
redis_pool_close_async (RedisClient         *client,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  RedisPool *self = REDIS_POOL (client);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, redis_pool_close_async);
  if (self->core == NULL)
    {
      /* Disposed: closed already. */
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  core_close (self->core, task);
}

static gboolean
redis_pool_close_finish (RedisClient   *client,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
client_iface_init (RedisClientInterface *iface)
{
  iface->submit = redis_pool_submit;
  iface->close_async = redis_pool_close_async;
  iface->close_finish = redis_pool_close_finish;
}

/* ---- initialization ----------------------------------------------------- */

/* I/O thread: the first init call was cancelled: so is the initialization. */
static gboolean
core_init_cancelled_cb (GCancellable *cancellable,
                        gpointer      data)
{
  PoolCore *core = data;
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 "Operation was cancelled");

  core_init_settle (core, error, TRUE);
  return G_SOURCE_REMOVE;
}

/* Idempotent, as GIO asks: the first call starts the connections; calls
 * made while they come up wait for the outcome (or for their own
 * cancellable), and every call, then or later, gets that one outcome
 * without connecting again. The first call's cancellable cancels the
 * initialization itself (the pool is then closed), as in GIO. */
static void
redis_pool_init_async (GAsyncInitable      *initable,
                       int                  io_priority,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  RedisPool *self = REDIS_POOL (initable);
  PoolCore *core = self->core;
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  gboolean wait_all;

  g_task_set_source_tag (task, redis_pool_init_async);
  g_task_set_name (task, "[redispool] pool init");

  if (core == NULL)
    {
      /* Disposed. */
      g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CLOSED, "The pool is closed");
      return;
    }

  if (!redis_init_once_begin (&core->init, task))
    return;

  if (self->uri_error != NULL)
    {
      core_init_settle (core, self->uri_error, TRUE);
      return;
    }

  g_mutex_lock (&core->lock);
  core->started = TRUE;
  wait_all = core->connect_mode == REDIS_POOL_CONNECT_MODE_WAIT_ALL;
  if (wait_all)
    {
      core->initializing = TRUE;
      core->init_pending = core->size;
      if (cancellable != NULL)
        {
          core->init_cancel_source = g_cancellable_source_new (cancellable);
          g_source_set_static_name (core->init_cancel_source, "[redispool] pool init cancelled");
          g_source_set_callback (core->init_cancel_source, (GSourceFunc) core_init_cancelled_cb,
                                 core_ref (core), (GDestroyNotify) core_unref);
          g_source_attach (core->init_cancel_source, redis_worker_get_context ());
        }
    }
  g_mutex_unlock (&core->lock);

  /* In the background mode the pool is usable (calls wait in the queue)
   * before any connection is up. */
  if (!wait_all)
    core_init_settle (core, NULL, FALSE);

  redis_worker_invoke (core_start_all, core_ref (core), (GDestroyNotify) core_unref);
}

static gboolean
redis_pool_init_finish (GAsyncInitable  *initable,
                        GAsyncResult    *result,
                        GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, initable), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
async_initable_iface_init (GAsyncInitableIface *iface)
{
  iface->init_async = redis_pool_init_async;
  iface->init_finish = redis_pool_init_finish;
}

static void
initable_iface_init (GInitableIface *iface)
{
  iface->init = redis_sync_initable_init;
}

/* ---- public API --------------------------------------------------------- */

/**
 * redis_pool_new_sync:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Creates a pool and connects it, blocking the calling thread. To set
 * options as properties, use g_initable_new() with %REDIS_TYPE_POOL.
 *
 * Returns: (transfer full): a pool, or %NULL with @error set
 */
RedisPool *
redis_pool_new_sync (const char    *uri,
                     GCancellable  *cancellable,
                     GError       **error)
{
  return g_initable_new (REDIS_TYPE_POOL, cancellable, error, "uri", uri, NULL);
}

/**
 * redis_pool_new_async:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the pool is ready or failed
 * @user_data: data for @callback
 *
 * Creates a pool and connects it without blocking. Finish with
 * [ctor@Redis.Pool.new_finish].
 */
void
redis_pool_new_async (const char          *uri,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_async_initable_new_async (REDIS_TYPE_POOL, G_PRIORITY_DEFAULT, cancellable,
                              callback, user_data, "uri", uri, NULL);
}

/**
 * redis_pool_new_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Redis.Pool.new_async].
 *
 * Returns: (transfer full): a pool, or %NULL with @error set
 */
RedisPool *
redis_pool_new_finish (GAsyncResult  *result,
                       GError       **error)
{
  g_autoptr(GObject) source = g_async_result_get_source_object (result);
  GObject *object = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error);

  return object != NULL ? REDIS_POOL (object) : NULL;
}

/**
 * redis_pool_get_size:
 * @self: a [class@Redis.Pool]
 *
 * Returns the number of shared connections.
 *
 * Returns: the pool size
 */
guint
redis_pool_get_size (RedisPool *self)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), 0);

  return self->core != NULL ? self->core->size : 0;
}

/**
 * redis_pool_get_active_connections:
 * @self: a [class@Redis.Pool]
 *
 * Returns how many shared connections are up right now.
 *
 * Returns: the number of live connections
 */
guint
redis_pool_get_active_connections (RedisPool *self)
{
  guint n;

  g_return_val_if_fail (REDIS_IS_POOL (self), 0);

  if (self->core == NULL)
    return 0;
  g_mutex_lock (&self->core->lock);
  n = self->core->active;
  g_mutex_unlock (&self->core->lock);
  return n;
}

/**
 * redis_pool_get_strategy:
 * @self: a [class@Redis.Pool]
 *
 * Returns the dispatch strategy.
 *
 * Returns: the strategy
 */
RedisPoolStrategy
redis_pool_get_strategy (RedisPool *self)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), REDIS_POOL_STRATEGY_ROUND_ROBIN);

  return self->core != NULL ? self->core->strategy : REDIS_POOL_STRATEGY_ROUND_ROBIN;
}

/**
 * redis_pool_get_info:
 * @self: a [class@Redis.Pool]
 *
 * Returns a snapshot of the pool as a dictionary (`a{sv}`), which bindings
 * turn into a native dictionary:
 *
 * - `size` (`u`), `active` (`u`), `strategy` (`s`: `round-robin`, `random`,
 *   `least-pending`) — the seed's `info`;
 * - `in-flight` (`u`): calls on the shared connections not yet answered;
 * - `queued` (`u`): calls waiting for a live connection;
 * - `reconnects` (`t`): connections replaced so far;
 * - `leased` (`u`) and `idle-leases` (`u`): dedicated connections in use
 *   (connecting, leased or blocked, or being reset after a release) and
 *   kept for reuse; together at most [property@Redis.Pool:max-leases];
 * - `lease-waiters` (`u`): acquires and blocking commands waiting for a
 *   dedicated connection because all of them are in use;
 * - `closed` (`b`);
 * - `connections` (`aa{sv}`): per slot `index` (`u`), `state` (`s`: `down`,
 *   `connecting`, `ready`, `failing`), `in-flight` (`u`), `client-id`
 *   (`x`), `reconnects` (`t`) and, after a failure, `last-error` (`s`).
 *
 * Returns: (transfer full): a new, non-floating #GVariant
 */
GVariant *
redis_pool_get_info (RedisPool *self)
{
  PoolCore *core;
  GVariantBuilder builder, conns;
  guint in_flight = 0;
  GEnumClass *enum_class;
  GEnumValue *value;

  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);

  core = self->core;
  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (core == NULL)
    {
      g_variant_builder_add (&builder, "{sv}", "closed", g_variant_new_boolean (TRUE));
      return g_variant_ref_sink (g_variant_builder_end (&builder));
    }

  enum_class = g_type_class_ref (REDIS_TYPE_POOL_STRATEGY);
  value = g_enum_get_value (enum_class, core->strategy);

  g_variant_builder_init (&conns, G_VARIANT_TYPE ("aa{sv}"));
  g_mutex_lock (&core->lock);
  for (guint i = 0; i < core->size; i++)
    {
      Slot *slot = &core->slots[i];
      guint pending = slot->engine != NULL ? redis_engine_get_n_pending (slot->engine) : 0;

      in_flight += pending;
      g_variant_builder_open (&conns, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&conns, "{sv}", "index", g_variant_new_uint32 (i));
      g_variant_builder_add (&conns, "{sv}", "state", g_variant_new_string (slot_state_names[slot->state]));
      g_variant_builder_add (&conns, "{sv}", "in-flight", g_variant_new_uint32 (pending));
      g_variant_builder_add (&conns, "{sv}", "client-id",
                             g_variant_new_int64 (slot->engine != NULL && slot->state == SLOT_READY ?
                                                  redis_engine_get_client_id (slot->engine) : 0));
      g_variant_builder_add (&conns, "{sv}", "reconnects", g_variant_new_uint64 (slot->reconnects));
      if (slot->last_error != NULL)
        g_variant_builder_add (&conns, "{sv}", "last-error",
                               g_variant_new_string (slot->last_error->message));
      g_variant_builder_close (&conns);
    }
  g_variant_builder_add (&builder, "{sv}", "size", g_variant_new_uint32 (core->size));
  g_variant_builder_add (&builder, "{sv}", "active", g_variant_new_uint32 (core->active));
  g_variant_builder_add (&builder, "{sv}", "strategy", g_variant_new_string (value->value_nick));
  g_variant_builder_add (&builder, "{sv}", "in-flight", g_variant_new_uint32 (in_flight));
  g_variant_builder_add (&builder, "{sv}", "queued", g_variant_new_uint32 (core->queued.length));
  g_variant_builder_add (&builder, "{sv}", "reconnects", g_variant_new_uint64 (core->reconnects));
  g_variant_builder_add (&builder, "{sv}", "leased", g_variant_new_uint32 (core->n_leased));
  g_variant_builder_add (&builder, "{sv}", "idle-leases", g_variant_new_uint32 (core->idle_leases.length));
  g_variant_builder_add (&builder, "{sv}", "lease-waiters", g_variant_new_uint32 (core->lease_waiters.length));
  g_variant_builder_add (&builder, "{sv}", "closed", g_variant_new_boolean (core->closed));
  g_mutex_unlock (&core->lock);
  g_variant_builder_add (&builder, "{sv}", "connections", g_variant_builder_end (&conns));
  g_type_class_unref (enum_class);

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

/**
 * redis_pool_acquire_async:
 * @self: a [class@Redis.Pool]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the leased connection
 * @user_data: data for @callback
 *
 * Leases a connection that nobody else uses until it is handed back with
 * [method@Redis.Pool.release]: for WATCH/MULTI/EXEC with optimistic
 * locking, SELECT, blocking commands and anything else that depends on
 * connection state. The lease is a dedicated connection, not one of the
 * shared slots: an idle one kept from an earlier lease, one whose reset
 * after a release is in flight (handed over once the reset is answered),
 * or a new one while fewer than [property@Redis.Pool:max-leases] exist.
 *
 * When all of them are in use, the call waits for one to come back, first
 * come first served, up to [property@Redis.Pool:command-timeout] (without
 * limit when that is 0); past it, it fails with
 * %REDIS_ERROR_POOL_EXHAUSTED. Possible errors also include those of
 * connecting, %REDIS_ERROR_CLOSED and %G_IO_ERROR_CANCELLED.
 */
void
redis_pool_acquire_async (RedisPool           *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  LeaseRequest *req;

  g_return_if_fail (REDIS_IS_POOL (self));

  if (self->uri_error != NULL || self->core == NULL)
    {
      GTask *task = g_task_new (self, cancellable, callback, user_data);

      g_task_set_source_tag (task, redis_pool_acquire_async);
      if (self->uri_error != NULL)
        g_task_return_error (task, g_error_copy (self->uri_error));
      else
        g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CLOSED, "The pool is closed");
      g_object_unref (task);
      return;
    }

  req = lease_request_new (self->core);
  req->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (req->task, redis_pool_acquire_async);
  core_lease (req);
}

/**
 * redis_pool_acquire_finish:
 * @self: a [class@Redis.Pool]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Pool.acquire_async].
 *
 * Returns: (transfer full): the leased connection, or %NULL with @error set
 */
RedisConnection *
redis_pool_acquire_finish (RedisPool     *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * redis_pool_acquire_sync:
 * @self: a [class@Redis.Pool]
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of [method@Redis.Pool.acquire_async].
 *
 * Returns: (transfer full): the leased connection, or %NULL with @error set
 */
RedisConnection *
redis_pool_acquire_sync (RedisPool     *self,
                         GCancellable  *cancellable,
                         GError       **error)
{
  RedisSyncCall sync;
  RedisConnection *ret;

  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);

  redis_sync_call_begin (&sync);
  redis_pool_acquire_async (self, cancellable, redis_sync_call_store, &sync);
  redis_sync_call_wait (&sync);
  ret = redis_pool_acquire_finish (self, sync.result, error);
  redis_sync_call_end (&sync);
  return ret;
}

/**
 * redis_pool_release:
 * @self: a [class@Redis.Pool]
 * @connection: a connection from [method@Redis.Pool.acquire_async]
 *
 * Ends a lease. Calls on @connection fail with %REDIS_ERROR_CLOSED from
 * now on. The pool resets the connection (DISCARD, UNWATCH, SELECT of the
 * configured database) and keeps it for the next lease, or closes it when
 * the reset fails. Dropping the last reference to a leased connection
 * releases it too.
 */
void
redis_pool_release (RedisPool       *self,
                    RedisConnection *connection)
{
  g_return_if_fail (REDIS_IS_POOL (self));
  g_return_if_fail (REDIS_IS_CONNECTION (connection));
  g_return_if_fail (redis_connection_is_lease (connection));

  redis_connection_end_lease (connection);
}
