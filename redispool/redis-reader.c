/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>
#include <hiredis/hiredis.h>

#include "redis-error.h"
#include "redis-reader-private.h"
#include "redis-reply-private.h"

struct _RedisReader
{
  redisReader *hiredis;

  gsize        max_reply_bytes;
  guint        max_elements;
  gsize        max_line_length;

  /* Framer state; see the comment in the private header. */
  GByteArray  *line;            /* a line split across feeds, up to its '\n' */
  guint64      bulk_left;       /* payload + CRLF bytes of a bulk string */
  guint        depth;           /* open arrays */
  gint64       remaining[REDIS_READER_MAX_DEPTH + 1];
  guint64      reply_bytes;     /* wire bytes of the top-level reply so far:
                                 * every line with its CRLF, every bulk
                                 * payload with its CRLF */
  guint        n_complete;      /* complete replies fed to hiredis, not popped */
  guint        failed : 1;
};

/* hiredis callbacks: build RedisReply objects directly, no intermediate
 * redisReply tree. A child is owned by its parent array; hiredis only frees
 * the root on error. */
static void
attach_to_parent (const redisReadTask *task,
                  RedisReply          *reply)
{
  if (task->parent != NULL)
    redis_reply_set_element (task->parent->obj, task->idx, reply);
}

static void *
create_string (const redisReadTask *task,
               char                *str,
               size_t               len)
{
  RedisReplyKind kind;
  RedisReply *reply;

  switch (task->type)
    {
    case REDIS_REPLY_STATUS:
      kind = REDIS_REPLY_KIND_STATUS;
      break;
    case REDIS_REPLY_ERROR:
      kind = REDIS_REPLY_KIND_ERROR;
      break;
    case REDIS_REPLY_STRING:
    default:
      kind = REDIS_REPLY_KIND_STRING;
      break;
    }

  reply = redis_reply_new_text (kind, str, len);
  attach_to_parent (task, reply);
  return reply;
}

static void *
create_array (const redisReadTask *task,
              int                  elements)
{
  RedisReply *reply;

  /* The framer has checked the count against max-elements and the data for
   * the whole reply is buffered, so this allocation is bounded. */
  reply = redis_reply_new_array (elements < 0 ? 0 : (guint) elements);
  attach_to_parent (task, reply);
  return reply;
}

static void *
create_integer (const redisReadTask *task,
                long long            value)
{
  RedisReply *reply = redis_reply_new_integer (value);

  attach_to_parent (task, reply);
  return reply;
}

static void *
create_nil (const redisReadTask *task)
{
  RedisReply *reply = redis_reply_new_nil ();

  attach_to_parent (task, reply);
  return reply;
}

static void
free_object (void *obj)
{
  redis_reply_unref (obj);
}

static redisReplyObjectFunctions reply_functions = {
  create_string,
  create_array,
  create_integer,
  create_nil,
  free_object,
};

RedisReader *
redis_reader_new (gsize max_reply_bytes,
                  guint max_elements,
                  gsize max_line_length)
{
  RedisReader *self = g_new0 (RedisReader, 1);

  self->hiredis = redisReaderCreateWithFunctions (&reply_functions);
  if (self->hiredis == NULL)
    g_error ("redispool: out of memory creating a hiredis reader");
  self->max_reply_bytes = MAX (max_reply_bytes, 16);
  self->max_elements = max_elements;
  self->max_line_length = MAX (max_line_length, 16);
  self->line = g_byte_array_new ();
  return self;
}

void
redis_reader_free (RedisReader *self)
{
  if (self == NULL)
    return;
  redisReaderFree (self->hiredis);
  g_byte_array_unref (self->line);
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
  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (REDIS_ERROR, code, format, args));
  va_end (args);
  return FALSE;
}

/* One element (of any kind) finished: close the arrays it completes. */
static void
element_done (RedisReader *self)
{
  while (self->depth > 0)
    {
      if (--self->remaining[self->depth - 1] > 0)
        return;
      self->depth--;
    }

  self->n_complete++;
  self->reply_bytes = 0;
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
  /* hiredis 0.14.1 refuses leading zeros and "-0": so must the framer, or
   * it would accept a reply that hiredis then cannot parse. */
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
    case '-':
      element_done (self);
      return TRUE;

    case ':':
      if (!parse_int64 (body, body_len, &n))
        return fail (self, error, REDIS_ERROR_PROTOCOL,
                     "Protocol error: invalid integer reply");
      element_done (self);
      return TRUE;

    case '$':
      if (!parse_int64 (body, body_len, &n) || n < -1)
        return fail (self, error, REDIS_ERROR_PROTOCOL,
                     "Protocol error: invalid bulk string length");
      if (n == -1)
        {
          element_done (self);
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
      if (self->depth >= REDIS_READER_MAX_DEPTH)
        return fail (self, error, REDIS_ERROR_PROTOCOL,
                     "Protocol error: arrays nested deeper than %d levels",
                     REDIS_READER_MAX_DEPTH);
      if (n <= 0)
        {
          element_done (self);
          return TRUE;
        }
      self->remaining[self->depth++] = n;
      return TRUE;

    default:
      return fail (self, error, REDIS_ERROR_PROTOCOL,
                   "Protocol error: unexpected byte 0x%02x where a reply type "
                   "was expected (redispool speaks RESP2 only)",
                   (guchar) line[0]);
    }
}

