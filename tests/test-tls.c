/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* TLS verification per connection (issue 16, item 9).
 *
 * glib-networking (GnuTLS backend) keeps TLS 1.3 session tickets per
 * process, keyed by server address, host name, port and client
 * certificate, and resumes them in later connections to the same server,
 * whatever their database. A resumed handshake carries no certificate, so
 * the backend does not emit accept-certificate and never rejects it.
 * Each connection must still enforce its own tls-ca-file and
 * tls-validation-flags: these tests make connections with different
 * settings to the same server in one process, in both orders, and check
 * every mask against every failure the test server can produce.
 *
 * glib-networking turns its session cache off in GTest programs
 * (g_test_initialized()), so that its own tests always see full
 * handshakes; these tests turn it back on around each connection attempt
 * (see allow_resumption()), as it is in the applications that use the
 * library.
 *
 * The handshake-timeout tests (issue 11, item 6) need no redis-server: a
 * listener that accepts TCP and never answers the ClientHello shows that
 * connect-timeout covers the TLS handshake, and that a connect given up
 * there leaves no fd and no thread behind. */

#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

#define ALL G_TLS_CERTIFICATE_VALIDATE_ALL

static gboolean have_server;

#define REQUIRE_SERVER()                                      \
  G_STMT_START {                                              \
    if (!have_server)                                         \
      {                                                       \
        g_test_skip ("redis-server not available");           \
        return;                                               \
      }                                                       \
  } G_STMT_END

/* ---- helpers ------------------------------------------------------------ */

/* g_test_initialized() reads g_test_config_vars->test_initialized. Only
 * the pointer is const: it points to a static GLib object that
 * g_test_init() writes, so writing it through a cast is well defined.
 * Turned off only while a connection is being made, so that the rest of
 * GTest sees an initialized test program. */
static void
allow_resumption (gboolean allow)
{
  ((GTestConfig *) g_test_config_vars)->test_initialized = !allow;
}

static RedisTestServer *
start_server (RedisTestServerFlags  flags,
              const char * const   *extra_args)
{
  g_autoptr(GError) error = NULL;
  RedisTestServer *server;

  server = redis_test_server_new (flags, extra_args, &error);
  if (server == NULL)
    g_test_skip_printf ("cannot start a TLS server: %s", error->message);
  return server;
}

/* Connects with session resumption allowed (as outside GTest). */
static RedisConnection *
open_tls (guint16               port,
          const char           *host,
          const char           *ca_file,
          GTlsCertificateFlags  flags,
          GError              **error)
{
  RedisConnection *conn;

  allow_resumption (TRUE);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, error,
                         "host", host, "port", (guint) port, "tls", TRUE,
                         "tls-ca-file", ca_file,
                         "tls-validation-flags", flags,
                         "connect-timeout", test_scale_ms (10000),
                         "command-timeout", test_scale_ms (2000), NULL);
  allow_resumption (FALSE);
  return conn;
}

/* The connection succeeds and answers over TLS. */
static void
assert_accepted (guint16               port,
                 const char           *host,
                 const char           *ca_file,
                 GTlsCertificateFlags  flags,
                 const char           *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  const char *argv[] = { "ECHO", what, NULL };
  RedisConnection *conn;

  conn = open_tls (port, host, ca_file, flags, &error);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  /* Reading the reply also reads the server's session tickets, which are
   * then cached for the next connection. */
  reply = redis_client_command_sync (REDIS_CLIENT (conn), argv, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STRING);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, what);
  close_and_finalize (conn);
  g_test_message ("%s: accepted", what);
}

/* The connection fails with TLS_FAILED, naming @reason (may be NULL). */
static void
assert_rejected (guint16               port,
                 const char           *host,
                 const char           *ca_file,
                 GTlsCertificateFlags  flags,
                 const char           *reason,
                 const char           *what)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  conn = open_tls (port, host, ca_file, flags, &error);
  if (conn != NULL)
    {
      close_and_finalize (conn);
      g_test_fail_printf ("%s: connected, but should have been rejected", what);
      return;
    }
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
  g_test_message ("%s: %s", what, error->message);
  if (reason != NULL && strstr (error->message, reason) == NULL)
    g_test_fail_printf ("%s: \"%s\" does not say \"%s\"", what, error->message, reason);
}

