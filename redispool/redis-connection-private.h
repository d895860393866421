/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-connection.h"
#include "redis-engine-private.h"

G_BEGIN_DECLS

/* Called once when a lease ends (redis_pool_release() or the wrapper being
 * disposed), with the engine the lease wrapped. */
typedef void (*RedisLeaseEndFunc) (RedisEngine *engine,
                                   gpointer     user_data);

/* A connection object over an engine that a pool owns (a lease): a plain
 * g_object_new() whose engine is set right after, before the object is
 * shared (a standalone connection makes its own engine on first use, not
 * in constructed()), so that no property and no side channel carries it.
 * Already initialized. It never closes the engine itself; @end_func runs
 * once when the lease ends; calls on it after that fail with
 * REDIS_ERROR_CLOSED. */
RedisConnection *redis_connection_new_lease  (RedisEngine        *engine,
                                              const RedisOptions *options,
                                              RedisLeaseEndFunc   end_func,
                                              gpointer            user_data,
                                              GDestroyNotify      notify);
/* Ends the lease: FALSE if @self is not a lease or it already ended. */
gboolean         redis_connection_end_lease  (RedisConnection    *self);
gboolean         redis_connection_is_lease   (RedisConnection    *self);

G_END_DECLS
