/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-client-private.h"
#include "redis-cluster-broadcast-private.h"
#include "redis-cluster-keys-private.h"
#include "redis-cluster-pool-private.h"
#include "redis-cluster-subscriber-private.h"
#include "redis-cluster-slots-private.h"
#include "redis-engine-private.h"
#include "redis-enums.h"
#include "redis-options-private.h"
#include "redis-pool-private.h"
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
 * seeds. One parameter is the cluster pool's own: `read_from=primary`,
 * `replica` or `replica_preferred` sets
 * [property@Redis.ClusterPool:read-from].
 *
 * Reads from replicas: with `read_from=replica`, a call whose commands
 * are all read-only (Redis's `readonly` flag: `GET`, `MGET`, `HGETALL`,
 * `ZRANGE`…) goes to one of the replicas of its slot, taken in turn, or to
 * the primary when the slot map lists none (only replicas that are online
 * are listed); `replica_preferred` also passes over a replica whose pool
 * has no live connection. Every node's connections then send `READONLY`
 * when they connect. Writes, transactions, no-reply calls and leases stay
 * on primaries; a `MOVED` (from a replica too) goes to the primary it
 * names. A replica may lag behind its primary.
 *
 * Routing, by the command's keys (a built-in table of the common commands
 * gives where the keys are):
 *
 * - a command with keys goes to the primary that owns their slot; keys in
 *   more than one slot are refused before anything is sent, with
 *   %REDIS_ERROR_INVALID_ARGUMENT naming two of the slots (use a hash tag,
 *   `{user1}.name` and `{user1}.mail` share a slot);
 * - a command without keys, or one the table does not know, goes to one
 *   of the primaries, picked in turn (the pool is also a #GListModel of
 *   its per-node [class@Redis.Pool]s, for a command meant for one node);
 * - a command meant for every node, called on its own, is broadcast, as
 *   Redis 7 tells in its tips (`COMMAND INFO`): `FLUSHALL`, `FLUSHDB`,
 *   `DBSIZE`, `KEYS`, `SCRIPT EXISTS`/`KILL`, `FUNCTION
 *   LOAD`/`DELETE`/`FLUSH`/`RESTORE`/`KILL` and `MEMORY PURGE` go to every
 *   primary; `SCRIPT LOAD`/`FLUSH`, `CONFIG SET`, `SLOWLOG RESET` and
 *   `LATENCY RESET` to every node known. The replies combine into one:
 *   `DBSIZE` gives the sum, `KEYS` every node's keys one after the other,
 *   `SCRIPT EXISTS` 1 only where every node has the script, the `KILL`s
 *   the first success; the others the first node's reply, or fail with
 *   the first node's error (%REDIS_ERROR_SERVER for an error reply), its
 *   message starting with the node's address — the others ran it. Inside a
 *   pipeline or a transaction such a command is routed as keyless, to one
 *   primary. `PING` is not broadcast;
 * - a `MOVED` reply sends the command at once to the node it names
 *   (whose pool is created when new), updates that slot and schedules one
 *   refresh of the slot map; `ASK` sends `ASKING` and the command to the
 *   node it names, in one write, as a pipeline on one connection;
 *   `TRYAGAIN` and `CLUSTERDOWN` are retried after 10 ms, doubling up to
 *   200 ms, until the call's deadline: [property@Redis.Pool:command-timeout]
 *   of the nodes' pools (`command_timeout=` in the URI, 5 s by default),
 *   or 10 s when that is 0; then the error is returned. No call follows
 *   more than [property@Redis.ClusterPool:max-redirects] redirections.
 * - a pipeline is sent as one pipeline per node, in parallel, its replies
 *   put back in order. A command of it answered `MOVED` or `ASK` did not
 *   run: it alone is sent again to the node named (after `ASKING` for an
 *   `ASK`, in the same write), and its reply takes its place; the other
 *   commands ran and are never sent again, whether on the same node or
 *   not. A command still redirected after
 *   [property@Redis.ClusterPool:max-redirects] rounds keeps the `MOVED` or
 *   `ASK` error reply. A command answered `TRYAGAIN` or `CLUSTERDOWN`
 *   did not run either: it alone is sent again, as for a command, until
 *   the call's deadline, after which that error is its reply;
 * - a transaction must have all its keys in one slot. When `EXEC` is
 *   refused because a queued command got `MOVED` or `ASK` (nothing ran),
 *   the whole transaction is sent again to the node named (with `ASKING`
 *   before `MULTI` for an `ASK`), within max-redirects; one whose keys
 *   straddle a slot migration (some queued, some answered `ASK`) and one
 *   answered `TRYAGAIN` are retried as a command is. For
 *   `WATCH`/`MULTI`/`EXEC` on a connection of its own, see
 *   [method@Redis.ClusterPool.acquire_for_key_async]; that connection
 *   follows no redirection;
 * - a no-reply call must have its keys in one slot and is sent to its
 *   owner as it is. Its replies are never read (the server is told not to
 *   send them), so a `MOVED` or `ASK` is never seen: it cannot be
 *   redirected, and is lost if the slot moved. Use a plain call where that
 *   matters.
 *
 * Nodes behind NAT or in containers may announce addresses that cannot
 * be reached from here: [method@Redis.ClusterPool.set_address_map] sets a
 * hook that rewrites them (set it before the pool is initialized).
 *
 * A node that cannot be reached: a call whose send reached no node
 * (its connect refused, %REDIS_ERROR_CONNECT_FAILED; its node's pool
 * closed, %REDIS_ERROR_CLOSED; or waiting unsent,
 * %REDIS_ERROR_SEND_TIMEOUT: nothing was written, see
 * [func@Redis.Error.is_retry_safe]) is sent again by the slot map, read anew,
 * after 25 ms, doubling up to 250 ms, until its deadline (as for
 * `TRYAGAIN`); a call that may have run (%REDIS_ERROR_CONNECTION_LOST,
 * %REDIS_ERROR_TIMEOUT) is never sent again. While a node that owns slots
 * has lost every connection, the slot map is read every 250 ms; when a
 * read moves its slots to another node (a replica promoted), the calls
 * waiting in its pool for a connection are taken back and routed by the
 * new map. A node's pool that failed its first connect (a wait-all
 * initialization that failed closes a pool for good) is replaced by a new
 * one, at most every 500 ms, when the node is next used; the list model
 * tells it with #GListModel::items-changed (one removed, one added at its
 * position). Calls made directly on a node's pool from the list model
 * take part in this: one waiting for a connection when the node's slots
 * move fails with %REDIS_ERROR_CONNECT_FAILED.
 *
 * The slot map is refreshed every
 * [property@Redis.ClusterPool:topology-refresh-interval] seconds, after
 * a `MOVED`, when a node's pool loses its last connection and when a send
 * reaches no node; [signal@Redis.ClusterPool::topology-changed] tells when it
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
 * Pub/Sub: [method@Redis.ClusterPool.create_subscriber] makes a
 * [class@Redis.ClusterSubscriber], which subscribes to each shard channel
 * on the node that owns its slot.
 *
 * Every node's pool, and every subscriber of the cluster, uses one set of
 * credentials, which [method@Redis.ClusterPool.set_credentials] and
 * [method@Redis.ClusterPool.set_credentials_provider] change at run time.
 *
 * Not done yet: redirections of a no-reply call (impossible, see above),
 * and the broadcast of commands whose replies combine in a special way
 * (`RANDOMKEY`, `FUNCTION STATS`, `WAIT`).
 */

#define DEFAULT_MAX_REDIRECTS       5
#define DEFAULT_REFRESH_INTERVAL    60
#define TRYAGAIN_FIRST_MS           10
#define TRYAGAIN_MAX_MS             200
/* How long TRYAGAIN and CLUSTERDOWN are retried when the nodes' pools have
 * no command-timeout (0: calls wait as long as they must): a cap, so that
 * a cluster that stays down still answers. */
#define TRYAGAIN_CAP_MS             10000
/* A hop that could not reach its node (nothing written) is sent again by
 * the slot map read anew, after this backoff, doubling, within the call's
 * deadline. */
#define HOP_RETRY_FIRST_MS          25
#define HOP_RETRY_MAX_MS            250
/* A node pool that failed its first connect is made again at most this
 * often (each call on it meanwhile fails at once, unsent). */
#define NODE_RENEW_MS               500
/* While a node that owns slots has lost every connection, the slot map is
 * read this often, so that a failover is seen within this time. */
#define DOWN_REFRESH_MS             250
/* A node asked for the slot map by the pool itself gets this long before
 * the next is asked: one whose connection just died would hold the
 * request in its queue until the deadline, and the refresh with it. */
#define REFRESH_ASK_MS              1000
#define NO_NODE                     G_MAXUINT16
#define SLOTS_BYTES                 (REDIS_CLUSTER_N_SLOTS * sizeof (guint16))

static const guint8 asking_command[] = "*1\r\n$6\r\nASKING\r\n";

/* A node and its pool. The pool is replaced (node_pool_locked()) when it
 * failed its first connect: a wait-all pool that could not start stays
 * closed, and the node may come back (a restarted primary, a replica
 * promoted). A pool that did start reconnects on its own. */
typedef struct
{
  char      *address;   /* host:port */
  RedisPool *pool;
  gint64     made_at;   /* monotonic µs: when this pool was made */
  gboolean   down;      /* its pool lost every connection (reported) */
} Node;

/* The address-mapping hook, shared by the routing threads: each call of
 * the hook holds a reference, so that replacing the hook meanwhile does
 * not free its data under it. */
typedef struct
{
  gint                        ref_count;
  RedisClusterAddressMapFunc  func;
  gpointer                    user_data;
  GDestroyNotify              notify;
} AddressMap;

struct _RedisClusterPool
{
  GObject        parent_instance;

  /* construct-time configuration */
  char          *uri;
  char         **seeds;
  guint          pool_size;
  guint          max_redirects;
  guint          refresh_interval;
  RedisClusterReadFrom read_from;   /* the URI's read_from= wins */

  /* from the URI: what each node's pool gets */
  char          *scheme;
  char          *userinfo;
  char          *path;
  char          *query;
  char          *default_host;
  gboolean       tls;

  GMainContext  *context;
  GSource       *refresh_source;
  GSource       *down_source;       /* guarded by lock: fast refresh while a node is down */
  gint           refresh_pending;   /* atomic */
  gint           keyless_turn;      /* atomic */
  gint           replica_turn;      /* atomic */
  guint          command_timeout_ms; /* atomic: the nodes' pools' command-timeout */

