/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-client-private.h"
#include "redis-cluster-pool-private.h"
#include "redis-cluster-subscriber-private.h"
#include "redis-error.h"
#include "redis-message-private.h"
#include "redis-pool.h"
#include "redis-subscriber-private.h"

/**
 * RedisClusterSubscriber:
 *
 * Pub/Sub on a Redis Cluster, made by
 * [method@Redis.ClusterPool.create_subscriber]: shard channels
 * (`SSUBSCRIBE`, Redis 7.0) are subscribed on the primary that owns their
 * slot, channels and patterns (`SUBSCRIBE`, `PSUBSCRIBE`, which reach
 * every node of a cluster) on one node. Messages are the detailed
 * [signal@Redis.ClusterSubscriber::message] signal, with the detail
 * semantics of [signal@Redis.Subscriber::message]: the channel for
 * channel and shard messages, the pattern for pattern messages.
 *
 * Examples in C and Python are on the [Cluster](cluster.html) page,
 * section "Sharded pub/sub".
 *
 * There is one [class@Redis.Subscriber] per node that has names, made
 * with the options of the cluster pool's nodes (TLS, ACL, timeouts…), so
 * each node's connection reconnects and resubscribes on its own; the
 * cluster subscriber re-emits its signals with the node's address:
 * [signal@Redis.ClusterSubscriber::connection-lost] and
 * [signal@Redis.ClusterSubscriber::resubscribed].
 *
 * When a shard channel's slot moves to another node (resharding, or a
 * failover), the cluster subscriber subscribes to it on the new owner and
 * emits [signal@Redis.ClusterSubscriber::resubscribed] with the new
 * node's address once it is confirmed; messages published in between may
 * be lost. A slot that moves while its node is up is seen at once: the
 * node unsubscribes the channel itself (Redis 7.0 sends `sunsubscribe`),
 * and the slot map is read again. A node that is lost is watched: the
 * slot map is read every 500 ms until the node is back or its slots have
 * a new owner, and the channels and patterns of a lost node move to
 * another one the same way. Every slot map change seen by the cluster
 * pool ([signal@Redis.ClusterPool::topology-changed]) is checked too.
 *
 * Signals are emitted in the thread-default main context of the thread
 * that created the cluster subscriber; call it from that thread.
 */

/*
 * How it works.
 *
 * The wanted names live here, each with the address of the node it is
 * subscribed on (shards: a table channel → address, NULL while it has to
 * be placed again; channels and patterns: sets, all on global_address).
 * A request changes the tables under the lock, groups its names per node,
 * and sends one request per node to that node's RedisSubscriber (created
 * on first use, initialized before each request: once only, see
 * redis-init.c); it finishes when every node has confirmed. A `MOVED`
 * refusal (the map was stale) reads the map again and sends the names to
 * their owner, at most MAX_HOPS times, waiting longer each time (during a
 * failover, the map of one node may name the replica a moment before the
 * replica takes the slots).
 *
 * place() makes the tables agree with the slot map: a shard channel
 * whose owner is not its node (or that has none) is sunsubscribed from the
 * old node (which may already have dropped it) and subscribed on the
 * owner; channels and patterns move only when their node is down (both
 * nodes up would deliver a message twice). place() runs after every map
 * read that a loss asked for, and on topology-changed. A move that fails
 * leaves its names to place (address NULL) and place() runs again
 * RETRY_PLACE_MS later, until they are placed.
 */

#define MAX_HOPS          5
#define MOVED_FIRST_MS    50      /* doubled at each hop: 1.55 s in all */
#define LOST_REFRESH_MS   500
#define RETRY_PLACE_MS    500

typedef struct
{
  RedisClusterSubscriber *self;         /* not a reference: nodes die with it */
  char                   *address;
  RedisSubscriber        *subscriber;
  GSource                *watch_source; /* while lost: reads the slot map */
} Node;

struct _RedisClusterSubscriber
{
  GObject           parent_instance;

  RedisClusterPool *cluster;
  GMainContext     *context;
  gulong            topology_id;

  GMutex            lock;               /* guards what follows */
  GHashTable       *nodes;              /* address → Node* */
  GHashTable       *shards;             /* channel → address (NULL: to place) */
  GHashTable       *global[2];          /* channels, patterns: sets */
  char             *global_address;     /* their node; NULL: none yet */
  gboolean          global_unplaced;    /* their move failed */
  GSource          *retry_source;       /* place() again: a move failed */
  gboolean          closed;
};

G_DEFINE_FINAL_TYPE (RedisClusterSubscriber, redis_cluster_subscriber, G_TYPE_OBJECT)

