/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <glib.h>

#include "redis-version-macros.h"

G_BEGIN_DECLS

/**
 * REDIS_ERROR:
 *
 * The error domain of redispool. Errors in this domain are from the
 * [error@Redis.Error] enumeration.
 */
#define REDIS_ERROR (redis_error_quark ())

/**
 * RedisError:
 * @REDIS_ERROR_CONNECT_FAILED: the TCP or Unix socket connection could not be
 *   made, or the handshake after it failed or timed out. Nothing was sent.
 * @REDIS_ERROR_AUTH_FAILED: the server refused AUTH (wrong user or password).
 * @REDIS_ERROR_TLS_FAILED: the TLS handshake failed: unknown CA, wrong host
 *   name, expired certificate, or a peer that does not speak TLS.
 * @REDIS_ERROR_CONNECTION_LOST: the connection died after the command was
 *   written. The command may or may not have run on the server.
 * @REDIS_ERROR_TIMEOUT: the command was written but did not complete within
 *   its deadline. It may still run on the server; its late reply is
 *   discarded. (A command whose deadline passed before it was written fails
 *   with %REDIS_ERROR_SEND_TIMEOUT.)
 * @REDIS_ERROR_CLOSED: the connection or pool was closed before the command was
 *   sent. The command did not run. (A command already written when its
 *   connection closes, even by dispose, fails with
 *   %REDIS_ERROR_CONNECTION_LOST.)
 * @REDIS_ERROR_PROTOCOL: the server sent bytes that are not valid RESP2, or a
 *   reply nobody asked for. The connection is closed.
 * @REDIS_ERROR_REPLY_TOO_LARGE: a reply exceeded one of the configured limits
 *   (bytes, elements, line length). The connection is closed.
 * @REDIS_ERROR_INVALID_ARGUMENT: the call was refused before anything was sent:
 *   empty argv, an argument over the size limit, a malformed URI, or a command
 *   that changes connection state on a shared connection.
 * @REDIS_ERROR_SERVER: the server answered with an error reply. The message is
 *   the server's text, whole, escaped as valid UTF-8 (control characters and
 *   bytes that are not UTF-8 as `\xNN`, see [method@Redis.Reply.to_string]);
 *   [func@Redis.Error.get_server_prefix] returns its first word
 *   (`WRONGTYPE`, `NOAUTH`, `READONLY`…). The raw bytes of an error inside a
 *   pipeline or transaction result are in its [struct@Redis.Reply].
 * @REDIS_ERROR_TRANSACTION_ABORTED: EXEC answered `EXECABORT`: a command was
 *   rejected while queueing, so nothing in the transaction ran.
 * @REDIS_ERROR_WATCH_FAILED: EXEC answered nil: a watched key changed, so
 *   nothing in the transaction ran.
 * @REDIS_ERROR_QUEUE_FULL: the pool has no live connection and already holds
 *   its maximum number of waiting calls. The command was not sent.
 * @REDIS_ERROR_POOL_EXHAUSTED: every dedicated connection of the pool
 *   ([property@Redis.Pool:max-leases]) stayed in use until the deadline of
 *   an acquire or of a blocking command waiting for one. Nothing was sent.
 * @REDIS_ERROR_SEND_TIMEOUT: the deadline passed before the command was
 *   written: no connection became ready in time, or the calls before it on
 *   its connection were still being written. The command did not run; it is
 *   safe to retry. (Since: 1.0)
 *
 * Error codes in the %REDIS_ERROR domain. Cancellation is reported as
 * %G_IO_ERROR_CANCELLED in the %G_IO_ERROR domain.
 */
typedef enum
{
  REDIS_ERROR_CONNECT_FAILED,
  REDIS_ERROR_AUTH_FAILED,
  REDIS_ERROR_TLS_FAILED,
  REDIS_ERROR_CONNECTION_LOST,
  REDIS_ERROR_TIMEOUT,
  REDIS_ERROR_CLOSED,
  REDIS_ERROR_PROTOCOL,
  REDIS_ERROR_REPLY_TOO_LARGE,
  REDIS_ERROR_INVALID_ARGUMENT,
  REDIS_ERROR_SERVER,
  REDIS_ERROR_TRANSACTION_ABORTED,
  REDIS_ERROR_WATCH_FAILED,
  REDIS_ERROR_QUEUE_FULL,
  REDIS_ERROR_POOL_EXHAUSTED,
  REDIS_ERROR_SEND_TIMEOUT,
} RedisError;

REDIS_AVAILABLE_IN_ALL
GQuark  redis_error_quark             (void);
REDIS_AVAILABLE_IN_ALL
gboolean redis_error_is_retry_safe    (const GError *error);
REDIS_AVAILABLE_IN_ALL
char   *redis_error_get_server_prefix (const GError *error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
