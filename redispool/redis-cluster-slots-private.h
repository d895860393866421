/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "redis-reply.h"

G_BEGIN_DECLS

/* Redis Cluster hash slots: CRC16/XMODEM of the key (or of its hash tag,
 * the part between the first "{" and the next "}" when not empty), modulo
 * REDIS_CLUSTER_N_SLOTS. */
#define REDIS_CLUSTER_N_SLOTS 16384

guint16    redis_cluster_crc16        (const guint8 *data,
                                       gsize         len);
guint16    redis_cluster_slot_of      (const guint8 *key,
                                       gsize         len);

/* One range of slots served by the primary at @address ("host:port"),
 * and by the replicas at @replicas (NULL-terminated, never NULL: empty
 * when the range has none) for reads. */
typedef struct
{
  guint16  first;
  guint16  last;
  char    *address;
  char   **replicas;
} RedisClusterRange;

/* Parses a CLUSTER SHARDS reply (RESP2: an array of flat maps) into an
 * array of RedisClusterRange: the primary of each shard, and its replicas
 * that are online (health "online"; a replica still loading or failed
 * would not answer reads); @default_host replaces an empty or "?"
 * announced address. NULL if the reply is not one. */
GArray    *redis_cluster_parse_shards (RedisReply   *reply,
                                       const char   *default_host,
                                       gboolean      tls);
/* Same for a CLUSTER SLOTS reply, whose entries list the primary and then
 * the replicas (it tells nothing of their health). */
GArray    *redis_cluster_parse_slots  (RedisReply   *reply,
                                       const char   *default_host);

G_END_DECLS
