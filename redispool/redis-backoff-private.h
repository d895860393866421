/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint redis_backoff_delay (GRand *rand,
                           guint  initial_ms,
                           guint  max_ms,
                           guint  attempts);

G_END_DECLS
