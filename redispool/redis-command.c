/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-command-private.h"
#include "redis-error.h"
#include "redis-reply.h"

/* ---- classification: what the library must know of a command ------------ */

/* Commands the library must treat specially, with their flags:
 *
 * - CONNECTION_STATE: they change the state of the connection they run on,
 *   or how the next command on it behaves (ASKING, CLIENT CACHING). On a
 *   shared (multiplexed) pool connection that would leak into other
 *   callers' commands, so the pool sends them only through a lease.
 * - UNSUPPORTED: after them the server no longer answers one reply per
 *   command (push messages, a stream of events, silence, another protocol,
 *   a debugging session), which reply matching cannot survive; they are
 *   refused. REPLCONF: ACK and GETACK get no reply at all.
 *
 * Audited against the full command list of redis 7.0 (tests/test-commands.c
 * fails on any command it does not know, so a new one must be classified
 * there, and here if it is special).
 *
 * Looked up on every command, so entries carry their lengths and the
 * comparison starts with the length. */
typedef struct
{
  const char        *name;
  guint8             name_len;
  const char        *sub;
  guint8             sub_len;
  RedisCommandFlags  flags;
} SpecialCommand;

#define STATE REDIS_COMMAND_FLAG_CONNECTION_STATE
#define UNSUPPORTED (REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED)
#define ENTRY(n, f) { n, sizeof n - 1, NULL, 0, f }
#define SUB_ENTRY(n, s, f) { n, sizeof n - 1, s, sizeof s - 1, f }

static const SpecialCommand special_commands[] = {
  ENTRY ("SELECT", STATE), ENTRY ("WATCH", STATE), ENTRY ("UNWATCH", STATE),
  ENTRY ("MULTI", STATE), ENTRY ("EXEC", STATE), ENTRY ("DISCARD", STATE),
  ENTRY ("AUTH", STATE), ENTRY ("RESET", STATE), ENTRY ("READONLY", STATE),
  ENTRY ("READWRITE", STATE), ENTRY ("SWAPDB", STATE), ENTRY ("QUIT", STATE),
  ENTRY ("ASKING", STATE),
  SUB_ENTRY ("CLIENT", "SETNAME", STATE), SUB_ENTRY ("CLIENT", "SETINFO", STATE),
  SUB_ENTRY ("CLIENT", "TRACKING", STATE), SUB_ENTRY ("CLIENT", "CACHING", STATE),
  SUB_ENTRY ("CLIENT", "NO-EVICT", STATE), SUB_ENTRY ("CLIENT", "NO-TOUCH", STATE),
  SUB_ENTRY ("CLIENT", "REPLY", UNSUPPORTED),
  ENTRY ("SUBSCRIBE", UNSUPPORTED), ENTRY ("PSUBSCRIBE", UNSUPPORTED),
  ENTRY ("SSUBSCRIBE", UNSUPPORTED), ENTRY ("UNSUBSCRIBE", UNSUPPORTED),
  ENTRY ("PUNSUBSCRIBE", UNSUPPORTED), ENTRY ("SUNSUBSCRIBE", UNSUPPORTED),
  ENTRY ("MONITOR", UNSUPPORTED), ENTRY ("HELLO", UNSUPPORTED),
  ENTRY ("SYNC", UNSUPPORTED), ENTRY ("PSYNC", UNSUPPORTED),
  ENTRY ("REPLCONF", UNSUPPORTED), SUB_ENTRY ("SCRIPT", "DEBUG", UNSUPPORTED),
};

#undef STATE
#undef UNSUPPORTED
#undef ENTRY
#undef SUB_ENTRY

static gboolean
name_is (const char *name,
         gsize       name_len,
         const char *literal)
{
  return strlen (literal) == name_len && g_ascii_strncasecmp (name, literal, name_len) == 0;
}

static RedisCommandFlags
lookup_special (const char *name,
                gsize       name_len,
                const char *sub,
                gsize       sub_len)
{
  for (gsize i = 0; i < G_N_ELEMENTS (special_commands); i++)
    {
      const SpecialCommand *c = &special_commands[i];

      if (c->name_len != name_len || g_ascii_toupper (name[0]) != c->name[0] ||
          g_ascii_strncasecmp (name, c->name, name_len) != 0)
        continue;
      if (c->sub == NULL)
        return c->flags;
      if (sub != NULL && c->sub_len == sub_len && g_ascii_strncasecmp (sub, c->sub, sub_len) == 0)
        return c->flags;
    }
  return REDIS_COMMAND_FLAG_NONE;
}

