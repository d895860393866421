/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-client-private.h"
#include "redis-connection-private.h"
#include "redis-credentials-private.h"
#include "redis-engine-private.h"
#include "redis-enums.h"
#include "redis-error.h"
#include "redis-init-private.h"
#include "redis-options-private.h"
#include "redis-worker-private.h"

/**
 * RedisConnection:
 *
 * One connection to a Redis server, implementing [iface@Redis.Client].
 *
 * Many callers can use one connection at once: commands issued during one
 * main-loop turn are written together (automatic pipelining) and replies
 * are matched to their callers in order. Every call has a deadline
 * ([property@Redis.Connection:command-timeout]); a call that times out or
 * is cancelled after it was written completes at once, and its late reply
 * is read and dropped so that the next caller still gets its own.
 *
 * The calls are those of [iface@Redis.Client], each with `_async`,
 * `_finish` and `_sync` forms: [method@Redis.Client.command_async] and
 * [method@Redis.Client.command_bytes_async] (one command),
 * [method@Redis.Client.pipeline_async], [method@Redis.Client.transaction_async],
 * [method@Redis.Client.noreply_command_async],
 * [method@Redis.Client.noreply_pipeline_async] and
 * [method@Redis.Client.close_async].
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisConnection) conn =
 *   redis_connection_new_sync ("redis://127.0.0.1:6379/0", NULL, &error);
 * g_autoptr(RedisReply) reply =
 *   redis_client_command_sync (REDIS_CLIENT (conn),
 *                              (const char *[]) { "PING", NULL }, NULL, &error);
 * ```
 *
 * A connection connects once, when it is initialized ([iface@Gio.Initable]
 * or [iface@Gio.AsyncInitable]): AUTH, SELECT and CLIENT SETNAME run before
 * any user command. Initializing again is harmless, as GIO asks: a call
 * made while the first one runs waits for it, and every call returns the
 * outcome of the first (success, or the same error) without connecting
 * again. A connection that was never initialized (built with
 * g_object_new(), as `Redis.Connection(port=…)` in Python or
 * `new Redis.Connection({…})` in GJS do) connects on its first call
 * instead, the call waiting for the connect; a call made when it failed
 * gets %REDIS_ERROR_CLOSED with the reason, and a later init that same
 * outcome. When it is lost it stays closed and emits
 * [signal@Redis.Connection::closed]; [class@Redis.Pool] is the object that
 * replaces lost connections.
 *
 * ## Threads
 *
 * All methods may be called from any thread. Callbacks run in the
 * thread-default main context of the caller; signals and property
 * notifications are emitted in the thread-default main context that was
 * current when the connection was created.
 */

typedef struct _ConnectionLink ConnectionLink;

struct _RedisConnection
{
  GObject        parent_instance;

  RedisOptions  *options;
  char          *uri;
  GError        *uri_error;
  GMainContext  *context;
  /* Read through connection_get_engine(): a standalone connection makes
   * its own on first use; a lease's is its pool's, set by
   * redis_connection_new_lease(). NULL once disposed. */
  RedisEngine   *engine;
  gboolean       disposed;
  ConnectionLink *link;       /* how the I/O thread reaches us; see below */
  RedisInitOnce  init;

  /* Set when the connection is a pool's lease (see the private header). */
  gboolean           is_lease;
  gint               lease_ended;   /* atomic */
  RedisLeaseEndFunc  lease_end_func;
  gpointer           lease_end_data;
  GDestroyNotify     lease_end_notify;
};

enum
{
  PROP_0,
  PROP_URI,
  PROP_STATE,
  PROP_CLIENT_ID,
  PROP_FIRST_OPTION,
  N_PROPS = PROP_FIRST_OPTION + REDIS_OPTIONS_N_PROPS,
};

