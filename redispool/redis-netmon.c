/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-netmon-private.h"

/*
 * Network awareness for the reconnect loops.
 *
 * A netmon watches one server address with a GNetworkMonitor: at start
 * and on every ::network-changed, g_network_monitor_can_reach_async() on
 * the address decides. Only a definite no (G_IO_ERROR_NETWORK_UNREACHABLE
 * or G_IO_ERROR_HOST_UNREACHABLE) makes it unreachable; any other failure
 * (a name that does not resolve right now, say) leaves the decision to the
 * connect attempts and their backoff, as without a monitor. Until the
 * first answer the address counts as reachable: a pool made where no main
 * context runs (sync use) behaves as before. Only the latest check counts (a generation number discards
 * older answers). A change is reported to the owner (the pool core), which
 * holds back reconnect attempts while the address is unreachable and, when
 * it is reachable again, resets the backoff and reconnects at once.
 *
 * Loopback servers (127.0.0.0/8, ::1, "localhost"), Unix sockets and
 * Sentinel discovery (whose addresses change) are not monitored: no netmon
 * is made and they are always reachable. Tests make loopback monitored
 * with redis_netmon_set_monitor_loopback_for_testing().
 *
 * Threads: ::network-changed arrives in the monitor's main context (the
 * default monitor's is the thread-default context of the thread that
 * first asked for it, usually the main thread), and so do the answers of
 * the checks it starts; the first check's answer arrives in the
 * thread-default context of the thread that made the netmon (the pool's
 * or subscriber's owner). The state is read from any thread.
 */

struct _RedisNetmon
{
  GMutex               lock;
  GNetworkMonitor     *monitor;
  GSocketConnectable  *address;
  gulong               changed_id;
  gint                 reachable;     /* atomic */

  /* Under lock. */
  GCancellable        *cancellable;   /* of the check in flight */
  guint                generation;
  RedisNetmonFunc      func;
  gpointer             user_data;
  GDestroyNotify       notify;
};

static gint monitor_loopback;   /* atomic */

void
redis_netmon_set_monitor_loopback_for_testing (gboolean value)
{
  g_atomic_int_set (&monitor_loopback, value ? 1 : 0);
}

static RedisNetmon *
netmon_ref (RedisNetmon *self)
{
  return g_atomic_rc_box_acquire (self);
}

static void
netmon_clear (RedisNetmon *self)
{
  g_assert (self->func == NULL);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->address);
  g_clear_object (&self->monitor);
  g_mutex_clear (&self->lock);
}

static void
netmon_unref (RedisNetmon *self)
{
  g_atomic_rc_box_release_full (self, (GDestroyNotify) netmon_clear);
}

static gboolean
is_always_reachable (const RedisOptions *options)
{
  g_autoptr(GInetAddress) address = NULL;

  if (options->socket_path != NULL || options->sentinels != NULL)
    return TRUE;
  if (g_atomic_int_get (&monitor_loopback))
    return FALSE;
  if (options->host == NULL || g_ascii_strcasecmp (options->host, "localhost") == 0)
    return TRUE;
  address = g_inet_address_new_from_string (options->host);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

/* Records @reachable; reports a change. */
static void
netmon_update (RedisNetmon *self,
               gboolean     reachable)
{
  if (g_atomic_int_exchange (&self->reachable, reachable ? 1 : 0) == (reachable ? 1 : 0))
    return;
  g_debug ("the server's address is %s", reachable ? "reachable again" : "unreachable");
  /* Under the lock, so that redis_netmon_stop() waits for a report in
   * progress before it frees user_data. The func takes its owner's lock
   * and never calls back into the netmon (but for get_reachable). */
  g_mutex_lock (&self->lock);
  if (self->func != NULL)
    self->func (reachable, self->user_data);
  g_mutex_unlock (&self->lock);
}

typedef struct
{
  RedisNetmon *netmon;
  guint        generation;
} Check;

static void
can_reach_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  Check *check = data;
  RedisNetmon *self = check->netmon;
  g_autoptr(GError) error = NULL;
  gboolean reachable = g_network_monitor_can_reach_finish (G_NETWORK_MONITOR (source), result, &error);
  gboolean current;

  if (!reachable)
    reachable = !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE) &&
                !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE);

  g_mutex_lock (&self->lock);
  current = check->generation == self->generation && self->func != NULL;
  g_mutex_unlock (&self->lock);

  if (current && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    netmon_update (self, reachable);

  netmon_unref (self);
  g_free (check);
}

