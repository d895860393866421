/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Sentinel discovery and failover against a real topology on loopback
 * ports: a primary, a replica and three `redis-server --sentinel`
 * (quorum 2); the fake server stands in for a sentinel that names the
 * wrong server. The TLS topology has the same servers with a TLS port
 * each, replicating and monitored over TLS (tls-replication), and is
 * reached through its TLS ports only (rediss+sentinel://). */

#include <string.h>

#include "fake-server.h"
#include "redis-sentinel-private.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

#define MASTER "mym"
#define SENTINEL_PASSWORD "s3ntinel-secret"

typedef struct
{
  RedisTestServer *primary;
  RedisTestServer *replica;
  RedisTestServer *sentinels[3];
  gboolean         tls;       /* everything is reached on its TLS port */
} Topology;

/* The port of @server that the topology uses: its TLS port in a TLS
 * topology (the plaintext one stays for the test's own redis-cli). */
static guint16
used_port (Topology        *t,
           RedisTestServer *server)
{
  return t->tls ? redis_test_server_get_tls_port (server) : redis_test_server_get_port (server);
}

/* A port nothing listens on (connections are refused). */
static guint16
refused_port (void)
{
  g_autoptr(GSocket) sock = NULL;
  guint16 port;

  sock = silent_listener (&port);
  g_socket_close (sock, NULL);
  return port;
}

static char *
cli (RedisTestServer    *server,
     const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  char *out = redis_test_server_cli (server, argv, &error);

  g_assert_no_error (error);
  return out;
}

static gboolean
sentinels_ready (Topology *t)
{
  for (guint i = 0; i < G_N_ELEMENTS (t->sentinels); i++)
    {
      g_autofree char *replicas = cli (t->sentinels[i],
                                       (const char *[]) { "SENTINEL", "replicas", MASTER, NULL });
      g_autofree char *others = cli (t->sentinels[i],
                                     (const char *[]) { "SENTINEL", "sentinels", MASTER, NULL });
      g_autofree char *port = g_strdup_printf ("%u", used_port (t, t->replica));

      /* The replica is known and up, and the other two sentinels are. */
      g_auto(GStrv) lines = g_strsplit (others, "\n", -1);
      guint n_others = 0;

      if (strstr (replicas, port) == NULL || strstr (replicas, "disconnected") != NULL ||
          strstr (replicas, "s_down") != NULL)
        return FALSE;
      for (guint j = 0; lines[j] != NULL; j++)
        n_others += g_str_equal (lines[j], "name");
      if (n_others < G_N_ELEMENTS (t->sentinels) - 1)
        return FALSE;
    }
  {
    g_autofree char *info = cli (t->replica, (const char *[]) { "INFO", "replication", NULL });

    return strstr (info, "master_link_status:up") != NULL;
  }
}

static Topology *
topology_new_full (gboolean sentinel_password,
                   gboolean tls)
{
  Topology *t = g_new0 (Topology, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *primary_port = NULL;
  RedisTestServerFlags flags = tls ? REDIS_TEST_SERVER_TLS : REDIS_TEST_SERVER_TCP;
  /* Replication and the sentinels' links to the servers over TLS too;
   * the replica then announces its TLS port. */
  const char *tls_replication = tls ? "--tls-replication" : NULL;

  t->tls = tls;
  t->primary = redis_test_server_new (flags, NULL, &error);
  g_assert_no_error (error);
  primary_port = g_strdup_printf ("%u", used_port (t, t->primary));
  t->replica = redis_test_server_new (flags,
                                      (const char *[]) { "--replicaof", "127.0.0.1", primary_port,
                                                         tls_replication, "yes", NULL },
                                      &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (t->sentinels); i++)
    {
      const char *args[] = {
        "--sentinel", "monitor", MASTER, "127.0.0.1", primary_port, "2",
        "--sentinel", "down-after-milliseconds", MASTER, "1000",
        "--sentinel", "failover-timeout", MASTER, "10000",
        sentinel_password ? "--requirepass" : NULL, SENTINEL_PASSWORD,
        NULL
      };
      const char *tls_args[G_N_ELEMENTS (args) + 2] = { "--tls-replication", "yes" };

      memcpy (tls_args + 2, args, sizeof args);
      t->sentinels[i] = redis_test_server_new (REDIS_TEST_SERVER_SENTINEL | flags,
                                               tls ? tls_args : args, &error);
      g_assert_no_error (error);
    }
  if (!sentinel_password)
    WAIT_UNTIL (sentinels_ready (t), 30000);
  return t;
}

static Topology *
topology_new (gboolean sentinel_password)
{
  return topology_new_full (sentinel_password, FALSE);
}

static void
topology_free (Topology *t)
{
  for (guint i = 0; i < G_N_ELEMENTS (t->sentinels); i++)
    redis_test_server_free (t->sentinels[i]);
  redis_test_server_free (t->replica);
  redis_test_server_free (t->primary);
  g_free (t);
}

static char *
sentinel_list (Topology *t,
               guint16   first_port)
{
  GString *list = g_string_new (NULL);

  if (first_port != 0)
    g_string_append_printf (list, "127.0.0.1:%u,", first_port);
  for (guint i = 0; i < G_N_ELEMENTS (t->sentinels); i++)
    g_string_append_printf (list, "%s127.0.0.1:%u", i > 0 ? "," : "",
                            used_port (t, t->sentinels[i]));
  return g_string_free (list, FALSE);
}

static gint64
server_port_of (RedisClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply =
    redis_client_command_sync (client, (const char *[]) { "CONFIG", "GET", "port", NULL },
                               NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (redis_reply_get_n_elements (reply), ==, 2);
  return g_ascii_strtoll (redis_reply_get_text (redis_reply_get_element (reply, 1)), NULL, 10);
}

static Topology *shared;

/* ---- discovery ---------------------------------------------------------- */

static void
test_discovery_pool (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *list = sentinel_list (shared, 0);
  g_autofree char *uri = g_strdup_printf ("redis+sentinel://%s/" MASTER "/3?pool_size=3", list);
  g_autoptr(RedisPool) pool = redis_pool_new_sync (uri, NULL, &error);
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autofree char *expected = NULL;
  const char *primary = NULL, *sentinel = NULL;

  g_assert_no_error (error);
  reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                     (const char *[]) { "SET", "sentinel-key", "v", NULL },
                                     NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (pool)), ==,
                   redis_test_server_get_port (shared->primary));

  /* The key is on the primary, in the database of the URI. */
  {
    g_autofree char *got = cli (shared->primary,
                                (const char *[]) { "-n", "3", "GET", "sentinel-key", NULL });

    g_assert_cmpstr (g_strstrip (got), ==, "v");
  }

  info = redis_pool_get_info (pool);
  g_assert_true (g_variant_lookup (info, "primary", "&s", &primary));
  g_assert_true (g_variant_lookup (info, "sentinel", "&s", &sentinel));
  expected = g_strdup_printf ("127.0.0.1:%u", redis_test_server_get_port (shared->primary));
  g_assert_cmpstr (primary, ==, expected);
  g_assert_true (g_str_has_prefix (sentinel, "127.0.0.1:"));
}

static RedisConnection *
connection_new (const char * const *sentinels,
                RedisServerRole     role,
                const char         *sentinel_password,
                GError            **error)
{
  return g_initable_new (REDIS_TYPE_CONNECTION, NULL, error,
                         "sentinels", sentinels,
                         "master-name", MASTER,
                         "role", role,
                         "sentinel-password", sentinel_password,
                         "connect-timeout", test_scale_ms (3000),
                         NULL);
}

static void
test_discovery_properties (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *list = sentinel_list (shared, 0);
  g_auto(GStrv) sentinels = g_strsplit (list, ",", -1);
  g_autoptr(RedisConnection) primary = NULL;
  g_autoptr(RedisConnection) replica = NULL;
  g_auto(GStrv) read_back = NULL;
  RedisServerRole role;

  primary = connection_new ((const char * const *) sentinels, REDIS_SERVER_ROLE_PRIMARY, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (primary)), ==,
                   redis_test_server_get_port (shared->primary));
  g_object_get (primary, "sentinels", &read_back, "role", &role, NULL);
  g_assert_cmpstrv (read_back, sentinels);
  g_assert_cmpint (role, ==, REDIS_SERVER_ROLE_PRIMARY);

  replica = connection_new ((const char * const *) sentinels, REDIS_SERVER_ROLE_REPLICA, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (replica)), ==,
                   redis_test_server_get_port (shared->replica));

  close_and_finalize (g_steal_pointer (&primary));
  close_and_finalize (g_steal_pointer (&replica));
}

