/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-backoff-private.h"
#include "redis-client-private.h"
#include "redis-credentials-private.h"
#include "redis-engine-private.h"
#include "redis-enums.h"
#include "redis-error.h"
#include "redis-init-private.h"
#include "redis-message-private.h"
#include "redis-netmon-private.h"
#include "redis-options-private.h"
#include "redis-pool-core-private.h"
#include "redis-subscriber-private.h"
#include "redis-worker-private.h"

/**
 * RedisSubscriber:
 *
 * Pub/Sub on a connection of its own: channels (`SUBSCRIBE`), patterns
 * (`PSUBSCRIBE`) and shard channels (`SSUBSCRIBE`, Redis 7.0), each
 * message delivered as the detailed [signal@Redis.Subscriber::message]
 * signal carrying a [struct@Redis.Message].
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
 * g_autoptr(RedisSubscriber) sub =
 *   redis_subscriber_new_sync ("redis://127.0.0.1:6379", NULL, &error);
 *
 * g_assert_no_error (error);
 * // A handler is void (RedisSubscriber *, RedisMessage *, gpointer);
 * // this one quits the loop at the first message of "news".
 * g_signal_connect_swapped (sub, "message::news",
 *                           G_CALLBACK (g_main_loop_quit), loop);
 * redis_subscriber_subscribe_sync (sub, (const char *[]) { "news", NULL },
 *                                  NULL, &error);
 * g_assert_no_error (error);
 *
 * // Publish from a RedisPool `pool` on the same server, then wait.
 * g_autoptr(RedisReply) receivers =
 *   redis_client_command_sync (REDIS_CLIENT (pool),
 *                              (const char *[]) { "PUBLISH", "news", "hi",
 *                                                 NULL },
 *                              NULL, &error);
 * g_main_loop_run (loop);
 * ```
 *
 * The whole story, with a Python example and keyspace notifications, is
 * on the [Pub/Sub](pubsub.html) page.
 *
 * A subscriber takes the options of [class@Redis.Connection] (TLS, ACL
 * user, password, database, timeouts, health check, stall timeout), as
 * properties or as a URI, and [method@Redis.Pool.create_subscriber] makes
 * one with a pool's options. Subscribed mode is a state of a connection:
 * the subscriber never uses a pool's connections, and pools and
 * connections refuse `SUBSCRIBE`.
 *
 * Credentials can change at run time
 * ([method@Redis.Subscriber.set_credentials],
 * [method@Redis.Subscriber.set_credentials_provider]): they are used from
 * the next connect on, and a subscriber made by a pool follows the pool's.
 *
 * When the connection is lost, [signal@Redis.Subscriber::connection-lost]
 * is emitted once, the subscriber reconnects with the pool's backoff rules
 * ([property@Redis.Subscriber:backoff-initial],
 * [property@Redis.Subscriber:backoff-max], with jitter), runs the handshake
 * (AUTH, SELECT, CLIENT SETNAME) and subscribes again to everything; once
 * the server has confirmed all of it, [signal@Redis.Subscriber::resubscribed]
 * is emitted: messages published in the gap are lost, and the application
 * may re-read its state. A failed attempt emits
 * [signal@Redis.Subscriber::reconnect-failed] (for example
 * %REDIS_ERROR_AUTH_FAILED), and the next one waits longer.
 *
 * Messages are read on the library's I/O thread and delivered in order,
 * batched per main-loop turn, in the thread-default main context of the
 * thread that created the subscriber; so are the other signals. At most
 * [property@Redis.Subscriber:max-pending-messages] messages wait for
 * delivery: past that the oldest is dropped and
 * [property@Redis.Subscriber:messages-dropped] counts it, so a blocked
 * main loop never makes memory grow without bound. Once an unsubscribe
 * call has finished, no message of the names it removed is delivered, even
 * one that was already received.
 *
 * Every method may be called from any thread; their callbacks run in the
 * thread-default main context of the caller.
 */

/*
 * How it works.
 *
 * The state lives in a Core (reference counted, so that engine callbacks
 * and sources never hold the GObject), guarded by core->lock. The object
 * holds the core; the core reaches the object through a weak reference,
 * only to emit signals.
 *
 * One engine at a time (redis-engine.c), homed on the I/O thread, so that
 * it reads whatever the creation context's loop does. The engine is given
 * a push handler (redis_engine_set_push_func(): the one hook this needs in
 * the engine; a plain connection's reading path is unchanged): every
 * top-level reply is shown to push_cb() first, which takes the messages
 * (message, pmessage, smessage) and passes everything else on to the FIFO
 * of calls: (un)subscribe confirmations, ["pong", payload], errors, the
 * handshake's replies. A frame that is neither a well-formed message nor
 * shaped like a confirmation or a pong is INVALID: the engine closes with
 * PROTOCOL and the subscriber reconnects.
 *
 * Every (un)subscribe request is written as one command per name
 * (`SUBSCRIBE a`, `SUBSCRIBE b`… in one write): Redis answers each with
 * exactly one frame, a confirmation or an error, so the FIFO stays in step
 * whatever the server refuses. "Unsubscribe all" names every subscription
 * of its kind explicitly, for the same reason.
 *
 * The wanted sets (one per kind) say what the application asked for, in
 * request order: a request changes them and joins the outbox under the
 * lock, and the outbox is written in that order on the I/O thread
 * (flush_outbox_cb()), so the server sees the requests in the order the
 * sets changed. Messages are filtered by the wanted sets when received
 * and again, under the lock, right before each emission: once an
 * unsubscribe has finished (even once it was asked) nothing of its names
 * is emitted.
 *
 *   request (any thread) ─► wanted sets + outbox ─► (I/O thread) ready? ─► engine ─► confirmed
 *                                                         │ no
 *                                                         └► subscribe: held until the
 *                                                            resubscribe confirms it;
 *                                                            unsubscribe: done at once
 *
 * Reconnecting, on the I/O thread: the engine's closed handler reports the
 * loss (connection-lost, once per engine that had connected) and schedules
 * start_engine() after the backoff; connect_cb() takes a snapshot of the
 * wanted sets, under the lock, as the same step that opens the outbox
 * (ready), and writes the resubscribe batch first; resubscribe_done()
 * completes the held requests and emits resubscribed. A request in flight
 * when the connection dies: a subscribe is held (its names are in the
 * snapshot of the next connection), an unsubscribe is done (the next
 * connection never has its names).
 *
 * Delivery: received messages and events (lost, resubscribed, reconnect
 * failed, property notifications) join one queue, in order; a source in
 * the creation context emits the whole queue at each dispatch. Past
 * max-pending-messages queued messages, the oldest is dropped
 * (drop-oldest: the newest state wins, the memory bound is exact, and the
 * drop count tells the application precisely how many it missed; dropping
 * the connection instead would lose as much and add a resubscribe gap).
 * The server's own output-buffer limit for pub/sub clients (which can only
 * trigger when the I/O thread cannot keep up) closes the connection: a
 * loss like any other.
 *
 * Shard channels on a cluster: when the node gives up a slot, Redis 7.0
 * unsubscribes its clients from the shard channels of that slot on its
 * own, with a `sunsubscribe` frame nobody asked for. To tell it from the
 * confirmation of a SUNSUBSCRIBE that was written, the SUNSUBSCRIBE
 * commands in flight on the current engine are counted per name
 * (submit_cmds()): a `sunsubscribe` frame whose name has none is the
 * server's own. push_cb() takes it (it belongs to no call) and queues a
 * SHARD_LOST item: in order, after the messages received before it, the
 * name leaves the wanted set and the shard-lost hook of the cluster
 * subscriber (redis_subscriber_set_shard_lost_func()) is told, so that it
 * subscribes on the slot's new owner.
 *
 * Credentials: each connect takes the username and password of a
 * RedisCredentials (redis-credentials-private.h) when its engine is made,
 * after asking its provider, if any (start_engine() → provider_done() →
 * connect_engine()). A subscribed RESP2 connection accepts no AUTH, so a
 * rotation never touches the live engine (but for one whose handshake is
 * not written yet): it keeps its session until the next connect. A pool's
 * subscriber shares the pool's RedisCredentials (credentials_shared): the
 * pool's rotations and provider reach it without the pool knowing its
 * subscribers, and without a reference either way. set_credentials*()
 * gives it a copy of its own (own_credentials()) and it stops following.
 *
 * Lock order: an engine's I/O lock (push_cb() runs under it) → core->lock
 * → an engine's inner lock (redis_engine_submit()). So with core->lock
 * held the code only submits; connecting and closing engines happen after
 * it is let go.
 */

typedef enum
{
  OP_SUBSCRIBE,
  OP_UNSUBSCRIBE,
  OP_PING,
} OpType;

typedef struct _Core Core;

/* One request of the application. */
typedef struct
{
  gint                   ref_count;      /* atomic */
  Core                  *core;           /* a reference */
  OpType                 type;
  RedisSubscriptionKind  kind;
  GPtrArray             *names;          /* NameKey*, owned */
  GTask                 *task;           /* the caller's; stolen when returned */
  gint                   done;           /* atomic: returned (or being) */
  GCancellable          *cancellable;
  gulong                 cancel_id;
  GSource               *timeout_source; /* while held; under core->lock */
  RedisEngine           *engine;         /* the one it was written to */
} Op;

/* A subscription name: binary-safe, NUL-terminated; looked up with a key
 * on the stack (no allocation per message). */
typedef struct
{
  gsize       len;
  const char *data;
} NameKey;

typedef enum
{
  ITEM_MESSAGE,
  ITEM_LOST,
  ITEM_RESUBSCRIBED,
  ITEM_RECONNECT_FAILED,
  ITEM_NOTIFY_CONNECTED,
  ITEM_NOTIFY_DROPPED,
  ITEM_SHARD_LOST,
} ItemType;

typedef struct
{
  GList         link;        /* in Core.items; data is the item */
  ItemType      type;
  RedisMessage *message;
  GError       *error;
  NameKey      *shard_name;  /* ITEM_SHARD_LOST */
  guint         removals;    /* Core.removals when the message was queued */
} Item;

/* The delivery source: ready while its flag is set (no allocation per
 * batch; see the engine's flush source). */
typedef struct
{
  GSource source;
  gint    pending;   /* atomic */
} DeliverSource;

struct _Core
{
  GMutex         lock;
  RedisOptions  *options;            /* immutable once initializing */
  guint          backoff_initial_ms; /* ditto */
  guint          backoff_max_ms;
  GMainContext  *context;            /* where signals are emitted */
  GWeakRef       object;
  RedisInitOnce  init;

  /* Under lock. */
  gboolean       closed;
  gboolean       init_done;          /* the first connect succeeded */
  RedisEngine   *engine;             /* the current one; NULL while down */
  gboolean       engine_up;          /* it connected (its loss is reported) */
  gboolean       ready;              /* its resubscribe is written: requests go to it */
  gboolean       connected;          /* the property */
  gboolean       ever_connected;
  GHashTable    *wanted[3];          /* NameKey* set, per RedisSubscriptionKind */
  guint          removals;           /* atomic; bumped when a name leaves wanted or on close */
  GQueue         outbox;             /* Op*, to write (flush_outbox_cb()) */
  gboolean       flush_scheduled;
  GQueue         held;               /* Op*, subscribes waiting for a resubscribe */
  GQueue         items;              /* Item*, to emit */
  guint          n_messages;         /* ITEM_MESSAGE in items */
  guint          max_pending;
  gboolean       dropped_notify_queued;
  GSource       *deliver_source;
  GSource       *retry_source;
  GNetworkMonitor *network_monitor;  /* the property; NULL: the default */
  RedisNetmon   *netmon;             /* from initialization on; NULL: not monitored */
  guint          attempts;           /* consecutive failed connects */
  GRand         *rand;
  /* The next connect's credentials and provider (see "Credentials"
   * above); NULL until initialization or a set_credentials*() call makes
   * them from the options. */
  RedisCredentials *credentials;
  gboolean       credentials_shared; /* a pool's: not ours to change */
  gboolean       asked;              /* this attempt's credentials are the provider's */
  gboolean       ask_stale;          /* the server refused the provider's last ones */
  gboolean       retry_now;          /* ask again at once, once, after that refusal */

  guint64        dropped;            /* messages dropped, ever */

  /* Under lock: SUNSUBSCRIBE commands written to the current engine and
   * not confirmed yet, NameKey* → count (see "Shard channels" above). */
  GHashTable    *shard_unsubs_in_flight;
  RedisSubscriberShardLostFunc shard_lost_func;  /* set before init */
  gpointer       shard_lost_data;
  GDestroyNotify shard_lost_destroy;
};

G_STATIC_ASSERT (REDIS_SUBSCRIPTION_KIND_SHARD == 2);

/* ---- names -------------------------------------------------------------- */

static NameKey *
name_new (const char *data,
          gsize       len)
{
  NameKey *key = g_malloc (sizeof (NameKey) + len + 1);
  char *copy = (char *) (key + 1);

  memcpy (copy, data, len);
  copy[len] = '\0';
  key->len = len;
  key->data = copy;
  return key;
}

static NameKey *
name_copy (const NameKey *key)
{
  return name_new (key->data, key->len);
}

