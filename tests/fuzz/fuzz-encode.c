/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target for the request path: an argv → redis_encode_command()
 * → the library's own reader → the same arguments; plus the command's
 * classification (flags, block time) and the deadline computed from it.
 *
 * Input format (readable in a text editor: "` BLPOP q 1e13"):
 *   byte 0    bits 5-7  the command timeout, one of 0, 1, 999, 1000,
 *                       60000, G_MAXINT32, G_MAXUINT - 1, G_MAXUINT ms
 *             bits 3-4  the payload limit: 0 none (the default 1 GiB),
 *                       1 exactly the encoding's size (must pass), 2 one
 *                       byte less (must fail), 3 after a prefix, exactly
 *                       what is left (must pass)
 *   byte 1    the separator
 *   bytes 2…  the arguments, split at each separator (so any byte, NUL
 *             included, can be in an argument: choose another separator)
 *
 * Checks, besides ASan/UBSan/LSan and GLib criticals (fatal here):
 *   - an argv with no name or an empty one is refused (INVALID_ARGUMENT)
 *     and nothing is appended; any other is encoded, in exactly
 *     redis_encode_command_size() bytes, after what @out held;
 *   - the reader parses the encoding as exactly one array of bulk strings
 *     equal to the arguments, and nothing more;
 *   - the payload limit holds to the byte;
 *   - flags are consistent (UNSUPPORTED implies CONNECTION_STATE; only
 *     BLOCKING commands have a block time, -1 or more);
 *   - the block time of BLPOP & co. (seconds) and WAIT (milliseconds) is
 *     never shorter than the wait Redis 7.0 would do, computed here
 *     independently in long double as Redis does (strtold, then the ceiling
 *     of the milliseconds);
 *   - redis_call_set_timeout() gives no deadline or one in the future, never
 *     earlier than timeout + block time;
 *   - a no-reply call accepts exactly "+OK" then the ECHO of its token;
 *   - cluster routing (redis_cluster_command_slot(), which reads the
 *     encoding word by word, up to 8 bytes before the name) stays inside
 *     an exact-size copy of the encoding and of the raw input, consumes
 *     exactly the encoding or refuses it with INVALID_ARGUMENT (keys in
 *     several slots, never PROTOCOL), and gives GET and SET the slot of
 *     their key.
 */

#include "config-private.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>   /* HUGE_VALL only: no libm */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis-call-private.h"
#include "redis-cluster-keys-private.h"
#include "redis-cluster-slots-private.h"
#include "redis-error.h"
#include "redis-reader-private.h"
#include "redis-reply-private.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define encode_fail(...) G_STMT_START { g_printerr ("fuzz-encode: " __VA_ARGS__); g_printerr ("\n"); abort (); } G_STMT_END

/* What Redis 7.0 does with a timeout argument. */
typedef enum
{
  VERDICT_ERROR,     /* answered at once with an error */
  VERDICT_FOREVER,   /* waits until served */
  VERDICT_WAITS,     /* waits up to ms */
  VERDICT_UNSURE,    /* too close to a boundary for this oracle */
} Verdict;

/* string2ld() then getTimeoutFromObjectOrReply(UNIT_SECONDS): ceil of the
 * milliseconds (without libm: the regression test links without it). */
static Verdict
redis_seconds (const char  *text,
               gsize        len,
               long double *ms_out)
{
  const long double two_63 = 9223372036854775808.0L;
  char buf[5 * 1024];
  char *end;
  long double v, x, near;
  long long t;

  if (len == 0 || len >= sizeof buf)
    return VERDICT_ERROR;
  memcpy (buf, text, len);
  buf[len] = '\0';
  errno = 0;
  v = strtold (buf, &end);
  if (isspace ((unsigned char) buf[0]) || end[0] != '\0' || (gsize) (end - buf) != len ||
      (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) ||
      v != v)
    return VERDICT_ERROR;
  x = v * 1000.0L;

  /* Where double rounding can fall on the other side. */
  near = x + 1.0L;
  if (near > -1e-6L && near < 1e-6L)
    return VERDICT_UNSURE;
  near = x / two_63 - 1.0L;
  if (near > -1e-9L && near < 1e-9L)
    return VERDICT_UNSURE;

  if (!(x > -two_63 && x < two_63))
    return VERDICT_ERROR;
  t = (long long) x;
  if ((long double) t < x)
    t++;
  if (t < 0)
    return VERDICT_ERROR;
  if (t == 0)
    return VERDICT_FOREVER;
  *ms_out = (long double) t;
  return VERDICT_WAITS;
}

