/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Commands as the library builds, classifies and matches them (issue 16):
 *   - the payload limit of a call and of a batch, at the byte, and size
 *     arithmetic that cannot wrap;
 *   - block times (BLPOP's seconds, WAIT's and XREAD's milliseconds) as
 *     Redis 7.0 reads them, and deadlines that saturate instead of
 *     overflowing;
 *   - an audit of the special-command table against the full command list
 *     of the redis-server at hand: every command and subcommand must be
 *     known here, as one reply per command, as connection state, or as
 *     refused — a command added by a newer Redis fails the audit until it
 *     is classified;
 *   - EXEC's array checked against what was queued;
 *   - no-reply calls ending with an ECHO the server must return.
 */

#include <string.h>
#include <sys/mman.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-batch-private.h"
#include "redis-call-private.h"
#include "redis-reply-private.h"
#include "fake-server.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

static RedisTestServer *server;

#define REQUIRE_SERVER()                                      \
  G_STMT_START {                                              \
    if (server == NULL)                                       \
      {                                                       \
        g_test_skip ("redis-server not available");           \
        return;                                               \
      }                                                       \
  } G_STMT_END

#define STATE REDIS_COMMAND_FLAG_CONNECTION_STATE
#define UNSUPPORTED (REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED)
#define BLOCKING REDIS_COMMAND_FLAG_BLOCKING

/* ---- helpers ------------------------------------------------------------ */

static RedisConnection *
open_port (guint16 port,
           guint   command_timeout)
{
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;

  conn = g_initable_new (REDIS_TYPE_CONNECTION, NULL, &error,
                         "port", (guint) port,
                         "command-timeout", command_timeout,
                         "connect-timeout", test_scale_ms (2000),
                         NULL);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  return conn;
}

static RedisConnection *
open_default (void)
{
  return open_port (redis_test_server_get_port (server), test_scale_ms (2000));
}

/* A fake server answering ":1" to the handshake, then @answer_all. */
static RedisConnection *
open_fake (FakeServer *fake,
           const char *answer_all,
           guint       command_timeout)
{
  RedisConnection *conn;

  fake_server_set_answer_all (fake, ":1\r\n", -1);
  conn = open_port (fake_server_get_port (fake), command_timeout);
  fake_server_set_answer_all (fake, answer_all, -1);
  return conn;
}

static RedisReply *
run_argv (RedisConnection    *conn,
          const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (conn), argv, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  return reply;
}

#define run(conn, ...) run_argv (conn, (const char *[]) { __VA_ARGS__, NULL })

static void
assert_string_reply (RedisReply *reply,
                     const char *expected)
{
  g_assert_nonnull (reply);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_STRING);
  g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, expected);
}

/* Classifies @argv as the encoder does; the encoding must succeed. */
static RedisCommandFlags
classify_argv (const char * const *argv,
               gint64             *block_ms)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  RedisCommandFlags flags = 0xff;
  gint64 ignored;

  g_assert_true (redis_encode_strv (out, argv, &flags, block_ms ? block_ms : &ignored, NULL, &error));
  g_assert_no_error (error);
  return flags;
}

/* ---- 1. payload limit --------------------------------------------------- */

/* A SET whose encoding is exactly @size bytes. */
static char **
set_of_size (gsize size)
{
  for (gsize len = 0; len < size; len++)
    {
      gsize lens[] = { 3, 1, len };

      if (redis_encode_command_size (3, lens) == size)
        {
          char **argv = g_new0 (char *, 4);

          argv[0] = g_strdup ("SET");
          argv[1] = g_strdup ("k");
          argv[2] = g_strnfill (len, 'v');
          return argv;
        }
    }
  g_assert_not_reached ();
}

static void
assert_limit_error (GError *error,
                    gsize   limit)
{
  g_autofree char *limit_text = g_strdup_printf ("%" G_GSIZE_FORMAT " bytes", limit);

  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, limit_text));
}

