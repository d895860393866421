/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-reply-private.h"
#include "redis-text-private.h"

/**
 * RedisReply:
 *
 * One reply from the server: immutable and reference counted, so it can be
 * handed between threads and kept as long as needed.
 *
 * A reply has a [enum@Redis.ReplyKind]. Strings are binary-safe: use
 * [method@Redis.Reply.get_data] (no copy) or [method@Redis.Reply.get_bytes]
 * for arbitrary bytes, or [method@Redis.Reply.get_string] for text. Text
 * is never silently cut short: without a length, get_string() returns
 * %NULL for a value holding a NUL byte or invalid UTF-8, and that is what
 * bindings see (Python `r.get_string()` gives `'v'` or `None`; `r.get_data()`
 * gives `b'v'`). Arrays hold
 * further replies, reachable with [method@Redis.Reply.get_element] or
 * [method@Redis.Reply.get_elements]. [method@Redis.Reply.to_variant] gives a
 * #GVariant view that bindings turn into native values.
 *
 * Replies are built straight from the bytes received: one allocation per
 * reply, the string data inline behind the header.
 *
 * Replies nest as deep as the server sends them, up to the
 * [property@Redis.Connection:max-depth] limit (at most 1024).
 */

struct _RedisReply
{
  RedisReplyKind   kind;
  guint            n_elements;
  gint64           integer;
  gsize            len;      /* text kinds: bytes in data; arrays: slots
                              * allocated in elements (n_elements once the
                              * reply is complete) */
  RedisReply     **elements;
  char             data[];   /* len bytes + NUL, for the text kinds */
};

G_DEFINE_BOXED_TYPE (RedisReply, redis_reply, redis_reply_ref, redis_reply_unref)

static gint live_count;

static RedisReply *
reply_alloc (RedisReplyKind kind,
             gsize          data_len)
{
  RedisReply *self;

  /* Overflow-safe: data_len is bounded by the reader's limits (at most
   * G_MAXSIZE / 2 in any case). */
  g_assert (data_len < G_MAXSIZE / 2);
  self = g_atomic_rc_box_alloc0 (sizeof (RedisReply) + data_len + 1);
  self->kind = kind;
  g_atomic_int_inc (&live_count);
  return self;
}

RedisReply *
redis_reply_new_text (RedisReplyKind  kind,
                      const char     *data,
                      gsize           len)
{
  RedisReply *self;

  g_assert (kind == REDIS_REPLY_KIND_STRING ||
            kind == REDIS_REPLY_KIND_STATUS ||
            kind == REDIS_REPLY_KIND_ERROR);

  self = reply_alloc (kind, len);
  self->len = len;
  if (len > 0)
    memcpy (self->data, data, len);
  self->data[len] = '\0';
  return self;
}

RedisReply *
redis_reply_new_string_uninit (gsize   len,
                               char  **data)
{
  RedisReply *self;

  /* Not zeroed: only the header is, the caller writes the bytes. */
  g_assert (len < G_MAXSIZE / 2);
  self = g_atomic_rc_box_alloc (sizeof (RedisReply) + len + 1);
  memset (self, 0, sizeof (RedisReply));
  self->kind = REDIS_REPLY_KIND_STRING;
  self->len = len;
  self->data[len] = '\0';
  g_atomic_int_inc (&live_count);
  *data = self->data;
  return self;
}

RedisReply *
redis_reply_new_integer (gint64 value)
{
  RedisReply *self = reply_alloc (REDIS_REPLY_KIND_INTEGER, 0);

  self->integer = value;
  return self;
}

RedisReply *
redis_reply_new_nil (void)
{
  return reply_alloc (REDIS_REPLY_KIND_NIL, 0);
}

RedisReply *
redis_reply_new_array (guint n_elements)
{
  RedisReply *self = reply_alloc (REDIS_REPLY_KIND_ARRAY, 0);

  self->n_elements = n_elements;
  return self;
}

void
redis_reply_set_element (RedisReply *self,
                         guint       index_,
                         RedisReply *element)
{
  g_assert (self->kind == REDIS_REPLY_KIND_ARRAY);
  g_assert (index_ < self->n_elements);

  if (index_ >= self->len)
    {
      /* Grow geometrically as elements arrive, up to the count. */
      gsize slots = MAX (self->len * 2, (gsize) index_ + 1);

      slots = MIN ((gsize) self->n_elements, MAX (slots, (gsize) 16));
      self->elements = g_renew (RedisReply *, self->elements, slots);
      memset (self->elements + self->len, 0, (slots - self->len) * sizeof (RedisReply *));
      self->len = slots;
    }
  g_assert (self->elements[index_] == NULL);

  self->elements[index_] = element;
}

