/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-error.h"

/**
 * redis_error_quark:
 *
 * The error domain of redispool, also reachable as %REDIS_ERROR.
 *
 * Returns: the #GQuark of the `redis-error-quark` domain
 */
G_DEFINE_QUARK (redis-error-quark, redis_error)

/**
 * redis_error_get_server_prefix:
 * @error: a #GError
 *
 * Returns the error prefix the server put in front of its message, such as
 * `WRONGTYPE`, `NOAUTH`, `READONLY` or `ERR`, for errors of code
 * %REDIS_ERROR_SERVER, %REDIS_ERROR_AUTH_FAILED or
 * %REDIS_ERROR_TRANSACTION_ABORTED whose message is the server's text.
 *
 * Returns: (transfer full) (nullable): the prefix, or %NULL when @error is not
 *   such an error or its message has no upper-case first word
 */
char *
redis_error_get_server_prefix (const GError *error)
{
  const char *msg;
  gsize n = 0;

  g_return_val_if_fail (error != NULL, NULL);

  if (error->domain != REDIS_ERROR ||
      (error->code != REDIS_ERROR_SERVER &&
       error->code != REDIS_ERROR_AUTH_FAILED &&
       error->code != REDIS_ERROR_TRANSACTION_ABORTED))
    return NULL;

  msg = error->message;
  while (msg[n] != '\0' && (g_ascii_isupper (msg[n]) || msg[n] == '_'))
    n++;
  if (n == 0 || (msg[n] != ' ' && msg[n] != '\0'))
    return NULL;

  return g_strndup (msg, n);
}

/**
 * redis_error_is_retry_safe:
 * @error: a #GError
 *
 * Whether the call that failed with @error is known not to have run on the
 * server, so that sending it again cannot run it twice. Every code of
 * %REDIS_ERROR falls on exactly one side:
 *
 * - never sent, or sent and discarded whole by the server: %TRUE for
 *   %REDIS_ERROR_CONNECT_FAILED, %REDIS_ERROR_AUTH_FAILED,
 *   %REDIS_ERROR_TLS_FAILED, %REDIS_ERROR_CLOSED,
 *   %REDIS_ERROR_INVALID_ARGUMENT, %REDIS_ERROR_QUEUE_FULL,
 *   %REDIS_ERROR_POOL_EXHAUSTED, %REDIS_ERROR_SEND_TIMEOUT, and
 *   %REDIS_ERROR_TRANSACTION_ABORTED and %REDIS_ERROR_WATCH_FAILED (nothing
 *   in the transaction ran);
 * - written, so it may have run: %FALSE for %REDIS_ERROR_CONNECTION_LOST,
 *   %REDIS_ERROR_TIMEOUT, %REDIS_ERROR_PROTOCOL,
 *   %REDIS_ERROR_REPLY_TOO_LARGE and %REDIS_ERROR_SERVER (the server ran
 *   the command and answered an error; a script may have written before it
 *   failed).
 *
 * %G_IO_ERROR_CANCELLED and errors of other domains give %FALSE: a call
 * cancelled after it was written may have run. Whether retrying is useful
 * (a wrong password stays wrong) is another matter.
 *
 * Returns: %TRUE if the failed call certainly did not run
 */
gboolean
redis_error_is_retry_safe (const GError *error)
{
  g_return_val_if_fail (error != NULL, FALSE);

  if (error->domain != REDIS_ERROR)
    return FALSE;

  switch ((RedisError) error->code)
    {
    case REDIS_ERROR_CONNECT_FAILED:
    case REDIS_ERROR_AUTH_FAILED:
    case REDIS_ERROR_TLS_FAILED:
    case REDIS_ERROR_CLOSED:
    case REDIS_ERROR_INVALID_ARGUMENT:
    case REDIS_ERROR_TRANSACTION_ABORTED:
    case REDIS_ERROR_WATCH_FAILED:
    case REDIS_ERROR_QUEUE_FULL:
    case REDIS_ERROR_POOL_EXHAUSTED:
    case REDIS_ERROR_SEND_TIMEOUT:
      return TRUE;
    case REDIS_ERROR_CONNECTION_LOST:
    case REDIS_ERROR_TIMEOUT:
    case REDIS_ERROR_PROTOCOL:
    case REDIS_ERROR_REPLY_TOO_LARGE:
    case REDIS_ERROR_SERVER:
    default:
      return FALSE;
    }
}
