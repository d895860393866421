/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config-private.h"

#include <string.h>

#include "redis-cluster-keys-private.h"
#include "redis-cluster-slots-private.h"
#include "redis-error.h"

typedef struct
{
  const guint8 *data;
  gsize         len;
} Arg;

/* Key positions, as COMMAND INFO gives them: the first key, the last one
 * (negative: from the end, -1 the last argument) and the step (0: the
 * command has no key). A first of
 * 0 with numkeys_at: the number of keys is the argument at numkeys_at and
 * the keys follow it (EVAL, FCALL). @readonly: Redis's own "readonly"
 * command flag (as COMMAND INFO of Redis 7.0 gives it), what a cluster
 * replica serves after READONLY. */
typedef struct
{
  const char *name;
  gint8       first;
  gint8       last;
  gint8       step;
  gint8       numkeys_at;
  gboolean    readonly;
} KeySpec;

#define RO TRUE   /* in the table: a read-only command */

static const KeySpec key_specs[] = {
  /* several keys */
  { "DEL", 1, -1, 1, 0 }, { "UNLINK", 1, -1, 1, 0 }, { "EXISTS", 1, -1, 1, 0, RO },
  { "TOUCH", 1, -1, 1, 0, RO }, { "MGET", 1, -1, 1, 0, RO }, { "WATCH", 1, -1, 1, 0 },
  { "MSET", 1, -1, 2, 0 }, { "MSETNX", 1, -1, 2, 0 },
  { "SDIFF", 1, -1, 1, 0, RO }, { "SINTER", 1, -1, 1, 0, RO }, { "SUNION", 1, -1, 1, 0, RO },
  { "SDIFFSTORE", 1, -1, 1, 0 }, { "SINTERSTORE", 1, -1, 1, 0 },
  { "SUNIONSTORE", 1, -1, 1, 0 }, { "PFCOUNT", 1, -1, 1, 0, RO }, { "PFMERGE", 1, -1, 1, 0 },
  { "BLPOP", 1, -2, 1, 0 }, { "BRPOP", 1, -2, 1, 0 }, { "BZPOPMIN", 1, -2, 1, 0 },
  { "BZPOPMAX", 1, -2, 1, 0 },
  { "RENAME", 1, 2, 1, 0 }, { "RENAMENX", 1, 2, 1, 0 }, { "SMOVE", 1, 2, 1, 0 },
  { "RPOPLPUSH", 1, 2, 1, 0 }, { "LMOVE", 1, 2, 1, 0 }, { "BLMOVE", 1, 2, 1, 0 },
  { "BRPOPLPUSH", 1, 2, 1, 0 }, { "COPY", 1, 2, 1, 0 },
  /* numkeys forms */
  { "EVAL", 0, 0, 1, 2 }, { "EVALSHA", 0, 0, 1, 2 }, { "EVAL_RO", 0, 0, 1, 2, RO },
  { "EVALSHA_RO", 0, 0, 1, 2, RO }, { "FCALL", 0, 0, 1, 2 }, { "FCALL_RO", 0, 0, 1, 2, RO },
  /* one key, the first argument */
  { "GET", 1, 1, 1, 0, RO }, { "SET", 1, 1, 1, 0 }, { "SETNX", 1, 1, 1, 0 },
  { "SETEX", 1, 1, 1, 0 }, { "PSETEX", 1, 1, 1, 0 }, { "GETSET", 1, 1, 1, 0 },
  { "GETDEL", 1, 1, 1, 0 }, { "GETEX", 1, 1, 1, 0 }, { "APPEND", 1, 1, 1, 0 },
  { "STRLEN", 1, 1, 1, 0, RO }, { "INCR", 1, 1, 1, 0 }, { "DECR", 1, 1, 1, 0 },
  { "INCRBY", 1, 1, 1, 0 }, { "DECRBY", 1, 1, 1, 0 }, { "INCRBYFLOAT", 1, 1, 1, 0 },
  { "GETRANGE", 1, 1, 1, 0, RO }, { "SETRANGE", 1, 1, 1, 0 }, { "EXPIRE", 1, 1, 1, 0 },
  { "PEXPIRE", 1, 1, 1, 0 }, { "EXPIREAT", 1, 1, 1, 0 }, { "PEXPIREAT", 1, 1, 1, 0 },
  { "TTL", 1, 1, 1, 0, RO }, { "PTTL", 1, 1, 1, 0, RO }, { "PERSIST", 1, 1, 1, 0 },
  { "TYPE", 1, 1, 1, 0, RO }, { "DUMP", 1, 1, 1, 0, RO }, { "RESTORE", 1, 1, 1, 0 },
  { "HSET", 1, 1, 1, 0 }, { "HGET", 1, 1, 1, 0, RO }, { "HDEL", 1, 1, 1, 0 },
  { "HGETALL", 1, 1, 1, 0, RO }, { "HMSET", 1, 1, 1, 0 }, { "HMGET", 1, 1, 1, 0, RO },
  { "HINCRBY", 1, 1, 1, 0 }, { "HKEYS", 1, 1, 1, 0, RO }, { "HVALS", 1, 1, 1, 0, RO },
  { "HLEN", 1, 1, 1, 0, RO }, { "HEXISTS", 1, 1, 1, 0, RO }, { "HSETNX", 1, 1, 1, 0 },
  { "HSCAN", 1, 1, 1, 0, RO }, { "LPUSH", 1, 1, 1, 0 }, { "RPUSH", 1, 1, 1, 0 },
  { "LPOP", 1, 1, 1, 0 }, { "RPOP", 1, 1, 1, 0 }, { "LRANGE", 1, 1, 1, 0, RO },
  { "LLEN", 1, 1, 1, 0, RO }, { "LINDEX", 1, 1, 1, 0, RO }, { "LSET", 1, 1, 1, 0 },
  { "LREM", 1, 1, 1, 0 }, { "LTRIM", 1, 1, 1, 0 }, { "LPOS", 1, 1, 1, 0, RO },
  { "SADD", 1, 1, 1, 0 }, { "SREM", 1, 1, 1, 0 }, { "SMEMBERS", 1, 1, 1, 0, RO },
  { "SISMEMBER", 1, 1, 1, 0, RO }, { "SCARD", 1, 1, 1, 0, RO }, { "SPOP", 1, 1, 1, 0 },
  { "SSCAN", 1, 1, 1, 0, RO }, { "SRANDMEMBER", 1, 1, 1, 0, RO },
  { "ZADD", 1, 1, 1, 0 }, { "ZREM", 1, 1, 1, 0 }, { "ZRANGE", 1, 1, 1, 0, RO },
  { "ZSCORE", 1, 1, 1, 0, RO }, { "ZCARD", 1, 1, 1, 0, RO }, { "ZINCRBY", 1, 1, 1, 0 },
  { "ZRANK", 1, 1, 1, 0, RO }, { "ZREVRANGE", 1, 1, 1, 0, RO }, { "ZRANGEBYSCORE", 1, 1, 1, 0, RO },
  { "ZREVRANK", 1, 1, 1, 0, RO }, { "ZCOUNT", 1, 1, 1, 0, RO }, { "ZSCAN", 1, 1, 1, 0, RO },
  { "ZPOPMIN", 1, 1, 1, 0 }, { "ZPOPMAX", 1, 1, 1, 0 },
  { "XADD", 1, 1, 1, 0 }, { "XLEN", 1, 1, 1, 0, RO }, { "XRANGE", 1, 1, 1, 0, RO },
  { "XREVRANGE", 1, 1, 1, 0, RO }, { "XDEL", 1, 1, 1, 0 }, { "XTRIM", 1, 1, 1, 0 },
  { "XACK", 1, 1, 1, 0 }, { "XGROUP", 2, 2, 1, 0 },
  { "PFADD", 1, 1, 1, 0 }, { "SETBIT", 1, 1, 1, 0 }, { "GETBIT", 1, 1, 1, 0, RO },
  { "BITCOUNT", 1, 1, 1, 0, RO }, { "BITPOS", 1, 1, 1, 0, RO }, { "OBJECT", 2, 2, 1, 0, RO },
  { "GEOADD", 1, 1, 1, 0 }, { "GEODIST", 1, 1, 1, 0, RO }, { "GEOPOS", 1, 1, 1, 0, RO },
  { "GEOSEARCH", 1, 1, 1, 0, RO },
  /* no key (step 0): routed at once, the servers are not asked */
  { "PING", 0, 0, 0, 0 }, { "ECHO", 0, 0, 0, 0 }, { "INFO", 0, 0, 0, 0 },
  { "MULTI", 0, 0, 0, 0 }, { "EXEC", 0, 0, 0, 0 }, { "DISCARD", 0, 0, 0, 0 },
  { "UNWATCH", 0, 0, 0, 0 }, { "CLIENT", 0, 0, 0, 0 }, { "CLUSTER", 0, 0, 0, 0 },
  { "COMMAND", 0, 0, 0, 0 }, { "DBSIZE", 0, 0, 0, 0, RO }, { "TIME", 0, 0, 0, 0 },
  { "CONFIG", 0, 0, 0, 0 }, { "FLUSHALL", 0, 0, 0, 0 }, { "FLUSHDB", 0, 0, 0, 0 },
  { "SCRIPT", 0, 0, 0, 0 }, { "FUNCTION", 0, 0, 0, 0 }, { "ASKING", 0, 0, 0, 0 },
  { "READONLY", 0, 0, 0, 0 }, { "READWRITE", 0, 0, 0, 0 }, { "HELLO", 0, 0, 0, 0 },
  { "AUTH", 0, 0, 0, 0 }, { "SELECT", 0, 0, 0, 0 }, { "RANDOMKEY", 0, 0, 0, 0, RO },
  { "SCAN", 0, 0, 0, 0, RO }, { "KEYS", 0, 0, 0, 0, RO }, { "WAIT", 0, 0, 0, 0 },
  { "LASTSAVE", 0, 0, 0, 0 }, { "ROLE", 0, 0, 0, 0 }, { "PUBLISH", 0, 0, 0, 0 },
  { "SLOWLOG", 0, 0, 0, 0 }, { "LATENCY", 0, 0, 0, 0 }, { "ACL", 0, 0, 0, 0 },
  { "QUIT", 0, 0, 0, 0 }, { "RESET", 0, 0, 0, 0 }, { "SAVE", 0, 0, 0, 0 },
  { "BGSAVE", 0, 0, 0, 0 }, { "BGREWRITEAOF", 0, 0, 0, 0 },
};

