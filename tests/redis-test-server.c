/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "redis-test-server.h"
#include "test-helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#ifdef __linux__
# include <sys/prctl.h>
#endif

/* Scaled like the tests' deadlines (test_scale_ms()): a loaded machine
 * starts and stops redis-server slowly too. */
#define READY_TIMEOUT_US   ((gint64) test_scale_ms (10000) * 1000)
#define STOP_TIMEOUT_US    ((gint64) test_scale_ms (5000) * 1000)
#define MAX_START_ATTEMPTS 5

struct _RedisTestServer
{
  RedisTestServerFlags flags;
  char **extra_args;
  char *dir;
  char *log_file;
  char *unix_path;
  guint16 port;
  guint16 tls_port;
  GPid pid;                     /* 0 while not running */
  gboolean paused;
};

/* Certificates are shared by every server of the process. */
typedef struct
{
  char *dir;
  gboolean owned;               /* remove dir at exit */
  char *ca_file;
  char *ca_key_file;
  char *other_ca_file;
  char *server_cert_file;
  char *server_key_file;
  char *expired_cert_file;
  char *client_cert_file;
  char *client_key_file;
  /* Generated on first use by certs_get_extra(), in a private directory
   * of the process (never in a shared REDISPOOL_TEST_CERT_DIR, which may
   * predate them); signed by the CA above, with the server key above. */
  char *extra_dir;
  char *not_yet_valid_cert_file;
  char *self_signed_cert_file;
} Certs;

static GMutex certs_lock;
static Certs *certs;

static char *
find_tool (const char *env_var,
           const char *name)
{
  const char *override = g_getenv (env_var);

  if (override != NULL && *override != '\0')
    return g_strdup (override);
  return g_find_program_in_path (name);
}

static void
rm_rf (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) &&
      !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      GDir *dir = g_dir_open (path, 0, NULL);
      const char *name;

      if (dir != NULL)
        {
          while ((name = g_dir_read_name (dir)) != NULL)
            {
              g_autofree char *child = g_build_filename (path, name, NULL);
              rm_rf (child);
            }
          g_dir_close (dir);
        }
      g_rmdir (path);
    }
  else
    {
      g_unlink (path);
    }
}

/* ---- certificates ------------------------------------------------------ */

static gboolean
run_tool (const char  *cwd,
          const char  *tool,
          const char **args,
          GError     **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *err_out = NULL;
  int status = 0;

  g_ptr_array_add (argv, (gpointer) tool);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (cwd, (char **) argv->pdata, NULL,
                     G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, &err_out, &status, error))
    return FALSE;

  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "%s %s failed: %s", tool, args[0], err_out);
      return FALSE;
    }
  return TRUE;
}

static void
certs_free (Certs *c)
{
  if (c == NULL)
    return;
  if (c->owned)
    rm_rf (c->dir);
  g_free (c->dir);
  g_free (c->ca_file);
  g_free (c->ca_key_file);
  g_free (c->other_ca_file);
  g_free (c->server_cert_file);
  g_free (c->server_key_file);
  g_free (c->expired_cert_file);
  g_free (c->client_cert_file);
  g_free (c->client_key_file);
  if (c->extra_dir != NULL)
    rm_rf (c->extra_dir);
  g_free (c->extra_dir);
  g_free (c->not_yet_valid_cert_file);
  g_free (c->self_signed_cert_file);
  g_free (c);
}

static void
certs_cleanup_at_exit (void)
{
  g_mutex_lock (&certs_lock);
  g_clear_pointer (&certs, certs_free);
  g_mutex_unlock (&certs_lock);
}

#define EC_KEY "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"

static const char ca_conf[] =
  "[ca]\n"
  "default_ca = test_ca\n"
  "[test_ca]\n"
  "database = db/index.txt\n"
  "new_certs_dir = db\n"
  "serial = db/serial\n"
  "default_md = sha256\n"
  "policy = any\n"
  "unique_subject = no\n"
  "[any]\n"
  "commonName = supplied\n"
  "[server]\n"
  "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
  "basicConstraints = CA:FALSE\n"
  "keyUsage = digitalSignature,keyEncipherment\n"
  "extendedKeyUsage = serverAuth,clientAuth\n"
  "[client]\n"
  "basicConstraints = CA:FALSE\n"
  "keyUsage = digitalSignature,keyEncipherment\n"
  "extendedKeyUsage = clientAuth\n";

