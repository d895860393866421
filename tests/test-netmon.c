/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Network awareness (redispool/redis-netmon.c): a pool given a test
 * GNetworkMonitor makes no reconnect attempts while the monitor says the
 * server cannot be reached, reconnects at once when it can again, and
 * fails calls queued meanwhile at their deadline, unsent. Attempts are
 * counted at the server side, by a listener that accepts and closes. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-netmon-private.h"
#include "redis-test-server.h"
#include "test-helpers.h"
#include "test-listener.h"

/* ---- a GNetworkMonitor whose answer the test sets ------------------------ */

#define TEST_TYPE_MONITOR (test_monitor_get_type ())
G_DECLARE_FINAL_TYPE (TestMonitor, test_monitor, TEST, MONITOR, GObject)

struct _TestMonitor
{
  GObject  parent_instance;
  gboolean available;
  GIOErrorEnum code;      /* of the error when not available */
  guint    n_can_reach;   /* atomic */
};

enum
{
  MON_PROP_0,
  MON_PROP_NETWORK_AVAILABLE,
  MON_PROP_NETWORK_METERED,
  MON_PROP_CONNECTIVITY,
};

static void test_monitor_iface_init (GNetworkMonitorInterface *iface);
static void test_monitor_initable_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TestMonitor, test_monitor, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, test_monitor_initable_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_NETWORK_MONITOR, test_monitor_iface_init))

static gboolean
test_monitor_initable_init_impl (GInitable     *initable,
                                 GCancellable  *cancellable,
                                 GError       **error)
{
  return TRUE;
}

static void
test_monitor_initable_init (GInitableIface *iface)
{
  iface->init = test_monitor_initable_init_impl;
}

static gboolean
test_monitor_can_reach (GNetworkMonitor     *monitor,
                        GSocketConnectable  *connectable,
                        GCancellable        *cancellable,
                        GError             **error)
{
  TestMonitor *self = TEST_MONITOR (monitor);

  g_atomic_int_inc (&self->n_can_reach);
  if (self->available)
    return TRUE;
  g_set_error_literal (error, G_IO_ERROR, self->code,
                       "Host unreachable (test monitor)");
  return FALSE;
}

