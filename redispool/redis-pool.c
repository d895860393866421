/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-client-private.h"
#include "redis-connection-private.h"
#include "redis-enums.h"
#include "redis-error.h"
#include "redis-options-private.h"
#include "redis-pool-core-private.h"
#include "redis-pool-private.h"
#include "redis-sentinel-private.h"
#include "redis-subscriber-private.h"
#include "redis-pool.h"

/**
 * RedisPool:
 *
 * A pool of connections to one Redis server behind the same
 * [iface@Redis.Client] API as a single [class@Redis.Connection].
 *
 * The pool keeps [property@Redis.Pool:pool-size] connections. Each call goes
 * to a live connection picked by [property@Redis.Pool:strategy]; connections
 * are multiplexed, so many calls are in flight on each one, written together
 * and answered in order. A pipeline or a transaction always runs on one
 * connection.
 *
 * The calls are those of [iface@Redis.Client], each with `_async`,
 * `_finish` and `_sync` forms: [method@Redis.Client.command_async] and
 * [method@Redis.Client.command_bytes_async] (one command),
 * [method@Redis.Client.pipeline_async], [method@Redis.Client.transaction_async],
 * [method@Redis.Client.noreply_command_async],
 * [method@Redis.Client.noreply_pipeline_async] and
 * [method@Redis.Client.close_async]. The pool adds leases
 * ([method@Redis.Pool.acquire_async], [method@Redis.Pool.release]) and
 * [method@Redis.Pool.get_info].
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisPool) pool =
 *   redis_pool_new_sync ("redis://127.0.0.1:6379/0?pool_size=5", NULL, &error);
 * g_autoptr(RedisReply) reply =
 *   redis_client_command_sync (REDIS_CLIENT (pool),
 *                              (const char *[]) { "INCR", "hits", NULL },
 *                              NULL, &error);
 * ```
 *
 * ## Lost connections
 *
 * When a connection dies (the server closed it, `CLIENT KILL`, a protocol
 * error), the pool emits [signal@Redis.Pool::connection-lost] once, then
 * reconnects that slot with exponential backoff and jitter
 * ([property@Redis.Pool:backoff-initial], [property@Redis.Pool:backoff-max])
 * and emits [signal@Redis.Pool::connection-replaced] once the new connection
 * has finished its handshake. While the server is down each slot has one
 * pending attempt at a time. Calls not yet written when their connection
 * died move to another live connection; calls already written fail with
 * %REDIS_ERROR_CONNECTION_LOST and are never sent again. Calls made while no
 * connection is live wait, each within its own deadline, up to
 * [property@Redis.Pool:max-queued] of them.
 *
 * ## Leases and connection state
 *
 * Commands that change the state of the connection they run on (SELECT,
 * WATCH, MULTI/EXEC sent one by one, AUTH, CLIENT SETNAME…) would leak into
 * other callers' commands on a shared connection; the pool refuses them with
 * %REDIS_ERROR_INVALID_ARGUMENT. Run them on a connection leased with
 * [method@Redis.Pool.acquire_async]: nobody else uses it until
 * [method@Redis.Pool.release], which restores its state (DISCARD, UNWATCH,
 * SELECT of the configured database) or closes it when that fails. Leased
 * connections are extra connections, kept for reuse, not pool slots; at
 * most [property@Redis.Pool:max-leases] of them exist at once. A lease
 * released and acquired again at once reuses the same connection (the
 * acquire waits for the reset, one round trip) instead of opening another;
 * when all of them are in use, acquires wait for one within their
 * deadline, then fail with %REDIS_ERROR_POOL_EXHAUSTED.
 *
 * Blocking commands (BLPOP, BRPOP, BLMOVE, BZPOPMIN/MAX, BLMPOP, XREAD and
 * XREADGROUP with BLOCK, WAIT…) sent through the shared API run on such a
 * dedicated connection, so they never hold up other callers, and their
 * deadline is extended by their own block time. They count against
 * [property@Redis.Pool:max-leases] like leases.
 *
 * ## Initialization
 *
 * [iface@Gio.Initable] and [iface@Gio.AsyncInitable] initialization is
 * idempotent, as GIO asks: a second call (also a concurrent one) gets the
 * outcome of the first without connecting again, and never closes a pool
 * that is up. A pool whose initialization failed, was cancelled (through
 * the first call's cancellable) or was closed meanwhile is closed, and
 * every later call gets that same error.
 *
 * A pool that was never initialized (built with g_object_new(), as
 * `Redis.Pool(host=…, pool_size=3)` in Python or `new Redis.Pool({…})` in
 * GJS do) starts on its first call or [method@Redis.Pool.acquire_async]
 * what its initialization would, without a cancellable: the call waits for
 * a connection as calls made during an initialization do. If that start
 * fails (in the wait-all mode), the calls waiting fail with
 * %REDIS_ERROR_CLOSED and the reason, the pool is closed, and a later
 * init returns the error. [method@Redis.Pool.get_info] starts nothing.
 *
 * ## Threads
 *
 * All methods may be called from any thread. Callbacks run in the
 * thread-default main context of the caller; the pool's signals and
 * property notifications are emitted in the thread-default main context that
 * was current when the pool was created, never after the pool was closed.
 */

/* The machinery (slots, dispatch, leases, initialization, close) is the
 * pool core, redis-pool-core.c; this file is the GObject around it: its
 * properties and URI, signals, initable interfaces and public API. */

struct _RedisPool
{
  GObject          parent_instance;

  RedisPoolConfig  config;    /* set by properties and the URI until constructed() */
  RedisPoolCore   *core;      /* made in constructed(); NULL once disposed */
  GWeakRef        *weak_self; /* how the core's reports reach us: see pool_core_callbacks */
  RedisSentinel   *sentinel;        /* with sentinels: primary-changed (redis-sentinel.c) */
  gpointer         sentinel_watch;
  char            *uri;
  GError          *uri_error;
};

enum
{
  PROP_0,
  PROP_URI,
  PROP_POOL_SIZE,
  PROP_STRATEGY,
  PROP_BACKOFF_INITIAL,
  PROP_BACKOFF_MAX,
  PROP_CONNECT_MODE,
  PROP_RECONNECT,
  PROP_MAX_QUEUED,
  PROP_MAX_LEASES,
  PROP_NETWORK_MONITOR,
  PROP_ACTIVE_CONNECTIONS,
  PROP_FIRST_OPTION,
  N_PROPS = PROP_FIRST_OPTION + REDIS_OPTIONS_N_PROPS,
};