/* Runs the openssl CLI to fill the existing directory @dir. */
static gboolean
certs_generate (const char  *dir,
                GError     **error)
{
  g_autofree char *openssl = find_tool ("OPENSSL", "openssl");
  g_autofree char *db = g_build_filename (dir, "db", NULL);
  g_autofree char *index = g_build_filename (db, "index.txt", NULL);
  g_autofree char *serial = g_build_filename (db, "serial", NULL);
  g_autofree char *conf = g_build_filename (dir, "ca.cnf", NULL);
  const char *ca[] = { "req", "-x509", "-newkey", EC_KEY,
                       "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
                       "-subj", "/CN=redispool test CA",
                       "-addext", "basicConstraints=critical,CA:TRUE",
                       "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                       NULL };
  const char *other_ca[] = { "req", "-x509", "-newkey", EC_KEY,
                             "-keyout", "other-ca.key", "-out", "other-ca.crt",
                             "-days", "3650",
                             "-subj", "/CN=redispool unrelated test CA",
                             "-addext", "basicConstraints=critical,CA:TRUE",
                             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                             NULL };
  const char *server_req[] = { "req", "-new", "-newkey", EC_KEY,
                               "-keyout", "server.key", "-out", "server.csr",
                               "-subj", "/CN=localhost", NULL };
  const char *server_sign[] = { "ca", "-batch", "-config", "ca.cnf",
                                "-cert", "ca.crt", "-keyfile", "ca.key",
                                "-in", "server.csr", "-out", "server.crt",
                                "-days", "3650", "-extensions", "server",
                                "-notext", NULL };
  const char *expired_sign[] = { "ca", "-batch", "-config", "ca.cnf",
                                 "-cert", "ca.crt", "-keyfile", "ca.key",
                                 "-in", "server.csr", "-out", "expired.crt",
                                 "-startdate", "20200101000000Z",
                                 "-enddate", "20200102000000Z",
                                 "-extensions", "server", "-notext", NULL };
  const char *client_req[] = { "req", "-new", "-newkey", EC_KEY,
                               "-keyout", "client.key", "-out", "client.csr",
                               "-subj", "/CN=redispool test client", NULL };
  const char *client_sign[] = { "ca", "-batch", "-config", "ca.cnf",
                                "-cert", "ca.crt", "-keyfile", "ca.key",
                                "-in", "client.csr", "-out", "client.crt",
                                "-days", "3650", "-extensions", "client",
                                "-notext", NULL };
  const char **steps[] = { ca, other_ca, server_req, server_sign, expired_sign,
                           client_req, client_sign };

  if (openssl == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           "openssl not found in PATH");
      return FALSE;
    }

  if (g_mkdir (db, 0700) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "cannot create %s: %s", db, g_strerror (saved_errno));
      return FALSE;
    }
  if (!g_file_set_contents (index, "", 0, error) ||
      !g_file_set_contents (serial, "1000\n", -1, error) ||
      !g_file_set_contents (conf, ca_conf, -1, error))
    return FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    if (!run_tool (dir, openssl, steps[i], error))
      return FALSE;

  return TRUE;
}

static Certs *
certs_new_for_dir (const char *dir,
                   gboolean    owned)
{
  Certs *c = g_new0 (Certs, 1);

  c->dir = g_strdup (dir);
  c->owned = owned;
  c->ca_file = g_build_filename (dir, "ca.crt", NULL);
  c->ca_key_file = g_build_filename (dir, "ca.key", NULL);
  c->other_ca_file = g_build_filename (dir, "other-ca.crt", NULL);
  c->server_cert_file = g_build_filename (dir, "server.crt", NULL);
  c->server_key_file = g_build_filename (dir, "server.key", NULL);
  c->expired_cert_file = g_build_filename (dir, "expired.crt", NULL);
  c->client_cert_file = g_build_filename (dir, "client.crt", NULL);
  c->client_key_file = g_build_filename (dir, "client.key", NULL);
  return c;
}

/* With REDISPOOL_TEST_CERT_DIR set (meson's test_env does), certificates are
 * generated once into that directory and reused by later processes; the
 * directory appears atomically (rename), so parallel tests can race safely.
 * Without it, each process generates its own and removes them at exit. */