enum
{
  CLOSED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void client_iface_init (RedisClientInterface *iface);
static void initable_iface_init (GInitableIface *iface);
static void async_initable_iface_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (RedisConnection, redis_connection, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (REDIS_TYPE_CLIENT, client_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE, async_initable_iface_init))

/* ---- signals from the I/O thread ---------------------------------------- */

/* How the I/O thread reaches the connection object: a shared, locked,
 * non-owning pointer that dispose clears. (A GWeakRef would do, but GLib
 * 2.74 frees an object's weak-ref list in g_object_run_dispose() without the
 * lock that g_weak_ref_clear() takes, so clearing one from the I/O thread
 * while the object is disposed on another thread can crash.) */
struct _ConnectionLink     /* a g_atomic_rc_box */
{
  GMutex           lock;
  RedisConnection *conn;    /* not a reference; NULL once disposed */
};

static ConnectionLink *
connection_link_new (RedisConnection *conn)
{
  ConnectionLink *link = g_atomic_rc_box_new0 (ConnectionLink);

  g_mutex_init (&link->lock);
  link->conn = conn;
  return link;
}

static ConnectionLink *
connection_link_ref (ConnectionLink *link)
{
  return g_atomic_rc_box_acquire (link);
}

static void
connection_link_free_contents (ConnectionLink *link)
{
  g_mutex_clear (&link->lock);
}

static void
connection_link_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, (GDestroyNotify) connection_link_free_contents);
}

/* A new reference to the connection, or NULL once it was disposed. */
static RedisConnection *
connection_link_get (ConnectionLink *link)
{
  RedisConnection *conn;

  g_mutex_lock (&link->lock);
  conn = link->conn != NULL ? g_object_ref (link->conn) : NULL;
  g_mutex_unlock (&link->lock);
  return conn;
}

static void
connection_link_clear (ConnectionLink *link)
{
  g_mutex_lock (&link->lock);
  link->conn = NULL;
  g_mutex_unlock (&link->lock);
}

typedef struct
{
  ConnectionLink *link;
  GError         *error;
} ClosedEmission;

static gboolean
emit_closed_cb (gpointer data)
{
  ClosedEmission *emission = data;
  g_autoptr(RedisConnection) self = connection_link_get (emission->link);

  if (self != NULL)
    {
      g_signal_emit (self, signals[CLOSED], 0, emission->error);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
    }
  return G_SOURCE_REMOVE;
}

static void
closed_emission_free (gpointer data)
{
  ClosedEmission *emission = data;

  connection_link_unref (emission->link);
  g_error_free (emission->error);
  g_free (emission);
}

/* I/O thread: the engine ended. Hand the signal to the creation context. */
static void
engine_closed_cb (RedisEngine  *engine,
                  const GError *reason,
                  GQueue       *unsent,
                  gpointer      user_data)
{
  ConnectionLink *link = user_data;
  g_autoptr(RedisConnection) self = connection_link_get (link);
  ClosedEmission *emission;
  GSource *source;

  if (self == NULL)
    return;

  emission = g_new0 (ClosedEmission, 1);
  emission->link = connection_link_ref (link);
  emission->error = g_error_copy (reason);

  source = g_idle_source_new ();
  g_source_set_static_name (source, "[redispool] connection closed");
  g_source_set_callback (source, emit_closed_cb, emission, closed_emission_free);
  g_source_attach (source, self->context);
  g_source_unref (source);
}

/* ---- the engine --------------------------------------------------------- */

static RedisEngine *
connection_make_engine (RedisConnection *self)
{
  RedisEngine *engine = redis_engine_new (self->options, self->context);

  self->link = connection_link_new (self);
  redis_engine_set_closed_func (engine, engine_closed_cb,
                                connection_link_ref (self->link), connection_link_unref);
  return engine;
}

/* Any thread: the engine, or NULL once disposed. A standalone connection
 * makes it here, once, on first use, rather than in constructed(): a
 * lease is built (redis_connection_new_lease()) around its pool's engine
 * right after g_object_new(), and must not make one of its own. */
static RedisEngine *
connection_get_engine (RedisConnection *self)
{
  if (G_UNLIKELY (self->disposed))
    return NULL;
  if (g_once_init_enter (&self->engine))
    g_once_init_leave (&self->engine, connection_make_engine (self));
  return self->engine;
}

/* ---- GObject ------------------------------------------------------------ */

static void
redis_connection_constructed (GObject *object)
{
  RedisConnection *self = REDIS_CONNECTION (object);

  G_OBJECT_CLASS (redis_connection_parent_class)->constructed (object);

  /* The engine comes later: see connection_get_engine(). */
  if (self->uri != NULL)
    {
      redis_options_parse_uri (self->options, self->uri, NULL, NULL, &self->uri_error);
      /* It may hold a password: keep only the parsed options. */
      redis_options_clear_secret (&self->uri);
    }
}

