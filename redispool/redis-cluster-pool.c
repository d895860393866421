/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-client-private.h"
#include "redis-cluster-keys-private.h"
#include "redis-cluster-pool.h"
#include "redis-cluster-slots-private.h"
#include "redis-engine-private.h"
#include "redis-error.h"
#include "redis-pool.h"

/**
 * RedisClusterPool:
 *
 * A client of a Redis Cluster: one [class@Redis.Pool] per primary node,
 * and every call routed to the node that owns the hash slot of its keys.
 *
 * A cluster pool is made from a URI that names one or more seed nodes:
 *
 * ```text
 * redis://h1:7000?addr=h2:7001&addr=h3:7002&pool_size=2
 * ```
 *
 * The host and port of the URI and every `addr` parameter are seeds: the
 * pool asks the first that answers for the slot map (`CLUSTER SHARDS`,
 * or `CLUSTER SLOTS` on servers before 7.0). Every other part of the URI
 * (scheme, user and password, the other query parameters: `pool_size`,
 * timeouts, TLS options…) is given to the [class@Redis.Pool] of each node,
 * so each node is served with the same options. The
 * [property@Redis.ClusterPool:seeds] property is the other way to name the
 * seeds.
 *
 * Routing, by the command's keys (a built-in table of the common commands
 * gives where the keys are):
 *
 * - a command with keys goes to the primary that owns their slot; keys in
 *   more than one slot are refused before anything is sent, with
 *   %REDIS_ERROR_INVALID_ARGUMENT naming two of the slots (use a hash tag,
 *   `{user1}.name` and `{user1}.mail` share a slot);
 * - a command without keys, or one the table does not know, goes to one
 *   of the primaries, picked in turn. Commands meant for every node
 *   (`FLUSHALL`, `SCRIPT LOAD`, `CONFIG SET`…) are not broadcast: send them
 *   to each pool of the list model (the pool is a #GListModel of its
 *   per-node [class@Redis.Pool]s);
 * - a `MOVED` reply sends the command at once to the node it names
 *   (whose pool is created when new), updates that slot and schedules one
 *   refresh of the slot map; `ASK` sends `ASKING` and the command to the
 *   node it names, in one write, as a pipeline on one connection;
 *   `TRYAGAIN` and `CLUSTERDOWN` are retried after 10 ms, doubling up to
 *   200 ms, for at most 2 s. No call follows more than
 *   [property@Redis.ClusterPool:max-redirects] redirections.
 * - a pipeline whose keys are in one slot follows a `MOVED` of its first
 *   command as a whole; one spread over several nodes is split per node,
 *   sent in parallel and its replies reassembled in order; there, a
 *   redirection is returned as the error reply of its command (and
 *   schedules a refresh);
 * - a transaction or a no-reply call must have all its keys in one slot;
 *   it is sent to the owner of that slot and not redirected. For
 *   `WATCH`/`MULTI`/`EXEC` on a connection of its own, see
 *   [method@Redis.ClusterPool.acquire_for_key_async].
 *
 * The slot map is refreshed every
 * [property@Redis.ClusterPool:topology-refresh-interval] seconds and after
 * a `MOVED`; [signal@Redis.ClusterPool::topology-changed] tells when it
 * changed. Signals are emitted in the thread-default main context of the
 * thread that created the pool.
 *
 * Keys that must share a slot (for a multi-key command, a transaction)
 * are given a hash tag; [func@Redis.cluster_key_slot] tells the slot:
 *
 * ```c
 * const char *name = "{user1}.name", *mail = "{user1}.mail";
 *
 * g_assert (redis_cluster_key_slot ((const guint8 *) name, strlen (name)) ==
 *           redis_cluster_key_slot ((const guint8 *) mail, strlen (mail)));
 * ```
 *
 * ```python
 * assert (Redis.cluster_key_slot(b'{user1}.name') ==
 *         Redis.cluster_key_slot(b'{user1}.mail'))
 * ```
 *
 * A command outside the built-in table is routed by what the servers
 * tell of it: `COMMAND INFO` and `COMMAND GETKEYS`, asked once per command
 * name and number of arguments (every time for a command whose keys move
 * with its arguments, such as `SINTERCARD`); a command they say has no
 * key is routed as keyless.
 *
 * The pools of the nodes report their lost and replaced connections: the
 * cluster pool emits them again as
 * [signal@Redis.ClusterPool::connection-lost] and
 * [signal@Redis.ClusterPool::connection-replaced], with the node's
 * address.
 *
 * Not done yet: reads from replicas, an address-mapping hook, sharded
 * pub/sub.
 */

#define DEFAULT_MAX_REDIRECTS       5
#define DEFAULT_REFRESH_INTERVAL    60
#define TRYAGAIN_FIRST_MS           10
#define TRYAGAIN_MAX_MS             200
#define TRYAGAIN_BUDGET_US          (2 * G_USEC_PER_SEC)
#define NO_NODE                     G_MAXUINT16
#define SLOTS_BYTES                 (REDIS_CLUSTER_N_SLOTS * sizeof (guint16))

static const guint8 asking_command[] = "*1\r\n$6\r\nASKING\r\n";

typedef struct
{
  char      *address;   /* host:port */
  RedisPool *pool;
} Node;

struct _RedisClusterPool
{
  GObject        parent_instance;

  /* construct-time configuration */
  char          *uri;
  char         **seeds;
  guint          pool_size;
  guint          max_redirects;
  guint          refresh_interval;

  /* from the URI: what each node's pool gets */
  char          *scheme;
  char          *userinfo;
  char          *path;
  char          *query;
  char          *default_host;
  gboolean       tls;

  GMainContext  *context;
  GSource       *refresh_source;
  gint           refresh_pending;   /* atomic */
  gint           keyless_turn;      /* atomic */

  GMutex         lock;              /* guards what follows */
  GPtrArray     *nodes;             /* Node *, only ever added */
  GHashTable    *by_address;        /* address → index + 1 */
  guint16       *slots;             /* as routed, MOVED applied… */
  guint16       *read_slots;        /* …as last read (GType instances are < 64 KiB) */
  RedisClusterKeyCache *key_cache;  /* commands outside the built-in table */
  guint          n_covered;
  guint64        n_moved;
  guint64        n_ask;
  guint64        n_tryagain;
  guint64        n_refreshes;
  guint64        n_key_queries;
  gboolean       closed;
};

static void list_model_iface_init     (GListModelInterface  *iface);
static void client_iface_init         (RedisClientInterface *iface);
static void initable_iface_init       (GInitableIface       *iface);
static void async_initable_iface_init (GAsyncInitableIface  *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (RedisClusterPool, redis_cluster_pool, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, list_model_iface_init)
                               G_IMPLEMENT_INTERFACE (REDIS_TYPE_CLIENT, client_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE, async_initable_iface_init))

enum
{
  PROP_0,
  PROP_URI,
  PROP_SEEDS,
  PROP_POOL_SIZE,
  PROP_MAX_REDIRECTS,
  PROP_TOPOLOGY_REFRESH_INTERVAL,
  N_PROPS
};

enum
{
  SIGNAL_TOPOLOGY_CHANGED,
  SIGNAL_CONNECTION_LOST,
  SIGNAL_CONNECTION_REPLACED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* ---- nodes and the slot map --------------------------------------------- */

static void
node_free (gpointer data)
{
  Node *node = data;

  g_free (node->address);
  g_clear_object (&node->pool);
  g_free (node);
}

static char *
node_uri (RedisClusterPool *self,
          const char       *address)
{
  return g_strdup_printf ("%s://%s%s%s%s%s%s",
                          self->scheme,
                          self->userinfo != NULL ? self->userinfo : "",
                          self->userinfo != NULL ? "@" : "",
                          address,
                          self->path != NULL ? self->path : "",
                          self->query != NULL ? "?" : "",
                          self->query != NULL ? self->query : "");
}

typedef struct
{
  RedisClusterPool *self;
  guint             position;
} ItemsAdded;

static gboolean
emit_items_added (gpointer data)
{
  ItemsAdded *added = data;

  g_list_model_items_changed (G_LIST_MODEL (added->self), added->position, 0, 1);
  g_object_unref (added->self);
  g_free (added);
  return G_SOURCE_REMOVE;
}

/* The address of the node served by @pool (a copy: the lock is not held
 * while handlers run). */
static char *
address_of_pool (RedisClusterPool *self,
                 RedisPool        *pool)
{
  char *address = NULL;

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->nodes->len && address == NULL; i++)
    if (((Node *) self->nodes->pdata[i])->pool == pool)
      address = g_strdup (((Node *) self->nodes->pdata[i])->address);
  g_mutex_unlock (&self->lock);
  return address;
}