static Certs *
certs_load_or_generate (GError **error)
{
  const char *shared = g_getenv ("REDISPOOL_TEST_CERT_DIR");
  g_autofree char *tmp = NULL;

  if (shared != NULL && *shared != '\0')
    {
      if (!g_file_test (shared, G_FILE_TEST_IS_DIR))
        {
          g_autofree char *parent = g_path_get_dirname (shared);

          g_mkdir_with_parents (parent, 0755);
          tmp = g_strconcat (shared, ".tmp-XXXXXX", NULL);
          if (g_mkdtemp (tmp) == NULL)
            {
              int saved_errno = errno;
              g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                           "cannot create %s: %s", tmp, g_strerror (saved_errno));
              return NULL;
            }
          if (!certs_generate (tmp, error))
            {
              rm_rf (tmp);
              return NULL;
            }
          /* Losing the race to another process is fine: use its copy. */
          if (g_rename (tmp, shared) != 0)
            rm_rf (tmp);
        }
      return certs_new_for_dir (shared, FALSE);
    }

  tmp = g_dir_make_tmp ("redispool-certs-XXXXXX", error);
  if (tmp == NULL)
    return NULL;
  if (!certs_generate (tmp, error))
    {
      rm_rf (tmp);
      return NULL;
    }
  return certs_new_for_dir (tmp, TRUE);
}

static const Certs *
certs_get (GError **error)
{
  static gboolean registered = FALSE;
  const Certs *ret;

  g_mutex_lock (&certs_lock);
  if (certs == NULL)
    {
      certs = certs_load_or_generate (error);
      if (certs != NULL && !registered)
        {
          atexit (certs_cleanup_at_exit);
          registered = TRUE;
        }
    }
  ret = certs;
  g_mutex_unlock (&certs_lock);
  return ret;
}

/* The certificates only some tests need (not yet valid, self-signed),
 * generated once per process into a private directory that is removed at
 * exit. Needs certs_get() to have succeeded. */
static gboolean
certs_get_extra (GError **error)
{
  g_autofree char *openssl = find_tool ("OPENSSL", "openssl");
  g_autofree char *tmp = NULL;
  g_autofree char *db = NULL;
  g_autofree char *index = NULL;
  g_autofree char *serial = NULL;
  g_autofree char *conf = NULL;
  gboolean ok = TRUE;

  g_mutex_lock (&certs_lock);
  g_assert (certs != NULL);
  if (certs->extra_dir != NULL)
    goto out;

  if (openssl == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           "openssl not found in PATH");
      ok = FALSE;
      goto out;
    }

  tmp = g_dir_make_tmp ("redispool-certs-extra-XXXXXX", error);
  if (tmp == NULL)
    {
      ok = FALSE;
      goto out;
    }
  db = g_build_filename (tmp, "db", NULL);
  index = g_build_filename (db, "index.txt", NULL);
  serial = g_build_filename (db, "serial", NULL);
  conf = g_build_filename (tmp, "ca.cnf", NULL);

  {
    const char *csr[] = { "req", "-new", "-key", certs->server_key_file,
                          "-out", "server.csr", "-subj", "/CN=localhost", NULL };
    const char *not_yet_valid[] = { "ca", "-batch", "-config", "ca.cnf",
                                    "-cert", certs->ca_file, "-keyfile", certs->ca_key_file,
                                    "-in", "server.csr", "-out", "not-yet-valid.crt",
                                    "-startdate", "20900101000000Z",
                                    "-enddate", "20910101000000Z",
                                    "-extensions", "server", "-notext", NULL };
    const char *self_signed[] = { "req", "-x509", "-key", certs->server_key_file,
                                  "-out", "self-signed.crt", "-days", "3650",
                                  "-subj", "/CN=localhost",
                                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                  "-addext", "basicConstraints=critical,CA:FALSE",
                                  "-addext", "extendedKeyUsage=serverAuth",
                                  NULL };
    const char **steps[] = { csr, not_yet_valid, self_signed };

    if (g_mkdir (db, 0700) != 0)
      {
        int saved_errno = errno;
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                     "cannot create %s: %s", db, g_strerror (saved_errno));
        ok = FALSE;
      }
    if (ok)
      ok = g_file_set_contents (index, "", 0, error) &&
           g_file_set_contents (serial, "2000\n", -1, error) &&
           g_file_set_contents (conf, ca_conf, -1, error);
    for (guint i = 0; ok && i < G_N_ELEMENTS (steps); i++)
      ok = run_tool (tmp, openssl, steps[i], error);
  }

  if (!ok)
    {
      rm_rf (tmp);
      goto out;
    }
  certs->not_yet_valid_cert_file = g_build_filename (tmp, "not-yet-valid.crt", NULL);
  certs->self_signed_cert_file = g_build_filename (tmp, "self-signed.crt", NULL);
  certs->extra_dir = g_steal_pointer (&tmp);

