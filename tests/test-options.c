/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Unit tests without a server for RedisOptions (issue 16): durations, URI
 * error messages that never quote the userinfo, the `uri` read-back
 * (redis_options_to_uri()) parsing back to the same options, and (issue 10)
 * the one boolean parser and the query parameters matched by whole name
 * through tables (the options' own, and an owner's like RedisPool's). The older URI
 * tests are in test-reader.c (/uri/…) and test-connection.c. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-options-private.h"

/* ---- helpers ------------------------------------------------------------ */

static void
assert_options_equal (const RedisOptions *a,
                      const RedisOptions *b)
{
  g_assert_cmpstr (a->host, ==, b->host);
  g_assert_cmpuint (a->port, ==, b->port);
  g_assert_cmpstr (a->socket_path, ==, b->socket_path);
  g_assert_cmpuint (a->database, ==, b->database);
  g_assert_cmpstr (a->username, ==, b->username);
  g_assert_cmpstr (a->client_name, ==, b->client_name);
  g_assert_cmpint (a->tls, ==, b->tls);
  g_assert_cmpstr (a->tls_ca_file, ==, b->tls_ca_file);
  g_assert_cmpstr (a->tls_certificate_file, ==, b->tls_certificate_file);
  g_assert_cmpstr (a->tls_key_file, ==, b->tls_key_file);
  g_assert_cmpuint (a->tls_validation_flags, ==, b->tls_validation_flags);
  g_assert_cmpuint (a->connect_timeout_ms, ==, b->connect_timeout_ms);
  g_assert_cmpuint (a->command_timeout_ms, ==, b->command_timeout_ms);
  g_assert_cmpuint (a->stall_timeout_ms, ==, b->stall_timeout_ms);
  g_assert_cmpuint (a->health_check_ms, ==, b->health_check_ms);
  g_assert_cmpuint (a->max_reply_bytes, ==, b->max_reply_bytes);
  g_assert_cmpuint (a->max_elements, ==, b->max_elements);
  g_assert_cmpuint (a->max_line_length, ==, b->max_line_length);
  g_assert_cmpuint (a->max_depth, ==, b->max_depth);
}

/* to_uri() of @options parses again, into the same options; the password
 * is not in the URI. */
static void
assert_round_trip (const RedisOptions *options)
{
  g_autoptr(RedisOptions) again = redis_options_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = redis_options_to_uri (options);

  g_test_message ("  read back as %s", uri);
  if (options->password != NULL && options->password[0] != '\0')
    g_assert_null (strstr (uri, options->password));
  g_assert_true (redis_options_parse_uri (again, uri, NULL, NULL, &error));
  g_assert_no_error (error);
  assert_options_equal (again, options);
  g_assert_null (again->password);
}

static RedisOptions *
parse_ok (const char *uri)
{
  RedisOptions *options = redis_options_new ();
  g_autoptr(GError) error = NULL;

  g_test_message ("parsing %s", uri);
  g_assert_true (redis_options_parse_uri (options, uri, NULL, NULL, &error));
  g_assert_no_error (error);
  return options;
}

/* Parses @uri, expecting INVALID_ARGUMENT; returns the message. */
static char *
parse_error_message (const char            *uri,
                     RedisOptionsExtraFunc  extra)
{
  g_autoptr(RedisOptions) options = redis_options_new ();
  g_autoptr(GError) error = NULL;

  g_assert_false (redis_options_parse_uri (options, uri, extra, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s → %s", uri, error->message);
  return g_strdup (error->message);
}

/* ---- durations ---------------------------------------------------------- */

static void
test_duration (void)
{
  static const struct { const char *text; gboolean ok; guint ms; } cases[] = {
    { "0", TRUE, 0 },
    { "500", TRUE, 500 },
    { "250ms", TRUE, 250 },
    { "2s", TRUE, 2000 },
    { "1.5s", TRUE, 1500 },
    { "4.1s", TRUE, 4100 },            /* 4.1 * 1000.0 is 4099.999… in binary */
    { "0.001s", TRUE, 1 },
    { "1.9ms", TRUE, 1 },              /* below a millisecond: dropped */
    { "1.0005s", TRUE, 1000 },
    /* Only an explicit zero is 0 ("none"): written non-zero, a value that
     * comes to 0 ms is refused. */
    { "0.0", TRUE, 0 },
    { "0ms", TRUE, 0 },
    { "0s", TRUE, 0 },
    { ".000s", TRUE, 0 },
    { "000.0000ms", TRUE, 0 },
    { "0.0005s", FALSE, 0 },
    { "0.0001s", FALSE, 0 },
    { "0.3", FALSE, 0 },
    { "0.4ms", FALSE, 0 },
    { ".9", FALSE, 0 },
    { "0.00000000000000000001s", FALSE, 0 },
    { ".5s", TRUE, 500 },
    { "5.", TRUE, 5 },
    { "007", TRUE, 7 },
    { "4294967295", TRUE, G_MAXUINT },
    { "4294967295ms", TRUE, G_MAXUINT },
    { "4294967.295s", TRUE, G_MAXUINT },
    { "4294967295.9", TRUE, G_MAXUINT },
    { "00000000000000000000000000000001s", TRUE, 1000 },
    { "4294967296", FALSE, 0 },
    { "4294967.296s", FALSE, 0 },
    { "4294968s", FALSE, 0 },
    { "99999999999999999999999999", FALSE, 0 },
    { "18446744073709551616s", FALSE, 0 },
    { "nan", FALSE, 0 },
    { "NaN", FALSE, 0 },
    { "nans", FALSE, 0 },
    { "nanms", FALSE, 0 },
    { "-nan", FALSE, 0 },
    { "inf", FALSE, 0 },
    { "infinity", FALSE, 0 },
    { "infs", FALSE, 0 },
    { "-inf", FALSE, 0 },
    { "1e300", FALSE, 0 },
    { "1e3", FALSE, 0 },
    { "1e-3s", FALSE, 0 },
    { "0x10", FALSE, 0 },
    { "0x1p3s", FALSE, 0 },
    { "-1", FALSE, 0 },
    { "-0", FALSE, 0 },
    { "+5", FALSE, 0 },
    { "", FALSE, 0 },
    { ".", FALSE, 0 },
    { ".s", FALSE, 0 },
    { " 5", FALSE, 0 },
    { "5 ", FALSE, 0 },
    { "5m", FALSE, 0 },
    { "5 s", FALSE, 0 },
    { "5S", FALSE, 0 },
    { "1.2.3", FALSE, 0 },
    { "s", FALSE, 0 },
    { "ms", FALSE, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint ms = 4242;
      gboolean ok = redis_options_parse_duration_ms (cases[i].text, &ms);

      g_test_message ("duration “%s”", cases[i].text);
      g_assert_cmpint (ok, ==, cases[i].ok);
      g_assert_cmpuint (ms, ==, ok ? cases[i].ms : 4242);
    }
}

/* A duration written non-zero that comes to 0 ms would silently mean "no
 * timeout": the URI fails and says why; an explicit zero still turns the
 * option off. */
static void
test_duration_below_ms (void)
{
  static const struct { const char *uri; gboolean zero_is_none; } bad[] = {
    { "redis://h?command_timeout=0.3", TRUE },
    { "redis://h?command_timeout=0.4ms", TRUE },
    { "redis://h?command_timeout=0.0001s", TRUE },
    { "redis://h?stall_timeout=0.5", TRUE },
    { "redis://h?health_check_interval=0.9ms", TRUE },
    { "redis://h?connect_timeout=0.2", FALSE },   /* 0 is not allowed at all */
  };
  static const char * const zero[] = { "0", "0ms", "0s", "0.0", "0.000s" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *message = parse_error_message (bad[i].uri, NULL);
      const char *value = strchr (bad[i].uri, '=') + 1;

      g_assert_nonnull (strstr (message, "is below a millisecond"));
      g_assert_nonnull (strstr (message, "500, 500ms, 1.5s"));
      g_assert_true ((strstr (message, "only 0 turns this off") != NULL) == bad[i].zero_is_none);
      g_assert_nonnull (strstr (message, value));
    }

  for (gsize i = 0; i < G_N_ELEMENTS (zero); i++)
    {
      g_autoptr(RedisOptions) options = redis_options_new ();
      g_autofree char *uri = g_strdup_printf ("redis://h?command_timeout=%s&stall_timeout=%s",
                                              zero[i], zero[i]);
      g_autoptr(GError) error = NULL;

      g_assert_true (redis_options_parse_uri (options, uri, NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (options->command_timeout_ms, ==, 0);
      g_assert_cmpuint (options->stall_timeout_ms, ==, 0);
    }

  /* Also for the pool's own durations. */
  {
    g_autoptr(GError) error = NULL;
    RedisPool *pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                                      "uri", "redis://127.0.0.1:1?backoff_initial=0.5",
                                      "connect-mode", REDIS_POOL_CONNECT_MODE_BACKGROUND,
                                      NULL);

    g_assert_null (pool);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "backoff_initial"));
  }
}

/* A duration the parser refuses fails the whole URI. */
static void
test_duration_uri (void)
{
  static const char * const bad[] = {
    "redis://h?command_timeout=nan",
    "redis://h?connect_timeout=inf",
    "redis://h?stall_timeout=1e300",
    "redis://h?health_check_interval=-5",
    "redis://h?command_timeout=4294967296",
    "redis://h?command_timeout=5000000s",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *message = parse_error_message (bad[i], NULL);

      g_assert_nonnull (strstr (message, "is not a duration"));
    }
}

/* ---- error messages ------------------------------------------------------ */

/* Text GLib's own messages are made of, which must not reach the GError. */
static void
assert_no_glib_text (const char *message)
{
  static const char * const glib_words[] = {
    "in URI", "Could not parse", "‘", "’", "%-encoding", "Non-UTF-8", "IPv6 address",
    "not absolute", "base URI", "Missing", "out of range",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (glib_words); i++)
    if (strstr (message, glib_words[i]) != NULL)
      g_error ("GLib's text “%s” in “%s”", glib_words[i], message);
}

/* Issue 16: GLib quoted the text it took for a port, which is part of the
 * password when the password holds an unencoded '/', '?' or '#'. */
static void
test_error_password_fragments (void)
{
  static const struct { const char *uri; const char *fragments[4]; } cases[] = {
    { "redis://:s3cr/etPW@host", { "s3cr", "etPW", NULL } },
    { "redis://user:hunter?2pass@host", { "hunter", "2pass", "unt", NULL } },
    { "redis://:Pa#ssw0rd@host", { "Pa#", "ssw0rd", "“Pa”", NULL } },
    { "rediss://u:pw1/x?y#z@host:6380/0", { "pw1", "x?y", NULL } },
    { "redis://u:123?w0rd@host", { "w0rd", "123?", NULL } },
    { "redis://u:123/w0rd@host", { "w0rd", NULL } },
    { "redis://u:123/45@host", { "/45", "45@", NULL } },
    { "redis://:s3cr3t%ZZPW@h/0", { "s3cr3t", "ZZPW", NULL } },
    { "redis://:s3cr3t%C3PW@h/0", { "s3cr3t", "C3PW", NULL } },
    { "redis://:s3cr3t%00PW@h/0", { "s3cr3t", "00PW", NULL } },
    { "redis://us3r:pw@[::1/0", { "us3r", NULL } },
    { "redis://us3r:pw@h:99999/0", { "us3r", "99999", NULL } },
    { "redis://us3r:pw@h:0/0", { "us3r", NULL } },
    { "redis://us3r:pw@h/0?bogus=1", { "us3r", "bogus", NULL } },
    { "redis://us3r:pw@h/0?db=x&db=x", { "us3r", NULL } },
    { "redis://us3r:pw@h/abc", { "us3r", "abc", NULL } },
    { "http://us3r:pw@h/0", { "us3r", "http", NULL } },
    { "us3r:pw@h", { "us3r", NULL } },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *message = parse_error_message (cases[i].uri, NULL);

      g_assert_true (g_str_has_prefix (message, "Invalid Redis URI: "));
      assert_no_glib_text (message);
      for (gsize j = 0; cases[i].fragments[j] != NULL; j++)
        if (strstr (message, cases[i].fragments[j]) != NULL)
          g_error ("“%s” of %s in “%s”", cases[i].fragments[j], cases[i].uri, message);
    }
}

/* Messages name what is wrong, in our own words. */
static void
test_error_messages (void)
{
  static const struct { const char *uri; const char *message; } cases[] = {
    { "redis://:s3cr/etPW@host",
      "the authority part cannot be parsed (a password with '/', '?', '#' or '@' must be percent-encoded)" },
    { "redis://user:hunter?2pass@host",
      "the authority part cannot be parsed (a password with '/', '?', '#' or '@' must be percent-encoded)" },
    { "redis://:Pa#ssw0rd@host",
      "the authority part cannot be parsed (a password with '/', '?', '#' or '@' must be percent-encoded)" },
    { "redis://h:abc/0", "the port is not a number from 1 to 65535" },
    { "redis://h:99999/0", "the port is not a number from 1 to 65535" },
    { "redis://h:0/0", "the port is not a number from 1 to 65535" },
    { "redis://[::1/0", "the host is not valid" },
    { "redis://[fe80::1%25a%2Fb]/0", "the host is not valid" },
    { "redis://:s3cr3t%ZZPW@h/0",
      "the user name or password has an invalid percent-encoding or is not UTF-8" },
    { "redis://h/%ZZ", "the path has an invalid percent-encoding or is not UTF-8" },
    { "redis://[::1%25a]b]/0", "the host is not valid" },
    { "redis://[::1%25a!b]/0", "the host is not valid" },
    { "redis://[::1%]/0", "the host is not valid" },
    { "redis://h/0?a=%ZZ", "the query cannot be parsed (use key=value pairs joined by '&', percent-encoded)" },
    { "redis://h/0?a", "the query cannot be parsed (use key=value pairs joined by '&', percent-encoded)" },
    { "//:pw@h/0", "it must start with redis://, rediss:// or unix://" },
    { "h:6379", "it must start with redis://, rediss:// or unix://" },
    { "", "it must start with redis://, rediss:// or unix://" },
    /* Without userinfo, the user's own text is quoted. */
    { "http://h/0", "unsupported scheme “http” (use redis, rediss or unix)" },
    { "redis://h/abc", "the path must be a database number, not “abc”" },
    { "redis://h/0?bogus=1", "unknown parameter “bogus”" },
    { "redis://h/0?db=x", "db=“x” is not a database number" },
    { "redis://h/0?command_timeout=nan", "command_timeout=“nan” is not a duration (use 500, 500ms or 5s)" },
    { "redis://h/0?client_name=%01&db=%E2%82%AC", "db=“\\xe2\\x82\\xac” is not a database number" },
    /* With userinfo, nothing of the URI is. */
    { "redis://u:pw@h/abc", "the path must be a database number" },
    { "redis://u:pw@h/0?bogus=1", "unknown parameter" },
    { "redis://u:pw@h/0?db=x", "db is not a database number" },
    { "redis://u:pw@h/0?command_timeout=nan", "command_timeout is not a duration (use 500, 500ms or 5s)" },
    { "redis://u:pw@h/0?tls_insecure=maybe", "tls_insecure is not a boolean (use true or false)" },
    /* An '@' after the authority: maybe a password with a '/', '?' or '#'. */
    { "redis://h/0?bogus=a@b",
      "unknown parameter (a password with '/', '?', '#' or '@' must be percent-encoded)" },
    { "redis://u:12/ab@h",
      "the path must be a database number (a password with '/', '?', '#' or '@' must be percent-encoded)" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *message = parse_error_message (cases[i].uri, NULL);
      g_autofree char *expected = g_strconcat ("Invalid Redis URI: ", cases[i].message, NULL);

      g_assert_cmpstr (message, ==, expected);
    }
}

static gboolean
echo_extra_cb (const char  *key,
               const char  *value,
               gpointer     user_data,
               GError     **error)
{
  g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
               "Invalid Redis URI: %s=“%s” is not valid", key, value);
  return FALSE;
}

/* The owner's handler of extra parameters (RedisPool's quotes the value)
 * is overruled when the URI has userinfo. */
static void
test_error_extra (void)
{
  g_autofree char *plain = parse_error_message ("redis://h?pool_size=many", echo_extra_cb);
  g_autofree char *with_user = parse_error_message ("redis://u:pw@h?pool_size=s3cr", echo_extra_cb);
  g_autofree char *stray_at = parse_error_message ("redis://u:123?pool_size=s3cr@h", echo_extra_cb);

  g_assert_cmpstr (plain, ==, "Invalid Redis URI: pool_size=“many” is not valid");
  g_assert_cmpstr (with_user, ==, "Invalid Redis URI: a query parameter is not valid");
  g_assert_null (strstr (stray_at, "s3cr"));
}

/* ---- booleans -------------------------------------------------------------- */

/* @text in three more spellings: upper case, capitalized, alternating. */
static void
spellings (const char  *text,
           char       **out)
{
  out[0] = g_strdup (text);
  out[1] = g_ascii_strup (text, -1);
  out[2] = g_strdup (text);
  out[2][0] = g_ascii_toupper (out[2][0]);
  out[3] = g_strdup (text);
  for (gsize i = 0; out[3][i] != '\0'; i++)
    if (i % 2 == 0)
      out[3][i] = g_ascii_toupper (out[3][i]);
}

/* One boolean parser for every boolean parameter: 1/0, true/false, yes/no,
 * on/off, in any case; nothing else (no spaces, no prefixes, no numbers
 * but 1 and 0). */
static void
test_boolean (void)
{
  static const struct { const char *text; gboolean value; } good[] = {
    { "1", TRUE }, { "true", TRUE }, { "yes", TRUE }, { "on", TRUE },
    { "0", FALSE }, { "false", FALSE }, { "no", FALSE }, { "off", FALSE },
  };
  static const char * const bad[] = {
    "", "2", "-1", "+1", "00", "01", "10", "0x1", "t", "f", "y", "n", "o", "of", "offf", "onn",
    "truee", "tru", "fals", "ye", "yess", " true", "true ", "true\n", "on\t", "enable", "enabled",
    "disabled", "null", "none", "nil", "oui", "ja", "1.0", "yes no", "tr\xc3\xbc" "e",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      char *forms[4];

      spellings (good[i].text, forms);
      for (gsize j = 0; j < G_N_ELEMENTS (forms); j++)
        {
          gboolean value = !good[i].value;

          g_test_message ("boolean “%s”", forms[j]);
          g_assert_true (redis_options_parse_boolean (forms[j], &value));
          g_assert_cmpint (value, ==, good[i].value);
          g_free (forms[j]);
        }
    }

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      gboolean value = 42;

      g_test_message ("not a boolean “%s”", bad[i]);
      g_assert_false (redis_options_parse_boolean (bad[i], &value));
      g_assert_cmpint (value, ==, 42);
    }
  {
    gboolean value = 42;

    g_assert_false (redis_options_parse_boolean (NULL, &value));
    g_assert_cmpint (value, ==, 42);
  }
}

/* tls_insecure takes every spelling of the boolean parser. */
static void
test_boolean_uri (void)
{
  static const struct { const char *value; gboolean insecure; } cases[] = {
    { "1", TRUE }, { "true", TRUE }, { "TRUE", TRUE }, { "True", TRUE }, { "yes", TRUE },
    { "YES", TRUE }, { "on", TRUE }, { "On", TRUE }, { "ON", TRUE },
    { "0", FALSE }, { "false", FALSE }, { "FALSE", FALSE }, { "no", FALSE }, { "No", FALSE },
    { "off", FALSE }, { "OFF", FALSE }, { "oFf", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *uri = g_strdup_printf ("rediss://h?tls_insecure=%s", cases[i].value);
      g_autoptr(RedisOptions) options = redis_options_new ();
      g_autoptr(GError) error = NULL;

      /* Start from the opposite, so that the value is really written. */
      options->tls_validation_flags = cases[i].insecure ? G_TLS_CERTIFICATE_VALIDATE_ALL : 0;
      g_assert_true (redis_options_parse_uri (options, uri, NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (options->tls_validation_flags, ==,
                        cases[i].insecure ? 0 : G_TLS_CERTIFICATE_VALIDATE_ALL);
      assert_round_trip (options);
    }

  {
    g_autofree char *message = parse_error_message ("redis://h?tls_insecure=enabled", NULL);

    g_assert_cmpstr (message, ==,
                     "Invalid Redis URI: tls_insecure=“enabled” is not a boolean (use true or false)");
  }
}

/* ---- parameter tables ---------------------------------------------------- */

/* Names the options know, matched whole. */
static const char * const option_names[] = {
  "db", "database", "client_name", "connect_timeout", "command_timeout", "stall_timeout",
  "health_check_interval", "tls_ca_file", "tls_certificate_file", "tls_key_file",
  "tls_insecure", "max_reply_bytes", "max_elements", "max_line_length", "max_depth",
};

/* Every name is in the options' table, once; the read-back writes only
 * names of the table. */
static void
test_param_table (void)
{
  g_autoptr(RedisOptions) options =
    parse_ok ("unix:///s?tls_insecure=1&tls_ca_file=/ca&tls_certificate_file=/c&tls_key_file=/k"
              "&client_name=n");
  g_autofree char *uri = redis_options_to_uri (options);
  g_auto(GStrv) pairs = g_strsplit (strchr (uri, '?') + 1, "&", -1);

  for (gsize i = 0; i < G_N_ELEMENTS (option_names); i++)
    {
      const RedisOptionsParam *param = redis_options_find_param (NULL, option_names[i]);

      g_assert_nonnull (param);
      g_assert_cmpstr (param->name, ==, option_names[i]);
      g_assert_nonnull (param->parse);
      for (const RedisOptionsParam *other = param + 1; other->name != NULL; other++)
        g_assert_cmpstr (other->name, !=, param->name);
    }

  for (gsize i = 0; pairs[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (pairs[i], "=", 2);

      g_test_message ("read back: %s", kv[0]);
      g_assert_nonnull (redis_options_find_param (NULL, kv[0]));
    }
}

/* What the old dispatch looked at (key[0] == 's' for stall_timeout, key[1..3]
 * == "onn" for connect_timeout, key[8] == 'i' for backoff_initial) decides
 * nothing: a name is a parameter only whole. */
static void
test_param_whole_name (void)
{
  static const char * const unknown[] = {
    /* prefixes and extensions */
    "d", "data", "databas", "databases", "db2", "dbx", "client", "client_name_", "client_names",
    "stall", "stall_timeou", "stall_timeouts", "stall_timeout_ms", "health_check", "health_check_interva",
    "connect", "connect_timeou", "connect_timeout2", "command_timeou", "command_timeoutx",
    "tls", "tls_", "tls_insecur", "tls_insecure_", "tls_ca", "tls_ca_files", "tls_key",
    "max_", "max_depths", "max_reply_byte", "max_element", "max_line_len",
    /* case */
    "DB", "Db", "Database", "CLIENT_NAME", "Stall_timeout", "connect_Timeout", "TLS_INSECURE",
    "Max_depth",
    /* same length and character where the old code dispatched */
    "sxxxx_timeout", "sealth_check_interval", "s", "health_check_intervas",
    "connxxxxxxxxxxx", "connect_timeoxx", "connand_timeout", "command_timeoux",
    "sommand_timeout", "databasx", "tls_ca_filx", "tls_key_filx",
    /* pool parameters are not the options' */
    "pool_size", "strategy", "backoff_initial", "backoff_max", "connect_mode", "reconnect",
    "max_queued", "max_leases",
    /* other */
    "timeout", "password", "user", "host", "port", "tls_validation_flags",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (unknown); i++)
    {
      g_autofree char *uri = g_strdup_printf ("redis://h?%s=1", unknown[i]);
      g_autofree char *message = parse_error_message (uri, NULL);
      g_autofree char *expected = g_strdup_printf ("Invalid Redis URI: unknown parameter “%s”",
                                                   unknown[i]);

      g_assert_null (redis_options_find_param (NULL, unknown[i]));
      g_assert_cmpstr (message, ==, expected);
    }

  /* The real names, side by side with their near misses, go where they say. */
  {
    g_autoptr(RedisOptions) options =
      parse_ok ("redis://h?stall_timeout=11&health_check_interval=12&connect_timeout=13"
                "&command_timeout=14&db=3");

    g_assert_cmpuint (options->stall_timeout_ms, ==, 11);
    g_assert_cmpuint (options->health_check_ms, ==, 12);
    g_assert_cmpuint (options->connect_timeout_ms, ==, 13);
    g_assert_cmpuint (options->command_timeout_ms, ==, 14);
    g_assert_cmpuint (options->database, ==, 3);
  }
  {
    g_autoptr(RedisOptions) options = parse_ok ("redis://h?database=5");

    g_assert_cmpuint (options->database, ==, 5);
  }
}

/* An owner's table (here shaped like RedisPool's): every stock parser, the
 * options' names first, near misses unknown, the messages' two forms. */
typedef struct
{
  guint     size;
  guint64   big;
  int       strategy;
  guint     backoff_initial_ms;
  guint     backoff_max_ms;
  gboolean  reconnect;
  char     *label;
  guint     queued;
} OwnerConfig;

static const RedisOptionsChoice owner_strategies[] = {
  { "round_robin", 0 }, { "random", 1 }, { "least_pending", 2 }, { NULL },
};

static const RedisOptionsParam owner_params[] = {
  { .name = "pool_size", .parse = redis_options_param_uint,
    .offset = G_STRUCT_OFFSET (OwnerConfig, size), .min = 1, .max = 1024 },
  { .name = "big", .parse = redis_options_param_uint64,
    .offset = G_STRUCT_OFFSET (OwnerConfig, big), .min = 10, .what = "is not a big number" },
  { .name = "strategy", .parse = redis_options_param_choice,
    .offset = G_STRUCT_OFFSET (OwnerConfig, strategy), .choices = owner_strategies,
    .what = "is not round_robin, random or least_pending" },
  { .name = "backoff_initial", .parse = redis_options_param_duration,
    .offset = G_STRUCT_OFFSET (OwnerConfig, backoff_initial_ms), .min = 1,
    .too_small = "must be positive" },
  { .name = "backoff_max", .parse = redis_options_param_duration,
    .offset = G_STRUCT_OFFSET (OwnerConfig, backoff_max_ms), .min = 1, .max = 60000 },
  { .name = "reconnect", .parse = redis_options_param_boolean,
    .offset = G_STRUCT_OFFSET (OwnerConfig, reconnect), .what = "is not a boolean" },
  { .name = "label", .parse = redis_options_param_string,
    .offset = G_STRUCT_OFFSET (OwnerConfig, label) },
  { .name = "max_queued", .parse = redis_options_param_uint,
    .offset = G_STRUCT_OFFSET (OwnerConfig, queued) },
  { NULL }
};

static gboolean
parse_owner (const char   *uri,
             OwnerConfig  *config,
             char        **message)
{
  g_autoptr(RedisOptions) options = redis_options_new ();
  g_autoptr(GError) error = NULL;
  gboolean ok = redis_options_parse_uri_with_params (options, uri, owner_params, config, &error);

  g_test_message ("%s → %s", uri, ok ? "ok" : error->message);
  if (!ok)
    {
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
      *message = g_strdup (error->message);
    }
  else
    g_assert_no_error (error);
  return ok;
}

static void
test_param_owner_table (void)
{
  static const struct { const char *query; const char *message; } bad[] = {
    { "pool_size=0", "pool_size=“0” is not valid" },
    { "pool_size=1025", "pool_size=“1025” is not valid" },
    { "pool_size=-1", "pool_size=“-1” is not valid" },
    { "pool_size=%01", "pool_size=“\\x01” is not valid" },
    { "big=9", "big=“9” is not a big number" },
    { "strategy=fastest", "strategy=“fastest” is not round_robin, random or least_pending" },
    { "strategy=Random", "strategy=“Random” is not round_robin, random or least_pending" },
    { "backoff_initial=0", "backoff_initial must be positive" },
    { "backoff_initial=0.0001s", "backoff_initial=“0.0001s” is below a millisecond: "
      "durations are whole milliseconds (500, 500ms, 1.5s)" },
    { "backoff_initial=x", "backoff_initial=“x” is not valid" },
    { "backoff_max=0", "backoff_max=“0” is not valid" },
    { "backoff_max=61s", "backoff_max=“61s” is not valid" },
    { "reconnect=maybe", "reconnect=“maybe” is not a boolean" },
    { "max_queued=4294967296", "max_queued=“4294967296” is not valid" },
    /* whole names only */
    { "backoff_ixxxxxx=1", "unknown parameter “backoff_ixxxxxx”" },
    { "backoff_initialx=1", "unknown parameter “backoff_initialx”" },
    { "backoff_=1", "unknown parameter “backoff_”" },
    { "backoff_maximum=1", "unknown parameter “backoff_maximum”" },
    { "pool=1", "unknown parameter “pool”" },
    { "Reconnect=1", "unknown parameter “Reconnect”" },
    { "reconnect_=1", "unknown parameter “reconnect_”" },
  };
  OwnerConfig config = { 0 };
  char *message = NULL;

  g_assert_true (parse_owner ("redis://h/1?pool_size=3&big=18446744073709551615&strategy=least_pending"
                              "&backoff_initial=50ms&backoff_max=2s&reconnect=OFF&label=a%20b"
                              "&max_queued=4294967295&db=4",
                              &config, &message));
  g_assert_cmpuint (config.size, ==, 3);
  g_assert_cmpuint (config.big, ==, G_MAXUINT64);
  g_assert_cmpint (config.strategy, ==, 2);
  g_assert_cmpuint (config.backoff_initial_ms, ==, 50);
  g_assert_cmpuint (config.backoff_max_ms, ==, 2000);
  g_assert_false (config.reconnect);
  g_assert_cmpstr (config.label, ==, "a b");
  g_assert_cmpuint (config.queued, ==, G_MAXUINT);

  /* A value refused writes nothing. */
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *uri = g_strdup_printf ("redis://h?%s", bad[i].query);
      g_autofree char *expected = g_strconcat ("Invalid Redis URI: ", bad[i].message, NULL);
      OwnerConfig before = config;

      g_assert_false (parse_owner (uri, &config, &message));
      g_assert_cmpstr (message, ==, expected);
      g_clear_pointer (&message, g_free);
      g_assert_cmpmem (&config, sizeof config, &before, sizeof before);
    }

  /* The options' names are the options'; the owner's work beside them. */
  g_assert_true (parse_owner ("redis://h?reconnect=yes&label=x&max_depth=5", &config, &message));
  g_assert_true (config.reconnect);
  g_assert_cmpstr (config.label, ==, "x");

  /* With userinfo, the value is not quoted; the name (our text) is. */
  g_assert_false (parse_owner ("redis://u:s3cr@h?strategy=s3cr", &config, &message));
  g_assert_cmpstr (message, ==,
                   "Invalid Redis URI: strategy is not round_robin, random or least_pending");
  g_clear_pointer (&message, g_free);
  g_assert_false (parse_owner ("redis://u:s3cr@h?backoff_ixxxxxx=1", &config, &message));
  g_assert_cmpstr (message, ==, "Invalid Redis URI: unknown parameter");
  g_clear_pointer (&message, g_free);

  g_assert_null (redis_options_find_param (owner_params, "db"));
  g_assert_true (redis_options_find_param (owner_params, "backoff_max") == &owner_params[4]);
  g_free (config.label);
}

/* ---- userinfo -------------------------------------------------------------- */

static void
test_userinfo (void)
{
  static const struct { const char *uri; const char *user; const char *password; } cases[] = {
    { "redis://alice:pw@h", "alice", "pw" },
    { "redis://:pw@h", NULL, "pw" },
    { "redis://alice@h", "alice", NULL },
    { "redis://alice:@h", "alice", "" },
    { "redis://:p%40ss%3Aw%2F%3F%23@h", NULL, "p@ss:w/?#" },
    /* An unencoded '@' belongs to the password: the last '@' ends it. */
    { "redis://:pa@ss@h", NULL, "pa@ss" },
    { "redis://a%3Ab:c:d@h", "a:b", "c:d" },
    { "redis://u:p%20w@h", "u", "p w" },
    { "redis://u:caf%C3%A9@h", "u", "café" },
    { "unix://carol:pw@/tmp/redis.sock", "carol", "pw" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(RedisOptions) options = parse_ok (cases[i].uri);

      g_assert_cmpstr (options->username, ==, cases[i].user);
      g_assert_cmpstr (options->password, ==, cases[i].password);
      assert_round_trip (options);
    }
}

/* ---- read-back ------------------------------------------------------------ */

/* parse (to_uri (parse (u))) == parse (u), password excepted. */
static void
test_round_trip_uris (void)
{
  static const char * const uris[] = {
    "redis://%3Am0",
    "redis://h%3Ax:1/2",
    "redis://[::1]:6390/1",
    "redis://[fe80::1%25eth0]:7000/3",
    "redis://1.2.3.4",
    "redis://h%25x",
    "redis://h%20x",
    "redis://h%5B1%5D",
    "redis://h;x/0",
    "redis://ss%40host",
    "redis://caf%C3%A9",
    "redis://%2F",
    ("rediss://u%40v:pw@secure:6380/4?tls_insecure=true&tls_ca_file=/etc/ca%20dir/ca.pem"
     "&tls_certificate_file=/c%26d.pem&tls_key_file=/k%23.pem"),
    "redis://h?client_name=a%26b%3Dc%23d%25e%2Bf%20g%2Fh",
    "redis://h?client_name=",
    "redis://h?max_reply_bytes=4096&max_elements=10&max_line_length=128",
    "redis://h?max_depth=1",
    "redis://h?max_depth=12",
    "redis://h?max_depth=1024",
    "redis://h?stall_timeout=0&health_check_interval=1.5s&command_timeout=0&connect_timeout=1",
    "redis://h?tls_insecure=false",
    "redis://h/3?db=7",
    "unix:///run/redis/redis.sock?db=3",
    "unix://carol:pw@/tmp/a%20b%3Fc%23d%25e.sock?client_name=x",
    "unix:////double/slash",
    "unix:/no/authority",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (uris); i++)
    {
      g_autoptr(RedisOptions) options = parse_ok (uris[i]);

      assert_round_trip (options);
    }
}

/* Every option appears in the read-back, in the parser's spelling. */
static void
test_read_back_complete (void)
{
  g_autoptr(RedisOptions) options =
    parse_ok ("rediss://u:s3cr3tPW@h:1/2?tls_insecure=1&tls_ca_file=/ca&tls_certificate_file=/cert"
              "&tls_key_file=/key&max_reply_bytes=2048&max_elements=3&max_line_length=100"
              "&max_depth=200&stall_timeout=7s&health_check_interval=8s&connect_timeout=9s&command_timeout=10s"
              "&client_name=app");
  g_autofree char *uri = redis_options_to_uri (options);
  static const char * const parts[] = {
    "rediss://u@h:1/2?", "client_name=app", "tls_insecure=true", "tls_ca_file=/ca",
    "tls_certificate_file=/cert", "tls_key_file=/key", "max_reply_bytes=2048", "max_elements=3",
    "max_line_length=100", "max_depth=200", "stall_timeout=7000ms", "health_check_interval=8000ms",
    "connect_timeout=9000ms", "command_timeout=10000ms",
  };

  g_test_message ("%s", uri);
  for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
    g_assert_nonnull (strstr (uri, parts[i]));
  g_assert_null (strstr (uri, "s3cr3tPW"));
  assert_round_trip (options);
}

/* Options set field by field (as the properties do), read back. */
static void
test_round_trip_table (void)
{
  static const char * const strings[] = {
    NULL, "", "a", "with space", "a&b=c", "#", "%", "%25", "?x", "/abs/path", "c:\\dos",
    "[::1]", "@", ":", "caf\xc3\xa9", "\x01\x7f", "+plus", "semi;colon", "tab\tchar",
  };
  static const char * const hosts[] = {
    "localhost", "127.0.0.1", "::1", "fe80::1%eth0", "::ffff:1.2.3.4", ":m0", "h:x", "a b",
    "h%x", "[::1]", "h/x", "h?x", "h#x", "h@x", "ss@host", "xn--caf-dma", "01.2.3.4", "1.2.3",
    "h;x", "_",
  };
  static const guint durations[] = { 0, 1, 999, 1000, 1001, 5000, G_MAXUINT - 1, G_MAXUINT };
  static const guint64 sizes[] = { 1024, 1025, G_MAXINT, G_MAXUINT64 / 4 };
  static const guint counts[] = { 64, 1000, G_MAXINT };

  for (gsize i = 0; i < G_N_ELEMENTS (hosts); i++)
    {
      g_autoptr(RedisOptions) options = redis_options_new ();

      g_test_message ("host “%s”", hosts[i]);
      g_free (options->host);
      options->host = g_strdup (hosts[i]);
      options->port = 1 + i * 3000;
      options->database = i;
      options->tls = i % 2;
      assert_round_trip (options);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++)
    {
      g_autoptr(RedisOptions) options = redis_options_new ();
      g_autoptr(RedisOptions) unix_options = NULL;

      g_test_message ("string “%s”", strings[i]);
      options->username = (strings[i] != NULL && strings[i][0] != '\0') ? g_strdup (strings[i]) : NULL;
      options->password = g_strdup ("pw-not-printed");
      options->client_name = g_strdup (strings[i]);
      options->tls_ca_file = g_strdup (strings[i]);
      options->tls_certificate_file = g_strdup (strings[i]);
      options->tls_key_file = g_strdup (strings[i]);
      assert_round_trip (options);

      unix_options = redis_options_copy (options);
      unix_options->socket_path = g_strconcat ("/", strings[i], NULL);
      if (strstr (unix_options->socket_path, "/.") == NULL)   /* dot segments are removed */
        assert_round_trip (unix_options);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (durations); i++)
    {
      g_autoptr(RedisOptions) options = redis_options_new ();

      g_test_message ("duration %u", durations[i]);
      options->connect_timeout_ms = MAX (durations[i], 1);
      options->command_timeout_ms = durations[i];
      options->stall_timeout_ms = durations[i];
      options->health_check_ms = durations[i];
      assert_round_trip (options);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(RedisOptions) options = redis_options_new ();

      options->max_reply_bytes = sizes[i];
      options->max_elements = counts[i % G_N_ELEMENTS (counts)];
      options->max_line_length = counts[(i + 1) % G_N_ELEMENTS (counts)];
      options->max_depth = 1 + (guint) (i * 97) % 1024;
      options->tls_validation_flags = i % 2 ? 0 : G_TLS_CERTIFICATE_VALIDATE_ALL;
      options->database = G_MAXINT;
      options->port = 65535;
      assert_round_trip (options);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/options/duration", test_duration);
  g_test_add_func ("/options/duration/uri", test_duration_uri);
  g_test_add_func ("/options/duration/below-ms", test_duration_below_ms);
  g_test_add_func ("/options/uri/error/password-fragments", test_error_password_fragments);
  g_test_add_func ("/options/uri/error/messages", test_error_messages);
  g_test_add_func ("/options/uri/error/extra", test_error_extra);
  g_test_add_func ("/options/boolean", test_boolean);
  g_test_add_func ("/options/boolean/uri", test_boolean_uri);
  g_test_add_func ("/options/params/table", test_param_table);
  g_test_add_func ("/options/params/whole-name", test_param_whole_name);
  g_test_add_func ("/options/params/owner-table", test_param_owner_table);
  g_test_add_func ("/options/uri/userinfo", test_userinfo);
  g_test_add_func ("/options/uri/round-trip", test_round_trip_uris);
  g_test_add_func ("/options/uri/read-back-complete", test_read_back_complete);
  g_test_add_func ("/options/uri/round-trip-table", test_round_trip_table);

  return g_test_run ();
}