/* A node's pool reports in the cluster pool's context (see below): its
 * signals are re-emitted as they come, with the node's address. */
static void
node_connection_lost_cb (RedisPool        *pool,
                         guint             index,
                         const GError     *error,
                         RedisClusterPool *self)
{
  g_autofree char *address = address_of_pool (self, pool);

  if (address != NULL)
    g_signal_emit (self, signals[SIGNAL_CONNECTION_LOST], 0, address, index, error);
}

static void
node_connection_replaced_cb (RedisPool        *pool,
                             guint             index,
                             RedisClusterPool *self)
{
  g_autofree char *address = address_of_pool (self, pool);

  if (address != NULL)
    g_signal_emit (self, signals[SIGNAL_CONNECTION_REPLACED], 0, address, index);
}

/* With the lock held: the index of the node at @address, created if new. */
static guint
node_lookup_locked (RedisClusterPool *self,
                    const char       *address)
{
  gpointer found = g_hash_table_lookup (self->by_address, address);
  g_autofree char *uri = NULL;
  ItemsAdded *added;
  gboolean pushed;
  Node *node;

  if (found != NULL)
    return GPOINTER_TO_UINT (found) - 1;

  uri = node_uri (self, address);
  node = g_new0 (Node, 1);
  node->address = g_strdup (address);
  /* A pool reports in the thread-default context of its creation: make
   * that the cluster pool's when this thread can (a sync init or a sync
   * call runs in a private one). */
  pushed = g_main_context_acquire (self->context);
  if (pushed)
    g_main_context_push_thread_default (self->context);
  if (self->pool_size > 0)
    node->pool = g_object_new (REDIS_TYPE_POOL, "uri", uri, "pool-size", self->pool_size, NULL);
  else
    node->pool = g_object_new (REDIS_TYPE_POOL, "uri", uri, NULL);
  if (pushed)
    {
      g_main_context_pop_thread_default (self->context);
      g_main_context_release (self->context);
    }
  g_signal_connect_object (node->pool, "connection-lost",
                           G_CALLBACK (node_connection_lost_cb), self, G_CONNECT_DEFAULT);
  g_signal_connect_object (node->pool, "connection-replaced",
                           G_CALLBACK (node_connection_replaced_cb), self, G_CONNECT_DEFAULT);
  g_ptr_array_add (self->nodes, node);
  g_hash_table_insert (self->by_address, node->address, GUINT_TO_POINTER (self->nodes->len));

  added = g_new (ItemsAdded, 1);
  added->self = g_object_ref (self);
  added->position = self->nodes->len - 1;
  {
    /* Not invoked in place: the lock is held here. */
    GSource *idle = g_idle_source_new ();

    g_source_set_callback (idle, emit_items_added, added, NULL);
    g_source_attach (idle, self->context);
    g_source_unref (idle);
  }
  return self->nodes->len - 1;
}

/* The pool for a slot (the owner when known, else some node), a new
 * reference; NULL once closed or with no node at all. */
static RedisPool *
pool_for_slot (RedisClusterPool *self,
               gint              slot)
{
  RedisPool *pool = NULL;
  guint16 index;

  if (slot < 0)
    slot = (gint) (((guint) g_atomic_int_add (&self->keyless_turn, 1) * 5471u) % REDIS_CLUSTER_N_SLOTS);

  g_mutex_lock (&self->lock);
  if (!self->closed && self->nodes->len > 0)
    {
      index = self->slots[slot];
      if (index == NO_NODE)
        index = 0;
      pool = g_object_ref (((Node *) self->nodes->pdata[index])->pool);
    }
  g_mutex_unlock (&self->lock);
  return pool;
}

static RedisPool *
pool_for_address (RedisClusterPool *self,
                  const char       *address)
{
  RedisPool *pool = NULL;

  g_mutex_lock (&self->lock);
  if (!self->closed)
    pool = g_object_ref (((Node *) self->nodes->pdata[node_lookup_locked (self, address)])->pool);
  g_mutex_unlock (&self->lock);
  return pool;
}

/* Installs a new map; TRUE if it differs from the old one. */
static gboolean
apply_ranges (RedisClusterPool *self,
              GArray           *ranges)
{
  g_autofree guint16 *map = g_new (guint16, REDIS_CLUSTER_N_SLOTS);
  gboolean changed;
  guint covered = 0;

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < REDIS_CLUSTER_N_SLOTS; i++)
    map[i] = NO_NODE;
  for (guint i = 0; i < ranges->len; i++)
    {
      RedisClusterRange *range = &g_array_index (ranges, RedisClusterRange, i);
      guint index = node_lookup_locked (self, range->address);

      for (guint s = range->first; s <= range->last; s++)
        map[s] = (guint16) index;
    }
  for (guint i = 0; i < REDIS_CLUSTER_N_SLOTS; i++)
    covered += map[i] != NO_NODE;
  /* Against the last map read: a MOVED may have patched slots already. */
  changed = memcmp (map, self->read_slots, SLOTS_BYTES) != 0;
  memcpy (self->slots, map, SLOTS_BYTES);
  memcpy (self->read_slots, map, SLOTS_BYTES);
  self->n_covered = covered;
  self->n_refreshes++;
  g_mutex_unlock (&self->lock);
  return changed;
}

/* ---- refreshing the slot map -------------------------------------------- */

typedef struct
{
  GPtrArray *pools;      /* RedisPool *, to ask in turn */
  guint      next;
  gboolean   tried_slots;
  GError    *first_error;
} Refresh;

static void
refresh_free (gpointer data)
{
  Refresh *refresh = data;

  g_ptr_array_unref (refresh->pools);
  g_clear_error (&refresh->first_error);
  g_free (refresh);
}

static void refresh_ask (GTask *task);

static void
refresh_reply_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  RedisClusterPool *self = g_task_get_source_object (task);
  Refresh *refresh = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GArray) ranges = NULL;

  reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);
  if (reply != NULL)
    {
      ranges = refresh->tried_slots ?
               redis_cluster_parse_slots (reply, self->default_host) :
               redis_cluster_parse_shards (reply, self->default_host, self->tls);
      if (ranges == NULL)
        error = g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                             "Cannot read the slot map in the reply to CLUSTER %s",
                             refresh->tried_slots ? "SLOTS" : "SHARDS");
    }

  if (ranges != NULL)
    {
      if (apply_ranges (self, ranges))
        g_signal_emit (self, signals[SIGNAL_TOPOLOGY_CHANGED], 0);
      g_task_return_boolean (task, TRUE);
      return;
    }

  /* A server without CLUSTER SHARDS (before 7.0): CLUSTER SLOTS there. */
  if (!refresh->tried_slots && g_error_matches (error, REDIS_ERROR, REDIS_ERROR_SERVER))
    {
      refresh->tried_slots = TRUE;
      refresh_ask (g_steal_pointer (&task));
      return;
    }

  if (refresh->first_error == NULL)
    refresh->first_error = g_steal_pointer (&error);
  refresh->next++;
  refresh->tried_slots = FALSE;
  refresh_ask (g_steal_pointer (&task));
}

static void
refresh_ask (GTask *task)
{
  Refresh *refresh = g_task_get_task_data (task);
  static const char *shards[] = { "CLUSTER", "SHARDS", NULL };
  static const char *slots[] = { "CLUSTER", "SLOTS", NULL };

  if (refresh->next >= refresh->pools->len)
    {
      if (refresh->first_error != NULL)
        g_task_return_error (task, g_steal_pointer (&refresh->first_error));
      else
        g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                                 "No cluster node to ask for the slot map");
      g_object_unref (task);
      return;
    }

  redis_client_command_async (REDIS_CLIENT (refresh->pools->pdata[refresh->next]),
                              refresh->tried_slots ? slots : shards,
                              g_task_get_cancellable (task),
                              refresh_reply_cb, task);
}

