/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Blocking commands given up on (cancelled, timed out) against a real
 * redis-server: the wait ends on the server, and nothing the server served
 * is ever dropped — on a single connection, on a lease, and on the
 * dedicated connections a pool runs blocking commands on; and, on a fake
 * server, a connection lost before the wait's end is confirmed. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "fake-server.h"
#include "fault-proxy.h"
#include "redis-test-server.h"
#include "test-helpers.h"

#define ARGV(...) ((const char * const []) { __VA_ARGS__, NULL })

static RedisTestServer *
server_new (void)
{
  g_autoptr(GError) error = NULL;
  RedisTestServer *server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);

  g_assert_no_error (error);
  return server;
}

static RedisConnection *
connection_new (guint16 port)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                                          "port", (guint) port,
                                          /* Scaled too: the unblocker's side
                                           * connection copies it, and through
                                           * a delaying proxy its connect takes
                                           * as long as the delay. */
                                          "connect-timeout", test_scale_ms (5000),
                                          "command-timeout", test_scale_ms (5000),
                                          NULL);

  g_assert_no_error (error);
  return conn;
}

static RedisReply *
run (gpointer     client,
     const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (client), argv, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  return reply;
}

static gint64
run_integer (gpointer            client,
             const char * const *argv)
{
  g_autoptr(RedisReply) reply = run (client, argv);

  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_INTEGER);
  return redis_reply_get_integer (reply);
}

/* blocked_clients from INFO clients, asked on @admin. */
static guint
blocked_clients (RedisConnection *admin)
{
  g_autoptr(RedisReply) reply = run (admin, ARGV ("INFO", "clients"));
  const char *text = redis_reply_get_string (reply, NULL);
  const char *field = strstr (text, "blocked_clients:");

  g_assert_nonnull (field);
  return (guint) g_ascii_strtoull (field + strlen ("blocked_clients:"), NULL, 10);
}

static gboolean
cancel_cb (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

/* Starts @argv on @client, cancels it once the server reports it blocked,
 * and returns the result. */
static GAsyncResult *
run_and_cancel_when_blocked (gpointer            client,
                             RedisConnection    *admin,
                             const char * const *argv,
                             guint               blocked_before)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *result = NULL;

  redis_client_command_async (REDIS_CLIENT (client), argv, cancellable, store_result_cb, &result);
  WAIT_UNTIL (blocked_clients (admin) == blocked_before + 1, 5000);
  g_assert_null (result);
  g_cancellable_cancel (cancellable);
  test_wait_for_result (&result, 5000);
  return result;
}

static void
assert_cancelled (gpointer      client,
                  GAsyncResult *result)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (client), result, &error);

  g_assert_null (reply);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* ---- fixture: a server of the test's own, and what the case asks for ---- */

typedef struct
{
  RedisTestServer *server;
  RedisConnection *admin;     /* asks the server what it is doing */
  RedisConnection *conn;      /* Case.conn */
  RedisPool       *pool;      /* Case.pool_size > 0 */
} Fixture;

typedef struct
{
  const char *path;
  void      (*body) (Fixture *f, gconstpointer data);
  gboolean    conn;
  guint       pool_size;
} Case;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  const Case *c = data;
  g_autoptr(GError) error = NULL;
  guint16 port;

  f->server = server_new ();
  port = redis_test_server_get_port (f->server);
  f->admin = connection_new (port);
  if (c->conn)
    f->conn = connection_new (port);
  if (c->pool_size > 0)
    {
      f->pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                                "port", (guint) port, "pool-size", c->pool_size, NULL);
      g_assert_no_error (error);
    }
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->pool);
  g_clear_object (&f->conn);
  g_clear_object (&f->admin);
  g_clear_pointer (&f->server, redis_test_server_free);
}

/* The repro: a pool of 1, a lease, BLPOP q 0 cancelled after
 * 50 ms, release; the server must not stay blocked and the element pushed
 * next must stay in the list. */