GPtrArray *
redis_reply_steal_elements (RedisReply *self)
{
  GPtrArray *ret;

  g_assert (self->kind == REDIS_REPLY_KIND_ARRAY);

  ret = g_ptr_array_new_full (self->n_elements, (GDestroyNotify) redis_reply_unref);
  for (guint i = 0; i < self->n_elements; i++)
    g_ptr_array_add (ret, redis_reply_ref (self->elements[i]));
  return ret;
}

/**
 * redis_reply_ref:
 * @self: a [struct@Redis.Reply]
 *
 * Takes a reference on @self. Safe from any thread.
 *
 * Returns: (transfer full): @self
 */
RedisReply *
redis_reply_ref (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return g_atomic_rc_box_acquire (self);
}

static void
reply_clear (gpointer data)
{
  RedisReply *self = data;

  /* Recursive, but the depth is bounded by max-depth (at most 1024). */
  if (self->kind == REDIS_REPLY_KIND_ARRAY)
    {
      for (gsize i = 0; i < self->len; i++)
        if (self->elements[i] != NULL)
          redis_reply_unref (self->elements[i]);
      g_free (self->elements);
    }
  g_atomic_int_dec_and_test (&live_count);
}

/**
 * redis_reply_unref:
 * @self: (transfer full): a [struct@Redis.Reply]
 *
 * Drops a reference on @self, freeing it and its elements when it was the
 * last one. Safe from any thread.
 */
void
redis_reply_unref (RedisReply *self)
{
  g_return_if_fail (self != NULL);

  g_atomic_rc_box_release_full (self, reply_clear);
}

/**
 * redis_reply_get_kind:
 * @self: a [struct@Redis.Reply]
 *
 * Returns the kind of @self.
 *
 * Returns: a [enum@Redis.ReplyKind]
 */
RedisReplyKind
redis_reply_get_kind (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, REDIS_REPLY_KIND_NIL);

  return self->kind;
}

/**
 * redis_reply_is_nil:
 * @self: a [struct@Redis.Reply]
 *
 * Whether @self is the nil reply (a missing key for `GET`, say).
 *
 * Returns: %TRUE for %REDIS_REPLY_KIND_NIL
 */
gboolean
redis_reply_is_nil (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->kind == REDIS_REPLY_KIND_NIL;
}

static gboolean
reply_is_text_kind (RedisReply *self)
{
  return self->kind == REDIS_REPLY_KIND_STRING ||
         self->kind == REDIS_REPLY_KIND_STATUS ||
         self->kind == REDIS_REPLY_KIND_ERROR;
}

/**
 * redis_reply_get_string:
 * @self: a [struct@Redis.Reply]
 * @length: (out) (optional): the length in bytes, without the trailing NUL
 *
 * Returns the text of a string, status or error reply.
 *
 * With @length, the whole value is returned whatever it holds: the buffer
 * is always NUL-terminated, may contain further NUL bytes before
 * @length, and is not checked for UTF-8.
 *
 * Without @length (%NULL), the value is returned only when a caller that
 * reads up to the first NUL sees all of it as text: valid UTF-8 without
 * NUL bytes. A value holding a NUL byte or invalid UTF-8 gives %NULL
 * rather than a truncated or broken string; read such values with
 * [method@Redis.Reply.get_data] or [method@Redis.Reply.get_bytes], and
 * use [method@Redis.Reply.get_kind] to tell them from integer, nil and
 * array replies.
 *
 * ```c
 * gsize len;
 * const char *whole = redis_reply_get_string (reply, &len);  // any bytes
 * const char *text = redis_reply_get_string (reply, NULL);   // UTF-8 or NULL
 * ```
 *
 * Bindings call [method@Redis.Reply.get_text] under this name: a plain
 * string (or `None`/`null`) by the rule for a %NULL @length.
 *
 * Returns: (nullable): the text owned by @self, or %NULL for integer, nil
 *   and array replies, and, without @length, for a value that is not
 *   UTF-8 free of NUL bytes
 */
const char *
redis_reply_get_string (RedisReply *self,
                        gsize      *length)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (!reply_is_text_kind (self))
    {
      if (length != NULL)
        *length = 0;
      return NULL;
    }

  if (length != NULL)
    {
      *length = self->len;
      return self->data;
    }

  /* The caller reads up to the first NUL: refuse rather than truncate,
   * and keep the promise of the binding type (utf8). */
  if (!redis_text_is_plain (self->data, self->len))
    return NULL;

  return self->data;
}