/**
 * redis_cluster_pool_refresh_async:
 * @self: a [class@Redis.ClusterPool]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the slot map was read, or not
 * @user_data: data for @callback
 *
 * Reads the slot map again now, from the first node that answers, and
 * emits [signal@Redis.ClusterPool::topology-changed] if it changed. The
 * pool does this on its own periodically and after a `MOVED`.
 */
void
redis_cluster_pool_refresh_async (RedisClusterPool    *self,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  GTask *task;
  Refresh *refresh;

  g_return_if_fail (REDIS_IS_CLUSTER_POOL (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, redis_cluster_pool_refresh_async);
  refresh = g_new0 (Refresh, 1);
  refresh->pools = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->nodes->len; i++)
    g_ptr_array_add (refresh->pools, g_object_ref (((Node *) self->nodes->pdata[i])->pool));
  g_mutex_unlock (&self->lock);
  g_task_set_task_data (task, refresh, refresh_free);
  refresh_ask (task);
}

/**
 * redis_cluster_pool_refresh_finish:
 * @self: a [class@Redis.ClusterPool]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.ClusterPool.refresh_async].
 *
 * Returns: %TRUE if the slot map was read
 */
gboolean
redis_cluster_pool_refresh_finish (RedisClusterPool  *self,
                                   GAsyncResult      *result,
                                   GError           **error)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_POOL (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
scheduled_refresh_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (source);
  g_autoptr(GError) error = NULL;

  if (!redis_cluster_pool_refresh_finish (self, result, &error))
    g_debug ("Cluster slot map refresh failed: %s", error->message);
  g_atomic_int_set (&self->refresh_pending, FALSE);
}

static gboolean
start_refresh (gpointer data)
{
  RedisClusterPool *self = data;

  redis_cluster_pool_refresh_async (self, NULL, scheduled_refresh_cb, NULL);
  return G_SOURCE_REMOVE;
}

/* One refresh at a time, in the pool's context: the redirections of many
 * calls coalesce into the one that is pending. */
static void
schedule_refresh (RedisClusterPool *self)
{
  if (!g_atomic_int_compare_and_exchange (&self->refresh_pending, FALSE, TRUE))
    return;
  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, start_refresh,
                              g_object_ref (self), g_object_unref);
}

static gboolean
periodic_refresh_cb (gpointer data)
{
  schedule_refresh (data);
  return G_SOURCE_CONTINUE;
}

/* ---- routing one call ---------------------------------------------------- */

/* A call routed with redirections: sent as a pipeline (its replies come
 * back as they are, error replies too) and completed from them. */
typedef struct
{
  RedisClusterPool *self;
  RedisCall        *outer;
  GBytes           *payload;
  gint              slot;
  guint             hops;
  guint             tryagain_ms;
  gint64            started;
  char             *ask_address;
  GSource          *retry_source;
} Op;

static void
op_free (Op *op)
{
  g_object_unref (op->self);
  redis_call_unref (op->outer);
  g_bytes_unref (op->payload);
  g_free (op->ask_address);
  g_free (op);
}

typedef enum
{
  OP_DONE,
  OP_RETRY,
} OpStep;

/* The payload to send and the pool to send it to, for this hop. */
static RedisCall *
op_build_inner (Op               *op,
                RedisPool       **pool,
                RedisCallWaiter  *waiter,
                GTask            *task)
{
  g_autoptr(GBytes) payload = NULL;
  guint n_commands = op->outer->kind == REDIS_CALL_COMMAND ? 1 : op->outer->n_commands;
  RedisCall *inner;

  if (op->ask_address != NULL)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (op->payload, &len);
      GByteArray *both = g_byte_array_sized_new ((guint) (len + sizeof asking_command));

      g_byte_array_append (both, asking_command, sizeof asking_command - 1);
      g_byte_array_append (both, data, (guint) len);
      payload = g_byte_array_free_to_bytes (both);
      n_commands++;
      *pool = pool_for_address (op->self, op->ask_address);
    }
  else
    {
      payload = g_bytes_ref (op->payload);
      *pool = pool_for_slot (op->self, op->slot);
    }

  if (*pool == NULL)
    return NULL;   /* closed: no call is made */
  if (waiter != NULL)
    inner = redis_call_new_sync (REDIS_CALL_PIPELINE, payload, n_commands, op->outer->cancellable, waiter);
  else
    inner = redis_call_new (REDIS_CALL_PIPELINE, payload, n_commands, task);
  inner->flags = op->outer->flags & ~REDIS_COMMAND_FLAG_REPLY_MASK;
  inner->block_ms = op->outer->block_ms;
  if (inner->cancellable == NULL && op->outer->cancellable != NULL)
    inner->cancellable = g_object_ref (op->outer->cancellable);
  return inner;
}

static gboolean
parse_redirect (const char  *text,
                guint       *slot,
                char       **address)
{
  g_auto(GStrv) parts = g_strsplit (text, " ", 4);
  guint64 value;

  if (g_strv_length (parts) != 3 ||
      !g_ascii_string_to_unsigned (parts[1], 10, 0, REDIS_CLUSTER_N_SLOTS - 1, &value, NULL))
    return FALSE;
  *slot = (guint) value;
  *address = g_strdup (parts[2]);
  return TRUE;
}

/* What to do with the replies of one hop: complete the outer call, or go
 * again (after *delay_ms). Takes @replies. */
static OpStep
op_step (Op        *op,
         GPtrArray *replies,
         GError    *error,
         guint     *delay_ms)
{
  RedisClusterPool *self = op->self;
  guint first = op->ask_address != NULL ? 1 : 0;
  RedisReply *reply;
  const char *text;

  *delay_ms = 0;
  if (replies == NULL)
    {
      redis_call_fail (op->outer, error);
      return OP_DONE;
    }

  reply = replies->len > first ? replies->pdata[first] : NULL;
  text = reply != NULL && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR ?
         redis_reply_get_text (reply) : NULL;

  if (text != NULL &&
      (g_str_has_prefix (text, "MOVED ") || g_str_has_prefix (text, "ASK ")))
    {
      gboolean moved = text[0] == 'M';
      g_autofree char *address = NULL;
      guint slot;

      if (op->hops < self->max_redirects && parse_redirect (text, &slot, &address))
        {
          op->hops++;
          g_clear_pointer (&op->ask_address, g_free);
          g_mutex_lock (&self->lock);
          if (moved)
            {
              self->n_moved++;
              if (!self->closed)
                self->slots[slot] = (guint16) node_lookup_locked (self, address);
            }
          else
            self->n_ask++;
          g_mutex_unlock (&self->lock);
          /* A command routed as keyless follows the slot it was sent to. */
          if (op->slot < 0)
            op->slot = (gint) slot;
          if (moved)
            schedule_refresh (self);
          else
            op->ask_address = g_steal_pointer (&address);
          g_ptr_array_unref (replies);
          return OP_RETRY;
        }
      if (op->hops >= self->max_redirects)
        {
          redis_call_fail (op->outer,
                           g_error_new (REDIS_ERROR, REDIS_ERROR_SERVER,
                                        "Too many cluster redirections (%u); the last: %s",
                                        op->hops, text));
          g_ptr_array_unref (replies);
          return OP_DONE;
        }
    }
  else if (text != NULL &&
           (g_str_has_prefix (text, "TRYAGAIN") || g_str_has_prefix (text, "CLUSTERDOWN")) &&
           g_get_monotonic_time () - op->started < TRYAGAIN_BUDGET_US)
    {
      g_mutex_lock (&self->lock);
      self->n_tryagain++;
      g_mutex_unlock (&self->lock);
      op->tryagain_ms = op->tryagain_ms == 0 ? TRYAGAIN_FIRST_MS : MIN (op->tryagain_ms * 2, TRYAGAIN_MAX_MS);
      *delay_ms = op->tryagain_ms;
      g_clear_pointer (&op->ask_address, g_free);
      if (g_str_has_prefix (text, "CLUSTERDOWN"))
        schedule_refresh (self);
      g_ptr_array_unref (replies);
      return OP_RETRY;
    }

  if (op->outer->kind == REDIS_CALL_COMMAND)
    {
      op->outer->reply = redis_reply_ref (reply);
      g_ptr_array_unref (replies);
    }
  else
    {
      if (first > 0)
        g_ptr_array_remove_index (replies, 0);
      op->outer->replies = replies;
    }
  redis_call_finish_replies (op->outer);
  return OP_DONE;
}

