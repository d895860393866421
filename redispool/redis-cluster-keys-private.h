/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "redis-reply.h"

G_BEGIN_DECLS

/* Where the keys of a command are, for routing it in a cluster: a built-in
 * table of the common commands (key positions as COMMAND INFO gives them),
 * read from the RESP encoding of the command as this library writes it
 * (an array of bulk strings). */

/* What redis_cluster_command_slot() found. */
#define REDIS_CLUSTER_SLOT_NONE     (-1)   /* no key: any primary will do */
#define REDIS_CLUSTER_SLOT_INVALID  (-2)   /* refused: @error is set */
#define REDIS_CLUSTER_SLOT_UNKNOWN  (-3)   /* neither table nor cache knows: ask the server */

/* What the servers told of the commands outside the built-in table, by
 * name and number of arguments: where the keys are (none: keyless), and
 * whether COMMAND INFO flags the command "readonly". Commands whose keys
 * move with their arguments are never cached. */
typedef struct _RedisClusterKeyCache RedisClusterKeyCache;

RedisClusterKeyCache *redis_cluster_key_cache_new  (void);
void                  redis_cluster_key_cache_free (RedisClusterKeyCache *cache);

/* The slot of the keys of the command that starts at @data (at most @len
 * bytes), its length in @consumed, and in @readonly whether the command
 * only reads (Redis's "readonly" flag, from the table or the cache; FALSE
 * when neither knows it, for UNKNOWN too). Keys in more than one slot:
 * INVALID with INVALID_ARGUMENT naming two of the slots. A payload that
 * is not what this library encodes: INVALID with PROTOCOL. */
gint       redis_cluster_command_slot (const guint8          *data,
                                       gsize                  len,
                                       gsize                 *consumed,
                                       RedisClusterKeyCache  *cache,
                                       gboolean              *readonly,
                                       GError               **error);

/* For tests: the name of entry @index of the built-in key table, NULL
 * past its end. */
const char *redis_cluster_key_table_get_name (guint index);

/* For a command redis_cluster_command_slot() answered UNKNOWN for (the
 * whole command at @data, @len bytes): appends `COMMAND INFO name` and
 * `COMMAND GETKEYS name args…` to @out. */
void       redis_cluster_key_query_append (const guint8 *data,
                                           gsize         len,
                                           GByteArray   *out);

/* The slot of that command from the two replies (NONE: keyless, or the
 * server did not tell: it answers the command's own error; INVALID with
 * @error: keys in several slots), cached in @cache when the command's
 * keys do not move with its arguments; in @readonly, whether COMMAND
 * INFO flags it "readonly". */
gint       redis_cluster_key_query_finish (RedisClusterKeyCache  *cache,
                                           const guint8          *data,
                                           gsize                  len,
                                           RedisReply            *info,
                                           RedisReply            *getkeys,
                                           gboolean              *readonly,
                                           GError               **error);

G_END_DECLS
