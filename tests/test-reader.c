/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Unit tests without a server: RedisReply, the RESP2 reader and its limits,
 * escaping of server text, command encoding and classification, and the URI
 * parser. The /text/server-* tests check the escaping end to end against a
 * throwaway redis-server and the scripted fake server. */

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-call-private.h"
#include "redis-options-private.h"
#include "redis-reader-private.h"
#include "redis-reply-private.h"
#include "redis-text-private.h"
#include "fake-server.h"
#include "redis-test-server.h"
#include "test-helpers.h"

#define SECRET "s3cr3tPW"

/* ---- helpers ------------------------------------------------------------ */

static RedisReader *
default_reader (void)
{
  return redis_reader_new (1024 * 1024, 1024, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
}

/* Feeds @data whole; asserts success; returns all replies popped. */
static GPtrArray *
parse_all (RedisReader *reader,
           const char  *data,
           gsize        len)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref);
  RedisReply *r;

  g_assert_true (redis_reader_feed (reader, data, len, &error));
  g_assert_no_error (error);
  while ((r = redis_reader_pop (reader)) != NULL)
    g_ptr_array_add (out, r);
  return out;
}

/* Parses @data (a NUL-terminated string) with a fresh default reader and
 * expects exactly one reply. */
static RedisReply *
parse_one (const char *data)
{
  RedisReader *reader = default_reader ();
  g_autoptr(GPtrArray) all = parse_all (reader, data, strlen (data));
  RedisReply *r;

  g_assert_cmpuint (all->len, ==, 1);
  r = redis_reply_ref (g_ptr_array_index (all, 0));
  redis_reader_free (reader);
  return r;
}

/* Feeds @data to a fresh reader and expects the feed to fail with @code. */
static void
assert_feed_fails (const char *data,
                   gsize       len,
                   int         code)
{
  RedisReader *reader = default_reader ();
  g_autoptr(GError) error = NULL;
  RedisReply *r;

  g_assert_false (redis_reader_feed (reader, data, len, &error));
  g_assert_error (error, REDIS_ERROR, code);
  g_assert_nonnull (error->message);
  /* Nothing complete came before the bad bytes. */
  r = redis_reader_pop (reader);
  g_assert_null (r);
  redis_reader_free (reader);
}

static void
assert_live_zero (void)
{
  g_assert_cmpuint (redis_reply_get_live_count (), ==, 0);
}

/* ---- RedisReply ---------------------------------------------------------- */

static void
test_reply_string (void)
{
  static const char data[] = "a\0b\xff";
  RedisReply *r = redis_reply_new_text (REDIS_REPLY_KIND_STRING, data, 4);
  const char *s;
  gsize len = 99;
  GBytes *bytes;
  gconstpointer bdata;
  gsize blen;

  g_assert_cmpuint (redis_reply_get_live_count (), ==, 1);
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_STRING);
  g_assert_false (redis_reply_is_nil (r));

  s = redis_reply_get_string (r, &len);
  g_assert_cmpuint (len, ==, 4);
  g_assert_cmpmem (s, len, data, 4);
  g_assert_cmpint (s[4], ==, '\0');   /* always NUL-terminated */
  /* Without a length the caller would see "a": no text rather than a
   * truncated one (also for the text getter bindings call get_string). */
  g_assert_null (redis_reply_get_string (r, NULL));
  g_assert_null (redis_reply_get_text (r));
  {
    const guint8 *d;

    len = 99;
    d = redis_reply_get_data (r, &len);
    g_assert_cmpuint (len, ==, 4);
    g_assert_true ((const char *) d == s);
    g_assert_cmpmem (d, len, data, 4);
  }

  /* get_bytes shares the reply's memory and keeps the reply alive. */
  bytes = redis_reply_get_bytes (r);
  bdata = g_bytes_get_data (bytes, &blen);
  g_assert_true (bdata == (gconstpointer) s);
  g_assert_cmpuint (blen, ==, 4);
  redis_reply_unref (r);
  g_assert_cmpuint (redis_reply_get_live_count (), ==, 1);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), 4, data, 4);
  g_bytes_unref (bytes);
  assert_live_zero ();

  /* A NUL alone, and invalid UTF-8 alone, each refuse the text. */
  {
    static const struct { const char *data; gsize len; gboolean text; } cases[] = {
      { "a\0b", 3, FALSE },
      { "\0", 1, FALSE },
      { "ab\xff", 3, FALSE },
      { "\xc3", 1, FALSE },          /* truncated sequence */
      { "h\xc3\xa9llo", 6, TRUE },  /* UTF-8 beyond ASCII is text */
      { "OK", 2, TRUE },
    };

    static const RedisReplyKind kinds[] = {
      REDIS_REPLY_KIND_STRING, REDIS_REPLY_KIND_STATUS, REDIS_REPLY_KIND_ERROR,
    };

    for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
      for (gsize k = 0; k < G_N_ELEMENTS (kinds); k++)
        {
          const guint8 *d;

          r = redis_reply_new_text (kinds[k], cases[i].data, cases[i].len);
          if (cases[i].text)
            {
              g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, cases[i].data);
              g_assert_cmpstr (redis_reply_get_text (r), ==, cases[i].data);
            }
          else
            {
              g_assert_null (redis_reply_get_string (r, NULL));
              g_assert_null (redis_reply_get_text (r));
            }
          /* With a length, and as data, always the whole value. */
          s = redis_reply_get_string (r, &len);
          g_assert_cmpmem (s, len, cases[i].data, cases[i].len);
          d = redis_reply_get_data (r, &len);
          g_assert_cmpmem (d, len, cases[i].data, cases[i].len);
          redis_reply_unref (r);
        }
  }

  /* An empty string is not nil. */
  r = redis_reply_new_text (REDIS_REPLY_KIND_STRING, NULL, 0);
  s = redis_reply_get_string (r, &len);
  g_assert_cmpstr (s, ==, "");
  g_assert_cmpuint (len, ==, 0);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "");
  g_assert_cmpstr (redis_reply_get_text (r), ==, "");
  len = 99;
  g_assert_nonnull (redis_reply_get_data (r, &len));
  g_assert_cmpuint (len, ==, 0);
  bytes = redis_reply_get_bytes (r);
  g_assert_cmpuint (g_bytes_get_size (bytes), ==, 0);
  g_bytes_unref (bytes);
  redis_reply_unref (r);

  /* Other accessors on a string. */
  r = redis_reply_new_text (REDIS_REPLY_KIND_STATUS, "OK", 2);
  g_assert_cmpint (redis_reply_get_integer (r), ==, 0);
  g_assert_cmpuint (redis_reply_get_n_elements (r), ==, 0);
  g_assert_null (redis_reply_get_element (r, 0));
  {
    g_autoptr(GPtrArray) els = redis_reply_get_elements (r);
    g_assert_cmpuint (els->len, ==, 0);
  }
  g_assert_null (redis_reply_get_error_prefix (r));
  redis_reply_unref (r);
  assert_live_zero ();
}

static void
test_reply_integer_nil_array (void)
{
  RedisReply *i = redis_reply_new_integer (G_MININT64);
  RedisReply *n = redis_reply_new_nil ();
  RedisReply *a = redis_reply_new_array (3);
  RedisReply *empty = redis_reply_new_array (0);
  gsize len = 42;
  GPtrArray *els;

  g_assert_cmpint (redis_reply_get_kind (i), ==, REDIS_REPLY_KIND_INTEGER);
  g_assert_cmpint (redis_reply_get_integer (i), ==, G_MININT64);
  g_assert_null (redis_reply_get_string (i, &len));
  g_assert_cmpuint (len, ==, 0);
  g_assert_null (redis_reply_get_bytes (i));
  len = 42;
  g_assert_null (redis_reply_get_data (i, &len));
  g_assert_cmpuint (len, ==, 0);
  g_assert_null (redis_reply_get_text (i));

  g_assert_cmpint (redis_reply_get_kind (n), ==, REDIS_REPLY_KIND_NIL);
  g_assert_true (redis_reply_is_nil (n));
  g_assert_null (redis_reply_get_string (n, NULL));
  g_assert_null (redis_reply_get_bytes (n));
  len = 42;
  g_assert_null (redis_reply_get_data (n, &len));
  g_assert_cmpuint (len, ==, 0);

  redis_reply_set_element (a, 0, redis_reply_ref (i));
  redis_reply_set_element (a, 1, redis_reply_ref (n));
  redis_reply_set_element (a, 2, redis_reply_new_text (REDIS_REPLY_KIND_STRING, "x", 1));
  g_assert_cmpint (redis_reply_get_kind (a), ==, REDIS_REPLY_KIND_ARRAY);
  g_assert_cmpuint (redis_reply_get_n_elements (a), ==, 3);
  g_assert_true (redis_reply_get_element (a, 0) == i);
  g_assert_true (redis_reply_get_element (a, 1) == n);
  g_assert_null (redis_reply_get_element (a, 3));
  g_assert_null (redis_reply_get_element (a, G_MAXUINT));
  g_assert_null (redis_reply_get_string (a, NULL));

  els = redis_reply_get_elements (a);
  g_assert_cmpuint (els->len, ==, 3);
  g_assert_true (g_ptr_array_index (els, 0) == i);
  /* The container holds its own references. */
  redis_reply_unref (a);
  g_assert_cmpstr (redis_reply_get_string (g_ptr_array_index (els, 2), NULL), ==, "x");
  g_ptr_array_unref (els);

  g_assert_cmpuint (redis_reply_get_n_elements (empty), ==, 0);
  g_assert_false (redis_reply_is_nil (empty));
  els = redis_reply_get_elements (empty);
  g_assert_cmpuint (els->len, ==, 0);
  g_ptr_array_unref (els);

  redis_reply_unref (empty);
  redis_reply_unref (i);
  redis_reply_unref (n);
  assert_live_zero ();
}

static void
test_reply_variant (void)
{
  RedisReply *r;
  GVariant *v;
  GVariant *child;
  gsize n;

  r = redis_reply_new_text (REDIS_REPLY_KIND_STRING, "héllo", strlen ("héllo"));
  v = redis_reply_to_variant (r);
  g_assert_false (g_variant_is_floating (v));
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "s");
  g_assert_cmpstr (g_variant_get_string (v, NULL), ==, "héllo");
  g_variant_unref (v);
  redis_reply_unref (r);

  /* Embedded NUL → ay */
  r = redis_reply_new_text (REDIS_REPLY_KIND_STRING, "a\0b", 3);
  v = redis_reply_to_variant (r);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "ay");
  g_assert_cmpmem (g_variant_get_fixed_array (v, &n, 1), n, "a\0b", 3);
  g_variant_unref (v);
  redis_reply_unref (r);

  /* Invalid UTF-8 → ay */
  r = redis_reply_new_text (REDIS_REPLY_KIND_STRING, "\xff\xfe", 2);
  v = redis_reply_to_variant (r);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "ay");
  g_assert_cmpmem (g_variant_get_fixed_array (v, &n, 1), n, "\xff\xfe", 2);
  g_variant_unref (v);
  redis_reply_unref (r);

  /* Status and error → s, even with invalid UTF-8 */
  r = redis_reply_new_text (REDIS_REPLY_KIND_STATUS, "OK", 2);
  v = redis_reply_to_variant (r);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "s");
  g_assert_cmpstr (g_variant_get_string (v, NULL), ==, "OK");
  g_variant_unref (v);
  redis_reply_unref (r);

  r = redis_reply_new_text (REDIS_REPLY_KIND_ERROR, "ERR \xff", 5);
  v = redis_reply_to_variant (r);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "s");
  g_assert_true (g_utf8_validate (g_variant_get_string (v, NULL), -1, NULL));
  g_variant_unref (v);
  redis_reply_unref (r);

  r = redis_reply_new_integer (-7);
  v = redis_reply_to_variant (r);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "x");
  g_assert_cmpint (g_variant_get_int64 (v), ==, -7);
  g_variant_unref (v);
  redis_reply_unref (r);

  r = redis_reply_new_nil ();
  v = redis_reply_to_variant (r);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "mv");
  g_assert_null (g_variant_get_maybe (v));
  g_variant_unref (v);
  redis_reply_unref (r);

  r = parse_one ("*4\r\n$1\r\na\r\n:5\r\n$-1\r\n*1\r\n+OK\r\n");
  v = redis_reply_to_variant (r);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "av");
  g_assert_cmpuint (g_variant_n_children (v), ==, 4);
  child = g_variant_get_child_value (v, 0);
  {
    g_autoptr(GVariant) inner = g_variant_get_variant (child);
    g_assert_cmpstr (g_variant_get_string (inner, NULL), ==, "a");
  }
  g_variant_unref (child);
  child = g_variant_get_child_value (v, 1);
  {
    g_autoptr(GVariant) inner = g_variant_get_variant (child);
    g_assert_cmpint (g_variant_get_int64 (inner), ==, 5);
  }
  g_variant_unref (child);
  child = g_variant_get_child_value (v, 2);
  {
    g_autoptr(GVariant) inner = g_variant_get_variant (child);
    g_assert_cmpstr (g_variant_get_type_string (inner), ==, "mv");
  }
  g_variant_unref (child);
  child = g_variant_get_child_value (v, 3);
  {
    g_autoptr(GVariant) inner = g_variant_get_variant (child);
    g_assert_cmpstr (g_variant_get_type_string (inner), ==, "av");
  }
  g_variant_unref (child);
  g_variant_unref (v);
  redis_reply_unref (r);

  assert_live_zero ();
}

