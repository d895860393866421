/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* RedisConnection against a real redis-server (and the scripted fake server
 * for replies a real server never sends). */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "fake-server.h"
#include "fault-proxy.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"
#include "test-listener.h"

#define SECRET "s3cr3tPW"

/* Shared by the tests that do not kill or reconfigure it. */
static RedisTestServer *server;

/* Most cases state what they need in the table at the end (Needs); this is
 * for one that checks what it can without a server first. */
#define REQUIRE_SERVER()                                      \
  G_STMT_START {                                              \
    if (server == NULL)                                       \
      {                                                       \
        g_test_skip ("redis-server not available");           \
        return;                                               \
      }                                                       \
  } G_STMT_END

#define MS(us) ((us) / 1000)

/* ---- helpers ------------------------------------------------------------ */

/* @command_timeout is used as is (not scaled): the timeout tests need the
 * real value; slow runs (valgrind) only scale the upper bounds. */
static RedisConnection *
open_port_raw (guint16 port,
               guint   command_timeout)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) port,
                         "command-timeout", command_timeout,
                         "connect-timeout", test_scale_ms (2000),
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  return conn;
}

static RedisConnection *
open_port (guint16 port,
           guint   command_timeout)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) port,
                         "command-timeout", test_scale_ms (command_timeout),
                         "connect-timeout", test_scale_ms (2000),
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  return conn;
}

static RedisConnection *
open_default (void)
{
  return open_port (redis_test_server_get_port (server), 1000);
}

static GStrv
strv_from_va (const char *first,
              va_list     args)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  for (const char *s = first; s != NULL; s = va_arg (args, const char *))
    g_strv_builder_add (b, s);
  return g_strv_builder_end (b);
}

/* Runs a command synchronously; returns the reply or NULL with @error. */
static RedisReply *
run_error (RedisConnection  *conn,
           GError          **error,
           const char       *first,
           ...) G_GNUC_NULL_TERMINATED;

static RedisReply *
run_error (RedisConnection  *conn,
           GError          **error,
           const char       *first,
           ...)
{
  va_list args;
  g_auto(GStrv) argv = NULL;

  va_start (args, first);
  argv = strv_from_va (first, args);
  va_end (args);
  return redis_client_command_sync (REDIS_CLIENT (conn), (const char * const *) argv, NULL, error);
}

#define run(conn, ...) run_ok (conn, __VA_ARGS__, NULL)

static RedisReply *
run_ok (RedisConnection *conn,
        const char      *first,
        ...) G_GNUC_NULL_TERMINATED;

static RedisReply *
run_ok (RedisConnection *conn,
        const char      *first,
        ...)
{
  va_list args;
  g_auto(GStrv) argv = NULL;
  g_autoptr(GError) error = NULL;
  RedisReply *reply;

  va_start (args, first);
  argv = strv_from_va (first, args);
  va_end (args);
  reply = redis_client_command_sync (REDIS_CLIENT (conn), (const char * const *) argv, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (reply);
  return reply;
}

static void
assert_string_reply (RedisReply *reply,
                     const char *expected)
{
  g_assert_nonnull (reply);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STRING);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, expected);
}

static void
assert_status_reply (RedisReply *reply,
                     const char *expected)
{
  g_assert_nonnull (reply);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STATUS);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, expected);
}

static void
assert_echo (RedisConnection *conn,
             const char      *text)
{
  g_autoptr(RedisReply) r = run (conn, "ECHO", text);

  assert_string_reply (r, text);
}

static void
assert_no_live_replies (void)
{
  test_drain_main_context ();
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 1000);
}

typedef struct
{
  guint   n;
  GError *error;
} ClosedRecord;

static void
closed_cb (RedisConnection *conn,
           const GError    *error,
           gpointer         user_data)
{
  ClosedRecord *rec = user_data;

  rec->n++;
  g_clear_error (&rec->error);
  rec->error = error != NULL ? g_error_copy (error) : NULL;
}

/* Waits for the one "closed" emission recorded in @rec, with @code; @conn
 * is then CLOSED and a call on it fails with CLOSED. */
static void
assert_closed_once (RedisConnection *conn,
                    ClosedRecord    *rec,
                    int              code)
{
  g_autoptr(GError) error = NULL;

  WAIT_UNTIL (rec->n > 0, 2000);
  test_drain_main_context ();
  g_assert_cmpuint (rec->n, ==, 1);
  g_assert_error (rec->error, REDIS_ERROR, code);
  g_test_message ("closed: %s", rec->error->message);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_CLOSED);
  g_assert_null (run_error (conn, &error, "PING", NULL));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
}

/* ---- fixture -------------------------------------------------------------- */

/* What a case needs before its body runs. */
typedef enum
{
  NEEDS_NOTHING,      /* makes its own connections, or none */
  NEEDS_SERVER,       /* the shared redis-server */
  NEEDS_CONNECTION,   /* a ready connection to the shared redis-server */
  NEEDS_FAKE,         /* a ready connection to a fake server answering ":1" */
} Needs;

typedef struct
{
  RedisConnection *conn;      /* NEEDS_CONNECTION, NEEDS_FAKE; a body may take it */
  FakeServer      *fake;      /* NEEDS_FAKE */
} Fixture;

typedef struct
{
  const char *path;
  void      (*body) (Fixture *f, gconstpointer data);
  Needs       needs;
  guint       command_timeout;   /* of f->conn, in ms; 0: 1000 */
  gboolean    unscaled;          /* command_timeout is used as is */
} Case;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  const Case *c = data;
  guint timeout = c->command_timeout != 0 ? c->command_timeout : 1000;
  guint16 port;

  if (c->needs == NEEDS_FAKE)
    {
      f->fake = fake_server_new ();
      fake_server_set_answer_all (f->fake, ":1\r\n", -1);
      port = fake_server_get_port (f->fake);
    }
  else if (c->needs == NEEDS_CONNECTION)
    port = redis_test_server_get_port (server);
  else
    return;
  f->conn = c->unscaled ? open_port_raw (port, timeout) : open_port (port, timeout);
}

/* Closes the connection the body left, then checks that no reply leaked. */
static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->conn != NULL)
    close_and_finalize (g_steal_pointer (&f->conn));
  assert_no_live_replies ();
  g_clear_pointer (&f->fake, fake_server_free);
}

/* ---- one way to make any call ------------------------------------------- */

/* The RedisClient entry points, so that a table can name one. */
typedef enum
{
  CALL_COMMAND,
  CALL_COMMAND_BYTES,
  CALL_PIPELINE,
  CALL_TRANSACTION,
  CALL_NOREPLY_COMMAND,
  CALL_NOREPLY_PIPELINE,
  CALL_CLOSE,
} CallKind;

typedef struct
{
  CallKind             kind;
  const char * const  *argv;     /* COMMAND, NOREPLY_COMMAND */
  GBytes             **args;     /* COMMAND_BYTES */
  gsize                n_args;
  RedisBatch          *batch;    /* PIPELINE, TRANSACTION, NOREPLY_PIPELINE */
} Call;

static void
call_start (RedisClient   *client,
            const Call    *call,
            GCancellable  *cancellable,
            GAsyncResult **result)
{
  switch (call->kind)
    {
    case CALL_COMMAND:
      redis_client_command_async (client, call->argv, cancellable, store_result_cb, result);
      break;
    case CALL_COMMAND_BYTES:
      redis_client_command_bytes_async (client, call->args, call->n_args, cancellable,
                                        store_result_cb, result);
      break;
    case CALL_PIPELINE:
      redis_client_pipeline_async (client, call->batch, cancellable, store_result_cb, result);
      break;
    case CALL_TRANSACTION:
      redis_client_transaction_async (client, call->batch, cancellable, store_result_cb, result);
      break;
    case CALL_NOREPLY_COMMAND:
      redis_client_noreply_command_async (client, call->argv, cancellable, store_result_cb, result);
      break;
    case CALL_NOREPLY_PIPELINE:
      redis_client_noreply_pipeline_async (client, call->batch, cancellable, store_result_cb, result);
      break;
    case CALL_CLOSE:
      redis_client_close_async (client, cancellable, store_result_cb, result);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* Finishes @call. The reply (COMMAND, COMMAND_BYTES) or replies (PIPELINE,
 * TRANSACTION) go to @out, or are dropped when @out is NULL. Returns whether
 * the call succeeded; checks that the value agrees with @error. */
static gboolean
call_finish (RedisClient   *client,
             const Call    *call,
             GAsyncResult  *result,
             gpointer      *out,
             GError       **error)
{
  gpointer value = NULL;
  GDestroyNotify free_value = NULL;
  gboolean ok;

  switch (call->kind)
    {
    case CALL_COMMAND:
      value = redis_client_command_finish (client, result, error);
      free_value = (GDestroyNotify) redis_reply_unref;
      ok = value != NULL;
      break;
    case CALL_COMMAND_BYTES:
      value = redis_client_command_bytes_finish (client, result, error);
      free_value = (GDestroyNotify) redis_reply_unref;
      ok = value != NULL;
      break;
    case CALL_PIPELINE:
      value = redis_client_pipeline_finish (client, result, error);
      free_value = (GDestroyNotify) g_ptr_array_unref;
      ok = value != NULL;
      break;
    case CALL_TRANSACTION:
      value = redis_client_transaction_finish (client, result, error);
      free_value = (GDestroyNotify) g_ptr_array_unref;
      ok = value != NULL;
      break;
    case CALL_NOREPLY_COMMAND:
      ok = redis_client_noreply_command_finish (client, result, error);
      break;
    case CALL_NOREPLY_PIPELINE:
      ok = redis_client_noreply_pipeline_finish (client, result, error);
      break;
    case CALL_CLOSE:
      ok = redis_client_close_finish (client, result, error);
      break;
    default:
      g_assert_not_reached ();
    }
  g_assert_true (ok == (*error == NULL));
  if (out != NULL)
    *out = value;
  else if (value != NULL)
    free_value (value);
  return ok;
}

/* Runs @call asynchronously: it never completes before it returns; waits
 * for it (2 s, scaled) and finishes it as call_finish() does. */
static gboolean
call_await (RedisClient   *client,
            const Call    *call,
            GCancellable  *cancellable,
            gpointer      *out,
            GError       **error)
{
  GAsyncResult *result = NULL;
  gboolean ok;

  call_start (client, call, cancellable, &result);
  g_assert_null (result);
  test_wait_for_result (&result, 2000);
  ok = call_finish (client, call, result, out, error);
  g_object_unref (result);
  return ok;
}

/* call_await() for a command: its reply, or NULL with @error. */
static RedisReply *
await_command (RedisConnection     *conn,
               const char * const  *argv,
               GCancellable        *cancellable,
               GError             **error)
{
  Call call = { CALL_COMMAND, .argv = argv };
  RedisReply *reply = NULL;

  call_await (REDIS_CLIENT (conn), &call, cancellable, (gpointer *) &reply, error);
  return reply;
}

/* call_await() for a pipeline or transaction: the replies, or NULL with @error. */
static GPtrArray *
await_batch (RedisConnection  *conn,
             CallKind          kind,
             RedisBatch       *batch,
             GError          **error)
{
  Call call = { kind, .batch = batch };
  GPtrArray *replies = NULL;

  call_await (REDIS_CLIENT (conn), &call, NULL, (gpointer *) &replies, error);
  return replies;
}


/* ---- stall detection ---------------------------------------------------- */

/* A blackholed connection (the peer keeps the socket, answers nothing): the
 * call times out at its deadline, and once nothing has arrived for
 * stall-timeout after that, the connection closes as lost. A slow command
 * that does answer within stall-timeout keeps the connection. */
static void
test_stall_detected (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FaultProxy) proxy = NULL;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisReply) reply = NULL;
  ClosedRecord rec = { 0, NULL };
  gint64 start, timed_out, closed_at;

  proxy = fault_proxy_new (redis_test_server_get_port (server), &error);
  g_assert_no_error (error);

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) fault_proxy_get_port (proxy),
                         "command-timeout", 200,
                         "stall-timeout", 300,
                         NULL);
  g_assert_no_error (error);
  g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);

  /* Slow but alive: DEBUG SLEEP 0.4 times out at 200 ms, its reply comes at
   * 400 ms, before 200 + 300 ms of silence: the connection stays. */
  start = g_get_monotonic_time ();
  reply = redis_client_command_sync (REDIS_CLIENT (conn),
                                     (const char *[]) { "DEBUG", "SLEEP", "0.4", NULL },
                                     NULL, &error);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
  g_clear_error (&error);
  g_usleep (400 * 1000);
  reply = redis_client_command_sync (REDIS_CLIENT (conn),
                                     (const char *[]) { "ECHO", "alive", NULL }, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "alive");
  g_clear_pointer (&reply, redis_reply_unref);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);

  /* Blackholed: the call times out, then the connection is declared dead. */
  fault_proxy_do (proxy, "blackhole");
  start = g_get_monotonic_time ();
  reply = redis_client_command_sync (REDIS_CLIENT (conn),
                                     (const char *[]) { "ECHO", "lost", NULL }, NULL, &error);
  timed_out = g_get_monotonic_time ();
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
  g_clear_error (&error);
  g_assert_cmpint (MS (timed_out - start), >=, 190);
  g_assert_cmpint (MS (timed_out - start), <, test_scale_ms (1000));

  WAIT_UNTIL (rec.n > 0, 3000);
  closed_at = g_get_monotonic_time ();
  g_assert_cmpuint (rec.n, ==, 1);
  g_assert_error (rec.error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_assert_nonnull (strstr (rec.error->message, "stalled"));
  /* Deadline (200 ms) + stall-timeout (300 ms), give or take a tick. */
  g_assert_cmpint (MS (closed_at - start), >=, 450);
  g_assert_cmpint (MS (closed_at - start), <, test_scale_ms (1500));
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_CLOSED);
  g_clear_error (&rec.error);
}


