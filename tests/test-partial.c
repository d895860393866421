/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Issue 11 item 3: a call cut mid-stream still tells its caller what it got
 * done. Against a real redis-server behind the fault proxy: pipelines cut
 * after N replies (also with the replies fragmented byte by byte), cut
 * while the request is still being written, timed out half-way; a
 * transaction and a no-reply pipeline cut; calls never sent. Each time the
 * replies that arrived are exactly the prefix the server sent (none
 * shifted), the number of commands written whole is within bounds, and
 * the server confirms it: nothing past that number ran. Both forms are
 * checked: redis_client_get_partial() after a failed pipeline_async, and
 * redis_client_pipeline_partial_sync(). */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "fault-proxy.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

#define ARGV(...) ((const char * const []) { __VA_ARGS__, NULL })

/* Big enough that a cut while writing always leaves commands unwritten:
 * more than the client's send buffer (tcp_wmem, 4 MiB at most here) plus
 * what the proxy's receive buffer can hold (tcp_rmem, 32 MiB at most) plus
 * the bytes let through. */
#define BIG_VALUE_BYTES (16 * 1024)
#define BIG_N_COMMANDS  4000
#define BIG_CUT_BYTES   (1024 * 1024 + 100)

typedef enum
{
  MODE_ASYNC,   /* pipeline_async, pipeline_finish fails, get_partial() */
  MODE_SYNC,    /* pipeline_partial_sync() */
} Mode;

static const char *
mode_name (Mode mode)
{
  return mode == MODE_ASYNC ? "async" : "sync";
}

typedef struct
{
  RedisTestServer *server;
  FaultProxy      *proxy;
  RedisConnection *admin;    /* straight to the server */
} Fixture;

static RedisConnection *
connection_new (guint16 port,
                guint   timeout_ms)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                                          "port", (guint) port,
                                          "command-timeout", test_scale_ms (timeout_ms),
                                          NULL);

  g_assert_no_error (error);
  return conn;
}

static gboolean
fixture_setup (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  memset (f, 0, sizeof *f);
  if (!redis_test_server_available ())
    {
      g_test_skip ("redis-server not installed");
      return FALSE;
    }
  f->server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  f->proxy = fault_proxy_new (redis_test_server_get_port (f->server), &error);
  g_assert_no_error (error);
  f->admin = connection_new (redis_test_server_get_port (f->server), 30000);
  return TRUE;
}

static void
fixture_teardown (Fixture *f)
{
  if (f->admin != NULL)
    close_and_finalize (g_steal_pointer (&f->admin));
  g_clear_pointer (&f->proxy, fault_proxy_free);
  g_clear_pointer (&f->server, redis_test_server_free);
}

/* A connection through the proxy, ready: its handshake is done, so every
 * byte the proxy counts from now on belongs to the calls of the test. */
static RedisConnection *
proxied_connection (Fixture *f,
                    guint    timeout_ms)
{
  return connection_new (fault_proxy_get_port (f->proxy), timeout_ms);
}

static void
proxy_do (Fixture    *f,
          const char *format,
          ...) G_GNUC_PRINTF (2, 3);

static void
proxy_do (Fixture    *f,
          const char *format,
          ...)
{
  g_autofree char *command = NULL;
  va_list args;

  va_start (args, format);
  command = g_strdup_vprintf (format, args);
  va_end (args);
  fault_proxy_do (f->proxy, command);
}

static RedisReply *
admin_run (Fixture            *f,
           const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (f->admin), argv, NULL, &error);

  g_assert_no_error (error);
  return reply;
}

static gint64
admin_integer (Fixture            *f,
               const char * const *argv)
{
  g_autoptr(RedisReply) reply = admin_run (f, argv);

  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_INTEGER);
  return redis_reply_get_integer (reply);
}

/* How many of the keys "<prefix><i>", i < @n, exist; fails unless those
 * that do are exactly the first ones (the server runs a pipeline in
 * order). */
static guint
admin_existing_prefix (Fixture    *f,
                       const char *prefix,
                       guint       n)
{
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  guint existing = 0;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s%u", prefix, i);

      redis_batch_add (batch, ARGV ("EXISTS", key));
    }
  replies = redis_client_pipeline_sync (REDIS_CLIENT (f->admin), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, n);
  while (existing < n && redis_reply_get_integer (g_ptr_array_index (replies, existing)) == 1)
    existing++;
  for (guint i = existing; i < n; i++)
    g_assert_cmpint (redis_reply_get_integer (g_ptr_array_index (replies, i)), ==, 0);
  return existing;
}

