/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-backoff-private.h"
#include "redis-connection-private.h"
#include "redis-credentials-private.h"
#include "redis-engine-private.h"
#include "redis-enums.h"
#include "redis-error.h"
#include "redis-init-private.h"
#include "redis-netmon-private.h"
#include "redis-pool-core-private.h"
#include "redis-sentinel-private.h"
#include "redis-worker-private.h"

/*
 * The pool core. Every connection it holds is an engine (redis-engine.c),
 * of one of two kinds.
 *
 * Slots are the `size` shared connections that calls are spread over. A
 * slot is a place, not a connection: when its engine ends, the slot gets a
 * new one after a backoff. Its states:
 *
 *          slot_start(): a new engine    connected           submit refused
 *   DOWN ───────────────────► CONNECTING ─────────► READY ──────────────► FAILING
 *    ▲ ▲                          │                   │  (the engine is       │
 *    │ └──────────────────────────┘                   │   going away)         │
 *    │    engine closed: the connect failed           │                       │
 *    └────────────────────────────────────────────────┴───────────────────────┘
 *         engine closed: lost (reported; the backoff starts over)
 *
 * READY slots are the ones counted in `active` and picked by the strategy.
 * Every slot that goes DOWN gets one retry (retry_source), slot_start()
 * after the backoff, unless the core is closed, does not reconnect, or a
 * wait-all initialization is running (a failure then fails the
 * initialization); so while the server is down each slot has one attempt
 * pending at a time. (A slot that was up and is lost while a wait-all
 * initialization still waits for other slots is retried: its outcome
 * was counted, and the initialization may succeed without it.) The backoff is exponential with full jitter
 * (redis-backoff.c). While the network monitor says the server cannot be
 * reached (redis-netmon.c), slots that go down stay down, without retry;
 * when it can again, core_network_back() starts them at once. A slot up again after a loss is reported as
 * replaced.
 *
 * A call for the shared connections goes to a READY slot's engine; while
 * there is none, it waits in `queued` (the offline queue) until a slot
 * comes up (core_drain_queue()), its deadline passes (queue_timer), it is
 * cancelled or the core closes. It fails at once instead when waiting
 * cannot help: every slot's last attempt was refused by AUTH, no slot can
 * come back, or max-queued calls wait already. Calls not yet written when
 * their engine ends come back through the engine's closed callback and are
 * routed again; the engine fails written ones (they may have run).
 *
 * Dedicated connections serve a lease (redis_pool_core_acquire()) or a
 * blocking command sent through the shared API, each on a connection that
 * the core opens beside its slots and nobody else writes to meanwhile. At
 * most max-leases of them exist (n_leased + idle_leases.length):
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
 * sent), it is cancelled or the core closes. A connection that comes back
 * goes to the first waiter, else to idle_leases; one that is closed makes
 * room for a waiter to open another. A request is completed by whoever
 * takes it off lease_waiters (under the lock), or by whoever holds it when
 * it never waited.
 *
 * Who calls whom, one direction each:
 *
 *   owner (RedisPool) ── redis_pool_core_*() ──► core ── submit, connect, close ──► engines
 *   owner ◄── RedisPoolCoreCallbacks, in the owner's context (core_report()) ── core
 *   core ◄── engines: connect completions (I/O thread); RedisEngineClosedFunc
 *            (any thread, no engine lock held); and, for calls on dedicated
 *            connections only, RedisCall.on_done = dedicated_call_done_cb(),
 *            the one callback that runs inside an engine (see there)
 *   core ◄── a lease's RedisConnection: lease_ended_cb() when it is released
 *
 * Locking: `lock` guards the state marked so below. It may be taken with
 * an engine's I/O lock held (dedicated_call_done_cb()), never the other
 * way round: with `lock` held the core only calls engines' lock-free
 * getters (state, n_pending), the client id (the engine's inner lock, a
 * leaf), ref and unref. Everything else (submitting, connecting, closing,
 * completing calls and tasks) is decided under the lock and done after
 * it.
 */

typedef enum
{
  SLOT_DOWN,
  SLOT_CONNECTING,
  SLOT_READY,
  SLOT_FAILING,        /* refused a call: its engine is going away */
} SlotState;

static const char * const slot_state_names[] = { "down", "connecting", "ready", "failing" };

typedef struct
{
  guint         index;
  RedisEngine  *engine;
  SlotState     state;
  guint         attempts;        /* consecutive failed connects */
  GSource      *retry_source;
  gboolean      ever_ready;
  gboolean      init_counted;    /* its wait-all init outcome is counted */
  guint64       reconnects;
  GError       *last_error;
  gboolean      asking;          /* CONNECTING: the credentials provider is asked */
  gboolean      ask_stale;       /* its last answer was refused by AUTH */
  gboolean      reasking;        /* asking again at once after that refusal */
} Slot;

/* Reference counted (a g_atomic_rc_box), so that callbacks and sources
 * still in flight after the owner let go find valid memory (and a closed
 * core). */
struct _RedisPoolCore
{
  GMutex                        lock;
  GMainContext                 *context;        /* engines' home; where reports go */
  const RedisPoolCoreCallbacks *callbacks;
  gpointer                      callbacks_data;
  GDestroyNotify                callbacks_notify;

  RedisPoolConfig               config;         /* immutable */
  RedisNetmon                  *netmon;         /* immutable; NULL: not monitored */
  /* The next connections' credentials and the provider asked before each
   * connect of a slot (thread-safe; shared with the pool's subscribers, and
   * a cluster's node pools share the cluster's). */
  RedisCredentials             *credentials;

  /* Protected by lock. */
  Slot                         *slots;
  gboolean                      started;
  gboolean                      closed;
  gint                          closed_seen;    /* atomic copy of closed, for lock-free readers */
  guint                         rr_next;
  GQueue                        queued;         /* RedisCall*: no live connection yet */
  guint                         active;
  guint64                       reconnects;
  GRand                        *rand;

  /* Dedicated connections (leases and blocking commands), protected by
   * lock. n_leased + idle_leases.length never exceeds max_leases. */
  GQueue                        idle_leases;    /* RedisEngine*: ready for a lease */
  guint                         n_leased;       /* connecting, handed out, or resetting */
  guint                         n_resetting;    /* released, reset in flight */
  GQueue                        lease_waiters;  /* LeaseRequest*: waiting for one */

  /* Initialization (see redis_pool_core_init()). The outcome and the
   * callers waiting for it are in init; the rest is protected by lock. */
  RedisInitOnce                 init;
  gboolean                      initializing;   /* a wait-all start counts its slots */
  guint                         init_pending;
  GError                       *init_error;
  GSource                      *init_cancel_source;

  GSource                      *queue_timer;    /* I/O thread */
  GSource                      *lease_timer;    /* I/O thread */
};

static void core_route (RedisPoolCore *core,
                        RedisCall     *call);
static void core_close (RedisPoolCore *core,
                        GTask         *task,
                        const GError  *reason);
static void core_init_start (RedisPoolCore *core,
                             GCancellable  *cancellable,
                             const GError  *config_error);

/* ---- configuration and life cycle --------------------------------------- */

void
redis_pool_config_init (RedisPoolConfig *config)
{
  config->options = redis_options_new ();
  config->size = REDIS_POOL_DEFAULT_SIZE;
  config->strategy = REDIS_POOL_STRATEGY_ROUND_ROBIN;
  config->backoff_initial_ms = REDIS_POOL_DEFAULT_BACKOFF_INITIAL;
  config->backoff_max_ms = REDIS_POOL_DEFAULT_BACKOFF_MAX;
  config->connect_mode = REDIS_POOL_CONNECT_MODE_WAIT_ALL;
  config->reconnect = TRUE;
  config->max_queued = REDIS_POOL_DEFAULT_MAX_QUEUED;
  config->max_leases = REDIS_POOL_DEFAULT_MAX_LEASES;
}

void
redis_pool_config_clear (RedisPoolConfig *config)
{
  g_clear_pointer (&config->options, redis_options_free);
  g_clear_object (&config->network_monitor);
}

static gboolean queue_timer_cb (gpointer data);
static gboolean lease_timer_cb (gpointer data);
static void core_network_changed (gboolean reachable,
                                  gpointer data);

