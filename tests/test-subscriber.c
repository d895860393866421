/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* RedisSubscriber against a real redis-server (the fake server only for
 * frames a real server never sends, the fault proxy for a blackhole). */

#include <string.h>

#include "fake-server.h"
#include "fault-proxy.h"
#include "redis-test-server.h"
#include "test-client-helpers.h"

static RedisTestServer *server;   /* shared, started in main() */

typedef struct
{
  RedisTestServer *own;       /* a test's own server (restart, password) */
  guint16          port;
  RedisConnection *admin;     /* publishes, kills, inspects */
  RedisSubscriber *sub;
  GPtrArray       *messages;  /* RedisMessage, every one delivered */
  GPtrArray       *detailed;  /* RedisMessage, through "message::news" */
  guint            n_lost;
  guint            n_resubscribed;
  guint            n_reconnect_failed;
  GError          *last_lost;
  GError          *last_reconnect_error;
  gint64           resubscribed_at;
  gboolean         skipped;
} Fixture;

static void
on_message (RedisSubscriber *sub,
            RedisMessage    *message,
            gpointer         data)
{
  g_ptr_array_add (data, redis_message_ref (message));
}

static void
on_lost (RedisSubscriber *sub,
         const GError    *error,
         Fixture         *f)
{
  g_assert_nonnull (error);
  f->n_lost++;
  g_clear_error (&f->last_lost);
  f->last_lost = g_error_copy (error);
}

static void
on_resubscribed (RedisSubscriber *sub,
                 Fixture         *f)
{
  f->n_resubscribed++;
  f->resubscribed_at = g_get_monotonic_time ();
}

static void
on_reconnect_failed (RedisSubscriber *sub,
                     const GError    *error,
                     Fixture         *f)
{
  f->n_reconnect_failed++;
  g_clear_error (&f->last_reconnect_error);
  f->last_reconnect_error = g_error_copy (error);
}

static void
watch (Fixture *f)
{
  g_signal_connect (f->sub, "message", G_CALLBACK (on_message), f->messages);
  g_signal_connect (f->sub, "message::news", G_CALLBACK (on_message), f->detailed);
  g_signal_connect (f->sub, "connection-lost", G_CALLBACK (on_lost), f);
  g_signal_connect (f->sub, "resubscribed", G_CALLBACK (on_resubscribed), f);
  g_signal_connect (f->sub, "reconnect-failed", G_CALLBACK (on_reconnect_failed), f);
}

static RedisConnection *
admin_new (guint16     port,
           const char *password)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = password != NULL ?
    g_strdup_printf ("redis://:%s@127.0.0.1:%u", password, port) :
    g_strdup_printf ("redis://127.0.0.1:%u", port);
  RedisConnection *conn = redis_connection_new_sync (uri, NULL, &error);

  g_assert_no_error (error);
  return conn;
}

static RedisSubscriber *
subscriber_new (guint16     port,
                const char *params)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strdup_printf ("redis://127.0.0.1:%u/?backoff_initial=10ms&backoff_max=200ms%s%s",
                                          port, params != NULL ? "&" : "", params != NULL ? params : "");
  RedisSubscriber *sub = redis_subscriber_new_sync (uri, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (redis_subscriber_get_connected (sub));
  return sub;
}

static void
setup (Fixture       *f,
       gconstpointer  data)
{
  f->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_message_unref);
  f->detailed = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_message_unref);
  if (server == NULL)
    {
      g_test_skip ("redis-server not available");
      f->skipped = TRUE;
      return;
    }
  f->port = redis_test_server_get_port (server);
  f->admin = admin_new (f->port, NULL);
  f->sub = subscriber_new (f->port, data);
  watch (f);
}

static void
teardown (Fixture       *f,
          gconstpointer  data)
{
  if (f->sub != NULL)
    {
      redis_subscriber_close (f->sub);
      unref_and_wait_finalized (g_steal_pointer (&f->sub));
    }
  if (f->admin != NULL)
    close_and_finalize (g_steal_pointer (&f->admin));
  g_ptr_array_unref (f->messages);
  g_ptr_array_unref (f->detailed);
  g_clear_error (&f->last_lost);
  g_clear_error (&f->last_reconnect_error);
  g_clear_pointer (&f->own, redis_test_server_free);
}

static RedisReply *
admin (Fixture            *f,
       const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (f->admin), argv, NULL, &error);

  g_assert_no_error (error);
  return reply;
}

static void
publish (Fixture    *f,
         const char *command,
         const char *channel,
         const char *payload)
{
  g_autoptr(RedisReply) reply = admin (f, (const char *[]) { command, channel, payload, NULL });

  g_assert_cmpint (redis_reply_get_kind (reply), ==, REDIS_REPLY_KIND_INTEGER);
}

/* Publishes "0".."n-1" to @channel in pipelines of 1000 (sync calls: no
 * main loop iteration). */