/**
 * redis_reply_get_text: (rename-to redis_reply_get_string)
 * @self: a [struct@Redis.Reply]
 *
 * Returns the text of a string, status or error reply when it is valid
 * UTF-8 without NUL bytes, as [method@Redis.Reply.get_string] does without
 * a length; %NULL otherwise, never a truncated string.
 *
 * Bindings see this function as `get_string()`, returning a plain string:
 *
 * ```python
 * pool.command_sync(['SET', 'k', 'v'], None)
 * assert pool.command_sync(['GET', 'k'], None).get_string() == 'v'
 * ```
 *
 * Returns: (nullable): the text owned by @self, or %NULL for integer, nil
 *   and array replies and for a value with a NUL byte or invalid UTF-8
 */
const char *
redis_reply_get_text (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return redis_reply_get_string (self, NULL);
}

/**
 * redis_reply_get_data:
 * @self: a [struct@Redis.Reply]
 * @length: (out): the length in bytes
 *
 * Returns the bytes of a string, status or error reply, binary-safe and
 * without a copy: the value may hold any bytes, NUL included. Bindings
 * get a byte array (`bytes` in Python, `Uint8Array` in GJS, `uint8[]` in
 * Vala). Use [method@Redis.Reply.get_bytes] to keep the data beyond the
 * life of @self.
 *
 * Returns: (array length=length) (element-type guint8) (transfer none) (nullable):
 *   the bytes owned by @self, or %NULL (with @length 0) for integer, nil and
 *   array replies; an empty string gives a non-%NULL pointer and length 0
 */
const guint8 *
redis_reply_get_data (RedisReply *self,
                      gsize      *length)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (!reply_is_text_kind (self))
    {
      if (length != NULL)
        *length = 0;
      return NULL;
    }

  if (length != NULL)
    *length = self->len;
  return (const guint8 *) self->data;
}

static void
unref_reply_notify (gpointer data)
{
  redis_reply_unref (data);
}

/**
 * redis_reply_get_bytes:
 * @self: a [struct@Redis.Reply]
 *
 * Returns the bytes of a string, status or error reply, binary-safe. The
 * #GBytes shares the reply's memory (no copy).
 *
 * Returns: (transfer full) (nullable): the bytes, or %NULL for integer, nil
 *   and array replies
 */
GBytes *
redis_reply_get_bytes (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (!reply_is_text_kind (self))
    return NULL;

  return g_bytes_new_with_free_func (self->data, self->len,
                                     unref_reply_notify,
                                     redis_reply_ref (self));
}

/**
 * redis_reply_get_integer:
 * @self: a [struct@Redis.Reply]
 *
 * Returns the value of an integer reply.
 *
 * Returns: the integer, or 0 when @self is not %REDIS_REPLY_KIND_INTEGER
 */
gint64
redis_reply_get_integer (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->kind == REDIS_REPLY_KIND_INTEGER ? self->integer : 0;
}

/**
 * redis_reply_get_n_elements:
 * @self: a [struct@Redis.Reply]
 *
 * Returns the number of elements of an array reply.
 *
 * Returns: the number of elements; 0 for other kinds
 */
guint
redis_reply_get_n_elements (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->n_elements;
}

/**
 * redis_reply_get_element:
 * @self: a [struct@Redis.Reply]
 * @index_: the position, smaller than [method@Redis.Reply.get_n_elements]
 *
 * Returns one element of an array reply.
 *
 * Returns: (transfer none) (nullable): the element, owned by @self, or %NULL
 *   when @index_ is out of range
 */
RedisReply *
redis_reply_get_element (RedisReply *self,
                         guint       index_)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (index_ >= self->n_elements || index_ >= self->len)
    return NULL;

  return self->elements[index_];
}

/**
 * redis_reply_get_elements:
 * @self: a [struct@Redis.Reply]
 *
 * Returns the elements of an array reply as a #GPtrArray.
 *
 * Returns: (transfer container) (element-type RedisReply): the elements,
 *   empty for other kinds
 */
GPtrArray *
redis_reply_get_elements (RedisReply *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (self->kind != REDIS_REPLY_KIND_ARRAY)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref);

  return redis_reply_steal_elements (self);
}

/**
 * redis_reply_get_error_prefix:
 * @self: a [struct@Redis.Reply]
 *
 * For an error reply, returns the upper-case first word of the server's
 * message, such as `WRONGTYPE`, `ERR` or `NOSCRIPT`.
 *
 * Returns: (transfer full) (nullable): the prefix, or %NULL
 */
char *
redis_reply_get_error_prefix (RedisReply *self)
{
  gsize n = 0;

  g_return_val_if_fail (self != NULL, NULL);

  if (self->kind != REDIS_REPLY_KIND_ERROR)
    return NULL;

  while (n < self->len && (g_ascii_isupper (self->data[n]) || self->data[n] == '_'))
    n++;
  if (n == 0 || (n < self->len && self->data[n] != ' '))
    return NULL;

  return g_strndup (self->data, n);
}