  GMutex         lock;              /* guards what follows */
  AddressMap    *address_map;       /* nullable */
  GPtrArray     *nodes;             /* Node *, only ever added */
  GHashTable    *by_address;        /* address → index + 1 */
  guint16       *slots;             /* as routed, MOVED applied… */
  guint16       *read_slots;        /* …as last read (GType instances are < 64 KiB) */
  guint16       *last_owners;       /* the last owner read, through uncovered spells */
  GPtrArray     *replica_sets;      /* GArray of guint16 node indices, one per range read */
  guint16       *slot_replicas;     /* slot → its index in replica_sets, NO_NODE: none */
  RedisClusterKeyCache *key_cache;  /* commands outside the built-in table */
  guint          n_covered;
  guint          n_replicas;        /* in the map read last */
  guint64        n_moved;
  guint64        n_ask;
  guint64        n_tryagain;
  guint64        n_unreached;       /* hops sent again: their node was not reached */
  guint64        n_refreshes;
  guint64        n_key_queries;
  gboolean       closed;
  /* Every node pool's credentials and provider, shared (see
   * redis-credentials-private.h): the first node pool's, made from the
   * URI; NULL before it (or a set_credentials*() call). */
  RedisCredentials *credentials;
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
  PROP_READ_FROM,
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
address_map_unref (AddressMap *map)
{
  if (map == NULL || !g_atomic_int_dec_and_test (&map->ref_count))
    return;
  if (map->notify != NULL)
    map->notify (map->user_data);
  g_free (map);
}

/* The address to connect to for @announced, a node address that came
 * from the cluster (slot map, MOVED, ASK): what the hook makes of it, or
 * @announced itself. Called without the lock (the hook is user code). */
static char *
map_address (RedisClusterPool *self,
             const char       *announced)
{
  g_autofree char *host = NULL;
  const char *colon = strrchr (announced, ':');
  AddressMap *map;
  guint64 port;
  char *mapped;

  g_mutex_lock (&self->lock);
  map = self->address_map;
  if (map != NULL)
    g_atomic_int_inc (&map->ref_count);
  g_mutex_unlock (&self->lock);

  if (map == NULL)
    return g_strdup (announced);
  if (colon == NULL ||
      !g_ascii_string_to_unsigned (colon + 1, 10, 0, G_MAXUINT16, &port, NULL))
    {
      address_map_unref (map);
      return g_strdup (announced);
    }
  /* "[::1]:7000" from a slot map, "::1:7000" from a redirection. */
  if (announced[0] == '[' && colon > announced + 1 && colon[-1] == ']')
    host = g_strndup (announced + 1, (gsize) (colon - announced - 2));
  else
    host = g_strndup (announced, (gsize) (colon - announced));
  mapped = map->func (host, (guint16) port, map->user_data);
  address_map_unref (map);
  return mapped != NULL ? mapped : g_strdup (announced);
}

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

/* A change of the list of node pools, told in the pool's context: a node
 * added (removed 0), or its pool replaced (removed 1, and the old pool is
 * let go only then, outside the lock). */
typedef struct
{
  RedisClusterPool *self;
  guint             position;
  guint             removed;
  RedisPool        *old_pool;   /* nullable */
} ItemsChanged;

static gboolean
emit_items_changed (gpointer data)
{
  ItemsChanged *changed = data;

  g_list_model_items_changed (G_LIST_MODEL (changed->self), changed->position, changed->removed, 1);
  g_clear_object (&changed->old_pool);
  g_object_unref (changed->self);
  g_free (changed);
  return G_SOURCE_REMOVE;
}

/* With the lock held: not invoked in place. */
static void
items_changed_later_locked (RedisClusterPool *self,
                            guint             position,
                            RedisPool        *old_pool)
{
  ItemsChanged *changed = g_new (ItemsChanged, 1);
  GSource *idle = g_idle_source_new ();

  changed->self = g_object_ref (self);
  changed->position = position;
  changed->removed = old_pool != NULL ? 1 : 0;
  changed->old_pool = old_pool;
  g_source_set_callback (idle, emit_items_changed, changed, NULL);
  g_source_attach (idle, self->context);
  g_source_unref (idle);
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

static void node_down_changed (RedisClusterPool *self,
                               RedisPool        *pool,
                               gboolean          down);

/* A node's pool reports in the cluster pool's context (see below): its
 * signals are re-emitted as they come, with the node's address. */
static void
node_connection_lost_cb (RedisPool        *pool,
                         guint             index,
                         const GError     *error,
                         RedisClusterPool *self)
{
  g_autofree char *address = address_of_pool (self, pool);

  if (redis_pool_get_active_connections (pool) == 0)
    node_down_changed (self, pool, TRUE);
  if (address != NULL)
    g_signal_emit (self, signals[SIGNAL_CONNECTION_LOST], 0, address, index, error);
}

static void
node_connection_replaced_cb (RedisPool        *pool,
                             guint             index,
                             RedisClusterPool *self)
{
  g_autofree char *address = address_of_pool (self, pool);

  node_down_changed (self, pool, FALSE);
  if (address != NULL)
    g_signal_emit (self, signals[SIGNAL_CONNECTION_REPLACED], 0, address, index);
}

/* With the lock held: a new pool for the node at @address, with the
 * cluster's options, credentials and signal handlers. */
static RedisPool *
node_pool_new_locked (RedisClusterPool *self,
                      const char       *address)
{
  g_autofree char *uri = node_uri (self, address);
  RedisPool *pool;
  gboolean pushed;

  /* A pool reports in the thread-default context of its creation: make
   * that the cluster pool's when this thread can (a sync init or a sync
   * call runs in a private one). */
  pushed = g_main_context_acquire (self->context);
  if (pushed)
    g_main_context_push_thread_default (self->context);
  if (self->pool_size > 0)
    pool = g_object_new (REDIS_TYPE_POOL, "uri", uri, "pool-size", self->pool_size, NULL);
  else
    pool = g_object_new (REDIS_TYPE_POOL, "uri", uri, NULL);
  if (pushed)
    {
      g_main_context_pop_thread_default (self->context);
      g_main_context_release (self->context);
    }
  /* Reads from replicas: every node's connections send READONLY, so
   * that a node keeps serving whichever role a failover gives it (a
   * primary ignores it). */
  if (self->read_from != REDIS_CLUSTER_READ_FROM_PRIMARY)
    redis_pool_set_readonly_private (pool);
  /* One set of credentials for every node, present and future, and their
   * subscribers: a rotation reaches a node made after it. */
  if (self->credentials == NULL)
    self->credentials = redis_credentials_ref (redis_pool_get_credentials_private (pool));
  else
    redis_pool_share_credentials_private (pool, self->credentials);
  g_signal_connect_object (pool, "connection-lost",
                           G_CALLBACK (node_connection_lost_cb), self, G_CONNECT_DEFAULT);
  g_signal_connect_object (pool, "connection-replaced",
                           G_CALLBACK (node_connection_replaced_cb), self, G_CONNECT_DEFAULT);
  return pool;
}

/* With the lock held: node @index's pool (borrowed). One that is closed for
 * good (it failed its first connect) is replaced, at most every
 * NODE_RENEW_MS, so that a node that comes back is used again; in
 * between, calls on it fail at once, unsent, and are retried by the slot
 * map (op_step()). Not on the routing hot path (pool_for_slot()): there a
 * closed pool is seen by the call that fails on it (note_unreached()). */
static RedisPool *
node_pool_locked (RedisClusterPool *self,
                  guint             index)
{
  Node *node = self->nodes->pdata[index];
  RedisPool *old;
  gint64 now;

  if (G_LIKELY (!redis_pool_is_closed_private (node->pool)) || self->closed)
    return node->pool;
  now = g_get_monotonic_time ();
  if (now - node->made_at < NODE_RENEW_MS * G_TIME_SPAN_MILLISECOND)
    return node->pool;

  old = node->pool;
  g_signal_handlers_disconnect_by_data (old, self);
  node->pool = node_pool_new_locked (self, node->address);
  node->made_at = now;
  node->down = FALSE;
  items_changed_later_locked (self, index, old);
  return node->pool;
}

/* With the lock held: the index of the node at @address, created if new. */
static guint
node_lookup_locked (RedisClusterPool *self,
                    const char       *address)
{
  gpointer found = g_hash_table_lookup (self->by_address, address);
  Node *node;

  if (found != NULL)
    return GPOINTER_TO_UINT (found) - 1;

  node = g_new0 (Node, 1);
  node->address = g_strdup (address);
  node->pool = node_pool_new_locked (self, address);
  node->made_at = g_get_monotonic_time ();
  g_ptr_array_add (self->nodes, node);
  g_hash_table_insert (self->by_address, node->address, GUINT_TO_POINTER (self->nodes->len));
  items_changed_later_locked (self, self->nodes->len - 1, NULL);
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

/* The pool for a read-only call on @slot, as read-from says: a replica of
 * the slot, taken in turn (replica-preferred: one with a live connection),
 * else the primary. A new reference; NULL once closed. */
static RedisPool *
pool_for_read (RedisClusterPool *self,
               gint              slot)
{
  g_autoptr(GPtrArray) replicas = NULL;
  guint turn;

  if (self->read_from == REDIS_CLUSTER_READ_FROM_PRIMARY)
    return pool_for_slot (self, slot);
  if (slot < 0)
    slot = (gint) (((guint) g_atomic_int_add (&self->keyless_turn, 1) * 5471u) % REDIS_CLUSTER_N_SLOTS);

  g_mutex_lock (&self->lock);
  if (!self->closed && self->slot_replicas[slot] != NO_NODE)
    {
      GArray *set = self->replica_sets->pdata[self->slot_replicas[slot]];

      replicas = g_ptr_array_new_full (set->len, g_object_unref);
      for (guint r = 0; r < set->len; r++)
        g_ptr_array_add (replicas, g_object_ref (((Node *) self->nodes->pdata[g_array_index (set, guint16, r)])->pool));
    }
  g_mutex_unlock (&self->lock);

  if (replicas == NULL)
    return pool_for_slot (self, slot);
  turn = (guint) g_atomic_int_add (&self->replica_turn, 1);
  /* Outside the lock: the pool takes its own to count its connections. */
  for (guint r = 0; r < replicas->len; r++)
    {
      RedisPool *pool = replicas->pdata[(turn + r) % replicas->len];

      if (self->read_from == REDIS_CLUSTER_READ_FROM_REPLICA ||
          redis_pool_get_active_connections (pool) > 0)
        return g_object_ref (pool);
    }
  return pool_for_slot (self, slot);
}

char *
redis_cluster_pool_dup_owner (RedisClusterPool  *self,
                              guint16            slot,
                              RedisPool        **pool)
{
  char *address = NULL;
  guint16 index;

  g_return_val_if_fail (slot < REDIS_CLUSTER_N_SLOTS, NULL);

  *pool = NULL;
  g_mutex_lock (&self->lock);
  if (!self->closed && self->nodes->len > 0)
    {
      Node *node;

      index = self->slots[slot];
      if (index == NO_NODE)
        index = 0;
      node = self->nodes->pdata[index];
      address = g_strdup (node->address);
      *pool = g_object_ref (node_pool_locked (self, index));
    }
  g_mutex_unlock (&self->lock);
  return address;
}

static RedisPool *
pool_for_address (RedisClusterPool *self,
                  const char       *address)
{
  RedisPool *pool = NULL;

  g_mutex_lock (&self->lock);
  if (!self->closed)
    pool = g_object_ref (node_pool_locked (self, node_lookup_locked (self, address)));
  g_mutex_unlock (&self->lock);
  return pool;
}

static void
free_replica_set (gpointer data)
{
  g_array_unref (data);
}

/* With the lock held: installs the replicas of @ranges (addresses mapped
 * already); TRUE if they differ from those before. */
static gboolean
apply_replicas_locked (RedisClusterPool *self,
                       GArray           *ranges)
{
  g_autoptr(GPtrArray) sets = g_ptr_array_new_with_free_func (free_replica_set);
  g_autofree guint16 *of_slot = g_new (guint16, REDIS_CLUSTER_N_SLOTS);
  g_autoptr(GHashTable) distinct = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean changed;

  for (guint i = 0; i < REDIS_CLUSTER_N_SLOTS; i++)
    of_slot[i] = NO_NODE;
  for (guint i = 0; i < ranges->len; i++)
    {
      RedisClusterRange *range = &g_array_index (ranges, RedisClusterRange, i);
      GArray *set;

      for (guint r = 0; range->replicas[r] != NULL; r++)
        g_hash_table_add (distinct, range->replicas[r]);
      /* Reading from primaries: no pool for the replicas. */
      if (range->replicas[0] == NULL || self->read_from == REDIS_CLUSTER_READ_FROM_PRIMARY)
        continue;
      set = g_array_new (FALSE, FALSE, sizeof (guint16));
      for (guint r = 0; range->replicas[r] != NULL; r++)
        {
          guint16 index = (guint16) node_lookup_locked (self, range->replicas[r]);

          g_array_append_val (set, index);
        }
      for (guint s = range->first; s <= range->last; s++)
        of_slot[s] = (guint16) sets->len;
      g_ptr_array_add (sets, set);
    }

  changed = g_hash_table_size (distinct) != self->n_replicas ||
            sets->len != self->replica_sets->len ||
            memcmp (of_slot, self->slot_replicas, SLOTS_BYTES) != 0;
  for (guint i = 0; !changed && i < sets->len; i++)
    {
      GArray *a = sets->pdata[i], *b = self->replica_sets->pdata[i];

      changed = a->len != b->len || memcmp (a->data, b->data, a->len * sizeof (guint16)) != 0;
    }
  memcpy (self->slot_replicas, of_slot, SLOTS_BYTES);
  self->n_replicas = g_hash_table_size (distinct);
  g_ptr_array_unref (self->replica_sets);
  self->replica_sets = g_steal_pointer (&sets);
  return changed;
}

/* Installs a new map; TRUE if it differs from the old one. */
static gboolean
apply_ranges (RedisClusterPool *self,
              GArray           *ranges)
{
  g_autofree guint16 *map = g_new (guint16, REDIS_CLUSTER_N_SLOTS);
  g_autoptr(GPtrArray) warm = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) moved_from = g_ptr_array_new_with_free_func (g_object_unref);
  gboolean changed;
  guint covered = 0;

  for (guint i = 0; i < ranges->len; i++)
    {
      RedisClusterRange *range = &g_array_index (ranges, RedisClusterRange, i);
      char *mapped = map_address (self, range->address);

      g_free (range->address);
      range->address = mapped;
      for (guint r = 0; range->replicas[r] != NULL; r++)
        {
          mapped = map_address (self, range->replicas[r]);
          g_free (range->replicas[r]);
          range->replicas[r] = mapped;
        }
    }

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
  if (memcmp (map, self->last_owners, SLOTS_BYTES) != 0)
    {
      g_autofree gboolean *lost = g_new0 (gboolean, self->nodes->len);

      /* Slots moved to another node since their last owner was read.
       * Uncovered slots (a primary marked failed, before its replica is
       * promoted) keep their last owner: calls still wait for it, or for
       * the promotion, rather than bounce off a node that redirects them
       * back. */
      for (guint i = 0; i < REDIS_CLUSTER_N_SLOTS; i++)
        if (map[i] != NO_NODE)
          {
            if (self->last_owners[i] != NO_NODE && self->last_owners[i] != map[i])
              lost[self->last_owners[i]] = TRUE;
            self->last_owners[i] = map[i];
          }
      for (guint i = 0; i < self->nodes->len; i++)
        if (lost[i])
          g_ptr_array_add (moved_from, g_object_ref (((Node *) self->nodes->pdata[i])->pool));
    }
  memcpy (self->slots, map, SLOTS_BYTES);
  memcpy (self->read_slots, map, SLOTS_BYTES);
  if (apply_replicas_locked (self, ranges))
    changed = TRUE;
  if (self->read_from == REDIS_CLUSTER_READ_FROM_REPLICA_PREFERRED)
    for (guint i = 0; i < self->replica_sets->len; i++)
      {
        GArray *set = self->replica_sets->pdata[i];

        for (guint r = 0; r < set->len; r++)
          g_ptr_array_add (warm, g_object_ref (((Node *) self->nodes->pdata[g_array_index (set, guint16, r)])->pool));
      }
  self->n_covered = covered;
  self->n_refreshes++;
  g_mutex_unlock (&self->lock);

  /* Replica-preferred passes over a replica with no live connection: its
   * pool connects now rather than on a first call that never comes. */
  for (guint i = 0; i < warm->len; i++)
    g_async_initable_init_async (warm->pdata[i], G_PRIORITY_DEFAULT, NULL, NULL, NULL);

  /* Calls wait in a node pool's queue only while it has no connection:
   * those of a node whose slots moved away would wait for a node that no
   * longer serves them (a primary killed, its replica promoted). They were
   * never written: failed as unreached, they go again by the new map
   * (op_step(), split_part_done()). */
  if (moved_from->len > 0)
    {
      g_autoptr(GError) error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                                                     "no connection to its node, whose slots "
                                                     "moved to another node");

      for (guint i = 0; i < moved_from->len; i++)
        redis_pool_fail_queued_private (moved_from->pdata[i], error);
    }
  return changed;
}

/* ---- refreshing the slot map -------------------------------------------- */

typedef struct
{
  GPtrArray    *pools;      /* RedisPool *, to ask in turn */
  guint         next;
  gboolean      tried_slots;
  GError       *first_error;
  GCancellable *ask_cancel; /* a refresh with no cancellable of its own: cancels one ask… */
  GSource      *ask_timer;  /* …after REFRESH_ASK_MS */
} Refresh;

static void
refresh_stop_timer (Refresh *refresh)
{
  if (refresh->ask_timer != NULL)
    {
      g_source_destroy (refresh->ask_timer);
      g_clear_pointer (&refresh->ask_timer, g_source_unref);
    }
}

static void
refresh_free (gpointer data)
{
  Refresh *refresh = data;

  refresh_stop_timer (refresh);
  g_ptr_array_unref (refresh->pools);
  g_clear_error (&refresh->first_error);
  g_clear_object (&refresh->ask_cancel);
  g_free (refresh);
}

static gboolean
refresh_ask_timeout_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
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
  refresh_stop_timer (refresh);
  /* This node took too long (refresh_ask()): the next one is asked (a
   * new cancellable for it: this one stays cancelled). */
  if (refresh->ask_cancel != NULL && g_cancellable_is_cancelled (refresh->ask_cancel))
    {
      g_clear_object (&refresh->ask_cancel);
      if (reply == NULL)
        {
          g_clear_error (&error);
          error = g_error_new (REDIS_ERROR, REDIS_ERROR_TIMEOUT,
                               "No reply to CLUSTER %s within %u ms",
                               refresh->tried_slots ? "SLOTS" : "SHARDS", REFRESH_ASK_MS);
        }
    }
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