static guint
name_hash (gconstpointer p)
{
  const NameKey *key = p;
  guint h = 5381;

  for (gsize i = 0; i < key->len; i++)
    h = (h << 5) + h + (guchar) key->data[i];
  return h;
}

static gboolean
name_equal (gconstpointer a,
            gconstpointer b)
{
  const NameKey *ka = a, *kb = b;

  return ka->len == kb->len && memcmp (ka->data, kb->data, ka->len) == 0;
}

static GHashTable *
name_set_new (void)
{
  return g_hash_table_new_full (name_hash, name_equal, g_free, NULL);
}

/* ---- ops ---------------------------------------------------------------- */

static Core *core_ref   (Core *core);
static void  core_unref (Core *core);

static Op *
op_new (Core                  *core,
        OpType                 type,
        RedisSubscriptionKind  kind,
        GTask                 *task)
{
  Op *op = g_new0 (Op, 1);

  op->ref_count = 1;
  op->core = core_ref (core);
  op->type = type;
  op->kind = kind;
  op->names = g_ptr_array_new_with_free_func (g_free);
  op->task = g_object_ref (task);
  op->cancellable = g_task_get_cancellable (task);
  if (op->cancellable != NULL)
    g_object_ref (op->cancellable);
  return op;
}

static Op *
op_ref (Op *op)
{
  g_atomic_int_inc (&op->ref_count);
  return op;
}

static void
op_unref (Op *op)
{
  if (!g_atomic_int_dec_and_test (&op->ref_count))
    return;
  g_assert (op->task == NULL && op->timeout_source == NULL);
  g_ptr_array_unref (op->names);
  g_clear_object (&op->cancellable);
  g_clear_pointer (&op->engine, redis_engine_unref);
  core_unref (op->core);
  g_free (op);
}

typedef struct
{
  Op     *op;
  GTask  *task;
  GError *error;
} OpReturn;

/* In the task's context, with no lock held: hands the outcome out. */
static gboolean
op_return_cb (gpointer data)
{
  OpReturn *ret = data;

  if (ret->op->cancel_id != 0)
    g_cancellable_disconnect (ret->op->cancellable, ret->op->cancel_id);
  ret->op->cancel_id = 0;
  if (ret->error != NULL)
    g_task_return_error (ret->task, g_steal_pointer (&ret->error));
  else
    g_task_return_boolean (ret->task, TRUE);
  return G_SOURCE_REMOVE;
}

static void
op_return_free (gpointer data)
{
  OpReturn *ret = data;

  g_clear_error (&ret->error);
  g_object_unref (ret->task);
  op_unref (ret->op);
  g_free (ret);
}

/* Any thread, any lock: the first outcome wins (takes @error, NULL for
 * success); the caller's callback runs later, in its context. */
static void
op_return (Op     *op,
           GError *error)
{
  OpReturn *ret;
  GSource *source;

  if (!g_atomic_int_compare_and_exchange (&op->done, 0, 1))
    {
      g_clear_error (&error);
      return;
    }

  ret = g_new0 (OpReturn, 1);
  ret->op = op_ref (op);
  ret->task = g_steal_pointer (&op->task);
  ret->error = error;
  source = g_idle_source_new ();
  g_source_set_static_name (source, "[redispool] subscriber return");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, op_return_cb, ret, op_return_free);
  g_source_attach (source, g_task_get_context (ret->task));
  g_source_unref (source);
}

static void
op_cancelled_cb (GCancellable *cancellable,
                 gpointer      data)
{
  /* Only the waiting stops: what was asked still takes effect (a request
   * is never taken back half-way, so that the wanted sets and the server
   * agree). */
  op_return (data, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                        "Operation was cancelled"));
}

/* ---- delivery ----------------------------------------------------------- */

/* With lock held: @name leaves the wanted set of @kind; a message queued
 * before is checked again at delivery. */
static void
wanted_remove_locked (Core                  *core,
                      RedisSubscriptionKind  kind,
                      NameKey               *name)
{
  if (g_hash_table_remove (core->wanted[kind], name))
    g_atomic_int_inc (&core->removals);
}

static void
item_free (Item *item)
{
  g_clear_pointer (&item->message, redis_message_unref);
  g_clear_error (&item->error);
  g_free (item->shard_name);
  g_free (item);
}

static gboolean
deliver_prepare (GSource *source,
                 gint    *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((DeliverSource *) source)->pending) != 0;
}

static gboolean
deliver_check (GSource *source)
{
  return g_atomic_int_get (&((DeliverSource *) source)->pending) != 0;
}

static gboolean
deliver_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     user_data)
{
  g_atomic_int_set (&((DeliverSource *) source)->pending, 0);
  return callback (user_data);
}

static GSourceFuncs deliver_source_funcs = {
  deliver_prepare, deliver_check, deliver_dispatch, NULL, NULL, NULL,
};

/* With lock held: the delivery source runs soon. */
static void
wake_delivery_locked (Core *core)
{
  if (core->deliver_source == NULL)
    return;
  if (g_atomic_int_get (&((DeliverSource *) core->deliver_source)->pending))
    return;
  g_atomic_int_set (&((DeliverSource *) core->deliver_source)->pending, 1);
  g_main_context_wakeup (core->context);
}

/* An item allocation carries its own queue link: one block per message. */
static Item *
item_new (ItemType type)
{
  Item *item = g_new0 (Item, 1);

  item->link.data = item;
  item->type = type;
  return item;
}

static void
queue_event_locked (Core     *core,
                    ItemType  type,
                    GError   *error)
{
  Item *item = item_new (type);

  item->error = error;
  g_queue_push_tail_link (&core->items, &item->link);
  wake_delivery_locked (core);
}

enum
{
  PROP_0,
  PROP_URI,
  PROP_CONNECTED,
  PROP_MAX_PENDING_MESSAGES,
  PROP_MESSAGES_DROPPED,
  PROP_BACKOFF_INITIAL,
  PROP_BACKOFF_MAX,
  PROP_NETWORK_MONITOR,
  PROP_FIRST_OPTION,
  N_PROPS = PROP_FIRST_OPTION + REDIS_OPTIONS_N_PROPS,
};

static GParamSpec *properties[N_PROPS];

enum
{
  MESSAGE,
  CONNECTION_LOST,
  RESUBSCRIBED,
  RECONNECT_FAILED,
  N_SIGNALS,
};

static guint signals[N_SIGNALS];

/* In the creation context: emits what was queued, in order. */
static gboolean
deliver_cb (gpointer data)
{
  Core *core = data;
  GQueue items;
  GObject *object;
  Item *item;

  g_mutex_lock (&core->lock);
  items = core->items;
  g_queue_init (&core->items);
  core->n_messages = 0;
  core->dropped_notify_queued = FALSE;
  g_mutex_unlock (&core->lock);

  object = g_weak_ref_get (&core->object);
  for (GList *l = g_queue_pop_head_link (&items); l != NULL; l = g_queue_pop_head_link (&items))
    {
      item = l->data;
      if (object == NULL)
        ;
      else if (item->type == ITEM_MESSAGE)
        {
          RedisSubscriptionKind kind = redis_message_get_kind (item->message);
          NameKey key;
          gboolean wanted;

          key.data = redis_message_get_name (item->message, &key.len);
          /* Checked again now, not only when received: an unsubscribe
           * finished since (maybe by a handler of the message before)
           * stops it. Nothing left the wanted sets since receipt (the
           * usual case) needs no lock. */
          if ((guint) g_atomic_int_get (&core->removals) == item->removals)
            wanted = TRUE;
          else
            {
              g_mutex_lock (&core->lock);
              wanted = !core->closed && g_hash_table_contains (core->wanted[kind], &key);
              g_mutex_unlock (&core->lock);
            }
          if (wanted)
            {
              /* Never a quark made from a name off the network. */
              GQuark detail = memchr (key.data, '\0', key.len) == NULL ?
                              g_quark_try_string (key.data) : 0;

              g_signal_emit (object, signals[MESSAGE], detail, item->message);
            }
        }
      else if (item->type == ITEM_LOST)
        g_signal_emit (object, signals[CONNECTION_LOST], 0, item->error);
      else if (item->type == ITEM_RESUBSCRIBED)
        g_signal_emit (object, signals[RESUBSCRIBED], 0);
      else if (item->type == ITEM_RECONNECT_FAILED)
        g_signal_emit (object, signals[RECONNECT_FAILED], 0, item->error);
      else if (item->type == ITEM_NOTIFY_CONNECTED)
        g_object_notify_by_pspec (object, properties[PROP_CONNECTED]);
      else if (item->type == ITEM_NOTIFY_DROPPED)
        g_object_notify_by_pspec (object, properties[PROP_MESSAGES_DROPPED]);
      else if (item->type == ITEM_SHARD_LOST)
        {
          RedisSubscriberShardLostFunc func;
          gpointer func_data;

          /* The server has dropped it: the messages received before
           * were delivered above, none comes after. */
          g_mutex_lock (&core->lock);
          wanted_remove_locked (core, REDIS_SUBSCRIPTION_KIND_SHARD, item->shard_name);
          func = core->shard_lost_func;
          func_data = core->shard_lost_data;
          g_mutex_unlock (&core->lock);
          if (func != NULL)
            func (REDIS_SUBSCRIBER (object), item->shard_name->data, func_data);
        }
      item_free (item);
    }
  g_clear_object (&object);
  return G_SOURCE_CONTINUE;
}

/* ---- the push handler (I/O lock of the engine held) --------------------- */

static gboolean
bulk_is (RedisReply *reply,
         const char *text)
{
  gsize len;
  const char *s;

  if (reply == NULL || redis_reply_get_kind (reply) != REDIS_REPLY_KIND_STRING)
    return FALSE;
  s = redis_reply_get_string (reply, &len);
  return len == strlen (text) && memcmp (s, text, len) == 0;
}

static const char * const confirm_words[2][3] = {
  { "unsubscribe", "punsubscribe", "sunsubscribe" },
  { "subscribe", "psubscribe", "ssubscribe" },
};

/* ["subscribe", name, count] and its five siblings (name nil: an
 * unsubscribe-all with nothing subscribed). */
static gboolean
is_confirmation (RedisReply *frame)
{
  RedisReply *first, *name;

  if (redis_reply_get_kind (frame) != REDIS_REPLY_KIND_ARRAY ||
      redis_reply_get_n_elements (frame) != 3)
    return FALSE;
  first = redis_reply_get_element (frame, 0);
  name = redis_reply_get_element (frame, 1);
  if (redis_reply_get_kind (redis_reply_get_element (frame, 2)) != REDIS_REPLY_KIND_INTEGER ||
      (redis_reply_get_kind (name) != REDIS_REPLY_KIND_STRING &&
       redis_reply_get_kind (name) != REDIS_REPLY_KIND_NIL))
    return FALSE;
  for (guint s = 0; s < 2; s++)
    for (guint k = 0; k < 3; k++)
      if (bulk_is (first, confirm_words[s][k]))
        return TRUE;
  return FALSE;
}

/* A `sunsubscribe` frame: the confirmation of a SUNSUBSCRIBE in flight
 * (the call at the FIFO's head), or the server's own when its node gave
 * up the channel's slot (no call's: taken, and told in order). */
static RedisEnginePushResult
push_sunsubscribe (Core       *core,
                   RedisReply *frame)
{
  RedisEnginePushResult result = REDIS_ENGINE_PUSH_PASS;
  gpointer in_flight;
  NameKey key;

  key.data = redis_reply_get_string (redis_reply_get_element (frame, 1), &key.len);
  g_mutex_lock (&core->lock);
  in_flight = g_hash_table_lookup (core->shard_unsubs_in_flight, &key);
  if (in_flight == NULL)
    {
      result = REDIS_ENGINE_PUSH_TAKEN;
      if (!core->closed && g_hash_table_contains (core->wanted[REDIS_SUBSCRIPTION_KIND_SHARD], &key))
        {
          Item *item = item_new (ITEM_SHARD_LOST);

          item->shard_name = name_copy (&key);
          g_queue_push_tail_link (&core->items, &item->link);
          wake_delivery_locked (core);
        }
    }
  else if (GPOINTER_TO_UINT (in_flight) == 1)
    g_hash_table_remove (core->shard_unsubs_in_flight, &key);
  else
    g_hash_table_insert (core->shard_unsubs_in_flight, name_copy (&key),
                         GUINT_TO_POINTER (GPOINTER_TO_UINT (in_flight) - 1));
  g_mutex_unlock (&core->lock);
  return result;
}