RedisPoolCore *
redis_pool_core_new (RedisPoolConfig              *config,
                     const RedisPoolCoreCallbacks *callbacks,
                     gpointer                      user_data,
                     GDestroyNotify                notify)
{
  RedisPoolCore *core = g_atomic_rc_box_new0 (RedisPoolCore);

  g_mutex_init (&core->lock);
  core->context = g_main_context_ref_thread_default ();
  core->callbacks = callbacks;
  core->callbacks_data = user_data;
  core->callbacks_notify = notify;

  core->config = *config;
  config->options = NULL;
  config->network_monitor = NULL;
  if (core->config.backoff_max_ms < core->config.backoff_initial_ms)
    core->config.backoff_max_ms = core->config.backoff_initial_ms;

  core->slots = g_new0 (Slot, core->config.size);
  for (guint i = 0; i < core->config.size; i++)
    core->slots[i].index = i;
  core->rand = g_rand_new ();
  core->credentials = redis_credentials_new (core->config.options);
  g_queue_init (&core->queued);
  g_queue_init (&core->idle_leases);
  g_queue_init (&core->lease_waiters);
  redis_init_once_init (&core->init);

  /* Holds a reference to the core until redis_pool_core_dispose(). */
  core->netmon = redis_netmon_new (core->config.network_monitor, core->config.options,
                                   core_network_changed, redis_pool_core_ref (core),
                                   (GDestroyNotify) redis_pool_core_unref);

  core->queue_timer = redis_worker_deadline_source_new ("[redispool] pool queue deadline",
                                                       queue_timer_cb, redis_pool_core_ref (core),
                                                       (GDestroyNotify) redis_pool_core_unref);
  core->lease_timer = redis_worker_deadline_source_new ("[redispool] lease wait deadline",
                                                       lease_timer_cb, redis_pool_core_ref (core),
                                                       (GDestroyNotify) redis_pool_core_unref);
  return core;
}

RedisPoolCore *
redis_pool_core_ref (RedisPoolCore *core)
{
  return g_atomic_rc_box_acquire (core);
}

/* Runs on the last unref; the box is freed right after. */
static void
core_clear (RedisPoolCore *core)
{
  g_assert (g_queue_is_empty (&core->queued));
  g_assert (g_queue_is_empty (&core->idle_leases));
  g_assert (g_queue_is_empty (&core->lease_waiters));
  g_assert (core->init_cancel_source == NULL);
  for (guint i = 0; i < core->config.size; i++)
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
  redis_credentials_unref (core->credentials);
  redis_netmon_unref (core->netmon);
  redis_pool_config_clear (&core->config);
  if (core->callbacks_notify != NULL)
    core->callbacks_notify (core->callbacks_data);
  g_main_context_unref (core->context);
  g_mutex_clear (&core->lock);
}

void
redis_pool_core_unref (RedisPoolCore *core)
{
  g_atomic_rc_box_release_full (core, (GDestroyNotify) core_clear);
}

void
redis_pool_core_dispose (RedisPoolCore *core)
{
  core_close (core, NULL, NULL);
  /* They hold references to the core. */
  redis_netmon_stop (core->netmon);
  g_source_destroy (core->queue_timer);
  g_source_destroy (core->lease_timer);
}

const RedisPoolConfig *
redis_pool_core_get_config (RedisPoolCore *core)
{
  return &core->config;
}

/* ---- reports to the owner ----------------------------------------------- */

typedef enum
{
  REPORT_ACTIVE_CHANGED,
  REPORT_LOST,
  REPORT_REPLACED,
} ReportKind;

typedef struct
{
  RedisPoolCore *core;
  ReportKind     kind;
  guint          index;
  GError        *error;
} Report;

static gboolean
report_cb (gpointer data)
{
  Report *report = data;
  RedisPoolCore *core = report->core;
  const RedisPoolCoreCallbacks *callbacks = core->callbacks;
  gboolean closed;

  g_mutex_lock (&core->lock);
  closed = core->closed;
  g_mutex_unlock (&core->lock);

  /* Nothing after close: a closed pool is finished for its users. */
  if (closed)
    return G_SOURCE_REMOVE;

  if (report->kind == REPORT_LOST)
    callbacks->connection_lost (report->index, report->error, core->callbacks_data);
  else if (report->kind == REPORT_REPLACED)
    callbacks->connection_replaced (report->index, core->callbacks_data);
  callbacks->active_changed (core->callbacks_data);
  return G_SOURCE_REMOVE;
}

static void
report_free (gpointer data)
{
  Report *report = data;

  redis_pool_core_unref (report->core);
  g_clear_error (&report->error);
  g_free (report);
}

/* Any thread: report an event to the owner, in its main context. */
static void
core_report (RedisPoolCore *core,
             ReportKind     kind,
             guint          index,
             const GError  *error)
{
  Report *report = g_new0 (Report, 1);
  GSource *source = g_idle_source_new ();

  report->core = redis_pool_core_ref (core);
  report->kind = kind;
  report->index = index;
  report->error = error != NULL ? g_error_copy (error) : NULL;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (source, "[redispool] pool signal");
  g_source_set_callback (source, report_cb, report, report_free);
  g_source_attach (source, core->context);
  g_source_unref (source);
}

/* ---- waiting with a deadline -------------------------------------------- */

/* The offline queue and lease_waiters hold entries that wait until a
 * deadline (monotonic µs, 0 = none), each queue with a timer on the I/O
 * thread (redis_worker_deadline_source_new()) set to its earliest one. */

/* When an entry is due: its deadline, 0 for never, 1 (long past) when it
 * is to go whatever the time. */
typedef gint64 (*DeadlineFunc) (gpointer entry);

/* Called with the lock held: moves the entries of @queue that are due at
 * @now to @expired, and sets @timer to the earliest deadline left. */
static void
take_expired_locked (GQueue       *queue,
                     GSource      *timer,
                     DeadlineFunc  deadline_of,
                     gint64        now,
                     GQueue       *expired)
{
  gint64 next = 0;
  GList *l, *next_l;

  for (l = queue->head; l != NULL; l = next_l)
    {
      gint64 deadline = deadline_of (l->data);

      next_l = l->next;
      if (deadline != 0 && deadline <= now)
        {
          g_queue_unlink (queue, l);
          g_queue_push_tail_link (expired, l);
        }
      else if (deadline != 0 && (next == 0 || deadline < next))
        next = deadline;
    }
  if (next != 0)
    g_source_set_ready_time (timer, next);
}

/* Called with the lock held: an entry due at @deadline (0: never) joined
 * the queue of @timer. */
static void
deadline_timer_arm (GSource *timer,
                    gint64   deadline)
{
  gint64 current;

  if (deadline == 0)
    return;
  current = g_source_get_ready_time (timer);
  if (current == -1 || deadline < current)
    g_source_set_ready_time (timer, deadline);
}

/* A source on the I/O thread that calls @func with @data once @cancellable
 * is cancelled; attached, and returned with a reference. */
static GSource *
cancel_source_new (GCancellable           *cancellable,
                   const char             *name,
                   GCancellableSourceFunc  func,
                   gpointer                data,
                   GDestroyNotify          notify)
{
  GSource *source = g_cancellable_source_new (cancellable);

  g_source_set_static_name (source, name);
  g_source_set_callback (source, (GSourceFunc) func, data, notify);
  g_source_attach (source, redis_worker_get_context ());
  return source;
}

/* ---- the queue of calls waiting for a live connection ------------------- */

static gint64
queued_call_deadline (gpointer data)
{
  RedisCall *call = data;

  /* A completed (cancelled) call leaves at once. */
  return redis_call_is_completed (call) ? 1 : call->deadline;
}

static gboolean
queue_timer_cb (gpointer data)
{
  RedisPoolCore *core = data;
  GQueue expired = G_QUEUE_INIT;
  gint64 now = g_get_monotonic_time ();
  RedisCall *call;
  g_autofree char *address = redis_options_describe_address (core->config.options);

  g_mutex_lock (&core->lock);
  take_expired_locked (&core->queued, core->queue_timer, queued_call_deadline, now, &expired);
  g_mutex_unlock (&core->lock);

  while ((call = g_queue_pop_head (&expired)) != NULL)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT,
                                          "%s was not sent: no connection to %s became "
                                          "available before its deadline%s",
                                          redis_call_get_name (call),
                                          address,
                                          redis_netmon_get_reachable (core->netmon) ? "" :
                                            " (the network does not reach it)"));
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
 * attempt was refused by AUTH, waiting cannot help; returns that error.
 * (A slot asking its credentials provider again right after a refusal,
 * see slot_engine_closed_cb(), may still come up.) */