enum
{
  SIGNAL_MESSAGE,
  SIGNAL_CONNECTION_LOST,
  SIGNAL_RESUBSCRIBED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_STATIC_ASSERT (REDIS_SUBSCRIPTION_KIND_CHANNEL == 0 && REDIS_SUBSCRIPTION_KIND_PATTERN == 1);

typedef void     (*RequestAsync)  (RedisSubscriber     *subscriber,
                                   const char * const  *names,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);
typedef gboolean (*RequestFinish) (RedisSubscriber     *subscriber,
                                   GAsyncResult        *result,
                                   GError             **error);

/* [subscribe][kind] */
static const RequestAsync request_async[2][3] = {
  { redis_subscriber_unsubscribe_async, redis_subscriber_punsubscribe_async, redis_subscriber_sunsubscribe_async },
  { redis_subscriber_subscribe_async, redis_subscriber_psubscribe_async, redis_subscriber_ssubscribe_async },
};
static const RequestFinish request_finish[2][3] = {
  { redis_subscriber_unsubscribe_finish, redis_subscriber_punsubscribe_finish, redis_subscriber_sunsubscribe_finish },
  { redis_subscriber_subscribe_finish, redis_subscriber_psubscribe_finish, redis_subscriber_ssubscribe_finish },
};

static void place              (RedisClusterSubscriber *self);
static void refresh_then_place (RedisClusterSubscriber *self);

static guint16
slot_of (const char *name)
{
  return redis_cluster_key_slot ((const guint8 *) name, strlen (name));
}

/* ---- the nodes' subscribers --------------------------------------------- */

static void
node_message_cb (RedisSubscriber *subscriber,
                 RedisMessage    *message,
                 Node            *node)
{
  gsize len;
  const char *name = redis_message_get_name (message, &len);
  /* As RedisSubscriber does: never a quark made from a name off the network. */
  GQuark detail = memchr (name, '\0', len) == NULL ? g_quark_try_string (name) : 0;

  g_signal_emit (node->self, signals[SIGNAL_MESSAGE], detail, message);
}

static gboolean
watch_cb (gpointer data)
{
  Node *node = data;

  refresh_then_place (node->self);
  return G_SOURCE_CONTINUE;
}

static void
node_stop_watch (Node *node)
{
  if (node->watch_source != NULL)
    {
      g_source_destroy (node->watch_source);
      g_clear_pointer (&node->watch_source, g_source_unref);
    }
}

static void
node_lost_cb (RedisSubscriber *subscriber,
              const GError    *error,
              Node            *node)
{
  RedisClusterSubscriber *self = node->self;

  g_signal_emit (self, signals[SIGNAL_CONNECTION_LOST], 0, node->address, error);

  /* A failover gives the node's slots to a replica a few seconds later:
   * watch the map until then, or until the node is back. */
  if (node->watch_source == NULL)
    {
      node->watch_source = g_timeout_source_new (LOST_REFRESH_MS);
      g_source_set_static_name (node->watch_source, "[redispool] cluster subscriber watch");
      g_source_set_callback (node->watch_source, watch_cb, node, NULL);
      g_source_attach (node->watch_source, self->context);
    }
  refresh_then_place (self);
}

static void
node_resubscribed_cb (RedisSubscriber *subscriber,
                      Node            *node)
{
  node_stop_watch (node);
  g_signal_emit (node->self, signals[SIGNAL_RESUBSCRIBED], 0, node->address);
}

typedef struct
{
  GWeakRef self;
  char    *address;
} ShardLost;

static void
shard_lost_free (gpointer data)
{
  ShardLost *lost = data;

  g_weak_ref_clear (&lost->self);
  g_free (lost->address);
  g_free (lost);
}

/* The node gave up the channel's slot: it has to be placed again. */
static void
node_shard_lost (RedisSubscriber *subscriber,
                 const char      *channel,
                 gpointer         data)
{
  ShardLost *lost = data;
  g_autoptr(RedisClusterSubscriber) self = g_weak_ref_get (&lost->self);
  const char *address;

  if (self == NULL)
    return;
  g_mutex_lock (&self->lock);
  address = g_hash_table_lookup (self->shards, channel);
  if (address != NULL && strcmp (address, lost->address) == 0)
    g_hash_table_insert (self->shards, g_strdup (channel), NULL);
  g_mutex_unlock (&self->lock);
  refresh_then_place (self);
}

static void
node_free (gpointer data)
{
  Node *node = data;

  node_stop_watch (node);
  g_signal_handlers_disconnect_by_data (node->subscriber, node);
  redis_subscriber_close (node->subscriber);
  g_object_unref (node->subscriber);
  g_free (node->address);
  g_free (node);
}

/* With the lock held: the node at @address, made if new from @pool's
 * options, its signals in the cluster subscriber's context. */
static Node *
node_lookup_locked (RedisClusterSubscriber *self,
                    const char             *address,
                    RedisPool              *pool)
{
  Node *node = g_hash_table_lookup (self->nodes, address);
  ShardLost *lost;
  gboolean pushed;

  if (node != NULL)
    return node;

  node = g_new0 (Node, 1);
  node->self = self;
  node->address = g_strdup (address);
  pushed = g_main_context_acquire (self->context);
  if (pushed)
    g_main_context_push_thread_default (self->context);
  node->subscriber = redis_pool_create_subscriber (pool);
  if (pushed)
    {
      g_main_context_pop_thread_default (self->context);
      g_main_context_release (self->context);
    }
  lost = g_new0 (ShardLost, 1);
  g_weak_ref_init (&lost->self, self);
  lost->address = g_strdup (address);
  redis_subscriber_set_shard_lost_func (node->subscriber, node_shard_lost, lost, shard_lost_free);
  g_signal_connect (node->subscriber, "message", G_CALLBACK (node_message_cb), node);
  g_signal_connect (node->subscriber, "connection-lost", G_CALLBACK (node_lost_cb), node);
  g_signal_connect (node->subscriber, "resubscribed", G_CALLBACK (node_resubscribed_cb), node);
  g_hash_table_insert (self->nodes, node->address, node);
  return node;
}

/* ---- sending names to a node -------------------------------------------- */

/* What one request (the application's, or place()'s) waits for. */
typedef struct
{
  GTask    *task;       /* NULL for place()'s */
  guint     pending;
  GError   *error;
} Request;

/* One node's share of a request. */
typedef struct
{
  Request                *request;
  RedisClusterSubscriber *self;        /* a reference */
  RedisSubscriber        *subscriber;  /* a reference */
  char                   *address;
  gboolean                subscribe;
  RedisSubscriptionKind   kind;
  GPtrArray              *names;       /* char*, NULL-terminated */
  guint                   hops;
  gboolean                moved;       /* place()'s: emit resubscribed */
} Part;

static void part_send (Part *part);

static void
request_finish_one (Request *request,
                    GError  *error)
{
  if (error != NULL && request->error == NULL)
    request->error = error;
  else
    g_clear_error (&error);
  if (--request->pending > 0)
    return;
  if (request->task != NULL)
    {
      if (request->error != NULL)
        g_task_return_error (request->task, g_steal_pointer (&request->error));
      else
        g_task_return_boolean (request->task, TRUE);
      g_object_unref (request->task);
    }
  g_clear_error (&request->error);
  g_free (request);
}

static Part *
part_new (Request                *request,
          RedisClusterSubscriber *self,
          Node                   *node,
          gboolean                subscribe,
          RedisSubscriptionKind   kind)
{
  Part *part = g_new0 (Part, 1);

  part->request = request;
  part->self = g_object_ref (self);
  part->subscriber = g_object_ref (node->subscriber);
  part->address = g_strdup (node->address);
  part->subscribe = subscribe;
  part->kind = kind;
  part->names = g_ptr_array_new_null_terminated (4, g_free, TRUE);
  request->pending++;
  return part;
}

static void
part_free (Part *part)
{
  g_object_unref (part->self);
  g_object_unref (part->subscriber);
  g_free (part->address);
  g_ptr_array_unref (part->names);
  g_free (part);
}

/* The part of @parts (address → Part*) for @address, made if new. */
static Part *
part_for_node (GHashTable             *parts,
               Request                *request,
               RedisClusterSubscriber *self,
               Node                   *node,
               gboolean                subscribe,
               RedisSubscriptionKind   kind)
{
  Part *part = g_hash_table_lookup (parts, node->address);

  if (part == NULL)
    {
      part = part_new (request, self, node, subscribe, kind);
      g_hash_table_insert (parts, part->address, part);
    }
  return part;
}

/* With the lock held: groups shard @names per owner, records them there
 * and adds them to @parts. */
static void
route_shards_locked (RedisClusterSubscriber *self,
                     GPtrArray              *names,
                     GHashTable             *parts,
                     Request                *request,
                     guint                   hops)
{
  for (guint i = 0; i < names->len && names->pdata[i] != NULL; i++)
    {
      const char *name = names->pdata[i];
      g_autoptr(RedisPool) pool = NULL;
      g_autofree char *owner = redis_cluster_pool_dup_owner (self->cluster, slot_of (name), &pool);
      Part *part;

      if (owner == NULL)
        continue;    /* closed: the request fails below */
      g_hash_table_insert (self->shards, g_strdup (name), g_strdup (owner));
      part = part_for_node (parts, request, self, node_lookup_locked (self, owner, pool),
                           TRUE, REDIS_SUBSCRIPTION_KIND_SHARD);
      part->hops = hops;
      g_ptr_array_add (part->names, g_strdup (name));
    }
}

static void
send_part_array (GPtrArray *parts)
{
  for (guint i = 0; i < parts->len; i++)
    part_send (parts->pdata[i]);
}

static void
send_parts (GHashTable *parts)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, parts);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    part_send (value);
}

