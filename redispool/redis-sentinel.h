/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <glib.h>

#include "redis-version-macros.h"

G_BEGIN_DECLS

/**
 * RedisServerRole:
 * @REDIS_SERVER_ROLE_PRIMARY: the primary (master) that Sentinel names
 *   for the group
 * @REDIS_SERVER_ROLE_REPLICA: one of the primary's replicas, picked at
 *   random among those Sentinel reports up
 *
 * Which server of a Sentinel-managed group a connection goes to (the
 * `role` property of [class@Redis.Pool], [class@Redis.Connection] and
 * [class@Redis.Subscriber]). Ignored unless `sentinels` is set.
 */
typedef enum
{
  REDIS_SERVER_ROLE_PRIMARY,
  REDIS_SERVER_ROLE_REPLICA,
} RedisServerRole;

G_END_DECLS
