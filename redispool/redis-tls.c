/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-error.h"
#include "redis-sentinel-private.h"
#include "redis-tls-private.h"

/*
 * Each connection verifies the server with its own settings.
 *
 * Which name: the certificate must name tls-server-name when it is set
 * (also sent as SNI), else the host connected to. That host is
 * options->host, except for a server found through Sentinel: options->host
 * is not used there, and the engine connects to the address the sentinel
 * gave, which it passes as @address ("host:port", set again by every
 * discovery, so a failover to a new primary is checked against the new
 * host). Sentinels announce IP addresses unless configured to announce
 * host names (announce-hostnames), while certificates usually name hosts:
 * tls-server-name is for that case, and applies to the servers found
 * only; a sentinel is checked against the host of its own address, which
 * the user wrote (its connection's options have no server name:
 * sentinel_options_new() in redis-sentinel.c).
 *
 * A full handshake checks the server's certificate against the
 * connection's database and server identity, then emits
 * GTlsConnection::accept-certificate with the problems found; we accept
 * only when none of them is in tls-validation-flags.
 *
 * A resumed handshake does not. glib-networking (2.74, GnuTLS backend)
 * keeps the TLS 1.3 session tickets of a process in one cache, keyed by
 * the server's address, host name, port and the client certificate, but
 * not by the database or the validation flags. A later connection to the
 * same server resumes the session with no certificate exchanged, so
 * accept-certificate is not emitted and the backend does not reject
 * anything, whatever the new connection's database: a connection with a
 * wrong tls-ca-file, or none, would succeed after one with the right one.
 * (TLS 1.2 sessions are not cached by that backend; GIO 2.74 has no
 * switch to turn resumption off, and no part of our settings but the
 * client certificate reaches the cache key.)
 *
 * The backend still verifies a resumed session once it is done: it sets
 * GTlsConnection:peer-certificate to the certificate of the session and
 * GTlsConnection:peer-certificate-errors to the result of checking it
 * against this connection's database and server identity, then ignores
 * the result, taking the certificate as accepted already (tls/base/
 * gtlsconnection-base.c, finish_handshake()). So after every
 * handshake, redis_tls_client_check() applies our rule again to
 * peer-certificate-errors, which is the platform's own per-connection
 * verification, and rejects the connection as a full handshake would.
 * Without a peer certificate (no backend we know of does that), there is
 * nothing to verify: rejected unless every check is off. Resumption
 * itself is kept: it saves a round of public-key operations, and a
 * connection only uses a resumed session whose certificate passes its own
 * checks.
 */

char *
redis_tls_describe_errors (GTlsCertificateFlags errors)
{
  GString *s = g_string_new (NULL);

  if (errors & G_TLS_CERTIFICATE_UNKNOWN_CA)
    g_string_append (s, "unknown certificate authority, ");
  if (errors & G_TLS_CERTIFICATE_BAD_IDENTITY)
    g_string_append (s, "the certificate does not match the host name, ");
  if (errors & G_TLS_CERTIFICATE_NOT_ACTIVATED)
    g_string_append (s, "the certificate is not valid yet, ");
  if (errors & G_TLS_CERTIFICATE_EXPIRED)
    g_string_append (s, "the certificate has expired, ");
  if (errors & G_TLS_CERTIFICATE_REVOKED)
    g_string_append (s, "the certificate was revoked, ");
  if (errors & G_TLS_CERTIFICATE_INSECURE)
    g_string_append (s, "the certificate uses insecure algorithms, ");
  if (errors & G_TLS_CERTIFICATE_GENERIC_ERROR)
    g_string_append (s, "the certificate is not valid, ");
  if (s->len >= 2)
    g_string_truncate (s, s->len - 2);
  return g_string_free (s, FALSE);
}

static GError *
tls_error (const char   *what,
           const char   *address,
           const GError *cause)
{
  return g_error_new (REDIS_ERROR, REDIS_ERROR_TLS_FAILED, "%s %s: %s", what, address,
                      cause != NULL ? cause->message : "unknown error");
}