static void
test_limit_command (void)
{
  const gsize limit = 300;
  g_auto(GStrv) at_limit = set_of_size (limit);
  g_auto(GStrv) over_limit = set_of_size (limit + 1);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (redis_encode_get_max_payload (), ==, REDIS_MAX_PAYLOAD_BYTES);
  redis_encode_set_max_payload_for_testing (limit);

  /* Exactly at the limit: encoded, to the byte. */
  g_assert_true (redis_encode_strv (out, (const char * const *) at_limit, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (out->len, ==, limit);

  /* One byte over: refused, @out untouched. */
  g_assert_false (redis_encode_strv (out, (const char * const *) at_limit, NULL, NULL, NULL, &error));
  assert_limit_error (error, limit);
  g_clear_error (&error);
  g_assert_cmpuint (out->len, ==, limit);

  g_byte_array_set_size (out, 0);
  g_assert_false (redis_encode_strv (out, (const char * const *) over_limit, NULL, NULL, NULL, &error));
  assert_limit_error (error, limit);
  g_clear_error (&error);
  g_assert_cmpuint (out->len, ==, 0);

  /* After a prefix, the total counts. */
  g_byte_array_set_size (out, 0);
  g_assert_true (redis_encode_strv (out, (const char *[]) { "PING", NULL }, NULL, NULL, NULL, &error));
  g_assert_false (redis_encode_strv (out, (const char * const *) at_limit, NULL, NULL, NULL, &error));
  assert_limit_error (error, limit);
  g_clear_error (&error);

  /* Appending raw bytes obeys the same limit. */
  g_byte_array_set_size (out, 0);
  {
    g_autofree guint8 *bytes = g_malloc0 (limit + 1);

    g_assert_true (redis_encode_append (out, bytes, limit, &error));
    g_assert_no_error (error);
    g_assert_false (redis_encode_append (out, bytes, 1, &error));
    assert_limit_error (error, limit);
    g_clear_error (&error);
    g_assert_cmpuint (out->len, ==, limit);
  }

  redis_encode_set_max_payload_for_testing (0);
  g_assert_cmpuint (redis_encode_get_max_payload (), ==, REDIS_MAX_PAYLOAD_BYTES);
}

/* The size arithmetic is checked: lengths that would wrap 32 or 64 bits
 * are computed exactly or saturate, and nothing is allocated or read. */
static void
test_limit_no_wrap (void)
{
  const gsize two_gib = (gsize) 2 * 1024 * 1024 * 1024;
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  /* Never read: the checks come first. */
  const guint8 *nowhere = (const guint8 *) &error;

  if (sizeof (gsize) < 8)
    {
      g_test_skip ("needs a 64-bit gsize");
      return;
    }

  {
    gsize lens[] = { 3, two_gib, two_gib, two_gib };
    /* "*4\r\n" "$3\r\nSET\r\n" + 3 × ("$2147483648\r\n" + 2 GiB + "\r\n") */
    guint64 expected = 4 + 9 + 3 * (1 + 10 + 2 + (guint64) two_gib + 2);

    g_assert_cmpuint (redis_encode_command_size (4, lens), ==, expected);
    g_assert_cmpuint (expected, >, G_MAXUINT32);
  }
  {
    gsize lens[] = { G_MAXSIZE, G_MAXSIZE };

    g_assert_cmpuint (redis_encode_command_size (2, lens), ==, G_MAXUINT64);
  }
  {
    gsize lens[] = { 3, G_MAXSIZE - 30 };

    g_assert_cmpuint (redis_encode_command_size (2, lens), ==, G_MAXUINT64);
  }

  /* What the payload would become past 4 GiB: refused, not wrapped. */
  g_assert_false (redis_encode_check_payload ((guint64) G_MAXUINT32 + 2, &error));
  assert_limit_error (error, REDIS_MAX_PAYLOAD_BYTES);
  g_clear_error (&error);
  g_assert_false (redis_encode_append (out, nowhere, G_MAXSIZE, &error));
  assert_limit_error (error, REDIS_MAX_PAYLOAD_BYTES);
  g_clear_error (&error);
  g_assert_false (redis_encode_append (out, nowhere, (gsize) G_MAXUINT32 + 1, &error));
  g_clear_error (&error);
  g_assert_cmpuint (out->len, ==, 0);
  g_assert_true (redis_encode_check_payload (REDIS_MAX_PAYLOAD_BYTES, NULL));
  g_assert_false (redis_encode_check_payload (REDIS_MAX_PAYLOAD_BYTES + 1, NULL));

  /* A command of two 512 MiB arguments is over 1 GiB: refused before a
   * byte is read (the region is reserved, never touched). */
  {
    const gsize half = REDIS_MAX_ARGUMENT_BYTES;
    void *region = mmap (NULL, half, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    g_autoptr(RedisBatch) batch = redis_batch_new ();
    g_autoptr(GBytes) name = g_bytes_new_static ("SET", 3);
    g_autoptr(GBytes) big = NULL;
    guint n = 0;
    RedisCommandFlags flags;
    gint64 block_ms;
    GBytes *body;

    if (region == MAP_FAILED)
      {
        g_test_skip ("cannot reserve 512 MiB of address space");
        return;
      }
    big = g_bytes_new_static (region, half);
    {
      GBytes *args[] = { name, big, big };

      redis_batch_add_bytes (batch, args, 3);
    }
    body = redis_batch_encode (batch, &n, &flags, &block_ms, &error);
    g_assert_null (body);
    assert_limit_error (error, REDIS_MAX_PAYLOAD_BYTES);
    g_clear_error (&error);
    g_clear_pointer (&big, g_bytes_unref);
    munmap (region, half);
  }
}

/* A batch refuses the command that would take it over the limit and
 * remembers it; a batch at the limit goes out as a pipeline, but not
 * wrapped in MULTI … EXEC or CLIENT REPLY OFF … ON. */
static void
test_limit_batch (void)
{
  const gsize limit = 400;
  RedisConnection *conn;
  g_autoptr(RedisBatch) full = redis_batch_new ();
  g_autoptr(RedisBatch) over = redis_batch_new ();
  g_autoptr(RedisBatch) wrapped = redis_batch_new ();
  g_auto(GStrv) half = set_of_size (limit / 2);
  g_auto(GStrv) wrapped_half = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *replies;

  REQUIRE_SERVER ();
  conn = open_default ();   /* opened before the limit is lowered */
  redis_encode_set_max_payload_for_testing (limit);

  redis_batch_add (full, (const char * const *) half);
  redis_batch_add (full, (const char * const *) half);
  g_assert_cmpuint (redis_batch_get_n_commands (full), ==, 2);

  redis_batch_add (over, (const char * const *) half);
  redis_batch_add (over, (const char * const *) half);
  redis_batch_add (over, (const char *[]) { "PING", NULL });
  redis_batch_add (over, (const char *[]) { "PING", NULL });
  g_assert_cmpuint (redis_batch_get_n_commands (over), ==, 4);

  /* The pipeline at the limit runs. */
  replies = redis_client_pipeline_sync (REDIS_CLIENT (conn), full, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2);
  g_ptr_array_unref (replies);

  /* Wrapped, it is over. */
  replies = redis_client_transaction_sync (REDIS_CLIENT (conn), full, NULL, &error);
  g_assert_null (replies);
  assert_limit_error (error, limit);
  g_clear_error (&error);
  g_assert_false (redis_client_noreply_pipeline_sync (REDIS_CLIENT (conn), full, NULL, &error));
  assert_limit_error (error, limit);
  g_clear_error (&error);

  /* The third command was refused, and named. */
  replies = redis_client_pipeline_sync (REDIS_CLIENT (conn), over, NULL, &error);
  g_assert_null (replies);
  assert_limit_error (error, limit);
  g_assert_nonnull (strstr (error->message, "Command 2 of the batch"));
  g_clear_error (&error);

  /* With room for MULTI (15 bytes) and EXEC (14): the transaction runs. */
  wrapped_half = set_of_size ((limit - 15 - 14) / 2);
  redis_batch_add (wrapped, (const char * const *) wrapped_half);
  redis_batch_add (wrapped, (const char * const *) wrapped_half);
  replies = redis_client_transaction_sync (REDIS_CLIENT (conn), wrapped, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 2);
  g_ptr_array_unref (replies);

  /* A single command: at the limit it runs; as a no-reply call its
   * wrapping takes it over. */
  {
    g_auto(GStrv) one = set_of_size (limit);
    RedisReply *r;

    r = redis_client_command_sync (REDIS_CLIENT (conn), (const char * const *) one, NULL, &error);
    g_assert_no_error (error);
    redis_reply_unref (r);
    g_assert_false (redis_client_noreply_command_sync (REDIS_CLIENT (conn), (const char * const *) one,
                                                       NULL, &error));
    assert_limit_error (error, limit);
    g_clear_error (&error);
  }

  redis_encode_set_max_payload_for_testing (0);
  close_and_finalize (conn);
}

/* ---- 2. block times and deadlines -------------------------------------- */

typedef struct
{
  const char        *argv[12];
  RedisCommandFlags  flags;
  gint64             block_ms;
} BlockCase;

static void
test_block_time_classify (void)
{
  static const BlockCase cases[] = {
    /* Seconds (string2ld, then ceil (s × 1000) ms; 0 = forever). */
    { { "BLPOP", "q", "1e13" }, BLOCKING, G_GINT64_CONSTANT (10000000000000000) },
    { { "BLPOP", "q", "1.5" }, BLOCKING, 1500 },
    { { "BLPOP", "q", "0.0001" }, BLOCKING, 1 },        /* rounded up */
    { { "BLPOP", "q", "0.0015" }, BLOCKING, 2 },
    { { "BLPOP", "q", "0" }, BLOCKING, -1 },
    { { "BLPOP", "q", "-0" }, BLOCKING, -1 },
    { { "BLPOP", "q", "-0.0001" }, BLOCKING, -1 },      /* ceil() is 0: Redis waits forever */
    { { "BLPOP", "q", "-0.001" }, BLOCKING, -1 },       /* so does redis 7.0 */
    { { "BLPOP", "q", "-0.01" }, BLOCKING, 0 },         /* "timeout is negative" */
    { { "BLPOP", "q", "-1" }, BLOCKING, 0 },
    { { "BLPOP", "q", "+1" }, BLOCKING, 1000 },
    { { "BLPOP", "q", "01" }, BLOCKING, 1000 },
    { { "BLPOP", "q", "0x10" }, BLOCKING, 16000 },
    { { "BLPOP", "q", "nan" }, BLOCKING, 0 },           /* not a float */
    { { "BLPOP", "q", "NaN" }, BLOCKING, 0 },
    { { "BLPOP", "q", "inf" }, BLOCKING, 0 },           /* negative (7.0) / out of range */
    { { "BLPOP", "q", "-inf" }, BLOCKING, 0 },
    { { "BLPOP", "q", "infinity" }, BLOCKING, 0 },
    { { "BLPOP", "q", "1e300" }, BLOCKING, 0 },
    { { "BLPOP", "q", "1e400" }, BLOCKING, 0 },
    { { "BLPOP", "q", "9.3e15" }, BLOCKING, 0 },
    /* Valid for Redis (it waits): saturates, whatever double rounding does. */
    { { "BLPOP", "q", "9223372036854775" }, BLOCKING, G_MAXINT64 },
    { { "BLPOP", "q", "9223372036854" }, BLOCKING, G_GINT64_CONSTANT (9223372036854000) },
    { { "BLPOP", "q", " 1" }, BLOCKING, 0 },            /* no leading space */
    { { "BLPOP", "q", "1 " }, BLOCKING, 0 },
    { { "BLPOP", "q", "1s" }, BLOCKING, 0 },
    { { "BLPOP", "q", "0x" }, BLOCKING, 0 },
    { { "BLPOP", "q", "" }, BLOCKING, 0 },
    { { "BRPOPLPUSH", "a", "b", "2" }, BLOCKING, 2000 },
    { { "BLMPOP", "0.5", "1", "q", "LEFT" }, BLOCKING, 500 },
    { { "BZMPOP", "nan", "1", "z", "MIN" }, BLOCKING, 0 },
    /* Milliseconds (string2ll: no '+', no leading zero, within a long long). */
    { { "WAIT", "0", "9223372036854775" }, BLOCKING, G_GINT64_CONSTANT (9223372036854775) },
    { { "WAIT", "0", "9223372036854775807" }, BLOCKING, G_MAXINT64 },
    { { "WAIT", "0", "9223372036854775808" }, BLOCKING, 0 },
    { { "WAIT", "0", "99999999999999999999" }, BLOCKING, 0 },
    { { "WAIT", "0", "0" }, BLOCKING, -1 },
    { { "WAIT", "0", "-0" }, BLOCKING, 0 },
    { { "WAIT", "0", "-1" }, BLOCKING, 0 },
    { { "WAIT", "0", "+1" }, BLOCKING, 0 },
    { { "WAIT", "0", "01" }, BLOCKING, 0 },
    { { "WAIT", "0", "1.5" }, BLOCKING, 0 },
    { { "WAIT", "1", "250" }, BLOCKING, 250 },
    { { "XREAD", "BLOCK", "1e3", "STREAMS", "s", "$" }, BLOCKING, 0 },
    { { "XREAD", "BLOCK", "9223372036854775807", "STREAMS", "s", "$" }, BLOCKING, G_MAXINT64 },
    { { "XREAD", "COUNT", "BLOCK", "STREAMS", "s", "$" }, REDIS_COMMAND_FLAG_NONE, 0 },
    { { "XREAD", "BLOCK", "10", "BLOCK", "20", "STREAMS", "s", "$" }, BLOCKING, 20 },
    { { "XREAD", "BLOCK", "x", "BLOCK", "20", "STREAMS", "s", "$" }, BLOCKING, 0 },
    /* A group named BLOCK is not the option. */
    { { "XREADGROUP", "GROUP", "BLOCK", "c", "STREAMS", "s", ">" }, REDIS_COMMAND_FLAG_NONE, 0 },
    { { "XREADGROUP", "GROUP", "g", "BLOCK", "NOACK", "BLOCK", "7", "STREAMS", "s", ">" }, BLOCKING, 7 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *joined = g_strjoinv (" ", (char **) cases[i].argv);
      gint64 block_ms = 12345;
      RedisCommandFlags flags = classify_argv (cases[i].argv, &block_ms);

      g_test_message ("%s -> flags %d, block %" G_GINT64_FORMAT " ms", joined, flags, block_ms);
      g_assert_cmpint (flags, ==, cases[i].flags);
      g_assert_cmpint (block_ms, ==, cases[i].block_ms);
    }

  /* Longer than a stack buffer, still a number Redis takes (< 5 KiB). */
  {
    g_autoptr(GString) s = g_string_new ("0.");
    gint64 block_ms = 0;

    for (guint i = 0; i < 200; i++)
      g_string_append_c (s, '0');
    g_string_append_c (s, '1');
    g_assert_cmpint (classify_argv ((const char *[]) { "BLPOP", "q", s->str, NULL }, &block_ms),
                     ==, BLOCKING);
    g_assert_cmpint (block_ms, ==, 1);
    for (guint i = 0; i < 5000; i++)
      g_string_append_c (s, '0');
    g_assert_cmpint (classify_argv ((const char *[]) { "BLPOP", "q", s->str, NULL }, &block_ms),
                     ==, BLOCKING);
    g_assert_cmpint (block_ms, ==, 0);   /* over 5 KiB: not a float */
  }
}

static gint64
deadline_of (gint64 block_ms,
             guint  timeout_ms)
{
  g_autoptr(GBytes) payload = g_bytes_new_static ("*1\r\n$4\r\nPING\r\n", 14);
  RedisCall *call = redis_call_new (REDIS_CALL_COMMAND, payload, 1, NULL);
  gint64 deadline;

  call->block_ms = block_ms;
  redis_call_set_timeout (call, timeout_ms);
  deadline = call->deadline;
  redis_call_unref (call);
  return deadline;
}

static void
test_block_time_set_timeout (void)
{
  gint64 now = g_get_monotonic_time ();
  gint64 d;

  /* The ordinary sum. */
  d = deadline_of (1500, 1000);
  g_assert_cmpint (d, >=, now + 2500 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (d, <, now + 2500 * G_TIME_SPAN_MILLISECOND + 10 * G_TIME_SPAN_SECOND);
  d = deadline_of (0, G_MAXUINT);
  g_assert_cmpint (d, >=, now + (gint64) G_MAXUINT * G_TIME_SPAN_MILLISECOND);

  /* No deadline at all. */
  g_assert_cmpint (deadline_of (-1, 1000), ==, 0);
  g_assert_cmpint (deadline_of (1500, 0), ==, 0);

  /* Too far to represent: no deadline, never a wrapped one. */
  g_assert_cmpint (deadline_of (G_GINT64_CONSTANT (10000000000000000), 1000), ==, 0);   /* BLPOP q 1e13 */
  g_assert_cmpint (deadline_of (G_GINT64_CONSTANT (9223372036854775), 1000), ==, 0);    /* WAIT 0 9223372036854775 */
  g_assert_cmpint (deadline_of (G_MAXINT64, G_MAXUINT), ==, 0);
  g_assert_cmpint (deadline_of (G_MAXINT64 / 1000 - 1000, 1000), ==, 0);
  g_assert_cmpint (deadline_of (G_MAXINT64 / 1000 - G_MAXUINT, G_MAXUINT), ==, 0);

  /* Long but representable: a real deadline in the future. */
  d = deadline_of (G_GINT64_CONSTANT (1000000000000), 1000);   /* ~31 years */
  g_assert_cmpint (d, >, now + G_GINT64_CONSTANT (1000000000000) * G_TIME_SPAN_MILLISECOND);
}

/* BLPOP q 1e13 used to time out at once (the deadline overflowed): it
 * waits, and gets the element pushed later. WAIT 0 9223372036854775
 * returns at once with 0 (no replica to wait for). */
static void
test_block_time_end_to_end (void)
{
  RedisConnection *conn, *other;
  GAsyncResult *result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) r = NULL;
  gboolean waited = FALSE;

  REQUIRE_SERVER ();
  conn = open_port (redis_test_server_get_port (server), 200);
  other = open_default ();
  g_clear_pointer (&r, redis_reply_unref);
  r = run (other, "DEL", "bt:q");
  g_clear_pointer (&r, redis_reply_unref);

  r = run (conn, "WAIT", "0", "9223372036854775");
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_INTEGER);
  g_assert_cmpint (redis_reply_get_integer (r), ==, 0);
  g_clear_pointer (&r, redis_reply_unref);

  redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "BLPOP", "bt:q", "1e13", NULL },
                              NULL, store_result_cb, &result);
  g_timeout_add (test_scale_ms (600), test_set_flag_cb, &waited);
  WAIT_UNTIL (waited || result != NULL, 5000);
  if (result != NULL)
    {
      r = redis_client_command_finish (REDIS_CLIENT (conn), result, &error);
      g_assert_no_error (error);   /* TIMEOUT here was the bug */
      g_assert_not_reached ();
    }

  r = run (other, "LPUSH", "bt:q", "v");
  g_clear_pointer (&r, redis_reply_unref);
  test_wait_for_result (&result, 5000);
  r = redis_client_command_finish (REDIS_CLIENT (conn), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_ARRAY);
  assert_string_reply (redis_reply_get_element (r, 1), "v");
  g_clear_object (&result);

  close_and_finalize (conn);
  close_and_finalize (other);
}

/* ---- 3. the command table against the server's command list ------------ */

/* Classified by hand against redis 7.0 (see redis-command.c). A name the
 * server lists that is in none of these lists fails the test: decide where
 * it belongs (and add it to redis-call.c's table if it is not "safe").
 * Names the server at hand does not have are fine (newer or older ones). */

/* Refused with INVALID_ARGUMENT: the server no longer answers one reply per
 * command after them. SUBSCRIBE & co. answer one reply per channel and
 * switch to push mode; MONITOR streams; SYNC and PSYNC start replication;
 * REPLCONF ACK/GETACK get no reply at all; CLIENT REPLY OFF/SKIP silence
 * replies; SCRIPT DEBUG turns the next EVAL into a debugging session; HELLO
 * switches protocol (RESP3 push messages). */
static const char *const refused_commands[] = {
  "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
  "sunsubscribe", "monitor", "sync", "psync", "replconf", "client|reply",
  "script|debug", "hello",
};

/* One reply each, but they change the connection they run on, or how its
 * next command behaves (ASKING, CLIENT CACHING): only on a lease in a pool.
 * SWAPDB is not per connection, kept here as before (conservative). */
static const char *const state_commands[] = {
  "select", "swapdb", "watch", "unwatch", "multi", "exec", "discard", "auth",
  "reset", "quit", "readonly", "readwrite", "asking", "client|setname",
  "client|setinfo", "client|tracking", "client|caching", "client|no-evict",
  "client|no-touch",
};

/* One reply per command, no effect on the next command of the connection.
 * Some end the connection (SHUTDOWN, CLIENT KILL, DEBUG SEGFAULT): that is
 * CONNECTION_LOST, not a shifted reply. CLIENT TRACKING's invalidations
 * are not sent to a RESP2 connection that is not subscribed, so they
 * cannot arrive here. */
static const char *const safe_commands[] = {
  "acl", "acl|cat", "acl|deluser", "acl|dryrun", "acl|genpass", "acl|getuser",
  "acl|help", "acl|list", "acl|load", "acl|log", "acl|save", "acl|setuser",
  "acl|users", "acl|whoami", "append", "bgrewriteaof", "bgsave", "bitcount",
  "bitfield", "bitfield_ro", "bitop", "bitpos", "blmove", "blmpop", "blpop",
  "brpop", "brpoplpush", "bzmpop", "bzpopmax", "bzpopmin", "client",
  "client|getname", "client|getredir", "client|help", "client|id",
  "client|info", "client|kill", "client|list", "client|pause",
  "client|trackinginfo", "client|unblock", "client|unpause", "cluster",
  "cluster|addslots", "cluster|addslotsrange", "cluster|bumpepoch",
  "cluster|count-failure-reports", "cluster|countkeysinslot",
  "cluster|delslots", "cluster|delslotsrange", "cluster|failover",
  "cluster|flushslots", "cluster|forget", "cluster|getkeysinslot",
  "cluster|help", "cluster|info", "cluster|keyslot", "cluster|links",
  "cluster|meet", "cluster|myid", "cluster|nodes", "cluster|replicas",
  "cluster|replicate", "cluster|reset", "cluster|saveconfig",
  "cluster|set-config-epoch", "cluster|setslot", "cluster|shards",
  "cluster|slaves", "cluster|slots", "command", "command|count",
  "command|docs", "command|getkeys", "command|getkeysandflags",
  "command|help", "command|info", "command|list", "config", "config|get",
  "config|help", "config|resetstat", "config|rewrite", "config|set", "copy",
  "dbsize", "debug", "decr", "decrby", "del", "dump", "echo", "eval",
  "eval_ro", "evalsha", "evalsha_ro", "exists", "expire", "expireat",
  "expiretime", "failover", "fcall", "fcall_ro", "flushall", "flushdb",
  "function", "function|delete", "function|dump", "function|flush",
  "function|help", "function|kill", "function|list", "function|load",
  "function|restore", "function|stats", "geoadd", "geodist", "geohash",
  "geopos", "georadius", "georadius_ro", "georadiusbymember",
  "georadiusbymember_ro", "geosearch", "geosearchstore", "get", "getbit",
  "getdel", "getex", "getrange", "getset", "hdel", "hexists", "hget",
  "hgetall", "hincrby", "hincrbyfloat", "hkeys", "hlen", "hmget", "hmset",
  "hrandfield", "hscan", "hset", "hsetnx", "hstrlen", "hvals", "incr",
  "incrby", "incrbyfloat", "info", "keys", "lastsave", "latency",
  "latency|doctor", "latency|graph", "latency|help", "latency|histogram",
  "latency|history", "latency|latest", "latency|reset", "lcs", "lindex",
  "linsert", "llen", "lmove", "lmpop", "lolwut", "lpop", "lpos", "lpush",
  "lpushx", "lrange", "lrem", "lset", "ltrim", "memory", "memory|doctor",
  "memory|help", "memory|malloc-stats", "memory|purge", "memory|stats",
  "memory|usage", "mget", "migrate", "module", "module|help", "module|list",
  "module|load", "module|loadex", "module|unload", "move", "mset", "msetnx",
  "object", "object|encoding", "object|freq", "object|help",
  "object|idletime", "object|refcount", "persist", "pexpire", "pexpireat",
  "pexpiretime", "pfadd", "pfcount", "pfdebug", "pfmerge", "pfselftest",
  "ping", "psetex", "pttl", "publish", "pubsub", "pubsub|channels",
  "pubsub|help", "pubsub|numpat", "pubsub|numsub", "pubsub|shardchannels",
  "pubsub|shardnumsub", "randomkey", "rename", "renamenx", "replicaof",
  "restore", "restore-asking", "role", "rpop", "rpoplpush", "rpush", "rpushx",
  "sadd", "save", "scan", "scard", "script", "script|exists", "script|flush",
  "script|help", "script|kill", "script|load", "sdiff", "sdiffstore", "set",
  "setbit", "setex", "setnx", "setrange", "shutdown", "sinter", "sintercard",
  "sinterstore", "sismember", "slaveof", "slowlog", "slowlog|get",
  "slowlog|help", "slowlog|len", "slowlog|reset", "smembers", "smismember",
  "smove", "sort", "sort_ro", "spop", "spublish", "srandmember", "srem",
  "sscan", "strlen", "substr", "sunion", "sunionstore", "time", "touch", "ttl",
  "type", "unlink", "wait", "xack", "xadd", "xautoclaim", "xclaim", "xdel",
  "xgroup", "xgroup|create", "xgroup|createconsumer", "xgroup|delconsumer",
  "xgroup|destroy", "xgroup|help", "xgroup|setid", "xinfo",
  "xinfo|consumers", "xinfo|groups", "xinfo|help", "xinfo|stream", "xlen",
  "xpending", "xrange", "xread", "xreadgroup", "xrevrange", "xsetid", "xtrim",
  "zadd", "zcard", "zcount", "zdiff", "zdiffstore", "zincrby", "zinter",
  "zintercard", "zinterstore", "zlexcount", "zmpop", "zmscore", "zpopmax",
  "zpopmin", "zrandmember", "zrange", "zrangebylex", "zrangebyscore",
  "zrangestore", "zrank", "zrem", "zremrangebylex", "zremrangebyrank",
  "zremrangebyscore", "zrevrange", "zrevrangebylex", "zrevrangebyscore",
  "zrevrank", "zscan", "zscore", "zunion", "zunionstore",
};

/* A call of every blocking command, with a block time of 1.5 s: the
 * library must flag it BLOCKING (it may hold its connection) with that
 * time. Every command of the server's @blocking ACL category must be
 * here. */
typedef struct
{
  const char *name;
  const char *argv[12];
} BlockingSample;

static const BlockingSample blocking_samples[] = {
  { "blpop", { "blpop", "q", "1.5" } },
  { "brpop", { "brpop", "q", "1.5" } },
  { "brpoplpush", { "brpoplpush", "a", "b", "1.5" } },
  { "blmove", { "blmove", "a", "b", "left", "right", "1.5" } },
  { "blmpop", { "blmpop", "1.5", "1", "q", "left" } },
  { "bzpopmin", { "bzpopmin", "z", "1.5" } },
  { "bzpopmax", { "bzpopmax", "z", "1.5" } },
  { "bzmpop", { "bzmpop", "1.5", "1", "z", "min" } },
  { "xread", { "xread", "block", "1500", "streams", "s", "$" } },
  { "xreadgroup", { "xreadgroup", "group", "g", "c", "block", "1500", "streams", "s", ">" } },
  { "wait", { "wait", "1", "1500" } },
  { "waitaof", { "waitaof", "1", "0", "1500" } },
};

static gboolean
in_list (const char        *name,
         const char *const *list,
         gsize              n)
{
  for (gsize i = 0; i < n; i++)
    if (g_ascii_strcasecmp (name, list[i]) == 0)
      return TRUE;
  return FALSE;
}

/* "client|reply" → { "client", "reply", "x" } */
static GStrv
argv_of (const char *name)
{
  g_auto(GStrv) parts = g_strsplit (name, "|", 2);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  g_strv_builder_addv (b, (const char **) parts);
  g_strv_builder_add (b, "x");
  return g_strv_builder_end (b);
}

static GPtrArray *
list_commands (RedisConnection    *conn,
               const char * const *argv)
{
  g_autoptr(RedisReply) r = run_argv (conn, argv);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);

  g_assert_cmpint (redis_reply_get_kind (r), ==, REDIS_REPLY_KIND_ARRAY);
  for (guint i = 0; i < redis_reply_get_n_elements (r); i++)
    g_ptr_array_add (names, g_strdup (redis_reply_get_string (redis_reply_get_element (r, i), NULL)));
  return names;
}

