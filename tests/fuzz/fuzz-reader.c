/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target for the reply path: bytes from the server → RedisReader
 * (framer + hiredis) → RedisReply → GVariant / string.
 *
 * Input format: byte 0 selects how the stream is cut and which limits are
 * used, bytes 1… are the stream itself.
 *   bits 0-3  chunk size scale: chunks are 1 … 2^bits bytes (0 = one chunk)
 *   bits 4-6  seed of the chunk-size generator
 *   bit 7     tiny limits (256 bytes, 16 elements, 32-byte lines, depth 8)
 *             instead of the normal ones (1 MiB, 4096 elements, 1024-byte
 *             lines, depth 64), so the limits are also hit by data actually
 *             received, not only by declared lengths and counts
 *
 * Checks, besides ASan/UBSan/LSan and GLib criticals (fatal here):
 *   - the stream cut into chunks gives the same replies (same to_string())
 *     and the same verdict (error domain and code) as the stream fed whole;
 *   - after a failed feed the reader accepts nothing more;
 *   - every reply converts to a GVariant in normal form;
 *   - every reply is exactly the next bytes of the stream (RESP2 as the
 *     framer accepts it has one spelling per reply, bar "$-1"/"*-1" for
 *     nil), so its wire size is known, and it is within max-reply-bytes;
 *   - to_string() is valid UTF-8 without control characters;
 *   - no RedisReply is alive after the reader and the replies are freed;
 *   - differentially, against a plain hiredis 0.14.1 reader (default reply
 *     functions): the bytes of the replies accepted, up to the first one
 *     nested deeper than hiredis can go (7), fed to hiredis in one piece,
 *     give the same trees (kinds, text, integers, nil, element order), no
 *     error and nothing left over. hiredis is only fed what this reader
 *     accepted: alone, it would allocate whatever counts the input claims.
 *     (The reverse verdict cannot match everywhere: this reader is stricter
 *     than hiredis by design, e.g. on the CRLF after a bulk payload.)
 */

#include "config-private.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis-error.h"
#include "redis-reader-private.h"
#include "redis-reply.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct
{
  GPtrArray    *strings;   /* to_string() of every reply, in order */
  GPtrArray    *replies;   /* every reply, in order */
  GQuark        domain;    /* 0 if every feed succeeded */
  int           code;
  const guint8 *stream;    /* the whole stream */
  gsize         size;
  gsize         offset;    /* wire bytes of the replies popped so far */
  gsize         limit;     /* max-reply-bytes of the reader */
} Outcome;

static void
outcome_clear (Outcome *o)
{
  g_ptr_array_unref (o->strings);
  g_ptr_array_unref (o->replies);
}

/* Arrays nested in @reply (a scalar: 0). Recursive: at most max-depth. */
static guint
depth_of (RedisReply *reply)
{
  guint depth = 0;

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY)
    return 0;
  for (guint i = 0; i < redis_reply_get_n_elements (reply); i++)
    {
      guint d = depth_of (redis_reply_get_element (reply, i));   /* not inside MAX() */

      depth = MAX (depth, d);
    }
  return depth + 1;
}

static void
check_reply (RedisReply *reply)
{
  GVariant *variant;
  RedisReplyKind kind = redis_reply_get_kind (reply);

  variant = redis_reply_to_variant (reply);
  g_assert_nonnull (variant);
  g_variant_take_ref (variant);
  g_assert_true (g_variant_is_normal_form (variant));
  g_free (g_variant_print (variant, TRUE));
  g_variant_unref (variant);

  switch (kind)
    {
    case REDIS_REPLY_KIND_ERROR:
      g_free (redis_reply_get_error_prefix (reply));
      break;
    case REDIS_REPLY_KIND_STRING:
    case REDIS_REPLY_KIND_STATUS:
      {
        gsize len = 0;
        GBytes *bytes = redis_reply_get_bytes (reply);
        const char *str = redis_reply_get_string (reply, &len);

        g_assert_nonnull (str);
        g_assert_cmpuint (str[len], ==, '\0');
        if (bytes != NULL)
          {
            g_assert_cmpuint (g_bytes_get_size (bytes), ==, len);
            g_bytes_unref (bytes);
          }
      }
      break;
    case REDIS_REPLY_KIND_ARRAY:
      {
        guint n = redis_reply_get_n_elements (reply);
        GPtrArray *elements = redis_reply_get_elements (reply);

        g_assert_nonnull (elements);
        g_assert_cmpuint (elements->len, ==, n);
        for (guint i = 0; i < n; i++)
          check_reply (redis_reply_get_element (reply, i));
        g_ptr_array_unref (elements);
      }
      break;
    case REDIS_REPLY_KIND_INTEGER:
      (void) redis_reply_get_integer (reply);
      break;
    case REDIS_REPLY_KIND_NIL:
      g_assert_true (redis_reply_is_nil (reply));
      break;
    default:
      g_assert_not_reached ();
    }
}