static void
test_monitor_can_reach_async (GNetworkMonitor     *monitor,
                              GSocketConnectable  *connectable,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (monitor, cancellable, callback, user_data);
  GError *error = NULL;

  if (test_monitor_can_reach (monitor, connectable, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
test_monitor_can_reach_finish (GNetworkMonitor  *monitor,
                               GAsyncResult     *result,
                               GError          **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
test_monitor_iface_init (GNetworkMonitorInterface *iface)
{
  iface->can_reach = test_monitor_can_reach;
  iface->can_reach_async = test_monitor_can_reach_async;
  iface->can_reach_finish = test_monitor_can_reach_finish;
}

static void
test_monitor_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  TestMonitor *self = TEST_MONITOR (object);

  switch (prop_id)
    {
    case MON_PROP_NETWORK_AVAILABLE:
      g_value_set_boolean (value, self->available);
      break;
    case MON_PROP_NETWORK_METERED:
      g_value_set_boolean (value, FALSE);
      break;
    case MON_PROP_CONNECTIVITY:
      g_value_set_enum (value, self->available ? G_NETWORK_CONNECTIVITY_FULL :
                                                 G_NETWORK_CONNECTIVITY_LOCAL);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
test_monitor_class_init (TestMonitorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = test_monitor_get_property;
  g_object_class_override_property (object_class, MON_PROP_NETWORK_AVAILABLE, "network-available");
  g_object_class_override_property (object_class, MON_PROP_NETWORK_METERED, "network-metered");
  g_object_class_override_property (object_class, MON_PROP_CONNECTIVITY, "connectivity");
}

static void
test_monitor_init (TestMonitor *self)
{
  self->code = G_IO_ERROR_HOST_UNREACHABLE;
}

static TestMonitor *
test_monitor_new (gboolean available)
{
  TestMonitor *self = g_object_new (TEST_TYPE_MONITOR, NULL);

  self->available = available;
  return self;
}

/* As a real monitor: the state changes, then ::network-changed. */
static void
test_monitor_set_available (TestMonitor *self,
                            gboolean     available)
{
  self->available = available;
  g_object_notify (G_OBJECT (self), "network-available");
  g_signal_emit_by_name (self, "network-changed", available);
}

/* ---- helpers ------------------------------------------------------------- */

static RedisPool *
pool_new (guint16          port,
          GNetworkMonitor *monitor,
          guint            size,
          guint            backoff_initial,
          guint            backoff_max,
          guint            command_timeout)
{
  g_autoptr(GError) error = NULL;
  RedisPool *pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                                    "port", (guint) port,
                                    "pool-size", size,
                                    "backoff-initial", backoff_initial,
                                    "backoff-max", backoff_max,
                                    "command-timeout", command_timeout,
                                    "connect-timeout", test_scale_ms (2000),
                                    "connect-mode", REDIS_POOL_CONNECT_MODE_BACKGROUND,
                                    "network-monitor", monitor,
                                    NULL);

  g_assert_no_error (error);
  return pool;
}

static void
pool_destroy (RedisPool *pool)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  g_assert_finalize_object (pool);
}

static gboolean
info_network_available (RedisPool *pool)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  gboolean available = FALSE;

  g_assert_true (g_variant_lookup (info, "network-available", "b", &available));
  return available;
}

/* ---- tests --------------------------------------------------------------- */

/* Offline from the start: once the monitor has answered (until then the
 * pool counts the server as reachable), no more attempts, and a queued
 * call fails at its deadline unsent; online: attempts again; offline
 * again: the attempts stop (with backoff 20–50 ms, a pool of two would
 * otherwise make ~40 attempts per second for ever). */
static void
test_offline_online (void)
{
  g_autoptr(TestMonitor) monitor = test_monitor_new (FALSE);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "PING", NULL };
  RedisPool *pool;
  Refuser r;
  gint64 t_online, t_first;
  guint n, n0;

  redis_netmon_set_monitor_loopback_for_testing (TRUE);
  refuser_start (&r);
  pool = pool_new (r.port, G_NETWORK_MONITOR (monitor), 2, 20, 50, test_scale_ms (300));
  {
    g_autoptr(GNetworkMonitor) read_back = NULL;

    g_object_get (pool, "network-monitor", &read_back, NULL);
    g_assert_true (read_back == G_NETWORK_MONITOR (monitor));
  }
  WAIT_UNTIL (!info_network_available (pool), 1000);
  g_assert_cmpuint (g_atomic_int_get (&monitor->n_can_reach), >=, 1);
  /* An attempt made before the answer ends. */
  test_iterate_for (100);
  n0 = refuser_count (&r);

  redis_client_command_async (REDIS_CLIENT (pool), argv, NULL, store_result_cb, &result);
  WAIT_UNTIL (result != NULL, 2000);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), result, &error);
  g_assert_null (reply);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT);
  g_test_message ("offline: %s", error->message);
  g_assert_nonnull (strstr (error->message, "network"));
  g_clear_object (&result);   /* it holds the pool */

  test_iterate_for (1000);
  g_test_message ("offline: %u attempts before the monitor answered, none after", n0);
  g_assert_cmpuint (refuser_count (&r), ==, n0);

  t_online = g_get_monotonic_time ();
  test_monitor_set_available (monitor, TRUE);
  WAIT_UNTIL (refuser_count (&r) >= n0 + 2, 2000);
  t_first = refuser_first_since (&r, t_online);
  /* The WAIT_UNTIL above is the check (attempts resumed); how soon is
   * printed, not asserted: a loaded machine would fail a bound. */
  g_test_message ("online: first attempt %.1f ms after the change",
                  (t_first - t_online) / 1000.0);
  g_assert_true (info_network_available (pool));

  /* Offline again: what is in flight ends, then nothing. */
  test_monitor_set_available (monitor, FALSE);
  WAIT_UNTIL (!info_network_available (pool), 1000);
  test_iterate_for (200);
  n = refuser_count (&r);
  test_iterate_for (1000);
  g_test_message ("offline again: %u attempts in total, none in the last second",
                  refuser_count (&r));
  g_assert_cmpuint (refuser_count (&r), ==, n);

  pool_destroy (pool);
  refuser_stop (&r);
  redis_netmon_set_monitor_loopback_for_testing (FALSE);
}

