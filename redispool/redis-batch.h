/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <glib-object.h>

#include "redis-version-macros.h"

G_BEGIN_DECLS

#define REDIS_TYPE_BATCH (redis_batch_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisBatch, redis_batch, REDIS, BATCH, GObject)

REDIS_AVAILABLE_IN_ALL
RedisBatch *redis_batch_new            (void);
REDIS_AVAILABLE_IN_ALL
RedisBatch *redis_batch_add            (RedisBatch         *self,
                                        const char * const *argv);
REDIS_AVAILABLE_IN_ALL
RedisBatch *redis_batch_add_bytes      (RedisBatch         *self,
                                        GBytes            **args,
                                        gsize               n_args);
REDIS_AVAILABLE_IN_ALL
guint       redis_batch_get_n_commands (RedisBatch         *self);

G_END_DECLS
