/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * keyspace-watch: print every change to the keys of a database, from
 * Redis keyspace notifications, with a RedisSubscriber.
 *
 *   REDIS_URL=redis://127.0.0.1:6379/0 ./keyspace-watch ['user:*']
 *
 * It turns notifications on (CONFIG SET notify-keyspace-events KEA; give
 * --no-config where the server's configuration does that), subscribes to
 * the pattern __keyspace@DB__:GLOB and prints "KEY EVENT" for each message
 * until interrupted. After a reconnect it says so: events in the gap are
 * lost, and a real application would re-read the keys it cares about.
 *
 * --demo (what the 'examples' test suite runs): make a few changes itself
 * (SET, SET with a 50 ms expiry, DEL) and exit 0 once it has seen each of
 * their events, or 1 after a deadline (scaled by
 * REDISPOOL_TEST_TIMEOUT_MULTIPLIER).
 */

#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>

#include <redispool.h>

typedef struct
{
  GMainLoop  *loop;
  GHashTable *expected;      /* "KEY EVENT" still to see (--demo) */
  gsize       prefix_len;    /* of "__keyspace@DB__:" */
  int         status;
} Watch;

static void
on_key_event (RedisSubscriber *sub,
              RedisMessage    *message,
              gpointer         user_data)
{
  Watch *w = user_data;
  g_autoptr(GBytes) channel = redis_message_get_channel_bytes (message);
  g_autoptr(GBytes) payload = redis_message_get_payload (message);
  gsize len;
  const char *data = g_bytes_get_data (channel, &len);
  g_autofree char *key = NULL;
  g_autofree char *event = NULL;
  g_autofree char *line = NULL;

  /* Key names may be binary: print them escaped. */
  key = g_strescape (len > w->prefix_len ? data + w->prefix_len : "", NULL);
  event = g_strndup (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
  line = g_strdup_printf ("%s %s", key, event);
  g_print ("%s\n", line);

  if (w->expected != NULL && g_hash_table_remove (w->expected, line) &&
      g_hash_table_size (w->expected) == 0)
    {
      g_print ("every expected event seen\n");
      w->status = EXIT_SUCCESS;
      g_main_loop_quit (w->loop);
    }
}

static void
on_connection_lost (RedisSubscriber *sub,
                    const GError    *error,
                    gpointer         user_data)
{
  g_printerr ("connection lost (%s); reconnecting\n", error->message);
}

static void
on_resubscribed (RedisSubscriber *sub,
                 gpointer         user_data)
{
  g_printerr ("resubscribed: events since the loss are missed\n");
}

static gboolean
deadline_cb (gpointer user_data)
{
  Watch *w = user_data;
  GHashTableIter iter;
  gpointer line;

  g_printerr ("deadline passed; not seen:\n");
  g_hash_table_iter_init (&iter, w->expected);
  while (g_hash_table_iter_next (&iter, &line, NULL))
    g_printerr ("  %s\n", (const char *) line);
  w->status = EXIT_FAILURE;
  g_main_loop_quit (w->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

static gboolean
command (RedisPool          *pool,
         const char * const *argv,
         GError            **error)
{
  g_autoptr(RedisReply) reply =
    redis_client_command_sync (REDIS_CLIENT (pool), argv, NULL, error);

  return reply != NULL;
}

int
main (int   argc,
      char *argv[])
{
  gboolean demo = FALSE, no_config = FALSE;
  int db = 0;
  GOptionEntry entries[] = {
    { "demo", 0, 0, G_OPTION_ARG_NONE, &demo, "Make changes, check their events, exit", NULL },
    { "db", 0, 0, G_OPTION_ARG_INT, &db, "Database whose keys to watch (0)", "N" },
    { "no-config", 0, 0, G_OPTION_ARG_NONE, &no_config, "Do not CONFIG SET notify-keyspace-events", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("[KEY-GLOB]");
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisPool) pool = NULL;
  g_autoptr(RedisSubscriber) sub = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *pattern = NULL;
  const char *url = g_getenv ("REDIS_URL");
  Watch w = { NULL, NULL, 0, EXIT_SUCCESS };
  guint deadline_id = 0, sigint_id;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || argc > 2)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "one KEY-GLOB at most");
      return 2;
    }
  if (url == NULL)
    url = "redis://127.0.0.1:6379/0";
  prefix = g_strdup_printf ("__keyspace@%d__:", db);
  pattern = g_strconcat (prefix, argc == 2 ? argv[1] : "*", NULL);

  pool = redis_pool_new_sync (url, NULL, &error);
  if (pool == NULL ||
      (!no_config &&
       !command (pool, (const char *[]) { "CONFIG", "SET", "notify-keyspace-events", "KEA", NULL },
                 &error)))
    {
      g_printerr ("%s: %s\n", url, error->message);
      return EXIT_FAILURE;
    }

  /* The subscriber shares the pool's options (server, password, TLS...),
   * not its connections. */
  sub = redis_pool_create_subscriber (pool);
  if (!g_initable_init (G_INITABLE (sub), NULL, &error))
    {
      g_printerr ("subscriber: %s\n", error->message);
      return EXIT_FAILURE;
    }

  w.loop = g_main_loop_new (NULL, FALSE);
  w.prefix_len = strlen (prefix);
  g_signal_connect (sub, "message", G_CALLBACK (on_key_event), &w);
  g_signal_connect (sub, "connection-lost", G_CALLBACK (on_connection_lost), NULL);
  g_signal_connect (sub, "resubscribed", G_CALLBACK (on_resubscribed), NULL);
  if (!redis_subscriber_psubscribe_sync (sub, (const char *[]) { pattern, NULL }, NULL, &error))
    {
      g_printerr ("PSUBSCRIBE %s: %s\n", pattern, error->message);
      return EXIT_FAILURE;
    }
  g_printerr ("watching %s\n", pattern);

  if (demo)
    {
      const char *scale = g_getenv ("REDISPOOL_TEST_TIMEOUT_MULTIPLIER");
      guint factor = scale != NULL ? MAX (atoi (scale), 1) : 1;
      const char *lines[] = {
        "demo:a set", "demo:b set", "demo:b expire", "demo:a del", "demo:b expired",
      };

      w.expected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      for (gsize i = 0; i < G_N_ELEMENTS (lines); i++)
        g_hash_table_add (w.expected, g_strdup (lines[i]));
      deadline_id = g_timeout_add_seconds (10 * factor, deadline_cb, &w);

      if (!command (pool, (const char *[]) { "SET", "demo:a", "1", NULL }, &error) ||
          !command (pool, (const char *[]) { "SET", "demo:b", "2", "PX", "50", NULL }, &error) ||
          !command (pool, (const char *[]) { "DEL", "demo:a", NULL }, &error))
        {
          g_printerr ("%s\n", error->message);
          return EXIT_FAILURE;
        }
    }

  sigint_id = g_unix_signal_add (SIGINT, quit_cb, w.loop);
  g_main_loop_run (w.loop);
  g_source_remove (sigint_id);
  if (deadline_id != 0 && w.status == EXIT_SUCCESS)
    g_source_remove (deadline_id);

  redis_subscriber_close (sub);
  g_main_loop_unref (w.loop);
  g_clear_pointer (&w.expected, g_hash_table_unref);
  return w.status;
}