static RedisEnginePushResult
push_cb (RedisReply *reply,
         gpointer    data)
{
  Core *core = data;
  RedisSubscriptionKind kind;
  RedisMessage *message;
  NameKey key;

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY)
    return REDIS_ENGINE_PUSH_PASS;      /* +OK, +PONG, errors: a call's */
  if (!redis_message_parse_kind (reply, &kind))
    {
      if (is_confirmation (reply) &&
          bulk_is (redis_reply_get_element (reply, 0), "sunsubscribe") &&
          redis_reply_get_kind (redis_reply_get_element (reply, 1)) == REDIS_REPLY_KIND_STRING)
        return push_sunsubscribe (core, reply);
      if (is_confirmation (reply) ||
          (redis_reply_get_n_elements (reply) == 2 &&
           bulk_is (redis_reply_get_element (reply, 0), "pong") &&
           redis_reply_get_kind (redis_reply_get_element (reply, 1)) == REDIS_REPLY_KIND_STRING))
        return REDIS_ENGINE_PUSH_PASS;
      return REDIS_ENGINE_PUSH_INVALID;
    }

  message = redis_message_new_from_frame (kind, reply);
  key.data = redis_message_get_name (message, &key.len);

  g_mutex_lock (&core->lock);
  if (!core->closed && g_hash_table_contains (core->wanted[kind], &key))
    {
      Item *item = item_new (ITEM_MESSAGE);

      item->message = g_steal_pointer (&message);
      item->removals = (guint) g_atomic_int_get (&core->removals);
      g_queue_push_tail_link (&core->items, &item->link);
      core->n_messages++;

      /* Drop-oldest past the bound. */
      while (core->n_messages > core->max_pending)
        {
          for (GList *l = core->items.head; l != NULL; l = l->next)
            {
              Item *old = l->data;

              if (old->type == ITEM_MESSAGE)
                {
                  g_queue_unlink (&core->items, l);
                  item_free (old);
                  break;
                }
            }
          core->n_messages--;
          core->dropped++;
          if (!core->dropped_notify_queued)
            {
              core->dropped_notify_queued = TRUE;
              queue_event_locked (core, ITEM_NOTIFY_DROPPED, NULL);
            }
        }
      wake_delivery_locked (core);
    }
  g_mutex_unlock (&core->lock);

  g_clear_pointer (&message, redis_message_unref);
  return REDIS_ENGINE_PUSH_TAKEN;
}

/* ---- core --------------------------------------------------------------- */

static Core *
core_ref (Core *core)
{
  return g_atomic_rc_box_acquire (core);
}

static void
core_clear (gpointer data)
{
  Core *core = data;

  g_assert (core->engine == NULL && core->retry_source == NULL && core->deliver_source == NULL);
  g_assert (g_queue_is_empty (&core->outbox) && g_queue_is_empty (&core->held));
  /* The links are the items' own: not g_queue_clear_full(). */
  for (GList *l = g_queue_pop_head_link (&core->items); l != NULL;
       l = g_queue_pop_head_link (&core->items))
    item_free (l->data);
  for (guint k = 0; k < G_N_ELEMENTS (core->wanted); k++)
    g_hash_table_unref (core->wanted[k]);
  g_hash_table_unref (core->shard_unsubs_in_flight);
  if (core->shard_lost_destroy != NULL)
    core->shard_lost_destroy (core->shard_lost_data);
  redis_options_free (core->options);
  redis_credentials_unref (core->credentials);
  redis_netmon_unref (core->netmon);
  g_clear_object (&core->network_monitor);
  g_rand_free (core->rand);
  redis_init_once_clear (&core->init);
  g_main_context_unref (core->context);
  g_weak_ref_clear (&core->object);
  g_mutex_clear (&core->lock);
}

static void
core_unref (Core *core)
{
  g_atomic_rc_box_release_full (core, core_clear);
}

static Core *
core_new (void)
{
  Core *core = g_atomic_rc_box_new0 (Core);

  g_mutex_init (&core->lock);
  core->options = redis_options_new ();
  core->backoff_initial_ms = REDIS_POOL_DEFAULT_BACKOFF_INITIAL;
  core->backoff_max_ms = REDIS_POOL_DEFAULT_BACKOFF_MAX;
  core->context = g_main_context_ref_thread_default ();
  g_weak_ref_init (&core->object, NULL);
  redis_init_once_init (&core->init);
  for (guint k = 0; k < G_N_ELEMENTS (core->wanted); k++)
    core->wanted[k] = name_set_new ();
  core->shard_unsubs_in_flight = name_set_new ();
  g_queue_init (&core->outbox);
  g_queue_init (&core->held);
  g_queue_init (&core->items);
  core->max_pending = REDIS_SUBSCRIBER_DEFAULT_MAX_PENDING_MESSAGES;
  core->rand = g_rand_new ();

  core->deliver_source = g_source_new (&deliver_source_funcs, sizeof (DeliverSource));
  g_source_set_static_name (core->deliver_source, "[redispool] subscriber delivery");
  g_source_set_priority (core->deliver_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (core->deliver_source, deliver_cb, core_ref (core),
                         (GDestroyNotify) core_unref);
  g_source_attach (core->deliver_source, core->context);
  return core;
}

static GError *
closed_error (void)
{
  return g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED, "The subscriber was closed");
}

static gboolean held_timeout_cb (gpointer data);

/* With lock held: @op (its reference taken) waits for the next resubscribe
 * to confirm its names, at most the library's own deadline. */
static void
hold_locked (Core *core,
             Op   *op)
{
  g_queue_push_tail (&core->held, op);
  op->timeout_source = g_timeout_source_new (redis_options_get_internal_timeout_ms (core->options));
  g_source_set_static_name (op->timeout_source, "[redispool] subscriber held");
  g_source_set_callback (op->timeout_source, held_timeout_cb, op_ref (op), (GDestroyNotify) op_unref);
  g_source_attach (op->timeout_source, redis_worker_get_context ());
}

static void
unhold_locked (Op *op)
{
  if (op->timeout_source != NULL)
    {
      g_source_destroy (op->timeout_source);
      g_clear_pointer (&op->timeout_source, g_source_unref);
    }
}

static gboolean
held_timeout_cb (gpointer data)
{
  Op *op = data;
  Core *core = op->core;
  GList *link;

  g_mutex_lock (&core->lock);
  link = g_queue_find (&core->held, op);
  if (link != NULL)
    {
      g_queue_delete_link (&core->held, link);
      g_clear_pointer (&op->timeout_source, g_source_unref);
    }
  g_mutex_unlock (&core->lock);

  if (link != NULL)
    {
      op_return (op, g_error_new (REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT,
                                  "The subscription was not confirmed before the deadline: "
                                  "the subscriber is reconnecting (it stays requested, and is "
                                  "made once the connection is back)"));
      op_unref (op);
    }
  return G_SOURCE_REMOVE;
}

/* ---- commands ----------------------------------------------------------- */

typedef struct
{
  gboolean               subscribe;
  RedisSubscriptionKind  kind;
  NameKey               *name;      /* owned */
} Cmd;

static void
cmd_clear (gpointer data)
{
  g_free (((Cmd *) data)->name);
}

static GArray *
cmds_new (void)
{
  GArray *cmds = g_array_new (FALSE, FALSE, sizeof (Cmd));

  g_array_set_clear_func (cmds, cmd_clear);
  return cmds;
}

static void
cmds_add (GArray                *cmds,
          gboolean               subscribe,
          RedisSubscriptionKind  kind,
          const NameKey         *name)
{
  Cmd cmd = { subscribe, kind, name_copy (name) };

  g_array_append_val (cmds, cmd);
}

static const char * const command_words[2][3] = {
  { "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE" },
  { "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE" },
};

/* On the I/O thread: writes one command per name to @engine, as one call
 * whose GTask calls back on the I/O thread with the replies. */
static void
submit_cmds (Core                *core,
             RedisEngine         *engine,
             GArray              *cmds,
             GAsyncReadyCallback  callback,
             gpointer             user_data)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GTask) task = g_task_new (NULL, NULL, callback, user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) payload = NULL;
  RedisCall *call;

  g_task_set_name (task, "[redispool] subscriber command");
  /* Counted before they are written: see push_sunsubscribe(). */
  g_mutex_lock (&core->lock);
  if (engine == core->engine)
    for (guint i = 0; i < cmds->len; i++)
      {
        Cmd *cmd = &g_array_index (cmds, Cmd, i);
        guint in_flight;

        if (cmd->subscribe || cmd->kind != REDIS_SUBSCRIPTION_KIND_SHARD)
          continue;
        in_flight = GPOINTER_TO_UINT (g_hash_table_lookup (core->shard_unsubs_in_flight, cmd->name));
        g_hash_table_insert (core->shard_unsubs_in_flight, name_copy (cmd->name),
                             GUINT_TO_POINTER (in_flight + 1));
      }
  g_mutex_unlock (&core->lock);
  for (guint i = 0; i < cmds->len && error == NULL; i++)
    {
      Cmd *cmd = &g_array_index (cmds, Cmd, i);
      const char *argv[2] = { command_words[cmd->subscribe][cmd->kind], cmd->name->data };
      gsize lens[2] = { strlen (argv[0]), cmd->name->len };

      redis_encode_command (out, 2, argv, lens, NULL, NULL, NULL, &error);
    }
  payload = g_byte_array_free_to_bytes (g_steal_pointer (&out));
  call = redis_call_new (REDIS_CALL_PIPELINE, payload, cmds->len, task);
  call->no_retry = TRUE;
  redis_call_set_timeout (call, redis_options_get_internal_timeout_ms (core->options));
  if (error != NULL)
    redis_call_fail (call, g_steal_pointer (&error));
  else if (!redis_engine_submit (engine, call))
    redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                                "The subscriber's connection is closed"));
  redis_call_unref (call);
}

/* Checks the replies to @cmds. FALSE with @error (PROTOCOL) if one is not
 * the confirmation it must be; TRUE otherwise, with the names the server
 * refused (an error reply) in @refused (NameKey* of @cmds, borrowed) and
 * the first refusal in @refusal. */
static gboolean
check_confirmations (GArray     *cmds,
                     GPtrArray  *replies,
                     GPtrArray  *refused,
                     GError    **refusal,
                     GError    **error)
{
  if (replies->len != cmds->len)
    goto out_of_step;

  for (guint i = 0; i < cmds->len; i++)
    {
      Cmd *cmd = &g_array_index (cmds, Cmd, i);
      RedisReply *reply = g_ptr_array_index (replies, i);
      RedisReply *name;
      gsize len;
      const char *s;

      if (redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR)
        {
          g_ptr_array_add (refused, cmd->name);
          if (*refusal == NULL)
            *refusal = g_error_new (REDIS_ERROR, REDIS_ERROR_SERVER, "%s",
                                    redis_reply_get_string (reply, &len));
          continue;
        }
      if (!is_confirmation (reply) ||
          !bulk_is (redis_reply_get_element (reply, 0), confirm_words[cmd->subscribe][cmd->kind]))
        goto out_of_step;
      name = redis_reply_get_element (reply, 1);
      if (redis_reply_get_kind (name) != REDIS_REPLY_KIND_STRING)
        goto out_of_step;
      s = redis_reply_get_string (name, &len);
      if (len != cmd->name->len || memcmp (s, cmd->name->data, len) != 0)
        goto out_of_step;
    }
  return TRUE;

out_of_step:
  g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                       "Protocol error: the server confirmed a subscription that was not asked for");
  return FALSE;
}

/* ---- requests on the wire ----------------------------------------------- */

typedef struct
{
  Op     *op;
  GArray *cmds;
} OpCall;

static void
op_call_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  OpCall *oc = data;
  Op *op = oc->op;
  Core *core = op->core;
  GError *error = NULL;
  gpointer res = g_task_propagate_pointer (G_TASK (result), &error);
  gboolean close_engine = FALSE;

  if (op->type == OP_PING)
    {
      if (res != NULL)
        redis_reply_unref (res);
      op_return (op, error);
      goto out;
    }

  if (error == NULL)
    {
      g_autoptr(GPtrArray) replies = res;
      g_autoptr(GPtrArray) refused = g_ptr_array_new ();
      GError *refusal = NULL;

      if (check_confirmations (oc->cmds, replies, refused, &refusal, &error))
        {
          if (refused->len > 0 && op->type == OP_SUBSCRIBE)
            {
              g_mutex_lock (&core->lock);
              for (guint i = 0; i < refused->len; i++)
                wanted_remove_locked (core, op->kind, g_ptr_array_index (refused, i));
              g_mutex_unlock (&core->lock);
            }
          op_return (op, refusal);
          goto out;
        }
    }

  /* Lost, timed out, or out of step. */
  g_mutex_lock (&core->lock);
  if (core->closed)
    op_return (op, closed_error ());
  else if (op->type == OP_SUBSCRIBE)
    {
      /* Its names are wanted: the next connection subscribes to them. */
      hold_locked (core, op_ref (op));
      close_engine = core->engine == op->engine;
    }
  else
    op_return (op, NULL);    /* the next connection never has them */
  g_mutex_unlock (&core->lock);

  if (close_engine)
    redis_engine_close (op->engine, g_error_copy (error));
  g_error_free (error);

out:
  g_clear_pointer (&oc->cmds, g_array_unref);
  op_unref (oc->op);
  g_free (oc);
}

/* On the I/O thread: writes @op (its reference taken) to @engine. */
static void
submit_op (Core        *core,
           RedisEngine *engine,
           Op          *op)
{
  OpCall *oc = g_new0 (OpCall, 1);

  oc->op = op;
  op->engine = redis_engine_ref (engine);
  if (op->type == OP_PING)
    {
      RedisCall *call;

      call = redis_call_new_internal (REDIS_CALL_COMMAND,
                                      (const char * const *[]) { (const char *[]) { "PING", NULL }, NULL },
                                      "PING", redis_options_get_internal_timeout_ms (core->options),
                                      op_call_done_cb, oc);
      call->no_retry = TRUE;
      if (!redis_engine_submit (engine, call))
        redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                                    "The subscriber's connection is closed"));
      redis_call_unref (call);
      return;
    }

  oc->cmds = cmds_new ();
  for (guint i = 0; i < op->names->len; i++)
    cmds_add (oc->cmds, op->type == OP_SUBSCRIBE, op->kind, g_ptr_array_index (op->names, i));
  submit_cmds (core, engine, oc->cmds, op_call_done_cb, oc);
}