/* string2ll() then getTimeoutFromObjectOrReply(UNIT_MILLISECONDS). */
static Verdict
redis_millis (const char  *text,
              gsize        len,
              long double *ms_out)
{
  char buf[32];
  char *end;
  gsize p = 0;
  long long v;

  if (len == 0 || len >= sizeof buf)
    return VERDICT_ERROR;
  if (len == 1 && text[0] == '0')
    return VERDICT_FOREVER;
  if (text[0] == '-')
    p = 1;
  if (p >= len || text[p] < '1' || text[p] > '9')
    return VERDICT_ERROR;
  for (gsize i = p; i < len; i++)
    if (text[i] < '0' || text[i] > '9')
      return VERDICT_ERROR;
  memcpy (buf, text, len);
  buf[len] = '\0';
  errno = 0;
  v = strtoll (buf, &end, 10);
  if (errno == ERANGE || *end != '\0' || v < 0)
    return VERDICT_ERROR;
  *ms_out = (long double) v;
  return VERDICT_WAITS;
}

static gboolean
is_name (const char *name,
         gsize       len,
         const char *literal)
{
  return len == strlen (literal) && g_ascii_strncasecmp (name, literal, len) == 0;
}

static void
check_block_time (guint               argc,
                  const char        **argv,
                  const gsize        *lens,
                  RedisCommandFlags   flags,
                  gint64              block_ms)
{
  Verdict verdict;
  long double ms = 0;
  guint at = 0;

  if ((is_name (argv[0], lens[0], "BLPOP") || is_name (argv[0], lens[0], "BRPOP") ||
       is_name (argv[0], lens[0], "BZPOPMIN") || is_name (argv[0], lens[0], "BZPOPMAX") ||
       is_name (argv[0], lens[0], "BRPOPLPUSH") || is_name (argv[0], lens[0], "BLMOVE")) &&
      argc >= 3)
    verdict = redis_seconds (argv[at = argc - 1], lens[argc - 1], &ms);
  else if ((is_name (argv[0], lens[0], "BLMPOP") || is_name (argv[0], lens[0], "BZMPOP")) &&
           argc >= 2)
    verdict = redis_seconds (argv[at = 1], lens[1], &ms);
  else if ((is_name (argv[0], lens[0], "WAIT") || is_name (argv[0], lens[0], "WAITAOF")) &&
           argc >= 3)
    verdict = redis_millis (argv[at = argc - 1], lens[argc - 1], &ms);
  else
    return;

  if (flags != REDIS_COMMAND_FLAG_BLOCKING)
    encode_fail ("%.*s is not flagged blocking", (int) lens[0], argv[0]);

  switch (verdict)
    {
    case VERDICT_ERROR:
    case VERDICT_UNSURE:
      break;
    case VERDICT_FOREVER:
      if (block_ms != -1)
        encode_fail ("Redis waits forever on \"%.*s\", block time %" G_GINT64_FORMAT,
                     (int) lens[at], argv[at], block_ms);
      break;
    case VERDICT_WAITS:
      /* Never shorter (bar a millisecond of rounding, relative 1e-12). */
      if (block_ms != -1 && (long double) block_ms < ms * (1.0L - 1e-12L) - 1.0L)
        encode_fail ("Redis waits %.0Lf ms on \"%.*s\", block time %" G_GINT64_FORMAT,
                     ms, (int) lens[at], argv[at], block_ms);
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
check_deadline (GBytes *payload,
                gint64  block_ms,
                guint   timeout_ms)
{
  RedisCall *call = redis_call_new (REDIS_CALL_COMMAND, payload, 1, NULL);
  gint64 before, deadline, span, earliest;

  call->block_ms = block_ms;
  before = g_get_monotonic_time ();
  redis_call_set_timeout (call, timeout_ms);
  deadline = call->deadline;
  redis_call_unref (call);

  if (timeout_ms == 0 || block_ms < 0)
    {
      if (deadline != 0)
        encode_fail ("a deadline without a timeout (block %" G_GINT64_FORMAT ")", block_ms);
      return;
    }
  if (__builtin_add_overflow ((gint64) timeout_ms, block_ms, &span) ||
      __builtin_mul_overflow (span, G_TIME_SPAN_MILLISECOND, &span) ||
      __builtin_add_overflow (before, span, &earliest))
    {
      if (deadline != 0)
        encode_fail ("a deadline past G_MAXINT64 (block %" G_GINT64_FORMAT ", timeout %u)",
                     block_ms, timeout_ms);
      return;
    }
  /* Representable: it must be there (unless within a second of the end). */
  if (deadline == 0 && earliest < G_MAXINT64 - G_TIME_SPAN_SECOND)
    encode_fail ("no deadline (block %" G_GINT64_FORMAT ", timeout %u)", block_ms, timeout_ms);
  if (deadline != 0 && (deadline <= before || deadline < earliest))
    encode_fail ("deadline %" G_GINT64_FORMAT " before %" G_GINT64_FORMAT
                 " (block %" G_GINT64_FORMAT ", timeout %u)", deadline, earliest, block_ms, timeout_ms);
}

static void
check_noreply_acks (guint         argc,
                    const char  **argv,
                    const gsize  *lens,
                    GBytes       *payload)
{
  RedisCall *call;
  RedisReply *ack, *echo;
  gboolean ack_ok, echo_ok;

  if (argc < 3 || memchr (argv[0], '\0', lens[0]) != NULL)
    return;
  call = redis_call_new (REDIS_CALL_NOREPLY, payload, 1, NULL);
  call->noreply_token = g_strndup (argv[0], lens[0]);
  ack = redis_reply_new_text (REDIS_REPLY_KIND_STATUS, argv[1], lens[1]);
  echo = redis_reply_new_text (REDIS_REPLY_KIND_STRING, argv[2], lens[2]);

  ack_ok = redis_call_reply_in_step (call, 0, ack);
  echo_ok = redis_call_reply_in_step (call, 1, echo);
  if (ack_ok != (lens[1] == 2 && memcmp (argv[1], "OK", 2) == 0))
    encode_fail ("acknowledgement \"%.*s\" judged %d", (int) lens[1], argv[1], ack_ok);
  if (echo_ok != (lens[2] == lens[0] && memcmp (argv[2], argv[0], lens[0]) == 0))
    encode_fail ("echo \"%.*s\" judged %d", (int) lens[2], argv[2], echo_ok);
  if (redis_call_reply_in_step (call, 1, ack))
    encode_fail ("a status reply taken for the token");

  redis_reply_unref (ack);
  redis_reply_unref (echo);
  redis_call_unref (call);
}

/* libFuzzer saves the input on abort(), not on the SIGTRAP of a fatal
 * GLib message: print and abort ourselves. */
static void
encode_fatal_log_handler (const char     *domain,
                          GLogLevelFlags  level,
                          const char     *message,
                          gpointer        user_data)
{
  g_log_default_handler (domain, level, message, user_data);
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  g_log_set_default_handler (encode_fatal_log_handler, NULL);
  return 0;
}

/* Cluster routing on exact-size copies (ASan sees a read past either end). */
static void
check_cluster_slot (const guint8       *encoding,
                    gsize               len,
                    guint               argc,
                    const char * const *argv,
                    const gsize        *lens,
                    const guint8       *raw,
                    gsize               raw_len)
{
  g_autofree guint8 *copy = g_memdup2 (encoding, len);
  g_autofree guint8 *raw_copy = g_memdup2 (raw, raw_len);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) raw_error = NULL;
  gboolean readonly = FALSE;
  gsize consumed = 0;
  gint slot;

  slot = redis_cluster_command_slot (copy, len, &consumed, NULL, &readonly, &error);
  if (slot == REDIS_CLUSTER_SLOT_INVALID)
    {
      if (!g_error_matches (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT))
        encode_fail ("routing refused a valid encoding: %s", error != NULL ? error->message : "no error");
    }
  else
    {
      if (error != NULL)
        encode_fail ("routing set an error with slot %d", slot);
      if (slot >= REDIS_CLUSTER_N_SLOTS || slot < REDIS_CLUSTER_SLOT_UNKNOWN)
        encode_fail ("routing gave slot %d", slot);
      if (consumed != len)
        encode_fail ("routing consumed %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", consumed, len);
    }
  if ((argc == 2 && lens[0] == 3 && g_ascii_strncasecmp (argv[0], "GET", 3) == 0) ||
      (argc == 3 && lens[0] == 3 && g_ascii_strncasecmp (argv[0], "SET", 3) == 0))
    {
      gint want = redis_cluster_slot_of ((const guint8 *) argv[1], lens[1]);

      if (slot != want)
        encode_fail ("%.3s routed to slot %d, its key is in %d", argv[0], slot, want);
    }

  /* Whatever bytes: refused or read inside them. */
  consumed = 0;
  slot = redis_cluster_command_slot (raw_copy, raw_len, &consumed, NULL, &readonly, &raw_error);
  if (slot != REDIS_CLUSTER_SLOT_INVALID && consumed > raw_len)
    encode_fail ("routing consumed past the input");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static const guint timeouts[] = { 0, 1, 999, 1000, 60000, G_MAXINT32, G_MAXUINT - 1, G_MAXUINT };
  g_autoptr(GPtrArray) argv_array = g_ptr_array_new ();
  g_autoptr(GArray) lens_array = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  RedisCommandFlags flags = 0;
  gint64 block_ms = 0;
  guint timeout_ms, limit_mode, argc;
  const char **argv;
  const gsize *lens;
  gsize prefix = 0;
  guint64 exact = 0;
  gboolean valid, ok;

  if (size < 2)
    return 0;
  timeout_ms = timeouts[data[0] >> 5];
  limit_mode = (data[0] >> 3) & 3;

  /* Split the rest at the separator; "" gives no argument at all. */
  if (size > 2)
    {
      const char *p = (const char *) data + 2;
      const char *end = (const char *) data + size;

      for (;;)
        {
          const char *sep = memchr (p, data[1], end - p);
          gsize len = (sep != NULL ? sep : end) - p;

          g_ptr_array_add (argv_array, (gpointer) p);
          g_array_append_val (lens_array, len);
          if (sep == NULL)
            break;
          p = sep + 1;
        }
    }
  argc = argv_array->len;
  argv = (const char **) argv_array->pdata;
  lens = (const gsize *) (gpointer) lens_array->data;
  valid = argc > 0 && lens[0] > 0;

  if (valid)
    exact = redis_encode_command_size (argc, lens);
  if (valid && limit_mode == 3)
    {
      prefix = 1 + (argc * 7) % 23;
      g_byte_array_set_size (out, prefix);
      memset (out->data, '#', prefix);
    }
  if (valid && limit_mode != 0)
    redis_encode_set_max_payload_for_testing (limit_mode == 2 ? exact - 1 : prefix + exact);

  ok = redis_encode_command (out, argc, argv, lens, &flags, &block_ms, &name, &error);
  redis_encode_set_max_payload_for_testing (0);

  if (!valid || limit_mode == 2)
    {
      if (ok)
        encode_fail ("encoded %s", valid ? "over the limit" : "an argv without a name");
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
      if (out->len != prefix)
        encode_fail ("a refused command left bytes behind");
      return 0;
    }
  if (!ok)
    encode_fail ("refused: %s", error->message);
  g_assert_no_error (error);
  if (out->len - prefix != exact)
    encode_fail ("encoded in %" G_GUINT64_FORMAT " bytes, redis_encode_command_size() says %"
                 G_GUINT64_FORMAT, (guint64) (out->len - prefix), exact);
  g_assert_nonnull (name);

  /* Parsed back by the library's own reader: the same arguments. */
  {
    RedisReader *reader = redis_reader_new (exact, argc + 1, 64, REDIS_READER_DEFAULT_MAX_DEPTH);
    RedisReply *reply, *extra;

    if (!redis_reader_feed (reader, (const char *) out->data + prefix, exact, &error))
      encode_fail ("the reader refuses the encoding: %s", error->message);
    reply = redis_reader_pop (reader);
    extra = redis_reader_pop (reader);
    if (reply == NULL || extra != NULL || redis_reader_has_failed (reader))
      encode_fail ("the encoding is not exactly one reply");
    if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY ||
        redis_reply_get_n_elements (reply) != argc)
      encode_fail ("not an array of %u elements", argc);
    for (guint i = 0; i < argc; i++)
      {
        RedisReply *element = redis_reply_get_element (reply, i);
        gsize len = 0;
        const char *text = redis_reply_get_string (element, &len);

        if (redis_reply_get_kind (element) != REDIS_REPLY_KIND_STRING ||
            len != lens[i] || memcmp (text, argv[i], len) != 0)
          encode_fail ("argument %u changed", i);
      }
    redis_reply_unref (reply);
    redis_reader_free (reader);
  }

  /* Classification: reply kinds only for plain commands, and only kinds
   * that exist. */
  if ((flags & REDIS_COMMAND_FLAG_REPLY_MASK) != 0 &&
      ((flags & ~REDIS_COMMAND_FLAG_REPLY_MASK) != 0 ||
       (flags & REDIS_COMMAND_FLAG_REPLY_MASK) >= (1u << (8 + REDIS_REPLY_KIND_ERROR))))
    encode_fail ("inconsistent reply kinds %d", flags);
  flags &= ~REDIS_COMMAND_FLAG_REPLY_MASK;
  if ((flags & ~(REDIS_COMMAND_FLAG_BLOCKING | REDIS_COMMAND_FLAG_CONNECTION_STATE |
                 REDIS_COMMAND_FLAG_UNSUPPORTED)) != 0 ||
      ((flags & REDIS_COMMAND_FLAG_UNSUPPORTED) && !(flags & REDIS_COMMAND_FLAG_CONNECTION_STATE)) ||
      ((flags & REDIS_COMMAND_FLAG_BLOCKING) && flags != REDIS_COMMAND_FLAG_BLOCKING))
    encode_fail ("inconsistent flags %d", flags);
  if (!(flags & REDIS_COMMAND_FLAG_BLOCKING) ? block_ms != 0 : block_ms < -1)
    encode_fail ("block time %" G_GINT64_FORMAT " with flags %d", block_ms, flags);
  check_block_time (argc, argv, lens, flags, block_ms);
  check_cluster_slot (out->data + prefix, exact, argc, argv, lens, data + 2, size - 2);

  {
    g_autoptr(GBytes) payload = g_byte_array_free_to_bytes (g_steal_pointer (&out));

    check_deadline (payload, block_ms, timeout_ms);
    check_noreply_acks (argc, argv, lens, payload);
  }

  if (redis_reply_get_live_count () != 0)
    encode_fail ("%u replies leaked", redis_reply_get_live_count ());
  return 0;
}