static void
test_first_sentinel_down (void)
{
  g_autoptr(GError) error = NULL;
  guint16 dead = refused_port ();
  g_autofree char *list = sentinel_list (shared, dead);
  g_autofree char *uri = g_strdup_printf ("redis+sentinel://%s/" MASTER "?pool_size=2", list);
  gint64 start = g_get_monotonic_time ();
  g_autoptr(RedisPool) pool = redis_pool_new_sync (uri, NULL, &error);
  g_autoptr(GVariant) info = NULL;
  g_autofree char *dead_address = g_strdup_printf ("127.0.0.1:%u", dead);
  const char *sentinel = NULL;

  g_assert_no_error (error);
  g_test_message ("pool up through the second sentinel in %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (pool)), ==,
                   redis_test_server_get_port (shared->primary));
  info = redis_pool_get_info (pool);
  g_assert_true (g_variant_lookup (info, "sentinel", "&s", &sentinel));
  g_assert_cmpstr (sentinel, !=, dead_address);
}

static void
test_all_sentinels_down (void)
{
  g_autoptr(GError) error = NULL;
  guint16 dead1 = refused_port ();
  guint16 dead2 = refused_port ();
  g_autofree char *uri = g_strdup_printf ("redis+sentinel://:pw-not-shown@127.0.0.1:%u,127.0.0.1:%u/" MASTER
                                          "?sentinel_password=spw-not-shown", dead1, dead2);
  g_autofree char *a1 = g_strdup_printf ("127.0.0.1:%u", dead1);
  g_autofree char *a2 = g_strdup_printf ("127.0.0.1:%u", dead2);
  g_autoptr(RedisConnection) conn = redis_connection_new_sync (uri, NULL, &error);

  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "No sentinel"));
  g_assert_nonnull (strstr (error->message, a1));
  g_assert_nonnull (strstr (error->message, a2));
  g_assert_null (strstr (error->message, "not-shown"));
}

/* A sentinel that names the replica as the primary: ROLE rejects it. */
static void
test_wrong_role_rejected (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autofree char *replica_port = g_strdup_printf ("%u", redis_test_server_get_port (shared->replica));
  g_autofree char *answer = g_strdup_printf ("*2\r\n$9\r\n127.0.0.1\r\n$%u\r\n%s\r\n",
                                             (guint) strlen (replica_port), replica_port);
  g_autofree char *sentinel = g_strdup_printf ("127.0.0.1:%u", fake_server_get_port (fake));
  const char *sentinels[] = { sentinel, NULL };
  g_autoptr(RedisConnection) conn = NULL;
  g_auto(GStrv) commands = NULL;

  fake_server_set_reply_for_command (fake, "CLIENT", ":7\r\n", -1);
  fake_server_set_reply_for_command (fake, "SENTINEL", answer, -1);

  conn = connection_new (sentinels, REDIS_SERVER_ROLE_PRIMARY, NULL, &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "is a replica, not a primary"));
  commands = fake_server_get_commands (fake);
  g_assert_true (g_strv_contains ((const char * const *) commands,
                                  "SENTINEL get-master-addr-by-name " MASTER));

  /* Asked for a replica, the same answer is accepted. */
  g_clear_error (&error);
  fake_server_set_reply_for_command (fake, "SENTINEL",
                                     "*1\r\n*6\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                                     "$4\r\nport\r\n", -1);
  {
    g_autofree char *replicas = g_strdup_printf ("*1\r\n*6\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
                                                 "$4\r\nport\r\n$%u\r\n%s\r\n"
                                                 "$5\r\nflags\r\n$5\r\nslave\r\n",
                                                 (guint) strlen (replica_port), replica_port);

    fake_server_set_reply_for_command (fake, "SENTINEL", replicas, -1);
  }
  conn = connection_new (sentinels, REDIS_SERVER_ROLE_REPLICA, NULL, &error);
  g_assert_no_error (error);
  close_and_finalize (g_steal_pointer (&conn));
}

