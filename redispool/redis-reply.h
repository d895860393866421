/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <glib-object.h>

#include "redis-version-macros.h"

G_BEGIN_DECLS

/**
 * RedisReplyKind:
 * @REDIS_REPLY_KIND_STRING: a bulk string (binary-safe)
 * @REDIS_REPLY_KIND_STATUS: a status line such as `OK` or `QUEUED`
 * @REDIS_REPLY_KIND_INTEGER: a 64-bit signed integer
 * @REDIS_REPLY_KIND_NIL: the nil bulk string or nil array
 * @REDIS_REPLY_KIND_ARRAY: an array of replies
 * @REDIS_REPLY_KIND_ERROR: an error reply; only met inside the results of a
 *   pipeline or a transaction, since a top-level error becomes a #GError
 *
 * The kind of a [struct@Redis.Reply].
 */
typedef enum
{
  REDIS_REPLY_KIND_STRING,
  REDIS_REPLY_KIND_STATUS,
  REDIS_REPLY_KIND_INTEGER,
  REDIS_REPLY_KIND_NIL,
  REDIS_REPLY_KIND_ARRAY,
  REDIS_REPLY_KIND_ERROR,
} RedisReplyKind;

#define REDIS_TYPE_REPLY (redis_reply_get_type ())

typedef struct _RedisReply RedisReply;

REDIS_AVAILABLE_IN_ALL
GType           redis_reply_get_type         (void) G_GNUC_CONST;
REDIS_AVAILABLE_IN_ALL
RedisReply     *redis_reply_ref              (RedisReply  *self);
REDIS_AVAILABLE_IN_ALL
void            redis_reply_unref            (RedisReply  *self);
REDIS_AVAILABLE_IN_ALL
RedisReplyKind  redis_reply_get_kind         (RedisReply  *self);
REDIS_AVAILABLE_IN_ALL
gboolean        redis_reply_is_nil           (RedisReply  *self);
REDIS_AVAILABLE_IN_ALL
const char     *redis_reply_get_string       (RedisReply  *self,
                                              gsize       *length);
REDIS_AVAILABLE_IN_ALL
const char     *redis_reply_get_text         (RedisReply  *self);
REDIS_AVAILABLE_IN_ALL
const guint8   *redis_reply_get_data         (RedisReply  *self,
                                              gsize       *length);
REDIS_AVAILABLE_IN_ALL
GBytes         *redis_reply_get_bytes        (RedisReply  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
gint64          redis_reply_get_integer      (RedisReply  *self);
REDIS_AVAILABLE_IN_ALL
guint           redis_reply_get_n_elements   (RedisReply  *self);
REDIS_AVAILABLE_IN_ALL
RedisReply     *redis_reply_get_element      (RedisReply  *self,
                                              guint        index_);
REDIS_AVAILABLE_IN_ALL
GPtrArray      *redis_reply_get_elements     (RedisReply  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
char           *redis_reply_get_error_prefix (RedisReply  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
GVariant       *redis_reply_to_variant       (RedisReply  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
char           *redis_reply_to_string        (RedisReply  *self) G_GNUC_WARN_UNUSED_RESULT;
REDIS_AVAILABLE_IN_ALL
guint           redis_reply_get_live_count   (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisReply, redis_reply_unref)

G_END_DECLS
