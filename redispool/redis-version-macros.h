/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (REDIS_INSIDE) && !defined (REDIS_COMPILATION)
# error "Only <redispool.h> can be included directly."
#endif

#include <glib.h>

/* Only symbols tagged with these macros are exported from the library
 * (it is built with -fvisibility=hidden). */
#ifndef _REDIS_EXTERN
# define _REDIS_EXTERN __attribute__((visibility ("default"))) extern
#endif

#define REDIS_AVAILABLE_IN_ALL _REDIS_EXTERN
#define REDIS_AVAILABLE_IN_1_0 _REDIS_EXTERN
