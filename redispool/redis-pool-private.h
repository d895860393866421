/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-credentials-private.h"
#include "redis-pool.h"

G_BEGIN_DECLS

/* Makes every connection of @self send READONLY after its handshake (at
 * each connect and reconnect), as a Redis Cluster replica needs before it
 * serves reads. For redis-cluster-pool.c, on a pool it just made: call it
 * before the pool is initialized or given a call (its connections copy the
 * options when they are made). */
void redis_pool_set_readonly_private (RedisPool *self);

/* Makes @self use @credentials (and their provider) instead of its own:
 * for redis-cluster-pool.c, on a pool it just made, before it connects, so
 * that the cluster's rotations reach every node pool and their
 * subscribers. */
void redis_pool_share_credentials_private (RedisPool        *self,
                                           RedisCredentials *credentials);
/* @self's credentials and provider (borrowed): a cluster takes its first
 * node pool's (made from the URI's userinfo) and shares them with the
 * others. */
RedisCredentials *redis_pool_get_credentials_private (RedisPool *self);

/* Whether @self is closed for good: closed, or its wait-all initialization
 * failed. Lock-free, for the cluster's node pick: a node pool that could
 * not connect at first is replaced (redis-cluster-pool.c). */
gboolean redis_pool_is_closed_private (RedisPool *self);
/* Fails the calls waiting in @self's offline queue (never written) with a
 * copy of @error: for a cluster whose slots moved away from the node while
 * it is down, so that they are routed again. Returns how many. */
guint    redis_pool_fail_queued_private (RedisPool    *self,
                                         const GError *error);

G_END_DECLS
