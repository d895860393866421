/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <gio/gio.h>

#include "redis-version-macros.h"

G_BEGIN_DECLS

#define REDIS_TYPE_CREDENTIALS_REQUEST (redis_credentials_request_get_type ())

REDIS_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (RedisCredentialsRequest, redis_credentials_request, REDIS, CREDENTIALS_REQUEST, GObject)

REDIS_AVAILABLE_IN_ALL
void      redis_credentials_request_complete  (RedisCredentialsRequest *self,
                                               const char              *username,
                                               const char              *password);
REDIS_AVAILABLE_IN_ALL
void      redis_credentials_request_fail      (RedisCredentialsRequest *self,
                                               const char              *message);
REDIS_AVAILABLE_IN_ALL
gboolean  redis_credentials_request_get_stale (RedisCredentialsRequest *self);

G_END_DECLS