/* An idle connection to a vanished peer is found by the health check (a
 * PING after health-check-interval of idleness) plus stall detection,
 * without any user command. */
static void
test_health_check (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FaultProxy) proxy = NULL;
  g_autoptr(RedisConnection) conn = NULL;
  g_autofree char *stats = NULL;
  ClosedRecord rec = { 0, NULL };
  guint64 up_before;
  gint64 start;

  proxy = fault_proxy_new (redis_test_server_get_port (server), &error);
  g_assert_no_error (error);

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) fault_proxy_get_port (proxy),
                         "command-timeout", 200,
                         "stall-timeout", 300,
                         "health-check-interval", 200,
                         NULL);
  g_assert_no_error (error);
  g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);

  stats = fault_proxy_command (proxy, "stats", &error);
  g_assert_no_error (error);
  up_before = g_ascii_strtoull (strstr (stats, "bytes_up=") + 9, NULL, 10);
  g_clear_pointer (&stats, g_free);

  /* A live server answers the PINGs: the connection stays up. */
  {
    gboolean waited = FALSE;

    g_timeout_add (700, test_set_flag_cb, &waited);
    WAIT_UNTIL (waited, 2000);
  }
  g_assert_cmpuint (rec.n, ==, 0);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  stats = fault_proxy_command (proxy, "stats", &error);
  g_assert_no_error (error);
  g_test_message ("proxy after 700 ms idle: %s", stats);
  /* At least two PINGs ("*1\r\n$4\r\nPING\r\n", 14 bytes each) went out. */
  g_assert_cmpuint (g_ascii_strtoull (strstr (stats, "bytes_up=") + 9, NULL, 10) - up_before, >=, 28);

  /* The peer vanishes; nobody sends anything; the connection notices. */
  fault_proxy_do (proxy, "blackhole");
  start = g_get_monotonic_time ();
  WAIT_UNTIL (rec.n > 0, 3000);
  g_assert_error (rec.error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_assert_nonnull (strstr (rec.error->message, "stalled"));
  /* At most interval (200) + timeout (200) + stall (300), give or take. */
  g_assert_cmpint (MS (g_get_monotonic_time () - start), <, test_scale_ms (1500));
  g_clear_error (&rec.error);
}

/* ---- command ------------------------------------------------------------ */

static void
test_command_sync (Fixture       *f,
                   gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(RedisReply) r = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *prefix = NULL;

  g_assert_cmpint (redis_connection_get_client_id (conn), >, 0);
  g_assert_cmpuint (redis_connection_get_n_pending (conn), ==, 0);

  r = run (conn, "SET", "cs:k", "hello");
  assert_status_reply (r, "OK");
  g_clear_pointer (&r, redis_reply_unref);

  r = run (conn, "GET", "cs:k");
  assert_string_reply (r, "hello");
  g_clear_pointer (&r, redis_reply_unref);

  r = run (conn, "GET", "cs:missing");
  g_assert_true (redis_reply_is_nil (r));
  g_clear_pointer (&r, redis_reply_unref);

  r = run (conn, "INCRBY", "cs:n", "-5");
  g_assert_cmpint (redis_reply_get_integer (r), ==, -5);
  g_clear_pointer (&r, redis_reply_unref);

  r = run (conn, "LRANGE", "cs:none", "0", "-1");
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_ARRAY);
  g_assert_cmpuint (redis_reply_get_n_elements (r), ==, 0);
  g_clear_pointer (&r, redis_reply_unref);

  /* A server error is a GError with the server's text and prefix. */
  r = run_error (conn, &error, "LPUSH", "cs:k", "x", NULL);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_assert_true (g_str_has_prefix (error->message, "WRONGTYPE "));
  prefix = redis_error_get_server_prefix (error);
  g_assert_cmpstr (prefix, ==, "WRONGTYPE");
  g_clear_error (&error);

  r = run_error (conn, &error, "NOSUCHCOMMAND", NULL);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_clear_error (&error);

  /* The connection is fine afterwards. */
  assert_echo (conn, "still here");
}

static void
test_command_async (Fixture       *f,
                    gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(GError) error = NULL;
  RedisReply *r;
  const char *set_argv[] = { "SET", "ca:k", "v", NULL };
  const char *get_argv[] = { "GET", "ca:k", NULL };
  const char *bad_argv[] = { "LPUSH", "ca:k", "x", NULL };

  /* await_command() checks that none completes synchronously. */
  r = await_command (conn, set_argv, NULL, &error);
  g_assert_no_error (error);
  assert_status_reply (r, "OK");
  redis_reply_unref (r);

  r = await_command (conn, get_argv, NULL, &error);
  g_assert_no_error (error);
  assert_string_reply (r, "v");
  redis_reply_unref (r);

  r = await_command (conn, bad_argv, NULL, &error);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);
  g_clear_error (&error);

  /* Many in flight at once come back in order. */
  {
    GAsyncResult *results[50] = { NULL, };

    for (guint i = 0; i < G_N_ELEMENTS (results); i++)
      {
        g_autofree char *text = g_strdup_printf ("m%u", i);
        const char *argv[] = { "ECHO", text, NULL };

        redis_client_command_async (REDIS_CLIENT (conn), argv, NULL, store_result_cb, &results[i]);
      }
    WAIT_UNTIL (results[G_N_ELEMENTS (results) - 1] != NULL, 2000);
    for (guint i = 0; i < G_N_ELEMENTS (results); i++)
      {
        g_autofree char *text = g_strdup_printf ("m%u", i);

        g_assert_nonnull (results[i]);
        r = redis_client_command_finish (REDIS_CLIENT (conn), results[i], &error);
        g_assert_no_error (error);
        assert_string_reply (r, text);
        redis_reply_unref (r);
        g_clear_object (&results[i]);
      }
  }
}

/* Every _async entry point, on success and on early failure, completes
 * from the main loop and never before it returns. The rows run in order on
 * one connection: the last ones find it closed. */
typedef enum
{
  ARGS_PING,        /* PING, or a batch of one PING */
  ARGS_EMPTY,       /* no command name, or an empty batch */
  ARGS_SUBSCRIBE,   /* a command the client does not support */
} Args;

static const struct
{
  const char *what;
  CallKind    kind;
  Args        args;
  gboolean    cancelled;        /* with a cancellable cancelled before */
  GQuark    (*domain) (void);   /* NULL: the call succeeds */
  int         code;
} async_cases[] = {
  { "command", CALL_COMMAND, ARGS_PING },
  { "command_bytes", CALL_COMMAND_BYTES, ARGS_PING },
  { "pipeline", CALL_PIPELINE, ARGS_PING },
  { "transaction", CALL_TRANSACTION, ARGS_PING },
  { "noreply_command", CALL_NOREPLY_COMMAND, ARGS_PING },
  { "noreply_pipeline", CALL_NOREPLY_PIPELINE, ARGS_PING },

  /* early failures: invalid arguments, unsupported, cancelled */
  { "command, empty argv", CALL_COMMAND, ARGS_EMPTY, FALSE, redis_error_quark, REDIS_ERROR_INVALID_ARGUMENT },
  { "command, SUBSCRIBE", CALL_COMMAND, ARGS_SUBSCRIBE, FALSE, redis_error_quark, REDIS_ERROR_INVALID_ARGUMENT },
  { "command, cancelled", CALL_COMMAND, ARGS_PING, TRUE, g_io_error_quark, G_IO_ERROR_CANCELLED },
  { "pipeline, empty batch", CALL_PIPELINE, ARGS_EMPTY, FALSE, redis_error_quark, REDIS_ERROR_INVALID_ARGUMENT },
  { "transaction, cancelled", CALL_TRANSACTION, ARGS_PING, TRUE, g_io_error_quark, G_IO_ERROR_CANCELLED },
  { "noreply_command, empty argv", CALL_NOREPLY_COMMAND, ARGS_EMPTY, FALSE, redis_error_quark, REDIS_ERROR_INVALID_ARGUMENT },

  /* close, then calls on the closed connection */
  { "close", CALL_CLOSE },
  { "command, closed", CALL_COMMAND, ARGS_PING, FALSE, redis_error_quark, REDIS_ERROR_CLOSED },
  { "pipeline, closed", CALL_PIPELINE, ARGS_PING, FALSE, redis_error_quark, REDIS_ERROR_CLOSED },
  { "close again", CALL_CLOSE },
};

static void
test_async_never_synchronous (Fixture       *f,
                              gconstpointer  data)
{
  static const char * const argvs[][3] = {
    [ARGS_PING] = { "PING", NULL },
    [ARGS_EMPTY] = { NULL },
    [ARGS_SUBSCRIBE] = { "SUBSCRIBE", "x", NULL },
  };
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();
  g_autoptr(RedisBatch) ping = redis_batch_new ();
  g_autoptr(RedisBatch) empty = redis_batch_new ();
  g_autoptr(GBytes) b0 = g_bytes_new_static ("PING", 4);
  GBytes *bargs[] = { b0 };
  RedisBatch *batches[] = { [ARGS_PING] = ping, [ARGS_EMPTY] = empty, [ARGS_SUBSCRIBE] = NULL };

  g_cancellable_cancel (cancelled);
  redis_batch_add (ping, argvs[ARGS_PING]);

  for (gsize i = 0; i < G_N_ELEMENTS (async_cases); i++)
    {
      const Call call = { async_cases[i].kind, argvs[async_cases[i].args], bargs,
                          G_N_ELEMENTS (bargs), batches[async_cases[i].args] };
      g_autoptr(GError) error = NULL;
      gboolean ok;

      g_test_message ("%s", async_cases[i].what);
      ok = call_await (REDIS_CLIENT (f->conn), &call, async_cases[i].cancelled ? cancelled : NULL,
                       NULL, &error);
      if (async_cases[i].domain == NULL)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, async_cases[i].domain (), async_cases[i].code);
        }
    }
}

/* ---- command_bytes ------------------------------------------------------ */