static gboolean
flush_outbox_cb (gpointer data)
{
  Core *core = data;
  GQueue ops = G_QUEUE_INIT;
  GQueue finished = G_QUEUE_INIT;
  RedisEngine *engine = NULL;
  gboolean closed;
  Op *op;

  g_mutex_lock (&core->lock);
  core->flush_scheduled = FALSE;
  closed = core->closed;
  if (core->ready && !closed)
    {
      ops = core->outbox;
      g_queue_init (&core->outbox);
      engine = redis_engine_ref (core->engine);
    }
  else if (!closed)
    {
      /* Down: a subscribe waits for the resubscribe (its names are in the
       * wanted set), an unsubscribe is done, a ping fails. */
      while ((op = g_queue_pop_head (&core->outbox)) != NULL)
        {
          if (op->type == OP_SUBSCRIBE)
            hold_locked (core, op);
          else
            g_queue_push_tail (&finished, op);
        }
    }
  g_mutex_unlock (&core->lock);

  while ((op = g_queue_pop_head (&finished)) != NULL)
    {
      op_return (op, op->type == OP_PING ?
                       g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                            "The subscriber is not connected") :
                       NULL);
      op_unref (op);
    }
  while ((op = g_queue_pop_head (&ops)) != NULL)
    submit_op (core, engine, op);
  g_clear_pointer (&engine, redis_engine_unref);
  return G_SOURCE_REMOVE;
}

/* With lock held. */
static void
schedule_flush_locked (Core *core)
{
  if (core->flush_scheduled || g_queue_is_empty (&core->outbox))
    return;
  core->flush_scheduled = TRUE;
  redis_worker_invoke (flush_outbox_cb, core_ref (core), (GDestroyNotify) core_unref);
}

/* ---- connecting and reconnecting (I/O thread) --------------------------- */

static void start_engine (Core *core);

static gboolean
retry_cb (gpointer data)
{
  Core *core = data;

  g_mutex_lock (&core->lock);
  g_clear_pointer (&core->retry_source, g_source_unref);
  g_mutex_unlock (&core->lock);
  start_engine (core);
  return G_SOURCE_REMOVE;
}

/* With lock held: the next attempt, after the pool's backoff: exponential
 * from backoff-initial up to backoff-max, full jitter (redis-backoff.c),
 * as redis-pool-core.c's slots. */
static void
schedule_retry_locked (Core *core)
{
  guint delay;

  /* Offline: no retry until core_network_changed(). */
  if (core->closed || core->retry_source != NULL || !redis_netmon_get_reachable (core->netmon))
    return;
  delay = core->retry_now ? 0 : redis_backoff_delay (core->rand, core->backoff_initial_ms,
                                                      core->backoff_max_ms, core->attempts);
  core->retry_now = FALSE;
  core->attempts++;

  core->retry_source = g_timeout_source_new (delay);
  g_source_set_static_name (core->retry_source, "[redispool] subscriber reconnect");
  g_source_set_callback (core->retry_source, retry_cb, core_ref (core), (GDestroyNotify) core_unref);
  g_source_attach (core->retry_source, redis_worker_get_context ());
}

/* Any thread, no engine lock held. */
static void
engine_closed_cb (RedisEngine  *engine,
                  const GError *reason,
                  GQueue       *unsent,
                  gpointer      data)
{
  Core *core = data;

  g_mutex_lock (&core->lock);
  if (core->engine != engine)
    {
      g_mutex_unlock (&core->lock);
      return;
    }
  core->engine = NULL;
  core->ready = FALSE;
  /* Refused by AUTH with the provider's credentials (an expired token):
   * ask it again at once, once, saying so, before backing off. */
  if (!core->engine_up && core->asked && !core->ask_stale &&
      g_error_matches (reason, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED))
    {
      core->ask_stale = TRUE;
      core->retry_now = TRUE;
    }
  if (!core->closed && core->init_done)
    {
      if (core->engine_up)
        {
          queue_event_locked (core, ITEM_LOST,
                              reason != NULL ? g_error_copy (reason) :
                                g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                                     "The connection was lost"));
          if (core->connected)
            {
              core->connected = FALSE;
              queue_event_locked (core, ITEM_NOTIFY_CONNECTED, NULL);
            }
        }
      schedule_retry_locked (core);
    }
  core->engine_up = FALSE;
  g_mutex_unlock (&core->lock);

  redis_engine_unref (engine);
}

typedef struct
{
  Core        *core;
  RedisEngine *engine;
  GArray      *cmds;
  gboolean     reconnect;
} Resub;

static void
resub_free (Resub *resub)
{
  core_unref (resub->core);
  redis_engine_unref (resub->engine);
  g_clear_pointer (&resub->cmds, g_array_unref);
  g_free (resub);
}

/* Everything wanted is confirmed on @resub's engine (the names in
 * @refused, NameKey*, were refused by the server). */
static void
resubscribed (Resub     *resub,
              GPtrArray *refused,
              GError    *refusal)
{
  Core *core = resub->core;
  GQueue held = G_QUEUE_INIT;
  Op *op;

  g_mutex_lock (&core->lock);
  if (core->closed || core->engine != resub->engine)
    {
      g_mutex_unlock (&core->lock);
      g_clear_error (&refusal);
      return;
    }
  if (refused != NULL)
    for (guint i = 0; i < refused->len; i++)
      {
        Cmd *cmd = g_ptr_array_index (refused, i);

        wanted_remove_locked (core, cmd->kind, cmd->name);
      }
  held = core->held;
  g_queue_init (&core->held);
  for (GList *l = held.head; l != NULL; l = l->next)
    unhold_locked (l->data);
  core->attempts = 0;
  if (!core->connected)
    {
      core->connected = TRUE;
      queue_event_locked (core, ITEM_NOTIFY_CONNECTED, NULL);
    }
  if (resub->reconnect)
    queue_event_locked (core, ITEM_RESUBSCRIBED, NULL);
  g_mutex_unlock (&core->lock);

  while ((op = g_queue_pop_head (&held)) != NULL)
    {
      GError *error = NULL;

      /* A held request fails if the server refused one of its names. */
      for (guint i = 0; refused != NULL && i < refused->len && error == NULL; i++)
        {
          Cmd *cmd = g_ptr_array_index (refused, i);

          for (guint j = 0; j < op->names->len && error == NULL; j++)
            if (cmd->kind == op->kind && name_equal (cmd->name, g_ptr_array_index (op->names, j)))
              error = g_error_copy (refusal);
        }
      op_return (op, error);
      op_unref (op);
    }
  g_clear_error (&refusal);
}

static void
resub_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  Resub *resub = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) replies = g_task_propagate_pointer (G_TASK (result), &error);

  if (replies != NULL)
    {
      g_autoptr(GPtrArray) refused = g_ptr_array_new ();
      g_autoptr(GPtrArray) refused_cmds = g_ptr_array_new ();
      GError *refusal = NULL;

      if (check_confirmations (resub->cmds, replies, refused, &refusal, &error))
        {
          for (guint i = 0; i < refused->len; i++)
            for (guint j = 0; j < resub->cmds->len; j++)
              if (g_array_index (resub->cmds, Cmd, j).name == g_ptr_array_index (refused, i))
                g_ptr_array_add (refused_cmds, &g_array_index (resub->cmds, Cmd, j));
          resubscribed (resub, refused_cmds, refusal);
          resub_free (resub);
          return;
        }
    }

  /* Lost (the closed handler reconnects), or not confirmed: try again on
   * a new connection. */
  redis_engine_close (resub->engine, g_steal_pointer (&error));
  resub_free (resub);
}

static void
connect_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      data)
{
  Resub *resub = data;
  Core *core = resub->core;
  GError *error = NULL;
  GQueue finished = G_QUEUE_INIT;
  gboolean first;
  Op *op;

  redis_engine_connect_finish (resub->engine, result, &error);

  g_mutex_lock (&core->lock);
  first = !core->init_done;
  if (error == NULL && (core->closed || core->engine != resub->engine))
    error = core->closed ? closed_error () :
              g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                   "The connection was lost right after it was made");
  if (error != NULL)
    {
      if (!first && !core->closed)
        queue_event_locked (core, ITEM_RECONNECT_FAILED, g_error_copy (error));
      g_mutex_unlock (&core->lock);
      if (first)
        redis_init_once_complete (&core->init, error);
      g_error_free (error);
      resub_free (resub);
      return;
    }

  core->init_done = TRUE;
  core->engine_up = TRUE;
  core->ask_stale = FALSE;
  resub->reconnect = core->ever_connected;
  core->ever_connected = TRUE;

  /* The snapshot, and the outbox opens in the same step: requests made
   * from now on are written after the resubscribe. */
  resub->cmds = cmds_new ();
  for (guint k = 0; k < G_N_ELEMENTS (core->wanted); k++)
    {
      GHashTableIter iter;
      gpointer key;

      g_hash_table_iter_init (&iter, core->wanted[k]);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        cmds_add (resub->cmds, TRUE, k, key);
    }
  for (GList *l = core->outbox.head, *next; l != NULL; l = next)
    {
      op = l->data;
      next = l->next;
      if (op->type == OP_PING)
        continue;
      g_queue_delete_link (&core->outbox, l);
      if (op->type == OP_SUBSCRIBE)
        hold_locked (core, op);
      else
        g_queue_push_tail (&finished, op);
    }
  core->ready = TRUE;
  schedule_flush_locked (core);
  g_mutex_unlock (&core->lock);

  /* Nothing to subscribe to: connected now, before init returns. */
  if (resub->cmds->len == 0)
    resubscribed (resub, NULL, NULL);
  if (first)
    redis_init_once_complete (&core->init, NULL);
  while ((op = g_queue_pop_head (&finished)) != NULL)
    {
      op_return (op, NULL);
      op_unref (op);
    }

  if (resub->cmds->len == 0)
    resub_free (resub);
  else
    submit_cmds (core, resub->engine, resub->cmds, resub_done_cb, resub);
}

/* On the I/O thread: a new connection, with the current credentials. */
static void
connect_engine (Core *core)
{
  RedisCredentials *credentials;
  RedisEngine *engine;
  Resub *resub;

  g_mutex_lock (&core->lock);
  credentials = redis_credentials_ref (core->credentials);
  g_mutex_unlock (&core->lock);
  engine = redis_credentials_engine_new (credentials, core->options, redis_worker_get_context ());
  redis_credentials_unref (credentials);

  redis_engine_set_push_func (engine, push_cb, core_ref (core), (GDestroyNotify) core_unref);
  redis_engine_set_closed_func (engine, engine_closed_cb, core_ref (core), (GDestroyNotify) core_unref);

  g_mutex_lock (&core->lock);
  if (core->closed)
    {
      g_mutex_unlock (&core->lock);
      redis_engine_close (engine, NULL);
      redis_engine_unref (engine);
      return;
    }
  core->engine = redis_engine_ref (engine);
  core->engine_up = FALSE;
  core->ready = FALSE;
  g_hash_table_remove_all (core->shard_unsubs_in_flight);
  g_mutex_unlock (&core->lock);

  resub = g_new0 (Resub, 1);
  resub->core = core_ref (core);
  resub->engine = engine;   /* our reference */
  redis_engine_connect_async (engine, NULL, connect_cb, resub);
}

static gboolean
connect_engine_cb (gpointer data)
{
  connect_engine (data);
  return G_SOURCE_REMOVE;
}

/* Any thread, once per request: the provider's answer (see
 * redis-credentials-private.h). */
static void
provider_done (gpointer      data,
               guint         index,
               const char   *username,
               const char   *password,
               const GError *error)
{
  Core *core = data;
  RedisCredentials *credentials;
  gboolean first;

  if (error == NULL)
    {
      g_mutex_lock (&core->lock);
      credentials = redis_credentials_ref (core->credentials);
      core->asked = TRUE;
      g_mutex_unlock (&core->lock);
      /* They become the current ones: for a pool's subscriber, the pool's. */
      redis_credentials_set (credentials, username, password);
      redis_credentials_unref (credentials);
      /* From the I/O thread, whatever thread answered. */
      redis_worker_invoke (connect_engine_cb, core_ref (core), (GDestroyNotify) core_unref);
      return;
    }

  /* A failed attempt, as one refused by AUTH: back off, ask again. */
  g_mutex_lock (&core->lock);
  first = !core->init_done;
  if (!first && !core->closed)
    {
      queue_event_locked (core, ITEM_RECONNECT_FAILED, g_error_copy (error));
      schedule_retry_locked (core);
    }
  g_mutex_unlock (&core->lock);
  if (first)
    redis_init_once_complete (&core->init, error);
}

/* On the I/O thread: the next connect. With a credentials provider, ask
 * it first; the connect follows its answer (provider_done()). */