#undef RO

/* The table, open-addressed by a hash of the name. The name is read as
 * two 64-bit words, upper-cased a whole word at a time: the hash and the
 * comparison then cost a few instructions whatever the name, where a loop
 * over its bytes cost more than the rest of the lookup. */
#define SPEC_BITS    9
#define SPEC_BUCKETS (1u << SPEC_BITS)   /* > 2 × G_N_ELEMENTS (key_specs) */
#define NAME_MAX_LEN 16                  /* longer names are in no table entry */

G_STATIC_ASSERT (2 * G_N_ELEMENTS (key_specs) < SPEC_BUCKETS);

/* A name as two words: its bytes, upper-cased, little-endian; the first
 * 8 in @w0 (fewer: the rest zero), the last 8 in @w1 when it is longer
 * (overlapping @w0), else 0. With the length, equal words mean equal
 * names. */
typedef struct
{
  guint64  w0;
  guint64  w1;
} NameWords;

typedef struct
{
  NameWords      words;
  guint8         len;      /* 0: an empty bucket */
  const KeySpec *spec;
} SpecBucket;

static SpecBucket spec_buckets[SPEC_BUCKETS];

#define ONES G_GUINT64_CONSTANT (0x0101010101010101)

static inline guint64
load_le64 (const guint8 *p)
{
  guint64 v;

  memcpy (&v, p, sizeof v);
  return GUINT64_FROM_LE (v);
}