static void
test_command_bytes (Fixture       *f,
                    gconstpointer  data)
{
  static const guint8 value[] = { 'a', 0x00, 0xff, '\r', '\n', 0x80, 'z', 0x00 };
  static const guint8 key[] = { 'b', 'k', 0x00, 0xfe };
  RedisConnection *conn = f->conn;
  g_autoptr(GBytes) set = g_bytes_new_static ("SET", 3);
  g_autoptr(GBytes) get = g_bytes_new_static ("GET", 3);
  g_autoptr(GBytes) k = g_bytes_new_static (key, sizeof key);
  g_autoptr(GBytes) v = g_bytes_new_static (value, sizeof value);
  GBytes *set_args[] = { set, k, v };
  GBytes *get_args[] = { get, k };
  g_autoptr(GError) error = NULL;
  RedisReply *r;
  GBytes *got;

  r = redis_client_command_bytes_sync (REDIS_CLIENT (conn), set_args, 3, NULL, &error);
  g_assert_no_error (error);
  assert_status_reply (r, "OK");
  redis_reply_unref (r);

  r = redis_client_command_bytes_sync (REDIS_CLIENT (conn), get_args, 2, NULL, &error);
  g_assert_no_error (error);
  got = redis_reply_get_bytes (r);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), value, sizeof value);
  g_bytes_unref (got);
  redis_reply_unref (r);

  call_await (REDIS_CLIENT (conn), &(Call) { CALL_COMMAND_BYTES, .args = get_args, .n_args = 2 },
              NULL, (gpointer *) &r, &error);
  g_assert_no_error (error);
  {
    gsize len;
    const char *s = redis_reply_get_string (r, &len);
    g_assert_cmpmem (s, len, value, sizeof value);
  }
  redis_reply_unref (r);

  /* The text API sees the same key through STRLEN. */
  {
    g_autoptr(GBytes) strlen_ = g_bytes_new_static ("STRLEN", 6);
    GBytes *args[] = { strlen_, k };

    r = redis_client_command_bytes_sync (REDIS_CLIENT (conn), args, 2, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (redis_reply_get_integer (r), ==, sizeof value);
    redis_reply_unref (r);
  }
}

/* ---- pipeline ----------------------------------------------------------- */

static void
check_pipeline_replies (GPtrArray *replies)
{
  g_assert_nonnull (replies);
  g_assert_cmpuint (replies->len, ==, 4);
  assert_status_reply (replies->pdata[0], "OK");
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[1]), ==, 2);
  g_assert_cmpint (redis_reply_get_kind (replies->pdata[2]), ==, REDIS_REPLY_KIND_ERROR);
  {
    g_autofree char *prefix = redis_reply_get_error_prefix (replies->pdata[2]);
    g_assert_cmpstr (prefix, ==, "WRONGTYPE");
  }
  assert_string_reply (replies->pdata[3], "2");
}

static void
test_pipeline (Fixture       *f,
               gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;
  GPtrArray *replies;

  redis_batch_add (batch, (const char *[]) { "SET", "pl:a", "1", NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", "pl:a", NULL });
  redis_batch_add (batch, (const char *[]) { "LPUSH", "pl:a", "x", NULL });
  redis_batch_add (batch, (const char *[]) { "GET", "pl:a", NULL });
  g_assert_cmpuint (redis_batch_get_n_commands (batch), ==, 4);

  replies = redis_client_pipeline_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_no_error (error);
  check_pipeline_replies (replies);
  g_ptr_array_unref (replies);

  /* A batch can be sent again. */
  replies = await_batch (conn, CALL_PIPELINE, batch, &error);
  g_assert_no_error (error);
  check_pipeline_replies (replies);
  g_ptr_array_unref (replies);

  /* A batch with a bad command is refused whole. */
  {
    g_autoptr(RedisBatch) bad = redis_batch_new ();

    redis_batch_add (bad, (const char *[]) { "PING", NULL });
    redis_batch_add (bad, (const char *[]) { NULL });
    replies = redis_client_pipeline_sync (REDIS_CLIENT (conn), bad, NULL, &error);
    g_assert_null (replies);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }

  /* A big pipeline. */
  {
    g_autoptr(RedisBatch) big = redis_batch_new ();

    for (guint i = 0; i < 1000; i++)
      {
        g_autofree char *text = g_strdup_printf ("%u", i);
        redis_batch_add (big, (const char *[]) { "ECHO", text, NULL });
      }
    replies = redis_client_pipeline_sync (REDIS_CLIENT (conn), big, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (replies->len, ==, 1000);
    for (guint i = 0; i < 1000; i++)
      {
        g_autofree char *text = g_strdup_printf ("%u", i);
        assert_string_reply (replies->pdata[i], text);
      }
    g_ptr_array_unref (replies);
  }

  assert_echo (conn, "after");
}

/* ---- transaction -------------------------------------------------------- */

static void
test_transaction (Fixture       *f,
                  gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;
  GPtrArray *replies;
  g_autoptr(RedisReply) r = NULL;

  r = run (conn, "DEL", "tx:a", "tx:s");
  g_clear_pointer (&r, redis_reply_unref);

  redis_batch_add (batch, (const char *[]) { "INCR", "tx:a", NULL });
  redis_batch_add (batch, (const char *[]) { "SET", "tx:s", "str", NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", "tx:s", NULL });   /* fails at EXEC time */
  redis_batch_add (batch, (const char *[]) { "GET", "tx:a", NULL });

  replies = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 4);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[0]), ==, 1);
  assert_status_reply (replies->pdata[1], "OK");
  g_assert_cmpint (redis_reply_get_kind (replies->pdata[2]), ==, REDIS_REPLY_KIND_ERROR);
  assert_string_reply (replies->pdata[3], "1");
  g_ptr_array_unref (replies);

  replies = await_batch (conn, CALL_TRANSACTION, batch, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 4);
  g_assert_cmpint (redis_reply_get_integer (replies->pdata[0]), ==, 2);
  g_ptr_array_unref (replies);

  assert_echo (conn, "after tx");
}

static void
test_transaction_execabort (Fixture       *f,
                            gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;
  GPtrArray *replies;
  g_autoptr(RedisReply) r = NULL;

  r = run (conn, "SET", "txa:k", "before");
  g_clear_pointer (&r, redis_reply_unref);

  redis_batch_add (batch, (const char *[]) { "SET", "txa:k", "after", NULL });
  redis_batch_add (batch, (const char *[]) { "NOSUCHCOMMAND", "x", NULL });
  redis_batch_add (batch, (const char *[]) { "PING", NULL });

  replies = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_null (replies);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TRANSACTION_ABORTED);
  g_test_message ("EXECABORT: %s", error->message);
  g_clear_error (&error);

  replies = await_batch (conn, CALL_TRANSACTION, batch, &error);
  g_assert_null (replies);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TRANSACTION_ABORTED);
  g_clear_error (&error);

  /* Nothing ran, and the connection is not left inside MULTI. */
  r = run (conn, "GET", "txa:k");
  assert_string_reply (r, "before");
  g_clear_pointer (&r, redis_reply_unref);
}

static void
test_transaction_watch (Fixture       *f,
                        gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  RedisConnection *other;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;
  GPtrArray *replies;
  g_autoptr(RedisReply) r = NULL;

  other = open_default ();

  r = run (conn, "SET", "txw:k", "1");
  g_clear_pointer (&r, redis_reply_unref);
  r = run (conn, "WATCH", "txw:k");
  assert_status_reply (r, "OK");
  g_clear_pointer (&r, redis_reply_unref);

  r = run (other, "SET", "txw:k", "changed");
  g_clear_pointer (&r, redis_reply_unref);

  redis_batch_add (batch, (const char *[]) { "SET", "txw:k", "from-tx", NULL });
  replies = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_null (replies);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_WATCH_FAILED);
  g_clear_error (&error);

  r = run (conn, "GET", "txw:k");
  assert_string_reply (r, "changed");
  g_clear_pointer (&r, redis_reply_unref);

  /* EXEC cleared the WATCH: the same transaction now runs. */
  replies = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 1);
  g_ptr_array_unref (replies);

  close_and_finalize (other);
}

/* ---- no-reply ----------------------------------------------------------- */

/* Calls whose payloads add up to more than the write buffer may hold (64 MiB)
 * wait their turn in order instead of growing it without bound (its length
 * is 32-bit): three 40 MiB SETs, then a GET, all submitted at once. */
static void
test_large_writes_in_order (Fixture       *f,
                            gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(GBytes) big = NULL;
  GAsyncResult *results[4] = { NULL, };
  gsize size = 40 * 1024 * 1024;
  char *payload;

  payload = g_malloc (size);
  memset (payload, 'v', size);
  big = g_bytes_new_take (payload, size);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *key = g_strdup_printf ("big:%u", i);
      g_autoptr(GBytes) cmd = g_bytes_new_static ("SET", 3);
      g_autoptr(GBytes) k = g_bytes_new (key, strlen (key));
      GBytes *args[] = { cmd, k, big };

      redis_client_command_bytes_async (REDIS_CLIENT (conn), args, 3, NULL,
                                        store_result_cb, &results[i]);
    }
  redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "STRLEN", "big:2", NULL },
                              NULL, store_result_cb, &results[3]);

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) r = NULL;

      test_wait_for_result (&results[i], 60000);
      r = redis_client_command_finish (REDIS_CLIENT (conn), results[i], &error);
      g_assert_no_error (error);
      if (i < 3)
        g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, "OK");
      else
        g_assert_cmpint (redis_reply_get_integer (r), ==, (gint64) size);
      g_clear_object (&results[i]);
    }
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *key = g_strdup_printf ("big:%u", i);
      g_autoptr(RedisReply) r = run (conn, "STRLEN", key);

      g_assert_cmpint (redis_reply_get_integer (r), ==, (gint64) size);
      redis_reply_unref (run (conn, "DEL", key));
    }
}

static void
test_noreply (Fixture       *f,
              gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) r = NULL;

  g_assert_true (redis_client_noreply_command_sync (REDIS_CLIENT (conn),
                                                    (const char *[]) { "SET", "nr:k", "quiet", NULL },
                                                    NULL, &error));
  g_assert_no_error (error);
  r = run (conn, "GET", "nr:k");
  assert_string_reply (r, "quiet");
  g_clear_pointer (&r, redis_reply_unref);

  /* An error inside is swallowed too, and does not shift replies. */
  g_assert_true (redis_client_noreply_command_sync (REDIS_CLIENT (conn),
                                                    (const char *[]) { "LPUSH", "nr:k", "x", NULL },
                                                    NULL, &error));
  g_assert_no_error (error);
  assert_echo (conn, "no shift");

  r = run (conn, "DEL", "nr:n");
  g_clear_pointer (&r, redis_reply_unref);
  redis_batch_add (batch, (const char *[]) { "INCR", "nr:n", NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", "nr:n", NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", "nr:n", NULL });
  g_assert_true (redis_client_noreply_pipeline_sync (REDIS_CLIENT (conn), batch, NULL, &error));
  g_assert_no_error (error);
  r = run (conn, "GET", "nr:n");
  assert_string_reply (r, "3");
  g_clear_pointer (&r, redis_reply_unref);

  g_assert_true (call_await (REDIS_CLIENT (conn), &(Call) { CALL_NOREPLY_PIPELINE, .batch = batch },
                             NULL, NULL, &error));
  g_assert_no_error (error);

  g_assert_true (call_await (REDIS_CLIENT (conn),
                             &(Call) { CALL_NOREPLY_COMMAND,
                                       .argv = (const char *[]) { "INCR", "nr:n", NULL } },
                             NULL, NULL, &error));

  r = run (conn, "GET", "nr:n");
  assert_string_reply (r, "7");
  g_clear_pointer (&r, redis_reply_unref);
}

/* ---- close and dispose ---------------------------------------------------- */

static void
test_close_graceful (Fixture       *f,
                     gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  GAsyncResult *sleep_result = NULL;
  GAsyncResult *close_result = NULL;
  GAsyncResult *late_result = NULL;
  g_autoptr(GError) error = NULL;
  ClosedRecord rec = { 0, NULL };
  RedisReply *r;

  g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);

  redis_client_command_async (REDIS_CLIENT (conn),
                              (const char *[]) { "DEBUG", "SLEEP", "0.3", NULL },
                              NULL, store_result_cb, &sleep_result);
  redis_client_close_async (REDIS_CLIENT (conn), NULL, store_result_cb, &close_result);
  /* After close was asked for, new calls are refused. */
  redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "PING", NULL },
                              NULL, store_result_cb, &late_result);

  test_wait_for_result (&close_result, 3000);
  /* The reply in flight arrived before the close completed. */
  test_drain_main_context ();
  g_assert_nonnull (sleep_result);
  r = redis_client_command_finish (REDIS_CLIENT (conn), sleep_result, &error);
  g_assert_no_error (error);
  assert_status_reply (r, "OK");
  redis_reply_unref (r);

  g_assert_true (redis_client_close_finish (REDIS_CLIENT (conn), close_result, &error));
  g_assert_no_error (error);

  test_wait_for_result (&late_result, 2000);
  g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), late_result, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_clear_error (&error);

  assert_closed_once (conn, &rec, REDIS_ERROR_CLOSED);

  /* Closing again is fine. */
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (conn), NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  g_assert_cmpuint (rec.n, ==, 1);

  g_clear_object (&sleep_result);
  g_clear_object (&close_result);
  g_clear_object (&late_result);
  g_clear_error (&rec.error);
}

