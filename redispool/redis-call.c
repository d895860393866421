/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-call-private.h"
#include "redis-error.h"
#include "redis-reply-private.h"
#include "redis-text-private.h"
#include "redis-worker-private.h"

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
  /* What the encoding takes at most: every length counted at 20 digits.
   * Cannot wrap: each argument is at most 2^29 bytes, argc below 2^32. */
  guint64 bound = 1 + 20 + 2;
  guint64 alloc;

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
      bound += 1 + 20 + 2 + (guint64) lens[i] + 2;   /* "$<len>\r\n" … "\r\n" */
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

  /* RESP is written directly into @out, sized once: hiredis' formatter
   * (redisFormatCommandArgv) builds each header with sprintf and costs
   * about 2,700 instructions per GET, more than all the rest of the send
   * path; this loop does the same in a few hundred. The new length is at
   * most max_payload (1 GiB): no 32-bit wrap. */
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

static RedisCall *
call_alloc (RedisCallKind  kind,
            gsize          inline_len,
            guint          n_commands)
{
  RedisCall *self = g_malloc0 (sizeof (RedisCall) + inline_len);

  self->ref_count = 1;
  self->kind = kind;
  self->n_commands = n_commands;
  switch (kind)
    {
    case REDIS_CALL_COMMAND:
    case REDIS_CALL_PIPELINE:
      self->n_replies = n_commands;
      break;
    case REDIS_CALL_TRANSACTION:
      self->n_replies = n_commands + 2;
      break;
    case REDIS_CALL_NOREPLY:
      self->n_replies = 2;   /* the +OK of CLIENT REPLY ON, the ECHO of the token */
      break;
    default:
      g_assert_not_reached ();
    }
  self->replies_left = self->n_replies;
  return self;
}

RedisCall *
redis_call_new (RedisCallKind  kind,
                GBytes        *payload,
                guint          n_commands,
                GTask         *task)
{
  RedisCall *self = call_alloc (kind, 0, n_commands);

  self->payload = g_bytes_ref (payload);
  self->data = g_bytes_get_data (payload, &self->len);
  self->task = task != NULL ? g_object_ref (task) : NULL;
  if (task != NULL && g_task_get_cancellable (task) != NULL)
    self->cancellable = g_object_ref (g_task_get_cancellable (task));
  return self;
}

RedisCall *
redis_call_new_inline (RedisCallKind  kind,
                       const guint8  *data,
                       gsize          len,
                       guint          n_commands)
{
  RedisCall *self = call_alloc (kind, len, n_commands);

  memcpy (self->inline_data, data, len);
  self->data = self->inline_data;
  self->len = len;
  return self;
}

RedisCall *
redis_call_new_sync (RedisCallKind     kind,
                     GBytes           *payload,
                     guint             n_commands,
                     GCancellable     *cancellable,
                     RedisCallWaiter  *waiter)
{
  RedisCall *self = redis_call_new (kind, payload, n_commands, NULL);

  self->waiter = waiter;
  if (cancellable != NULL)
    self->cancellable = g_object_ref (cancellable);
  return self;
}

void
redis_call_waiter_init (RedisCallWaiter *waiter)
{
  memset (waiter, 0, sizeof *waiter);
  g_mutex_init (&waiter->lock);
  g_cond_init (&waiter->cond);
}

gboolean
redis_call_waiter_set_wake (RedisCallWaiter   *waiter,
                            const RedisWakeFd *wake)
{
  gboolean done;

  g_mutex_lock (&waiter->lock);
  done = waiter->done;
  waiter->wake = done ? NULL : wake;
  g_mutex_unlock (&waiter->lock);
  return !done;
}

gpointer
redis_call_waiter_wait (RedisCallWaiter  *waiter,
                        GError          **error)
{
  return redis_call_waiter_wait_partial (waiter, NULL, error);
}

gpointer
redis_call_waiter_wait_partial (RedisCallWaiter   *waiter,
                                RedisCallPartial **partial,
                                GError           **error)
{
  gpointer result;

  g_mutex_lock (&waiter->lock);
  while (!waiter->done)
    {
      waiter->waiting = TRUE;
      g_cond_wait (&waiter->cond, &waiter->lock);
    }
  g_mutex_unlock (&waiter->lock);

  result = waiter->result;
  if (waiter->error != NULL)
    g_propagate_error (error, waiter->error);
  if (partial != NULL)
    *partial = g_steal_pointer (&waiter->partial);
  else
    g_clear_pointer (&waiter->partial, redis_call_partial_free);
  g_mutex_clear (&waiter->lock);
  g_cond_clear (&waiter->cond);
  return result;
}