/* Whether the stream at *@offset spells @reply; advances *@offset. */
static gboolean
match_wire (RedisReply   *reply,
            const guint8 *data,
            gsize         size,
            gsize        *offset)
{
  char head[32];
  const char *text = NULL;
  gsize text_len = 0;
  gsize head_len;
  guint n = 0;

  switch (redis_reply_get_kind (reply))
    {
    case REDIS_REPLY_KIND_STATUS:
    case REDIS_REPLY_KIND_ERROR:
      text = redis_reply_get_string (reply, &text_len);
      head[0] = redis_reply_get_kind (reply) == REDIS_REPLY_KIND_STATUS ? '+' : '-';
      head_len = 1;
      break;
    case REDIS_REPLY_KIND_STRING:
      text = redis_reply_get_string (reply, &text_len);
      head_len = g_snprintf (head, sizeof head, "$%" G_GSIZE_FORMAT "\r\n", text_len);
      break;
    case REDIS_REPLY_KIND_INTEGER:
      head_len = g_snprintf (head, sizeof head, ":%" G_GINT64_FORMAT "\r\n",
                             redis_reply_get_integer (reply));
      break;
    case REDIS_REPLY_KIND_NIL:
      if (size - *offset < 5 ||
          (memcmp (data + *offset, "$-1\r\n", 5) != 0 &&
           memcmp (data + *offset, "*-1\r\n", 5) != 0))
        return FALSE;
      *offset += 5;
      return TRUE;
    case REDIS_REPLY_KIND_ARRAY:
      n = redis_reply_get_n_elements (reply);
      head_len = g_snprintf (head, sizeof head, "*%u\r\n", n);
      break;
    default:
      g_assert_not_reached ();
    }

  if (size - *offset < head_len || memcmp (data + *offset, head, head_len) != 0)
    return FALSE;
  *offset += head_len;

  if (text != NULL)
    {
      if (size - *offset < text_len + 2 ||
          memcmp (data + *offset, text, text_len) != 0 ||
          memcmp (data + *offset + text_len, "\r\n", 2) != 0)
        return FALSE;
      *offset += text_len + 2;
    }

  for (guint i = 0; i < n; i++)
    if (!match_wire (redis_reply_get_element (reply, i), data, size, offset))
      return FALSE;
  return TRUE;
}