/* Runs @batch as a pipeline on @client, which must fail with @domain and
 * @code; returns the replies that arrived and sets @n_written. The async
 * form also checks that pipeline_finish fails as it always did. */
static GPtrArray *
run_failing_pipeline (gpointer    client,
                      RedisBatch *batch,
                      Mode        mode,
                      GQuark      domain,
                      int         code,
                      guint      *n_written)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *replies;

  *n_written = G_MAXUINT;
  if (mode == MODE_SYNC)
    replies = redis_client_pipeline_partial_sync (REDIS_CLIENT (client), batch, NULL,
                                                  &error, n_written);
  else
    {
      g_autoptr(GAsyncResult) result = NULL;
      GPtrArray *none;

      redis_client_pipeline_async (REDIS_CLIENT (client), batch, NULL, store_result_cb, &result);
      test_wait_for_result (&result, 60000);
      none = redis_client_pipeline_finish (REDIS_CLIENT (client), result, &error);
      g_assert_null (none);
      replies = redis_client_get_partial (REDIS_CLIENT (client), result, n_written);
    }

  g_assert_error (error, domain, code);
  g_assert_nonnull (replies);
  g_test_message ("%s: %u of %u replies arrived, %u commands written whole: %s",
                  mode_name (mode), replies->len, redis_batch_get_n_commands (batch),
                  *n_written, error->message);
  /* arrived ≤ written ≤ total */
  g_assert_cmpuint (replies->len, <=, *n_written);
  g_assert_cmpuint (*n_written, <=, redis_batch_get_n_commands (batch));
  return replies;
}

static void
assert_status_ok (RedisReply *reply)
{
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STATUS);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "OK");
}

static void
assert_string (RedisReply *reply,
               const char *expected)
{
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STRING);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, expected);
}

/* The size of "$<len>\r\n<text>\r\n". */
static guint
bulk_reply_size (const char *text)
{
  g_autofree char *header = g_strdup_printf ("$%zu\r\n", strlen (text));

  return (guint) (strlen (header) + strlen (text) + 2);
}

/* ---- cut after N replies ------------------------------------------------ */

/* The case: 5,000 SET + 5,000 GET, the connection cut after
 * 7,000 replies (in the middle of the next one). The caller gets the
 * 7,000, each in its place; the server holds all 5,000 keys. */
static void
cut_after_replies (Mode mode)
{
  enum { N_KEYS = 5000, ARRIVED = 7000 };
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  guint cut = 0, n_written;

  if (!fixture_setup (&f))
    return;
  conn = proxied_connection (&f, 30000);

  for (guint i = 0; i < N_KEYS; i++)
    {
      g_autofree char *key = g_strdup_printf ("k:%u", i);
      g_autofree char *value = g_strdup_printf ("v:%u", i);

      redis_batch_add (batch, ARGV ("SET", key, value));
    }
  for (guint i = 0; i < N_KEYS; i++)
    {
      g_autofree char *key = g_strdup_printf ("k:%u", i);
      g_autofree char *value = g_strdup_printf ("v:%u", i);

      redis_batch_add (batch, ARGV ("GET", key));
      if (N_KEYS + i < ARRIVED)
        cut += bulk_reply_size (value);
    }
  cut += N_KEYS * strlen ("+OK\r\n");
  /* Into the payload of reply ARRIVED: "$6\r\nv:2000\r\n" cut after "$6\r\nv:". */
  proxy_do (&f, "close-after %u down", cut + 6);

  replies = run_failing_pipeline (conn, batch, mode, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                  &n_written);
  g_assert_cmpuint (replies->len, ==, ARRIVED);
  g_assert_cmpuint (n_written, >=, ARRIVED);
  for (guint i = 0; i < N_KEYS; i++)
    assert_status_ok (g_ptr_array_index (replies, i));
  for (guint i = N_KEYS; i < ARRIVED; i++)
    {
      g_autofree char *value = g_strdup_printf ("v:%u", i - N_KEYS);

      assert_string (g_ptr_array_index (replies, i), value);
    }

  g_assert_cmpint (admin_integer (&f, ARGV ("DBSIZE")), ==, N_KEYS);
  {
    g_autoptr(RedisReply) last = admin_run (&f, ARGV ("GET", "k:4999"));

    assert_string (last, "v:4999");
  }

  g_clear_object (&conn);
  fixture_teardown (&f);
}