  /* The pool's own refreshes (no cancellable) give each node
   * REFRESH_ASK_MS; one asked for by a caller follows its cancellable. */
  if (g_task_get_cancellable (task) == NULL)
    {
      if (refresh->ask_cancel == NULL)
        refresh->ask_cancel = g_cancellable_new ();
      refresh->ask_timer = g_timeout_source_new (REFRESH_ASK_MS);
      g_source_set_static_name (refresh->ask_timer, "[redispool] cluster refresh ask");
      g_source_set_callback (refresh->ask_timer, refresh_ask_timeout_cb,
                             g_object_ref (refresh->ask_cancel), g_object_unref);
      g_source_attach (refresh->ask_timer, g_main_context_get_thread_default ());
    }
  redis_client_command_async (REDIS_CLIENT (refresh->pools->pdata[refresh->next]),
                              refresh->tried_slots ? slots : shards,
                              refresh->ask_cancel != NULL ? refresh->ask_cancel : g_task_get_cancellable (task),
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
    g_ptr_array_add (refresh->pools, g_object_ref (node_pool_locked (self, i)));
  g_mutex_unlock (&self->lock);
  /* Nodes with a live connection first (outside the lock: each pool takes
   * its own): a node that lost its connections would hold the request in
   * its queue until the deadline, a node that failed to connect would
   * only refuse it. */
  {
    g_autoptr(GPtrArray) down = g_ptr_array_new_with_free_func (g_object_unref);
    guint live = 0;

    for (guint i = 0; i < refresh->pools->len; i++)
      {
        RedisPool *pool = refresh->pools->pdata[i];

        if (redis_pool_get_active_connections (pool) > 0)
          refresh->pools->pdata[live++] = pool;
        else
          g_ptr_array_add (down, pool);
      }
    for (guint i = 0; i < down->len; i++)
      refresh->pools->pdata[live + i] = g_object_ref (down->pdata[i]);
  }
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

/* Every DOWN_REFRESH_MS while a node that owns slots has lost every
 * connection: its replica may be promoted any moment (after the
 * cluster-node-timeout and an election), and the calls for its slots wait
 * until the map says so (apply_ranges()). */
static gboolean
down_refresh_cb (gpointer data)
{
  RedisClusterPool *self = data;
  gboolean any = FALSE;

  g_mutex_lock (&self->lock);
  for (guint s = 0; s < REDIS_CLUSTER_N_SLOTS && !any && !self->closed; s++)
    any = self->slots[s] != NO_NODE && ((Node *) self->nodes->pdata[self->slots[s]])->down;
  if (!any)
    g_clear_pointer (&self->down_source, g_source_unref);
  g_mutex_unlock (&self->lock);

  if (!any)
    return G_SOURCE_REMOVE;
  schedule_refresh (self);
  return G_SOURCE_CONTINUE;
}

/* The pool's context: @pool lost its last connection (@down), or one came
 * back. A node lost is a reason to read the map now, and again soon. */
static void
node_down_changed (RedisClusterPool *self,
                   RedisPool        *pool,
                   gboolean          down)
{
  gboolean started = FALSE;

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->nodes->len; i++)
    if (((Node *) self->nodes->pdata[i])->pool == pool)
      ((Node *) self->nodes->pdata[i])->down = down;
  if (down && !self->closed && self->down_source == NULL)
    {
      self->down_source = g_timeout_source_new (DOWN_REFRESH_MS);
      g_source_set_static_name (self->down_source, "[redispool] cluster node down");
      g_source_set_callback (self->down_source, down_refresh_cb, self, NULL);
      g_source_attach (self->down_source, self->context);
      started = TRUE;
    }
  g_mutex_unlock (&self->lock);

  if (started)
    schedule_refresh (self);
}

/* Stops the fast refresh (close, dispose). */
static void
stop_down_refresh (RedisClusterPool *self)
{
  GSource *source;

  g_mutex_lock (&self->lock);
  source = g_steal_pointer (&self->down_source);
  g_mutex_unlock (&self->lock);
  if (source != NULL)
    {
      g_source_destroy (source);
      g_source_unref (source);
    }
}

/* ---- routing one call ---------------------------------------------------- */

/* Until when TRYAGAIN and CLUSTERDOWN are retried for @call: its own
 * deadline when it has one, else the nodes' command-timeout from now. */
static gint64
retry_deadline (RedisClusterPool *self,
                RedisCall        *call)
{
  guint budget_ms = g_atomic_int_get (&self->command_timeout_ms);

  if (call->deadline != 0)
    return call->deadline;
  return g_get_monotonic_time () +
         (gint64) (budget_ms != 0 ? budget_ms : TRYAGAIN_CAP_MS) * G_TIME_SPAN_MILLISECOND;
}

static gboolean
is_redirect (const char *text)
{
  return g_str_has_prefix (text, "MOVED ") || g_str_has_prefix (text, "ASK ");
}

static gboolean
is_retry_later (const char *text)
{
  return g_str_has_prefix (text, "TRYAGAIN") || g_str_has_prefix (text, "CLUSTERDOWN");
}

/* A hop that reached no node, so nothing was written (see
 * redis_error_is_retry_safe()): its node refused the connect, its pool
 * is closed (it failed its first connect), or the call waited unsent for
 * a connection (taken back when the slots moved, or its deadline). It may
 * go again, by the map read anew. Never an error that says it may have
 * run (CONNECTION_LOST, TIMEOUT). */
static gboolean
is_unreached (const GError *error)
{
  return error != NULL &&
         (g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED) ||
          g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CLOSED) ||
          g_error_matches (error, REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT)) &&
         redis_error_is_retry_safe (error);
}

