/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Credential rotation (issue 13): redis_pool_set_credentials() and
 * redis_connection_set_credentials() against a real redis-server whose ACL
 * users and passwords change under the client (ACL SETUSER / DELUSER).
 *
 * What makes these cases fail without the feature:
 *  - ACL DELUSER disconnects every client authenticated as the deleted
 *    user: a connection that was not re-authenticated in place dies, and
 *    the calls written on it fail (the load counts them);
 *  - once the old password is removed, a reconnect with it fails AUTH:
 *    the pool never comes back up;
 *  - every message, log line, get_info() and the URI are searched for
 *    the secrets;
 *  - a subscriber keeps its session across a rotation (a subscribed
 *    connection cannot AUTH), but once its connection is killed
 *    (CLIENT KILL TYPE pubsub) only the new password lets it back in:
 *    without the rotation reaching it, `resubscribed` never comes and no
 *    message flows again. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

#define ARGV(...) ((const char * const []) { __VA_ARGS__, NULL })
#define POOL_SIZE 3

static RedisTestServer *server;

/* Every secret a case uses: none may appear in any message. */
static const char * const secrets[] = {
  "S3cret-Alpha-71f0", "S3cret-Beta-a2c9", "S3cret-Beta2-55d1", "S3cret-Gamma-0be4",
  "S3cret-Delta-9e37", "S3cret-Wrong-c41a", "S3cret-Tok",
};

/* Everything logged while the tests run (the writer below). */
static GMutex log_lock;
static GString *log_text;

static GLogWriterOutput
capture_writer (GLogLevelFlags   level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  g_mutex_lock (&log_lock);
  for (gsize i = 0; i < n_fields; i++)
    if (fields[i].length < 0)
      g_string_append_printf (log_text, "%s=%s\n", fields[i].key, (const char *) fields[i].value);
  g_mutex_unlock (&log_lock);
  /* Debug output (G_MESSAGES_DEBUG=all, for the capture) would go to
   * stdout, in the way of TAP. */
  if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static GLogFunc previous_handler;

/* The unstructured path (g_debug(), g_warning() of the library). */
static void
capture_handler (const char     *domain,
                 GLogLevelFlags  level,
                 const char     *message,
                 gpointer        user_data)
{
  g_mutex_lock (&log_lock);
  g_string_append_printf (log_text, "%s: %s\n", domain != NULL ? domain : "", message);
  g_mutex_unlock (&log_lock);
  if (!(level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)))
    previous_handler (domain, level, message, user_data);
}

static void
assert_no_secret (const char *text,
                  const char *what)
{
  if (text == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (secrets); i++)
    if (strstr (text, secrets[i]) != NULL)
      g_error ("a secret appears in %s: %s", what, text);
}

static char *
cli (const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  char *out = redis_test_server_cli (server, argv, &error);

  g_assert_no_error (error);
  return out;
}

static void
acl_user (const char *user,
          const char *rule1,
          const char *rule2)
{
  g_autofree char *out = cli (ARGV ("ACL", "SETUSER", user, "on", "~*", "&*", "+@all",
                                    rule1, rule2 != NULL ? rule2 : "on"));

  g_assert_cmpstr (g_strstrip (out), ==, "OK");
}

/* How many of the server's clients are authenticated as @user. */
static guint
clients_of (const char *user)
{
  g_autofree char *out = cli (ARGV ("CLIENT", "LIST"));
  g_autofree char *needle = g_strdup_printf (" user=%s ", user);
  guint n = 0;

  for (const char *p = out; (p = strstr (p, needle)) != NULL; p++)
    n++;
  return n;
}

static void
kill_clients_of (const char *user)
{
  g_autofree char *out = cli (ARGV ("CLIENT", "KILL", "USER", user));
  (void) out;
}

static RedisPool *
pool_new (const char *user,
          const char *password)
{
  g_autoptr(GError) error = NULL;
  RedisPool *pool = g_initable_new (REDIS_TYPE_POOL, NULL, &error,
                                    "port", (guint) redis_test_server_get_port (server),
                                    "pool-size", POOL_SIZE,
                                    "username", user,
                                    "password", password,
                                    "backoff-initial", 20u,
                                    "backoff-max", 200u,
                                    "connect-timeout", test_scale_ms (2000),
                                    "command-timeout", test_scale_ms (5000),
                                    NULL);

  g_assert_no_error (error);
  return pool;
}

