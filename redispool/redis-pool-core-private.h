/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-call-private.h"
#include "redis-credentials-private.h"
#include "redis-options-private.h"
#include "redis-pool.h"

G_BEGIN_DECLS

/* The pool core: the machinery behind RedisPool, as a plain reference
 * counted struct (redis-pool.c keeps the GObject, its initable interfaces,
 * properties, signals and public API). It owns the shared connections
 * (slots, their reconnects with backoff), the dispatch of calls over them
 * and the queue of calls waiting for one, the dedicated connections of
 * leases and blocking commands, initialization and close. See the top of
 * redis-pool-core.c for the slot states and the lease life cycle.
 *
 * Every function here may be called from any thread. The core lives as
 * long as the longest of its owner's reference and the callbacks and
 * sources still in flight; once closed it only finishes what is in flight. */
typedef struct _RedisPoolCore RedisPoolCore;

/* Defaults of the pool's properties (see RedisPool). */
#define REDIS_POOL_DEFAULT_SIZE            5
#define REDIS_POOL_DEFAULT_BACKOFF_INITIAL 500
#define REDIS_POOL_DEFAULT_BACKOFF_MAX     30000
#define REDIS_POOL_DEFAULT_MAX_QUEUED      10000
#define REDIS_POOL_DEFAULT_MAX_LEASES      32

/* The configuration of a pool: what its properties and URI set, frozen
 * once the core is made. */
typedef struct
{
  RedisOptions         *options;
  guint                 size;
  RedisPoolStrategy     strategy;
  guint                 backoff_initial_ms;
  guint                 backoff_max_ms;
  RedisPoolConnectMode  connect_mode;
  gboolean              reconnect;
  guint                 max_queued;
  guint                 max_leases;
  GNetworkMonitor      *network_monitor;   /* NULL: the default one */
} RedisPoolConfig;

/* Fills @config with the defaults (new options included). */
void                   redis_pool_config_init     (RedisPoolConfig              *config);
void                   redis_pool_config_clear    (RedisPoolConfig              *config);

/* How the core reports to its owner. Each is called in the main context
 * that was the thread-default one when the core was made, with no lock
 * held, one event at a time in the order they happened, and never once
 * the core is closed; it may call back into the core. @active_changed
 * follows every event, after @connection_lost or @connection_replaced
 * when there is one. */
typedef struct
{
  /* Slot @index, which was up, lost its connection. */
  void (*connection_lost)     (guint         index,
                               const GError *error,
                               gpointer      user_data);
  /* Slot @index is up again after a loss. */
  void (*connection_replaced) (guint         index,
                               gpointer      user_data);
  /* The number of slots that are up changed. */
  void (*active_changed)      (gpointer      user_data);
} RedisPoolCoreCallbacks;

/* Takes @config's options (NULL afterwards) and copies the rest; raises a
 * backoff maximum below the initial backoff to it. @callbacks is static;
 * @notify frees @user_data when the core is freed (on any thread). */
RedisPoolCore         *redis_pool_core_new        (RedisPoolConfig              *config,
                                                   const RedisPoolCoreCallbacks *callbacks,
                                                   gpointer                      user_data,
                                                   GDestroyNotify                notify);
RedisPoolCore         *redis_pool_core_ref        (RedisPoolCore                *core);
void                   redis_pool_core_unref      (RedisPoolCore                *core);
/* The owner lets go: closes the core (as redis_pool_core_close() without
 * a task) and stops its timers, which hold references to it. The owner
 * then drops its own reference. */
void                   redis_pool_core_dispose    (RedisPoolCore                *core);

const RedisPoolConfig *redis_pool_core_get_config (RedisPoolCore                *core);

/* Initialization, once, as GInitable asks (see RedisInitOnce): the first
 * call starts the connections and completes @task (a reference is added)
 * with the outcome, as a boolean: with every slot up or the first error
 * in the wait-all mode (the core is then closed), at once in the
 * background mode. Later and concurrent calls get that same outcome;
 * @task's cancellable, on the first call, cancels the initialization.
 * With @config_error (a URI that did not parse) the initialization fails
 * with it, and the core is closed. */
void                   redis_pool_core_init       (RedisPoolCore                *core,
                                                   GTask                        *task,
                                                   const GError                 *config_error);

/* Sets @call's deadline (command-timeout) and sends it on a shared
 * connection, or for a blocking command on a dedicated one; completes it
 * with an error when neither can be had. */
void                   redis_pool_core_submit     (RedisPoolCore                *core,
                                                   RedisCall                    *call);

/* Leases a dedicated connection: completes @task (taken) with a
 * RedisConnection (g_task_return_pointer(), freed with g_object_unref())
 * or an error. */
void                   redis_pool_core_acquire    (RedisPoolCore                *core,
                                                   GTask                        *task);

/* Closes: calls waiting for a connection fail with REDIS_ERROR_CLOSED, and
 * so do later ones. With @task (taken), closes gracefully (the replies in
 * flight still arrive, each connection within command-timeout) and
 * completes it with TRUE once every connection is closed; without, closes
 * at once. Idempotent. */
void                   redis_pool_core_close      (RedisPoolCore                *core,
                                                   GTask                        *task);

/* The number of slots that are up. */
guint                  redis_pool_core_get_active (RedisPoolCore                *core);
/* Whether the core is closed (by redis_pool_core_close(), or by a failed
 * wait-all initialization); lock-free. */
gboolean               redis_pool_core_is_closed  (RedisPoolCore                *core);
/* Fails every call waiting in the offline queue (none was written) with a
 * copy of @error, prefixed "<call> was not sent: "; returns how many. For
 * a cluster whose slots moved away from a node that is down: its calls
 * are routed again (see redis-cluster-pool.c). */
guint                  redis_pool_core_fail_queued (RedisPoolCore               *core,
                                                    const GError                *error);
/* The credentials provider (see redis-credentials-private.h): @func is
 * called in the core's context with a request it answers (or drops) once,
 * before each connect of a shared connection (and of the pool's
 * subscribers'); NULL: none (it removes only a provider set here). @data
 * is dropped with @notify when it is replaced or the credentials freed. */
typedef RedisCredentialsProviderFunc RedisPoolCoreProviderFunc;
void                   redis_pool_core_set_provider (RedisPoolCore             *core,
                                                     RedisPoolCoreProviderFunc  func,
                                                     gpointer                   data,
                                                     GDestroyNotify             notify);
/* The core's credentials and provider (borrowed): what the pool's
 * subscribers share. */
RedisCredentials      *redis_pool_core_get_credentials (RedisPoolCore *core);
/* Before the core starts: use @credentials (shared: a cluster's) instead
 * of the core's own. */
void                   redis_pool_core_share_credentials (RedisPoolCore    *core,
                                                          RedisCredentials *credentials);
/* Thread-safe credential rotation (see redis-credentials-private.h). */
void                   redis_pool_core_set_credentials (RedisPoolCore *core,
                                                        const char    *username,
                                                        const char    *password);
/* A snapshot, as redis_pool_get_info() describes it (transfer full, not
 * floating). */
GVariant              *redis_pool_core_get_info   (RedisPoolCore                *core);

G_END_DECLS
