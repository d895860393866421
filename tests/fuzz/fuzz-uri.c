/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target for URI parsing: bytes → NUL-terminated string →
 * redis_options_parse_uri() into fresh options → redis_options_to_uri().
 *
 * Checks, besides ASan/UBSan/LSan and GLib criticals (fatal here):
 *   - an error message is one of the parser's own (GLib's text never gets
 *     through): with its “quoted” parts emptied, it is in known_messages;
 *   - an error message holds no 3 bytes in a row of what may be userinfo,
 *     found in the raw input (not from what GLib parsed): everything between
 *     the first "//" and the last '@' (GLib's reading, "//" to the last '@'
 *     of the authority, is part of it; a password with an unencoded '/', '?'
 *     or '#' is split over the authority, path, query and fragment), raw and
 *     percent-decoded; runs that are also in the fixed text are allowed;
 *   - the password never shows in to_uri(): the output is the same with the
 *     password cleared;
 *   - describe_address() works on whatever was parsed;
 *   - to_uri() of a successful parse parses again, to the same options
 *     (field by field, password excepted) and the same to_uri().
 */

#include "config-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis-error.h"
#include "redis-options-private.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define fail(...) G_STMT_START { g_printerr ("fuzz-uri: " __VA_ARGS__); g_printerr ("\n"); abort (); } G_STMT_END

/* Accepts pool-style parameters, like RedisPool does, so that the extra
 * path runs too; rejects "reject" with its own error. */
static gboolean
extra_cb (const char  *key,
          const char  *value,
          gpointer     user_data,
          GError     **error)
{
  if (g_str_equal (key, "pool_size") || g_str_equal (key, "strategy"))
    return TRUE;
  if (g_str_equal (key, "reject"))
    {
      g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT, "rejected");
      return FALSE;
    }
  return FALSE;   /* unknown parameter, the options' own message */
}

/* Every message redis_options_parse_uri() writes (redispool/redis-options.c),
 * with its quoted parts empty (“”). A new message must be added here: the
 * fuzzer fails on a message it does not know (GLib's text, for one). */
static const char * const fixed_messages[] = {
  "it must start with redis://, rediss:// or unix://",
  "the authority part cannot be parsed",
  "the port is not a number from 1 to 65535",
  "the host is not valid",
  "the path has an invalid percent-encoding or is not UTF-8",
  "the query cannot be parsed (use key=value pairs joined by '&', percent-encoded)",
  "the fragment has an invalid percent-encoding or is not UTF-8",
  "it cannot be parsed",
  "a unix:// URI needs an absolute socket path",
  "the path must be a database number",
  "the path must be a database number, not “”",
  "unsupported scheme “” (use redis, rediss or unix)",
  "unsupported scheme (use redis, rediss or unix)",
  "the user name or password has an invalid percent-encoding or is not UTF-8",
  "connect_timeout must be positive",
  "unknown parameter",
  "unknown parameter “”",
  "a query parameter is not valid",
  /* redis+sentinel:// */
  "a redis+sentinel:// URI needs its sentinels (host:port,host:port…)",
  "the sentinels must be host:port, separated by commas",
  "sentinel_password has an invalid percent-encoding or is not UTF-8",
  "the path of a redis+sentinel:// URI must be /master-name or /master-name/db",
};
static const char * const param_keys[] = {
  "db", "database", "stall_timeout", "health_check_interval", "connect_timeout",
  "command_timeout", "tls_insecure", "max_reply_bytes", "max_elements", "max_line_length",
  "max_depth", "role", "sentinel_username", "sentinel_password", "tls_server_name",
};
static const char * const param_problems[] = {
  "is not a database number",
  "is not a duration (use 500, 500ms or 5s)",
  "is not a boolean (use true or false)",
  "is not a size of at least 1024",
  "is not a positive count",
  "is not a size of at least 64",
  "is not a depth from 1 to 1024",
  "is not a role (use primary or replica)",
  "is not a host name",
  "is below a millisecond: durations are whole milliseconds (500, 500ms, 1.5s)",
  "is below a millisecond, which would mean none: durations are whole "
  "milliseconds (500, 500ms, 1.5s), and only 0 turns this off",
  "is not valid",
};
#define URI_MESSAGE_PREFIX "Invalid Redis URI: "
#define URI_MESSAGE_HINT " (a password with '/', '?', '#' or '@' must be percent-encoded)"