/* Closes @pool, waits for its connections to go, and drops it. */
static void
pool_close (RedisPool *pool)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  unref_and_wait_finalized (pool);
}

static gint64
slot_client_id (RedisPool *pool,
                guint      index)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  g_autoptr(GVariant) conns = g_variant_lookup_value (info, "connections", G_VARIANT_TYPE ("aa{sv}"));
  g_autoptr(GVariant) conn = g_variant_get_child_value (conns, index);
  gint64 id = 0;

  g_assert_true (g_variant_lookup (conn, "client-id", "x", &id));
  return id;
}

static guint64
pool_reconnects (RedisPool *pool)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  guint64 n = 0;

  g_assert_true (g_variant_lookup (info, "reconnects", "t", &n));
  return n;
}

static void
assert_pool_info_clean (RedisPool *pool)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  g_autofree char *text = g_variant_print (info, TRUE);
  g_autofree char *uri = NULL;

  assert_no_secret (text, "get_info()");
  g_object_get (pool, "uri", &uri, NULL);
  assert_no_secret (uri, "the uri property");
}

static char *
command_string (RedisClient        *client,
                const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_sync (client, argv, NULL, &error);

  g_assert_no_error (error);
  return g_strdup (redis_reply_get_string (reply, NULL));
}

/* ---- a steady load of async calls ------------------------------------- */

typedef struct
{
  RedisClient *client;
  gboolean     stop;
  guint        in_flight;
  guint        ok;
  guint        failed;
  GError      *first_error;
} Load;

static void load_issue (Load *load);

static void
load_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  Load *load = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  load->in_flight--;
  if (reply == NULL)
    {
      assert_no_secret (error->message, "an error message");
      load->failed++;
      if (load->first_error == NULL)
        load->first_error = g_steal_pointer (&error);
    }
  else
    load->ok++;
  if (!load->stop)
    load_issue (load);
}

static void
load_issue (Load *load)
{
  load->in_flight++;
  redis_client_command_async (load->client, ARGV ("INCR", "cred:counter"), NULL,
                              load_done_cb, load);
}

static void
load_start (Load        *load,
            RedisClient *client,
            guint        n)
{
  memset (load, 0, sizeof *load);
  load->client = client;
  for (guint i = 0; i < n; i++)
    load_issue (load);
}

static void
load_stop (Load *load)
{
  load->stop = TRUE;
  WAIT_UNTIL (load->in_flight == 0, 10000);
  if (load->first_error != NULL)
    g_error ("%u of %u calls failed, the first: %s", load->failed,
             load->failed + load->ok, load->first_error->message);
  g_clear_error (&load->first_error);
}

/* Lets the load run for about @ms. */
static void
run_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, test_set_flag_cb, &done);
  WAIT_UNTIL (done, ms + 10000);
}

/* ---- cases --------------------------------------------------------------- */

/* Rotation to another user under load, then the old user deleted (which
 * kills its clients on the server); then a rotation of the same user's
 * password with an overlap, the old one removed, and every connection
 * killed: the reconnects authenticate with the new one. */
