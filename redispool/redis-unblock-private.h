/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-options-private.h"

G_BEGIN_DECLS

/* Ends, on the server, the wait of blocking commands (BLPOP, XREAD BLOCK,
 * WAIT…) whose callers gave up on them, so that the server never serves
 * them later: a cancelled BLPOP that stayed blocked would pop the next
 * element pushed and its reply would be thrown away.
 *
 * It opens a side connection with the same options and sends
 * `CLIENT UNBLOCK <id> ERROR` for the connection whose client id it was
 * given, again and again (a few ms apart, backing off), until it is
 * stopped: the command may not be blocked yet when the first one arrives
 * (still being written, or behind a slow command), and a reply of 0 cannot
 * tell that apart from "already served". The owner stops it once the
 * abandoned commands' replies have come back: an `-UNBLOCKED` error means
 * the wait was ended there; anything else is a result the server produced
 * first, which goes to the caller.
 *
 * If the side connection fails, or nothing is resolved within @give_up_ms,
 * @failed is called (once, on the I/O thread, never after stop): the owner
 * then closes its connection, which ends the wait as well.
 *
 * I/O thread only. */
typedef struct _RedisUnblocker RedisUnblocker;

typedef void (*RedisUnblockerFailedFunc) (GError   *error,
                                          gpointer  user_data);

RedisUnblocker *redis_unblocker_start (const RedisOptions       *options,
                                       gint64                    client_id,
                                       guint                     give_up_ms,
                                       RedisUnblockerFailedFunc  failed,
                                       gpointer                  user_data);
/* Stops sending, closes the side connection, frees @self. @stopped is
 * called (on the I/O thread, maybe before this returns) once no CLIENT
 * UNBLOCK of ours can reach the server any more: one already sent may
 * still be on its way, and would end the owner's next blocking command. */
void            redis_unblocker_stop  (RedisUnblocker           *self,
                                       GSourceFunc               stopped,
                                       gpointer                  user_data,
                                       GDestroyNotify            notify);

G_END_DECLS