/* Counts a hop that reached no node (@error) and asks for a refresh
 * (coalesced); FALSE when the cluster pool is closed (nothing to retry
 * on). A node's pool that refused it as closed failed its first connect:
 * the node pools that did are replaced now (node_pool_locked()), so that
 * the retry finds the node if it is back. */
static gboolean
note_unreached (RedisClusterPool *self,
                const GError     *error)
{
  gboolean closed;

  g_mutex_lock (&self->lock);
  closed = self->closed;
  if (!closed)
    self->n_unreached++;
  if (!closed && g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CLOSED))
    for (guint i = 0; i < self->nodes->len; i++)
      node_pool_locked (self, i);
  g_mutex_unlock (&self->lock);
  if (!closed)
    schedule_refresh (self);
  return !closed;
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

/* Reads a MOVED or ASK error: counts it, patches the slot map for a MOVED
 * (and schedules one refresh), and gives the address to go to, mapped by
 * the address hook. FALSE when the text is not one. */
static gboolean
follow_redirect (RedisClusterPool  *self,
                 const char        *text,
                 guint             *slot,
                 char             **address,
                 gboolean          *ask)
{
  g_autofree char *announced = NULL;
  gboolean moved = text[0] == 'M';

  if (!parse_redirect (text, slot, &announced))
    return FALSE;
  *address = map_address (self, announced);
  *ask = !moved;
  g_mutex_lock (&self->lock);
  if (moved)
    {
      self->n_moved++;
      if (!self->closed)
        self->slots[*slot] = (guint16) node_lookup_locked (self, *address);
      /* Its replicas are not known until the refresh: reads of the slot
       * go to the primary named meanwhile. */
      self->slot_replicas[*slot] = NO_NODE;
    }
  else
    self->n_ask++;
  g_mutex_unlock (&self->lock);
  if (moved)
    schedule_refresh (self);
  return TRUE;
}

/* A command or a transaction routed with redirections: sent as a
 * pipeline (its replies come back as they are, error replies too) and
 * completed from them. */
typedef struct
{
  RedisClusterPool *self;
  RedisCall        *outer;
  GBytes           *payload;
  gint              slot;
  guint             hops;
  guint             tryagain_ms;
  guint             unreached_ms;  /* backoff of the hops that reached no node */
  gint64            deadline;      /* monotonic µs: no TRYAGAIN retry past it */
  gint             *slots;         /* a transaction: the slot of each command, MULTI…EXEC */
  char             *ask_address;
  GSource          *retry_source;
  gboolean          reads_only;    /* read-only commands: may go to a replica */
} Op;

static void
op_free (Op *op)
{
  g_object_unref (op->self);
  redis_call_unref (op->outer);
  g_bytes_unref (op->payload);
  g_free (op->slots);
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
  /* Every reply on the wire: a transaction's MULTI and EXEC too. */
  guint n_commands = op->outer->n_replies;
  RedisCall *inner;

  if (op->ask_address != NULL)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (op->payload, &len);
      GByteArray *both = g_byte_array_sized_new ((guint) (len + sizeof asking_command));

      /* One write: nothing can come between ASKING and the call (inside
       * MULTI, the server keeps the ASKING flag until EXEC). */
      g_byte_array_append (both, asking_command, sizeof asking_command - 1);
      g_byte_array_append (both, data, (guint) len);
      payload = g_byte_array_free_to_bytes (both);
      n_commands++;
      *pool = pool_for_address (op->self, op->ask_address);
    }
  else
    {
      payload = g_bytes_ref (op->payload);
      *pool = op->reads_only ? pool_for_read (op->self, op->slot) : pool_for_slot (op->self, op->slot);
    }

  if (*pool == NULL)
    return NULL;   /* closed: no call is made */
  if (waiter != NULL)
    inner = redis_call_new_sync (REDIS_CALL_PIPELINE, payload, n_commands, op->outer->cancellable, waiter);
  else
    inner = redis_call_new (REDIS_CALL_PIPELINE, payload, n_commands, task);
  inner->flags = op->outer->flags & ~REDIS_COMMAND_FLAG_REPLY_MASK;
  inner->block_ms = op->outer->block_ms;
  if (op->outer->kind == REDIS_CALL_TRANSACTION)
    {
      /* Inside MULTI nothing blocks: no unblocking on a timeout. */
      inner->flags &= ~REDIS_COMMAND_FLAG_BLOCKING;
      inner->block_ms = 0;
    }
  if (inner->cancellable == NULL && op->outer->cancellable != NULL)
    inner->cancellable = g_object_ref (op->outer->cancellable);
  return inner;
}

/* The error that may send the call elsewhere: a command's own reply; for
 * a transaction whose EXEC was refused, the first command the server
 * refused while queueing (none of them ran). NULL: nothing to follow. */
static const char *
op_redirect_text (Op        *op,
                  GPtrArray *replies,
                  guint      first)
{
  RedisReply *reply;

  if (replies->len <= first)
    return NULL;
  if (op->outer->kind == REDIS_CALL_TRANSACTION)
    {
      RedisReply *exec = replies->pdata[replies->len - 1];

      if (redis_reply_get_kind (exec) != REDIS_REPLY_KIND_ERROR)
        return NULL;
      reply = NULL;
      for (guint i = first + 1; i + 1 < replies->len && reply == NULL; i++)
        if (redis_reply_get_kind (replies->pdata[i]) == REDIS_REPLY_KIND_ERROR)
          reply = replies->pdata[i];
      if (reply == NULL)
        return NULL;
    }
  else
    reply = replies->pdata[first];
  return redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR ? redis_reply_get_text (reply) : NULL;
}

/* Whether a transaction answered ASK had commands with keys QUEUED too:
 * its keys are on both sides of a slot migration. The target would refuse
 * it too (TRYAGAIN: a multi-key request for keys it does not all hold),
 * and split it cannot be, atomic as it is: it waits on the source, as for
 * TRYAGAIN, until the migration is over. */
static gboolean
transaction_straddles (Op        *op,
                       GPtrArray *replies,
                       guint      first)
{
  if (op->outer->kind != REDIS_CALL_TRANSACTION || op->slots == NULL)
    return FALSE;
  for (guint i = first + 1; i + 1 < replies->len; i++)
    {
      RedisReply *reply = replies->pdata[i];

      if (op->slots[i - first] >= 0 &&
          redis_reply_get_kind (reply) == REDIS_REPLY_KIND_STATUS &&
          g_strcmp0 (redis_reply_get_text (reply), "QUEUED") == 0)
        return TRUE;
    }
  return FALSE;
}

