/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-options-private.h"

G_BEGIN_DECLS

/* The TLS client side of a connection: a GTlsClientConnection over @base
 * for options->tls_server_name, or options->host, or with Sentinel the
 * host of @address (the server found, as "host:port"), with the database of options->tls_ca_file (the
 * system's otherwise), the client certificate of
 * options->tls_certificate_file / tls_key_file, and a check that accepts
 * a certificate only when none of its problems is in
 * options->tls_validation_flags. Returns NULL with a REDIS_ERROR_TLS_FAILED
 * error naming @address when a file cannot be loaded or TLS is not
 * available. The handshake is the caller's. */
GIOStream *redis_tls_client_new    (GIOStream          *base,
                                    const RedisOptions *options,
                                    const char         *address,
                                    GError            **error);

/* To call once the handshake of @tls (made by redis_tls_client_new())
 * finished, with its error if it failed. Returns NULL when the connection
 * may be used, or the REDIS_ERROR_TLS_FAILED error to report: the
 * handshake failed, or the server's certificate does not pass this
 * connection's own verification (a resumed session skips the
 * handshake-time check: see redis-tls.c). */
GError    *redis_tls_client_check  (GTlsConnection     *tls,
                                    const RedisOptions *options,
                                    const char         *address,
                                    const GError       *handshake_error);

/* "unknown certificate authority, the certificate has expired", … */
char      *redis_tls_describe_errors (GTlsCertificateFlags errors);

G_END_DECLS