static void
test_cut_after_replies_async (void)
{
  cut_after_replies (MODE_ASYNC);
}

static void
test_cut_after_replies_sync (void)
{
  cut_after_replies (MODE_SYNC);
}

/* ECHO replies of many sizes, delivered one byte per read, cut in the
 * middle of a bulk payload: a reply the reader holds only in part is not
 * one that arrived, and none of those that did is shifted. */
static void
cut_fragmented (Mode mode)
{
  enum { N = 300, ARRIVED = 217 };
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  guint cut = 0, n_written;

  if (!fixture_setup (&f))
    return;
  conn = proxied_connection (&f, 30000);

  for (guint i = 0; i < N; i++)
    {
      /* 1 to 97 bytes: headers of one and two digits. */
      char *token = g_strnfill (1 + (i * 37) % 97, 'a' + i % 26);

      token[0] = '0' + i % 10;
      g_ptr_array_add (tokens, token);
      redis_batch_add (batch, ARGV ("ECHO", token));
      if (i < ARRIVED)
        cut += bulk_reply_size (token);
    }
  fault_proxy_do (f.proxy, "fragment");
  proxy_do (&f, "close-after %u down", cut + 4);

  replies = run_failing_pipeline (conn, batch, mode, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                  &n_written);
  g_assert_cmpuint (replies->len, ==, ARRIVED);
  /* A few hundred bytes: written whole long before the first reply. */
  g_assert_cmpuint (n_written, ==, N);
  for (guint i = 0; i < ARRIVED; i++)
    assert_string (g_ptr_array_index (replies, i), g_ptr_array_index (tokens, i));

  fault_proxy_do (f.proxy, "pass");
  g_clear_object (&conn);
  fixture_teardown (&f);
}

static void
test_cut_fragmented_async (void)
{
  cut_fragmented (MODE_ASYNC);
}

static void
test_cut_fragmented_sync (void)
{
  cut_fragmented (MODE_SYNC);
}

/* ---- cut while writing -------------------------------------------------- */

static RedisBatch *
big_batch (const char *prefix)
{
  RedisBatch *batch = redis_batch_new ();
  g_autofree char *value = g_strnfill (BIG_VALUE_BYTES, 'x');

  for (guint i = 0; i < BIG_N_COMMANDS; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s%u", prefix, i);

      redis_batch_add (batch, ARGV ("SET", key, value));
    }
  return batch;
}

/* 64 MiB of SETs, the request cut after 1 MiB: the commands past
 * n_written were never written, and the server confirms that none of
 * them ran; what ran is a prefix, at least the replies that arrived. */
static void
cut_during_write (Mode mode)
{
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisBatch) batch = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  guint n_written, ran;

  if (!fixture_setup (&f))
    return;
  conn = proxied_connection (&f, 30000);
  batch = big_batch ("w:");
  proxy_do (&f, "close-after %u up", BIG_CUT_BYTES);

  replies = run_failing_pipeline (conn, batch, mode, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                  &n_written);
  g_assert_cmpuint (n_written, <, BIG_N_COMMANDS);
  for (guint i = 0; i < replies->len; i++)
    assert_status_ok (g_ptr_array_index (replies, i));

  ran = admin_existing_prefix (&f, "w:", BIG_N_COMMANDS);
  g_test_message ("the server ran %u of them", ran);
  g_assert_cmpuint (ran, >=, replies->len);
  g_assert_cmpuint (ran, <=, n_written);

  g_clear_object (&conn);
  fixture_teardown (&f);
}

static void
test_cut_during_write_async (void)
{
  cut_during_write (MODE_ASYNC);
}

static void
test_cut_during_write_sync (void)
{
  cut_during_write (MODE_SYNC);
}

/* ---- timeout ------------------------------------------------------------ */

/* Replies dripping in one byte per millisecond, the deadline passing
 * half-way: TIMEOUT, with the replies that had arrived by then. */