/* Reports whether the backend resumes a session here: a plain GIO
 * handshake with a database that does not know the server's CA succeeds
 * only by resuming (the errors are still reported). Informative: the tests
 * hold whether or not the backend resumes, but only exercise the resumed
 * path when it does. */
static void
report_backend_resumption (guint16     port,
                           const char *wrong_ca_file)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) base = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GTlsDatabase) db = NULL;
  g_autoptr(GIOStream) tls = NULL;
  g_autoptr(GError) error = NULL;
  gboolean resumed;

  base = g_socket_client_connect_to_host (client, "localhost", port, NULL, &error);
  g_assert_no_error (error);
  identity = g_network_address_new ("localhost", port);
  tls = g_tls_client_connection_new (G_IO_STREAM (base), identity, &error);
  g_assert_no_error (error);
  db = g_tls_file_database_new (wrong_ca_file, &error);
  g_assert_no_error (error);
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);

  allow_resumption (TRUE);
  resumed = g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error);
  allow_resumption (FALSE);

  g_test_message ("plain GIO handshake with the wrong CA: %s (peer certificate errors 0x%x)",
                  resumed ? "succeeded: the session was resumed" : error->message,
                  g_tls_connection_get_peer_certificate_errors (G_TLS_CONNECTION (tls)));
  if (resumed)
    g_assert_true (g_tls_connection_get_peer_certificate_errors (G_TLS_CONNECTION (tls)) &
                   G_TLS_CERTIFICATE_UNKNOWN_CA);
  else
    g_test_message ("the backend did not resume: the resumed path is not exercised");
  g_io_stream_close (tls, NULL, NULL);
}

/* ---- resumption --------------------------------------------------------- */

/* Right CA first, then a wrong CA, the system store, and masks that leave
 * out the failure's flag or not. */
static void
test_resumption_right_first (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  const char *ca, *other;
  guint16 port;

  REQUIRE_SERVER ();
  server = start_server (REDIS_TEST_SERVER_TLS, NULL);
  if (server == NULL)
    return;
  port = redis_test_server_get_tls_port (server);
  ca = redis_test_server_get_ca_file (server);
  other = redis_test_server_get_other_ca_file (server);

  assert_accepted (port, "localhost", ca, ALL, "right CA");
  report_backend_resumption (port, other);

  assert_rejected (port, "localhost", other, ALL, "unknown certificate authority",
                   "wrong CA after the right CA");
  assert_rejected (port, "localhost", NULL, ALL, "unknown certificate authority",
                   "system store after the right CA");
  assert_rejected (port, "localhost", other, G_TLS_CERTIFICATE_UNKNOWN_CA,
                   "unknown certificate authority",
                   "wrong CA, checking only the CA, after the right CA");
  /* Identical settings may share the session. */
  assert_accepted (port, "localhost", ca, ALL, "right CA again");
  /* Settings that accept the failure accept it on a resumed session too. */
  assert_accepted (port, "localhost", other, ALL & ~G_TLS_CERTIFICATE_UNKNOWN_CA,
                   "wrong CA, CA check off");
  assert_accepted (port, "localhost", NULL, 0, "system store, checks off");
  /* And those do not open the door for the next connection either. */
  assert_rejected (port, "localhost", other, ALL, "unknown certificate authority",
                   "wrong CA after the checks were off");
  assert_rejected (port, "localhost", NULL, ALL, "unknown certificate authority",
                   "system store after the checks were off");
  assert_accepted (port, "localhost", ca, ALL, "right CA at the end");
}

/* A wrong CA and the system store first, then the right CA, then the wrong
 * ones again. */
static void
test_resumption_wrong_first (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  const char *ca, *other;
  guint16 port;

  REQUIRE_SERVER ();
  server = start_server (REDIS_TEST_SERVER_TLS, NULL);
  if (server == NULL)
    return;
  port = redis_test_server_get_tls_port (server);
  ca = redis_test_server_get_ca_file (server);
  other = redis_test_server_get_other_ca_file (server);

  assert_rejected (port, "localhost", other, ALL, "unknown certificate authority",
                   "wrong CA first");
  assert_rejected (port, "localhost", NULL, ALL, "unknown certificate authority",
                   "system store first");
  assert_accepted (port, "localhost", ca, ALL, "right CA after the wrong ones");
  assert_accepted (port, "localhost", ca, ALL, "right CA again");
  assert_rejected (port, "localhost", other, ALL, "unknown certificate authority",
                   "wrong CA after the right CA");
  assert_rejected (port, "localhost", NULL, ALL, "unknown certificate authority",
                   "system store after the right CA");
  assert_accepted (port, "localhost", ca, ALL, "right CA at the end");
}