enum
{
  CONNECTION_LOST,
  CONNECTION_REPLACED,
  PRIMARY_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void client_iface_init (RedisClientInterface *iface);
static void initable_iface_init (GInitableIface *iface);
static void async_initable_iface_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (RedisPool, redis_pool, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (REDIS_TYPE_CLIENT, client_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE, async_initable_iface_init))

/* ---- what the core reports ---------------------------------------------- */

/* The core calls these in the pool's main context and never after close
 * (see RedisPoolCoreCallbacks). It may outlive the pool: it reaches the
 * pool through a weak reference, which dispose clears on the disposing
 * thread (see ConnectionLink in redis-connection.c for why a GWeakRef
 * must not be cleared from the I/O thread while its object is being
 * disposed), and frees once it is done with it. */

static void
pool_connection_lost_cb (guint         index,
                         const GError *error,
                         gpointer      user_data)
{
  g_autoptr(RedisPool) self = g_weak_ref_get (user_data);

  if (self != NULL)
    g_signal_emit (self, signals[CONNECTION_LOST], 0, index, error);
}

static void
pool_connection_replaced_cb (guint    index,
                             gpointer user_data)
{
  g_autoptr(RedisPool) self = g_weak_ref_get (user_data);

  if (self != NULL)
    g_signal_emit (self, signals[CONNECTION_REPLACED], 0, index);
}

static void
pool_active_changed_cb (gpointer user_data)
{
  g_autoptr(RedisPool) self = g_weak_ref_get (user_data);

  if (self != NULL)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE_CONNECTIONS]);
}

static const RedisPoolCoreCallbacks pool_core_callbacks = {
  .connection_lost = pool_connection_lost_cb,
  .connection_replaced = pool_connection_replaced_cb,
  .active_changed = pool_active_changed_cb,
};

static void
weak_self_free (gpointer data)
{
  GWeakRef *weak = data;

  g_weak_ref_clear (weak);
  g_free (weak);
}

/* ---- GObject ------------------------------------------------------------ */

#define CONFIG(field) G_STRUCT_OFFSET (RedisPoolConfig, field)

static const RedisOptionsChoice strategy_choices[] = {
  { "round_robin", REDIS_POOL_STRATEGY_ROUND_ROBIN },
  { "random", REDIS_POOL_STRATEGY_RANDOM },
  { "least_pending", REDIS_POOL_STRATEGY_LEAST_PENDING },
  { NULL },
};

static const RedisOptionsChoice connect_mode_choices[] = {
  { "wait_all", REDIS_POOL_CONNECT_MODE_WAIT_ALL },
  { "background", REDIS_POOL_CONNECT_MODE_BACKGROUND },
  { NULL },
};

/* The pool's own URI parameters, matched by whole name after the
 * connection's (redis-options.c), parsed by the same parsers. */
static const RedisOptionsParam pool_params[] = {
  { .name = "pool_size", .parse = redis_options_param_uint, .offset = CONFIG (size), .min = 1, .max = 1024 },
  { .name = "strategy", .parse = redis_options_param_choice, .offset = CONFIG (strategy), .choices = strategy_choices },
  { .name = "backoff_initial", .parse = redis_options_param_duration, .offset = CONFIG (backoff_initial_ms), .min = 1 },
  { .name = "backoff_max", .parse = redis_options_param_duration, .offset = CONFIG (backoff_max_ms), .min = 1 },
  { .name = "connect_mode", .parse = redis_options_param_choice, .offset = CONFIG (connect_mode), .choices = connect_mode_choices },
  { .name = "reconnect", .parse = redis_options_param_boolean, .offset = CONFIG (reconnect) },
  { .name = "max_queued", .parse = redis_options_param_uint, .offset = CONFIG (max_queued) },
  { .name = "max_leases", .parse = redis_options_param_uint, .offset = CONFIG (max_leases), .min = 1, .max = G_MAXINT },
  { NULL }
};

#undef CONFIG

/* Choices are written as int. */
G_STATIC_ASSERT (sizeof (RedisPoolStrategy) == sizeof (int));
G_STATIC_ASSERT (sizeof (RedisPoolConnectMode) == sizeof (int));

static void
redis_pool_constructed (GObject *object)
{
  RedisPool *self = REDIS_POOL (object);

  G_OBJECT_CLASS (redis_pool_parent_class)->constructed (object);

  if (self->uri != NULL)
    {
      redis_options_parse_uri_with_params (self->config.options, self->uri, pool_params,
                                           &self->config, &self->uri_error);
      /* It may hold a password: keep only the parsed options. */
      redis_options_clear_secret (&self->uri);
    }

  self->weak_self = g_new0 (GWeakRef, 1);
  g_weak_ref_init (self->weak_self, self);
  self->core = redis_pool_core_new (&self->config, &pool_core_callbacks,
                                    self->weak_self, weak_self_free);
  if (redis_pool_core_get_config (self->core)->options->sentinel != NULL)
    {
      self->sentinel = redis_sentinel_ref (redis_pool_core_get_config (self->core)->options->sentinel);
      self->sentinel_watch = redis_sentinel_watch_object (self->sentinel, object,
                                                          signals[PRIMARY_CHANGED]);
    }
}

static void
redis_pool_dispose (GObject *object)
{
  RedisPool *self = REDIS_POOL (object);

  if (self->sentinel_watch != NULL)
    redis_sentinel_unwatch_object (self->sentinel, g_steal_pointer (&self->sentinel_watch));
  g_clear_pointer (&self->sentinel, redis_sentinel_unref);
  if (self->core != NULL)
    {
      /* Cleared here, on the disposing thread (see pool_core_callbacks);
       * the core frees it. */
      g_weak_ref_set (self->weak_self, NULL);
      self->weak_self = NULL;
      redis_pool_core_set_provider (self->core, NULL, NULL, NULL);
      redis_pool_core_dispose (self->core);
      g_clear_pointer (&self->core, redis_pool_core_unref);
    }

  G_OBJECT_CLASS (redis_pool_parent_class)->dispose (object);
}

static void
redis_pool_finalize (GObject *object)
{
  RedisPool *self = REDIS_POOL (object);

  redis_pool_config_clear (&self->config);
  redis_options_clear_secret (&self->uri);
  g_clear_error (&self->uri_error);

  G_OBJECT_CLASS (redis_pool_parent_class)->finalize (object);
}