static void
start_engine (Core *core)
{
  RedisCredentials *credentials;
  gboolean stale;

  /* Offline after the first connect: wait for core_network_changed(). */
  g_mutex_lock (&core->lock);
  if (core->closed || (core->init_done && !redis_netmon_get_reachable (core->netmon)))
    {
      g_mutex_unlock (&core->lock);
      return;
    }
  credentials = redis_credentials_ref (core->credentials);
  stale = core->ask_stale;
  core->asked = FALSE;
  g_mutex_unlock (&core->lock);

  if (!redis_credentials_ask (credentials, provider_done, core_ref (core),
                              (GDestroyNotify) core_unref, 0, stale))
    connect_engine (core);
  redis_credentials_unref (credentials);
}

static gboolean
start_engine_cb (gpointer data)
{
  start_engine (data);
  return G_SOURCE_REMOVE;
}

/* I/O thread: the network reaches the server again: reconnect at once,
 * the backoff reset. */
static gboolean
network_back_cb (gpointer data)
{
  Core *core = data;
  gboolean start;

  g_mutex_lock (&core->lock);
  start = !core->closed && core->init_done && core->engine == NULL;
  if (start)
    {
      if (core->retry_source != NULL)
        {
          g_source_destroy (core->retry_source);
          g_clear_pointer (&core->retry_source, g_source_unref);
        }
      core->attempts = 0;
    }
  g_mutex_unlock (&core->lock);

  if (start)
    start_engine (core);
  return G_SOURCE_REMOVE;
}

/* The monitor's context (redis-netmon.c). Going offline needs nothing:
 * retries are no longer scheduled or started. */
static void
core_network_changed (gboolean reachable,
                      gpointer data)
{
  if (reachable)
    redis_worker_invoke (network_back_cb, core_ref (data), (GDestroyNotify) core_unref);
}

/* Any thread: no more connections, requests fail with CLOSED. */
static void
core_close (Core *core)
{
  GQueue ops = G_QUEUE_INIT;
  RedisEngine *engine;
  GSource *retry, *deliver;
  Op *op;

  g_mutex_lock (&core->lock);
  if (core->closed)
    {
      g_mutex_unlock (&core->lock);
      return;
    }
  core->closed = TRUE;
  g_atomic_int_inc (&core->removals);
  engine = g_steal_pointer (&core->engine);
  core->ready = FALSE;
  core->connected = FALSE;
  ops = core->outbox;
  g_queue_init (&core->outbox);
  while ((op = g_queue_pop_head (&core->held)) != NULL)
    {
      unhold_locked (op);
      g_queue_push_tail (&ops, op);
    }
  retry = g_steal_pointer (&core->retry_source);
  deliver = g_steal_pointer (&core->deliver_source);
  g_mutex_unlock (&core->lock);

  if (retry != NULL)
    {
      g_source_destroy (retry);
      g_source_unref (retry);
    }
  if (deliver != NULL)
    {
      g_source_destroy (deliver);
      g_source_unref (deliver);
    }
  while ((op = g_queue_pop_head (&ops)) != NULL)
    {
      op_return (op, closed_error ());
      op_unref (op);
    }
  if (engine != NULL)
    {
      redis_engine_close (engine, NULL);
      redis_engine_unref (engine);
    }
}

/* ---- GObject ------------------------------------------------------------ */

struct _RedisSubscriber
{
  GObject  parent_instance;
  Core    *core;
  char    *uri;         /* until constructed() */
  GError  *uri_error;
};

static void initable_iface_init (GInitableIface *iface);
static void async_initable_iface_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (RedisSubscriber, redis_subscriber, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE, async_initable_iface_init))

#define CORE_FIELD(f) G_STRUCT_OFFSET (Core, f)

/* The subscriber's own URI parameters, after the connection's. */
static const RedisOptionsParam subscriber_params[] = {
  { .name = "backoff_initial", .parse = redis_options_param_duration, .offset = CORE_FIELD (backoff_initial_ms), .min = 1 },
  { .name = "backoff_max", .parse = redis_options_param_duration, .offset = CORE_FIELD (backoff_max_ms), .min = 1 },
  { NULL }
};

#undef CORE_FIELD

static void
redis_subscriber_constructed (GObject *object)
{
  RedisSubscriber *self = REDIS_SUBSCRIBER (object);

  G_OBJECT_CLASS (redis_subscriber_parent_class)->constructed (object);

  if (self->uri != NULL)
    {
      redis_options_parse_uri_with_params (self->core->options, self->uri, subscriber_params,
                                           self->core, &self->uri_error);
      /* It may hold a password: keep only the parsed options. */
      redis_options_clear_secret (&self->uri);
    }
  if (self->core->backoff_max_ms < self->core->backoff_initial_ms)
    self->core->backoff_max_ms = self->core->backoff_initial_ms;
}

static void
redis_subscriber_dispose (GObject *object)
{
  RedisSubscriber *self = REDIS_SUBSCRIBER (object);
  RedisCredentials *credentials;
  RedisNetmon *netmon;

  core_close (self->core);
  /* It holds a reference to the core. */
  g_mutex_lock (&self->core->lock);
  netmon = self->core->netmon;
  credentials = self->core->credentials_shared ? NULL : self->core->credentials;
  if (credentials != NULL)
    redis_credentials_ref (credentials);
  g_mutex_unlock (&self->core->lock);
  redis_netmon_stop (netmon);
  /* Frees the provider's data now, as a pool's dispose does. */
  if (credentials != NULL)
    {
      redis_credentials_drop_provider (credentials, self->core);
      redis_credentials_unref (credentials);
    }

  G_OBJECT_CLASS (redis_subscriber_parent_class)->dispose (object);
}

static void
redis_subscriber_finalize (GObject *object)
{
  RedisSubscriber *self = REDIS_SUBSCRIBER (object);

  core_unref (self->core);
  redis_options_clear_secret (&self->uri);
  g_clear_error (&self->uri_error);

  G_OBJECT_CLASS (redis_subscriber_parent_class)->finalize (object);
}

