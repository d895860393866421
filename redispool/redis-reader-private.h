/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "redis-reply.h"

G_BEGIN_DECLS

/* The default and the largest accepted max-depth. The walks over a reply
 * (to_variant(), to_string(), unref) recurse once per level, so the cap
 * keeps them far from any thread's stack limit. */
#define REDIS_READER_DEFAULT_MAX_DEPTH 64
#define REDIS_READER_MAX_DEPTH_LIMIT   1024

typedef struct _RedisReader RedisReader;

/* Turns the byte stream from the server into RedisReply objects.
 *
 * One incremental pass does everything: it validates the RESP2 structure
 * against the limits and builds the replies as the bytes arrive, with an
 * explicit stack of open arrays on the heap (never deeper than @max_depth),
 * so neither time, memory nor native stack depend on what the server claims
 * before it sends it. hiredis is not used for parsing (hiredis 0.14.1 cannot
 * go deeper than 7 levels); the fuzzer checks this reader against a plain
 * hiredis reader on every input both can take. Not thread-safe: one reader
 * belongs to one connection's I/O.
 *
 * @max_reply_bytes counts the exact wire bytes of one top-level reply: type
 * bytes, length lines, payloads and every CRLF, nested elements included. A
 * reply of exactly @max_reply_bytes bytes passes; one byte more fails with
 * REDIS_ERROR_REPLY_TOO_LARGE. So does an array count above @max_elements,
 * a line longer than @max_line_length, and arrays nested more than
 * @max_depth levels (`*1\r\n:1\r\n` is one level; clamped to 1 …
 * REDIS_READER_MAX_DEPTH_LIMIT). */
RedisReader *redis_reader_new   (gsize         max_reply_bytes,
                                 guint         max_elements,
                                 gsize         max_line_length,
                                 guint         max_depth);
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