static const GError *
auth_failure_locked (RedisPoolCore *core)
{
  const GError *error = NULL;

  if (core->active > 0)
    return NULL;
  for (guint i = 0; i < core->config.size; i++)
    {
      const GError *e = core->slots[i].last_error;

      if (core->slots[i].state == SLOT_READY || e == NULL || core->slots[i].reasking ||
          !g_error_matches (e, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED))
        return NULL;
      error = e;
    }
  return error;
}

/* Called with the lock held, when no slot is up: whether one may come up
 * (the pool reconnects, has not started yet, or a slot is connecting). */
static gboolean
core_may_recover_locked (RedisPoolCore *core)
{
  if (!core->started || core->config.reconnect)
    return TRUE;
  for (guint i = 0; i < core->config.size; i++)
    if (core->slots[i].state == SLOT_CONNECTING)
      return TRUE;
  return FALSE;
}

/* Called with the lock held. FALSE if the queue is full. */
static gboolean
core_queue_locked (RedisPoolCore *core,
                   RedisCall     *call)
{
  if (core->queued.length >= core->config.max_queued)
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
      if (core->queued.length >= core->config.max_queued)
        return FALSE;
    }

  if (call->cancellable != NULL && call->cancel_source == NULL)
    call->cancel_source = cancel_source_new (call->cancellable, "[redispool] cancel",
                                             queued_call_cancelled_cb, redis_call_ref (call),
                                             (GDestroyNotify) redis_call_unref);

  g_queue_push_tail (&core->queued, redis_call_ref (call));
  deadline_timer_arm (core->queue_timer, call->deadline);
  return TRUE;
}

/* Any thread: a slot became ready; send what waited. */
static void
core_drain_queue (RedisPoolCore *core)
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

/* ---- shared dispatch ---------------------------------------------------- */

/* Called with the lock held: a referenced engine of a ready slot, or NULL. */
static RedisEngine *
pick_locked (RedisPoolCore *core,
             guint         *out_index)
{
  guint size = core->config.size;
  guint start, best = G_MAXUINT, best_pending = G_MAXUINT;

  if (core->active == 0)
    return NULL;

  switch (core->config.strategy)
    {
    case REDIS_POOL_STRATEGY_RANDOM:
      start = g_rand_int_range (core->rand, 0, size);
      break;
    case REDIS_POOL_STRATEGY_LEAST_PENDING:
    case REDIS_POOL_STRATEGY_ROUND_ROBIN:
    default:
      start = core->rr_next++;
      break;
    }

  for (guint i = 0; i < size; i++)
    {
      Slot *slot = &core->slots[(start + i) % size];
      guint pending;

      if (slot->state != SLOT_READY)
        continue;
      if (core->config.strategy != REDIS_POOL_STRATEGY_LEAST_PENDING)
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

/* Where a call for the shared connections goes, decided under the lock. */
typedef enum
{
  SHARED_SEND,           /* to the engine picked */
  SHARED_QUEUED,         /* waits for a slot to come up */
  SHARED_CLOSED,         /* refused: the pool is closed */
  SHARED_AUTH_FAILED,    /* refused: every slot is refused by AUTH */
  SHARED_NO_RECOVERY,    /* refused: nothing is up, and nothing will be */
  SHARED_QUEUE_FULL,     /* refused: max-queued calls wait already */
} SharedRoute;

/* Called with the lock held. SHARED_SEND gives a referenced engine and its
 * slot; SHARED_AUTH_FAILED a copy of the AUTH error. */
static SharedRoute
shared_route_locked (RedisPoolCore  *core,
                     RedisCall      *call,
                     RedisEngine   **out_engine,
                     guint          *out_index,
                     GError        **out_auth)
{
  const GError *auth;

  if (core->closed)
    return SHARED_CLOSED;
  *out_engine = pick_locked (core, out_index);
  if (*out_engine != NULL)
    return SHARED_SEND;
  /* Every connection is refused by AUTH: say so now rather than let the
   * call wait out its deadline. */
  if ((auth = auth_failure_locked (core)) != NULL)
    {
      *out_auth = g_error_copy (auth);
      return SHARED_AUTH_FAILED;
    }
  if (!core_may_recover_locked (core))
    return SHARED_NO_RECOVERY;
  return core_queue_locked (core, call) ? SHARED_QUEUED : SHARED_QUEUE_FULL;
}

/* Fails @call, refused by @route (takes @auth); nothing was sent. */
static void
shared_refuse (RedisPoolCore *core,
               RedisCall     *call,
               SharedRoute    route,
               GError        *auth)
{
  const char *name = redis_call_get_name (call);
  GError *error;

  switch (route)
    {
    case SHARED_AUTH_FAILED:
      error = auth;
      g_prefix_error (&error, "%s was not sent: ", name);
      break;
    case SHARED_NO_RECOVERY:
      error = g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                           "%s was not sent: no connection is live and "
                           "the pool does not reconnect", name);
      break;
    case SHARED_QUEUE_FULL:
      error = g_error_new (REDIS_ERROR, REDIS_ERROR_QUEUE_FULL,
                           "%s was not sent: no connection is live and "
                           "%u calls are already waiting (max-queued)",
                           name, core->config.max_queued);
      break;
    case SHARED_CLOSED:
    case SHARED_SEND:
    case SHARED_QUEUED:
    default:
      error = g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                           "%s was not sent: the pool is closed", name);
      break;
    }
  redis_call_fail (call, error);
}

/* Submits @call to @engine (taken), slot @index's. FALSE when the engine
 * refused it: it is going away, so its slot is marked failing and nobody
 * else picks it. */
static gboolean
shared_submit (RedisPoolCore *core,
               guint          index,
               RedisEngine   *engine,
               RedisCall     *call)
{
  gboolean ok = redis_engine_submit (engine, call);

  if (!ok)
    {
      g_mutex_lock (&core->lock);
      if (core->slots[index].engine == engine && core->slots[index].state == SLOT_READY)
        {
          core->slots[index].state = SLOT_FAILING;
          core->active--;
        }
      g_mutex_unlock (&core->lock);
    }
  redis_engine_unref (engine);
  return ok;
}

/* Any thread: sends @call on a ready slot (the next one when the one
 * picked refuses it), queues it while none is up, or fails it. */
static void
core_dispatch_shared (RedisPoolCore *core,
                      RedisCall     *call)
{
  SharedRoute route;
  RedisEngine *engine = NULL;
  GError *auth = NULL;
  guint index = 0;

  do
    {
      g_mutex_lock (&core->lock);
      route = shared_route_locked (core, call, &engine, &index, &auth);
      g_mutex_unlock (&core->lock);
    }
  while (route == SHARED_SEND && !shared_submit (core, index, engine, call));

  if (route != SHARED_SEND && route != SHARED_QUEUED)
    shared_refuse (core, call, route, auth);
}

/* ---- dedicated connections: requests ------------------------------------ */

/* (See the top of this file for their life cycle.) */

typedef struct                   /* a g_atomic_rc_box */
{
  RedisPoolCore *core;
  RedisEngine   *engine;
  RedisCall     *call;           /* a blocking call waiting for the connection */
  GTask         *task;           /* or an acquire waiting for it */
  gint64         deadline;       /* while in lease_waiters: monotonic µs, 0 = none */
  GSource       *cancel_source;  /* while in lease_waiters */
} LeaseRequest;

static LeaseRequest *
lease_request_new (RedisPoolCore *core)
{
  LeaseRequest *req = g_atomic_rc_box_new0 (LeaseRequest);

  req->core = redis_pool_core_ref (core);
  return req;
}

static LeaseRequest *
lease_request_ref (LeaseRequest *req)
{
  return g_atomic_rc_box_acquire (req);
}

