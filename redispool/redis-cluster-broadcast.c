/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config-private.h"

#include <string.h>

#include "redis-cluster-broadcast-private.h"
#include "redis-error.h"
#include "redis-reply-private.h"

/* The table follows the tips redis-server 7.0 gives in COMMAND INFO (the
 * tests compare the two). Left out on purpose: PING (all_shards there,
 * but a caller pings to check one connection), WAIT (about the writes of
 * its own connection), RANDOMKEY and FUNCTION STATS (special replies). */
static const RedisClusterBroadcast rules[] = {
  { "FLUSHALL", NULL, REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "FLUSHDB", NULL, REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "DBSIZE", NULL, REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_AGG_SUM },
  { "KEYS", NULL, REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_CONCATENATE },
  { "SCRIPT", "LOAD", REDIS_CLUSTER_REQUEST_ALL_NODES, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "SCRIPT", "FLUSH", REDIS_CLUSTER_REQUEST_ALL_NODES, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "SCRIPT", "EXISTS", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_AGG_LOGICAL_AND },
  { "SCRIPT", "KILL", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ONE_SUCCEEDED },
  { "FUNCTION", "LOAD", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "FUNCTION", "DELETE", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "FUNCTION", "FLUSH", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "FUNCTION", "RESTORE", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "FUNCTION", "KILL", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ONE_SUCCEEDED },
  { "CONFIG", "SET", REDIS_CLUSTER_REQUEST_ALL_NODES, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "SLOWLOG", "RESET", REDIS_CLUSTER_REQUEST_ALL_NODES, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "LATENCY", "RESET", REDIS_CLUSTER_REQUEST_ALL_NODES, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
  { "MEMORY", "PURGE", REDIS_CLUSTER_REQUEST_ALL_SHARDS, REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED },
};

const RedisClusterBroadcast *
redis_cluster_broadcast_rules (guint *n_rules)
{
  *n_rules = G_N_ELEMENTS (rules);
  return rules;
}

/* Reads one bulk string at *@p: "$3\r\nfoo\r\n". */
static gboolean
read_bulk (const guint8 **p,
           const guint8  *end,
           const guint8 **arg,
           gsize         *arg_len)
{
  const guint8 *q = *p;
  gsize n = 0;

  if (q >= end || *q != '$')
    return FALSE;
  for (q++; q < end && *q >= '0' && *q <= '9'; q++)
    {
      if (n > G_MAXSIZE / 16)
        return FALSE;
      n = n * 10 + (gsize) (*q - '0');
    }
  if (end - q < 2 || q[0] != '\r' || q[1] != '\n' || (gsize) (end - q - 2) < n + 2)
    return FALSE;
  *arg = q + 2;
  *arg_len = n;
  *p = q + 2 + n + 2;
  return TRUE;
}

static gboolean
word_equal (const guint8 *arg,
            gsize         len,
            const char   *word)
{
  return word != NULL && strlen (word) == len && g_ascii_strncasecmp ((const char *) arg, word, len) == 0;
}

const RedisClusterBroadcast *
redis_cluster_broadcast_lookup (const guint8 *data,
                                gsize         len)
{
  const guint8 *p = data, *end = data + len;
  const guint8 *name, *sub = NULL;
  gsize name_len, sub_len = 0;
  guint argc = 0;

  /* The first two arguments: "*N\r\n" then bulk strings. */
  if (len < 4 || data[0] != '*')
    return NULL;
  for (p++; p < end && *p >= '0' && *p <= '9' && argc < 1000; p++)
    argc = argc * 10 + (guint) (*p - '0');
  if (argc == 0 || end - p < 2 || p[0] != '\r' || p[1] != '\n')
    return NULL;
  p += 2;
  if (!read_bulk (&p, end, &name, &name_len))
    return NULL;
  if (argc > 1 && !read_bulk (&p, end, &sub, &sub_len))
    return NULL;

  for (guint i = 0; i < G_N_ELEMENTS (rules); i++)
    if (word_equal (name, name_len, rules[i].name) &&
        (rules[i].subcommand == NULL || (sub != NULL && word_equal (sub, sub_len, rules[i].subcommand))))
      return &rules[i];
  return NULL;
}

/* The failure of node @i as an error of the whole call, naming the node. */
static void
node_error (const char * const  *addresses,
            RedisReply * const  *replies,
            GError * const      *errors,
            guint                i,
            GError             **error)
{
  if (errors[i] != NULL)
    g_set_error (error, errors[i]->domain, errors[i]->code, "%s: %s",
                 addresses[i], errors[i]->message);
  else
    g_set_error (error, REDIS_ERROR, REDIS_ERROR_SERVER, "%s: %s",
                 addresses[i], redis_reply_get_text (replies[i]));
}

static gboolean
failed (RedisReply * const *replies,
        GError * const     *errors,
        guint               i)
{
  return errors[i] != NULL || redis_reply_get_kind (replies[i]) == REDIS_REPLY_KIND_ERROR;
}

static gboolean
wrong_kind (const char * const  *addresses,
            RedisReply          *reply,
            RedisReplyKind       kind,
            guint                i,
            GError             **error)
{
  if (redis_reply_get_kind (reply) == kind)
    return FALSE;
  g_set_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL,
               "%s answered a broadcast command with a reply of an unexpected kind",
               addresses[i]);
  return TRUE;
}