/* Completes the outer call from the replies of its last hop (taken). */
static void
op_complete (Op        *op,
             GPtrArray *replies,
             guint      first)
{
  if (first > 0)
    g_ptr_array_remove_index (replies, 0);

  if (op->outer->kind == REDIS_CALL_COMMAND)
    {
      op->outer->reply = redis_reply_ref (replies->pdata[0]);
      g_ptr_array_unref (replies);
      redis_call_finish_replies (op->outer);
      return;
    }

  /* A transaction: its replies checked as the engine checks them on the
   * wire (it counts what was QUEUED against EXEC's array). */
  for (guint i = 0; i < replies->len; i++)
    if (!redis_call_reply_in_step (op->outer, i, replies->pdata[i]))
      {
        redis_call_fail (op->outer, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                                         "The replies of the transaction are out "
                                                         "of step with its commands"));
        g_ptr_array_unref (replies);
        return;
      }
  op->outer->replies = replies;
  redis_call_finish_replies (op->outer);
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
  const char *text;

  *delay_ms = 0;
  if (replies == NULL)
    {
      gint64 left_ms = (op->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND;

      /* Its node was not reached: again, by the slot map, which the
       * refresh asked for may have changed meanwhile (a failover). */
      if (is_unreached (error) && left_ms > 0 && note_unreached (self, error))
        {
          op->unreached_ms = op->unreached_ms == 0 ? HOP_RETRY_FIRST_MS : MIN (op->unreached_ms * 2, HOP_RETRY_MAX_MS);
          *delay_ms = (guint) MIN ((gint64) op->unreached_ms, left_ms);
          g_clear_pointer (&op->ask_address, g_free);
          g_error_free (error);
          return OP_RETRY;
        }
      redis_call_fail (op->outer, error);
      return OP_DONE;
    }
  if (replies->len != op->outer->n_replies + first)
    {
      redis_call_fail (op->outer, g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                               "Expected %u replies, got %u",
                                               op->outer->n_replies + first, replies->len));
      g_ptr_array_unref (replies);
      return OP_DONE;
    }

  text = op_redirect_text (op, replies, first);
  if (text != NULL && is_redirect (text) && !transaction_straddles (op, replies, first))
    {
      g_autofree char *address = NULL;
      gboolean ask;
      guint slot;

      if (op->hops >= self->max_redirects)
        {
          redis_call_fail (op->outer,
                           g_error_new (REDIS_ERROR, REDIS_ERROR_SERVER,
                                        "Too many cluster redirections (%u); the last: %s",
                                        op->hops, text));
          g_ptr_array_unref (replies);
          return OP_DONE;
        }
      if (follow_redirect (self, text, &slot, &address, &ask))
        {
          op->hops++;
          g_clear_pointer (&op->ask_address, g_free);
          /* A command routed as keyless follows the slot it was sent to. */
          if (op->slot < 0)
            op->slot = (gint) slot;
          if (ask)
            op->ask_address = g_steal_pointer (&address);
          g_ptr_array_unref (replies);
          return OP_RETRY;
        }
    }
  else if (text != NULL && (is_retry_later (text) || is_redirect (text)))
    {
      gint64 left_ms = (op->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND;

      if (left_ms > 0)
        {
          g_mutex_lock (&self->lock);
          self->n_tryagain++;
          g_mutex_unlock (&self->lock);
          op->tryagain_ms = op->tryagain_ms == 0 ? TRYAGAIN_FIRST_MS : MIN (op->tryagain_ms * 2, TRYAGAIN_MAX_MS);
          *delay_ms = (guint) MIN ((gint64) op->tryagain_ms, left_ms);
          g_clear_pointer (&op->ask_address, g_free);
          if (g_str_has_prefix (text, "CLUSTERDOWN"))
            schedule_refresh (self);
          g_ptr_array_unref (replies);
          return OP_RETRY;
        }
    }

  op_complete (op, replies, first);
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

/* Submits @inner, a sync call, to @pool; this thread drives the I/O of
 * the call when its connection can take it now, as a sync call on the
 * pool itself does. */
static void
submit_driven (RedisPool       *pool,
               RedisCall       *inner,
               RedisCallWaiter *waiter)
{
  inner->drive_engine = REDIS_CALL_DRIVE_OFFERED;
  REDIS_CLIENT_GET_IFACE (pool)->submit (REDIS_CLIENT (pool), inner);
  if (!g_atomic_pointer_compare_and_exchange (&inner->drive_engine, REDIS_CALL_DRIVE_OFFERED, NULL))
    {
      gpointer engine = g_atomic_pointer_get (&inner->drive_engine);

      redis_engine_drive (engine, inner, waiter);
      redis_engine_unref (engine);
    }
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
      submit_driven (pool, inner, &waiter);
      redis_call_unref (inner);
      replies = redis_call_waiter_wait (&waiter, &error);
      if (op_step (op, replies, error, &delay_ms) == OP_DONE)
        break;
      if (delay_ms > 0)
        g_usleep (delay_ms * 1000);
    }
  op_free (op);
}

/* ---- a pipeline, split per node ------------------------------------------ */

/* One command of a pipeline in one round of sends: where its reply goes,
 * and where it is sent (after a redirection). */
typedef struct
{
  guint     index;
  char     *address;   /* NULL: by the slot map */
  gboolean  asking;    /* ASK: ASKING before it, in the same write */
} Entry;

static void
entry_clear (gpointer data)
{
  g_free (((Entry *) data)->address);
}

static GArray *
entries_new (void)
{
  GArray *entries = g_array_new (FALSE, FALSE, sizeof (Entry));

  g_array_set_clear_func (entries, entry_clear);
  return entries;
}

/* A pipeline sent as one pipeline per node, in rounds: the first sends
 * every command; a command answered MOVED or ASK did not run, and is sent
 * again in the next round to the node named; one answered TRYAGAIN or
 * CLUSTERDOWN did not run either, and is sent again after a backoff until
 * the call's deadline; the others ran and are not sent again. The replies
 * are put back in the order of the pipeline. */
typedef struct
{
  RedisClusterPool *self;
  RedisCall        *outer;
  GPtrArray        *result;    /* RedisReply *, in the order of the pipeline */
  gint             *slots;     /* per command */
  gsize            *offsets;   /* where each one starts, n + 1 */
  gint              any_slot;  /* for the keyless commands */
  guint             round;     /* rounds after the first: redirections followed */
  GArray           *next;      /* Entry: what the next round sends… */
  gboolean          next_redirected;  /* …some after a redirection… */
  gboolean          next_later;       /* …some after TRYAGAIN or CLUSTERDOWN */
  guint             tryagain_ms;
  gint64            deadline;  /* monotonic µs: no TRYAGAIN retry past it */
  GError           *error;
  gint              parts_left;
  gboolean          reads_only;  /* every command read-only: may go to replicas */
} Split;

typedef struct
{
  Split  *split;
  GArray *entries;   /* Entry, in the order written */
} SplitPart;

static void
split_part_free (SplitPart *part)
{
  g_array_unref (part->entries);
  g_free (part);
}

static void
reply_unref0 (gpointer reply)
{
  if (reply != NULL)
    redis_reply_unref (reply);
}

/* Completes the outer call and frees @split. */
static void
split_finish (Split *split)
{
  if (split->error != NULL)
    redis_call_fail (split->outer, g_steal_pointer (&split->error));
  else
    {
      split->outer->replies = g_steal_pointer (&split->result);
      redis_call_finish_replies (split->outer);
    }
  redis_call_unref (split->outer);
  g_clear_pointer (&split->result, g_ptr_array_unref);
  g_array_unref (split->next);
  g_object_unref (split->self);
  g_free (split->slots);
  g_free (split->offsets);
  g_free (split);
}

/* The replies of one part: each in its place, or the command queued for
 * the next round when it was redirected and may still be. */
static void
split_part_done (Split     *split,
                 SplitPart *part,
                 GPtrArray *replies,
                 GError    *error)
{
  RedisClusterPool *self = split->self;
  guint j = 0;

  if (replies == NULL)
    {
      /* The part reached no node (nothing of it was written): its
       * commands go again by the slot map, as after TRYAGAIN. */
      if (split->error == NULL && is_unreached (error) &&
          g_get_monotonic_time () < split->deadline && note_unreached (self, error))
        {
          for (guint e = 0; e < part->entries->len; e++)
            {
              Entry again = { g_array_index (part->entries, Entry, e).index, NULL, FALSE };

              g_array_append_val (split->next, again);
            }
          split->next_later = TRUE;
          g_error_free (error);
          return;
        }
      if (split->error == NULL)
        split->error = error;
      else
        g_error_free (error);
      return;
    }

  for (guint e = 0; e < part->entries->len; e++)
    {
      Entry *entry = &g_array_index (part->entries, Entry, e);
      RedisReply *reply;
      const char *text;

      if (entry->asking)
        j++;   /* ASKING's +OK */
      if (j >= replies->len)
        break;
      reply = replies->pdata[j++];
      text = redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR ? redis_reply_get_text (reply) : NULL;
      if (text != NULL && is_redirect (text) && split->round < self->max_redirects)
        {
          Entry again = { entry->index, NULL, FALSE };
          guint slot;

          if (follow_redirect (self, text, &slot, &again.address, &again.asking))
            {
              g_array_append_val (split->next, again);
              split->next_redirected = TRUE;
              continue;
            }
        }
      else if (text != NULL && is_retry_later (text) && g_get_monotonic_time () < split->deadline)
        {
          Entry again = { entry->index, NULL, FALSE };

          g_mutex_lock (&self->lock);
          self->n_tryagain++;
          g_mutex_unlock (&self->lock);
          if (g_str_has_prefix (text, "CLUSTERDOWN"))
            schedule_refresh (self);
          g_array_append_val (split->next, again);
          split->next_later = TRUE;
          continue;
        }
      g_clear_pointer (&split->result->pdata[entry->index], redis_reply_unref);
      split->result->pdata[entry->index] = redis_reply_ref (reply);
    }
  if (j != replies->len && split->error == NULL)
    split->error = g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                "Expected %u replies from a node, got %u", j, replies->len);
  g_ptr_array_unref (replies);
}

/* Groups the commands of this round (split->next, taken) per node: the
 * parts (SplitPart *), their pools and payloads. FALSE once closed. */
static gboolean
split_build_round (Split      *split,
                   GPtrArray  *parts,
                   GPtrArray  *pools,
                   GPtrArray  *payloads)
{
  g_autoptr(GHashTable) part_of = g_hash_table_new (NULL, NULL);
  g_autoptr(GArray) entries = g_steal_pointer (&split->next);
  g_autoptr(GPtrArray) bodies = g_ptr_array_new ();

  split->next = entries_new ();
  for (guint e = 0; e < entries->len; e++)
    {
      Entry *entry = &g_array_index (entries, Entry, e);
      guint i = entry->index;
      g_autoptr(RedisPool) pool = NULL;
      gpointer found;
      SplitPart *part;
      Entry copy;

      if (entry->address != NULL)
        pool = pool_for_address (split->self, entry->address);
      else
        pool = split->reads_only ?
               pool_for_read (split->self, split->slots[i] >= 0 ? split->slots[i] : split->any_slot) :
               pool_for_slot (split->self, split->slots[i] >= 0 ? split->slots[i] : split->any_slot);
      if (pool == NULL)
        {
          for (guint b = 0; b < bodies->len; b++)
            g_byte_array_unref (bodies->pdata[b]);
          return FALSE;
        }
      found = g_hash_table_lookup (part_of, pool);
      if (found == NULL)
        {
          part = g_new0 (SplitPart, 1);
          part->split = split;
          part->entries = entries_new ();
          g_ptr_array_add (parts, part);
          g_ptr_array_add (pools, g_object_ref (pool));
          g_ptr_array_add (bodies, g_byte_array_new ());
          g_hash_table_insert (part_of, pool, GUINT_TO_POINTER (parts->len));
          found = GUINT_TO_POINTER (parts->len);
        }
      part = parts->pdata[GPOINTER_TO_UINT (found) - 1];
      if (entry->asking)
        g_byte_array_append (bodies->pdata[GPOINTER_TO_UINT (found) - 1],
                             asking_command, sizeof asking_command - 1);
      g_byte_array_append (bodies->pdata[GPOINTER_TO_UINT (found) - 1],
                           split->outer->data + split->offsets[i],
                           (guint) (split->offsets[i + 1] - split->offsets[i]));
      copy.index = i;
      copy.address = NULL;
      copy.asking = entry->asking;
      g_array_append_val (part->entries, copy);
    }
  for (guint b = 0; b < bodies->len; b++)
    g_ptr_array_add (payloads, g_byte_array_free_to_bytes (bodies->pdata[b]));
  return TRUE;
}