static void
timeout_half_way (Mode mode)
{
  enum { N = 5000 };
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GPtrArray) replies = NULL;
  guint n_written;

  if (!fixture_setup (&f))
    return;
  conn = proxied_connection (&f, 1000);

  for (guint i = 0; i < N; i++)
    {
      g_autofree char *token = g_strdup_printf ("t%04u", i);

      redis_batch_add (batch, ARGV ("ECHO", token));
    }
  /* 55 KB of replies at a byte per ms or slower: far past the deadline. */
  fault_proxy_do (f.proxy, "drip 1");

  replies = run_failing_pipeline (conn, batch, mode, REDIS_ERROR, REDIS_ERROR_TIMEOUT,
                                  &n_written);
  g_assert_cmpuint (replies->len, >, 0);
  g_assert_cmpuint (replies->len, <, N);
  for (guint i = 0; i < replies->len; i++)
    {
      g_autofree char *token = g_strdup_printf ("t%04u", i);

      assert_string (g_ptr_array_index (replies, i), token);
    }

  fault_proxy_do (f.proxy, "pass");
  g_clear_object (&conn);
  fixture_teardown (&f);
}

static void
test_timeout_async (void)
{
  timeout_half_way (MODE_ASYNC);
}

static void
test_timeout_sync (void)
{
  timeout_half_way (MODE_SYNC);
}

/* ---- transactions and no-reply pipelines -------------------------------- */

static GAsyncResult *
run_transaction_async (gpointer    client,
                       RedisBatch *batch,
                       int         code)
{
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  GPtrArray *none;

  redis_client_transaction_async (REDIS_CLIENT (client), batch, NULL, store_result_cb, &result);
  test_wait_for_result (&result, 60000);
  none = redis_client_transaction_finish (REDIS_CLIENT (client), result, &error);
  g_assert_null (none);
  g_assert_error (error, REDIS_ERROR, code);
  return result;
}

/* EXEC answers all or nothing: a cut transaction is either wholly "may
 * have run" (EXEC written) or wholly "did not run" (EXEC not written),
 * and returns no replies. */
static void
test_transaction (void)
{
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisBatch) small = redis_batch_new ();
  g_autoptr(RedisBatch) big = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  gint64 len;
  guint n_written;

  if (!fixture_setup (&f))
    return;

  /* Cut in the QUEUED replies: EXEC was written with the rest. */
  conn = proxied_connection (&f, 30000);
  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *id = g_strdup_printf ("%u", i);

      redis_batch_add (small, ARGV ("RPUSH", "tx", id));
    }
  fault_proxy_do (f.proxy, "close-after 40 down");
  result = run_transaction_async (conn, small, REDIS_ERROR_CONNECTION_LOST);
  replies = redis_client_get_partial (REDIS_CLIENT (conn), result, &n_written);
  g_assert_nonnull (replies);
  g_assert_cmpuint (replies->len, ==, 0);
  g_assert_cmpuint (n_written, ==, 20);
  len = admin_integer (&f, ARGV ("LLEN", "tx"));
  g_test_message ("transaction cut in its replies: n_written %u, %" G_GINT64_FORMAT
                  " of 20 ran", n_written, len);
  g_assert_true (len == 0 || len == 20);
  g_clear_object (&result);
  g_clear_pointer (&replies, g_ptr_array_unref);
  g_clear_object (&conn);

  /* Cut while writing, before EXEC: nothing ran, n_written says so. */
  conn = proxied_connection (&f, 30000);
  big = big_batch ("tx:");
  proxy_do (&f, "close-after %u up", BIG_CUT_BYTES);
  result = run_transaction_async (conn, big, REDIS_ERROR_CONNECTION_LOST);
  replies = redis_client_get_partial (REDIS_CLIENT (conn), result, &n_written);
  g_assert_nonnull (replies);
  g_assert_cmpuint (replies->len, ==, 0);
  g_assert_cmpuint (n_written, ==, 0);
  g_assert_cmpuint (admin_existing_prefix (&f, "tx:", BIG_N_COMMANDS), ==, 0);
  g_clear_object (&conn);

  fixture_teardown (&f);
}

/* A no-reply pipeline cut while writing: no replies, and the commands past
 * n_written did not run. */
