/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A reply nobody asked for never reaches a caller (issue 11, item 2).
 *
 * A server (or a broken proxy) answers one request with two replies. The
 * scripted fake server sends the second one, "+EXTRA-<i>", at four moments,
 * each for a single RedisConnection and for a RedisPool of two:
 *
 *  1. in the same segment as the real reply ("$7\r\nvalue-3\r\n+EXTRA-3\r\n");
 *  2. a few milliseconds later, while the connection is idle;
 *  3. before the next command is written: the test waits until the stray
 *     bytes sit in the client's socket buffer (the fake server waits for
 *     the peer's TCP acknowledgement), without iterating the main context
 *     that serves the connection's async calls, then calls at once;
 *  4. after the next command was written: the fake server answers INCR
 *     with "+EXTRA-<i>" (a status, a kind INCR never returns), with or
 *     without INCR's real reply behind it; or the stray comes 5 ms after
 *     GET's reply while DECR is sent at once (the stray is then either in
 *     the buffer before DECR is written, as in 3, or taken for DECR's
 *     reply).
 *
 * Every value is distinct per iteration (value-<i>, next-<i>,
 * later-<i>-<j>), so a reply shifted by one is seen. What must hold:
 *
 *  - the call the stray follows gets its own reply;
 *  - the next call never gets the stray: on a pool it succeeds with its own
 *    reply (a pool moves a call it could not write to another connection)
 *    unless it is the INCR or DECR of case 4 that took the stray for its
 *    reply, which fails with PROTOCOL; on a single connection it gets its
 *    own reply or a clean error (CLOSED "was not sent", CONNECTION_LOST, or
 *    PROTOCOL for case 4);
 *  - the connection closes with PROTOCOL, exactly once per iteration: the
 *    "closed" signal of a RedisConnection (later calls fail CLOSED), the
 *    "connection-lost" signal of a pool, whose slot is then replaced;
 *  - on the pool, every later call, on the surviving and on the new
 *    connection, gets its own reply, and the server received every call
 *    exactly once, in order (a moved call is never written twice);
 *  - a call that failed "was not sent" never reached the server.
 *
 * A pool deals calls round robin, so the next call would always go to the
 * other connection; in half the iterations one sync call in between aims
 * it at the connection with the stray (a pool that has not found the stray
 * yet must then find it before writing, and move the call).
 *
 * Calls alternate between sync and async (async from the main context,
 * which the helpers iterate). The fake server's script is one FIFO for all
 * connections: calls here are made one at a time, and the handshake's
 * CLIENT ID (sent again by every reconnection of the pool, at a moment the
 * test does not choose) has a fixed reply that takes nothing from the
 * script. So has the DECR of case 4's racing variant: the fake server reads
 * it only after the stray, and may never read it if the client closed the
 * connection (with the stray unread: a reset) meanwhile. Unscripted
 * commands get an error reply, which fails the test. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "fake-server.h"
#include "test-client-helpers.h"

#define TIMEOUT_MS 5000

/* Milliseconds between a reply and its stray in cases 2 and 3, and in the
 * racing variant of case 4. Not a deadline: nothing depends on it. */
#define STRAY_DELAY_MS 5

static guint
n_iterations (void)
{
  /* Under valgrind (or any scaled run) fewer: each one is a connection. */
  return test_scale_ms (1) > 1 ? 10 : 50;
}

/* ---- calls and replies ----------------------------------------------------- */

static RedisReply *
call_argv (RedisClient        *client,
           gboolean            async,
           const char * const *argv,
           GError            **error)
{
  GAsyncResult *result = NULL;
  RedisReply *reply;

  if (!async)
    return redis_client_command_sync (client, argv, NULL, error);

  redis_client_command_async (client, argv, NULL, store_result_cb, &result);
  test_wait_for_result (&result, TIMEOUT_MS);
  reply = redis_client_command_finish (client, result, error);
  g_object_unref (result);
  return reply;
}

