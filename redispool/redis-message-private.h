/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-message.h"
#include "redis-reply.h"

G_BEGIN_DECLS

/* A message made from a push frame that redis_message_parse_kind()
 * accepted: its values are copied into one block, so the caller may drop
 * @frame at once (on the thread that parsed it). */
RedisMessage *redis_message_new_from_frame (RedisSubscriptionKind  kind,
                                            RedisReply            *frame);
/* Whether @frame, a top-level reply of a subscribed connection, is a
 * well-formed message push: ["message", channel, payload],
 * ["smessage", channel, payload] or ["pmessage", pattern, channel,
 * payload], bulk strings all. TRUE with *@kind set. */
gboolean      redis_message_parse_kind     (RedisReply             *frame,
                                            RedisSubscriptionKind  *kind);
/* The subscription name the message was delivered for: the pattern of a
 * pattern message, the channel otherwise (NUL-terminated, may hold NULs
 * before @len). */
const char   *redis_message_get_name       (RedisMessage           *self,
                                            gsize                  *len);

G_END_DECLS
