/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Self-test of the test infrastructure: redis-test-server, fake-server and
 * test-helpers. Needs no part of the library. */

#include <signal.h>
#include <string.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

#include "fake-server.h"
#include "redis-test-server.h"
#include "test-helpers.h"

#define SKIP_WITHOUT_REDIS()                                  \
  G_STMT_START {                                              \
    if (!redis_test_server_available ())                      \
      {                                                       \
        g_test_skip ("redis-server not installed");           \
        return;                                               \
      }                                                       \
  } G_STMT_END

/* ---- raw client helpers ------------------------------------------------ */

static GSocket *
connect_tcp (guint16   port,
             GError  **error)
{
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (loopback, port);

  sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                       G_SOCKET_PROTOCOL_TCP, error);
  if (sock == NULL)
    return NULL;
  g_socket_set_timeout (sock, 5);
  if (!g_socket_connect (sock, addr, NULL, error))
    return NULL;
  return g_steal_pointer (&sock);
}

static void
send_str (GSocket    *sock,
          const char *str)
{
  g_autoptr(GError) error = NULL;
  gsize len = strlen (str);
  gssize n = g_socket_send (sock, str, len, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, ==, (gssize) len);
}

/* Reads until @expected_len bytes arrived (or EOF/error) and returns them. */
static char *
recv_n (GSocket *sock,
        gsize    expected_len)
{
  GString *s = g_string_new (NULL);
  char buf[4096];

  while (s->len < expected_len)
    {
      gssize n = g_socket_receive (sock, buf, MIN (sizeof buf, expected_len - s->len),
                                   NULL, NULL);
      if (n <= 0)
        break;
      g_string_append_len (s, buf, n);
    }
  return g_string_free (s, FALSE);
}

static void
assert_ping (guint16 port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = connect_tcp (port, &error);
  g_autofree char *reply = NULL;

  g_assert_no_error (error);
  send_str (sock, "*1\r\n$4\r\nPING\r\n");
  reply = recv_n (sock, 7);
  g_assert_cmpstr (reply, ==, "+PONG\r\n");
}

static void
assert_refused (guint16 port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = connect_tcp (port, &error);

  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_null (sock);
}

/* ---- redis-test-server ------------------------------------------------- */

static void
test_redis_plain (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  g_autofree char *out = NULL;
  const char *set_argv[] = { "SET", "fixture-key", "hello", NULL };
  const char *get_argv[] = { "GET", "fixture-key", NULL };

  SKIP_WITHOUT_REDIS ();

  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (server);

  g_assert_cmpuint (redis_test_server_get_port (server), >, 0);
  g_assert_cmpuint (redis_test_server_get_tls_port (server), ==, 0);
  g_assert_null (redis_test_server_get_unix_path (server));
  g_assert_null (redis_test_server_get_ca_file (server));
  g_assert_cmpint (redis_test_server_get_pid (server), >, 0);
  g_assert_true (redis_test_server_is_running (server));
  g_assert_true (g_file_test (redis_test_server_get_dir (server), G_FILE_TEST_IS_DIR));

  assert_ping (redis_test_server_get_port (server));

  out = redis_test_server_cli (server, set_argv, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "OK\n");
  g_clear_pointer (&out, g_free);
  out = redis_test_server_cli (server, get_argv, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "hello\n");
}

static void
test_redis_free_removes_dir (void)
{
  g_autoptr(GError) error = NULL;
  RedisTestServer *server;
  g_autofree char *dir = NULL;
  GPid pid;

  SKIP_WITHOUT_REDIS ();

  server = redis_test_server_new (REDIS_TEST_SERVER_UNIX, NULL, &error);
  g_assert_no_error (error);
  dir = g_strdup (redis_test_server_get_dir (server));
  pid = redis_test_server_get_pid (server);
  redis_test_server_free (server);

  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  /* The process is gone (reaped, so kill() cannot find it). */
  g_assert_cmpint (kill (pid, 0), !=, 0);
}