/* Block times, as the extra time a blocking command may take: -1 for
 * "forever", 0 when Redis refuses the value (it then answers at once with
 * an error, so the command needs no extra time), else milliseconds, up to
 * G_MAXINT64 (redis_call_set_timeout() saturates: no deadline).
 *
 * Redis 7.0 reads BLPOP & co.'s timeout with string2ld() (strtold(): no
 * leading space, nothing after the number, no NUL inside, not NaN, no
 * overflow, under 5 KiB), then waits ceil (seconds × 1000) ms, 0 meaning
 * forever: a negative value over -1 ms waits forever too; below that it is
 * "timeout is negative"; from 2^63 ms on, "timeout is negative" (7.0, its
 * long long conversion wraps) or "out of range" (7.2). Computed here in double,
 * without ever converting an out-of-range value to an integer. Where double
 * and Redis' long double can disagree (at -1 ms, near 2^63 ms, under 1e-308
 * s) the answer leans to the longer wait: a block time too long only gives
 * an error reply more time to arrive, one too short fails a legitimate wait
 * with TIMEOUT. */
#define REDIS_MAX_FLOAT_CHARS 5120
/* 2^63 ms plus two units in the last place: beyond doubt out of range. */
#define REDIS_MS_OUT_OF_RANGE 9223372036854779904.0

static gint64
seconds_to_ms (const char *text,
               gsize       len)
{
  char stack_buf[64];
  g_autofree char *heap_buf = NULL;
  char *buf = stack_buf;
  char *end = NULL;
  double ms;
  gint64 whole;

  if (len == 0 || len >= REDIS_MAX_FLOAT_CHARS)
    return 0;
  if (len >= sizeof stack_buf)
    buf = heap_buf = g_malloc (len + 1);
  memcpy (buf, text, len);
  buf[len] = '\0';
  if (g_ascii_isspace (buf[0]))
    return 0;
  ms = g_ascii_strtod (buf, &end);
  if (end != buf + len)           /* also a NUL inside */
    return 0;
  ms *= 1000.0;

  /* Also false for NaN; ±HUGE_VAL from an overflow is out of range too. */
  if (!(ms >= -1.0 && ms <= REDIS_MS_OUT_OF_RANGE))
    return 0;
  if (ms <= 0.0)
    return -1;                  /* ceil() is 0: forever (-1.0 too, see above) */
  if (ms >= 9223372036854775808.0)
    return G_MAXINT64;
  whole = (gint64) ms;          /* 0 < ms < 2^63: defined */
  if ((double) whole < ms)
    whole++;                    /* ceil(), as Redis rounds */
  return whole;
}

/* Milliseconds as Redis 7.0 reads WAIT's and XREAD's BLOCK (string2ll():
 * "0", or an optional '-' then 1-9 and digits, within a long long); 0 means
 * forever, a negative value is refused. */
static gint64
millis (const char *text,
        gsize       len)
{
  guint64 v = 0;

  if (len == 1 && text[0] == '0')
    return -1;
  /* A positive long long has 19 digits at most; negative ones are refused
   * whatever they are ("negative", or "not an integer"). */
  if (len == 0 || len > 19 || text[0] < '1' || text[0] > '9')
    return 0;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (text[i]))
        return 0;
      v = v * 10 + (guint64) (text[i] - '0');   /* < 10^19 < 2^64 */
    }
  return v <= G_MAXINT64 ? (gint64) v : 0;
}

#define KIND(k) ((RedisCommandFlags) (1u << (8 + REDIS_REPLY_KIND_##k)))

/* The reply kinds of the common commands whose reply kind is fixed in
 * RESP2 whatever their options (GET answers a bulk string or nil, INCR an
 * integer, SET without options +OK…): a reply of another kind cannot be
 * theirs (see redis_call_reply_in_step()). Only forms whose kind cannot
 * vary are listed (SET k v, not SET with NX/GET; LPOP k, not LPOP k n). */