static guint
part_n_commands (SplitPart *part)
{
  guint n = part->entries->len;

  for (guint e = 0; e < part->entries->len; e++)
    n += g_array_index (part->entries, Entry, e).asking;
  return n;
}

static RedisCall *
split_inner (Split           *split,
             SplitPart       *part,
             GBytes          *payload,
             RedisCallWaiter *waiter,
             GTask           *task)
{
  RedisCall *outer = split->outer;
  RedisCall *inner;

  if (waiter != NULL)
    inner = redis_call_new_sync (REDIS_CALL_PIPELINE, payload, part_n_commands (part), outer->cancellable, waiter);
  else
    inner = redis_call_new (REDIS_CALL_PIPELINE, payload, part_n_commands (part), task);
  inner->flags = outer->flags & ~REDIS_COMMAND_FLAG_REPLY_MASK;
  inner->block_ms = outer->block_ms;
  if (inner->cancellable == NULL && outer->cancellable != NULL)
    inner->cancellable = g_object_ref (outer->cancellable);
  return inner;
}

static void split_round_async (Split *split);

/* Before the next round: counts it against max-redirects when it follows
 * redirections; returns how long to wait first when some command is to be
 * tried again later. */
static guint
split_prepare_round (Split *split)
{
  guint delay_ms = 0;

  if (split->next_redirected)
    split->round++;
  if (split->next_later)
    {
      gint64 left_ms = (split->deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND;

      split->tryagain_ms = split->tryagain_ms == 0 ? TRYAGAIN_FIRST_MS : MIN (split->tryagain_ms * 2, TRYAGAIN_MAX_MS);
      delay_ms = (guint) CLAMP (left_ms, 0, (gint64) split->tryagain_ms);
    }
  split->next_redirected = split->next_later = FALSE;
  return delay_ms;
}

static gboolean
split_retry_cb (gpointer data)
{
  split_round_async (data);
  return G_SOURCE_REMOVE;
}

static void
split_reply_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  SplitPart *part = user_data;
  Split *split = part->split;
  GError *error = NULL;
  GPtrArray *replies = g_task_propagate_pointer (G_TASK (result), &error);

  /* The parts of a round call back in the caller's context, one at a
   * time: no lock for @split. */
  split_part_done (split, part, replies, error);
  split_part_free (part);
  if (--split->parts_left > 0)
    return;
  if (split->error == NULL && split->next->len > 0)
    {
      guint delay_ms = split_prepare_round (split);
      GSource *wait;

      if (delay_ms == 0)
        {
          split_round_async (split);
          return;
        }
      wait = g_timeout_source_new (delay_ms);
      g_source_set_callback (wait, split_retry_cb, split, NULL);
      g_source_attach (wait, g_main_context_get_thread_default ());
      g_source_unref (wait);
    }
  else
    split_finish (split);
}

static void
split_fail_closed (Split *split)
{
  g_clear_error (&split->error);
  split->error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                      "The cluster pool is closed, or was never initialized");
  split_finish (split);
}

static void
split_round_async (Split *split)
{
  g_autoptr(GPtrArray) parts = g_ptr_array_new ();
  g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) payloads = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  if (!split_build_round (split, parts, pools, payloads))
    {
      g_ptr_array_foreach (parts, (GFunc) split_part_free, NULL);
      split_fail_closed (split);
      return;
    }
  split->parts_left = (gint) parts->len;
  for (guint p = 0; p < parts->len; p++)
    {
      g_autoptr(GTask) task = g_task_new (NULL, NULL, split_reply_cb, parts->pdata[p]);
      RedisCall *inner;

      g_task_set_check_cancellable (task, FALSE);
      inner = split_inner (split, parts->pdata[p], payloads->pdata[p], NULL, task);
      REDIS_CLIENT_GET_IFACE (pools->pdata[p])->submit (pools->pdata[p], inner);
      redis_call_unref (inner);
    }
}

static void
split_run_sync (Split *split)
{
  for (;;)
    {
      g_autoptr(GPtrArray) parts = g_ptr_array_new ();
      g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func (g_object_unref);
      g_autoptr(GPtrArray) payloads = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
      g_autofree RedisCallWaiter *waiters = NULL;

      if (!split_build_round (split, parts, pools, payloads))
        {
          g_ptr_array_foreach (parts, (GFunc) split_part_free, NULL);
          split_fail_closed (split);
          return;
        }
      /* Every part is sent before this thread waits for the first; one
       * part alone (one node) is driven by this thread when it can. */
      waiters = g_new (RedisCallWaiter, parts->len);
      for (guint p = 0; p < parts->len; p++)
        {
          RedisCall *inner;

          redis_call_waiter_init (&waiters[p]);
          inner = split_inner (split, parts->pdata[p], payloads->pdata[p], &waiters[p], NULL);
          if (parts->len == 1)
            submit_driven (pools->pdata[p], inner, &waiters[p]);
          else
            REDIS_CLIENT_GET_IFACE (pools->pdata[p])->submit (pools->pdata[p], inner);
          redis_call_unref (inner);
        }
      for (guint p = 0; p < parts->len; p++)
        {
          GError *error = NULL;
          GPtrArray *replies = redis_call_waiter_wait (&waiters[p], &error);

          split_part_done (split, parts->pdata[p], replies, error);
          split_part_free (parts->pdata[p]);
        }
      if (split->error != NULL || split->next->len == 0)
        break;
      {
        guint delay_ms = split_prepare_round (split);

        if (delay_ms > 0)
          g_usleep (delay_ms * 1000);
      }
    }
  split_finish (split);
}

/* Sends the commands of the pipeline @call to their nodes and reassembles
 * the replies in order. @slots: the slot of each command
 * (REDIS_CLUSTER_SLOT_NONE: any), @offsets: where each one starts in the
 * payload (n + 1 entries). */
static void
split_pipeline (RedisClusterPool *self,
                RedisCall        *call,
                const gint       *slots,
                const gsize      *offsets,
                guint             n,
                gboolean          reads_only)
{
  Split *split = g_new0 (Split, 1);

  split->reads_only = reads_only;

  split->self = g_object_ref (self);
  split->outer = redis_call_ref (call);
  split->result = g_ptr_array_new_full (n, reply_unref0);
  g_ptr_array_set_size (split->result, (gint) n);
  split->slots = g_memdup2 (slots, n * sizeof (gint));
  split->offsets = g_memdup2 (offsets, (n + 1) * sizeof (gsize));
  split->deadline = retry_deadline (self, call);
  split->any_slot = REDIS_CLUSTER_SLOT_NONE;
  for (guint i = 0; i < n && split->any_slot < 0; i++)
    split->any_slot = slots[i];
  split->next = entries_new ();
  for (guint i = 0; i < n; i++)
    {
      Entry entry = { i, NULL, FALSE };

      g_array_append_val (split->next, entry);
    }

  if (call->waiter != NULL)
    split_run_sync (split);
  else
    split_round_async (split);
}

/* ---- commands for every node ---------------------------------------------- */

/* A command of the broadcast table (redis-cluster-broadcast.c) sent to
 * every primary or every node, each copy as a one-command pipeline (its
 * reply comes back as it is, an error reply too), the replies combined by
 * the command's response policy once all are in. */
typedef struct
{
  RedisClusterPool            *self;
  RedisCall                   *outer;
  const RedisClusterBroadcast *rule;
  GPtrArray                   *addresses;   /* char *, per node */
  RedisReply                 **replies;     /* per node… */
  GError                     **errors;      /* …or this */
  guint                        n;
  guint                        left;
} Broadcast;

typedef struct
{
  Broadcast *broadcast;
  guint      node;
} BroadcastPart;

static void
broadcast_node_done (Broadcast *broadcast,
                     guint      node,
                     GPtrArray *replies,
                     GError    *error)
{
  if (replies != NULL && replies->len == 1)
    broadcast->replies[node] = redis_reply_ref (replies->pdata[0]);
  else if (replies != NULL)
    broadcast->errors[node] = g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                           "Expected one reply, got %u", replies->len);
  else
    broadcast->errors[node] = error;
  g_clear_pointer (&replies, g_ptr_array_unref);
}

static void
broadcast_finish (Broadcast *broadcast)
{
  GError *error = NULL;
  RedisReply *reply = redis_cluster_broadcast_combine (broadcast->rule,
                                                       (const char * const *) broadcast->addresses->pdata,
                                                       broadcast->replies, broadcast->errors,
                                                       broadcast->n, &error);

  if (reply == NULL)
    redis_call_fail (broadcast->outer, error);
  else
    {
      broadcast->outer->reply = reply;
      redis_call_finish_replies (broadcast->outer);
    }
  for (guint i = 0; i < broadcast->n; i++)
    {
      g_clear_pointer (&broadcast->replies[i], redis_reply_unref);
      g_clear_error (&broadcast->errors[i]);
    }
  g_free (broadcast->replies);
  g_free (broadcast->errors);
  g_ptr_array_unref (broadcast->addresses);
  redis_call_unref (broadcast->outer);
  g_object_unref (broadcast->self);
  g_free (broadcast);
}

static void
broadcast_reply_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  BroadcastPart *part = user_data;
  Broadcast *broadcast = part->broadcast;
  GError *error = NULL;
  GPtrArray *replies = g_task_propagate_pointer (G_TASK (result), &error);

  /* Every copy calls back in the caller's context, one at a time. */
  broadcast_node_done (broadcast, part->node, replies, error);
  g_free (part);
  if (--broadcast->left == 0)
    broadcast_finish (broadcast);
}

/* The pools the rule sends to, in list-model order, and their addresses. */
static GPtrArray *
broadcast_targets (RedisClusterPool            *self,
                   const RedisClusterBroadcast *rule,
                   GPtrArray                   *addresses)
{
  GPtrArray *pools = g_ptr_array_new_with_free_func (g_object_unref);

  g_mutex_lock (&self->lock);
  if (!self->closed)
    {
      g_autofree gboolean *owner = g_new0 (gboolean, self->nodes->len);

      for (guint s = 0; s < REDIS_CLUSTER_N_SLOTS; s++)
        if (self->slots[s] != NO_NODE)
          owner[self->slots[s]] = TRUE;
      for (guint i = 0; i < self->nodes->len; i++)
        if (owner[i] || rule->request == REDIS_CLUSTER_REQUEST_ALL_NODES)
          {
            Node *node = self->nodes->pdata[i];

            g_ptr_array_add (pools, g_object_ref (node_pool_locked (self, i)));
            g_ptr_array_add (addresses, g_strdup (node->address));
          }
    }
  g_mutex_unlock (&self->lock);
  return pools;
}

