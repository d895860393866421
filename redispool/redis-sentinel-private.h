/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-options-private.h"
#include "redis-reply.h"
#include "redis-sentinel.h"

G_BEGIN_DECLS

/* Sentinel discovery (redis.io "Sentinel clients"), used by the engine on
 * every connect when the options name sentinels: the sentinels are tried
 * in order, each with a short deadline; the first that answers
 * SENTINEL get-master-addr-by-name (or SENTINEL replicas) gives the
 * address, and moves to the front of the list for the next discovery. The
 * engine then connects there and checks the server's ROLE in its
 * handshake (redis_sentinel_check_role()).
 *
 * A RedisSentinel is the state the discoveries of one owner share (the
 * order of its sentinels, the last sentinel and server found). Options
 * copies share one (a reference), so a pool's slots, leases and their
 * reconnects all see the same order. Thread-safe. */
typedef struct _RedisSentinel RedisSentinel;

/* Per sentinel: the longest a discovery waits for one before trying the
 * next (connect + query), or connect-timeout if shorter. */
#define REDIS_SENTINEL_TRY_TIMEOUT_MS 1000

/* Tests scale the per-sentinel deadline with their load factor: under a
 * sanitizer that unwinds every malloc, one TLS handshake (GnuTLS) takes
 * longer than REDIS_SENTINEL_TRY_TIMEOUT_MS. 0 restores it. */
void           redis_sentinel_set_try_timeout_for_testing (guint ms);

RedisSentinel *redis_sentinel_new            (const char * const *sentinels);
RedisSentinel *redis_sentinel_ref            (RedisSentinel      *self);
void           redis_sentinel_unref          (RedisSentinel      *self);
/* The sentinel that answered last and the server it named (host:port), or
 * NULL; transfer full. */
char          *redis_sentinel_dup_current_sentinel (RedisSentinel *self);
char          *redis_sentinel_dup_current_server   (RedisSentinel *self);

/* Adds `sentinel` (s: the sentinel that answered last) and `primary` (s:
 * the server it named; `replica` for a replica role) to an a{sv} builder,
 * when known; nothing if @self is NULL. */
void           redis_sentinel_add_info       (RedisSentinel      *self,
                                              GVariantBuilder    *builder);

/* Parses "host:port", "[v6]:port" or "host" (port 26379). */
gboolean       redis_sentinel_parse_address  (const char         *text,
                                              char              **host,
                                              guint              *port);

/* @options: the owner's (a RedisOptions with a sentinel state). Runs on
 * the I/O thread's context (it connects through engines); completes in
 * the thread-default context of the caller. Errors: CONNECT_FAILED (no
 * sentinel answered, or none knew the group), TLS_FAILED (every sentinel
 * failed its TLS handshake: a CA or certificate that fits none of them),
 * G_IO_ERROR_CANCELLED. */
void           redis_sentinel_discover_async  (const RedisOptions  *options,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       redis_sentinel_discover_finish (GAsyncResult        *result,
                                               char               **host,
                                               guint               *port,
                                               GError             **error);

/* The ROLE reply of a server found through Sentinel: NULL if it is the
 * role that was asked for, else the error to close the connection with
 * (CONNECT_FAILED). */
GError        *redis_sentinel_check_role     (RedisServerRole     wanted,
                                              RedisReply         *role_reply,
                                              const char         *address);

/* Failover: an engine connected (handshake and ROLE done) to @address,
 * found through @self, is tracked (a reference) until it closes
 * (untrack, from its shutdown). While any is, one connection to a
 * sentinel listens for +switch-master; on a switch of @options's group
 * away from a tracked engine's address, that engine is closed as lost
 * (CONNECTION_LOST; unsent calls go elsewhere), and its owner's reconnect
 * discovers the new primary. */
typedef struct _RedisEngine RedisEngine;
void           redis_sentinel_track          (RedisSentinel      *self,
                                              RedisEngine        *engine,
                                              const RedisOptions *options,
                                              const char         *address);
void           redis_sentinel_untrack        (RedisSentinel      *self,
                                              RedisEngine        *engine);

/* Emits @signal_id (old and new address, strings) on @object, in the
 * thread-default main context of the caller, for every switch of the
 * group Sentinel announces while connections are tracked. Returns what
 * redis_sentinel_unwatch_object() takes, which the owner calls from its
 * dispose (on the disposing thread). */
gpointer       redis_sentinel_watch_object   (RedisSentinel      *self,
                                              GObject            *object,
                                              guint               signal_id);
void           redis_sentinel_unwatch_object (RedisSentinel      *self,
                                              gpointer            watch);

/* An error reply from a server found through Sentinel that means it is
 * not usable in @role any more: READONLY (a demoted primary) or LOADING
 * for a primary, LOADING or MASTERDOWN for a replica. Returns the error's
 * first word (static), or NULL. */
const char    *redis_sentinel_reply_means_unusable (RedisServerRole  role,
                                                    RedisReply      *error_reply);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisSentinel, redis_sentinel_unref)

G_END_DECLS