static gboolean
is_moved (const GError *error)
{
  return g_error_matches (error, REDIS_ERROR, REDIS_ERROR_SERVER) &&
         g_str_has_prefix (error->message, "MOVED ");
}

/* A shard subscribe refused with MOVED: the map is read again and the
 * names go to their owner. */
static void
part_rerouted_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      data)
{
  Part *part = data;
  RedisClusterSubscriber *self = part->self;
  g_autoptr(GHashTable) parts = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;

  if (!redis_cluster_pool_refresh_finish (REDIS_CLUSTER_POOL (source), result, &error))
    g_debug ("Cluster slot map refresh failed: %s", error->message);
  g_mutex_lock (&self->lock);
  if (self->closed)
    part->request->error = part->request->error != NULL ? part->request->error :
                             g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                  "The cluster subscriber was closed");
  else
    {
      /* Only the names still wanted on the node that refused them. */
      for (guint i = 0; i < part->names->len && part->names->pdata[i] != NULL; i++)
        {
          const char *address = g_hash_table_lookup (self->shards, part->names->pdata[i]);

          if (address == NULL || strcmp (address, part->address) != 0)
            {
              g_ptr_array_remove_index (part->names, i);
              i--;
            }
        }
      route_shards_locked (self, part->names, parts, part->request, part->hops + 1);
    }
  g_mutex_unlock (&self->lock);
  send_parts (parts);
  request_finish_one (part->request, NULL);
  part_free (part);
}

static gboolean
part_reroute_cb (gpointer data)
{
  Part *part = data;

  redis_cluster_pool_refresh_async (part->self->cluster, NULL, part_rerouted_cb, part);
  return G_SOURCE_REMOVE;
}

static gboolean
retry_place_cb (gpointer data)
{
  RedisClusterSubscriber *self = data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->retry_source, g_source_unref);
  g_mutex_unlock (&self->lock);
  refresh_then_place (self);
  return G_SOURCE_REMOVE;
}