static void op_send_async (Op *op);

static gboolean
op_retry_cb (gpointer data)
{
  Op *op = data;

  g_clear_pointer (&op->retry_source, g_source_unref);
  op_send_async (op);
  return G_SOURCE_REMOVE;
}

static void
op_reply_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Op *op = user_data;
  GError *error = NULL;
  GPtrArray *replies = g_task_propagate_pointer (G_TASK (result), &error);
  guint delay_ms;

  if (op_step (op, replies, error, &delay_ms) == OP_DONE)
    {
      op_free (op);
      return;
    }
  if (delay_ms == 0)
    {
      op_send_async (op);
      return;
    }
  op->retry_source = g_timeout_source_new (delay_ms);
  g_source_set_callback (op->retry_source, op_retry_cb, op, NULL);
  g_source_attach (op->retry_source, g_main_context_get_thread_default ());
}

static void
op_send_async (Op *op)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, op_reply_cb, op);
  g_autoptr(RedisPool) pool = NULL;
  RedisCall *inner;

  g_task_set_check_cancellable (task, FALSE);
  inner = op_build_inner (op, &pool, NULL, task);
  if (inner == NULL)
    {
      redis_call_fail (op->outer, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                       "The cluster pool is closed, or was never initialized"));
      op_free (op);
      return;
    }
  REDIS_CLIENT_GET_IFACE (pool)->submit (REDIS_CLIENT (pool), inner);
  redis_call_unref (inner);
}

static void
op_run_sync (Op *op)
{
  for (;;)
    {
      RedisCallWaiter waiter;
      g_autoptr(RedisPool) pool = NULL;
      RedisCall *inner;
      GPtrArray *replies;
      GError *error = NULL;
      guint delay_ms;

      redis_call_waiter_init (&waiter);
      inner = op_build_inner (op, &pool, &waiter, NULL);
      if (inner == NULL)
        {
          redis_call_fail (op->outer, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                           "The cluster pool is closed, or was never initialized"));
          break;
        }
      /* As a sync call on the pool itself: this thread drives the I/O of
       * the call when its connection can take it now. */
      inner->drive_engine = REDIS_CALL_DRIVE_OFFERED;
      REDIS_CLIENT_GET_IFACE (pool)->submit (REDIS_CLIENT (pool), inner);
      if (!g_atomic_pointer_compare_and_exchange (&inner->drive_engine, REDIS_CALL_DRIVE_OFFERED, NULL))
        {
          gpointer engine = g_atomic_pointer_get (&inner->drive_engine);

          redis_engine_drive (engine, inner, &waiter);
          redis_engine_unref (engine);
        }
      redis_call_unref (inner);
      replies = redis_call_waiter_wait (&waiter, &error);
      if (op_step (op, replies, error, &delay_ms) == OP_DONE)
        break;
      if (delay_ms > 0)
        g_usleep (delay_ms * 1000);
    }
  op_free (op);
}

/* ---- a pipeline over several nodes -------------------------------------- */

typedef struct
{
  RedisCall *outer;
  GPtrArray *result;      /* RedisReply *, in the order of the pipeline */
  GArray    *positions;   /* per part: GArray of guint, where its replies go */
  GError    *error;
  gint       parts_left;  /* atomic */
  RedisClusterPool *self;
} Split;

static void
split_part_done (Split     *split,
                 guint      part,
                 GPtrArray *replies,
                 GError    *error)
{
  GArray *where = g_array_index (split->positions, GArray *, part);
  gboolean finish;

  if (replies != NULL)
    {
      for (guint i = 0; i < replies->len && i < where->len; i++)
        {
          RedisReply *reply = replies->pdata[i];
          const char *text = redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR ?
                             redis_reply_get_text (reply) : NULL;

          if (text != NULL && (g_str_has_prefix (text, "MOVED ") || g_str_has_prefix (text, "ASK ")))
            schedule_refresh (split->self);
          split->result->pdata[g_array_index (where, guint, i)] = redis_reply_ref (reply);
        }
      g_ptr_array_unref (replies);
    }
  else
    {
      g_mutex_lock (&split->self->lock);
      if (split->error == NULL)
        split->error = error;
      else
        g_error_free (error);
      g_mutex_unlock (&split->self->lock);
    }

  finish = g_atomic_int_dec_and_test (&split->parts_left);
  if (!finish)
    return;

  if (split->error != NULL)
    redis_call_fail (split->outer, g_steal_pointer (&split->error));
  else
    {
      split->outer->replies = g_steal_pointer (&split->result);
      redis_call_finish_replies (split->outer);
    }
  redis_call_unref (split->outer);
  g_clear_pointer (&split->result, g_ptr_array_unref);
  g_array_unref (split->positions);
  g_object_unref (split->self);
  g_free (split);
}

static void
reply_unref0 (gpointer reply)
{
  if (reply != NULL)
    redis_reply_unref (reply);
}

typedef struct
{
  Split *split;
  guint  part;
} SplitPart;

static void
split_reply_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  SplitPart *part = user_data;
  GError *error = NULL;
  GPtrArray *replies = g_task_propagate_pointer (G_TASK (result), &error);

  split_part_done (part->split, part->part, replies, error);
  g_free (part);
}

static void
free_positions (gpointer data)
{
  g_array_unref (*(GArray **) data);
}

/* Sends the commands of @call to their nodes, one pipeline per node, and
 * reassembles the replies in order. @slots: the slot of each command
 * (REDIS_CLUSTER_SLOT_NONE: any), @offsets: where each one starts in the
 * payload (n + 1 entries). */
static void
split_pipeline (RedisClusterPool *self,
                RedisCall        *call,
                const gint       *slots,
                const gsize      *offsets,
                guint             n)
{
  g_autoptr(GHashTable) part_of = g_hash_table_new (NULL, NULL);
  g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) bodies = g_ptr_array_new ();
  Split *split = g_new0 (Split, 1);
  gint any_slot = REDIS_CLUSTER_SLOT_NONE;

  for (guint i = 0; i < n && any_slot < 0; i++)
    any_slot = slots[i];

  split->outer = redis_call_ref (call);
  split->self = g_object_ref (self);
  split->result = g_ptr_array_new_full (n, reply_unref0);
  g_ptr_array_set_size (split->result, (gint) n);
  split->positions = g_array_new (FALSE, FALSE, sizeof (GArray *));
  g_array_set_clear_func (split->positions, free_positions);

  for (guint i = 0; i < n; i++)
    {
      RedisPool *pool = pool_for_slot (self, slots[i] >= 0 ? slots[i] : any_slot);
      gpointer found;
      guint part;

      if (pool == NULL)
        {
          for (guint b = 0; b < bodies->len; b++)
            g_byte_array_unref (bodies->pdata[b]);
          g_clear_pointer (&split->result, g_ptr_array_unref);
          g_array_unref (split->positions);
          g_object_unref (split->self);
          g_free (split);
          redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                      "The cluster pool is closed, or was never initialized"));
          redis_call_unref (call);
          return;
        }
      found = g_hash_table_lookup (part_of, pool);
      if (found == NULL)
        {
          GArray *where = g_array_new (FALSE, FALSE, sizeof (guint));

          part = pools->len;
          g_ptr_array_add (pools, g_object_ref (pool));
          g_ptr_array_add (bodies, g_byte_array_new ());
          g_array_append_val (split->positions, where);
          g_hash_table_insert (part_of, pool, GUINT_TO_POINTER (part + 1));
        }
      else
        part = GPOINTER_TO_UINT (found) - 1;
      g_byte_array_append (bodies->pdata[part], call->data + offsets[i], (guint) (offsets[i + 1] - offsets[i]));
      g_array_append_val (g_array_index (split->positions, GArray *, part), i);
      g_object_unref (pool);
    }

  split->parts_left = (gint) pools->len;
  if (call->waiter != NULL)
    {
      /* Sync: every part is sent before this thread waits for the first. */
      guint n_parts = pools->len;
      g_autofree RedisCallWaiter *waiters = g_new (RedisCallWaiter, n_parts);

      for (guint p = 0; p < n_parts; p++)
        {
          g_autoptr(GBytes) payload = g_byte_array_free_to_bytes (bodies->pdata[p]);
          guint count = g_array_index (split->positions, GArray *, p)->len;
          RedisCall *inner;

          redis_call_waiter_init (&waiters[p]);
          inner = redis_call_new_sync (REDIS_CALL_PIPELINE, payload, count, call->cancellable, &waiters[p]);
          inner->flags = call->flags & ~REDIS_COMMAND_FLAG_REPLY_MASK;
          inner->block_ms = call->block_ms;
          REDIS_CLIENT_GET_IFACE (pools->pdata[p])->submit (pools->pdata[p], inner);
          redis_call_unref (inner);
        }
      for (guint p = 0; p < n_parts; p++)
        {
          GError *error = NULL;
          GPtrArray *replies = redis_call_waiter_wait (&waiters[p], &error);

          split_part_done (split, p, replies, error);
        }
      return;
    }

  for (guint p = 0; p < pools->len; p++)
    {
      g_autoptr(GBytes) payload = g_byte_array_free_to_bytes (bodies->pdata[p]);
      guint count = g_array_index (split->positions, GArray *, p)->len;
      g_autoptr(GTask) task = NULL;
      SplitPart *part = g_new (SplitPart, 1);
      RedisCall *inner;

      part->split = split;
      part->part = p;
      task = g_task_new (NULL, NULL, split_reply_cb, part);
      g_task_set_check_cancellable (task, FALSE);
      inner = redis_call_new (REDIS_CALL_PIPELINE, payload, count, task);
      inner->flags = call->flags & ~REDIS_COMMAND_FLAG_REPLY_MASK;
      inner->block_ms = call->block_ms;
      if (inner->cancellable == NULL && call->cancellable != NULL)
        inner->cancellable = g_object_ref (call->cancellable);
      REDIS_CLIENT_GET_IFACE (pools->pdata[p])->submit (pools->pdata[p], inner);
      redis_call_unref (inner);
    }
  /* The parts were handed their own reference to @call through @split. */
}

