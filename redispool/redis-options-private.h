/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Connection options shared by RedisConnection and RedisPool (a pool passes
 * a copy to each of its connections). Plain data; the owner serializes
 * access (options are frozen once the object is initialized). */
typedef struct
{
  char                 *host;
  guint                 port;
  char                 *socket_path;
  guint                 database;
  char                 *username;
  char                 *password;          /* never readable, logged or printed */
  char                 *client_name;
  gboolean              tls;
  char                 *tls_ca_file;
  char                 *tls_certificate_file;
  char                 *tls_key_file;
  GTlsCertificateFlags  tls_validation_flags;
  guint                 connect_timeout_ms;
  guint                 command_timeout_ms;
  guint                 stall_timeout_ms;
  guint                 health_check_ms;
  guint64               max_reply_bytes;
  guint                 max_elements;
  guint                 max_line_length;
  guint                 max_depth;
} RedisOptions;

/* Property ids are relative: the owner installs them starting at @first_id
 * and passes (prop_id - first_id) back. */
enum
{
  REDIS_OPTIONS_PROP_HOST,
  REDIS_OPTIONS_PROP_PORT,
  REDIS_OPTIONS_PROP_SOCKET_PATH,
  REDIS_OPTIONS_PROP_DATABASE,
  REDIS_OPTIONS_PROP_USERNAME,
  REDIS_OPTIONS_PROP_PASSWORD,
  REDIS_OPTIONS_PROP_CLIENT_NAME,
  REDIS_OPTIONS_PROP_TLS,
  REDIS_OPTIONS_PROP_TLS_CA_FILE,
  REDIS_OPTIONS_PROP_TLS_CERTIFICATE_FILE,
  REDIS_OPTIONS_PROP_TLS_KEY_FILE,
  REDIS_OPTIONS_PROP_TLS_VALIDATION_FLAGS,
  REDIS_OPTIONS_PROP_CONNECT_TIMEOUT,
  REDIS_OPTIONS_PROP_COMMAND_TIMEOUT,
  REDIS_OPTIONS_PROP_STALL_TIMEOUT,
  REDIS_OPTIONS_PROP_HEALTH_CHECK_INTERVAL,
  REDIS_OPTIONS_PROP_MAX_REPLY_BYTES,
  REDIS_OPTIONS_PROP_MAX_ELEMENTS,
  REDIS_OPTIONS_PROP_MAX_LINE_LENGTH,
  REDIS_OPTIONS_PROP_MAX_DEPTH,
  REDIS_OPTIONS_N_PROPS
};

/* Handles a query parameter the options do not know (pool_size=…); returns
 * FALSE with @error set to reject it. */
typedef gboolean (*RedisOptionsExtraFunc) (const char  *key,
                                           const char  *value,
                                           gpointer     user_data,
                                           GError     **error);

RedisOptions *redis_options_new              (void);
RedisOptions *redis_options_copy             (const RedisOptions    *self);
void          redis_options_free             (RedisOptions          *self);
void          redis_options_install_properties (GObjectClass        *klass,
                                                guint                first_id,
                                                GParamSpec         **pspecs);
void          redis_options_set_property     (RedisOptions          *self,
                                              guint                  rel_id,
                                              const GValue          *value);
void          redis_options_get_property     (const RedisOptions    *self,
                                              guint                  rel_id,
                                              GValue                *value);
/* Error messages never quote GLib's text, nor anything of a URI with
 * userinfo (an '@' after "//"); the password never reaches GLib. */
gboolean      redis_options_parse_uri        (RedisOptions          *self,
                                              const char            *uri,
                                              RedisOptionsExtraFunc  extra,
                                              gpointer               user_data,
                                              GError               **error);
/* Zeroes and frees a string that may hold a password (a password, or a
 * URI with one), and sets *@secret to NULL. */
void          redis_options_clear_secret     (char                 **secret);
/* A URI of every option but the password; parsed, it gives the same
 * options (the TLS validation flags as all or none: tls_insecure). */
char         *redis_options_to_uri           (const RedisOptions    *self);
/* "host:port" or the socket path, for messages. */
char         *redis_options_describe_address (const RedisOptions    *self);
/* Parses "500", "500ms", "5s", "1.5s" into milliseconds: a decimal number
 * (no sign or exponent) that fits a guint of milliseconds. */
gboolean      redis_options_parse_duration_ms (const char           *text,
                                               guint                *out_ms);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisOptions, redis_options_free)

G_END_DECLS
