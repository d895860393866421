/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-cluster-pool.h"

G_BEGIN_DECLS

/* The address of the primary that owns @slot as the pool routes it now
 * (some node when no node is known to own it), with that node's pool in
 * @pool (a new reference); NULL once the pool is closed. Used by
 * RedisClusterSubscriber to place shard channels. */
char *redis_cluster_pool_dup_owner (RedisClusterPool  *self,
                                    guint16            slot,
                                    RedisPool        **pool) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
