/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-credentials.h"
#include "redis-engine-private.h"
#include "redis-options-private.h"

G_BEGIN_DECLS

/* Credential rotation (issue 13). A RedisCredentials holds the username and
 * password that the next connection of its owners uses, and the provider
 * they ask first, if any; both change at run time, from any thread.
 * Engines copy their options when they are made, so a rotation reaches:
 *
 *  - connections made afterwards, through redis_credentials_engine_new();
 *  - live connections, through redis_credentials_reauth(): one AUTH,
 *    submitted like any call, so it goes out after the handshake (if the
 *    engine is still connecting) and in order with the calls already
 *    queued; nothing is dropped or reconnected.
 *
 * It is reference counted so that it can be shared rather than copied: a
 * pool's subscribers (redis_pool_create_subscriber()) hold their pool's,
 * and a cluster's node pools and their subscribers hold the cluster's.
 * Whoever sets it (the pool, the cluster) reaches them all without a list
 * of them, and nobody holds its owner: a subscriber outliving its pool
 * keeps the last credentials (the provider goes with the pool, see
 * redis_credentials_drop_provider()).
 *
 * The password is never logged or copied into messages, and is zeroed when
 * it is replaced or freed. */
typedef struct _RedisCredentials RedisCredentials;

/* Starts with @options' username and password, and no provider. */
RedisCredentials *redis_credentials_new        (const RedisOptions *options);
/* The same username and password, no provider. */
RedisCredentials *redis_credentials_copy       (RedisCredentials   *self);
RedisCredentials *redis_credentials_ref        (RedisCredentials   *self);
void              redis_credentials_unref      (RedisCredentials   *self);
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

/* ---- the asynchronous provider -----------------------------------------
 *
 * Before a connection of an owner with a provider connects (a pool's
 * shared connection, a subscriber's), the owner asks it with
 * redis_credentials_ask(): a RedisCredentialsRequest handed to the
 * provider in the provider's context; the connect goes on when the request
 * is completed (from any thread, at any time): with credentials (the owner
 * makes them the current ones), or failed (the attempt counts as refused by
 * AUTH and the owner backs off). A request dropped without an answer fails.
 * @done runs once, on the thread that answered, with no lock held; @error
 * is NULL on success. */
typedef void (*RedisCredentialsDoneFunc) (gpointer      data,
                                          guint         index,
                                          const char   *username,
                                          const char   *password,
                                          const GError *error);

/* Called in the context given to redis_credentials_set_provider(). */
typedef void (*RedisCredentialsProviderFunc) (RedisCredentialsRequest *request,
                                              gpointer                 data);

/* Sets (or with @func NULL removes) the provider, on behalf of @owner (an
 * opaque tag): it is called in @context. @notify frees @data when the
 * provider is replaced, dropped, or the last reference goes. */
void     redis_credentials_set_provider  (RedisCredentials             *self,
                                          gconstpointer                 owner,
                                          GMainContext                 *context,
                                          RedisCredentialsProviderFunc  func,
                                          gpointer                      data,
                                          GDestroyNotify                notify);
/* Removes the provider if @owner set it (a pool going away must not take a
 * cluster's provider with it). */
void     redis_credentials_drop_provider (RedisCredentials             *self,
                                          gconstpointer                 owner);
gboolean redis_credentials_has_provider  (RedisCredentials             *self);
/* Asks the provider for @index's connect; FALSE, and @notify (@data) run
 * at once, when there is none. */
gboolean redis_credentials_ask           (RedisCredentials             *self,
                                          RedisCredentialsDoneFunc      done,
                                          gpointer                      data,
                                          GDestroyNotify                notify,
                                          guint                         index,
                                          gboolean                      stale);

RedisCredentialsRequest *redis_credentials_request_new (RedisCredentialsDoneFunc done,
                                                        gpointer                 data,
                                                        GDestroyNotify           notify,
                                                        guint                    index,
                                                        gboolean                 stale);

G_END_DECLS