static void
test_dispose_pending (Fixture       *f,
                      gconstpointer  data)
{
  RedisConnection *conn = g_steal_pointer (&f->conn);
  GAsyncResult *r1 = NULL;
  GAsyncResult *r2 = NULL;
  g_autoptr(GError) error = NULL;

  redis_client_command_async (REDIS_CLIENT (conn),
                              (const char *[]) { "DEBUG", "SLEEP", "0.3", NULL },
                              NULL, store_result_cb, &r1);
  /* Let the DEBUG SLEEP reach the server: it is written, so it may run. */
  {
    gboolean waited = FALSE;
    guint id = g_timeout_add (100, test_set_flag_cb, &waited);

    WAIT_UNTIL (waited, 1000);
    (void) id;
  }
  redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "PING", NULL },
                              NULL, store_result_cb, &r2);
  g_object_run_dispose (G_OBJECT (conn));

  test_wait_for_result (&r1, 2000);
  test_wait_for_result (&r2, 2000);
  /* Written before the dispose: it may have run, so never CLOSED. */
  g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), r1, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_clear_error (&error);
  /* Submitted just before: not sent (CLOSED) or written (CONNECTION_LOST). */
  g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), r2, &error));
  g_assert_true (g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CLOSED) ||
                 g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST));
  g_clear_error (&error);
  g_clear_object (&r1);
  g_clear_object (&r2);

  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_CLOSED);
  /* Calls after dispose: see /connection/regressions/call-after-dispose. */
  unref_and_wait_finalized (conn);

  /* The server is not left sleeping for the next test. */
  {
    RedisConnection *c = open_port (redis_test_server_get_port (server), 2000);
    assert_echo (c, "awake");
    close_and_finalize (c);
  }
}

/* Calls on a disposed connection (bindings call run_dispose) must fail
 * with CLOSED, not crash. Run in a subprocess so that a crash fails only
 * this test. */
static void
test_call_after_dispose (Fixture       *f,
                         gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      RedisConnection *conn = open_default ();
      g_autoptr(GError) error = NULL;
      GAsyncResult *result = NULL;

      g_object_run_dispose (G_OBJECT (conn));
      g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_CLOSED);
      g_assert_null (run_error (conn, &error, "PING", NULL));
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
      g_clear_error (&error);

      redis_client_close_async (REDIS_CLIENT (conn), NULL, store_result_cb, &result);
      test_wait_for_result (&result, 2000);
      g_assert_true (redis_client_close_finish (REDIS_CLIENT (conn), result, &error));
      g_assert_no_error (error);
      g_clear_object (&result);

      unref_and_wait_finalized (conn);
      return;
    }

  g_test_trap_subprocess (NULL, test_scale_ms (10000) * 1000, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* Dropping the last reference with calls in flight completes them. */
static void
test_unref_pending (Fixture       *f,
                    gconstpointer  data)
{
  RedisConnection *conn = g_steal_pointer (&f->conn);
  GAsyncResult *r1 = NULL;
  g_autoptr(GError) error = NULL;
  GWeakRef weak;

  g_weak_ref_init (&weak, conn);

  redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "PING", NULL },
                              NULL, store_result_cb, &r1);
  /* The call holds the connection until it completes. */
  g_object_unref (conn);
  test_wait_for_result (&r1, 2000);
  {
    g_autoptr(GObject) source = g_async_result_get_source_object (r1);
    RedisReply *r = redis_client_command_finish (REDIS_CLIENT (source), r1, &error);

    /* Either it was answered or failed as closed; never lost silently. */
    if (r != NULL)
      redis_reply_unref (r);
    else
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
    g_clear_error (&error);
  }
  g_clear_object (&r1);
  test_drain_main_context ();
  WAIT_UNTIL (({ GObject *o = g_weak_ref_get (&weak); gboolean gone = o == NULL; g_clear_object (&o); gone; }), 2000);
  g_weak_ref_clear (&weak);
}

/* ---- options ------------------------------------------------------------ */

static void
test_acl_user (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  RedisConnection *conn;
  g_autoptr(RedisReply) r = NULL;
  guint port;

  port = redis_test_server_get_port (server);
  out = redis_test_server_cli (server,
                               (const char *[]) { "ACL", "SETUSER", "alice", "on", ">" SECRET,
                                                  "~*", "&*", "+@all", NULL },
                               &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "OK\n");

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", port, "username", "alice", "password", SECRET,
                         "command-timeout", 1000, NULL);
  g_assert_no_error (error);
  r = run (conn, "ACL", "WHOAMI");
  assert_string_reply (r, "alice");
  g_clear_pointer (&r, redis_reply_unref);
  close_and_finalize (conn);

  /* The same through the URI. */
  {
    g_autofree char *uri = g_strdup_printf ("redis://alice:" SECRET "@127.0.0.1:%u/0", port);
    g_autofree char *back = NULL;

    conn = redis_connection_new_sync (uri, NULL, &error);
    g_assert_no_error (error);
    r = run (conn, "ACL", "WHOAMI");
    assert_string_reply (r, "alice");
    g_clear_pointer (&r, redis_reply_unref);
    g_object_get (conn, "uri", &back, NULL);
    g_test_message ("uri read back: %s", back);
    g_assert_null (strstr (back, SECRET));
    g_assert_nonnull (strstr (back, "alice@"));
    close_and_finalize (conn);
  }

  /* Wrong password. */
  {
    gint64 start = g_get_monotonic_time ();

    conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                           "port", port, "username", "alice", "password", "wrong-" SECRET,
                           "command-timeout", 1000, NULL);
    g_assert_null (conn);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
    g_test_message ("wrong password: %s", error->message);
    g_assert_null (strstr (error->message, SECRET));
    g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (1000) * 1000);
    g_clear_error (&error);
  }

  /* Unknown user. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", port, "username", "mallory", "password", SECRET, NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
  g_assert_null (strstr (error->message, SECRET));
  g_clear_error (&error);
}

static void
test_requirepass (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) srv = NULL;
  const char *args[] = { "--requirepass", SECRET, NULL };
  RedisConnection *conn;
  g_autoptr(RedisReply) r = NULL;
  guint port;

  srv = redis_test_server_new (REDIS_TEST_SERVER_TCP, args, &error);
  g_assert_no_error (error);
  port = redis_test_server_get_port (srv);

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", port, "password", SECRET, NULL);
  g_assert_no_error (error);
  r = run (conn, "PING");
  assert_status_reply (r, "PONG");
  g_clear_pointer (&r, redis_reply_unref);
  close_and_finalize (conn);

  /* No password: the handshake meets NOAUTH. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "port", port, NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
  g_test_message ("no password: %s", error->message);
  g_clear_error (&error);

  /* Wrong password. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", port, "password", "x" SECRET "x", NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
  g_assert_null (strstr (error->message, SECRET));
  g_clear_error (&error);

  /* Password via URI, with database and name. */
  {
    g_autofree char *uri = g_strdup_printf ("redis://:" SECRET "@127.0.0.1:%u/2?client_name=pw-client", port);
    g_autofree char *back = NULL;

    conn = redis_connection_new_sync (uri, NULL, &error);
    g_assert_no_error (error);
    r = run (conn, "CLIENT", "INFO");
    g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), " db=2 "));
    g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), " name=pw-client "));
    g_clear_pointer (&r, redis_reply_unref);
    g_object_get (conn, "uri", &back, NULL);
    g_assert_null (strstr (back, SECRET));
    close_and_finalize (conn);
  }
}

static void
test_database (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *db3;
  RedisConnection *db0;
  RedisConnection *db4;
  g_autoptr(RedisReply) r = NULL;
  g_autofree char *uri = NULL;
  guint port;
  guint db = 0;

  port = redis_test_server_get_port (server);

  db3 = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "port", port, "database", 3, NULL);
  g_assert_no_error (error);
  g_object_get (db3, "database", &db, NULL);
  g_assert_cmpuint (db, ==, 3);
  r = run (db3, "CLIENT", "INFO");
  g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), " db=3 "));
  g_clear_pointer (&r, redis_reply_unref);
  r = run (db3, "SET", "db:k", "in3");
  g_clear_pointer (&r, redis_reply_unref);

  db0 = open_default ();
  r = run (db0, "GET", "db:k");
  g_assert_true (redis_reply_is_nil (r));
  g_clear_pointer (&r, redis_reply_unref);

  uri = g_strdup_printf ("redis://127.0.0.1:%u/3", port);
  db4 = redis_connection_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  r = run (db4, "GET", "db:k");
  assert_string_reply (r, "in3");
  g_clear_pointer (&r, redis_reply_unref);
  close_and_finalize (db4);

  g_clear_pointer (&uri, g_free);
  uri = g_strdup_printf ("redis://127.0.0.1:%u?db=4", port);
  db4 = redis_connection_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  r = run (db4, "CLIENT", "INFO");
  g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), " db=4 "));
  g_clear_pointer (&r, redis_reply_unref);
  close_and_finalize (db4);

  /* A database the server does not have. */
  db4 = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "port", port, "database", 99, NULL);
  g_assert_null (db4);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_test_message ("SELECT 99: %s", error->message);
  g_clear_error (&error);

  close_and_finalize (db3);
  close_and_finalize (db0);
}

static void
test_client_name (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  g_autoptr(RedisReply) r = NULL;
  g_autofree char *line = NULL;

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) redis_test_server_get_port (server),
                         "client-name", "redispool-test-name", NULL);
  g_assert_no_error (error);

  r = run (conn, "CLIENT", "GETNAME");
  assert_string_reply (r, "redispool-test-name");
  g_clear_pointer (&r, redis_reply_unref);

  r = run (conn, "CLIENT", "LIST");
  line = g_strdup_printf ("id=%" G_GINT64_FORMAT " ", redis_connection_get_client_id (conn));
  g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), "name=redispool-test-name"));
  g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), line));
  g_clear_pointer (&r, redis_reply_unref);

  r = run (conn, "CLIENT", "ID");
  g_assert_cmpint (redis_reply_get_integer (r), ==, redis_connection_get_client_id (conn));
  g_clear_pointer (&r, redis_reply_unref);

  close_and_finalize (conn);
}

static void
test_unix_socket (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  g_autoptr(RedisReply) r = NULL;
  g_autofree char *uri = NULL;
  const char *path;

  path = redis_test_server_get_unix_path (server);
  g_assert_nonnull (path);

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "socket-path", path, NULL);
  g_assert_no_error (error);
  r = run (conn, "CLIENT", "INFO");
  g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), "flags=U"));
  g_clear_pointer (&r, redis_reply_unref);
  close_and_finalize (conn);

  uri = g_strdup_printf ("unix://%s?db=2", path);
  conn = redis_connection_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  r = run (conn, "CLIENT", "INFO");
  g_assert_nonnull (strstr (redis_reply_get_string (r, NULL), " db=2 "));
  g_clear_pointer (&r, redis_reply_unref);
  close_and_finalize (conn);

  /* A socket that does not exist. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "socket-path", "/nonexistent/redis.sock", NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_clear_error (&error);
}

static void
test_connect_refused (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  gint64 start = g_get_monotonic_time ();
  GAsyncResult *result = NULL;

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) closed_port (), "connect-timeout", 5000, NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_test_message ("refused: %s", error->message);
  g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (1000) * 1000);
  g_clear_error (&error);

  /* async */
  {
    g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u", closed_port ());

    redis_connection_new_async (uri, NULL, store_result_cb, &result);
    g_assert_null (result);
    test_wait_for_result (&result, 2000);
    g_assert_null (redis_connection_new_finish (result, &error));
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
    g_clear_error (&error);
    g_clear_object (&result);
  }
}

/* ---- initialization is idempotent --------------------------------------- */

static gboolean
init_finish (gpointer       object,
             GAsyncResult  *result,
             GError       **error)
{
  return g_async_initable_init_finish (G_ASYNC_INITABLE (object), result, error);
}

/* A second init, sync (Python's conn.init(None)) or async, succeeds and
 * changes nothing. */
