/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config-private.h"

#include <string.h>

#include "redis-cluster-slots-private.h"

/* CRC16/XMODEM (polynomial 0x1021, initial value 0), as the Redis Cluster
 * specification defines it: the usual table, one lookup per byte. */
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

/* The same for the first of two bytes: crc16_table2[x] is the table's
 * value for x followed by a zero byte, so that two bytes cost two lookups
 * and no dependency between them (slicing by two). */
static const guint16 crc16_table2[256] = {
  0x0000, 0x3331, 0x6662, 0x5553, 0xccc4, 0xfff5, 0xaaa6, 0x9997,
  0x89a9, 0xba98, 0xefcb, 0xdcfa, 0x456d, 0x765c, 0x230f, 0x103e,
  0x0373, 0x3042, 0x6511, 0x5620, 0xcfb7, 0xfc86, 0xa9d5, 0x9ae4,
  0x8ada, 0xb9eb, 0xecb8, 0xdf89, 0x461e, 0x752f, 0x207c, 0x134d,
  0x06e6, 0x35d7, 0x6084, 0x53b5, 0xca22, 0xf913, 0xac40, 0x9f71,
  0x8f4f, 0xbc7e, 0xe92d, 0xda1c, 0x438b, 0x70ba, 0x25e9, 0x16d8,
  0x0595, 0x36a4, 0x63f7, 0x50c6, 0xc951, 0xfa60, 0xaf33, 0x9c02,
  0x8c3c, 0xbf0d, 0xea5e, 0xd96f, 0x40f8, 0x73c9, 0x269a, 0x15ab,
  0x0dcc, 0x3efd, 0x6bae, 0x589f, 0xc108, 0xf239, 0xa76a, 0x945b,
  0x8465, 0xb754, 0xe207, 0xd136, 0x48a1, 0x7b90, 0x2ec3, 0x1df2,
  0x0ebf, 0x3d8e, 0x68dd, 0x5bec, 0xc27b, 0xf14a, 0xa419, 0x9728,
  0x8716, 0xb427, 0xe174, 0xd245, 0x4bd2, 0x78e3, 0x2db0, 0x1e81,
  0x0b2a, 0x381b, 0x6d48, 0x5e79, 0xc7ee, 0xf4df, 0xa18c, 0x92bd,
  0x8283, 0xb1b2, 0xe4e1, 0xd7d0, 0x4e47, 0x7d76, 0x2825, 0x1b14,
  0x0859, 0x3b68, 0x6e3b, 0x5d0a, 0xc49d, 0xf7ac, 0xa2ff, 0x91ce,
  0x81f0, 0xb2c1, 0xe792, 0xd4a3, 0x4d34, 0x7e05, 0x2b56, 0x1867,
  0x1b98, 0x28a9, 0x7dfa, 0x4ecb, 0xd75c, 0xe46d, 0xb13e, 0x820f,
  0x9231, 0xa100, 0xf453, 0xc762, 0x5ef5, 0x6dc4, 0x3897, 0x0ba6,
  0x18eb, 0x2bda, 0x7e89, 0x4db8, 0xd42f, 0xe71e, 0xb24d, 0x817c,
  0x9142, 0xa273, 0xf720, 0xc411, 0x5d86, 0x6eb7, 0x3be4, 0x08d5,
  0x1d7e, 0x2e4f, 0x7b1c, 0x482d, 0xd1ba, 0xe28b, 0xb7d8, 0x84e9,
  0x94d7, 0xa7e6, 0xf2b5, 0xc184, 0x5813, 0x6b22, 0x3e71, 0x0d40,
  0x1e0d, 0x2d3c, 0x786f, 0x4b5e, 0xd2c9, 0xe1f8, 0xb4ab, 0x879a,
  0x97a4, 0xa495, 0xf1c6, 0xc2f7, 0x5b60, 0x6851, 0x3d02, 0x0e33,
  0x1654, 0x2565, 0x7036, 0x4307, 0xda90, 0xe9a1, 0xbcf2, 0x8fc3,
  0x9ffd, 0xaccc, 0xf99f, 0xcaae, 0x5339, 0x6008, 0x355b, 0x066a,
  0x1527, 0x2616, 0x7345, 0x4074, 0xd9e3, 0xead2, 0xbf81, 0x8cb0,
  0x9c8e, 0xafbf, 0xfaec, 0xc9dd, 0x504a, 0x637b, 0x3628, 0x0519,
  0x10b2, 0x2383, 0x76d0, 0x45e1, 0xdc76, 0xef47, 0xba14, 0x8925,
  0x991b, 0xaa2a, 0xff79, 0xcc48, 0x55df, 0x66ee, 0x33bd, 0x008c,
  0x13c1, 0x20f0, 0x75a3, 0x4692, 0xdf05, 0xec34, 0xb967, 0x8a56,
  0x9a68, 0xa959, 0xfc0a, 0xcf3b, 0x56ac, 0x659d, 0x30ce, 0x03ff,
};