#define CALL(client, async, error, ...) \
  call_argv (REDIS_CLIENT (client), (async), (const char * const []) { __VA_ARGS__, NULL }, (error))

/* What a call got, as text for assertions: bulk "x", status "x",
 * integer n, nil, array[n], or error <code>: message. */
static char *
outcome (RedisReply   *reply,
         const GError *error)
{
  const char *s;
  gsize len = 0;

  if (reply == NULL)
    {
      g_assert_nonnull (error);
      if (error->domain == REDIS_ERROR)
        return g_strdup_printf ("error %d: %s", error->code, error->message);
      return g_strdup_printf ("error %s %d: %s", g_quark_to_string (error->domain),
                              error->code, error->message);
    }
  g_assert_null (error);

  switch (redis_reply_get_kind (reply))
    {
    case REDIS_REPLY_KIND_STRING:
      s = redis_reply_get_string (reply, &len);
      return g_strdup_printf ("bulk \"%.*s\"", (int) len, s);
    case REDIS_REPLY_KIND_STATUS:
      s = redis_reply_get_string (reply, &len);
      return g_strdup_printf ("status \"%.*s\"", (int) len, s);
    case REDIS_REPLY_KIND_INTEGER:
      return g_strdup_printf ("integer %" G_GINT64_FORMAT, redis_reply_get_integer (reply));
    case REDIS_REPLY_KIND_NIL:
      return g_strdup ("nil");
    case REDIS_REPLY_KIND_ARRAY:
      return g_strdup_printf ("array[%u]", redis_reply_get_n_elements (reply));
    case REDIS_REPLY_KIND_ERROR:
    default:
      s = redis_reply_get_string (reply, &len);
      return g_strdup_printf ("error reply \"%.*s\"", (int) len, s);
    }
}

/* Takes @reply and @error (either may be set). Fails the test unless the
 * call got exactly @expected (an outcome() text). */
static void
assert_outcome (guint        iteration,
                const char  *what,
                RedisReply  *reply,
                GError      *error,
                const char  *expected)
{
  g_autofree char *got = outcome (reply, error);

  if (g_strcmp0 (got, expected) != 0)
    g_test_message ("iteration %u, %s: got %s, expected %s", iteration, what, got, expected);
  g_assert_cmpstr (got, ==, expected);
  g_clear_pointer (&reply, redis_reply_unref);
  g_clear_error (&error);
}

static char *
bulk_wire (const char *value)
{
  return g_strdup_printf ("$%zu\r\n%s\r\n", strlen (value), value);
}

static char *
bulk_outcome (const char *value)
{
  return g_strdup_printf ("bulk \"%s\"", value);
}

/* ---- the fake server ------------------------------------------------------ */

static FakeServer *
fake_new (void)
{
  FakeServer *fake = fake_server_new ();

  /* The handshake (and every reconnection's) takes nothing from the
   * script; a command the test did not script gets an error reply. */
  fake_server_set_reply_for_command (fake, "CLIENT", ":1\r\n", -1);
  fake_server_set_answer_all (fake, "-ERR fake server: unscripted command\r\n", -1);
  return fake;
}

/* Waits, without iterating any main context, until the fake server has
 * written @n stray ("later") replies and the client's kernel acknowledged
 * them: they are in the client's socket buffer, and whoever serves the
 * connection in the main context has not been given a chance to look. */
static void
wait_stray_arrived (FakeServer *fake,
                    guint       n)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) test_scale_ms (TIMEOUT_MS) * G_TIME_SPAN_MILLISECOND;

  while (fake_server_get_n_later_sent (fake) < n)
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_test_message ("the fake server did not send stray reply %u in %u ms", n, TIMEOUT_MS);
          g_assert_not_reached ();
        }
      g_usleep (100);
    }
  g_assert_cmpuint (fake_server_get_n_later_sent (fake), ==, n);
}

/* The commands the fake server received, without the handshakes. */
static GPtrArray *
received_commands (FakeServer *fake)
{
  g_auto(GStrv) all = fake_server_get_commands (fake);
  GPtrArray *ret = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; all[i] != NULL; i++)
    if (!g_str_has_prefix (all[i], "CLIENT "))
      g_ptr_array_add (ret, g_strdup (all[i]));
  return ret;
}