/* A client certificate is part of glib-networking's cache key: the same
 * one does not carry the trust of one CA file over to another. */
static void
test_resumption_client_certificate (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  const char *argv[] = { "PING", NULL };
  RedisConnection *conn;
  guint16 port;

  REQUIRE_SERVER ();
  server = start_server (REDIS_TEST_SERVER_TLS, NULL);
  if (server == NULL)
    return;
  port = redis_test_server_get_tls_port (server);

  allow_resumption (TRUE);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "host", "localhost", "port", (guint) port, "tls", TRUE,
                         "tls-ca-file", redis_test_server_get_ca_file (server),
                         "tls-certificate-file", redis_test_server_get_client_cert_file (server),
                         "tls-key-file", redis_test_server_get_client_key_file (server),
                         "connect-timeout", test_scale_ms (10000), NULL);
  allow_resumption (FALSE);
  g_assert_no_error (error);
  reply = redis_client_command_sync (REDIS_CLIENT (conn), argv, NULL, &error);
  g_assert_no_error (error);
  close_and_finalize (conn);

  allow_resumption (TRUE);
  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "host", "localhost", "port", (guint) port, "tls", TRUE,
                         "tls-ca-file", redis_test_server_get_other_ca_file (server),
                         "tls-certificate-file", redis_test_server_get_client_cert_file (server),
                         "tls-key-file", redis_test_server_get_client_key_file (server),
                         "connect-timeout", test_scale_ms (10000), NULL);
  allow_resumption (FALSE);
  g_assert_null (conn);
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
  g_test_message ("wrong CA with the same client certificate: %s", error->message);
}

/* ---- partial validation masks -------------------------------------------- */

typedef struct
{
  const char           *name;
  RedisTestServerFlags  server_flags;
  const char           *host;
  /* 0: the server's CA, 1: the unrelated CA, 2: none (system store) */
  guint                 ca;
  GTlsCertificateFlags  failure;
  const char           *reason;
} MaskCase;

static const MaskCase mask_cases[] = {
  { "unknown-ca", REDIS_TEST_SERVER_TLS, "localhost", 1,
    G_TLS_CERTIFICATE_UNKNOWN_CA, "unknown certificate authority" },
  { "system-store", REDIS_TEST_SERVER_TLS, "localhost", 2,
    G_TLS_CERTIFICATE_UNKNOWN_CA, "unknown certificate authority" },
  { "bad-identity", REDIS_TEST_SERVER_TLS, "127.0.0.2", 0,
    G_TLS_CERTIFICATE_BAD_IDENTITY, "does not match the host name" },
  { "expired", REDIS_TEST_SERVER_TLS_EXPIRED, "localhost", 0,
    G_TLS_CERTIFICATE_EXPIRED, "has expired" },
  { "not-yet-valid", REDIS_TEST_SERVER_TLS_NOT_YET_VALID, "localhost", 0,
    G_TLS_CERTIFICATE_NOT_ACTIVATED, "not valid yet" },
  { "self-signed", REDIS_TEST_SERVER_TLS_SELF_SIGNED, "localhost", 0,
    G_TLS_CERTIFICATE_UNKNOWN_CA, "unknown certificate authority" },
};

/* For one failure F: the default mask and the mask F alone (every other
 * check off) reject; the mask that leaves out F accepts. Accepting and
 * rejecting connections alternate, so each rejection follows a connection
 * that cached a session. */