static GTlsConnection *
tls_connect (guint16           port,
             const char       *ca_file,
             const char       *cert_file,
             const char       *key_file,
             GError          **error)
{
  g_autoptr(GSocket) sock = connect_tcp (port, error);
  g_autoptr(GSocketConnection) base = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GTlsDatabase) db = NULL;
  g_autoptr(GIOStream) tls = NULL;

  if (sock == NULL)
    return NULL;
  base = g_socket_connection_factory_create_connection (sock);
  identity = g_network_address_new ("localhost", port);
  tls = g_tls_client_connection_new (G_IO_STREAM (base), identity, error);
  if (tls == NULL)
    return NULL;

  db = g_tls_file_database_new (ca_file, error);
  if (db == NULL)
    return NULL;
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);

  if (cert_file != NULL)
    {
      g_autoptr(GTlsCertificate) cert =
        g_tls_certificate_new_from_files (cert_file, key_file, error);
      if (cert == NULL)
        return NULL;
      g_tls_connection_set_certificate (G_TLS_CONNECTION (tls), cert);
    }

  if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, error))
    return NULL;

  return G_TLS_CONNECTION (g_steal_pointer (&tls));
}

static void
tls_ping (GTlsConnection *tls)
{
  g_autoptr(GError) error = NULL;
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (tls));
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (tls));
  char buf[8] = { 0 };
  gsize n = 0;

  g_output_stream_write_all (out, "PING\r\n", 6, NULL, NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read_all (in, buf, 7, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (buf, ==, "+PONG\r\n");
}

static void
assert_file (const char *path)
{
  g_assert_nonnull (path);
  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
}

static gboolean
skip_without_tls (void)
{
  if (!redis_test_server_available ())
    {
      g_test_skip ("redis-server not installed");
      return TRUE;
    }
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      g_test_skip ("no GIO TLS backend (glib-networking)");
      return TRUE;
    }
  return FALSE;
}

static void
test_redis_tls_unix (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GTlsConnection) tls = NULL;
  g_autoptr(GSocketClient) client = NULL;
  g_autoptr(GSocketAddress) unix_addr = NULL;
  g_autoptr(GSocketConnection) unix_conn = NULL;
  g_autofree char *reply = NULL;

  if (skip_without_tls ())
    return;

  server = redis_test_server_new (REDIS_TEST_SERVER_TLS | REDIS_TEST_SERVER_UNIX,
                                  NULL, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (redis_test_server_get_tls_port (server), >, 0);
  g_assert_cmpuint (redis_test_server_get_tls_port (server), !=,
                    redis_test_server_get_port (server));
  assert_file (redis_test_server_get_ca_file (server));
  assert_file (redis_test_server_get_other_ca_file (server));
  assert_file (redis_test_server_get_client_cert_file (server));
  assert_file (redis_test_server_get_client_key_file (server));
  assert_file (redis_test_server_get_server_cert_file (server));
  assert_file (redis_test_server_get_expired_cert_file (server));

  /* Plaintext still works. */
  assert_ping (redis_test_server_get_port (server));

  /* TLS, verified against the CA, hostname "localhost". */
  tls = tls_connect (redis_test_server_get_tls_port (server),
                     redis_test_server_get_ca_file (server), NULL, NULL, &error);
  g_assert_no_error (error);
  tls_ping (tls);
  g_io_stream_close (G_IO_STREAM (tls), NULL, NULL);
  g_clear_object (&tls);

  /* With the client certificate. */
  tls = tls_connect (redis_test_server_get_tls_port (server),
                     redis_test_server_get_ca_file (server),
                     redis_test_server_get_client_cert_file (server),
                     redis_test_server_get_client_key_file (server), &error);
  g_assert_no_error (error);
  tls_ping (tls);
  g_io_stream_close (G_IO_STREAM (tls), NULL, NULL);
  g_clear_object (&tls);

  /* An unrelated CA does not validate the server. */
  tls = tls_connect (redis_test_server_get_tls_port (server),
                     redis_test_server_get_other_ca_file (server), NULL, NULL, &error);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_null (tls);
  g_clear_error (&error);

  /* Unix socket. */
  client = g_socket_client_new ();
  unix_addr = g_unix_socket_address_new (redis_test_server_get_unix_path (server));
  unix_conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (unix_addr), NULL, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (g_socket_connection_get_socket (unix_conn), 5);
  send_str (g_socket_connection_get_socket (unix_conn), "PING\r\n");
  reply = recv_n (g_socket_connection_get_socket (unix_conn), 7);
  g_assert_cmpstr (reply, ==, "+PONG\r\n");
}