/* Upper-cases the ASCII letters of the 8 bytes of @v at once (SWAR): bit
 * 7 of each byte of the sums tells whether it is ≥ 'a' and > 'z'; bytes
 * with bit 7 set are left alone. */
static inline guint64
upper_word (guint64 v)
{
  guint64 low7 = v & (0x7f * ONES);
  guint64 from_a = low7 + (0x80 - 'a') * ONES;
  guint64 past_z = low7 + (0x80 - 'z' - 1) * ONES;
  guint64 lower = from_a & ~past_z & ~v & (0x80 * ONES);

  return v ^ (lower >> 2);   /* 0x80 >> 2: the case bit, 0x20 */
}

#undef ONES

/* The words of the name at @name, 1 to NAME_MAX_LEN bytes. A name shorter
 * than 8 bytes is read as the 8 bytes that end with it: the 8 bytes before
 * it must be readable, as the headers of a command ("*<argc>\r\n$<len>\r\n",
 * at least 8 bytes) are before its name. */
static inline NameWords
name_words (const guint8 *name,
            gsize         len)
{
  NameWords words;

  if (len <= 8)
    {
      words.w0 = upper_word (load_le64 (name + len - 8) >> (8 * (8 - len)));
      words.w1 = 0;
    }
  else
    {
      words.w0 = upper_word (load_le64 (name));
      words.w1 = upper_word (load_le64 (name + len - 8));
    }
  return words;
}