out:
  g_mutex_unlock (&certs_lock);
  return ok;
}

/* ---- process management ------------------------------------------------ */

static guint16
pick_free_port (GError **error)
{
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GSocketAddress) bound = NULL;

  sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                       G_SOCKET_PROTOCOL_TCP, error);
  if (sock == NULL)
    return 0;

  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  addr = g_inet_socket_address_new (loopback, 0);
  if (!g_socket_bind (sock, addr, FALSE, error))
    return 0;

  bound = g_socket_get_local_address (sock, error);
  if (bound == NULL)
    return 0;

  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
child_setup (gpointer user_data)
{
#ifdef __linux__
  pid_t parent = (pid_t) GPOINTER_TO_INT (user_data);

  /* Die with the test, even when it aborts. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != parent)
    _exit (1);
#endif
}

static char *
read_log_tail (RedisTestServer *self)
{
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (self->log_file, &contents, &len, NULL))
    return g_strdup ("(no log)");
  if (len > 2048)
    return g_strdup (contents + len - 2048);
  return g_steal_pointer (&contents);
}

/* Returns TRUE if the process has exited (and reaps it). */
static gboolean
reap_nohang (RedisTestServer *self,
             int             *status_out)
{
  int status = 0;
  pid_t r;

  if (self->pid == 0)
    return TRUE;

  do
    r = waitpid (self->pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);

  if (r == 0)
    return FALSE;

  /* r == pid: exited; r < 0 (ECHILD): someone else reaped it. */
  if (status_out != NULL)
    *status_out = status;
  self->pid = 0;
  self->paused = FALSE;
  return TRUE;
}

static gboolean
spawn_server (RedisTestServer  *self,
              GError          **error)
{
  const Certs *c = NULL;
  g_autofree char *redis_server = find_tool ("REDIS_SERVER", "redis-server");
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  gboolean ok;
  int log_fd;

#define ADD(s) g_ptr_array_add (argv, g_strdup (s))
#define ADD_PORT(p) g_ptr_array_add (argv, g_strdup_printf ("%u", (guint) (p)))

  if (redis_server == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           "redis-server not found in PATH");
      return FALSE;
    }

  if (self->tls_port != 0)
    {
      c = certs_get (error);
      if (c == NULL)
        return FALSE;
    }

  ADD (redis_server);
  if (self->flags & REDIS_TEST_SERVER_SENTINEL)
    {
      g_autofree char *conf = g_build_filename (self->dir, "sentinel.conf", NULL);

      if (!g_file_test (conf, G_FILE_TEST_EXISTS) &&
          !g_file_set_contents (conf, "", 0, error))
        return FALSE;
      ADD (conf);
      ADD ("--sentinel");
    }
  ADD ("--port"); ADD_PORT (self->port);
  ADD ("--bind"); ADD ("127.0.0.1");
  ADD ("--save"); ADD ("");
  ADD ("--appendonly"); ADD ("no");
  ADD ("--dir"); ADD (self->dir);
  ADD ("--daemonize"); ADD ("no");
  ADD ("--enable-debug-command"); ADD ("local");
  ADD ("--protected-mode"); ADD ("no");
  ADD ("--logfile"); ADD ("");

  if (self->tls_port != 0)
    {
      gboolean expired = (self->flags & REDIS_TEST_SERVER_TLS_EXPIRED) != 0;

      ADD ("--tls-port"); ADD_PORT (self->tls_port);
      ADD ("--tls-cert-file");
      if (self->flags & REDIS_TEST_SERVER_TLS_NOT_YET_VALID)
        ADD (c->not_yet_valid_cert_file);
      else if (self->flags & REDIS_TEST_SERVER_TLS_SELF_SIGNED)
        ADD (c->self_signed_cert_file);
      else
        ADD (expired ? c->expired_cert_file : c->server_cert_file);
      ADD ("--tls-key-file"); ADD (c->server_key_file);
      ADD ("--tls-ca-cert-file"); ADD (c->ca_file);
      ADD ("--tls-auth-clients"); ADD ("optional");
    }

  if (self->unix_path != NULL)
    {
      ADD ("--unixsocket"); ADD (self->unix_path);
      ADD ("--unixsocketperm"); ADD ("700");
    }

  for (guint i = 0; self->extra_args != NULL && self->extra_args[i] != NULL; i++)
    ADD (self->extra_args[i]);

  g_ptr_array_add (argv, NULL);

#undef ADD
#undef ADD_PORT

  log_fd = g_open (self->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "cannot open %s: %s", self->log_file, g_strerror (saved_errno));
      return FALSE;
    }

  ok = g_spawn_async_with_pipes_and_fds (self->dir,
                                         (const char * const *) argv->pdata,
                                         NULL,
                                         G_SPAWN_DO_NOT_REAP_CHILD |
                                         G_SPAWN_STDIN_FROM_DEV_NULL,
                                         child_setup,
                                         GINT_TO_POINTER ((int) getpid ()),
                                         -1, log_fd, log_fd,
                                         NULL, NULL, 0,
                                         &self->pid,
                                         NULL, NULL, NULL,
                                         error);
  g_close (log_fd, NULL);
  if (!ok)
    self->pid = 0;
  self->paused = FALSE;
  return ok;
}