static void
publish_many (Fixture    *f,
              const char *channel,
              guint       first,
              guint       n)
{
  for (guint done = 0; done < n;)
    {
      g_autoptr(RedisBatch) batch = redis_batch_new ();
      g_autoptr(GPtrArray) replies = NULL;
      g_autoptr(GError) error = NULL;
      guint chunk = MIN (n - done, 1000);

      for (guint i = 0; i < chunk; i++)
        {
          char payload[16];

          g_snprintf (payload, sizeof payload, "%u", first + done + i);
          redis_batch_add (batch, (const char *[]) { "PUBLISH", channel, payload, NULL });
        }
      replies = redis_client_pipeline_sync (REDIS_CLIENT (f->admin), batch, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (replies->len, ==, chunk);
      done += chunk;
    }
}

static void
sub_ok (gboolean  ok,
        GError   *error)
{
  g_assert_no_error (error);
  g_assert_true (ok);
}

#define SUBSCRIBE(f, fn, ...) \
  G_STMT_START { \
    g_autoptr(GError) _e = NULL; \
    gboolean _ok = fn ((f)->sub, (const char *[]) { __VA_ARGS__, NULL }, NULL, &_e); \
    sub_ok (_ok, _e); \
  } G_STMT_END

static void
ping (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (redis_subscriber_ping_sync (f->sub, NULL, &error));
  g_assert_no_error (error);
}

static gint64
numsub (Fixture    *f,
        const char *channel)
{
  g_autoptr(RedisReply) reply = admin (f, (const char *[]) { "PUBSUB", "NUMSUB", channel, NULL });

  g_assert_cmpuint (redis_reply_get_n_elements (reply), ==, 2);
  return redis_reply_get_integer (redis_reply_get_element (reply, 1));
}

static gboolean
payload_is (RedisMessage *message,
            const char   *text)
{
  g_autoptr(GBytes) payload = redis_message_get_payload (message);
  gsize len;
  const char *data = g_bytes_get_data (payload, &len);

  return len == strlen (text) && memcmp (data, text, len) == 0;
}

/* ---- tests -------------------------------------------------------------- */

/* Detailed and undetailed handlers; binary payload; unsubscribe stops
 * delivery; dup_subscriptions. */
static void
test_subscribe_message (Fixture       *f,
                        gconstpointer  data)
{
  static const guint8 binary[] = { 'a', 0, 0xff, '\n', 'b' };
  g_autoptr(GBytes) payload = NULL;
  g_auto(GStrv) subs = NULL;
  g_autoptr(GError) error = NULL;
  RedisMessage *m;

  if (f->skipped)
    return;

  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news", "other");
  subs = redis_subscriber_dup_subscriptions (f->sub, REDIS_SUBSCRIPTION_KIND_CHANNEL);
  g_assert_cmpuint (g_strv_length (subs), ==, 2);
  g_assert_true (g_strv_contains ((const char * const *) subs, "news"));
  g_assert_cmpint (numsub (f, "news"), ==, 1);

  publish (f, "PUBLISH", "news", "hello");
  publish (f, "PUBLISH", "other", "world");
  {
    g_autoptr(RedisReply) r = NULL;
    g_autoptr(GBytes) ch = g_bytes_new_static ("news", 4);
    g_autoptr(GBytes) cmd = g_bytes_new_static ("PUBLISH", 7);
    g_autoptr(GBytes) pl = g_bytes_new_static (binary, sizeof binary);
    GBytes *args[] = { cmd, ch, pl };

    r = redis_client_command_bytes_sync (REDIS_CLIENT (f->admin), args, 3, NULL, &error);
    g_assert_no_error (error);
  }
  WAIT_UNTIL (f->messages->len == 3, 5000);
  g_assert_cmpuint (f->detailed->len, ==, 2);

  m = g_ptr_array_index (f->messages, 0);
  g_assert_cmpint (redis_message_get_kind (m), ==, REDIS_SUBSCRIPTION_KIND_CHANNEL);
  g_assert_cmpstr (redis_message_get_channel (m), ==, "news");
  g_assert_null (redis_message_get_pattern (m));
  g_assert_cmpstr (redis_message_get_payload_text (m), ==, "hello");
  m = g_ptr_array_index (f->messages, 1);
  g_assert_cmpstr (redis_message_get_channel (m), ==, "other");
  g_assert_true (payload_is (m, "world"));
  m = g_ptr_array_index (f->messages, 2);
  payload = redis_message_get_payload (m);
  g_assert_cmpmem (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload), binary, sizeof binary);
  g_assert_null (redis_message_get_payload_text (m));
  g_assert_true (g_ptr_array_index (f->detailed, 1) == m);

  /* Unsubscribe: no more "news"; "other" still comes. */
  SUBSCRIBE (f, redis_subscriber_unsubscribe_sync, "news");
  g_assert_cmpint (numsub (f, "news"), ==, 0);
  publish (f, "PUBLISH", "news", "late");
  publish (f, "PUBLISH", "other", "still");
  WAIT_UNTIL (f->messages->len == 4, 5000);
  ping (f);
  test_drain_main_context ();
  g_assert_cmpuint (f->messages->len, ==, 4);
  g_assert_cmpuint (f->detailed->len, ==, 2);
  g_assert_true (payload_is (g_ptr_array_index (f->messages, 3), "still"));

  /* Unsubscribe all. */
  g_assert_true (redis_subscriber_unsubscribe_sync (f->sub, NULL, NULL, &error));
  g_assert_no_error (error);
  g_clear_pointer (&subs, g_strfreev);
  subs = redis_subscriber_dup_subscriptions (f->sub, REDIS_SUBSCRIPTION_KIND_CHANNEL);
  g_assert_cmpuint (g_strv_length (subs), ==, 0);
  g_assert_cmpint (numsub (f, "other"), ==, 0);
}