static void
test_masks (gconstpointer data)
{
  const MaskCase *mc = data;
  const char *bind_args[] = { "--bind", "127.0.0.1", "127.0.0.2", NULL };
  g_autoptr(RedisTestServer) server = NULL;
  GTlsCertificateFlags ignore_failure = ALL & ~mc->failure;
  const char *ca = NULL;
  guint16 port;

  REQUIRE_SERVER ();
  server = start_server (mc->server_flags, bind_args);
  if (server == NULL)
    return;
  port = redis_test_server_get_tls_port (server);
  switch (mc->ca)
    {
    case 0:
      ca = redis_test_server_get_ca_file (server);
      break;
    case 1:
      ca = redis_test_server_get_other_ca_file (server);
      break;
    case 2:
      ca = NULL;
      break;
    default:
      g_assert_not_reached ();
    }

  if (g_str_equal (mc->host, "127.0.0.2"))
    {
      g_autoptr(GSocketClient) client = g_socket_client_new ();
      g_autoptr(GSocketConnection) probe = NULL;
      g_autoptr(GError) error = NULL;

      probe = g_socket_client_connect_to_host (client, mc->host, port, NULL, &error);
      if (probe == NULL)
        {
          g_test_skip_printf ("127.0.0.2 not reachable: %s", error->message);
          return;
        }
    }

  /* Reject first (nothing cached), then alternate. */
  assert_rejected (port, mc->host, ca, ALL, mc->reason, "default checks");
  assert_rejected (port, mc->host, ca, mc->failure, mc->reason, "only this check");
  assert_accepted (port, mc->host, ca, ignore_failure, "every check but this one");
  assert_rejected (port, mc->host, ca, mc->failure, mc->reason,
                   "only this check, after an accepted connection");
  assert_accepted (port, mc->host, ca, ignore_failure, "every check but this one, again");
  assert_rejected (port, mc->host, ca, ALL, mc->reason,
                   "default checks, after an accepted connection");
  /* A mask that ignores some other failure only does not help. */
  assert_rejected (port, mc->host, ca,
                   ALL & ~(mc->failure == G_TLS_CERTIFICATE_EXPIRED ?
                           G_TLS_CERTIFICATE_NOT_ACTIVATED : G_TLS_CERTIFICATE_EXPIRED),
                   mc->reason, "another check off");
}

/* The self-signed certificate as its own tls-ca-file is trusted, and that
 * trust does not carry over to a connection with another CA file. */
static void
test_self_signed_trusted (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  guint16 port;

  REQUIRE_SERVER ();
  server = start_server (REDIS_TEST_SERVER_TLS_SELF_SIGNED, NULL);
  if (server == NULL)
    return;
  port = redis_test_server_get_tls_port (server);

  assert_accepted (port, "localhost", redis_test_server_get_self_signed_cert_file (server),
                   ALL, "self-signed certificate as the CA file");
  assert_rejected (port, "localhost", redis_test_server_get_ca_file (server), ALL,
                   "unknown certificate authority", "the test CA file");
  assert_rejected (port, "localhost", NULL, ALL,
                   "unknown certificate authority", "the system store");
  assert_accepted (port, "localhost", redis_test_server_get_self_signed_cert_file (server),
                   ALL, "self-signed certificate as the CA file, again");
}

/* ---- tls-server-name ---------------------------------------------------- */

/* tls-server-name replaces the host connected to (127.0.0.1 here) as the
 * name checked in the certificate (DNS:localhost, IP:127.0.0.1); the URI
 * parameter tls_server_name sets it too. Sentinel's use of it is in
 * test-sentinel.c. */
static void
test_server_name (void)
{
  g_autoptr(RedisTestServer) server = NULL;
  struct {
    const char *server_name;
    gboolean    via_uri;
    gboolean    ok;
  } cases[] = {
    { "localhost", FALSE, TRUE },
    { "not-in-the-cert.invalid", FALSE, FALSE },
    { "localhost", TRUE, TRUE },
    { "not-in-the-cert.invalid", TRUE, FALSE },
  };

  REQUIRE_SERVER ();
  server = start_server (REDIS_TEST_SERVER_TLS, NULL);
  if (server == NULL)
    return;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *ca = g_uri_escape_string (redis_test_server_get_ca_file (server), "/", FALSE);
      g_autofree char *uri = g_strdup_printf ("rediss://127.0.0.1:%u/0?tls_ca_file=%s&tls_server_name=%s"
                                              "&connect_timeout=%u",
                                              redis_test_server_get_tls_port (server), ca,
                                              cases[i].server_name, test_scale_ms (10000));
      RedisConnection *conn;

      if (cases[i].via_uri)
        conn = redis_connection_new_sync (uri, NULL, &error);
      else
        conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                               "host", "127.0.0.1",
                               "port", (guint) redis_test_server_get_tls_port (server),
                               "tls", TRUE,
                               "tls-ca-file", redis_test_server_get_ca_file (server),
                               "tls-server-name", cases[i].server_name,
                               "connect-timeout", test_scale_ms (10000), NULL);
      if (cases[i].ok)
        {
          g_autoptr(RedisReply) reply = NULL;

          g_assert_no_error (error);
          reply = redis_client_command_sync (REDIS_CLIENT (conn), (const char *[]) { "PING", NULL },
                                             NULL, &error);
          g_assert_no_error (error);
          close_and_finalize (conn);
        }
      else
        {
          g_assert_null (conn);
          g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
          g_test_message ("%s", error->message);
          g_assert_nonnull (strstr (error->message, "does not match the host name"));
        }
    }
}