/* One connect + PING round trip. Any RESP status or error line means the
 * server is up (-NOAUTH with requirepass, -LOADING, ...). */
static gboolean
probe (guint16 port)
{
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) addr = NULL;
  char buf[64];
  gssize n;

  sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                       G_SOCKET_PROTOCOL_TCP, NULL);
  if (sock == NULL)
    return FALSE;
  g_socket_set_timeout (sock, 2);

  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  addr = g_inet_socket_address_new (loopback, port);
  if (!g_socket_connect (sock, addr, NULL, NULL))
    return FALSE;
  if (g_socket_send (sock, "PING\r\n", 6, NULL, NULL) != 6)
    return FALSE;
  n = g_socket_receive (sock, buf, sizeof buf, NULL, NULL);
  return n > 0 && (buf[0] == '+' || buf[0] == '-');
}

typedef enum
{
  WAIT_READY,
  WAIT_EXITED,
  WAIT_TIMED_OUT,
} WaitResult;

static WaitResult
wait_ready (RedisTestServer *self)
{
  gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_US;

  while (g_get_monotonic_time () < deadline)
    {
      if (reap_nohang (self, NULL))
        return WAIT_EXITED;
      if (probe (self->port))
        return WAIT_READY;
      g_usleep (10 * 1000);
    }
  return WAIT_TIMED_OUT;
}

/* Signal, wait up to STOP_TIMEOUT_US, then SIGKILL. */
static gboolean
terminate (RedisTestServer *self,
           int              sig)
{
  gint64 deadline;

  if (self->pid == 0)
    return FALSE;

  kill (self->pid, sig);
  if (self->paused)
    kill (self->pid, SIGCONT);

  deadline = g_get_monotonic_time () + STOP_TIMEOUT_US;
  while (!reap_nohang (self, NULL))
    {
      if (g_get_monotonic_time () >= deadline)
        {
          int status;

          kill (self->pid, SIGKILL);
          while (waitpid (self->pid, &status, 0) < 0 && errno == EINTR)
            ;
          self->pid = 0;
          break;
        }
      g_usleep (2 * 1000);
    }

  self->paused = FALSE;
  return TRUE;
}

static gboolean
log_says_address_in_use (RedisTestServer *self)
{
  g_autofree char *tail = read_log_tail (self);

  return strstr (tail, "Address already in use") != NULL ||
         strstr (tail, "Could not create server TCP listening socket") != NULL ||
         strstr (tail, "Failed listening on port") != NULL;
}

/* Start and wait; @pick_ports chooses new ports for each attempt, otherwise
 * the same ports are retried (restart). */