static void
test_sentinel_password (void)
{
  g_autoptr(GError) error = NULL;
  Topology *t = topology_new (TRUE);
  g_autofree char *list = sentinel_list (t, 0);
  g_auto(GStrv) sentinels = g_strsplit (list, ",", -1);
  g_autoptr(RedisConnection) conn = NULL;
  g_autofree char *uri = NULL;

  /* Without the password every sentinel refuses. */
  conn = connection_new ((const char * const *) sentinels, REDIS_SERVER_ROLE_PRIMARY, NULL, &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "No sentinel"));
  g_clear_error (&error);

  /* A wrong one: refused, and not printed. */
  conn = connection_new ((const char * const *) sentinels, REDIS_SERVER_ROLE_PRIMARY,
                         "wrong-secret-xyz", &error);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED);
  g_assert_null (strstr (error->message, "wrong-secret-xyz"));
  g_clear_error (&error);

  conn = connection_new ((const char * const *) sentinels, REDIS_SERVER_ROLE_PRIMARY,
                         SENTINEL_PASSWORD, &error);
  g_assert_no_error (error);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (conn)), ==,
                   redis_test_server_get_port (t->primary));
  close_and_finalize (g_steal_pointer (&conn));

  /* The same through the URI. */
  uri = g_strdup_printf ("redis+sentinel://%s/" MASTER "?sentinel_password=" SENTINEL_PASSWORD, list);
  conn = redis_connection_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  close_and_finalize (g_steal_pointer (&conn));

  topology_free (t);
}

/* A primary turned read-only behind Sentinel's back (REPLICAOF, no
 * +switch-master): the READONLY answer is delivered, the connection is
 * replaced, and discovery (a fake sentinel, now naming the other server)
 * finds the new primary. */
static char *
master_addr_reply (guint16 port)
{
  g_autofree char *p = g_strdup_printf ("%u", port);

  return g_strdup_printf ("*2\r\n$9\r\n127.0.0.1\r\n$%u\r\n%s\r\n", (guint) strlen (p), p);
}

static void
test_readonly_rediscovers (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(RedisTestServer) a = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_autoptr(RedisTestServer) b = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_autofree char *to_a = master_addr_reply (redis_test_server_get_port (a));
  g_autofree char *to_b = master_addr_reply (redis_test_server_get_port (b));
  g_autofree char *b_port = g_strdup_printf ("%u", redis_test_server_get_port (b));
  g_autofree char *uri = g_strdup_printf ("redis+sentinel://127.0.0.1:%u/" MASTER
                                          "?pool_size=2&backoff_initial=10ms&backoff_max=100ms",
                                          fake_server_get_port (fake));
  g_autoptr(RedisPool) pool = NULL;
  g_autoptr(RedisReply) reply = NULL;
  guint n_readonly = 0;
  gint64 start;

  g_assert_no_error (error);
  fake_server_set_reply_for_command (fake, "CLIENT", ":7\r\n", -1);
  fake_server_set_reply_for_command (fake, "SENTINEL", to_a, -1);
  pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  reply = redis_client_command_sync (REDIS_CLIENT (pool), (const char *[]) { "SET", "k", "a", NULL },
                                     NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STATUS);
  g_clear_pointer (&reply, redis_reply_unref);

  /* A becomes a replica of B; the sentinel now names B. */
  g_free (cli (a, (const char *[]) { "REPLICAOF", "127.0.0.1", b_port, NULL }));
  fake_server_set_reply_for_command (fake, "SENTINEL", to_b, -1);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < 50; i++)
    {
      reply = redis_client_command_sync (REDIS_CLIENT (pool), (const char *[]) { "SET", "k", "b", NULL },
                                         NULL, &error);
      if (reply != NULL && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_STATUS)
        break;
      /* The server's error reply is the call's error. */
      if (error != NULL && g_str_has_prefix (error->message, "READONLY"))
        n_readonly++;
      g_clear_error (&error);
      g_clear_pointer (&reply, redis_reply_unref);
      g_usleep (10 * 1000);
    }
  g_assert_nonnull (reply);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STATUS);
  g_test_message ("READONLY -> write on the new primary: %.1f ms, %u READONLY answers",
                  (g_get_monotonic_time () - start) / 1000.0, n_readonly);
  /* Each of the two connections answers READONLY at most once. */
  g_assert_cmpuint (n_readonly, >=, 1);
  g_assert_cmpuint (n_readonly, <=, 2);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (pool)), ==, redis_test_server_get_port (b));
}

/* ---- URI ---------------------------------------------------------------- */