static void
redis_connection_dispose (GObject *object)
{
  RedisConnection *self = REDIS_CONNECTION (object);

  self->disposed = TRUE;
  if (self->is_lease)
    {
      /* A lease dropped without redis_pool_release() goes back all the same. */
      redis_connection_end_lease (self);
      if (self->lease_end_notify != NULL)
        self->lease_end_notify (self->lease_end_data);
      self->lease_end_notify = NULL;
      g_clear_pointer (&self->engine, redis_engine_unref);
    }
  else if (self->engine != NULL)
    {
      connection_link_clear (self->link);
      redis_engine_set_closed_func (self->engine, NULL, NULL, NULL);
      redis_engine_close (self->engine, NULL);
      g_clear_pointer (&self->engine, redis_engine_unref);
    }

  G_OBJECT_CLASS (redis_connection_parent_class)->dispose (object);
}

static void
redis_connection_finalize (GObject *object)
{
  RedisConnection *self = REDIS_CONNECTION (object);

  redis_options_free (self->options);
  redis_init_once_clear (&self->init);
  g_clear_pointer (&self->link, connection_link_unref);
  redis_options_clear_secret (&self->uri);
  g_clear_error (&self->uri_error);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (redis_connection_parent_class)->finalize (object);
}

static void
redis_connection_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  RedisConnection *self = REDIS_CONNECTION (object);

  switch (prop_id)
    {
    case PROP_URI:
      g_value_take_string (value, redis_options_to_uri (self->options));
      break;
    case PROP_STATE:
      g_value_set_enum (value, redis_connection_get_state (self));
      break;
    case PROP_CLIENT_ID:
      g_value_set_int64 (value, redis_connection_get_client_id (self));
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        redis_options_get_property (self->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_connection_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  RedisConnection *self = REDIS_CONNECTION (object);

  switch (prop_id)
    {
    case PROP_URI:
      redis_options_clear_secret (&self->uri);
      self->uri = g_value_dup_string (value);
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        /* Construct-only: the engine made in constructed() reads them. */
        redis_options_set_property (self->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* Long, but only one documentation block and one installation per
 * property and signal: gi-docgen reads each block from here. */
static void
redis_connection_class_init (RedisConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = redis_connection_constructed;
  object_class->dispose = redis_connection_dispose;
  object_class->finalize = redis_connection_finalize;
  object_class->get_property = redis_connection_get_property;
  object_class->set_property = redis_connection_set_property;

  /**
   * RedisConnection:uri:
   *
   * A `redis://`, `rediss://` (TLS) or `unix://` URI that sets the other
   * options at once, for example
   * `redis://user:secret@127.0.0.1:6379/2?client_name=app&command_timeout=2s`
   * or `unix:///run/redis.sock?db=1`. Query parameters: `db`,
   * `client_name`, `connect_timeout`, `command_timeout`, `stall_timeout`,
   * `health_check_interval` (durations, below), `tls_ca_file`,
   * `tls_certificate_file`, `tls_key_file`, `tls_insecure`, `tls_server_name`,
   * `max_reply_bytes`, `max_elements`, `max_line_length`, `max_depth`.
   *
   * A duration is a decimal number of milliseconds, or of seconds with an
   * `s` suffix: `500`, `500ms`, `1.5s`, `0.25s`. No sign, exponent or
   * other unit; what does not fit 32 bits of milliseconds is refused. A
   * fraction of a millisecond is dropped (`1.5ms` is 1 ms), but a value
   * that would come to 0 ms without being written as zero (`0.3`, `0.4ms`,
   * `0.0001s`) is refused: only an explicit `0` means "none" where an
   * option allows it.
   *
   * Where the URI and a property both set an option, the URI wins. Read
   * back, the URI describes the options without the password. A malformed
   * URI makes initialization fail with %REDIS_ERROR_INVALID_ARGUMENT.
   */
  properties[PROP_URI] =
    g_param_spec_string ("uri", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * RedisConnection:state:
   *
   * Where the connection is in its life cycle.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL,
                       REDIS_TYPE_CONNECTION_STATE, REDIS_CONNECTION_STATE_DISCONNECTED,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * RedisConnection:client-id:
   *
   * The server's `CLIENT ID` for this connection, learnt during the
   * handshake; 0 before.
   */
  properties[PROP_CLIENT_ID] =
    g_param_spec_int64 ("client-id", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * RedisConnection:host:
   *
   * The host name or IP address of the server. Default `127.0.0.1`.
   */
  /**
   * RedisConnection:port:
   *
   * The TCP port of the server. Default 6379.
   */
  /**
   * RedisConnection:socket-path:
   *
   * The path of a Unix socket to connect to instead of TCP.
   */
  /**
   * RedisConnection:database:
   *
   * The database selected with SELECT after connecting. Default 0.
   */
  /**
   * RedisConnection:username:
   *
   * The ACL user name for AUTH, or %NULL for the default user.
   */
  /**
   * RedisConnection:password:
   *
   * The password for AUTH. Write-only: it is never readable, logged, or
   * printed in an error message or a URI.
   */
  /**
   * RedisConnection:client-name:
   *
   * A name set with CLIENT SETNAME after connecting, visible in
   * `CLIENT LIST`.
   */
  /**
   * RedisConnection:tls:
   *
   * Whether to speak TLS. Set by `rediss://` URIs.
   */
  /**
   * RedisConnection:tls-ca-file:
   *
   * A PEM file of CA certificates to verify the server with, instead of the
   * system's.
   */
  /**
   * RedisConnection:tls-certificate-file:
   *
   * A PEM client certificate for servers that require one.
   */
  /**
   * RedisConnection:tls-key-file:
   *
   * The private key of [property@Redis.Connection:tls-certificate-file];
   * %NULL when the certificate file holds the key too.
   */
  /**
   * RedisConnection:tls-validation-flags:
   *
   * The certificate checks that must pass. Default: all of them (chain and
   * host name). Removing checks is explicit: only the flags cleared here
   * are ignored. Each connection applies its own checks and
   * [property@Redis.Connection:tls-ca-file], also when it resumes the TLS
   * session of an earlier connection to the same server.
   */
  /**
   * RedisConnection:tls-server-name:
   *
   * The name the server's certificate must have, also sent as SNI, instead
   * of the host connected to; %NULL (the default) checks that host. For
   * servers reached by IP address whose certificates name hosts, as with
   * [property@Redis.Connection:sentinels], which announce addresses: there it
   * applies to the servers found, not to the sentinels, which are checked
   * against the hosts of their own addresses. URI parameter
   * `tls_server_name`. See the high availability guide.
   */
  /**
   * RedisConnection:connect-timeout:
   *
   * Milliseconds allowed for the TCP connect, the TLS handshake and the
   * AUTH/SELECT/CLIENT SETNAME handshake together; at least 1. Default
   * 5000. In a URI, `connect_timeout=` takes a duration (`500`, `500ms`,
   * `1.5s`; see [property@Redis.Connection:uri]).
   */
  /**
   * RedisConnection:command-timeout:
   *
   * Milliseconds allowed for each call from submission to reply; 0 for no
   * limit. Blocking commands get their own block time on top. Default 5000.
   * In a URI, `command_timeout=` takes a duration (`500`, `500ms`, `1.5s`;
   * see [property@Redis.Connection:uri]); a value below a millisecond
   * such as `0.3` is refused rather than read as 0 (no limit).
   */
  /**
   * RedisConnection:stall-timeout:
   *
   * Milliseconds of silence from the server, once a written call is past its
   * deadline, after which the connection is considered dead (blackholed or
   * half-open) and closed as lost; a pool then replaces it. 0 turns stall
   * detection off. Default 10000. In a URI, `stall_timeout=` takes a
   * duration (see [property@Redis.Connection:uri]).
   */
  /**
   * RedisConnection:health-check-interval:
   *
   * Milliseconds of idleness (nothing in flight, nothing received) after
   * which a connection sends a PING, so that a vanished peer is noticed
   * (through [property@Redis.Connection:stall-timeout]) before a user command meets it.
   * 0 turns it off. Default 30000. In a URI, `health_check_interval=`
   * takes a duration (see [property@Redis.Connection:uri]).
   */
  /**
   * RedisConnection:max-reply-bytes:
   *
   * The largest reply accepted, in bytes as they come on the wire (RESP
   * framing included: a bulk string of n bytes counts its length line and
   * both CRLFs); a larger one fails with %REDIS_ERROR_REPLY_TOO_LARGE and
   * closes the connection. Default 512 MiB.
   */
  /**
   * RedisConnection:max-elements:
   *
   * The largest array reply accepted, in elements. Default 16777216.
   */
  /**
   * RedisConnection:max-line-length:
   *
   * The longest status, error or header line accepted, in bytes. Default
   * 65536.
   */
  /**
   * RedisConnection:max-depth:
   *
   * The deepest nesting of arrays accepted in a reply (`*1\r\n:1\r\n` is
   * one level); a deeper reply fails with %REDIS_ERROR_REPLY_TOO_LARGE and
   * closes the connection. Real replies nest a few levels (`COMMAND` 8,
   * `COMMAND DOCS` 12, a Lua table as deep as the script makes it).
   * From 1 to 1024; default 64.
   */
  /**
   * RedisConnection:sentinels:
   *
   * The Sentinel processes that know where the server is, as `host:port`
   * (`[address]:port` for IPv6; the port defaults to 26379), in the order
   * to try them. When set, [property@Redis.Connection:host] and
   * [property@Redis.Connection:port] are not used: every connect (and every
   * reconnect) asks the sentinels, in turn and each within a short
   * deadline (1 s, or connect-timeout if shorter), for the address of
   * [property@Redis.Connection:master-name]'s primary (`SENTINEL
   * get-master-addr-by-name`) or of one of its replicas (`SENTINEL
   * replicas`, see [property@Redis.Connection:role]); the sentinel that answered is
   * asked first next time. The server found must then answer `ROLE` with
   * the role asked for, or the connection is closed and discovery runs
   * again on the next attempt. When no sentinel answers, the connect fails
   * with %REDIS_ERROR_CONNECT_FAILED naming every sentinel tried and why.
   *
   * The URI form is
   * `redis+sentinel://[user[:password]@]host[:port][,host[:port]…]/master-name[/db][?query]`,
   * or `rediss+sentinel://…` for TLS (to the sentinels and to the servers
   * they name, with the same settings; see [property@Redis.Connection:tls-server-name]):
   * the user and password are the server's, the sentinels' are the query
   * parameters `sentinel_username` and `sentinel_password`, and
   * `role=primary` or `role=replica` selects the role.
   */
  /**
   * RedisConnection:master-name:
   *
   * The name the sentinels monitor the primary under (`sentinel monitor
   * <master-name> …`). Required with [property@Redis.Connection:sentinels].
   */
  /**
   * RedisConnection:sentinel-username:
   *
   * The user name sent to the sentinels with `AUTH` (their ACL), or %NULL.
   */
  /**
   * RedisConnection:sentinel-password:
   *
   * The password sent to the sentinels with `AUTH`, or %NULL. Write-only:
   * it is never readable, logged or part of a message.
   */
  /**
   * RedisConnection:role:
   *
   * With [property@Redis.Connection:sentinels], whether connections go to the
   * primary or to a replica (picked at random among those the sentinel
   * reports up). Default %REDIS_SERVER_ROLE_PRIMARY.
   */
  redis_options_install_properties (object_class, PROP_FIRST_OPTION,
                                    &properties[PROP_FIRST_OPTION]);
  g_object_class_install_property (object_class, PROP_URI, properties[PROP_URI]);
  g_object_class_install_property (object_class, PROP_STATE, properties[PROP_STATE]);
  g_object_class_install_property (object_class, PROP_CLIENT_ID, properties[PROP_CLIENT_ID]);

  /**
   * RedisConnection::closed:
   * @self: the connection
   * @error: why it closed: %REDIS_ERROR_CLOSED after a close, else the
   *   error that ended it
   *
   * Emitted once when the connection closes, for whatever reason, in the
   * main context the connection was created in.
   */
  signals[CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
redis_connection_init (RedisConnection *self)
{
  self->options = redis_options_new ();
  self->context = g_main_context_ref_thread_default ();
  redis_init_once_init (&self->init);
}

/* ---- RedisClient -------------------------------------------------------- */

static void connection_start_lazily (RedisConnection *self);

static void
redis_connection_submit (RedisClient *client,
                         RedisCall   *call)
{
  RedisConnection *self = REDIS_CONNECTION (client);
  RedisEngine *engine;
  gboolean start;

  if (self->uri_error != NULL)
    {
      redis_call_fail (call, g_error_copy (self->uri_error));
      return;
    }

  engine = connection_get_engine (self);
  if (g_atomic_int_get (&self->lease_ended) || engine == NULL)
    {
      redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                                  engine == NULL ?
                                                    "The connection was disposed" :
                                                    "The lease of this connection was released"));
      return;
    }

  /* Never initialized (g_object_new() alone, as bindings' keyword
   * constructors do): the first call starts the connect that init would,
   * and waits behind it like any call made while connecting. Submitted
   * first, so that a connect that fails at once fails it with the
   * reason. */
  start = redis_init_once_begin_lazy (&self->init);

  redis_call_set_timeout (call, self->options->command_timeout_ms);
  if (!redis_engine_submit (engine, call))
    redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                        "%s was not sent: the connection is closed",
                                        redis_call_get_name (call)));
  if (G_UNLIKELY (start))
    connection_start_lazily (self);
}

static void
engine_close_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  RedisConnection *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!redis_engine_close_finish (self->engine, result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
redis_connection_close_async (RedisClient         *client,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  RedisConnection *self = REDIS_CONNECTION (client);
  RedisEngine *engine = connection_get_engine (self);
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  guint timeout = redis_options_get_internal_timeout_ms (self->options);

  g_task_set_source_tag (task, redis_connection_close_async);

  if (engine == NULL)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  if (self->is_lease)
    {
      /* Closing a lease hands it back to its pool. */
      redis_connection_end_lease (self);
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  redis_engine_close_async (engine, timeout, NULL, engine_close_cb, task);
}

static gboolean
redis_connection_close_finish (RedisClient   *client,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
client_iface_init (RedisClientInterface *iface)
{
  iface->submit = redis_connection_submit;
  iface->close_async = redis_connection_close_async;
  iface->close_finish = redis_connection_close_finish;
}

/* ---- initialization ----------------------------------------------------- */

/* The first initialization's connect finished: every init call, waiting or
 * later, gets its outcome. */
static void
engine_connected_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(RedisConnection) self = user_data;
  g_autoptr(GError) error = NULL;

  redis_engine_connect_finish (self->engine, result, &error);
  redis_init_once_complete (&self->init, error);

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLIENT_ID]);
}

/* ---- first use without initialization ----------------------------------- */

/* A connection nobody initialized (g_object_new() alone, as bindings'
 * keyword constructors do) connects on its first call instead, the call
 * waiting behind the connect as calls made during an init do. The connect
 * is started from the I/O thread, so that its completion is dispatched
 * there: the first caller may be a sync call on a thread that is gone, or
 * whose context nobody iterates, by the time the connect ends. Only the
 * link is held meanwhile (nothing keeps the connection alive). */

static gboolean
notify_connected_cb (gpointer data)
{
  g_autoptr(RedisConnection) self = connection_link_get (data);

  if (self != NULL)
    {
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLIENT_ID]);
    }
  return G_SOURCE_REMOVE;
}

/* I/O thread: the connect of a first use finished. Init calls made since
 * get its outcome; the notifications go to the creation context, as the
 * closed signal does. */
static void
lazy_connected_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ConnectionLink *link = user_data;
  g_autoptr(RedisConnection) self = connection_link_get (link);
  g_autoptr(GError) error = NULL;
  GSource *source;

  if (self != NULL)
    {
      redis_engine_connect_finish (self->engine, result, &error);
      redis_init_once_complete (&self->init, error);

      source = g_idle_source_new ();
      g_source_set_static_name (source, "[redispool] connection connected");
      g_source_set_callback (source, notify_connected_cb, connection_link_ref (link),
                             connection_link_unref);
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
  connection_link_unref (link);
}

/* I/O thread. */
static gboolean
lazy_start_cb (gpointer data)
{
  ConnectionLink *link = data;
  g_autoptr(RedisConnection) self = connection_link_get (link);

  if (self != NULL && !self->disposed)
    redis_engine_connect_async (self->engine, NULL, lazy_connected_cb, connection_link_ref (link));
  return G_SOURCE_REMOVE;
}

static void
connection_start_lazily (RedisConnection *self)
{
  redis_worker_invoke (lazy_start_cb, connection_link_ref (self->link), connection_link_unref);
}

/* Idempotent, as GIO asks: the first call connects; calls made while it
 * runs wait for it (or for their own cancellable), and every call, then or
 * later, gets the outcome of that one connect. Only the first call's
 * cancellable cancels the connect. A connection's first call starts the
 * same connect when no init call came first (connection_start_lazily()). */
static void
redis_connection_init_async (GAsyncInitable      *initable,
                             int                  io_priority,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  RedisConnection *self = REDIS_CONNECTION (initable);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, redis_connection_init_async);
  g_task_set_name (task, "[redispool] connection init");

  if (!redis_init_once_begin (&self->init, task))
    return;

  if (self->uri_error != NULL)
    {
      redis_init_once_complete (&self->init, self->uri_error);
      return;
    }

  redis_engine_connect_async (connection_get_engine (self), cancellable, engine_connected_cb,
                              g_object_ref (self));
}

static gboolean
redis_connection_init_finish (GAsyncInitable  *initable,
                              GAsyncResult    *result,
                              GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, initable), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
async_initable_iface_init (GAsyncInitableIface *iface)
{
  iface->init_async = redis_connection_init_async;
  iface->init_finish = redis_connection_init_finish;
}

static void
initable_iface_init (GInitableIface *iface)
{
  iface->init = redis_sync_initable_init;
}

/* ---- public API --------------------------------------------------------- */

/**
 * redis_connection_new_sync:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to a server and runs the handshake, blocking the calling
 * thread. To set options as properties, use g_initable_new() with
 * %REDIS_TYPE_CONNECTION instead.
 *
 * Errors: %REDIS_ERROR_INVALID_ARGUMENT (a malformed URI or an unknown
 * option), %REDIS_ERROR_CONNECT_FAILED, %REDIS_ERROR_AUTH_FAILED,
 * %REDIS_ERROR_TLS_FAILED and %G_IO_ERROR_CANCELLED. No command of the
 * caller's was sent: trying again is always safe.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisConnection) conn =
 *   redis_connection_new_sync ("redis://127.0.0.1:6379/2", NULL, &error);
 *
 * if (conn == NULL)
 *   g_printerr ("cannot connect: %s\n", error->message);
 * ```
 *
 * ```python
 * conn = Redis.Connection.new_sync('redis://127.0.0.1:6379/2', None)
 * print(conn.command_sync(['PING'], None).get_kind().value_nick)
 * ```
 *
 * Returns: (transfer full): a ready connection, or %NULL with @error set
 */
RedisConnection *
redis_connection_new_sync (const char    *uri,
                           GCancellable  *cancellable,
                           GError       **error)
{
  return g_initable_new (REDIS_TYPE_CONNECTION, cancellable, error, "uri", uri, NULL);
}

/**
 * redis_connection_new_async:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when connected or failed
 * @user_data: data for @callback
 *
 * Connects to a server and runs the handshake without blocking. Finish
 * with [ctor@Redis.Connection.new_finish].
 *
 * Errors: those of [ctor@Redis.Connection.new_sync].
 *
 * ```python
 * loop = GLib.MainLoop()
 *
 * def connected(source, result):
 *     conn = Redis.Connection.new_finish(result)
 *     print(conn.props.state.value_nick)   # ready
 *     loop.quit()
 *
 * Redis.Connection.new_async('redis://127.0.0.1:6379/0', None, connected)
 * loop.run()
 * ```
 */
void
redis_connection_new_async (const char          *uri,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_async_initable_new_async (REDIS_TYPE_CONNECTION, G_PRIORITY_DEFAULT, cancellable,
                              callback, user_data, "uri", uri, NULL);
}

/**
 * redis_connection_new_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Redis.Connection.new_async].
 *
 * Returns: (transfer full): a ready connection, or %NULL with @error set
 */
RedisConnection *
redis_connection_new_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_autoptr(GObject) source = g_async_result_get_source_object (result);
  GObject *object;

  object = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error);
  return object != NULL ? REDIS_CONNECTION (object) : NULL;
}

