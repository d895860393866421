/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#define REDIS_INSIDE
# include "redis-version-macros.h"
# include "redis-version.h"
# include "redis-error.h"
# include "redis-reply.h"
# include "redis-batch.h"
# include "redis-client.h"
# include "redis-cluster-pool.h"
# include "redis-cluster-subscriber.h"
# include "redis-connection.h"
# include "redis-credentials.h"
# include "redis-pool.h"
# include "redis-message.h"
# include "redis-subscriber.h"
# include "redis-sentinel.h"
# include "redis-enums.h"
#undef REDIS_INSIDE