static void
test_lease_cancel (Fixture       *f,
                   gconstpointer  data)
{
  RedisConnection *admin = f->admin;
  RedisPool *pool = f->pool;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *result = NULL;
  RedisConnection *lease;

  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  redis_client_command_async (REDIS_CLIENT (lease), ARGV ("BLPOP", "q", "0"), cancellable,
                              store_result_cb, &result);
  g_timeout_add_full (G_PRIORITY_DEFAULT, 50, cancel_cb, g_object_ref (cancellable), g_object_unref);
  test_wait_for_result (&result, 5000);
  assert_cancelled (lease, result);
  g_clear_object (&result);
  g_assert_cmpuint (blocked_clients (admin), ==, 0);
  redis_pool_release (pool, lease);
  g_object_unref (lease);

  g_assert_cmpint (run_integer (admin, ARGV ("RPUSH", "q", "job-1")), ==, 1);
  g_assert_cmpint (run_integer (admin, ARGV ("LLEN", "q")), ==, 1);

  /* The lease's connection went back to the pool in a usable state. */
  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  {
    g_autoptr(RedisReply) reply = run (lease, ARGV ("LPOP", "q"));

    g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "job-1");
  }
  redis_pool_release (pool, lease);
  g_object_unref (lease);
}

/* Every blocking command the library knows, on one connection: cancelled
 * while blocked, it fails CANCELLED, the server no longer blocks, and the
 * connection goes on with the next command. */
static void
test_each_blocking_command (Fixture       *f,
                            gconstpointer  data)
{
  const char * const *commands[] = {
    ARGV ("BLPOP", "l", "0"),
    ARGV ("BRPOP", "l", "0"),
    ARGV ("BRPOPLPUSH", "l", "l2", "0"),
    ARGV ("BLMOVE", "l", "l2", "LEFT", "RIGHT", "0"),
    ARGV ("BLMPOP", "0", "1", "l", "LEFT"),
    ARGV ("BZPOPMIN", "z", "0"),
    ARGV ("BZPOPMAX", "z", "0"),
    ARGV ("BZMPOP", "0", "1", "z", "MIN"),
    ARGV ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
    ARGV ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"),
    ARGV ("WAIT", "1", "0"),
  };
  RedisConnection *admin = f->admin;
  RedisConnection *conn = f->conn;

  redis_reply_unref (run (admin, ARGV ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")));

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(RedisReply) echo = NULL;

      g_test_message ("%s", commands[i][0]);
      result = run_and_cancel_when_blocked (conn, admin, commands[i], 0);
      assert_cancelled (conn, result);
      g_assert_cmpuint (blocked_clients (admin), ==, 0);
      g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
      echo = run (conn, ARGV ("ECHO", commands[i][0]));
      g_assert_cmpstr (redis_reply_get_string (echo, NULL), ==, commands[i][0]);
    }
}

/* Blocking commands sent through a pool run on dedicated connections:
 * cancelled, they end there too. */
static void
test_pool_dedicated_cancel (Fixture       *f,
                            gconstpointer  data)
{
  RedisConnection *admin = f->admin;
  RedisPool *pool = f->pool;

  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GAsyncResult) result = NULL;

      result = run_and_cancel_when_blocked (pool, admin, ARGV ("BLPOP", "q", "0"), 0);
      assert_cancelled (pool, result);
      g_assert_cmpuint (blocked_clients (admin), ==, 0);
    }
  g_assert_cmpint (run_integer (admin, ARGV ("RPUSH", "q", "job")), ==, 1);
  g_assert_cmpint (run_integer (admin, ARGV ("LLEN", "q")), ==, 1);
}

/* The server served the command before the unblock reached it: the reply
 * is on its way (held by a delaying proxy here) when the caller cancels.
 * The caller gets the element, not CANCELLED; nothing is lost. */