/* Messages already received (the main loop did not run) are not emitted
 * once unsubscribe has finished. */
static void
test_unsubscribe_exact (Fixture       *f,
                        gconstpointer  data)
{
  if (f->skipped)
    return;

  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news", "other");
  publish_many (f, "news", 0, 100);
  publish_many (f, "other", 0, 1);
  ping (f);   /* behind every message: all received, none emitted yet */
  g_assert_cmpuint (f->messages->len, ==, 0);
  SUBSCRIBE (f, redis_subscriber_unsubscribe_sync, "news");
  WAIT_UNTIL (f->messages->len == 1, 5000);
  test_drain_main_context ();
  g_assert_cmpuint (f->messages->len, ==, 1);
  g_assert_cmpstr (redis_message_get_channel (g_ptr_array_index (f->messages, 0)), ==, "other");
  g_assert_cmpuint (f->detailed->len, ==, 0);
}

static void
test_pattern (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GPtrArray) by_pattern = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_message_unref);
  g_autoptr(GBytes) pattern = NULL;
  RedisMessage *m;

  if (f->skipped)
    return;

  g_signal_connect (f->sub, "message::news.*", G_CALLBACK (on_message), by_pattern);
  SUBSCRIBE (f, redis_subscriber_psubscribe_sync, "news.*");
  publish (f, "PUBLISH", "news.sport", "goal");
  publish (f, "PUBLISH", "weather", "rain");
  publish (f, "PUBLISH", "news.art", "paint");
  WAIT_UNTIL (f->messages->len == 2, 5000);
  ping (f);
  test_drain_main_context ();
  g_assert_cmpuint (f->messages->len, ==, 2);
  g_assert_cmpuint (by_pattern->len, ==, 2);
  g_assert_cmpuint (f->detailed->len, ==, 0);   /* "news" is not the pattern */
  m = g_ptr_array_index (by_pattern, 0);
  g_assert_cmpint (redis_message_get_kind (m), ==, REDIS_SUBSCRIPTION_KIND_PATTERN);
  g_assert_cmpstr (redis_message_get_pattern (m), ==, "news.*");
  g_assert_cmpstr (redis_message_get_channel (m), ==, "news.sport");
  pattern = redis_message_get_pattern_bytes (m);
  g_assert_cmpuint (g_bytes_get_size (pattern), ==, 6);
  g_assert_true (payload_is (g_ptr_array_index (by_pattern, 1), "paint"));

  SUBSCRIBE (f, redis_subscriber_punsubscribe_sync, "news.*");
  publish (f, "PUBLISH", "news.sport", "late");
  ping (f);
  test_drain_main_context ();
  g_assert_cmpuint (f->messages->len, ==, 2);
}

static void
test_shard (Fixture       *f,
            gconstpointer  data)
{
  RedisMessage *m;

  if (f->skipped)
    return;

  SUBSCRIBE (f, redis_subscriber_ssubscribe_sync, "news");
  publish (f, "SPUBLISH", "news", "sharded");
  publish (f, "PUBLISH", "news", "plain");   /* not a shard message: not subscribed */
  WAIT_UNTIL (f->messages->len == 1, 5000);
  ping (f);
  test_drain_main_context ();
  g_assert_cmpuint (f->messages->len, ==, 1);
  g_assert_cmpuint (f->detailed->len, ==, 1);
  m = g_ptr_array_index (f->messages, 0);
  g_assert_cmpint (redis_message_get_kind (m), ==, REDIS_SUBSCRIPTION_KIND_SHARD);
  g_assert_cmpstr (redis_message_get_channel (m), ==, "news");
  g_assert_true (payload_is (m, "sharded"));
  SUBSCRIBE (f, redis_subscriber_sunsubscribe_sync, "news");
}