static void
lease_request_clear (LeaseRequest *req)
{
  g_assert (req->cancel_source == NULL);
  g_clear_pointer (&req->engine, redis_engine_unref);
  g_clear_pointer (&req->call, redis_call_unref);
  g_clear_object (&req->task);
  redis_pool_core_unref (req->core);
}

static void
lease_request_unref (LeaseRequest *req)
{
  g_atomic_rc_box_release_full (req, (GDestroyNotify) lease_request_clear);
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

/* Completes @req (taken), which got no connection, with @error (taken). */
static void
lease_request_return_error (LeaseRequest *req,
                            GError       *error)
{
  if (req->call != NULL)
    redis_call_fail (req->call, error);
  else
    g_task_return_error (req->task, error);
  lease_request_unref (req);
}

/* By whoever holds @req (taken; off lease_waiters if it waited), which
 * gets no connection: completes it with @code and @what (lower case, for
 * the message); nothing was sent. */
static void
lease_request_drop (LeaseRequest *req,
                    GQuark        domain,
                    int           code,
                    const char   *what)
{
  GError *error;

  lease_request_stop_waiting (req);

  if (domain == G_IO_ERROR && code == G_IO_ERROR_CANCELLED)
    error = g_error_new_literal (domain, code, "Operation was cancelled");
  else if (req->call != NULL)
    error = g_error_new (domain, code, "%s was not sent: %s",
                         redis_call_get_name (req->call), what);
  else
    error = g_error_new (domain, code, "No connection was leased: %s", what);
  lease_request_return_error (req, error);
}

static gint64
lease_request_deadline (gpointer data)
{
  return ((LeaseRequest *) data)->deadline;
}

/* I/O thread: the deadline timer of lease_waiters. */
static gboolean
lease_timer_cb (gpointer data)
{
  RedisPoolCore *core = data;
  GQueue expired = G_QUEUE_INIT;
  gint64 now = g_get_monotonic_time ();
  LeaseRequest *req;

  g_mutex_lock (&core->lock);
  take_expired_locked (&core->lease_waiters, core->lease_timer, lease_request_deadline,
                       now, &expired);
  g_mutex_unlock (&core->lock);

  while ((req = g_queue_pop_head (&expired)) != NULL)
    {
      g_autofree char *what =
        g_strdup_printf ("every dedicated connection (max-leases = %u) stayed in use "
                         "until the deadline", core->config.max_leases);

      lease_request_drop (req, REDIS_ERROR, REDIS_ERROR_POOL_EXHAUSTED, what);
    }
  return G_SOURCE_CONTINUE;
}

/* I/O thread: a waiting request was cancelled. */
static gboolean
lease_wait_cancelled_cb (GCancellable *cancellable,
                         gpointer      data)
{
  LeaseRequest *req = data;
  RedisPoolCore *core = req->core;
  gboolean mine;

  g_mutex_lock (&core->lock);
  mine = g_queue_remove (&core->lease_waiters, req);
  g_mutex_unlock (&core->lock);

  if (mine)
    lease_request_drop (req, G_IO_ERROR, G_IO_ERROR_CANCELLED, NULL);
  return G_SOURCE_REMOVE;
}

/* Called with the lock held: @req (taken) waits for a connection, until
 * its deadline: a blocking call's own, command-timeout for an acquire. */
static void
core_lease_wait_locked (RedisPoolCore *core,
                        LeaseRequest  *req)
{
  GCancellable *cancellable;

  if (req->call != NULL)
    {
      req->deadline = req->call->deadline;
      cancellable = req->call->cancellable;
    }
  else
    {
      guint ms = core->config.options->command_timeout_ms;

      req->deadline = ms != 0 ? g_get_monotonic_time () + (gint64) ms * G_TIME_SPAN_MILLISECOND : 0;
      cancellable = g_task_get_cancellable (req->task);
    }

  if (cancellable != NULL)
    req->cancel_source = cancel_source_new (cancellable, "[redispool] lease wait cancelled",
                                            lease_wait_cancelled_cb, lease_request_ref (req),
                                            (GDestroyNotify) lease_request_unref);

  g_queue_push_tail (&core->lease_waiters, req);
  deadline_timer_arm (core->lease_timer, req->deadline);
}

/* Called with the lock held: whether a request behind @n_waiting others
 * (itself included) opens a new connection rather than wait. */
static gboolean
core_lease_may_open_locked (RedisPoolCore *core,
                            guint          n_waiting)
{
  return n_waiting > core->n_resetting &&
         core->n_leased + core->idle_leases.length < core->config.max_leases;
}

/* Called with the lock held: moves to @to_open the waiters that may open
 * a new connection now (one was closed, or a reset failed). */
static void
core_lease_kick_locked (RedisPoolCore *core,
                        GQueue        *to_open)
{
  while (!core->closed && core->lease_waiters.length > 0 &&
         core_lease_may_open_locked (core, core->lease_waiters.length))
    {
      core->n_leased++;
      g_queue_push_tail (to_open, g_queue_pop_head (&core->lease_waiters));
    }
}

/* Called with the lock held: an idle connection that is still up, or
 * NULL. */
static RedisEngine *
core_pop_idle_locked (RedisPoolCore *core)
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

/* ---- dedicated connections: the way back from an engine ----------------- */

static void core_return_engine (RedisPoolCore *core,
                                RedisEngine   *engine,
                                gboolean       reusable,
                                gboolean       was_resetting);

/* What a call sent on a dedicated connection (a blocking call, or the
 * reset after a lease) carries in RedisCall.on_done_data. */
typedef struct
{
  RedisPoolCore *core;
  RedisEngine   *engine;
  gboolean       is_reset;    /* the reset: the connection is reused only if it succeeded */
  gboolean       counted;     /* the reset counts in n_resetting */
} DedicatedReturn;

/* Whether the reset pipeline (DISCARD, UNWATCH, SELECT) restored the
 * connection: DISCARD may fail (no MULTI), UNWATCH and SELECT may not. */
static gboolean
reset_succeeded (RedisCall *call)
{
  return call->replies != NULL && call->replies->len == 3 &&
         redis_reply_get_kind (g_ptr_array_index (call->replies, 1)) == REDIS_REPLY_KIND_STATUS &&
         redis_reply_get_kind (g_ptr_array_index (call->replies, 2)) == REDIS_REPLY_KIND_STATUS;
}

/*
 * RedisCall.on_done of every call the core sends on a dedicated
 * connection: the one callback from inside an engine into the core. It
 * runs once, when the call leaves that connection's engine for good (all
 * of its replies in, or failed there), and gives the connection back
 * (core_return_engine()): to the first waiter, to idle_leases, or closed.
 *
 * Where it runs: on any thread, and usually with the engine's I/O lock
 * held (the engine completes the call while reading, timing out or
 * shutting down); else after the engine shut down, or from the core
 * itself when the engine refused the call or the call moves on unsent
 * (dedicated_call_leave()).
 *
 * What it may do, therefore: read the call's replies; take the core's
 * lock (the engine's I/O lock comes first); ref, unref, close (always
 * deferred) and unset the closed handler of engines; open new engines
 * and invoke work on the I/O thread. What it must not: submit a call to
 * any engine or connect one inline (both may take an I/O lock), or
 * complete a caller's call or task (a waiter is handed its connection on
 * the I/O thread instead, lease_hand_over_in_worker()).
 *
 * (This is RedisCall.on_done's only user. Should redis-call grow a typed
 * hook for it, e.g. RedisCall.done_func documented as "called with the
 * engine's I/O lock held", this is the function to point it at.)
 */
static void
dedicated_call_done_cb (RedisCall *call,
                        gpointer   data)
{
  DedicatedReturn *ret = data;
  gboolean reusable;

  /* Once: from now on the call is no concern of this connection. */
  call->on_done = NULL;
  call->on_done_data = NULL;

  /* When the reset failed its state is unknown: never reuse it. */
  reusable = !ret->is_reset || reset_succeeded (call);
  core_return_engine (ret->core, ret->engine, reusable, ret->counted);

  redis_engine_unref (ret->engine);
  redis_pool_core_unref (ret->core);
  g_free (ret);
}

/* Arms @call to give @engine back when it leaves it. */
static void
dedicated_call_attach (RedisCall     *call,
                       RedisPoolCore *core,
                       RedisEngine   *engine,
                       gboolean       is_reset,
                       gboolean       counted)
{
  DedicatedReturn *ret = g_new0 (DedicatedReturn, 1);

  ret->core = redis_pool_core_ref (core);
  ret->engine = redis_engine_ref (engine);
  ret->is_reset = is_reset;
  ret->counted = counted;
  call->on_done = dedicated_call_done_cb;
  call->on_done_data = ret;
}

/* The core takes @call off its dedicated engine before the engine let go
 * of it (refused, or moving on unsent): the same way back. A user's call
 * on a lease has no on_done. */
static void
dedicated_call_leave (RedisCall *call)
{
  if (call->on_done != NULL)
    call->on_done (call, call->on_done_data);
}

static void core_lease (LeaseRequest *req);

/* I/O thread: hands a connection that came back to the waiter it was
 * promised to. */
static gboolean lease_hand_over_in_worker (gpointer data);
static void     lease_open_all            (GQueue  *to_open);

/* Any thread (also inside the engine, with its I/O lock held): a dedicated
 * connection comes back, from a lease (@was_resetting: after its reset) or
 * from a blocking call. When @reusable and still up, it goes to the first
 * waiter or is kept idle; otherwise it is closed, which makes room. */
static void
core_return_engine (RedisPoolCore *core,
                    RedisEngine   *engine,
                    gboolean       reusable,
                    gboolean       was_resetting)
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
      redis_engine_close (engine, NULL);
    }
  if (next != NULL)
    {
      lease_request_stop_waiting (next);
      redis_worker_invoke (lease_hand_over_in_worker, next, NULL);
    }
  lease_open_all (&to_open);
}