/* @expected: the calls written, in order, each received exactly once and
 * in that order; those starting with '?' at most once, at any point (the
 * fake server reads them late, or never: they were written to a connection
 * whose thread was waiting to send a stray, and which the client then
 * closed, with the stray unread, that is with a reset). A call that was
 * not sent is not in @expected, and must not have been received. */
static void
assert_received (FakeServer *fake,
                 GPtrArray  *expected)
{
  g_autoptr(GPtrArray) got = received_commands (fake);
  g_autoptr(GPtrArray) required = g_ptr_array_new ();
  g_autoptr(GPtrArray) received = g_ptr_array_new ();
  g_autoptr(GHashTable) optional = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint e = 0; e < expected->len; e++)
    {
      const char *want = g_ptr_array_index (expected, e);

      if (want[0] == '?')
        g_hash_table_insert (optional, (gpointer) (want + 1), GUINT_TO_POINTER (0));
      else
        g_ptr_array_add (required, (gpointer) want);
    }

  for (guint g = 0; g < got->len; g++)
    {
      const char *cmd = g_ptr_array_index (got, g);
      gpointer n;

      if (g_hash_table_lookup_extended (optional, cmd, NULL, &n))
        {
          if (GPOINTER_TO_UINT (n) > 0)
            g_test_message ("the server received %s twice", cmd);
          g_assert_cmpuint (GPOINTER_TO_UINT (n), ==, 0);
          g_hash_table_insert (optional, (gpointer) cmd, GUINT_TO_POINTER (1));
        }
      else
        g_ptr_array_add (received, (gpointer) cmd);
    }

  for (guint i = 0; i < MIN (required->len, received->len); i++)
    {
      if (!g_str_equal (g_ptr_array_index (required, i), g_ptr_array_index (received, i)))
        g_test_message ("command %u: the server received %s, expected %s", i,
                        (char *) g_ptr_array_index (received, i),
                        (char *) g_ptr_array_index (required, i));
      g_assert_cmpstr (g_ptr_array_index (received, i), ==, g_ptr_array_index (required, i));
    }
  g_assert_cmpuint (received->len, ==, required->len);
}

/* ---- the scenarios -------------------------------------------------------- */

typedef enum
{
  STRAY_SAME_SEGMENT = 1,
  STRAY_WHILE_IDLE,
  STRAY_BEFORE_WRITE,
  STRAY_AFTER_WRITE,
} StrayCase;

static const char * const case_names[] = {
  NULL, "same segment", "while idle", "before the next write", "after the next write",
};

/* How the next call ended, over all iterations. */
typedef struct
{
  guint       own;
  guint       closed_not_sent;
  guint       connection_lost;
  guint       protocol;
  guint       aimed;      /* pool: next call aimed at the connection with the stray */
  GHashTable *messages;   /* error message, digits as '#' → count */
} NextOutcomes;

static void
next_outcomes_init (NextOutcomes *o)
{
  memset (o, 0, sizeof *o);
  o->messages = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static void
next_outcomes_add_message (NextOutcomes *o,
                           const char   *message)
{
  char *key = g_strdup (message);

  for (char *p = key; *p != '\0'; p++)
    if (g_ascii_isdigit (*p))
      *p = '#';
  g_hash_table_insert (o->messages, key,
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (o->messages, key)) + 1));
}

/* Case 4's variants: INCR answered by the stray alone, by the stray and
 * then its own reply, or the stray sent 5 ms after GET's reply while DECR
 * goes out at once. */
typedef enum
{
  AFTER_WRITE_STRAY_ONLY,
  AFTER_WRITE_STRAY_THEN_REPLY,
  AFTER_WRITE_RACING,
} AfterWriteVariant;