static void
test_pool_rotate_under_load (void)
{
  RedisPool *pool;
  gint64 ids[POOL_SIZE];
  guint64 reconnects;
  Load load;

  acl_user ("rot_a", ">S3cret-Alpha-71f0", NULL);
  pool = pool_new ("rot_a", "S3cret-Alpha-71f0");
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
  for (guint i = 0; i < POOL_SIZE; i++)
    ids[i] = slot_client_id (pool, i);
  reconnects = pool_reconnects (pool);
  g_assert_cmpuint (clients_of ("rot_a"), ==, POOL_SIZE);

  load_start (&load, REDIS_CLIENT (pool), 32);
  run_for (100);

  /* Both users valid; the pool moves to rot_b in place. */
  acl_user ("rot_b", ">S3cret-Beta-a2c9", NULL);
  {
    gint64 start = g_get_monotonic_time ();

    redis_pool_set_credentials (pool, "rot_b", "S3cret-Beta-a2c9");
    WAIT_UNTIL (clients_of ("rot_a") == 0, 5000);
    /* (An upper bound: each check runs redis-cli.) */
    g_test_message ("every connection re-authenticated within %.1f ms, under load",
                    (g_get_monotonic_time () - start) / 1000.0);
  }
  g_assert_cmpuint (clients_of ("rot_b"), ==, POOL_SIZE);
  run_for (100);

  /* The old user goes: its clients would be disconnected. */
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_a"));
    (void) out;
  }
  run_for (200);
  load_stop (&load);
  g_assert_cmpuint (load.failed, ==, 0);
  g_assert_cmpuint (load.ok, >, 0);
  for (guint i = 0; i < POOL_SIZE; i++)
    g_assert_cmpint (slot_client_id (pool, i), ==, ids[i]);
  g_assert_cmpuint (pool_reconnects (pool), ==, reconnects);
  g_test_message ("rotation under load: %u calls, none failed, no reconnect", load.ok);

  /* Same user, new password: an overlap, then the old one removed. */
  load_start (&load, REDIS_CLIENT (pool), 32);
  acl_user ("rot_b", ">S3cret-Beta2-55d1", NULL);
  redis_pool_set_credentials (pool, "rot_b", "S3cret-Beta2-55d1");
  run_for (100);
  acl_user ("rot_b", "<S3cret-Beta-a2c9", NULL);
  run_for (100);
  load_stop (&load);
  g_assert_cmpuint (load.failed, ==, 0);

  /* Only the new password works now: reconnects must use it. */
  kill_clients_of ("rot_b");
  WAIT_UNTIL (pool_reconnects (pool) == reconnects + POOL_SIZE &&
              redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
  {
    g_autofree char *who = command_string (REDIS_CLIENT (pool), ARGV ("ACL", "WHOAMI"));
    g_assert_cmpstr (who, ==, "rot_b");
  }
  /* A dedicated connection (a lease) opened now uses them too. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(RedisConnection) lease = redis_pool_acquire_sync (pool, NULL, &error);
    g_autofree char *who = NULL;

    g_assert_no_error (error);
    who = command_string (REDIS_CLIENT (lease), ARGV ("ACL", "WHOAMI"));
    g_assert_cmpstr (who, ==, "rot_b");
    redis_pool_release (pool, lease);
  }
  assert_pool_info_clean (pool);
  pool_close (pool);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_b"));
    (void) out;
  }
}

/* A new token every interval (what a token provider does): each one is
 * added on the server, given to the pool, and the one before it removed;
 * every connection is then killed and must come back with the new one. */
static void
test_pool_token_every_interval (void)
{
  RedisPool *pool;
  g_autofree char *previous = g_strdup ("S3cret-Tok-0");
  guint64 reconnects;

  acl_user ("rot_tok", ">S3cret-Tok-0", NULL);
  pool = pool_new ("rot_tok", previous);
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
  reconnects = pool_reconnects (pool);

  for (guint i = 1; i <= 6; i++)
    {
      g_autofree char *token = g_strdup_printf ("S3cret-Tok-%u", i);
      g_autofree char *add = g_strdup_printf (">%s", token);
      g_autofree char *remove = g_strdup_printf ("<%s", previous);
      g_autofree char *pong = NULL;

      run_for (100);
      acl_user ("rot_tok", add, NULL);
      redis_pool_set_credentials (pool, "rot_tok", token);
      acl_user ("rot_tok", remove, NULL);

      kill_clients_of ("rot_tok");
      reconnects += POOL_SIZE;
      WAIT_UNTIL (pool_reconnects (pool) == reconnects &&
                  redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
      pong = command_string (REDIS_CLIENT (pool), ARGV ("PING"));
      g_assert_cmpstr (pong, ==, "PONG");
      g_free (previous);
      previous = g_steal_pointer (&token);
    }
  assert_pool_info_clean (pool);
  pool_close (pool);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_tok"));
    (void) out;
  }
}

/* A PING through @pool: TRUE if it failed with AUTH_FAILED (in *@error).
 * Async, with this thread's main context running: a credentials provider
 * is called there. */
static gboolean
ping_fails_with_auth (RedisPool  *pool,
                      GError    **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(RedisReply) reply = NULL;

  g_clear_error (error);
  redis_client_command_async (REDIS_CLIENT (pool), ARGV ("PING"), NULL, store_result_cb, &result);
  test_wait_for_result (&result, 10000);
  reply = redis_client_command_finish (REDIS_CLIENT (pool), result, error);
  return reply == NULL && g_error_matches (*error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
}

/* Credentials the server refuses: calls fail with AUTH_FAILED (no secret
 * in the message), the slots back off instead of spinning, and the right
 * credentials bring the pool back. */
static void
test_pool_wrong_credentials (void)
{
  RedisPool *pool;
  g_autoptr(GError) error = NULL;
  guint64 before, attempts;

  acl_user ("rot_w", ">S3cret-Gamma-0be4", NULL);
  pool = pool_new ("rot_w", "S3cret-Gamma-0be4");
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);

  redis_pool_set_credentials (pool, "rot_w", "S3cret-Wrong-c41a");
  kill_clients_of ("rot_w");
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == 0, 5000);

  /* Every slot refused by AUTH: a call fails at once, saying so. */
  WAIT_UNTIL (ping_fails_with_auth (pool, &error), 5000);
  assert_no_secret (error->message, "the AUTH_FAILED message");
  g_test_message ("refused: %s", error->message);
  assert_pool_info_clean (pool);

  /* Backoff (20 ms doubling to 200 ms): a few attempts per slot in
   * 600 ms, not a storm. Not scaled: a slower run makes fewer. */
  before = test_server_connections_received (server);
  run_for (600);
  attempts = test_server_connections_received (server) - before - 1;
  g_test_message ("connection attempts in 600 ms with wrong credentials: %" G_GUINT64_FORMAT, attempts);
  g_assert_cmpuint (attempts, >, 0);
  g_assert_cmpuint (attempts, <, POOL_SIZE * 12);

  redis_pool_set_credentials (pool, "rot_w", "S3cret-Gamma-0be4");
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
  {
    g_autofree char *pong = command_string (REDIS_CLIENT (pool), ARGV ("PING"));
    g_assert_cmpstr (pong, ==, "PONG");
  }
  pool_close (pool);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_w"));
    (void) out;
  }
}