RedisCall *
redis_call_ref (RedisCall *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
redis_call_unref (RedisCall *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;

  /* A call is always completed before its last reference goes. */
  g_assert (self->task == NULL && self->waiter == NULL);
  g_assert (self->cancel_source == NULL);
  g_clear_pointer (&self->payload, g_bytes_unref);
  g_clear_pointer (&self->replies, g_ptr_array_unref);
  g_clear_pointer (&self->reply, redis_reply_unref);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->abandon_error);
  g_free (self->noreply_token);
  g_free (self->name);
  g_free (self);
}

gboolean
redis_call_is_completed (RedisCall *self)
{
  return g_atomic_int_get (&self->completed) != 0;
}

/* A deadline too far to be represented is no deadline: saturated, never
 * wrapped (a wrapped one would lie in the past, or be undefined). */
void
redis_call_set_timeout (RedisCall *self,
                        guint      timeout_ms)
{
  gint64 span_ms, now;

  self->deadline = 0;
  if (timeout_ms == 0 || self->block_ms < 0)
    return;
  /* timeout_ms < 2^32, block_ms < 2^63: checked before each step. */
  if (self->block_ms > G_MAXINT64 / G_TIME_SPAN_MILLISECOND - (gint64) timeout_ms)
    return;
  span_ms = (gint64) timeout_ms + self->block_ms;
  now = g_get_monotonic_time ();
  if (span_ms * G_TIME_SPAN_MILLISECOND > G_MAXINT64 - now)
    return;
  self->deadline = now + span_ms * G_TIME_SPAN_MILLISECOND;
}

/* Claims the completion: only the first completion of a call counts. */
static gboolean
claim (RedisCall *self)
{
  if (!g_atomic_int_compare_and_exchange (&self->completed, 0, 1))
    return FALSE;

  if (self->cancel_source != NULL)
    {
      g_source_destroy (self->cancel_source);
      g_clear_pointer (&self->cancel_source, g_source_unref);
    }
  return TRUE;
}

static void
waiter_deliver (RedisCallWaiter  *waiter,
                gpointer          result,
                GDestroyNotify    destroy,
                GError           *error,
                RedisCallPartial *partial)
{
  g_mutex_lock (&waiter->lock);
  waiter->result = result;
  waiter->result_destroy = destroy;
  waiter->error = error;
  waiter->partial = partial;
  waiter->done = TRUE;
  /* Only whoever waits is woken: a caller driving its own socket polls
   * its wake-up fd, one blocked on the condition needs the signal, and
   * one that has not started waiting needs nothing (the common case when
   * the caller read its own reply). */
  if (waiter->wake != NULL)
    redis_wake_fd_signal (waiter->wake);
  if (waiter->waiting)
    g_cond_signal (&waiter->cond);
  /* The waiter may be gone as soon as the lock is released. */
  g_mutex_unlock (&waiter->lock);
}

/* Completions made on the I/O thread are batched per destination main
 * context: each context that ever receives one gets one persistent
 * completion source, which is woken once for every task completed
 * meanwhile (not once per reply), and returns them from inside that
 * context, so GTask runs their callbacks right away. Keeping the source
 * (instead of a new idle source per batch) saves its allocation, attach,
 * destroy and a hash insert and removal on every batch.
 *
 * The source holds no reference to its context: a queued task does (GTask
 * keeps its context alive), so a context dies only when nothing is queued
 * for it, and then finalizes its source, which leaves the table. */
typedef enum
{
  RESULT_POINTER,
  RESULT_TRUE,
  RESULT_ERROR,
} ResultType;

typedef struct
{
  GList           link;      /* in CompletionSource.items */
  GTask          *task;
  ResultType      type;
  gpointer        result;
  GDestroyNotify  destroy;
  GError         *error;
} Completion;