typedef struct
{
  StrayCase          scase;
  guint              i;
  gboolean           first_async;
  gboolean           next_async;
  gboolean           mid_call;     /* pool: one call between, see iteration_next_call() */
  AfterWriteVariant  variant;

  char              *key;          /* GET key of the call the stray follows */
  char              *value;
  char              *stray;        /* "+EXTRA-<i>\r\n" */
  char              *next_key;     /* the next call: GET next_key, or INCR/DECR counter */
  char              *next_value;
  char              *counter;
  gint64             counter_value;
} Iteration;

static void
iteration_init (Iteration *it,
                StrayCase  scase,
                guint      i)
{
  memset (it, 0, sizeof *it);
  it->scase = scase;
  it->i = i;
  it->first_async = (i & 1) != 0;
  it->next_async = (i & 2) != 0;
  it->mid_call = (i & 4) != 0;
  it->variant = (AfterWriteVariant) (i % 3);
  it->key = g_strdup_printf ("k:%u", i);
  it->value = g_strdup_printf ("value-%u", i);
  it->stray = g_strdup_printf ("+EXTRA-%u\r\n", i);
  it->next_key = g_strdup_printf ("n:%u", i);
  it->next_value = g_strdup_printf ("next-%u", i);
  it->counter = g_strdup_printf ("c:%u", i);
  it->counter_value = 1000 + i;
}

static void
iteration_clear (Iteration *it)
{
  g_free (it->key);
  g_free (it->value);
  g_free (it->stray);
  g_free (it->next_key);
  g_free (it->next_value);
  g_free (it->counter);
}