static void
redis_pool_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  RedisPool *self = REDIS_POOL (object);
  const RedisPoolConfig *config;

  if (self->core == NULL)
    return;
  config = redis_pool_core_get_config (self->core);

  switch (prop_id)
    {
    case PROP_URI:
      g_value_take_string (value, redis_options_to_uri (config->options));
      break;
    case PROP_POOL_SIZE:
      g_value_set_uint (value, config->size);
      break;
    case PROP_STRATEGY:
      g_value_set_enum (value, config->strategy);
      break;
    case PROP_BACKOFF_INITIAL:
      g_value_set_uint (value, config->backoff_initial_ms);
      break;
    case PROP_BACKOFF_MAX:
      g_value_set_uint (value, config->backoff_max_ms);
      break;
    case PROP_CONNECT_MODE:
      g_value_set_enum (value, config->connect_mode);
      break;
    case PROP_RECONNECT:
      g_value_set_boolean (value, config->reconnect);
      break;
    case PROP_MAX_QUEUED:
      g_value_set_uint (value, config->max_queued);
      break;
    case PROP_MAX_LEASES:
      g_value_set_uint (value, config->max_leases);
      break;
    case PROP_NETWORK_MONITOR:
      g_value_set_object (value, config->network_monitor != NULL ? config->network_monitor :
                                   g_network_monitor_get_default ());
      break;
    case PROP_ACTIVE_CONNECTIONS:
      g_value_set_uint (value, redis_pool_get_active_connections (self));
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        redis_options_get_property (config->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
redis_pool_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  RedisPool *self = REDIS_POOL (object);
  RedisPoolConfig *config = &self->config;

  /* Every property is construct-only: GObject refuses later changes, and
   * constructed() hands the configuration to the core. */
  switch (prop_id)
    {
    case PROP_URI:
      redis_options_clear_secret (&self->uri);
      self->uri = g_value_dup_string (value);
      break;
    case PROP_POOL_SIZE:
      config->size = g_value_get_uint (value);
      break;
    case PROP_STRATEGY:
      config->strategy = g_value_get_enum (value);
      break;
    case PROP_BACKOFF_INITIAL:
      config->backoff_initial_ms = g_value_get_uint (value);
      break;
    case PROP_BACKOFF_MAX:
      config->backoff_max_ms = g_value_get_uint (value);
      break;
    case PROP_CONNECT_MODE:
      config->connect_mode = g_value_get_enum (value);
      break;
    case PROP_RECONNECT:
      config->reconnect = g_value_get_boolean (value);
      break;
    case PROP_MAX_QUEUED:
      config->max_queued = g_value_get_uint (value);
      break;
    case PROP_MAX_LEASES:
      config->max_leases = g_value_get_uint (value);
      break;
    case PROP_NETWORK_MONITOR:
      g_set_object (&config->network_monitor, g_value_get_object (value));
      break;
    default:
      if (prop_id >= PROP_FIRST_OPTION && prop_id < N_PROPS)
        redis_options_set_property (config->options, prop_id - PROP_FIRST_OPTION, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* Long, but only one documentation block and one installation per
 * property and signal: gi-docgen reads each block from here. */
static void
redis_pool_class_init (RedisPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->constructed = redis_pool_constructed;
  object_class->dispose = redis_pool_dispose;
  object_class->finalize = redis_pool_finalize;
  object_class->get_property = redis_pool_get_property;
  object_class->set_property = redis_pool_set_property;

  /**
   * RedisPool:uri:
   *
   * A `redis://`, `rediss://` or `unix://` URI that sets the options at
   * once; see [property@Redis.Connection:uri]. Pools also take the query
   * parameters `pool_size`, `strategy` (`round_robin`, `random`,
   * `least_pending`), `backoff_initial`, `backoff_max` (durations, as
   * the timeouts: `500`, `500ms`, `1.5s`, never below a millisecond),
   * `connect_mode` (`wait_all`, `background`), `reconnect`, `max_queued`
   * and `max_leases`. Read back, it has no password.
   */
  properties[PROP_URI] = g_param_spec_string ("uri", NULL, NULL, NULL, construct);

  /**
   * RedisPool:pool-size:
   *
   * The number of shared connections. Default 5 (the seed's `:pool_size`).
   */
  properties[PROP_POOL_SIZE] = g_param_spec_uint ("pool-size", NULL, NULL, 1, 1024, REDIS_POOL_DEFAULT_SIZE,
                                                  construct);

  /**
   * RedisPool:strategy:
   *
   * How calls are spread over the connections. Default round-robin.
   */
  properties[PROP_STRATEGY] =
    g_param_spec_enum ("strategy", NULL, NULL, REDIS_TYPE_POOL_STRATEGY,
                       REDIS_POOL_STRATEGY_ROUND_ROBIN, construct);

  /**
   * RedisPool:backoff-initial:
   *
   * Milliseconds before the first reconnect attempt of a lost connection;
   * each failed attempt doubles it (with jitter) up to
   * [property@Redis.Pool:backoff-max]. Default 500.
   */
  properties[PROP_BACKOFF_INITIAL] =
    g_param_spec_uint ("backoff-initial", NULL, NULL, 1, G_MAXINT,
                       REDIS_POOL_DEFAULT_BACKOFF_INITIAL,
                       construct);

  /**
   * RedisPool:backoff-max:
   *
   * The longest wait between reconnect attempts, in milliseconds.
   * Default 30000.
   */
  properties[PROP_BACKOFF_MAX] =
    g_param_spec_uint ("backoff-max", NULL, NULL, 1, G_MAXINT,
                       REDIS_POOL_DEFAULT_BACKOFF_MAX,
                       construct);

  /**
   * RedisPool:connect-mode:
   *
   * Whether initialization waits for every connection (the default, and a
   * failure to connect fails it) or returns at once.
   */
  properties[PROP_CONNECT_MODE] =
    g_param_spec_enum ("connect-mode", NULL, NULL, REDIS_TYPE_POOL_CONNECT_MODE,
                       REDIS_POOL_CONNECT_MODE_WAIT_ALL, construct);

  /**
   * RedisPool:reconnect:
   *
   * Whether lost connections are replaced. %FALSE is the seed's
   * `exit_on_disconnection`: a lost slot stays down. Default %TRUE.
   */
  properties[PROP_RECONNECT] =
    g_param_spec_boolean ("reconnect", NULL, NULL, TRUE, construct);

  /**
   * RedisPool:max-queued:
   *
   * How many calls may wait while no connection is live; past it calls fail
   * at once with %REDIS_ERROR_QUEUE_FULL. Each waiting call still keeps its
   * own deadline. Default 10000.
   */
  properties[PROP_MAX_QUEUED] =
    g_param_spec_uint ("max-queued", NULL, NULL, 0, G_MAXUINT,
                       REDIS_POOL_DEFAULT_MAX_QUEUED,
                       construct);

  /**
   * RedisPool:max-leases:
   *
   * The most dedicated connections the pool keeps open at once, beside its
   * [property@Redis.Pool:pool-size] shared ones: leases from
   * [method@Redis.Pool.acquire_async] (held, or being reset after
   * [method@Redis.Pool.release]), blocking commands sent through the
   * shared API, and the idle ones kept for reuse. When all are in use, an
   * acquire or a blocking command waits, first come first served, for one
   * to come back — an acquire up to [property@Redis.Pool:command-timeout]
   * (without limit when that is 0), a blocking command up to its own
   * deadline — and then fails with %REDIS_ERROR_POOL_EXHAUSTED; nothing was
   * sent. A released lease is handed to the next waiter once its reset is
   * answered, without opening a new connection.
   *
   * Default 32: as many concurrent transactions with WATCH or blocked
   * consumers as a process typically runs, while the pool stays well
   * under the server's `maxclients` (10000) even with many processes.
   * Raise it for more concurrent blocking consumers: a blocking command
   * holds its connection for its whole block time.
   */
  properties[PROP_MAX_LEASES] =
    g_param_spec_uint ("max-leases", NULL, NULL, 1, G_MAXINT,
                       REDIS_POOL_DEFAULT_MAX_LEASES,
                       construct);

  /**
   * RedisPool:network-monitor:
   *
   * The [iface@Gio.NetworkMonitor] that tells whether the server can be
   * reached; %NULL (the default) uses [func@Gio.NetworkMonitor.get_default].
   *
   * While the monitor says that the server's address cannot be reached
   * ([method@Gio.NetworkMonitor.can_reach_async], asked when the pool is
   * made and again on every [signal@Gio.NetworkMonitor::network-changed],
   * answering %G_IO_ERROR_NETWORK_UNREACHABLE or
   * %G_IO_ERROR_HOST_UNREACHABLE; until the first answer, and after any
   * other failure, the server counts as reachable), the pool makes no
   * reconnect attempts (calls wait in its queue and fail at their deadline
   * with %REDIS_ERROR_SEND_TIMEOUT: nothing was sent). When the address is
   * reachable again, every shared connection that is down reconnects at
   * once, its backoff reset. An initialization in the `wait-all` connect
   * mode still makes its attempts (and fails if they do).
   *
   * Servers on a loopback address (`127.0.0.0/8`, `::1`, `localhost`), on
   * a Unix socket or found through Sentinel are always considered
   * reachable: the monitor is not asked, nor the default one created.
   * [method@Redis.Pool.get_info] shows the current state as
   * `network-available`.
   *
   * Read back, gives the monitor in use (the default one when none was
   * set).
   */
  properties[PROP_NETWORK_MONITOR] =
    g_param_spec_object ("network-monitor", NULL, NULL, G_TYPE_NETWORK_MONITOR,
                         construct);

  /**
   * RedisPool:active-connections:
   *
   * The number of shared connections that are up. Notified when it
   * changes.
   */
  properties[PROP_ACTIVE_CONNECTIONS] =
    g_param_spec_uint ("active-connections", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * RedisPool:host:
   *
   * The host name or IP address of the server. Default `127.0.0.1`.
   */
  /**
   * RedisPool:port:
   *
   * The TCP port of the server. Default 6379.
   */
  /**
   * RedisPool:socket-path:
   *
   * The path of a Unix socket to connect to instead of TCP.
   */
  /**
   * RedisPool:database:
   *
   * The database every connection selects. Default 0.
   */
  /**
   * RedisPool:username:
   *
   * The ACL user name for AUTH, or %NULL for the default user.
   */
  /**
   * RedisPool:password:
   *
   * The password for AUTH. Write-only: never readable, logged, or printed
   * in an error, in [method@Redis.Pool.get_info] or in a URI.
   */
  /**
   * RedisPool:client-name:
   *
   * The name every connection sets with CLIENT SETNAME.
   */
  /**
   * RedisPool:tls:
   *
   * Whether to speak TLS. Set by `rediss://` URIs.
   */
  /**
   * RedisPool:tls-ca-file:
   *
   * A PEM file of CA certificates to verify the server with.
   */
  /**
   * RedisPool:tls-certificate-file:
   *
   * A PEM client certificate for servers that require one.
   */
  /**
   * RedisPool:tls-key-file:
   *
   * The private key of [property@Redis.Pool:tls-certificate-file].
   */
  /**
   * RedisPool:tls-validation-flags:
   *
   * The certificate checks that must pass. Default: all of them. Each
   * connection applies its own checks and [property@Redis.Pool:tls-ca-file],
   * also when it resumes the TLS session of an earlier connection.
   */
  /**
   * RedisPool:tls-server-name:
   *
   * The name the server's certificate must have, also sent as SNI, instead
   * of the host connected to; %NULL (the default) checks that host. For
   * servers reached by IP address whose certificates name hosts, as with
   * [property@Redis.Pool:sentinels], which announce addresses: there it
   * applies to the servers found, not to the sentinels, which are checked
   * against the hosts of their own addresses. URI parameter
   * `tls_server_name`. See the high availability guide.
   */
  /**
   * RedisPool:connect-timeout:
   *
   * Milliseconds allowed for connect, TLS and handshake together; at
   * least 1. Default 5000. In a URI, `connect_timeout=` takes a duration
   * (`500`, `500ms`, `1.5s`; see [property@Redis.Connection:uri]).
   */
  /**
   * RedisPool:command-timeout:
   *
   * Milliseconds allowed for each call, including time spent waiting for a
   * connection; 0 for no limit. Default 5000. In a URI, `command_timeout=`
   * takes a duration (`500`, `500ms`, `1.5s`; see
   * [property@Redis.Connection:uri]); a value below a millisecond such as
   * `0.3` is refused rather than read as 0 (no limit).
   */
  /**
   * RedisPool:stall-timeout:
   *
   * Milliseconds of silence from the server, once a written call is past its
   * deadline, after which the connection is considered dead (blackholed or
   * half-open) and closed as lost; a pool then replaces it. 0 turns stall
   * detection off. Default 10000. In a URI, `stall_timeout=` takes a
   * duration (see [property@Redis.Connection:uri]).
   */
  /**
   * RedisPool:health-check-interval:
   *
   * Milliseconds of idleness (nothing in flight, nothing received) after
   * which a connection sends a PING, so that a vanished peer is noticed
   * (through [property@Redis.Pool:stall-timeout]) before a user command meets it.
   * 0 turns it off. Default 30000. In a URI, `health_check_interval=`
   * takes a duration (see [property@Redis.Connection:uri]).
   */
  /**
   * RedisPool:max-reply-bytes:
   *
   * The largest reply accepted, in bytes as they come on the wire (RESP
   * framing included). Default 512 MiB.
   */
  /**
   * RedisPool:max-elements:
   *
   * The largest array reply accepted, in elements. Default 16777216.
   */
  /**
   * RedisPool:max-line-length:
   *
   * The longest status, error or header line accepted. Default 65536.
   */
  /**
   * RedisPool:max-depth:
   *
   * The deepest nesting of arrays accepted in a reply (`*1\r\n:1\r\n` is
   * one level); a deeper reply fails with %REDIS_ERROR_REPLY_TOO_LARGE and
   * the connection is replaced. `COMMAND` nests 8 levels, `COMMAND DOCS`
   * 12. From 1 to 1024; default 64.
   */
  /**
   * RedisPool:sentinels:
   *
   * The Sentinel processes that know where the server is, as `host:port`
   * (`[address]:port` for IPv6; the port defaults to 26379), in the order
   * to try them. When set, [property@Redis.Pool:host] and
   * [property@Redis.Pool:port] are not used: every connect (and every
   * reconnect) asks the sentinels, in turn and each within a short
   * deadline (1 s, or connect-timeout if shorter), for the address of
   * [property@Redis.Pool:master-name]'s primary (`SENTINEL
   * get-master-addr-by-name`) or of one of its replicas (`SENTINEL
   * replicas`, see [property@Redis.Pool:role]); the sentinel that answered is
   * asked first next time. The server found must then answer `ROLE` with
   * the role asked for, or the connection is closed and discovery runs
   * again on the next attempt. When no sentinel answers, the connect fails
   * with %REDIS_ERROR_CONNECT_FAILED naming every sentinel tried and why.
   *
   * The URI form is
   * `redis+sentinel://[user[:password]@]host[:port][,host[:port]…]/master-name[/db][?query]`,
   * or `rediss+sentinel://…` for TLS (to the sentinels and to the servers
   * they name, with the same settings; see [property@Redis.Pool:tls-server-name]):
   * the user and password are the server's, the sentinels' are the query
   * parameters `sentinel_username` and `sentinel_password`, and
   * `role=primary` or `role=replica` selects the role.
   */
  /**
   * RedisPool:master-name:
   *
   * The name the sentinels monitor the primary under (`sentinel monitor
   * <master-name> …`). Required with [property@Redis.Pool:sentinels].
   */
  /**
   * RedisPool:sentinel-username:
   *
   * The user name sent to the sentinels with `AUTH` (their ACL), or %NULL.
   */
  /**
   * RedisPool:sentinel-password:
   *
   * The password sent to the sentinels with `AUTH`, or %NULL. Write-only:
   * it is never readable, logged or part of a message.
   */
  /**
   * RedisPool:role:
   *
   * With [property@Redis.Pool:sentinels], whether connections go to the
   * primary or to a replica (picked at random among those the sentinel
   * reports up). Default %REDIS_SERVER_ROLE_PRIMARY.
   */
  redis_options_install_properties (object_class, PROP_FIRST_OPTION,
                                    &properties[PROP_FIRST_OPTION]);
  g_object_class_install_properties (object_class, PROP_FIRST_OPTION, properties);

  /**
   * RedisPool::connection-lost:
   * @self: the pool
   * @index: the slot of the connection, from 0 to size - 1
   * @error: why it was lost
   *
   * Emitted once for each lost connection, in the main context the pool was
   * created in. Handlers may call back into the pool.
   */
  signals[CONNECTION_LOST] =
    g_signal_new ("connection-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_ERROR);

  /**
   * RedisPool::connection-replaced:
   * @self: the pool
   * @index: the slot of the connection, from 0 to size - 1
   *
   * Emitted once a lost connection has been replaced by a new one that has
   * finished its handshake.
   */
  signals[CONNECTION_REPLACED] =
    g_signal_new ("connection-replaced", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);

  /**
   * RedisPool::primary-changed:
   * @self: the pool
   * @old_address: the old primary, as `host:port`
   * @new_address: the new primary, as `host:port`
   *
   * Emitted, in the main context the pool was created in, when a sentinel
   * announces that the primary of [property@Redis.Pool:master-name] moved
   * (`+switch-master`), while the pool has connections through
   * [property@Redis.Pool:sentinels]. By then the connections to the old
   * primary accept no more calls: calls not yet written go to the new
   * primary, and those written already get the old primary's replies.
   */
  signals[PRIMARY_CHANGED] =
    g_signal_new ("primary-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

static void
redis_pool_init (RedisPool *self)
{
  redis_pool_config_init (&self->config);
}

/* ---- RedisClient -------------------------------------------------------- */

static void
redis_pool_submit (RedisClient *client,
                   RedisCall   *call)
{
  RedisPool *self = REDIS_POOL (client);

  if (self->uri_error != NULL)
    {
      redis_call_fail (call, g_error_copy (self->uri_error));
      return;
    }

  /* Disposed: the core is gone. */
  if (self->core == NULL)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_CLOSED,
                                          "%s was not sent: the pool is closed",
                                          redis_call_get_name (call)));
      return;
    }

  if (call->flags & REDIS_COMMAND_FLAG_CONNECTION_STATE)
    {
      redis_call_fail (call, g_error_new (REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                                          "%s changes the state of the connection it runs on; "
                                          "on a pool, run it on a connection leased with "
                                          "redis_pool_acquire_async()",
                                          redis_call_get_name (call)));
      return;
    }

  redis_pool_core_submit (self->core, call);
}

static void
redis_pool_close_async (RedisClient         *client,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  RedisPool *self = REDIS_POOL (client);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, redis_pool_close_async);
  if (self->core == NULL)
    {
      /* Disposed: closed already. */
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  redis_pool_core_close (self->core, task);
}

static gboolean
redis_pool_close_finish (RedisClient   *client,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
client_iface_init (RedisClientInterface *iface)
{
  iface->submit = redis_pool_submit;
  iface->close_async = redis_pool_close_async;
  iface->close_finish = redis_pool_close_finish;
}

/* ---- initialization ----------------------------------------------------- */

/* Idempotent, as GIO asks: the first call starts the connections; calls
 * made while they come up wait for the outcome (or for their own
 * cancellable), and every call, then or later, gets that one outcome
 * without connecting again. The first call's cancellable cancels the
 * initialization itself (the pool is then closed), as in GIO. See
 * redis_pool_core_init(). */
static void
redis_pool_init_async (GAsyncInitable      *initable,
                       int                  io_priority,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  RedisPool *self = REDIS_POOL (initable);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, redis_pool_init_async);
  g_task_set_name (task, "[redispool] pool init");

  if (self->core == NULL)
    {
      /* Disposed. */
      g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CLOSED, "The pool is closed");
      return;
    }

  redis_pool_core_init (self->core, task, self->uri_error);
}



static gboolean
redis_pool_init_finish (GAsyncInitable  *initable,
                        GAsyncResult    *result,
                        GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, initable), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
async_initable_iface_init (GAsyncInitableIface *iface)
{
  iface->init_async = redis_pool_init_async;
  iface->init_finish = redis_pool_init_finish;
}

static void
initable_iface_init (GInitableIface *iface)
{
  iface->init = redis_sync_initable_init;
}

/* ---- public API --------------------------------------------------------- */

/**
 * redis_pool_new_sync:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Creates a pool and connects it, blocking the calling thread. To set
 * options as properties, use g_initable_new() with %REDIS_TYPE_POOL.
 *
 * Errors: %REDIS_ERROR_INVALID_ARGUMENT for a malformed URI or an unknown
 * option; with [property@Redis.Pool:connect-mode] `wait-all` (the
 * default) also %REDIS_ERROR_CONNECT_FAILED, %REDIS_ERROR_AUTH_FAILED or
 * %REDIS_ERROR_TLS_FAILED when a connection cannot be made, and
 * %G_IO_ERROR_CANCELLED. No command of the caller's was sent: trying
 * again is always safe.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisPool) pool =
 *   redis_pool_new_sync ("redis://127.0.0.1:6379/0?pool_size=3",
 *                        NULL, &error);
 *
 * if (pool == NULL)
 *   g_printerr ("cannot connect: %s\n", error->message);
 * ```
 *
 * ```python
 * uri = 'redis://127.0.0.1:6379/0?pool_size=3&command_timeout=2s'
 * pool = Redis.Pool.new_sync(uri, None)
 * print(pool.get_size(), pool.get_active_connections())
 * ```
 *
 * Returns: (transfer full): a pool, or %NULL with @error set
 */
RedisPool *
redis_pool_new_sync (const char    *uri,
                     GCancellable  *cancellable,
                     GError       **error)
{
  return g_initable_new (REDIS_TYPE_POOL, cancellable, error, "uri", uri, NULL);
}

/**
 * redis_pool_new_async:
 * @uri: (nullable): a `redis://`, `rediss://` or `unix://` URI, or %NULL
 *   for `redis://127.0.0.1:6379`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the pool is ready or failed
 * @user_data: data for @callback
 *
 * Creates a pool and connects it without blocking. Finish with
 * [ctor@Redis.Pool.new_finish].
 *
 * Errors: those of [ctor@Redis.Pool.new_sync].
 *
 * ```c
 * #include <redispool.h>
 *
 * static void
 * pool_ready (GObject *source, GAsyncResult *result, gpointer user_data)
 * {
 *   RedisPool **pool = user_data;
 *   g_autoptr(GError) error = NULL;
 *
 *   *pool = redis_pool_new_finish (result, &error);
 *   if (*pool == NULL)
 *     g_error ("cannot connect: %s", error->message);
 * }
 *
 * int
 * main (void)
 * {
 *   g_autoptr(RedisPool) pool = NULL;
 *
 *   redis_pool_new_async ("redis://127.0.0.1:6379/0?pool_size=3", NULL,
 *                         pool_ready, &pool);
 *   while (pool == NULL)
 *     g_main_context_iteration (NULL, TRUE);
 *   g_print ("%u connections\n", redis_pool_get_active_connections (pool));
 *   return 0;
 * }
 * ```
 *
 * ```python
 * loop = GLib.MainLoop()
 *
 * def ready(source, result):
 *     global pool
 *     pool = Redis.Pool.new_finish(result)
 *     loop.quit()
 *
 * Redis.Pool.new_async('redis://127.0.0.1:6379/0', None, ready)
 * loop.run()
 * print(pool.get_active_connections())
 * ```
 */
void
redis_pool_new_async (const char          *uri,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_async_initable_new_async (REDIS_TYPE_POOL, G_PRIORITY_DEFAULT, cancellable,
                              callback, user_data, "uri", uri, NULL);
}

/**
 * redis_pool_new_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Redis.Pool.new_async].
 *
 * Returns: (transfer full): a pool, or %NULL with @error set
 */
RedisPool *
redis_pool_new_finish (GAsyncResult  *result,
                       GError       **error)
{
  g_autoptr(GObject) source = g_async_result_get_source_object (result);
  GObject *object = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error);

  return object != NULL ? REDIS_POOL (object) : NULL;
}

/**
 * redis_pool_get_size:
 * @self: a [class@Redis.Pool]
 *
 * Returns the number of shared connections.
 *
 * Returns: the pool size
 */
guint
redis_pool_get_size (RedisPool *self)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), 0);

  return self->core != NULL ? redis_pool_core_get_config (self->core)->size : 0;
}