static void
test_ordered (Fixture       *f,
              gconstpointer  data)
{
  const guint n = 10000;
  gint64 start, end;

  if (f->skipped)
    return;

  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");
  start = g_get_monotonic_time ();
  publish_many (f, "news", 0, n);
  WAIT_UNTIL (f->messages->len == n, 20000);
  end = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    {
      char expected[16];

      g_snprintf (expected, sizeof expected, "%u", i);
      g_assert_cmpstr (redis_message_get_payload_text (g_ptr_array_index (f->messages, i)), ==, expected);
    }
  g_assert_cmpuint (f->detailed->len, ==, n);
  g_assert_cmpuint (redis_subscriber_get_messages_dropped (f->sub), ==, 0);
  g_test_message ("%u messages published and delivered in %.1f ms: %.0f messages/s",
                  n, (end - start) / 1000.0, n / ((end - start) / 1e6));
}

static gint64
client_kill_pubsub (Fixture *f)
{
  g_autoptr(RedisReply) reply = admin (f, (const char *[]) { "CLIENT", "KILL", "TYPE", "pubsub", NULL });

  return redis_reply_get_integer (reply);
}

/* CLIENT KILL TYPE pubsub: one connection-lost, one resubscribed, every
 * kind subscribed again. */
static void
test_client_kill (Fixture       *f,
                  gconstpointer  data)
{
  gint64 killed_at;

  if (f->skipped)
    return;

  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");
  SUBSCRIBE (f, redis_subscriber_psubscribe_sync, "p.*");
  SUBSCRIBE (f, redis_subscriber_ssubscribe_sync, "shard");
  killed_at = g_get_monotonic_time ();
  g_assert_cmpint (client_kill_pubsub (f), ==, 1);
  WAIT_UNTIL (f->n_resubscribed == 1, 5000);
  g_test_message ("resubscribed %.1f ms after CLIENT KILL",
                  (f->resubscribed_at - killed_at) / 1000.0);
  g_assert_cmpuint (f->n_lost, ==, 1);
  g_assert_error (f->last_lost, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_assert_true (redis_subscriber_get_connected (f->sub));
  g_assert_cmpint (numsub (f, "news"), ==, 1);
  {
    g_autoptr(RedisReply) n = admin (f, (const char *[]) { "PUBSUB", "NUMPAT", NULL });
    g_autoptr(RedisReply) s = admin (f, (const char *[]) { "PUBSUB", "SHARDNUMSUB", "shard", NULL });

    g_assert_cmpint (redis_reply_get_integer (n), ==, 1);
    g_assert_cmpint (redis_reply_get_integer (redis_reply_get_element (s, 1)), ==, 1);
  }
  publish (f, "PUBLISH", "news", "after");
  publish (f, "PUBLISH", "p.x", "after");
  publish (f, "SPUBLISH", "shard", "after");
  WAIT_UNTIL (f->messages->len == 3, 5000);

  /* Nothing more comes of it. */
  ping (f);
  test_drain_main_context ();
  g_assert_cmpuint (f->n_lost, ==, 1);
  g_assert_cmpuint (f->n_resubscribed, ==, 1);
  g_assert_cmpuint (f->n_reconnect_failed, ==, 0);
}

/* The server's own client-output-buffer-limit for pubsub clients closes a
 * subscriber whose output it cannot send (here: a hard limit of 1 KiB and
 * one 256 KiB message): a loss like any other, reported once, followed by
 * one resubscribe, and messages flow again. */
static void
test_output_buffer_kill (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(RedisReply) old = NULL;
  g_autofree char *big = NULL;

  if (f->skipped)
    return;

  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");
  old = admin (f, (const char *[]) { "CONFIG", "GET", "client-output-buffer-limit", NULL });
  g_assert_cmpuint (redis_reply_get_n_elements (old), ==, 2);
  {
    g_autoptr(RedisReply) set = admin (f, (const char *[]) {
      "CONFIG", "SET", "client-output-buffer-limit", "pubsub 1kb 1kb 0", NULL });
  }
  big = g_strnfill (256 * 1024, 'x');
  publish (f, "PUBLISH", "news", big);
  WAIT_UNTIL (f->n_resubscribed == 1, 5000);
  {
    g_autoptr(RedisReply) restore = admin (f, (const char *[]) {
      "CONFIG", "SET", "client-output-buffer-limit",
      redis_reply_get_string (redis_reply_get_element (old, 1), NULL), NULL });
  }
  g_assert_cmpuint (f->n_lost, ==, 1);
  g_assert_error (f->last_lost, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_assert_cmpint (numsub (f, "news"), ==, 1);

  publish (f, "PUBLISH", "news", "after");
  WAIT_UNTIL (f->messages->len >= 1 &&
              redis_message_get_payload_text (g_ptr_array_index (f->messages, f->messages->len - 1)) != NULL &&
              strcmp (redis_message_get_payload_text (g_ptr_array_index (f->messages, f->messages->len - 1)),
                      "after") == 0, 5000);
  ping (f);
  test_drain_main_context ();
  g_assert_cmpuint (f->n_lost, ==, 1);
  g_assert_cmpuint (f->n_resubscribed, ==, 1);
}

static void
test_ping (Fixture       *f,
           gconstpointer  data)
{
  if (f->skipped)
    return;

  ping (f);                                  /* not subscribed: +PONG */
  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");
  ping (f);                                  /* subscribed: ["pong", ""] */
  ping (f);
  g_assert_cmpuint (f->n_lost, ==, 0);
  g_assert_true (redis_subscriber_get_connected (f->sub));
}

/* The health check is PING too: in subscribed mode it must not be taken
 * for an out-of-step reply. */
static void
test_health_check (Fixture       *f,
                   gconstpointer  data)
{
  if (f->skipped)
    return;

  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");
  /* Several health checks (every 20 ms) go by. */
  {
    gboolean expired = FALSE;
    guint id = g_timeout_add (test_scale_ms (300), test_set_flag_cb, &expired);

    WAIT_UNTIL (expired, 5000);
    (void) id;
  }
  g_assert_cmpuint (f->n_lost, ==, 0);
  publish (f, "PUBLISH", "news", "x");
  WAIT_UNTIL (f->messages->len == 1, 5000);
}

static void
notify_count_cb (GObject    *object,
                 GParamSpec *pspec,
                 guint      *count)
{
  (*count)++;
}

/* A blocked main loop: at most max-pending-messages wait, the oldest are
 * dropped, counted exactly. */
static void
test_slow_consumer (Fixture       *f,
                    gconstpointer  data)
{
  const guint max = 100, n = 1000;
  gint64 deadline;
  guint notified = 0;

  if (f->skipped)
    return;

  redis_subscriber_set_max_pending_messages (f->sub, max);
  g_assert_cmpuint (redis_subscriber_get_max_pending_messages (f->sub), ==, max);
  g_signal_connect (f->sub, "notify::messages-dropped", G_CALLBACK (notify_count_cb), &notified);
  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");

  /* The main loop is not iterated from here until every message is in. */
  publish_many (f, "news", 0, n);
  deadline = g_get_monotonic_time () + test_scale_ms (10000) * (gint64) 1000;
  while (redis_subscriber_get_messages_dropped (f->sub) < n - max &&
         g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_usleep (100000);
  g_assert_cmpuint (redis_subscriber_get_messages_dropped (f->sub), ==, n - max);

  WAIT_UNTIL (f->messages->len == max, 5000);
  test_drain_main_context ();
  g_assert_cmpuint (f->messages->len, ==, max);
  for (guint i = 0; i < max; i++)
    {
      char expected[16];

      g_snprintf (expected, sizeof expected, "%u", n - max + i);
      g_assert_true (payload_is (g_ptr_array_index (f->messages, i), expected));
    }
  g_assert_cmpuint (notified, ==, 1);

  /* Within the bound again: nothing dropped. */
  publish_many (f, "news", n, 50);
  WAIT_UNTIL (f->messages->len == max + 50, 5000);
  g_assert_cmpuint (redis_subscriber_get_messages_dropped (f->sub), ==, n - max);
}

static void
count_message_cb (RedisSubscriber *sub,
                  RedisMessage    *message,
                  guint           *count)
{
  (*count)++;
}

static char *
distinct_channel (guint i)
{
  return g_strdup_printf ("q-%u-zz", i);
}

/* psubscribe * with 100,000 distinct channels: no quark is made. */
static void
test_no_quark (Fixture       *f,
               gconstpointer  data)
{
  const guint n = 100000;
  guint delivered = 0;

  if (f->skipped)
    return;

  g_signal_handlers_disconnect_by_func (f->sub, on_message, f->messages);
  g_signal_connect (f->sub, "message", G_CALLBACK (count_message_cb), &delivered);
  SUBSCRIBE (f, redis_subscriber_psubscribe_sync, "*");

  for (guint done = 0; done < n;)
    {
      g_autoptr(RedisBatch) batch = redis_batch_new ();
      g_autoptr(GPtrArray) replies = NULL;
      g_autoptr(GError) error = NULL;
      guint chunk = MIN (n - done, 5000);

      for (guint i = 0; i < chunk; i++)
        {
          g_autofree char *channel = distinct_channel (done + i);

          redis_batch_add (batch, (const char *[]) { "PUBLISH", channel, "x", NULL });
        }
      replies = redis_client_pipeline_sync (REDIS_CLIENT (f->admin), batch, NULL, &error);
      g_assert_no_error (error);
      done += chunk;
      /* Keep within the default bound: let them be delivered. */
      test_drain_main_context ();
    }
  WAIT_UNTIL (delivered == n, 30000);
  g_assert_cmpuint (redis_subscriber_get_messages_dropped (f->sub), ==, 0);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *channel = distinct_channel (i);

      g_assert_cmpuint (g_quark_try_string (channel), ==, 0);
    }
}

/* A server restart on the same port: lost once, resubscribed once. */
static void
test_server_restart (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  if (f->skipped)
    return;

  f->own = redis_test_server_new (REDIS_TEST_SERVER_TCP, NULL, &error);
  g_assert_no_error (error);
  redis_subscriber_close (f->sub);
  unref_and_wait_finalized (g_steal_pointer (&f->sub));
  close_and_finalize (g_steal_pointer (&f->admin));
  f->sub = subscriber_new (redis_test_server_get_port (f->own), NULL);
  watch (f);
  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");

  g_assert_true (redis_test_server_restart (f->own, &error));
  g_assert_no_error (error);
  WAIT_UNTIL (f->n_resubscribed == 1, 10000);
  g_assert_cmpuint (f->n_lost, ==, 1);
  f->admin = admin_new (redis_test_server_get_port (f->own), NULL);
  g_assert_cmpint (numsub (f, "news"), ==, 1);
  publish (f, "PUBLISH", "news", "back");
  WAIT_UNTIL (f->messages->len == 1, 5000);
}

/* The password changes under the subscriber: each reconnect attempt fails
 * with AUTH_FAILED, with backoff (no storm); once it is right again, all
 * is resubscribed. */
static void
test_wrong_password (Fixture       *f,
                     gconstpointer  data)
{
  static const char *args[] = { "--requirepass", "first", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  guint16 port;
  guint failed;

  if (f->skipped)
    return;

  f->own = redis_test_server_new (REDIS_TEST_SERVER_TCP, args, &error);
  g_assert_no_error (error);
  port = redis_test_server_get_port (f->own);
  redis_subscriber_close (f->sub);
  unref_and_wait_finalized (g_steal_pointer (&f->sub));
  close_and_finalize (g_steal_pointer (&f->admin));
  f->admin = admin_new (port, "first");
  uri = g_strdup_printf ("redis://:first@127.0.0.1:%u/?backoff_initial=50ms&backoff_max=400ms", port);
  f->sub = redis_subscriber_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  watch (f);
  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");

  g_clear_pointer (&uri, g_free);
  redis_reply_unref (admin (f, (const char *[]) { "CONFIG", "SET", "requirepass", "second", NULL }));
  g_assert_cmpint (client_kill_pubsub (f), ==, 1);
  WAIT_UNTIL (f->n_reconnect_failed >= 2, 5000);
  g_assert_cmpuint (f->n_lost, ==, 1);
  g_assert_error (f->last_reconnect_error, REDIS_ERROR, REDIS_ERROR_AUTH_FAILED);
  g_assert_false (redis_subscriber_get_connected (f->sub));

  /* One second at ceilings 50, 100, 200, 400, 400… ms (full jitter: each
   * wait in [1, ceiling]): no storm. About 5 attempts; more than 12 with
   * probability about 2e-5 (simulated). */
  failed = f->n_reconnect_failed;
  {
    gboolean expired = FALSE;

    g_timeout_add (1000, test_set_flag_cb, &expired);
    WAIT_UNTIL (expired, 5000);
  }
  g_assert_cmpuint (f->n_reconnect_failed - failed, <=, 12);
  g_assert_cmpuint (f->n_resubscribed, ==, 0);

  redis_reply_unref (admin (f, (const char *[]) { "CONFIG", "SET", "requirepass", "first", NULL }));
  WAIT_UNTIL (f->n_resubscribed == 1, 5000);
  g_assert_cmpuint (f->n_lost, ==, 1);
  g_assert_true (redis_subscriber_get_connected (f->sub));
  g_assert_cmpint (numsub (f, "news"), ==, 1);
  publish (f, "PUBLISH", "news", "back");
  WAIT_UNTIL (f->messages->len == 1, 5000);
}

/* A blackhole (half-open peer) is found by the health check and the stall
 * timeout; the subscriber reconnects through the proxy once it passes
 * again. */
static void
test_blackhole (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(FaultProxy) proxy = NULL;
  g_autoptr(GError) error = NULL;

  if (f->skipped)
    return;

  proxy = fault_proxy_new (f->port, &error);
  if (proxy == NULL)
    {
      g_test_skip_printf ("no fault proxy: %s", error->message);
      return;
    }
  redis_subscriber_close (f->sub);
  unref_and_wait_finalized (g_steal_pointer (&f->sub));
  f->sub = subscriber_new (fault_proxy_get_port (proxy),
                           "health_check_interval=100ms&stall_timeout=200ms&command_timeout=200ms");
  watch (f);
  SUBSCRIBE (f, redis_subscriber_subscribe_sync, "news");

  fault_proxy_do (proxy, "blackhole");
  WAIT_UNTIL (f->n_lost == 1, 5000);
  g_assert_error (f->last_lost, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST);
  g_assert_false (redis_subscriber_get_connected (f->sub));
  fault_proxy_do (proxy, "pass");
  WAIT_UNTIL (f->n_resubscribed == 1, 10000);
  publish (f, "PUBLISH", "news", "back");
  WAIT_UNTIL (f->messages->len == 1, 5000);
}

/* Frames a real server never sends: PROTOCOL, the connection is dropped
 * and made again. */
static void
test_hostile (Fixture       *f,
              gconstpointer  data)
{
  const char *frame = data;
  g_autoptr(FakeServer) fake = fake_server_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *uri = NULL;

  f->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_message_unref);
  f->detailed = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_message_unref);
  fake_server_set_answer_all (fake, ":1\r\n", -1);
  fake_server_set_reply_for_command (fake, "SUBSCRIBE", frame, -1);
  uri = g_strdup_printf ("redis://127.0.0.1:%u/?backoff_initial=10ms&backoff_max=50ms",
                         fake_server_get_port (fake));
  f->sub = redis_subscriber_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  watch (f);

  redis_subscriber_subscribe_async (f->sub, (const char *[]) { "news", NULL }, NULL,
                                    store_result_cb, &result);
  WAIT_UNTIL (f->n_lost >= 2, 5000);
  g_assert_error (f->last_lost, REDIS_ERROR, REDIS_ERROR_PROTOCOL);
  g_assert_cmpuint (fake_server_get_n_connections (fake), >=, 2);
  g_assert_cmpuint (f->messages->len, ==, 0);

  /* Closing ends the request, which waited for a good connection. */
  redis_subscriber_close (f->sub);
  test_wait_for_result (&result, 5000);
  g_assert_false (redis_subscriber_subscribe_finish (f->sub, result, &error));
  g_assert_true (g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CLOSED) ||
                 g_error_matches (error, REDIS_ERROR, REDIS_ERROR_SEND_TIMEOUT));
}

