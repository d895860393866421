/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-reply.h"

G_BEGIN_DECLS

/* Constructors used by the reader and by tests. */
RedisReply *redis_reply_new_text     (RedisReplyKind  kind,
                                      const char     *data,
                                      gsize           len);
/* A string reply of @len bytes, NUL-terminated, whose bytes the caller
 * fills through *@data before anyone else sees the reply. */
RedisReply *redis_reply_new_string_uninit (gsize      len,
                                           char     **data);
RedisReply *redis_reply_new_integer  (gint64          value);
RedisReply *redis_reply_new_nil      (void);
RedisReply *redis_reply_new_array    (guint           n_elements);
/* Takes ownership of @element; slots are filled once, in order. The slots
 * are allocated as they are filled (so an array count claimed by the server
 * costs nothing before its elements arrive); unref of an array that is not
 * yet full frees the elements set so far. */
void        redis_reply_set_element  (RedisReply     *self,
                                      guint           index_,
                                      RedisReply     *element);
/* A GPtrArray holding a new reference on each element of @self (an array). */
GPtrArray  *redis_reply_steal_elements (RedisReply   *self);

G_END_DECLS
