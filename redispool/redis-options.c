/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>
#include <stdlib.h>

#include "redis-error.h"
#include "redis-options-private.h"

#define DEFAULT_HOST             "127.0.0.1"
#define DEFAULT_PORT             6379
#define DEFAULT_TIMEOUT_MS       5000
#define DEFAULT_STALL_TIMEOUT_MS 10000
#define DEFAULT_HEALTH_CHECK_MS  30000
#define DEFAULT_MAX_REPLY_BYTES  (G_GUINT64_CONSTANT (512) * 1024 * 1024)
#define DEFAULT_MAX_ELEMENTS     (16u * 1024 * 1024)
#define DEFAULT_MAX_LINE_LENGTH  (64u * 1024)

RedisOptions *
redis_options_new (void)
{
  RedisOptions *self = g_new0 (RedisOptions, 1);

  self->host = g_strdup (DEFAULT_HOST);
  self->port = DEFAULT_PORT;
  self->tls_validation_flags = G_TLS_CERTIFICATE_VALIDATE_ALL;
  self->connect_timeout_ms = DEFAULT_TIMEOUT_MS;
  self->command_timeout_ms = DEFAULT_TIMEOUT_MS;
  self->stall_timeout_ms = DEFAULT_STALL_TIMEOUT_MS;
  self->health_check_ms = DEFAULT_HEALTH_CHECK_MS;
  self->max_reply_bytes = DEFAULT_MAX_REPLY_BYTES;
  self->max_elements = DEFAULT_MAX_ELEMENTS;
  self->max_line_length = DEFAULT_MAX_LINE_LENGTH;
  return self;
}

RedisOptions *
redis_options_copy (const RedisOptions *self)
{
  RedisOptions *copy = g_memdup2 (self, sizeof *self);

  copy->host = g_strdup (self->host);
  copy->socket_path = g_strdup (self->socket_path);
  copy->username = g_strdup (self->username);
  copy->password = g_strdup (self->password);
  copy->client_name = g_strdup (self->client_name);
  copy->tls_ca_file = g_strdup (self->tls_ca_file);
  copy->tls_certificate_file = g_strdup (self->tls_certificate_file);
  copy->tls_key_file = g_strdup (self->tls_key_file);
  return copy;
}

static void
clear_secret (char **secret)
{
  if (*secret != NULL)
    {
      /* Do not leave the password in freed heap memory. */
      memset (*secret, 0, strlen (*secret));
      g_clear_pointer (secret, g_free);
    }
}

void
redis_options_free (RedisOptions *self)
{
  if (self == NULL)
    return;
  g_free (self->host);
  g_free (self->socket_path);
  g_free (self->username);
  clear_secret (&self->password);
  g_free (self->client_name);
  g_free (self->tls_ca_file);
  g_free (self->tls_certificate_file);
  g_free (self->tls_key_file);
  g_free (self);
}