static void
redis_subscriber_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  RedisSubscriber *self = REDIS_SUBSCRIBER (object);

  switch (prop_id)
    {
    case PROP_URI:
      g_value_take_string (value, redis_options_to_uri (self->core->options));
      break;
    case PROP_CONNECTED:
      g_value_set_boolean (value, redis_subscriber_get_connected (self));
      break;
    case PROP_MAX_PENDING_MESSAGES:
      g_value_set_uint (value, redis_subscriber_get_max_pending_messages (self));
      break;
    case PROP_MESSAGES_DROPPED:
      g_value_set_uint64 (value, redis_subscriber_get_messages_dropped (self));
      break;
    case PROP_BACKOFF_INITIAL:
      g_value_set_uint (value, self->core->backoff_initial_ms);
      break;
    case PROP_BACKOFF_MAX:
      g_value_set_uint (value, self->core->backoff_max_ms);
      break;
    case PROP_NETWORK_MONITOR:
      g_value_set_object (value, self->core->network_monitor != NULL ? self->core->network_monitor :
                                   g_network_monitor_get_default ());
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        redis_options_get_property (self->core->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_subscriber_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  RedisSubscriber *self = REDIS_SUBSCRIBER (object);

  switch (prop_id)
    {
    case PROP_URI:
      redis_options_clear_secret (&self->uri);
      self->uri = g_value_dup_string (value);
      break;
    case PROP_MAX_PENDING_MESSAGES:
      redis_subscriber_set_max_pending_messages (self, g_value_get_uint (value));
      break;
    case PROP_BACKOFF_INITIAL:
      self->core->backoff_initial_ms = g_value_get_uint (value);
      break;
    case PROP_BACKOFF_MAX:
      self->core->backoff_max_ms = g_value_get_uint (value);
      break;
    case PROP_NETWORK_MONITOR:
      g_set_object (&self->core->network_monitor, g_value_get_object (value));
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        redis_options_set_property (self->core->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_subscriber_class_init (RedisSubscriberClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = redis_subscriber_constructed;
  object_class->dispose = redis_subscriber_dispose;
  object_class->finalize = redis_subscriber_finalize;
  object_class->get_property = redis_subscriber_get_property;
  object_class->set_property = redis_subscriber_set_property;

  /**
   * RedisSubscriber:uri:
   *
   * A `redis://`, `rediss://` or `unix://` URI that sets the connection
   * options at once, as [property@Redis.Connection:uri] does, plus
   * `backoff_initial` and `backoff_max`. Read back, it describes the
   * options without the password.
   */
  properties[PROP_URI] =
    g_param_spec_string ("uri", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisSubscriber:connected: (getter get_connected)
   *
   * Whether the connection is up and every subscription confirmed on
   * it. Notified in the subscriber's main context.
   */
  properties[PROP_CONNECTED] =
    g_param_spec_boolean ("connected", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * RedisSubscriber:max-pending-messages: (getter get_max_pending_messages) (setter set_max_pending_messages)
   *
   * How many received messages may wait for delivery (the main loop of
   * the subscriber's context being busy). Past that, the oldest waiting
   * message is dropped and counted in
   * [property@Redis.Subscriber:messages-dropped].
   */
  properties[PROP_MAX_PENDING_MESSAGES] =
    g_param_spec_uint ("max-pending-messages", NULL, NULL,
                       1, G_MAXUINT, REDIS_SUBSCRIBER_DEFAULT_MAX_PENDING_MESSAGES,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * RedisSubscriber:messages-dropped: (getter get_messages_dropped)
   *
   * How many received messages were dropped because
   * [property@Redis.Subscriber:max-pending-messages] were waiting already.
   * Notified (at most once per delivery batch) in the subscriber's main
   * context.
   */
  properties[PROP_MESSAGES_DROPPED] =
    g_param_spec_uint64 ("messages-dropped", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * RedisSubscriber:backoff-initial:
   *
   * The delay before the first reconnect attempt, in milliseconds; each
   * failed attempt doubles it, up to [property@Redis.Subscriber:backoff-max],
   * with jitter (as a pool's connections).
   */
  properties[PROP_BACKOFF_INITIAL] =
    g_param_spec_uint ("backoff-initial", NULL, NULL, 1, G_MAXUINT,
                       REDIS_POOL_DEFAULT_BACKOFF_INITIAL,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisSubscriber:backoff-max:
   *
   * The longest delay between reconnect attempts, in milliseconds.
   */
  properties[PROP_BACKOFF_MAX] =
    g_param_spec_uint ("backoff-max", NULL, NULL, 1, G_MAXUINT,
                       REDIS_POOL_DEFAULT_BACKOFF_MAX,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisSubscriber:network-monitor:
   *
   * The [iface@Gio.NetworkMonitor] that tells whether the server can be
   * reached, as [property@Redis.Pool:network-monitor]; %NULL (the
   * default) uses [func@Gio.NetworkMonitor.get_default]. While it says
   * that the server's address cannot be reached, a subscriber that lost
   * its connection makes no reconnect attempts; when the address is
   * reachable again it reconnects at once, its backoff reset. Loopback
   * servers, Unix sockets and Sentinel discovery are always considered
   * reachable. The first connect (initialization) is always attempted.
   *
   * A subscriber made by [method@Redis.Pool.create_subscriber] uses the
   * pool's.
   */
  properties[PROP_NETWORK_MONITOR] =
    g_param_spec_object ("network-monitor", NULL, NULL, G_TYPE_NETWORK_MONITOR,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /* The connection options, as RedisConnection has them. */
  /**
   * RedisSubscriber:host:
   *
   * The host name or IP address of the server. Default `127.0.0.1`.
   */
  /**
   * RedisSubscriber:port:
   *
   * The TCP port of the server. Default 6379.
   */
  /**
   * RedisSubscriber:socket-path:
   *
   * The path of a Unix socket to connect to instead of TCP.
   */
  /**
   * RedisSubscriber:database:
   *
   * The database selected with SELECT after connecting. Default 0.
   */
  /**
   * RedisSubscriber:username:
   *
   * The ACL user name for AUTH, or %NULL for the default user.
   */
  /**
   * RedisSubscriber:password:
   *
   * The password for AUTH. Write-only: it is never readable, logged, or
   * printed in an error message or a URI.
   */
  /**
   * RedisSubscriber:client-name:
   *
   * A name set with CLIENT SETNAME after connecting, visible in
   * `CLIENT LIST`.
   */
  /**
   * RedisSubscriber:tls:
   *
   * Whether to speak TLS. Set by `rediss://` URIs.
   */
  /**
   * RedisSubscriber:tls-ca-file:
   *
   * A PEM file of CA certificates to verify the server with, instead of the
   * system's.
   */
  /**
   * RedisSubscriber:tls-certificate-file:
   *
   * A PEM client certificate for servers that require one.
   */
  /**
   * RedisSubscriber:tls-key-file:
   *
   * The private key of [property@Redis.Connection:tls-certificate-file];
   * %NULL when the certificate file holds the key too.
   */
  /**
   * RedisSubscriber:tls-validation-flags:
   *
   * The certificate checks that must pass. Default: all of them (chain and
   * host name). Removing checks is explicit: only the flags cleared here
   * are ignored. Each connection applies its own checks and
   * [property@Redis.Connection:tls-ca-file], also when it resumes the TLS
   * session of an earlier connection to the same server.
   */
  /**
   * RedisSubscriber:tls-server-name:
   *
   * The name the server's certificate must have, also sent as SNI, instead
   * of the host connected to; %NULL (the default) checks that host. For
   * servers reached by IP address whose certificates name hosts, as with
   * [property@Redis.Subscriber:sentinels], which announce addresses: there it
   * applies to the servers found, not to the sentinels, which are checked
   * against the hosts of their own addresses. URI parameter
   * `tls_server_name`. See the high availability guide.
   */
  /**
   * RedisSubscriber:connect-timeout:
   *
   * Milliseconds allowed for the TCP connect, the TLS handshake and the
   * AUTH/SELECT/CLIENT SETNAME handshake together; at least 1. Default
   * 5000. In a URI, `connect_timeout=` takes a duration (`500`, `500ms`,
   * `1.5s`; see [property@Redis.Connection:uri]).
   */
  /**
   * RedisSubscriber:command-timeout:
   *
   * Milliseconds allowed for each call from submission to reply; 0 for no
   * limit. Blocking commands get their own block time on top. Default 5000.
   * In a URI, `command_timeout=` takes a duration (`500`, `500ms`, `1.5s`;
   * see [property@Redis.Connection:uri]); a value below a millisecond
   * such as `0.3` is refused rather than read as 0 (no limit).
   */
  /**
   * RedisSubscriber:stall-timeout:
   *
   * Milliseconds of silence from the server, once a written call is past its
   * deadline, after which the connection is considered dead (blackholed or
   * half-open) and closed as lost; a pool then replaces it. 0 turns stall
   * detection off. Default 10000. In a URI, `stall_timeout=` takes a
   * duration (see [property@Redis.Connection:uri]).
   */
  /**
   * RedisSubscriber:health-check-interval:
   *
   * Milliseconds of idleness (nothing in flight, nothing received) after
   * which a connection sends a PING, so that a vanished peer is noticed
   * (through [property@Redis.Connection:stall-timeout]) before a user command meets it.
   * 0 turns it off. Default 30000. In a URI, `health_check_interval=`
   * takes a duration (see [property@Redis.Connection:uri]).
   */
  /**
   * RedisSubscriber:max-reply-bytes:
   *
   * The largest reply accepted, in bytes as they come on the wire (RESP
   * framing included: a bulk string of n bytes counts its length line and
   * both CRLFs); a larger one fails with %REDIS_ERROR_REPLY_TOO_LARGE and
   * closes the connection. Default 512 MiB.
   */
  /**
   * RedisSubscriber:max-elements:
   *
   * The largest array reply accepted, in elements. Default 16777216.
   */
  /**
   * RedisSubscriber:max-line-length:
   *
   * The longest status, error or header line accepted, in bytes. Default
   * 65536.
   */
  /**
   * RedisSubscriber:max-depth:
   *
   * The deepest nesting of arrays accepted in a reply (`*1\r\n:1\r\n` is
   * one level); a deeper reply fails with %REDIS_ERROR_REPLY_TOO_LARGE and
   * closes the connection. Real replies nest a few levels (`COMMAND` 8,
   * `COMMAND DOCS` 12, a Lua table as deep as the script makes it).
   * From 1 to 1024; default 64.
   */
  /**
   * RedisSubscriber:sentinels:
   *
   * The Sentinel processes that know where the server is, as `host:port`
   * (`[address]:port` for IPv6; the port defaults to 26379), in the order
   * to try them. When set, [property@Redis.Subscriber:host] and
   * [property@Redis.Subscriber:port] are not used: every connect (and every
   * reconnect) asks the sentinels, in turn and each within a short
   * deadline (1 s, or connect-timeout if shorter), for the address of
   * [property@Redis.Subscriber:master-name]'s primary (`SENTINEL
   * get-master-addr-by-name`) or of one of its replicas (`SENTINEL
   * replicas`, see [property@Redis.Subscriber:role]); the sentinel that answered is
   * asked first next time. The server found must then answer `ROLE` with
   * the role asked for, or the connection is closed and discovery runs
   * again on the next attempt. When no sentinel answers, the connect fails
   * with %REDIS_ERROR_CONNECT_FAILED naming every sentinel tried and why.
   *
   * The URI form is
   * `redis+sentinel://[user[:password]@]host[:port][,host[:port]…]/master-name[/db][?query]`,
   * or `rediss+sentinel://…` for TLS (to the sentinels and to the servers
   * they name, with the same settings; see [property@Redis.Subscriber:tls-server-name]):
   * the user and password are the server's, the sentinels' are the query
   * parameters `sentinel_username` and `sentinel_password`, and
   * `role=primary` or `role=replica` selects the role.
   */
  /**
   * RedisSubscriber:master-name:
   *
   * The name the sentinels monitor the primary under (`sentinel monitor
   * <master-name> …`). Required with [property@Redis.Subscriber:sentinels].
   */
  /**
   * RedisSubscriber:sentinel-username:
   *
   * The user name sent to the sentinels with `AUTH` (their ACL), or %NULL.
   */
  /**
   * RedisSubscriber:sentinel-password:
   *
   * The password sent to the sentinels with `AUTH`, or %NULL. Write-only:
   * it is never readable, logged or part of a message.
   */
  /**
   * RedisSubscriber:role:
   *
   * With [property@Redis.Subscriber:sentinels], whether connections go to the
   * primary or to a replica (picked at random among those the sentinel
   * reports up). Default %REDIS_SERVER_ROLE_PRIMARY.
   */
  redis_options_install_properties (object_class, PROP_FIRST_OPTION,
                                    &properties[PROP_FIRST_OPTION]);
  g_object_class_install_properties (object_class, PROP_FIRST_OPTION, properties);

  /**
   * RedisSubscriber::message:
   * @self: the subscriber
   * @message: the message
   *
   * Emitted for each message received for an active subscription, in
   * order, in the subscriber's main context. The detail is the name the
   * application subscribed with: the channel for channel and shard
   * messages, the pattern for pattern messages, so that
   * `g_signal_connect (sub, "message::news", …)` sees only the messages
   * of "news". (A detail exists only for names some code has used as one:
   * names arriving from the network never create quarks.)
   */
  signals[MESSAGE] =
    g_signal_new ("message", G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED,
                  0, NULL, NULL, g_cclosure_marshal_VOID__BOXED,
                  G_TYPE_NONE, 1, REDIS_TYPE_MESSAGE);
  g_signal_set_va_marshaller (signals[MESSAGE], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__BOXEDv);

  /**
   * RedisSubscriber::connection-lost:
   * @self: the subscriber
   * @error: why
   *
   * Emitted once when the connection is lost; messages published from
   * then on until [signal@Redis.Subscriber::resubscribed] are missed. The
   * subscriber reconnects by itself.
   */
  signals[CONNECTION_LOST] =
    g_signal_new ("connection-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);

  /**
   * RedisSubscriber::resubscribed:
   * @self: the subscriber
   *
   * Emitted once after a reconnect, when the server has confirmed every
   * subscription again. Messages published since
   * [signal@Redis.Subscriber::connection-lost] may be lost: re-read the
   * state they described.
   */
  signals[RESUBSCRIBED] =
    g_signal_new ("resubscribed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * RedisSubscriber::reconnect-failed:
   * @self: the subscriber
   * @error: why: %REDIS_ERROR_CONNECT_FAILED, %REDIS_ERROR_AUTH_FAILED…
   *
   * Emitted when a reconnect attempt fails; the next one comes after a
   * longer backoff.
   */
  signals[RECONNECT_FAILED] =
    g_signal_new ("reconnect-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
redis_subscriber_init (RedisSubscriber *self)
{
  self->core = core_new ();
  g_weak_ref_set (&self->core->object, self);
}

/* ---- initialization ----------------------------------------------------- */

static void
redis_subscriber_init_async (GAsyncInitable      *initable,
                             int                  io_priority,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  RedisSubscriber *self = REDIS_SUBSCRIBER (initable);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, redis_subscriber_init_async);
  g_task_set_name (task, "[redispool] subscriber init");

  if (!redis_init_once_begin (&self->core->init, task))
    return;

  if (self->uri_error != NULL)
    {
      redis_init_once_complete (&self->core->init, self->uri_error);
      return;
    }

  /* The options are frozen from here on. */
  {
    RedisNetmon *netmon = redis_netmon_new (self->core->network_monitor, self->core->options,
                                            core_network_changed, core_ref (self->core),
                                            (GDestroyNotify) core_unref);

    g_mutex_lock (&self->core->lock);
    self->core->netmon = netmon;
    if (self->core->credentials == NULL)
      self->core->credentials = redis_credentials_new (self->core->options);
    g_mutex_unlock (&self->core->lock);
  }
  redis_worker_invoke (start_engine_cb, core_ref (self->core), (GDestroyNotify) core_unref);
}

static gboolean
redis_subscriber_init_finish (GAsyncInitable  *initable,
                              GAsyncResult    *result,
                              GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, initable), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
async_initable_iface_init (GAsyncInitableIface *iface)
{
  iface->init_async = redis_subscriber_init_async;
  iface->init_finish = redis_subscriber_init_finish;
}

static void
initable_iface_init (GInitableIface *iface)
{
  iface->init = redis_sync_initable_init;
}

RedisSubscriber *
redis_subscriber_new_for_pool (const RedisOptions *options,
                               guint               backoff_initial_ms,
                               guint               backoff_max_ms,
                               GNetworkMonitor    *network_monitor,
                               RedisCredentials   *credentials)
{
  RedisSubscriber *self = g_object_new (REDIS_TYPE_SUBSCRIBER,
                                        "backoff-initial", MAX (backoff_initial_ms, 1),
                                        "backoff-max", MAX (backoff_max_ms, 1),
                                        "network-monitor", network_monitor,
                                        NULL);

  /* Not initialized yet: nobody reads the options. */
  redis_options_free (self->core->options);
  self->core->options = redis_options_copy (options);
  self->core->credentials = redis_credentials_ref (credentials);
  self->core->credentials_shared = TRUE;
  return self;
}

void
redis_subscriber_set_shard_lost_func (RedisSubscriber              *self,
                                      RedisSubscriberShardLostFunc  func,
                                      gpointer                      data,
                                      GDestroyNotify                destroy)
{
  Core *core = self->core;

  g_mutex_lock (&core->lock);
  g_assert (core->shard_lost_func == NULL);
  core->shard_lost_func = func;
  core->shard_lost_data = data;
  core->shard_lost_destroy = destroy;
  g_mutex_unlock (&core->lock);
}

/* ---- public API --------------------------------------------------------- */

/**
 * redis_subscriber_new_sync:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects a subscriber, blocking the calling thread. Signals are emitted
 * in the thread-default main context of the calling thread. To set
 * options as properties, use g_initable_new() with %REDIS_TYPE_SUBSCRIBER.
 *
 * Returns: (transfer full): a connected subscriber, or %NULL with @error set
 */
RedisSubscriber *
redis_subscriber_new_sync (const char    *uri,
                           GCancellable  *cancellable,
                           GError       **error)
{
  return g_initable_new (REDIS_TYPE_SUBSCRIBER, cancellable, error, "uri", uri, NULL);
}

/**
 * redis_subscriber_new_async:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when connected or failed
 * @user_data: data for @callback
 *
 * Connects a subscriber without blocking. Signals are emitted in the
 * thread-default main context of the calling thread. Finish with
 * [ctor@Redis.Subscriber.new_finish].
 */
void
redis_subscriber_new_async (const char          *uri,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_async_initable_new_async (REDIS_TYPE_SUBSCRIBER, G_PRIORITY_DEFAULT, cancellable,
                              callback, user_data, "uri", uri, NULL);
}

/**
 * redis_subscriber_new_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Redis.Subscriber.new_async].
 *
 * Returns: (transfer full): a connected subscriber, or %NULL with @error set
 */
RedisSubscriber *
redis_subscriber_new_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_autoptr(GObject) source = g_async_result_get_source_object (result);
  GObject *object;

  object = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error);
  return object != NULL ? REDIS_SUBSCRIBER (object) : NULL;
}

/* Any thread: starts a request (names taken, NameKey*). */
static void
start_request (RedisSubscriber        *self,
               OpType                  type,
               RedisSubscriptionKind   kind,
               GPtrArray              *names,
               GTask                  *task)
{
  Core *core = self->core;
  Op *op = op_new (core, type, kind, task);

  if (names != NULL)
    {
      g_ptr_array_extend_and_steal (op->names, names);
      names = NULL;
    }
  if (op->cancellable != NULL)
    op->cancel_id = g_cancellable_connect (op->cancellable, G_CALLBACK (op_cancelled_cb),
                                           op_ref (op), (GDestroyNotify) op_unref);

  g_mutex_lock (&core->lock);
  if (core->closed)
    {
      g_mutex_unlock (&core->lock);
      op_return (op, closed_error ());
      op_unref (op);
      return;
    }

  if (type == OP_UNSUBSCRIBE && op->names->len == 0)
    {
      GHashTableIter iter;
      gpointer key;

      g_hash_table_iter_init (&iter, core->wanted[kind]);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        g_ptr_array_add (op->names, name_copy (key));
      if (op->names->len == 0)
        {
          g_mutex_unlock (&core->lock);
          op_return (op, NULL);
          op_unref (op);
          return;
        }
    }

  for (guint i = 0; i < op->names->len; i++)
    {
      NameKey *name = g_ptr_array_index (op->names, i);

      if (type == OP_SUBSCRIBE && !g_hash_table_contains (core->wanted[kind], name))
        g_hash_table_add (core->wanted[kind], name_copy (name));
      else if (type == OP_UNSUBSCRIBE)
        wanted_remove_locked (core, kind, name);
    }
  g_queue_push_tail (&core->outbox, op);
  schedule_flush_locked (core);
  g_mutex_unlock (&core->lock);
}

static gboolean
check_init (RedisSubscriber *self,
            GTask           *task)
{
  if (redis_init_once_get_state (&self->core->init) != REDIS_INIT_NONE)
    return TRUE;
  g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "The subscriber is not initialized (use g_initable_init() or "
                           "g_async_initable_init_async())");
  return FALSE;
}

static void
request_strv (RedisSubscriber       *self,
              OpType                 type,
              RedisSubscriptionKind  kind,
              const char * const    *names,
              GCancellable          *cancellable,
              GAsyncReadyCallback    callback,
              gpointer               user_data,
              gpointer               source_tag)
{
  g_autoptr(GTask) task = NULL;
  GPtrArray *keys;

  g_return_if_fail (REDIS_IS_SUBSCRIBER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  if (type == OP_SUBSCRIBE && (names == NULL || names[0] == NULL))
    {
      g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                               "Subscribing needs at least one name");
      return;
    }
  if (!check_init (self, task))
    return;

  keys = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; names != NULL && names[i] != NULL; i++)
    g_ptr_array_add (keys, name_new (names[i], strlen (names[i])));
  start_request (self, type, kind, keys, task);
}

static void
request_bytes (RedisSubscriber       *self,
               OpType                 type,
               RedisSubscriptionKind  kind,
               GBytes               **names,
               gsize                  n_names,
               GCancellable          *cancellable,
               GAsyncReadyCallback    callback,
               gpointer               user_data,
               gpointer               source_tag)
{
  g_autoptr(GTask) task = NULL;
  GPtrArray *keys;

  g_return_if_fail (REDIS_IS_SUBSCRIBER (self));
  g_return_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD);
  g_return_if_fail (names != NULL || n_names == 0);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  if (type == OP_SUBSCRIBE && n_names == 0)
    {
      g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                               "Subscribing needs at least one name");
      return;
    }
  for (gsize i = 0; i < n_names; i++)
    if (names[i] == NULL || g_bytes_get_size (names[i]) > REDIS_MAX_ARGUMENT_BYTES)
      {
        g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                                 "Name %" G_GSIZE_FORMAT " is missing or too long", i);
        return;
      }
  if (!check_init (self, task))
    return;

  keys = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < n_names; i++)
    {
      gsize len;
      const char *data = g_bytes_get_data (names[i], &len);

      g_ptr_array_add (keys, name_new (data != NULL ? data : "", len));
    }
  start_request (self, type, kind, keys, task);
}

static gboolean
request_finish (RedisSubscriber  *self,
                GAsyncResult     *result,
                gpointer          source_tag,
                GError          **error)
{
  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The sync variants run the async one on a private main context of the
 * calling thread (the I/O itself is on the I/O thread). */
#define RUN_SYNC(self, finish, async_call)                                  \
  G_STMT_START {                                                            \
    RedisSyncCall _sync;                                                    \
    gboolean _ret;                                                          \
    redis_sync_call_begin (&_sync);                                         \
    async_call;                                                             \
    redis_sync_call_wait (&_sync);                                          \
    _ret = finish (self, _sync.result, error);                              \
    redis_sync_call_end (&_sync);                                           \
    return _ret;                                                            \
  } G_STMT_END

#define DEFINE_REQUEST(name, TYPE, KIND)                                               \
void                                                                                  \
redis_subscriber_##name##_async (RedisSubscriber      *self,                          \
                                 const char * const   *names,                         \
                                 GCancellable         *cancellable,                   \
                                 GAsyncReadyCallback   callback,                      \
                                 gpointer              user_data)                     \
{                                                                                     \
  request_strv (self, TYPE, KIND, names, cancellable, callback, user_data,            \
                redis_subscriber_##name##_async);                                     \
}                                                                                     \
                                                                                      \
gboolean                                                                              \
redis_subscriber_##name##_finish (RedisSubscriber  *self,                             \
                                  GAsyncResult     *result,                           \
                                  GError          **error)                            \
{                                                                                     \
  return request_finish (self, result, redis_subscriber_##name##_async, error);       \
}                                                                                     \
                                                                                      \
gboolean                                                                              \
redis_subscriber_##name##_sync (RedisSubscriber     *self,                            \
                                const char * const  *names,                           \
                                GCancellable        *cancellable,                     \
                                GError             **error)                           \
{                                                                                     \
  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), FALSE);                           \
  RUN_SYNC (self, redis_subscriber_##name##_finish,                                   \
            redis_subscriber_##name##_async (self, names, cancellable,                \
                                             redis_sync_call_store, &_sync));         \
}

/* The binary-safe forms: one per operation, for every kind. */
#define DEFINE_BYTES_REQUEST(name, TYPE)                                               \
void                                                                                  \
redis_subscriber_##name##_bytes_async (RedisSubscriber       *self,                   \
                                       RedisSubscriptionKind  kind,                   \
                                       GBytes               **names,                  \
                                       gsize                  n_names,                \
                                       GCancellable          *cancellable,            \
                                       GAsyncReadyCallback    callback,               \
                                       gpointer               user_data)              \
{                                                                                     \
  request_bytes (self, TYPE, kind, names, n_names, cancellable, callback, user_data,  \
                 redis_subscriber_##name##_bytes_async);                              \
}                                                                                     \
                                                                                      \
gboolean                                                                              \
redis_subscriber_##name##_bytes_finish (RedisSubscriber  *self,                       \
                                        GAsyncResult     *result,                     \
                                        GError          **error)                      \
{                                                                                     \
  return request_finish (self, result, redis_subscriber_##name##_bytes_async, error); \
}                                                                                     \
                                                                                      \
gboolean                                                                              \
redis_subscriber_##name##_bytes_sync (RedisSubscriber        *self,                   \
                                      RedisSubscriptionKind   kind,                   \
                                      GBytes                **names,                  \
                                      gsize                   n_names,                \
                                      GCancellable           *cancellable,            \
                                      GError                **error)                  \
{                                                                                     \
  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), FALSE);                           \
  RUN_SYNC (self, redis_subscriber_##name##_bytes_finish,                             \
            redis_subscriber_##name##_bytes_async (self, kind, names, n_names,        \
                                                   cancellable,                       \
                                                   redis_sync_call_store, &_sync));   \
}

/**
 * redis_subscriber_subscribe_async:
 * @self: a [class@Redis.Subscriber]
 * @names: (array zero-terminated=1): the channels, at least one
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Subscribes to channels (`SUBSCRIBE`). Their messages are delivered from
 * the moment this is called; the call completes when the server has
 * confirmed every name. While the subscriber is reconnecting, it completes
 * when the resubscribe confirms it, or fails with
 * %REDIS_ERROR_SEND_TIMEOUT after the command timeout (the subscription
 * stays requested). Cancelling stops the waiting only: the subscription
 * is made all the same. Possible errors: %REDIS_ERROR_SERVER (the server
 * refused: nothing subscribed), %REDIS_ERROR_CLOSED,
 * %REDIS_ERROR_SEND_TIMEOUT, %REDIS_ERROR_INVALID_ARGUMENT,
 * %G_IO_ERROR_CANCELLED.
 */
/**
 * redis_subscriber_subscribe_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.subscribe_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
/**
 * redis_subscriber_subscribe_sync:
 * @self: a [class@Redis.Subscriber]
 * @names: (array zero-terminated=1): the channels, at least one
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.subscribe_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
DEFINE_REQUEST (subscribe, OP_SUBSCRIBE, REDIS_SUBSCRIPTION_KIND_CHANNEL)

/**
 * redis_subscriber_psubscribe_async:
 * @self: a [class@Redis.Subscriber]
 * @names: (array zero-terminated=1): the glob-style patterns, at least one
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Subscribes to patterns (`PSUBSCRIBE`), as
 * [method@Redis.Subscriber.subscribe_async] does to channels. The detail
 * of the [signal@Redis.Subscriber::message] signal of their messages is
 * the pattern.
 */
/**
 * redis_subscriber_psubscribe_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.psubscribe_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
/**
 * redis_subscriber_psubscribe_sync:
 * @self: a [class@Redis.Subscriber]
 * @names: (array zero-terminated=1): the glob-style patterns, at least one
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.psubscribe_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
DEFINE_REQUEST (psubscribe, OP_SUBSCRIBE, REDIS_SUBSCRIPTION_KIND_PATTERN)

/**
 * redis_subscriber_ssubscribe_async:
 * @self: a [class@Redis.Subscriber]
 * @names: (array zero-terminated=1): the shard channels, at least one
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Subscribes to shard channels (`SSUBSCRIBE`, Redis 7.0 or later; on a
 * standalone server they behave as channels published with `SPUBLISH`),
 * as [method@Redis.Subscriber.subscribe_async] does to channels.
 */
/**
 * redis_subscriber_ssubscribe_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.ssubscribe_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
/**
 * redis_subscriber_ssubscribe_sync:
 * @self: a [class@Redis.Subscriber]
 * @names: (array zero-terminated=1): the shard channels, at least one
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.ssubscribe_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
DEFINE_REQUEST (ssubscribe, OP_SUBSCRIBE, REDIS_SUBSCRIPTION_KIND_SHARD)

/**
 * redis_subscriber_unsubscribe_async:
 * @self: a [class@Redis.Subscriber]
 * @names: (nullable) (array zero-terminated=1): the channels; %NULL or
 *   empty for all of them
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Unsubscribes from channels. No message of theirs is delivered from the
 * moment this is called, even one received before. While the subscriber
 * is reconnecting it completes at once (the new connection will not
 * subscribe to them).
 */
/**
 * redis_subscriber_unsubscribe_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.unsubscribe_async].
 *
 * Returns: %TRUE once done
 */
/**
 * redis_subscriber_unsubscribe_sync:
 * @self: a [class@Redis.Subscriber]
 * @names: (nullable) (array zero-terminated=1): the channels; %NULL or
 *   empty for all of them
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.unsubscribe_async].
 *
 * Returns: %TRUE once done
 */
DEFINE_REQUEST (unsubscribe, OP_UNSUBSCRIBE, REDIS_SUBSCRIPTION_KIND_CHANNEL)

/**
 * redis_subscriber_punsubscribe_async:
 * @self: a [class@Redis.Subscriber]
 * @names: (nullable) (array zero-terminated=1): the patterns; %NULL or
 *   empty for all of them
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Unsubscribes from patterns, as
 * [method@Redis.Subscriber.unsubscribe_async] does from channels.
 */
/**
 * redis_subscriber_punsubscribe_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.punsubscribe_async].
 *
 * Returns: %TRUE once done
 */
/**
 * redis_subscriber_punsubscribe_sync:
 * @self: a [class@Redis.Subscriber]
 * @names: (nullable) (array zero-terminated=1): the patterns; %NULL or
 *   empty for all of them
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.punsubscribe_async].
 *
 * Returns: %TRUE once done
 */
DEFINE_REQUEST (punsubscribe, OP_UNSUBSCRIBE, REDIS_SUBSCRIPTION_KIND_PATTERN)

/**
 * redis_subscriber_sunsubscribe_async:
 * @self: a [class@Redis.Subscriber]
 * @names: (nullable) (array zero-terminated=1): the shard channels; %NULL
 *   or empty for all of them
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Unsubscribes from shard channels, as
 * [method@Redis.Subscriber.unsubscribe_async] does from channels.
 */
/**
 * redis_subscriber_sunsubscribe_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.sunsubscribe_async].
 *
 * Returns: %TRUE once done
 */
/**
 * redis_subscriber_sunsubscribe_sync:
 * @self: a [class@Redis.Subscriber]
 * @names: (nullable) (array zero-terminated=1): the shard channels; %NULL
 *   or empty for all of them
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.sunsubscribe_async].
 *
 * Returns: %TRUE once done
 */
DEFINE_REQUEST (sunsubscribe, OP_UNSUBSCRIBE, REDIS_SUBSCRIPTION_KIND_SHARD)

/**
 * redis_subscriber_subscribe_bytes_async:
 * @self: a [class@Redis.Subscriber]
 * @kind: what the names are
 * @names: (array length=n_names): the names, binary-safe, at least one
 * @n_names: the number of @names
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Binary-safe form of [method@Redis.Subscriber.subscribe_async],
 * [method@Redis.Subscriber.psubscribe_async] and
 * [method@Redis.Subscriber.ssubscribe_async].
 */
/**
 * redis_subscriber_subscribe_bytes_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.subscribe_bytes_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
/**
 * redis_subscriber_subscribe_bytes_sync:
 * @self: a [class@Redis.Subscriber]
 * @kind: what the names are
 * @names: (array length=n_names): the names, binary-safe, at least one
 * @n_names: the number of @names
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.subscribe_bytes_async].
 *
 * Returns: %TRUE once every name is confirmed
 */
DEFINE_BYTES_REQUEST (subscribe, OP_SUBSCRIBE)

/**
 * redis_subscriber_unsubscribe_bytes_async:
 * @self: a [class@Redis.Subscriber]
 * @kind: what the names are
 * @names: (array length=n_names) (nullable): the names, binary-safe
 * @n_names: the number of @names; 0 for every subscription of @kind
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the server has confirmed every name
 * @user_data: data for @callback
 *
 * Binary-safe form of [method@Redis.Subscriber.unsubscribe_async],
 * [method@Redis.Subscriber.punsubscribe_async] and
 * [method@Redis.Subscriber.sunsubscribe_async].
 */
/**
 * redis_subscriber_unsubscribe_bytes_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.unsubscribe_bytes_async].
 *
 * Returns: %TRUE once done
 */
/**
 * redis_subscriber_unsubscribe_bytes_sync:
 * @self: a [class@Redis.Subscriber]
 * @kind: what the names are
 * @names: (array length=n_names) (nullable): the names, binary-safe
 * @n_names: the number of @names; 0 for every subscription of @kind
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.unsubscribe_bytes_async].
 *
 * Returns: %TRUE once done
 */
DEFINE_BYTES_REQUEST (unsubscribe, OP_UNSUBSCRIBE)

/**
 * redis_subscriber_ping_async:
 * @self: a [class@Redis.Subscriber]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the server has answered
 * @user_data: data for @callback
 *
 * Sends `PING` on the subscriber's connection, which in subscribed mode
 * answers `["pong", ""]`: a round trip behind every message received
 * before it. Fails with %REDIS_ERROR_CONNECTION_LOST while reconnecting.
 */
void
redis_subscriber_ping_async (RedisSubscriber     *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (REDIS_IS_SUBSCRIBER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, redis_subscriber_ping_async);
  if (!check_init (self, task))
    return;
  start_request (self, OP_PING, REDIS_SUBSCRIPTION_KIND_CHANNEL, NULL, task);
}

/**
 * redis_subscriber_ping_finish:
 * @self: a [class@Redis.Subscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Subscriber.ping_async].
 *
 * Returns: %TRUE if the server answered
 */
gboolean
redis_subscriber_ping_finish (RedisSubscriber  *self,
                              GAsyncResult     *result,
                              GError          **error)
{
  return request_finish (self, result, redis_subscriber_ping_async, error);
}

/**
 * redis_subscriber_ping_sync:
 * @self: a [class@Redis.Subscriber]
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.Subscriber.ping_async].
 *
 * Returns: %TRUE if the server answered
 */
gboolean
redis_subscriber_ping_sync (RedisSubscriber  *self,
                            GCancellable     *cancellable,
                            GError          **error)
{
  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), FALSE);
  RUN_SYNC (self, redis_subscriber_ping_finish,
            redis_subscriber_ping_async (self, cancellable, redis_sync_call_store, &_sync));
}