static RedisCommandFlags
reply_kinds (guint        argc,
             const char  *name,
             gsize        name_len)
{
  static const struct
  {
    const char        *name;
    guint8             name_len;
    guint8             argc;      /* 0: any */
    RedisCommandFlags  kinds;
  } table[] = {
#define E(n, a, k) { n, sizeof n - 1, a, k }
    E ("GET", 2, KIND (STRING) | KIND (NIL)),
    E ("GETDEL", 2, KIND (STRING) | KIND (NIL)),
    E ("HGET", 3, KIND (STRING) | KIND (NIL)),
    E ("LINDEX", 3, KIND (STRING) | KIND (NIL)),
    E ("LPOP", 2, KIND (STRING) | KIND (NIL)),
    E ("RPOP", 2, KIND (STRING) | KIND (NIL)),
    E ("ECHO", 2, KIND (STRING)),
    E ("INCRBYFLOAT", 3, KIND (STRING)),
    E ("SET", 3, KIND (STATUS)),
    E ("PING", 1, KIND (STATUS)),
    E ("PING", 2, KIND (STRING)),
    E ("TYPE", 2, KIND (STATUS)),
    E ("MGET", 0, KIND (ARRAY)),
    E ("HGETALL", 2, KIND (ARRAY)),
    E ("SMEMBERS", 2, KIND (ARRAY)),
    E ("LRANGE", 4, KIND (ARRAY)),
    E ("INCR", 2, KIND (INTEGER)),
    E ("DECR", 2, KIND (INTEGER)),
    E ("INCRBY", 3, KIND (INTEGER)),
    E ("DECRBY", 3, KIND (INTEGER)),
    E ("DEL", 0, KIND (INTEGER)),
    E ("UNLINK", 0, KIND (INTEGER)),
    E ("EXISTS", 0, KIND (INTEGER)),
    E ("STRLEN", 2, KIND (INTEGER)),
    E ("APPEND", 3, KIND (INTEGER)),
    E ("LLEN", 2, KIND (INTEGER)),
    E ("LPUSH", 0, KIND (INTEGER)),
    E ("RPUSH", 0, KIND (INTEGER)),
    E ("SADD", 0, KIND (INTEGER)),
    E ("SREM", 0, KIND (INTEGER)),
    E ("SCARD", 2, KIND (INTEGER)),
    E ("HSET", 0, KIND (INTEGER)),
    E ("HDEL", 0, KIND (INTEGER)),
    E ("HLEN", 2, KIND (INTEGER)),
    E ("ZCARD", 2, KIND (INTEGER)),
    E ("TTL", 2, KIND (INTEGER)),
    E ("PTTL", 2, KIND (INTEGER)),
    E ("DBSIZE", 1, KIND (INTEGER)),
#undef E
  };
  char first = g_ascii_toupper (name[0]);

  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    if (table[i].name_len == name_len && table[i].name[0] == first &&
        (table[i].argc == 0 || table[i].argc == argc) &&
        g_ascii_strncasecmp (name, table[i].name, name_len) == 0)
      return table[i].kinds;
  return REDIS_COMMAND_FLAG_NONE;
}

#undef KIND