/* With the lock held: place() runs again soon. */
static void
schedule_retry_locked (RedisClusterSubscriber *self)
{
  if (self->closed || self->retry_source != NULL)
    return;
  self->retry_source = g_timeout_source_new (RETRY_PLACE_MS);
  g_source_set_static_name (self->retry_source, "[redispool] cluster subscriber retry");
  /* No reference: close() destroys it. */
  g_source_set_callback (self->retry_source, retry_place_cb, self, NULL);
  g_source_attach (self->retry_source, self->context);
}

/* A move of place()'s failed: its names are to place, later. */
static void
place_failed (Part *part)
{
  RedisClusterSubscriber *self = part->self;

  g_mutex_lock (&self->lock);
  if (part->kind == REDIS_SUBSCRIPTION_KIND_SHARD)
    for (guint i = 0; i < part->names->len && part->names->pdata[i] != NULL; i++)
      {
        const char *address = g_hash_table_lookup (self->shards, part->names->pdata[i]);

        if (address != NULL && strcmp (address, part->address) == 0)
          g_hash_table_insert (self->shards, g_strdup (part->names->pdata[i]), NULL);
      }
  else if (g_strcmp0 (self->global_address, part->address) == 0)
    self->global_unplaced = TRUE;
  schedule_retry_locked (self);
  g_mutex_unlock (&self->lock);
}

/* The application's subscribe failed on @part's node: its names are not
 * wanted any more (as with RedisSubscriber, a refused name is not kept). */
static void
request_failed (Part *part)
{
  RedisClusterSubscriber *self = part->self;

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < part->names->len && part->names->pdata[i] != NULL; i++)
    {
      const char *name = part->names->pdata[i];

      if (part->kind == REDIS_SUBSCRIPTION_KIND_SHARD)
        {
          const char *address = g_hash_table_lookup (self->shards, name);

          if (address != NULL && strcmp (address, part->address) == 0)
            g_hash_table_remove (self->shards, name);
        }
      else if (g_strcmp0 (self->global_address, part->address) == 0)
        g_hash_table_remove (self->global[part->kind], name);
    }
  g_mutex_unlock (&self->lock);
}

static void
part_sent_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  Part *part = data;
  GError *error = NULL;

  request_finish[part->subscribe][part->kind] (REDIS_SUBSCRIBER (source), result, &error);
  if (part->subscribe && part->kind == REDIS_SUBSCRIPTION_KIND_SHARD &&
      part->request->task != NULL && part->hops < MAX_HOPS && is_moved (error))
    {
      GSource *delay = g_timeout_source_new (MOVED_FIRST_MS << part->hops);

      g_error_free (error);
      g_source_set_static_name (delay, "[redispool] cluster subscriber MOVED");
      g_source_set_callback (delay, part_reroute_cb, part, NULL);
      g_source_attach (delay, g_main_context_get_thread_default ());
      g_source_unref (delay);
      return;
    }
  if (part->moved)
    {
      if (error == NULL)
        g_signal_emit (part->self, signals[SIGNAL_RESUBSCRIBED], 0, part->address);
      else
        place_failed (part);
    }
  else if (part->subscribe && g_error_matches (error, REDIS_ERROR, REDIS_ERROR_SERVER))
    request_failed (part);   /* refused (a cancelled wait or a timeout stays asked) */
  request_finish_one (part->request, error);
  part_free (part);
}

static void
part_ready_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  Part *part = data;
  GError *error = NULL;

  if (!g_async_initable_init_finish (G_ASYNC_INITABLE (source), result, &error))
    {
      RedisClusterSubscriber *self = part->self;
      gpointer node = NULL;

      /* A subscriber whose first connect failed never connects: the node
       * gets a new one the next time a name goes there. */
      g_mutex_lock (&self->lock);
      node = g_hash_table_lookup (self->nodes, part->address);
      if (node != NULL && ((Node *) node)->subscriber == part->subscriber)
        {
          g_hash_table_steal (self->nodes, part->address);
          if (g_strcmp0 (self->global_address, part->address) == 0)
            {
              self->global_unplaced = TRUE;
              schedule_retry_locked (self);
            }
        }
      else
        node = NULL;
      g_mutex_unlock (&self->lock);
      g_clear_pointer (&node, node_free);

      if (part->subscribe && part->request->task != NULL)
        request_failed (part);
      else if (part->moved)
        place_failed (part);
      request_finish_one (part->request, error);
      part_free (part);
      return;
    }
  request_async[part->subscribe][part->kind] (part->subscriber,
                                              (const char * const *) part->names->pdata,
                                              part->request->task != NULL ?
                                                g_task_get_cancellable (part->request->task) : NULL,
                                              part_sent_cb, part);
}

/* Connects the node's subscriber (once: a failed first connect drops the
 * node, see part_ready_cb()), then sends. */
static void
part_send (Part *part)
{
  /* Not the request's cancellable: the first init is shared by every
   * request of the node, and a cancelled one would fail it for good. */
  g_async_initable_init_async (G_ASYNC_INITABLE (part->subscriber), G_PRIORITY_DEFAULT,
                               NULL, part_ready_cb, part);
}

/* ---- placing names on their owners -------------------------------------- */