/* A RedisConnection: credentials given before it connects are the ones
 * its handshake uses; once connected, it is re-authenticated in place
 * (same client id, survives the deletion of its old user). */
static void
test_connection_rotate (void)
{
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *who = NULL;
  gint64 id;
  Load load;

  acl_user ("rot_c", ">S3cret-Gamma-0be4", NULL);
  acl_user ("rot_d", ">S3cret-Delta-9e37", NULL);

  /* Built with a wrong password, not connected yet. */
  conn = g_object_new (REDIS_TYPE_CONNECTION,
                       "port", (guint) redis_test_server_get_port (server),
                       "username", "rot_c",
                       "password", "S3cret-Wrong-c41a",
                       "connect-timeout", test_scale_ms (2000),
                       "command-timeout", test_scale_ms (5000),
                       NULL);
  redis_connection_set_credentials (conn, "rot_c", "S3cret-Gamma-0be4");
  who = command_string (REDIS_CLIENT (conn), ARGV ("ACL", "WHOAMI"));
  g_assert_cmpstr (who, ==, "rot_c");
  id = redis_connection_get_client_id (conn);

  load_start (&load, REDIS_CLIENT (conn), 16);
  run_for (50);
  redis_connection_set_credentials (conn, "rot_d", "S3cret-Delta-9e37");
  WAIT_UNTIL (clients_of ("rot_c") == 0, 5000);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_c"));
    (void) out;
  }
  run_for (100);
  load_stop (&load);
  g_assert_cmpuint (load.failed, ==, 0);
  g_clear_pointer (&who, g_free);
  who = command_string (REDIS_CLIENT (conn), ARGV ("ACL", "WHOAMI"));
  g_assert_cmpstr (who, ==, "rot_d");
  g_assert_cmpint (redis_connection_get_client_id (conn), ==, id);

  /* A refused AUTH leaves the session as it was. */
  redis_connection_set_credentials (conn, "rot_d", "S3cret-Wrong-c41a");
  g_clear_pointer (&who, g_free);
  who = command_string (REDIS_CLIENT (conn), ARGV ("ACL", "WHOAMI"));
  g_assert_cmpstr (who, ==, "rot_d");
  g_assert_cmpint (redis_connection_get_client_id (conn), ==, id);

  redis_client_close_sync (REDIS_CLIENT (conn), NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_d"));
    (void) out;
  }
}

