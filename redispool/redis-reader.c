/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-error.h"
#include "redis-reader-private.h"
#include "redis-reply-private.h"

/* Bulk strings up to this size get their reply allocated when the length
 * line arrives and are copied into it as the bytes come; larger ones are
 * collected in a buffer that grows with what was received, so a length the
 * server claims costs no memory before the data is there. */
#define BULK_PREALLOC_MAX (64 * 1024)

typedef struct
{
  RedisReply *array;
  guint       next;        /* the next slot to fill */
  guint       n;           /* the array's count, > 0 */
} Frame;

struct _RedisReader
{
  gsize        max_reply_bytes;
  guint        max_elements;
  gsize        max_line_length;
  guint        max_depth;

  GByteArray  *line;            /* a line split across feeds, up to its '\n' */
  guint64      bulk_left;       /* payload + CRLF bytes of a bulk string */
  guint64      reply_bytes;     /* wire bytes of the top-level reply so far:
                                 * every line with its CRLF, every bulk
                                 * payload with its CRLF */

  /* The reply being built. */
  RedisReply  *root;            /* the open top-level array (owned) */
  Frame       *stack;           /* open arrays, outermost first */
  guint        depth;           /* open arrays */
  guint        stack_size;      /* frames allocated, at most max_depth */
  RedisReply  *bulk;            /* a bulk string being filled (owned) ... */
  char        *bulk_data;
  gsize        bulk_filled;
  GByteArray  *big;             /* ... or a large one being collected */

  /* Complete replies, not popped: done[done_head … done_len - 1] */
  RedisReply **done;
  guint        done_head;
  guint        done_len;
  guint        done_size;

  guint        failed : 1;
};

RedisReader *
redis_reader_new (gsize max_reply_bytes,
                  guint max_elements,
                  gsize max_line_length,
                  guint max_depth)
{
  RedisReader *self = g_new0 (RedisReader, 1);

  self->max_reply_bytes = MAX (max_reply_bytes, 16);
  self->max_elements = max_elements;
  self->max_line_length = MAX (max_line_length, 16);
  self->max_depth = CLAMP (max_depth, 1, REDIS_READER_MAX_DEPTH_LIMIT);
  self->line = g_byte_array_new ();
  return self;
}

/* Drops the reply being built (after an error, or at free). */
static void
clear_partial (RedisReader *self)
{
  g_clear_pointer (&self->root, redis_reply_unref);
  g_clear_pointer (&self->bulk, redis_reply_unref);
  g_clear_pointer (&self->big, g_byte_array_unref);
  self->bulk_data = NULL;
  self->bulk_left = 0;
  self->depth = 0;
}

void
redis_reader_free (RedisReader *self)
{
  if (self == NULL)
    return;
  clear_partial (self);
  for (guint i = self->done_head; i < self->done_len; i++)
    redis_reply_unref (self->done[i]);
  g_free (self->done);
  g_byte_array_unref (self->line);
  g_free (self->stack);
  g_free (self);
}

static gboolean
fail (RedisReader  *self,
      GError      **error,
      int           code,
      const char   *format,
      ...) G_GNUC_PRINTF (4, 5);

static gboolean
fail (RedisReader  *self,
      GError      **error,
      int           code,
      const char   *format,
      ...)
{
  va_list args;

  self->failed = TRUE;
  clear_partial (self);
  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (REDIS_ERROR, code, format, args));
  va_end (args);
  return FALSE;
}

static void
push_done (RedisReader *self,
           RedisReply  *reply)
{
  if (self->done_len == self->done_size)
    {
      self->done_size = MAX (self->done_size * 2, 8);
      self->done = g_renew (RedisReply *, self->done, self->done_size);
    }
  self->done[self->done_len++] = reply;
  self->reply_bytes = 0;
}

/* @reply (a scalar, an empty array or a whole bulk string) is complete:
 * put it in its parent and close the arrays it fills. A nested array took
 * its slot in its parent when it was opened, so closing it only needs the
 * parent's count checked. */
static void
element_done (RedisReader *self,
              RedisReply  *reply)
{
  Frame *f;

  if (self->depth == 0)
    {
      push_done (self, reply);
      return;
    }

  f = &self->stack[self->depth - 1];
  redis_reply_set_element (f->array, f->next++, reply);
  while (f->next == f->n)
    {
      if (--self->depth == 0)
        {
          push_done (self, g_steal_pointer (&self->root));
          return;
        }
      f--;
    }
}