/* ---- commands outside the key table ----------------------------------- */

static void route_call (RedisClusterPool *self,
                        RedisCall        *call,
                        const gint       *slots,
                        const gsize      *offsets,
                        guint             n);

/* A call waiting for the servers to tell where the keys of some of its
 * commands are (COMMAND INFO + COMMAND GETKEYS, one pair per command the
 * table and the cache do not know, in one pipeline to a primary). */
typedef struct
{
  RedisClusterPool *self;
  RedisCall        *call;
  gint             *slots;
  gsize            *offsets;
  guint             n;
} KeyQuery;

static void
key_query_done (KeyQuery  *query,
                GPtrArray *replies,
                GError    *error)
{
  RedisClusterPool *self = query->self;
  RedisCall *call = query->call;
  guint r = 0;

  if (replies == NULL)
    {
      redis_call_fail (call, error);
      goto out;
    }
  for (guint i = 0; i < query->n; i++)
    {
      GError *local_error = NULL;

      if (query->slots[i] != REDIS_CLUSTER_SLOT_UNKNOWN)
        continue;
      query->slots[i] = redis_cluster_key_query_finish (self->key_cache,
                                                        call->data + query->offsets[i],
                                                        query->offsets[i + 1] - query->offsets[i],
                                                        r < replies->len ? replies->pdata[r] : NULL,
                                                        r + 1 < replies->len ? replies->pdata[r + 1] : NULL,
                                                        &local_error);
      r += 2;
      if (query->slots[i] == REDIS_CLUSTER_SLOT_INVALID)
        {
          redis_call_fail (call, local_error);
          g_ptr_array_unref (replies);
          goto out;
        }
    }
  g_ptr_array_unref (replies);
  g_mutex_lock (&self->lock);
  self->n_key_queries++;
  g_mutex_unlock (&self->lock);
  route_call (self, call, query->slots, query->offsets, query->n);

out:
  g_object_unref (query->self);
  redis_call_unref (query->call);
  g_free (query->slots);
  g_free (query->offsets);
  g_free (query);
}

static void
key_query_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GError *error = NULL;
  GPtrArray *replies = g_task_propagate_pointer (G_TASK (result), &error);

  key_query_done (user_data, replies, error);
}

static void
key_query (RedisClusterPool *self,
           RedisCall        *call,
           const gint       *slots,
           const gsize      *offsets,
           guint             n)
{
  g_autoptr(RedisPool) pool = pool_for_slot (self, REDIS_CLUSTER_SLOT_NONE);
  g_autoptr(GByteArray) body = g_byte_array_new ();
  g_autoptr(GBytes) payload = NULL;
  KeyQuery *query;
  RedisCall *inner;
  guint n_commands = 0;

  if (pool == NULL)
    {
      redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                  "The cluster pool is closed, or was never initialized"));
      return;
    }
  for (guint i = 0; i < n; i++)
    if (slots[i] == REDIS_CLUSTER_SLOT_UNKNOWN)
      {
        redis_cluster_key_query_append (call->data + offsets[i], offsets[i + 1] - offsets[i], body);
        n_commands += 2;
      }
  payload = g_byte_array_free_to_bytes (g_steal_pointer (&body));

  query = g_new0 (KeyQuery, 1);
  query->self = g_object_ref (self);
  query->call = redis_call_ref (call);
  query->slots = g_memdup2 (slots, n * sizeof (gint));
  query->offsets = g_memdup2 (offsets, (n + 1) * sizeof (gsize));
  query->n = n;

  if (call->waiter != NULL)
    {
      RedisCallWaiter waiter;
      GError *error = NULL;
      GPtrArray *replies;

      redis_call_waiter_init (&waiter);
      inner = redis_call_new_sync (REDIS_CALL_PIPELINE, payload, n_commands, call->cancellable, &waiter);
      REDIS_CLIENT_GET_IFACE (pool)->submit (REDIS_CLIENT (pool), inner);
      redis_call_unref (inner);
      replies = redis_call_waiter_wait (&waiter, &error);
      key_query_done (query, replies, error);
      return;
    }
  {
    g_autoptr(GTask) task = g_task_new (NULL, NULL, key_query_cb, query);

    g_task_set_check_cancellable (task, FALSE);
    inner = redis_call_new (REDIS_CALL_PIPELINE, payload, n_commands, task);
    if (inner->cancellable == NULL && call->cancellable != NULL)
      inner->cancellable = g_object_ref (call->cancellable);
    REDIS_CLIENT_GET_IFACE (pool)->submit (REDIS_CLIENT (pool), inner);
    redis_call_unref (inner);
  }
}

/* ---- RedisClient ---------------------------------------------------------- */

static void
redis_cluster_pool_submit (RedisClient *client,
                           RedisCall   *call)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (client);
  GError *error = NULL;
  gint stack_slots[32];
  gsize stack_offsets[33];
  g_autofree gint *heap_slots = NULL;
  g_autofree gsize *heap_offsets = NULL;
  gint *slots = stack_slots;
  gsize *offsets = stack_offsets;
  gboolean unknown = FALSE;
  gsize offset = 0;
  guint n = 0;

  /* The commands of the payload: user commands and, for a transaction or
   * a no-reply call, the wrapper's (MULTI, CLIENT REPLY…, keyless). */
  while (offset < call->len)
    {
      gsize consumed = 0;
      gint s = redis_cluster_command_slot (call->data + offset, call->len - offset, &consumed,
                                           self->key_cache, &error);

      if (s == REDIS_CLUSTER_SLOT_INVALID)
        {
          redis_call_fail (call, error);
          return;
        }
      if (n + 1 >= G_N_ELEMENTS (stack_slots) && slots == stack_slots)
        {
          guint size = call->n_commands + 8;

          heap_slots = g_new (gint, size);
          heap_offsets = g_new (gsize, size + 1);
          memcpy (heap_slots, stack_slots, n * sizeof (gint));
          memcpy (heap_offsets, stack_offsets, n * sizeof (gsize));
          slots = heap_slots;
          offsets = heap_offsets;
        }
      slots[n] = s;
      offsets[n] = offset;
      n++;
      offset += consumed;
      if (s == REDIS_CLUSTER_SLOT_UNKNOWN)
        unknown = TRUE;
    }
  offsets[n] = offset;

  if (unknown)
    key_query (self, call, slots, offsets, n);
  else
    route_call (self, call, slots, offsets, n);
}

