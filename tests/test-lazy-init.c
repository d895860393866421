/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Pools and connections that were never initialized: built with
 * g_object_new() alone, as the keyword constructors of bindings do
 * (Python `Redis.Pool(host=…)`, GJS `new Redis.Pool({…})`). Their first
 * call, through any entry point, starts what g_initable_init() would and
 * waits behind it; an explicit init later gets that same outcome without
 * connecting again. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"
#include "test-listener.h"

#define ARGV(...) ((const char * const []) { __VA_ARGS__, NULL })
#define POOL_SIZE 3

static RedisTestServer *server;

/* ---- helpers ------------------------------------------------------------ */

/* Connections opened since @before (the count's own one left out). */
static guint64
opened_since (guint64 before)
{
  return test_server_connections_received (server) - before - 1;
}

/* Never initialized. The command timeout is shorter than the library's
 * default, so that a call stuck behind a connect that never starts fails
 * the test early; it still scales with load. */
static RedisClient *
lazy_new (GType                type,
          guint16              port,
          RedisPoolConnectMode mode)
{
  if (type == REDIS_TYPE_POOL)
    return g_object_new (REDIS_TYPE_POOL,
                         "port", (guint) port,
                         "pool-size", POOL_SIZE,
                         "connect-mode", mode,
                         "connect-timeout", test_scale_ms (2000),
                         "command-timeout", test_scale_ms (3000),
                         NULL);
  return g_object_new (REDIS_TYPE_CONNECTION,
                       "port", (guint) port,
                       "connect-timeout", test_scale_ms (2000),
                       "command-timeout", test_scale_ms (3000),
                       NULL);
}

/* The ways in: every one must start the object. */
typedef enum
{
  ENTRY_COMMAND,
  ENTRY_COMMAND_ASYNC,
  ENTRY_COMMAND_BYTES,
  ENTRY_PIPELINE,
  ENTRY_PIPELINE_ASYNC,
  ENTRY_TRANSACTION,
  ENTRY_TRANSACTION_ASYNC,
  ENTRY_NOREPLY,
  ENTRY_NOREPLY_ASYNC,
  ENTRY_NOREPLY_PIPELINE,
  ENTRY_ACQUIRE,          /* pools only */
  ENTRY_ACQUIRE_ASYNC,    /* pools only */
} Entry;

typedef struct
{
  GType       type;
  Entry       entry;
} Case;

static RedisBatch *
echo_batch (const char *text)
{
  RedisBatch *batch = redis_batch_new ();

  redis_batch_add (batch, ARGV ("ECHO", text));
  redis_batch_add (batch, ARGV ("PING"));
  return batch;
}

static void
check_echo_replies (GPtrArray  *replies,
                    const char *text)
{
  g_assert_nonnull (replies);
  g_assert_cmpuint (replies->len, ==, 2);
  g_assert_cmpstr (redis_reply_get_text (g_ptr_array_index (replies, 0)), ==, text);
  g_assert_cmpstr (redis_reply_get_text (g_ptr_array_index (replies, 1)), ==, "PONG");
}

static void
check_lease (RedisConnection *lease)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;

  g_assert_nonnull (lease);
  reply = redis_client_command_sync (REDIS_CLIENT (lease), ARGV ("PING"), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_text (reply), ==, "PONG");
}

/* The first call, through @entry; TRUE once it succeeded (a noreply call
 * is followed by a read of what it wrote). */