typedef struct
{
  GSource       source;
  GMainContext *context;     /* not a reference: the context owns us */
  gint          pending;     /* atomic: a wake-up is on its way */
  GQueue        items;       /* Completion, under completions_lock */
} CompletionSource;

static GMutex completions_lock;
static GHashTable *completion_sources;   /* GMainContext* → CompletionSource* */
/* The source found last: completions usually go to the same context in a row. */
static CompletionSource *last_source;

static void
return_completion (Completion *c)
{
  switch (c->type)
    {
    case RESULT_POINTER:
      g_task_return_pointer (c->task, c->result, c->destroy);
      break;
    case RESULT_TRUE:
      g_task_return_boolean (c->task, TRUE);
      break;
    case RESULT_ERROR:
      g_task_return_error (c->task, c->error);
      break;
    default:
      g_assert_not_reached ();
    }
  g_object_unref (c->task);
}

static gboolean
completion_prepare (GSource *source,
                    gint    *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((CompletionSource *) source)->pending) != 0;
}

static gboolean
completion_check (GSource *source)
{
  return g_atomic_int_get (&((CompletionSource *) source)->pending) != 0;
}

static gboolean
completion_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  CompletionSource *self = (CompletionSource *) source;
  GQueue items;
  GList *l;

  /* Cleared before taking the queue: a completion queued after this
   * wakes us again. */
  g_atomic_int_set (&self->pending, 0);
  g_mutex_lock (&completions_lock);
  items = self->items;
  g_queue_init (&self->items);
  g_mutex_unlock (&completions_lock);

  while ((l = g_queue_pop_head_link (&items)) != NULL)
    {
      Completion *c = l->data;

      return_completion (c);
      g_free (c);
    }
  return G_SOURCE_CONTINUE;
}

static void
completion_finalize (GSource *source)
{
  CompletionSource *self = (CompletionSource *) source;

  /* Only when the context itself dies: no task is queued for it then. */
  g_mutex_lock (&completions_lock);
  g_assert (g_queue_is_empty (&self->items));
  if (g_hash_table_lookup (completion_sources, self->context) == self)
    g_hash_table_remove (completion_sources, self->context);
  if (last_source == self)
    last_source = NULL;
  g_mutex_unlock (&completions_lock);
}

static GSourceFuncs completion_source_funcs = {
  completion_prepare, completion_check, completion_dispatch, completion_finalize, NULL, NULL,
};

/* Called with completions_lock held. */
static CompletionSource *
completion_source_get (GMainContext *context)
{
  CompletionSource *self;

  if (last_source != NULL && last_source->context == context)
    return last_source;

  if (completion_sources == NULL)
    completion_sources = g_hash_table_new (NULL, NULL);
  self = g_hash_table_lookup (completion_sources, context);
  if (self == NULL)
    {
      self = (CompletionSource *) g_source_new (&completion_source_funcs,
                                                sizeof (CompletionSource));
      self->context = context;
      g_queue_init (&self->items);
      g_source_set_priority (&self->source, G_PRIORITY_DEFAULT);
      g_source_set_static_name (&self->source, "[redispool] completions");
      g_hash_table_insert (completion_sources, context, self);
      g_source_attach (&self->source, context);
      g_source_unref (&self->source);   /* the context owns it */
    }
  last_source = self;
  return self;
}

/* Completions made while an engine is locked wait in a list of the thread
 * until it lets go (redis_call_defer_end()): a callback may call back into
 * that engine, and must never run with its lock held. */
static __thread guint defer_depth;
static __thread gboolean defer_in_place;
static __thread GQueue deferred = G_QUEUE_INIT;

static Completion *
completion_new (RedisCall      *self,
                ResultType      type,
                gpointer        result,
                GDestroyNotify  destroy,
                GError         *error)
{
  Completion *c = g_new (Completion, 1);

  c->link.data = c;
  c->link.prev = c->link.next = NULL;
  c->task = g_steal_pointer (&self->task);
  c->type = type;
  c->result = result;
  c->destroy = destroy;
  c->error = error;
  return c;
}