static RedisCommandFlags
classify (guint         argc,
          const char  **argv,
          const gsize  *lens,
          gint64       *block_ms)
{
  const char *name = argv[0];
  gsize name_len = lens[0];
  const char *sub = argc > 1 ? argv[1] : NULL;
  gsize sub_len = argc > 1 ? lens[1] : 0;

  RedisCommandFlags special;

  *block_ms = 0;

  special = lookup_special (name, name_len, sub, sub_len);
  if (special != REDIS_COMMAND_FLAG_NONE)
    return special;

  /* Every blocking command starts with B, W or X. */
  switch (g_ascii_toupper (name[0]))
    {
    case 'B':
    case 'W':
    case 'X':
      break;
    default:
      return reply_kinds (argc, name, name_len);
    }

  if (argc >= 3 &&
      (name_is (name, name_len, "BLPOP") || name_is (name, name_len, "BRPOP") ||
       name_is (name, name_len, "BZPOPMIN") || name_is (name, name_len, "BZPOPMAX") ||
       name_is (name, name_len, "BRPOPLPUSH") || name_is (name, name_len, "BLMOVE")))
    {
      *block_ms = seconds_to_ms (argv[argc - 1], lens[argc - 1]);
      return REDIS_COMMAND_FLAG_BLOCKING;
    }

  if (argc >= 2 && (name_is (name, name_len, "BLMPOP") || name_is (name, name_len, "BZMPOP")))
    {
      *block_ms = seconds_to_ms (argv[1], lens[1]);
      return REDIS_COMMAND_FLAG_BLOCKING;
    }

  if (argc >= 3 && (name_is (name, name_len, "WAIT") || name_is (name, name_len, "WAITAOF")))
    {
      *block_ms = millis (argv[argc - 1], lens[argc - 1]);
      return REDIS_COMMAND_FLAG_BLOCKING;
    }

  if (name_is (name, name_len, "XREAD") || name_is (name, name_len, "XREADGROUP"))
    {
      gboolean group = name_len == strlen ("XREADGROUP");
      gboolean blocking = FALSE;
      gboolean refused = FALSE;

      /* The options before STREAMS, as Redis walks them: the last BLOCK
       * counts, an invalid one is an error at once. */
      for (guint i = 1; i + 1 < argc; i++)
        {
          if (name_is (argv[i], lens[i], "STREAMS"))
            break;
          if (name_is (argv[i], lens[i], "BLOCK"))
            {
              *block_ms = millis (argv[i + 1], lens[i + 1]);
              refused |= *block_ms == 0;
              blocking = TRUE;
              i++;
            }
          else if (name_is (argv[i], lens[i], "COUNT"))
            i++;
          else if (group && name_is (argv[i], lens[i], "GROUP"))
            i += 2;
        }
      if (blocking)
        {
          if (refused)
            *block_ms = 0;
          return REDIS_COMMAND_FLAG_BLOCKING;
        }
    }

  return REDIS_COMMAND_FLAG_NONE;
}

/* ---- encoding ----------------------------------------------------------- */

/* Writes "<n>\r\n" at @p and returns the position after it. */
static guint8 *
append_decimal (guint8 *p,
                guint64 n)
{
  char digits[20];
  int len = 0;

  do
    {
      digits[len++] = '0' + (char) (n % 10);
      n /= 10;
    }
  while (n > 0);
  while (len > 0)
    *p++ = digits[--len];
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

/* The payload limit: REDIS_MAX_PAYLOAD_BYTES, lower in some tests. */
static gsize max_payload = REDIS_MAX_PAYLOAD_BYTES;

gsize
redis_encode_get_max_payload (void)
{
  return max_payload;
}

void
redis_encode_set_max_payload_for_testing (gsize limit)
{
  g_return_if_fail (limit <= REDIS_MAX_PAYLOAD_BYTES);

  max_payload = limit != 0 ? limit : REDIS_MAX_PAYLOAD_BYTES;
}

static void
set_payload_error (GError  **error,
                   guint64   size)
{
  g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
               "The call would be %" G_GUINT64_FORMAT " bytes encoded, over the "
               "limit of %" G_GSIZE_FORMAT " bytes a call (a command, or a batch "
               "with its wrapping) may carry", size, max_payload);
}

static guint
decimal_width (guint64 n)
{
  guint width = 1;

  while (n >= 10)
    {
      n /= 10;
      width++;
    }
  return width;
}

guint64
redis_encode_command_size (guint        argc,
                           const gsize *lens)
{
  guint64 size = 1 + decimal_width (argc) + 2;   /* "*<argc>\r\n" */

  for (guint i = 0; i < argc; i++)
    {
      /* "$<len>\r\n" <len bytes> "\r\n" */
      if (!g_uint64_checked_add (&size, size, 1 + decimal_width (lens[i]) + 2 + 2) ||
          !g_uint64_checked_add (&size, size, lens[i]))
        return G_MAXUINT64;
    }
  return size;
}

gboolean
redis_encode_check_payload (guint64   size,
                            GError  **error)
{
  if (size > max_payload)
    {
      set_payload_error (error, size);
      return FALSE;
    }
  return TRUE;
}

gboolean
redis_encode_append (GByteArray    *out,
                     const guint8  *data,
                     gsize          len,
                     GError       **error)
{
  guint64 size;

  if (!g_uint64_checked_add (&size, out->len, len))
    size = G_MAXUINT64;
  if (!redis_encode_check_payload (size, error))
    return FALSE;
  /* At most max_payload (1 GiB): no 32-bit wrap. */
  if (len > 0)
    g_byte_array_append (out, data, (guint) len);
  return TRUE;
}