static void
test_init_twice (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  GAsyncResult *result = NULL;
  RedisConnection *conn = f->conn;
  guint64 before;
  gint64 id;

  id = redis_connection_get_client_id (conn);
  before = test_server_connections_received (server);

  g_assert_true (g_initable_init (G_INITABLE (conn), NULL, &error));
  g_assert_no_error (error);
  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &result);
  test_wait_for_result (&result, 2000);
  g_assert_true (init_finish (conn, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  g_assert_cmpint (redis_connection_get_client_id (conn), ==, id);
  reply = run (conn, "CLIENT", "ID");
  g_assert_cmpint (redis_reply_get_integer (reply), ==, id);
  g_assert_cmpuint (test_server_connections_received (server) - before - 1, ==, 0);
}

static gpointer
init_in_thread (gpointer data)
{
  g_autoptr(GError) error = NULL;

  return GINT_TO_POINTER (g_initable_init (G_INITABLE (data), NULL, &error) && error == NULL);
}

/* Two init_async at once, and a sync init from another thread: one
 * connect, the same outcome for all. */
static void
test_init_concurrent (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  GAsyncResult *r1 = NULL, *r2 = NULL;
  RedisConnection *conn;
  GThread *thread;
  guint64 before;

  conn = g_object_new (REDIS_TYPE_CONNECTION,
                       "port", (guint) redis_test_server_get_port (server),
                       "connect-timeout", test_scale_ms (2000), NULL);
  before = test_server_connections_received (server);

  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r1);
  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r2);
  thread = g_thread_new ("init", init_in_thread, conn);
  test_wait_for_result (&r1, 3000);
  test_wait_for_result (&r2, 3000);
  g_assert_true (GPOINTER_TO_INT (g_thread_join (thread)));
  g_assert_true (init_finish (conn, r1, &error));
  g_assert_no_error (error);
  g_assert_true (init_finish (conn, r2, &error));
  g_assert_no_error (error);
  g_clear_object (&r1);
  g_clear_object (&r2);

  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  reply = run (conn, "CLIENT", "ID");
  g_assert_cmpint (redis_reply_get_integer (reply), ==, redis_connection_get_client_id (conn));
  g_assert_cmpuint (test_server_connections_received (server) - before - 1, ==, 1);

  close_and_finalize (conn);
}

/* A failed connect: every init call, concurrent or later, gets the same
 * error. */
static void
test_init_failed (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) first = NULL;
  GAsyncResult *r1 = NULL, *r2 = NULL;
  RedisConnection *conn;

  conn = g_object_new (REDIS_TYPE_CONNECTION, "port", (guint) closed_port (),
                       "connect-timeout", test_scale_ms (2000), NULL);
  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r1);
  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r2);
  test_wait_for_result (&r1, 3000);
  test_wait_for_result (&r2, 3000);
  g_assert_false (init_finish (conn, r1, &first));
  g_assert_error (first, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_false (init_finish (conn, r2, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_cmpstr (error->message, ==, first->message);
  g_clear_error (&error);
  g_clear_object (&r1);
  g_clear_object (&r2);

  g_assert_false (g_initable_init (G_INITABLE (conn), NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_cmpstr (error->message, ==, first->message);
  g_clear_error (&error);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_CLOSED);

  test_drain_main_context ();
  unref_and_wait_finalized (conn);
}

/* A waiting call's own cancellable ends only that call; the first call's
 * cancels the connect, and every call then gets CANCELLED. */
static void
test_init_cancel (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GSocket) listener = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) c1 = g_cancellable_new ();
  g_autoptr(GCancellable) c2 = g_cancellable_new ();
  GAsyncResult *r1 = NULL, *r2 = NULL, *r3 = NULL;
  RedisConnection *conn;
  guint16 port;

  listener = silent_listener (&port);
  conn = g_object_new (REDIS_TYPE_CONNECTION, "port", (guint) port,
                       "connect-timeout", test_scale_ms (10000), NULL);
  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, c1,
                               store_result_cb, &r1);
  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, c2,
                               store_result_cb, &r2);
  g_async_initable_init_async (G_ASYNC_INITABLE (conn), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &r3);

  g_cancellable_cancel (c2);
  test_wait_for_result (&r2, 1000);
  g_assert_false (init_finish (conn, r2, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_null (r1);
  g_assert_null (r3);
  g_assert_cmpint (redis_connection_get_state (conn), !=, REDIS_CONNECTION_STATE_CLOSED);

  g_cancellable_cancel (c1);
  test_wait_for_result (&r1, 1000);
  test_wait_for_result (&r3, 1000);
  g_assert_false (init_finish (conn, r1, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (init_finish (conn, r3, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (g_initable_init (G_INITABLE (conn), NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  g_clear_object (&r1);
  g_clear_object (&r2);
  g_clear_object (&r3);
  test_drain_main_context ();
  unref_and_wait_finalized (conn);
}

static void
test_connect_async (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  GAsyncResult *result = NULL;
  RedisConnection *conn;

  uri = g_strdup_printf ("redis://127.0.0.1:%u/1?client_name=async", redis_test_server_get_port (server));
  redis_connection_new_async (uri, NULL, store_result_cb, &result);
  g_assert_null (result);
  test_wait_for_result (&result, 2000);
  conn = redis_connection_new_finish (result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  assert_echo (conn, "async");
  close_and_finalize (conn);

  /* Cancelled connect. */
  {
    g_autoptr(GCancellable) c = g_cancellable_new ();

    g_cancellable_cancel (c);
    conn = g_initable_new (REDIS_TYPE_CONNECTION, c, &error,
                           "port", (guint) redis_test_server_get_port (server), NULL);
    g_assert_null (conn);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }
}

/* ---- URI and secrets ------------------------------------------------------ */

static void
test_uri_property (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  GParamSpec *pspec;
  g_autofree char *uri = NULL;
  g_autofree char *back = NULL;

  /* A bad URI fails the construction; the message hides the password. */
  conn = redis_connection_new_sync ("redis://:" SECRET "@127.0.0.1:notaport/0", NULL, &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_null (strstr (error->message, SECRET));
  g_clear_error (&error);

  conn = redis_connection_new_sync ("//:" SECRET "@127.0.0.1/0", NULL, &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_null (strstr (error->message, SECRET));
  g_clear_error (&error);

  conn = redis_connection_new_sync ("redis://:" SECRET "@127.0.0.1/0?bogus=1", NULL, &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_null (strstr (error->message, SECRET));
  g_clear_error (&error);

  /* The password is write-only. */
  pspec = g_object_class_find_property (g_type_class_peek (REDIS_TYPE_CONNECTION), "password");
  g_assert_nonnull (pspec);
  g_assert_false (pspec->flags & G_PARAM_READABLE);
  g_assert_true (pspec->flags & G_PARAM_WRITABLE);

  REQUIRE_SERVER ();
  uri = g_strdup_printf ("redis://127.0.0.1:%u/5?client_name=uri-test&command_timeout=750ms",
                         redis_test_server_get_port (server));
  conn = redis_connection_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  g_object_get (conn, "uri", &back, NULL);
  g_test_message ("uri read back: %s", back);
  g_assert_true (g_str_has_prefix (back, "redis://127.0.0.1:"));
  g_assert_nonnull (strstr (back, "/5"));
  g_assert_nonnull (strstr (back, "client_name=uri-test"));
  g_assert_nonnull (strstr (back, "command_timeout=750ms"));
  {
    guint timeout = 0;
    g_autofree char *name = NULL;

    g_object_get (conn, "command-timeout", &timeout, "client-name", &name, NULL);
    g_assert_cmpuint (timeout, ==, 750);
    g_assert_cmpstr (name, ==, "uri-test");
  }
  close_and_finalize (conn);
}

/* ---- TLS ------------------------------------------------------------------ */

static RedisConnection *
open_tls (guint16      port,
          const char  *host,
          const char  *ca_file,
          GError     **error)
{
  return g_initable_new (REDIS_TYPE_CONNECTION, NULL, error,
                         "host", host, "port", (guint) port, "tls", TRUE,
                         "tls-ca-file", ca_file,
                         /* Generous: a first TLS handshake under ASan on a
                          * loaded machine can take seconds. */
                         "connect-timeout", test_scale_ms (10000),
                         "command-timeout", test_scale_ms (1000), NULL);
}

static void
test_tls (Fixture       *f,
          gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) tls = NULL;
  RedisConnection *conn;
  g_autoptr(RedisReply) r = NULL;
  guint16 port;
  const char *bind_args[] = { "--bind", "127.0.0.1", "127.0.0.2", NULL };

  tls = redis_test_server_new (REDIS_TEST_SERVER_TLS, bind_args, &error);
  if (tls == NULL)
    {
      g_test_skip_printf ("cannot start a TLS server: %s", error->message);
      return;
    }
  port = redis_test_server_get_tls_port (tls);

  /* Good CA, host name in the SAN. */
  conn = open_tls (port, "localhost", redis_test_server_get_ca_file (tls), &error);
  g_assert_no_error (error);
  r = run (conn, "PING");
  assert_status_reply (r, "PONG");
  g_clear_pointer (&r, redis_reply_unref);
  close_and_finalize (conn);

  /* The IP address is in the SAN too. */
  conn = open_tls (port, "127.0.0.1", redis_test_server_get_ca_file (tls), &error);
  g_assert_no_error (error);
  assert_echo (conn, "over tls");
  close_and_finalize (conn);

  /* The URI form. */
  {
    g_autofree char *uri = g_strdup_printf ("rediss://localhost:%u/1?tls_ca_file=%s",
                                            port, redis_test_server_get_ca_file (tls));
    conn = redis_connection_new_sync (uri, NULL, &error);
    g_assert_no_error (error);
    assert_echo (conn, "rediss");
    close_and_finalize (conn);
  }

  /* A client certificate is accepted too. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "host", "localhost", "port", (guint) port, "tls", TRUE,
                         "tls-ca-file", redis_test_server_get_ca_file (tls),
                         "tls-certificate-file", redis_test_server_get_client_cert_file (tls),
                         "tls-key-file", redis_test_server_get_client_key_file (tls),
                         NULL);
  g_assert_no_error (error);
  assert_echo (conn, "client cert");
  close_and_finalize (conn);

  /* Unknown CA. */
  conn = open_tls (port, "localhost", redis_test_server_get_other_ca_file (tls), &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
  g_test_message ("unknown CA: %s", error->message);
  g_clear_error (&error);

  /* Unknown CA accepted when validation is turned off explicitly. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "host", "localhost", "port", (guint) port, "tls", TRUE,
                         "tls-ca-file", redis_test_server_get_other_ca_file (tls),
                         "tls-validation-flags", 0, NULL);
  g_assert_no_error (error);
  assert_echo (conn, "insecure");
  close_and_finalize (conn);

  /* No CA file: the system store does not know the test CA. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "host", "localhost", "port", (guint) port, "tls", TRUE, NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
  g_clear_error (&error);

  /* A name that is not in the certificate: 127.0.0.2 reaches the server
   * (bound there too) but the SAN only lists localhost and 127.0.0.1. */
  conn = open_tls (port, "127.0.0.2", redis_test_server_get_ca_file (tls), &error);
  if (conn == NULL && g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED))
    {
      g_test_message ("127.0.0.2 not reachable (%s): bad-identity case skipped", error->message);
      g_clear_error (&error);
    }
  else
    {
      g_assert_null (conn);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
      g_test_message ("bad identity: %s", error->message);
      g_clear_error (&error);
    }

  /* A missing CA file. */
  conn = open_tls (port, "localhost", "/nonexistent/ca.pem", &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
  g_clear_error (&error);

  /* TLS to the plaintext port: fails within the connect timeout. */
  {
    gint64 start = g_get_monotonic_time ();

    conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                           "host", "localhost", "port", (guint) redis_test_server_get_port (tls),
                           "tls", TRUE, "tls-ca-file", redis_test_server_get_ca_file (tls),
                           "connect-timeout", test_scale_ms (1000), NULL);
    g_assert_null (conn);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
    g_test_message ("TLS to plaintext: %s (%" G_GINT64_FORMAT " ms)", error->message,
                    MS (g_get_monotonic_time () - start));
    g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (3000) * 1000);
    g_clear_error (&error);
  }

  /* Plaintext to the TLS port: the handshake reply never parses. */
  {
    gint64 start = g_get_monotonic_time ();

    conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                           "port", (guint) port, "connect-timeout", test_scale_ms (1000), NULL);
    g_assert_null (conn);
    g_test_message ("plaintext to TLS: %s (code %d)", error->message, error->code);
    /* The code is checked in /connection/regressions/handshake-closed. */
    g_assert_true (error->domain == REDIS_ERROR);
    g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (3000) * 1000);
    g_clear_error (&error);
  }
}

static void
test_tls_expired (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) tls = NULL;
  RedisConnection *conn;

  tls = redis_test_server_new (REDIS_TEST_SERVER_TLS_EXPIRED, NULL, &error);
  if (tls == NULL)
    {
      g_test_skip_printf ("cannot start a TLS server: %s", error->message);
      return;
    }

  conn = open_tls (redis_test_server_get_tls_port (tls), "localhost",
                   redis_test_server_get_ca_file (tls), &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
  g_test_message ("expired: %s", error->message);
  g_clear_error (&error);

  /* Accepting expired certificates must be explicit. */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "host", "localhost", "port", (guint) redis_test_server_get_tls_port (tls),
                         "tls", TRUE, "tls-ca-file", redis_test_server_get_ca_file (tls),
                         "tls-validation-flags",
                         G_TLS_CERTIFICATE_VALIDATE_ALL & ~G_TLS_CERTIFICATE_EXPIRED,
                         NULL);
  g_assert_no_error (error);
  assert_echo (conn, "expired but allowed");
  close_and_finalize (conn);
}

/* ---- the contract --------------------------------------------------------- */

/* (a) A command that times out after it was written completes at once; its
 * late reply is discarded, not given to the next caller. */
static void
test_timeout_after_write (Fixture       *f,
                          gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(GError) error = NULL;
  gint64 start, elapsed;
  RedisReply *r;

  start = g_get_monotonic_time ();
  r = run_error (conn, &error, "DEBUG", "SLEEP", "1", NULL);
  elapsed = g_get_monotonic_time () - start;
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
  g_test_message ("timeout after %" G_GINT64_FORMAT " ms: %s", MS (elapsed), error->message);
  g_clear_error (&error);
  g_assert_cmpint (elapsed, >=, 180 * 1000);
  g_assert_cmpint (elapsed, <, test_scale_ms (600) * 1000);
  /* Its slot stays until the late reply comes. */
  g_assert_cmpuint (redis_connection_get_n_pending (conn), ==, 1);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);

  WAIT_UNTIL (redis_connection_get_n_pending (conn) == 0, 3000);
  assert_echo (conn, "next");
  assert_echo (conn, "and next");
}

/* A command queued behind a late one also times out on its own and gets its
 * own reply slot; the replies of later commands stay matched. */
static void
test_timeout_queue (Fixture       *f,
                    gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  RedisConnection *other;
  g_autoptr(GError) error = NULL;
  GAsyncResult *results[2] = { NULL, };
  RedisReply *r;

  other = open_default ();

  /* (b) The server is paused for everybody else. */
  r = run (other, "CLIENT", "PAUSE", "500");
  assert_status_reply (r, "OK");
  redis_reply_unref (r);

  {
    gint64 start = g_get_monotonic_time ();

    r = run_error (conn, &error, "ECHO", "paused", NULL);
    g_assert_null (r);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
    g_clear_error (&error);
    g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (450) * 1000);
  }

  /* Two more behind it, async, also timing out. */
  redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "ECHO", "p1", NULL },
                              NULL, store_result_cb, &results[0]);
  redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "ECHO", "p2", NULL },
                              NULL, store_result_cb, &results[1]);
  test_wait_for_result (&results[1], 1000);
  test_wait_for_result (&results[0], 1000);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), results[i], &error));
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
      g_clear_error (&error);
      g_clear_object (&results[i]);
    }

  /* After the pause the late replies are drained; new commands get theirs. */
  WAIT_UNTIL (redis_connection_get_n_pending (conn) == 0, 3000);
  assert_echo (conn, "after pause");
  r = await_command (conn, (const char *[]) { "ECHO", "x", NULL }, NULL, &error);
  g_assert_no_error (error);
  assert_string_reply (r, "x");
  redis_reply_unref (r);

  close_and_finalize (other);
}