/**
 * redis_pool_get_active_connections:
 * @self: a [class@Redis.Pool]
 *
 * Returns how many shared connections are up right now.
 *
 * Returns: the number of live connections
 */
guint
redis_pool_get_active_connections (RedisPool *self)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), 0);

  return self->core != NULL ? redis_pool_core_get_active (self->core) : 0;
}

void
redis_pool_set_readonly_private (RedisPool *self)
{
  g_return_if_fail (REDIS_IS_POOL (self));
  g_return_if_fail (self->core != NULL);

  /* The options are frozen for everything public; this one is only ever
   * set before the first connection copies them (see the header). */
  ((RedisOptions *) redis_pool_core_get_config (self->core)->options)->readonly = TRUE;
}

void
redis_pool_share_credentials_private (RedisPool        *self,
                                      RedisCredentials *credentials)
{
  g_return_if_fail (REDIS_IS_POOL (self));
  g_return_if_fail (self->core != NULL);

  redis_pool_core_share_credentials (self->core, credentials);
}

RedisCredentials *
redis_pool_get_credentials_private (RedisPool *self)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);
  g_return_val_if_fail (self->core != NULL, NULL);

  return redis_pool_core_get_credentials (self->core);
}

gboolean
redis_pool_is_closed_private (RedisPool *self)
{
  return redis_pool_core_is_closed (self->core);
}

