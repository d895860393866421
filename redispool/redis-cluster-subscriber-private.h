/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-cluster-pool.h"
#include "redis-cluster-subscriber.h"

G_BEGIN_DECLS

/* A cluster subscriber on @cluster's nodes
 * (redis_cluster_pool_create_subscriber()). */
RedisClusterSubscriber *redis_cluster_subscriber_new (RedisClusterPool *cluster);

G_END_DECLS