/* Runs during a full handshake (see above). */
static gboolean
accept_certificate_cb (GTlsConnection       *conn,
                       GTlsCertificate      *peer_cert,
                       GTlsCertificateFlags  errors,
                       gpointer              data)
{
  GTlsCertificateFlags checked = GPOINTER_TO_UINT (data);

  /* Accept only when none of the problems found is one we check for
   * (all of them by default; turning checks off is explicit). */
  return (errors & checked) == 0;
}

/* The name and port the certificate is checked against (see above). */
static GSocketConnectable *
server_identity (const RedisOptions *options,
                 const char         *address)
{
  g_autofree char *found_host = NULL;
  guint found_port = 0;
  const char *host = options->host;
  guint port = options->port;

  if (options->sentinel != NULL &&
      redis_sentinel_parse_address (address, &found_host, &found_port))
    {
      host = found_host;
      port = found_port;
    }
  if (options->tls_server_name != NULL)
    host = options->tls_server_name;
  return g_network_address_new (host, port);
}

GIOStream *
redis_tls_client_new (GIOStream          *base,
                      const RedisOptions *options,
                      const char         *address,
                      GError            **error)
{
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GIOStream) tls = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);
  g_return_val_if_fail (options != NULL, NULL);
  g_return_val_if_fail (address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  identity = server_identity (options, address);
  tls = g_tls_client_connection_new (base, identity, &local_error);
  if (tls == NULL)
    {
      g_propagate_error (error, tls_error ("TLS is not available for", address, local_error));
      return NULL;
    }

  if (options->tls_ca_file != NULL)
    {
      g_autoptr(GTlsDatabase) db = g_tls_file_database_new (options->tls_ca_file, &local_error);

      if (db == NULL)
        {
          g_propagate_error (error, tls_error ("Cannot load the CA file for", address, local_error));
          return NULL;
        }
      g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);
    }

  if (options->tls_certificate_file != NULL)
    {
      g_autoptr(GTlsCertificate) cert = NULL;

      cert = g_tls_certificate_new_from_files (options->tls_certificate_file,
                                               options->tls_key_file != NULL ?
                                               options->tls_key_file : options->tls_certificate_file,
                                               &local_error);
      if (cert == NULL)
        {
          g_propagate_error (error, tls_error ("Cannot load the client certificate for",
                                               address, local_error));
          return NULL;
        }
      g_tls_connection_set_certificate (G_TLS_CONNECTION (tls), cert);
    }

  g_signal_connect (tls, "accept-certificate", G_CALLBACK (accept_certificate_cb),
                    GUINT_TO_POINTER (options->tls_validation_flags));

  return g_steal_pointer (&tls);
}

GError *
redis_tls_client_check (GTlsConnection     *tls,
                        const RedisOptions *options,
                        const char         *address,
                        const GError       *handshake_error)
{
  GTlsCertificateFlags errors;
  g_autofree char *why = NULL;

  g_return_val_if_fail (G_IS_TLS_CONNECTION (tls), NULL);
  g_return_val_if_fail (options != NULL, NULL);
  g_return_val_if_fail (address != NULL, NULL);

  /* On failure too: the problems accept_certificate_cb() refused. */
  errors = g_tls_connection_get_peer_certificate_errors (tls);

  if (handshake_error != NULL)
    {
      why = redis_tls_describe_errors (errors & options->tls_validation_flags);
      return g_error_new (REDIS_ERROR, REDIS_ERROR_TLS_FAILED,
                          "TLS handshake with %s failed: %s%s%s",
                          address, handshake_error->message,
                          why[0] ? ": " : "", why);
    }

  if (g_tls_connection_get_peer_certificate (tls) == NULL)
    errors |= G_TLS_CERTIFICATE_GENERIC_ERROR;
  errors &= options->tls_validation_flags;
  if (errors == 0)
    return NULL;

  /* Worded as the rejection of a full handshake, which glib-networking
   * reports as "Unacceptable TLS certificate". */
  why = redis_tls_describe_errors (errors);
  return g_error_new (REDIS_ERROR, REDIS_ERROR_TLS_FAILED,
                      "TLS handshake with %s failed: Unacceptable TLS certificate: %s",
                      address, why);
}
