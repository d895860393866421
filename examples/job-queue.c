/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * job-queue: a work queue on a Redis list.
 *
 * Two producer threads push jobs with RPUSH through the shared pool. Three
 * worker threads each lease a connection of their own and loop on
 * BLPOP (1 s timeout) until they pop the sentinel; each job's result goes
 * back through the pool. The program exits 0 when every job is done.
 *
 *   REDIS_URL=redis://127.0.0.1:6379/0 ./job-queue
 */

#include <stdlib.h>
#include <unistd.h>

#include <redispool.h>

#define N_PRODUCERS     2
#define N_WORKERS       3
#define JOBS_PER_PRODUCER 10
#define SENTINEL        "STOP"

typedef struct
{
  RedisPool  *pool;
  char       *queue;        /* list of pending jobs */
  char       *results;      /* list of results */
  gint        done;         /* jobs processed */
  gint        failed;
} JobQueue;

typedef struct
{
  JobQueue *q;
  guint     id;
} ThreadArgs;

static gpointer
producer (gpointer data)
{
  ThreadArgs *args = data;
  JobQueue *q = args->q;

  for (guint i = 0; i < JOBS_PER_PRODUCER; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(RedisReply) reply = NULL;
      g_autofree char *job = g_strdup_printf ("%u", args->id * 100 + i);

      reply = redis_client_command_sync (REDIS_CLIENT (q->pool),
                                         (const char *[]) { "RPUSH", q->queue, job, NULL },
                                         NULL, &error);
      if (reply == NULL)
        {
          g_printerr ("producer %u: RPUSH failed: %s\n", args->id, error->message);
          g_atomic_int_inc (&q->failed);
          return NULL;
        }
      g_print ("producer %u: queued job %s (queue length %" G_GINT64_FORMAT ")\n",
               args->id, job, redis_reply_get_integer (reply));
    }
  return NULL;
}

