/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-options-private.h"
#include "redis-subscriber.h"

G_BEGIN_DECLS

/* A subscriber with a copy of a pool's options, backoff and network
 * monitor (NULL: the default), not initialized yet
 * (redis_pool_create_subscriber()). */
RedisSubscriber *redis_subscriber_new_for_pool (const RedisOptions *options,
                                                guint               backoff_initial_ms,
                                                guint               backoff_max_ms,
                                                GNetworkMonitor    *network_monitor);

G_END_DECLS
