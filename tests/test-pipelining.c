/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Automatic pipelining (issue 11, item 6): async calls made in one turn of
 * the home main context are written together in the next iteration
 * (docs/threading.md), so they reach the server in one write, not one
 * write per call.
 *
 * Two measures, for a single RedisConnection and for a pool of one:
 *
 *  - On the server: INFO stats total_reads_processed of a real
 *    redis-server counts every read of a client socket, of all clients;
 *    the delta around a burst, asked on a separate probe connection, is
 *    the burst's reads plus the read of the probe's own second INFO.
 *
 *  - In the client: this program interposes send(2) and sendmsg(2) (GIO
 *    writes sockets with them) and counts the sends on the connection's
 *    socket. Redis reads together the writes that arrived before it woke
 *    up, so the server count alone can miss a regression (100 separate
 *    writes were seen as 2 to 100 reads, depending on scheduling); the
 *    send count cannot.
 *
 * The burst is 100 INCR calls (33 bytes each, 3.3 KB): well under Redis'
 * 16 KiB read buffer, the socket buffer and the loopback MTU, so that one
 * write is one send and one read whatever the kernel does with segments;
 * the bounds allow for a split anyway (at most 3). Control runs show that
 * both counters see what the test thinks they see: calls each awaited
 * before the next cost exactly one send and one read per call, and calls
 * with a main-context iteration after each cost one send per call. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <sys/socket.h>
#include <string.h>
#include <gio/gio.h>

#include "redispool.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

#define N_BURST 100
#define MAX_READS_PER_BURST 3
#define MAX_SENDS_PER_BURST 3
#define N_SEQUENTIAL 10

/* Every command of the tests starts so on the wire. */
#define KEY "pipelining:n"
#define INCR_WIRE "*2\r\n$4\r\nINCR\r\n$12\r\n" KEY "\r\n"

/* ---- counting the client's writes ---------------------------------------- */

typedef ssize_t (*SendFunc) (int, const void *, size_t, int);
typedef ssize_t (*SendmsgFunc) (int, const struct msghdr *, int);

static SendFunc    real_send;        /* atomic */
static SendmsgFunc real_sendmsg;     /* atomic */
static gint        watched_fd = -1;  /* atomic: the socket INCR_WIRE went out on */
static gint        n_watched_sends;  /* atomic */

static gpointer
real_func (gpointer   *slot,
           const char *name)
{
  gpointer func = g_atomic_pointer_get (slot);

  if (func == NULL)
    {
      func = dlsym (RTLD_NEXT, name);
      g_assert_nonnull (func);
      g_atomic_pointer_set (slot, func);
    }
  return func;
}

/* Counts a send of @len bytes starting with @data on @fd. */
static void
count_send (int         fd,
            const void *data,
            size_t      len)
{
  gint watched = g_atomic_int_get (&watched_fd);

  if (watched < 0 && data != NULL && len >= strlen (INCR_WIRE) &&
      memcmp (data, INCR_WIRE, strlen (INCR_WIRE)) == 0 &&
      g_atomic_int_compare_and_exchange (&watched_fd, -1, fd))
    watched = fd;
  if (fd == watched)
    g_atomic_int_inc (&n_watched_sends);
}

/* send() and sendmsg() are interposed for the whole process (the
 * executable's definitions come first in symbol lookup): they count the
 * sends on the socket that carries this test's commands, learnt from the
 * first send that starts with one, then call libc's. GIO writes a
 * socket's output stream with send(), vectors with sendmsg(). */
ssize_t
send (int         fd,
      const void *buf,
      size_t      len,
      int         flags)
{
  SendFunc func = real_func ((gpointer *) &real_send, "send");

  count_send (fd, buf, len);
  return func (fd, buf, len, flags);
}

ssize_t
sendmsg (int                  fd,
         const struct msghdr *msg,
         int                  flags)
{
  SendmsgFunc func = real_func ((gpointer *) &real_sendmsg, "sendmsg");

  if (msg->msg_iovlen > 0)
    count_send (fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len);
  return func (fd, msg, flags);
}