/* Scripts the reply of the call the stray follows, and the stray. */
static void
iteration_script_first (Iteration  *it,
                        FakeServer *fake)
{
  g_autofree char *value = bulk_wire (it->value);
  g_autofree char *count = g_strdup_printf (":%" G_GINT64_FORMAT "\r\n", it->counter_value);
  g_autofree char *both = NULL;

  switch (it->scase)
    {
    case STRAY_SAME_SEGMENT:
      both = g_strconcat (value, it->stray, NULL);
      fake_server_add_reply (fake, both, -1);
      break;
    case STRAY_WHILE_IDLE:
    case STRAY_BEFORE_WRITE:
      fake_server_add_reply_then_later (fake, value, -1, it->stray, -1, STRAY_DELAY_MS);
      break;
    case STRAY_AFTER_WRITE:
      if (it->variant == AFTER_WRITE_RACING)
        {
          fake_server_add_reply_then_later (fake, value, -1, it->stray, -1, STRAY_DELAY_MS);
          fake_server_set_reply_for_command (fake, "DECR", count, -1);
        }
      else
        fake_server_add_reply (fake, value, -1);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* Scripts the reply of the next call (on a single connection it may never
 * be asked for); the stray itself in case 4. */
static void
iteration_script_next (Iteration  *it,
                       FakeServer *fake)
{
  g_autofree char *next = bulk_wire (it->next_value);
  g_autofree char *count = g_strdup_printf (":%" G_GINT64_FORMAT "\r\n", it->counter_value);
  g_autofree char *both = NULL;

  switch (it->scase)
    {
    case STRAY_SAME_SEGMENT:
    case STRAY_BEFORE_WRITE:
      fake_server_add_reply (fake, next, -1);
      break;
    case STRAY_AFTER_WRITE:
      if (it->variant == AFTER_WRITE_STRAY_ONLY)
        fake_server_add_reply (fake, it->stray, -1);
      else if (it->variant == AFTER_WRITE_STRAY_THEN_REPLY)
        {
          both = g_strconcat (it->stray, count, NULL);
          fake_server_add_reply (fake, both, -1);
        }
      /* racing: DECR has a fixed reply */
      break;
    case STRAY_WHILE_IDLE:
    default:
      g_assert_not_reached ();
    }
}

/* The call the stray follows: it gets its own reply. */
static void
iteration_first_call (Iteration   *it,
                      RedisClient *client,
                      GPtrArray   *sent)
{
  g_autofree char *expected = bulk_outcome (it->value);
  GError *error = NULL;
  RedisReply *r;

  r = CALL (client, it->first_async, &error, "GET", it->key);
  assert_outcome (it->i, "the call with a stray reply behind its own", r, error, expected);
  g_ptr_array_add (sent, g_strdup_printf ("GET %s", it->key));
}

/* Slots of @pool in state "ready". */
static guint
pool_n_ready (RedisPool *pool)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  g_autoptr(GVariant) conns = g_variant_lookup_value (info, "connections", G_VARIANT_TYPE ("aa{sv}"));
  guint n = 0;

  for (gsize i = 0; i < g_variant_n_children (conns); i++)
    {
      g_autoptr(GVariant) conn = g_variant_get_child_value (conns, i);
      const char *state = NULL;

      if (g_variant_lookup (conn, "state", "&s", &state) && g_str_equal (state, "ready"))
        n++;
    }
  return n;
}

/* The next call, if the case has one. It never gets the stray. Counts how
 * it ended in @outcomes; @pool: whether @client is a pool. */
static void
iteration_next_call (Iteration    *it,
                     RedisClient  *client,
                     FakeServer   *fake,
                     gboolean      pool,
                     GPtrArray    *sent,
                     NextOutcomes *outcomes)
{
  g_autofree char *got = NULL;
  g_autofree char *own = NULL;
  g_autofree char *command = NULL;
  GError *error = NULL;
  RedisReply *r;
  gboolean incr = it->scase == STRAY_AFTER_WRITE;
  gboolean racing = incr && it->variant == AFTER_WRITE_RACING;

  if (it->scase == STRAY_WHILE_IDLE)
    return;

  if (it->scase == STRAY_BEFORE_WRITE)
    wait_stray_arrived (fake, pool ? it->i + 1 : 1);

  /* A pool deals calls round robin: the next call would always go to the
   * other connection, not to the one with the stray. One sync call in
   * between (sync: the main context, which may serve the connection with
   * the stray, stays still) sends the next call to the connection with the
   * stray, unless the pool already knows it is lost. */
  if (pool && it->mid_call && (!incr || racing))
    {
      g_autofree char *key = g_strdup_printf ("mid:%u", it->i);
      g_autofree char *value = g_strdup_printf ("mid-%u", it->i);
      g_autofree char *wire = bulk_wire (value);
      g_autofree char *expected = bulk_outcome (value);

      fake_server_add_reply (fake, wire, -1);
      r = CALL (client, FALSE, &error, "GET", key);
      assert_outcome (it->i, "a call between", r, error, expected);
      error = NULL;
      r = NULL;
      g_ptr_array_add (sent, g_strdup_printf ("GET %s", key));

      /* For the record: did the pool still take that connection for
       * ready (then the next call goes to it, and must be moved), or had
       * it found the stray already? */
      if (pool_n_ready (REDIS_POOL (client)) == 2)
        outcomes->aimed++;
    }

  iteration_script_next (it, fake);
  if (incr)
    {
      const char *name = racing ? "DECR" : "INCR";

      r = CALL (client, it->next_async, &error, name, it->counter);
      own = g_strdup_printf ("integer %" G_GINT64_FORMAT, it->counter_value);
      command = g_strdup_printf ("%s %s", name, it->counter);
    }
  else
    {
      r = CALL (client, it->next_async, &error, "GET", it->next_key);
      own = bulk_outcome (it->next_value);
      command = g_strdup_printf ("GET %s", it->next_key);
    }
  got = outcome (r, error);
  if (error != NULL)
    next_outcomes_add_message (outcomes, error->message);

  if (g_strcmp0 (got, own) == 0)
    {
      outcomes->own++;
      g_ptr_array_add (sent, g_steal_pointer (&command));
    }
  else if (incr && g_error_matches (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL))
    {
      /* INCR took the stray for its reply: a kind it never returns. The
       * deterministic variants always end so on a single connection and on
       * a pool; the racing one when DECR was written before the stray
       * came (the fake server, still waiting, may never read it). */
      outcomes->protocol++;
      if (racing)
        g_ptr_array_add (sent, g_strconcat ("?", command, NULL));
      else
        g_ptr_array_add (sent, g_steal_pointer (&command));
    }
  else if (!pool && g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CLOSED))
    {
      /* Found out of step before it was written: never sent. */
      if (strstr (error->message, "was not sent") == NULL)
        g_test_message ("iteration %u: %s", it->i, got);
      g_assert_nonnull (strstr (error->message, "was not sent"));
      outcomes->closed_not_sent++;
    }
  else if (!pool && g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST))
    {
      /* Written, and the connection went down before its reply. */
      outcomes->connection_lost++;
      g_ptr_array_add (sent, g_strconcat ("?", command, NULL));
    }
  else
    {
      g_test_message ("%s, iteration %u (%s, %s then %s): the next call got %s, expected %s",
                      case_names[it->scase], it->i, pool ? "pool" : "connection",
                      it->first_async ? "async" : "sync", it->next_async ? "async" : "sync",
                      got, own);
      g_assert_cmpstr (got, ==, own);
    }

  /* The deterministic variants of case 4 leave no choice. */
  if (incr && !racing)
    g_assert_true (g_error_matches (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL));

  g_clear_pointer (&r, redis_reply_unref);
  g_clear_error (&error);
}

