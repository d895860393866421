/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-text-private.h"

static void
append_hex_bytes (GString    *out,
                  const char *data,
                  gsize       len)
{
  static const char hex[] = "0123456789abcdef";

  for (gsize i = 0; i < len; i++)
    {
      guchar c = data[i];
      char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 0x0f] };

      g_string_append_len (out, esc, sizeof esc);
    }
}

/* Non-ASCII characters shown as their bytes: C1 controls and the
 * characters that break or reorder lines. */
static gboolean
unichar_needs_escape (gunichar c)
{
  return (c >= 0x80 && c <= 0x9f) ||
         c == 0x061c ||
         c == 0x200e || c == 0x200f ||
         (c >= 0x2028 && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

static void
append_ascii (GString              *out,
              guchar                c,
              RedisTextEscapeFlags  flags)
{
  switch (c)
    {
    case '\\':
      g_string_append (out, "\\\\");
      break;
    case '\n':
      g_string_append (out, "\\n");
      break;
    case '\r':
      g_string_append (out, "\\r");
      break;
    case '\t':
      g_string_append (out, "\\t");
      break;
    case '"':
      if (flags & REDIS_TEXT_ESCAPE_QUOTE)
        g_string_append (out, "\\\"");
      else
        g_string_append_c (out, '"');
      break;
    default:
      if (c < 0x20 || c == 0x7f)
        {
          char byte = (char) c;

          append_hex_bytes (out, &byte, 1);
        }
      else
        g_string_append_c (out, (char) c);
      break;
    }
}

void
redis_text_escape_append (GString              *out,
                          const char           *data,
                          gsize                 len,
                          RedisTextEscapeFlags  flags)
{
  const char *p;
  const char *end;

  g_return_if_fail (out != NULL);
  g_return_if_fail (data != NULL || len == 0);

  if (len == 0)
    return;   /* data may be NULL: no pointer arithmetic on it */

  p = data;
  end = data + len;
  while (p < end)
    {
      const char *valid_end;

      /* Stops at the first invalid byte (or NUL): everything before it is
       * whole characters. */
      g_utf8_validate_len (p, end - p, &valid_end);

      while (p < valid_end)
        {
          const char *next;
          gunichar c;

          if ((guchar) *p < 0x80)
            {
              append_ascii (out, (guchar) *p, flags);
              p++;
              continue;
            }

          c = g_utf8_get_char (p);
          next = g_utf8_next_char (p);
          if (unichar_needs_escape (c))
            append_hex_bytes (out, p, next - p);
          else
            g_string_append_len (out, p, next - p);
          p = next;
        }

      if (p < end)
        {
          /* A byte that is not valid UTF-8 here, or a NUL (which
           * g_utf8_validate_len() refuses too): \xNN either way. */
          append_hex_bytes (out, p, 1);
          p++;
        }
    }
}

char *
redis_text_escape (const char *data,
                   gsize       len)
{
  GString *out;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  out = g_string_sized_new (len + 1);
  redis_text_escape_append (out, data, len, REDIS_TEXT_ESCAPE_DEFAULT);
  return g_string_free (out, FALSE);
}

gboolean
redis_text_is_plain (const char *data,
                     gsize       len)
{
  return data != NULL && g_utf8_validate (data, (gssize) len, NULL);
}