/* ---- the credentials provider ------------------------------------------ */

typedef struct
{
  char     *user;
  char     *current;       /* the token the "token service" hands out */
  char     *cached;        /* what the provider answers unless stale */
  guint     generation;
  guint     asked;
  guint     stale;
  gboolean  fail;
  gboolean  drop;
} TokenService;

static void
token_service_rotate (TokenService *ts)
{
  g_autofree char *old = g_steal_pointer (&ts->current);
  g_autofree char *add = NULL;

  ts->current = g_strdup_printf ("S3cret-Tok-p%u", ++ts->generation);
  add = g_strdup_printf (">%s", ts->current);
  acl_user (ts->user, add, NULL);
  if (old != NULL)
    {
      g_autofree char *remove = g_strdup_printf ("<%s", old);
      acl_user (ts->user, remove, NULL);
    }
}

typedef struct
{
  TokenService            *ts;
  RedisCredentialsRequest *request;
  gboolean                 fail;      /* decided when asked */
} LateAnswer;

static gboolean
late_answer_cb (gpointer data)
{
  LateAnswer *late = data;
  TokenService *ts = late->ts;

  if (late->fail)
    redis_credentials_request_fail (late->request, "token service down");
  else
    {
      if (ts->cached == NULL || redis_credentials_request_get_stale (late->request))
        {
          g_free (ts->cached);
          ts->cached = g_strdup (ts->current);
        }
      redis_credentials_request_complete (late->request, ts->user, ts->cached);
    }
  g_object_unref (late->request);
  g_free (late);
  return G_SOURCE_REMOVE;
}

/* Answers 5 ms later, from the pool's context: a cached token, refreshed
 * when the request says the last one was refused. */
static void
token_provider (RedisPool               *pool,
                RedisCredentialsRequest *request,
                gpointer                 user_data)
{
  TokenService *ts = user_data;
  LateAnswer *late;

  g_assert_true (REDIS_IS_POOL (pool));
  ts->asked++;
  if (redis_credentials_request_get_stale (request))
    ts->stale++;
  if (ts->drop)
    return;   /* dropped unanswered: it fails */
  late = g_new0 (LateAnswer, 1);
  late->ts = ts;
  late->request = g_object_ref (request);
  late->fail = ts->fail;
  g_timeout_add (5, late_answer_cb, late);
}

static RedisPool *
provider_pool_new (TokenService *ts,
                   guint         backoff_ms)
{
  g_autoptr(GError) error = NULL;
  RedisPool *pool = g_object_new (REDIS_TYPE_POOL,
                                  "port", (guint) redis_test_server_get_port (server),
                                  "pool-size", POOL_SIZE,
                                  "connect-mode", REDIS_POOL_CONNECT_MODE_BACKGROUND,
                                  "backoff-initial", backoff_ms,
                                  "backoff-max", backoff_ms,
                                  "connect-timeout", test_scale_ms (2000),
                                  "command-timeout", test_scale_ms (5000),
                                  NULL);

  /* Set before the pool connects: the first connections ask too. */
  redis_pool_set_credentials_provider (pool, token_provider, ts, NULL);
  g_assert_true (g_initable_init (G_INITABLE (pool), NULL, &error));
  g_assert_no_error (error);
  return pool;
}

/* A token service whose token changes every 100 ms (the old one removed
 * on the server); the provider answers from a cache, so a reconnect after
 * a change is first refused, then the provider is asked again, told that
 * its token is stale, and the pool comes back with the fresh one. */