static gpointer
worker (gpointer data)
{
  ThreadArgs *args = data;
  JobQueue *q = args->q;
  g_autoptr(GError) error = NULL;
  RedisConnection *lease;
  guint mine = 0;

  /* A leased connection is ours alone: BLPOP blocks only this worker. */
  lease = redis_pool_acquire_sync (q->pool, NULL, &error);
  if (lease == NULL)
    {
      g_printerr ("worker %u: acquire failed: %s\n", args->id, error->message);
      g_atomic_int_inc (&q->failed);
      return NULL;
    }
  g_print ("worker %u: leased connection, client id %" G_GINT64_FORMAT "\n",
           args->id, redis_connection_get_client_id (lease));

  for (;;)
    {
      g_autoptr(RedisReply) reply = NULL;
      g_autoptr(RedisReply) pushed = NULL;
      g_autofree char *job = NULL;
      g_autofree char *result = NULL;
      gint64 n;

      reply = redis_client_command_sync (REDIS_CLIENT (lease),
                                         (const char *[]) { "BLPOP", q->queue, "1", NULL },
                                         NULL, &error);
      if (reply == NULL)
        {
          g_printerr ("worker %u: BLPOP failed: %s\n", args->id, error->message);
          g_atomic_int_inc (&q->failed);
          break;
        }
      if (redis_reply_is_nil (reply))
        {
          g_print ("worker %u: queue empty for 1 s, waiting again\n", args->id);
          continue;
        }

      /* BLPOP answers [key, value]. */
      job = g_strdup (redis_reply_get_string (redis_reply_get_element (reply, 1), NULL));
      if (g_strcmp0 (job, SENTINEL) == 0)
        {
          g_print ("worker %u: sentinel, stopping after %u jobs\n", args->id, mine);
          break;
        }

      n = g_ascii_strtoll (job, NULL, 10);
      result = g_strdup_printf ("%s^2=%" G_GINT64_FORMAT, job, n * n);
      pushed = redis_client_command_sync (REDIS_CLIENT (q->pool),
                                          (const char *[]) { "RPUSH", q->results, result, NULL },
                                          NULL, &error);
      if (pushed == NULL)
        {
          g_printerr ("worker %u: RPUSH result failed: %s\n", args->id, error->message);
          g_atomic_int_inc (&q->failed);
          break;
        }
      g_print ("worker %u: job %s -> %s\n", args->id, job, result);
      mine++;
      g_atomic_int_inc (&q->done);
    }

  redis_pool_release (q->pool, lease);
  g_object_unref (lease);
  return NULL;
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) len = NULL;
  const char *url = g_getenv ("REDIS_URL");
  JobQueue q = { 0 };
  ThreadArgs pargs[N_PRODUCERS], wargs[N_WORKERS];
  GThread *producers[N_PRODUCERS], *workers[N_WORKERS];
  const int total = N_PRODUCERS * JOBS_PER_PRODUCER;

  if (url == NULL)
    url = "redis://127.0.0.1:6379/0";
  g_print ("connecting to %s\n", url);
  q.pool = redis_pool_new_sync (url, NULL, &error);
  if (q.pool == NULL)
    {
      g_printerr ("cannot create the pool: %s\n", error->message);
      return EXIT_FAILURE;
    }
  q.queue = g_strdup_printf ("job-queue:%d:jobs", (int) getpid ());
  q.results = g_strdup_printf ("job-queue:%d:results", (int) getpid ());

  /* Workers first: they wait on BLPOP until jobs arrive. */
  for (guint i = 0; i < N_WORKERS; i++)
    {
      wargs[i] = (ThreadArgs) { &q, i + 1 };
      workers[i] = g_thread_new ("worker", worker, &wargs[i]);
    }
  for (guint i = 0; i < N_PRODUCERS; i++)
    {
      pargs[i] = (ThreadArgs) { &q, i + 1 };
      producers[i] = g_thread_new ("producer", producer, &pargs[i]);
    }
  for (guint i = 0; i < N_PRODUCERS; i++)
    g_thread_join (producers[i]);

  /* One sentinel per worker, behind every job. */
  for (guint i = 0; i < N_WORKERS; i++)
    {
      g_autoptr(RedisReply) r =
        redis_client_command_sync (REDIS_CLIENT (q.pool),
                                   (const char *[]) { "RPUSH", q.queue, SENTINEL, NULL },
                                   NULL, &error);
      if (r == NULL)
        {
          g_printerr ("cannot queue the sentinel: %s\n", error->message);
          return EXIT_FAILURE;
        }
    }
  for (guint i = 0; i < N_WORKERS; i++)
    g_thread_join (workers[i]);

  len = redis_client_command_sync (REDIS_CLIENT (q.pool),
                                   (const char *[]) { "LLEN", q.results, NULL },
                                   NULL, &error);
  g_print ("done: %d of %d jobs processed, %" G_GINT64_FORMAT " results stored, %d failures\n",
           g_atomic_int_get (&q.done), total,
           len != NULL ? redis_reply_get_integer (len) : -1, g_atomic_int_get (&q.failed));

  /* Clean up; how many keys DEL removed does not matter. */
  {
    RedisReply *deleted = redis_client_command_sync (REDIS_CLIENT (q.pool),
                                                     (const char *[]) { "DEL", q.queue, q.results, NULL },
                                                     NULL, NULL);
    g_clear_pointer (&deleted, redis_reply_unref);
  }
  redis_client_close_sync (REDIS_CLIENT (q.pool), NULL, NULL);
  g_object_unref (q.pool);
  g_free (q.queue);
  g_free (q.results);

  if (len == NULL || g_atomic_int_get (&q.failed) != 0 ||
      g_atomic_int_get (&q.done) != total || redis_reply_get_integer (len) != total)
    return EXIT_FAILURE;
  return EXIT_SUCCESS;
}