static inline guint32
name_bucket (NameWords words,
             gsize     len)
{
  guint64 x = words.w0 ^ ((words.w1 << 29) | (words.w1 >> 35)) ^ len;

  /* Fibonacci hashing: the top bits of the product. */
  return (guint32) ((x * G_GUINT64_CONSTANT (0x9e3779b97f4a7c15)) >> (64 - SPEC_BITS));
}

static void
build_buckets (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (key_specs); i++)
    {
      /* The name after 8 bytes of padding, for name_words(). */
      guint8 padded[8 + NAME_MAX_LEN] = { 0 };
      gsize len = strlen (key_specs[i].name);
      NameWords words;
      guint32 b;

      g_assert (len > 0 && len <= NAME_MAX_LEN);
      memcpy (padded + 8, key_specs[i].name, len);
      words = name_words (padded + 8, len);
      b = name_bucket (words, len);
      while (spec_buckets[b].len != 0)
        b = (b + 1) & (SPEC_BUCKETS - 1);
      spec_buckets[b].words = words;
      spec_buckets[b].len = (guint8) len;
      spec_buckets[b].spec = &key_specs[i];
    }
}

/* @name: the first argument of a command, in its RESP encoding (see
 * name_words()). */
static const KeySpec *
lookup_spec (const Arg *name)
{
  static gsize built = 0;
  NameWords words;
  guint32 b;

  if (g_once_init_enter (&built))
    {
      build_buckets ();
      g_once_init_leave (&built, 1);
    }

  if (name->len == 0 || name->len > NAME_MAX_LEN)
    return NULL;
  words = name_words (name->data, name->len);
  for (b = name_bucket (words, name->len); spec_buckets[b].len != 0; b = (b + 1) & (SPEC_BUCKETS - 1))
    if (spec_buckets[b].len == name->len && spec_buckets[b].words.w0 == words.w0 &&
        spec_buckets[b].words.w1 == words.w1)
      return spec_buckets[b].spec;
  return NULL;
}

/* Reads a RESP length line ("*12\r\n", "$3\r\n") at @p: the general
 * case. No overflow check per digit (more than 18 digits are refused
 * after the loop). */