guint
redis_pool_fail_queued_private (RedisPool    *self,
                                const GError *error)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), 0);

  return redis_pool_core_fail_queued (self->core, error);
}

/**
 * redis_pool_get_strategy:
 * @self: a [class@Redis.Pool]
 *
 * Returns the dispatch strategy.
 *
 * Returns: the strategy
 */
RedisPoolStrategy
redis_pool_get_strategy (RedisPool *self)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), REDIS_POOL_STRATEGY_ROUND_ROBIN);

  return self->core != NULL ? redis_pool_core_get_config (self->core)->strategy
                            : REDIS_POOL_STRATEGY_ROUND_ROBIN;
}

/**
 * redis_pool_get_info:
 * @self: a [class@Redis.Pool]
 *
 * Returns a snapshot of the pool as a dictionary (`a{sv}`), which bindings
 * turn into a native dictionary:
 *
 * - `size` (`u`), `active` (`u`), `strategy` (`s`: `round-robin`, `random`,
 *   `least-pending`) — the seed's `info`;
 * - `in-flight` (`u`): calls on the shared connections not yet answered;
 * - `queued` (`u`): calls waiting for a live connection;
 * - `reconnects` (`t`): connections replaced so far;
 * - `leased` (`u`) and `idle-leases` (`u`): dedicated connections in use
 *   (connecting, leased or blocked, or being reset after a release) and
 *   kept for reuse; together at most [property@Redis.Pool:max-leases];
 * - `lease-waiters` (`u`): acquires and blocking commands waiting for a
 *   dedicated connection because all of them are in use;
 * - `closed` (`b`);
 * - `network-available` (`b`): whether the server's address is
 *   considered reachable (see [property@Redis.Pool:network-monitor]);
 * - `connections` (`aa{sv}`): per slot `index` (`u`), `state` (`s`: `down`,
 *   `connecting`, `ready`, `failing`), `in-flight` (`u`), `client-id`
 *   (`x`), `reconnects` (`t`) and, after a failure, `last-error` (`s`).
 *
 * Returns: (transfer full): a new, non-floating #GVariant
 */