static void
print_outcomes (StrayCase     scase,
                const char   *client,
                NextOutcomes *o)
{
  GHashTableIter iter;
  gpointer key, value;

  if (scase != STRAY_WHILE_IDLE)
    g_test_message ("%s, %s: next call got its own reply %u times, CLOSED (not sent) %u, "
                    "CONNECTION_LOST %u, PROTOCOL (took the stray for its reply) %u",
                    case_names[scase], client, o->own, o->closed_not_sent,
                    o->connection_lost, o->protocol);
  if (o->aimed > 0)
    g_test_message ("%s, %s: next call aimed at the connection with the stray %u times",
                    case_names[scase], client, o->aimed);
  g_hash_table_iter_init (&iter, o->messages);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_test_message ("  %u x %s", GPOINTER_TO_UINT (value), (const char *) key);
  g_hash_table_unref (o->messages);
}

/* ---- a single connection -------------------------------------------------- */

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

static RedisConnection *
open_connection (FakeServer *fake)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) fake_server_get_port (fake),
                         "command-timeout", test_scale_ms (TIMEOUT_MS),
                         "connect-timeout", test_scale_ms (TIMEOUT_MS),
                         "health-check-interval", 0u,
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_READY);
  return conn;
}

static void
run_connection (StrayCase scase)
{
  guint n = n_iterations ();
  NextOutcomes outcomes;

  next_outcomes_init (&outcomes);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(FakeServer) fake = fake_new ();
      g_autoptr(GPtrArray) sent = g_ptr_array_new_with_free_func (g_free);
      ClosedRecord rec = { 0, NULL };
      RedisConnection *conn;
      GError *error = NULL;
      RedisReply *r;
      Iteration it;

      iteration_init (&it, scase, i);
      conn = open_connection (fake);
      g_signal_connect (conn, "closed", G_CALLBACK (closed_cb), &rec);
      iteration_script_first (&it, fake);

      iteration_first_call (&it, REDIS_CLIENT (conn), sent);
      iteration_next_call (&it, REDIS_CLIENT (conn), fake, FALSE, sent, &outcomes);

      /* The stray closed the connection, once, with PROTOCOL. */
      WAIT_UNTIL (rec.n > 0, TIMEOUT_MS);
      test_drain_main_context ();
      g_assert_cmpuint (rec.n, ==, 1);
      if (!g_error_matches (rec.error, REDIS_ERROR, REDIS_ERROR_PROTOCOL))
        g_test_message ("%s, iteration %u: closed with %s", case_names[scase], i,
                        rec.error != NULL ? rec.error->message : "no error");
      g_assert_error (rec.error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
      if (i == 0)
        g_test_message ("%s, connection: closed with \"%s\"", case_names[scase], rec.error->message);
      g_assert_cmpint (redis_connection_get_state (conn), ==, REDIS_CONNECTION_STATE_CLOSED);

      /* Later calls fail cleanly, and are not sent. */
      r = CALL (conn, (i & 1) == 0, &error, "GET", "after-close");
      g_assert_null (r);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
      g_clear_error (&error);

      /* The server received the calls that were sent, once each. */
      assert_received (fake, sent);

      g_clear_error (&rec.error);
      close_and_finalize (conn);
      iteration_clear (&it);
    }

  print_outcomes (scase, "connection", &outcomes);
  test_drain_main_context ();
  WAIT_UNTIL (redis_reply_get_live_count () == 0, TIMEOUT_MS);
}