/* Queues @c (owned) on the completion source of its task's context. */
static void
post_completion (Completion *c)
{
  CompletionSource *source;
  GMainContext *context = g_task_get_context (c->task);

  g_mutex_lock (&completions_lock);
  source = completion_source_get (context);
  g_queue_push_tail_link (&source->items, &c->link);
  /* One wake-up per batch: the dispatch takes everything queued by then.
   * Under the lock: until the dispatch takes it, the task just queued keeps
   * the context alive (g_main_context_wakeup() takes no context lock). */
  if (g_atomic_int_compare_and_exchange (&source->pending, 0, 1))
    g_main_context_wakeup (context);
  g_mutex_unlock (&completions_lock);
}

void
redis_call_defer_begin (gboolean in_place)
{
  if (defer_depth++ == 0)
    defer_in_place = in_place;
}

void
redis_call_defer_end (void)
{
  GList *l;

  g_assert (defer_depth > 0);
  if (--defer_depth > 0)
    return;

  /* Returned right here only from inside a dispatch of one of the
   * engine's sources in the task's own context (its read callback, in the
   * home context): GTask then calls back at once, as from any I/O
   * callback. Anywhere else (a caller driving its own socket, the I/O
   * thread), the callback must run later, from its context's loop. */
  while ((l = g_queue_pop_head_link (&deferred)) != NULL)
    {
      Completion *c = l->data;
      GSource *current = defer_in_place ? g_main_current_source () : NULL;

      if (current != NULL && g_source_get_context (current) == g_task_get_context (c->task))
        {
          return_completion (c);
          g_free (c);
        }
      else
        post_completion (c);
    }
}

static void
deliver_task (RedisCall      *self,
              ResultType      type,
              gpointer        result,
              GDestroyNotify  destroy,
              GError         *error)
{
  if (self->task == NULL)
    {
      /* An internal call nobody waits for: its outcome is read from the
       * call itself (on_done), or not at all. */
      if (destroy != NULL && result != NULL)
        destroy (result);
      if (error != NULL)
        g_error_free (error);
      return;
    }

  if (defer_depth > 0)
    g_queue_push_tail_link (&deferred, &completion_new (self, type, result, destroy, error)->link);
  else if (redis_worker_is_current ())
    post_completion (completion_new (self, type, result, destroy, error));
  else
    {
      /* A caller's own thread (a call refused or failed at once): GTask
       * decides, and never calls back inside the _async function. */
      Completion now = { { 0, }, g_steal_pointer (&self->task), type, result, destroy, error };

      return_completion (&now);
    }
}

static void
deliver_pointer (RedisCall      *self,
                 gpointer        result,
                 GDestroyNotify  destroy)
{
  if (self->waiter != NULL)
    waiter_deliver (g_steal_pointer (&self->waiter), result, destroy, NULL, NULL);
  else
    deliver_task (self, RESULT_POINTER, result, destroy, NULL);
}

void
redis_call_partial_free (RedisCallPartial *partial)
{
  g_clear_pointer (&partial->replies, g_ptr_array_unref);
  g_free (partial);
}

static guint64 read_header (const guint8 **p,
                            const guint8  *end);

/* How many whole commands of the encoded payload @data lie in its first
 * @written bytes, not counting the first @skip (a wrapper); at most @max. */
static guint
count_whole_commands (const guint8 *data,
                      gsize         len,
                      guint64       written,
                      guint         skip,
                      guint         max)
{
  const guint8 *p = data, *end = data + len;
  guint n = 0;

  for (guint i = 0; n < max && p < end; i++)
    {
      guint64 argc = read_header (&p, end);

      for (guint64 j = 0; j < argc && p < end; j++)
        {
          guint64 size = read_header (&p, end);

          p = size + 2 < (guint64) (end - MIN (p, end)) ? p + size + 2 : end;
        }
      if ((guint64) (MIN (p, end) - data) > written)
        break;
      if (i >= skip)
        n++;
    }
  return n;
}

/* What @self got done, as it fails: see RedisCallPartial. @total_written
 * is the written length of the stream the call is on, when @known (the
 * engine's I/O lock is held); otherwise all of a call put on the wire
 * counts as written, and its replies stay where they are. */