/* Opens an array of @n > 0 elements; the caller checked the depth. */
static void
open_array (RedisReader *self,
            guint        n)
{
  RedisReply *array = redis_reply_new_array (n);

  if (self->depth == 0)
    self->root = array;
  else
    {
      Frame *parent = &self->stack[self->depth - 1];

      redis_reply_set_element (parent->array, parent->next++, array);
    }

  if (self->depth == self->stack_size)
    {
      self->stack_size = MIN (MAX (self->stack_size * 2, 8), self->max_depth);
      self->stack = g_renew (Frame, self->stack, self->stack_size);
    }
  self->stack[self->depth].array = array;
  self->stack[self->depth].next = 0;
  self->stack[self->depth].n = n;
  self->depth++;
}

/* Strict RESP integer: optional '-', digits, no overflow. */
static gboolean
parse_int64 (const char *s,
             gsize       len,
             gint64     *out)
{
  gboolean negative = FALSE;
  guint64 v = 0;
  gsize i = 0;

  if (len > 0 && s[0] == '-')
    {
      negative = TRUE;
      i = 1;
    }
  if (i == len || len - i > 19)
    return FALSE;
  /* Leading zeros and "-0" are refused, as hiredis 0.14.1 does (one
   * spelling per number; the fuzzer compares the two parsers). */
  if (s[i] == '0' && (len - i > 1 || negative))
    return FALSE;
  for (; i < len; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return FALSE;
      v = v * 10 + (guint64) (s[i] - '0');
    }
  if (v > (guint64) G_MAXINT64 + (negative ? 1 : 0))
    return FALSE;
  *out = negative ? (gint64) (0 - v) : (gint64) v;
  return TRUE;
}

/* @line points at a whole line including its "\r\n". */
static gboolean
process_line (RedisReader  *self,
              const char   *line,
              gsize         len,
              GError      **error)
{
  const char *body = line + 1;
  gsize body_len;
  gint64 n;

  if (len < 3 || line[len - 2] != '\r')
    return fail (self, error, REDIS_ERROR_PROTOCOL,
                 "Protocol error: a reply line is not terminated by CRLF");
  body_len = len - 3;

  switch (line[0])
    {
    case '+':
      element_done (self, redis_reply_new_text (REDIS_REPLY_KIND_STATUS, body, body_len));
      return TRUE;

    case '-':
      element_done (self, redis_reply_new_text (REDIS_REPLY_KIND_ERROR, body, body_len));
      return TRUE;

    case ':':
      if (!parse_int64 (body, body_len, &n))
        return fail (self, error, REDIS_ERROR_PROTOCOL,
                     "Protocol error: invalid integer reply");
      element_done (self, redis_reply_new_integer (n));
      return TRUE;

    case '$':
      if (!parse_int64 (body, body_len, &n) || n < -1)
        return fail (self, error, REDIS_ERROR_PROTOCOL,
                     "Protocol error: invalid bulk string length");
      if (n == -1)
        {
          element_done (self, redis_reply_new_nil ());
          return TRUE;
        }
      /* reply_bytes already counts this header line (and is at most
       * max_reply_bytes); the payload comes with its CRLF. */
      g_assert (self->reply_bytes <= self->max_reply_bytes);
      if ((guint64) n + 2 > self->max_reply_bytes - self->reply_bytes)
        return fail (self, error, REDIS_ERROR_REPLY_TOO_LARGE,
                     "Reply too large: a bulk string of %" G_GINT64_FORMAT
                     " bytes exceeds max-reply-bytes (%" G_GSIZE_FORMAT ")",
                     n, self->max_reply_bytes);
      self->bulk_left = (guint64) n + 2;
      self->bulk_filled = 0;
      if (n <= BULK_PREALLOC_MAX)
        self->bulk = redis_reply_new_string_uninit ((gsize) n, &self->bulk_data);
      else
        self->big = g_byte_array_sized_new (BULK_PREALLOC_MAX);
      return TRUE;

    case '*':
      if (!parse_int64 (body, body_len, &n) || n < -1)
        return fail (self, error, REDIS_ERROR_PROTOCOL,
                     "Protocol error: invalid array length");
      if (n > (gint64) self->max_elements)
        return fail (self, error, REDIS_ERROR_REPLY_TOO_LARGE,
                     "Reply too large: an array of %" G_GINT64_FORMAT
                     " elements exceeds max-elements (%u)",
                     n, self->max_elements);
      /* Any '*' here, even an empty or nil array, would be one level more. */
      if (self->depth >= self->max_depth)
        return fail (self, error, REDIS_ERROR_REPLY_TOO_LARGE,
                     "Reply too large: arrays nested deeper than max-depth (%u)",
                     self->max_depth);
      if (n == -1)
        element_done (self, redis_reply_new_nil ());
      else if (n == 0)
        element_done (self, redis_reply_new_array (0));
      else
        open_array (self, (guint) n);
      return TRUE;

    default:
      return fail (self, error, REDIS_ERROR_PROTOCOL,
                   "Protocol error: unexpected byte 0x%02x where a reply type "
                   "was expected (redispool speaks RESP2 only)",
                   (guchar) line[0]);
    }
}