static void
test_redis_tls_client_auth_required (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GTlsConnection) tls = NULL;
  const char *args[] = { "--tls-auth-clients", "yes", NULL };

  if (skip_without_tls ())
    return;

  server = redis_test_server_new (REDIS_TEST_SERVER_TLS, args, &error);
  g_assert_no_error (error);

  tls = tls_connect (redis_test_server_get_tls_port (server),
                     redis_test_server_get_ca_file (server),
                     redis_test_server_get_client_cert_file (server),
                     redis_test_server_get_client_key_file (server), &error);
  g_assert_no_error (error);
  tls_ping (tls);
}

static void
test_redis_tls_expired (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GTlsConnection) tls = NULL;

  if (skip_without_tls ())
    return;

  server = redis_test_server_new (REDIS_TEST_SERVER_TLS_EXPIRED, NULL, &error);
  g_assert_no_error (error);

  tls = tls_connect (redis_test_server_get_tls_port (server),
                     redis_test_server_get_ca_file (server), NULL, NULL, &error);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_null (tls);
}

static void
test_redis_stop_restart (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  guint16 port;
  GPid old_pid;

  SKIP_WITHOUT_REDIS ();

  server = redis_test_server_new (REDIS_TEST_SERVER_UNIX, NULL, &error);
  g_assert_no_error (error);
  port = redis_test_server_get_port (server);
  old_pid = redis_test_server_get_pid (server);

  g_assert_true (redis_test_server_stop (server));
  g_assert_false (redis_test_server_is_running (server));
  g_assert_cmpint (redis_test_server_get_pid (server), ==, 0);
  g_assert_false (redis_test_server_stop (server));
  assert_refused (port);

  g_assert_true (redis_test_server_restart (server, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (redis_test_server_get_port (server), ==, port);
  g_assert_cmpint (redis_test_server_get_pid (server), !=, old_pid);
  g_assert_true (g_file_test (redis_test_server_get_unix_path (server), G_FILE_TEST_EXISTS));
  assert_ping (port);

  /* Restart while running stops the old process first. */
  old_pid = redis_test_server_get_pid (server);
  g_assert_true (redis_test_server_restart (server, &error));
  g_assert_no_error (error);
  g_assert_cmpint (redis_test_server_get_pid (server), !=, old_pid);
  assert_ping (port);
}

static void
test_redis_kill (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  guint16 port;

  SKIP_WITHOUT_REDIS ();

  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  port = redis_test_server_get_port (server);

  g_assert_true (redis_test_server_kill (server));
  g_assert_false (redis_test_server_is_running (server));
  assert_refused (port);

  g_assert_true (redis_test_server_restart (server, &error));
  g_assert_no_error (error);
  assert_ping (port);
}

static void
test_redis_pause_resume (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GSocket) sock = NULL;
  g_autofree char *reply = NULL;
  char buf[16];
  gssize n;

  SKIP_WITHOUT_REDIS ();

  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);

  redis_test_server_pause (server);
  /* The kernel still completes the handshake (backlog), but nothing answers. */
  sock = connect_tcp (redis_test_server_get_port (server), &error);
  g_assert_no_error (error);
  g_socket_set_timeout (sock, 1);
  send_str (sock, "PING\r\n");
  n = g_socket_receive (sock, buf, sizeof buf, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (n, ==, -1);
  g_clear_error (&error);

  redis_test_server_resume (server);
  g_socket_set_timeout (sock, 5);
  reply = recv_n (sock, 7);
  g_assert_cmpstr (reply, ==, "+PONG\r\n");

  /* Stopping a paused server must not hang. */
  redis_test_server_pause (server);
  g_assert_true (redis_test_server_stop (server));
}

static void
test_redis_extra_args (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GSocket) sock = NULL;
  g_autofree char *reply = NULL;
  g_autofree char *out = NULL;
  const char *args[] = { "--requirepass", "s3cret", NULL };
  const char *cli_argv[] = { "-a", "s3cret", "--no-auth-warning", "PING", NULL };

  SKIP_WITHOUT_REDIS ();

  /* requirepass: readiness must accept -NOAUTH. */
  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, args, &error);
  g_assert_no_error (error);

  sock = connect_tcp (redis_test_server_get_port (server), &error);
  g_assert_no_error (error);
  send_str (sock, "PING\r\n");
  reply = recv_n (sock, 7);
  g_assert_cmpstr (reply, ==, "-NOAUTH");

  out = redis_test_server_cli (server, cli_argv, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "PONG\n");
}

static void
test_redis_bad_args (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisTestServer) server = NULL;
  const char *args[] = { "--no-such-option", "1", NULL };

  SKIP_WITHOUT_REDIS ();

  server = redis_test_server_new (REDIS_TEST_SERVER_TCP, args, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_null (server);
  g_test_message ("expected error: %s", error->message);
}

