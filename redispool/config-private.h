/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Included first by every source file of the library. */
#ifndef REDIS_COMPILATION
# error "config-private.h is for the library's own sources"
#endif

#include <glib.h>