static void
place (RedisClusterSubscriber *self)
{
  g_autoptr(GHashTable) parts = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) leaving = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) moving = g_ptr_array_new ();
  g_autoptr(GPtrArray) dropped = g_ptr_array_new_with_free_func (node_free);
  Request *request = g_new0 (Request, 1);
  GHashTableIter iter;
  gpointer key, value;

  /* Held while the parts are made, so that it does not finish early. */
  request->pending = 1;

  g_mutex_lock (&self->lock);
  if (self->closed)
    goto out;

  g_hash_table_iter_init (&iter, self->shards);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const char *name = key, *address = value;
      g_autoptr(RedisPool) pool = NULL;
      g_autofree char *owner = redis_cluster_pool_dup_owner (self->cluster, slot_of (name), &pool);
      Part *part;

      if (owner == NULL || (address != NULL && strcmp (address, owner) == 0))
        continue;
      if (address != NULL && g_hash_table_contains (self->nodes, address))
        {
          /* The old node may still hold it: it must stop (its slot is
           * gone, so no message would come, but a reconnect would ask
           * for it again). */
          part = part_for_node (leaving, request, self, g_hash_table_lookup (self->nodes, address),
                                FALSE, REDIS_SUBSCRIPTION_KIND_SHARD);
          g_ptr_array_add (part->names, g_strdup (name));
        }
      part = part_for_node (parts, request, self, node_lookup_locked (self, owner, pool),
                            TRUE, REDIS_SUBSCRIPTION_KIND_SHARD);
      part->moved = TRUE;
      g_ptr_array_add (part->names, g_strdup (name));
      g_hash_table_iter_replace (&iter, g_strdup (owner));
    }

  /* Channels and patterns: only away from a node that is down (or
   * again, after a move that failed). */
  if (self->global_address != NULL)
    {
      Node *old = g_hash_table_lookup (self->nodes, self->global_address);
      g_autoptr(RedisPool) pool = NULL;
      g_autofree char *owner = redis_cluster_pool_dup_owner (self->cluster, 0, &pool);

      if (owner != NULL &&
          (self->global_unplaced || old == NULL ||
           (strcmp (owner, self->global_address) != 0 &&
            !redis_subscriber_get_connected (old->subscriber))))
        {
          Node *node = node_lookup_locked (self, owner, pool);

          for (guint k = 0; k < 2; k++)
            {
              Part *gone = NULL, *part;

              if (g_hash_table_size (self->global[k]) == 0)
                continue;
              if (old != NULL && old != node)
                gone = part_new (request, self, old, FALSE, k);
              part = part_new (request, self, node, TRUE, k);
              part->moved = TRUE;
              g_hash_table_iter_init (&iter, self->global[k]);
              while (g_hash_table_iter_next (&iter, &key, NULL))
                {
                  if (gone != NULL)
                    g_ptr_array_add (gone->names, g_strdup (key));
                  g_ptr_array_add (part->names, g_strdup (key));
                }
              if (gone != NULL)
                g_ptr_array_add (moving, gone);
              g_ptr_array_add (moving, part);
            }
          g_free (self->global_address);
          self->global_address = g_strdup (owner);
          self->global_unplaced = FALSE;
        }
    }

  /* A lost node whose names all went elsewhere: no need to watch it, nor
   * to keep reconnecting to it (a new one is made if names come back). */
  g_hash_table_iter_init (&iter, self->nodes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Node *node = value;
      gboolean has_names = g_strcmp0 (self->global_address, node->address) == 0;
      GHashTableIter names;
      gpointer address;

      g_hash_table_iter_init (&names, self->shards);
      while (!has_names && g_hash_table_iter_next (&names, NULL, &address))
        has_names = g_strcmp0 (address, node->address) == 0;
      if (!has_names)
        {
          node_stop_watch (node);
          if (!redis_subscriber_get_connected (node->subscriber))
            {
              g_hash_table_iter_steal (&iter);
              g_ptr_array_add (dropped, node);
            }
        }
    }

out:
  g_mutex_unlock (&self->lock);
  send_parts (leaving);
  send_parts (parts);
  send_part_array (moving);
  request_finish_one (request, NULL);
}

static void
refreshed_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  g_autoptr(RedisClusterSubscriber) self = data;
  g_autoptr(GError) error = NULL;

  if (!redis_cluster_pool_refresh_finish (REDIS_CLUSTER_POOL (source), result, &error))
    g_debug ("Cluster slot map refresh failed: %s", error->message);
  place (self);
}

static void
refresh_then_place (RedisClusterSubscriber *self)
{
  redis_cluster_pool_refresh_async (self->cluster, NULL, refreshed_cb, g_object_ref (self));
}

static void
topology_changed_cb (RedisClusterPool       *cluster,
                     RedisClusterSubscriber *self)
{
  place (self);
}

/* ---- GObject ------------------------------------------------------------ */

static void
redis_cluster_subscriber_dispose (GObject *object)
{
  RedisClusterSubscriber *self = REDIS_CLUSTER_SUBSCRIBER (object);

  redis_cluster_subscriber_close (self);
  g_clear_signal_handler (&self->topology_id, self->cluster);

  G_OBJECT_CLASS (redis_cluster_subscriber_parent_class)->dispose (object);
}

static void
redis_cluster_subscriber_finalize (GObject *object)
{
  RedisClusterSubscriber *self = REDIS_CLUSTER_SUBSCRIBER (object);

  g_hash_table_unref (self->nodes);
  g_hash_table_unref (self->shards);
  for (guint k = 0; k < 2; k++)
    g_hash_table_unref (self->global[k]);
  g_free (self->global_address);
  g_clear_object (&self->cluster);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (redis_cluster_subscriber_parent_class)->finalize (object);
}