/* ---- a TLS handshake that never completes ------------------------------- */

/* A TCP listener on 127.0.0.1 that accepts, reads and discards what the
 * client sends (its ClientHello) and never writes a byte: the client's
 * TLS handshake waits forever. One thread serves one connection at a
 * time and closes the accepted socket when the client closes its end, so
 * that the fd count of the process comes back once the client let go.
 * No GCancellable: a blocking wait with one holds an eventfd, which would
 * make the process's fd count depend on where this thread is. */
typedef struct
{
  GSocket      *listener;
  guint16       port;
  GThread      *thread;
  gint          stopping;     /* atomic */
  gint          n_accepted;   /* atomic */
  gint          n_closed;     /* atomic: saw the client's EOF, closed */
  gint          last_bytes;   /* atomic: bytes read on the last connection */
  gint          last_first;   /* atomic: first byte read on it, or -1 */
} SilentServer;

static gpointer
silent_server_thread (gpointer data)
{
  SilentServer *self = data;
  char buf[4096];

  for (;;)
    {
      g_autoptr(GSocket) sock = g_socket_accept (self->listener, NULL, NULL);
      gint total = 0;
      gint first = -1;
      gssize n;

      if (g_atomic_int_get (&self->stopping))
        break;
      if (sock == NULL)
        {
          g_usleep (1000);
          continue;
        }
      g_atomic_int_inc (&self->n_accepted);
      g_socket_set_blocking (sock, TRUE);
      /* A safety net only: the test fails long before. */
      g_socket_set_timeout (sock, 600);
      while ((n = g_socket_receive (sock, buf, sizeof buf, NULL, NULL)) > 0)
        {
          if (total == 0)
            first = (guchar) buf[0];
          total += n;
        }
      g_atomic_int_set (&self->last_bytes, total);
      g_atomic_int_set (&self->last_first, first);
      g_socket_close (sock, NULL);
      if (n == 0)
        g_atomic_int_inc (&self->n_closed);
    }
  return NULL;
}

static SilentServer *
silent_server_new (void)
{
  SilentServer *self = g_new0 (SilentServer, 1);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  self->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (self->listener, addr, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (self->listener, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (self->listener, &error);
  g_assert_no_error (error);
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  self->last_first = -1;
  self->thread = g_thread_new ("silent-tls", silent_server_thread, self);
  return self;
}

/* Stops the thread by connecting to it once with the stop flag set. */
static void
silent_server_free (SilentServer *self)
{
  g_autoptr(GSocket) wake = NULL;
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GError) error = NULL;

  g_atomic_int_set (&self->stopping, 1);
  addr = g_socket_get_local_address (self->listener, &error);
  g_assert_no_error (error);
  wake = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                       G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_connect (wake, addr, NULL, &error);
  g_assert_no_error (error);
  g_thread_join (self->thread);
  g_socket_close (wake, NULL);
  g_socket_close (self->listener, NULL);
  g_object_unref (self->listener);
  g_free (self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SilentServer, silent_server_free)

static guint
count_dir_entries (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Open fds of the process (the count includes the directory's own fd,
 * the same in every count). */
static guint
count_fds (void)
{
  return count_dir_entries ("/proc/self/fd");
}

static guint
count_threads (void)
{
  return count_dir_entries ("/proc/self/task");
}

/* Threads of the process named @name (as in /proc/self/task/N/comm). */
static guint
count_threads_named (const char *name)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *tid;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/task", tid, "comm", NULL);
      g_autofree char *comm = NULL;

      if (g_file_get_contents (path, &comm, NULL, NULL) &&
          g_str_equal (g_strchomp (comm), name))
        n++;
    }
  return n;
}

static char *
describe_threads (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  GString *s = g_string_new (NULL);
  const char *tid;

  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/task", tid, "comm", NULL);
      g_autofree char *comm = NULL;

      if (g_file_get_contents (path, &comm, NULL, NULL))
        g_string_append_printf (s, "%s%s", s->len > 0 ? ", " : "", g_strchomp (comm));
    }
  return g_string_free (s, FALSE);
}