/* Sends @call where the slots of its commands (@slots, none UNKNOWN) say. */
static void
route_call (RedisClusterPool *self,
            RedisCall        *call,
            const gint       *slots,
            const gsize      *offsets,
            guint             n)
{
  gint slot = REDIS_CLUSTER_SLOT_NONE;
  gint other = REDIS_CLUSTER_SLOT_NONE;

  for (guint i = 0; i < n; i++)
    {
      gint s = slots[i];

      if (s >= 0 && slot < 0)
        slot = s;
      else if (s >= 0 && s != slot && other < 0)
        other = s;
    }

  if (other >= 0 && call->kind != REDIS_CALL_PIPELINE)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                                          "The keys of this %s are in different hash slots "
                                          "(%d and %d): in a cluster, all its keys must "
                                          "share a slot (use a hash tag, {…})",
                                          call->kind == REDIS_CALL_TRANSACTION ?
                                          "transaction" : "call",
                                          slot, other));
      return;
    }

  if (other >= 0)
    {
      /* Must match what the outer call expects. */
      g_assert (n == call->n_commands);
      split_pipeline (self, call, slots, offsets, n);
      return;
    }

  if (call->kind == REDIS_CALL_COMMAND || call->kind == REDIS_CALL_PIPELINE)
    {
      Op *op = g_new0 (Op, 1);

      op->self = g_object_ref (self);
      op->outer = redis_call_ref (call);
      op->payload = call->payload != NULL ? g_bytes_ref (call->payload) : g_bytes_new (call->data, call->len);
      op->slot = slot;
      op->started = g_get_monotonic_time ();
      if (call->waiter != NULL)
        op_run_sync (op);
      else
        op_send_async (op);
      return;
    }

  /* A transaction or a no-reply call: to the owner, as it is. */
  {
    g_autoptr(RedisPool) pool = pool_for_slot (self, slot);

    if (pool == NULL)
      {
        redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                    "The cluster pool is closed, or was never initialized"));
        return;
      }
    REDIS_CLIENT_GET_IFACE (pool)->submit (REDIS_CLIENT (pool), call);
  }
}

typedef struct
{
  gint    left;
  GError *error;
} CloseAll;

static void
close_node_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CloseAll *all = g_task_get_task_data (task);
  GError *error = NULL;

  if (!redis_client_close_finish (REDIS_CLIENT (source), result, &error))
    {
      if (all->error == NULL)
        all->error = error;
      else
        g_error_free (error);
    }
  if (--all->left > 0)
    return;
  if (all->error != NULL)
    g_task_return_error (task, g_steal_pointer (&all->error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
close_all_free (gpointer data)
{
  CloseAll *all = data;

  g_clear_error (&all->error);
  g_free (all);
}

static void
redis_cluster_pool_close_async (RedisClient         *client,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (client);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func (g_object_unref);
  CloseAll *all = g_new0 (CloseAll, 1);

  g_task_set_task_data (task, all, close_all_free);
  if (self->refresh_source != NULL)
    {
      g_source_destroy (self->refresh_source);
      g_clear_pointer (&self->refresh_source, g_source_unref);
    }
  g_mutex_lock (&self->lock);
  self->closed = TRUE;
  for (guint i = 0; i < self->nodes->len; i++)
    g_ptr_array_add (pools, g_object_ref (((Node *) self->nodes->pdata[i])->pool));
  g_mutex_unlock (&self->lock);

  all->left = (gint) pools->len + 1;
  for (guint i = 0; i < pools->len; i++)
    redis_client_close_async (pools->pdata[i], cancellable, close_node_cb, g_object_ref (task));
  if (--all->left == 0)
    g_task_return_boolean (task, TRUE);
}

static gboolean
redis_cluster_pool_close_finish (RedisClient   *client,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
client_iface_init (RedisClientInterface *iface)
{
  iface->submit = redis_cluster_pool_submit;
  iface->close_async = redis_cluster_pool_close_async;
  iface->close_finish = redis_cluster_pool_close_finish;
}

/* ---- GListModel ------------------------------------------------------------ */

static GType
list_get_item_type (GListModel *model)
{
  return REDIS_TYPE_POOL;
}

static guint
list_get_n_items (GListModel *model)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (model);
  guint n;

  g_mutex_lock (&self->lock);
  n = self->nodes->len;
  g_mutex_unlock (&self->lock);
  return n;
}

static gpointer
list_get_item (GListModel *model,
               guint       position)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (model);
  gpointer item = NULL;

  g_mutex_lock (&self->lock);
  if (position < self->nodes->len)
    item = g_object_ref (((Node *) self->nodes->pdata[position])->pool);
  g_mutex_unlock (&self->lock);
  return item;
}

static void
list_model_iface_init (GListModelInterface *iface)
{
  iface->get_item_type = list_get_item_type;
  iface->get_n_items = list_get_n_items;
  iface->get_item = list_get_item;
}

/* ---- initialization ------------------------------------------------------ */

/* Reads the URI: the seeds (authority and addr=), the rest for the nodes. */
static gboolean
parse_uri (RedisClusterPool  *self,
           GPtrArray         *seeds,
           GError           **error)
{
  const char *uri = self->uri;
  const char *sep = strstr (uri, "://");
  const char *authority, *end, *at, *query;
  g_autofree char *hostport = NULL;
  g_autoptr(GString) rest = NULL;

  if (sep == NULL)
    goto invalid;
  self->scheme = g_strndup (uri, (gsize) (sep - uri));
  if (!g_str_equal (self->scheme, "redis") && !g_str_equal (self->scheme, "rediss"))
    goto invalid;
  self->tls = g_str_equal (self->scheme, "rediss");

  authority = sep + 3;
  end = authority + strcspn (authority, "/?");
  at = memchr (authority, '@', (gsize) (end - authority));
  if (at != NULL)
    {
      self->userinfo = g_strndup (authority, (gsize) (at - authority));
      authority = at + 1;
    }
  hostport = g_strndup (authority, (gsize) (end - authority));
  if (hostport[0] != '\0')
    g_ptr_array_add (seeds, g_steal_pointer (&hostport));

  query = strchr (end, '?');
  if (query == NULL)
    {
      if (end[0] != '\0')
        self->path = g_strdup (end);
      return TRUE;
    }
  if (query > end)
    self->path = g_strndup (end, (gsize) (query - end));

  rest = g_string_new (NULL);
  {
    g_auto(GStrv) params = g_strsplit (query + 1, "&", -1);

    for (guint i = 0; params[i] != NULL; i++)
      {
        if (g_str_has_prefix (params[i], "addr="))
          {
            g_autofree char *value = g_uri_unescape_string (params[i] + 5, NULL);

            if (value == NULL || value[0] == '\0')
              goto invalid;
            g_ptr_array_add (seeds, g_steal_pointer (&value));
          }
        else if (params[i][0] != '\0')
          g_string_append_printf (rest, "%s%s", rest->len > 0 ? "&" : "", params[i]);
      }
  }
  if (rest->len > 0)
    self->query = g_string_free (g_steal_pointer (&rest), FALSE);
  return TRUE;

invalid:
  g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
               "Not a cluster URI (redis://host:port?addr=host:port…)");
  return FALSE;
}