static void
test_provider_token_every_interval (void)
{
  TokenService ts = { .user = (char *) "rot_p" };
  RedisPool *pool;
  guint64 reconnects;

  token_service_rotate (&ts);
  pool = provider_pool_new (&ts, 100);
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
  g_assert_cmpuint (ts.asked, ==, POOL_SIZE);
  g_assert_cmpuint (ts.stale, ==, 0);
  reconnects = pool_reconnects (pool);

  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *who = NULL;
      guint stale_before = ts.stale;

      run_for (100);
      token_service_rotate (&ts);
      kill_clients_of ("rot_p");
      reconnects += POOL_SIZE;
      WAIT_UNTIL (pool_reconnects (pool) == reconnects &&
                  redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
      who = command_string (REDIS_CLIENT (pool), ARGV ("ACL", "WHOAMI"));
      g_assert_cmpstr (who, ==, "rot_p");
      /* At least the first slot to reconnect was refused the cached
       * token and asked again; the others may get the refreshed one. */
      g_assert_cmpuint (ts.stale, >, stale_before);
    }
  g_test_message ("provider asked %u times, %u of them stale", ts.asked, ts.stale);
  assert_pool_info_clean (pool);
  pool_close (pool);
  g_free (ts.current);
  g_free (ts.cached);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_p"));
    (void) out;
  }
}

/* A provider that fails, then one that drops its requests: calls fail with
 * AUTH_FAILED saying why, the slots back off (no storm of requests), and
 * the pool comes up once the provider answers. */
static void
test_provider_fails (void)
{
  TokenService ts = { .user = (char *) "rot_f", .fail = TRUE };
  g_autoptr(GError) error = NULL;
  RedisPool *pool;
  guint asked;

  token_service_rotate (&ts);
  pool = provider_pool_new (&ts, 20);

  WAIT_UNTIL (ping_fails_with_auth (pool, &error), 5000);
  g_assert_nonnull (strstr (error->message, "token service down"));
  g_test_message ("provider failing: %s", error->message);

  /* Backoff 20 ms (no growth: max 20 ms): a bounded rate of requests. */
  asked = ts.asked;
  run_for (600);
  g_test_message ("requests in 600 ms while failing: %u", ts.asked - asked);
  g_assert_cmpuint (ts.asked - asked, >, 0);
  g_assert_cmpuint (ts.asked - asked, <, POOL_SIZE * (600 / 10 + 1));

  ts.fail = FALSE;
  ts.drop = TRUE;
  WAIT_UNTIL (ping_fails_with_auth (pool, &error) &&
              strstr (error->message, "no answer") != NULL, 5000);

  ts.drop = FALSE;
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
  {
    g_autofree char *pong = command_string (REDIS_CLIENT (pool), ARGV ("PING"));
    g_assert_cmpstr (pong, ==, "PONG");
  }
  assert_pool_info_clean (pool);
  pool_close (pool);
  g_free (ts.current);
  g_free (ts.cached);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_f"));
    (void) out;
  }
}

/* ---- subscribers ---------------------------------------------------------- */

typedef struct
{
  guint messages;
  guint resubscribed;
  guint reconnect_failed;
} SubCounts;

static void
sub_message_cb (RedisSubscriber *sub,
                RedisMessage    *message,
                SubCounts       *counts)
{
  counts->messages++;
}

static void
sub_resubscribed_cb (RedisSubscriber *sub,
                     SubCounts       *counts)
{
  counts->resubscribed++;
}

static void
sub_reconnect_failed_cb (RedisSubscriber *sub,
                         const GError    *error,
                         SubCounts       *counts)
{
  assert_no_secret (error->message, "a reconnect-failed error");
  counts->reconnect_failed++;
}

/* Initializes @sub (async: a provider it asks runs in this thread's
 * context), counts its signals in @counts, subscribes to "cred:chan". */
static void
sub_start (RedisSubscriber *sub,
           SubCounts       *counts)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  memset (counts, 0, sizeof *counts);
  g_signal_connect (sub, "message", G_CALLBACK (sub_message_cb), counts);
  g_signal_connect (sub, "resubscribed", G_CALLBACK (sub_resubscribed_cb), counts);
  g_signal_connect (sub, "reconnect-failed", G_CALLBACK (sub_reconnect_failed_cb), counts);
  g_async_initable_init_async (G_ASYNC_INITABLE (sub), G_PRIORITY_DEFAULT, NULL,
                               store_result_cb, &result);
  test_wait_for_result (&result, 10000);
  g_assert_true (g_async_initable_init_finish (G_ASYNC_INITABLE (sub), result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);
  redis_subscriber_subscribe_async (sub, ARGV ("cred:chan"), NULL, store_result_cb, &result);
  test_wait_for_result (&result, 10000);
  g_assert_true (redis_subscriber_subscribe_finish (sub, result, &error));
  g_assert_no_error (error);
}