static void
broadcast_call (RedisClusterPool            *self,
                RedisCall                   *call,
                const RedisClusterBroadcast *rule)
{
  g_autoptr(GPtrArray) pools = NULL;
  g_autoptr(GBytes) payload = call->payload != NULL ? g_bytes_ref (call->payload) : g_bytes_new (call->data, call->len);
  g_autofree RedisCallWaiter *waiters = NULL;
  Broadcast *broadcast = g_new0 (Broadcast, 1);

  broadcast->self = g_object_ref (self);
  broadcast->outer = redis_call_ref (call);
  broadcast->rule = rule;
  broadcast->addresses = g_ptr_array_new_with_free_func (g_free);
  pools = broadcast_targets (self, rule, broadcast->addresses);
  broadcast->n = broadcast->left = pools->len;
  broadcast->replies = g_new0 (RedisReply *, pools->len);
  broadcast->errors = g_new0 (GError *, pools->len);
  if (pools->len == 0)
    {
      redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                  "The cluster pool is closed, or was never initialized"));
      g_free (broadcast->replies);
      g_free (broadcast->errors);
      g_ptr_array_unref (broadcast->addresses);
      redis_call_unref (broadcast->outer);
      g_object_unref (broadcast->self);
      g_free (broadcast);
      return;
    }

  if (call->waiter != NULL)
    waiters = g_new (RedisCallWaiter, pools->len);
  for (guint i = 0; i < pools->len; i++)
    {
      RedisCall *inner;

      if (waiters != NULL)
        {
          redis_call_waiter_init (&waiters[i]);
          inner = redis_call_new_sync (REDIS_CALL_PIPELINE, payload, 1, call->cancellable, &waiters[i]);
        }
      else
        {
          BroadcastPart *part = g_new (BroadcastPart, 1);
          g_autoptr(GTask) task = NULL;

          part->broadcast = broadcast;
          part->node = i;
          task = g_task_new (NULL, NULL, broadcast_reply_cb, part);
          g_task_set_check_cancellable (task, FALSE);
          inner = redis_call_new (REDIS_CALL_PIPELINE, payload, 1, task);
          if (call->cancellable != NULL)
            inner->cancellable = g_object_ref (call->cancellable);
        }
      inner->flags = call->flags & ~REDIS_COMMAND_FLAG_REPLY_MASK;
      inner->block_ms = call->block_ms;
      REDIS_CLIENT_GET_IFACE (pools->pdata[i])->submit (pools->pdata[i], inner);
      redis_call_unref (inner);
    }
  if (waiters == NULL)
    return;
  for (guint i = 0; i < pools->len; i++)
    {
      GError *error = NULL;
      GPtrArray *replies = redis_call_waiter_wait (&waiters[i], &error);

      broadcast_node_done (broadcast, i, replies, error);
    }
  broadcast_finish (broadcast);
}

/* ---- commands outside the key table ----------------------------------- */

static void route_call (RedisClusterPool *self,
                        RedisCall        *call,
                        const gint       *slots,
                        const gsize      *offsets,
                        guint             n,
                        gboolean          reads_only);

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
  gboolean          reads_only;   /* so far: the commands the table or cache knew */
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
      gboolean readonly = FALSE;

      if (query->slots[i] != REDIS_CLUSTER_SLOT_UNKNOWN)
        continue;
      query->slots[i] = redis_cluster_key_query_finish (self->key_cache,
                                                        call->data + query->offsets[i],
                                                        query->offsets[i + 1] - query->offsets[i],
                                                        r < replies->len ? replies->pdata[r] : NULL,
                                                        r + 1 < replies->len ? replies->pdata[r + 1] : NULL,
                                                        &readonly, &local_error);
      query->reads_only = query->reads_only && readonly;
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
  route_call (self, call, query->slots, query->offsets, query->n, query->reads_only);

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
           guint             n,
           gboolean          reads_only)
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
  query->reads_only = reads_only;

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
  /* Whether every command only reads (the wrapper's MULTI or CLIENT REPLY
   * do not: transactions and no-reply calls stay on the primaries). */
  gboolean reads_only = self->read_from != REDIS_CLUSTER_READ_FROM_PRIMARY;
  gsize offset = 0;
  guint n = 0;

  /* The commands of the payload: user commands and, for a transaction or
   * a no-reply call, the wrapper's (MULTI, CLIENT REPLY…, keyless). */
  while (offset < call->len)
    {
      gsize consumed = 0;
      gboolean readonly = FALSE;
      gint s = redis_cluster_command_slot (call->data + offset, call->len - offset, &consumed,
                                           self->key_cache, &readonly, &error);

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
        unknown = TRUE;   /* read-only or not: the servers tell */
      else
        reads_only = reads_only && readonly;
    }
  offsets[n] = offset;

  /* A command for every node (FLUSHALL, SCRIPT LOAD…), called alone: see
   * redis-cluster-broadcast.c. They all have no key, so a command with one
   * (the common case) is not parsed again for this. In a pipeline or a
   * transaction it is routed as a keyless command, to one primary. */
  if (call->kind == REDIS_CALL_COMMAND && slots[0] < 0)
    {
      const RedisClusterBroadcast *rule = redis_cluster_broadcast_lookup (call->data, call->len);

      if (rule != NULL)
        {
          broadcast_call (self, call, rule);
          return;
        }
    }

  if (unknown)
    key_query (self, call, slots, offsets, n, reads_only);
  else
    route_call (self, call, slots, offsets, n, reads_only);
}

/* Sends @call where the slots of its commands (@slots, none UNKNOWN) say;
 * with @reads_only (every command read-only, and read-from not primary) a
 * command or a pipeline may go to replicas. */
static void
route_call (RedisClusterPool *self,
            RedisCall        *call,
            const gint       *slots,
            const gsize      *offsets,
            guint             n,
            gboolean          reads_only)
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

  if (call->kind == REDIS_CALL_PIPELINE)
    {
      /* Must match what the outer call expects. */
      g_assert (n == call->n_commands);
      split_pipeline (self, call, slots, offsets, n, reads_only);
      return;
    }

  if (call->kind == REDIS_CALL_COMMAND || call->kind == REDIS_CALL_TRANSACTION)
    {
      Op *op = g_new0 (Op, 1);

      op->self = g_object_ref (self);
      op->outer = redis_call_ref (call);
      op->payload = call->payload != NULL ? g_bytes_ref (call->payload) : g_bytes_new (call->data, call->len);
      op->slot = slot;
      if (call->kind == REDIS_CALL_TRANSACTION)
        op->slots = g_memdup2 (slots, n * sizeof (gint));
      op->reads_only = reads_only && call->kind == REDIS_CALL_COMMAND;
      op->deadline = retry_deadline (self, call);
      if (call->waiter != NULL)
        op_run_sync (op);
      else
        op_send_async (op);
      return;
    }

  /* A no-reply call: to the owner, as it is. Its replies are never read
   * (the server is told not to send them), so a MOVED or ASK it gets is
   * never seen, and it cannot follow one. */
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
  stop_down_refresh (self);
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

/* The URI parameter read_from= (the cluster pool's own: the nodes' pools
 * do not get it), parsed as the pools parse their choices. */
static const RedisOptionsChoice read_from_choices[] = {
  { "primary", REDIS_CLUSTER_READ_FROM_PRIMARY },
  { "replica", REDIS_CLUSTER_READ_FROM_REPLICA },
  { "replica_preferred", REDIS_CLUSTER_READ_FROM_REPLICA_PREFERRED },
  { NULL },
};

static const RedisOptionsParam read_from_param = {
  .name = "read_from", .parse = redis_options_param_choice, .choices = read_from_choices,
};

G_STATIC_ASSERT (sizeof (RedisClusterReadFrom) == sizeof (int));

