/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* RedisClusterSubscriber against a real 3-primary cluster on loopback:
 * shard channels of every node's slots subscribed on their owner and
 * delivered with the right detail, SPUBLISH from another client, channels
 * and patterns cluster-wide, unsubscribe, and a slot moved with CLUSTER
 * SETSLOT … NODE (the node sends `sunsubscribe`): the channel is
 * subscribed on the new owner and messages flow again; a primary killed:
 * the channel follows its slots to the promoted replica. */

#include <string.h>

#include "redis-test-server.h"
#include "cluster-fixture.h"
#include "test-client-helpers.h"

#define N_NODES 3

static ClusterFixture *fixture;

#define CLI(i, ...) CLUSTER_FIXTURE_CLI (fixture, (i), __VA_ARGS__)

static guint16
slot_of (const char *name)
{
  return redis_cluster_key_slot ((const guint8 *) name, strlen (name));
}

/* The @skip-th name "<prefix>-<n>" whose slot @node owned at the start. */
static char *
channel_on_node (const char *prefix,
                 guint       node,
                 guint       skip)
{
  for (guint n = 0;; n++)
    {
      g_autofree char *name = g_strdup_printf ("%s-%u", prefix, n);

      if (cluster_fixture_initial_owner (fixture, slot_of (name)) == node && skip-- == 0)
        return g_steal_pointer (&name);
    }
}

static char *
node_address (guint node)
{
  return g_strdup_printf ("127.0.0.1:%u", cluster_fixture_port (fixture, node));
}

static gint64
publish (RedisClusterPool *cluster,
         const char       *command,
         const char       *channel,
         const char       *payload)
{
  g_autoptr(GError) error = NULL;
  const char *argv[] = { command, channel, payload, NULL };
  g_autoptr(RedisReply) reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);

  g_assert_no_error (error);
  return redis_reply_get_integer (reply);
}

/* What the handler of one detail saw. */
typedef struct
{
  const char *name;
  guint       count;
  char       *last_payload;
  char       *last_channel;
  RedisSubscriptionKind last_kind;
} Seen;

static void
seen_cb (RedisClusterSubscriber *sub,
         RedisMessage           *message,
         Seen                   *seen)
{
  seen->count++;
  g_free (seen->last_payload);
  g_free (seen->last_channel);
  seen->last_payload = g_strdup (redis_message_get_payload_text (message));
  seen->last_channel = g_strdup (redis_message_get_channel (message));
  seen->last_kind = redis_message_get_kind (message);
}

static void
seen_clear (Seen *seen)
{
  g_clear_pointer (&seen->last_payload, g_free);
  g_clear_pointer (&seen->last_channel, g_free);
}

static void
watch (RedisClusterSubscriber *sub,
       Seen                   *seen)
{
  g_autofree char *signal = g_strdup_printf ("message::%s", seen->name);

  g_signal_connect (sub, signal, G_CALLBACK (seen_cb), seen);
}

static void
count_cb (gpointer  instance,
          RedisMessage *message,
          guint    *count)
{
  (*count)++;
}

static void
subscribe (RedisClusterSubscriber *sub,
           RedisSubscriptionKind   kind,
           const char * const     *names)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_cluster_subscriber_subscribe_sync (sub, kind, names, NULL, &error));
  g_assert_no_error (error);
}

static void
unsubscribe (RedisClusterSubscriber *sub,
             RedisSubscriptionKind   kind,
             const char * const     *names)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_cluster_subscriber_unsubscribe_sync (sub, kind, names, NULL, &error));
  g_assert_no_error (error);
}