static void
test_uri (void)
{
  static const char * const bad[] = {
    "redis+sentinel:///" MASTER,
    "redis+sentinel://127.0.0.1:26379/",
    "redis+sentinel://127.0.0.1:26379",
    "redis+sentinel://127.0.0.1:26379/" MASTER "/x",
    "redis+sentinel://127.0.0.1:26379/" MASTER "/1/2",
    "redis+sentinel://127.0.0.1:0/" MASTER,
    "redis+sentinel://127.0.0.1:1,,127.0.0.1:2/" MASTER,
    "redis+sentinel://127.0.0.1:26379/" MASTER "?role=leader",
    "redis+sentinel://127.0.0.1:26379/m%BC",  /* not UTF-8 */
    "redis+sentinel://127.0.0.1:26379/m%00",
  };
  g_autoptr(RedisConnection) conn = NULL;
  g_auto(GStrv) sentinels = NULL;
  g_autofree char *master = NULL;
  guint db;
  RedisServerRole role;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisConnection) c = redis_connection_new_sync (bad[i], NULL, &error);

      g_assert_null (c);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    }

  /* The sentinel password is read by the library, never by GLib. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(RedisConnection) c =
      redis_connection_new_sync ("redis+sentinel://127.0.0.1:1/" MASTER "?sentinel_password=%zz", NULL, &error);

    g_assert_null (c);
    g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "sentinel_password has an invalid percent-encoding"));
  }

  conn = g_object_new (REDIS_TYPE_CONNECTION,
                       "uri", "redis+sentinel://u:p@127.0.0.1:1,[::1]:2,example.com/my%20master/4"
                              "?role=replica&sentinel_username=su",
                       NULL);
  g_object_get (conn, "sentinels", &sentinels, "master-name", &master, "database", &db,
                "role", &role, NULL);
  g_assert_cmpstrv (sentinels, ((const char *[]) { "127.0.0.1:1", "[::1]:2", "example.com", NULL }));
  g_assert_cmpstr (master, ==, "my master");
  g_assert_cmpuint (db, ==, 4);
  g_assert_cmpint (role, ==, REDIS_SERVER_ROLE_REPLICA);

  /* Read back, the URI says the same, and no password. */
  {
    g_autofree char *again = NULL;
    g_autoptr(RedisConnection) copy = NULL;
    g_auto(GStrv) sentinels2 = NULL;
    g_autofree char *master2 = NULL;
    g_autofree char *user2 = NULL;

    g_object_get (conn, "uri", &again, NULL);
    g_test_message ("%s", again);
    g_assert_true (g_str_has_prefix (again, "redis+sentinel://u@"));
    g_assert_null (strstr (again, ":p@"));
    copy = g_object_new (REDIS_TYPE_CONNECTION, "uri", again, NULL);
    g_object_get (copy, "sentinels", &sentinels2, "master-name", &master2, "database", &db,
                  "role", &role, "sentinel-username", &user2, NULL);
    g_assert_cmpstrv (sentinels2, sentinels);
    g_assert_cmpstr (master2, ==, "my master");
    g_assert_cmpuint (db, ==, 4);
    g_assert_cmpint (role, ==, REDIS_SERVER_ROLE_REPLICA);
    g_assert_cmpstr (user2, ==, "su");
  }

  /* The master name is percent-decoded exactly once: "%25bc" is the three
   * characters "%bc" (not the byte 0xBC), and an encoded '/' stays in the
   * name; both survive a print/parse round. */
  {
    g_autoptr(RedisConnection) c =
      g_object_new (REDIS_TYPE_CONNECTION, "uri", "redis+sentinel://127.0.0.1:1/a%40%25bc%2Fd/2", NULL);
    g_autoptr(RedisConnection) copy = NULL;
    g_autofree char *name = NULL;
    g_autofree char *name2 = NULL;
    g_autofree char *again = NULL;

    g_object_get (c, "master-name", &name, "database", &db, "uri", &again, NULL);
    g_assert_cmpstr (name, ==, "a@%bc/d");
    g_assert_cmpuint (db, ==, 2);
    copy = g_object_new (REDIS_TYPE_CONNECTION, "uri", again, NULL);
    g_object_get (copy, "master-name", &name2, NULL);
    g_assert_cmpstr (name2, ==, "a@%bc/d");
  }
}

/* rediss+sentinel:// is the same URI with TLS on; tls_server_name is read
 * and printed back; tls and sentinels set as properties print the TLS
 * scheme. */
static void
test_uri_tls (void)
{
  static const char * const bad[] = {
    "rediss+sentinel:///" MASTER,
    "rediss+sentinel://127.0.0.1:26379",
    "rediss+sentinel://127.0.0.1:26379/" MASTER "?tls_server_name=",
    "rediss+sentinel://127.0.0.1:26379/" MASTER "?tls_server_name=a%20b",
    "rediss+sentinel://127.0.0.1:26379/" MASTER "?tls_server_name=a%2Fb",
  };
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisConnection) copy = NULL;
  g_autoptr(RedisConnection) from_props = NULL;
  g_auto(GStrv) sentinels = NULL;
  g_autofree char *master = NULL;
  g_autofree char *server_name = NULL;
  g_autofree char *ca = NULL;
  g_autofree char *again = NULL;
  g_autofree char *props_uri = NULL;
  gboolean tls = FALSE;
  guint db;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisConnection) c = redis_connection_new_sync (bad[i], NULL, &error);

      g_assert_null (c);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
    }

  conn = g_object_new (REDIS_TYPE_CONNECTION,
                       "uri", "REDISS+Sentinel://u:p@127.0.0.1:1,[::1]:2/" MASTER "/3"
                              "?tls_ca_file=/etc/ca.pem&tls_server_name=redis.example.com",
                       NULL);
  g_object_get (conn, "sentinels", &sentinels, "master-name", &master, "database", &db,
                "tls", &tls, "tls-server-name", &server_name, "tls-ca-file", &ca, NULL);
  g_assert_cmpstrv (sentinels, ((const char *[]) { "127.0.0.1:1", "[::1]:2", NULL }));
  g_assert_cmpstr (master, ==, MASTER);
  g_assert_cmpuint (db, ==, 3);
  g_assert_true (tls);
  g_assert_cmpstr (server_name, ==, "redis.example.com");
  g_assert_cmpstr (ca, ==, "/etc/ca.pem");

  g_object_get (conn, "uri", &again, NULL);
  g_test_message ("%s", again);
  g_assert_true (g_str_has_prefix (again, "rediss+sentinel://u@127.0.0.1:1,[::1]:2/" MASTER "/3?"));
  g_assert_nonnull (strstr (again, "&tls_server_name=redis.example.com"));
  g_assert_null (strstr (again, ":p@"));
  copy = g_object_new (REDIS_TYPE_CONNECTION, "uri", again, NULL);
  g_clear_pointer (&server_name, g_free);
  tls = FALSE;
  g_object_get (copy, "tls", &tls, "tls-server-name", &server_name, NULL);
  g_assert_true (tls);
  g_assert_cmpstr (server_name, ==, "redis.example.com");

  /* redis+sentinel:// turns TLS off again; properties print the scheme
   * they mean. */
  {
    g_autoptr(RedisConnection) c = g_object_new (REDIS_TYPE_CONNECTION,
                                                 "uri", "redis+sentinel://127.0.0.1:1/" MASTER, NULL);

    g_object_get (c, "tls", &tls, NULL);
    g_assert_false (tls);
  }
  from_props = g_object_new (REDIS_TYPE_CONNECTION,
                        "sentinels", (const char *[]) { "127.0.0.1:1", NULL },
                        "master-name", MASTER, "tls", TRUE, NULL);
  g_object_get (from_props, "uri", &props_uri, NULL);
  g_assert_true (g_str_has_prefix (props_uri, "rediss+sentinel://127.0.0.1:1/" MASTER "/0?"));
}

