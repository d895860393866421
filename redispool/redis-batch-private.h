/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-batch.h"
#include "redis-call-private.h"

G_BEGIN_DECLS

/* The batch's commands, RESP encoded back to back, or an error if an add()
 * was refused. Returns a new GBytes of at most the payload limit;
 * @n_commands is the number of commands in it (read together with the
 * bytes: the batch may grow meanwhile on another thread), @flags the union
 * of the commands' flags and @block_ms the largest block time among them. */
GBytes *redis_batch_encode (RedisBatch         *self,
                            guint              *n_commands,
                            RedisCommandFlags  *flags,
                            gint64             *block_ms,
                            GError            **error);

G_END_DECLS