static void
first_call (RedisClient *client,
            Entry        entry)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(RedisBatch) batch = NULL;
  g_autoptr(RedisConnection) lease = NULL;
  g_autofree char *key = g_strdup_printf ("lazy:%d:%s", entry, G_OBJECT_TYPE_NAME (client));

  switch (entry)
    {
    case ENTRY_COMMAND:
      reply = redis_client_command_sync (client, ARGV ("PING"), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (redis_reply_get_text (reply), ==, "PONG");
      break;

    case ENTRY_COMMAND_ASYNC:
      redis_client_command_async (client, ARGV ("PING"), NULL, store_result_cb, &result);
      test_wait_for_result (&result, 5000);
      reply = redis_client_command_finish (client, result, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (redis_reply_get_text (reply), ==, "PONG");
      break;

    case ENTRY_COMMAND_BYTES:
      {
        g_autoptr(GBytes) echo = g_bytes_new_static ("ECHO", 4);
        g_autoptr(GBytes) value = g_bytes_new_static ("a\0b", 3);
        GBytes *args[] = { echo, value };
        gsize len = 0;
        const guint8 *data;

        reply = redis_client_command_bytes_sync (client, args, 2, NULL, &error);
        g_assert_no_error (error);
        data = redis_reply_get_data (reply, &len);
        g_assert_cmpmem (data, len, "a\0b", 3);
      }
      break;

    case ENTRY_PIPELINE:
      batch = echo_batch ("p");
      replies = redis_client_pipeline_sync (client, batch, NULL, &error);
      g_assert_no_error (error);
      check_echo_replies (replies, "p");
      break;

    case ENTRY_PIPELINE_ASYNC:
      batch = echo_batch ("pa");
      redis_client_pipeline_async (client, batch, NULL, store_result_cb, &result);
      test_wait_for_result (&result, 5000);
      replies = redis_client_pipeline_finish (client, result, &error);
      g_assert_no_error (error);
      check_echo_replies (replies, "pa");
      break;

    case ENTRY_TRANSACTION:
      batch = echo_batch ("t");
      replies = redis_client_transaction_sync (client, batch, NULL, &error);
      g_assert_no_error (error);
      check_echo_replies (replies, "t");
      break;

    case ENTRY_TRANSACTION_ASYNC:
      batch = echo_batch ("ta");
      redis_client_transaction_async (client, batch, NULL, store_result_cb, &result);
      test_wait_for_result (&result, 5000);
      replies = redis_client_transaction_finish (client, result, &error);
      g_assert_no_error (error);
      check_echo_replies (replies, "ta");
      break;

    case ENTRY_NOREPLY:
    case ENTRY_NOREPLY_ASYNC:
      if (entry == ENTRY_NOREPLY)
        {
          g_assert_true (redis_client_noreply_command_sync (client, ARGV ("SET", key, "n"),
                                                            NULL, &error));
        }
      else
        {
          redis_client_noreply_command_async (client, ARGV ("SET", key, "n"), NULL,
                                              store_result_cb, &result);
          test_wait_for_result (&result, 5000);
          g_assert_true (redis_client_noreply_command_finish (client, result, &error));
        }
      g_assert_no_error (error);
      reply = redis_client_command_sync (client, ARGV ("GET", key), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (redis_reply_get_text (reply), ==, "n");
      break;

    case ENTRY_NOREPLY_PIPELINE:
      batch = redis_batch_new ();
      redis_batch_add (batch, ARGV ("SET", key, "np"));
      g_assert_true (redis_client_noreply_pipeline_sync (client, batch, NULL, &error));
      g_assert_no_error (error);
      reply = redis_client_command_sync (client, ARGV ("GET", key), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (redis_reply_get_text (reply), ==, "np");
      break;

    case ENTRY_ACQUIRE:
      lease = redis_pool_acquire_sync (REDIS_POOL (client), NULL, &error);
      g_assert_no_error (error);
      check_lease (lease);
      redis_pool_release (REDIS_POOL (client), lease);
      break;

    case ENTRY_ACQUIRE_ASYNC:
      redis_pool_acquire_async (REDIS_POOL (client), NULL, store_result_cb, &result);
      test_wait_for_result (&result, 5000);
      lease = redis_pool_acquire_finish (REDIS_POOL (client), result, &error);
      g_assert_no_error (error);
      check_lease (lease);
      redis_pool_release (REDIS_POOL (client), lease);
      break;

    default:
      g_assert_not_reached ();
    }
}

static void
close_and_drop (RedisClient *client)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_client_close_sync (client, NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  unref_and_wait_finalized (client);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* ---- first use ---------------------------------------------------------- */

/* The first call, by @data's entry point, connects and succeeds; an init
 * afterwards returns TRUE at once, without connecting again; so does a
 * second one. */
static void
test_first_use (gconstpointer data)
{
  const Case *c = data;
  g_autoptr(GError) error = NULL;
  RedisClient *client;
  gboolean is_pool = c->type == REDIS_TYPE_POOL;
  guint64 before, expected;
  gint64 t0;

  before = test_server_connections_received (server);
  client = lazy_new (c->type, redis_test_server_get_port (server),
                     REDIS_POOL_CONNECT_MODE_WAIT_ALL);

  t0 = g_get_monotonic_time ();
  first_call (client, c->entry);
  g_test_message ("first call done in %.1f ms", (g_get_monotonic_time () - t0) / 1000.0);
  /* The first call started the shared connections, whatever its kind (a
   * lease is a connection of its own). */
  if (is_pool)
    WAIT_UNTIL (redis_pool_get_active_connections (REDIS_POOL (client)) == POOL_SIZE, 3000);

  g_assert_true (g_initable_init (G_INITABLE (client), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_initable_init (G_INITABLE (client), NULL, &error));
  g_assert_no_error (error);

  if (is_pool)
    {
      /* The slots, and the lease the acquire opened. */
      expected = POOL_SIZE + (c->entry == ENTRY_ACQUIRE || c->entry == ENTRY_ACQUIRE_ASYNC);
      g_assert_cmpuint (redis_pool_get_active_connections (REDIS_POOL (client)), ==, POOL_SIZE);
    }
  else
    {
      expected = 1;
      g_assert_cmpint (redis_connection_get_state (REDIS_CONNECTION (client)), ==,
                       REDIS_CONNECTION_STATE_READY);
      g_assert_cmpint (redis_connection_get_client_id (REDIS_CONNECTION (client)), >, 0);
    }
  g_assert_cmpuint (opened_since (before), ==, expected);

  close_and_drop (client);
}

/* A pool in the background mode starts the same way. */
static void
test_pool_background (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  RedisClient *client;

  client = lazy_new (REDIS_TYPE_POOL, redis_test_server_get_port (server),
                     REDIS_POOL_CONNECT_MODE_BACKGROUND);
  first_call (client, ENTRY_COMMAND_ASYNC);
  WAIT_UNTIL (redis_pool_get_active_connections (REDIS_POOL (client)) == POOL_SIZE, 3000);

  g_async_initable_init_async (G_ASYNC_INITABLE (client), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &result);
  test_wait_for_result (&result, 2000);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (client), result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  close_and_drop (client);
}

/* An init made while the start of a first call is under way waits for it
 * and shares its outcome: one connect, not two. */
static void
test_init_during_start (gconstpointer data)
{
  GType type = *(const GType *) data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) call = NULL;
  g_autoptr(GAsyncResult) init = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisClient *client;
  guint64 before;

  before = test_server_connections_received (server);
  client = lazy_new (type, redis_test_server_get_port (server), REDIS_POOL_CONNECT_MODE_WAIT_ALL);

  redis_client_command_async (client, ARGV ("ECHO", "early"), NULL, store_result_cb, &call);
  g_async_initable_init_async (G_ASYNC_INITABLE (client), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &init);
  test_wait_for_result (&init, 3000);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (client), init, &error));
  g_assert_no_error (error);
  test_wait_for_result (&call, 3000);
  reply = redis_client_command_finish (client, call, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_text (reply), ==, "early");
  g_assert_cmpuint (opened_since (before), ==, type == REDIS_TYPE_POOL ? POOL_SIZE : 1);

  g_clear_pointer (&reply, redis_reply_unref);
  g_clear_object (&call);
  g_clear_object (&init);
  close_and_drop (client);
}

/* Calls from several threads at once on a fresh object: one start. */
typedef struct
{
  RedisClient *client;
  guint        index;
} ThreadCall;

static gpointer
call_in_thread (gpointer data)
{
  ThreadCall *tc = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_strdup_printf ("t%u", tc->index);
  g_autoptr(RedisReply) reply = redis_client_command_sync (tc->client, ARGV ("ECHO", text),
                                                           NULL, &error);

  return GINT_TO_POINTER (error == NULL && g_strcmp0 (redis_reply_get_text (reply), text) == 0);
}

static void
test_threads (gconstpointer data)
{
  GType type = *(const GType *) data;
  g_autoptr(GError) error = NULL;
  ThreadCall calls[6];
  GThread *threads[G_N_ELEMENTS (calls)];
  RedisClient *client;
  guint64 before;

  before = test_server_connections_received (server);
  client = lazy_new (type, redis_test_server_get_port (server), REDIS_POOL_CONNECT_MODE_WAIT_ALL);
  for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
    {
      calls[i].client = client;
      calls[i].index = i;
      threads[i] = g_thread_new ("lazy", call_in_thread, &calls[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (calls); i++)
    g_assert_true (GPOINTER_TO_INT (g_thread_join (threads[i])));

  g_assert_true (g_initable_init (G_INITABLE (client), NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (opened_since (before), ==, type == REDIS_TYPE_POOL ? POOL_SIZE : 1);
  close_and_drop (client);
}

/* ---- first use that cannot connect -------------------------------------- */

/* The first call fails at once, not sent (CLOSED, as any call waiting for
 * a connect that failed) and naming the reason, rather than after its
 * deadline with "no connection became available"; a later init fails with
 * the connect's own error. */
static void
test_connect_fails (gconstpointer data)
{
  GType type = *(const GType *) data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;
  RedisClient *client;
  gint64 t0;
  double ms;

  /* The command timeout is far beyond the connect's: the failure must
   * not be the deadline. */
  if (type == REDIS_TYPE_POOL)
    client = g_object_new (type, "port", (guint) closed_port (), "pool-size", 2,
                           "connect-timeout", test_scale_ms (2000),
                           "command-timeout", test_scale_ms (30000), NULL);
  else
    client = g_object_new (type, "port", (guint) closed_port (),
                           "connect-timeout", test_scale_ms (2000),
                           "command-timeout", test_scale_ms (30000), NULL);

  t0 = g_get_monotonic_time ();
  redis_client_command_async (client, ARGV ("PING"), NULL, store_result_cb, &result);
  test_wait_for_result (&result, 5000);
  ms = (g_get_monotonic_time () - t0) / 1000.0;
  reply = redis_client_command_finish (client, result, &error);
  g_assert_null (reply);
  g_test_message ("failed in %.1f ms: %s", ms, error->message);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_assert_true (g_str_has_prefix (error->message, "PING was not sent: "));
  g_assert_nonnull (strstr (error->message, "Connection refused"));
  g_assert_cmpfloat (ms, <, test_scale_ms (2000));
  g_clear_error (&error);
  g_clear_object (&result);

  g_assert_false (g_initable_init (G_INITABLE (client), NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_clear_error (&error);

  test_drain_main_context ();
  unref_and_wait_finalized (client);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* A never-initialized object dropped without a call connects nothing. */
static void
test_unused (gconstpointer data)
{
  GType type = *(const GType *) data;
  RedisClient *client;
  guint64 before;

  before = test_server_connections_received (server);
  client = lazy_new (type, redis_test_server_get_port (server), REDIS_POOL_CONNECT_MODE_WAIT_ALL);
  if (type == REDIS_TYPE_POOL)
    {
      g_autoptr(GVariant) info = redis_pool_get_info (REDIS_POOL (client));

      g_assert_nonnull (info);
      g_assert_cmpuint (redis_pool_get_active_connections (REDIS_POOL (client)), ==, 0);
    }
  else
    g_assert_cmpint (redis_connection_get_state (REDIS_CONNECTION (client)), ==,
                     REDIS_CONNECTION_STATE_DISCONNECTED);
  unref_and_wait_finalized (client);
  g_assert_cmpuint (opened_since (before), ==, 0);
}

/* ---- main --------------------------------------------------------------- */

static const struct { Entry entry; const char *name; gboolean pool_only; } entries[] = {
  { ENTRY_COMMAND, "command", FALSE },
  { ENTRY_COMMAND_ASYNC, "command-async", FALSE },
  { ENTRY_COMMAND_BYTES, "command-bytes", FALSE },
  { ENTRY_PIPELINE, "pipeline", FALSE },
  { ENTRY_PIPELINE_ASYNC, "pipeline-async", FALSE },
  { ENTRY_TRANSACTION, "transaction", FALSE },
  { ENTRY_TRANSACTION_ASYNC, "transaction-async", FALSE },
  { ENTRY_NOREPLY, "noreply", FALSE },
  { ENTRY_NOREPLY_ASYNC, "noreply-async", FALSE },
  { ENTRY_NOREPLY_PIPELINE, "noreply-pipeline", FALSE },
  { ENTRY_ACQUIRE, "acquire", TRUE },
  { ENTRY_ACQUIRE_ASYNC, "acquire-async", TRUE },
};

int
main (int    argc,
      char **argv)
{
  static GType types[2];
  static const char * const type_names[] = { "pool", "connection" };
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) cases = g_ptr_array_new_with_free_func (g_free);
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  /* No server, no test: these cases are about connecting to one. */
  g_assert_true (redis_test_server_available ());
  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);

  types[0] = REDIS_TYPE_POOL;
  types[1] = REDIS_TYPE_CONNECTION;

  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    {
      for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
        {
          Case *c;
          g_autofree char *path = NULL;

          if (entries[i].pool_only && types[t] != REDIS_TYPE_POOL)
            continue;
          c = g_new0 (Case, 1);
          c->type = types[t];
          c->entry = entries[i].entry;
          g_ptr_array_add (cases, c);
          path = g_strdup_printf ("/lazy-init/%s/first-use/%s", type_names[t], entries[i].name);
          g_test_add_data_func (path, c, test_first_use);
        }
      {
        g_autofree char *during = g_strdup_printf ("/lazy-init/%s/init-during-start", type_names[t]);
        g_autofree char *threads = g_strdup_printf ("/lazy-init/%s/threads", type_names[t]);
        g_autofree char *fails = g_strdup_printf ("/lazy-init/%s/connect-fails", type_names[t]);
        g_autofree char *unused = g_strdup_printf ("/lazy-init/%s/unused", type_names[t]);

        g_test_add_data_func (during, &types[t], test_init_during_start);
        g_test_add_data_func (threads, &types[t], test_threads);
        g_test_add_data_func (fails, &types[t], test_connect_fails);
        g_test_add_data_func (unused, &types[t], test_unused);
      }
    }
  g_test_add_func ("/lazy-init/pool/background", test_pool_background);

  ret = g_test_run ();
  redis_test_server_free (server);
  return ret;
}
