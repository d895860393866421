/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-credentials.h"
#include "redis-engine-private.h"
#include "redis-options-private.h"

G_BEGIN_DECLS

/* Credential rotation (issue 13). A RedisCredentials holds the username and
 * password that the next connection of its owner (a pool core) uses; they
 * change at run time (redis_pool_set_credentials()), from any thread.
 * Engines copy their options when they are made, so a rotation reaches:
 *
 *  - connections made afterwards, through redis_credentials_engine_new();
 *  - live connections, through redis_credentials_reauth(): one AUTH,
 *    submitted like any call, so it goes out after the handshake (if the
 *    engine is still connecting) and in order with the calls already
 *    queued; nothing is dropped or reconnected.
 *
 * The password is never logged or copied into messages, and is zeroed when
 * it is replaced or freed. */
typedef struct _RedisCredentials RedisCredentials;

/* Starts with @options' username and password. */
RedisCredentials *redis_credentials_new        (const RedisOptions *options);
void              redis_credentials_free       (RedisCredentials   *self);
void              redis_credentials_set        (RedisCredentials   *self,
                                                const char         *username,
                                                const char         *password);
/* A new engine with @options, but the current credentials. */
RedisEngine      *redis_credentials_engine_new (RedisCredentials   *self,
                                                const RedisOptions *options,
                                                GMainContext       *home);
/* Gives @engine the new credentials: for its handshake if it has not sent
 * it yet, else by re-authenticating in place with AUTH [@username]
 * @password (no caller waits; an AUTH the server refuses leaves the
 * connection authenticated as before; none is sent when @password is NULL
 * or the engine no longer accepts calls). Never call with a lock held
 * that the engine's closed handler takes. */
void              redis_credentials_reauth     (RedisEngine        *engine,
                                                const char         *username,
                                                const char         *password,
                                                guint               timeout_ms);

/* ---- the asynchronous provider (RedisPool:credentials-provider) --------
 *
 * Before a shared connection of a pool with a provider connects, the core
 * makes a RedisCredentialsRequest and hands it to the provider in the
 * pool's context; the connect goes on when the request is completed (from
 * any thread, at any time): with credentials (they become the core's
 * current ones), or failed (the attempt counts as refused by AUTH and the
 * slot backs off). A request dropped without an answer fails. @done runs
 * once, on the thread that answered, with no lock held; @error is NULL on
 * success. */
typedef void (*RedisCredentialsDoneFunc) (gpointer      data,
                                          guint         index,
                                          const char   *username,
                                          const char   *password,
                                          const GError *error);

RedisCredentialsRequest *redis_credentials_request_new (RedisCredentialsDoneFunc done,
                                                        gpointer                 data,
                                                        GDestroyNotify           notify,
                                                        guint                    index,
                                                        gboolean                 stale);

G_END_DECLS