static void
redis_cluster_subscriber_class_init (RedisClusterSubscriberClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = redis_cluster_subscriber_dispose;
  object_class->finalize = redis_cluster_subscriber_finalize;

  /**
   * RedisClusterSubscriber::message:
   * @self: the cluster subscriber
   * @message: the message
   *
   * Emitted for each message of an active subscription, in the order each
   * node sent them (there is no order between nodes). The detail is the
   * name subscribed to, as for [signal@Redis.Subscriber::message].
   */
  signals[SIGNAL_MESSAGE] =
    g_signal_new ("message", G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED,
                  0, NULL, NULL, g_cclosure_marshal_VOID__BOXED,
                  G_TYPE_NONE, 1, REDIS_TYPE_MESSAGE);
  g_signal_set_va_marshaller (signals[SIGNAL_MESSAGE], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__BOXEDv);

  /**
   * RedisClusterSubscriber::connection-lost:
   * @self: the cluster subscriber
   * @address: the node, `host:port`
   * @error: why
   *
   * Emitted once when the connection to a node is lost: messages of its
   * names are missed until [signal@Redis.ClusterSubscriber::resubscribed]
   * (from the same node once it is back, or from the node that took its
   * slots over).
   */
  signals[SIGNAL_CONNECTION_LOST] =
    g_signal_new ("connection-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_ERROR);

  /**
   * RedisClusterSubscriber::resubscribed:
   * @self: the cluster subscriber
   * @address: the node, `host:port`
   *
   * Emitted when names were subscribed again on @address: after its
   * connection came back, or when they moved there from another node (a
   * slot moved, or a failover). Messages published in between may have
   * been lost: re-read the state they described.
   */
  signals[SIGNAL_RESUBSCRIBED] =
    g_signal_new ("resubscribed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
redis_cluster_subscriber_init (RedisClusterSubscriber *self)
{
  g_mutex_init (&self->lock);
  self->context = g_main_context_ref_thread_default ();
  self->nodes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, node_free);
  self->shards = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint k = 0; k < 2; k++)
    self->global[k] = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

RedisClusterSubscriber *
redis_cluster_subscriber_new (RedisClusterPool *cluster)
{
  RedisClusterSubscriber *self = g_object_new (REDIS_TYPE_CLUSTER_SUBSCRIBER, NULL);

  self->cluster = g_object_ref (cluster);
  self->topology_id = g_signal_connect (cluster, "topology-changed",
                                        G_CALLBACK (topology_changed_cb), self);
  return self;
}

/* ---- public API --------------------------------------------------------- */

/* The keys of @table, borrowed (GLib 2.74 has no
 * g_hash_table_get_keys_as_ptr_array()). */
static GPtrArray *
keys_of (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  return keys;
}

static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

static gboolean
check_names (const char * const  *names,
             gboolean             subscribe,
             GError             **error)
{
  if (subscribe && (names == NULL || names[0] == NULL))
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "No name to subscribe to");
      return FALSE;
    }
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    if (!g_utf8_validate (names[i], -1, NULL))
      {
        g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                             "A name is not valid UTF-8");
        return FALSE;
      }
  return TRUE;
}

static void
request_start (RedisClusterSubscriber *self,
               gboolean                subscribe,
               RedisSubscriptionKind   kind,
               const char * const     *names,
               GTask                  *task)
{
  g_autoptr(GHashTable) parts = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) all = NULL;
  g_autoptr(GError) error = NULL;
  Request *request;

  if (!check_names (names, subscribe, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  request = g_new0 (Request, 1);
  request->task = g_object_ref (task);
  request->pending = 1;    /* held while the parts are made */

  g_mutex_lock (&self->lock);
  if (self->closed)
    request->error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                          "The cluster subscriber was closed");
  else if (kind == REDIS_SUBSCRIPTION_KIND_SHARD && subscribe)
    {
      g_autoptr(GPtrArray) wanted = g_ptr_array_new_null_terminated (4, NULL, TRUE);

      for (guint i = 0; names[i] != NULL; i++)
        g_ptr_array_add (wanted, (gpointer) names[i]);
      route_shards_locked (self, wanted, parts, request, 0);
      if (g_hash_table_size (parts) == 0)
        request->error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                              "The cluster pool was closed");
    }
  else if (kind == REDIS_SUBSCRIPTION_KIND_SHARD)
    {
      /* No names: all of them. */
      all = names == NULL || names[0] == NULL ?
              keys_of (self->shards) : NULL;
      for (guint i = 0; all != NULL ? i < all->len : names[i] != NULL; i++)
        {
          /* A copy: in "all", @name is the key removed below. */
          g_autofree char *name = g_strdup (all != NULL ? all->pdata[i] : names[i]);
          gpointer address;
          Node *node;

          if (!g_hash_table_lookup_extended (self->shards, name, NULL, &address))
            continue;
          /* NULL: to place, on no node now. */
          node = address != NULL ? g_hash_table_lookup (self->nodes, address) : NULL;
          if (node != NULL)
            g_ptr_array_add (part_for_node (parts, request, self, node, FALSE, kind)->names,
                             g_strdup (name));
          g_hash_table_remove (self->shards, name);
        }
    }
  else
    {
      GHashTable *set = self->global[kind];
      Part *part = NULL;

      /* No node for them yet, or its subscriber failed to connect: the
       * owner of slot 0 (the others, if any, are placed there again). */
      if (subscribe &&
          (self->global_address == NULL ||
           !g_hash_table_contains (self->nodes, self->global_address)))
        {
          g_autoptr(RedisPool) pool = NULL;

          g_free (self->global_address);
          self->global_address = redis_cluster_pool_dup_owner (self->cluster, 0, &pool);
          if (self->global_address != NULL)
            node_lookup_locked (self, self->global_address, pool);
        }
      if (self->global_address != NULL && g_hash_table_contains (self->nodes, self->global_address))
        {
          all = names == NULL || names[0] == NULL ? keys_of (set) : NULL;
          for (guint i = 0; all != NULL ? i < all->len : names[i] != NULL; i++)
            {
              const char *name = all != NULL ? all->pdata[i] : names[i];

              if (part == NULL)
                part = part_for_node (parts, request, self,
                                      g_hash_table_lookup (self->nodes, self->global_address),
                                      subscribe, kind);
              g_ptr_array_add (part->names, g_strdup (name));
            }
          for (guint i = 0; part != NULL && part->names->pdata[i] != NULL; i++)
            if (subscribe)
              g_hash_table_add (set, g_strdup (part->names->pdata[i]));
            else
              g_hash_table_remove (set, part->names->pdata[i]);
        }
      else if (subscribe)
        request->error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                              "The cluster pool was closed");
      else
        {
          /* Their node is gone: nothing to tell a server. */
          all = names == NULL || names[0] == NULL ? keys_of (set) : NULL;
          for (guint i = 0; all != NULL ? i < all->len : names[i] != NULL; i++)
            {
              g_autofree char *name = g_strdup (all != NULL ? all->pdata[i] : names[i]);

              g_hash_table_remove (set, name);
            }
        }
    }
  g_mutex_unlock (&self->lock);

  send_parts (parts);
  request_finish_one (request, NULL);
}