static void
test_command_audit (void)
{
  RedisConnection *conn;
  g_autoptr(GPtrArray) names = NULL;
  g_autoptr(GPtrArray) blocking = NULL;
  g_autoptr(GString) unclassified = g_string_new (NULL);
  g_autoptr(RedisReply) stats = NULL;
  guint n_subcommands = 0;

  REQUIRE_SERVER ();
  conn = open_default ();

  /* COMMAND LIST is flat (COMMAND and COMMAND DOCS nest too deep for the
   * reader) and lists subcommands as "container|sub". */
  names = list_commands (conn, (const char *[]) { "COMMAND", "LIST", NULL });
  blocking = list_commands (conn, (const char *[]) { "COMMAND", "LIST", "FILTERBY", "ACLCAT", "blocking", NULL });
  g_assert_cmpuint (names->len, >, 200);

  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      guint found = in_list (name, refused_commands, G_N_ELEMENTS (refused_commands)) +
                    in_list (name, state_commands, G_N_ELEMENTS (state_commands)) +
                    in_list (name, safe_commands, G_N_ELEMENTS (safe_commands));

      if (strchr (name, '|') != NULL)
        n_subcommands++;
      g_assert_cmpuint (found, <=, 1);
      if (found == 0)
        g_string_append_printf (unclassified, " %s", name);
    }
  g_test_message ("%u commands and subcommands on the server (%u subcommands)",
                  names->len, n_subcommands);
  if (unclassified->len > 0)
    g_test_fail_printf ("commands not classified in tests/test-commands.c (one reply, "
                        "connection state or refused? see redis-command.c):%s", unclassified->str);

  /* The library agrees with the lists, whatever the server has. */
  redis_reply_unref (run (conn, "CONFIG", "RESETSTAT"));
  for (gsize i = 0; i < G_N_ELEMENTS (refused_commands); i++)
    {
      g_auto(GStrv) argv = argv_of (refused_commands[i]);
      g_autoptr(GError) error = NULL;
      RedisReply *r;

      g_assert_cmpint (classify_argv ((const char * const *) argv, NULL) & UNSUPPORTED, ==, UNSUPPORTED);
      r = redis_client_command_sync (REDIS_CLIENT (conn), (const char * const *) argv, NULL, &error);
      g_assert_null (r);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
      if (i == 0)
        g_test_message ("%s -> %s", refused_commands[i], error->message);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (state_commands); i++)
    {
      g_auto(GStrv) argv = argv_of (state_commands[i]);

      g_assert_cmpint (classify_argv ((const char * const *) argv, NULL) & UNSUPPORTED, ==, STATE);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (safe_commands); i++)
    {
      g_auto(GStrv) argv = argv_of (safe_commands[i]);

      g_assert_cmpint (classify_argv ((const char * const *) argv, NULL) & UNSUPPORTED, ==, 0);
    }

  /* Nothing refused reached the server. */
  stats = run (conn, "INFO", "commandstats");
  for (gsize i = 0; i < G_N_ELEMENTS (refused_commands); i++)
    {
      g_autofree char *key = g_strdup_printf ("cmdstat_%s:", refused_commands[i]);

      g_assert_null (strstr (redis_reply_get_string (stats, NULL), key));
    }

  /* Blocking commands: each one the server has is known, and flagged. */
  for (guint i = 0; i < blocking->len; i++)
    {
      gboolean known = FALSE;

      for (gsize j = 0; j < G_N_ELEMENTS (blocking_samples); j++)
        known |= g_ascii_strcasecmp (blocking->pdata[i], blocking_samples[j].name) == 0;
      if (!known)
        g_test_fail_printf ("blocking command %s has no sample in tests/test-commands.c "
                            "(and may need a block-time rule in redis-call.c)",
                            (const char *) blocking->pdata[i]);
    }
  for (gsize j = 0; j < G_N_ELEMENTS (blocking_samples); j++)
    {
      gint64 block_ms = 0;

      g_test_message ("blocking: %s", blocking_samples[j].name);
      g_assert_cmpint (classify_argv (blocking_samples[j].argv, &block_ms), ==, BLOCKING);
      g_assert_cmpint (block_ms, ==, 1500);
    }

  close_and_finalize (conn);
}