/**
 * redis_connection_get_state:
 * @self: a [class@Redis.Connection]
 *
 * Returns where the connection is in its life cycle.
 *
 * Returns: the state
 */
RedisConnectionState
redis_connection_get_state (RedisConnection *self)
{
  RedisEngine *engine;

  g_return_val_if_fail (REDIS_IS_CONNECTION (self), REDIS_CONNECTION_STATE_CLOSED);

  engine = connection_get_engine (self);
  return engine != NULL ? redis_engine_get_state (engine) : REDIS_CONNECTION_STATE_CLOSED;
}

/**
 * redis_connection_get_client_id:
 * @self: a [class@Redis.Connection]
 *
 * Returns the server's `CLIENT ID` of this connection.
 *
 * Returns: the id, or 0 before the handshake finished
 */
gint64
redis_connection_get_client_id (RedisConnection *self)
{
  RedisEngine *engine;

  g_return_val_if_fail (REDIS_IS_CONNECTION (self), 0);

  engine = connection_get_engine (self);
  return engine != NULL ? redis_engine_get_client_id (engine) : 0;
}

/**
 * redis_connection_set_credentials:
 * @self: a [class@Redis.Connection]
 * @username: (nullable): the ACL user, or %NULL for the `default` user
 * @password: (nullable): the password (or token), or %NULL for none
 *
 * Changes the credentials of the connection at run time, for example when
 * the server's password is rotated (`ACL SETUSER`). Before the connection
 * connected, its handshake uses them; once it did, it is re-authenticated
 * in place with `AUTH`, queued behind the commands already sent (nothing
 * is dropped or reconnected). With @password %NULL, a connected connection
 * is left as it is.
 *
 * The password is copied and never logged, put into an error message or
 * returned by a property. May be called from any thread; call it between
 * the commands of a transaction ([method@Redis.Client.transaction_async]
 * sends its `MULTI` … `EXEC` as one call), not while a `MULTI` you sent
 * yourself is open.
 */