/* Validates [data, data+len) and returns how many leading bytes form
 * complete, valid content (all of them unless an error was found). */
static gsize
frame (RedisReader  *self,
       const char   *data,
       gsize         len,
       GError      **error)
{
  const char *p = data;
  const char *end = data + len;
  const char *valid_end = data;

  while (p < end)
    {
      if (self->bulk_left > 0)
        {
          guint64 take = MIN ((guint64) (end - p), self->bulk_left);

          /* The payload is skipped unread; only its CRLF is checked. */
          if (self->bulk_left >= 2 && self->bulk_left - 2 < take &&
              p[self->bulk_left - 2] != '\r')
            goto bad_bulk;
          if (self->bulk_left - 1 < take && p[self->bulk_left - 1] != '\n')
            goto bad_bulk;

          self->reply_bytes += take;
          self->bulk_left -= take;
          p += take;
          if (self->bulk_left == 0)
            {
              element_done (self);
              if (self->depth == 0)
                valid_end = p;
            }
          continue;
        }
      else
        {
          const char *nl = memchr (p, '\n', end - p);
          gsize seg = nl != NULL ? (gsize) (nl - p) + 1 : (gsize) (end - p);
          const char *line;
          gsize line_len;

          if (self->line->len + seg > self->max_line_length + 2)
            {
              fail (self, error, REDIS_ERROR_REPLY_TOO_LARGE,
                    "Reply too large: a reply line is longer than "
                    "max-line-length (%" G_GSIZE_FORMAT " bytes)",
                    self->max_line_length);
              return valid_end - data;
            }

          self->reply_bytes += seg;
          if (self->reply_bytes > self->max_reply_bytes)
            {
              fail (self, error, REDIS_ERROR_REPLY_TOO_LARGE,
                    "Reply too large: more than max-reply-bytes "
                    "(%" G_GSIZE_FORMAT ")", self->max_reply_bytes);
              return valid_end - data;
            }

          if (nl == NULL)
            {
              g_byte_array_append (self->line, (const guint8 *) p, seg);
              p = end;
              break;
            }

          if (self->line->len > 0)
            {
              g_byte_array_append (self->line, (const guint8 *) p, seg);
              line = (const char *) self->line->data;
              line_len = self->line->len;
            }
          else
            {
              line = p;
              line_len = seg;
            }
          p += seg;

          if (!process_line (self, line, line_len, error))
            return valid_end - data;
          g_byte_array_set_size (self->line, 0);

          if (self->depth == 0 && self->bulk_left == 0 && self->reply_bytes == 0)
            valid_end = p;
        }
    }

  return len;

bad_bulk:
  fail (self, error, REDIS_ERROR_PROTOCOL,
        "Protocol error: a bulk string is not followed by CRLF");
  return valid_end - data;
}

gboolean
redis_reader_feed (RedisReader  *self,
                   const char   *data,
                   gsize         len,
                   GError      **error)
{
  gsize valid;

  g_return_val_if_fail (self != NULL, FALSE);

  if (self->failed)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                           "Protocol error: the reply stream failed earlier");
      return FALSE;
    }

  valid = frame (self, data, len, error);
  if (valid > 0 && redisReaderFeed (self->hiredis, data, valid) != REDIS_OK)
    g_error ("redispool: out of memory feeding the hiredis reader");

  return !self->failed;
}

gboolean
redis_reader_has_failed (RedisReader *self)
{
  return self->failed;
}

RedisReply *
redis_reader_pop (RedisReader *self)
{
  void *reply = NULL;

  g_return_val_if_fail (self != NULL, NULL);

  if (self->n_complete == 0)
    return NULL;

  /* Always pass a pointer: redisReaderGetReply (r, NULL) leaks in 0.14.1. */
  if (redisReaderGetReply (self->hiredis, &reply) != REDIS_OK || reply == NULL)
    {
      /* The framer and hiredis disagree (a framer bug): the stream can no
       * longer be trusted; the next feed reports a protocol error. */
      g_debug ("hiredis rejected a reply the framer accepted: %s",
               self->hiredis->errstr);
      self->failed = TRUE;
      self->n_complete = 0;
      return NULL;
    }

  self->n_complete--;
  return reply;
}