/* The reported case: REPLCONF ACK gets no reply, so every later reply on
 * the connection went to the command before it. Refused, never sent. */
static void
test_replconf_refused (void)
{
  RedisConnection *conn;
  GAsyncResult *results[8] = { NULL, };
  g_autoptr(RedisReply) stats = NULL;
  static const char *const refused[][5] = {
    { "REPLCONF", "ACK", "0", NULL },
    { "replconf", "getack", "*", NULL },
    { "REPLCONF", "listening-port", "6380", NULL },
  };

  REQUIRE_SERVER ();
  conn = open_default ();
  redis_reply_unref (run (conn, "CONFIG", "RESETSTAT"));
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autofree char *key = g_strdup_printf ("rc:%u", i);
      g_autofree char *value = g_strdup_printf ("value %u", i);

      redis_reply_unref (run (conn, "SET", key, value));
    }

  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_null (redis_client_command_sync (REDIS_CLIENT (conn), refused[i], NULL, &error));
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
      g_test_message ("%s -> %s", refused[i][0], error->message);
    }

  /* Concurrent GETs on the same connection: each gets its own value. */
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autofree char *key = g_strdup_printf ("rc:%u", i);

      redis_client_command_async (REDIS_CLIENT (conn), (const char *[]) { "GET", key, NULL },
                                  NULL, store_result_cb, &results[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) r = NULL;
      g_autofree char *value = g_strdup_printf ("value %u", i);

      test_wait_for_result (&results[i], 2000);
      r = redis_client_command_finish (REDIS_CLIENT (conn), results[i], &error);
      g_assert_no_error (error);
      assert_string_reply (r, value);
      g_clear_object (&results[i]);
    }

  stats = run (conn, "INFO", "commandstats");
  g_assert_null (strstr (redis_reply_get_string (stats, NULL), "cmdstat_replconf"));
  close_and_finalize (conn);
}