/* What subscribe and unsubscribe share: their public _async, _finish and
 * _sync are one request each, told apart by @subscribe. */
static void
public_request_async (RedisClusterSubscriber *self,
                      gboolean                subscribe,
                      RedisSubscriptionKind   kind,
                      const char * const     *names,
                      GCancellable           *cancellable,
                      GAsyncReadyCallback     callback,
                      gpointer                user_data,
                      gpointer                source_tag)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  g_task_set_name (task, subscribe ? "[redispool] cluster subscribe"
                                   : "[redispool] cluster unsubscribe");
  request_start (self, subscribe, kind, names, task);
}

static gboolean
public_request_finish (RedisClusterSubscriber  *self,
                       GAsyncResult            *result,
                       gpointer                 source_tag,
                       GError                 **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
public_request_sync (RedisClusterSubscriber  *self,
                     gboolean                 subscribe,
                     RedisSubscriptionKind    kind,
                     const char * const      *names,
                     GCancellable            *cancellable,
                     GError                 **error)
{
  gpointer source_tag = subscribe ? (gpointer) redis_cluster_subscriber_subscribe_async
                                  : (gpointer) redis_cluster_subscriber_unsubscribe_async;
  RedisSyncCall sync;
  gboolean ret;

  redis_sync_call_begin (&sync);
  public_request_async (self, subscribe, kind, names, cancellable,
                        redis_sync_call_store, &sync, source_tag);
  redis_sync_call_wait (&sync);
  ret = public_request_finish (self, sync.result, source_tag, error);
  redis_sync_call_end (&sync);
  return ret;
}

/**
 * redis_cluster_subscriber_subscribe_async:
 * @self: a [class@Redis.ClusterSubscriber]
 * @kind: channels, patterns or shard channels
 * @names: (array zero-terminated=1): the names, at least one
 * @cancellable: (nullable): a #GCancellable: stops the waiting only, the
 *   subscription is made all the same
 * @callback: (scope async): called when every node has confirmed its names
 * @user_data: data for @callback
 *
 * Subscribes to @names: shard channels on the primary that owns each
 * one's slot (several slots and nodes in one call are fine), channels and
 * patterns on one node. A `MOVED` refusal (the slot map was old) is
 * followed. Connects to a node the first time a name goes there.
 *
 * Errors: %REDIS_ERROR_SERVER (a node refused), %REDIS_ERROR_CLOSED,
 * %REDIS_ERROR_INVALID_ARGUMENT (no name, or not UTF-8), connection
 * errors of a node's first connection.
 */
void
redis_cluster_subscriber_subscribe_async (RedisClusterSubscriber *self,
                                          RedisSubscriptionKind   kind,
                                          const char * const     *names,
                                          GCancellable           *cancellable,
                                          GAsyncReadyCallback     callback,
                                          gpointer                user_data)
{
  g_return_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self));
  g_return_if_fail (self->cluster != NULL);
  g_return_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD);

  public_request_async (self, TRUE, kind, names, cancellable, callback, user_data,
                        redis_cluster_subscriber_subscribe_async);
}

/**
 * redis_cluster_subscriber_subscribe_finish:
 * @self: a [class@Redis.ClusterSubscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.ClusterSubscriber.subscribe_async].
 *
 * Returns: %TRUE once every name is subscribed
 */
gboolean
redis_cluster_subscriber_subscribe_finish (RedisClusterSubscriber  *self,
                                           GAsyncResult            *result,
                                           GError                 **error)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self), FALSE);

  return public_request_finish (self, result, redis_cluster_subscriber_subscribe_async, error);
}

/**
 * redis_cluster_subscriber_subscribe_sync:
 * @self: a [class@Redis.ClusterSubscriber]
 * @kind: channels, patterns or shard channels
 * @names: (array zero-terminated=1): the names, at least one
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.ClusterSubscriber.subscribe_async].
 *
 * Returns: %TRUE once every name is subscribed
 */
gboolean
redis_cluster_subscriber_subscribe_sync (RedisClusterSubscriber  *self,
                                         RedisSubscriptionKind    kind,
                                         const char * const      *names,
                                         GCancellable            *cancellable,
                                         GError                 **error)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self), FALSE);
  g_return_val_if_fail (self->cluster != NULL, FALSE);
  g_return_val_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD, FALSE);

  return public_request_sync (self, TRUE, kind, names, cancellable, error);
}

