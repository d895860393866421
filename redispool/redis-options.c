/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>
#include <stdlib.h>

#include "redis-enums.h"
#include "redis-error.h"
#include "redis-options-private.h"
#include "redis-reader-private.h"
#include "redis-sentinel-private.h"

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
  self->max_depth = REDIS_READER_DEFAULT_MAX_DEPTH;
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
  copy->tls_server_name = g_strdup (self->tls_server_name);
  copy->sentinels = g_strdupv (self->sentinels);
  copy->master_name = g_strdup (self->master_name);
  copy->sentinel_username = g_strdup (self->sentinel_username);
  copy->sentinel_password = g_strdup (self->sentinel_password);
  copy->sentinel = self->sentinel != NULL ? redis_sentinel_ref (self->sentinel) : NULL;
  return copy;
}

void
redis_options_clear_secret (char **secret)
{
  if (*secret != NULL)
    {
      /* Do not leave the password in freed heap memory (explicit_bzero(),
       * unlike memset(), is not dropped as a dead store before the free). */
      explicit_bzero (*secret, strlen (*secret));
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
  redis_options_clear_secret (&self->password);
  g_free (self->client_name);
  g_free (self->tls_ca_file);
  g_free (self->tls_certificate_file);
  g_free (self->tls_key_file);
  g_free (self->tls_server_name);
  g_strfreev (self->sentinels);
  g_free (self->master_name);
  g_free (self->sentinel_username);
  redis_options_clear_secret (&self->sentinel_password);
  g_clear_pointer (&self->sentinel, redis_sentinel_unref);
  g_free (self);
}

void
redis_options_set_sentinels (RedisOptions       *self,
                             const char * const *sentinels)
{
  g_strfreev (self->sentinels);
  g_clear_pointer (&self->sentinel, redis_sentinel_unref);
  self->sentinels = NULL;
  if (sentinels != NULL && sentinels[0] != NULL)
    {
      self->sentinels = g_strdupv ((char **) sentinels);
      self->sentinel = redis_sentinel_new (sentinels);
    }
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
  pspecs[REDIS_OPTIONS_PROP_MAX_DEPTH] =
    g_param_spec_uint ("max-depth", NULL, NULL, 1, REDIS_READER_MAX_DEPTH_LIMIT,
                       REDIS_READER_DEFAULT_MAX_DEPTH, rw);
  pspecs[REDIS_OPTIONS_PROP_SENTINELS] =
    g_param_spec_boxed ("sentinels", NULL, NULL, G_TYPE_STRV, rw);
  pspecs[REDIS_OPTIONS_PROP_MASTER_NAME] =
    g_param_spec_string ("master-name", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_SENTINEL_USERNAME] =
    g_param_spec_string ("sentinel-username", NULL, NULL, NULL, rw);
  pspecs[REDIS_OPTIONS_PROP_SENTINEL_PASSWORD] =
    g_param_spec_string ("sentinel-password", NULL, NULL, NULL,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  pspecs[REDIS_OPTIONS_PROP_ROLE] =
    g_param_spec_enum ("role", NULL, NULL, REDIS_TYPE_SERVER_ROLE, REDIS_SERVER_ROLE_PRIMARY, rw);
  pspecs[REDIS_OPTIONS_PROP_TLS_SERVER_NAME] =
    g_param_spec_string ("tls-server-name", NULL, NULL, NULL, rw);

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
      redis_options_clear_secret (&self->password);
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
    case REDIS_OPTIONS_PROP_MAX_DEPTH:
      self->max_depth = g_value_get_uint (value);
      break;
    case REDIS_OPTIONS_PROP_SENTINELS:
      redis_options_set_sentinels (self, g_value_get_boxed (value));
      break;
    case REDIS_OPTIONS_PROP_MASTER_NAME:
      g_free (self->master_name);
      self->master_name = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_SENTINEL_USERNAME:
      g_free (self->sentinel_username);
      self->sentinel_username = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_SENTINEL_PASSWORD:
      redis_options_clear_secret (&self->sentinel_password);
      self->sentinel_password = g_value_dup_string (value);
      break;
    case REDIS_OPTIONS_PROP_ROLE:
      self->role = g_value_get_enum (value);
      break;
    case REDIS_OPTIONS_PROP_TLS_SERVER_NAME:
      {
        const char *name = g_value_get_string (value);

        /* "" is no name, as NULL: the host connected to is checked. */
        g_free (self->tls_server_name);
        self->tls_server_name = name != NULL && name[0] != '\0' ? g_strdup (name) : NULL;
      }
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
    case REDIS_OPTIONS_PROP_MAX_DEPTH:
      g_value_set_uint (value, self->max_depth);
      break;
    case REDIS_OPTIONS_PROP_SENTINELS:
      g_value_set_boxed (value, self->sentinels);
      break;
    case REDIS_OPTIONS_PROP_MASTER_NAME:
      g_value_set_string (value, self->master_name);
      break;
    case REDIS_OPTIONS_PROP_SENTINEL_USERNAME:
      g_value_set_string (value, self->sentinel_username);
      break;
    case REDIS_OPTIONS_PROP_ROLE:
      g_value_set_enum (value, self->role);
      break;
    case REDIS_OPTIONS_PROP_TLS_SERVER_NAME:
      g_value_set_string (value, self->tls_server_name);
      break;
    case REDIS_OPTIONS_PROP_SENTINEL_PASSWORD:   /* write-only */
    case REDIS_OPTIONS_PROP_PASSWORD:     /* write-only */
    default:
      g_assert_not_reached ();
    }
}

/* A decimal number ("500", "1.5", ".5", "5.") followed by nothing or "ms"
 * (milliseconds) or "s" (seconds). Integer arithmetic only, so there is no
 * sign, exponent, nan or inf to refuse and no float-to-integer conversion;
 * what does not fit a guint of milliseconds is refused. What is below a
 * millisecond is dropped ("1.5ms" is 1 ms), except that a value only zero
 * digits can write is 0: one with a non-zero digit that comes to 0 ms
 * ("0.3", "0.4ms", "0.0001s") is DURATION_BELOW_MS, since 0 means "none"
 * to every duration option and only an explicit zero may say so. */
typedef enum
{
  DURATION_OK,
  DURATION_INVALID,
  DURATION_BELOW_MS,
} DurationResult;

static DurationResult
parse_duration (const char *text,
                guint      *out_ms)
{
  const char *int_start, *int_end, *frac_start, *frac_end, *p;
  guint64 scale;
  guint64 ms = 0;
  gboolean nonzero = FALSE;

  if (text == NULL)
    return DURATION_INVALID;

  p = int_start = text;
  while (g_ascii_isdigit (*p))
    p++;
  int_end = frac_start = frac_end = p;
  if (*p == '.')
    {
      frac_start = ++p;
      while (g_ascii_isdigit (*p))
        p++;
      frac_end = p;
    }
  if (int_end == int_start && frac_end == frac_start)
    return DURATION_INVALID;

  if (g_str_equal (p, "") || g_str_equal (p, "ms"))
    scale = 1;
  else if (g_str_equal (p, "s"))
    scale = 1000;
  else
    return DURATION_INVALID;

  for (p = int_start; p < int_end; p++)
    {
      ms = ms * 10 + (guint64) (*p - '0');
      if (ms > G_MAXUINT)
        return DURATION_INVALID;
    }
  ms *= scale;                  /* at most G_MAXUINT * 1000: no overflow */

  for (p = frac_start; p < frac_end; p++)
    {
      nonzero |= *p != '0';
      /* Digits after the point that still count: three for seconds. */
      if (scale > 1)
        {
          scale /= 10;
          ms += (guint64) (*p - '0') * scale;
        }
    }

  if (ms > G_MAXUINT)
    return DURATION_INVALID;
  if (ms == 0 && nonzero)
    return DURATION_BELOW_MS;
  *out_ms = (guint) ms;
  return DURATION_OK;
}

gboolean
redis_options_parse_duration_ms (const char *text,
                                 guint      *out_ms)
{
  return parse_duration (text, out_ms) == DURATION_OK;
}

static gboolean
parse_uint (const char *text,
            guint64     max,
            guint64    *out)
{
  return g_ascii_string_to_unsigned (text, 10, 0, max, out, NULL);
}

gboolean
redis_options_parse_boolean (const char *text,
                             gboolean   *out)
{
  static const char * const truths[] = { "1", "true", "yes", "on" };
  static const char * const falsehoods[] = { "0", "false", "no", "off" };

  g_return_val_if_fail (out != NULL, FALSE);

  if (text == NULL)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (truths); i++)
    {
      if (g_ascii_strcasecmp (text, truths[i]) == 0)
        {
          *out = TRUE;
          return TRUE;
        }
      if (g_ascii_strcasecmp (text, falsehoods[i]) == 0)
        {
          *out = FALSE;
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
is_unreserved (char c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Whether @host is an IPv6 address, with or without a zone ("fe80::1%eth0");
 * @zone is set to what follows its '%', or NULL. */
static gboolean
is_ipv6_literal (const char  *host,
                 const char **zone)
{
  const char *pct = strchr (host, '%');
  g_autofree char *addr = g_strndup (host, pct != NULL ? (gsize) (pct - host) : strlen (host));

  *zone = pct != NULL ? pct + 1 : NULL;
  return strchr (addr, ':') != NULL && g_hostname_is_ip_address (addr);
}

/* The zone of an IPv6 literal must be a name that to_uri() can write back
 * inside the brackets (GLib does not decode it, except a leading "25"). */
static gboolean
is_valid_host (const char *host)
{
  const char *zone;

  if (!is_ipv6_literal (host, &zone) || zone == NULL)
    return TRUE;
  if (*zone == '\0')
    return FALSE;
  for (; *zone != '\0'; zone++)
    if (!is_unreserved (*zone))
      return FALSE;
  return TRUE;
}

/* @text as an error message may show it: printable ASCII as is, other bytes
 * (and '\') as \xNN, at most 64 bytes of it. */
static char *
printable (const char *text)
{
  GString *out = g_string_new (NULL);
  gsize i;

  for (i = 0; text[i] != '\0' && i < 64; i++)
    {
      guchar c = text[i];

      if (c >= 0x20 && c < 0x7f && c != '\\')
        g_string_append_c (out, c);
      else
        g_string_append_printf (out, "\\x%02x", c);
    }
  if (text[i] != '\0')
    g_string_append (out, "…");
  return g_string_free (out, FALSE);
}

/* Percent-decodes @len bytes of @text into a new string (*@out), or returns
 * FALSE for a bad escape, or a result that is not UTF-8 or holds a NUL: what
 * GLib refuses in a URI. For the userinfo, which GLib never gets (see
 * redis_options_parse_uri()); a result refused is wiped before it is freed. */
static gboolean
decode_userinfo_part (const char  *text,
                      gsize        len,
                      char       **out)
{
  char *decoded = g_malloc (len + 1);
  gsize n = 0;

  for (gsize i = 0; i < len; i++)
    {
      if (text[i] != '%')
        decoded[n++] = text[i];
      else if (i + 2 < len && g_ascii_isxdigit (text[i + 1]) && g_ascii_isxdigit (text[i + 2]))
        {
          decoded[n++] = (char) ((g_ascii_xdigit_value (text[i + 1]) << 4) |
                                 g_ascii_xdigit_value (text[i + 2]));
          i += 2;
        }
      else
        goto bad;
    }
  decoded[n] = '\0';
  if (!g_utf8_validate (decoded, n, NULL))
    goto bad;

  *out = decoded;
  return TRUE;

bad:
  explicit_bzero (decoded, len + 1);
  g_free (decoded);
  return FALSE;
}

/* Sets the user name and the password from the raw userinfo of a URI,
 * @len bytes at @userinfo: "user", "user:password" or ":password". */
static gboolean
apply_userinfo (RedisOptions *self,
                const char   *userinfo,
                gsize         len)
{
  const char *colon = memchr (userinfo, ':', len);
  gsize user_len = colon != NULL ? (gsize) (colon - userinfo) : len;
  char *user = NULL;
  char *password = NULL;

  if (!decode_userinfo_part (userinfo, user_len, &user))
    return FALSE;
  if (colon != NULL && !decode_userinfo_part (colon + 1, len - user_len - 1, &password))
    {
      g_free (user);
      return FALSE;
    }

  if (user[0] != '\0')
    {
      g_free (self->username);
      self->username = user;
    }
  else
    g_free (user);
  if (password != NULL)
    {
      redis_options_clear_secret (&self->password);
      self->password = password;
    }
  return TRUE;
}

/* g_uri_unref(), wiping the userinfo and the password first. The GUri never
 * has any (the userinfo is taken out before GLib parses the URI): a safety
 * net, should that change. */
typedef GUri WipedUri;

static void
wiped_uri_unref (WipedUri *uri)
{
  char *userinfo = (char *) g_uri_get_userinfo (uri);
  char *password = (char *) g_uri_get_password (uri);

  if (userinfo != NULL)
    explicit_bzero (userinfo, strlen (userinfo));
  if (password != NULL)
    explicit_bzero (password, strlen (password));
  g_uri_unref (uri);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WipedUri, wiped_uri_unref)

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

/* "key=“value” is …", or "key is …" when the URI's text may not be quoted
 * (@key is one the parser knows: its own text). */
static gboolean
invalid_value (GError     **error,
               gboolean     quote,
               const char  *key,
               const char  *value,
               const char  *what)
{
  g_autofree char *shown = NULL;

  if (!quote)
    return invalid (error, "%s %s", key, what);
  shown = printable (value);
  return invalid (error, "%s=“%s” %s", key, shown, what);
}

/* ---- query parameters --------------------------------------------------- */

/* @max of @param, or @type_max if it has none. */
static guint64
param_max (const RedisOptionsParam *param,
           guint64                  type_max)
{
  return param->max != 0 ? MIN (param->max, type_max) : type_max;
}

/* A decimal number (no sign, space or base prefix) from @param->min to
 * @max, into *@out. */
static RedisOptionsParamResult
read_number (const RedisOptionsParam *param,
             const char              *value,
             guint64                  max,
             guint64                 *out)
{
  if (!parse_uint (value, max, out))
    return REDIS_OPTIONS_PARAM_INVALID;
  if (*out < param->min)
    return REDIS_OPTIONS_PARAM_TOO_SMALL;
  return REDIS_OPTIONS_PARAM_OK;
}

RedisOptionsParamResult
redis_options_param_uint (const RedisOptionsParam *param,
                          const char              *value,
                          gpointer                 field)
{
  guint64 n;
  RedisOptionsParamResult result = read_number (param, value, param_max (param, G_MAXUINT), &n);

  if (result == REDIS_OPTIONS_PARAM_OK)
    *(guint *) field = (guint) n;
  return result;
}

RedisOptionsParamResult
redis_options_param_uint64 (const RedisOptionsParam *param,
                            const char              *value,
                            gpointer                 field)
{
  guint64 n;
  RedisOptionsParamResult result = read_number (param, value, param_max (param, G_MAXUINT64), &n);

  if (result == REDIS_OPTIONS_PARAM_OK)
    *(guint64 *) field = n;
  return result;
}

RedisOptionsParamResult
redis_options_param_duration (const RedisOptionsParam *param,
                              const char              *value,
                              gpointer                 field)
{
  guint ms;

  switch (parse_duration (value, &ms))
    {
    case DURATION_OK:
      break;
    case DURATION_BELOW_MS:
      return REDIS_OPTIONS_PARAM_BELOW_MS;
    case DURATION_INVALID:
    default:
      return REDIS_OPTIONS_PARAM_INVALID;
    }
  if (ms > param_max (param, G_MAXUINT))
    return REDIS_OPTIONS_PARAM_INVALID;
  if (ms < param->min)
    return REDIS_OPTIONS_PARAM_TOO_SMALL;
  *(guint *) field = ms;
  return REDIS_OPTIONS_PARAM_OK;
}

RedisOptionsParamResult
redis_options_param_boolean (const RedisOptionsParam *param,
                             const char              *value,
                             gpointer                 field)
{
  return redis_options_parse_boolean (value, field) ? REDIS_OPTIONS_PARAM_OK
                                                    : REDIS_OPTIONS_PARAM_INVALID;
}

RedisOptionsParamResult
redis_options_param_string (const RedisOptionsParam *param,
                            const char              *value,
                            gpointer                 field)
{
  char **text = field;

  g_free (*text);
  *text = g_strdup (value);
  return REDIS_OPTIONS_PARAM_OK;
}

RedisOptionsParamResult
redis_options_param_choice (const RedisOptionsParam *param,
                            const char              *value,
                            gpointer                 field)
{
  g_assert (param->choices != NULL);

  for (const RedisOptionsChoice *choice = param->choices; choice->name != NULL; choice++)
    if (g_str_equal (value, choice->name))
      {
        *(int *) field = choice->value;
        return REDIS_OPTIONS_PARAM_OK;
      }
  return REDIS_OPTIONS_PARAM_INVALID;
}

/* tls_insecure: a boolean that clears the validation flags, or sets them all. */
static RedisOptionsParamResult
param_tls_insecure (const RedisOptionsParam *param,
                    const char              *value,
                    gpointer                 field)
{
  gboolean insecure;

  if (!redis_options_parse_boolean (value, &insecure))
    return REDIS_OPTIONS_PARAM_INVALID;
  *(GTlsCertificateFlags *) field = insecure ? 0 : G_TLS_CERTIFICATE_VALIDATE_ALL;
  return REDIS_OPTIONS_PARAM_OK;
}

/* tls_server_name: a host name or IP address, as the host of a URI may be
 * (an IPv6 address without brackets). */
static RedisOptionsParamResult
param_server_name (const RedisOptionsParam *param,
                   const char              *value,
                   gpointer                 field)
{
  g_autofree char *ascii = NULL;

  if (!g_utf8_validate (value, -1, NULL))
    return REDIS_OPTIONS_PARAM_INVALID;
  if (!g_hostname_is_ip_address (value))
    {
      ascii = g_hostname_to_ascii (value);   /* an IDN name as it is checked */
      if (ascii == NULL || ascii[0] == '\0')
        return REDIS_OPTIONS_PARAM_INVALID;
      for (const char *p = ascii; *p != '\0'; p++)
        if (!g_ascii_isalnum (*p) && strchr ("-._", *p) == NULL)
          return REDIS_OPTIONS_PARAM_INVALID;
    }
  g_free (*(char **) field);
  *(char **) field = g_strdup (value);
  return REDIS_OPTIONS_PARAM_OK;
}

/* sentinel_password: wiped when replaced, like the password. */
static RedisOptionsParamResult
param_secret (const RedisOptionsParam *param,
              const char              *value,
              gpointer                 field)
{
  redis_options_clear_secret (field);
  *(char **) field = g_strdup (value);
  return REDIS_OPTIONS_PARAM_OK;
}

static const RedisOptionsChoice role_choices[] = {
  { "primary", REDIS_SERVER_ROLE_PRIMARY },
  { "replica", REDIS_SERVER_ROLE_REPLICA },
  { NULL }
};

#define OPTION(field) G_STRUCT_OFFSET (RedisOptions, field)
#define NOT_A_DURATION "is not a duration (use 500, 500ms or 5s)"

/* The options' own query parameters; redis_options_to_uri() writes them
 * back (db for a unix:// URI, the path otherwise). */
static const RedisOptionsParam options_params[] = {
  { .name = "db", .parse = redis_options_param_uint, .offset = OPTION (database),
    .max = G_MAXINT, .what = "is not a database number" },
  { .name = "database", .parse = redis_options_param_uint, .offset = OPTION (database),
    .max = G_MAXINT, .what = "is not a database number" },
  { .name = "client_name", .parse = redis_options_param_string, .offset = OPTION (client_name) },
  { .name = "connect_timeout", .parse = redis_options_param_duration,
    .offset = OPTION (connect_timeout_ms), .min = 1, .what = NOT_A_DURATION,
    .too_small = "must be positive" },
  { .name = "command_timeout", .parse = redis_options_param_duration,
    .offset = OPTION (command_timeout_ms), .what = NOT_A_DURATION },
  { .name = "stall_timeout", .parse = redis_options_param_duration,
    .offset = OPTION (stall_timeout_ms), .what = NOT_A_DURATION },
  { .name = "health_check_interval", .parse = redis_options_param_duration,
    .offset = OPTION (health_check_ms), .what = NOT_A_DURATION },
  { .name = "tls_ca_file", .parse = redis_options_param_string, .offset = OPTION (tls_ca_file) },
  { .name = "tls_certificate_file", .parse = redis_options_param_string,
    .offset = OPTION (tls_certificate_file) },
  { .name = "tls_key_file", .parse = redis_options_param_string, .offset = OPTION (tls_key_file) },
  { .name = "tls_insecure", .parse = param_tls_insecure, .offset = OPTION (tls_validation_flags),
    .what = "is not a boolean (use true or false)" },
  { .name = "tls_server_name", .parse = param_server_name, .offset = OPTION (tls_server_name),
    .what = "is not a host name" },
  { .name = "max_reply_bytes", .parse = redis_options_param_uint64,
    .offset = OPTION (max_reply_bytes), .min = 1024, .max = G_MAXUINT64 / 4,
    .what = "is not a size of at least 1024" },
  { .name = "max_elements", .parse = redis_options_param_uint, .offset = OPTION (max_elements),
    .min = 1, .max = G_MAXINT, .what = "is not a positive count" },
  { .name = "max_line_length", .parse = redis_options_param_uint,
    .offset = OPTION (max_line_length), .min = 64, .max = G_MAXINT,
    .what = "is not a size of at least 64" },
  { .name = "max_depth", .parse = redis_options_param_uint, .offset = OPTION (max_depth),
    .min = 1, .max = REDIS_READER_MAX_DEPTH_LIMIT,
    .what = "is not a depth from 1 to " G_STRINGIFY (REDIS_READER_MAX_DEPTH_LIMIT) },
  { .name = "sentinel_username", .parse = redis_options_param_string,
    .offset = OPTION (sentinel_username) },
  { .name = "sentinel_password", .parse = param_secret, .offset = OPTION (sentinel_password) },
  { .name = "role", .parse = redis_options_param_choice, .offset = OPTION (role),
    .choices = role_choices, .what = "is not a role (use primary or replica)" },
  { NULL }
};

#undef OPTION

const RedisOptionsParam *
redis_options_find_param (const RedisOptionsParam *params,
                          const char              *name)
{
  g_return_val_if_fail (name != NULL, NULL);

  for (const RedisOptionsParam *param = params != NULL ? params : options_params;
       param->name != NULL; param++)
    if (g_str_equal (param->name, name))
      return param;
  return NULL;
}

/* Applies @value to the entry @param, whose field is in @base; the message
 * names @param (our own text), and quotes @value only if @quote. */
static gboolean
apply_param (const RedisOptionsParam  *param,
             gpointer                  base,
             const char               *value,
             gboolean                  quote,
             GError                  **error)
{
  switch (param->parse (param, value, (char *) base + param->offset))
    {
    case REDIS_OPTIONS_PARAM_OK:
      return TRUE;
    case REDIS_OPTIONS_PARAM_BELOW_MS:
      if (param->min > 0)
        return invalid_value (error, quote, param->name, value,
                              "is below a millisecond: durations are whole "
                              "milliseconds (500, 500ms, 1.5s)");
      return invalid_value (error, quote, param->name, value,
                            "is below a millisecond, which would mean none: "
                            "durations are whole milliseconds (500, 500ms, 1.5s), "
                            "and only 0 turns this off");
    case REDIS_OPTIONS_PARAM_TOO_SMALL:
      if (param->too_small != NULL)
        return invalid (error, "%s %s", param->name, param->too_small);
      G_GNUC_FALLTHROUGH;
    case REDIS_OPTIONS_PARAM_INVALID:
    default:
      return invalid_value (error, quote, param->name, value,
                            param->what != NULL ? param->what : "is not valid");
    }
}

/* Where the query parameters of a URI go: the options' own, then @params
 * (fields in @target), then @extra (the older way), else unknown. */
typedef struct
{
  const RedisOptionsParam *params;
  gpointer                 target;
  RedisOptionsExtraFunc    extra;
  gpointer                 user_data;
} ParamHandlers;

/* @quote: the message may show @key and @value (see redis_options_parse_uri()). */
static gboolean
apply_query_param (RedisOptions         *self,
                   const char           *key,
                   const char           *value,
                   gboolean              quote,
                   const ParamHandlers  *handlers,
                   GError              **error)
{
  const RedisOptionsParam *param;

  if ((param = redis_options_find_param (options_params, key)) != NULL)
    return apply_param (param, self, value, quote, error);
  if (handlers->params != NULL &&
      (param = redis_options_find_param (handlers->params, key)) != NULL)
    return apply_param (param, handlers->target, value, quote, error);

  if (handlers->extra != NULL)
    {
      GError *local_error = NULL;

      if (handlers->extra (key, value, handlers->user_data, &local_error))
        return TRUE;
      if (local_error != NULL && quote)
        {
          g_propagate_error (error, local_error);
          return FALSE;
        }
      if (local_error != NULL)
        {
          /* The owner's message may quote the value. */
          g_error_free (local_error);
          return invalid (error, "a query parameter is not valid");
        }
    }

  if (quote)
    {
      g_autofree char *shown = printable (key);

      return invalid (error, "unknown parameter “%s”", shown);
    }
  return invalid (error, "unknown parameter");
}

/* GLib's own message quotes the text it failed to read (as a port, a host…),
 * which can be part of a password: it is never passed on. */
static gboolean
invalid_syntax (GError       **error,
                const GError  *parse_error,
                gboolean       stray_at)
{
  if (parse_error->domain == G_URI_ERROR)
    switch (parse_error->code)
      {
      case G_URI_ERROR_BAD_HOST:
      case G_URI_ERROR_BAD_PORT:
        if (stray_at)
          return invalid (error, "the authority part cannot be parsed");
        if (parse_error->code == G_URI_ERROR_BAD_PORT)
          return invalid (error, "the port is not a number from 1 to 65535");
        return invalid (error, "the host is not valid");
      case G_URI_ERROR_BAD_PATH:
        return invalid (error, "the path has an invalid percent-encoding or is not UTF-8");
      case G_URI_ERROR_BAD_QUERY:
        return invalid (error, "the query cannot be parsed "
                               "(use key=value pairs joined by '&', percent-encoded)");
      case G_URI_ERROR_BAD_FRAGMENT:
        return invalid (error, "the fragment has an invalid percent-encoding or is not UTF-8");
      default:
        break;
      }
  return invalid (error, "it cannot be parsed");
}

/* Where the scheme of @uri ends (its ':'), or NULL if it has none: GLib's
 * rule, ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":". */
static const char *
find_scheme_end (const char *uri)
{
  const char *p = uri;

  if (!g_ascii_isalpha (*p))
    return NULL;
  while (g_ascii_isalnum (*p) || *p == '+' || *p == '-' || *p == '.')
    p++;
  return *p == ':' ? p : NULL;
}

/* Whether @uri's scheme (up to @scheme_end, from find_scheme_end()) is
 * @scheme, in any case. */
static gboolean
scheme_is (const char *uri,
           const char *scheme_end,
           const char *scheme)
{
  return scheme_end != NULL && (gsize) (scheme_end - uri) == strlen (scheme) &&
         g_ascii_strncasecmp (uri, scheme, scheme_end - uri) == 0;
}

/* The authority of @uri: what follows "scheme://" up to the first '/', '?'
 * or '#', as GLib reads it; FALSE if there is none. */
static gboolean
find_authority (const char  *uri,
                const char **authority,
                const char **authority_end)
{
  const char *scheme_end = find_scheme_end (uri);

  if (scheme_end == NULL || !g_str_has_prefix (scheme_end, "://"))
    return FALSE;
  *authority = scheme_end + 3;
  *authority_end = *authority + strcspn (*authority, "/?#");
  return TRUE;
}

/* A string that may hold a secret: wiped when freed. */
typedef char SecretString;

static void
secret_string_free (SecretString *secret)
{
  redis_options_clear_secret (&secret);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SecretString, secret_string_free)

/* Appends @rest (what follows the authority: path, query, fragment) to
 * @out without its sentinel_password parameter, which it decodes into
 * *@secret, so that GLib never has it. FALSE if its encoding is invalid. */
static gboolean
append_without_sentinel_password (GString     *out,
                                  const char  *rest,
                                  char       **secret)
{
  const char *query = strchr (rest, '?');
  const char *hash = strchr (rest, '#');
  const char *end, *p;
  gboolean first = TRUE;

  if (query == NULL || (hash != NULL && hash < query))
    {
      g_string_append (out, rest);
      return TRUE;
    }
  g_string_append_len (out, rest, query + 1 - rest);
  end = query + 1 + strcspn (query + 1, "#");
  for (p = query + 1; p < end; )
    {
      const char *amp = memchr (p, '&', end - p);
      const char *seg_end = amp != NULL ? amp : end;

      if ((gsize) (seg_end - p) >= strlen ("sentinel_password=") &&
          memcmp (p, "sentinel_password=", strlen ("sentinel_password=")) == 0)
        {
          redis_options_clear_secret (secret);
          *secret = g_uri_unescape_segment (p + strlen ("sentinel_password="), seg_end, NULL);
          if (*secret == NULL || !g_utf8_validate (*secret, -1, NULL))
            return FALSE;
        }
      else if (seg_end > p)
        {
          if (!first)
            g_string_append_c (out, '&');
          g_string_append_len (out, p, seg_end - p);
          first = FALSE;
        }
      p = amp != NULL ? amp + 1 : end;
    }
  g_string_append (out, end);
  return TRUE;
}

static gboolean
parse_uri (RedisOptions         *self,
           const char           *uri,
           gboolean              quote,
           gboolean              stray_at,
           const ParamHandlers  *handlers,
           GError              **error)
{
  g_autoptr(WipedUri) parsed = NULL;
  g_autoptr(GHashTable) params = NULL;
  g_autoptr(GError) parse_error = NULL;
  g_autoptr(GString) without_userinfo = NULL;
  const char *scheme, *path, *query;
  const char *authority = NULL;
  const char *authority_end = NULL;
  const char *at = NULL;
  GHashTableIter iter;
  gpointer key, value;
  g_auto(GStrv) sentinels = NULL;
  g_autoptr(SecretString) sentinel_password = NULL;
  const char *scheme_end = find_scheme_end (uri);
  gboolean sentinel_plain = scheme_is (uri, scheme_end, "redis+sentinel");
  gboolean sentinel_tls = scheme_is (uri, scheme_end, "rediss+sentinel");

  if (scheme_end == NULL)
    return invalid (error, "it must start with redis://, rediss:// or unix://");

  /* The userinfo is taken out here and decoded by us, so that GLib never
   * has the password (it would free its copies unwiped, and quote parts of
   * it in messages). It is the authority up to its last '@': an unencoded
   * '@' belongs to the password. */
  if (find_authority (uri, &authority, &authority_end))
    for (const char *p = authority; p < authority_end; p++)
      if (*p == '@')
        at = p;
  if (sentinel_plain || sentinel_tls)
    {
      /* redis+sentinel://[userinfo@]host[:port][,host[:port]…]/master[/db][?query]
       * (rediss+sentinel://…: the same over TLS, to the sentinels and to
       * the servers found): GLib cannot read a list of hosts, so it is
       * taken out here and GLib reads the rest as redis://sentinel/…. */
      const char *hosts = at != NULL ? at + 1 : authority;
      g_autofree char *list = NULL;

      if (authority == NULL || hosts == authority_end)
        return invalid (error, "a redis+sentinel:// URI needs its sentinels (host:port,host:port…)");
      list = g_strndup (hosts, authority_end - hosts);
      sentinels = g_strsplit (list, ",", -1);
      for (guint i = 0; sentinels[i] != NULL; i++)
        {
          g_autofree char *host = NULL;
          /* Percent-decoded, as the printed URI encodes them (without
           * this, each print/parse round added a level of encoding). */
          char *decoded = g_uri_unescape_string (sentinels[i], NULL);
          guint port;

          if (decoded == NULL || !g_utf8_validate (decoded, -1, NULL))
            {
              g_free (decoded);
              return invalid (error, "the sentinels must be host:port, separated by commas");
            }
          g_free (sentinels[i]);
          sentinels[i] = decoded;
          if (!redis_sentinel_parse_address (sentinels[i], &host, &port))
            return invalid (error, "the sentinels must be host:port, separated by commas");
        }
      without_userinfo = g_string_new ("redis://sentinel");
      if (!append_without_sentinel_password (without_userinfo, authority_end, &sentinel_password))
        return invalid (error, "sentinel_password has an invalid percent-encoding or is not UTF-8");
    }
  else if (at != NULL)
    {
      without_userinfo = g_string_new_len (uri, authority - uri);
      g_string_append (without_userinfo, at + 1);
    }

  /* A sentinel URI's path is kept encoded, so that the master name is
   * decoded exactly once and an encoded '/' in it does not split it. */
  parsed = g_uri_parse (without_userinfo != NULL ? without_userinfo->str : uri,
                        G_URI_FLAGS_ENCODED_QUERY |
                        (sentinels != NULL ? G_URI_FLAGS_ENCODED_PATH : G_URI_FLAGS_NONE),
                        &parse_error);
  if (parsed == NULL)
    return invalid_syntax (error, parse_error, stray_at);

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
  else if (sentinels != NULL)
    {
      g_auto(GStrv) parts = NULL;
      g_autofree char *name = NULL;
      guint64 db = 0;

      path = g_uri_get_path (parsed);
      if (path != NULL && path[0] == '/')
        parts = g_strsplit (path + 1, "/", -1);
      if (parts == NULL || parts[0] == NULL || parts[0][0] == '\0' ||
          (parts[1] != NULL && (parts[2] != NULL || !parse_uint (parts[1], G_MAXINT, &db))) ||
          (name = g_uri_unescape_string (parts[0], NULL)) == NULL ||
          !g_utf8_validate (name, -1, NULL))
        return invalid (error, "the path of a redis+sentinel:// URI must be /master-name or "
                               "/master-name/db");
      g_clear_pointer (&self->socket_path, g_free);
      self->tls = sentinel_tls;
      g_free (self->master_name);
      self->master_name = g_steal_pointer (&name);
      self->database = db;
      redis_options_set_sentinels (self, (const char * const *) sentinels);
      if (sentinel_password != NULL)
        {
          redis_options_clear_secret (&self->sentinel_password);
          self->sentinel_password = g_steal_pointer (&sentinel_password);
        }
    }
  else if (g_ascii_strcasecmp (scheme, "redis") == 0 || g_ascii_strcasecmp (scheme, "rediss") == 0)
    {
      const char *host = g_uri_get_host (parsed);
      int port = g_uri_get_port (parsed);

      if (host != NULL && !is_valid_host (host))
        return invalid (error, "the host is not valid");
      self->tls = g_ascii_strcasecmp (scheme, "rediss") == 0;
      g_clear_pointer (&self->socket_path, g_free);
      if (host != NULL && host[0] != '\0')
        {
          g_free (self->host);
          self->host = g_strdup (host);
        }
      if (port == 0)
        return invalid (error, "the port is not a number from 1 to 65535");
      if (port > 0)
        self->port = port;

      path = g_uri_get_path (parsed);
      if (path != NULL && path[0] == '/' && path[1] != '\0')
        {
          guint64 db;

          if (!parse_uint (path + 1, G_MAXINT, &db))
            {
              g_autofree char *shown = NULL;

              if (!quote)
                return invalid (error, "the path must be a database number");
              shown = printable (path + 1);
              return invalid (error, "the path must be a database number, not “%s”", shown);
            }
          self->database = db;
        }
      else if (path != NULL && path[0] != '\0' && !g_str_equal (path, "/"))
        return invalid (error, "the path must be a database number");
    }
  else if (quote && authority != NULL)
    {
      g_autofree char *shown = printable (scheme);

      return invalid (error, "unsupported scheme “%s” (use redis, rediss or unix)", shown);
    }
  else if (authority != NULL)
    return invalid (error, "unsupported scheme (use redis, rediss or unix)");
  else
    return invalid (error, "it must start with redis://, rediss:// or unix://");

  if (at != NULL && !apply_userinfo (self, authority, at - authority))
    return invalid (error, "the user name or password has an invalid percent-encoding or is not UTF-8");

  query = g_uri_get_query (parsed);
  if (query != NULL && query[0] != '\0')
    {
      params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
      if (params == NULL)
        return invalid (error, "the query cannot be parsed "
                               "(use key=value pairs joined by '&', percent-encoded)");

      g_hash_table_iter_init (&iter, params);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (!apply_query_param (self, key, value, quote, handlers, error))
          return FALSE;
    }

  return TRUE;
}

static gboolean
parse_uri_with (RedisOptions         *self,
                const char           *uri,
                const ParamHandlers  *handlers,
                GError              **error)
{
  GError *local_error = NULL;
  const char *slashes, *authority, *authority_end;
  gboolean quote;
  gboolean stray_at;

  /* Messages may quote the URI (its scheme, path, query keys and values)
   * only if it has no userinfo. A password with an unencoded '/', '?' or
   * '#' is split by the parser into the authority, the path, the query and
   * the fragment, so the userinfo can be anything between "//" and an '@':
   * if there is an '@' after "//", nothing of the URI is quoted. */
  slashes = strstr (uri, "//");
  quote = slashes == NULL || strchr (slashes, '@') == NULL;

  /* An '@' after the authority: probably a password with an unencoded '/',
   * '?' or '#' (then quote is FALSE). */
  stray_at = find_authority (uri, &authority, &authority_end) && strchr (authority_end, '@') != NULL;

  if (parse_uri (self, uri, quote, stray_at, handlers, &local_error))
    return TRUE;

  if (stray_at)
    {
      char *message = g_strconcat (local_error->message,
                                   " (a password with '/', '?', '#' or '@' must be percent-encoded)",
                                   NULL);

      g_free (local_error->message);
      local_error->message = message;
    }
  g_propagate_error (error, local_error);
  return FALSE;
}

gboolean
redis_options_parse_uri (RedisOptions           *self,
                         const char             *uri,
                         RedisOptionsExtraFunc   extra,
                         gpointer                user_data,
                         GError                **error)
{
  const ParamHandlers handlers = { .extra = extra, .user_data = user_data };

  g_return_val_if_fail (uri != NULL, FALSE);

  return parse_uri_with (self, uri, &handlers, error);
}

gboolean
redis_options_parse_uri_with_params (RedisOptions             *self,
                                     const char               *uri,
                                     const RedisOptionsParam  *params,
                                     gpointer                  target,
                                     GError                  **error)
{
  const ParamHandlers handlers = { .params = params, .target = target };

  g_return_val_if_fail (uri != NULL, FALSE);
  g_return_val_if_fail (params == NULL || target != NULL, FALSE);

#ifndef G_DISABLE_ASSERT
  /* The options' entry would win: the owner's would never be used. */
  for (const RedisOptionsParam *param = params; param != NULL && param->name != NULL; param++)
    g_assert (redis_options_find_param (options_params, param->name) == NULL);
#endif

  return parse_uri_with (self, uri, &handlers, error);
}

static void
append_param (GString    *query,
              const char *key,
              const char *value)
{
  if (value == NULL)
    return;
  g_string_append_printf (query, "&%s=", key);
  g_string_append_uri_escaped (query, value, "/", FALSE);
}

/* The URI of every option but the password, in the parser's own spelling:
 * redis_options_parse_uri() of it gives the same options. Each component is
 * percent-encoded; a host with a ':' that is not an IPv6 address too (an
 * IPv6 address goes in brackets, its zone as "%25zone"). The TLS validation
 * flags are either all (the default, not written) or none (tls_insecure):
 * a URI cannot say more, so other sets read back as all. */
char *
redis_options_to_uri (const RedisOptions *self)
{
  GString *out = g_string_new (NULL);
  g_autoptr(GString) query = g_string_new (NULL);
  gboolean has_user = self->username != NULL && self->username[0] != '\0';

  gboolean sentinel = self->sentinels != NULL && self->socket_path == NULL;

  g_string_append (out, sentinel ? (self->tls ? "rediss+sentinel" : "redis+sentinel") :
                        self->socket_path != NULL ? "unix" : self->tls ? "rediss" : "redis");
  g_string_append (out, "://");
  if (has_user)
    {
      g_string_append_uri_escaped (out, self->username, NULL, FALSE);
      g_string_append_c (out, '@');
    }

  if (sentinel)
    {
      /* redis[s]+sentinel://[user@]s1,s2/master-name/db (see parse_uri()). */
      for (guint i = 0; self->sentinels[i] != NULL; i++)
        {
          if (i > 0)
            g_string_append_c (out, ',');
          g_string_append_uri_escaped (out, self->sentinels[i], "[]:", FALSE);
        }
      g_string_append_c (out, '/');
      g_string_append_uri_escaped (out, self->master_name != NULL ? self->master_name : "", NULL, FALSE);
      g_string_append_printf (out, "/%u", self->database);
      append_param (query, "sentinel_username", self->sentinel_username);
      if (self->role == REDIS_SERVER_ROLE_REPLICA)
        g_string_append (query, "&role=replica");
    }
  else if (self->socket_path != NULL)
    {
      g_string_append_uri_escaped (out, self->socket_path, "/", FALSE);
      g_string_append_printf (query, "&db=%u", self->database);
    }
  else
    {
      const char *zone;

      if (is_ipv6_literal (self->host, &zone) && is_valid_host (self->host))
        {
          g_string_append_c (out, '[');
          g_string_append_len (out, self->host, zone != NULL ? zone - 1 - self->host : -1);
          if (zone != NULL)
            g_string_append_printf (out, "%%25%s", zone);
          g_string_append_c (out, ']');
        }
      else
        g_string_append_uri_escaped (out, self->host, NULL, FALSE);
      g_string_append_printf (out, ":%u/%u", self->port, self->database);
    }

  append_param (query, "client_name", self->client_name);
  if (self->tls_validation_flags == 0)
    g_string_append (query, "&tls_insecure=true");
  append_param (query, "tls_ca_file", self->tls_ca_file);
  append_param (query, "tls_certificate_file", self->tls_certificate_file);
  append_param (query, "tls_key_file", self->tls_key_file);
  append_param (query, "tls_server_name", self->tls_server_name);
  g_string_append_printf (query,
                          "&connect_timeout=%ums&command_timeout=%ums"
                          "&stall_timeout=%ums&health_check_interval=%ums"
                          "&max_reply_bytes=%" G_GUINT64_FORMAT
                          "&max_elements=%u&max_line_length=%u&max_depth=%u",
                          self->connect_timeout_ms, self->command_timeout_ms,
                          self->stall_timeout_ms, self->health_check_ms,
                          self->max_reply_bytes, self->max_elements, self->max_line_length,
                          self->max_depth);

  g_string_append_c (out, '?');
  g_string_append (out, query->str + 1);   /* without the first '&' */
  return g_string_free (out, FALSE);
}

char *
redis_options_describe_address (const RedisOptions *self)
{
  if (self->sentinel != NULL && self->socket_path == NULL)
    return g_strdup_printf ("the %s of “%s” (Sentinel)",
                            self->role == REDIS_SERVER_ROLE_REPLICA ? "replicas" : "primary",
                            self->master_name != NULL ? self->master_name : "");
  if (self->socket_path != NULL)
    return g_strdup (self->socket_path);
  if (strchr (self->host, ':') != NULL)
    return g_strdup_printf ("[%s]:%u", self->host, self->port);
  return g_strdup_printf ("%s:%u", self->host, self->port);
}

guint
redis_options_get_internal_timeout_ms (const RedisOptions *self)
{
  return self->command_timeout_ms != 0 ? self->command_timeout_ms : REDIS_OPTIONS_INTERNAL_TIMEOUT_MS;
}
