/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-message-private.h"

/**
 * RedisMessage:
 *
 * One message received by a [class@Redis.Subscriber]: what its
 * [signal@Redis.Subscriber::message] signal carries. Immutable and
 * reference counted; any thread may read it.
 *
 * Channel, pattern and payload are binary-safe: the `_bytes` accessors and
 * [method@Redis.Message.get_payload] return every byte; the text accessors
 * return %NULL for a value that is not NUL-free UTF-8 instead of a
 * truncated or broken string.
 */

struct _RedisMessage
{
  RedisSubscriptionKind  kind;
  RedisReply            *frame;     /* the push, which owns the elements below */
  RedisReply            *pattern;   /* NULL unless a pattern message */
  RedisReply            *channel;
  RedisReply            *payload;
};

G_DEFINE_BOXED_TYPE (RedisMessage, redis_message, redis_message_ref, redis_message_unref)

static gboolean
is_bulk (RedisReply *reply)
{
  return reply != NULL && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_STRING;
}

gboolean
redis_message_parse_kind (RedisReply            *frame,
                          RedisSubscriptionKind *kind)
{
  RedisReply *first;
  const char *type;
  gsize len, n;

  if (redis_reply_get_kind (frame) != REDIS_REPLY_KIND_ARRAY)
    return FALSE;
  n = redis_reply_get_n_elements (frame);
  if (n < 3 || n > 4)
    return FALSE;
  first = redis_reply_get_element (frame, 0);
  if (!is_bulk (first))
    return FALSE;
  type = redis_reply_get_string (first, &len);

  if (n == 3 && len == 7 && memcmp (type, "message", 7) == 0)
    *kind = REDIS_SUBSCRIPTION_KIND_CHANNEL;
  else if (n == 3 && len == 8 && memcmp (type, "smessage", 8) == 0)
    *kind = REDIS_SUBSCRIPTION_KIND_SHARD;
  else if (n == 4 && len == 8 && memcmp (type, "pmessage", 8) == 0)
    *kind = REDIS_SUBSCRIPTION_KIND_PATTERN;
  else
    return FALSE;

  for (gsize i = 1; i < n; i++)
    if (!is_bulk (redis_reply_get_element (frame, i)))
      return FALSE;
  return TRUE;
}

RedisMessage *
redis_message_new_from_frame (RedisSubscriptionKind  kind,
                              RedisReply            *frame)
{
  RedisMessage *self = g_atomic_rc_box_new0 (RedisMessage);
  guint first = kind == REDIS_SUBSCRIPTION_KIND_PATTERN ? 2 : 1;

  self->kind = kind;
  self->frame = redis_reply_ref (frame);
  if (kind == REDIS_SUBSCRIPTION_KIND_PATTERN)
    self->pattern = redis_reply_get_element (frame, 1);
  self->channel = redis_reply_get_element (frame, first);
  self->payload = redis_reply_get_element (frame, first + 1);
  return self;
}

const char *
redis_message_get_name (RedisMessage *self,
                        gsize        *len)
{
  return redis_reply_get_string (self->pattern != NULL ? self->pattern : self->channel, len);
}

/**
 * redis_message_ref:
 * @self: a [struct@Redis.Message]
 *
 * Adds a reference.
 *
 * Returns: (transfer full): @self
 */
RedisMessage *
redis_message_ref (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return g_atomic_rc_box_acquire (self);
}

static void
message_clear (gpointer data)
{
  RedisMessage *self = data;

  redis_reply_unref (self->frame);
}

/**
 * redis_message_unref:
 * @self: (transfer full): a [struct@Redis.Message]
 *
 * Drops a reference; the last one frees the message.
 */
void
redis_message_unref (RedisMessage *self)
{
  g_return_if_fail (self != NULL);

  g_atomic_rc_box_release_full (self, message_clear);
}

/**
 * redis_message_get_kind:
 * @self: a [struct@Redis.Message]
 *
 * Returns what kind of subscription brought the message.
 *
 * Returns: the kind
 */
RedisSubscriptionKind
redis_message_get_kind (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, REDIS_SUBSCRIPTION_KIND_CHANNEL);

  return self->kind;
}

/**
 * redis_message_get_channel:
 * @self: a [struct@Redis.Message]
 *
 * Returns the channel the message was published to (for a pattern
 * message too), as text.
 *
 * Returns: (nullable): the channel, or %NULL if its name is not NUL-free
 *   UTF-8 (see [method@Redis.Message.get_channel_bytes])
 */
const char *
redis_message_get_channel (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return redis_reply_get_string (self->channel, NULL);
}

/**
 * redis_message_get_channel_bytes:
 * @self: a [struct@Redis.Message]
 *
 * Returns the channel the message was published to, binary-safe.
 *
 * Returns: (transfer full): the channel's bytes
 */
GBytes *
redis_message_get_channel_bytes (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return redis_reply_get_bytes (self->channel);
}

/**
 * redis_message_get_pattern:
 * @self: a [struct@Redis.Message]
 *
 * Returns the pattern that matched the channel, for a message of kind
 * %REDIS_SUBSCRIPTION_KIND_PATTERN.
 *
 * Returns: (nullable): the pattern, or %NULL for the other kinds or if the
 *   pattern is not NUL-free UTF-8
 */
const char *
redis_message_get_pattern (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->pattern != NULL ? redis_reply_get_string (self->pattern, NULL) : NULL;
}

/**
 * redis_message_get_pattern_bytes:
 * @self: a [struct@Redis.Message]
 *
 * Returns the pattern that matched the channel, binary-safe.
 *
 * Returns: (transfer full) (nullable): the pattern's bytes, or %NULL if
 *   the message is not a pattern message
 */
GBytes *
redis_message_get_pattern_bytes (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->pattern != NULL ? redis_reply_get_bytes (self->pattern) : NULL;
}

/**
 * redis_message_get_payload:
 * @self: a [struct@Redis.Message]
 *
 * Returns the payload, binary-safe. The #GBytes shares the message's
 * memory (no copy).
 *
 * Returns: (transfer full): the payload
 */
GBytes *
redis_message_get_payload (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return redis_reply_get_bytes (self->payload);
}

/**
 * redis_message_get_payload_text:
 * @self: a [struct@Redis.Message]
 *
 * Returns the payload as text.
 *
 * Returns: (nullable): the payload, or %NULL if it is not NUL-free UTF-8
 *   (see [method@Redis.Message.get_payload])
 */
const char *
redis_message_get_payload_text (RedisMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return redis_reply_get_string (self->payload, NULL);
}