/**
 * redis_subscriber_dup_subscriptions:
 * @self: a [class@Redis.Subscriber]
 * @kind: which subscriptions
 *
 * Lists the subscriptions of @kind that are requested: confirmed, or being
 * made (again, after a reconnect). A name with a NUL byte is cut there.
 *
 * Returns: (transfer full) (array zero-terminated=1): the names, in no
 *   particular order
 */
char **
redis_subscriber_dup_subscriptions (RedisSubscriber       *self,
                                    RedisSubscriptionKind  kind)
{
  GStrvBuilder *builder;
  GHashTableIter iter;
  gpointer key;
  char **strv;

  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), NULL);
  g_return_val_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD, NULL);

  builder = g_strv_builder_new ();
  g_mutex_lock (&self->core->lock);
  g_hash_table_iter_init (&iter, self->core->wanted[kind]);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_strv_builder_add (builder, ((NameKey *) key)->data);
  g_mutex_unlock (&self->core->lock);
  strv = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);
  return strv;
}

/**
 * redis_subscriber_get_connected: (get-property connected)
 * @self: a [class@Redis.Subscriber]
 *
 * Whether the connection is up and every subscription confirmed.
 *
 * Returns: %TRUE when connected
 */
gboolean
redis_subscriber_get_connected (RedisSubscriber *self)
{
  gboolean connected;

  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), FALSE);

  g_mutex_lock (&self->core->lock);
  connected = self->core->connected;
  g_mutex_unlock (&self->core->lock);
  return connected;
}

