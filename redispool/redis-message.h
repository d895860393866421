/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <glib-object.h>

#include "redis-version-macros.h"

G_BEGIN_DECLS

/**
 * RedisSubscriptionKind:
 * @REDIS_SUBSCRIPTION_KIND_CHANNEL: a channel (`SUBSCRIBE`); its messages
 *   are `message` pushes
 * @REDIS_SUBSCRIPTION_KIND_PATTERN: a glob-style pattern of channels
 *   (`PSUBSCRIBE`); its messages are `pmessage` pushes
 * @REDIS_SUBSCRIPTION_KIND_SHARD: a shard channel (`SSUBSCRIBE`, Redis 7.0
 *   or later); its messages are `smessage` pushes
 *
 * The three kinds of subscription of a [class@Redis.Subscriber], and of
 * the [struct@Redis.Message] they bring.
 */
typedef enum
{
  REDIS_SUBSCRIPTION_KIND_CHANNEL,
  REDIS_SUBSCRIPTION_KIND_PATTERN,
  REDIS_SUBSCRIPTION_KIND_SHARD,
} RedisSubscriptionKind;

#define REDIS_TYPE_MESSAGE (redis_message_get_type ())

typedef struct _RedisMessage RedisMessage;

REDIS_AVAILABLE_IN_ALL
GType                  redis_message_get_type          (void) G_GNUC_CONST;
REDIS_AVAILABLE_IN_ALL
RedisMessage          *redis_message_ref               (RedisMessage  *self);
REDIS_AVAILABLE_IN_ALL
void                   redis_message_unref             (RedisMessage  *self);
REDIS_AVAILABLE_IN_ALL
RedisSubscriptionKind  redis_message_get_kind          (RedisMessage  *self);
REDIS_AVAILABLE_IN_ALL
const char            *redis_message_get_channel       (RedisMessage  *self);
REDIS_AVAILABLE_IN_ALL
GBytes                *redis_message_get_channel_bytes (RedisMessage  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
const char            *redis_message_get_pattern       (RedisMessage  *self);
REDIS_AVAILABLE_IN_ALL
GBytes                *redis_message_get_pattern_bytes (RedisMessage  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
GBytes                *redis_message_get_payload       (RedisMessage  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
const char            *redis_message_get_payload_text  (RedisMessage  *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisMessage, redis_message_unref)

G_END_DECLS