static void
init_refresh_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  RedisClusterPool *self = REDIS_CLUSTER_POOL (source);
  GError *error = NULL;

  if (!redis_cluster_pool_refresh_finish (self, result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (self->refresh_interval > 0)
    {
      self->refresh_source = g_timeout_source_new_seconds (self->refresh_interval);
      g_source_set_callback (self->refresh_source, periodic_refresh_cb, self, NULL);
      g_source_attach (self->refresh_source, self->context);
    }
  g_task_return_boolean (task, TRUE);
}

static void
redis_cluster_pool_init_async (GAsyncInitable      *initable,
                               int                  io_priority,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (initable);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GPtrArray) seeds = g_ptr_array_new_with_free_func (g_free);
  GError *error = NULL;

  g_task_set_source_tag (task, redis_cluster_pool_init_async);
  if (self->nodes->len > 0)
    {
      g_task_return_boolean (task, TRUE);   /* initialized already */
      return;
    }

  self->scheme = NULL;
  if (self->uri != NULL && !parse_uri (self, seeds, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (self->scheme == NULL)
    self->scheme = g_strdup ("redis");
  for (guint i = 0; self->seeds != NULL && self->seeds[i] != NULL; i++)
    g_ptr_array_add (seeds, g_strdup (self->seeds[i]));
  if (seeds->len == 0)
    {
      g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                               "A cluster pool needs at least one seed address");
      return;
    }

  /* The host of the first seed answers for nodes that announce none. */
  {
    const char *first = seeds->pdata[0];
    const char *colon = strrchr (first, ':');

    self->default_host = colon != NULL ? g_strndup (first, (gsize) (colon - first)) : g_strdup (first);
    if (self->default_host[0] == '[')
      {
        char *bare = g_strndup (self->default_host + 1, strlen (self->default_host) - 2);

        g_free (self->default_host);
        self->default_host = bare;
      }
  }

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < seeds->len; i++)
    node_lookup_locked (self, seeds->pdata[i]);
  g_mutex_unlock (&self->lock);

  redis_cluster_pool_refresh_async (self, cancellable, init_refresh_cb, g_steal_pointer (&task));
}

static gboolean
redis_cluster_pool_init_finish (GAsyncInitable  *initable,
                                GAsyncResult    *result,
                                GError         **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
async_initable_iface_init (GAsyncInitableIface *iface)
{
  iface->init_async = redis_cluster_pool_init_async;
  iface->init_finish = redis_cluster_pool_init_finish;
}

static void
initable_iface_init (GInitableIface *iface)
{
  iface->init = redis_sync_initable_init;
}

/* ---- GObject ----------------------------------------------------------- */

static void
redis_cluster_pool_dispose (GObject *object)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (object);

  if (self->refresh_source != NULL)
    {
      g_source_destroy (self->refresh_source);
      g_clear_pointer (&self->refresh_source, g_source_unref);
    }
  G_OBJECT_CLASS (redis_cluster_pool_parent_class)->dispose (object);
}

static void
redis_cluster_pool_finalize (GObject *object)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (object);

  g_hash_table_unref (self->by_address);
  g_ptr_array_unref (self->nodes);
  g_mutex_clear (&self->lock);
  g_free (self->slots);
  g_free (self->read_slots);
  redis_cluster_key_cache_free (self->key_cache);
  g_main_context_unref (self->context);
  g_free (self->uri);
  g_strfreev (self->seeds);
  g_free (self->scheme);
  g_free (self->userinfo);
  g_free (self->path);
  g_free (self->query);
  g_free (self->default_host);
  G_OBJECT_CLASS (redis_cluster_pool_parent_class)->finalize (object);
}