/* The payload and CRLF of the bulk string being read. Returns the bytes
 * consumed, or G_MAXSIZE after an error. */
static gsize
bulk_bytes (RedisReader  *self,
            const char   *p,
            gsize         avail,
            GError      **error)
{
  gsize take = (gsize) MIN ((guint64) avail, self->bulk_left);
  gsize payload = self->bulk_left > 2 ? (gsize) MIN ((guint64) take, self->bulk_left - 2) : 0;

  /* Only the CRLF is checked; the payload is copied as it is. */
  if ((self->bulk_left >= 2 && self->bulk_left - 2 < take && p[self->bulk_left - 2] != '\r') ||
      (self->bulk_left - 1 < take && p[self->bulk_left - 1] != '\n'))
    {
      fail (self, error, REDIS_ERROR_PROTOCOL,
            "Protocol error: a bulk string is not followed by CRLF");
      return G_MAXSIZE;
    }

  if (payload > 0)
    {
      if (self->bulk != NULL)
        memcpy (self->bulk_data + self->bulk_filled, p, payload);
      else
        g_byte_array_append (self->big, (const guint8 *) p, payload);
      self->bulk_filled += payload;
    }

  self->reply_bytes += take;
  self->bulk_left -= take;
  if (self->bulk_left == 0)
    {
      RedisReply *reply;

      if (self->bulk != NULL)
        reply = g_steal_pointer (&self->bulk);
      else
        {
          reply = redis_reply_new_text (REDIS_REPLY_KIND_STRING,
                                        (const char *) self->big->data, self->big->len);
          g_clear_pointer (&self->big, g_byte_array_unref);
        }
      self->bulk_data = NULL;
      element_done (self, reply);
    }
  return take;
}

/* Parses [data, data+len); FALSE after an error. */
static gboolean
parse (RedisReader  *self,
       const char   *data,
       gsize         len,
       GError      **error)
{
  const char *p = data;
  const char *end = data + len;

  while (p < end)
    {
      const char *nl;
      const char *line;
      gsize seg;

      if (self->bulk_left > 0)
        {
          gsize took = bulk_bytes (self, p, end - p, error);

          if (took == G_MAXSIZE)
            return FALSE;
          p += took;
          continue;
        }

      nl = memchr (p, '\n', end - p);
      seg = nl != NULL ? (gsize) (nl - p) + 1 : (gsize) (end - p);

      if (self->line->len + seg > self->max_line_length + 2)
        return fail (self, error, REDIS_ERROR_REPLY_TOO_LARGE,
                     "Reply too large: a reply line is longer than "
                     "max-line-length (%" G_GSIZE_FORMAT " bytes)",
                     self->max_line_length);

      self->reply_bytes += seg;
      if (self->reply_bytes > self->max_reply_bytes)
        return fail (self, error, REDIS_ERROR_REPLY_TOO_LARGE,
                     "Reply too large: more than max-reply-bytes "
                     "(%" G_GSIZE_FORMAT ")", self->max_reply_bytes);

      if (nl == NULL)
        {
          g_byte_array_append (self->line, (const guint8 *) p, seg);
          break;
        }

      if (self->line->len > 0)
        {
          g_byte_array_append (self->line, (const guint8 *) p, seg);
          p += seg;
          if (!process_line (self, (const char *) self->line->data, self->line->len, error))
            return FALSE;
          g_byte_array_set_size (self->line, 0);
        }
      else
        {
          line = p;
          p += seg;
          if (!process_line (self, line, seg, error))
            return FALSE;
        }
    }

  return TRUE;
}

gboolean
redis_reader_feed (RedisReader  *self,
                   const char   *data,
                   gsize         len,
                   GError      **error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  if (self->failed)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                           "Protocol error: the reply stream failed earlier");
      return FALSE;
    }

  return parse (self, data, len, error);
}

gboolean
redis_reader_has_failed (RedisReader *self)
{
  return self->failed;
}

RedisReply *
redis_reader_pop (RedisReader *self)
{
  RedisReply *reply;

  g_return_val_if_fail (self != NULL, NULL);

  if (self->done_head == self->done_len)
    return NULL;

  reply = self->done[self->done_head++];
  if (self->done_head == self->done_len)
    self->done_head = self->done_len = 0;
  return reply;
}