/**
 * redis_reply_to_variant:
 * @self: a [struct@Redis.Reply]
 *
 * Returns a #GVariant view of @self, convenient in bindings:
 *
 * - string: `s` when the bytes are valid UTF-8 without NUL, else `ay`
 * - status and error: `s`
 * - integer: `x`
 * - nil: `mv` holding nothing
 * - array: `av`, each element converted by the same rules
 *
 * Returns: (transfer full): a new, non-floating #GVariant
 */
GVariant *
redis_reply_to_variant (RedisReply *self)
{
  GVariant *ret = NULL;

  g_return_val_if_fail (self != NULL, NULL);

  switch (self->kind)
    {
    case REDIS_REPLY_KIND_STRING:
      if (redis_text_is_plain (self->data, self->len))
        ret = g_variant_new_string (self->data);
      else
        ret = g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, self->data, self->len, 1);
      break;

    case REDIS_REPLY_KIND_STATUS:
    case REDIS_REPLY_KIND_ERROR:
      if (g_utf8_validate (self->data, self->len, NULL))
        ret = g_variant_new_string (self->data);
      else
        ret = g_variant_new_take_string (g_utf8_make_valid (self->data, self->len));
      break;

    case REDIS_REPLY_KIND_INTEGER:
      ret = g_variant_new_int64 (self->integer);
      break;

    case REDIS_REPLY_KIND_NIL:
      ret = g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL);
      break;

    case REDIS_REPLY_KIND_ARRAY:
      {
        GVariantBuilder builder;

        g_variant_builder_init (&builder, G_VARIANT_TYPE ("av"));
        for (guint i = 0; i < self->n_elements; i++)
          {
            GVariant *child = redis_reply_to_variant (self->elements[i]);
            g_variant_builder_add (&builder, "v", child);
            g_variant_unref (child);
          }
        ret = g_variant_builder_end (&builder);
      }
      break;

    default:
      g_assert_not_reached ();
    }

  return g_variant_ref_sink (ret);
}

static void
append_reply (GString    *out,
              RedisReply *self)
{
  switch (self->kind)
    {
    case REDIS_REPLY_KIND_STRING:
      g_string_append_c (out, '"');
      redis_text_escape_append (out, self->data, self->len, REDIS_TEXT_ESCAPE_QUOTE);
      g_string_append_c (out, '"');
      break;

    case REDIS_REPLY_KIND_STATUS:
      redis_text_escape_append (out, self->data, self->len, REDIS_TEXT_ESCAPE_DEFAULT);
      break;

    case REDIS_REPLY_KIND_ERROR:
      g_string_append (out, "(error) ");
      redis_text_escape_append (out, self->data, self->len, REDIS_TEXT_ESCAPE_DEFAULT);
      break;

    case REDIS_REPLY_KIND_INTEGER:
      g_string_append_printf (out, "(integer) %" G_GINT64_FORMAT, self->integer);
      break;

    case REDIS_REPLY_KIND_NIL:
      g_string_append (out, "(nil)");
      break;

    case REDIS_REPLY_KIND_ARRAY:
      g_string_append_c (out, '[');
      for (guint i = 0; i < self->n_elements; i++)
        {
          if (i > 0)
            g_string_append (out, ", ");
          append_reply (out, self->elements[i]);
        }
      g_string_append_c (out, ']');
      break;

    default:
      g_assert_not_reached ();
    }
}

/**
 * redis_reply_to_string:
 * @self: a [struct@Redis.Reply]
 *
 * Formats @self for people reading logs: strings in double quotes, status
 * text unquoted, `(integer) 3`, `(nil)`, `(error) ERR …`, arrays in
 * brackets.
 *
 * The server's text is escaped, so the result is always valid UTF-8 without
 * control characters: a backslash becomes `\\`, line feed, carriage return
 * and tab become `\n`, `\r` and `\t`, a double quote inside a string
 * becomes `\"`, and each byte of other control characters (C0, DEL, C1,
 * the Unicode line separators and bidirectional controls) or of invalid
 * UTF-8 becomes `\xNN`. Other UTF-8 text is kept. Use
 * [method@Redis.Reply.get_bytes] for the exact bytes.
 *
 * Returns: (transfer full): a new string, valid UTF-8
 */
char *
redis_reply_to_string (RedisReply *self)
{
  GString *out;

  g_return_val_if_fail (self != NULL, NULL);

  out = g_string_new (NULL);
  append_reply (out, self);
  return g_string_free (out, FALSE);
}

/**
 * redis_reply_get_live_count:
 *
 * Returns how many replies exist in the process right now. Meant for leak
 * checks in tests and binding test suites.
 *
 * Returns: the number of live [struct@Redis.Reply] instances
 */
guint
redis_reply_get_live_count (void)
{
  return (guint) g_atomic_int_get (&live_count);
}