static void
test_reply_to_string (void)
{
  RedisReply *r;
  char *s;

  r = parse_one ("*6\r\n$9\r\na\"b\\\n\r\t\x01\xff\r\n:-3\r\n$-1\r\n+OK\r\n-ERR nope\r\n*0\r\n");
  s = redis_reply_to_string (r);
  g_assert_cmpstr (s, ==,
                   "[\"a\\\"b\\\\\\n\\r\\t\\x01\\xff\", (integer) -3, (nil), OK, "
                   "(error) ERR nope, []]");
  g_free (s);
  redis_reply_unref (r);

  r = redis_reply_new_text (REDIS_REPLY_KIND_STRING, "a\0b", 3);
  s = redis_reply_to_string (r);
  g_assert_cmpstr (s, ==, "\"a\\x00b\"");
  g_free (s);
  redis_reply_unref (r);

  assert_live_zero ();
}

static void
test_reply_error_prefix (void)
{
  static const struct { const char *text; const char *prefix; } cases[] = {
    { "WRONGTYPE Operation against a key holding the wrong kind of value", "WRONGTYPE" },
    { "ERR unknown command", "ERR" },
    { "NOAUTH Authentication required.", "NOAUTH" },
    { "EXECABORT", "EXECABORT" },
    { "MY_ERR x", "MY_ERR" },
    { "lowercase error", NULL },
    { "", NULL },
    { "ERR:x", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      RedisReply *r = redis_reply_new_text (REDIS_REPLY_KIND_ERROR, cases[i].text,
                                            strlen (cases[i].text));
      g_autofree char *prefix = redis_reply_get_error_prefix (r);

      g_assert_cmpstr (prefix, ==, cases[i].prefix);
      redis_reply_unref (r);
    }

  /* Only error replies have a prefix. */
  {
    RedisReply *r = redis_reply_new_text (REDIS_REPLY_KIND_STRING, "ERR x", 5);
    g_assert_null (redis_reply_get_error_prefix (r));
    redis_reply_unref (r);
  }

  /* And GErrors built from server replies. */
  {
    g_autoptr(GError) e = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_SERVER,
                                               "WRONGTYPE Operation against a key");
    g_autoptr(GError) other = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_TIMEOUT,
                                                   "TIMEOUT x");
    g_autofree char *p = redis_error_get_server_prefix (e);
    g_autofree char *q = redis_error_get_server_prefix (other);

    g_assert_cmpstr (p, ==, "WRONGTYPE");
    g_assert_null (q);
  }

  assert_live_zero ();
}

static void
test_reply_boxed (void)
{
  RedisReply *r = redis_reply_new_integer (1);
  GValue v = G_VALUE_INIT;

  g_assert_true (G_TYPE_IS_BOXED (REDIS_TYPE_REPLY));
  g_value_init (&v, REDIS_TYPE_REPLY);
  g_value_set_boxed (&v, r);
  redis_reply_unref (r);
  g_assert_cmpuint (redis_reply_get_live_count (), ==, 1);
  g_value_unset (&v);
  assert_live_zero ();
}

/* ---- reader: types ------------------------------------------------------- */

static void
test_reader_types (void)
{
  static const char stream[] =
    "+OK\r\n"
    "-ERR bad thing\r\n"
    ":42\r\n"
    ":-9223372036854775808\r\n"
    ":9223372036854775807\r\n"
    "$5\r\nhello\r\n"
    "$0\r\n\r\n"
    "$4\r\na\r\n\0\r\n"
    "$-1\r\n"
    "*-1\r\n"
    "*0\r\n"
    "*3\r\n$1\r\na\r\n:1\r\n*1\r\n+x\r\n"
    "+\r\n";
  RedisReader *reader = default_reader ();
  g_autoptr(GPtrArray) all = parse_all (reader, stream, sizeof stream - 1);
  RedisReply *r;
  gsize len;

  g_assert_cmpuint (all->len, ==, 13);

  r = all->pdata[0];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_STATUS);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "OK");

  r = all->pdata[1];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_ERROR);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "ERR bad thing");
  {
    g_autofree char *p = redis_reply_get_error_prefix (r);
    g_assert_cmpstr (p, ==, "ERR");
  }

  r = all->pdata[2];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_INTEGER);
  g_assert_cmpint (redis_reply_get_integer (r), ==, 42);
  g_assert_cmpint (redis_reply_get_integer (all->pdata[3]), ==, G_MININT64);
  g_assert_cmpint (redis_reply_get_integer (all->pdata[4]), ==, G_MAXINT64);

  r = all->pdata[5];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_STRING);
  g_assert_cmpstr (redis_reply_get_string (r, &len), ==, "hello");
  g_assert_cmpuint (len, ==, 5);

  r = all->pdata[6];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_STRING);
  g_assert_cmpstr (redis_reply_get_string (r, &len), ==, "");
  g_assert_cmpuint (len, ==, 0);

  /* A bulk string may contain CRLF and NUL. */
  r = all->pdata[7];
  g_assert_cmpmem (redis_reply_get_string (r, &len), len, "a\r\n\0", 4);

  g_assert_cmpint (redis_reply_get_kind (all->pdata[8]), ==, REDIS_REPLY_KIND_NIL);
  g_assert_cmpint (redis_reply_get_kind (all->pdata[9]), ==, REDIS_REPLY_KIND_NIL);

  r = all->pdata[10];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_ARRAY);
  g_assert_cmpuint (redis_reply_get_n_elements (r), ==, 0);

  r = all->pdata[11];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_ARRAY);
  g_assert_cmpuint (redis_reply_get_n_elements (r), ==, 3);
  g_assert_cmpstr (redis_reply_get_string (redis_reply_get_element (r, 0), NULL), ==, "a");
  g_assert_cmpint (redis_reply_get_integer (redis_reply_get_element (r, 1)), ==, 1);
  g_assert_cmpstr (redis_reply_get_string (redis_reply_get_element (redis_reply_get_element (r, 2), 0), NULL), ==, "x");

  r = all->pdata[12];
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_STATUS);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "");

  g_assert_null (redis_reader_pop (reader));
  redis_reader_free (reader);
  g_clear_pointer (&all, g_ptr_array_unref);
  assert_live_zero ();
}

static const char complex_reply[] =
  "*5\r\n"
    "$3\r\nfoo\r\n"
    "*3\r\n"
      ":-12345\r\n"
      "$-1\r\n"
      "*2\r\n"
        "*1\r\n$6\r\nx\r\ny\0z\r\n"
        "-WRONGTYPE no\r\n"
    "+status line\r\n"
    "*0\r\n"
    "$10\r\n0123456789\r\n"
  ":7\r\n";

static char *
parse_in_chunks (gsize chunk)
{
  RedisReader *reader = default_reader ();
  GString *out = g_string_new (NULL);
  gsize len = sizeof complex_reply - 1;
  RedisReply *r;

  for (gsize off = 0; off < len; off += chunk)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (redis_reader_feed (reader, complex_reply + off, MIN (chunk, len - off), &error));
      g_assert_no_error (error);
      while ((r = redis_reader_pop (reader)) != NULL)
        {
          char *s = redis_reply_to_string (r);
          g_string_append (out, s);
          g_string_append_c (out, '|');
          g_free (s);
          redis_reply_unref (r);
        }
    }
  redis_reader_free (reader);
  return g_string_free (out, FALSE);
}

static void
test_reader_bytewise (void)
{
  g_autofree char *whole = parse_in_chunks (sizeof complex_reply);

  g_assert_cmpstr (whole, ==,
                   "[\"foo\", [(integer) -12345, (nil), [[\"x\\r\\ny\\x00z\"], "
                   "(error) WRONGTYPE no]], status line, [], \"0123456789\"]|(integer) 7|");

  for (gsize chunk = 1; chunk <= 17; chunk++)
    {
      g_autofree char *split = parse_in_chunks (chunk);
      g_assert_cmpstr (split, ==, whole);
    }
  assert_live_zero ();
}

static void
test_reader_many (void)
{
  GString *s = g_string_new (NULL);
  RedisReader *reader = default_reader ();
  g_autoptr(GPtrArray) all = NULL;

  for (guint i = 0; i < 10000; i++)
    {
      char num[16];

      g_snprintf (num, sizeof num, "%u", i);
      g_string_append_printf (s, ":%u\r\n$%u\r\n%s\r\n", i, (guint) strlen (num), num);
    }
  all = parse_all (reader, s->str, s->len);
  g_assert_cmpuint (all->len, ==, 20000);
  for (guint i = 0; i < 10000; i++)
    {
      char buf[16];

      g_assert_cmpint (redis_reply_get_integer (all->pdata[2 * i]), ==, i);
      g_snprintf (buf, sizeof buf, "%u", i);
      g_assert_cmpstr (redis_reply_get_string (all->pdata[2 * i + 1], NULL), ==, buf);
    }
  redis_reader_free (reader);
  g_string_free (s, TRUE);
  g_clear_pointer (&all, g_ptr_array_unref);
  assert_live_zero ();
}

static void
test_reader_nil (void)
{
  RedisReply *r = parse_one ("*-1\r\n");

  g_assert_true (redis_reply_is_nil (r));
  redis_reply_unref (r);
  r = parse_one ("$-1\r\n");
  g_assert_true (redis_reply_is_nil (r));
  redis_reply_unref (r);
  assert_live_zero ();
}

/* ---- reader: limits ------------------------------------------------------ */

