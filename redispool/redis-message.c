/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-message-private.h"
#include "redis-text-private.h"

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

/* One allocation per message, built on the I/O thread from the push frame,
 * which is freed there at once: what crosses to the subscriber's context
 * is this block alone (freeing the frame's five blocks on another thread
 * was the subscriber's largest cost, malloc arenas not shared by threads).
 * Each value is copied NUL-terminated into data[]. */
struct _RedisMessage
{
  RedisSubscriptionKind  kind;
  gboolean               has_pattern;
  const char            *pattern;   /* NULL unless a pattern message */
  gsize                  pattern_len;
  const char            *channel;
  gsize                  channel_len;
  const char            *payload;
  gsize                  payload_len;
  char                   data[];
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
  guint first = kind == REDIS_SUBSCRIPTION_KIND_PATTERN ? 2 : 1;
  const char *pattern = NULL, *channel, *payload;
  gsize pattern_len = 0, channel_len, payload_len;
  RedisMessage *self;
  char *p;

  if (kind == REDIS_SUBSCRIPTION_KIND_PATTERN)
    pattern = redis_reply_get_string (redis_reply_get_element (frame, 1), &pattern_len);
  channel = redis_reply_get_string (redis_reply_get_element (frame, first), &channel_len);
  payload = redis_reply_get_string (redis_reply_get_element (frame, first + 1), &payload_len);

  self = g_atomic_rc_box_alloc (sizeof (RedisMessage) + pattern_len + 1 +
                                channel_len + 1 + payload_len + 1);
  self->kind = kind;
  self->has_pattern = pattern != NULL;
  p = self->data;
  self->pattern = pattern != NULL ? p : NULL;
  self->pattern_len = pattern_len;
  if (pattern_len > 0)
    memcpy (p, pattern, pattern_len);
  p[pattern_len] = '\0';
  p += pattern_len + 1;
  self->channel = p;
  self->channel_len = channel_len;
  memcpy (p, channel, channel_len);
  p[channel_len] = '\0';
  p += channel_len + 1;
  self->payload = p;
  self->payload_len = payload_len;
  memcpy (p, payload, payload_len);
  p[payload_len] = '\0';
  return self;
}

/* The text form of a value: NULL when it is not NUL-free UTF-8, as
 * redis_reply_get_string() without a length. */
static const char *
text_or_null (const char *value,
              gsize       len)
{
  return redis_text_is_plain (value, len) ? value : NULL;
}

/* A GBytes over one value, keeping the message alive. */
static GBytes *
bytes_of (RedisMessage *self,
          const char   *value,
          gsize         len)
{
  return g_bytes_new_with_free_func (value, len, (GDestroyNotify) redis_message_unref,
                                     redis_message_ref (self));
}

const char *
redis_message_get_name (RedisMessage *self,
                        gsize        *len)
{
  if (self->has_pattern)
    {
      *len = self->pattern_len;
      return self->pattern;
    }
  *len = self->channel_len;
  return self->channel;
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

  g_atomic_rc_box_release (self);
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

  return text_or_null (self->channel, self->channel_len);
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

  return bytes_of (self, self->channel, self->channel_len);
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

  return text_or_null (self->pattern, self->pattern_len);
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

  return self->has_pattern ? bytes_of (self, self->pattern, self->pattern_len) : NULL;
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

  return bytes_of (self, self->payload, self->payload_len);
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

  return text_or_null (self->payload, self->payload_len);
}