static void
test_served_before_cancel (Fixture       *f,
                           gconstpointer  data)
{
  RedisConnection *admin = f->admin;
  g_autoptr(FaultProxy) proxy = NULL;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  GAsyncResult *result = NULL;

  proxy = fault_proxy_new (redis_test_server_get_port (f->server), &error);
  g_assert_no_error (error);
  conn = connection_new (fault_proxy_get_port (proxy));

  redis_client_command_async (REDIS_CLIENT (conn), ARGV ("BLPOP", "q", "0"), cancellable,
                              store_result_cb, &result);
  WAIT_UNTIL (blocked_clients (admin) == 1, 5000);

  /* From now on every chunk through the proxy is held 300 ms (scaled):
   * the server serves the BLPOP at once, its reply arrives late. */
  {
    g_autofree char *delay = g_strdup_printf ("delay %u", test_scale_ms (300));

    fault_proxy_do (proxy, delay);
  }
  g_assert_cmpint (run_integer (admin, ARGV ("RPUSH", "q", "job-1")), ==, 1);
  g_assert_cmpuint (blocked_clients (admin), ==, 0);
  g_cancellable_cancel (cancellable);

  test_wait_for_result (&result, 10000);
  reply = redis_client_command_finish (REDIS_CLIENT (conn), result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (reply);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_ARRAY);
  g_assert_cmpstr (redis_reply_get_string (redis_reply_get_element (reply, 1), NULL), ==, "job-1");
  g_clear_object (&result);

  fault_proxy_do (proxy, "pass");
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  g_clear_pointer (&reply, redis_reply_unref);
  reply = run (conn, ARGV ("ECHO", "next"));
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "next");
}

/* Whether the fake server was sent a command starting with @prefix. */
static gboolean
fake_server_was_sent (FakeServer *fake,
                      const char *prefix)
{
  g_auto(GStrv) commands = fake_server_get_commands (fake);

  for (guint i = 0; commands[i] != NULL; i++)
    if (g_str_has_prefix (commands[i], prefix))
      return TRUE;
  return FALSE;
}

typedef struct
{
  RedisConnection *conn;
  GCancellable    *cancellable;
  GError          *error;
  RedisReply      *reply;
} SyncBlpop;

static gpointer
sync_blpop_thread (gpointer data)
{
  SyncBlpop *s = data;

  s->reply = redis_client_command_sync (REDIS_CLIENT (s->conn), ARGV ("BLPOP", "q", "0"),
                                        s->cancellable, &s->error);
  return NULL;
}

/* A cancelled BLPOP whose connection dies before its reply comes: the
 * server may have served it (popped an element just as the cancel came)
 * and the reply that would tell is lost. The call fails CONNECTION_LOST,
 * "may have run", never CANCELLED, which would say nothing happened. A
 * fake server forces the order: it leaves the BLPOP blocked, answers the
 * CLIENT UNBLOCK without ending it, then drops the connection. Async, and
 * sync (its thread drives the socket and watches the cancellable). */
static void
test_cancel_then_lost (Fixture       *f,
                       gconstpointer  data)
{
  for (guint sync = 0; sync < 2; sync++)
    {
      g_autoptr(FakeServer) fake = fake_server_new ();
      g_autoptr(RedisConnection) conn = NULL;
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) reply = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      SyncBlpop s = { NULL, };
      GThread *thread = NULL;

      g_test_message (sync ? "sync" : "async");
      fake_server_set_answer_all (fake, ":1\r\n", -1);   /* CLIENT ID, CLIENT UNBLOCK */
      conn = connection_new (fake_server_get_port (fake));
      fake_server_add_stall (fake);                      /* the BLPOP stays blocked */

      if (sync)
        {
          s = (SyncBlpop) { conn, cancellable, NULL, NULL };
          thread = g_thread_new ("blpop", sync_blpop_thread, &s);
        }
      else
        redis_client_command_async (REDIS_CLIENT (conn), ARGV ("BLPOP", "q", "0"), cancellable,
                                    store_result_cb, &result);
      WAIT_UNTIL (fake_server_was_sent (fake, "BLPOP"), 5000);
      g_cancellable_cancel (cancellable);
      WAIT_UNTIL (fake_server_was_sent (fake, "CLIENT UNBLOCK"), 5000);
      g_assert_null (result);   /* it waits for the BLPOP's own reply */

      fake_server_drop_connections (fake);
      if (sync)
        {
          g_thread_join (thread);
          reply = g_steal_pointer (&s.reply);
          error = g_steal_pointer (&s.error);
        }
      else
        {
          test_wait_for_result (&result, 5000);
          reply = redis_client_command_finish (REDIS_CLIENT (conn), result, &error);
        }
      g_assert_null (reply);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
      g_assert_nonnull (strstr (error->message, "may have been served"));
      g_assert_false (redis_error_is_retry_safe (error));
    }
}

