/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-call-private.h"
#include "redis-error.h"
#include "redis-reply-private.h"
#include "redis-text-private.h"

/* ---- building ----------------------------------------------------------- */

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

RedisCall *
redis_call_new_internal (RedisCallKind                kind,
                         const char * const * const  *commands,
                         const char                  *label,
                         guint                        timeout_ms,
                         GAsyncReadyCallback          callback,
                         gpointer                     user_data)
{
  g_autoptr(GByteArray) encoded = g_byte_array_new ();
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GTask) task = NULL;
  guint n_commands = 0;
  RedisCall *self;
  gboolean ok;

  /* The library's own few commands: far under any payload limit. */
  ok = redis_encode_commands (encoded, commands, &n_commands, NULL);
  g_assert (ok);
  payload = g_byte_array_free_to_bytes (g_steal_pointer (&encoded));
  if (callback != NULL)
    task = g_task_new (NULL, NULL, callback, user_data);

  self = redis_call_new (kind, payload, n_commands, task);
  self->label = label;
  redis_call_set_timeout (self, timeout_ms);
  return self;
}

/* ---- the wrappers of a payload ------------------------------------------ */

/* A transaction is "MULTI", the commands, "EXEC". A no-reply call is
 * "CLIENT REPLY OFF", the commands, "CLIENT REPLY ON", then "ECHO <token>":
 * the server answers only the last two, "+OK" and the token, random per
 * call, which no other reply can stand in for; a server that does not
 * implement CLIENT REPLY answers every command, and the engine sees that
 * the second reply is not the token (redis_call_reply_in_step()). The
 * other kinds have no wrapper. */

static const char * const multi_argv[] = { "MULTI", NULL };
static const char * const exec_argv[] = { "EXEC", NULL };
static const char * const reply_off_argv[] = { "CLIENT", "REPLY", "OFF", NULL };
static const char * const reply_on_argv[] = { "CLIENT", "REPLY", "ON", NULL };

gboolean
redis_call_wrap_open (RedisCallKind   kind,
                      GByteArray     *out,
                      GError        **error)
{
  switch (kind)
    {
    case REDIS_CALL_TRANSACTION:
      return redis_encode_strv (out, multi_argv, NULL, NULL, NULL, error);
    case REDIS_CALL_NOREPLY:
      return redis_encode_strv (out, reply_off_argv, NULL, NULL, NULL, error);
    case REDIS_CALL_COMMAND:
    case REDIS_CALL_PIPELINE:
    default:
      return TRUE;
    }
}

gboolean
redis_call_wrap_close (RedisCallKind   kind,
                       GByteArray     *out,
                       char          **noreply_token,
                       GError        **error)
{
  g_autofree char *token = NULL;

  switch (kind)
    {
    case REDIS_CALL_TRANSACTION:
      return redis_encode_strv (out, exec_argv, NULL, NULL, NULL, error);
    case REDIS_CALL_NOREPLY:
      token = g_uuid_string_random ();
      if (!redis_encode_commands (out, (const char * const *[]) {
                                    reply_on_argv,
                                    (const char *[]) { "ECHO", token, NULL },
                                    NULL,
                                  }, NULL, error))
        return FALSE;
      *noreply_token = g_steal_pointer (&token);
      return TRUE;
    case REDIS_CALL_COMMAND:
    case REDIS_CALL_PIPELINE:
    default:
      return TRUE;
    }
}

/* ---- life cycle --------------------------------------------------------- */

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

/* ---- completing: exactly once ------------------------------------------- */

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
deliver_task (RedisCall           *self,
              RedisCompletionType  type,
              gpointer             result,
              GDestroyNotify       destroy,
              GError              *error)
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

  redis_completion_return_task (g_steal_pointer (&self->task), type, result, destroy, error);
}

static void
deliver_pointer (RedisCall      *self,
                 gpointer        result,
                 GDestroyNotify  destroy)
{
  if (self->waiter != NULL)
    redis_call_waiter_deliver (g_steal_pointer (&self->waiter), result, destroy, NULL, NULL);
  else
    deliver_task (self, REDIS_COMPLETION_POINTER, result, destroy, NULL);
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
      partial->n_written = redis_encode_count_whole_commands (self->data, self->len, written,
                                                              1, self->n_commands);
      break;
    case REDIS_CALL_COMMAND:
    case REDIS_CALL_PIPELINE:
    default:
      partial->n_written = redis_encode_count_whole_commands (self->data, self->len, written,
                                                              0, self->n_commands);
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
    redis_call_waiter_deliver (g_steal_pointer (&self->waiter), NULL, NULL, error, partial);
  else
    {
      /* Read by redis_client_get_partial(), on the task's thread once it
       * has completed (the completion hand-off orders the two). */
      if (partial != NULL)
        g_task_set_task_data (self->task, partial, (GDestroyNotify) redis_call_partial_free);
      deliver_task (self, REDIS_COMPLETION_ERROR, NULL, NULL, error);
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
    redis_call_waiter_deliver (g_steal_pointer (&self->waiter), GINT_TO_POINTER (1), NULL, NULL, NULL);
  else
    deliver_task (self, REDIS_COMPLETION_TRUE, NULL, NULL, NULL);
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

/* ---- results built from the replies ------------------------------------- */

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
      /* With a length: the whole text, even when it is not UTF-8. */
      if (g_str_has_prefix (redis_reply_get_string (exec, &(gsize) { 0 }), "EXECABORT"))
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