/* ---- dedicated connections: serving requests ---------------------------- */

static void lease_ended_cb (RedisEngine *engine,
                            gpointer     user_data);

/* Sends blocking @call on @engine, a dedicated connection that is up. */
static void
dedicated_send_blocking (RedisPoolCore *core,
                         RedisEngine   *engine,
                         RedisCall     *call)
{
  dedicated_call_attach (call, core, engine, FALSE, FALSE);
  if (!redis_engine_submit (engine, call))
    {
      dedicated_call_leave (call);
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                          "%s was not sent: its connection closed",
                                          redis_call_get_name (call)));
    }
}

/* @req (taken) has its connection, up: its blocking call goes out on it,
 * or its acquire gets a lease of it. */
static void
lease_request_serve (LeaseRequest *req)
{
  RedisPoolCore *core = req->core;

  if (req->call != NULL)
    dedicated_send_blocking (core, req->engine, req->call);
  else
    g_task_return_pointer (req->task,
                           redis_connection_new_lease (req->engine, core->config.options,
                                                       lease_ended_cb,
                                                       redis_pool_core_ref (core),
                                                       (GDestroyNotify) redis_pool_core_unref),
                           g_object_unref);
  lease_request_unref (req);
}

static void
lease_connected_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  LeaseRequest *req = user_data;
  GError *error = NULL;

  if (redis_engine_connect_finish (req->engine, result, &error))
    {
      lease_request_serve (req);
      return;
    }

  core_return_engine (req->core, req->engine, FALSE, FALSE);
  if (req->call != NULL)
    g_prefix_error (&error, "%s was not sent: ", redis_call_get_name (req->call));
  lease_request_return_error (req, error);
}

static gboolean
lease_connect_in_worker (gpointer data)
{
  LeaseRequest *req = data;

  redis_engine_connect_async (req->engine, NULL, lease_connected_cb, req);
  return G_SOURCE_REMOVE;
}

static void lease_engine_closed_cb (RedisEngine  *engine,
                                    const GError *reason,
                                    GQueue       *unsent,
                                    gpointer      user_data);

/* Opens a new dedicated connection for @req (taken), counted in n_leased
 * already. */
static void
lease_open (LeaseRequest *req)
{
  RedisPoolCore *core = req->core;

  req->engine = redis_credentials_engine_new (core->credentials, core->config.options,
                                               core->context);
  redis_engine_set_closed_func (req->engine, lease_engine_closed_cb, redis_pool_core_ref (core),
                                (GDestroyNotify) redis_pool_core_unref);
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
  lease_request_serve (req);
  return G_SOURCE_REMOVE;
}

/* Hands @req's call or task (taken) a connection: an idle one, soon one
 * whose reset is in flight, a new one, or, at max-leases, the first that
 * comes back. */
static void
core_lease (LeaseRequest *req)
{
  RedisPoolCore *core = req->core;
  RedisEngine *engine = NULL;

  g_mutex_lock (&core->lock);
  if (core->closed)
    {
      g_mutex_unlock (&core->lock);
      lease_request_drop (req, REDIS_ERROR, REDIS_ERROR_CLOSED, "the pool is closed");
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
      lease_request_serve (req);
    }
  else
    lease_open (req);
}

/* I/O thread: a dedicated connection died. Unsent blocking calls try again. */
static void
lease_engine_closed_cb (RedisEngine  *engine,
                        const GError *reason,
                        GQueue       *unsent,
                        gpointer      user_data)
{
  RedisPoolCore *core = user_data;
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
      dedicated_call_leave (call);
      if (call->no_retry)
        redis_call_fail (call, g_error_copy (reason));
      else
        core_route (core, call);
      redis_call_unref (call);
    }
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
  RedisPoolCore *core = user_data;
  const RedisOptions *options = core->config.options;
  g_autofree char *db = g_strdup_printf ("%u", options->database);
  gboolean counted = redis_engine_get_n_pending (engine) == 0;
  RedisCall *call;

  if (counted)
    {
      g_mutex_lock (&core->lock);
      core->n_resetting++;
      g_mutex_unlock (&core->lock);
    }

  /* Nobody waits for it: the outcome is read in dedicated_call_done_cb. */
  call = redis_call_new_internal (REDIS_CALL_PIPELINE,
                                  (const char * const *[]) {
                                    (const char *[]) { "DISCARD", NULL },
                                    (const char *[]) { "UNWATCH", NULL },
                                    (const char *[]) { "SELECT", db, NULL },
                                    NULL,
                                  },
                                  "lease reset (DISCARD/UNWATCH/SELECT)",
                                  redis_options_get_internal_timeout_ms (options),
                                  NULL, NULL);
  call->no_retry = TRUE;
  dedicated_call_attach (call, core, engine, TRUE, counted);
  if (!redis_engine_submit (engine, call))
    {
      redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED, "closed"));
      dedicated_call_leave (call);
    }
  redis_call_unref (call);
}

/* ---- routing ------------------------------------------------------------ */

static void
core_dispatch_blocking (RedisPoolCore *core,
                        RedisCall     *call)
{
  LeaseRequest *req = lease_request_new (core);

  req->call = redis_call_ref (call);
  core_lease (req);
}

/* Any thread: send @call where it belongs. */
static void
core_route (RedisPoolCore *core,
            RedisCall     *call)
{
  if (call->flags & REDIS_COMMAND_FLAG_BLOCKING)
    core_dispatch_blocking (core, call);
  else
    core_dispatch_shared (core, call);
}

/* A pool never initialized (g_object_new() alone, as bindings' keyword
 * constructors do) starts on its first call or lease request what its
 * initialization would, without a cancellable. The call is routed first,
 * so that it waits in the offline queue before the start can fail (it
 * then fails with the reason, see core_close()); a later init call gets
 * the outcome of that start. */
void
redis_pool_core_submit (RedisPoolCore *core,
                        RedisCall     *call)
{
  gboolean start = redis_init_once_begin_lazy (&core->init);

  redis_call_set_timeout (call, core->config.options->command_timeout_ms);
  core_route (core, call);
  if (G_UNLIKELY (start))
    core_init_start (core, NULL, NULL);
}

void
redis_pool_core_acquire (RedisPoolCore *core,
                         GTask         *task)
{
  gboolean start = redis_init_once_begin_lazy (&core->init);
  LeaseRequest *req = lease_request_new (core);

  req->task = task;
  core_lease (req);
  if (G_UNLIKELY (start))
    core_init_start (core, NULL, NULL);
}

/* ---- slots -------------------------------------------------------------- */