GVariant *
redis_pool_get_info (RedisPool *self)
{
  GVariantBuilder builder;

  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);

  if (self->core != NULL)
    return redis_pool_core_get_info (self->core);

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "closed", g_variant_new_boolean (TRUE));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

typedef struct
{
  GWeakRef                  pool;
  RedisCredentialsProvider  func;
  gpointer                  data;
  GDestroyNotify            destroy;
} PoolProvider;

static void
pool_provider_free (gpointer data)
{
  PoolProvider *provider = data;

  g_weak_ref_clear (&provider->pool);
  if (provider->destroy != NULL)
    provider->destroy (provider->data);
  g_free (provider);
}

/* The pool's context (the core's). */
static void
pool_provider_cb (RedisCredentialsRequest *request,
                  gpointer                 data)
{
  PoolProvider *provider = data;
  RedisPool *pool = g_weak_ref_get (&provider->pool);

  if (pool == NULL)
    return;   /* the request, dropped, fails */
  provider->func (pool, request, provider->data);
  g_object_unref (pool);
}

/**
 * redis_pool_set_credentials_provider:
 * @self: a [class@Redis.Pool]
 * @provider: (nullable) (scope notified) (closure user_data) (destroy destroy):
 *   the function asked for credentials, or %NULL to stop asking
 * @user_data: (nullable): data for @provider
 * @destroy: (nullable): frees @user_data when the provider is replaced or
 *   the pool is disposed
 *
 * Sets a function that the pool asks for credentials before each connect
 * of one of its shared connections (the first ones, and every reconnect),
 * for credentials that expire or live elsewhere (a token service, a
 * keyring). It is called in the thread-default main context of the pool's
 * creation, with a [class@Redis.CredentialsRequest] that it answers, then
 * or later and from any thread, with
 * [method@Redis.CredentialsRequest.complete] or
 * [method@Redis.CredentialsRequest.fail]; the connection waits for the
 * answer (keep a reference to the request to answer later). That context
 * must run for the provider to be asked: a sync call made from it while
 * no connection is up waits until its deadline instead.
 *
 * When the server refuses the credentials it gave (`AUTH` fails: a token
 * expired), the pool asks again at once with
 * [method@Redis.CredentialsRequest.get_stale] %TRUE, before backing off.
 * When it fails, the attempt counts as refused by `AUTH`: calls waiting
 * for a connection fail with %REDIS_ERROR_AUTH_FAILED if no connection is
 * up, and the pool asks again after its backoff.
 *
 * Set it before the pool connects (build the pool with g_object_new() and
 * initialize it after, or let its first call connect it) for it to be
 * asked for the first connections. Dedicated connections (leases,
 * blocking commands) use the credentials of its last answer, or those of
 * [method@Redis.Pool.set_credentials], whichever came last.
 */