typedef enum
{
  SILENT_CONNECTION_SYNC,
  SILENT_CONNECTION_ASYNC,
  SILENT_POOL_SYNC,
} SilentMode;

/* One connect attempt against @server that must fail: returns the error
 * and stores how long it took. */
static GError *
silent_connect_once (SilentServer *server,
                     SilentMode    mode,
                     guint         timeout_ms,
                     gint64       *elapsed_us)
{
  g_autofree char *uri = NULL;
  GError *error = NULL;
  gint64 start;

  uri = g_strdup_printf ("rediss://127.0.0.1:%u?connect_timeout=%u%s",
                         (guint) server->port, timeout_ms,
                         mode == SILENT_POOL_SYNC ? "&pool_size=1&connect_mode=wait_all" : "");
  start = g_get_monotonic_time ();
  switch (mode)
    {
    case SILENT_CONNECTION_SYNC:
      {
        RedisConnection *conn = redis_connection_new_sync (uri, NULL, &error);

        *elapsed_us = g_get_monotonic_time () - start;
        g_assert_null (conn);
        break;
      }
    case SILENT_CONNECTION_ASYNC:
      {
        g_autoptr(GAsyncResult) result = NULL;
        RedisConnection *conn;

        redis_connection_new_async (uri, NULL, store_result_cb, &result);
        test_wait_for_result (&result, timeout_ms + 10000);
        *elapsed_us = g_get_monotonic_time () - start;
        conn = redis_connection_new_finish (result, &error);
        g_assert_null (conn);
        break;
      }
    case SILENT_POOL_SYNC:
      {
        RedisPool *pool = redis_pool_new_sync (uri, NULL, &error);

        *elapsed_us = g_get_monotonic_time () - start;
        g_assert_null (pool);
        break;
      }
    default:
      g_assert_not_reached ();
    }
  g_assert_nonnull (error);
  return error;
}

/* Threads of the process that are not process-wide singletons started
 * once: the library's I/O thread (redis-io) and GLib's worker thread
 * (gmain, g_get_worker_context(), which GIO starts on first use). Each of
 * those must exist at most once. */
static guint
count_other_threads (void)
{
  guint io = count_threads_named ("redis-io");
  guint gmain = count_threads_named ("gmain");

  g_assert_cmpuint (io, <=, 1);
  g_assert_cmpuint (gmain, <=, 1);
  return count_threads () - io - gmain;
}

/* The connect timeout covers the TLS handshake: a listener that accepts
 * TCP and never answers the ClientHello fails the connect with TLS_FAILED
 * once connect-timeout has passed (not before, not much later), and no
 * failed attempt leaves an fd or a thread behind: the fd count comes back
 * to where it was after the first attempt (which pays one-time costs such
 * as the I/O thread's wake-up fd), the thread count to where it was before
 * the first attempt, apart from the two process-wide singletons
 * (redis-io, which every attempt uses, and GLib's gmain).
 *
 * glib-networking runs an async handshake as a sync one in a GTask pool
 * thread; GLib keeps up to two idle pool threads for 15 s, which would
 * hide a handshake thread left blocked. With max-unused-threads 0 a pool
 * thread that goes idle exits at once, so a thread still there after an
 * attempt is one still working. (Run after the other tests, the starting
 * count may include an idle pool thread of theirs: it is only counted,
 * and may be reused or go away.) */