/* ---- failover ----------------------------------------------------------- */

typedef struct
{
  RedisPool *pool;
  guint      in_flight;
  gboolean   stop;
  guint64    ok;
  guint64    failed;
  guint64    readonly;
  gint64     first_ok_after;      /* monotonic time of the first success after mark */
  gint64     mark;                /* 0: not marked yet */
  gint64     last_error_time;
  char      *changed_old;         /* primary-changed */
  char      *changed_new;
  guint      n_changed;
} Load;

static void
on_primary_changed (RedisPool  *pool,
                    const char *old_address,
                    const char *new_address,
                    Load       *load)
{
  load->n_changed++;
  g_free (load->changed_old);
  g_free (load->changed_new);
  load->changed_old = g_strdup (old_address);
  load->changed_new = g_strdup (new_address);
}

static void load_send (Load *load);

typedef struct
{
  Load   *load;
  gint64  sent;
} LoadCall;

static void
load_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      data)
{
  LoadCall *lc = data;
  Load *load = lc->load;
  gint64 sent = lc->sent;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);

  g_free (lc);
  load->in_flight--;
  if (reply != NULL && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_INTEGER)
    {
      load->ok++;
      /* The first success of a call made after the mark. */
      if (load->mark != 0 && sent > load->mark && load->first_ok_after == 0)
        load->first_ok_after = g_get_monotonic_time ();
    }
  else
    {
      load->failed++;
      load->last_error_time = g_get_monotonic_time ();
      if (error != NULL && g_str_has_prefix (error->message, "READONLY"))
        load->readonly++;
    }
  if (!load->stop)
    load_send (load);
}

static void
load_send (Load *load)
{
  LoadCall *lc = g_new0 (LoadCall, 1);

  lc->load = load;
  lc->sent = g_get_monotonic_time ();
  load->in_flight++;
  redis_client_command_async (REDIS_CLIENT (load->pool),
                              (const char *[]) { "INCR", "failover-counter", NULL },
                              NULL, load_done_cb, lc);
}

static guint64
incr_calls (RedisTestServer *server)
{
  g_autofree char *stats = cli (server, (const char *[]) { "INFO", "commandstats", NULL });
  const char *line = strstr (stats, "cmdstat_incr:calls=");
  guint64 calls = 0, rejected = 0;
  const char *rej;

  if (line == NULL)
    return 0;
  calls = g_ascii_strtoull (line + strlen ("cmdstat_incr:calls="), NULL, 10);
  rej = strstr (line, "rejected_calls=");
  if (rej != NULL)
    rejected = g_ascii_strtoull (rej + strlen ("rejected_calls="), NULL, 10);
  return calls + rejected;
}

static gboolean
sentinel_names (RedisTestServer *sentinel,
                guint16          port)
{
  g_autofree char *out = cli (sentinel, (const char *[]) { "SENTINEL", "get-master-addr-by-name",
                                                           MASTER, NULL });
  g_autofree char *p = g_strdup_printf ("\n%u", port);

  return strstr (out, p) != NULL;
}

static gboolean
role_is (RedisTestServer *server,
         const char      *role)
{
  g_autofree char *out = cli (server, (const char *[]) { "ROLE", NULL });

  return g_str_has_prefix (out, role);
}

static void
count_message_cb (RedisSubscriber *sub,
                  RedisMessage    *message,
                  guint           *n_messages)
{
  (*n_messages)++;
}

static gboolean
publish (RedisTestServer *server)
{
  g_free (cli (server, (const char *[]) { "PUBLISH", "news", "x", NULL }));
  return TRUE;
}

static char *
pool_primary (RedisPool *pool)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  char *primary = NULL;

  g_variant_lookup (info, "primary", "s", &primary);
  return primary;
}

/* SENTINEL FAILOVER under load: the pool learns the switch from
 * +switch-master and moves before the sentinels demote the old primary
 * (they do it on their next INFO round, ~10 s later): meanwhile the old
 * primary still accepts writes, and none may reach it. */