/* ---- a pool of two -------------------------------------------------------- */

typedef struct
{
  guint      n_lost;
  guint      n_replaced;
  GPtrArray *lost_errors;   /* GError* */
} PoolSignals;

static void
on_lost (RedisPool    *pool,
         guint         index,
         const GError *error,
         gpointer      user_data)
{
  PoolSignals *sig = user_data;

  sig->n_lost++;
  g_ptr_array_add (sig->lost_errors, g_error_copy (error));
}

static void
on_replaced (RedisPool *pool,
             guint      index,
             gpointer   user_data)
{
  PoolSignals *sig = user_data;

  sig->n_replaced++;
}

/* Exactly @n connections were lost so far, each with PROTOCOL, and all of
 * them were replaced: both connections are up. */
static void
wait_pool_settled (RedisPool   *pool,
                   PoolSignals *sig,
                   guint        n,
                   guint        iteration)
{
  WAIT_UNTIL (sig->n_lost >= n, TIMEOUT_MS);
  WAIT_UNTIL (sig->n_replaced >= n && redis_pool_get_active_connections (pool) == 2, TIMEOUT_MS);
  test_drain_main_context ();
  if (sig->n_lost != n)
    g_test_message ("iteration %u: %u connections lost, expected %u", iteration, sig->n_lost, n);
  g_assert_cmpuint (sig->n_lost, ==, n);
  g_assert_cmpuint (sig->n_replaced, ==, n);
  for (guint j = 0; j < sig->lost_errors->len; j++)
    {
      const GError *e = g_ptr_array_index (sig->lost_errors, j);

      if (!g_error_matches (e, REDIS_ERROR, REDIS_ERROR_PROTOCOL))
        g_test_message ("iteration %u: connection lost with %s", iteration, e->message);
      g_assert_error ((GError *) e, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
    }
}

/* After the stray: calls one at a time, sync and async, so that with two
 * connections both the surviving one and the new one answer. Each gets its
 * own reply. */
static void
pool_later_calls (RedisPool  *pool,
                  FakeServer *fake,
                  guint       i,
                  GPtrArray  *sent)
{
  for (guint j = 0; j < 4; j++)
    {
      g_autofree char *key = g_strdup_printf ("later:%u:%u", i, j);
      g_autofree char *value = g_strdup_printf ("later-%u-%u", i, j);
      g_autofree char *wire = bulk_wire (value);
      g_autofree char *expected = bulk_outcome (value);
      GError *error = NULL;
      RedisReply *r;

      fake_server_add_reply (fake, wire, -1);
      r = CALL (pool, (j & 1) != (i & 1), &error, "GET", key);
      assert_outcome (i, "a later call", r, error, expected);
      g_ptr_array_add (sent, g_strdup_printf ("GET %s", key));
    }

  {
    g_autofree char *key = g_strdup_printf ("later-counter:%u", i);
    g_autofree char *wire = g_strdup_printf (":%u\r\n", 5000 + i);
    g_autofree char *expected = g_strdup_printf ("integer %u", 5000 + i);
    GError *error = NULL;
    RedisReply *r;

    fake_server_add_reply (fake, wire, -1);
    r = CALL (pool, (i & 1) == 0, &error, "INCR", key);
    assert_outcome (i, "a later INCR", r, error, expected);
    g_ptr_array_add (sent, g_strdup_printf ("INCR %s", key));
  }
}

static void
run_pool (StrayCase scase)
{
  g_autoptr(FakeServer) fake = fake_new ();
  g_autoptr(GPtrArray) sent = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  PoolSignals sig = { 0, 0, g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free) };
  NextOutcomes outcomes;
  guint n = n_iterations ();
  RedisPool *pool;

  next_outcomes_init (&outcomes);

  pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                         "port", (guint) fake_server_get_port (fake),
                         "pool-size", 2u,
                         "health-check-interval", 0u,
                         "command-timeout", test_scale_ms (TIMEOUT_MS),
                         "connect-timeout", test_scale_ms (TIMEOUT_MS),
                         "backoff-initial", 10u,
                         "backoff-max", 100u,
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  g_signal_connect (pool, "connection-lost", G_CALLBACK (on_lost), &sig);
  g_signal_connect (pool, "connection-replaced", G_CALLBACK (on_replaced), &sig);

  for (guint i = 0; i < n; i++)
    {
      Iteration it;

      /* Both connections up, each loss so far replaced. */
      wait_pool_settled (pool, &sig, i, i);

      iteration_init (&it, scase, i);
      iteration_script_first (&it, fake);
      iteration_first_call (&it, REDIS_CLIENT (pool), sent);
      iteration_next_call (&it, REDIS_CLIENT (pool), fake, TRUE, sent, &outcomes);

      /* The stray cost exactly one connection, replaced since. */
      wait_pool_settled (pool, &sig, i + 1, i);
      if (i == 0)
        g_test_message ("%s, pool: connection lost with \"%s\"", case_names[scase],
                        ((GError *) g_ptr_array_index (sig.lost_errors, 0))->message);

      pool_later_calls (pool, fake, i, sent);
      g_assert_cmpuint (fake_server_get_n_pending (fake), ==, 0);
      iteration_clear (&it);
    }

  /* Every call reached the server once, in order; nothing was left over. */
  assert_received (fake, sent);
  g_assert_cmpuint (fake_server_get_n_pending (fake), ==, 0);
  g_assert_cmpuint (sig.n_lost, ==, n);
  print_outcomes (scase, "pool", &outcomes);

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  g_signal_handlers_disconnect_by_data (pool, &sig);
  unref_and_wait_finalized (pool);
  g_ptr_array_unref (sig.lost_errors);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, TIMEOUT_MS);
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_connection_same_segment (void)
{
  run_connection (STRAY_SAME_SEGMENT);
}

