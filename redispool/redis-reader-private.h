/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-reply.h"

G_BEGIN_DECLS

/* The deepest nesting of arrays hiredis 0.14.1 can parse. */
#define REDIS_READER_MAX_DEPTH 7

typedef struct _RedisReader RedisReader;

/* Turns the byte stream from the server into RedisReply objects.
 *
 * hiredis 0.14.1 parses, but it cannot be fed hostile input directly (it
 * accepts counts up to INT_MAX, truncates larger ones, waits for bulk
 * lengths up to LLONG_MAX and rescans an unterminated line from its start on
 * every feed). So every byte first goes through a small incremental framer
 * that validates the RESP2 structure against the limits, in one linear pass;
 * hiredis is asked for a reply only once the framer has seen it complete, so
 * hiredis never rescans. Not thread-safe: one reader belongs to one
 * connection's I/O.
 *
 * @max_reply_bytes counts the exact wire bytes of one top-level reply: type
 * bytes, length lines, payloads and every CRLF, nested elements included. A
 * reply of exactly @max_reply_bytes bytes passes; one byte more fails with
 * REDIS_ERROR_REPLY_TOO_LARGE. */
RedisReader *redis_reader_new   (gsize         max_reply_bytes,
                                 guint         max_elements,
                                 gsize         max_line_length);
void         redis_reader_free  (RedisReader  *self);

/* Feeds @len bytes. Returns FALSE and sets @error (REDIS_ERROR_PROTOCOL or
 * REDIS_ERROR_REPLY_TOO_LARGE) when the stream is invalid; replies that
 * completed before the bad bytes can still be taken with _pop(). After a
 * failure the reader accepts nothing more. */
gboolean     redis_reader_feed  (RedisReader  *self,
                                 const char   *data,
                                 gsize         len,
                                 GError      **error);

/* Whether the stream failed (then nothing more comes out of it). */
gboolean     redis_reader_has_failed (RedisReader *self);

/* Returns the next complete reply (transfer full), or NULL. */
RedisReply  *redis_reader_pop   (RedisReader  *self);

G_END_DECLS