static gboolean
start (RedisTestServer  *self,
       gboolean          pick_ports,
       GError          **error)
{
  g_autofree char *tail = NULL;

  for (guint attempt = 0; attempt < MAX_START_ATTEMPTS; attempt++)
    {
      WaitResult r;

      if (pick_ports)
        {
          self->port = pick_free_port (error);
          if (self->port == 0)
            return FALSE;
          if (self->flags & (REDIS_TEST_SERVER_TLS | REDIS_TEST_SERVER_TLS_EXPIRED))
            {
              do
                self->tls_port = pick_free_port (error);
              while (self->tls_port == self->port);
              if (self->tls_port == 0)
                return FALSE;
            }
        }

      /* Keep the log of the previous attempt readable but separated. */
      if (attempt > 0)
        {
          g_autofree char *old = g_strconcat (self->log_file, ".failed", NULL);
          g_rename (self->log_file, old);
        }

      if (!spawn_server (self, error))
        return FALSE;

      r = wait_ready (self);
      if (r == WAIT_READY)
        return TRUE;

      if (r == WAIT_TIMED_OUT)
        {
          terminate (self, SIGKILL);
          g_clear_pointer (&tail, g_free);
          tail = read_log_tail (self);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       "redis-server on port %u did not answer PING within %d s; log:\n%s",
                       self->port, (int) (READY_TIMEOUT_US / G_USEC_PER_SEC), tail);
          return FALSE;
        }

      /* Exited during startup: retry only when a port was taken. */
      if (!log_says_address_in_use (self))
        break;
      if (!pick_ports)
        g_usleep (200 * 1000);
    }

  tail = read_log_tail (self);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
               "redis-server (port %u) exited during startup; log %s:\n%s",
               self->port, self->log_file, tail);
  return FALSE;
}

/* ---- public API -------------------------------------------------------- */

/**
 * redis_test_server_available:
 *
 * Returns: whether redis-server can be found; callers g_test_skip() otherwise.
 */
gboolean
redis_test_server_available (void)
{
  g_autofree char *path = find_tool ("REDIS_SERVER", "redis-server");

  return path != NULL;
}

/**
 * redis_test_server_new:
 * @flags: which listeners to add besides plaintext TCP
 * @extra_args: (nullable): more redis-server arguments, appended last so they
 *   override the defaults (e.g. `--tls-auth-clients yes`)
 * @error: return location for a #GError
 *
 * Starts a redis-server and waits until it answers PING.
 *
 * Returns: (transfer full): the server, or %NULL with @error set
 */
RedisTestServer *
redis_test_server_new (RedisTestServerFlags  flags,
                       const char * const   *extra_args,
                       GError              **error)
{
  g_autoptr(RedisTestServer) self = g_new0 (RedisTestServer, 1);

  if (flags & REDIS_TEST_SERVER_TLS_EXPIRED)
    flags |= REDIS_TEST_SERVER_TLS;
  if (flags & (REDIS_TEST_SERVER_TLS_NOT_YET_VALID | REDIS_TEST_SERVER_TLS_SELF_SIGNED))
    flags |= REDIS_TEST_SERVER_TLS;

  self->flags = flags;
  self->extra_args = g_strdupv ((char **) extra_args);
  self->dir = g_dir_make_tmp ("redispool-test-XXXXXX", error);
  if (self->dir == NULL)
    return NULL;
  self->log_file = g_build_filename (self->dir, "redis.log", NULL);
  if (flags & REDIS_TEST_SERVER_UNIX)
    self->unix_path = g_build_filename (self->dir, "redis.sock", NULL);

  /* Generate certificates before the port race starts. */
  if ((flags & REDIS_TEST_SERVER_TLS) && certs_get (error) == NULL)
    return NULL;
  if ((flags & (REDIS_TEST_SERVER_TLS_NOT_YET_VALID | REDIS_TEST_SERVER_TLS_SELF_SIGNED)) &&
      !certs_get_extra (error))
    return NULL;

  if (!start (self, TRUE, error))
    return NULL;

  return g_steal_pointer (&self);
}

guint16
redis_test_server_get_port (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->port;
}

guint16
redis_test_server_get_tls_port (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->tls_port;
}

const char *
redis_test_server_get_unix_path (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->unix_path;
}

const char *
redis_test_server_get_dir (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->dir;
}

const char *
redis_test_server_get_log_file (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->log_file;
}

static const Certs *
tls_certs (RedisTestServer *self)
{
  if (!(self->flags & REDIS_TEST_SERVER_TLS))
    return NULL;
  return certs_get (NULL);
}

#define CERT_GETTER(name, field)                        \
  const char *                                          \
  redis_test_server_get_##name (RedisTestServer *self)  \
  {                                                     \
    const Certs *c;                                     \
                                                        \
    g_return_val_if_fail (self != NULL, NULL);          \
    c = tls_certs (self);                               \
    return c != NULL ? c->field : NULL;                 \
  }

