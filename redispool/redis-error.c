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
