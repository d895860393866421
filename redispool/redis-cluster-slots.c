/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config-private.h"

#include <string.h>

#include "redis-cluster-slots-private.h"

/* CRC16/XMODEM (polynomial 0x1021, initial value 0), as the Redis Cluster
 * specification defines it, one table lookup per byte. */
static const guint16 crc16_table[256] = {
  0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
  0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
  0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
  0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
  0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
  0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
  0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
  0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
  0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
  0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
  0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
  0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
  0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
  0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
  0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
  0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
  0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
  0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
  0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
  0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
  0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
  0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
  0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
  0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
  0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
  0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
  0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
  0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
  0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
  0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
  0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
  0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

guint16
redis_cluster_crc16 (const guint8 *data,
                     gsize         len)
{
  guint16 crc = 0;

  for (gsize i = 0; i < len; i++)
    crc = (guint16) ((crc << 8) ^ crc16_table[((crc >> 8) ^ data[i]) & 0xff]);
  return crc;
}

guint16
redis_cluster_slot_of (const guint8 *key,
                       gsize         len)
{
  const guint8 *open;
  const guint8 *close;

  /* The hash tag: between the first "{" and the first "}" after it, if
   * that is not empty; otherwise the whole key. */
  open = len > 0 ? memchr (key, '{', len) : NULL;
  if (open != NULL)
    {
      gsize rest = len - (gsize) (open - key) - 1;

      close = rest > 0 ? memchr (open + 1, '}', rest) : NULL;
      if (close != NULL && close > open + 1)
        return redis_cluster_crc16 (open + 1, (gsize) (close - open - 1)) & (REDIS_CLUSTER_N_SLOTS - 1);
    }
  return redis_cluster_crc16 (key, len) & (REDIS_CLUSTER_N_SLOTS - 1);
}

static void
clear_range (gpointer data)
{
  RedisClusterRange *range = data;

  g_free (range->address);
}

static GArray *
ranges_new (void)
{
  GArray *ranges = g_array_new (FALSE, FALSE, sizeof (RedisClusterRange));

  g_array_set_clear_func (ranges, clear_range);
  return ranges;
}

static char *
format_address (const char *host,
                const char *default_host,
                gint64      port)
{
  if (host == NULL || host[0] == '\0' || g_str_equal (host, "?"))
    host = default_host;
  if (strchr (host, ':') != NULL)
    return g_strdup_printf ("[%s]:%" G_GINT64_FORMAT, host, port);
  return g_strdup_printf ("%s:%" G_GINT64_FORMAT, host, port);
}

static gboolean
add_range (GArray     *ranges,
           gint64      first,
           gint64      last,
           char       *address)
{
  RedisClusterRange range;

  if (first < 0 || last < first || last >= REDIS_CLUSTER_N_SLOTS)
    {
      g_free (address);
      return FALSE;
    }
  range.first = (guint16) first;
  range.last = (guint16) last;
  range.address = address;
  g_array_append_val (ranges, range);
  return TRUE;
}

/* The value of @name in a flat map (RESP2 array of name, value…). */
static RedisReply *
map_lookup (RedisReply *map,
            const char *name)
{
  guint n;

  if (redis_reply_get_kind (map) != REDIS_REPLY_KIND_ARRAY)
    return NULL;
  n = redis_reply_get_n_elements (map);
  for (guint i = 0; i + 1 < n; i += 2)
    {
      const char *key = redis_reply_get_text (redis_reply_get_element (map, i));

      if (key != NULL && g_str_equal (key, name))
        return redis_reply_get_element (map, i + 1);
    }
  return NULL;
}

static const char *
map_text (RedisReply *map,
          const char *name)
{
  RedisReply *value = map_lookup (map, name);

  if (value == NULL || redis_reply_get_kind (value) != REDIS_REPLY_KIND_STRING)
    return NULL;
  return redis_reply_get_text (value);
}

static gint64
map_integer (RedisReply *map,
             const char *name)
{
  RedisReply *value = map_lookup (map, name);

  if (value == NULL || redis_reply_get_kind (value) != REDIS_REPLY_KIND_INTEGER)
    return -1;
  return redis_reply_get_integer (value);
}

GArray *
redis_cluster_parse_shards (RedisReply *reply,
                            const char *default_host,
                            gboolean    tls)
{
  g_autoptr(GArray) ranges = ranges_new ();

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY)
    return NULL;

  for (guint s = 0; s < redis_reply_get_n_elements (reply); s++)
    {
      RedisReply *shard = redis_reply_get_element (reply, s);
      RedisReply *slots = map_lookup (shard, "slots");
      RedisReply *nodes = map_lookup (shard, "nodes");
      g_autofree char *address = NULL;

      if (slots == NULL || nodes == NULL ||
          redis_reply_get_kind (slots) != REDIS_REPLY_KIND_ARRAY ||
          redis_reply_get_kind (nodes) != REDIS_REPLY_KIND_ARRAY)
        return NULL;

      for (guint n = 0; n < redis_reply_get_n_elements (nodes); n++)
        {
          RedisReply *node = redis_reply_get_element (nodes, n);
          const char *role = map_text (node, "role");
          const char *health = map_text (node, "health");
          gint64 port = map_integer (node, tls ? "tls-port" : "port");

          if (role == NULL || !g_str_equal (role, "master") ||
              (health != NULL && g_str_equal (health, "fail")) || port <= 0)
            continue;
          address = format_address (map_text (node, "endpoint"), default_host, port);
          break;
        }
      if (address == NULL)
        continue;   /* a shard whose primary is failing: no owner yet */

      for (guint i = 0; i + 1 < redis_reply_get_n_elements (slots); i += 2)
        {
          RedisReply *first = redis_reply_get_element (slots, i);
          RedisReply *last = redis_reply_get_element (slots, i + 1);

          if (redis_reply_get_kind (first) != REDIS_REPLY_KIND_INTEGER ||
              redis_reply_get_kind (last) != REDIS_REPLY_KIND_INTEGER ||
              !add_range (ranges, redis_reply_get_integer (first),
                          redis_reply_get_integer (last), g_strdup (address)))
            return NULL;
        }
    }
  return g_steal_pointer (&ranges);
}

GArray *
redis_cluster_parse_slots (RedisReply *reply,
                           const char *default_host)
{
  g_autoptr(GArray) ranges = ranges_new ();

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY)
    return NULL;

  for (guint i = 0; i < redis_reply_get_n_elements (reply); i++)
    {
      RedisReply *entry = redis_reply_get_element (reply, i);
      RedisReply *primary;

      if (redis_reply_get_kind (entry) != REDIS_REPLY_KIND_ARRAY ||
          redis_reply_get_n_elements (entry) < 3)
        return NULL;
      primary = redis_reply_get_element (entry, 2);
      if (redis_reply_get_kind (primary) != REDIS_REPLY_KIND_ARRAY ||
          redis_reply_get_n_elements (primary) < 2 ||
          redis_reply_get_kind (redis_reply_get_element (primary, 1)) != REDIS_REPLY_KIND_INTEGER)
        return NULL;
      if (!add_range (ranges,
                      redis_reply_get_integer (redis_reply_get_element (entry, 0)),
                      redis_reply_get_integer (redis_reply_get_element (entry, 1)),
                      format_address (redis_reply_get_text (redis_reply_get_element (primary, 0)),
                                      default_host,
                                      redis_reply_get_integer (redis_reply_get_element (primary, 1)))))
        return NULL;
    }
  return g_steal_pointer (&ranges);
}