static G_GNUC_NO_INLINE gboolean
read_length_slow (const guint8 **p,
                  const guint8  *end,
                  char           type,
                  gsize         *out)
{
  gsize value = 0;
  const guint8 *q = *p;
  const guint8 *digits;

  if (q >= end || *q != type)
    return FALSE;
  for (digits = ++q; q < end && (guint) (*q - '0') <= 9; q++)
    value = value * 10 + (gsize) (*q - '0');
  if (q - digits > 18 || end - q < 2 || q[0] != '\r' || q[1] != '\n')
    return FALSE;
  *p = q + 2;
  *out = value;
  return TRUE;
}

/* The same, inlined, with the lengths of one or two digits (the name and
 * the keys of nearly every command) read without a loop: it runs for every
 * argument of every routed command. Same answers as the general case. */
static inline gboolean
read_length (const guint8 **p,
             const guint8  *end,
             char           type,
             gsize         *out)
{
  const guint8 *q = *p;

  if (G_LIKELY (end - q >= 5 && q[0] == type && (guint) (q[1] - '0') <= 9))
    {
      guint d0 = q[1] - '0';
      guint d1 = q[2] - '0';

      if (q[2] == '\r' && q[3] == '\n')
        {
          *out = d0;
          *p = q + 4;
          return TRUE;
        }
      if (d1 <= 9 && q[3] == '\r' && q[4] == '\n')
        {
          *out = d0 * 10 + d1;
          *p = q + 5;
          return TRUE;
        }
    }
  return read_length_slow (p, end, type, out);
}

static G_GNUC_NO_INLINE void
set_crossslot_error (GError    **error,
                     const Arg  *name,
                     gint        slot,
                     gint        other)
{
  g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
               "The keys of this %.*s command are in different hash slots "
               "(%d and %d): a cluster only runs a multi-key command whose "
               "keys share a slot (use a hash tag, {…})",
               (int) MIN (name->len, 64), (const char *) name->data, slot, other);
}

/* Inlined: called for every key; the error is the rare case. */
static inline gboolean
slot_of_arg (const Arg  *arg,
             gint       *slot,
             const Arg  *name,
             GError    **error)
{
  gint s = redis_cluster_slot_of (arg->data, arg->len);

  if (G_UNLIKELY (*slot >= 0 && *slot != s))
    {
      set_crossslot_error (error, name, *slot, s);
      return FALSE;
    }
  *slot = s;
  return TRUE;
}

#define KEY_CACHE_MAX 4096   /* entries; past it, such commands are asked each time */

/* What the servers told of one command (by name and argc). */
typedef struct
{
  GArray   *positions;   /* guint: where its keys are (empty: keyless) */
  gboolean  readonly;    /* COMMAND INFO flags it "readonly" */
} CachedCommand;

static void
cached_command_free (gpointer data)
{
  CachedCommand *cached = data;

  g_array_unref (cached->positions);
  g_free (cached);
}

struct _RedisClusterKeyCache
{
  GMutex      lock;
  GHashTable *positions;   /* "NAME argc" → CachedCommand */
};

RedisClusterKeyCache *
redis_cluster_key_cache_new (void)
{
  RedisClusterKeyCache *cache = g_new0 (RedisClusterKeyCache, 1);

  g_mutex_init (&cache->lock);
  cache->positions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            cached_command_free);
  return cache;
}

void
redis_cluster_key_cache_free (RedisClusterKeyCache *cache)
{
  if (cache == NULL)
    return;
  g_hash_table_unref (cache->positions);
  g_mutex_clear (&cache->lock);
  g_free (cache);
}

static char *
cache_key (const Arg *name,
           gsize      argc)
{
  g_autofree char *upper = g_ascii_strup ((const char *) name->data, (gssize) name->len);

  return g_strdup_printf ("%s %" G_GSIZE_FORMAT, upper, argc);
}

/* The arguments of the command at @data; NULL when it is not what this
 * library encodes. */