/**
 * redis_subscriber_get_max_pending_messages: (get-property max-pending-messages)
 * @self: a [class@Redis.Subscriber]
 *
 * Returns the bound on messages waiting for delivery.
 *
 * Returns: the bound
 */
guint
redis_subscriber_get_max_pending_messages (RedisSubscriber *self)
{
  guint max_pending;

  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), 0);

  g_mutex_lock (&self->core->lock);
  max_pending = self->core->max_pending;
  g_mutex_unlock (&self->core->lock);
  return max_pending;
}

/**
 * redis_subscriber_set_max_pending_messages: (set-property max-pending-messages)
 * @self: a [class@Redis.Subscriber]
 * @max_pending: the bound, at least 1
 *
 * Sets the bound on messages waiting for delivery; it applies from the
 * next message received.
 */
void
redis_subscriber_set_max_pending_messages (RedisSubscriber *self,
                                           guint            max_pending)
{
  gboolean changed;

  g_return_if_fail (REDIS_IS_SUBSCRIBER (self));
  g_return_if_fail (max_pending >= 1);

  g_mutex_lock (&self->core->lock);
  changed = self->core->max_pending != max_pending;
  self->core->max_pending = max_pending;
  g_mutex_unlock (&self->core->lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_PENDING_MESSAGES]);
}

/**
 * redis_subscriber_get_messages_dropped: (get-property messages-dropped)
 * @self: a [class@Redis.Subscriber]
 *
 * Returns how many messages were dropped because too many waited for
 * delivery.
 *
 * Returns: the count
 */
guint64
redis_subscriber_get_messages_dropped (RedisSubscriber *self)
{
  guint64 dropped;

  g_return_val_if_fail (REDIS_IS_SUBSCRIBER (self), 0);

  g_mutex_lock (&self->core->lock);
  dropped = self->core->dropped;
  g_mutex_unlock (&self->core->lock);
  return dropped;
}

/* ---- credentials ------------------------------------------------------- */

/* The subscriber's own credentials, made (from the options, or from the
 * pool's current ones, which it stops following) if it had none; a new
 * reference. */
static RedisCredentials *
own_credentials (Core *core)
{
  RedisCredentials *shared = NULL;
  RedisCredentials *own;

  g_mutex_lock (&core->lock);
  if (core->credentials == NULL)
    core->credentials = redis_credentials_new (core->options);
  else if (core->credentials_shared)
    {
      shared = core->credentials;
      core->credentials = redis_credentials_copy (shared);
      core->credentials_shared = FALSE;
    }
  own = redis_credentials_ref (core->credentials);
  g_mutex_unlock (&core->lock);

  redis_credentials_unref (shared);
  return own;
}

/**
 * redis_subscriber_set_credentials:
 * @self: a [class@Redis.Subscriber]
 * @username: (nullable): the ACL user, or %NULL for the `default` user
 * @password: (nullable): the password (or token), or %NULL for none
 *
 * Changes the credentials of the subscriber at run time, for example when
 * the server's password is rotated (`ACL SETUSER`, `CONFIG SET
 * requirepass`), or when a token expires.
 *
 * The live connection is not re-authenticated: a connection in subscribed
 * mode (RESP2) accepts no `AUTH`, so it keeps the session it has, which a
 * server-side rotation does not end. The new credentials are used from the
 * next connect on: a reconnect after the connection is lost (or killed,
 * say with `CLIENT KILL`), and the first connect if the subscriber is not
 * initialized yet, where they win over the
 * [property@Redis.Subscriber:password] and
 * [property@Redis.Subscriber:username] options. A connect already under
 * way whose handshake is not written yet uses them too.
 *
 * A subscriber made by [method@Redis.Pool.create_subscriber] follows the
 * pool's credentials (its [method@Redis.Pool.set_credentials] and its
 * provider); after this call it has its own and no longer follows them.
 *
 * With @password %NULL, the next connects send no `AUTH`; a @username
 * needs a @password. The password is copied and never logged, put into
 * an error message or returned by a property; the subscriber zeroes its
 * copy when it is replaced. May be called from any thread.
 */
void
redis_subscriber_set_credentials (RedisSubscriber *self,
                                  const char      *username,
                                  const char      *password)
{
  RedisCredentials *credentials;
  RedisEngine *engine;

  g_return_if_fail (REDIS_IS_SUBSCRIBER (self));
  g_return_if_fail (username == NULL || password != NULL);

  credentials = own_credentials (self->core);
  redis_credentials_set (credentials, username, password);
  redis_credentials_unref (credentials);

  g_mutex_lock (&self->core->lock);
  engine = self->core->engine != NULL ? redis_engine_ref (self->core->engine) : NULL;
  g_mutex_unlock (&self->core->lock);
  if (engine != NULL)
    {
      /* Only if its handshake is not written yet: never an AUTH in
       * subscribed mode. */
      redis_engine_update_credentials (engine, username, password);
      redis_engine_unref (engine);
    }
}

typedef struct
{
  GWeakRef                            subscriber;
  RedisSubscriberCredentialsProvider  func;
  gpointer                            data;
  GDestroyNotify                      destroy;
} SubscriberProvider;

static void
subscriber_provider_free (gpointer data)
{
  SubscriberProvider *provider = data;

  g_weak_ref_clear (&provider->subscriber);
  if (provider->destroy != NULL)
    provider->destroy (provider->data);
  g_free (provider);
}

/* The subscriber's context. */
static void
subscriber_provider_cb (RedisCredentialsRequest *request,
                        gpointer                 data)
{
  SubscriberProvider *provider = data;
  RedisSubscriber *subscriber = g_weak_ref_get (&provider->subscriber);

  if (subscriber == NULL)
    return;   /* the request, dropped, fails */
  provider->func (subscriber, request, provider->data);
  g_object_unref (subscriber);
}

/**
 * redis_subscriber_set_credentials_provider:
 * @self: a [class@Redis.Subscriber]
 * @provider: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   the function asked for credentials, or %NULL to stop asking
 * @user_data: (nullable): data for @provider
 * @destroy: (nullable): frees @user_data when the provider is replaced or
 *   the subscriber is disposed
 *
 * Sets a function that the subscriber asks for credentials before each of
 * its connects (the first one, and every reconnect), for credentials that
 * expire or live elsewhere (a token service, a keyring), as
 * [method@Redis.Pool.set_credentials_provider] does for a pool. It is
 * called in the thread-default main context of the subscriber's creation,
 * with a [class@Redis.CredentialsRequest] that it answers, then or later
 * and from any thread, with [method@Redis.CredentialsRequest.complete] or
 * [method@Redis.CredentialsRequest.fail]; the connect waits for the
 * answer. That context must run for the provider to be asked.
 *
 * When the server refuses the credentials it gave (`AUTH` fails: a token
 * expired), the subscriber asks again at once with
 * [method@Redis.CredentialsRequest.get_stale] %TRUE, before backing off.
 * When it fails, the attempt counts as refused by `AUTH`:
 * [signal@Redis.Subscriber::reconnect-failed] is emitted (or the
 * initialization fails) and the subscriber asks again after its backoff.
 * The live connection is never re-authenticated (see
 * [method@Redis.Subscriber.set_credentials]).
 *
 * Set it before initializing the subscriber for it to be asked for the
 * first connect. A subscriber made by [method@Redis.Pool.create_subscriber]
 * asks the pool's provider; after this call it has its own credentials and
 * provider and no longer follows the pool's.
 */
void
redis_subscriber_set_credentials_provider (RedisSubscriber                    *self,
                                           RedisSubscriberCredentialsProvider  provider,
                                           gpointer                            user_data,
                                           GDestroyNotify                      destroy)
{
  RedisCredentials *credentials;
  SubscriberProvider *p;

  g_return_if_fail (REDIS_IS_SUBSCRIBER (self));

  credentials = own_credentials (self->core);
  if (provider == NULL)
    {
      redis_credentials_drop_provider (credentials, self->core);
      if (destroy != NULL)
        destroy (user_data);
    }
  else
    {
      p = g_new0 (SubscriberProvider, 1);
      g_weak_ref_init (&p->subscriber, self);
      p->func = provider;
      p->data = user_data;
      p->destroy = destroy;
      redis_credentials_set_provider (credentials, self->core, self->core->context,
                                      subscriber_provider_cb, p, subscriber_provider_free);
    }
  redis_credentials_unref (credentials);
}

/**
 * redis_subscriber_close:
 * @self: a [class@Redis.Subscriber]
 *
 * Closes the connection at once and for good: requests in flight fail
 * with %REDIS_ERROR_CLOSED, no signal is emitted any more. Dropping the
 * last reference does the same. Idempotent.
 */
void
redis_subscriber_close (RedisSubscriber *self)
{
  g_return_if_fail (REDIS_IS_SUBSCRIBER (self));

  core_close (self->core);
}