typedef struct
{
  GAsyncResult *result;
  gint64        completed_at;
} TimedResult;

static void
timed_result_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  TimedResult *t = user_data;

  t->completed_at = g_get_monotonic_time ();
  t->result = g_object_ref (result);
}

typedef struct
{
  GCancellable *cancellable;
  gint64        cancelled_at;
} CancelLater;

static gboolean
cancel_later_cb (gpointer data)
{
  CancelLater *c = data;

  c->cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (c->cancellable);
  return G_SOURCE_REMOVE;
}

/* (c) Cancellation. */
static void
test_cancel (Fixture       *f,
             gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  TimedResult t = { NULL, 0 };
  CancelLater later = { cancellable, 0 };
  RedisReply *r;

  redis_client_command_async (REDIS_CLIENT (conn),
                              (const char *[]) { "DEBUG", "SLEEP", "0.3", NULL },
                              cancellable, timed_result_cb, &t);
  g_timeout_add (50, cancel_later_cb, &later);
  WAIT_UNTIL (t.result != NULL, 2000);
  g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), t.result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (later.cancelled_at, >, 0);
  g_test_message ("completed %" G_GINT64_FORMAT " µs after cancel",
                  t.completed_at - later.cancelled_at);
  g_assert_cmpint (t.completed_at - later.cancelled_at, <, test_scale_ms (100) * 1000);
  g_clear_object (&t.result);

  /* The next command is answered with its own reply, not the DEBUG's +OK. */
  r = await_command (conn, (const char *[]) { "ECHO", "mine", NULL }, NULL, &error);
  g_assert_no_error (error);
  assert_string_reply (r, "mine");
  redis_reply_unref (r);

  /* Cancelled before submit, async and sync. */
  {
    g_autoptr(GCancellable) c = g_cancellable_new ();

    g_cancellable_cancel (c);
    g_assert_null (await_command (conn, (const char *[]) { "INCR", "cancel:n", NULL }, c, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);

    r = redis_client_command_sync (REDIS_CLIENT (conn), (const char *[]) { "INCR", "cancel:n", NULL },
                                   c, &error);
    g_assert_null (r);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);

    /* Neither ran. */
    r = run (conn, "GET", "cancel:n");
    g_assert_true (redis_reply_is_nil (r));
    redis_reply_unref (r);
  }

  /* Cancelling after completion changes nothing. */
  {
    g_autoptr(GCancellable) c = g_cancellable_new ();

    r = redis_client_command_sync (REDIS_CLIENT (conn), (const char *[]) { "PING", NULL }, c, &error);
    g_assert_no_error (error);
    redis_reply_unref (r);
    g_cancellable_cancel (c);
    assert_echo (conn, "fine");
  }
}

/* (d) The server kills the connection while a command is in flight. */
static void
test_killed (Fixture       *f,
             gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  RedisConnection *other;
  g_autoptr(GError) error = NULL;
  ClosedRecord rec = { 0, NULL };
  GAsyncResult *result = NULL;
  g_autofree char *id = NULL;
  gint64 start;
  RedisReply *r;

  other = open_default ();
  g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);

  /* A blocking command rather than DEBUG SLEEP: while DEBUG SLEEP runs the
   * server reads nothing, so the kill would only run after the reply was
   * already sent. BLPOP leaves the server free to process the kill. */
  start = g_get_monotonic_time ();
  redis_client_command_async (REDIS_CLIENT (conn),
                              (const char *[]) { "BLPOP", "killed:nothing", "2", NULL },
                              NULL, store_result_cb, &result);
  WAIT_UNTIL (({ RedisReply *cl = run (other, "CLIENT", "LIST");
                 gboolean blocked = strstr (redis_reply_get_string (cl, NULL), "cmd=blpop") != NULL;
                 redis_reply_unref (cl); blocked; }), 2000);

  id = g_strdup_printf ("%" G_GINT64_FORMAT, redis_connection_get_client_id (conn));
  r = run (other, "CLIENT", "KILL", "ID", id);
  g_assert_cmpint (redis_reply_get_integer (r), ==, 1);
  redis_reply_unref (r);

  test_wait_for_result (&result, 2000);
  g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (1500) * 1000);
  g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), result, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_test_message ("killed: %s", error->message);
  g_clear_error (&error);
  g_clear_object (&result);

  assert_closed_once (conn, &rec, REDIS_ERROR_CONNECTION_LOST);

  /* close on a dead connection is fine and emits nothing more */
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (conn), NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  g_assert_cmpuint (rec.n, ==, 1);

  g_clear_error (&rec.error);
  close_and_finalize (other);
}