/* Valid UTF-8 without C0, DEL or C1 controls. */
static void
check_printable (const char *s)
{
  g_assert_true (g_utf8_validate (s, -1, NULL));
  for (const char *p = s; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (g_unichar_iscntrl (g_utf8_get_char (p)));
}

static void
drain (RedisReader *reader,
       Outcome     *out)
{
  RedisReply *reply;

  while ((reply = redis_reader_pop (reader)) != NULL)
    {
      gsize start = out->offset;
      char *text;

      check_reply (reply);
      if (!match_wire (reply, out->stream, out->size, &out->offset))
        {
          g_printerr ("reply at offset %" G_GSIZE_FORMAT " does not match the stream\n", start);
          abort ();
        }
      g_assert_cmpuint (out->offset - start, <=, out->limit);
      text = redis_reply_to_string (reply);
      check_printable (text);
      g_ptr_array_add (out->strings, text);
      g_ptr_array_add (out->replies, reply);
    }
}

static guint32
xorshift (guint32 *state)
{
  guint32 x = *state;

  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

/* Feeds @data in chunks whose sizes come from @scale and @seed (@scale 0:
 * one feed), popping replies after every feed as a connection does. */
static void
run (const guint8 *data,
     gsize         size,
     guint         scale,
     guint32       seed,
     gboolean      tiny,
     Outcome      *out)
{
  RedisReader *reader;
  gsize off = 0;

  out->limit = tiny ? 256 : 1024 * 1024;
  if (tiny)
    reader = redis_reader_new (out->limit, 16, 32, 8);
  else
    reader = redis_reader_new (out->limit, 4096, 1024, 64);

  out->strings = g_ptr_array_new_with_free_func (g_free);
  out->replies = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref);
  out->domain = 0;
  out->code = 0;
  out->stream = data;
  out->size = size;
  out->offset = 0;

  while (off < size)
    {
      GError *error = NULL;
      gsize len = size - off;

      if (scale > 0)
        {
          gsize chunk = 1 + xorshift (&seed) % (1u << scale);   /* not inside MIN() */

          len = MIN (len, chunk);
        }

      if (!redis_reader_feed (reader, (const char *) data + off, len, &error))
        {
          g_assert_nonnull (error);
          g_assert_true (error->domain == REDIS_ERROR);
          g_assert_true (error->code == REDIS_ERROR_PROTOCOL ||
                         error->code == REDIS_ERROR_REPLY_TOO_LARGE);
          out->domain = error->domain;
          out->code = error->code;
          g_error_free (error);
          drain (reader, out);

          /* A failed reader stays failed and yields nothing new. */
          error = NULL;
          g_assert_false (redis_reader_feed (reader, "+OK\r\n", 5, &error));
          g_assert_nonnull (error);
          g_error_free (error);
          g_assert_null (redis_reader_pop (reader));
          break;
        }
      g_assert_null (error);
      drain (reader, out);
      off += len;
    }

  redis_reader_free (reader);
}

/* Whether hiredis' @h is the same tree as @r. */
static gboolean
same_tree (redisReply *h,
           RedisReply *r)
{
  gsize len = 0;
  const char *str;

  switch (redis_reply_get_kind (r))
    {
    case REDIS_REPLY_KIND_STRING:
    case REDIS_REPLY_KIND_STATUS:
    case REDIS_REPLY_KIND_ERROR:
      if (h->type != (redis_reply_get_kind (r) == REDIS_REPLY_KIND_STRING ? REDIS_REPLY_STRING :
                      redis_reply_get_kind (r) == REDIS_REPLY_KIND_STATUS ? REDIS_REPLY_STATUS :
                      REDIS_REPLY_ERROR))
        return FALSE;
      str = redis_reply_get_string (r, &len);
      return (gsize) h->len == len && memcmp (h->str, str, len) == 0;
    case REDIS_REPLY_KIND_INTEGER:
      return h->type == REDIS_REPLY_INTEGER && h->integer == redis_reply_get_integer (r);
    case REDIS_REPLY_KIND_NIL:
      return h->type == REDIS_REPLY_NIL;
    case REDIS_REPLY_KIND_ARRAY:
      if (h->type != REDIS_REPLY_ARRAY || h->elements != redis_reply_get_n_elements (r))
        return FALSE;
      for (guint i = 0; i < redis_reply_get_n_elements (r); i++)
        if (!same_tree (h->element[i], redis_reply_get_element (r, i)))
          return FALSE;
      return TRUE;
    default:
      g_assert_not_reached ();
    }
}

/* The replies of @out nested at most 7 levels deep (up to the first deeper
 * one), parsed again by a plain hiredis reader. */
static void
differential (Outcome *out)
{
  redisReader *h = redisReaderCreate ();
  gsize bytes = 0;
  guint n = 0;
  void *reply = NULL;

  g_assert_nonnull (h);
  for (guint i = 0; i < out->replies->len; i++)
    {
      gsize wire = 0;

      if (depth_of (out->replies->pdata[i]) > 7)
        break;
      g_assert_true (match_wire (out->replies->pdata[i], out->stream + bytes,
                                 out->size - bytes, &wire));
      bytes += wire;
      n++;
    }

  if (bytes > 0)
    g_assert_cmpint (redisReaderFeed (h, (const char *) out->stream, bytes), ==, REDIS_OK);
  for (guint i = 0; i < n; i++)
    {
      if (redisReaderGetReply (h, &reply) != REDIS_OK || reply == NULL)
        {
          g_printerr ("hiredis: no reply %u of %u (%s)\n", i, n, h->err ? h->errstr : "incomplete");
          abort ();
        }
      if (!same_tree (reply, out->replies->pdata[i]))
        {
          g_printerr ("hiredis: reply %u differs from %s\n", i, (char *) out->strings->pdata[i]);
          abort ();
        }
      freeReplyObject (reply);
      reply = NULL;
    }
  /* Nothing more, no error. */
  g_assert_cmpint (redisReaderGetReply (h, &reply), ==, REDIS_OK);
  g_assert_null (reply);
  g_assert_cmpint (h->err, ==, 0);
  redisReaderFree (h);
}

/* Warnings and criticals (g_return_if_fail in the library or in GLib, e.g.
 * a non-UTF-8 string given to g_variant_new_string) are bugs here. Abort
 * ourselves: libFuzzer saves the input on abort(), not on the SIGTRAP of a
 * fatal GLib message. */
static void
reader_fatal_log_handler (const char     *domain,
                   GLogLevelFlags  level,
                   const char     *message,
                   gpointer        user_data)
{
  g_log_default_handler (domain, level, message, user_data);
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_log_set_default_handler (reader_fatal_log_handler, NULL);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  Outcome whole, chunked;
  guint scale;
  guint32 seed;
  gboolean tiny;

  if (size < 1)
    return 0;

  scale = data[0] & 0x0f;
  seed = 0x9e3779b9u ^ (((data[0] >> 4) & 0x07) + 1);
  tiny = (data[0] & 0x80) != 0;
  data++;
  size--;

  run (data, size, 0, seed, tiny, &whole);
  run (data, size, scale > 12 ? 12 : scale, seed, tiny, &chunked);

  /* Fragmentation must not change anything. */
  g_assert_cmpuint (whole.offset, ==, chunked.offset);
  g_assert_cmpuint (whole.domain, ==, chunked.domain);
  g_assert_cmpint (whole.code, ==, chunked.code);
  g_assert_cmpuint (whole.strings->len, ==, chunked.strings->len);
  for (guint i = 0; i < whole.strings->len; i++)
    g_assert_cmpstr (whole.strings->pdata[i], ==, chunked.strings->pdata[i]);

  differential (&whole);

  outcome_clear (&whole);
  outcome_clear (&chunked);

  g_assert_cmpuint (redis_reply_get_live_count (), ==, 0);
  return 0;
}