guint16
redis_cluster_crc16 (const guint8 *data,
                     gsize         len)
{
  guint16 crc = 0;
  gsize i = 0;

  /* Two bytes per step: routing hashes every key, and keys are short, so
   * the loop, not the table, is most of the cost. */
  for (; i + 1 < len; i += 2)
    crc = crc16_table2[(crc >> 8) ^ data[i]] ^ crc16_table[(crc & 0xff) ^ data[i + 1]];
  if (i < len)
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
  g_strfreev (range->replicas);
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

/* Takes @address; copies @replicas (NULL: none). */
static gboolean
add_range (GArray     *ranges,
           gint64      first,
           gint64      last,
           char       *address,
           GPtrArray  *replicas)
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
  range.replicas = g_new0 (char *, (replicas != NULL ? replicas->len : 0) + 1);
  for (guint i = 0; replicas != NULL && i < replicas->len; i++)
    range.replicas[i] = g_strdup (replicas->pdata[i]);
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
      g_autoptr(GPtrArray) replicas = g_ptr_array_new_with_free_func (g_free);

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

          if (role == NULL || port <= 0)
            continue;
          if (g_str_equal (role, "replica"))
            {
              /* Only one that is up and synced serves reads. */
              if (health != NULL && g_str_equal (health, "online"))
                g_ptr_array_add (replicas, format_address (map_text (node, "endpoint"),
                                                           default_host, port));
              continue;
            }
          if (!g_str_equal (role, "master") || address != NULL ||
              (health != NULL && g_str_has_prefix (health, "fail")))
            continue;
          address = format_address (map_text (node, "endpoint"), default_host, port);
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
                          redis_reply_get_integer (last), g_strdup (address), replicas))
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
      g_autoptr(GPtrArray) replicas = g_ptr_array_new_with_free_func (g_free);

      if (redis_reply_get_kind (entry) != REDIS_REPLY_KIND_ARRAY ||
          redis_reply_get_n_elements (entry) < 3)
        return NULL;
      primary = redis_reply_get_element (entry, 2);
      if (redis_reply_get_kind (primary) != REDIS_REPLY_KIND_ARRAY ||
          redis_reply_get_n_elements (primary) < 2 ||
          redis_reply_get_kind (redis_reply_get_element (primary, 1)) != REDIS_REPLY_KIND_INTEGER)
        return NULL;
      for (guint r = 3; r < redis_reply_get_n_elements (entry); r++)
        {
          RedisReply *replica = redis_reply_get_element (entry, r);

          if (redis_reply_get_kind (replica) != REDIS_REPLY_KIND_ARRAY ||
              redis_reply_get_n_elements (replica) < 2 ||
              redis_reply_get_kind (redis_reply_get_element (replica, 1)) != REDIS_REPLY_KIND_INTEGER)
            return NULL;
          g_ptr_array_add (replicas,
                           format_address (redis_reply_get_text (redis_reply_get_element (replica, 0)),
                                           default_host,
                                           redis_reply_get_integer (redis_reply_get_element (replica, 1))));
        }
      if (!add_range (ranges,
                      redis_reply_get_integer (redis_reply_get_element (entry, 0)),
                      redis_reply_get_integer (redis_reply_get_element (entry, 1)),
                      format_address (redis_reply_get_text (redis_reply_get_element (primary, 0)),
                                      default_host,
                                      redis_reply_get_integer (redis_reply_get_element (primary, 1))),
                      replicas))
        return NULL;
    }
  return g_steal_pointer (&ranges);
}
