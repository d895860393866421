/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-unblock-private.h"

#include "redis-call-private.h"
#include "redis-engine-private.h"
#include "redis-error.h"
#include "redis-reply.h"
#include "redis-worker-private.h"

/* First retry after this, doubling up to the cap while the server answers
 * 0 (not blocked yet); after a 1 the reply of the ended command is on its
 * way, so the next try waits the longest. */
#define FIRST_RETRY_MS 2
#define MAX_RETRY_MS   100

/* A g_rc_box: not atomic, as it is only ever used on the I/O thread. */
struct _RedisUnblocker
{
  gboolean                  stopped;
  gboolean                  in_flight;   /* a CLIENT UNBLOCK awaits its reply */
  GSourceFunc               stopped_func;
  gpointer                  stopped_data;
  GDestroyNotify            stopped_notify;
  RedisEngine              *engine;      /* the side connection */
  char                     *client_id;   /* decimal, for the command */
  guint                     command_timeout_ms;
  gint64                    give_up_at;  /* monotonic µs */
  guint                     retry_ms;
  GSource                  *retry;
  RedisUnblockerFailedFunc  failed;
  gpointer                  failed_data;
};

static RedisUnblocker *
unblocker_ref (RedisUnblocker *self)
{
  return g_rc_box_acquire (self);
}

static void
notify_stopped (RedisUnblocker *self)
{
  GSourceFunc func = g_steal_pointer (&self->stopped_func);

  if (func != NULL)
    {
      func (self->stopped_data);
      if (self->stopped_notify != NULL)
        self->stopped_notify (self->stopped_data);
    }
}

static void
unblocker_clear (RedisUnblocker *self)
{
  notify_stopped (self);
  g_assert (self->retry == NULL);
  redis_engine_unref (self->engine);
  g_free (self->client_id);
}

static void
unblocker_unref (RedisUnblocker *self)
{
  g_rc_box_release_full (self, (GDestroyNotify) unblocker_clear);
}

static void
report_failure (RedisUnblocker *self,
                GError         *error)
{
  RedisUnblockerFailedFunc failed = self->failed;

  if (self->stopped || failed == NULL)
    {
      g_error_free (error);
      return;
    }
  /* Once: the owner stops us from inside the callback. */
  self->failed = NULL;
  failed (error, self->failed_data);
}

static void send_unblock (RedisUnblocker *self);

static gboolean
retry_cb (gpointer data)
{
  RedisUnblocker *self = data;

  g_clear_pointer (&self->retry, g_source_unref);
  send_unblock (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (RedisUnblocker *self,
                guint           delay_ms)
{
  if (g_get_monotonic_time () + (gint64) delay_ms * G_TIME_SPAN_MILLISECOND > self->give_up_at)
    {
      report_failure (self, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_TIMEOUT,
                                                 "the blocked command was still not resolved"));
      return;
    }
  self->retry = g_timeout_source_new (delay_ms);
  g_source_set_static_name (self->retry, "[redispool] unblock retry");
  g_source_set_callback (self->retry, retry_cb, unblocker_ref (self),
                         (GDestroyNotify) unblocker_unref);
  g_source_attach (self->retry, redis_worker_get_context ());
}

static void
unblock_reply_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      data)
{
  RedisUnblocker *self = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisReply) reply = g_task_propagate_pointer (G_TASK (result), &error);

  self->in_flight = FALSE;
  if (self->stopped)
    {
      /* Answered (or failed): nothing of ours can reach the server any
       * more, so the owner may write again. */
      notify_stopped (self);
      redis_engine_close (self->engine, NULL);
    }
  else if (reply == NULL)
    report_failure (self, g_steal_pointer (&error));
  else if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_INTEGER)
    report_failure (self, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_PROTOCOL,
                                               "CLIENT UNBLOCK did not answer with an integer"));
  else if (redis_reply_get_integer (reply) == 1)
    schedule_retry (self, MAX_RETRY_MS);
  else
    {
      schedule_retry (self, self->retry_ms);
      self->retry_ms = MIN (self->retry_ms * 2, MAX_RETRY_MS);
    }
  unblocker_unref (self);
}

static void
send_unblock (RedisUnblocker *self)
{
  g_autoptr(RedisCall) call = NULL;

  if (self->stopped)
    return;

  call = redis_call_new_internal (REDIS_CALL_COMMAND,
                                  (const char * const *[]) {
                                    (const char *[]) { "CLIENT", "UNBLOCK", self->client_id, "ERROR", NULL },
                                    NULL,
                                  },
                                  "CLIENT UNBLOCK", self->command_timeout_ms,
                                  unblock_reply_cb, unblocker_ref (self));
  g_task_set_name (call->task, "[redispool] unblock");
  call->no_retry = TRUE;
  self->in_flight = TRUE;
  if (!redis_engine_submit (self->engine, call))
    redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CONNECTION_LOST,
                                                "the side connection closed"));
}

static void
side_connected_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      data)
{
  RedisUnblocker *self = data;
  GError *error = NULL;

  if (!redis_engine_connect_finish (self->engine, result, &error))
    report_failure (self, error);
  else
    send_unblock (self);
  unblocker_unref (self);
}

RedisUnblocker *
redis_unblocker_start (const RedisOptions       *options,
                       gint64                    client_id,
                       guint                     give_up_ms,
                       RedisUnblockerFailedFunc  failed,
                       gpointer                  user_data)
{
  RedisUnblocker *self = g_rc_box_new0 (RedisUnblocker);
  g_autoptr(RedisOptions) side = redis_options_copy (options);

  g_assert (redis_worker_is_current ());

  /* The side connection only sends CLIENT UNBLOCK: no health check. */
  side->health_check_ms = 0;

  self->client_id = g_strdup_printf ("%" G_GINT64_FORMAT, client_id);
  self->command_timeout_ms = redis_options_get_internal_timeout_ms (options);
  self->give_up_at = g_get_monotonic_time () + (gint64) give_up_ms * G_TIME_SPAN_MILLISECOND;
  self->retry_ms = FIRST_RETRY_MS;
  self->failed = failed;
  self->failed_data = user_data;
  self->engine = redis_engine_new (side, redis_worker_get_context ());
  redis_engine_connect_async (self->engine, NULL, side_connected_cb, unblocker_ref (self));
  return self;
}

void
redis_unblocker_stop (RedisUnblocker *self,
                      GSourceFunc     stopped,
                      gpointer        user_data,
                      GDestroyNotify  notify)
{
  self->stopped = TRUE;
  self->stopped_func = stopped;
  self->stopped_data = user_data;
  self->stopped_notify = notify;
  if (self->retry != NULL)
    {
      g_source_destroy (self->retry);
      g_clear_pointer (&self->retry, g_source_unref);
    }
  /* A CLIENT UNBLOCK already sent could still end whatever the owner
   * writes next: the owner hears it has stopped once it is answered. */
  if (!self->in_flight)
    {
      notify_stopped (self);
      redis_engine_close (self->engine, NULL);
    }
  unblocker_unref (self);
}