/* Starts a check, abandoning the one in flight. */
static void
netmon_check (RedisNetmon *self)
{
  GCancellable *cancellable = g_cancellable_new ();
  GCancellable *old;
  Check *check = g_new0 (Check, 1);

  g_mutex_lock (&self->lock);
  if (self->func == NULL)
    {
      g_mutex_unlock (&self->lock);
      g_object_unref (cancellable);
      g_free (check);
      return;
    }
  old = self->cancellable;
  self->cancellable = g_object_ref (cancellable);
  check->generation = ++self->generation;
  g_mutex_unlock (&self->lock);

  if (old != NULL)
    {
      g_cancellable_cancel (old);
      g_object_unref (old);
    }
  check->netmon = netmon_ref (self);
  g_network_monitor_can_reach_async (self->monitor, self->address, cancellable,
                                     can_reach_cb, check);
  g_object_unref (cancellable);
}

static void
network_changed_cb (GNetworkMonitor *monitor,
                    gboolean         network_available,
                    gpointer         data)
{
  netmon_check (data);
}

RedisNetmon *
redis_netmon_new (GNetworkMonitor    *monitor,
                  const RedisOptions *options,
                  RedisNetmonFunc     func,
                  gpointer            user_data,
                  GDestroyNotify      notify)
{
  RedisNetmon *self;

  if (is_always_reachable (options))
    {
      if (notify != NULL)
        notify (user_data);
      return NULL;
    }

  self = g_atomic_rc_box_new0 (RedisNetmon);
  g_mutex_init (&self->lock);
  self->monitor = g_object_ref (monitor != NULL ? monitor : g_network_monitor_get_default ());
  self->address = g_network_address_new (options->host, (guint16) options->port);
  self->func = func;
  self->user_data = user_data;
  self->notify = notify;
  self->reachable = 1;
  self->changed_id = g_signal_connect_data (self->monitor, "network-changed",
                                            G_CALLBACK (network_changed_cb),
                                            netmon_ref (self),
                                            (GClosureNotify) (void (*) (void)) netmon_unref, 0);
  netmon_check (self);
  return self;
}

void
redis_netmon_stop (RedisNetmon *self)
{
  GDestroyNotify notify;
  gpointer user_data;
  GCancellable *cancellable;

  gulong changed_id;

  if (self == NULL)
    return;

  g_mutex_lock (&self->lock);
  changed_id = self->changed_id;
  self->changed_id = 0;
  g_mutex_unlock (&self->lock);
  if (changed_id != 0)
    g_signal_handler_disconnect (self->monitor, changed_id);

  g_mutex_lock (&self->lock);
  notify = self->notify;
  user_data = self->user_data;
  self->func = NULL;
  self->notify = NULL;
  self->user_data = NULL;
  cancellable = g_steal_pointer (&self->cancellable);
  g_mutex_unlock (&self->lock);

  if (cancellable != NULL)
    {
      g_cancellable_cancel (cancellable);
      g_object_unref (cancellable);
    }
  if (notify != NULL)
    notify (user_data);
}

void
redis_netmon_unref (RedisNetmon *self)
{
  if (self != NULL)
    netmon_unref (self);
}

gboolean
redis_netmon_get_reachable (RedisNetmon *self)
{
  return self == NULL || g_atomic_int_get (&self->reachable);
}