/* Closing with requests in flight: each completes, with CLOSED. */
static void
test_close_pending (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(FaultProxy) proxy = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *results[3] = { NULL, };

  if (f->skipped)
    return;

  proxy = fault_proxy_new (f->port, &error);
  if (proxy == NULL)
    {
      g_test_skip_printf ("no fault proxy: %s", error->message);
      return;
    }
  redis_subscriber_close (f->sub);
  unref_and_wait_finalized (g_steal_pointer (&f->sub));
  f->sub = subscriber_new (fault_proxy_get_port (proxy), NULL);
  watch (f);
  fault_proxy_do (proxy, "blackhole");
  redis_subscriber_subscribe_async (f->sub, (const char *[]) { "a", NULL }, NULL,
                                    store_result_cb, &results[0]);
  redis_subscriber_psubscribe_async (f->sub, (const char *[]) { "b*", NULL }, NULL,
                                     store_result_cb, &results[1]);
  redis_subscriber_ping_async (f->sub, NULL, store_result_cb, &results[2]);
  g_usleep (50000);
  test_drain_main_context ();
  g_assert_null (results[0]);
  redis_subscriber_close (f->sub);
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      test_wait_for_result (&results[i], 5000);
      g_clear_error (&error);
      g_assert_false (i == 2 ? redis_subscriber_ping_finish (f->sub, results[i], &error) :
                      i == 1 ? redis_subscriber_psubscribe_finish (f->sub, results[i], &error) :
                               redis_subscriber_subscribe_finish (f->sub, results[i], &error));
      g_assert_true (g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CLOSED) ||
                     g_error_matches (error, REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST));
      g_clear_object (&results[i]);
    }
  /* After close: CLOSED at once. */
  g_clear_error (&error);
  g_assert_false (redis_subscriber_subscribe_sync (f->sub, (const char *[]) { "c", NULL }, NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_CLOSED);
  g_assert_cmpuint (f->n_lost, ==, 0);
}

