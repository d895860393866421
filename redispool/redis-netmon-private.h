/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-options-private.h"

G_BEGIN_DECLS

/* Network awareness (redis-netmon.c): whether a GNetworkMonitor considers
 * the server's address reachable, kept up to date from its
 * ::network-changed signal and g_network_monitor_can_reach_async(). */
typedef struct _RedisNetmon RedisNetmon;

/* Called in the monitor's main context when the reachability of the
 * address changes, with the netmon's lock held: it must not call
 * redis_netmon_stop(). */
typedef void (*RedisNetmonFunc) (gboolean reachable,
                                 gpointer user_data);

/* NULL when the address is not monitored: a Unix socket, a loopback
 * address (127.0.0.0/8, ::1, "localhost") or Sentinel discovery; such a
 * server is always reachable. @monitor NULL: the default monitor (only
 * created for a monitored address). @notify frees @user_data in
 * redis_netmon_stop(), or at once when NULL is returned. */
RedisNetmon *redis_netmon_new           (GNetworkMonitor    *monitor,
                                         const RedisOptions *options,
                                         RedisNetmonFunc     func,
                                         gpointer            user_data,
                                         GDestroyNotify      notify);
/* Stops watching: no more calls to the func once this returns; frees
 * user_data. The netmon stays readable until redis_netmon_unref(). Both
 * accept NULL. */
void         redis_netmon_stop          (RedisNetmon        *self);
void         redis_netmon_unref         (RedisNetmon        *self);
/* TRUE for NULL (not monitored). Any thread. */
gboolean     redis_netmon_get_reachable (RedisNetmon        *self);

/* Tests only: monitor loopback addresses too, so that a test monitor can
 * make a server on 127.0.0.1 unreachable. Affects netmons made after the
 * call. */
void         redis_netmon_set_monitor_loopback_for_testing (gboolean monitor_loopback);

G_END_DECLS