static RedisCallPartial *
partial_new (RedisCall *self,
             gboolean   known,
             guint64    total_written)
{
  RedisCallPartial *partial = g_new0 (RedisCallPartial, 1);
  guint64 written;

  if (self->write_end == 0)
    return partial;                /* never put on a wire: nothing written */
  if (!known || self->secret)      /* (a secret payload is zeroed once written) */
    {
      partial->n_written = self->n_commands;
      return partial;
    }

  written = total_written <= self->write_start ?
            0 : MIN (total_written, self->write_end) - self->write_start;
  switch (self->kind)
    {
    case REDIS_CALL_TRANSACTION:
      /* Nothing of it runs before the server has all of EXEC. */
      partial->n_written = written >= self->len ? self->n_commands : 0;
      break;
    case REDIS_CALL_NOREPLY:
      partial->n_written = count_whole_commands (self->data, self->len, written, 1,
                                                 self->n_commands);
      break;
    case REDIS_CALL_COMMAND:
    case REDIS_CALL_PIPELINE:
    default:
      partial->n_written = count_whole_commands (self->data, self->len, written, 0,
                                                 self->n_commands);
      break;
    }

  /* Completed now, the call takes no more replies: what arrived is the
   * caller's (a prefix, one reply per command, in order). */
  if (self->kind == REDIS_CALL_PIPELINE && self->replies != NULL && self->replies->len > 0)
    partial->replies = g_steal_pointer (&self->replies);
  return partial;
}

/* Completes a claimed call with @error, handing its caller what it got
 * done (see partial_new()). */
static void
deliver_failure (RedisCall *self,
                 GError    *error,
                 gboolean   known,
                 guint64    total_written)
{
  RedisCallPartial *partial = NULL;

  if (self->waiter != NULL || self->task != NULL)
    partial = partial_new (self, known, total_written);

  if (self->waiter != NULL)
    waiter_deliver (g_steal_pointer (&self->waiter), NULL, NULL, error, partial);
  else
    {
      /* Read by redis_client_get_partial(), on the task's thread once it
       * has completed (the completion hand-off orders the two). */
      if (partial != NULL)
        g_task_set_task_data (self->task, partial, (GDestroyNotify) redis_call_partial_free);
      deliver_task (self, RESULT_ERROR, NULL, NULL, error);
    }
}

/* A failure decided from the call's replies: all of it was written. */
static void
deliver_error (RedisCall *self,
               GError    *error)
{
  deliver_failure (self, error, TRUE, self->write_end);
}

/* Booleans travel as a non-NULL pointer for sync waiters. */
static void
deliver_true (RedisCall *self)
{
  if (self->waiter != NULL)
    waiter_deliver (g_steal_pointer (&self->waiter), GINT_TO_POINTER (1), NULL, NULL, NULL);
  else
    deliver_task (self, RESULT_TRUE, NULL, NULL, NULL);
}

gboolean
redis_call_fail (RedisCall *self,
                 GError    *error)
{
  if (!claim (self))
    {
      g_error_free (error);
      return FALSE;
    }

  deliver_failure (self, error, FALSE, 0);
  return TRUE;
}

gboolean
redis_call_fail_written (RedisCall *self,
                         GError    *error,
                         guint64    total_written)
{
  if (!claim (self))
    {
      g_error_free (error);
      return FALSE;
    }

  deliver_failure (self, error, TRUE, total_written);
  return TRUE;
}

void
redis_call_finish_written (RedisCall *self)
{
  if (claim (self))
    deliver_true (self);
}

/* The server's text, escaped for a GError message: valid UTF-8 without
 * control characters (the raw bytes stay in the reply). */
static char *
escape_reply_text (RedisReply *reply)
{
  gsize len = 0;
  const char *text = redis_reply_get_string (reply, &len);

  return redis_text_escape (text, len);
}

static GError *
error_from_reply (RedisReply *reply,
                  int         code)
{
  g_autofree char *text = escape_reply_text (reply);

  return g_error_new_literal (REDIS_ERROR, code, text);
}

static gboolean
is_status (RedisReply *reply,
           const char *text)
{
  gsize len = 0;
  const char *s;

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_STATUS)
    return FALSE;
  s = redis_reply_get_string (reply, &len);
  return len == strlen (text) && memcmp (s, text, len) == 0;
}

static GError *
exec_count_error (guint n_elements,
                  guint n_queued)
{
  return g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                      "Protocol error: EXEC returned %u replies for the %u commands queued",
                      n_elements, n_queued);
}