/* The side connection that would end the wait cannot be opened (the
 * server is full): the connection is closed instead, which ends the wait
 * on the server too. The call fails CONNECTION_LOST, not CANCELLED: the
 * library cannot tell that the server did not serve it first. */
static void
test_unblock_impossible (Fixture       *f,
                         gconstpointer  data)
{
  RedisConnection *admin = f->admin;
  RedisConnection *conn = f->conn;
  g_autoptr(GAsyncResult) result = NULL;

  redis_reply_unref (run (admin, ARGV ("CONFIG", "SET", "maxclients", "2")));

  result = run_and_cancel_when_blocked (conn, admin, ARGV ("BLPOP", "q", "0"), 0);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (conn), result, &error);

    g_assert_null (reply);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  }
  WAIT_UNTIL (redis_connection_get_state (conn) == REDIS_CONNECTION_STATE_CLOSED, 5000);
  WAIT_UNTIL (blocked_clients (admin) == 0, 5000);
  g_assert_cmpint (run_integer (admin, ARGV ("RPUSH", "q", "job")), ==, 1);
  g_assert_cmpint (run_integer (admin, ARGV ("LLEN", "q")), ==, 1);
}

typedef struct
{
  RedisConnection *admin;
  guint            pushed;
} Pusher;

static void
push_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (object), result, &error);

  g_assert_no_error (error);
}

static gboolean
push_cb (gpointer data)
{
  Pusher *pusher = data;
  g_autofree char *value = g_strdup_printf ("job-%u", pusher->pushed++);

  redis_client_command_async (REDIS_CLIENT (pusher->admin), ARGV ("RPUSH", "q", value), NULL,
                              push_done_cb, NULL);
  return G_SOURCE_REMOVE;
}

/* Cancels and pushes race, 200 times (50 in CI's short form under
 * valgrind): every element pushed is either received by a BLPOP or still
 * in the list, and no cancel leaves the server blocked. */
static void
test_cancel_push_races (Fixture       *f,
                        gconstpointer  data)
{
  RedisConnection *admin = f->admin;
  RedisPool *pool = f->pool;
  g_autoptr(GError) error = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (1234);
  Pusher pusher = { f->conn, 0 };
  guint rounds = test_scale_ms (1) > 1 ? 50 : 200;
  guint received = 0, cancelled = 0;
  RedisConnection *lease;

  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < rounds; i++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GError) call_error = NULL;
      g_autoptr(RedisReply) reply = NULL;
      GAsyncResult *result = NULL;

      redis_client_command_async (REDIS_CLIENT (lease), ARGV ("BLPOP", "q", "0"), cancellable,
                                  store_result_cb, &result);
      g_timeout_add (g_rand_int_range (rand, 0, 6), push_cb, &pusher);
      g_timeout_add_full (G_PRIORITY_DEFAULT, g_rand_int_range (rand, 0, 4), cancel_cb,
                          g_object_ref (cancellable), g_object_unref);
      test_wait_for_result (&result, 10000);
      reply = redis_client_command_finish (REDIS_CLIENT (lease), result, &call_error);
      g_clear_object (&result);
      if (reply != NULL)
        {
          g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_ARRAY);
          received++;
        }
      else
        {
          g_assert_error (call_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          cancelled++;
        }
      g_assert_cmpuint (blocked_clients (admin), ==, 0);
    }

  /* Let the last pushes land. */
  WAIT_UNTIL (pusher.pushed == rounds, 5000);
  WAIT_UNTIL (run_integer (admin, ARGV ("LLEN", "q")) + received == pusher.pushed, 5000);
  g_test_message ("%u rounds: %u received, %u cancelled, %u left in the list",
                  rounds, received, cancelled, pusher.pushed - received);
  g_assert_cmpuint (pusher.pushed, ==, rounds);
  redis_pool_release (pool, lease);
  g_object_unref (lease);
}