/* A command name for messages: upper-cased, printable, at most 64 bytes. */
static char *
display_name (const char *name,
              gsize       len)
{
  char *upper = g_ascii_strup (name, MIN (len, 64));

  for (char *p = upper; *p != '\0'; p++)
    if (!g_ascii_isprint (*p))
      *p = '?';
  return upper;
}

/* Refuses what no server could take, or this encoder must not write;
 * otherwise sets @bound to what the encoding takes at most (every length
 * counted at 20 digits; cannot wrap: each argument is at most 2^29 bytes,
 * argc below 2^32). */
static gboolean
check_arguments (guint          argc,
                 const char   **argv,
                 const gsize   *lens,
                 guint64       *bound,
                 GError       **error)
{
  *bound = 1 + 20 + 2;

  if (argc == 0)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "A command needs at least its name (argc is 0)");
      return FALSE;
    }

  for (guint i = 0; i < argc; i++)
    {
      if (argv[i] == NULL)
        {
          g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                       "Argument %u of the command is NULL", i);
          return FALSE;
        }
      if (lens[i] > REDIS_MAX_ARGUMENT_BYTES)
        {
          g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                       "Argument %u is %" G_GSIZE_FORMAT " bytes, over the limit of "
                       "%" G_GSIZE_FORMAT " bytes", i, lens[i], REDIS_MAX_ARGUMENT_BYTES);
          return FALSE;
        }
      *bound += 1 + 20 + 2 + (guint64) lens[i] + 2;   /* "$<len>\r\n" … "\r\n" */
    }

  if (lens[0] == 0)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "The command name is empty");
      return FALSE;
    }

  if (argc > (guint) G_MAXINT / 2)
    {
      g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                   "The command has %u arguments, too many", argc);
      return FALSE;
    }
  return TRUE;
}

/* RESP is written directly into @out, sized once (@alloc bytes at most):
 * hiredis' formatter (redisFormatCommandArgv) builds each header with
 * sprintf and costs about 2,700 instructions per GET, more than all the
 * rest of the send path; this loop does the same in a few hundred. The new
 * length is at most max_payload (1 GiB): no 32-bit wrap. */
static void
write_command (GByteArray   *out,
               guint64       alloc,
               guint         argc,
               const char  **argv,
               const gsize  *lens)
{
  gsize start = out->len;
  guint8 *p;

  g_byte_array_set_size (out, (guint) (start + alloc));
  p = out->data + start;

  *p++ = '*';
  p = append_decimal (p, argc);
  for (guint i = 0; i < argc; i++)
    {
      *p++ = '$';
      p = append_decimal (p, lens[i]);
      if (lens[i] > 0)
        memcpy (p, argv[i], lens[i]);
      p += lens[i];
      *p++ = '\r';
      *p++ = '\n';
    }
  g_byte_array_set_size (out, p - out->data);
}

gboolean
redis_encode_command (GByteArray          *out,
                      guint                argc,
                      const char         **argv,
                      const gsize         *lens,
                      RedisCommandFlags   *flags,
                      gint64              *block_ms,
                      char               **name,
                      GError             **error)
{
  guint64 bound;
  guint64 alloc;

  if (!check_arguments (argc, argv, lens, &bound, error))
    return FALSE;

  /* The payload limit: one comparison while far from it; near it, the
   * exact size decides (and is what gets allocated). */
  alloc = bound;
  if (G_UNLIKELY ((guint64) out->len + bound > max_payload))
    {
      alloc = redis_encode_command_size (argc, lens);
      if ((guint64) out->len + alloc > max_payload)
        {
          set_payload_error (error, (guint64) out->len + alloc);
          return FALSE;
        }
    }

  write_command (out, alloc, argc, argv, lens);

  if (flags != NULL)
    {
      gint64 ignored;
      *flags = classify (argc, argv, lens, block_ms != NULL ? block_ms : &ignored);
    }
  if (name != NULL)
    *name = display_name (argv[0], lens[0]);

  return TRUE;
}