static void slot_start (RedisPoolCore *core,
                        guint          index);

typedef struct
{
  RedisPoolCore *core;
  guint          index;
} SlotRef;

static SlotRef *
slot_ref_new (RedisPoolCore *core,
              guint          index)
{
  SlotRef *ref = g_new0 (SlotRef, 1);

  ref->core = redis_pool_core_ref (core);
  ref->index = index;
  return ref;
}

static void
slot_ref_free (gpointer data)
{
  SlotRef *ref = data;

  redis_pool_core_unref (ref->core);
  g_free (ref);
}

/* What a connect attempt's callback needs: the slot and its engine. */
typedef struct
{
  RedisPoolCore *core;
  guint          index;
  RedisEngine   *engine;
} ConnectRef;

static ConnectRef *
connect_ref_new (RedisPoolCore *core,
                 guint          index,
                 RedisEngine   *engine)
{
  ConnectRef *ref = g_new0 (ConnectRef, 1);

  ref->core = redis_pool_core_ref (core);
  ref->index = index;
  ref->engine = redis_engine_ref (engine);
  return ref;
}

static void
connect_ref_free (ConnectRef *ref)
{
  redis_engine_unref (ref->engine);
  redis_pool_core_unref (ref->core);
  g_free (ref);
}

static void slot_start (RedisPoolCore *core,
                        guint          index);
static void core_ask_provider (RedisPoolCore *core,
                               guint          index,
                               gboolean       stale);

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
slot_schedule_retry_locked (RedisPoolCore *core,
                            Slot          *slot)
{
  const RedisPoolConfig *config = &core->config;
  guint delay;

  /* During a wait-all initialization a slot's first failure fails the
   * pool instead; one that connected (its outcome counted) and was lost
   * since is retried, or it would stay down once the initialization
   * succeeds. While the network does not reach the server, no retry: the
   * slot stays down until core_network_changed() starts it again. */
  if (core->closed || !config->reconnect || slot->retry_source != NULL ||
      (core->initializing && !slot->init_counted) ||
      !redis_netmon_get_reachable (core->netmon))
    return;

  /* Exponential backoff with full jitter (redis-backoff.c), so that slots
   * (and pools) that lost the server together spread their retries. */
  delay = redis_backoff_delay (core->rand, config->backoff_initial_ms,
                               config->backoff_max_ms, slot->attempts);
  slot->attempts++;

  slot->retry_source = g_timeout_source_new (delay);
  g_source_set_static_name (slot->retry_source, "[redispool] reconnect");
  g_source_set_callback (slot->retry_source, slot_retry_cb,
                         slot_ref_new (core, slot->index), slot_ref_free);
  g_source_attach (slot->retry_source, redis_worker_get_context ());
}

static void core_init_step (RedisPoolCore *core,
                            guint          index,
                            const GError  *error);

/* Fails the calls of @refused (taken) with @auth_error: every slot was
 * refused by AUTH, so waiting for a connection would only time out. */
static void
fail_refused_by_auth (GQueue       *refused,
                      const GError *auth_error)
{
  RedisCall *call;

  while ((call = g_queue_pop_head (refused)) != NULL)
    {
      GError *error = g_error_copy (auth_error);

      g_prefix_error (&error, "%s was not sent: ",
                      redis_call_get_name (call));
      redis_call_fail (call, error);
      redis_call_unref (call);
    }
}

/* I/O thread: a slot's engine ended (lost, or a connect attempt failed). */
static void
slot_engine_closed_cb (RedisEngine  *engine,
                       const GError *reason,
                       GQueue       *unsent,
                       gpointer      user_data)
{
  SlotRef *ref = user_data;
  RedisPoolCore *core = ref->core;
  Slot *slot = &core->slots[ref->index];
  gboolean lost = FALSE;
  gboolean ask_again = FALSE;
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
      /* Refused by AUTH with the provider's credentials (an expired
       * token): ask it again at once, once, before backing off. */
      if (!lost && !slot->ask_stale && !core->closed &&
          redis_credentials_has_provider (core->credentials) &&
          core->config.reconnect && !core->initializing &&
          g_error_matches (reason, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED))
        {
          slot->ask_stale = TRUE;
          slot->asking = TRUE;
          slot->reasking = TRUE;
          slot->state = SLOT_CONNECTING;
          ask_again = TRUE;
        }
      else
        slot_schedule_retry_locked (core, slot);
    }
  if (auth_failure_locked (core) != NULL)
    {
      auth_error = g_error_copy (auth_failure_locked (core));
      refused = core->queued;
      g_queue_init (&core->queued);
    }
  g_mutex_unlock (&core->lock);

  if (auth_error != NULL)
    fail_refused_by_auth (&refused, auth_error);
  g_clear_error (&auth_error);
  if (ask_again)
    core_ask_provider (core, ref->index, TRUE);

  /* Calls that never reached the wire go to another connection. */
  while (unsent != NULL && (call = g_queue_pop_head (unsent)) != NULL)
    {
      core_route (core, call);
      redis_call_unref (call);
    }

  if (lost)
    core_report (core, REPORT_LOST, ref->index, reason);
}

static void
slot_connected_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ConnectRef *ref = user_data;
  RedisPoolCore *core = ref->core;
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
          slot->ask_stale = FALSE;
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
          core_report (core, replaced ? REPORT_REPLACED : REPORT_ACTIVE_CHANGED,
                       ref->index, NULL);
        }
    }

  /* A failed attempt was handled by slot_engine_closed_cb (retry). */
  core_init_step (core, ref->index, error);
  connect_ref_free (ref);
}

/* Opens a new connection for slot @index, with the current credentials. */
static void
slot_connect (RedisPoolCore *core,
              guint          index)
{
  Slot *slot = &core->slots[index];
  RedisEngine *engine;

  g_mutex_lock (&core->lock);
  /* Offline (but for a wait-all initialization, which must end): the slot
   * stays down until core_network_changed() starts it. */
  if (core->closed || slot->engine != NULL ||
      (!core->initializing && !redis_netmon_get_reachable (core->netmon)))
    {
      g_mutex_unlock (&core->lock);
      return;
    }
  engine = redis_credentials_engine_new (core->credentials, core->config.options,
                                         core->context);
  slot->engine = engine;
  slot->state = SLOT_CONNECTING;
  g_mutex_unlock (&core->lock);

  redis_engine_set_closed_func (engine, slot_engine_closed_cb,
                                slot_ref_new (core, index), slot_ref_free);
  redis_engine_connect_async (engine, NULL, slot_connected_cb, connect_ref_new (core, index, engine));
}

/* I/O thread (or init, or a provider's answer): start slot @index. With a
 * credentials provider, ask it first (core_ask_provider()); the connect
 * follows its answer (provider_done()). */
static void
slot_start (RedisPoolCore *core,
            guint          index)
{
  Slot *slot = &core->slots[index];
  gboolean stale;

  g_mutex_lock (&core->lock);
  if (core->closed || slot->engine != NULL || slot->asking)
    {
      g_mutex_unlock (&core->lock);
      return;
    }
  if (!redis_credentials_has_provider (core->credentials))
    {
      g_mutex_unlock (&core->lock);
      slot_connect (core, index);
      return;
    }
  slot->asking = TRUE;
  slot->state = SLOT_CONNECTING;
  stale = slot->ask_stale;
  g_mutex_unlock (&core->lock);

  core_ask_provider (core, index, stale);
}

/* Any thread, once per request: the provider's answer for slot @index. */
static void
provider_done (gpointer      data,
               guint         index,
               const char   *username,
               const char   *password,
               const GError *error)
{
  RedisPoolCore *core = data;
  Slot *slot = &core->slots[index];
  GQueue refused = G_QUEUE_INIT;
  GError *auth_error = NULL;
  gboolean go_on;

  if (error == NULL)
    redis_credentials_set (core->credentials, username, password);

  g_mutex_lock (&core->lock);
  go_on = slot->asking && !core->closed;
  slot->asking = FALSE;
  slot->reasking = FALSE;
  if (go_on && slot->engine == NULL && slot->state == SLOT_CONNECTING)
    slot->state = SLOT_DOWN;
  if (go_on && error != NULL)
    {
      /* As a connect refused by AUTH: back off, then ask again. */
      g_clear_error (&slot->last_error);
      slot->last_error = g_error_copy (error);
      slot->ask_stale = FALSE;
      slot_schedule_retry_locked (core, slot);
      if (auth_failure_locked (core) != NULL)
        {
          auth_error = g_error_copy (auth_failure_locked (core));
          refused = core->queued;
          g_queue_init (&core->queued);
        }
    }
  g_mutex_unlock (&core->lock);

  if (auth_error != NULL)
    fail_refused_by_auth (&refused, auth_error);
  g_clear_error (&auth_error);
  if (!go_on)
    return;
  if (error == NULL)
    slot_connect (core, index);
  else
    core_init_step (core, index, error);
}