/* The server dies (SIGKILL): pending calls fail CONNECTION_LOST. */
static void
test_server_killed (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) srv = NULL;
  RedisConnection *conn;
  ClosedRecord rec = { 0, NULL };
  GAsyncResult *result = NULL;

  srv = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  conn = open_port (redis_test_server_get_port (srv), 3000);
  g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);

  redis_client_command_async (REDIS_CLIENT (conn),
                              (const char *[]) { "BLPOP", "x", "5", NULL },
                              NULL, store_result_cb, &result);
  test_drain_main_context ();
  g_assert_null (result);
  g_assert_true (redis_test_server_kill (srv));

  test_wait_for_result (&result, 2000);
  g_assert_null (redis_client_command_finish (REDIS_CLIENT (conn), result, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_clear_error (&error);
  g_clear_object (&result);
  WAIT_UNTIL (rec.n > 0, 2000);
  g_assert_error (rec.error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_clear_error (&rec.error);
  close_and_finalize (conn);
}

/* ---- fake server: nothing sent for bad arguments, hostile replies -------- */

static RedisConnection *
open_fake (FakeServer *fake,
           guint       command_timeout)
{
  return open_port (fake_server_get_port (fake), command_timeout);
}

/* (e) */
static void
test_bad_arguments (Fixture       *f,
                    gconstpointer  data)
{
  FakeServer *fake = f->fake;
  RedisConnection *conn = f->conn;
  g_autoptr(GError) error = NULL;
  guint n0;
  RedisReply *r;
  g_autoptr(GBytes) name = g_bytes_new_static ("GET", 3);
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  GBytes *null_element[] = { name, NULL };
  GBytes *empty_name[] = { empty, name };
  const char *empty_argv[] = { NULL };
  const char *empty_name_argv[] = { "", "k", NULL };
  static const char * const unsupported[][4] = {
    { "SUBSCRIBE", "ch", NULL },
    { "psubscribe", "c*", NULL },
    { "MONITOR", NULL },
    { "CLIENT", "REPLY", "OFF", NULL },
    { "HELLO", "3", NULL },
  };

  n0 = fake_server_get_n_commands (fake);
  g_assert_cmpuint (n0, >=, 1);   /* the handshake */

  /* @expr returns NULL or FALSE. */
#define EXPECT_INVALID(expr)                                              \
  G_STMT_START {                                                          \
    g_assert_true (!(expr));                                              \
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);    \
    g_test_message ("%s → %s", #expr, error->message);                   \
    g_clear_error (&error);                                               \
  } G_STMT_END

  EXPECT_INVALID (redis_client_command_sync (REDIS_CLIENT (conn), NULL, NULL, &error));
  EXPECT_INVALID (redis_client_command_sync (REDIS_CLIENT (conn), empty_argv, NULL, &error));
  EXPECT_INVALID (redis_client_command_sync (REDIS_CLIENT (conn), empty_name_argv, NULL, &error));
  EXPECT_INVALID (redis_client_command_bytes_sync (REDIS_CLIENT (conn), NULL, 0, NULL, &error));
  EXPECT_INVALID (redis_client_command_bytes_sync (REDIS_CLIENT (conn), NULL, 2, NULL, &error));
  EXPECT_INVALID (redis_client_command_bytes_sync (REDIS_CLIENT (conn), null_element, 2, NULL, &error));
  EXPECT_INVALID (redis_client_command_bytes_sync (REDIS_CLIENT (conn), empty_name, 2, NULL, &error));
  for (gsize i = 0; i < G_N_ELEMENTS (unsupported); i++)
    EXPECT_INVALID (redis_client_command_sync (REDIS_CLIENT (conn), unsupported[i], NULL, &error));
  EXPECT_INVALID (redis_client_noreply_command_sync (REDIS_CLIENT (conn), NULL, NULL, &error));

  /* Batches: NULL, empty, with a bad command, with an unsupported one. */
  {
    g_autoptr(RedisBatch) empty_batch = redis_batch_new ();
    g_autoptr(RedisBatch) bad = redis_batch_new ();
    g_autoptr(RedisBatch) sub = redis_batch_new ();

    redis_batch_add (bad, (const char *[]) { "PING", NULL });
    redis_batch_add_bytes (bad, null_element, 2);
    redis_batch_add (sub, (const char *[]) { "PING", NULL });
    redis_batch_add (sub, (const char *[]) { "SUBSCRIBE", "x", NULL });

    EXPECT_INVALID (redis_client_pipeline_sync (REDIS_CLIENT (conn), NULL, NULL, &error));
    EXPECT_INVALID (redis_client_pipeline_sync (REDIS_CLIENT (conn), empty_batch, NULL, &error));
    EXPECT_INVALID (redis_client_transaction_sync (REDIS_CLIENT (conn), bad, NULL, &error));
    EXPECT_INVALID (redis_client_pipeline_sync (REDIS_CLIENT (conn), sub, NULL, &error));
    EXPECT_INVALID (redis_client_noreply_pipeline_sync (REDIS_CLIENT (conn), bad, NULL, &error));
  }

#undef EXPECT_INVALID

  /* async as well */
  g_assert_false (call_await (REDIS_CLIENT (conn),
                              &(Call) { CALL_COMMAND_BYTES, .args = null_element, .n_args = 2 },
                              NULL, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Nothing reached the server; the connection still works and a real
   * command is the only one recorded. */
  g_assert_cmpuint (fake_server_get_n_commands (fake), ==, n0);
  r = run (conn, "TEST.PING");
  g_assert_cmpint (redis_reply_get_integer (r), ==, 1);
  redis_reply_unref (r);
  g_assert_cmpuint (fake_server_get_n_commands (fake), ==, n0 + 1);
  {
    g_auto(GStrv) cmds = fake_server_get_commands (fake);
    guint n = g_strv_length (cmds);

    g_assert_cmpuint (n, ==, n0 + 1);
    g_test_message ("last command seen: %s", cmds[n - 1]);
    g_assert_nonnull (strstr (cmds[n - 1], "PING"));
  }
}

typedef struct
{
  const char *name;
  const char *reply;      /* NULL: generated */
  gsize       reply_len;
  int         code;
} HostileCase;

/* (f) */
static void
run_hostile (const HostileCase *c)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  RedisConnection *conn;
  g_autoptr(GError) error = NULL;
  ClosedRecord rec = { 0, NULL };
  gint64 start, elapsed;
  RedisReply *r;

  g_test_message ("hostile reply: %s", c->name);
  fake_server_set_answer_all (fake, ":1\r\n", -1);
  conn = open_fake (fake, 5000);
  g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);

  if (c->reply != NULL)
    fake_server_add_reply (fake, c->reply, c->reply_len);
  else
    fake_server_add_reply_generated (fake, "+", 'a', (guint64) 100 * 1024 * 1024, "");

  start = g_get_monotonic_time ();
  r = run_error (conn, &error, "GET", "k", NULL);
  elapsed = g_get_monotonic_time () - start;
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, c->code);
  g_test_message ("  → %s (%" G_GINT64_FORMAT " ms)", error->message, MS (elapsed));
  g_assert_cmpint (elapsed, <, test_scale_ms (2000) * 1000);
  g_clear_error (&error);

  assert_closed_once (conn, &rec, c->code);
  g_clear_error (&rec.error);
  close_and_finalize (conn);
  assert_no_live_replies ();
}

static void
test_hostile_replies (Fixture       *f,
                      gconstpointer  data)
{
  GString *deep = g_string_new (NULL);
  HostileCase cases[] = {
    { "huge array count", "*2147483647\r\n", 13, REDIS_ERROR_REPLY_TOO_LARGE },
    { "huge bulk length", "$4611686018427387904\r\n", 22, REDIS_ERROR_REPLY_TOO_LARGE },
    { "100 MiB status line", NULL, 0, REDIS_ERROR_REPLY_TOO_LARGE },
    { "nested deeper than max-depth (64)", NULL, 0, REDIS_ERROR_REPLY_TOO_LARGE },
    { "garbage type byte", "?x\r\n", 4, REDIS_ERROR_PROTOCOL },
    { "RESP3 map", "%1\r\n+a\r\n+b\r\n", 12, REDIS_ERROR_PROTOCOL },
    { "RESP3 push", ">2\r\n+a\r\n+b\r\n", 12, REDIS_ERROR_PROTOCOL },
    { "bad integer", ":12a\r\n", 6, REDIS_ERROR_PROTOCOL },
    { "negative bulk length", "$-2\r\n", 5, REDIS_ERROR_PROTOCOL },
    { "bulk without CRLF", "$3\r\nabcXY", 9, REDIS_ERROR_PROTOCOL },
  };

  for (guint i = 0; i < 65; i++)
    g_string_append (deep, "*1\r\n");
  g_string_append (deep, ":1\r\n");
  cases[3].reply = deep->str;
  cases[3].reply_len = deep->len;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    run_hostile (&cases[i]);
  g_string_free (deep, TRUE);
}

static void
test_unsolicited_reply (Fixture       *f,
                        gconstpointer  data)
{
  FakeServer *fake = f->fake;
  RedisConnection *conn = f->conn;
  g_autoptr(GError) error = NULL;
  ClosedRecord rec = { 0, NULL };
  RedisReply *r;

  g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);

  fake_server_add_reply (fake, "+OK\r\n+EXTRA\r\n", -1);
  r = run_error (conn, &error, "GET", "k", NULL);
  /* The GET may get its +OK; the extra reply closes the connection. */
  if (r != NULL)
    {
      assert_status_reply (r, "OK");
      redis_reply_unref (r);
    }
  else
    {
      g_test_message ("GET failed: %s", error->message);
      g_clear_error (&error);
    }

  assert_closed_once (conn, &rec, REDIS_ERROR_PROTOCOL);
  g_clear_error (&rec.error);
}

/* The server closes or goes silent, during a command or the handshake. */
static void
test_fake_close_and_stall (Fixture       *f,
                           gconstpointer  data)
{
  FakeServer *fake = f->fake;
  RedisConnection *conn = g_steal_pointer (&f->conn);
  g_autoptr(GError) error = NULL;
  RedisReply *r;
  gint64 start;

  /* The server closes without replying: CONNECTION_LOST. */
  fake_server_add_close (fake);
  r = run_error (conn, &error, "GET", "k", NULL);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_clear_error (&error);
  close_and_finalize (conn);

  /* The server stalls: TIMEOUT in bounded time. */
  conn = open_port_raw (fake_server_get_port (fake), 200);
  fake_server_add_stall (fake);
  start = g_get_monotonic_time ();
  r = run_error (conn, &error, "GET", "k", NULL);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TIMEOUT);
  g_clear_error (&error);
  g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (600) * 1000);

  /* A stalled connection still closes in bounded time (command timeout). */
  start = g_get_monotonic_time ();
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (conn), NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (1000) * 1000);
  close_and_finalize (conn);

  /* The handshake itself meets a bad reply. */
  fake_server_add_reply (fake, "?garbage\r\n", -1);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) fake_server_get_port (fake), NULL);
  g_assert_null (conn);
  g_assert_nonnull (error);
  g_test_message ("bad handshake reply: %s (code %d)", error->message, error->code);
  g_assert_true (g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED) ||
                 g_error_matches (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL));
  g_clear_error (&error);

  /* The handshake is never answered: connect timeout. */
  fake_server_add_stall (fake);
  start = g_get_monotonic_time ();
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) fake_server_get_port (fake),
                         "connect-timeout", 300, NULL);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, test_scale_ms (1000) * 1000);
  g_clear_error (&error);
}

/* The peer closes the socket during the handshake (the fake server closes;
 * a TLS port resets a plaintext client): the connect fails with
 * CONNECT_FAILED, not CONNECTION_LOST (which means "a command may have
 * run"); no user command was ever sent. */
static void
test_handshake_closed (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  fake_server_add_close (fake);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) fake_server_get_port (fake), NULL);
  g_assert_null (conn);
  g_test_message ("closed during handshake: %s (code %d)", error->message, error->code);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_clear_error (&error);
}

/* Dropping a connection as soon as a call failed because the peer closed.
 * engine_shutdown() fails the in-flight calls before it calls the closed
 * func with closed_data read earlier under the lock; a dispose on the main
 * thread in between frees that GWeakRef (redis_engine_set_closed_func()
 * calls the old notify at once), and the I/O thread then reads freed
 * memory in engine_closed_cb(). Subprocess: a crash fails only this test. */
static void
test_unref_after_lost (Fixture       *f,
                       gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(FakeServer) fake = fake_server_new ();

      fake_server_set_answer_all (fake, ":1\r\n", -1);
      for (guint i = 0; i < 30; i++)
        {
          g_autoptr(GError) error = NULL;
          RedisConnection *conn = open_fake (fake, 1000);
          RedisReply *r;

          fake_server_add_close (fake);
          r = run_error (conn, &error, "GET", "k", NULL);
          g_assert_null (r);
          g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
          g_object_unref (conn);
        }
      test_drain_main_context ();
      return;
    }

  g_test_trap_subprocess (NULL, test_scale_ms (20000) * 1000, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* The limits against a real server. */
static void
test_limits (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  RedisConnection *plain = f->conn;
  RedisReply *r;
  guint port;
  g_autofree char *big = g_strnfill (2000, 'v');
  g_autofree char *long_name = g_strnfill (100, 'x');

  port = redis_test_server_get_port (server);
  r = run (plain, "DEL", "lim:list");
  redis_reply_unref (r);
  r = run (plain, "RPUSH", "lim:list", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11");
  redis_reply_unref (r);
  r = run (plain, "SET", "lim:big", big);
  redis_reply_unref (r);

  /* max-elements */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "port", port, "max-elements", 10, NULL);
  g_assert_no_error (error);
  r = run (conn, "LRANGE", "lim:list", "0", "9");
  g_assert_cmpuint (redis_reply_get_n_elements (r), ==, 10);
  redis_reply_unref (r);
  r = run_error (conn, &error, "LRANGE", "lim:list", "0", "-1", NULL);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_clear_error (&error);
  WAIT_UNTIL (redis_connection_get_state (conn) == REDIS_CONNECTION_STATE_CLOSED, 1000);
  close_and_finalize (conn);

  /* max-reply-bytes */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "port", port,
                         "max-reply-bytes", (guint64) 1024, NULL);
  g_assert_no_error (error);
  r = run (conn, "GETRANGE", "lim:big", "0", "999");
  g_assert_cmpuint (strlen (redis_reply_get_string (r, NULL)), ==, 1000);
  redis_reply_unref (r);
  r = run_error (conn, &error, "GET", "lim:big", NULL);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_clear_error (&error);
  close_and_finalize (conn);

  /* max-line-length: an error line quoting a long command name */
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error, "port", port,
                         "max-line-length", 64, NULL);
  g_assert_no_error (error);
  r = run_error (conn, &error, "NOPE", NULL);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_SERVER);   /* short line: fine */
  g_clear_error (&error);
  r = run_error (conn, &error, long_name, NULL);
  g_assert_null (r);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_REPLY_TOO_LARGE);
  g_clear_error (&error);
  close_and_finalize (conn);
}

/* ---- threads --------------------------------------------------------------- */

#define N_THREADS 8
#define N_ITER 200

typedef struct
{
  RedisConnection *conn;
  guint            index;
  gint            *done;
  GMainContext    *main_context;
} WorkerData;

static gpointer
worker_thread (gpointer data)
{
  WorkerData *w = data;

  for (guint i = 0; i < N_ITER; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *text = g_strdup_printf ("%u-%u", w->index, i);
      const char *incr[] = { "INCR", "th:counter", NULL };
      const char *echo[] = { "ECHO", text, NULL };
      RedisReply *r;

      r = redis_client_command_sync (REDIS_CLIENT (w->conn), incr, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_INTEGER);
      redis_reply_unref (r);

      r = redis_client_command_sync (REDIS_CLIENT (w->conn), echo, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, text);
      redis_reply_unref (r);
    }

  g_atomic_int_inc (w->done);
  g_main_context_wakeup (w->main_context);
  return NULL;
}