RedisReply *
redis_cluster_broadcast_combine (const RedisClusterBroadcast  *rule,
                                 const char * const           *addresses,
                                 RedisReply * const           *replies,
                                 GError * const               *errors,
                                 guint                         n,
                                 GError                      **error)
{
  RedisReply *combined;

  g_return_val_if_fail (n > 0, NULL);

  if (rule->response == REDIS_CLUSTER_RESPONSE_ONE_SUCCEEDED)
    {
      for (guint i = 0; i < n; i++)
        if (!failed (replies, errors, i))
          return redis_reply_ref (replies[i]);
      node_error (addresses, replies, errors, 0, error);
      return NULL;
    }

  /* The other policies need every node: the first failure wins. */
  for (guint i = 0; i < n; i++)
    if (failed (replies, errors, i))
      {
        node_error (addresses, replies, errors, i, error);
        return NULL;
      }

  switch (rule->response)
    {
    case REDIS_CLUSTER_RESPONSE_ALL_SUCCEEDED:
      return redis_reply_ref (replies[0]);

    case REDIS_CLUSTER_RESPONSE_AGG_SUM:
      {
        gint64 sum = 0;

        for (guint i = 0; i < n; i++)
          {
            if (wrong_kind (addresses, replies[i], REDIS_REPLY_KIND_INTEGER, i, error))
              return NULL;
            sum += redis_reply_get_integer (replies[i]);
          }
        return redis_reply_new_integer (sum);
      }

    case REDIS_CLUSTER_RESPONSE_AGG_LOGICAL_AND:
      {
        guint len = 0;

        for (guint i = 0; i < n; i++)
          {
            if (wrong_kind (addresses, replies[i], REDIS_REPLY_KIND_ARRAY, i, error))
              return NULL;
            if (i > 0 && redis_reply_get_n_elements (replies[i]) != len)
              {
                g_set_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                             "%s answered a broadcast command with %u elements, %s with %u",
                             addresses[i], redis_reply_get_n_elements (replies[i]),
                             addresses[0], len);
                return NULL;
              }
            len = redis_reply_get_n_elements (replies[i]);
          }
        combined = redis_reply_new_array (len);
        for (guint e = 0; e < len; e++)
          {
            gint64 all = 1;

            for (guint i = 0; i < n; i++)
              all = all && redis_reply_get_integer (redis_reply_get_element (replies[i], e)) != 0;
            redis_reply_set_element (combined, e, redis_reply_new_integer (all));
          }
        return combined;
      }

    case REDIS_CLUSTER_RESPONSE_CONCATENATE:
      {
        guint total = 0, next = 0;

        for (guint i = 0; i < n; i++)
          {
            if (wrong_kind (addresses, replies[i], REDIS_REPLY_KIND_ARRAY, i, error))
              return NULL;
            total += redis_reply_get_n_elements (replies[i]);
          }
        combined = redis_reply_new_array (total);
        for (guint i = 0; i < n; i++)
          for (guint e = 0; e < redis_reply_get_n_elements (replies[i]); e++)
            redis_reply_set_element (combined, next++,
                                     redis_reply_ref (redis_reply_get_element (replies[i], e)));
        return combined;
      }

    case REDIS_CLUSTER_RESPONSE_ONE_SUCCEEDED:
    default:
      g_assert_not_reached ();
    }
}