static void
core_ask_provider (RedisPoolCore *core,
                   guint          index,
                   gboolean       stale)
{
  Slot *slot = &core->slots[index];

  if (redis_credentials_ask (core->credentials, provider_done, redis_pool_core_ref (core),
                             (GDestroyNotify) redis_pool_core_unref, index, stale))
    return;

  /* The provider was removed meanwhile: connect with the current
   * credentials. */
  g_mutex_lock (&core->lock);
  slot->asking = FALSE;
  slot->reasking = FALSE;
  if (slot->engine == NULL && slot->state == SLOT_CONNECTING)
    slot->state = SLOT_DOWN;
  g_mutex_unlock (&core->lock);
  slot_connect (core, index);
}

/* A NULL @func removes the core's own provider only: a node pool leaving
 * must not remove its cluster's. */
void
redis_pool_core_set_provider (RedisPoolCore             *core,
                              RedisPoolCoreProviderFunc  func,
                              gpointer                   data,
                              GDestroyNotify             notify)
{
  if (func == NULL)
    {
      redis_credentials_drop_provider (core->credentials, core);
      if (notify != NULL)
        notify (data);
      return;
    }
  redis_credentials_set_provider (core->credentials, core, core->context, func, data, notify);
}

RedisCredentials *
redis_pool_core_get_credentials (RedisPoolCore *core)
{
  return core->credentials;
}

void
redis_pool_core_share_credentials (RedisPoolCore    *core,
                                   RedisCredentials *credentials)
{
  RedisCredentials *old = core->credentials;

  g_assert (!core->started);
  core->credentials = redis_credentials_ref (credentials);
  redis_credentials_unref (old);
}

/* Any thread: see redis-credentials-private.h. Connections made from now
 * on use the new credentials; the shared ones (up or connecting) and the
 * idle dedicated ones are re-authenticated in place. A lease handed out is
 * not (an AUTH could land inside its caller's MULTI): it keeps its session,
 * also back in idle_leases, until it is closed. */
void
redis_pool_core_set_credentials (RedisPoolCore *core,
                                 const char    *username,
                                 const char    *password)
{
  g_autoptr(GPtrArray) engines = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_engine_unref);

  redis_credentials_set (core->credentials, username, password);

  g_mutex_lock (&core->lock);
  if (!core->closed)
    {
      for (guint i = 0; i < core->config.size; i++)
        if (core->slots[i].engine != NULL && core->slots[i].state != SLOT_FAILING)
          g_ptr_array_add (engines, redis_engine_ref (core->slots[i].engine));
      for (GList *l = core->idle_leases.head; l != NULL; l = l->next)
        g_ptr_array_add (engines, redis_engine_ref (l->data));
    }
  g_mutex_unlock (&core->lock);

  for (guint i = 0; i < engines->len; i++)
    redis_credentials_reauth (g_ptr_array_index (engines, i), username, password,
                              redis_options_get_internal_timeout_ms (core->config.options));
}

/* I/O thread: the network reaches the server again: every slot that is
 * down starts over at once, its backoff reset. */
static gboolean
core_network_back (gpointer data)
{
  RedisPoolCore *core = data;
  g_autoptr(GArray) down = g_array_new (FALSE, FALSE, sizeof (guint));

  g_mutex_lock (&core->lock);
  if (core->started && !core->closed)
    for (guint i = 0; i < core->config.size; i++)
      {
        Slot *slot = &core->slots[i];

        if (slot->engine != NULL)
          continue;
        if (slot->retry_source != NULL)
          {
            g_source_destroy (slot->retry_source);
            g_clear_pointer (&slot->retry_source, g_source_unref);
          }
        slot->attempts = 0;
        g_array_append_val (down, i);
      }
  g_mutex_unlock (&core->lock);

  for (guint i = 0; i < down->len; i++)
    slot_start (core, g_array_index (down, guint, i));
  return G_SOURCE_REMOVE;
}

/* The monitor's context (redis-netmon.c): the reachability of the server's
 * address changed. Going offline needs nothing: retries are no longer
 * scheduled or started (slot_schedule_retry_locked(), slot_start()). */
static void
core_network_changed (gboolean reachable,
                      gpointer data)
{
  RedisPoolCore *core = data;

  if (reachable)
    redis_worker_invoke (core_network_back, redis_pool_core_ref (core),
                         (GDestroyNotify) redis_pool_core_unref);
}

static gboolean
core_start_all (gpointer data)
{
  RedisPoolCore *core = data;

  for (guint i = 0; i < core->config.size; i++)
    slot_start (core, i);
  return G_SOURCE_REMOVE;
}

/* ---- initialization ----------------------------------------------------- */

/* Any thread: the initialization has its outcome (@error NULL: success).
 * Records it once (later outcomes are dropped), closes the core if it
 * failed (a pool that could not connect all its connections is not
 * usable), then completes every init call waiting for it. */
static void
core_init_settle (RedisPoolCore *core,
                  const GError  *error,
                  gboolean       close_on_error)
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
    core_close (core, NULL, error);
  redis_init_once_return (&core->init, waiters);
}

/* A wait-all initialization: slot @index failed (@error) or connected.
 * Only its first outcome counts (a slot lost and connected again before
 * the others are done must not be counted twice). The last one settles
 * it. */