/* EXEC answered an array: one element per command the server queued. A
 * command refused while queueing without aborting the transaction (WATCH or
 * MULTI inside it) has its error in its place instead, so the result has
 * one reply per command of the batch, whatever happened. */
static void
finish_transaction_array (RedisCall  *self,
                          RedisReply *exec)
{
  g_autoptr(GPtrArray) elements = NULL;
  GPtrArray *result;

  /* redis_call_reply_in_step() counted the QUEUED replies and failed the
   * call with PROTOCOL on a count EXEC does not match. */
  g_assert (redis_reply_get_n_elements (exec) == self->n_queued);

  elements = redis_reply_steal_elements (exec);
  if (self->n_queued == self->n_commands)
    {
      deliver_pointer (self, g_steal_pointer (&elements), (GDestroyNotify) g_ptr_array_unref);
      return;
    }

  result = g_ptr_array_new_full (self->n_commands, (GDestroyNotify) redis_reply_unref);
  for (guint i = 1, next = 0; i + 1 < self->replies->len; i++)
    {
      RedisReply *queued = g_ptr_array_index (self->replies, i);

      if (is_status (queued, "QUEUED"))
        g_ptr_array_add (result, redis_reply_ref (g_ptr_array_index (elements, next++)));
      else
        g_ptr_array_add (result, redis_reply_ref (queued));
    }
  deliver_pointer (self, result, (GDestroyNotify) g_ptr_array_unref);
}

static void
finish_transaction (RedisCall *self)
{
  RedisReply *exec = g_ptr_array_index (self->replies, self->replies->len - 1);

  switch (redis_reply_get_kind (exec))
    {
    case REDIS_REPLY_KIND_ARRAY:
      finish_transaction_array (self, exec);
      return;

    case REDIS_REPLY_KIND_NIL:
      deliver_error (self, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_WATCH_FAILED,
                                                "The transaction did not run: a watched key changed"));
      return;

    case REDIS_REPLY_KIND_ERROR:
      if (g_str_has_prefix (redis_reply_get_string (exec, NULL), "EXECABORT"))
        {
          /* Name the first command the server refused while queueing. */
          for (guint i = 1; i + 1 < self->replies->len; i++)
            {
              RedisReply *queued = g_ptr_array_index (self->replies, i);

              if (redis_reply_get_kind (queued) == REDIS_REPLY_KIND_ERROR)
                {
                  g_autofree char *exec_text = escape_reply_text (exec);
                  g_autofree char *queued_text = escape_reply_text (queued);

                  deliver_error (self, g_error_new (REDIS_ERROR, REDIS_ERROR_TRANSACTION_ABORTED,
                                                    "%s (command %u: %s)",
                                                    exec_text, i, queued_text));
                  return;
                }
            }
          deliver_error (self, error_from_reply (exec, REDIS_ERROR_TRANSACTION_ABORTED));
        }
      else
        deliver_error (self, error_from_reply (exec, REDIS_ERROR_SERVER));
      return;

    case REDIS_REPLY_KIND_STRING:
    case REDIS_REPLY_KIND_STATUS:
    case REDIS_REPLY_KIND_INTEGER:
    default:
      deliver_error (self, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                                "EXEC answered with something that is not an array"));
      return;
    }
}

void
redis_call_finish_replies (RedisCall *self)
{
  if (!claim (self))
    return;

  g_assert (self->kind == REDIS_CALL_COMMAND ?
            self->reply != NULL :
            self->replies != NULL && self->replies->len == self->n_replies);

  switch (self->kind)
    {
    case REDIS_CALL_COMMAND:
      {
        RedisReply *reply = self->reply;

        if (redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR)
          deliver_error (self, error_from_reply (reply, REDIS_ERROR_SERVER));
        else
          deliver_pointer (self, g_steal_pointer (&self->reply), (GDestroyNotify) redis_reply_unref);
      }
      break;

    case REDIS_CALL_PIPELINE:
      deliver_pointer (self, g_ptr_array_ref (self->replies), (GDestroyNotify) g_ptr_array_unref);
      break;

    case REDIS_CALL_TRANSACTION:
      finish_transaction (self);
      break;

    case REDIS_CALL_NOREPLY:
      deliver_true (self);
      break;

    default:
      g_assert_not_reached ();
    }
}

