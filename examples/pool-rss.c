/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* pool-rss: how much resident memory a pool of idle connections costs.
 *
 *   pool-rss [URI]     (default: $REDIS_URL, else redis://127.0.0.1:6379)
 *
 * One connection is opened and used first, so that GLib's type system, GIO
 * and redispool's I/O thread are warm; then a pool (of the default size, 5)
 * default 5) is created and used, and the growth of VmRSS is printed.
 * tools/bench.sh runs it. */

#include <stdlib.h>
#include <string.h>

#include <redispool.h>

static long
rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL) ||
      (line = strstr (status, "VmRSS:")) == NULL)
    return -1;
  return strtol (line + 6, NULL, 10);
}

int
main (int argc, char *argv[])
{
  const char *uri = argc > 1 ? argv[1] : g_getenv ("REDIS_URL");
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisConnection) conn = NULL;
  g_autoptr(RedisPool) pool = NULL;
  long before, after;

  conn = redis_connection_new_sync (uri, NULL, &error);
  if (conn == NULL)
    {
      g_printerr ("pool-rss: %s\n", error->message);
      return 1;
    }
  redis_reply_unref (redis_client_command_sync (REDIS_CLIENT (conn),
                                                (const char *[]) { "PING", NULL }, NULL, &error));
  before = rss_kib ();

  pool = redis_pool_new_sync (uri, NULL, &error);
  if (pool == NULL)
    {
      g_printerr ("pool-rss: %s\n", error->message);
      return 1;
    }
  for (int i = 0; i < 10; i++)
    {
      RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                                     (const char *[]) { "PING", NULL },
                                                     NULL, &error);
      g_assert_no_error (error);
      redis_reply_unref (reply);
    }
  after = rss_kib ();

  g_print ("RSS before the pool %ld KiB, with a pool of %u idle connections %ld KiB: +%ld KiB\n",
           before, redis_pool_get_size (pool), after, after - before);
  return 0;
}