static void
test_failover_under_load (void)
{
  g_autoptr(GError) error = NULL;
  Topology *t = topology_new (FALSE);
  g_autofree char *list = sentinel_list (t, 0);
  g_autofree char *uri = g_strdup_printf ("redis+sentinel://%s/" MASTER
                                          "?pool_size=4&backoff_initial=20ms&backoff_max=200ms"
                                          "&connect_mode=background", list);
  Load load = { 0 };
  gint64 t_switch, t_known, t_first_new;
  guint64 old_before, old_after, ok_before, failed_before, new_base;
  guint16 new_port = redis_test_server_get_port (t->replica);
  g_autofree char *new_address = g_strdup_printf ("127.0.0.1:%u", new_port);
  g_autofree char *sub_uri = NULL;
  RedisSubscriber *sub = NULL;
  guint n_messages = 0;

  load.pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (load.pool, "primary-changed", G_CALLBACK (on_primary_changed), &load);

  /* A subscriber through the sentinels too: it must follow. */
  sub_uri = g_strdup_printf ("redis+sentinel://%s/" MASTER "?backoff_initial=10ms&backoff_max=200ms",
                             list);
  sub = redis_subscriber_new_sync (sub_uri, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (sub, "message", G_CALLBACK (count_message_cb), &n_messages);
  g_assert_true (redis_subscriber_subscribe_sync (sub, (const char *[]) { "news", NULL }, NULL, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (publish (t->primary) && n_messages > 0, 5000);
  for (guint i = 0; i < 16; i++)
    load_send (&load);
  WAIT_UNTIL (load.ok >= 500, 10000);
  g_assert_cmpuint (load.failed, ==, 0);

  {
    g_autofree char *out = cli (t->sentinels[0], (const char *[]) { "SENTINEL", "FAILOVER", MASTER, NULL });

    g_assert_cmpstr (g_strstrip (out), ==, "OK");
  }
  WAIT_UNTIL (sentinel_names (t->sentinels[0], new_port), 30000);
  t_switch = g_get_monotonic_time ();
  /* The replica counts the writes replicated to it too: from the
   * promotion on, only the pool's. */
  new_base = incr_calls (t->replica);
  WAIT_UNTIL (({ g_autofree char *p = pool_primary (load.pool); g_strcmp0 (p, new_address) == 0; }),
              10000);
  t_known = g_get_monotonic_time ();
  WAIT_UNTIL (load.n_changed > 0, 5000);
  g_assert_cmpuint (load.n_changed, ==, 1);
  g_assert_cmpstr (load.changed_new, ==, new_address);
  {
    g_autofree char *old_address = g_strdup_printf ("127.0.0.1:%u",
                                                    redis_test_server_get_port (t->primary));

    g_assert_cmpstr (load.changed_old, ==, old_address);
  }
  WAIT_UNTIL (incr_calls (t->replica) > new_base, 10000);
  t_first_new = g_get_monotonic_time ();

  /* Once the calls written before the switch are answered, no write
   * reaches the old primary, which has not been demoted yet. */
  ok_before = load.ok;
  WAIT_UNTIL (load.ok >= ok_before + 100, 10000);
  g_assert_true (role_is (t->primary, "master"));
  old_before = incr_calls (t->primary);
  ok_before = load.ok;
  failed_before = load.failed;
  WAIT_UNTIL (load.ok >= ok_before + 1000, 10000);
  old_after = incr_calls (t->primary);
  g_assert_true (role_is (t->primary, "master"));
  g_assert_cmpuint (old_after, ==, old_before);
  g_assert_cmpuint (load.failed, ==, failed_before);

  /* The subscriber moved and resubscribed: it hears the new primary
   * (the old one, still a primary of its own, does not relay it). */
  n_messages = 0;
  WAIT_UNTIL (publish (t->replica) && n_messages > 0, 10000);

  g_test_message ("failover: sentinel switch seen by the test -> pool knows %.0f ms; "
                  "-> first write on the new primary %.0f ms; %" G_GUINT64_FORMAT
                  " calls failed (%" G_GUINT64_FORMAT " READONLY), %" G_GUINT64_FORMAT " succeeded",
                  (t_known - t_switch) / 1000.0, (t_first_new - t_switch) / 1000.0,
                  load.failed, load.readonly, load.ok);
  /* At most the calls in flight on the connections to the old primary
   * when they were closed fail. */
  g_assert_cmpuint (load.failed, <=, 16);

  load.stop = TRUE;
  WAIT_UNTIL (load.in_flight == 0, 10000);
  unref_and_wait_finalized (load.pool);
  redis_subscriber_close (sub);
  unref_and_wait_finalized (sub);
  g_free (load.changed_old);
  g_free (load.changed_new);
  topology_free (t);
}

/* SIGKILL of the primary: the sentinels notice (down-after 1 s), elect a
 * leader and promote the replica; the pool's reconnects keep asking them,
 * and writes resume on the new primary. */
static void
test_primary_killed (void)
{
  g_autoptr(GError) error = NULL;
  Topology *t = topology_new (FALSE);
  g_autofree char *list = sentinel_list (t, 0);
  g_autofree char *uri = g_strdup_printf ("redis+sentinel://%s/" MASTER
                                          "?pool_size=2&backoff_initial=20ms&backoff_max=200ms"
                                          "&connect_mode=background&command_timeout=%u",
                                          list, test_scale_ms (1000));
  Load load = { 0 };
  gint64 t_kill, t_recovered;
  guint64 ok_before, failed_at_recovery;
  guint16 new_port = redis_test_server_get_port (t->replica);

  load.pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 4; i++)
    load_send (&load);
  WAIT_UNTIL (load.ok >= 200, 10000);

  g_assert_true (redis_test_server_kill (t->primary));
  t_kill = g_get_monotonic_time ();
  load.mark = t_kill;
  /* Writes resume: on the new primary, since the old one is dead. */
  WAIT_UNTIL (load.first_ok_after != 0, 60000);
  t_recovered = load.first_ok_after;
  failed_at_recovery = load.failed;
  g_assert_true (sentinel_names (t->sentinels[0], new_port) ||
                 sentinel_names (t->sentinels[1], new_port) ||
                 sentinel_names (t->sentinels[2], new_port));
  ok_before = load.ok;
  WAIT_UNTIL (load.ok >= ok_before + 500, 10000);
  g_assert_cmpuint (load.failed, ==, failed_at_recovery);
  g_test_message ("SIGKILL of the primary -> first successful write %.0f ms; %" G_GUINT64_FORMAT
                  " calls failed meanwhile (their deadline, %u ms, passed)",
                  (t_recovered - t_kill) / 1000.0, load.failed, test_scale_ms (1000));

  load.stop = TRUE;
  WAIT_UNTIL (load.in_flight == 0, 10000);
  unref_and_wait_finalized (load.pool);
  topology_free (t);
}

/* ---- TLS ---------------------------------------------------------------- */

static Topology *tls_shared;

static Topology *
tls_topology (void)
{
  if (tls_shared == NULL)
    tls_shared = topology_new_full (FALSE, TRUE);
  return tls_shared;
}

static char *
tls_uri (Topology   *t,
         const char *ca_file,
         const char *extra)
{
  g_autofree char *list = sentinel_list (t, 0);
  g_autofree char *ca = g_uri_escape_string (ca_file, "/", FALSE);

  return g_strdup_printf ("rediss+sentinel://%s/" MASTER "?tls_ca_file=%s&connect_timeout=%u%s",
                          list, ca, test_scale_ms (3000), extra);
}

/* Sentinels, primary and replica all on TLS only: the pool finds the
 * primary through the sentinels' TLS ports and talks to it over TLS,
 * every certificate verified. */
static void
test_tls_discovery (void)
{
  g_autoptr(GError) error = NULL;
  Topology *t = tls_topology ();
  g_autofree char *uri = tls_uri (t, redis_test_server_get_ca_file (t->primary), "&pool_size=2");
  g_autoptr(RedisPool) pool = redis_pool_new_sync (uri, NULL, &error);
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autofree char *expected = g_strdup_printf ("127.0.0.1:%u", used_port (t, t->primary));
  const char *primary = NULL;

  g_assert_no_error (error);
  reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                     (const char *[]) { "SET", "tls-sentinel-key", "v", NULL },
                                     NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (pool)), ==,
                   redis_test_server_get_port (t->primary));
  info = redis_pool_get_info (pool);
  g_assert_true (g_variant_lookup (info, "primary", "&s", &primary));
  g_assert_cmpstr (primary, ==, expected);
}