typedef struct
{
  RedisConnection *conn;
  GMainLoop       *loop;
  gint            *done;
  guint            n_async;
  guint            seq;
} AsyncPump;

static void pump_send (AsyncPump *p);

static void
pump_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  AsyncPump *p = user_data;
  g_autoptr(GError) error = NULL;
  RedisReply *r = redis_client_command_finish (REDIS_CLIENT (source), result, &error);
  g_autofree char *expected = g_strdup_printf ("main-%u", p->seq);

  g_assert_no_error (error);
  g_assert_cmpstr (redis_reply_get_string (r, NULL), ==, expected);
  redis_reply_unref (r);
  p->n_async++;
  p->seq++;

  if (g_atomic_int_get (p->done) == N_THREADS)
    g_main_loop_quit (p->loop);
  else
    pump_send (p);
}

static void
pump_send (AsyncPump *p)
{
  g_autofree char *text = g_strdup_printf ("main-%u", p->seq);
  const char *argv[] = { "ECHO", text, NULL };

  redis_client_command_async (REDIS_CLIENT (p->conn), argv, NULL, pump_cb, p);
}

static gboolean
watchdog_cb (gpointer data)
{
  g_error ("thread test did not finish in time");
  return G_SOURCE_REMOVE;
}

static void
test_threads (Fixture       *f,
              gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  GThread *threads[N_THREADS];
  WorkerData workers[N_THREADS];
  gint done = 0;
  AsyncPump pump = { 0, };
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  RedisReply *r;
  guint watchdog;
  gint64 start = g_get_monotonic_time ();

  r = run (conn, "DEL", "th:counter");
  redis_reply_unref (r);

  for (guint i = 0; i < N_THREADS; i++)
    {
      workers[i] = (WorkerData) { conn, i, &done, g_main_context_default () };
      threads[i] = g_thread_new ("redis-worker", worker_thread, &workers[i]);
    }

  pump.conn = conn;
  pump.loop = loop;
  pump.done = &done;
  pump_send (&pump);
  watchdog = g_timeout_add (test_scale_ms (30000), watchdog_cb, NULL);
  g_main_loop_run (loop);
  g_source_remove (watchdog);

  for (guint i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);

  g_test_message ("%u async commands on main while threads ran; %" G_GINT64_FORMAT " ms",
                  pump.n_async, MS (g_get_monotonic_time () - start));
  g_assert_cmpuint (pump.n_async, >, 0);

  r = run (conn, "GET", "th:counter");
  {
    g_autofree char *expected = g_strdup_printf ("%u", N_THREADS * N_ITER);
    assert_string_reply (r, expected);
  }
  redis_reply_unref (r);
}

/* Sync from a worker thread while main runs a loop. */
typedef struct
{
  RedisConnection *conn;
  GMainLoop       *loop;
  gboolean         ok;
} SyncInThread;

static gboolean
quit_loop_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gpointer
sync_thread (gpointer data)
{
  SyncInThread *s = data;
  g_autoptr(GError) error = NULL;
  RedisReply *r;

  r = redis_client_command_sync (REDIS_CLIENT (s->conn),
                                 (const char *[]) { "ECHO", "from-thread", NULL }, NULL, &error);
  s->ok = error == NULL && g_strcmp0 (redis_reply_get_string (r, NULL), "from-thread") == 0;
  if (r != NULL)
    redis_reply_unref (r);

  /* A thread with its own main context pushed as thread default works too. */
  {
    GMainContext *ctx = g_main_context_new ();

    g_main_context_push_thread_default (ctx);
    r = redis_client_command_sync (REDIS_CLIENT (s->conn),
                                   (const char *[]) { "ECHO", "ctx", NULL }, NULL, &error);
    s->ok = s->ok && error == NULL && g_strcmp0 (redis_reply_get_string (r, NULL), "ctx") == 0;
    if (r != NULL)
      redis_reply_unref (r);
    g_main_context_pop_thread_default (ctx);
    g_main_context_unref (ctx);
  }

  /* Queued for the loop, never run here: g_main_context_invoke() would
   * quit right away in this thread when main has not entered the loop yet
   * (the context is free to acquire then), and the g_main_loop_run() that
   * follows would start a loop nothing quits. */
  g_idle_add (quit_loop_cb, s->loop);
  return NULL;
}

typedef struct
{
  RedisConnection *conn;
  GMainLoop       *loop;
  gboolean         ok;
  guint            step;
} SyncInCallback;

static void
nested_async_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  SyncInCallback *s = user_data;
  g_autoptr(GError) error = NULL;
  RedisReply *r = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  g_assert_no_error (error);
  redis_reply_unref (r);

  /* A sync call from inside an async callback on the main thread. */
  r = redis_client_command_sync (REDIS_CLIENT (s->conn),
                                 (const char *[]) { "ECHO", "in-async-cb", NULL }, NULL, &error);
  g_assert_no_error (error);
  assert_string_reply (r, "in-async-cb");
  redis_reply_unref (r);
  s->step = 2;
  g_main_loop_quit (s->loop);
}

static gboolean
sync_in_idle_cb (gpointer data)
{
  SyncInCallback *s = data;
  g_autoptr(GError) error = NULL;
  RedisReply *r;

  r = redis_client_command_sync (REDIS_CLIENT (s->conn),
                                 (const char *[]) { "ECHO", "in-idle", NULL }, NULL, &error);
  s->ok = error == NULL && g_strcmp0 (redis_reply_get_string (r, NULL), "in-idle") == 0;
  if (r != NULL)
    redis_reply_unref (r);
  s->step = 1;
  redis_client_command_async (REDIS_CLIENT (s->conn), (const char *[]) { "PING", NULL },
                              NULL, nested_async_cb, s);
  return G_SOURCE_REMOVE;
}

static gpointer
open_in_thread (gpointer data)
{
  return open_default ();
}

static void
test_sync_contexts (Fixture       *f,
                    gconstpointer  data)
{
  RedisConnection *conn = f->conn;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  guint watchdog;

  /* (a) No main loop at all: plain sync calls (the rest of this file). */
  assert_echo (conn, "no loop");

  /* (b) From a worker thread while main runs a GMainLoop; then with the
   * thread done before main enters the loop, the order a loaded machine
   * gives now and then (under valgrind: the loop then waited for a quit
   * that had come before it), forced here. */
  for (guint order = 0; order < 2; order++)
    {
      SyncInThread s = { conn, loop, FALSE };
      GThread *t = g_thread_new ("sync-thread", sync_thread, &s);

      if (order == 1)
        g_thread_join (g_steal_pointer (&t));
      watchdog = g_timeout_add (test_scale_ms (5000), watchdog_cb, NULL);
      g_main_loop_run (loop);
      g_source_remove (watchdog);
      if (t != NULL)
        g_thread_join (t);
      g_assert_true (s.ok);
    }

  /* (c) From inside a main-loop callback on the main thread. */
  {
    SyncInCallback s = { conn, loop, FALSE, 0 };

    g_idle_add (sync_in_idle_cb, &s);
    watchdog = g_timeout_add (test_scale_ms (5000), watchdog_cb, NULL);
    g_main_loop_run (loop);
    g_source_remove (watchdog);
    g_assert_true (s.ok);
    g_assert_cmpuint (s.step, ==, 2);
  }

  /* (d) A connection created on a worker thread, used from main. */
  {
    GThread *t = g_thread_new ("creator", open_in_thread, NULL);
    RedisConnection *made = g_thread_join (t);

    assert_echo (made, "made elsewhere");
    close_and_finalize (made);
  }
}

static const Case cases[] = {
  { "/connection/command/sync", test_command_sync, NEEDS_CONNECTION },
  { "/connection/command/async", test_command_async, NEEDS_CONNECTION },
  { "/connection/command/bytes", test_command_bytes, NEEDS_CONNECTION },
  { "/connection/async-never-synchronous", test_async_never_synchronous, NEEDS_CONNECTION },
  { "/connection/pipeline", test_pipeline, NEEDS_CONNECTION },
  { "/connection/transaction/ok", test_transaction, NEEDS_CONNECTION },
  { "/connection/transaction/execabort", test_transaction_execabort, NEEDS_CONNECTION },
  { "/connection/transaction/watch", test_transaction_watch, NEEDS_CONNECTION },
  { "/connection/noreply", test_noreply, NEEDS_CONNECTION },
  { "/connection/close/graceful", test_close_graceful, NEEDS_CONNECTION },
  { "/connection/close/dispose-pending", test_dispose_pending, NEEDS_CONNECTION },
  { "/connection/close/unref-pending", test_unref_pending, NEEDS_CONNECTION },
  { "/connection/connect/async", test_connect_async, NEEDS_SERVER },
  { "/connection/connect/refused", test_connect_refused, NEEDS_NOTHING },
  { "/connection/init/twice", test_init_twice, NEEDS_CONNECTION },
  { "/connection/init/concurrent", test_init_concurrent, NEEDS_SERVER },
  { "/connection/init/failed", test_init_failed, NEEDS_NOTHING },
  { "/connection/init/cancel", test_init_cancel, NEEDS_NOTHING },
  { "/connection/options/acl", test_acl_user, NEEDS_SERVER },
  { "/connection/options/requirepass", test_requirepass, NEEDS_SERVER },
  { "/connection/options/database", test_database, NEEDS_SERVER },
  { "/connection/options/client-name", test_client_name, NEEDS_SERVER },
  { "/connection/options/unix", test_unix_socket, NEEDS_SERVER },
  { "/connection/options/uri", test_uri_property, NEEDS_NOTHING },
  { "/connection/tls/basic", test_tls, NEEDS_SERVER },
  { "/connection/tls/expired", test_tls_expired, NEEDS_SERVER },
  { "/connection/contract/timeout-after-write", test_timeout_after_write, NEEDS_CONNECTION, 200, TRUE },
  { "/connection/contract/timeout-paused", test_timeout_queue, NEEDS_CONNECTION, 200, TRUE },
  { "/connection/contract/cancel", test_cancel, NEEDS_CONNECTION },
  { "/connection/contract/killed", test_killed, NEEDS_CONNECTION },
  { "/connection/contract/server-killed", test_server_killed, NEEDS_SERVER },
  { "/connection/contract/bad-arguments", test_bad_arguments, NEEDS_FAKE },
  { "/connection/contract/hostile-replies", test_hostile_replies, NEEDS_NOTHING },
  { "/connection/contract/unsolicited-reply", test_unsolicited_reply, NEEDS_FAKE },
  { "/connection/contract/fake-close-stall", test_fake_close_and_stall, NEEDS_FAKE },
  { "/connection/contract/limits", test_limits, NEEDS_CONNECTION },
  { "/connection/contract/large-writes-in-order", test_large_writes_in_order, NEEDS_CONNECTION, 60000 },
  { "/connection/contract/stall", test_stall_detected, NEEDS_SERVER },
  { "/connection/contract/health-check", test_health_check, NEEDS_SERVER },
  { "/connection/threads/many", test_threads, NEEDS_CONNECTION, 5000 },
  { "/connection/threads/sync-contexts", test_sync_contexts, NEEDS_CONNECTION },

  /* Regressions: bugs that were fixed, each kept by the test that found it. */
  { "/connection/regressions/call-after-dispose", test_call_after_dispose, NEEDS_SERVER },
  { "/connection/regressions/handshake-closed", test_handshake_closed, NEEDS_NOTHING },
  { "/connection/regressions/unref-after-lost", test_unref_after_lost, NEEDS_NOTHING },
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  if (redis_test_server_available ())
    {
      server = redis_test_server_new (REDIS_TEST_SERVER_UNIX, NULL, &error);
      if (server == NULL)
        g_printerr ("# cannot start redis-server: %s\n", error->message);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      if (server == NULL && (cases[i].needs == NEEDS_SERVER || cases[i].needs == NEEDS_CONNECTION))
        g_test_add_data_func (cases[i].path, "redis-server not available", test_skip_cb);
      else
        g_test_add (cases[i].path, Fixture, &cases[i], fixture_setup, cases[i].body, fixture_teardown);
    }

  ret = g_test_run ();

  g_clear_pointer (&server, redis_test_server_free);
  return ret;
}