static GHashTable *known_messages;   /* full message with “” → TRUE */
static GString *fixed_text;          /* all of them, one a line */

static void
add_known (const char *message)
{
  char *full = g_strconcat (URI_MESSAGE_PREFIX, message, NULL);
  char *hinted = g_strconcat (full, URI_MESSAGE_HINT, NULL);

  g_string_append_printf (fixed_text, "%s\n%s\n", full, hinted);
  g_hash_table_add (known_messages, full);
  g_hash_table_add (known_messages, hinted);
}

static void
init_known_messages (void)
{
  known_messages = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  fixed_text = g_string_new (NULL);
  g_hash_table_add (known_messages, g_strdup ("rejected"));   /* extra_cb's */
  g_string_append (fixed_text, "rejected\n");
  for (gsize i = 0; i < G_N_ELEMENTS (fixed_messages); i++)
    add_known (fixed_messages[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (param_keys); i++)
    for (gsize j = 0; j < G_N_ELEMENTS (param_problems); j++)
      {
        g_autofree char *bare = g_strdup_printf ("%s %s", param_keys[i], param_problems[j]);
        g_autofree char *quoted = g_strdup_printf ("%s=“” %s", param_keys[i], param_problems[j]);

        add_known (bare);
        add_known (quoted);
      }
}

/* @message with what is between “ and ” taken out. */
static char *
skeleton (const char *message)
{
  GString *out = g_string_new (NULL);
  const char *p = message;
  const char *open, *close;

  while ((open = strstr (p, "“")) != NULL && (close = strstr (open, "”")) != NULL)
    {
      g_string_append_len (out, p, open + strlen ("“") - p);
      p = close;
    }
  g_string_append (out, p);
  return g_string_free (out, FALSE);
}

/* @len bytes at @text with %XX decoded where it can be (a bad escape stays). */
static GString *
decode_leniently (const char *text,
                  gsize       len)
{
  GString *out = g_string_sized_new (len);

  for (gsize i = 0; i < len; i++)
    {
      if (text[i] == '%' && i + 2 < len &&
          g_ascii_isxdigit (text[i + 1]) && g_ascii_isxdigit (text[i + 2]))
        {
          g_string_append_c (out, (char) ((g_ascii_xdigit_value (text[i + 1]) << 4) |
                                          g_ascii_xdigit_value (text[i + 2])));
          i += 2;
        }
      else
        g_string_append_c (out, text[i]);
    }
  return out;
}

#define LEAK_RUN 3

static gboolean
has_run (const char *haystack,
         gsize       len,
         const char *run)
{
  for (gsize i = 0; i + LEAK_RUN <= len; i++)
    if (memcmp (haystack + i, run, LEAK_RUN) == 0)
      return TRUE;
  return FALSE;
}

/* A run of LEAK_RUN bytes of @region that is in @message but not in the fixed
 * text, or -1. */
static gssize
find_leak (const char *region,
           gsize       len,
           const char *message)
{
  gsize message_len = strlen (message);

  for (gsize i = 0; i + LEAK_RUN <= len; i++)
    if (has_run (message, message_len, region + i) &&
        !has_run (fixed_text->str, fixed_text->len, region + i))
      return i;
  return -1;
}

static void
check_error_message (const char *uri,
                     const char *message)
{
  g_autofree char *shape = skeleton (message);
  const char *slashes = strstr (uri, "//");
  const char *last_at = strrchr (uri, '@');

  if (!g_hash_table_contains (known_messages, shape))
    fail ("not one of the parser's messages: %s", message);

  /* What may be userinfo: from the first "//" to the last '@'. */
  if (slashes != NULL && last_at != NULL && last_at > slashes + 2)
    {
      const char *region = slashes + 2;
      gsize len = last_at - region;
      g_autoptr(GString) decoded = decode_leniently (region, len);
      gssize at;

      if ((at = find_leak (region, len, message)) >= 0 ||
          (at = find_leak (decoded->str, decoded->len, message)) >= 0)
        fail ("the error message holds bytes of the userinfo (at %" G_GSSIZE_FORMAT "): %s",
              at, message);
    }
}

static void
check_equal (const RedisOptions *a,
             const RedisOptions *b,
             const char         *uri)
{
#define SAME_STR(f) if (g_strcmp0 (a->f, b->f) != 0) fail ("%s: " #f " “%s” read back as “%s”", uri, a->f, b->f)
#define SAME_NUM(f) if (a->f != b->f) fail ("%s: " #f " %" G_GUINT64_FORMAT " read back as %" G_GUINT64_FORMAT, uri, (guint64) a->f, (guint64) b->f)
  SAME_STR (host);
  SAME_NUM (port);
  SAME_STR (socket_path);
  SAME_NUM (database);
  SAME_STR (username);
  SAME_STR (client_name);
  SAME_NUM (tls);
  SAME_STR (tls_ca_file);
  SAME_STR (tls_certificate_file);
  SAME_STR (tls_key_file);
  SAME_NUM (tls_validation_flags);
  SAME_STR (tls_server_name);
  SAME_NUM (connect_timeout_ms);
  SAME_NUM (command_timeout_ms);
  SAME_NUM (stall_timeout_ms);
  SAME_NUM (health_check_ms);
  SAME_NUM (max_reply_bytes);
  SAME_NUM (max_elements);
  SAME_NUM (max_line_length);
  SAME_NUM (max_depth);
  /* The Sentinel options; the others of them (sentinel_username, role)
   * mean nothing without sentinels, and only a sentinel URI prints them. */
  if (!g_strv_equal ((const char * const *) (a->sentinels != NULL ? a->sentinels : (char *[]) { NULL }),
                     (const char * const *) (b->sentinels != NULL ? b->sentinels : (char *[]) { NULL })))
    fail ("%s: the sentinels read back differently", uri);
  if (a->sentinels != NULL && a->socket_path == NULL)
    {
      SAME_STR (master_name);
      SAME_STR (sentinel_username);
      SAME_NUM (role);
    }
#undef SAME_STR
#undef SAME_NUM
}

/* libFuzzer saves the input on abort(), not on the SIGTRAP of a fatal
 * GLib message: print and abort ourselves. */
static void
uri_fatal_log_handler (const char     *domain,
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
  g_log_set_default_handler (uri_fatal_log_handler, NULL);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *uri = NULL;
  g_autoptr(RedisOptions) options = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (memchr (data, '\0', size) != NULL)
    return 0;   /* a C string ends at its NUL: nothing new to find there */

  if (known_messages == NULL)
    init_known_messages ();   /* also when replayed by test-fuzz-regressions */

  uri = g_strndup ((const char *) data, size);
  options = redis_options_new ();
  ok = redis_options_parse_uri (options, uri, extra_cb, NULL, &error);

  if (!ok)
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == REDIS_ERROR);
      g_assert_cmpint (error->code, ==, REDIS_ERROR_INVALID_ARGUMENT);
      check_error_message (uri, error->message);
    }
  else
    g_assert_null (error);

  /* Whatever was parsed (even partially, before a failure) must print. */
  if (options->host != NULL || options->socket_path != NULL)
    {
      g_autofree char *out = redis_options_to_uri (options);
      g_autofree char *address = redis_options_describe_address (options);
      g_autofree char *out_without = NULL;
      char *saved = options->password;

      g_assert_nonnull (out);
      g_assert_nonnull (address);

      options->password = NULL;
      out_without = redis_options_to_uri (options);
      options->password = saved;
      /* The exact check: the password has no influence on the output. */
      if (g_strcmp0 (out, out_without) != 0)
        fail ("to_uri() depends on the password: %s", out);

      if (ok)
        {
          g_autoptr(RedisOptions) again = redis_options_new ();
          g_autoptr(GError) again_error = NULL;
          g_autofree char *out_again = NULL;

          if (!redis_options_parse_uri (again, out, NULL, NULL, &again_error))
            fail ("to_uri() output does not parse: %s: %s", out, again_error->message);
          check_equal (options, again, out);
          if (again->password != NULL)
            fail ("to_uri() output has a password: %s", out);
          out_again = redis_options_to_uri (again);
          g_assert_cmpstr (out, ==, out_again);
        }
    }

  return 0;
}
