/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-connection.h"
#include "redis-engine-private.h"

G_BEGIN_DECLS

RedisEngine *redis_connection_get_engine (RedisConnection *self);

G_END_DECLS