static const char *
reply_kind_name (RedisReplyKind kind)
{
  switch (kind)
    {
    case REDIS_REPLY_KIND_STRING: return "a bulk string";
    case REDIS_REPLY_KIND_STATUS: return "a status";
    case REDIS_REPLY_KIND_INTEGER: return "an integer";
    case REDIS_REPLY_KIND_NIL: return "nil";
    case REDIS_REPLY_KIND_ARRAY: return "an array";
    case REDIS_REPLY_KIND_ERROR: return "an error";
    default: return "unknown";
    }
}

gboolean
redis_call_reply_in_step (RedisCall  *self,
                          guint       index,
                          RedisReply *reply)
{
  switch (self->kind)
    {
    case REDIS_CALL_NOREPLY:
      if (index == 0)
        return is_status (reply, "OK");
      if (index == 1 && self->noreply_token != NULL &&
          redis_reply_get_kind (reply) == REDIS_REPLY_KIND_STRING)
        {
          gsize len = 0;
          const char *s = redis_reply_get_string (reply, &len);

          return len == strlen (self->noreply_token) &&
                 memcmp (s, self->noreply_token, len) == 0;
        }
      return FALSE;

    case REDIS_CALL_TRANSACTION:
      /* Between MULTI's reply and EXEC's: count what was queued. */
      if (index > 0 && index + 1 < self->n_replies)
        {
          if (is_status (reply, "QUEUED"))
            self->n_queued++;
          return TRUE;
        }
      /* EXEC runs exactly what was queued. If not, this call is the one
       * that knows what went wrong: it fails here with PROTOCOL (the other
       * calls in flight get what the engine gives them). */
      if (index + 1 == self->n_replies && redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ARRAY &&
          redis_reply_get_n_elements (reply) != self->n_queued)
        {
          redis_call_fail_written (self, exec_count_error (redis_reply_get_n_elements (reply),
                                                           self->n_queued),
                                   self->write_end);
          return FALSE;
        }
      return TRUE;

    case REDIS_CALL_COMMAND:
      /* A reply of a kind the command never answers with belongs to
       * something else: the stream is out of step (a stray reply the server
       * sent earlier, now taken for this one). An error is always a valid
       * answer, and so is QUEUED (the command ran inside a lease's MULTI). */
      if ((self->flags & REDIS_COMMAND_FLAG_REPLY_MASK) != 0 &&
          redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ERROR &&
          !(self->flags & (1u << (8 + redis_reply_get_kind (reply)))) &&
          !is_status (reply, "QUEUED"))
        {
          redis_call_fail_written (self, g_error_new (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                                      "Protocol error: %s was answered with a reply of "
                                                      "a kind it never returns (%s): the replies are out "
                                                      "of step with the commands",
                                                      redis_call_get_name (self),
                                                      reply_kind_name (redis_reply_get_kind (reply))),
                                   self->write_end);
          return FALSE;
        }
      return TRUE;

    case REDIS_CALL_PIPELINE:
    default:
      return TRUE;
    }
}

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

char *
redis_encode_dup_name (const guint8 *data,
                       gsize         len,
                       guint         skip)
{
  const guint8 *p = data, *end = data + len;

  /* Whole commands first (a wrapper's MULTI or CLIENT REPLY OFF), then
   * the first bulk string of the next one. */
  for (guint i = 0; i < skip && p < end; i++)
    {
      guint64 argc = read_header (&p, end);

      for (guint64 j = 0; j < argc && p < end; j++)
        {
          guint64 n = read_header (&p, end);

          p = n + 2 < (guint64) (end - MIN (p, end)) ? p + n + 2 : end;
        }
    }
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

const char *
redis_call_get_name (RedisCall *self)
{
  char *name;

  if (self->label != NULL)
    return self->label;

  name = g_atomic_pointer_get (&self->name);
  if (name == NULL)
    {
      name = redis_encode_dup_name (self->data, self->len,
                                    self->kind == REDIS_CALL_NOREPLY ||
                                    self->kind == REDIS_CALL_TRANSACTION ? 1 : 0);
      /* Any thread may ask first: one copy wins. */
      if (!g_atomic_pointer_compare_and_exchange (&self->name, NULL, name))
        {
          g_free (name);
          name = g_atomic_pointer_get (&self->name);
        }
    }
  return name;
}
