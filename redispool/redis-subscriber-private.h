/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-credentials-private.h"
#include "redis-options-private.h"
#include "redis-subscriber.h"

G_BEGIN_DECLS

/* A subscriber with a copy of a pool's options, backoff and network
 * monitor (NULL: the default), not initialized yet
 * (redis_pool_create_subscriber()). It shares @credentials (the pool's:
 * its rotations and provider apply to the subscriber's connects) until
 * redis_subscriber_set_credentials() or _set_credentials_provider() gives
 * it its own. */
RedisSubscriber *redis_subscriber_new_for_pool (const RedisOptions *options,
                                                guint               backoff_initial_ms,
                                                guint               backoff_max_ms,
                                                GNetworkMonitor    *network_monitor,
                                                RedisCredentials   *credentials);

/* Told, in the subscriber's context, when the server unsubscribed a
 * shard channel on its own (its node gave up the slot: Redis 7.0 sends
 * `sunsubscribe`); the channel has left the subscriber's set. Used by
 * RedisClusterSubscriber to subscribe on the new owner. */
typedef void (*RedisSubscriberShardLostFunc) (RedisSubscriber *subscriber,
                                              const char      *channel,
                                              gpointer         data);

/* Set once, before initialization; @destroy frees @data with the
 * subscriber's state. */
void redis_subscriber_set_shard_lost_func (RedisSubscriber              *self,
                                           RedisSubscriberShardLostFunc  func,
                                           gpointer                      data,
                                           GDestroyNotify                destroy);

G_END_DECLS