static void
test_noreply (void)
{
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisBatch) batch = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  guint n_written, ran;

  if (!fixture_setup (&f))
    return;
  conn = proxied_connection (&f, 30000);
  batch = big_batch ("n:");
  proxy_do (&f, "close-after %u up", BIG_CUT_BYTES);

  redis_client_noreply_pipeline_async (REDIS_CLIENT (conn), batch, NULL, store_result_cb, &result);
  test_wait_for_result (&result, 60000);
  g_assert_false (redis_client_noreply_pipeline_finish (REDIS_CLIENT (conn), result, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  replies = redis_client_get_partial (REDIS_CLIENT (conn), result, &n_written);
  g_assert_nonnull (replies);
  g_assert_cmpuint (replies->len, ==, 0);
  g_assert_cmpuint (n_written, <, BIG_N_COMMANDS);
  ran = admin_existing_prefix (&f, "n:", BIG_N_COMMANDS);
  g_test_message ("no-reply pipeline cut while writing: %u written whole, %u ran",
                  n_written, ran);
  g_assert_cmpuint (ran, <=, n_written);
  g_assert_cmpuint (ran, >, 0);

  g_clear_object (&conn);
  fixture_teardown (&f);
}

/* ---- through a pool ----------------------------------------------------- */

static void
test_pool (void)
{
  enum { N_KEYS = 100, ARRIVED = 150 };
  Fixture f;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisPool) pool = NULL;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autofree char *uri = NULL;
  guint cut = N_KEYS * strlen ("+OK\r\n");

  if (!fixture_setup (&f))
    return;
  uri = g_strdup_printf ("redis://127.0.0.1:%u/0?pool_size=1&command_timeout=%u"
                         "&backoff_initial=20&backoff_max=200",
                         fault_proxy_get_port (f.proxy), test_scale_ms (30000));
  pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == 1, 5000);

  for (guint i = 0; i < N_KEYS; i++)
    {
      g_autofree char *key = g_strdup_printf ("p:%u", i);
      g_autofree char *value = g_strdup_printf ("%u", i);

      redis_batch_add (batch, ARGV ("SET", key, value));
    }
  for (guint i = 0; i < N_KEYS; i++)
    {
      g_autofree char *key = g_strdup_printf ("p:%u", i);
      g_autofree char *value = g_strdup_printf ("%u", i);

      redis_batch_add (batch, ARGV ("GET", key));
      if (N_KEYS + i < ARRIVED)
        cut += bulk_reply_size (value);
    }

  for (Mode mode = MODE_ASYNC; mode <= MODE_SYNC; mode++)
    {
      g_autoptr(GPtrArray) replies = NULL;
      guint n_written;

      proxy_do (&f, "close-after %u down", cut + 2);
      replies = run_failing_pipeline (pool, batch, mode, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                      &n_written);
      g_assert_cmpuint (replies->len, ==, ARRIVED);
      g_assert_cmpuint (n_written, ==, 2 * N_KEYS);
      for (guint i = 0; i < N_KEYS; i++)
        assert_status_ok (g_ptr_array_index (replies, i));
      for (guint i = N_KEYS; i < ARRIVED; i++)
        {
          g_autofree char *value = g_strdup_printf ("%u", i - N_KEYS);

          assert_string (g_ptr_array_index (replies, i), value);
        }
      /* The pool replaces the connection. */
      WAIT_UNTIL (redis_pool_get_active_connections (pool) == 1, 5000);
    }

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, NULL));
  unref_and_wait_finalized (g_steal_pointer (&pool));
  fixture_teardown (&f);
}

/* ---- success, and calls never sent ------------------------------------- */