static void
redis_cluster_pool_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (object);

  switch (prop_id)
    {
    case PROP_URI:
      g_value_set_string (value, self->uri);
      break;
    case PROP_SEEDS:
      g_value_set_boxed (value, self->seeds);
      break;
    case PROP_POOL_SIZE:
      g_value_set_uint (value, self->pool_size);
      break;
    case PROP_MAX_REDIRECTS:
      g_value_set_uint (value, self->max_redirects);
      break;
    case PROP_TOPOLOGY_REFRESH_INTERVAL:
      g_value_set_uint (value, self->refresh_interval);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_cluster_pool_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  RedisClusterPool *self = REDIS_CLUSTER_POOL (object);

  switch (prop_id)
    {
    case PROP_URI:
      self->uri = g_value_dup_string (value);
      break;
    case PROP_SEEDS:
      self->seeds = g_value_dup_boxed (value);
      break;
    case PROP_POOL_SIZE:
      self->pool_size = g_value_get_uint (value);
      break;
    case PROP_MAX_REDIRECTS:
      self->max_redirects = g_value_get_uint (value);
      break;
    case PROP_TOPOLOGY_REFRESH_INTERVAL:
      self->refresh_interval = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_cluster_pool_class_init (RedisClusterPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = redis_cluster_pool_dispose;
  object_class->finalize = redis_cluster_pool_finalize;
  object_class->get_property = redis_cluster_pool_get_property;
  object_class->set_property = redis_cluster_pool_set_property;

  /**
   * RedisClusterPool:uri:
   *
   * The seed nodes and the options of every node's pool, as
   * `redis://host:port?addr=host:port&…` (see [class@Redis.ClusterPool]).
   */
  properties[PROP_URI] =
    g_param_spec_string ("uri", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisClusterPool:seeds:
   *
   * More seed addresses, `host:port` each, asked for the slot map after
   * those of [property@Redis.ClusterPool:uri].
   */
  properties[PROP_SEEDS] =
    g_param_spec_boxed ("seeds", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisClusterPool:pool-size:
   *
   * The [property@Redis.Pool:pool-size] of each node's pool; 0 leaves it
   * to the URI (`pool_size=`) or the default.
   */
  properties[PROP_POOL_SIZE] =
    g_param_spec_uint ("pool-size", NULL, NULL, 0, 1024, 0,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisClusterPool:max-redirects:
   *
   * How many `MOVED` and `ASK` redirections one call follows at most
   * before it fails with %REDIS_ERROR_SERVER.
   */
  properties[PROP_MAX_REDIRECTS] =
    g_param_spec_uint ("max-redirects", NULL, NULL, 0, 64, DEFAULT_MAX_REDIRECTS,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisClusterPool:topology-refresh-interval:
   *
   * Seconds between two reads of the slot map; 0 turns the periodic
   * refresh off (a `MOVED` still triggers one).
   */
  properties[PROP_TOPOLOGY_REFRESH_INTERVAL] =
    g_param_spec_uint ("topology-refresh-interval", NULL, NULL, 0, G_MAXUINT / 1000,
                       DEFAULT_REFRESH_INTERVAL,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * RedisClusterPool::topology-changed:
   * @self: the [class@Redis.ClusterPool]
   *
   * Emitted when a read of the slot map found it changed (slots that
   * moved, nodes that came or went), in the thread-default main context
   * of the thread that created the pool.
   */
  signals[SIGNAL_TOPOLOGY_CHANGED] =
    g_signal_new ("topology-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * RedisClusterPool::connection-lost:
   * @self: the [class@Redis.ClusterPool]
   * @address: the node, as `host:port`
   * @index: the slot of the connection in the node's pool, from 0 to
   *   its size - 1
   * @error: why it was lost
   *
   * [signal@Redis.Pool::connection-lost] of the pool of one node, emitted
   * again with the node's address, once for each lost connection, in the
   * thread-default main context of the thread that created the pool.
   */
  signals[SIGNAL_CONNECTION_LOST] =
    g_signal_new ("connection-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_UINT, G_TYPE_ERROR);

  /**
   * RedisClusterPool::connection-replaced:
   * @self: the [class@Redis.ClusterPool]
   * @address: the node, as `host:port`
   * @index: the slot of the connection in the node's pool
   *
   * [signal@Redis.Pool::connection-replaced] of the pool of one node,
   * emitted again with the node's address once a lost connection has been
   * replaced by a new one that finished its handshake.
   */
  signals[SIGNAL_CONNECTION_REPLACED] =
    g_signal_new ("connection-replaced", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_UINT);
}

static void
redis_cluster_pool_init (RedisClusterPool *self)
{
  self->max_redirects = DEFAULT_MAX_REDIRECTS;
  self->refresh_interval = DEFAULT_REFRESH_INTERVAL;
  self->context = g_main_context_ref_thread_default ();
  g_mutex_init (&self->lock);
  self->nodes = g_ptr_array_new_with_free_func (node_free);
  self->by_address = g_hash_table_new (g_str_hash, g_str_equal);
  self->slots = g_new (guint16, REDIS_CLUSTER_N_SLOTS);
  self->read_slots = g_new (guint16, REDIS_CLUSTER_N_SLOTS);
  for (guint i = 0; i < REDIS_CLUSTER_N_SLOTS; i++)
    self->slots[i] = self->read_slots[i] = NO_NODE;
  self->key_cache = redis_cluster_key_cache_new ();
}

/* ---- public API ------------------------------------------------------------ */

/**
 * redis_cluster_key_slot:
 * @key: (array length=len) (element-type guint8): the key, any bytes
 * @len: the length of @key in bytes
 *
 * Returns the Redis Cluster hash slot of @key: CRC16 (XMODEM) of the key,
 * or of its hash tag (what is between the first `{` and the next `}`,
 * when that is not empty), modulo 16384, as `CLUSTER KEYSLOT` computes it.
 *
 * ```python
 * assert Redis.cluster_key_slot(b'foo') == 12182
 * ```
 *
 * Returns: the slot, 0 to 16383
 */
guint16
redis_cluster_key_slot (const guint8 *key,
                        gsize         len)
{
  g_return_val_if_fail (key != NULL || len == 0, 0);

  return redis_cluster_slot_of (key, len);
}

/**
 * redis_cluster_pool_new_sync:
 * @uri: a `redis://` or `rediss://` URI naming one or more seed nodes
 *   (see [class@Redis.ClusterPool])
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Creates a cluster pool and reads the slot map from the first seed that
 * answers. The nodes' pools connect on first use.
 *
 * Errors: %REDIS_ERROR_INVALID_ARGUMENT for a malformed URI; the error of
 * the first seed when none gives the slot map.
 *
 * Returns: (transfer full): a cluster pool, or %NULL with @error set
 */
RedisClusterPool *
redis_cluster_pool_new_sync (const char    *uri,
                             GCancellable  *cancellable,
                             GError       **error)
{
  g_return_val_if_fail (uri != NULL, NULL);

  return g_initable_new (REDIS_TYPE_CLUSTER_POOL, cancellable, error, "uri", uri, NULL);
}

/**
 * redis_cluster_pool_new_async:
 * @uri: a `redis://` or `rediss://` URI naming one or more seed nodes
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the pool is ready or failed
 * @user_data: data for @callback
 *
 * Creates a cluster pool without blocking. Finish with
 * [ctor@Redis.ClusterPool.new_finish].
 */
void
redis_cluster_pool_new_async (const char          *uri,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (uri != NULL);

  g_async_initable_new_async (REDIS_TYPE_CLUSTER_POOL, G_PRIORITY_DEFAULT, cancellable,
                              callback, user_data, "uri", uri, NULL);
}

/**
 * redis_cluster_pool_new_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Redis.ClusterPool.new_async].
 *
 * Returns: (transfer full): a cluster pool, or %NULL with @error set
 */
RedisClusterPool *
redis_cluster_pool_new_finish (GAsyncResult  *result,
                               GError       **error)
{
  g_autoptr(GObject) source = g_async_result_get_source_object (result);
  GObject *object;

  object = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error);
  return object != NULL ? REDIS_CLUSTER_POOL (object) : NULL;
}

/**
 * redis_cluster_pool_get_max_redirects:
 * @self: a [class@Redis.ClusterPool]
 *
 * Returns [property@Redis.ClusterPool:max-redirects].
 *
 * Returns: the most redirections a call follows
 */
guint
redis_cluster_pool_get_max_redirects (RedisClusterPool *self)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_POOL (self), 0);

  return self->max_redirects;
}

/**
 * redis_cluster_pool_get_info:
 * @self: a [class@Redis.ClusterPool]
 *
 * Returns a snapshot of the pool as a `a{sv}` dictionary: `nodes` (`as`,
 * the node addresses in list-model order), `ranges` (`a(qqs)`, the slot
 * ranges and their primary), `slots-covered` (`u`), `moved`, `ask`,
 * `tryagain` (`t`, redirections and retries followed so far),
 * `refreshes` (`t`, slot map reads) and `key-queries` (`t`, calls that
 * waited for `COMMAND GETKEYS` to route a command outside the built-in
 * key table).
 *
 * Returns: (transfer full): a floating-free #GVariant
 */
GVariant *
redis_cluster_pool_get_info (RedisClusterPool *self)
{
  GVariantBuilder builder, nodes, ranges;

  g_return_val_if_fail (REDIS_IS_CLUSTER_POOL (self), NULL);

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_init (&nodes, G_VARIANT_TYPE_STRING_ARRAY);
  g_variant_builder_init (&ranges, G_VARIANT_TYPE ("a(qqs)"));

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->nodes->len; i++)
    g_variant_builder_add (&nodes, "s", ((Node *) self->nodes->pdata[i])->address);
  for (guint s = 0; s < REDIS_CLUSTER_N_SLOTS;)
    {
      guint16 owner = self->slots[s];
      guint e = s;

      while (e + 1 < REDIS_CLUSTER_N_SLOTS && self->slots[e + 1] == owner)
        e++;
      if (owner != NO_NODE)
        g_variant_builder_add (&ranges, "(qqs)", (guint16) s, (guint16) e,
                               ((Node *) self->nodes->pdata[owner])->address);
      s = e + 1;
    }
  g_variant_builder_add (&builder, "{sv}", "nodes", g_variant_builder_end (&nodes));
  g_variant_builder_add (&builder, "{sv}", "ranges", g_variant_builder_end (&ranges));
  g_variant_builder_add (&builder, "{sv}", "slots-covered", g_variant_new_uint32 (self->n_covered));
  g_variant_builder_add (&builder, "{sv}", "moved", g_variant_new_uint64 (self->n_moved));
  g_variant_builder_add (&builder, "{sv}", "ask", g_variant_new_uint64 (self->n_ask));
  g_variant_builder_add (&builder, "{sv}", "tryagain", g_variant_new_uint64 (self->n_tryagain));
  g_variant_builder_add (&builder, "{sv}", "refreshes", g_variant_new_uint64 (self->n_refreshes));
  g_variant_builder_add (&builder, "{sv}", "key-queries", g_variant_new_uint64 (self->n_key_queries));
  g_mutex_unlock (&self->lock);

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

/**
 * redis_cluster_pool_get_pool_for_key:
 * @self: a [class@Redis.ClusterPool]
 * @key: (array length=len) (element-type guint8): the key
 * @len: the length of @key in bytes
 *
 * Returns the pool of the node that owns the slot of @key, as the slot
 * map has it now.
 *
 * Returns: (transfer full) (nullable): the node's pool, or %NULL once the
 *   cluster pool is closed
 */
RedisPool *
redis_cluster_pool_get_pool_for_key (RedisClusterPool *self,
                                     const guint8     *key,
                                     gsize             len)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_POOL (self), NULL);
  g_return_val_if_fail (key != NULL || len == 0, NULL);

  return pool_for_slot (self, redis_cluster_slot_of (key, len));
}

static void
acquire_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  RedisConnection *connection = redis_pool_acquire_finish (REDIS_POOL (source), result, &error);

  if (connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, connection, g_object_unref);
}

/**
 * redis_cluster_pool_acquire_for_key_async:
 * @self: a [class@Redis.ClusterPool]
 * @key: (array length=len) (element-type guint8): the key
 * @len: the length of @key in bytes
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the lease
 * @user_data: data for @callback
 *
 * Leases a connection of the node that owns the slot of @key, as
 * [method@Redis.Pool.acquire_async] does: for `WATCH`, `MULTI` and `EXEC`
 * on keys of that slot. Give it back with [method@Redis.Pool.release] on
 * the pool of [method@Redis.ClusterPool.get_pool_for_key], or drop it.
 * The connection follows no redirection.
 */
void
redis_cluster_pool_acquire_for_key_async (RedisClusterPool    *self,
                                          const guint8        *key,
                                          gsize                len,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(RedisPool) pool = NULL;

  g_return_if_fail (REDIS_IS_CLUSTER_POOL (self));
  g_return_if_fail (key != NULL || len == 0);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, redis_cluster_pool_acquire_for_key_async);
  pool = pool_for_slot (self, redis_cluster_slot_of (key, len));
  if (pool == NULL)
    {
      g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CLOSED,
                               "The cluster pool is closed, or was never initialized");
      return;
    }
  redis_pool_acquire_async (pool, cancellable, acquire_cb, g_steal_pointer (&task));
}

/**
 * redis_cluster_pool_acquire_for_key_finish:
 * @self: a [class@Redis.ClusterPool]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.ClusterPool.acquire_for_key_async].
 *
 * Returns: (transfer full): the leased connection, or %NULL with @error set
 */
RedisConnection *
redis_cluster_pool_acquire_for_key_finish (RedisClusterPool  *self,
                                           GAsyncResult      *result,
                                           GError           **error)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