typedef struct
{
  RedisSubscriber *sub;
  guint            index;
} ThreadData;

static gpointer
thread_func (gpointer data)
{
  ThreadData *td = data;

  for (guint round = 0; round < 20; round++)
    {
      g_autofree char *name = g_strdup_printf ("t%u-%u", td->index, round);
      g_autoptr(GError) error = NULL;

      g_assert_true (redis_subscriber_subscribe_sync (td->sub, (const char *[]) { name, NULL }, NULL, &error));
      g_assert_no_error (error);
      if (round % 2 == 1)
        {
          g_assert_true (redis_subscriber_unsubscribe_sync (td->sub, (const char *[]) { name, NULL }, NULL, &error));
          g_assert_no_error (error);
        }
    }
  return NULL;
}

/* Four threads subscribing and unsubscribing at once. */
static void
test_threads (Fixture       *f,
              gconstpointer  data)
{
  ThreadData td[4];
  GThread *threads[4];
  g_auto(GStrv) subs = NULL;

  if (f->skipped)
    return;

  for (guint t = 0; t < 4; t++)
    {
      td[t].sub = f->sub;
      td[t].index = t;
      threads[t] = g_thread_new ("subscriber-test", thread_func, &td[t]);
    }
  for (guint t = 0; t < 4; t++)
    g_thread_join (threads[t]);

  subs = redis_subscriber_dup_subscriptions (f->sub, REDIS_SUBSCRIPTION_KIND_CHANNEL);
  g_assert_cmpuint (g_strv_length (subs), ==, 40);
  for (guint t = 0; t < 4; t++)
    for (guint round = 0; round < 20; round++)
      {
        g_autofree char *name = g_strdup_printf ("t%u-%u", t, round);

        g_assert_cmpint (numsub (f, name), ==, round % 2 == 0 ? 1 : 0);
        g_assert_cmpint (g_strv_contains ((const char * const *) subs, name), ==, round % 2 == 0);
      }
  publish (f, "PUBLISH", "t3-18", "x");
  WAIT_UNTIL (f->messages->len == 1, 5000);
}