void
redis_options_install_properties (GObjectClass  *klass,
                                  guint          first_id,
                                  GParamSpec   **pspecs)
{
  /* Options are read when the object is initialized: construct-only. */
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  pspecs[REDIS_OPTIONS_PROP_HOST] =
    g_param_spec_string ("host", NULL, NULL, DEFAULT_HOST, rw);
  pspecs[REDIS_OPTIONS_PROP_PORT] =
    g_param_spec_uint ("port", NULL, NULL, 1, 65535, DEFAULT_PORT, rw);
  pspecs[REDIS_OPTIONS_PROP_SOCKET_PATH] =
    g_param_spec_string ("socket-path", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_DATABASE] =
    g_param_spec_uint ("database", NULL, NULL, 0, G_MAXINT, 0, rw);
  pspecs[REDIS_OPTIONS_PROP_USERNAME] =
    g_param_spec_string ("username", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_PASSWORD] =
    g_param_spec_string ("password", NULL, NULL, NULL,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  pspecs[REDIS_OPTIONS_PROP_CLIENT_NAME] =
    g_param_spec_string ("client-name", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_TLS] =
    g_param_spec_boolean ("tls", NULL, NULL, FALSE, rw);
  pspecs[REDIS_OPTIONS_PROP_TLS_CA_FILE] =
    g_param_spec_string ("tls-ca-file", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_TLS_CERTIFICATE_FILE] =
    g_param_spec_string ("tls-certificate-file", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_TLS_KEY_FILE] =
    g_param_spec_string ("tls-key-file", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_TLS_VALIDATION_FLAGS] =
    g_param_spec_flags ("tls-validation-flags", NULL, NULL,
                        G_TYPE_TLS_CERTIFICATE_FLAGS, G_TLS_CERTIFICATE_VALIDATE_ALL, rw);
  pspecs[REDIS_OPTIONS_PROP_CONNECT_TIMEOUT] =
    g_param_spec_uint ("connect-timeout", NULL, NULL, 1, G_MAXUINT, DEFAULT_TIMEOUT_MS, rw);
  pspecs[REDIS_OPTIONS_PROP_COMMAND_TIMEOUT] =
    g_param_spec_uint ("command-timeout", NULL, NULL, 0, G_MAXUINT, DEFAULT_TIMEOUT_MS, rw);
  pspecs[REDIS_OPTIONS_PROP_STALL_TIMEOUT] =
    g_param_spec_uint ("stall-timeout", NULL, NULL, 0, G_MAXUINT, DEFAULT_STALL_TIMEOUT_MS, rw);
  pspecs[REDIS_OPTIONS_PROP_HEALTH_CHECK_INTERVAL] =
    g_param_spec_uint ("health-check-interval", NULL, NULL, 0, G_MAXUINT, DEFAULT_HEALTH_CHECK_MS, rw);
  pspecs[REDIS_OPTIONS_PROP_MAX_REPLY_BYTES] =
    g_param_spec_uint64 ("max-reply-bytes", NULL, NULL, 1024, G_MAXUINT64 / 4,
                         DEFAULT_MAX_REPLY_BYTES, rw);
  pspecs[REDIS_OPTIONS_PROP_MAX_ELEMENTS] =
    g_param_spec_uint ("max-elements", NULL, NULL, 1, G_MAXINT, DEFAULT_MAX_ELEMENTS, rw);
  pspecs[REDIS_OPTIONS_PROP_MAX_LINE_LENGTH] =
    g_param_spec_uint ("max-line-length", NULL, NULL, 64, G_MAXINT, DEFAULT_MAX_LINE_LENGTH, rw);

  for (guint i = 0; i < REDIS_OPTIONS_N_PROPS; i++)
    g_object_class_install_property (klass, first_id + i, pspecs[i]);
}

void
redis_options_set_property (RedisOptions *self,
                            guint         rel_id,
                            const GValue *value)
{
  switch (rel_id)
    {
    case REDIS_OPTIONS_PROP_HOST:
      g_free (self->host);
      self->host = g_value_dup_string (value);
      if (self->host == NULL)
        self->host = g_strdup (DEFAULT_HOST);
      break;
    case REDIS_OPTIONS_PROP_PORT:
      self->port = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_SOCKET_PATH:
      g_free (self->socket_path);
      self->socket_path = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_DATABASE:
      self->database = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_USERNAME:
      g_free (self->username);
      self->username = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_PASSWORD:
      clear_secret (&self->password);
      self->password = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_CLIENT_NAME:
      g_free (self->client_name);
      self->client_name = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_TLS:
      self->tls = g_value_get_boolean (value);
      break;
    case REDIS_OPTIONS_PROP_TLS_CA_FILE:
      g_free (self->tls_ca_file);
      self->tls_ca_file = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_TLS_CERTIFICATE_FILE:
      g_free (self->tls_certificate_file);
      self->tls_certificate_file = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_TLS_KEY_FILE:
      g_free (self->tls_key_file);
      self->tls_key_file = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_TLS_VALIDATION_FLAGS:
      self->tls_validation_flags = g_value_get_flags (value);
      break;
    case REDIS_OPTIONS_PROP_CONNECT_TIMEOUT:
      self->connect_timeout_ms = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_COMMAND_TIMEOUT:
      self->command_timeout_ms = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_STALL_TIMEOUT:
      self->stall_timeout_ms = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_HEALTH_CHECK_INTERVAL:
      self->health_check_ms = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_MAX_REPLY_BYTES:
      self->max_reply_bytes = g_value_get_uint64 (value);
      break;
    case REDIS_OPTIONS_PROP_MAX_ELEMENTS:
      self->max_elements = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_MAX_LINE_LENGTH:
      self->max_line_length = g_value_get_uint (value);
      break;
    default:
      g_assert_not_reached ();
    }
}

void
redis_options_get_property (const RedisOptions *self,
                            guint               rel_id,
                            GValue             *value)
{
  switch (rel_id)
    {
    case REDIS_OPTIONS_PROP_HOST:
      g_value_set_string (value, self->host);
      break;
    case REDIS_OPTIONS_PROP_PORT:
      g_value_set_uint (value, self->port);
      break;
    case REDIS_OPTIONS_PROP_SOCKET_PATH:
      g_value_set_string (value, self->socket_path);
      break;
    case REDIS_OPTIONS_PROP_DATABASE:
      g_value_set_uint (value, self->database);
      break;
    case REDIS_OPTIONS_PROP_USERNAME:
      g_value_set_string (value, self->username);
      break;
    case REDIS_OPTIONS_PROP_CLIENT_NAME:
      g_value_set_string (value, self->client_name);
      break;
    case REDIS_OPTIONS_PROP_TLS:
      g_value_set_boolean (value, self->tls);
      break;
    case REDIS_OPTIONS_PROP_TLS_CA_FILE:
      g_value_set_string (value, self->tls_ca_file);
      break;
    case REDIS_OPTIONS_PROP_TLS_CERTIFICATE_FILE:
      g_value_set_string (value, self->tls_certificate_file);
      break;
    case REDIS_OPTIONS_PROP_TLS_KEY_FILE:
      g_value_set_string (value, self->tls_key_file);
      break;
    case REDIS_OPTIONS_PROP_TLS_VALIDATION_FLAGS:
      g_value_set_flags (value, self->tls_validation_flags);
      break;
    case REDIS_OPTIONS_PROP_CONNECT_TIMEOUT:
      g_value_set_uint (value, self->connect_timeout_ms);
      break;
    case REDIS_OPTIONS_PROP_COMMAND_TIMEOUT:
      g_value_set_uint (value, self->command_timeout_ms);
      break;
    case REDIS_OPTIONS_PROP_STALL_TIMEOUT:
      g_value_set_uint (value, self->stall_timeout_ms);
      break;
    case REDIS_OPTIONS_PROP_HEALTH_CHECK_INTERVAL:
      g_value_set_uint (value, self->health_check_ms);
      break;
    case REDIS_OPTIONS_PROP_MAX_REPLY_BYTES:
      g_value_set_uint64 (value, self->max_reply_bytes);
      break;
    case REDIS_OPTIONS_PROP_MAX_ELEMENTS:
      g_value_set_uint (value, self->max_elements);
      break;
    case REDIS_OPTIONS_PROP_MAX_LINE_LENGTH:
      g_value_set_uint (value, self->max_line_length);
      break;
    case REDIS_OPTIONS_PROP_PASSWORD:     /* write-only */
    default:
      g_assert_not_reached ();
    }
}

gboolean
redis_options_parse_duration_ms (const char *text,
                                 guint      *out_ms)
{
  char *end = NULL;
  double value;
  double factor = 1.0;

  if (text == NULL || *text == '\0' || g_ascii_isspace (*text))
    return FALSE;

  value = g_ascii_strtod (text, &end);
  if (end == text || value < 0)
    return FALSE;

  if (g_str_equal (end, "") || g_str_equal (end, "ms"))
    factor = 1.0;
  else if (g_str_equal (end, "s"))
    factor = 1000.0;
  else
    return FALSE;

  value *= factor;
  if (value > G_MAXUINT)
    return FALSE;
  *out_ms = (guint) value;
  return TRUE;
}

static gboolean
parse_uint (const char *text,
            guint64     max,
            guint64    *out)
{
  return g_ascii_string_to_unsigned (text, 10, 0, max, out, NULL);
}

static gboolean
parse_bool (const char *text,
            gboolean   *out)
{
  if (g_ascii_strcasecmp (text, "1") == 0 || g_ascii_strcasecmp (text, "true") == 0 ||
      g_ascii_strcasecmp (text, "yes") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (text, "0") == 0 || g_ascii_strcasecmp (text, "false") == 0 ||
           g_ascii_strcasecmp (text, "no") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

static gboolean
invalid (GError     **error,
         const char  *format,
         ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError     **error,
         const char  *format,
         ...)
{
  va_list args;
  char *msg;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
               "Invalid Redis URI: %s", msg);
  g_free (msg);
  return FALSE;
}

static gboolean
apply_query_param (RedisOptions           *self,
                   const char             *key,
                   const char             *value,
                   RedisOptionsExtraFunc   extra,
                   gpointer                user_data,
                   GError                **error)
{
  guint64 n;
  guint ms;

  if (g_str_equal (key, "db") || g_str_equal (key, "database"))
    {
      if (!parse_uint (value, G_MAXINT, &n))
        return invalid (error, "“%s” is not a database number", value);
      self->database = n;
    }
  else if (g_str_equal (key, "client_name"))
    {
      g_free (self->client_name);
      self->client_name = g_strdup (value);
    }
  else if (g_str_equal (key, "stall_timeout") || g_str_equal (key, "health_check_interval"))
    {
      if (!redis_options_parse_duration_ms (value, &ms))
        return invalid (error, "%s=“%s” is not a duration (use 500, 500ms or 5s)", key, value);
      if (key[0] == 's')
        self->stall_timeout_ms = ms;
      else
        self->health_check_ms = ms;
    }
  else if (g_str_equal (key, "connect_timeout") || g_str_equal (key, "command_timeout"))
    {
      if (!redis_options_parse_duration_ms (value, &ms))
        return invalid (error, "%s=“%s” is not a duration (use 500, 500ms or 5s)", key, value);
      if (key[1] == 'o' && key[2] == 'n' && key[3] == 'n')
        {
          if (ms == 0)
            return invalid (error, "connect_timeout must be positive");
          self->connect_timeout_ms = ms;
        }
      else
        self->command_timeout_ms = ms;
    }
  else if (g_str_equal (key, "tls_ca_file"))
    {
      g_free (self->tls_ca_file);
      self->tls_ca_file = g_strdup (value);
    }
  else if (g_str_equal (key, "tls_certificate_file"))
    {
      g_free (self->tls_certificate_file);
      self->tls_certificate_file = g_strdup (value);
    }
  else if (g_str_equal (key, "tls_key_file"))
    {
      g_free (self->tls_key_file);
      self->tls_key_file = g_strdup (value);
    }
  else if (g_str_equal (key, "tls_insecure"))
    {
      gboolean insecure;

      if (!parse_bool (value, &insecure))
        return invalid (error, "tls_insecure=“%s” is not a boolean", value);
      self->tls_validation_flags = insecure ? 0 : G_TLS_CERTIFICATE_VALIDATE_ALL;
    }
  else if (g_str_equal (key, "max_reply_bytes"))
    {
      if (!parse_uint (value, G_MAXUINT64 / 4, &n) || n < 1024)
        return invalid (error, "max_reply_bytes=“%s” is not a size of at least 1024", value);
      self->max_reply_bytes = n;
    }
  else if (g_str_equal (key, "max_elements"))
    {
      if (!parse_uint (value, G_MAXINT, &n) || n < 1)
        return invalid (error, "max_elements=“%s” is not a positive count", value);
      self->max_elements = n;
    }
  else if (g_str_equal (key, "max_line_length"))
    {
      if (!parse_uint (value, G_MAXINT, &n) || n < 64)
        return invalid (error, "max_line_length=“%s” is not a size of at least 64", value);
      self->max_line_length = n;
    }
  else if (extra != NULL)
    {
      GError *local_error = NULL;

      if (!extra (key, value, user_data, &local_error))
        {
          if (local_error == NULL)
            return invalid (error, "unknown parameter “%s”", key);
          g_propagate_error (error, local_error);
          return FALSE;
        }
    }
  else
    return invalid (error, "unknown parameter “%s”", key);

  return TRUE;
}

gboolean
redis_options_parse_uri (RedisOptions           *self,
                         const char             *uri,
                         RedisOptionsExtraFunc   extra,
                         gpointer                user_data,
                         GError                **error)
{
  g_autoptr(GUri) parsed = NULL;
  g_autoptr(GHashTable) params = NULL;
  g_autoptr(GError) parse_error = NULL;
  const char *scheme;
  const char *path;
  const char *query;
  GHashTableIter iter;
  gpointer key, value;

  g_return_val_if_fail (uri != NULL, FALSE);

  /* GLib's messages name the part that failed, never the URI itself, so
   * they are safe to pass on; the URI (which may hold a password) is never
   * quoted. */
  parsed = g_uri_parse (uri, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_QUERY, &parse_error);
  if (parsed == NULL)
    return invalid (error, "%s", parse_error->message);

  scheme = g_uri_get_scheme (parsed);
  if (g_ascii_strcasecmp (scheme, "unix") == 0)
    {
      path = g_uri_get_path (parsed);
      if (path == NULL || path[0] != '/')
        return invalid (error, "a unix:// URI needs an absolute socket path");
      g_free (self->socket_path);
      self->socket_path = g_strdup (path);
      self->tls = FALSE;
    }
  else if (g_ascii_strcasecmp (scheme, "redis") == 0 || g_ascii_strcasecmp (scheme, "rediss") == 0)
    {
      const char *host = g_uri_get_host (parsed);
      int port = g_uri_get_port (parsed);

      self->tls = g_ascii_strcasecmp (scheme, "rediss") == 0;
      g_clear_pointer (&self->socket_path, g_free);
      if (host != NULL && host[0] != '\0')
        {
          g_free (self->host);
          self->host = g_strdup (host);
        }
      if (port == 0)
        return invalid (error, "port 0 is not valid");
      if (port > 0)
        self->port = port;

      path = g_uri_get_path (parsed);
      if (path != NULL && path[0] == '/' && path[1] != '\0')
        {
          guint64 db;

          if (!parse_uint (path + 1, G_MAXINT, &db))
            return invalid (error, "the path must be a database number, not “%s”", path + 1);
          self->database = db;
        }
      else if (path != NULL && path[0] != '\0' && !g_str_equal (path, "/"))
        return invalid (error, "the path must be a database number");
    }
  else
    return invalid (error, "unsupported scheme “%s” (use redis, rediss or unix)", scheme);

  if (g_uri_get_user (parsed) != NULL && g_uri_get_user (parsed)[0] != '\0')
    {
      g_free (self->username);
      self->username = g_strdup (g_uri_get_user (parsed));
    }
  if (g_uri_get_password (parsed) != NULL)
    {
      clear_secret (&self->password);
      self->password = g_strdup (g_uri_get_password (parsed));
    }

  query = g_uri_get_query (parsed);
  if (query != NULL && query[0] != '\0')
    {
      params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, &parse_error);
      if (params == NULL)
        return invalid (error, "bad query: %s", parse_error->message);

      g_hash_table_iter_init (&iter, params);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (!apply_query_param (self, key, value, extra, user_data, error))
          return FALSE;
    }

  return TRUE;
}

char *
redis_options_to_uri (const RedisOptions *self)
{
  g_autofree char *user = NULL;
  GString *out = g_string_new (NULL);
  char sep = '?';

  if (self->username != NULL)
    user = g_uri_escape_string (self->username, NULL, FALSE);

  if (self->socket_path != NULL)
    {
      g_autofree char *path = g_uri_escape_string (self->socket_path, "/", FALSE);

      g_string_append_printf (out, "unix://%s%s%s", user ? user : "", user ? "@" : "", path);
      g_string_append_printf (out, "?db=%u", self->database);
      sep = '&';
    }
  else
    {
      gboolean ipv6 = strchr (self->host, ':') != NULL;
      g_autofree char *host = g_uri_escape_string (self->host, ipv6 ? ":" : NULL, FALSE);

      g_string_append_printf (out, "%s://%s%s%s%s%s:%u/%u",
                              self->tls ? "rediss" : "redis",
                              user ? user : "", user ? "@" : "",
                              ipv6 ? "[" : "", host, ipv6 ? "]" : "",
                              self->port, self->database);
    }

  if (self->client_name != NULL)
    {
      g_autofree char *name = g_uri_escape_string (self->client_name, NULL, FALSE);
      g_string_append_printf (out, "%cclient_name=%s", sep, name);
      sep = '&';
    }
  g_string_append_printf (out, "%cconnect_timeout=%ums&command_timeout=%ums",
                          sep, self->connect_timeout_ms, self->command_timeout_ms);
  return g_string_free (out, FALSE);
}

char *
redis_options_describe_address (const RedisOptions *self)
{
  if (self->socket_path != NULL)
    return g_strdup (self->socket_path);
  if (strchr (self->host, ':') != NULL)
    return g_strdup_printf ("[%s]:%u", self->host, self->port);
  return g_strdup_printf ("%s:%u", self->host, self->port);
}