/* PUBLISH from redis-cli (the default user) until @counts has one more
 * message: a message flows. */
static void
sub_assert_message_flows (SubCounts *counts)
{
  guint before = counts->messages;
  g_autofree char *out = cli (ARGV ("PUBLISH", "cred:chan", "hello"));

  g_assert_cmpstr (g_strstrip (out), ==, "1");
  WAIT_UNTIL (counts->messages == before + 1, 5000);
}

/* Kills the subscriber's connection; it must come back and resubscribe. */
static void
sub_kill_and_wait_resubscribed (SubCounts *counts)
{
  guint before = counts->resubscribed;
  g_autofree char *out = cli (ARGV ("CLIENT", "KILL", "TYPE", "pubsub"));

  g_assert_cmpstr (g_strstrip (out), ==, "1");
  WAIT_UNTIL (counts->resubscribed == before + 1, 5000);
  sub_assert_message_flows (counts);
}

/* A pool's subscriber follows the pool's rotation: its live session
 * survives it, and after its connection is killed it comes back with the
 * new password (the old one is gone on the server). Then it outlives the
 * pool, and its own redis_subscriber_set_credentials() is used at the next
 * reconnect. */
static void
test_subscriber_follows_pool_rotation (void)
{
  RedisPool *pool;
  g_autoptr(RedisSubscriber) sub = NULL;
  SubCounts counts;

  acl_user ("rot_s", ">S3cret-Alpha-71f0", NULL);
  pool = pool_new ("rot_s", "S3cret-Alpha-71f0");
  sub = redis_pool_create_subscriber (pool);
  sub_start (sub, &counts);
  sub_assert_message_flows (&counts);

  /* Rotation: the new password added, the pool told, the old one removed. */
  acl_user ("rot_s", ">S3cret-Beta-a2c9", NULL);
  redis_pool_set_credentials (pool, "rot_s", "S3cret-Beta-a2c9");
  acl_user ("rot_s", "<S3cret-Alpha-71f0", NULL);
  /* The live session is kept. */
  sub_assert_message_flows (&counts);
  g_assert_cmpuint (counts.resubscribed, ==, 0);

  sub_kill_and_wait_resubscribed (&counts);
  g_assert_cmpuint (counts.reconnect_failed, ==, 0);

  /* The pool goes; the subscriber keeps its last credentials. */
  pool_close (pool);
  sub_kill_and_wait_resubscribed (&counts);

  /* Its own rotation, alone. */
  acl_user ("rot_s", ">S3cret-Beta2-55d1", NULL);
  redis_subscriber_set_credentials (sub, "rot_s", "S3cret-Beta2-55d1");
  acl_user ("rot_s", "<S3cret-Beta-a2c9", NULL);
  sub_assert_message_flows (&counts);
  sub_kill_and_wait_resubscribed (&counts);
  g_assert_cmpuint (counts.reconnect_failed, ==, 0);

  redis_subscriber_close (sub);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_s"));
    (void) out;
  }
}

/* A pool's subscriber asks the pool's provider before each connect: the
 * token changes on the server, the connection is killed; the cached token
 * is refused, the provider is asked again (stale), the subscriber comes
 * back. */
static void
test_subscriber_asks_pool_provider (void)
{
  TokenService ts = { .user = (char *) "rot_sp" };
  RedisPool *pool;
  g_autoptr(RedisSubscriber) sub = NULL;
  SubCounts counts;
  guint asked, stale;

  token_service_rotate (&ts);
  pool = provider_pool_new (&ts, 20);
  WAIT_UNTIL (redis_pool_get_active_connections (pool) == POOL_SIZE, 5000);
  asked = ts.asked;

  sub = redis_pool_create_subscriber (pool);
  sub_start (sub, &counts);
  g_assert_cmpuint (ts.asked, ==, asked + 1);
  sub_assert_message_flows (&counts);

  for (guint i = 0; i < 3; i++)
    {
      asked = ts.asked;
      stale = ts.stale;
      token_service_rotate (&ts);
      sub_kill_and_wait_resubscribed (&counts);
      /* Asked for the reconnect with the cached token, refused, asked
       * again at once with get_stale() TRUE. */
      g_assert_cmpuint (ts.asked, >=, asked + 2);
      g_assert_cmpuint (ts.stale, >, stale);
    }
  g_test_message ("provider asked %u times, %u of them stale", ts.asked, ts.stale);

  redis_subscriber_close (sub);
  pool_close (pool);
  g_free (ts.current);
  g_free (ts.cached);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_sp"));
    (void) out;
  }
}