static void
test_connection_while_idle (void)
{
  run_connection (STRAY_WHILE_IDLE);
}

static void
test_connection_before_write (void)
{
  run_connection (STRAY_BEFORE_WRITE);
}

static void
test_connection_after_write (void)
{
  run_connection (STRAY_AFTER_WRITE);
}

static void
test_pool_same_segment (void)
{
  run_pool (STRAY_SAME_SEGMENT);
}

static void
test_pool_while_idle (void)
{
  run_pool (STRAY_WHILE_IDLE);
}

static void
test_pool_before_write (void)
{
  run_pool (STRAY_BEFORE_WRITE);
}

static void
test_pool_after_write (void)
{
  run_pool (STRAY_AFTER_WRITE);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/stray/connection/same-segment", test_connection_same_segment);
  g_test_add_func ("/stray/connection/while-idle", test_connection_while_idle);
  g_test_add_func ("/stray/connection/before-write", test_connection_before_write);
  g_test_add_func ("/stray/connection/after-write", test_connection_after_write);
  g_test_add_func ("/stray/pool/same-segment", test_pool_same_segment);
  g_test_add_func ("/stray/pool/while-idle", test_pool_while_idle);
  g_test_add_func ("/stray/pool/before-write", test_pool_before_write);
  g_test_add_func ("/stray/pool/after-write", test_pool_after_write);

  return g_test_run ();
}