static guint
watched_sends (void)
{
  return (guint) g_atomic_int_get (&n_watched_sends);
}

static gboolean have_server;

typedef struct
{
  RedisTestServer *server;
  RedisConnection *probe;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;

  if (!have_server)
    return;
  f->server = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  /* No health checks: nothing but the test may talk to the server. */
  uri = g_strdup_printf ("redis://127.0.0.1:%u?health_check_interval=0&command_timeout=%u",
                         (guint) redis_test_server_get_port (f->server), test_scale_ms (5000));
  f->probe = redis_connection_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->probe != NULL)
    close_and_finalize (g_steal_pointer (&f->probe));
  g_clear_pointer (&f->server, redis_test_server_free);
  WAIT_UNTIL (redis_reply_get_live_count () == 0, 2000);
}

/* total_reads_processed, asked on the probe connection (whose read of
 * this INFO is already counted in the answer). */
static guint64
reads_processed (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  const char *argv[] = { "INFO", "stats", NULL };
  const char *text, *p;

  reply = redis_client_command_sync (REDIS_CLIENT (f->probe), argv, NULL, &error);
  g_assert_no_error (error);
  text = redis_reply_get_string (reply, NULL);
  g_assert_nonnull (text);
  p = strstr (text, "total_reads_processed:");
  g_assert_nonnull (p);
  return g_ascii_strtoull (p + strlen ("total_reads_processed:"), NULL, 10);
}

typedef struct
{
  RedisClient *client;
  guint        index;
  gint64      *values;   /* one per call, -1 until its reply */
  guint       *n_done;
} CallData;

static void
incr_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CallData *cd = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;

  reply = redis_client_command_finish (cd->client, result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_INTEGER);
  cd->values[cd->index] = redis_reply_get_integer (reply);
  (*cd->n_done)++;
  g_free (cd);
}

static void
submit_incr (RedisClient *client,
             guint        index,
             gint64      *values,
             guint       *n_done)
{
  const char *argv[] = { "INCR", KEY, NULL };
  CallData *cd = g_new0 (CallData, 1);

  cd->client = client;
  cd->index = index;
  cd->values = values;
  cd->n_done = n_done;
  redis_client_command_async (client, argv, NULL, incr_done_cb, cd);
}

typedef enum
{
  /* each call awaited before the next is made */
  RUN_SEQUENTIAL,
  /* the main context iterated once (without blocking) after each call,
   * so that each is flushed before the next is made: what a library that
   * writes every call as it comes would cost */
  RUN_ITERATED,
  /* every call made in one turn of the main context */
  RUN_BURST,
} RunMode;

static const char * const run_names[] = {
  "calls one after another",
  "calls with an iteration after each",
  "calls in one turn",
};

typedef struct
{
  guint64 reads;   /* server reads */
  guint   sends;   /* client sends */
} Counts;

/* Sends @n INCR of KEY on @client as @mode says and counts the server
 * reads and client sends they took. Every call gets its own reply, in
 * order: the i-th call sees *@count + i + 1. */
static Counts
run_calls (Fixture     *f,
           RedisClient *client,
           RunMode      mode,
           gint64      *count,
           guint        n)
{
  g_autofree gint64 *values = g_new (gint64, n);
  guint64 reads_before, reads_after;
  guint sends_before, sends_after;
  guint n_done = 0;
  Counts counts;

  test_drain_main_context ();
  reads_before = reads_processed (f);
  sends_before = watched_sends ();
  for (guint i = 0; i < n; i++)
    {
      values[i] = -1;
      submit_incr (client, i, values, &n_done);
      if (mode == RUN_SEQUENTIAL)
        WAIT_UNTIL (n_done == i + 1, 5000);
      else if (mode == RUN_ITERATED)
        g_main_context_iteration (NULL, FALSE);
    }
  /* Nothing completes inside the turn that made the calls. */
  if (mode == RUN_BURST)
    g_assert_cmpuint (n_done, ==, 0);
  WAIT_UNTIL (n_done == n, 10000);
  sends_after = watched_sends ();
  reads_after = reads_processed (f);

  for (guint i = 0; i < n; i++)
    g_assert_cmpint (values[i], ==, *count + i + 1);
  *count += n;
  g_assert_cmpuint (reads_after, >, reads_before);
  counts.reads = reads_after - reads_before - 1;   /* minus the probe's second INFO */
  counts.sends = sends_after - sends_before;
  return counts;
}