static void
test_reader_huge_array_count (void)
{
  gint64 start = g_get_monotonic_time ();

  assert_feed_fails ("*2147483647\r\n", 13, REDIS_ERROR_REPLY_TOO_LARGE);
  /* Even with the largest max-elements. */
  {
    RedisReader *reader = redis_reader_new (1024, G_MAXINT, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
    g_autoptr(GError) error = NULL;

    g_assert_false (redis_reader_feed (reader, "*2147483648\r\n", 13, &error));
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
    redis_reader_free (reader);
  }
  /* The limit is exact. */
  {
    RedisReader *reader = redis_reader_new (1024 * 1024, 3, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) ok = parse_all (reader, "*3\r\n:1\r\n:2\r\n:3\r\n", strlen ("*3\r\n:1\r\n:2\r\n:3\r\n"));

    g_assert_cmpuint (ok->len, ==, 1);
    g_assert_false (redis_reader_feed (reader, "*4\r\n", 4, &error));
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
    redis_reader_free (reader);
  }
  g_assert_cmpint (g_get_monotonic_time () - start, <, (gint64) test_scale_ms (1000) * 1000);
  assert_live_zero ();
}

static void
test_reader_huge_bulk_length (void)
{
  gint64 start = g_get_monotonic_time ();

  assert_feed_fails ("$4611686018427387904\r\n", 22, REDIS_ERROR_REPLY_TOO_LARGE);
  assert_feed_fails ("$9223372036854775807\r\n", 22, REDIS_ERROR_REPLY_TOO_LARGE);
  /* Past INT64: not a number any more. */
  assert_feed_fails ("$9223372036854775808\r\n", 22, REDIS_ERROR_PROTOCOL);
  assert_feed_fails ("*1\r\n$4611686018427387904\r\n", 26, REDIS_ERROR_REPLY_TOO_LARGE);
  g_assert_cmpint (g_get_monotonic_time () - start, <, (gint64) test_scale_ms (1000) * 1000);
}

static void
test_reader_bulk_over_max (void)
{
  RedisReader *reader;
  g_autoptr(GError) error = NULL;
  g_autofree char *payload = g_malloc (2000);
  GString *s;
  g_autoptr(GPtrArray) ok = NULL;

  memset (payload, 'p', 2000);

  /* Just within the limit. */
  reader = redis_reader_new (1024, 1024, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
  s = g_string_new ("$1000\r\n");
  g_string_append_len (s, payload, 1000);
  g_string_append (s, "\r\n");
  ok = parse_all (reader, s->str, s->len);
  g_assert_cmpuint (ok->len, ==, 1);
  g_string_free (s, TRUE);

  /* One bulk over it, rejected from its header alone. */
  g_assert_false (redis_reader_feed (reader, "$1025\r\n", 7, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_clear_error (&error);
  /* After a failure the reader accepts nothing. */
  g_assert_false (redis_reader_feed (reader, "+OK\r\n", 5, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_null (redis_reader_pop (reader));
  redis_reader_free (reader);

  /* Several bulks that together exceed it inside one array. */
  reader = redis_reader_new (1024, 1024, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
  s = g_string_new ("*2\r\n$600\r\n");
  g_string_append_len (s, payload, 600);
  g_string_append (s, "\r\n$600\r\n");
  g_string_append_len (s, payload, 600);
  g_string_append (s, "\r\n");
  g_assert_false (redis_reader_feed (reader, s->str, s->len, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_clear_error (&error);
  g_assert_null (redis_reader_pop (reader));
  g_string_free (s, TRUE);
  redis_reader_free (reader);

  /* The limit is per reply: many replies of 600 bytes pass. */
  reader = redis_reader_new (1024, 1024, 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
  s = g_string_new (NULL);
  for (guint i = 0; i < 10; i++)
    {
      g_string_append (s, "$600\r\n");
      g_string_append_len (s, payload, 600);
      g_string_append (s, "\r\n");
    }
  g_clear_pointer (&ok, g_ptr_array_unref);
  ok = parse_all (reader, s->str, s->len);
  g_assert_cmpuint (ok->len, ==, 10);
  g_string_free (s, TRUE);
  redis_reader_free (reader);

  g_clear_pointer (&ok, g_ptr_array_unref);
  assert_live_zero ();
}

/* max-reply-bytes counts exact wire bytes. Each builder makes a reply whose
 * size grows with @fill. */
static GString *
build_bulk (gsize fill)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "$%" G_GSIZE_FORMAT "\r\n", fill);
  for (gsize i = 0; i < fill; i++)
    g_string_append_c (s, 'b');
  g_string_append (s, "\r\n");
  return s;
}

static GString *
build_nested (gsize fill)
{
  GString *s = g_string_new ("*2\r\n*3\r\n:1\r\n$-1\r\n");
  GString *bulk = build_bulk (fill);

  /* The bulk is not last: its CRLF counts before the next element. */
  g_string_append_len (s, bulk->str, bulk->len);
  g_string_append (s, "+OK\r\n");
  g_string_free (bulk, TRUE);
  return s;
}

static GString *
build_status (gsize fill)
{
  GString *s = g_string_new ("+");

  for (gsize i = 0; i < fill; i++)
    g_string_append_c (s, 's');
  g_string_append (s, "\r\n");
  return s;
}

static GString *
build_error_in_array (gsize fill)
{
  GString *s = g_string_new ("*1\r\n-ERR ");

  for (gsize i = 0; i < fill; i++)
    g_string_append_c (s, 'e');
  g_string_append (s, "\r\n");
  return s;
}

/* Feeds @data to a reader limited to @limit bytes, whole or byte by byte,
 * followed by a small reply; returns whether the feed succeeded (and then
 * checks both replies came out). */
static gboolean
feed_with_limit (const GString  *data,
                 gsize           limit,
                 gboolean        bytewise,
                 GError        **error)
{
  RedisReader *reader = redis_reader_new (limit, 1024, 4096, REDIS_READER_DEFAULT_MAX_DEPTH);
  gboolean ok = TRUE;
  RedisReply *r;

  if (bytewise)
    {
      for (gsize i = 0; ok && i < data->len; i++)
        ok = redis_reader_feed (reader, data->str + i, 1, error);
    }
  else
    ok = redis_reader_feed (reader, data->str, data->len, error);
  if (ok)
    ok = redis_reader_feed (reader, ":7\r\n", 4, error);

  if (ok)
    {
      r = redis_reader_pop (reader);
      g_assert_nonnull (r);
      redis_reply_unref (r);
      r = redis_reader_pop (reader);
      g_assert_nonnull (r);
      g_assert_cmpint (redis_reply_get_integer (r), ==, 7);
      redis_reply_unref (r);
    }
  g_assert_null (redis_reader_pop (reader));
  redis_reader_free (reader);
  return ok;
}

/* A reply of exactly @wire bytes passes a limit of @wire and fails one of
 * @wire - 1 with REPLY_TOO_LARGE, fed whole or byte by byte. */
static void
assert_exact_limit (GString *(*build) (gsize),
                    gsize     wire)
{
  GString *data = NULL;

  for (gsize fill = 0; ; fill++)
    {
      data = build (fill);
      if (data->len >= wire)
        break;
      g_string_free (data, TRUE);
    }
  g_assert_cmpuint (data->len, ==, wire);

  for (int bytewise = 0; bytewise < 2; bytewise++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (feed_with_limit (data, wire, bytewise, &error));
      g_assert_no_error (error);
      g_assert_false (feed_with_limit (data, wire - 1, bytewise, &error));
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
    }
  g_string_free (data, TRUE);
}

static void
test_reader_exact_wire_bytes (void)
{
  static const gsize bulk_sizes[] = { 20, 100, 1024, 4096 };
  static const gsize nested_sizes[] = { 40, 100, 1024, 4096 };
  static const gsize line_sizes[] = { 17, 64, 1024, 4000 };

  for (gsize i = 0; i < G_N_ELEMENTS (bulk_sizes); i++)
    assert_exact_limit (build_bulk, bulk_sizes[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (nested_sizes); i++)
    assert_exact_limit (build_nested, nested_sizes[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (line_sizes); i++)
    {
      assert_exact_limit (build_status, line_sizes[i]);
      assert_exact_limit (build_error_in_array, line_sizes[i]);
    }

  /* The case of issue 16: a 1,017-byte bulk is 1,026 wire bytes. */
  {
    GString *data = build_bulk (1017);
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint (data->len, ==, 1026);
    g_assert_false (feed_with_limit (data, 1024, FALSE, &error));
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
    g_string_free (data, TRUE);
  }

  assert_live_zero ();
}

#define CHUNK (64 * 1024)
#define HUGE_LINE (100 * 1024 * 1024)

static void
test_reader_long_line (void)
{
  RedisReader *reader = redis_reader_new (512 * 1024 * 1024, 1024, 64 * 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
  g_autofree char *chunk = g_malloc (CHUNK);
  gint64 start, elapsed;
  gsize fed = 0;
  gsize failed_at = 0;
  GError *first_error = NULL;

  memset (chunk, 'a', CHUNK);
  chunk[0] = '+';

  start = g_get_monotonic_time ();
  while (fed < HUGE_LINE)
    {
      GError *error = NULL;

      if (!redis_reader_feed (reader, chunk, CHUNK, &error))
        {
          g_assert_nonnull (error);
          if (first_error == NULL)
            {
              first_error = error;
              failed_at = fed + CHUNK;
            }
          else
            g_error_free (error);
        }
      else
        g_assert_no_error (error);
      chunk[0] = 'a';
      fed += CHUNK;
    }
  elapsed = g_get_monotonic_time () - start;

  g_assert_error (first_error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_error_free (first_error);
  /* It failed as soon as the line was over 64 KiB. */
  g_assert_cmpuint (failed_at, <=, 2 * CHUNK);
  g_assert_null (redis_reader_pop (reader));
  g_test_message ("feeding 100 MiB took %" G_GINT64_FORMAT " ms", elapsed / 1000);
  g_assert_cmpint (elapsed, <, (gint64) test_scale_ms (2000) * 1000);
  redis_reader_free (reader);
  assert_live_zero ();
}

/* A long line that is allowed must still be parsed in linear time (hiredis
 * alone rescans an unterminated line on every feed). */
static void
test_reader_long_line_linear (void)
{
  const gsize total = 32 * 1024 * 1024;
  RedisReader *reader = redis_reader_new (64 * 1024 * 1024, 1024, 64 * 1024 * 1024, REDIS_READER_DEFAULT_MAX_DEPTH);
  g_autofree char *chunk = g_malloc (CHUNK);
  g_autoptr(GError) error = NULL;
  RedisReply *r;
  gint64 start, elapsed;
  gsize len;

  memset (chunk, 'b', CHUNK);
  start = g_get_monotonic_time ();
  g_assert_true (redis_reader_feed (reader, "+", 1, &error));
  for (gsize fed = 0; fed < total; fed += CHUNK)
    {
      g_assert_true (redis_reader_feed (reader, chunk, CHUNK, &error));
      g_assert_null (redis_reader_pop (reader));
    }
  g_assert_true (redis_reader_feed (reader, "\r\n", 2, &error));
  g_assert_no_error (error);
  r = redis_reader_pop (reader);
  elapsed = g_get_monotonic_time () - start;

  g_assert_nonnull (r);
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_STATUS);
  redis_reply_get_string (r, &len);
  g_assert_cmpuint (len, ==, total);
  redis_reply_unref (r);
  g_test_message ("32 MiB line in 64 KiB feeds took %" G_GINT64_FORMAT " ms", elapsed / 1000);
  g_assert_cmpint (elapsed, <, (gint64) test_scale_ms (2000) * 1000);
  redis_reader_free (reader);
  assert_live_zero ();
}

/* "*1\r\n" × @depth, then @leaf. */
static GString *
nested (guint       depth,
        const char *leaf)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < depth; i++)
    g_string_append (s, "*1\r\n");
  g_string_append (s, leaf);
  return s;
}

static guint
reply_depth (RedisReply *r)
{
  guint depth = 0;

  for (; redis_reply_get_kind (r) == REDIS_REPLY_KIND_ARRAY && redis_reply_get_n_elements (r) > 0;
       r = redis_reply_get_element (r, 0))
    depth++;
  return depth;
}

static void
test_reader_nesting (void)
{
  static const guint depths[] = { 1, 7, 8, 12, 30, 63, 64 };
  GString *s;
  RedisReply *r;
  RedisReply *cur;
  gint64 start;

  /* Up to max-depth (64 by default) levels are fine, in one feed or byte
   * by byte, and to_variant()/to_string() walk them. */
  for (guint i = 0; i < G_N_ELEMENTS (depths); i++)
    {
      RedisReader *reader = default_reader ();
      g_autoptr(GVariant) v = NULL;
      g_autofree char *text = NULL;
      GVariant *inner;
      guint vdepth = 0;

      s = nested (depths[i], ":1\r\n");
      r = parse_one (s->str);
      g_assert_cmpuint (reply_depth (r), ==, depths[i]);
      for (cur = r; redis_reply_get_kind (cur) == REDIS_REPLY_KIND_ARRAY; cur = redis_reply_get_element (cur, 0))
        ;
      g_assert_cmpint (redis_reply_get_integer (cur), ==, 1);

      v = redis_reply_to_variant (r);
      inner = g_variant_ref (v);
      while (g_variant_is_of_type (inner, G_VARIANT_TYPE ("av")))
        {
          GVariant *child = g_variant_get_child_value (inner, 0);

          g_variant_unref (inner);
          inner = g_variant_get_variant (child);
          g_variant_unref (child);
          vdepth++;
        }
      g_assert_cmpuint (vdepth, ==, depths[i]);
      g_assert_cmpint (g_variant_get_int64 (inner), ==, 1);
      g_variant_unref (inner);

      text = redis_reply_to_string (r);
      g_assert_cmpuint (strlen (text), ==, 2 * depths[i] + strlen ("(integer) 1"));
      redis_reply_unref (r);

      /* Byte by byte. */
      for (gsize j = 0; j < s->len; j++)
        g_assert_true (redis_reader_feed (reader, s->str + j, 1, NULL));
      r = redis_reader_pop (reader);
      g_assert_nonnull (r);
      g_assert_cmpuint (reply_depth (r), ==, depths[i]);
      redis_reply_unref (r);
      g_assert_null (redis_reader_pop (reader));
      redis_reader_free (reader);
      g_string_free (s, TRUE);
    }

  /* A mixed deep tree: nil bulk and nil array at depth, empty arrays,
   * several elements per level, then the next reply. */
  s = g_string_new (NULL);
  for (guint i = 0; i < 40; i++)
    g_string_append (s, "*4\r\n$-1\r\n*-1\r\n*0\r\n");
  g_string_append (s, "+deep\r\n");
  g_string_append (s, "$2\r\nok\r\n");
  {
    RedisReader *reader = default_reader ();
    g_autoptr(GPtrArray) all = parse_all (reader, s->str, s->len);
    g_autofree char *text = NULL;

    g_assert_cmpuint (all->len, ==, 2);
    r = all->pdata[0];
    cur = r;
    for (guint i = 0; i < 40; i++)
      {
        g_assert_cmpuint (redis_reply_get_n_elements (cur), ==, 4);
        g_assert_true (redis_reply_is_nil (redis_reply_get_element (cur, 0)));
        g_assert_true (redis_reply_is_nil (redis_reply_get_element (cur, 1)));
        g_assert_cmpint (redis_reply_get_kind (redis_reply_get_element (cur, 2)), ==, REDIS_REPLY_KIND_ARRAY);
        g_assert_cmpuint (redis_reply_get_n_elements (redis_reply_get_element (cur, 2)), ==, 0);
        cur = redis_reply_get_element (cur, 3);
      }
    g_assert_cmpint (redis_reply_get_kind (cur), ==, REDIS_REPLY_KIND_STATUS);
    g_assert_cmpstr (redis_reply_get_string (cur, NULL), ==, "deep");
    text = redis_reply_to_string (all->pdata[1]);
    g_assert_cmpstr (text, ==, "\"ok\"");
    redis_reader_free (reader);
  }
  g_string_free (s, TRUE);

  /* max-depth + 1 is not, whatever the innermost element (an empty or nil
   * array is one level more too). */
  s = nested (65, ":1\r\n");
  assert_feed_fails (s->str, s->len, REDIS_ERROR_REPLY_TOO_LARGE);
  g_string_free (s, TRUE);
  s = nested (64, "*0\r\n");
  assert_feed_fails (s->str, s->len, REDIS_ERROR_REPLY_TOO_LARGE);
  g_string_free (s, TRUE);
  s = nested (64, "*-1\r\n");
  assert_feed_fails (s->str, s->len, REDIS_ERROR_REPLY_TOO_LARGE);
  g_string_free (s, TRUE);

  /* Other limits: 1 and 1024 (the largest), and a reply completed before
   * the bad one stays available. */
  {
    RedisReader *reader = redis_reader_new (1024 * 1024, 1024, 1024, 1);
    g_autoptr(GError) error = NULL;

    s = nested (1, ":1\r\n");
    g_string_append (s, "*1\r\n*1\r\n:2\r\n");
    g_assert_false (redis_reader_feed (reader, s->str, s->len, &error));
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
    g_assert_nonnull (strstr (error->message, "max-depth (1)"));
    r = redis_reader_pop (reader);
    g_assert_cmpuint (reply_depth (r), ==, 1);
    redis_reply_unref (r);
    g_assert_null (redis_reader_pop (reader));
    redis_reader_free (reader);
    g_string_free (s, TRUE);
  }
  {
    RedisReader *reader = redis_reader_new (1024 * 1024, 1024, 1024, 100000);
    g_autoptr(GVariant) v = NULL;
    g_autofree char *text = NULL;

    s = nested (REDIS_READER_MAX_DEPTH_LIMIT, "$1\r\nx\r\n");
    g_assert_true (redis_reader_feed (reader, s->str, s->len, NULL));
    r = redis_reader_pop (reader);
    g_assert_cmpuint (reply_depth (r), ==, REDIS_READER_MAX_DEPTH_LIMIT);
    v = redis_reply_to_variant (r);
    text = redis_reply_to_string (r);
    g_assert_cmpuint (strlen (text), ==, 2 * REDIS_READER_MAX_DEPTH_LIMIT + 3);
    redis_reply_unref (r);
    g_string_free (s, TRUE);

    /* Clamped to the limit. */
    s = nested (REDIS_READER_MAX_DEPTH_LIMIT + 1, ":1\r\n");
    g_assert_false (redis_reader_feed (reader, s->str, s->len, NULL));
    redis_reader_free (reader);
    g_string_free (s, TRUE);
  }

  /* A very deep one fails early and cheaply, with no recursion (this would
   * need 100000 stack frames otherwise). */
  s = nested (100000, "");
  start = g_get_monotonic_time ();
  assert_feed_fails (s->str, s->len, REDIS_ERROR_REPLY_TOO_LARGE);
  g_assert_cmpint (g_get_monotonic_time () - start, <, (gint64) test_scale_ms (1000) * 1000);
  g_string_free (s, TRUE);

  /* Huge claimed counts at every level cost nothing before the elements
   * come: 64 × 16 Mi slots would be 8 GiB. */
  {
    RedisReader *reader = redis_reader_new (1024 * 1024, 16 * 1024 * 1024, 1024,
                                            REDIS_READER_DEFAULT_MAX_DEPTH);

    s = g_string_new (NULL);
    for (guint i = 0; i < REDIS_READER_DEFAULT_MAX_DEPTH; i++)
      g_string_append (s, "*16777216\r\n");
    g_assert_true (redis_reader_feed (reader, s->str, s->len, NULL));
    g_assert_null (redis_reader_pop (reader));
    redis_reader_free (reader);
    g_string_free (s, TRUE);
  }

  assert_live_zero ();
}

static void
test_reader_bad_type (void)
{
  static const char * const bad[] = {
    "?x\r\n",
    "_\r\n",                /* RESP3 null */
    "%1\r\n+a\r\n+b\r\n",   /* map */
    "~1\r\n+a\r\n",         /* set */
    ">2\r\n+a\r\n+b\r\n",   /* push */
    "#t\r\n",               /* boolean */
    ",1.5\r\n",             /* double */
    "(12345678901234567890\r\n", /* big number */
    "=7\r\ntxt:abc\r\n",    /* verbatim */
    "|1\r\n+a\r\n+b\r\n",   /* attribute */
    "!3\r\nERR\r\n",        /* blob error */
    "\r\n",
    "\x00\r\n",
    "hello\r\n",            /* inline */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      gsize len = bad[i][0] == '\0' ? 3 : strlen (bad[i]);
      g_test_message ("bad type case %" G_GSIZE_FORMAT, i);
      assert_feed_fails (bad[i], len, REDIS_ERROR_PROTOCOL);
    }

  /* A RESP3 type inside an array. */
  assert_feed_fails ("*2\r\n:1\r\n_\r\n", 11, REDIS_ERROR_PROTOCOL);
  assert_live_zero ();
}

static void
test_reader_bad_framing (void)
{
  static const char * const bad[] = {
    ":12a\r\n",
    ":\r\n",
    ":-\r\n",
    ": 1\r\n",
    ":+1\r\n",
    ":99999999999999999999\r\n",
    ":9223372036854775808\r\n",
    "$-2\r\n",
    "$abc\r\n",
    "$\r\n",
    "$3\r\nabcXY",
    "$3\r\nabc\rX",
    "$3\r\nabcd\r\n",
    "*-2\r\n",
    "*x\r\n",
    "*1\r\n$1\r\nab\r\n",
    "+OK\n",            /* LF without CR */
    ":1\n",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("bad framing case %" G_GSIZE_FORMAT ": %s", i, bad[i]);
      assert_feed_fails (bad[i], strlen (bad[i]), REDIS_ERROR_PROTOCOL);
    }

  /* CRLF after a bulk split across feeds: good and bad. */
  {
    RedisReader *reader = default_reader ();
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) a = parse_all (reader, "$3\r\nabc\r", 8);
    g_autoptr(GPtrArray) b = parse_all (reader, "\n", 1);

    g_assert_cmpuint (a->len, ==, 0);
    g_assert_cmpuint (b->len, ==, 1);
    g_clear_pointer (&b, g_ptr_array_unref);
    g_clear_pointer (&a, g_ptr_array_unref);
    a = parse_all (reader, "$3\r\nabc\r", 8);
    g_assert_false (redis_reader_feed (reader, "X", 1, &error));
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
    g_assert_null (redis_reader_pop (reader));
    redis_reader_free (reader);
  }
  assert_live_zero ();
}

static void
test_reader_good_before_bad (void)
{
  RedisReader *reader = default_reader ();
  g_autoptr(GError) error = NULL;
  static const char data[] = "+OK\r\n:5\r\n*2\r\n$1\r\na\r\n:1\r\n*2\r\n:1\r\n?bad\r\n";
  RedisReply *r;

  g_assert_false (redis_reader_feed (reader, data, sizeof data - 1, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
  r = redis_reader_pop (reader);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "OK");
  redis_reply_unref (r);
  r = redis_reader_pop (reader);
  g_assert_cmpint (redis_reply_get_integer (r), ==, 5);
  redis_reply_unref (r);
  r = redis_reader_pop (reader);
  g_assert_cmpuint (redis_reply_get_n_elements (r), ==, 2);
  redis_reply_unref (r);
  /* The half array before the bad byte is not a reply. */
  g_assert_null (redis_reader_pop (reader));
  g_clear_error (&error);
  g_assert_false (redis_reader_feed (reader, "+OK\r\n", 5, &error));
  g_assert_null (redis_reader_pop (reader));
  redis_reader_free (reader);

  /* Same across feeds: replies completed in an earlier feed stay. */
  reader = default_reader ();
  g_clear_error (&error);
  g_assert_true (redis_reader_feed (reader, "+A\r\n*2\r\n:1", 10, &error));
  g_assert_false (redis_reader_feed (reader, "\r\n%1\r\n", 6, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
  r = redis_reader_pop (reader);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "A");
  redis_reply_unref (r);
  g_assert_null (redis_reader_pop (reader));
  redis_reader_free (reader);

  /* Freeing a reader with unpopped and partial replies frees them. */
  reader = default_reader ();
  g_clear_error (&error);
  g_assert_true (redis_reader_feed (reader, "+A\r\n+B\r\n*3\r\n:1\r\n$2\r\nx", 21, &error));
  redis_reader_free (reader);

  assert_live_zero ();
}

/* ---- escaping of server text --------------------------------------------- */

/* Valid UTF-8, without C0, DEL or C1 controls, line separators or
 * bidirectional controls. */
static void
assert_clean_text (const char *s)
{
  g_assert_nonnull (s);
  g_assert_true (g_utf8_validate (s, -1, NULL));
  for (const char *p = s; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      g_assert_false (g_unichar_iscntrl (c));
      g_assert_false (c == 0x061c || c == 0x200e || c == 0x200f ||
                      (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069));
    }
}

/* The inverse of redis_text_escape_append(). */
static GByteArray *
unescape (const char *s)
{
  GByteArray *out = g_byte_array_new ();

  while (*s != '\0')
    {
      guint8 c = (guint8) *s;

      if (c == '\\')
        {
          switch (s[1])
            {
            case '\\': c = '\\'; s += 2; break;
            case '"': c = '"'; s += 2; break;
            case 'n': c = '\n'; s += 2; break;
            case 'r': c = '\r'; s += 2; break;
            case 't': c = '\t'; s += 2; break;
            case 'x':
              g_assert_cmpint (g_ascii_xdigit_value (s[2]), >=, 0);
              g_assert_cmpint (g_ascii_xdigit_value (s[3]), >=, 0);
              c = (guint8) (g_ascii_xdigit_value (s[2]) * 16 + g_ascii_xdigit_value (s[3]));
              s += 4;
              break;
            default:
              g_assert_not_reached ();
            }
        }
      else
        s++;
      g_byte_array_append (out, &c, 1);
    }
  return out;
}

static void
test_text_escape (void)
{
  static const struct { const char *in; gssize len; const char *out; const char *quoted; } cases[] = {
    { "", 0, "", NULL },
    { "OK", -1, "OK", NULL },
    { "WRONGTYPE Operation against a key", -1, "WRONGTYPE Operation against a key", NULL },
    { "a\\b", -1, "a\\\\b", NULL },
    { "say \"hi\"", -1, "say \"hi\"", "say \\\"hi\\\"" },
    { "l1\r\nl2\tx", -1, "l1\\r\\nl2\\tx", NULL },
    { "\x1b[2J\x1b]0;title\x07", -1, "\\x1b[2J\\x1b]0;title\\x07", NULL },
    { "a\0b", 3, "a\\x00b", NULL },
    { "\x01\x1f\x7f", -1, "\\x01\\x1f\\x7f", NULL },
    /* Invalid UTF-8, byte by byte. */
    { "\xff\xfe", -1, "\\xff\\xfe", NULL },
    { "ok\xff" "caf\xc3\xa9", -1, "ok\\xffcaf\xc3\xa9", NULL },
    { "\xe6\x97", -1, "\\xe6\\x97", NULL },                 /* truncated */
    { "\xe6\x97" "A", -1, "\\xe6\\x97A", NULL },
    { "\xc0\xaf", -1, "\\xc0\\xaf", NULL },                 /* overlong '/' */
    { "\xed\xa0\x80", -1, "\\xed\\xa0\\x80", NULL },         /* surrogate */
    { "\xf4\x90\x80\x80", -1, "\\xf4\\x90\\x80\\x80", NULL }, /* past U+10FFFF */
    { "\x80", -1, "\\x80", NULL },                          /* lone continuation */
    /* Valid UTF-8 is kept... */
    { "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc2\xa0", -1,
      "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc2\xa0", NULL },
    /* ...except C1 controls (NEL, CSI), line separators and bidi controls. */
    { "\xc2\x85\xc2\x9b" "31m", -1, "\\xc2\\x85\\xc2\\x9b" "31m", NULL },
    { "\xc2\x80\xc2\x9f", -1, "\\xc2\\x80\\xc2\\x9f", NULL },
    { "a\xe2\x80\xa8" "b\xe2\x80\xa9", -1, "a\\xe2\\x80\\xa8" "b\\xe2\\x80\\xa9", NULL },
    { "x\xe2\x80\xaeyz", -1, "x\\xe2\\x80\\xaeyz", NULL },  /* RLO */
    { "\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c", -1,
      "\\xe2\\x81\\xa6\\xe2\\x81\\xa9\\xe2\\x80\\x8f\\xd8\\x9c", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize len = cases[i].len < 0 ? strlen (cases[i].in) : (gsize) cases[i].len;
      g_autofree char *plain = redis_text_escape (cases[i].in, len);
      GString *quoted = g_string_new (NULL);
      g_autoptr(GByteArray) back = NULL;

      g_assert_cmpstr (plain, ==, cases[i].out);
      assert_clean_text (plain);
      back = unescape (plain);
      g_assert_cmpmem (back->data, back->len, cases[i].in, len);

      redis_text_escape_append (quoted, cases[i].in, len, REDIS_TEXT_ESCAPE_QUOTE);
      g_assert_cmpstr (quoted->str, ==, cases[i].quoted != NULL ? cases[i].quoted : cases[i].out);
      g_string_free (quoted, TRUE);
    }

  /* NULL is fine for empty text. */
  {
    g_autofree char *empty = redis_text_escape (NULL, 0);
    g_assert_cmpstr (empty, ==, "");
  }
}

/* Random byte strings (with a bias towards multi-byte sequences and
 * controls): always clean, always reversible. */
static void
test_text_escape_random (void)
{
  static const char *const pieces[] = {
    "a", "Z", " ", "\\", "\"", "\r", "\n", "\t", "\x1b", "\x7f",
    "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\xc2\x85", "\xe2\x80\xae",
    "\xe2\x80\xa8", "\xc3", "\xe6\x97", "\xf0\x9f",
  };

  for (guint iter = 0; iter < 5000; iter++)
    {
      GByteArray *in = g_byte_array_new ();
      guint n = g_test_rand_int_range (0, 24);
      GString *out = g_string_new (NULL);
      g_autoptr(GByteArray) back = NULL;

      for (guint k = 0; k < n; k++)
        {
          if (g_test_rand_bit ())
            {
              guint8 b = (guint8) g_test_rand_int_range (0, 256);
              g_byte_array_append (in, &b, 1);
            }
          else
            {
              const char *p = pieces[g_test_rand_int_range (0, G_N_ELEMENTS (pieces))];
              g_byte_array_append (in, (const guint8 *) p, strlen (p));
            }
        }

      redis_text_escape_append (out, (const char *) in->data, in->len,
                                g_test_rand_bit () ? REDIS_TEXT_ESCAPE_QUOTE : REDIS_TEXT_ESCAPE_DEFAULT);
      assert_clean_text (out->str);
      g_assert_cmpuint (strlen (out->str), ==, out->len);
      back = unescape (out->str);
      g_assert_cmpmem (back->data, back->len, in->data, in->len);

      g_string_free (out, TRUE);
      g_byte_array_unref (in);
    }
}

/* redis_reply_to_string() escapes status and error text like strings. */
static void
test_text_to_string (void)
{
  static const struct { const char *wire; gsize wire_len; const char *text; } cases[] = {
    { "+\xff\xfe\r\n", 0, "\\xff\\xfe" },
    { "+a\rb\x1b[0m\r\n", 0, "a\\rb\\x1b[0m" },
    { "+caf\xc3\xa9\r\n", 0, "caf\xc3\xa9" },
    { "+\xc2\x9b" "2J\r\n", 0, "\\xc2\\x9b" "2J" },
    { "-ERR \xff\xfe\x1b[2J\r\n", 0, "(error) ERR \\xff\\xfe\\x1b[2J" },
    { "-ERR a\\b \"q\"\r\n", 0, "(error) ERR a\\\\b \"q\"" },
    { "$7\r\n\"\xc3\xa9\x1b\r\n\x00\r\n", 13, "\"\\\"\xc3\xa9\\x1b\\r\\n\\x00\"" },
    { "$3\r\n\xc2\x85x\r\n", 0, "\"\\xc2\\x85x\"" },
    { "*3\r\n+\xff\r\n-E \x1b\r\n$2\r\n\xfe\n\r\n", 0, "[\\xff, (error) E \\x1b, \"\\xfe\\n\"]" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      RedisReader *reader = default_reader ();
      gsize len = cases[i].wire_len != 0 ? cases[i].wire_len : strlen (cases[i].wire);
      g_autoptr(GPtrArray) all = parse_all (reader, cases[i].wire, len);
      g_autofree char *s = NULL;

      g_assert_cmpuint (all->len, ==, 1);
      s = redis_reply_to_string (all->pdata[0]);
      g_assert_cmpstr (s, ==, cases[i].text);
      assert_clean_text (s);
      redis_reader_free (reader);
    }

  /* The raw bytes stay reachable. */
  {
    RedisReply *r = parse_one ("-ERR \xff\xfe\x1b\r\n");
    g_autoptr(GBytes) bytes = redis_reply_get_bytes (r);
    g_autofree char *prefix = redis_reply_get_error_prefix (r);

    g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), "ERR \xff\xfe\x1b", 7);
    g_assert_cmpstr (prefix, ==, "ERR");
    redis_reply_unref (r);
  }

  assert_live_zero ();
}

static RedisReply *
command_sync (RedisConnection  *conn,
              GError          **error,
              const char       *const *argv)
{
  return redis_client_command_sync (REDIS_CLIENT (conn), argv, NULL, error);
}

static void
close_connection (RedisConnection *conn)
{
  g_autoptr(GError) error = NULL;

  if (redis_connection_get_state (conn) != REDIS_CONNECTION_STATE_CLOSED)
    {
      g_assert_true (redis_client_close_sync (REDIS_CLIENT (conn), NULL, &error));
      g_assert_no_error (error);
    }
  g_object_unref (conn);
}

/* What a real server sends (through Lua) reaches GError messages and
 * to_string() escaped, with the raw bytes still in the reply. */
static void
test_text_server_replies (void)
{
  static const char error_script[] =
    "return redis.error_reply('ERR ' .. string.char(255, 254, 27) .. '[2J')";
  static const char status_script[] = "return redis.status_reply(string.char(255, 254))";
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisBatch) batch = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  RedisConnection *conn;
  RedisReply *r;

  if (!redis_test_server_available ())
    {
      g_test_skip ("redis-server not available");
      return;
    }
  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) redis_test_server_get_port (server),
                         "command-timeout", test_scale_ms (5000),
                         "connect-timeout", test_scale_ms (5000),
                         NULL);
  g_assert_no_error (error);

  /* An error reply: a GError with a clean message and the right prefix. */
  r = command_sync (conn, &error, (const char *[]) { "EVAL", error_script, "0", NULL });
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_test_message ("error: %s", error->message);
  assert_clean_text (error->message);
  g_assert_cmpstr (error->message, ==, "ERR \\xff\\xfe\\x1b[2J");
  {
    g_autofree char *prefix = redis_error_get_server_prefix (error);
    g_assert_cmpstr (prefix, ==, "ERR");
  }
  g_clear_error (&error);

  /* In a pipeline the error reply itself arrives, raw bytes intact. */
  batch = redis_batch_new ();
  redis_batch_add (batch, (const char *[]) { "EVAL", error_script, "0", NULL });
  redis_batch_add (batch, (const char *[]) { "EVAL", status_script, "0", NULL });
  replies = redis_client_pipeline_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2);
  {
    RedisReply *e = replies->pdata[0];
    RedisReply *st = replies->pdata[1];
    g_autoptr(GBytes) eb = redis_reply_get_bytes (e);
    g_autoptr(GBytes) sb = redis_reply_get_bytes (st);
    g_autofree char *es = redis_reply_to_string (e);
    g_autofree char *ss = redis_reply_to_string (st);
    g_autofree char *prefix = redis_reply_get_error_prefix (e);

    g_assert_cmpint (redis_reply_get_kind (e), ==, REDIS_REPLY_KIND_ERROR);
    g_assert_cmpmem (g_bytes_get_data (eb, NULL), g_bytes_get_size (eb), "ERR \xff\xfe\x1b[2J", 10);
    g_assert_cmpstr (es, ==, "(error) ERR \\xff\\xfe\\x1b[2J");
    g_assert_cmpstr (prefix, ==, "ERR");

    g_assert_cmpint (redis_reply_get_kind (st), ==, REDIS_REPLY_KIND_STATUS);
    g_assert_cmpmem (g_bytes_get_data (sb, NULL), g_bytes_get_size (sb), "\xff\xfe", 2);
    g_assert_cmpstr (ss, ==, "\\xff\\xfe");
  }
  g_clear_pointer (&replies, g_ptr_array_unref);
  g_clear_object (&batch);

  /* EXECABORT naming a refused command whose name is not text. */
  batch = redis_batch_new ();
  redis_batch_add (batch, (const char *[]) { "SET", "text:k", "v", NULL });
  redis_batch_add (batch, (const char *[]) { "\xff\x1b[2J", "x", NULL });
  replies = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_null (replies);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TRANSACTION_ABORTED);
  g_test_message ("execabort: %s", error->message);
  assert_clean_text (error->message);
  g_assert_true (g_str_has_prefix (error->message, "EXECABORT "));
  g_assert_nonnull (strstr (error->message, "(command 2: ERR "));
  g_assert_nonnull (strstr (error->message, "\\xff\\x1b[2J"));
  {
    g_autofree char *prefix = redis_error_get_server_prefix (error);
    g_assert_cmpstr (prefix, ==, "EXECABORT");
  }
  g_clear_error (&error);

  close_connection (conn);
  test_drain_main_context ();
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* ---- deep replies from a real server (issue 11) ------------------------- */

static guint
full_depth (RedisReply *r)
{
  guint depth = 0;

  if (redis_reply_get_kind (r) != REDIS_REPLY_KIND_ARRAY)
    return 0;
  for (guint i = 0; i < redis_reply_get_n_elements (r); i++)
    {
      guint d = full_depth (redis_reply_get_element (r, i));   /* not inside MAX() */

      depth = MAX (depth, d);
    }
  return depth + 1;
}

static guint
variant_depth (GVariant *v)
{
  guint depth = 0;

  if (!g_variant_is_of_type (v, G_VARIANT_TYPE ("av")))
    return 0;
  for (gsize i = 0; i < g_variant_n_children (v); i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (v, i);
      g_autoptr(GVariant) inner = g_variant_get_variant (child);
      guint d = variant_depth (inner);   /* not inside MAX() */

      depth = MAX (depth, d);
    }
  return depth + 1;
}

typedef struct
{
  guint n_lost;
  guint n_replaced;
} DeepSignals;

static void
deep_on_lost (RedisPool    *pool,
              guint         index,
              const GError *error,
              DeepSignals  *s)
{
  g_test_message ("connection-lost %u: %s", index, error->message);
  s->n_lost++;
}

static void
deep_on_replaced (RedisPool   *pool,
                  guint        index,
                  DeepSignals *s)
{
  s->n_replaced++;
}

/* COMMAND (8 levels on redis 7.0), COMMAND DOCS (12), COMMAND INFO and a
 * 30-level Lua table, each to_variant(), then ECHO on the same client. */
static void
run_deep_commands (RedisClient *client)
{
  g_autoptr(GString) lua = g_string_new ("return ");
  const char *const *cases[5];
  g_autoptr(GError) error = NULL;
  RedisReply *r;

  for (guint i = 0; i < 30; i++)
    g_string_append_c (lua, '{');
  g_string_append (lua, "'leaf'");
  for (guint i = 0; i < 30; i++)
    g_string_append_c (lua, '}');

  cases[0] = (const char *[]) { "COMMAND", NULL };
  cases[1] = (const char *[]) { "COMMAND", "DOCS", NULL };
  cases[2] = (const char *[]) { "COMMAND", "INFO", "GET", "SET", "XADD", "CLIENT", NULL };
  cases[3] = (const char *[]) { "EVAL", lua->str, "0", NULL };
  cases[4] = (const char *[]) { "ECHO", "still here", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GVariant) v = NULL;
      guint depth;

      r = redis_client_command_sync (client, cases[i], NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (r);
      depth = full_depth (r);
      g_test_message ("%s %s: %u levels", cases[i][0], cases[i][1] != NULL ? cases[i][1] : "", depth);
      v = redis_reply_to_variant (r);
      g_assert_cmpuint (variant_depth (v), ==, depth);
      g_assert_true (g_variant_is_normal_form (v));
      switch (i)
        {
        case 0:
          /* Every command, its subcommands nested inside. */
          g_assert_cmpuint (depth, >=, 8);
          g_assert_cmpuint (redis_reply_get_n_elements (r), >, 100);
          break;
        case 1:
          g_assert_cmpuint (depth, >=, 12);
          break;
        case 2:
          g_assert_cmpuint (redis_reply_get_n_elements (r), ==, 4);
          for (guint j = 0; j < 4; j++)
            {
              static const char *const names[] = { "get", "set", "xadd", "client" };
              RedisReply *info = redis_reply_get_element (r, j);
              RedisReply *name = redis_reply_get_element (info, 0);

              g_assert_cmpstr (redis_reply_get_string (name, NULL), ==, names[j]);
            }
          /* CLIENT has subcommands: 6 levels on redis 7.0. */
          g_assert_cmpuint (depth, >=, 6);
          break;
        case 3:
          g_assert_cmpuint (depth, ==, 30);
          {
            RedisReply *cur = r;

            while (redis_reply_get_kind (cur) == REDIS_REPLY_KIND_ARRAY)
              cur = redis_reply_get_element (cur, 0);
            g_assert_cmpstr (redis_reply_get_string (cur, NULL), ==, "leaf");
          }
          break;
        case 4:
          g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "still here");
          break;
        default:
          g_assert_not_reached ();
        }
      redis_reply_unref (r);
    }
}

static void
test_reader_server_deep (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  DeepSignals sig = { 0, 0 };
  RedisConnection *conn;
  RedisPool *pool;

  if (!redis_test_server_available ())
    {
      g_test_skip ("redis-server not available");
      return;
    }
  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);

  /* One connection, which stays usable. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) redis_test_server_get_port (server),
                         "command-timeout", test_scale_ms (10000),
                         "connect-timeout", test_scale_ms (5000),
                         NULL);
  g_assert_no_error (error);
  run_deep_commands (REDIS_CLIENT (conn));
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  close_connection (conn);

  /* A pool: the same, and no connection is lost or replaced. */
  uri = g_strdup_printf ("redis://127.0.0.1:%u?pool_size=2&command_timeout=%u",
                         (guint) redis_test_server_get_port (server), test_scale_ms (10000));
  pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (pool, "connection-lost", G_CALLBACK (deep_on_lost), &sig);
  g_signal_connect (pool, "connection-replaced", G_CALLBACK (deep_on_replaced), &sig);
  for (guint i = 0; i < 3; i++)
    run_deep_commands (REDIS_CLIENT (pool));
  test_drain_main_context ();
  g_assert_cmpuint (sig.n_lost, ==, 0);
  g_assert_cmpuint (sig.n_replaced, ==, 0);
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  g_object_unref (pool);

  test_drain_main_context ();
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* A reply nested max-depth + 1 levels fails its call cleanly and closes the
 * connection; a pool replaces it and goes on. */
static void
test_reader_fake_too_deep (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  GString *deep = nested (65, ":1\r\n");
  GString *ok = nested (64, ":1\r\n");
  DeepSignals sig = { 0, 0 };
  RedisConnection *conn;
  RedisPool *pool;
  RedisReply *r;

  /* A connection: 64 levels pass, 65 close it. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) fake_server_get_port (fake),
                         "command-timeout", test_scale_ms (5000),
                         "health-check-interval", 0,
                         NULL);
  g_assert_no_error (error);
  fake_server_add_reply (fake, ok->str, ok->len);
  r = command_sync (conn, &error, (const char *[]) { "TEST.GET", "k", NULL });
  g_assert_no_error (error);
  g_assert_cmpuint (full_depth (r), ==, 64);
  redis_reply_unref (r);
  fake_server_add_reply (fake, deep->str, deep->len);
  r = command_sync (conn, &error, (const char *[]) { "TEST.GET", "k", NULL });
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "max-depth (64)"));
  g_clear_error (&error);
  WAIT_UNTIL (redis_connection_get_state (conn) == REDIS_CONNECTION_STATE_CLOSED, 2000);
  close_connection (conn);

  /* max-depth set lower through the URI. */
  uri = g_strdup_printf ("redis://127.0.0.1:%u?max_depth=12&health_check_interval=0",
                         (guint) fake_server_get_port (fake));
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "uri", uri, NULL);
  g_assert_no_error (error);
  {
    guint max_depth = 0;

    g_object_get (conn, "max-depth", &max_depth, NULL);
    g_assert_cmpuint (max_depth, ==, 12);
  }
  g_string_free (ok, TRUE);
  ok = nested (13, ":1\r\n");
  fake_server_add_reply (fake, ok->str, ok->len);
  r = command_sync (conn, &error, (const char *[]) { "TEST.GET", "k", NULL });
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_clear_error (&error);
  close_connection (conn);
  g_clear_pointer (&uri, g_free);

  /* A pool of one: the call fails, the connection is replaced once. */
  uri = g_strdup_printf ("redis://127.0.0.1:%u?pool_size=1&health_check_interval=0"
                         "&backoff_initial=10ms", (guint) fake_server_get_port (fake));
  pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (pool, "connection-lost", G_CALLBACK (deep_on_lost), &sig);
  g_signal_connect (pool, "connection-replaced", G_CALLBACK (deep_on_replaced), &sig);
  fake_server_add_reply (fake, deep->str, deep->len);
  r = redis_client_command_sync (REDIS_CLIENT (pool), (const char *[]) { "TEST.GET", "k", NULL }, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_clear_error (&error);
  WAIT_UNTIL (sig.n_replaced == 1, 5000);
  g_assert_cmpuint (sig.n_lost, ==, 1);
  fake_server_add_reply (fake, "$2\r\nok\r\n", -1);
  r = redis_client_command_sync (REDIS_CLIENT (pool), (const char *[]) { "TEST.GET", "k", NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "ok");
  redis_reply_unref (r);
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  g_object_unref (pool);

  g_string_free (deep, TRUE);
  g_string_free (ok, TRUE);
  test_drain_main_context ();
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* Handshake failures (AUTH, SELECT) built from hostile server text. */
static void
test_text_server_handshake (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  guint port = fake_server_get_port (fake);
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  fake_server_set_answer_all (fake, ":1\r\n", -1);

  /* AUTH refused. */
  fake_server_add_reply (fake, "-WRONGPASS \xff\xfe\x1b[2J\r\xc2\x9b\r\n", -1);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", port, "password", "pw",
                         "connect-timeout", test_scale_ms (5000), NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
  g_test_message ("auth: %s", error->message);
  assert_clean_text (error->message);
  g_assert_cmpstr (error->message, ==, "WRONGPASS \\xff\\xfe\\x1b[2J\\r\\xc2\\x9b");
  {
    g_autofree char *prefix = redis_error_get_server_prefix (error);
    g_assert_cmpstr (prefix, ==, "WRONGPASS");
  }
  g_clear_error (&error);

  /* SELECT refused. */
  fake_server_add_reply (fake, "-ERR \xff\x1b]0;x\x07\r\n", -1);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", port, "database", 3,
                         "connect-timeout", test_scale_ms (5000), NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_test_message ("select: %s", error->message);
  assert_clean_text (error->message);
  g_assert_true (g_str_has_prefix (error->message, "SELECT failed on "));
  g_assert_true (g_str_has_suffix (error->message, ": ERR \\xff\\x1b]0;x\\x07"));
  g_clear_error (&error);

  /* NOAUTH at SELECT: an authentication failure, still escaped. */
  fake_server_add_reply (fake, "-NOAUTH \xfe\x1b\r\n", -1);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", port, "database", 3,
                         "connect-timeout", test_scale_ms (5000), NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
  assert_clean_text (error->message);
  g_assert_true (g_str_has_prefix (error->message, "NOAUTH \\xfe\\x1b (SELECT failed on "));
  {
    g_autofree char *prefix = redis_error_get_server_prefix (error);
    g_assert_cmpstr (prefix, ==, "NOAUTH");
  }
  g_clear_error (&error);

  test_drain_main_context ();
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* ---- encoding ------------------------------------------------------------ */

static void
test_encode_format (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  RedisCommandFlags flags = 99;
  gint64 block_ms = 99;
  g_autofree char *name = NULL;
  const char *argv[] = { "set", "k", "v", NULL };
  static const char expected[] = "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n";
  g_autoptr(GBytes) b0 = g_bytes_new_static ("SET", 3);
  g_autoptr(GBytes) b1 = g_bytes_new_static ("k\0\xff", 3);
  g_autoptr(GBytes) b2 = g_bytes_new_static ("", 0);
  GBytes *bargs[] = { b0, b1, b2 };
  static const char expected_bytes[] = "*3\r\n$3\r\nSET\r\n$3\r\nk\0\xff\r\n$0\r\n\r\n";

  g_assert_true (redis_encode_strv (out, argv, &flags, &block_ms, &name, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (out->data, out->len, expected, sizeof expected - 1);
  /* SET k v always answers a status (+OK). */
  g_assert_cmpint (flags, ==, 1u << (8 + REDIS_REPLY_KIND_STATUS));
  g_assert_cmpint (block_ms, ==, 0);
  g_assert_cmpstr (name, ==, "SET");

  /* Appends. */
  g_assert_true (redis_encode_bytes (out, bargs, 3, NULL, NULL, NULL, &error));
  g_assert_cmpuint (out->len, ==, sizeof expected - 1 + sizeof expected_bytes - 1);
  g_assert_cmpmem (out->data + sizeof expected - 1, sizeof expected_bytes - 1,
                   expected_bytes, sizeof expected_bytes - 1);
}

static void
assert_encode_invalid_strv (const char * const *argv)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;

  g_assert_false (redis_encode_strv (out, argv, NULL, NULL, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_cmpuint (out->len, ==, 0);
}

static void
assert_encode_invalid_bytes (GBytes **args,
                             gsize    n_args)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;

  g_assert_false (redis_encode_bytes (out, args, n_args, NULL, NULL, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_cmpuint (out->len, ==, 0);
  g_test_message ("%s", error->message);
}

static void
test_encode_invalid (void)
{
  const char *empty[] = { NULL };
  const char *empty_name[] = { "", "x", NULL };
  g_autoptr(GBytes) name = g_bytes_new_static ("GET", 3);
  g_autoptr(GBytes) nothing = g_bytes_new (NULL, 0);
  GBytes *with_null[] = { name, NULL };
  GBytes *null_first[] = { NULL, name };
  GBytes *empty_first[] = { nothing, name };

  assert_encode_invalid_strv (NULL);
  assert_encode_invalid_strv (empty);
  assert_encode_invalid_strv (empty_name);

  assert_encode_invalid_bytes (NULL, 0);
  assert_encode_invalid_bytes (NULL, 2);
  assert_encode_invalid_bytes (with_null, 0);
  assert_encode_invalid_bytes (with_null, 2);
  assert_encode_invalid_bytes (null_first, 2);
  assert_encode_invalid_bytes (empty_first, 2);
}

static void
test_encode_oversized (void)
{
  const gsize big = REDIS_MAX_ARGUMENT_BYTES + 1;
  const gsize four_hundred = (gsize) 400 * 1024 * 1024;
  void *region;
  g_autoptr(GBytes) name = g_bytes_new_static ("SET", 3);
  g_autoptr(GBytes) key = g_bytes_new_static ("k", 1);
  g_autoptr(GBytes) huge = NULL;
  g_autoptr(GBytes) large = NULL;
  gint64 start = g_get_monotonic_time ();

  if (sizeof (gsize) < 8)
    {
      g_test_skip ("needs a 64-bit address space");
      return;
    }

  /* Reserved, never touched: costs no memory. */
  region = mmap (NULL, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED)
    {
      g_test_skip ("cannot reserve 512 MiB of address space");
      return;
    }

  huge = g_bytes_new_static (region, big);
  {
    GBytes *args[] = { name, key, huge };
    assert_encode_invalid_bytes (args, 3);
  }
  {
    GBytes *args[] = { huge };   /* even as the name */
    assert_encode_invalid_bytes (args, 1);
  }

  /* Each argument within the limit, the total past what hiredis' int
   * lengths can hold. */
  large = g_bytes_new_static (region, four_hundred);
  {
    GBytes *args[] = { name, large, large, large, large, large, large };
    assert_encode_invalid_bytes (args, G_N_ELEMENTS (args));
  }

  g_clear_pointer (&huge, g_bytes_unref);
  g_clear_pointer (&large, g_bytes_unref);
  munmap (region, big);

  /* Checked before any byte was read or copied. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, (gint64) test_scale_ms (1000) * 1000);
}

typedef struct
{
  const char *argv[10];
  RedisCommandFlags flags;
  gint64 block_ms;
} ClassifyCase;

static void
test_encode_classify (void)
{
  static const ClassifyCase cases[] = {
    { { "GET", "k" }, REDIS_COMMAND_FLAG_NONE, 0 },
    { { "BLPOP", "a", "b", "5" }, REDIS_COMMAND_FLAG_BLOCKING, 5000 },
    { { "blpop", "a", "0.25" }, REDIS_COMMAND_FLAG_BLOCKING, 250 },
    { { "BLPOP", "a", "0" }, REDIS_COMMAND_FLAG_BLOCKING, -1 },
    { { "BRPOP", "a", "1" }, REDIS_COMMAND_FLAG_BLOCKING, 1000 },
    { { "BLMOVE", "a", "b", "LEFT", "RIGHT", "2" }, REDIS_COMMAND_FLAG_BLOCKING, 2000 },
    { { "BZPOPMIN", "z", "0" }, REDIS_COMMAND_FLAG_BLOCKING, -1 },
    { { "XREAD", "BLOCK", "100", "STREAMS", "s", "0" }, REDIS_COMMAND_FLAG_BLOCKING, 100 },
    { { "xread", "count", "1", "block", "0", "streams", "s", "$" }, REDIS_COMMAND_FLAG_BLOCKING, -1 },
    { { "XREAD", "COUNT", "1", "STREAMS", "s", "0" }, REDIS_COMMAND_FLAG_NONE, 0 },
    { { "XREAD", "STREAMS", "BLOCK", "0" }, REDIS_COMMAND_FLAG_NONE, 0 },
    { { "XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">" }, REDIS_COMMAND_FLAG_BLOCKING, 50 },
    { { "WAIT", "1", "300" }, REDIS_COMMAND_FLAG_BLOCKING, 300 },
    { { "SELECT", "3" }, REDIS_COMMAND_FLAG_CONNECTION_STATE, 0 },
    { { "select", "3" }, REDIS_COMMAND_FLAG_CONNECTION_STATE, 0 },
    { { "WATCH", "k" }, REDIS_COMMAND_FLAG_CONNECTION_STATE, 0 },
    { { "MULTI" }, REDIS_COMMAND_FLAG_CONNECTION_STATE, 0 },
    { { "CLIENT", "SETNAME", "x" }, REDIS_COMMAND_FLAG_CONNECTION_STATE, 0 },
    { { "CLIENT", "LIST" }, REDIS_COMMAND_FLAG_NONE, 0 },
    { { "CLIENT" }, REDIS_COMMAND_FLAG_NONE, 0 },
    { { "SUBSCRIBE", "ch" }, REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED, 0 },
    { { "psubscribe", "c*" }, REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED, 0 },
    { { "MONITOR" }, REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED, 0 },
    { { "CLIENT", "REPLY", "OFF" }, REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED, 0 },
    { { "client", "reply", "skip" }, REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED, 0 },
    { { "HELLO", "3" }, REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GByteArray) out = g_byte_array_new ();
      g_autoptr(GError) error = NULL;
      RedisCommandFlags flags = 0xff;
      gint64 block_ms = 12345;

      g_test_message ("classify %s %s", cases[i].argv[0],
                      cases[i].argv[1] ? cases[i].argv[1] : "");
      g_assert_true (redis_encode_strv (out, cases[i].argv, &flags, &block_ms, NULL, &error));
      g_assert_no_error (error);
      /* The reply kinds are tested in test-commands. */
      g_assert_cmpint (flags & ~REDIS_COMMAND_FLAG_REPLY_MASK, ==, cases[i].flags);
      g_assert_cmpint (block_ms, ==, cases[i].block_ms);
    }
}

/* ---- URIs ---------------------------------------------------------------- */

static RedisOptions *
parse_uri_ok (const char *uri)
{
  RedisOptions *o = redis_options_new ();
  g_autoptr(GError) error = NULL;

  g_test_message ("parsing %s", uri);
  g_assert_true (redis_options_parse_uri (o, uri, NULL, NULL, &error));
  g_assert_no_error (error);
  return o;
}

static void
test_uri_good (void)
{
  RedisOptions *o;
  g_autofree char *back = NULL;

  o = parse_uri_ok ("redis://example.com:6380/2");
  g_assert_cmpstr (o->host, ==, "example.com");
  g_assert_cmpuint (o->port, ==, 6380);
  g_assert_cmpuint (o->database, ==, 2);
  g_assert_false (o->tls);
  g_assert_null (o->socket_path);
  g_assert_null (o->username);
  g_assert_null (o->password);
  redis_options_free (o);

  o = parse_uri_ok ("redis://example.com");
  g_assert_cmpuint (o->port, ==, 6379);
  g_assert_cmpuint (o->database, ==, 0);
  redis_options_free (o);

  o = parse_uri_ok ("redis://example.com/");
  g_assert_cmpuint (o->database, ==, 0);
  redis_options_free (o);

  o = parse_uri_ok ("rediss://secure.example.com:7000");
  g_assert_true (o->tls);
  g_assert_cmpstr (o->host, ==, "secure.example.com");
  g_assert_cmpuint (o->port, ==, 7000);
  g_assert_cmpint (o->tls_validation_flags, ==, G_TLS_CERTIFICATE_VALIDATE_ALL);
  redis_options_free (o);

  o = parse_uri_ok ("redis://[::1]:6390/1");
  g_assert_cmpstr (o->host, ==, "::1");
  g_assert_cmpuint (o->port, ==, 6390);
  back = redis_options_to_uri (o);
  g_assert_true (g_str_has_prefix (back, "redis://[::1]:6390/1"));
  g_clear_pointer (&back, g_free);
  redis_options_free (o);

  o = parse_uri_ok ("unix:///run/redis/redis.sock?db=3");
  g_assert_cmpstr (o->socket_path, ==, "/run/redis/redis.sock");
  g_assert_cmpuint (o->database, ==, 3);
  g_assert_false (o->tls);
  redis_options_free (o);

  o = parse_uri_ok ("redis://alice:" SECRET "@h:1/0");
  g_assert_cmpstr (o->username, ==, "alice");
  g_assert_cmpstr (o->password, ==, SECRET);
  redis_options_free (o);

  o = parse_uri_ok ("redis://:" SECRET "@h");
  g_assert_null (o->username);
  g_assert_cmpstr (o->password, ==, SECRET);
  redis_options_free (o);

  /* Percent-encoded password. */
  o = parse_uri_ok ("redis://:p%40ss%3Aw@h");
  g_assert_cmpstr (o->password, ==, "p@ss:w");
  redis_options_free (o);

  o = parse_uri_ok ("redis://h/5?client_name=app&connect_timeout=500&command_timeout=2s");
  g_assert_cmpuint (o->database, ==, 5);
  g_assert_cmpstr (o->client_name, ==, "app");
  g_assert_cmpuint (o->connect_timeout_ms, ==, 500);
  g_assert_cmpuint (o->command_timeout_ms, ==, 2000);
  redis_options_free (o);

  o = parse_uri_ok ("redis://h?command_timeout=250ms&connect_timeout=1.5s&db=7");
  g_assert_cmpuint (o->command_timeout_ms, ==, 250);
  g_assert_cmpuint (o->connect_timeout_ms, ==, 1500);
  g_assert_cmpuint (o->database, ==, 7);
  redis_options_free (o);

  o = parse_uri_ok ("redis://h?command_timeout=0");
  g_assert_cmpuint (o->command_timeout_ms, ==, 0);
  redis_options_free (o);

  o = parse_uri_ok ("rediss://h?tls_insecure=true&tls_ca_file=/ca.pem"
                    "&tls_certificate_file=/c.pem&tls_key_file=/k.pem"
                    "&max_reply_bytes=4096&max_elements=10&max_line_length=128&max_depth=12");
  g_assert_cmpint (o->tls_validation_flags, ==, 0);
  g_assert_cmpstr (o->tls_ca_file, ==, "/ca.pem");
  g_assert_cmpstr (o->tls_certificate_file, ==, "/c.pem");
  g_assert_cmpstr (o->tls_key_file, ==, "/k.pem");
  g_assert_cmpuint (o->max_reply_bytes, ==, 4096);
  g_assert_cmpuint (o->max_elements, ==, 10);
  g_assert_cmpuint (o->max_line_length, ==, 128);
  g_assert_cmpuint (o->max_depth, ==, 12);
  redis_options_free (o);

  /* client_name with an encoded space */
  o = parse_uri_ok ("redis://h?client_name=my%20app");
  g_assert_cmpstr (o->client_name, ==, "my app");
  redis_options_free (o);
}

static gboolean
extra_cb (const char  *key,
          const char  *value,
          gpointer     user_data,
          GError     **error)
{
  if (g_str_equal (key, "pool_size"))
    {
      *(guint *) user_data = atoi (value);
      return TRUE;
    }
  return FALSE;
}

static void
test_uri_extra (void)
{
  RedisOptions *o = redis_options_new ();
  g_autoptr(GError) error = NULL;
  guint pool_size = 0;

  g_assert_true (redis_options_parse_uri (o, "redis://h?pool_size=4", extra_cb, &pool_size, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (pool_size, ==, 4);
  g_assert_false (redis_options_parse_uri (o, "redis://:" SECRET "@h?nope=1", extra_cb, &pool_size, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_null (strstr (error->message, SECRET));
  redis_options_free (o);
}

static void
test_uri_bad (void)
{
  static const char * const bad[] = {
    "http://:" SECRET "@h/0",
    "redis+tls://:" SECRET "@h/0",
    "redis://:" SECRET "@h:99999/0",
    "redis://:" SECRET "@h:abc/0",
    "redis://:" SECRET "@h:0/0",
    "redis://:" SECRET "@h:-1/0",
    "redis://:" SECRET "@h/abc",
    "redis://:" SECRET "@h/-1",
    "redis://:" SECRET "@h/1/2",
    "redis://:" SECRET "@h/99999999999",
    "redis://:" SECRET "@h/0?db=x",
    "redis://:" SECRET "@h/0?unknown=1",
    "redis://:" SECRET "@h/0?command_timeout=5x",
    "redis://:" SECRET "@h/0?command_timeout=-1",
    "redis://:" SECRET "@h/0?command_timeout=",
    "redis://:" SECRET "@h/0?connect_timeout=0",
    "redis://:" SECRET "@h/0?connect_timeout=10m",
    "redis://:" SECRET "@h/0?tls_insecure=maybe",
    "redis://:" SECRET "@h/0?max_reply_bytes=10",
    "redis://:" SECRET "@h/0?max_elements=0",
    "redis://:" SECRET "@h/0?max_line_length=1",
    "redis://:" SECRET "@h/0?max_depth=0",
    "redis://:" SECRET "@h/0?max_depth=1025",
    "redis://:" SECRET "@h/0?max_depth=x",
    "redis://:" SECRET "@[::1/0",
    "redis://:s3cr3t%ZZPW@h/0",
    "//:" SECRET "@h/0",
    ":" SECRET "@h",
    "h:6379",
    "",
    "unix://:" SECRET "@",
    "unix:relative.sock",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      RedisOptions *o = redis_options_new ();
      g_autoptr(GError) error = NULL;

      g_test_message ("bad URI case %" G_GSIZE_FORMAT, i);
      g_assert_false (redis_options_parse_uri (o, bad[i], NULL, NULL, &error));
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
      g_test_message ("  → %s", error->message);
      g_assert_null (strstr (error->message, SECRET));
      g_assert_null (strstr (error->message, "s3cr3t"));
      redis_options_free (o);
    }
}

static void
test_uri_to_uri (void)
{
  static const char * const uris[] = {
    "redis://alice:" SECRET "@h:1/2?client_name=x&command_timeout=250ms",
    "redis://:" SECRET "@h",
    "rediss://bob:" SECRET "@secure:6380/4",
    "unix://carol:" SECRET "@/tmp/redis.sock?db=3",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (uris); i++)
    {
      RedisOptions *o = parse_uri_ok (uris[i]);
      RedisOptions *again = redis_options_new ();
      g_autoptr(GError) error = NULL;
      g_autofree char *uri = redis_options_to_uri (o);
      g_autofree char *addr = redis_options_describe_address (o);

      g_test_message ("%s → %s", uris[i], uri);
      g_assert_null (strstr (uri, SECRET));
      g_assert_null (strstr (addr, SECRET));

      /* It parses back to the same options (except the password). */
      g_assert_true (redis_options_parse_uri (again, uri, NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (again->host, ==, o->host);
      g_assert_cmpuint (again->port, ==, o->port);
      g_assert_cmpstr (again->socket_path, ==, o->socket_path);
      g_assert_cmpuint (again->database, ==, o->database);
      g_assert_cmpstr (again->username, ==, o->username);
      g_assert_cmpstr (again->client_name, ==, o->client_name);
      g_assert_cmpint (again->tls, ==, o->tls);
      g_assert_cmpuint (again->command_timeout_ms, ==, o->command_timeout_ms);
      g_assert_cmpuint (again->connect_timeout_ms, ==, o->connect_timeout_ms);
      g_assert_null (again->password);

      /* Copies keep the password; freeing scrubs it. */
      {
        RedisOptions *copy = redis_options_copy (o);
        g_assert_cmpstr (copy->password, ==, SECRET);
        redis_options_free (copy);
      }

      redis_options_free (again);
      redis_options_free (o);
    }
}

static void
test_uri_duration (void)
{
  static const struct { const char *text; gboolean ok; guint ms; } cases[] = {
    { "500", TRUE, 500 },
    { "0", TRUE, 0 },
    { "250ms", TRUE, 250 },
    { "2s", TRUE, 2000 },
    { "1.5s", TRUE, 1500 },
    { "", FALSE, 0 },
    { " 5", FALSE, 0 },
    { "5 ", FALSE, 0 },
    { "-1", FALSE, 0 },
    { "5m", FALSE, 0 },
    { "s", FALSE, 0 },
    { "ms", FALSE, 0 },
    { "99999999999", FALSE, 0 },
    { "5000000s", FALSE, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint ms = 4242;
      gboolean ok = redis_options_parse_duration_ms (cases[i].text, &ms);

      g_test_message ("duration “%s”", cases[i].text);
      g_assert_cmpint (ok, ==, cases[i].ok);
      if (ok)
        g_assert_cmpuint (ms, ==, cases[i].ms);
      else
        g_assert_cmpuint (ms, ==, 4242);
    }
  g_assert_false (redis_options_parse_duration_ms (NULL, NULL));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/reply/string", test_reply_string);
  g_test_add_func ("/reply/integer-nil-array", test_reply_integer_nil_array);
  g_test_add_func ("/reply/variant", test_reply_variant);
  g_test_add_func ("/reply/to-string", test_reply_to_string);
  g_test_add_func ("/reply/error-prefix", test_reply_error_prefix);
  g_test_add_func ("/reply/boxed", test_reply_boxed);

  g_test_add_func ("/reader/types", test_reader_types);
  g_test_add_func ("/reader/bytewise", test_reader_bytewise);
  g_test_add_func ("/reader/many", test_reader_many);
  g_test_add_func ("/reader/nil", test_reader_nil);
  g_test_add_func ("/reader/limits/array-count", test_reader_huge_array_count);
  g_test_add_func ("/reader/limits/bulk-length", test_reader_huge_bulk_length);
  g_test_add_func ("/reader/limits/bulk-over-max", test_reader_bulk_over_max);
  g_test_add_func ("/reader/limits/exact-wire-bytes", test_reader_exact_wire_bytes);
  g_test_add_func ("/reader/limits/long-line", test_reader_long_line);
  g_test_add_func ("/reader/limits/long-line-linear", test_reader_long_line_linear);
  g_test_add_func ("/reader/limits/nesting", test_reader_nesting);
  g_test_add_func ("/reader/bad/type", test_reader_bad_type);
  g_test_add_func ("/reader/bad/framing", test_reader_bad_framing);
  g_test_add_func ("/reader/bad/good-before-bad", test_reader_good_before_bad);

  g_test_add_func ("/text/escape", test_text_escape);
  g_test_add_func ("/text/escape-random", test_text_escape_random);
  g_test_add_func ("/text/to-string", test_text_to_string);
  g_test_add_func ("/text/server-replies", test_text_server_replies);
  g_test_add_func ("/reader/server-deep", test_reader_server_deep);
  g_test_add_func ("/reader/fake-too-deep", test_reader_fake_too_deep);
  g_test_add_func ("/text/server-handshake", test_text_server_handshake);

  g_test_add_func ("/encode/format", test_encode_format);
  g_test_add_func ("/encode/invalid", test_encode_invalid);
  g_test_add_func ("/encode/oversized", test_encode_oversized);
  g_test_add_func ("/encode/classify", test_encode_classify);

  g_test_add_func ("/uri/good", test_uri_good);
  g_test_add_func ("/uri/extra", test_uri_extra);
  g_test_add_func ("/uri/bad", test_uri_bad);
  g_test_add_func ("/uri/to-uri", test_uri_to_uri);
  g_test_add_func ("/uri/duration", test_uri_duration);

  return g_test_run ();
}
