/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _RedisSentinel RedisSentinel;   /* redis-sentinel-private.h */

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
  /* The name checked in the server's certificate and sent as SNI instead
   * of the host connected to; with Sentinel, for the servers found (not
   * for the sentinels, checked against their own host): redis-tls.c. */
  char                 *tls_server_name;
  guint                 connect_timeout_ms;
  guint                 command_timeout_ms;
  guint                 stall_timeout_ms;
  guint                 health_check_ms;
  guint64               max_reply_bytes;
  guint                 max_elements;
  guint                 max_line_length;
  guint                 max_depth;
  /* Sentinel (redis-sentinel.c): with @sentinels set, host and port are
   * not used; every connect asks the sentinels for @master_name's
   * primary (or a replica, by @role). @sentinel is the discovery state,
   * shared (a reference) by every copy. */
  char                **sentinels;
  char                 *master_name;
  char                 *sentinel_username;
  char                 *sentinel_password;  /* never readable, logged or printed */
  int                   role;               /* RedisServerRole */
  RedisSentinel        *sentinel;
  /* Internal, no property or URI parameter: READONLY after the handshake,
   * for the nodes of a RedisClusterPool that reads from replicas. */
  gboolean              readonly;
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
  REDIS_OPTIONS_PROP_SENTINELS,
  REDIS_OPTIONS_PROP_MASTER_NAME,
  REDIS_OPTIONS_PROP_SENTINEL_USERNAME,
  REDIS_OPTIONS_PROP_SENTINEL_PASSWORD,
  REDIS_OPTIONS_PROP_ROLE,
  REDIS_OPTIONS_PROP_TLS_SERVER_NAME,
  REDIS_OPTIONS_N_PROPS
};

/* Handles a query parameter the options do not know (pool_size=…); returns
 * FALSE with @error set to reject it. The older way for an owner to add
 * parameters: a table (RedisOptionsParam) is the one to use. */
typedef gboolean (*RedisOptionsExtraFunc) (const char  *key,
                                           const char  *value,
                                           gpointer     user_data,
                                           GError     **error);

/* ---- URI query parameters ----------------------------------------------
 *
 * A query parameter is an entry of a table, matched by its whole name
 * (case-sensitive): the options' own table is in redis-options.c, and an
 * owner with parameters of its own (RedisPool) passes its table, of the
 * same entries and parsers, to redis_options_parse_uri_with_params(). An
 * entry writes its value into the field at @offset of the struct the table
 * is for (RedisOptions, or the owner's @target):
 *
 *   static const RedisOptionsParam pool_params[] = {
 *     { .name = "pool_size", .parse = redis_options_param_uint,
 *       .offset = G_STRUCT_OFFSET (RedisPoolConfig, size), .min = 1, .max = 1024,
 *       .what = "is not a number from 1 to 1024" },
 *     …
 *     { NULL }
 *   };
 *
 * A value that is refused fails the URI with "key=“value” <what>" (or
 * "key <what>" when the URI has userinfo and nothing of it may be quoted);
 * a number read but below @min with "key <too_small>" if the entry has one.
 * A name in no table is an unknown parameter: the URI fails. */

typedef struct _RedisOptionsParam RedisOptionsParam;

typedef enum
{
  REDIS_OPTIONS_PARAM_OK,
  REDIS_OPTIONS_PARAM_INVALID,     /* refused: the message says @what */
  REDIS_OPTIONS_PARAM_TOO_SMALL,   /* a number below @min: @too_small, or @what */
  REDIS_OPTIONS_PARAM_BELOW_MS,    /* a duration written non-zero that is 0 ms */
} RedisOptionsParamResult;

/* Reads @value into @field (the field at @param->offset); writes nothing
 * unless it returns REDIS_OPTIONS_PARAM_OK. */
typedef RedisOptionsParamResult (*RedisOptionsParamParser) (const RedisOptionsParam *param,
                                                            const char              *value,
                                                            gpointer                 field);

/* A value of an enum parameter (strategy=round_robin), matched whole and
 * case-sensitive; a table of them ends with { NULL }. */
typedef struct
{
  const char *name;
  int         value;
} RedisOptionsChoice;