/* ---- 4. EXEC against what was queued ------------------------------------ */

typedef struct
{
  const char *name;
  const char *replies[4];   /* to MULTI, SET, GET, EXEC */
} ExecCase;

static void
test_exec_count (void)
{
  static const ExecCase cases[] = {
    { "one element for two", { "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*1\r\n+OK\r\n" } },
    { "three elements for two", { "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*3\r\n:1\r\n:2\r\n:3\r\n" } },
    { "empty for two", { "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "*0\r\n" } },
    { "two for one queued", { "+OK\r\n", "-ERR refused\r\n", "+QUEUED\r\n", "*2\r\n+OK\r\n$1\r\nv\r\n" } },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(FakeServer) fake = fake_server_new ();
      g_autoptr(RedisBatch) batch = redis_batch_new ();
      g_autoptr(GError) error = NULL;
      RedisConnection *conn;
      GPtrArray *result;

      g_test_message ("EXEC case: %s", cases[i].name);
      conn = open_fake (fake, ":1\r\n", test_scale_ms (2000));
      for (guint j = 0; j < 4; j++)
        fake_server_add_reply (fake, cases[i].replies[j], -1);
      redis_batch_add (batch, (const char *[]) { "SET", "k", "v", NULL });
      redis_batch_add (batch, (const char *[]) { "GET", "k", NULL });

      result = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
      g_assert_null (result);
      g_assert_error (error, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
      g_test_message ("  -> %s", error->message);
      close_and_finalize (conn);
    }

  /* In step: one element per QUEUED; a command refused without aborting
   * gets its error in its place. */
  {
    g_autoptr(FakeServer) fake = fake_server_new ();
    g_autoptr(RedisBatch) batch = redis_batch_new ();
    g_autoptr(GError) error = NULL;
    RedisConnection *conn;
    g_autoptr(GPtrArray) result = NULL;

    conn = open_fake (fake, ":1\r\n", test_scale_ms (2000));
    fake_server_add_reply (fake, "+OK\r\n", -1);
    fake_server_add_reply (fake, "+QUEUED\r\n", -1);
    fake_server_add_reply (fake, "-ERR WATCH inside MULTI is not allowed\r\n", -1);
    fake_server_add_reply (fake, "+QUEUED\r\n", -1);
    fake_server_add_reply (fake, "*2\r\n+OK\r\n$1\r\nv\r\n", -1);
    redis_batch_add (batch, (const char *[]) { "SET", "k", "v", NULL });
    redis_batch_add (batch, (const char *[]) { "WATCH", "x", NULL });
    redis_batch_add (batch, (const char *[]) { "GET", "k", NULL });

    result = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (result->len, ==, 3);
    g_assert_cmpint (redis_reply_get_kind (result->pdata[0]), ==, REDIS_REPLY_KIND_STATUS);
    g_assert_cmpint (redis_reply_get_kind (result->pdata[1]), ==, REDIS_REPLY_KIND_ERROR);
    assert_string_reply (result->pdata[2], "v");
    g_clear_pointer (&result, g_ptr_array_unref);

    /* The connection is still in step. */
    {
      g_autoptr(RedisReply) r = run (conn, "TEST.PING");

      g_assert_cmpint (redis_reply_get_integer (r), ==, 1);
    }
    close_and_finalize (conn);
  }
}

/* The same against redis-server: WATCH and MULTI inside MULTI are refused
 * without aborting, and EXEC's array is one shorter per refusal. */
static void
test_exec_real_server (void)
{
  RedisConnection *conn;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) result = NULL;

  REQUIRE_SERVER ();
  conn = open_default ();
  redis_batch_add (batch, (const char *[]) { "SET", "ex:k", "1", NULL });
  redis_batch_add (batch, (const char *[]) { "WATCH", "ex:x", NULL });
  redis_batch_add (batch, (const char *[]) { "MULTI", NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", "ex:k", NULL });

  result = redis_client_transaction_sync (REDIS_CLIENT (conn), batch, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (result->len, ==, 4);
  g_assert_cmpint (redis_reply_get_kind (result->pdata[0]), ==, REDIS_REPLY_KIND_STATUS);
  g_assert_cmpint (redis_reply_get_kind (result->pdata[1]), ==, REDIS_REPLY_KIND_ERROR);
  g_assert_cmpint (redis_reply_get_kind (result->pdata[2]), ==, REDIS_REPLY_KIND_ERROR);
  g_assert_cmpint (redis_reply_get_integer (result->pdata[3]), ==, 2);
  close_and_finalize (conn);
}

/* ---- 5. no-reply calls -------------------------------------------------- */

static void
test_noreply_real_server (void)
{
  RedisConnection *conn;
  g_autoptr(RedisBatch) batch = redis_batch_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) r = NULL;

  REQUIRE_SERVER ();
  conn = open_default ();

  g_assert_true (redis_client_noreply_command_sync (REDIS_CLIENT (conn),
                                                    (const char *[]) { "SET", "nr:k", "quiet", NULL },
                                                    NULL, &error));
  g_assert_no_error (error);
  r = run (conn, "GET", "nr:k");
  assert_string_reply (r, "quiet");
  g_clear_pointer (&r, redis_reply_unref);

  redis_batch_add (batch, (const char *[]) { "SET", "nr:n", "1", NULL });
  redis_batch_add (batch, (const char *[]) { "INCR", "nr:n", NULL });
  redis_batch_add (batch, (const char *[]) { "ECHO", "not the token", NULL });
  g_assert_true (redis_client_noreply_pipeline_sync (REDIS_CLIENT (conn), batch, NULL, &error));
  g_assert_no_error (error);
  r = run (conn, "GET", "nr:n");
  assert_string_reply (r, "2");
  g_clear_pointer (&r, redis_reply_unref);

  close_and_finalize (conn);
}

/* What goes on the wire: OFF, the command, ON, ECHO of a fresh token. */
static void
test_noreply_payload (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  g_auto(GStrv) commands = NULL;
  guint n0, n;

  conn = open_fake (fake, ":1\r\n", test_scale_ms (2000));
  n0 = fake_server_get_n_commands (fake);
  /* Silent from now on (it does not implement CLIENT REPLY: it would answer
   * every command, and the connection would close), still recording. */
  fake_server_add_stall (fake);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_true (redis_client_noreply_command_sync (REDIS_CLIENT (conn),
                                                        (const char *[]) { "SET", "k", "v", NULL },
                                                        NULL, &error));
      g_assert_no_error (error);
    }
  WAIT_UNTIL (fake_server_get_n_commands (fake) == n0 + 8, 2000);
  commands = fake_server_get_commands (fake);
  n = g_strv_length (commands);
  g_assert_cmpuint (n, ==, n0 + 8);
  g_assert_cmpstr (commands[n0 + 0], ==, "CLIENT REPLY OFF");
  g_assert_cmpstr (commands[n0 + 1], ==, "SET k v");
  g_assert_cmpstr (commands[n0 + 2], ==, "CLIENT REPLY ON");
  g_assert_true (g_str_has_prefix (commands[n0 + 3], "ECHO "));
  g_assert_true (g_uuid_string_is_valid (commands[n0 + 3] + 5));
  g_assert_true (g_str_has_prefix (commands[n0 + 7], "ECHO "));
  g_assert_cmpstr (commands[n0 + 3], !=, commands[n0 + 7]);   /* per call */
  g_object_unref (conn);
  test_drain_main_context ();
}

/* A server that does not implement CLIENT REPLY answers everything with
 * +OK: the no-reply call's replies never match the token, so the GET after
 * it must not take one of them (it used to return OK). */
static void
test_noreply_answer_all (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  RedisReply *r;

  conn = open_fake (fake, "+OK\r\n", test_scale_ms (2000));
  g_assert_true (redis_client_noreply_command_sync (REDIS_CLIENT (conn),
                                                    (const char *[]) { "SET", "k", "v", NULL },
                                                    NULL, &error));
  g_assert_no_error (error);

  r = redis_client_command_sync (REDIS_CLIENT (conn), (const char *[]) { "GET", "a", NULL },
                                 NULL, &error);
  if (r != NULL)
    {
      g_autofree char *text = redis_reply_to_string (r);

      redis_reply_unref (r);
      g_test_fail_printf ("GET after an unacknowledged no-reply call succeeded with %s", text);
    }
  else
    {
      g_autofree char *code = g_enum_to_string (REDIS_TYPE_ERROR, error->code);

      g_test_message ("GET -> %s (%s)", error->message, code);
      g_assert_true (error->domain == REDIS_ERROR);
      g_assert_true (error->code == REDIS_ERROR_PROTOCOL ||
                     error->code == REDIS_ERROR_CONNECTION_LOST ||
                     error->code == REDIS_ERROR_CLOSED);
    }
  close_and_finalize (conn);
}

/* Complete once written, even when the server never answers. */
static void
test_noreply_once_written (void)
{
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  RedisConnection *conn;
  gint64 start;

  conn = open_fake (fake, ":1\r\n", 300);
  fake_server_add_stall (fake);
  start = g_get_monotonic_time ();
  g_assert_true (redis_client_noreply_command_sync (REDIS_CLIENT (conn),
                                                    (const char *[]) { "SET", "k", "v", NULL },
                                                    NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - start, <, (gint64) test_scale_ms (250) * 1000);
  g_object_unref (conn);
  test_drain_main_context ();
}

/* The acknowledgements, as the engine checks them. */
static void
test_noreply_in_step (void)
{
  g_autoptr(GBytes) payload = g_bytes_new_static ("", 0);
  RedisCall *call = redis_call_new (REDIS_CALL_NOREPLY, payload, 1, NULL);
  g_autoptr(RedisReply) ok = redis_reply_new_text (REDIS_REPLY_KIND_STATUS, "OK", 2);
  g_autoptr(RedisReply) ok_bulk = redis_reply_new_text (REDIS_REPLY_KIND_STRING, "OK", 2);
  g_autoptr(RedisReply) token = NULL;
  g_autoptr(RedisReply) token_status = NULL;
  g_autoptr(RedisReply) other = redis_reply_new_text (REDIS_REPLY_KIND_STRING, "0123", 4);
  g_autoptr(RedisReply) error = redis_reply_new_text (REDIS_REPLY_KIND_ERROR, "ERR x", 5);

  g_assert_cmpuint (call->n_replies, ==, 2);
  call->noreply_token = g_uuid_string_random ();
  token = redis_reply_new_text (REDIS_REPLY_KIND_STRING, call->noreply_token, strlen (call->noreply_token));
  token_status = redis_reply_new_text (REDIS_REPLY_KIND_STATUS, call->noreply_token, strlen (call->noreply_token));

  g_assert_true (redis_call_reply_in_step (call, 0, ok));
  g_assert_true (redis_call_reply_in_step (call, 1, token));
  g_assert_false (redis_call_reply_in_step (call, 0, ok_bulk));
  g_assert_false (redis_call_reply_in_step (call, 0, error));
  g_assert_false (redis_call_reply_in_step (call, 0, token));
  g_assert_false (redis_call_reply_in_step (call, 1, ok));
  g_assert_false (redis_call_reply_in_step (call, 1, token_status));
  g_assert_false (redis_call_reply_in_step (call, 1, other));
  g_assert_false (redis_call_reply_in_step (call, 1, error));
  g_assert_false (redis_call_reply_in_step (call, 2, token));
  redis_call_unref (call);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  if (redis_test_server_available ())
    {
      server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
      if (server == NULL)
        g_printerr ("# cannot start redis-server: %s\n", error->message);
    }

  g_test_add_func ("/commands/limit/command", test_limit_command);
  g_test_add_func ("/commands/limit/no-wrap", test_limit_no_wrap);
  g_test_add_func ("/commands/limit/batch", test_limit_batch);
  g_test_add_func ("/commands/block-time/classify", test_block_time_classify);
  g_test_add_func ("/commands/block-time/set-timeout", test_block_time_set_timeout);
  g_test_add_func ("/commands/block-time/end-to-end", test_block_time_end_to_end);
  g_test_add_func ("/commands/audit", test_command_audit);
  g_test_add_func ("/commands/replconf-refused", test_replconf_refused);
  g_test_add_func ("/commands/exec/count", test_exec_count);
  g_test_add_func ("/commands/exec/real-server", test_exec_real_server);
  g_test_add_func ("/commands/noreply/real-server", test_noreply_real_server);
  g_test_add_func ("/commands/noreply/payload", test_noreply_payload);
  g_test_add_func ("/commands/noreply/in-step", test_noreply_in_step);
  g_test_add_func ("/commands/noreply/once-written", test_noreply_once_written);
  g_test_add_func ("/commands/noreply/answer-all", test_noreply_answer_all);

  ret = g_test_run ();

  g_clear_pointer (&server, redis_test_server_free);
  return ret;
}