/**
 * redis_cluster_subscriber_unsubscribe_async:
 * @self: a [class@Redis.ClusterSubscriber]
 * @kind: channels, patterns or shard channels
 * @names: (array zero-terminated=1) (nullable): the names; %NULL or empty
 *   for every name of @kind
 * @cancellable: (nullable): a #GCancellable: stops the waiting only
 * @callback: (scope async): called when every node has confirmed
 * @user_data: data for @callback
 *
 * Unsubscribes from @names on the nodes that have them. Once it has
 * finished, no message of those names is emitted.
 */
void
redis_cluster_subscriber_unsubscribe_async (RedisClusterSubscriber *self,
                                            RedisSubscriptionKind   kind,
                                            const char * const     *names,
                                            GCancellable           *cancellable,
                                            GAsyncReadyCallback     callback,
                                            gpointer                user_data)
{
  g_return_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self));
  g_return_if_fail (self->cluster != NULL);
  g_return_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD);

  public_request_async (self, FALSE, kind, names, cancellable, callback, user_data,
                        redis_cluster_subscriber_unsubscribe_async);
}

/**
 * redis_cluster_subscriber_unsubscribe_finish:
 * @self: a [class@Redis.ClusterSubscriber]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.ClusterSubscriber.unsubscribe_async].
 *
 * Returns: %TRUE once every node has confirmed
 */
gboolean
redis_cluster_subscriber_unsubscribe_finish (RedisClusterSubscriber  *self,
                                             GAsyncResult            *result,
                                             GError                 **error)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self), FALSE);

  return public_request_finish (self, result, redis_cluster_subscriber_unsubscribe_async, error);
}

/**
 * redis_cluster_subscriber_unsubscribe_sync:
 * @self: a [class@Redis.ClusterSubscriber]
 * @kind: channels, patterns or shard channels
 * @names: (array zero-terminated=1) (nullable): the names; %NULL or empty
 *   for every name of @kind
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Blocking form of [method@Redis.ClusterSubscriber.unsubscribe_async].
 *
 * Returns: %TRUE once every node has confirmed
 */
gboolean
redis_cluster_subscriber_unsubscribe_sync (RedisClusterSubscriber  *self,
                                           RedisSubscriptionKind    kind,
                                           const char * const      *names,
                                           GCancellable            *cancellable,
                                           GError                 **error)
{
  g_return_val_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self), FALSE);
  g_return_val_if_fail (self->cluster != NULL, FALSE);
  g_return_val_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD, FALSE);

  return public_request_sync (self, FALSE, kind, names, cancellable, error);
}

/**
 * redis_cluster_subscriber_dup_subscriptions:
 * @self: a [class@Redis.ClusterSubscriber]
 * @kind: channels, patterns or shard channels
 *
 * Lists the names of @kind that are subscribed, or being subscribed or
 * moved to another node, sorted.
 *
 * Returns: (transfer full) (array zero-terminated=1): the names
 */
char **
redis_cluster_subscriber_dup_subscriptions (RedisClusterSubscriber *self,
                                            RedisSubscriptionKind   kind)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_null_terminated (8, NULL, TRUE);
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self), NULL);
  g_return_val_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD, NULL);

  g_mutex_lock (&self->lock);
  g_hash_table_iter_init (&iter, kind == REDIS_SUBSCRIPTION_KIND_SHARD ? self->shards : self->global[kind]);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_mutex_unlock (&self->lock);
  g_ptr_array_sort (names, compare_names);
  return (char **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

/**
 * redis_cluster_subscriber_dup_node_address:
 * @self: a [class@Redis.ClusterSubscriber]
 * @kind: channels, patterns or shard channels
 * @name: a subscribed name
 *
 * Tells which node @name is subscribed on.
 *
 * Returns: (transfer full) (nullable): the node's `host:port`, or %NULL if
 *   @name is not subscribed or is waiting to be placed on a new owner
 */
char *
redis_cluster_subscriber_dup_node_address (RedisClusterSubscriber *self,
                                           RedisSubscriptionKind   kind,
                                           const char             *name)
{
  char *address = NULL;

  g_return_val_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self), NULL);
  g_return_val_if_fail (kind <= REDIS_SUBSCRIPTION_KIND_SHARD, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  g_mutex_lock (&self->lock);
  if (kind == REDIS_SUBSCRIPTION_KIND_SHARD)
    address = g_strdup (g_hash_table_lookup (self->shards, name));
  else if (g_hash_table_contains (self->global[kind], name))
    address = g_strdup (self->global_address);
  g_mutex_unlock (&self->lock);
  return address;
}

/**
 * redis_cluster_subscriber_close:
 * @self: a [class@Redis.ClusterSubscriber]
 *
 * Closes the connections to every node; pending requests fail with
 * %REDIS_ERROR_CLOSED and no signal is emitted any more. Dropping the last
 * reference closes it too.
 */
void
redis_cluster_subscriber_close (RedisClusterSubscriber *self)
{
  g_autoptr(GHashTable) nodes = NULL;

  g_return_if_fail (REDIS_IS_CLUSTER_SUBSCRIBER (self));

  g_mutex_lock (&self->lock);
  self->closed = TRUE;
  if (self->retry_source != NULL)
    {
      g_source_destroy (self->retry_source);
      g_clear_pointer (&self->retry_source, g_source_unref);
    }
  nodes = g_steal_pointer (&self->nodes);
  self->nodes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, node_free);
  g_mutex_unlock (&self->lock);
}