static Arg *
parse_args (const guint8 *data,
            gsize         len,
            gsize        *argc_out,
            gsize        *consumed)
{
  const guint8 *p = data;
  const guint8 *end = data + len;
  gsize argc;
  Arg *args;

  if (!read_length (&p, end, '*', &argc) || argc == 0 || argc > G_MAXINT / 2 ||
      argc > len)
    return NULL;
  args = g_new (Arg, argc);
  for (gsize i = 0; i < argc; i++)
    {
      gsize n;

      if (!read_length (&p, end, '$', &n) || (gsize) (end - p) < n + 2)
        {
          g_free (args);
          return NULL;
        }
      args[i].data = p;
      args[i].len = n;
      p += n + 2;
    }
  *argc_out = argc;
  *consumed = (gsize) (p - data);
  return args;
}

/* The slot of a command outside the table, from what the servers told
 * of it (UNKNOWN: nothing yet). */
static gint
cached_slot (const guint8          *data,
             gsize                  len,
             RedisClusterKeyCache  *cache,
             gboolean              *readonly,
             GError               **error)
{
  gsize argc = 0, consumed = 0;
  g_autofree Arg *args = parse_args (data, len, &argc, &consumed);
  g_autofree char *key = NULL;
  CachedCommand *cached;
  gint slot = REDIS_CLUSTER_SLOT_NONE;

  g_assert (args != NULL);   /* parsed whole by the caller */
  key = cache_key (&args[0], argc);
  g_mutex_lock (&cache->lock);
  cached = g_hash_table_lookup (cache->positions, key);
  if (cached == NULL)
    slot = REDIS_CLUSTER_SLOT_UNKNOWN;
  else
    {
      *readonly = cached->readonly;
      for (guint i = 0; i < cached->positions->len; i++)
        {
          guint at = g_array_index (cached->positions, guint, i);

          if (at < argc && !slot_of_arg (&args[at], &slot, &args[0], error))
            {
              slot = REDIS_CLUSTER_SLOT_INVALID;
              break;
            }
        }
    }
  g_mutex_unlock (&cache->lock);
  return slot;
}

/* The keys of an EVAL or FCALL form: the @numkeys arguments after
 * @numkeys_at (of @argc), in @first… @last; left as they are when it is
 * not a number (the server answers that error). */
static void
numkeys_range (const Arg *numkeys,
               gsize      numkeys_at,
               gsize      argc,
               gint      *first,
               gint      *last)
{
  char digits[21];
  guint64 n;

  if (numkeys->len == 0 || numkeys->len >= sizeof digits)
    return;
  memcpy (digits, numkeys->data, numkeys->len);
  digits[numkeys->len] = '\0';
  if (!g_ascii_string_to_unsigned (digits, 10, 0, argc, &n, NULL))
    return;
  *first = (gint) numkeys_at + 1;
  *last = MIN ((gint) (numkeys_at + n), (gint) argc - 1);
}

/* One pass over the command: its name looked up first, then each key
 * hashed as the walk to the command's end reaches it; nothing allocated
 * for a command of the table. A malformed payload is PROTOCOL whatever
 * came before it, so the slots of keys in two slots are only reported
 * once the whole command is read. */