/* A blocking call on a lease, queued behind a write the socket cannot take
 * (the proxy stops reading), is cancelled, then the connection is lost:
 * not a byte of it went out, so it never ran and stays CANCELLED. It must
 * not be sent again on another connection with its abandonment attached
 * (it once was: it ran there, and that connection then held back every
 * later write). */
static void
test_cancel_unsent_then_lost (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FaultProxy) proxy = NULL;
  g_autoptr(RedisPool) pool = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) set_result = NULL;
  g_autoptr(GAsyncResult) blpop_result = NULL;
  g_autoptr(RedisReply) set_reply = NULL;
  g_autoptr(RedisReply) blpop_reply = NULL;
  g_autoptr(GError) set_error = NULL;
  g_autoptr(GError) blpop_error = NULL;
  g_autofree char *value = NULL;
  const gsize value_len = 32 * 1024 * 1024;   /* far more than the socket buffers take */
  RedisConnection *lease;

  proxy = fault_proxy_new (redis_test_server_get_port (f->server), &error);
  g_assert_no_error (error);
  pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                         "port", (guint) fault_proxy_get_port (proxy), "pool-size", 1,
                         "connect-timeout", test_scale_ms (5000),
                         "command-timeout", test_scale_ms (10000), NULL);
  g_assert_no_error (error);
  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);

  /* The proxy reads one chunk, then holds it (and stops reading) for 10 min. */
  fault_proxy_do (proxy, "delay 600000");
  value = g_malloc (value_len + 1);
  memset (value, 'x', value_len);
  value[value_len] = '\0';
  redis_client_command_async (REDIS_CLIENT (lease), ARGV ("SET", "big", value), NULL,
                              store_result_cb, &set_result);
  redis_client_command_async (REDIS_CLIENT (lease), ARGV ("BLPOP", "q", "0.5"), cancellable,
                              store_result_cb, &blpop_result);
  test_iterate_for (test_scale_ms (200));
  g_cancellable_cancel (cancellable);
  test_iterate_for (test_scale_ms (100));
  fault_proxy_do (proxy, "reset");
  fault_proxy_do (proxy, "pass");
  test_wait_for_result (&set_result, 10000);
  test_wait_for_result (&blpop_result, 10000);

  set_reply = redis_client_command_finish (REDIS_CLIENT (lease), set_result, &set_error);
  g_assert_null (set_reply);
  g_assert_error (set_error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  blpop_reply = redis_client_command_finish (REDIS_CLIENT (lease), blpop_result, &blpop_error);
  g_assert_null (blpop_reply);
  g_assert_error (blpop_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  redis_pool_release (pool, lease);
  g_object_unref (lease);

  /* The pool's blocking commands and leases still work. */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(RedisReply) reply = run (pool, ARGV ("BLPOP", "q", "0.05"));

      g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_NIL);
    }
  lease = redis_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (run_integer (lease, ARGV ("RPUSH", "q", "a")), ==, 1);
  redis_pool_release (pool, lease);
  g_object_unref (lease);
}

static const Case cases[] = {
  { "/blocking/cancel/lease", test_lease_cancel, FALSE, 1 },
  { "/blocking/cancel/each-command", test_each_blocking_command, TRUE },
  { "/blocking/cancel/pool-dedicated", test_pool_dedicated_cancel, FALSE, 2 },
  { "/blocking/cancel/served-first", test_served_before_cancel },   /* its connection goes through a proxy */
  { "/blocking/cancel/push-races", test_cancel_push_races, TRUE, 1 },   /* conn: the pusher */
  { "/blocking/cancel/unblock-impossible", test_unblock_impossible, TRUE },
  { "/blocking/cancel/then-lost", test_cancel_then_lost },   /* on a fake server */
  { "/blocking/cancel/unsent-then-lost", test_cancel_unsent_then_lost },   /* through a proxy */
};

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      if (!redis_test_server_available ())
        g_test_add_data_func (cases[i].path, "redis-server not installed", test_skip_cb);
      else
        g_test_add (cases[i].path, Fixture, &cases[i], fixture_setup, cases[i].body, fixture_teardown);
    }

  return g_test_run ();
}