/* redis_pool_create_subscriber(): the pool's options, its own connection. */
static void
test_from_pool (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  RedisPool *pool;
  RedisSubscriber *sub;
  guint received = 0;

  if (f->skipped)
    return;

  uri = g_strdup_printf ("redis://127.0.0.1:%u/?pool_size=2&backoff_initial=20ms", f->port);
  pool = redis_pool_new_sync (uri, NULL, &error);
  g_assert_no_error (error);
  sub = redis_pool_create_subscriber (pool);
  g_assert_false (redis_subscriber_get_connected (sub));
  {
    guint backoff;

    g_object_get (sub, "backoff-initial", &backoff, NULL);
    g_assert_cmpuint (backoff, ==, 20);
  }
  g_assert_true (g_initable_init (G_INITABLE (sub), NULL, &error));
  g_assert_no_error (error);
  g_signal_connect (sub, "message::news", G_CALLBACK (count_message_cb), &received);
  g_assert_true (redis_subscriber_subscribe_sync (sub, (const char *[]) { "news", NULL }, NULL, &error));
  g_assert_no_error (error);

  /* The pool still refuses SUBSCRIBE, and says where to go. */
  g_assert_null (redis_client_command_sync (REDIS_CLIENT (pool), (const char *[]) { "SUBSCRIBE", "x", NULL },
                                            NULL, &error));
  g_assert_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "RedisSubscriber"));
  g_clear_error (&error);

  publish (f, "PUBLISH", "news", "pooled");
  WAIT_UNTIL (received == 1, 5000);
  redis_subscriber_close (sub);
  unref_and_wait_finalized (sub);
  g_assert_true (redis_client_close_sync (REDIS_CLIENT (pool), NULL, &error));
  g_assert_no_error (error);
  unref_and_wait_finalized (pool);
}