/* The certificate of a server found is checked against the address the
 * sentinel gave (127.0.0.1, in the certificate), not against the host
 * property, which Sentinel does not use; tls-server-name replaces it. */
static void
test_tls_discovered_host (void)
{
  Topology *t = tls_topology ();
  g_autofree char *list = sentinel_list (t, 0);
  g_auto(GStrv) sentinels = g_strsplit (list, ",", -1);
  struct {
    const char *server_name;
    gboolean    ok;
  } cases[] = {
    { NULL, TRUE },                     /* the address found: 127.0.0.1 */
    { "localhost", TRUE },              /* also in the certificate */
    { "not-in-the-cert.invalid", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisConnection) conn =
        g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                        "sentinels", sentinels, "master-name", MASTER,
                        "host", "wrong-host.invalid",
                        "tls", TRUE,
                        "tls-ca-file", redis_test_server_get_ca_file (t->primary),
                        "tls-server-name", cases[i].server_name,
                        "connect-timeout", test_scale_ms (3000),
                        NULL);

      if (cases[i].ok)
        {
          g_assert_no_error (error);
          g_assert_cmpint (server_port_of (REDIS_CLIENT (conn)), ==,
                           redis_test_server_get_port (t->primary));
          close_and_finalize (g_steal_pointer (&conn));
        }
      else
        {
          g_autofree char *server = g_strdup_printf ("127.0.0.1:%u", used_port (t, t->primary));

          /* The sentinels passed (the name is not theirs): the server failed. */
          g_assert_null (conn);
          g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
          g_test_message ("%s", error->message);
          g_assert_nonnull (strstr (error->message, server));
          g_assert_nonnull (strstr (error->message, "does not match the host name"));
        }
    }
}

/* A CA that signed none of the certificates: the sentinels (same TLS
 * settings) fail first, and the error is TLS_FAILED naming them. */
static void
test_tls_wrong_ca (void)
{
  g_autoptr(GError) error = NULL;
  Topology *t = tls_topology ();
  g_autofree char *uri = tls_uri (t, redis_test_server_get_other_ca_file (t->primary), "");
  g_autoptr(RedisConnection) conn = redis_connection_new_sync (uri, NULL, &error);
  g_autofree char *first = g_strdup_printf ("127.0.0.1:%u", used_port (t, t->sentinels[0]));

  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, first));
  g_assert_nonnull (strstr (error->message, "unknown certificate authority"));
}

/* Whether a client (the pool's watcher, over TLS) is subscribed to
 * +switch-master on one of the sentinels: a switch before that is not
 * seen (the pool would stay on the old primary until it is demoted). */
static gboolean
watcher_subscribed (Topology *t)
{
  for (guint i = 0; i < G_N_ELEMENTS (t->sentinels); i++)
    {
      g_autofree char *clients = cli (t->sentinels[i], (const char *[]) { "CLIENT", "LIST", NULL });

      if (strstr (clients, " sub=1 ") != NULL)
        return TRUE;
    }
  return FALSE;
}

/* A switch announced while the pool's watcher was not subscribed (its
 * connection to the sentinels is killed for the whole failover) is caught
 * when the watcher subscribes again: it asks the primary's address in the
 * same write, and the connections to the old primary are replaced then
 * (primary-changed). Without that the pool kept writing to the old
 * primary, which accepts writes until the sentinels demote it. */
