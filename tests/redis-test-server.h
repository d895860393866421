/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * A throwaway redis-server for test suites.
 *
 * Each server runs in its own temporary directory on free ports of 127.0.0.1,
 * with persistence off. The plaintext TCP port is always present; TLS and a
 * unix socket are added on request. Certificates are generated once per
 * process with the openssl CLI and shared by every server of the process.
 *
 * The helper uses GLib only; it does not link the library under test. Servers
 * must be created from a thread that lives as long as they do (normally the
 * main thread): on Linux the child gets PR_SET_PDEATHSIG so that an aborting
 * test does not leave redis-server behind.
 *
 * The binaries are looked up in PATH; the environment variables
 * REDIS_SERVER, REDIS_CLI and OPENSSL override them.
 */

typedef struct _RedisTestServer RedisTestServer;

typedef enum
{
  REDIS_TEST_SERVER_TCP = 0,
  REDIS_TEST_SERVER_TLS = 1 << 0,
  REDIS_TEST_SERVER_UNIX = 1 << 1,
  /* TLS with a server certificate that expired in 2020 (implies TLS) */
  REDIS_TEST_SERVER_TLS_EXPIRED = 1 << 2,
  /* TLS with a server certificate valid only from 2090 (implies TLS) */
  REDIS_TEST_SERVER_TLS_NOT_YET_VALID = 1 << 3,
  /* TLS with a self-signed server certificate for localhost and 127.0.0.1
   * (implies TLS); redis_test_server_get_self_signed_cert_file() */
  REDIS_TEST_SERVER_TLS_SELF_SIGNED = 1 << 4,
  /* redis-server --sentinel, with a config file of its own in its
   * directory (Sentinel rewrites it); the sentinel lines go in
   * @extra_args: "--sentinel", "monitor", name, host, port, quorum… */
  REDIS_TEST_SERVER_SENTINEL = 1 << 5,
} RedisTestServerFlags;

gboolean         redis_test_server_available             (void);

RedisTestServer *redis_test_server_new                   (RedisTestServerFlags  flags,
                                                          const char * const   *extra_args,
                                                          GError              **error);
guint16          redis_test_server_get_port              (RedisTestServer      *self);
guint16          redis_test_server_get_tls_port          (RedisTestServer      *self);
const char      *redis_test_server_get_unix_path         (RedisTestServer      *self);
const char      *redis_test_server_get_dir               (RedisTestServer      *self);
const char      *redis_test_server_get_log_file          (RedisTestServer      *self);
const char      *redis_test_server_get_ca_file           (RedisTestServer      *self);
const char      *redis_test_server_get_other_ca_file     (RedisTestServer      *self);
const char      *redis_test_server_get_client_cert_file  (RedisTestServer      *self);
const char      *redis_test_server_get_client_key_file   (RedisTestServer      *self);
const char      *redis_test_server_get_server_cert_file  (RedisTestServer      *self);
const char      *redis_test_server_get_expired_cert_file (RedisTestServer      *self);
const char      *redis_test_server_get_self_signed_cert_file (RedisTestServer  *self);
GPid             redis_test_server_get_pid               (RedisTestServer      *self);
gboolean         redis_test_server_is_running            (RedisTestServer      *self);

gboolean         redis_test_server_stop                  (RedisTestServer      *self);
gboolean         redis_test_server_kill                  (RedisTestServer      *self);
gboolean         redis_test_server_restart               (RedisTestServer      *self,
                                                          GError              **error);
void             redis_test_server_pause                 (RedisTestServer      *self);
void             redis_test_server_resume                (RedisTestServer      *self);
char            *redis_test_server_cli                   (RedisTestServer      *self,
                                                          const char * const   *argv,
                                                          GError              **error);
void             redis_test_server_free                  (RedisTestServer      *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisTestServer, redis_test_server_free)

G_END_DECLS
