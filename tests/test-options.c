/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Unit tests without a server for RedisOptions (issue 16): durations, URI
 * error messages that never quote the userinfo, and the `uri` read-back
 * (redis_options_to_uri()) parsing back to the same options. The older URI
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
    { "0.0005s", TRUE, 0 },            /* below a millisecond: truncated */
    { "1.9ms", TRUE, 1 },
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
  g_test_add_func ("/options/uri/error/password-fragments", test_error_password_fragments);
  g_test_add_func ("/options/uri/error/messages", test_error_messages);
  g_test_add_func ("/options/uri/error/extra", test_error_extra);
  g_test_add_func ("/options/uri/userinfo", test_userinfo);
  g_test_add_func ("/options/uri/round-trip", test_round_trip_uris);
  g_test_add_func ("/options/uri/read-back-complete", test_read_back_complete);
  g_test_add_func ("/options/uri/round-trip-table", test_round_trip_table);

  return g_test_run ();
}
