/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target for URI parsing: bytes → NUL-terminated string →
 * redis_options_parse_uri() into fresh options → redis_options_to_uri().
 *
 * Checks, besides ASan/UBSan/LSan and GLib criticals (fatal here):
 *   - the password never shows in to_uri(): the output is the same with the
 *     password cleared;
 *   - the password never shows in the error message of a failed parse: a
 *     password of 4+ bytes in the message must also be there when the same
 *     URI with another password is parsed (then it is a quoted path or query
 *     value, or fixed text);
 *   - describe_address() works on whatever was parsed;
 *   - to_uri() of a successful parse parses again, to the same to_uri().
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

/* The URI with the password of its userinfo replaced by as many 'X', or
 * NULL if it has none: after "//" and up to the first of "/?#" is the
 * authority, the userinfo is the authority up to its first '@' (as GLib
 * splits it), the password what follows the userinfo's first ':'. */
static char *
replace_password (const char *uri)
{
  const char *authority = strstr (uri, "//");
  const char *authority_end, *at, *colon;
  g_autofree char *fill = NULL;

  if (authority == NULL)
    return NULL;
  authority += 2;
  authority_end = authority + strcspn (authority, "/?#");
  at = memchr (authority, '@', authority_end - authority);
  if (at == NULL)
    return NULL;
  colon = memchr (authority, ':', at - authority);
  if (colon == NULL || colon + 1 == at)
    return NULL;
  fill = g_strnfill (at - colon - 1, 'X');
  return g_strdup_printf ("%.*s%s%s", (int) (colon + 1 - uri), uri, fill, at);
}

/* @password shows in @message although the same URI with another password
 * gives a message without it (so it is not quoted from the path, a query
 * value or the fixed text). Short passwords are ignored: coincidences. */
static gboolean
leaks (const char *message,
       const char *other_message,
       const char *password)
{
  if (password == NULL || strlen (password) < 4)
    return FALSE;
  return strstr (message, password) != NULL && strstr (other_message, password) == NULL;
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
  g_autofree char *uri = g_strndup ((const char *) data, size);
  g_autofree char *raw_password = NULL;
  g_autofree char *password = NULL;
  g_autofree char *other_uri = NULL;
  g_autoptr(RedisOptions) options = redis_options_new ();
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (memchr (data, '\0', size) != NULL)
    return 0;   /* a C string ends at its NUL: nothing new to find there */

  /* What the password would be, as GLib splits it (raw and decoded). */
  g_uri_split_with_user (uri, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED,
                         NULL, NULL, &raw_password, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  g_uri_split_with_user (uri, G_URI_FLAGS_HAS_PASSWORD,
                         NULL, NULL, &password, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  other_uri = replace_password (uri);

  ok = redis_options_parse_uri (options, uri, extra_cb, NULL, &error);

  if (!ok)
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == REDIS_ERROR);
      g_assert_cmpint (error->code, ==, REDIS_ERROR_INVALID_ARGUMENT);
      g_autoptr(RedisOptions) other = redis_options_new ();
      g_autoptr(GError) other_error = NULL;

      const char *other_message = "";

      /* Without the password's position there is nothing to compare with. */
      if (other_uri != NULL)
        {
          if (!redis_options_parse_uri (other, other_uri, extra_cb, NULL, &other_error))
            other_message = other_error->message;
        }
      if (other_uri != NULL &&
          (leaks (error->message, other_message, password) ||
           leaks (error->message, other_message, raw_password)))
        fail ("the password shows in the error message: %s", error->message);
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

      if (ok && g_getenv ("FUZZ_URI_ROUNDTRIP") != NULL)
        {
          g_autoptr(RedisOptions) again = redis_options_new ();
          g_autoptr(GError) again_error = NULL;
          g_autofree char *out_again = NULL;

          if (!redis_options_parse_uri (again, out, NULL, NULL, &again_error))
            fail ("to_uri() output does not parse: %s: %s", out, again_error->message);
          out_again = redis_options_to_uri (again);
          g_assert_cmpstr (out, ==, out_again);
        }
    }

  return 0;
}