/* Online again: the backoff is reset and the attempt made at once, not
 * after the pending retry (backoff-initial 60 s). */
static void
test_reconnect_at_once (void)
{
  g_autoptr(TestMonitor) monitor = test_monitor_new (TRUE);
  RedisPool *pool;
  Refuser r;
  gint64 t_online, t_first;

  redis_netmon_set_monitor_loopback_for_testing (TRUE);
  refuser_start (&r);
  pool = pool_new (r.port, G_NETWORK_MONITOR (monitor), 1, 60000, 60000, test_scale_ms (2000));
  WAIT_UNTIL (refuser_count (&r) >= 1, 2000);
  /* The first attempt failed; its retry is up to 60 s away. */
  test_monitor_set_available (monitor, FALSE);
  test_iterate_for (100);
  g_assert_false (info_network_available (pool));

  t_online = g_get_monotonic_time ();
  test_monitor_set_available (monitor, TRUE);
  WAIT_UNTIL (refuser_first_since (&r, t_online) != 0, 2000);
  t_first = refuser_first_since (&r, t_online);
  /* The WAIT_UNTIL above is the check: its deadline (2 s, scaled) is far
   * below the 60 s retry that would come without the reset. How soon is
   * printed, not asserted: a loaded machine would fail a tight bound. */
  g_test_message ("reconnect %.1f ms after the network came back",
                  (t_first - t_online) / 1000.0);

  pool_destroy (pool);
  refuser_stop (&r);
  redis_netmon_set_monitor_loopback_for_testing (FALSE);
}

/* A loopback server is always reachable: the monitor is not even asked,
 * and the pool makes its attempts while the monitor says offline. */
static void
test_loopback_unmonitored (void)
{
  g_autoptr(TestMonitor) monitor = test_monitor_new (FALSE);
  RedisPool *pool;
  Refuser r;

  refuser_start (&r);
  pool = pool_new (r.port, G_NETWORK_MONITOR (monitor), 1, 20, 50, test_scale_ms (2000));
  WAIT_UNTIL (refuser_count (&r) >= 3, 2000);
  g_assert_true (info_network_available (pool));
  g_assert_cmpuint (g_atomic_int_get (&monitor->n_can_reach), ==, 0);
  pool_destroy (pool);
  refuser_stop (&r);
}

static void
count_cb (gpointer  instance,
          gpointer  arg,
          gpointer  data)
{
  (*(guint *) data)++;
}

static void
count0_cb (gpointer instance,
           gpointer data)
{
  (*(guint *) data)++;
}

/* A subscriber that lost its server while offline makes no attempt (no
 * reconnect-failed, with backoff 20–50 ms that would be ~30 a second);
 * online again (the server back), it resubscribes at once. */