/* All NULL unless the server was created with REDIS_TEST_SERVER_TLS. The
 * files live in a per-process directory removed at exit. */
CERT_GETTER (ca_file, ca_file)
CERT_GETTER (other_ca_file, other_ca_file)
CERT_GETTER (client_cert_file, client_cert_file)
CERT_GETTER (client_key_file, client_key_file)
CERT_GETTER (server_cert_file, server_cert_file)
CERT_GETTER (expired_cert_file, expired_cert_file)
/* NULL until a server was created with REDIS_TEST_SERVER_TLS_SELF_SIGNED. */
CERT_GETTER (self_signed_cert_file, self_signed_cert_file)

#undef CERT_GETTER

GPid
redis_test_server_get_pid (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->pid;
}

gboolean
redis_test_server_is_running (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return !reap_nohang (self, NULL);
}

/**
 * redis_test_server_stop:
 *
 * Sends SIGTERM and waits for the exit (SIGKILL after 5 s). The ports stay
 * recorded so [func@redis_test_server_restart] reuses them.
 *
 * Returns: %TRUE if a running server was stopped
 */
gboolean
redis_test_server_stop (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return terminate (self, SIGTERM);
}

gboolean
redis_test_server_kill (RedisTestServer *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return terminate (self, SIGKILL);
}

/**
 * redis_test_server_restart:
 *
 * Stops the server if it still runs, then starts it again with the same
 * ports, socket path and arguments, and waits until it answers PING. The
 * dataset is empty afterwards (persistence is off).
 */
gboolean
redis_test_server_restart (RedisTestServer  *self,
                           GError          **error)
{
  g_return_val_if_fail (self != NULL, FALSE);

  terminate (self, SIGTERM);
  return start (self, FALSE, error);
}

void
redis_test_server_pause (RedisTestServer *self)
{
  g_return_if_fail (self != NULL);
  if (self->pid != 0 && !self->paused)
    {
      kill (self->pid, SIGSTOP);
      self->paused = TRUE;
    }
}

void
redis_test_server_resume (RedisTestServer *self)
{
  g_return_if_fail (self != NULL);
  if (self->pid != 0 && self->paused)
    {
      kill (self->pid, SIGCONT);
      self->paused = FALSE;
    }
}

/**
 * redis_test_server_cli:
 * @argv: redis-cli arguments after `-h 127.0.0.1 -p PORT`; options such as
 *   `-a PASSWORD --no-auth-warning` may come first
 *
 * Runs redis-cli synchronously against the plaintext port.
 *
 * Returns: (transfer full): its standard output, or %NULL with @error set if
 *   it could not run or exited with a non-zero status
 */
char *
redis_test_server_cli (RedisTestServer     *self,
                       const char * const  *argv,
                       GError             **error)
{
  g_autofree char *redis_cli = find_tool ("REDIS_CLI", "redis-cli");
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (argv != NULL, NULL);

  if (redis_cli == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           "redis-cli not found in PATH");
      return NULL;
    }

  g_ptr_array_add (args, g_strdup (redis_cli));
  g_ptr_array_add (args, g_strdup ("-h"));
  g_ptr_array_add (args, g_strdup ("127.0.0.1"));
  g_ptr_array_add (args, g_strdup ("-p"));
  g_ptr_array_add (args, g_strdup_printf ("%u", (guint) self->port));
  for (guint i = 0; argv[i] != NULL; i++)
    g_ptr_array_add (args, g_strdup (argv[i]));
  g_ptr_array_add (args, NULL);

  if (!g_spawn_sync (NULL, (char **) args->pdata, NULL,
                     G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL,
                     &out, &err, &status, error))
    return NULL;

  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "redis-cli %s failed: %s%s", argv[0] ? argv[0] : "", out, err);
      return NULL;
    }

  return g_steal_pointer (&out);
}

/**
 * redis_test_server_free:
 *
 * Stops the server (if running) and removes its directory.
 */
void
redis_test_server_free (RedisTestServer *self)
{
  if (self == NULL)
    return;

  terminate (self, SIGTERM);
  if (self->dir != NULL)
    rm_rf (self->dir);

  g_strfreev (self->extra_args);
  g_free (self->dir);
  g_free (self->log_file);
  g_free (self->unix_path);
  g_free (self);
}