gint
redis_cluster_command_slot (const guint8          *data,
                            gsize                  len,
                            gsize                 *consumed,
                            RedisClusterKeyCache  *cache,
                            gboolean              *readonly,
                            GError               **error)
{
  const guint8 *p = data;
  const guint8 *end = data + len;
  const KeySpec *spec;
  Arg name;
  gsize argc, n;
  /* The next key's position, the last one's, the step between them;
   * next_key > last: no (more) keys. */
  gint next_key = 1, last = 0, step = 1;
  gint slot = REDIS_CLUSTER_SLOT_NONE;
  gint other = REDIS_CLUSTER_SLOT_NONE;   /* a second slot: refused */

  *readonly = FALSE;
  /* No more arguments than bytes: a bogus count allocates nothing. */
  if (!read_length (&p, end, '*', &argc) || argc == 0 || argc > G_MAXINT / 2 || argc > len)
    goto malformed;
  if (!read_length (&p, end, '$', &n) || (gsize) (end - p) < n + 2)
    goto malformed;
  name.data = p;
  name.len = n;
  p += n + 2;

  spec = lookup_spec (&name);
  if (spec != NULL)
    {
      if (spec->step != 0 && spec->numkeys_at == 0)
        {
          next_key = spec->first;
          last = MIN (spec->last >= 0 ? spec->last : (gint) argc + spec->last, (gint) argc - 1);
          step = spec->step;
        }
    }

  for (gsize i = 1; i < argc; i++)
    {
      Arg arg;

      if (!read_length (&p, end, '$', &n) || (gsize) (end - p) < n + 2)
        goto malformed;
      arg.data = p;
      arg.len = n;
      p += n + 2;

      if (spec == NULL)
        continue;
      if (spec->numkeys_at != 0 && (gsize) spec->numkeys_at == i && spec->step != 0)
        numkeys_range (&arg, i, argc, &next_key, &last);
      else if ((gint) i == next_key && next_key <= last)
        {
          gint s = redis_cluster_slot_of (arg.data, arg.len);

          if (slot < 0)
            slot = s;
          else if (s != slot && other < 0)
            other = s;
          next_key += step;
        }
    }
  *consumed = (gsize) (p - data);

  if (spec == NULL)
    return cache != NULL ? cached_slot (data, *consumed, cache, readonly, error)
                         : REDIS_CLUSTER_SLOT_NONE;
  *readonly = spec->readonly;
  if (other >= 0)
    {
      set_crossslot_error (error, &name, slot, other);
      return REDIS_CLUSTER_SLOT_INVALID;
    }
  return slot;

malformed:
  g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                       "Cannot read the keys of a command of this call");
  return REDIS_CLUSTER_SLOT_INVALID;
}

const char *
redis_cluster_key_table_get_name (guint index)
{
  return index < G_N_ELEMENTS (key_specs) ? key_specs[index].name : NULL;
}

static void
append_bulk (GByteArray   *out,
             const guint8 *data,
             gsize         len)
{
  char head[32];
  int n = g_snprintf (head, sizeof head, "$%" G_GSIZE_FORMAT "\r\n", len);

  g_byte_array_append (out, (const guint8 *) head, (guint) n);
  g_byte_array_append (out, data, (guint) len);
  g_byte_array_append (out, (const guint8 *) "\r\n", 2);
}

void
redis_cluster_key_query_append (const guint8 *data,
                                gsize         len,
                                GByteArray   *out)
{
  gsize argc = 0, consumed = 0;
  g_autofree Arg *args = parse_args (data, len, &argc, &consumed);
  char head[32];
  int n;

  g_return_if_fail (args != NULL);

  n = g_snprintf (head, sizeof head, "*3\r\n");
  g_byte_array_append (out, (const guint8 *) head, (guint) n);
  append_bulk (out, (const guint8 *) "COMMAND", 7);
  append_bulk (out, (const guint8 *) "INFO", 4);
  append_bulk (out, args[0].data, args[0].len);

  n = g_snprintf (head, sizeof head, "*%" G_GSIZE_FORMAT "\r\n", argc + 2);
  g_byte_array_append (out, (const guint8 *) head, (guint) n);
  append_bulk (out, (const guint8 *) "COMMAND", 7);
  append_bulk (out, (const guint8 *) "GETKEYS", 7);
  for (gsize i = 0; i < argc; i++)
    append_bulk (out, args[i].data, args[i].len);
}

/* Whether the COMMAND INFO reply @info has the flag @name; @unknown when
 * it says nothing usable. */