int
main (int   argc,
      char *argv[])
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

#define ADD(path, func, params) \
  g_test_add ("/subscriber/" path, Fixture, params, setup, func, teardown)
  ADD ("subscribe-message", test_subscribe_message, NULL);
  ADD ("unsubscribe-exact", test_unsubscribe_exact, NULL);
  ADD ("pattern", test_pattern, NULL);
  ADD ("shard", test_shard, NULL);
  ADD ("ordered-10000", test_ordered, NULL);
  ADD ("client-kill", test_client_kill, NULL);
  ADD ("output-buffer-kill", test_output_buffer_kill, NULL);
  ADD ("ping", test_ping, NULL);
  ADD ("health-check", test_health_check, "health_check_interval=20ms");
  ADD ("slow-consumer", test_slow_consumer, NULL);
  ADD ("no-quark", test_no_quark, NULL);
  ADD ("server-restart", test_server_restart, NULL);
  ADD ("wrong-password", test_wrong_password, NULL);
  ADD ("blackhole", test_blackhole, NULL);
  ADD ("close-pending", test_close_pending, NULL);
  ADD ("threads", test_threads, NULL);
  ADD ("from-pool", test_from_pool, NULL);
#undef ADD
  g_test_add ("/subscriber/hostile/bad-confirmation", Fixture,
              "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n$1\r\nX\r\n",
              NULL, test_hostile, teardown);
  g_test_add ("/subscriber/hostile/short-message", Fixture,
              "*2\r\n$7\r\nmessage\r\n$4\r\nnews\r\n",
              NULL, test_hostile, teardown);
  g_test_add ("/subscriber/hostile/unknown-push", Fixture,
              "*3\r\n$7\r\nsurpris\r\n$4\r\nnews\r\n:1\r\n",
              NULL, test_hostile, teardown);
  g_test_add ("/subscriber/hostile/message-integer-payload", Fixture,
              "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n:1\r\n",
              NULL, test_hostile, teardown);
  g_test_add ("/subscriber/hostile/wrong-name", Fixture,
              "*3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:1\r\n",
              NULL, test_hostile, teardown);

  ret = g_test_run ();
  g_clear_pointer (&server, redis_test_server_free);
  return ret;
}
