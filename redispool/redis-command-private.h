/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Commands on the way out: their RESP encoding (written straight into the
 * caller's buffer, sizes validated first), what the library must know of
 * them (the table of special commands, block times, fixed reply kinds),
 * and the few questions asked later of an encoded payload (a command's
 * name for messages, how many commands a written prefix holds). Pure
 * functions of their arguments, callable from any thread; no call, no
 * engine. */

/* The largest argument accepted, as Redis' own proto-max-bulk-len. */
#define REDIS_MAX_ARGUMENT_BYTES ((gsize) 512 * 1024 * 1024)

/* The largest payload one call may carry, RESP encoded: one command, or all
 * the commands of a batch with their wrappers (MULTI … EXEC, CLIENT REPLY
 * OFF … ON + ECHO). 1 GiB, the same as Redis' default
 * client-query-buffer-limit. Enforced wherever a payload grows (a command
 * added to a batch, a call built), before anything is allocated or copied:
 * it also keeps every length far from the 32-bit length of GByteArray. */
#define REDIS_MAX_PAYLOAD_BYTES ((gsize) 1024 * 1024 * 1024)

/* What the pool needs to know about the commands of a call. */
typedef enum
{
  REDIS_COMMAND_FLAG_NONE             = 0,
  REDIS_COMMAND_FLAG_BLOCKING         = 1 << 0,  /* may block the connection */
  REDIS_COMMAND_FLAG_CONNECTION_STATE = 1 << 1,  /* changes per-connection state */
  REDIS_COMMAND_FLAG_UNSUPPORTED      = 1 << 2,  /* breaks reply matching: refused */
  /* Bits 8 to 15: the reply kinds (1 << RedisReplyKind) a single command
   * can answer with besides an error, for the commands whose reply kind
   * cannot vary with their options (see redis_call_reply_in_step()); none
   * set: any. Meaningless for a batch, whose flags are merged. */
  REDIS_COMMAND_FLAG_REPLY_MASK       = 0xff << 8,
} RedisCommandFlags;

/* Encoding. Validates sizes first: hiredis' formatter overflows past 2 GiB.
 * Appends the RESP encoding to @out; returns the command flags. */
gboolean   redis_encode_command      (GByteArray          *out,
                                      guint                argc,
                                      const char         **argv,
                                      const gsize         *lens,
                                      RedisCommandFlags   *flags,
                                      gint64              *block_ms,
                                      char               **name,
                                      GError             **error);
gboolean   redis_encode_strv         (GByteArray          *out,
                                      const char * const  *argv,
                                      RedisCommandFlags   *flags,
                                      gint64              *block_ms,
                                      char               **name,
                                      GError             **error);
gboolean   redis_encode_bytes        (GByteArray          *out,
                                      GBytes             **args,
                                      gsize                n_args,
                                      RedisCommandFlags   *flags,
                                      gint64              *block_ms,
                                      char               **name,
                                      GError             **error);
/* Appends the commands of @commands, a NULL-terminated list of
 * NULL-terminated argv, one after the other: the library's own commands
 * (a handshake, a wrapper's MULTI), never classified. @n_commands
 * (optional) is increased by their number. FALSE, with @out holding the
 * commands before the one refused, only if the payload limit is hit. */
gboolean   redis_encode_commands     (GByteArray                 *out,
                                      const char * const * const *commands,
                                      guint                      *n_commands,
                                      GError                    **error);
/* Appends @len bytes of already encoded commands to @out (a payload being
 * built), or fails with INVALID_ARGUMENT if @out would then be over the
 * payload limit. */
gboolean   redis_encode_append       (GByteArray          *out,
                                      const guint8        *data,
                                      gsize                len,
                                      GError             **error);
/* Fails with INVALID_ARGUMENT if a payload of @size bytes is over the
 * payload limit. */
gboolean   redis_encode_check_payload (guint64             size,
                                       GError            **error);
/* The exact size of the RESP encoding of a command of @argc arguments of
 * @lens bytes; G_MAXUINT64 if that does not fit in 64 bits. Checked
 * arithmetic: never wraps, whatever @lens holds. */
guint64    redis_encode_command_size (guint                argc,
                                      const gsize         *lens);
/* The payload limit in force: REDIS_MAX_PAYLOAD_BYTES… */
gsize      redis_encode_get_max_payload (void);
/* …or, for tests only, a smaller one (0 restores the default). Not
 * synchronised: set it while no call is being built. */
void       redis_encode_set_max_payload_for_testing (gsize max_payload);

/* Questions asked of a payload of this encoder's own making. */

/* The upper-cased, printable name of the first command of an encoded
 * payload after @skip whole commands (a wrapper), for messages. */
char      *redis_encode_dup_name     (const guint8        *data,
                                      gsize                len,
                                      guint                skip);
/* How many whole commands of the encoded payload @data lie in its first
 * @written bytes, not counting the first @skip (a wrapper); at most @max. */
guint      redis_encode_count_whole_commands (const guint8 *data,
                                              gsize         len,
                                              guint64       written,
                                              guint         skip,
                                              guint         max);

G_END_DECLS