void
redis_connection_set_credentials (RedisConnection *self,
                                  const char      *username,
                                  const char      *password)
{
  RedisEngine *engine;

  g_return_if_fail (REDIS_IS_CONNECTION (self));
  g_return_if_fail (username == NULL || password != NULL);

  engine = connection_get_engine (self);
  if (engine != NULL)
    redis_credentials_reauth (engine, username, password,
                              redis_options_get_internal_timeout_ms (self->options));
}

/**
 * redis_connection_get_n_pending:
 * @self: a [class@Redis.Connection]
 *
 * Returns the number of calls submitted and not yet answered (including
 * calls that timed out whose late replies have not arrived yet).
 *
 * Returns: the number of calls in flight
 */
guint
redis_connection_get_n_pending (RedisConnection *self)
{
  RedisEngine *engine;

  g_return_val_if_fail (REDIS_IS_CONNECTION (self), 0);

  engine = connection_get_engine (self);
  return engine != NULL ? redis_engine_get_n_pending (engine) : 0;
}

RedisConnection *
redis_connection_new_lease (RedisEngine        *engine,
                            const RedisOptions *options,
                            RedisLeaseEndFunc   end_func,
                            gpointer            user_data,
                            GDestroyNotify      notify)
{
  RedisConnection *self = g_object_new (REDIS_TYPE_CONNECTION, NULL);

  /* Nobody else has seen the object yet, and constructed() made no engine
   * (connection_get_engine()): it becomes the lease of @engine here. */
  self->engine = redis_engine_ref (engine);
  self->is_lease = TRUE;
  /* A lease comes connected: initializing it succeeds at once. */
  redis_init_once_set_done (&self->init);
  redis_options_free (self->options);
  self->options = redis_options_copy (options);
  self->lease_end_func = end_func;
  self->lease_end_data = user_data;
  self->lease_end_notify = notify;
  return self;
}

gboolean
redis_connection_end_lease (RedisConnection *self)
{
  if (!self->is_lease || !g_atomic_int_compare_and_exchange (&self->lease_ended, 0, 1))
    return FALSE;

  if (self->lease_end_func != NULL)
    self->lease_end_func (self->engine, self->lease_end_data);
  return TRUE;
}

gboolean
redis_connection_is_lease (RedisConnection *self)
{
  return self->is_lease;
}