static void
test_success_and_not_sent (void)
{
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  guint n_written = G_MAXUINT;

  if (!fixture_setup (&f))
    return;
  conn = proxied_connection (&f, 30000);
  redis_batch_add (batch, ARGV ("SET", "a", "1"));
  redis_batch_add (batch, ARGV ("GET", "a"));

  /* Success: the sync form returns everything, no failure; the accessor
   * has nothing to say about a call that did not fail. */
  replies = redis_client_pipeline_partial_sync (REDIS_CLIENT (conn), batch, NULL, &error,
                                                &n_written);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2);
  g_assert_cmpuint (n_written, ==, 2);
  assert_status_ok (g_ptr_array_index (replies, 0));
  assert_string (g_ptr_array_index (replies, 1), "1");
  g_clear_pointer (&replies, g_ptr_array_unref);

  redis_client_pipeline_async (REDIS_CLIENT (conn), batch, NULL, store_result_cb, &result);
  test_wait_for_result (&result, 10000);
  replies = redis_client_pipeline_finish (REDIS_CLIENT (conn), result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2);
  g_clear_pointer (&replies, g_ptr_array_unref);
  n_written = G_MAXUINT;
  g_assert_null (redis_client_get_partial (REDIS_CLIENT (conn), result, &n_written));
  g_assert_cmpuint (n_written, ==, 0);
  g_clear_object (&result);

  /* Never sent: CLOSED, nothing written, nothing arrived. */
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (conn), NULL, NULL));
  redis_client_pipeline_async (REDIS_CLIENT (conn), batch, NULL, store_result_cb, &result);
  test_wait_for_result (&result, 10000);
  g_assert_null (redis_client_pipeline_finish (REDIS_CLIENT (conn), result, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);
  n_written = G_MAXUINT;
  replies = redis_client_get_partial (REDIS_CLIENT (conn), result, &n_written);
  g_assert_nonnull (replies);
  g_assert_cmpuint (replies->len, ==, 0);
  g_assert_cmpuint (n_written, ==, 0);
  g_clear_pointer (&replies, g_ptr_array_unref);
  g_clear_object (&result);

  n_written = G_MAXUINT;
  replies = redis_client_pipeline_partial_sync (REDIS_CLIENT (conn), batch, NULL, &error,
                                                &n_written);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpuint (replies->len, ==, 0);
  g_assert_cmpuint (n_written, ==, 0);
  g_clear_pointer (&replies, g_ptr_array_unref);

  /* Refused before sending (a NULL batch): the same. */
  replies = redis_client_pipeline_partial_sync (REDIS_CLIENT (conn), NULL, NULL, &error,
                                                &n_written);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpuint (replies->len, ==, 0);
  g_assert_cmpuint (n_written, ==, 0);
  g_clear_pointer (&replies, g_ptr_array_unref);

  /* Optional out arguments may be NULL. */
  replies = redis_client_pipeline_partial_sync (REDIS_CLIENT (conn), batch, NULL, NULL, NULL);
  g_assert_cmpuint (replies->len, ==, 0);
  g_clear_pointer (&replies, g_ptr_array_unref);

  /* The plain forms keep their contract: NULL and the error. */
  g_assert_null (redis_client_pipeline_sync (REDIS_CLIENT (conn), batch, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);

  close_and_finalize (g_steal_pointer (&conn));
  fixture_teardown (&f);
}

/* A single command cut while it is being written failed CONNECTION_LOST
 * and did not run: n_written is 0. */
static void
test_command_cut_during_write (void)
{
  Fixture f;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *value = g_strnfill (48 * 1024 * 1024, 'y');
  guint n_written = G_MAXUINT;

  if (!fixture_setup (&f))
    return;
  conn = proxied_connection (&f, 30000);
  proxy_do (&f, "close-after %u up", BIG_CUT_BYTES);
  redis_client_command_async (REDIS_CLIENT (conn), ARGV ("SET", "big", value), NULL,
                              store_result_cb, &result);
  test_wait_for_result (&result, 60000);
  g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), result, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  replies = redis_client_get_partial (REDIS_CLIENT (conn), result, &n_written);
  g_assert_nonnull (replies);
  g_assert_cmpuint (replies->len, ==, 0);
  g_assert_cmpuint (n_written, ==, 0);
  g_assert_cmpint (admin_integer (&f, ARGV ("EXISTS", "big")), ==, 0);

  g_clear_object (&conn);
  fixture_teardown (&f);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/partial/pipeline/cut-after-replies/async", test_cut_after_replies_async);
  g_test_add_func ("/partial/pipeline/cut-after-replies/sync", test_cut_after_replies_sync);
  g_test_add_func ("/partial/pipeline/fragmented/async", test_cut_fragmented_async);
  g_test_add_func ("/partial/pipeline/fragmented/sync", test_cut_fragmented_sync);
  g_test_add_func ("/partial/pipeline/cut-during-write/async", test_cut_during_write_async);
  g_test_add_func ("/partial/pipeline/cut-during-write/sync", test_cut_during_write_sync);
  g_test_add_func ("/partial/pipeline/timeout/async", test_timeout_async);
  g_test_add_func ("/partial/pipeline/timeout/sync", test_timeout_sync);
  g_test_add_func ("/partial/pipeline/pool", test_pool);
  g_test_add_func ("/partial/transaction", test_transaction);
  g_test_add_func ("/partial/noreply", test_noreply);
  g_test_add_func ("/partial/command/cut-during-write", test_command_cut_during_write);
  g_test_add_func ("/partial/success-and-not-sent", test_success_and_not_sent);

  return g_test_run ();
}