void
redis_pool_set_credentials_provider (RedisPool                *self,
                                     RedisCredentialsProvider  provider,
                                     gpointer                  user_data,
                                     GDestroyNotify            destroy)
{
  PoolProvider *p;

  g_return_if_fail (REDIS_IS_POOL (self));

  if (self->core == NULL || provider == NULL)
    {
      if (self->core != NULL)
        redis_pool_core_set_provider (self->core, NULL, NULL, NULL);
      if (destroy != NULL)
        destroy (user_data);
      return;
    }
  p = g_new0 (PoolProvider, 1);
  g_weak_ref_init (&p->pool, self);
  p->func = provider;
  p->data = user_data;
  p->destroy = destroy;
  redis_pool_core_set_provider (self->core, pool_provider_cb, p, pool_provider_free);
}

/**
 * redis_pool_set_credentials:
 * @self: a [class@Redis.Pool]
 * @username: (nullable): the ACL user, or %NULL for the `default` user
 * @password: (nullable): the password (or token), or %NULL for none
 *
 * Changes the credentials of the pool at run time, for example when the
 * server's password is rotated (`ACL SETUSER`), or when a token expires.
 *
 * Every connection the pool opens from now on (a reconnect, a new
 * dedicated connection) authenticates with the new credentials. The shared
 * connections and the idle dedicated ones are re-authenticated in place
 * with `AUTH`, queued behind the commands already sent: nothing is dropped
 * or reconnected, so the server may then remove the old password. A
 * connection that a lease ([method@Redis.Pool.acquire_async]) holds at
 * that moment is not (an `AUTH` could fall inside its holder's `MULTI`):
 * it keeps its session, also when it is given back and leased again, until
 * it is closed; re-authenticate it yourself with
 * [method@Redis.Connection.set_credentials] if needed. With @password
 * %NULL, new connections send no `AUTH` and live ones are left as they are;
 * a @username needs a @password.
 *
 * The password is copied and never logged, put into an error message or
 * returned by a property or [method@Redis.Pool.get_info]; the pool zeroes
 * its copy when it is replaced. May be called from any thread.
 */
void
redis_pool_set_credentials (RedisPool  *self,
                            const char *username,
                            const char *password)
{
  g_return_if_fail (REDIS_IS_POOL (self));
  g_return_if_fail (username == NULL || password != NULL);

  if (self->core != NULL)
    redis_pool_core_set_credentials (self->core, username, password);
}

