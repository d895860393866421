/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Escaping of text that comes from the server (status and error lines, bulk
 * strings) before it reaches people: redis_reply_to_string(), GError
 * messages, logs. This is the one escaping routine of the library.
 *
 * The result is valid UTF-8 without control characters, and the original
 * bytes can be recovered from it (C-style unescaping gives them back):
 *
 *  - printable ASCII, and valid UTF-8 sequences of other characters, are
 *    copied as they are;
 *  - a backslash becomes `\\`;
 *  - LF, CR and TAB become `\n`, `\r` and `\t`;
 *  - each byte of the following becomes `\xNN` (two lower-case hex digits):
 *    the other C0 controls (NUL and ESC included), DEL, the C1 controls
 *    U+0080–U+009F (so U+009B CSI is `\xc2\x9b`), the characters that break
 *    or reorder lines (U+2028, U+2029, and the bidirectional marks,
 *    embeddings, overrides and isolates U+061C, U+200E, U+200F,
 *    U+202A–U+202E, U+2066–U+2069), and every byte that is not part of a
 *    valid UTF-8 sequence;
 *  - with %REDIS_TEXT_ESCAPE_QUOTE, a double quote becomes `\"` (for text
 *    shown between double quotes).
 *
 * Upper-case ASCII words, spaces and the usual punctuation are unchanged, so
 * an escaped error text keeps its prefix (`WRONGTYPE`, `ERR`…). */
typedef enum
{
  REDIS_TEXT_ESCAPE_DEFAULT = 0,
  REDIS_TEXT_ESCAPE_QUOTE   = 1 << 0,
} RedisTextEscapeFlags;

void  redis_text_escape_append (GString              *out,
                                const char           *data,
                                gsize                 len,
                                RedisTextEscapeFlags  flags);

/* Returns (transfer full) @data escaped as above; @data may be NULL when
 * @len is 0. */
char *redis_text_escape        (const char           *data,
                                gsize                 len);

/* Whether @len bytes at @data can be handed out as a C string of the
 * bindings' utf8 type: valid UTF-8 and no NUL byte (g_utf8_validate()
 * with a length refuses NUL bytes itself). The one rule for every text
 * accessor (replies, messages, variants). */
gboolean redis_text_is_plain   (const char           *data,
                                gsize                 len);

G_END_DECLS