static void
core_init_step (RedisPoolCore *core,
                guint          index,
                const GError  *error)
{
  GError *init_error = NULL;
  gboolean last = FALSE;

  g_mutex_lock (&core->lock);
  if (core->initializing && !core->slots[index].init_counted)
    {
      core->slots[index].init_counted = TRUE;
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

/* I/O thread: the first init call was cancelled: so is the initialization. */
static gboolean
core_init_cancelled_cb (GCancellable *cancellable,
                        gpointer      data)
{
  RedisPoolCore *core = data;
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                 "Operation was cancelled");

  core_init_settle (core, error, TRUE);
  return G_SOURCE_REMOVE;
}

/* Starts the initialization that redis_init_once_begin() (or _lazy())
 * handed to this caller: connects every slot; @cancellable cancels it. */
static void
core_init_start (RedisPoolCore *core,
                 GCancellable  *cancellable,
                 const GError  *config_error)
{
  gboolean wait_all;

  if (config_error != NULL)
    {
      core_init_settle (core, config_error, TRUE);
      return;
    }

  g_mutex_lock (&core->lock);
  core->started = TRUE;
  wait_all = core->config.connect_mode == REDIS_POOL_CONNECT_MODE_WAIT_ALL;
  if (wait_all)
    {
      core->initializing = TRUE;
      core->init_pending = core->config.size;
      for (guint i = 0; i < core->config.size; i++)
        core->slots[i].init_counted = FALSE;
      if (cancellable != NULL)
        core->init_cancel_source = cancel_source_new (cancellable, "[redispool] pool init cancelled",
                                                      core_init_cancelled_cb,
                                                      redis_pool_core_ref (core),
                                                      (GDestroyNotify) redis_pool_core_unref);
    }
  g_mutex_unlock (&core->lock);

  /* In the background mode the pool is usable (calls wait in the queue)
   * before any connection is up. */
  if (!wait_all)
    core_init_settle (core, NULL, FALSE);

  redis_worker_invoke (core_start_all, redis_pool_core_ref (core),
                       (GDestroyNotify) redis_pool_core_unref);
}

void
redis_pool_core_init (RedisPoolCore *core,
                      GTask         *task,
                      const GError  *config_error)
{
  if (redis_init_once_begin (&core->init, task))
    core_init_start (core, g_task_get_cancellable (task), config_error);
}

/* ---- close -------------------------------------------------------------- */

/* Called with the lock held: marks the core closed and takes from it what
 * is to be failed or closed: the calls of the offline queue, the lease
 * waiters, and the engines of the slots and idle leases (into @engines);
 * pending reconnects are dropped. */
static void
core_close_locked (RedisPoolCore *core,
                   GQueue        *queued,
                   GQueue        *lease_waiters,
                   GPtrArray     *engines)
{
  RedisEngine *engine;

  core->closed = TRUE;
  g_atomic_int_set (&core->closed_seen, TRUE);
  core->initializing = FALSE;
  *queued = core->queued;
  g_queue_init (&core->queued);
  *lease_waiters = core->lease_waiters;
  g_queue_init (&core->lease_waiters);

  for (guint i = 0; i < core->config.size; i++)
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
  while ((engine = g_queue_pop_head (&core->idle_leases)) != NULL)
    g_ptr_array_add (engines, engine);
}

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

/* Closes @engines: with @task (taken), gracefully, and completes it when
 * all are closed; without, at once. */
static void
core_close_engines (RedisPoolCore *core,
                    GPtrArray     *engines,
                    GTask         *task)
{
  guint timeout = redis_options_get_internal_timeout_ms (core->config.options);

  if (task != NULL && engines->len > 0)
    {
      CloseState *state = g_new0 (CloseState, 1);

      state->task = task;
      state->pending = engines->len;
      for (guint i = 0; i < engines->len; i++)
        redis_engine_close_async (g_ptr_array_index (engines, i), timeout, NULL,
                                  engine_closed_for_close_cb, state);
      return;
    }

  for (guint i = 0; i < engines->len; i++)
    redis_engine_close (g_ptr_array_index (engines, i), NULL);
  if (task != NULL)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

/* Any thread: close everything. With @task, waits for replies in flight.
 * With @reason (an initialization that failed), the calls and requests
 * waiting for a connection fail with CLOSED and its message, as calls on
 * a connection whose connect failed do, rather than a bare "closed". */
static void
core_close (RedisPoolCore *core,
            GTask         *task,
            const GError  *reason)
{
  GQueue queued, lease_waiters;
  GPtrArray *engines = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_engine_unref);
  RedisCall *call;
  LeaseRequest *req;

  g_mutex_lock (&core->lock);
  core_close_locked (core, &queued, &lease_waiters, engines);
  g_mutex_unlock (&core->lock);

  while ((call = g_queue_pop_head (&queued)) != NULL)
    {
      if (reason != NULL)
        redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                            "%s was not sent: %s",
                                            redis_call_get_name (call), reason->message));
      else
        redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                            "%s was not sent: the pool was closed",
                                            redis_call_get_name (call)));
      redis_call_unref (call);
    }
  while ((req = g_queue_pop_head (&lease_waiters)) != NULL)
    {
      if (reason != NULL)
        lease_request_drop (req, REDIS_ERROR, REDIS_ERROR_CLOSED, reason->message);
      else
        lease_request_drop (req, REDIS_ERROR, REDIS_ERROR_CLOSED, "the pool was closed");
    }

  if (redis_init_once_get_state (&core->init) == REDIS_INIT_RUNNING)
    {
      g_autoptr(GError) error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                     "The pool was closed while connecting");

      core_init_settle (core, error, FALSE);
    }

  core_close_engines (core, engines, task);
  g_ptr_array_unref (engines);
}

void
redis_pool_core_close (RedisPoolCore *core,
                       GTask         *task)
{
  core_close (core, task, NULL);
}

/* ---- state -------------------------------------------------------------- */

gboolean
redis_pool_core_is_closed (RedisPoolCore *core)
{
  return g_atomic_int_get (&core->closed_seen);
}

guint
redis_pool_core_fail_queued (RedisPoolCore *core,
                             const GError  *error)
{
  GQueue taken;
  RedisCall *call;
  guint n = 0;

  /* Only the offline queue: those calls were never written, so failing
   * them cannot lose a write that ran. */
  g_mutex_lock (&core->lock);
  taken = core->queued;
  g_queue_init (&core->queued);
  g_mutex_unlock (&core->lock);

  while ((call = g_queue_pop_head (&taken)) != NULL)
    {
      if (!redis_call_is_completed (call))
        {
          GError *copy = g_error_copy (error);

          g_prefix_error (&copy, "%s was not sent: ", redis_call_get_name (call));
          redis_call_fail (call, copy);
          n++;
        }
      redis_call_unref (call);
    }
  return n;
}

guint
redis_pool_core_get_active (RedisPoolCore *core)
{
  guint n;

  g_mutex_lock (&core->lock);
  n = core->active;
  g_mutex_unlock (&core->lock);
  return n;
}

/* Called with the lock held: the per-slot part of the info, into @conns
 * (aa{sv}); returns the calls in flight on all slots. */
static guint
core_add_slot_info_locked (RedisPoolCore   *core,
                           GVariantBuilder *conns)
{
  guint in_flight = 0;

  for (guint i = 0; i < core->config.size; i++)
    {
      Slot *slot = &core->slots[i];
      guint pending = slot->engine != NULL ? redis_engine_get_n_pending (slot->engine) : 0;

      in_flight += pending;
      g_variant_builder_open (conns, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (conns, "{sv}", "index", g_variant_new_uint32 (i));
      g_variant_builder_add (conns, "{sv}", "state", g_variant_new_string (slot_state_names[slot->state]));
      g_variant_builder_add (conns, "{sv}", "in-flight", g_variant_new_uint32 (pending));
      g_variant_builder_add (conns, "{sv}", "client-id",
                             g_variant_new_int64 (slot->engine != NULL && slot->state == SLOT_READY ?
                                                  redis_engine_get_client_id (slot->engine) : 0));
      g_variant_builder_add (conns, "{sv}", "reconnects", g_variant_new_uint64 (slot->reconnects));
      if (slot->last_error != NULL)
        g_variant_builder_add (conns, "{sv}", "last-error",
                               g_variant_new_string (slot->last_error->message));
      g_variant_builder_close (conns);
    }
  return in_flight;
}

GVariant *
redis_pool_core_get_info (RedisPoolCore *core)
{
  GVariantBuilder builder, conns;
  guint in_flight;
  GEnumClass *enum_class = g_type_class_ref (REDIS_TYPE_POOL_STRATEGY);
  GEnumValue *value = g_enum_get_value (enum_class, core->config.strategy);

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_init (&conns, G_VARIANT_TYPE ("aa{sv}"));
  g_mutex_lock (&core->lock);
  in_flight = core_add_slot_info_locked (core, &conns);
  g_variant_builder_add (&builder, "{sv}", "size", g_variant_new_uint32 (core->config.size));
  g_variant_builder_add (&builder, "{sv}", "active", g_variant_new_uint32 (core->active));
  g_variant_builder_add (&builder, "{sv}", "strategy", g_variant_new_string (value->value_nick));
  g_variant_builder_add (&builder, "{sv}", "in-flight", g_variant_new_uint32 (in_flight));
  g_variant_builder_add (&builder, "{sv}", "queued", g_variant_new_uint32 (core->queued.length));
  g_variant_builder_add (&builder, "{sv}", "reconnects", g_variant_new_uint64 (core->reconnects));
  g_variant_builder_add (&builder, "{sv}", "leased", g_variant_new_uint32 (core->n_leased));
  g_variant_builder_add (&builder, "{sv}", "idle-leases", g_variant_new_uint32 (core->idle_leases.length));
  g_variant_builder_add (&builder, "{sv}", "lease-waiters", g_variant_new_uint32 (core->lease_waiters.length));
  g_variant_builder_add (&builder, "{sv}", "closed", g_variant_new_boolean (core->closed));
  g_variant_builder_add (&builder, "{sv}", "network-available",
                         g_variant_new_boolean (redis_netmon_get_reachable (core->netmon)));
  g_mutex_unlock (&core->lock);
  g_variant_builder_add (&builder, "{sv}", "connections", g_variant_builder_end (&conns));
  redis_sentinel_add_info (core->config.options->sentinel, &builder);
  g_type_class_unref (enum_class);

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}
