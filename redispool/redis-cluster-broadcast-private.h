/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "redis-reply.h"

G_BEGIN_DECLS

/* Commands meant for every node of a cluster, and how their replies
 * combine into one, as Redis 7 tells of them in the "tips" of COMMAND
 * INFO (request_policy:…, response_policy:…). */

typedef enum
{
  REDIS_CLUSTER_REQUEST_ALL_SHARDS,   /* every primary */
  REDIS_CLUSTER_REQUEST_ALL_NODES,    /* every node known, replicas too */
} RedisClusterRequestPolicy;

typedef enum
{
  REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED,    /* the first error, else the first reply */
  REDIS_CLUSTER_RESPONSE_ONE_SUCCEEDED,    /* the first reply that is not an error */
  REDIS_CLUSTER_RESPONSE_AGG_SUM,          /* the sum of the integers */
  REDIS_CLUSTER_RESPONSE_AGG_LOGICAL_AND,  /* element-wise AND of arrays of 0/1 */
  REDIS_CLUSTER_RESPONSE_CONCATENATE,      /* the arrays one after the other (no tip) */
} RedisClusterResponsePolicy;

typedef struct
{
  const char                 *name;         /* upper case */
  const char                 *subcommand;   /* upper case, or NULL */
  RedisClusterRequestPolicy   request;
  RedisClusterResponsePolicy  response;
} RedisClusterBroadcast;

/* The rule of the command that is the whole of @data (@len bytes, one
 * RESP array of bulk strings), or NULL when it goes to one node. */
const RedisClusterBroadcast *redis_cluster_broadcast_lookup  (const guint8  *data,
                                                              gsize          len);

/* Every rule of the table, @n_rules of them (tests check it against the
 * servers' own tips). */
const RedisClusterBroadcast *redis_cluster_broadcast_rules   (guint         *n_rules);

/* The reply of the broadcast call, from the outcome on each of @n nodes:
 * @replies[i] (a reply, error replies included) or @errors[i] (the call
 * failed there), the node at @addresses[i]. NULL with @error set when the
 * call fails as a whole: SERVER or the node's own error, its message
 * prefixed with the node's address. */
RedisReply *redis_cluster_broadcast_combine (const RedisClusterBroadcast  *rule,
                                             const char * const           *addresses,
                                             RedisReply * const           *replies,
                                             GError * const               *errors,
                                             guint                         n,
                                             GError                      **error);

G_END_DECLS