/* ---- fake-server ------------------------------------------------------- */

static void
test_fake_greeting (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = NULL;
  g_autofree char *greeting = NULL;

  fake_server_set_greeting (fake, "-ERR max number of clients reached\r\n", -1);
  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  greeting = recv_n (sock, strlen ("-ERR max number of clients reached\r\n"));
  g_assert_cmpstr (greeting, ==, "-ERR max number of clients reached\r\n");
  g_assert_cmpuint (fake_server_get_n_commands (fake), ==, 0);
}

static void
test_fake_script (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = NULL;
  g_auto(GStrv) commands = NULL;
  char *reply;

  fake_server_add_reply (fake, ":42\r\n", -1);
  fake_server_add_reply (fake, "$3\r\nb\0r\r\n", 9);
  fake_server_set_answer_all (fake, "+DEFAULT\r\n", -1);
  g_assert_cmpuint (fake_server_get_n_pending (fake), ==, 2);

  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);

  /* Split a command across two writes: it must be answered once. */
  send_str (sock, "*2\r\n$4\r\nINCR\r\n$3\r");
  g_usleep (20 * 1000);
  send_str (sock, "\nfoo\r\n");
  reply = recv_n (sock, 5);
  g_assert_cmpstr (reply, ==, ":42\r\n");
  g_free (reply);

  /* Pipelined: two commands in one write. */
  send_str (sock, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv a l\r\n" "PING\r\n");
  reply = recv_n (sock, 9);
  g_assert_cmpmem (reply, 9, "$3\r\nb\0r\r\n", 9);
  g_free (reply);
  reply = recv_n (sock, 10);
  g_assert_cmpstr (reply, ==, "+DEFAULT\r\n");
  g_free (reply);

  g_assert_cmpuint (fake_server_get_n_commands (fake), ==, 3);
  g_assert_cmpuint (fake_server_get_n_pending (fake), ==, 0);
  commands = fake_server_get_commands (fake);
  g_assert_cmpuint (g_strv_length (commands), ==, 3);
  g_assert_cmpstr (commands[0], ==, "INCR foo");
  g_assert_cmpstr (commands[1], ==, "SET k v a l");
  g_assert_cmpstr (commands[2], ==, "PING");
  g_assert_cmpuint (fake_server_get_n_connections (fake), ==, 1);
}