static void
test_handshake_timeout (gconstpointer data)
{
  SilentMode mode = GPOINTER_TO_INT (data);
  g_autoptr(SilentServer) server = silent_server_new ();
  guint timeout_ms = test_scale_ms (300);
  gint64 slack_us = (gint64) test_scale_ms (1500) * 1000;
  gint old_max_unused = g_thread_pool_get_max_unused_threads ();
  guint fds_initial, threads_initial, others_initial, fds_base = 0;
  guint n_hellos = 0;
  const guint n_attempts = 5;

  /* The first TLS connection of a process loads the system's CA store
   * (glib-networking does it in g_tls_client_connection_new(), which the
   * library calls on its I/O thread, so the connect timer waits for it):
   * tens of ms here, seconds under ASan. Loaded beforehand, it does not
   * blur the timing measured below. */
  g_object_unref (g_tls_backend_get_default_database (g_tls_backend_get_default ()));

  g_thread_pool_set_max_unused_threads (0);
  test_drain_main_context ();
  fds_initial = count_fds ();
  threads_initial = count_threads ();
  others_initial = count_other_threads ();
  {
    g_autofree char *names = describe_threads ();
    g_test_message ("before: %u fds, %u threads (%s)", fds_initial, threads_initial, names);
  }

  for (guint i = 0; i < n_attempts; i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 elapsed_us = 0;

      error = silent_connect_once (server, mode, timeout_ms, &elapsed_us);
      g_test_message ("attempt %u: %" G_GINT64_FORMAT " ms (connect-timeout %u ms): %s",
                      i + 1, elapsed_us / 1000, timeout_ms, error->message);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED);
      g_assert_nonnull (strstr (error->message, "did not finish within"));
      g_assert_cmpint (elapsed_us, >=, (gint64) timeout_ms * 1000);
      g_assert_cmpint (elapsed_us, <, (gint64) timeout_ms * 1000 + slack_us);

      /* The listener saw the client's EOF: the library closed its
       * socket. What came before is the TLS ClientHello (a handshake
       * record, 0x16), unless the timeout came first (a slow ASan run can
       * take that long to write it). */
      WAIT_UNTIL ((guint) g_atomic_int_get (&server->n_closed) == i + 1, 5000);
      g_assert_cmpint (g_atomic_int_get (&server->n_accepted), ==, i + 1);
      if (g_atomic_int_get (&server->last_bytes) > 0)
        {
          g_assert_cmpint (g_atomic_int_get (&server->last_first), ==, 0x16);
          n_hellos++;
        }

      /* No handshake thread is still at work, redis-io is there and alone. */
      WAIT_UNTIL (count_other_threads () <= others_initial, 5000);
      g_assert_cmpuint (count_threads_named ("redis-io"), ==, 1);

      if (i == 0)
        {
          test_drain_main_context ();
          fds_base = count_fds ();
          g_test_message ("after attempt 1: %u fds, %u threads", fds_base, count_threads ());
        }
      else
        {
          WAIT_UNTIL (count_fds () <= fds_base, 5000);
        }
    }

  {
    g_autofree char *names = describe_threads ();
    g_test_message ("after %u attempts: %u fds, %u threads (%s); %u attempts sent a "
                    "ClientHello (%d bytes on the last connection)",
                    n_attempts, count_fds (), count_threads (), names, n_hellos,
                    g_atomic_int_get (&server->last_bytes));
  }
  g_assert_cmpuint (count_fds (), <=, fds_base);
  g_assert_cmpuint (count_other_threads (), <=, others_initial);
  g_thread_pool_set_max_unused_threads (old_max_unused);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  have_server = redis_test_server_available ();

  g_test_add_func ("/tls/resumption/right-ca-first", test_resumption_right_first);
  g_test_add_func ("/tls/resumption/wrong-ca-first", test_resumption_wrong_first);
  g_test_add_func ("/tls/resumption/client-certificate", test_resumption_client_certificate);
  for (guint i = 0; i < G_N_ELEMENTS (mask_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/tls/masks/%s", mask_cases[i].name);

      g_test_add_data_func (path, &mask_cases[i], test_masks);
    }
  g_test_add_func ("/tls/resumption/self-signed", test_self_signed_trusted);
  g_test_add_func ("/tls/server-name", test_server_name);
  /* No redis-server needed: a listener that never answers. */
  g_test_add_data_func ("/tls/handshake-timeout/connection-sync",
                        GINT_TO_POINTER (SILENT_CONNECTION_SYNC), test_handshake_timeout);
  g_test_add_data_func ("/tls/handshake-timeout/connection-async",
                        GINT_TO_POINTER (SILENT_CONNECTION_ASYNC), test_handshake_timeout);
  g_test_add_data_func ("/tls/handshake-timeout/pool-sync",
                        GINT_TO_POINTER (SILENT_POOL_SYNC), test_handshake_timeout);

  return g_test_run ();
}