static Counts
run_and_report (Fixture     *f,
                RedisClient *client,
                const char  *what,
                RunMode      mode,
                gint64      *count,
                guint        n)
{
  Counts c = run_calls (f, client, mode, count, n);

  g_test_message ("%s: %u %s: %u sends, %" G_GUINT64_FORMAT " server reads",
                  what, n, run_names[mode], c.sends, c.reads);
  return c;
}

/* The controls, then three bursts back to back. */
static void
check_client (Fixture     *f,
              RedisClient *client,
              const char  *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = NULL;
  const char *del[] = { "DEL", KEY, NULL };
  gint64 count = 0;
  Counts c;

  /* Warm-up: the client is up and idle, with no call in flight. */
  reply = redis_client_command_sync (client, del, NULL, &error);
  g_assert_no_error (error);
  g_atomic_int_set (&watched_fd, -1);

  /* One send and one read per call: the counters count what they should. */
  c = run_and_report (f, client, what, RUN_SEQUENTIAL, &count, N_SEQUENTIAL);
  if (g_atomic_int_get (&watched_fd) < 0)
    g_error ("no send() or sendmsg() carried the commands: the client's writes "
             "cannot be counted (does the library write its socket another way?)");
  g_assert_cmpuint (c.sends, ==, N_SEQUENTIAL);
  g_assert_cmpuint (c.reads, ==, N_SEQUENTIAL);

  /* A write per call is seen as such by the send count (the server may
   * read many of those writes at once: not checked). */
  c = run_and_report (f, client, what, RUN_ITERATED, &count, N_BURST);
  g_assert_cmpuint (c.sends, >, MAX_SENDS_PER_BURST);

  for (guint round = 0; round < 3; round++)
    {
      c = run_and_report (f, client, what, RUN_BURST, &count, N_BURST);
      g_assert_cmpuint (c.sends, >=, 1);
      g_assert_cmpuint (c.sends, <=, MAX_SENDS_PER_BURST);
      g_assert_cmpuint (c.reads, >=, 1);
      g_assert_cmpuint (c.reads, <=, MAX_READS_PER_BURST);
    }
}

static void
test_connection (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  RedisConnection *conn;

  if (!have_server)
    {
      g_test_skip ("redis-server not available");
      return;
    }
  uri = g_strdup_printf ("redis://127.0.0.1:%u?health_check_interval=0&command_timeout=%u",
                         (guint) redis_test_server_get_port (f->server), test_scale_ms (5000));
  conn = redis_connection_new_sync (uri, NULL, &error);
  g_assert_no_error (error);

  check_client (f, REDIS_CLIENT (conn), "connection");
  close_and_finalize (conn);
}

static void
test_pool_of_one (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  RedisPool *pool;

  if (!have_server)
    {
      g_test_skip ("redis-server not available");
      return;
    }
  uri = g_strdup_printf ("redis://127.0.0.1:%u?pool_size=1&health_check_interval=0"
                         "&command_timeout=%u",
                         (guint) redis_test_server_get_port (f->server), test_scale_ms (5000));
  pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (redis_pool_get_size (pool), ==, 1);
  test_drain_main_context ();

  check_client (f, REDIS_CLIENT (pool), "pool of 1");

  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  test_drain_main_context ();
  unref_and_wait_finalized (pool);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  have_server = redis_test_server_available ();

  g_test_add ("/pipelining/one-turn-one-write/connection", Fixture, NULL,
              fixture_setup, test_connection, fixture_teardown);
  g_test_add ("/pipelining/one-turn-one-write/pool-of-one", Fixture, NULL,
              fixture_setup, test_pool_of_one, fixture_teardown);

  return g_test_run ();
}