/* Shard channels in the slots of all three nodes, in one call. */
static void
test_shards (void)
{
  g_autoptr(RedisClusterPool) cluster = cluster_fixture_pool_new (fixture, NULL);
  g_autoptr(RedisClusterSubscriber) sub = redis_cluster_pool_create_subscriber (cluster);
  char *names[N_NODES + 1] = { NULL };
  Seen seen[N_NODES] = { { 0 } };
  guint all = 0;

  for (guint i = 0; i < N_NODES; i++)
    {
      names[i] = channel_on_node ("orders", i, 0);
      seen[i].name = names[i];
      watch (sub, &seen[i]);
    }
  g_signal_connect (sub, "message", G_CALLBACK (count_cb), &all);
  subscribe (sub, REDIS_SUBSCRIPTION_KIND_SHARD, (const char * const *) names);

  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *address = redis_cluster_subscriber_dup_node_address (sub, REDIS_SUBSCRIPTION_KIND_SHARD, names[i]);
      g_autofree char *expected = node_address (i);
      g_autofree char *payload = g_strdup_printf ("payload %u", i);

      g_assert_cmpstr (address, ==, expected);
      /* SPUBLISH, routed by the cluster pool: one receiver, on the owner. */
      g_assert_cmpint (publish (cluster, "SPUBLISH", names[i], payload), ==, 1);
    }
  WAIT_UNTIL (all == N_NODES, 10000);
  for (guint i = 0; i < N_NODES; i++)
    {
      g_autofree char *payload = g_strdup_printf ("payload %u", i);

      g_assert_cmpuint (seen[i].count, ==, 1);
      g_assert_cmpstr (seen[i].last_channel, ==, names[i]);
      g_assert_cmpstr (seen[i].last_payload, ==, payload);
      g_assert_cmpint (seen[i].last_kind, ==, REDIS_SUBSCRIPTION_KIND_SHARD);
    }

  /* Unsubscribe one: the server has no subscriber left for it. */
  unsubscribe (sub, REDIS_SUBSCRIPTION_KIND_SHARD, (const char *[]) { names[1], NULL });
  g_assert_cmpint (publish (cluster, "SPUBLISH", names[1], "gone"), ==, 0);
  {
    g_auto(GStrv) left = redis_cluster_subscriber_dup_subscriptions (sub, REDIS_SUBSCRIPTION_KIND_SHARD);

    g_assert_cmpuint (g_strv_length (left), ==, 2);
    g_assert_true (g_strv_contains ((const char * const *) left, names[0]));
    g_assert_true (g_strv_contains ((const char * const *) left, names[2]));
  }
  /* And all of them. */
  unsubscribe (sub, REDIS_SUBSCRIPTION_KIND_SHARD, NULL);
  for (guint i = 0; i < N_NODES; i++)
    g_assert_cmpint (publish (cluster, "SPUBLISH", names[i], "gone"), ==, 0);
  {
    g_auto(GStrv) left = redis_cluster_subscriber_dup_subscriptions (sub, REDIS_SUBSCRIPTION_KIND_SHARD);

    g_assert_cmpuint (g_strv_length (left), ==, 0);
  }
  test_iterate_for (50);
  g_assert_cmpuint (all, ==, N_NODES);

  for (guint i = 0; i < N_NODES; i++)
    {
      seen_clear (&seen[i]);
      g_free (names[i]);
    }
}

/* Channels and patterns are cluster-wide: one node has them, a PUBLISH on
 * any node reaches them. */
static void
test_channels_and_patterns (void)
{
  g_autoptr(RedisClusterPool) cluster = cluster_fixture_pool_new (fixture, NULL);
  g_autoptr(RedisClusterSubscriber) sub = redis_cluster_pool_create_subscriber (cluster);
  Seen news = { .name = "news" }, pattern = { .name = "alerts.*" };

  watch (sub, &news);
  watch (sub, &pattern);
  subscribe (sub, REDIS_SUBSCRIPTION_KIND_CHANNEL, (const char *[]) { "news", NULL });
  subscribe (sub, REDIS_SUBSCRIPTION_KIND_PATTERN, (const char *[]) { "alerts.*", NULL });

  for (guint i = 0; i < N_NODES; i++)
    g_free (CLI (i, "PUBLISH", "news", "from every node"));
  g_free (CLI (2, "PUBLISH", "alerts.disk", "full"));
  WAIT_UNTIL (news.count == N_NODES && pattern.count == 1, 10000);
  g_assert_cmpstr (news.last_payload, ==, "from every node");
  g_assert_cmpint (news.last_kind, ==, REDIS_SUBSCRIPTION_KIND_CHANNEL);
  g_assert_cmpstr (pattern.last_channel, ==, "alerts.disk");
  g_assert_cmpint (pattern.last_kind, ==, REDIS_SUBSCRIPTION_KIND_PATTERN);

  unsubscribe (sub, REDIS_SUBSCRIPTION_KIND_CHANNEL, (const char *[]) { "news", NULL });
  g_assert_cmpint (publish (cluster, "PUBLISH", "news", "gone"), ==, 0);
  seen_clear (&news);
  seen_clear (&pattern);
}

static void
resubscribed_cb (RedisClusterSubscriber *sub,
                 const char             *address,
                 GPtrArray              *addresses)
{
  g_ptr_array_add (addresses, g_strdup (address));
}