/**
 * redis_pool_acquire_async:
 * @self: a [class@Redis.Pool]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the leased connection
 * @user_data: data for @callback
 *
 * Leases a connection that nobody else uses until it is handed back with
 * [method@Redis.Pool.release]: for WATCH/MULTI/EXEC with optimistic
 * locking, SELECT, blocking commands and anything else that depends on
 * connection state. The lease is a dedicated connection, not one of the
 * shared slots: an idle one kept from an earlier lease, one whose reset
 * after a release is in flight (handed over once the reset is answered),
 * or a new one while fewer than [property@Redis.Pool:max-leases] exist.
 *
 * When all of them are in use, the call waits for one to come back, first
 * come first served, up to [property@Redis.Pool:command-timeout] (without
 * limit when that is 0); past it, it fails with
 * %REDIS_ERROR_POOL_EXHAUSTED.
 *
 * Errors: %REDIS_ERROR_POOL_EXHAUSTED, %REDIS_ERROR_CLOSED (the pool was
 * closed), %REDIS_ERROR_CONNECT_FAILED, %REDIS_ERROR_AUTH_FAILED,
 * %REDIS_ERROR_TLS_FAILED (opening the dedicated connection), and
 * %G_IO_ERROR_CANCELLED. No command was sent: trying again is always
 * safe. See
 * [method@Redis.Pool.acquire_sync] for an example.
 */
void
redis_pool_acquire_async (RedisPool           *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (REDIS_IS_POOL (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, redis_pool_acquire_async);

  if (self->uri_error != NULL || self->core == NULL)
    {
      if (self->uri_error != NULL)
        g_task_return_error (task, g_error_copy (self->uri_error));
      else
        g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CLOSED, "The pool is closed");
      g_object_unref (task);
      return;
    }

  redis_pool_core_acquire (self->core, task);
}

/**
 * redis_pool_acquire_finish:
 * @self: a [class@Redis.Pool]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Pool.acquire_async].
 *
 * Returns: (transfer full): the leased connection, or %NULL with @error set
 */
RedisConnection *
redis_pool_acquire_finish (RedisPool     *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * redis_pool_acquire_sync:
 * @self: a [class@Redis.Pool]
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of [method@Redis.Pool.acquire_async].
 *
 * Errors: those of [method@Redis.Pool.acquire_async].
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisConnection) lease =
 *   redis_pool_acquire_sync (pool, NULL, &error);
 * g_autoptr(RedisReply) watched = NULL;
 * g_autoptr(RedisBatch) batch = redis_batch_new ();
 * g_autoptr(GPtrArray) replies = NULL;
 *
 * if (lease == NULL)
 *   g_error ("no lease: %s", error->message);
 * // WATCH is connection state: it needs a connection of its own
 * watched = redis_client_command_sync (REDIS_CLIENT (lease),
 *     (const char *[]) { "WATCH", "stock", NULL }, NULL, &error);
 * if (watched == NULL)
 *   g_error ("WATCH failed: %s", error->message);
 * redis_batch_add (batch, (const char *[]) { "DECR", "stock", NULL });
 * replies = redis_client_transaction_sync (REDIS_CLIENT (lease), batch,
 *                                          NULL, &error);
 * if (g_error_matches (error, REDIS_ERROR, REDIS_ERROR_WATCH_FAILED))
 *   g_print ("stock changed meanwhile: read it again, retry\n");
 * redis_pool_release (pool, lease);
 * ```
 *
 * ```python
 * lease = pool.acquire_sync(None)
 * try:
 *     lease.command_sync(['WATCH', 'stock'], None)
 *     batch = Redis.Batch()
 *     batch.add(['DECR', 'stock'])
 *     lease.transaction_sync(batch, None)
 * except GLib.Error as e:
 *     if not e.matches(Redis.Error.quark(), Redis.Error.WATCH_FAILED):
 *         raise
 *     print('stock changed meanwhile: read it again, retry')
 * finally:
 *     pool.release(lease)
 * ```
 *
 * Returns: (transfer full): the leased connection, or %NULL with @error set
 */
RedisConnection *
redis_pool_acquire_sync (RedisPool     *self,
                         GCancellable  *cancellable,
                         GError       **error)
{
  RedisSyncCall sync;
  RedisConnection *ret;

  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);

  redis_sync_call_begin (&sync);
  redis_pool_acquire_async (self, cancellable, redis_sync_call_store, &sync);
  redis_sync_call_wait (&sync);
  ret = redis_pool_acquire_finish (self, sync.result, error);
  redis_sync_call_end (&sync);
  return ret;
}

/**
 * redis_pool_release:
 * @self: a [class@Redis.Pool]
 * @connection: a connection from [method@Redis.Pool.acquire_async]
 *
 * Ends a lease. Calls on @connection fail with %REDIS_ERROR_CLOSED from
 * now on. The pool resets the connection (DISCARD, UNWATCH, SELECT of the
 * configured database) and keeps it for the next lease, or closes it when
 * the reset fails. Dropping the last reference to a leased connection
 * releases it too.
 */
void
redis_pool_release (RedisPool       *self,
                    RedisConnection *connection)
{
  g_return_if_fail (REDIS_IS_POOL (self));
  g_return_if_fail (REDIS_IS_CONNECTION (connection));
  g_return_if_fail (redis_connection_is_lease (connection));

  redis_connection_end_lease (connection);
}

/**
 * redis_pool_create_subscriber:
 * @self: a [class@Redis.Pool]
 *
 * Makes a [class@Redis.Subscriber] with the pool's connection options
 * (server, TLS, database, timeouts, health check, stall timeout), backoff
 * and network monitor. It follows the pool's credentials: each of its
 * connects uses the pool's current ones, so a later
 * [method@Redis.Pool.set_credentials] applies to its next reconnect (not
 * to its live connection: see [method@Redis.Subscriber.set_credentials]),
 * and the pool's credentials provider
 * ([method@Redis.Pool.set_credentials_provider]) is asked before each of
 * its connects, for as long as the pool exists; after that it keeps the
 * last credentials. It holds no reference to the pool. It has a connection of its own,
 * never one of the pool's, and is not connected yet: initialize it with
 * g_async_initable_init_async() or g_initable_init(). Its signals are
 * emitted in the thread-default main context of the caller.
 *
 * Returns: (transfer full): a new subscriber
 */
RedisSubscriber *
redis_pool_create_subscriber (RedisPool *self)
{
  const RedisPoolConfig *config;

  g_return_val_if_fail (REDIS_IS_POOL (self), NULL);
  g_return_val_if_fail (self->core != NULL, NULL);

  config = redis_pool_core_get_config (self->core);
  return redis_subscriber_new_for_pool (config->options, config->backoff_initial_ms,
                                        config->backoff_max_ms, config->network_monitor,
                                        redis_pool_core_get_credentials (self->core));
}