static void
test_fake_generated (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = NULL;
  const guint64 size = 10 * 1024 * 1024;
  g_autofree char *header = g_strdup_printf ("$%" G_GUINT64_FORMAT "\r\n", size);
  g_autofree char *buf = g_malloc (64 * 1024);
  guint64 total = 0, n_fill = 0;
  gsize header_len = strlen (header);
  char last[2] = { 0, 0 };
  gboolean all_fill = TRUE;

  fake_server_add_reply_generated (fake, header, 'x', size, "\r\n");
  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  send_str (sock, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");

  while (total < header_len + size + 2)
    {
      gssize n = g_socket_receive (sock, buf, 64 * 1024, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      for (gssize i = 0; i < n; i++)
        {
          guint64 pos = total + i;

          if (pos < header_len)
            g_assert_cmpint (buf[i], ==, header[pos]);
          else if (pos < header_len + size)
            {
              all_fill &= buf[i] == 'x';
              n_fill++;
            }
          else
            last[pos - header_len - size] = buf[i];
        }
      total += n;
    }

  g_assert_true (all_fill);
  g_assert_cmpuint (n_fill, ==, size);
  g_assert_cmpmem (last, 2, "\r\n", 2);
  g_assert_cmpuint (total, ==, header_len + size + 2);
}

static void
test_fake_close (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GSocket) sock2 = NULL;
  g_autofree char *reply = NULL;
  char buf[16];
  gssize n;

  fake_server_add_close (fake);
  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  send_str (sock, "PING\r\n");
  n = g_socket_receive (sock, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);

  /* The script moves on: a new connection gets the default reply. */
  sock2 = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  send_str (sock2, "PING\r\n");
  reply = recv_n (sock2, 5);
  g_assert_cmpstr (reply, ==, "+OK\r\n");
  g_assert_cmpuint (fake_server_get_n_connections (fake), ==, 2);
}

static void
test_fake_stall (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = NULL;
  char buf[16];
  gssize n;

  fake_server_add_stall (fake);
  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  g_socket_set_timeout (sock, 1);
  send_str (sock, "PING\r\nPING\r\n");
  n = g_socket_receive (sock, buf, sizeof buf, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpint (n, ==, -1);
  g_assert_cmpuint (fake_server_get_n_commands (fake), ==, 2);
  /* fake_server_free() must not hang on the stalled connection. */
}

static void
test_fake_drop_connections (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = NULL;
  char buf[16];
  gssize n;

  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  WAIT_UNTIL (fake_server_get_n_connections (fake) == 1, 5000);
  fake_server_drop_connections (fake);
  n = g_socket_receive (sock, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);
}

static void
test_fake_free_mid_stream (void)
{
  FakeServer *fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) sock = NULL;
  char buf[1024];
  gssize n;

  /* 100 MiB that the client never reads: the server blocks in send(). */
  fake_server_add_reply_generated (fake, "$104857600\r\n", 'y',
                                   100 * 1024 * 1024, "\r\n");
  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  send_str (sock, "GET big\r\n");
  n = g_socket_receive (sock, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);

  fake_server_free (fake);
}

static void
test_fake_client_goes_away (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  GSocket *sock;
  g_autoptr(GSocket) sock2 = NULL;
  g_autofree char *reply = NULL;

  fake_server_add_reply_generated (fake, "$104857600\r\n", 'z',
                                   100 * 1024 * 1024, "\r\n");
  sock = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  send_str (sock, "GET big\r\n");
  g_usleep (50 * 1000);
  g_socket_close (sock, NULL);
  g_object_unref (sock);

  /* The server survives EPIPE/ECONNRESET and keeps serving. */
  sock2 = connect_tcp (fake_server_get_port (fake), &error);
  g_assert_no_error (error);
  send_str (sock2, "PING\r\n");
  reply = recv_n (sock2, 5);
  g_assert_cmpstr (reply, ==, "+OK\r\n");
}

/* ---- test-helpers ------------------------------------------------------ */

static void
test_helpers_wait_for_result (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *host = g_strdup_printf ("127.0.0.1:%u", fake_server_get_port (fake));

  g_socket_client_connect_to_host_async (client, host, 0, NULL, store_result_cb, &result);
  test_wait_for_result (&result, 5000);
  conn = g_socket_client_connect_to_host_finish (client, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (conn);

  WAIT_UNTIL (fake_server_get_n_connections (fake) == 1, 5000);
  test_drain_main_context ();
}

int
main (int   argc,
      char *argv[])
{
  /* Isolated XDG dirs hide the GSettings schemas the system proxy resolver
   * wants; meson's test_env sets this too. */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", FALSE);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/fixtures/redis/plain", test_redis_plain);
  g_test_add_func ("/fixtures/redis/free-removes-dir", test_redis_free_removes_dir);
  g_test_add_func ("/fixtures/redis/tls-unix", test_redis_tls_unix);
  g_test_add_func ("/fixtures/redis/tls-client-auth-required", test_redis_tls_client_auth_required);
  g_test_add_func ("/fixtures/redis/tls-expired", test_redis_tls_expired);
  g_test_add_func ("/fixtures/redis/stop-restart", test_redis_stop_restart);
  g_test_add_func ("/fixtures/redis/kill", test_redis_kill);
  g_test_add_func ("/fixtures/redis/pause-resume", test_redis_pause_resume);
  g_test_add_func ("/fixtures/redis/extra-args", test_redis_extra_args);
  g_test_add_func ("/fixtures/redis/bad-args", test_redis_bad_args);
  g_test_add_func ("/fixtures/fake/greeting", test_fake_greeting);
  g_test_add_func ("/fixtures/fake/script", test_fake_script);
  g_test_add_func ("/fixtures/fake/generated", test_fake_generated);
  g_test_add_func ("/fixtures/fake/close", test_fake_close);
  g_test_add_func ("/fixtures/fake/stall", test_fake_stall);
  g_test_add_func ("/fixtures/fake/drop-connections", test_fake_drop_connections);
  g_test_add_func ("/fixtures/fake/free-mid-stream", test_fake_free_mid_stream);
  g_test_add_func ("/fixtures/fake/client-goes-away", test_fake_client_goes_away);
  g_test_add_func ("/fixtures/helpers/wait-for-result", test_helpers_wait_for_result);

  return g_test_run ();
}
