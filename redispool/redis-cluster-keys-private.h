/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Where the keys of a command are, for routing it in a cluster: a built-in
 * table of the common commands (key positions as COMMAND INFO gives them),
 * read from the RESP encoding of the command as this library writes it
 * (an array of bulk strings). */

/* What redis_cluster_command_slot() found. */
#define REDIS_CLUSTER_SLOT_NONE     (-1)   /* no key: any primary will do */
#define REDIS_CLUSTER_SLOT_INVALID  (-2)   /* refused: @error is set */

/* The slot of the keys of the command that starts at @data (at most @len
 * bytes), its length in @consumed. Keys in more than one slot: INVALID
 * with INVALID_ARGUMENT naming two of the slots. A payload that is not
 * what this library encodes: INVALID with PROTOCOL. */
gint       redis_cluster_command_slot (const guint8  *data,
                                       gsize          len,
                                       gsize         *consumed,
                                       GError       **error);

G_END_DECLS