static void
test_slot_moved (void)
{
  g_autoptr(RedisClusterPool) cluster = cluster_fixture_pool_new (fixture, NULL);
  g_autoptr(RedisClusterSubscriber) sub = redis_cluster_pool_create_subscriber (cluster);
  g_autoptr(GPtrArray) resubscribed = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *moving = channel_on_node ("moving", 0, 0);
  g_autofree char *staying = channel_on_node ("staying", 0, 0);
  g_autofree char *address0 = node_address (0);
  g_autofree char *address1 = node_address (1);
  Seen seen_moving = { .name = moving }, seen_staying = { .name = staying };

  g_assert_cmpuint (slot_of (moving), !=, slot_of (staying));
  watch (sub, &seen_moving);
  watch (sub, &seen_staying);
  g_signal_connect (sub, "resubscribed", G_CALLBACK (resubscribed_cb), resubscribed);
  subscribe (sub, REDIS_SUBSCRIPTION_KIND_SHARD, (const char *[]) { moving, staying, NULL });

  /* Node 0 gives the (empty) slot up behind the pool's back, as a
   * resharding does: when it does, it sends `sunsubscribe` to its
   * subscribers of the slot's shard channels. */
  cluster_fixture_give_slot_of (fixture, moving, 0, 1);
  WAIT_UNTIL (resubscribed->len == 1, 10000);
  g_assert_cmpstr (resubscribed->pdata[0], ==, address1);
  {
    g_autofree char *address = redis_cluster_subscriber_dup_node_address (sub, REDIS_SUBSCRIPTION_KIND_SHARD, moving);
    g_autofree char *receivers = CLI (1, "SPUBLISH", moving, "after the move");
    g_autofree char *others = CLI (0, "SPUBLISH", staying, "still here");

    g_assert_cmpstr (address, ==, address1);
    g_assert_cmpstr (receivers, ==, "1");
    g_assert_cmpstr (others, ==, "1");
  }
  WAIT_UNTIL (seen_moving.count == 1 && seen_staying.count == 1, 10000);
  g_assert_cmpstr (seen_moving.last_payload, ==, "after the move");

  /* And back: node 1 gives it up in turn. */
  cluster_fixture_give_slot_of (fixture, moving, 1, 0);
  WAIT_UNTIL (resubscribed->len == 2, 10000);
  g_assert_cmpstr (resubscribed->pdata[1], ==, address0);
  {
    g_autofree char *receivers = CLI (0, "SPUBLISH", moving, "back home");

    g_assert_cmpstr (receivers, ==, "1");
  }
  WAIT_UNTIL (seen_moving.count == 2, 10000);
  g_assert_cmpstr (seen_moving.last_payload, ==, "back home");
  /* No connection was lost on the way. */
  g_assert_cmpuint (seen_staying.count, ==, 1);
  g_assert_cmpuint (resubscribed->len, ==, 2);

  seen_clear (&seen_moving);
  seen_clear (&seen_staying);
}

static void
count_lost_cb (RedisSubscriber *sub,
               const GError    *error,
               guint           *count)
{
  (*count)++;
}

static guint
n_shard_subscriptions (RedisSubscriber *sub)
{
  g_auto(GStrv) names = redis_subscriber_dup_subscriptions (sub, REDIS_SUBSCRIPTION_KIND_SHARD);

  return g_strv_length (names);
}

/* A plain RedisSubscriber on one node: the server's own `sunsubscribe`
 * (its node gave the slot up) belongs to no call. It is taken, the
 * channel leaves the subscriptions, and the connection stays in step: no
 * loss, and a PING and an SSUBSCRIBE sent after it get their own
 * replies. (Before, the frame went to the call FIFO: the connection was
 * closed as out of step.) */