static void
test_missed_switch (void)
{
  g_autoptr(GError) error = NULL;
  Topology *t = topology_new (FALSE);
  g_autofree char *list = sentinel_list (t, 0);
  g_autofree char *uri = g_strdup_printf ("redis+sentinel://%s/" MASTER
                                          "?pool_size=2&backoff_initial=20ms&backoff_max=200ms", list);
  g_autoptr(RedisPool) pool = redis_pool_new_sync (uri, NULL, &error);
  guint16 new_port = redis_test_server_get_port (t->replica);
  g_autofree char *new_address = g_strdup_printf ("127.0.0.1:%u", new_port);
  Load load = { 0 };

  g_assert_no_error (error);
  g_signal_connect (pool, "primary-changed", G_CALLBACK (on_primary_changed), &load);
  WAIT_UNTIL (watcher_subscribed (t), 10000);

  /* No watcher listens while the sentinels switch. */
  for (guint i = 0; i < G_N_ELEMENTS (t->sentinels); i++)
    g_free (cli (t->sentinels[i], (const char *[]) { "CLIENT", "KILL", "TYPE", "pubsub", NULL }));
  {
    g_autofree char *out = cli (t->sentinels[0], (const char *[]) { "SENTINEL", "FAILOVER", MASTER, NULL });

    g_assert_cmpstr (g_strstrip (out), ==, "OK");
  }
  WAIT_UNTIL (({
                for (guint i = 0; i < G_N_ELEMENTS (t->sentinels); i++)
                  g_free (cli (t->sentinels[i],
                               (const char *[]) { "CLIENT", "KILL", "TYPE", "pubsub", NULL }));
                sentinel_names (t->sentinels[0], new_port) &&
                  sentinel_names (t->sentinels[1], new_port) &&
                  sentinel_names (t->sentinels[2], new_port);
              }), 30000);
  g_assert_cmpuint (load.n_changed, ==, 0);

  /* The watcher comes back (after its 1 s pause) and sees the switch. */
  WAIT_UNTIL (load.n_changed >= 1, 10000);
  g_assert_cmpstr (load.changed_new, ==, new_address);
  {
    g_autoptr(RedisReply) r =
      redis_client_command_sync (REDIS_CLIENT (pool),
                                 (const char *[]) { "SET", "after-missed-switch", "v", NULL }, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_STATUS);
  }
  {
    g_autofree char *got = cli (t->replica, (const char *[]) { "GET", "after-missed-switch", NULL });

    g_assert_cmpstr (g_strstrip (got), ==, "v");
  }
  g_free (load.changed_old);
  g_free (load.changed_new);
  unref_and_wait_finalized (g_steal_pointer (&pool));
  topology_free (t);
}

/* SENTINEL FAILOVER with everything on TLS: the pool moves to the new
 * primary (a TLS port too, its certificate verified). */
static void
test_tls_failover (void)
{
  g_autoptr(GError) error = NULL;
  Topology *t = topology_new_full (FALSE, TRUE);
  g_autofree char *uri = tls_uri (t, redis_test_server_get_ca_file (t->primary),
                                  "&pool_size=2&backoff_initial=20ms&backoff_max=200ms");
  g_autoptr(RedisPool) pool = redis_pool_new_sync (uri, NULL, &error);
  guint16 new_port = used_port (t, t->replica);
  g_autofree char *new_address = g_strdup_printf ("127.0.0.1:%u", new_port);

  g_assert_no_error (error);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (pool)), ==, redis_test_server_get_port (t->primary));
  WAIT_UNTIL (watcher_subscribed (t), 10000);
  {
    g_autofree char *out = cli (t->sentinels[0], (const char *[]) { "SENTINEL", "FAILOVER", MASTER, NULL });

    g_assert_cmpstr (g_strstrip (out), ==, "OK");
  }
  WAIT_UNTIL (sentinel_names (t->sentinels[0], new_port), 30000);
  WAIT_UNTIL (({ g_autofree char *p = pool_primary (pool); g_strcmp0 (p, new_address) == 0; }),
              10000);
  /* Calls may fail while the pool moves; then they reach the new primary. */
  WAIT_UNTIL (({
                g_autoptr(GError) e = NULL;
                g_autoptr(RedisReply) r =
                  redis_client_command_sync (REDIS_CLIENT (pool),
                                             (const char *[]) { "SET", "after-failover", "v", NULL },
                                             NULL, &e);
                r != NULL && redis_reply_get_kind (r) != REDIS_REPLY_KIND_ERROR;
              }), 10000);
  g_assert_cmpint (server_port_of (REDIS_CLIENT (pool)), ==, redis_test_server_get_port (t->replica));
  {
    g_autofree char *got = cli (t->replica, (const char *[]) { "GET", "after-failover", NULL });

    g_assert_cmpstr (g_strstrip (got), ==, "v");
  }
  unref_and_wait_finalized (g_steal_pointer (&pool));
  topology_free (t);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* The library's own deadline per sentinel scales like the test's: a
   * TLS handshake under ASan's slow unwinding takes more than 1 s. */
  redis_sentinel_set_try_timeout_for_testing (test_scale_ms (REDIS_SENTINEL_TRY_TIMEOUT_MS));

  g_test_add_func ("/sentinel/uri", test_uri);
  g_test_add_func ("/sentinel/uri/tls", test_uri_tls);
  if (!redis_test_server_available ())
    {
      g_test_add_data_func ("/sentinel/topology", "redis-server not found", test_skip_cb);
      return g_test_run ();
    }
  g_test_add_func ("/sentinel/discovery/pool", test_discovery_pool);
  g_test_add_func ("/sentinel/discovery/properties", test_discovery_properties);
  g_test_add_func ("/sentinel/discovery/first-sentinel-down", test_first_sentinel_down);
  g_test_add_func ("/sentinel/discovery/all-sentinels-down", test_all_sentinels_down);
  g_test_add_func ("/sentinel/discovery/wrong-role-rejected", test_wrong_role_rejected);
  g_test_add_func ("/sentinel/discovery/sentinel-password", test_sentinel_password);
  g_test_add_func ("/sentinel/failover/readonly-rediscovers", test_readonly_rediscovers);
  g_test_add_func ("/sentinel/failover/under-load", test_failover_under_load);
  g_test_add_func ("/sentinel/failover/primary-killed", test_primary_killed);
  g_test_add_func ("/sentinel/failover/missed-switch", test_missed_switch);
  g_test_add_func ("/sentinel/tls/discovery", test_tls_discovery);
  g_test_add_func ("/sentinel/tls/discovered-host", test_tls_discovered_host);
  g_test_add_func ("/sentinel/tls/wrong-ca", test_tls_wrong_ca);
  g_test_add_func ("/sentinel/tls/failover", test_tls_failover);

  shared = topology_new (FALSE);
  ret = g_test_run ();
  topology_free (shared);
  g_clear_pointer (&tls_shared, topology_free);
  return ret;
}