static void
test_subscriber (void)
{
  g_autoptr(TestMonitor) monitor = test_monitor_new (TRUE);
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  RedisSubscriber *sub;
  guint n_lost = 0, n_failed = 0, n_resubscribed = 0;
  gint64 t_online;

  if (!redis_test_server_available ())
    {
      g_test_skip ("redis-server not installed");
      return;
    }
  redis_netmon_set_monitor_loopback_for_testing (TRUE);
  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  sub = g_initable_new (REDIS_TYPE_SUBSCRIBER, NULL, &error,
                        "port", (guint) redis_test_server_get_port (server),
                        "backoff-initial", 20, "backoff-max", 50,
                        "connect-timeout", test_scale_ms (2000),
                        "network-monitor", monitor,
                        NULL);
  g_assert_no_error (error);
  g_signal_connect (sub, "connection-lost", G_CALLBACK (count_cb), &n_lost);
  g_signal_connect (sub, "reconnect-failed", G_CALLBACK (count_cb), &n_failed);
  g_signal_connect (sub, "resubscribed", G_CALLBACK (count0_cb), &n_resubscribed);
  g_assert_true (redis_subscriber_subscribe_sync (sub, (const char *[]) { "news", NULL }, NULL, &error));
  g_assert_no_error (error);

  test_monitor_set_available (monitor, FALSE);
  test_iterate_for (100);   /* the monitor's answer */
  g_assert_true (redis_test_server_stop (server));
  WAIT_UNTIL (n_lost == 1, 5000);
  test_iterate_for (1000);
  g_test_message ("subscriber offline: %u reconnect attempts failed in 1 s", n_failed);
  g_assert_cmpuint (n_failed, ==, 0);
  g_assert_false (redis_subscriber_get_connected (sub));

  g_assert_true (redis_test_server_restart (server, &error));
  g_assert_no_error (error);
  t_online = g_get_monotonic_time ();
  test_monitor_set_available (monitor, TRUE);
  WAIT_UNTIL (n_resubscribed == 1, 2000);
  g_test_message ("subscriber resubscribed %.1f ms after the network came back",
                  (g_get_monotonic_time () - t_online) / 1000.0);
  g_assert_true (redis_subscriber_get_connected (sub));
  g_assert_cmpuint (n_failed, ==, 0);

  redis_subscriber_close (sub);
  test_drain_main_context ();
  g_assert_finalize_object (sub);
  redis_netmon_set_monitor_loopback_for_testing (FALSE);
}

/* A check that fails without a definite no (here G_IO_ERROR_FAILED, as a
 * name that does not resolve right now) leaves the address reachable:
 * the attempts go on, with their backoff. */
static void
test_indefinite_error (void)
{
  g_autoptr(TestMonitor) monitor = test_monitor_new (FALSE);
  RedisPool *pool;
  Refuser r;
  guint n;

  monitor->code = G_IO_ERROR_FAILED;
  redis_netmon_set_monitor_loopback_for_testing (TRUE);
  refuser_start (&r);
  pool = pool_new (r.port, G_NETWORK_MONITOR (monitor), 1, 20, 50, test_scale_ms (2000));
  WAIT_UNTIL (g_atomic_int_get (&monitor->n_can_reach) >= 1, 1000);
  test_iterate_for (100);
  g_assert_true (info_network_available (pool));
  n = refuser_count (&r);
  WAIT_UNTIL (refuser_count (&r) >= n + 3, 2000);

  pool_destroy (pool);
  refuser_stop (&r);
  redis_netmon_set_monitor_loopback_for_testing (FALSE);
}

/* Unset, the property reads back as the default monitor. */
static void
test_default_monitor (void)
{
  g_autoptr(GNetworkMonitor) read_back = NULL;
  /* Never initialized: makes no connection. */
  RedisPool *pool = g_object_new (REDIS_TYPE_POOL, NULL);

  g_object_get (pool, "network-monitor", &read_back, NULL);
  g_assert_true (read_back == g_network_monitor_get_default ());
  g_object_unref (pool);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/netmon/offline-online", test_offline_online);
  g_test_add_func ("/netmon/reconnect-at-once", test_reconnect_at_once);
  g_test_add_func ("/netmon/loopback-unmonitored", test_loopback_unmonitored);
  g_test_add_func ("/netmon/default-monitor", test_default_monitor);
  g_test_add_func ("/netmon/indefinite-error", test_indefinite_error);
  g_test_add_func ("/netmon/subscriber", test_subscriber);

  return g_test_run ();
}