/* Reads the URI: the seeds (authority and addr=), read_from=, the rest
 * for the nodes. */
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
        else if (g_str_has_prefix (params[i], "read_from="))
          {
            g_autofree char *value = g_uri_unescape_string (params[i] + 10, NULL);

            /* Not quoted: the URI may carry a password. */
            if (value == NULL ||
                read_from_param.parse (&read_from_param, value, &self->read_from) != REDIS_OPTIONS_PARAM_OK)
              {
                g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                                     "read_from must be primary, replica or replica_preferred");
                return FALSE;
              }
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

  /* Every node's pool has the options of the URI: the first tells. */
  {
    g_autoptr(RedisPool) first = NULL;
    guint ms = 0;

    g_mutex_lock (&self->lock);
    first = g_object_ref (((Node *) self->nodes->pdata[0])->pool);
    g_mutex_unlock (&self->lock);
    g_object_get (first, "command-timeout", &ms, NULL);
    g_atomic_int_set (&self->command_timeout_ms, ms);
  }

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
  stop_down_refresh (self);
  /* Frees the provider's data now; the node pools' subscribers that
   * outlive the cluster keep the last credentials. */
  if (self->credentials != NULL)
    redis_credentials_drop_provider (self->credentials, self);
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
  g_free (self->last_owners);
  g_free (self->slot_replicas);
  g_ptr_array_unref (self->replica_sets);
  redis_cluster_key_cache_free (self->key_cache);
  g_main_context_unref (self->context);
  g_free (self->uri);
  g_strfreev (self->seeds);
  g_free (self->scheme);
  g_free (self->userinfo);
  g_free (self->path);
  g_free (self->query);
  g_free (self->default_host);
  address_map_unref (self->address_map);
  redis_credentials_unref (self->credentials);
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
    case PROP_READ_FROM:
      g_value_set_enum (value, self->read_from);
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
    case PROP_READ_FROM:
      self->read_from = g_value_get_enum (value);
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

  /**
   * RedisClusterPool:read-from:
   *
   * Where read-only commands go: to the primary of their slot (the
   * default), or to its replicas (see [enum@Redis.ClusterReadFrom]). A
   * command is read-only when Redis flags it `readonly` (`GET`, `MGET`,
   * `HGETALL`, `ZRANGE`, `EVAL_RO`…; for a command outside the built-in
   * table, as `COMMAND INFO` tells); a pipeline goes to replicas only when
   * all its commands are. Transactions, no-reply calls and leases stay on
   * primaries. The URI parameter `read_from=` (`primary`, `replica`,
   * `replica_preferred`), when given, wins over this property.
   *
   * A replica answers what it has replicated so far: a read right after a
   * write may not see it.
   */
  properties[PROP_READ_FROM] =
    g_param_spec_enum ("read-from", NULL, NULL, REDIS_TYPE_CLUSTER_READ_FROM,
                       REDIS_CLUSTER_READ_FROM_PRIMARY,
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
  self->last_owners = g_new (guint16, REDIS_CLUSTER_N_SLOTS);
  self->slot_replicas = g_new (guint16, REDIS_CLUSTER_N_SLOTS);
  self->replica_sets = g_ptr_array_new_with_free_func (free_replica_set);
  for (guint i = 0; i < REDIS_CLUSTER_N_SLOTS; i++)
    self->slots[i] = self->read_slots[i] = self->last_owners[i] = self->slot_replicas[i] = NO_NODE;
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
 * redis_cluster_pool_set_address_map:
 * @self: a [class@Redis.ClusterPool]
 * @func: (nullable) (scope notified) (closure user_data) (destroy notify):
 *   the hook, or %NULL to connect to the announced addresses
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data when the hook is replaced or the
 *   pool finalized
 *
 * Sets a hook that rewrites the node addresses the cluster announces
 * (in its slot map, and in `MOVED` and `ASK` redirections) into the
 * addresses to connect to: for nodes behind NAT, in containers, or
 * reached through a tunnel. The seed addresses are not rewritten: they
 * are the caller's own. A node's pool is made for the rewritten address,
 * which is the address [method@Redis.ClusterPool.get_info] and the
 * signals name.
 *
 * Set it before the pool is initialized, so that the first slot map is
 * read through it: create the pool with g_object_new() (from Python,
 * `Redis.ClusterPool(uri=…)`), set the hook, then call
 * g_initable_init() or g_async_initable_init_async() (from Python,
 * `cluster.init(None)`, or `init_async()`):
 *
 * ```python
 * def reachable(host, port):
 *     return f'127.0.0.1:{port}' if host == '10.0.0.5' else None
 *
 * cluster = Redis.ClusterPool(uri='redis://127.0.0.1:7000')
 * cluster.set_address_map(reachable)
 * ```
 *
 * Set later, it applies to the addresses read from then on; nodes
 * already known keep their pools.
 *
 * The hook is called without any lock held, in whichever thread reads
 * the address: the thread of a sync call, the thread-default main context
 * of an async call's caller, or that of the thread that created the pool
 * for a refresh of the slot map. It must be thread-safe when the pool is
 * used from several threads, must not block, and must not call the
 * cluster pool.
 */
void
redis_cluster_pool_set_address_map (RedisClusterPool           *self,
                                    RedisClusterAddressMapFunc  func,
                                    gpointer                    user_data,
                                    GDestroyNotify              notify)
{
  AddressMap *map = NULL;
  AddressMap *old;

  g_return_if_fail (REDIS_IS_CLUSTER_POOL (self));

  if (func != NULL)
    {
      map = g_new (AddressMap, 1);
      map->ref_count = 1;
      map->func = func;
      map->user_data = user_data;
      map->notify = notify;
    }
  else if (notify != NULL)
    notify (user_data);

  g_mutex_lock (&self->lock);
  old = self->address_map;
  self->address_map = map;
  g_mutex_unlock (&self->lock);
  address_map_unref (old);
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
 * redis_cluster_pool_get_read_from:
 * @self: a [class@Redis.ClusterPool]
 *
 * Returns [property@Redis.ClusterPool:read-from], as the URI set it once
 * the pool is initialized.
 *
 * Returns: where read-only commands go
 */
RedisClusterReadFrom
redis_cluster_pool_get_read_from (RedisClusterPool *self)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_POOL (self), REDIS_CLUSTER_READ_FROM_PRIMARY);

  return self->read_from;
}

/**
 * redis_cluster_pool_get_info:
 * @self: a [class@Redis.ClusterPool]
 *
 * Returns a snapshot of the pool as a `a{sv}` dictionary: `nodes` (`as`,
 * the node addresses in list-model order), `ranges` (`a(qqs)`, the slot
 * ranges and their primary), `slots-covered` (`u`), `replicas` (`u`,
 * the replicas that serve reads, online, in the slot map read last;
 * counted whatever [property@Redis.ClusterPool:read-from] is), `moved`, `ask`,
 * `tryagain` (`t`, redirections and retries followed so far),
 * `unreached` (`t`, sends retried because their node could not be
 * reached and nothing was written), `refreshes` (`t`, slot map reads) and `key-queries` (`t`, calls that
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
  g_variant_builder_add (&builder, "{sv}", "replicas", g_variant_new_uint32 (self->n_replicas));
  g_variant_builder_add (&builder, "{sv}", "moved", g_variant_new_uint64 (self->n_moved));
  g_variant_builder_add (&builder, "{sv}", "ask", g_variant_new_uint64 (self->n_ask));
  g_variant_builder_add (&builder, "{sv}", "tryagain", g_variant_new_uint64 (self->n_tryagain));
  g_variant_builder_add (&builder, "{sv}", "unreached", g_variant_new_uint64 (self->n_unreached));
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

/**
 * redis_cluster_pool_create_subscriber:
 * @self: a [class@Redis.ClusterPool]
 *
 * Makes a [class@Redis.ClusterSubscriber] on the nodes of the cluster:
 * each shard channel is subscribed on the node that owns its slot, with
 * the options of the cluster pool's nodes. It connects to a node when the
 * first name is subscribed there.
 *
 * Returns: (transfer full): a new cluster subscriber
 */
RedisClusterSubscriber *
redis_cluster_pool_create_subscriber (RedisClusterPool *self)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_POOL (self), NULL);

  return redis_cluster_subscriber_new (self);
}

/* ---- credential rotation ------------------------------------------------ */

/* The shared credentials (a new reference), made empty if no node exists
 * yet: the first node pool then takes them instead of the URI's. With
 * @pools, the node pools too (new references). */
static RedisCredentials *
cluster_credentials (RedisClusterPool  *self,
                     GPtrArray        **pools)
{
  RedisCredentials *credentials;

  g_mutex_lock (&self->lock);
  if (self->credentials == NULL)
    {
      RedisOptions *empty = redis_options_new ();

      self->credentials = redis_credentials_new (empty);
      redis_options_free (empty);
    }
  credentials = redis_credentials_ref (self->credentials);
  if (pools != NULL)
    {
      *pools = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < self->nodes->len; i++)
        g_ptr_array_add (*pools, g_object_ref (((Node *) g_ptr_array_index (self->nodes, i))->pool));
    }
  g_mutex_unlock (&self->lock);
  return credentials;
}

/**
 * redis_cluster_pool_set_credentials:
 * @self: a [class@Redis.ClusterPool]
 * @username: (nullable): the ACL user, or %NULL for the `default` user
 * @password: (nullable): the password (or token), or %NULL for none
 *
 * Changes the credentials of every node at run time, for example when
 * the cluster's password is rotated (`ACL SETUSER` or `CONFIG SET
 * requirepass` on every node).
 *
 * It applies to every node's pool as [method@Redis.Pool.set_credentials]
 * does: their shared connections and idle dedicated ones are
 * re-authenticated in place, and every connection opened from now on
 * uses the new credentials, including the connections of nodes the
 * cluster meets later (a node added, a failover's new primary). The
 * subscribers of [method@Redis.ClusterPool.create_subscriber] use them
 * from their next reconnect (a subscribed connection cannot
 * re-authenticate: see [method@Redis.Subscriber.set_credentials]).
 *
 * With @password %NULL, new connections send no `AUTH`; a @username needs
 * a @password. The password is copied and never logged, put into an error
 * message or returned by a property. May be called from any thread.
 */
void
redis_cluster_pool_set_credentials (RedisClusterPool *self,
                                    const char       *username,
                                    const char       *password)
{
  g_autoptr(GPtrArray) pools = NULL;
  RedisCredentials *credentials;

  g_return_if_fail (REDIS_IS_CLUSTER_POOL (self));
  g_return_if_fail (username == NULL || password != NULL);

  credentials = cluster_credentials (self, &pools);
  /* For the nodes made from now on; each pool re-authenticates its own. */
  redis_credentials_set (credentials, username, password);
  redis_credentials_unref (credentials);
  for (guint i = 0; i < pools->len; i++)
    redis_pool_set_credentials (g_ptr_array_index (pools, i), username, password);
}

typedef struct
{
  GWeakRef                         cluster;
  RedisClusterCredentialsProvider  func;
  gpointer                         data;
  GDestroyNotify                   destroy;
} ClusterProvider;

static void
cluster_provider_free (gpointer data)
{
  ClusterProvider *provider = data;

  g_weak_ref_clear (&provider->cluster);
  if (provider->destroy != NULL)
    provider->destroy (provider->data);
  g_free (provider);
}

/* The cluster pool's context. */
static void
cluster_provider_cb (RedisCredentialsRequest *request,
                     gpointer                 data)
{
  ClusterProvider *provider = data;
  RedisClusterPool *cluster = g_weak_ref_get (&provider->cluster);

  if (cluster == NULL)
    return;   /* the request, dropped, fails */
  provider->func (cluster, request, provider->data);
  g_object_unref (cluster);
}

/**
 * redis_cluster_pool_set_credentials_provider:
 * @self: a [class@Redis.ClusterPool]
 * @provider: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   the function asked for credentials, or %NULL to stop asking
 * @user_data: (nullable): data for @provider
 * @destroy: (nullable): frees @user_data when the provider is replaced or
 *   the cluster pool is disposed
 *
 * Sets a function asked for credentials before each connect of a shared
 * connection of any node's pool, present or future, and of the
 * subscribers of [method@Redis.ClusterPool.create_subscriber], as
 * [method@Redis.Pool.set_credentials_provider] does for one pool: it is
 * called in the thread-default main context of the cluster pool's
 * creation, and answered then or later, from any thread. Its answer
 * becomes the credentials of every node (their dedicated connections use
 * the last answer).
 *
 * Set it before the cluster pool is initialized for it to be asked for
 * the first connections; the credentials of the URI are then not used.
 */
void
redis_cluster_pool_set_credentials_provider (RedisClusterPool                *self,
                                             RedisClusterCredentialsProvider  provider,
                                             gpointer                         user_data,
                                             GDestroyNotify                   destroy)
{
  RedisCredentials *credentials;
  ClusterProvider *p;

  g_return_if_fail (REDIS_IS_CLUSTER_POOL (self));

  credentials = cluster_credentials (self, NULL);
  if (provider == NULL)
    {
      redis_credentials_drop_provider (credentials, self);
      if (destroy != NULL)
        destroy (user_data);
    }
  else
    {
      p = g_new0 (ClusterProvider, 1);
      g_weak_ref_init (&p->cluster, self);
      p->func = provider;
      p->data = user_data;
      p->destroy = destroy;
      redis_credentials_set_provider (credentials, self, self->context,
                                      cluster_provider_cb, p, cluster_provider_free);
    }
  redis_credentials_unref (credentials);
}