gboolean
redis_encode_strv (GByteArray          *out,
                   const char * const  *argv,
                   RedisCommandFlags   *flags,
                   gint64              *block_ms,
                   char               **name,
                   GError             **error)
{
  guint argc = argv != NULL ? g_strv_length ((char **) argv) : 0;
  gsize stack_lens[16];
  g_autofree gsize *heap_lens = NULL;
  gsize *lens = stack_lens;

  if (argc > G_N_ELEMENTS (stack_lens))
    lens = heap_lens = g_new (gsize, argc);
  for (guint i = 0; i < argc; i++)
    lens[i] = strlen (argv[i]);

  return redis_encode_command (out, argc, (const char **) argv, lens, flags, block_ms, name, error);
}

gboolean
redis_encode_bytes (GByteArray          *out,
                    GBytes             **args,
                    gsize                n_args,
                    RedisCommandFlags   *flags,
                    gint64              *block_ms,
                    char               **name,
                    GError             **error)
{
  const char *stack_argv[16];
  gsize stack_lens[16];
  g_autofree const char **heap_argv = NULL;
  g_autofree gsize *heap_lens = NULL;
  const char **argv = stack_argv;
  gsize *lens = stack_lens;

  if (args == NULL && n_args > 0)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "The argument array is NULL");
      return FALSE;
    }
  if (n_args > G_MAXINT / 2)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "Too many arguments");
      return FALSE;
    }

  if (n_args > G_N_ELEMENTS (stack_argv))
    {
      argv = heap_argv = g_new (const char *, n_args);
      lens = heap_lens = g_new (gsize, n_args);
    }

  for (gsize i = 0; i < n_args; i++)
    {
      gsize len = 0;

      if (args[i] == NULL)
        {
          g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                       "Argument %" G_GSIZE_FORMAT " of the command is NULL", i);
          return FALSE;
        }
      argv[i] = g_bytes_get_data (args[i], &len);
      if (argv[i] == NULL)
        argv[i] = "";
      lens[i] = len;
    }

  return redis_encode_command (out, (guint) n_args, argv, lens, flags, block_ms, name, error);
}

gboolean
redis_encode_commands (GByteArray                 *out,
                       const char * const * const *commands,
                       guint                      *n_commands,
                       GError                    **error)
{
  for (guint i = 0; commands[i] != NULL; i++)
    {
      if (!redis_encode_strv (out, commands[i], NULL, NULL, NULL, error))
        return FALSE;
      if (n_commands != NULL)
        (*n_commands)++;
    }
  return TRUE;
}

/* ---- questions asked of an encoded payload ------------------------------ */

/* Reads "<c><decimal>\r\n" of our own encoding at *@p. */
static guint64
read_header (const guint8 **p,
             const guint8  *end)
{
  guint64 n = 0;

  for ((*p)++; *p < end && **p != '\r'; (*p)++)
    n = n * 10 + (guint64) (**p - '0');
  *p += 2;
  return n;
}

/* Moves *@p past one whole command (or to @end, if cut short). */
static void
skip_command (const guint8 **p,
              const guint8  *end)
{
  guint64 argc = read_header (p, end);

  for (guint64 j = 0; j < argc && *p < end; j++)
    {
      guint64 size = read_header (p, end);

      *p = size + 2 < (guint64) (end - MIN (*p, end)) ? *p + size + 2 : end;
    }
}

char *
redis_encode_dup_name (const guint8 *data,
                       gsize         len,
                       guint         skip)
{
  const guint8 *p = data, *end = data + len;

  /* Whole commands first (a wrapper's MULTI or CLIENT REPLY OFF), then
   * the first bulk string of the next one. */
  for (guint i = 0; i < skip && p < end; i++)
    skip_command (&p, end);
  if (p >= end)
    return g_strdup ("the command");
  read_header (&p, end);
  if (p >= end)
    return g_strdup ("the command");
  {
    guint64 n = read_header (&p, end);

    return display_name ((const char *) p, MIN (n, (guint64) (end - p)));
  }
}

guint
redis_encode_count_whole_commands (const guint8 *data,
                                   gsize         len,
                                   guint64       written,
                                   guint         skip,
                                   guint         max)
{
  const guint8 *p = data, *end = data + len;
  guint n = 0;

  for (guint i = 0; n < max && p < end; i++)
    {
      skip_command (&p, end);
      if ((guint64) (MIN (p, end) - data) > written)
        break;
      if (i >= skip)
        n++;
    }
  return n;
}