static void
test_plain_subscriber_sunsubscribed (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u", cluster_fixture_port (fixture, 0));
  g_autoptr(RedisSubscriber) sub = redis_subscriber_new_sync (uri, NULL, &error);
  g_autofree char *moving = channel_on_node ("plain", 0, 0);
  g_autofree char *staying = channel_on_node ("plain", 0, 1);
  guint lost = 0;

  g_assert_no_error (error);
  g_signal_connect (sub, "connection-lost", G_CALLBACK (count_lost_cb), &lost);
  g_assert_true (redis_subscriber_ssubscribe_sync (sub, (const char *[]) { moving, staying, NULL },
                                                   NULL, &error));
  g_assert_no_error (error);

  cluster_fixture_give_slot_of (fixture, moving, 0, 1);
  WAIT_UNTIL (n_shard_subscriptions (sub) == 1, 10000);
  {
    g_auto(GStrv) left = redis_subscriber_dup_subscriptions (sub, REDIS_SUBSCRIPTION_KIND_SHARD);

    g_assert_cmpstr (left[0], ==, staying);
  }
  g_assert_true (redis_subscriber_ping_sync (sub, NULL, &error));
  g_assert_no_error (error);
  /* Its own SUNSUBSCRIBE is still a call's reply. */
  g_assert_true (redis_subscriber_sunsubscribe_sync (sub, (const char *[]) { staying, NULL }, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (redis_subscriber_ssubscribe_sync (sub, (const char *[]) { staying, NULL }, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (lost, ==, 0);

  cluster_fixture_give_slot_of (fixture, moving, 1, 0);
}

static void
lost_cb (RedisClusterSubscriber *sub,
         const char             *address,
         const GError           *error,
         GPtrArray              *addresses)
{
  g_assert_nonnull (error);
  g_ptr_array_add (addresses, g_strdup (address));
}

static gboolean
contains_address (GPtrArray  *addresses,
                  const char *address)
{
  for (guint i = 0; i < addresses->len; i++)
    if (g_strcmp0 (addresses->pdata[i], address) == 0)
      return TRUE;
  return FALSE;
}

/* SIGKILL of a primary: its replica is promoted (cluster-node-timeout 1000)
 * and the channel is subscribed there. Last: the node stays dead. */
static void
test_failover (void)
{
  g_autoptr(RedisClusterPool) cluster = cluster_fixture_pool_new (fixture, NULL);
  g_autoptr(RedisClusterSubscriber) sub = redis_cluster_pool_create_subscriber (cluster);
  g_autoptr(GPtrArray) resubscribed = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *channel = channel_on_node ("failover", 2, 0);
  guint replica = cluster_fixture_replica (fixture, 2, 0);
  g_autofree char *victim_address = node_address (2);
  g_autofree char *replica_address = node_address (replica);
  g_autofree char *address = NULL;
  Seen seen = { .name = channel };
  gint64 killed;

  watch (sub, &seen);
  g_signal_connect (sub, "resubscribed", G_CALLBACK (resubscribed_cb), resubscribed);
  g_signal_connect (sub, "connection-lost", G_CALLBACK (lost_cb), lost);
  subscribe (sub, REDIS_SUBSCRIPTION_KIND_SHARD, (const char *[]) { channel, NULL });

  killed = g_get_monotonic_time ();
  cluster_fixture_kill (fixture, 2);
  WAIT_UNTIL (contains_address (lost, victim_address), 10000);
  WAIT_UNTIL (contains_address (resubscribed, replica_address), 30000);
  g_test_message ("the channel was subscribed on the promoted replica %.0f ms after SIGKILL",
                  (g_get_monotonic_time () - killed) / 1000.0);
  g_assert_cmpuint (lost->len, ==, 1);

  address = redis_cluster_subscriber_dup_node_address (sub, REDIS_SUBSCRIPTION_KIND_SHARD, channel);
  g_assert_cmpstr (address, ==, replica_address);
  {
    g_autofree char *receivers = CLI (replica, "SPUBLISH", channel, "after the failover");

    g_assert_cmpstr (receivers, ==, "1");
  }
  WAIT_UNTIL (seen.count == 1, 10000);
  g_assert_cmpstr (seen.last_payload, ==, "after the failover");
  seen_clear (&seen);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  if (!redis_test_server_available ())
    {
      g_test_add_data_func ("/cluster-subscriber/live", "redis-server not found", test_skip_cb);
      return g_test_run ();
    }
  /* One replica per primary, for the failover. */
  fixture = cluster_fixture_new (N_NODES, 1, NULL);
  g_test_add_func ("/cluster-subscriber/shards", test_shards);
  g_test_add_func ("/cluster-subscriber/channels-and-patterns", test_channels_and_patterns);
  g_test_add_func ("/cluster-subscriber/slot-moved", test_slot_moved);
  g_test_add_func ("/cluster-subscriber/plain-subscriber-sunsubscribed", test_plain_subscriber_sunsubscribed);
  g_test_add_func ("/cluster-subscriber/failover", test_failover);

  status = g_test_run ();

  g_clear_pointer (&fixture, cluster_fixture_free);
  return status;
}