struct _RedisOptionsParam
{
  const char               *name;       /* the whole name; NULL ends a table */
  RedisOptionsParamParser   parse;
  gsize                     offset;     /* G_STRUCT_OFFSET of the field */
  guint64                   min;        /* numbers and durations (ms) */
  guint64                   max;        /* 0: the field type's largest */
  const RedisOptionsChoice *choices;    /* for redis_options_param_choice */
  const char               *what;       /* "is not …", after "key=“value” "; NULL: "is not valid" */
  const char               *too_small;  /* "must be positive", or NULL */
};

/* The parsers of table entries, by the type of the field they write:
 * guint (decimal, @min to @max), guint64 (the same), guint milliseconds
 * (redis_options_parse_duration_ms(), @min to @max), gboolean
 * (redis_options_parse_boolean()), char * (any text; the old one is
 * freed), and an int-sized enum (one of @choices). */
RedisOptionsParamResult redis_options_param_uint     (const RedisOptionsParam *param,
                                                      const char              *value,
                                                      gpointer                 field);
RedisOptionsParamResult redis_options_param_uint64   (const RedisOptionsParam *param,
                                                      const char              *value,
                                                      gpointer                 field);
RedisOptionsParamResult redis_options_param_duration (const RedisOptionsParam *param,
                                                      const char              *value,
                                                      gpointer                 field);
RedisOptionsParamResult redis_options_param_boolean  (const RedisOptionsParam *param,
                                                      const char              *value,
                                                      gpointer                 field);
RedisOptionsParamResult redis_options_param_string   (const RedisOptionsParam *param,
                                                      const char              *value,
                                                      gpointer                 field);
RedisOptionsParamResult redis_options_param_choice   (const RedisOptionsParam *param,
                                                      const char              *value,
                                                      gpointer                 field);
/* The entry named @name (whole, case-sensitive) of @params, the options'
 * own table if @params is NULL; or NULL. */
const RedisOptionsParam *redis_options_find_param    (const RedisOptionsParam *params,
                                                      const char              *name);

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
/* Sets the sentinels (NULL or empty: none), and a new discovery state. */
void          redis_options_set_sentinels    (RedisOptions          *self,
                                              const char * const    *sentinels);
/* Error messages never quote GLib's text, nor anything of a URI with
 * userinfo (an '@' after "//"); the password never reaches GLib. */
gboolean      redis_options_parse_uri        (RedisOptions          *self,
                                              const char            *uri,
                                              RedisOptionsExtraFunc  extra,
                                              gpointer               user_data,
                                              GError               **error);
/* The same, with the parameters of @params (whose fields are in @target)
 * besides the options' own; @params must not repeat one of their names
 * (checked when assertions are on). */
gboolean      redis_options_parse_uri_with_params (RedisOptions            *self,
                                                   const char              *uri,
                                                   const RedisOptionsParam *params,
                                                   gpointer                 target,
                                                   GError                 **error);
/* Zeroes and frees a string that may hold a password (a password, or a
 * URI with one), and sets *@secret to NULL. */
void          redis_options_clear_secret     (char                 **secret);
/* A URI of every option but the password; parsed, it gives the same
 * options (the TLS validation flags as all or none: tls_insecure). */
char         *redis_options_to_uri           (const RedisOptions    *self);
/* "host:port" or the socket path, for messages. */
char         *redis_options_describe_address (const RedisOptions    *self);
/* The deadline of the library's own waits (internal calls, graceful
 * close, CLIENT UNBLOCK): command-timeout, or 5 s when that is 0 (no
 * deadline for user calls; the library's calls always get one). */
#define REDIS_OPTIONS_INTERNAL_TIMEOUT_MS 5000
guint         redis_options_get_internal_timeout_ms (const RedisOptions *self);
/* Parses "500", "500ms", "5s", "1.5s" into milliseconds: a decimal number
 * (no sign or exponent) that fits a guint of milliseconds. Below a
 * millisecond is dropped, but a non-zero value that comes to 0 ms ("0.3",
 * "0.0001s") is refused: only an explicit zero means 0. */
gboolean      redis_options_parse_duration_ms (const char           *text,
                                               guint                *out_ms);
/* Parses a boolean: 1, true, yes, on or 0, false, no, off, in any case
 * (the one spelling of booleans in URIs). */
gboolean      redis_options_parse_boolean    (const char            *text,
                                              gboolean              *out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisOptions, redis_options_free)

G_END_DECLS
