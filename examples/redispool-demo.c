/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* redispool-demo: a tour of the API against a real server.
 *
 *   redispool-demo [URI]      (default: $REDIS_URL, else redis://127.0.0.1:6379)
 *
 * Several "users" share one pool, a pipeline and a transaction run, a server
 * error is shown, then one pooled connection is killed with CLIENT KILL and
 * the pool's connection-lost / connection-replaced signals are printed. */

#include <redispool.h>

static GMainLoop *loop;
static guint n_replaced;
static guint n_users_pending;

static void
print_info (RedisPool *pool)
{
  g_autoptr(GVariant) info = redis_pool_get_info (pool);
  g_autofree char *text = g_variant_print (info, FALSE);

  g_print ("info: %s\n", text);
}

static void
on_lost (RedisPool *pool, guint index, GError *error, gpointer user_data)
{
  g_print ("signal connection-lost: slot %u (%s)\n", index, error->message);
}

static void
on_replaced (RedisPool *pool, guint index, gpointer user_data)
{
  g_print ("signal connection-replaced: slot %u\n", index);
  n_replaced++;
  g_main_loop_quit (loop);
}

static void
user_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = redis_client_command_finish (REDIS_CLIENT (source), result, &error);
  g_autofree char *text = reply ? redis_reply_to_string (reply) : NULL;
  g_print ("  user %u: INCR demo:visits -> %s\n", GPOINTER_TO_UINT (user_data),
           text ? text : error->message);
  if (--n_users_pending == 0)
    g_main_loop_quit (loop);
}

static gboolean
timeout_cb (gpointer data)
{
  g_printerr ("demo: timed out waiting\n");
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char *argv[])
{
  const char *uri = argc > 1 ? argv[1] : g_getenv ("REDIS_URL");
  g_autofree char *pool_uri = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisPool) pool = NULL;
  g_autoptr(RedisReply) reply = NULL;
  g_autoptr(RedisBatch) batch = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GVariant) info = NULL;
  g_autoptr(GVariant) conns = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autofree char *victim = NULL;
  gint64 client_id = 0;
  guint timeout_id;

  if (uri == NULL)
    uri = "redis://127.0.0.1:6379";
  pool_uri = g_strdup_printf ("%s%spool_size=3&backoff_initial=100ms&client_name=demo",
                              uri, strchr (uri, '?') ? "&" : "?");

  pool = redis_pool_new_sync (pool_uri, NULL, &error);
  if (pool == NULL)
    {
      g_printerr ("demo: %s\n", error->message);
      return 1;
    }
  g_print ("pool of %u connections to %s\n", redis_pool_get_size (pool), uri);

  /* One command, blocking. */
  reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                     (const char *[]) { "SET", "demo:greeting", "hello", NULL },
                                     NULL, &error);
  g_assert_no_error (error);
  g_print ("SET demo:greeting hello -> %s\n", redis_reply_get_string (reply, NULL));
  g_clear_pointer (&reply, redis_reply_unref);

  /* Five "users" at once, asynchronously, multiplexed over the pool. */
  loop = g_main_loop_new (NULL, FALSE);
  n_users_pending = 5;
  for (guint i = 1; i <= 5; i++)
    redis_client_command_async (REDIS_CLIENT (pool),
                                (const char *[]) { "INCR", "demo:visits", NULL },
                                NULL, user_done, GUINT_TO_POINTER (i));
  g_main_loop_run (loop);

  /* A pipeline: the failing command gives an error reply, the rest succeed. */
  batch = redis_batch_new ();
  redis_batch_add (batch, (const char *[]) { "GET", "demo:greeting", NULL });
  redis_batch_add (batch, (const char *[]) { "LPUSH", "demo:greeting", "x", NULL });
  redis_batch_add (batch, (const char *[]) { "INCRBY", "demo:visits", "10", NULL });
  replies = redis_client_pipeline_sync (REDIS_CLIENT (pool), batch, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < replies->len; i++)
    {
      g_autofree char *text = redis_reply_to_string (g_ptr_array_index (replies, i));
      g_print ("pipeline[%u] -> %s\n", i, text);
    }
  g_clear_pointer (&replies, g_ptr_array_unref);

  /* A transaction: MULTI … EXEC written together. */
  replies = redis_client_transaction_sync (REDIS_CLIENT (pool), batch, NULL, &error);
  g_assert_no_error (error);
  g_print ("transaction -> %u replies, last %" G_GINT64_FORMAT "\n", replies->len,
           redis_reply_get_integer (g_ptr_array_index (replies, replies->len - 1)));
  g_clear_pointer (&replies, g_ptr_array_unref);

  /* A server error becomes a GError that keeps the server's text. */
  reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                     (const char *[]) { "LPUSH", "demo:greeting", "x", NULL },
                                     NULL, &error);
  if (reply == NULL)
    {
      g_autofree char *prefix = redis_error_get_server_prefix (error);
      g_print ("LPUSH on a string -> error %s: %s\n", prefix, error->message);
      g_clear_error (&error);
    }

  print_info (pool);

  /* Kill one pooled connection from the server side and watch the pool
   * report it and replace it. */
  g_signal_connect (pool, "connection-lost", G_CALLBACK (on_lost), NULL);
  g_signal_connect (pool, "connection-replaced", G_CALLBACK (on_replaced), NULL);
  info = redis_pool_get_info (pool);
  conns = g_variant_lookup_value (info, "connections", G_VARIANT_TYPE ("aa{sv}"));
  first = g_variant_get_child_value (conns, 0);
  g_variant_lookup (first, "client-id", "x", &client_id);
  victim = g_strdup_printf ("%" G_GINT64_FORMAT, client_id);
  reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                     (const char *[]) { "CLIENT", "KILL", "ID", victim,
                                                        "SKIPME", "no", NULL },
                                     NULL, &error);
  g_assert_no_error (error);
  g_print ("CLIENT KILL ID %s -> %" G_GINT64_FORMAT " killed\n", victim,
           redis_reply_get_integer (reply));
  g_clear_pointer (&reply, redis_reply_unref);

  timeout_id = g_timeout_add_seconds (10, timeout_cb, NULL);
  g_main_loop_run (loop);
  g_source_remove (timeout_id);
  print_info (pool);

  redis_client_close_sync (REDIS_CLIENT (pool), NULL, NULL);
  g_main_loop_unref (loop);
  return n_replaced == 1 ? 0 : 1;
}