static gboolean
info_has_flag (RedisReply *info,
               const char *name,
               gboolean    unknown)
{
  RedisReply *entry, *flags;
  gsize name_len = strlen (name);

  if (info == NULL || redis_reply_get_kind (info) != REDIS_REPLY_KIND_ARRAY ||
      redis_reply_get_n_elements (info) != 1)
    return unknown;
  entry = redis_reply_get_element (info, 0);
  if (redis_reply_get_kind (entry) != REDIS_REPLY_KIND_ARRAY ||
      redis_reply_get_n_elements (entry) < 3)
    return unknown;
  flags = redis_reply_get_element (entry, 2);
  if (redis_reply_get_kind (flags) != REDIS_REPLY_KIND_ARRAY)
    return unknown;
  for (guint i = 0; i < redis_reply_get_n_elements (flags); i++)
    {
      gsize n;
      const guint8 *flag = redis_reply_get_data (redis_reply_get_element (flags, i), &n);

      if (flag != NULL && n == name_len && memcmp (flag, name, n) == 0)
        return TRUE;
    }
  return FALSE;
}

gint
redis_cluster_key_query_finish (RedisClusterKeyCache  *cache,
                                const guint8          *data,
                                gsize                  len,
                                RedisReply            *info,
                                RedisReply            *getkeys,
                                gboolean              *readonly,
                                GError               **error)
{
  gsize argc = 0, consumed = 0;
  g_autofree Arg *args = parse_args (data, len, &argc, &consumed);
  g_autoptr(GArray) positions = NULL;
  gint slot = REDIS_CLUSTER_SLOT_NONE;
  gboolean cacheable;

  *readonly = FALSE;
  g_return_val_if_fail (args != NULL, REDIS_CLUSTER_SLOT_NONE);

  /* Nothing is cached when COMMAND INFO says nothing usable. */
  cacheable = !info_has_flag (info, "movablekeys", TRUE);
  *readonly = info_has_flag (info, "readonly", FALSE);
  positions = g_array_new (FALSE, FALSE, sizeof (guint));

  if (getkeys == NULL)
    return REDIS_CLUSTER_SLOT_NONE;
  if (redis_reply_get_kind (getkeys) == REDIS_REPLY_KIND_ERROR)
    {
      const char *text = redis_reply_get_text (getkeys);

      /* Keyless; any other error (an unknown command, a wrong number of
       * arguments) is for the server to answer the command itself. */
      if (text == NULL || strstr (text, "no key arguments") == NULL)
        return REDIS_CLUSTER_SLOT_NONE;
    }
  else if (redis_reply_get_kind (getkeys) == REDIS_REPLY_KIND_ARRAY)
    {
      g_autofree gboolean *used = g_new0 (gboolean, argc);

      for (guint k = 0; k < redis_reply_get_n_elements (getkeys); k++)
        {
          gsize n;
          const guint8 *key = redis_reply_get_data (redis_reply_get_element (getkeys, k), &n);
          Arg arg;
          guint at = 0;

          if (key == NULL)
            return REDIS_CLUSTER_SLOT_NONE;
          arg.data = key;
          arg.len = n;
          if (!slot_of_arg (&arg, &slot, &args[0], error))
            return REDIS_CLUSTER_SLOT_INVALID;
          /* Where the key is among the arguments, for the cache. */
          for (at = 1; at < argc; at++)
            if (!used[at] && args[at].len == n && memcmp (args[at].data, key, n) == 0)
              break;
          if (at == argc)
            cacheable = FALSE;
          else
            {
              used[at] = TRUE;
              g_array_append_val (positions, at);
            }
        }
    }
  else
    return REDIS_CLUSTER_SLOT_NONE;

  if (cacheable && cache != NULL)
    {
      g_mutex_lock (&cache->lock);
      /* One entry per name and number of arguments seen: bounded, for
       * the calls of a variadic command with ever new lengths. */
      if (g_hash_table_size (cache->positions) < KEY_CACHE_MAX)
        {
          CachedCommand *cached = g_new (CachedCommand, 1);

          cached->positions = g_steal_pointer (&positions);
          cached->readonly = *readonly;
          g_hash_table_replace (cache->positions, cache_key (&args[0], argc), cached);
        }
      g_mutex_unlock (&cache->lock);
    }
  return slot;
}