/* Answers at once with the token service's current token. */
static void
subscriber_token_provider (RedisSubscriber         *sub,
                           RedisCredentialsRequest *request,
                           gpointer                 user_data)
{
  TokenService *ts = user_data;

  g_assert_true (REDIS_IS_SUBSCRIBER (sub));
  ts->asked++;
  redis_credentials_request_complete (request, ts->user, ts->current);
}

/* A standalone subscriber with a provider of its own: asked for its first
 * connect and for each reconnect. */
static void
test_subscriber_own_provider (void)
{
  TokenService ts = { .user = (char *) "rot_so" };
  g_autoptr(RedisSubscriber) sub = NULL;
  SubCounts counts;

  token_service_rotate (&ts);
  sub = g_object_new (REDIS_TYPE_SUBSCRIBER,
                      "port", (guint) redis_test_server_get_port (server),
                      "username", "rot_so",
                      "password", "S3cret-Wrong-c41a",
                      "backoff-initial", 20u,
                      "backoff-max", 200u,
                      NULL);
  redis_subscriber_set_credentials_provider (sub, subscriber_token_provider, &ts, NULL);
  sub_start (sub, &counts);
  g_assert_cmpuint (ts.asked, ==, 1);
  sub_assert_message_flows (&counts);

  token_service_rotate (&ts);
  sub_kill_and_wait_resubscribed (&counts);
  g_assert_cmpuint (ts.asked, ==, 2);
  g_assert_cmpuint (counts.reconnect_failed, ==, 0);

  redis_subscriber_close (sub);
  g_free (ts.current);
  {
    g_autofree char *out = cli (ARGV ("ACL", "DELUSER", "rot_so"));
    (void) out;
  }
}

/* Last: whatever the cases logged holds no secret, nor does the server's
 * log. */
static void
test_no_secret_logged (void)
{
  g_autofree char *server_log = NULL;

  g_mutex_lock (&log_lock);
  g_test_message ("%" G_GSIZE_FORMAT " bytes of log searched", log_text->len);
  g_assert_cmpuint (log_text->len, >, 0);
  assert_no_secret (log_text->str, "the log");
  g_mutex_unlock (&log_lock);
  if (g_file_get_contents (redis_test_server_get_log_file (server), &server_log, NULL, NULL))
    assert_no_secret (server_log, "the server log");
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  /* Every message, debug ones included, goes through the capture. */
  g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);
  log_text = g_string_new (NULL);
  g_log_set_writer_func (capture_writer, NULL, NULL);

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  previous_handler = g_log_set_default_handler (capture_handler, NULL);

  g_assert_true (redis_test_server_available ());
  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/credentials/pool/rotate-under-load", test_pool_rotate_under_load);
  g_test_add_func ("/credentials/pool/token-every-interval", test_pool_token_every_interval);
  g_test_add_func ("/credentials/pool/wrong-credentials", test_pool_wrong_credentials);
  g_test_add_func ("/credentials/connection/rotate", test_connection_rotate);
  g_test_add_func ("/credentials/provider/token-every-interval", test_provider_token_every_interval);
  g_test_add_func ("/credentials/provider/fails", test_provider_fails);
  g_test_add_func ("/credentials/subscriber/follows-pool-rotation", test_subscriber_follows_pool_rotation);
  g_test_add_func ("/credentials/subscriber/asks-pool-provider", test_subscriber_asks_pool_provider);
  g_test_add_func ("/credentials/subscriber/own-provider", test_subscriber_own_provider);
  g_test_add_func ("/credentials/z-last/no-secret-logged", test_no_secret_logged);

  ret = g_test_run ();
  redis_test_server_free (server);
  g_string_free (log_text, TRUE);
  return ret;
}
