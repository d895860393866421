/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-call-private.h"
#include "redis-error.h"
#include "redis-reply-private.h"
#include "redis-worker-private.h"

/* Commands the library must treat specially, with their flags:
 *
 * - CONNECTION_STATE: they change the state of the connection they run on.
 *   On a shared (multiplexed) pool connection that would leak into other
 *   callers' commands, so the pool sends them only through a lease.
 * - UNSUPPORTED: after them the server no longer answers one reply per
 *   command (push messages, a stream of events, silence, another protocol),
 *   which reply matching cannot survive; they are refused.
 *
 * Looked up on every command, so entries carry their lengths and the
 * comparison starts with the length. */
typedef struct
{
  const char        *name;
  guint8             name_len;
  const char        *sub;
  guint8             sub_len;
  RedisCommandFlags  flags;
} SpecialCommand;

#define STATE REDIS_COMMAND_FLAG_CONNECTION_STATE
#define UNSUPPORTED (REDIS_COMMAND_FLAG_CONNECTION_STATE | REDIS_COMMAND_FLAG_UNSUPPORTED)
#define ENTRY(n, f) { n, sizeof n - 1, NULL, 0, f }
#define SUB_ENTRY(n, s, f) { n, sizeof n - 1, s, sizeof s - 1, f }

static const SpecialCommand special_commands[] = {
  ENTRY ("SELECT", STATE), ENTRY ("WATCH", STATE), ENTRY ("UNWATCH", STATE),
  ENTRY ("MULTI", STATE), ENTRY ("EXEC", STATE), ENTRY ("DISCARD", STATE),
  ENTRY ("AUTH", STATE), ENTRY ("RESET", STATE), ENTRY ("READONLY", STATE),
  ENTRY ("READWRITE", STATE), ENTRY ("SWAPDB", STATE), ENTRY ("QUIT", STATE),
  SUB_ENTRY ("CLIENT", "SETNAME", STATE), SUB_ENTRY ("CLIENT", "TRACKING", STATE),
  SUB_ENTRY ("CLIENT", "NO-EVICT", STATE), SUB_ENTRY ("CLIENT", "NO-TOUCH", STATE),
  SUB_ENTRY ("CLIENT", "REPLY", UNSUPPORTED),
  ENTRY ("SUBSCRIBE", UNSUPPORTED), ENTRY ("PSUBSCRIBE", UNSUPPORTED),
  ENTRY ("SSUBSCRIBE", UNSUPPORTED), ENTRY ("UNSUBSCRIBE", UNSUPPORTED),
  ENTRY ("PUNSUBSCRIBE", UNSUPPORTED), ENTRY ("SUNSUBSCRIBE", UNSUPPORTED),
  ENTRY ("MONITOR", UNSUPPORTED), ENTRY ("HELLO", UNSUPPORTED),
  ENTRY ("SYNC", UNSUPPORTED), ENTRY ("PSYNC", UNSUPPORTED),
};

#undef STATE
#undef UNSUPPORTED
#undef ENTRY
#undef SUB_ENTRY

static gboolean
name_is (const char *name,
         gsize       name_len,
         const char *literal)
{
  return strlen (literal) == name_len && g_ascii_strncasecmp (name, literal, name_len) == 0;
}

static RedisCommandFlags
lookup_special (const char *name,
                gsize       name_len,
                const char *sub,
                gsize       sub_len)
{
  for (gsize i = 0; i < G_N_ELEMENTS (special_commands); i++)
    {
      const SpecialCommand *c = &special_commands[i];

      if (c->name_len != name_len || g_ascii_toupper (name[0]) != c->name[0] ||
          g_ascii_strncasecmp (name, c->name, name_len) != 0)
        continue;
      if (c->sub == NULL)
        return c->flags;
      if (sub != NULL && c->sub_len == sub_len && g_ascii_strncasecmp (sub, c->sub, sub_len) == 0)
        return c->flags;
    }
  return REDIS_COMMAND_FLAG_NONE;
}

/* Seconds as Redis takes them for BLPOP & co. (a decimal number). */
static gint64
seconds_to_ms (const char *text,
               gsize       len)
{
  char buf[64];
  char *end = NULL;
  double v;

  if (len == 0 || len >= sizeof buf)
    return 0;
  memcpy (buf, text, len);
  buf[len] = '\0';
  v = g_ascii_strtod (buf, &end);
  if (end == buf || *end != '\0' || v < 0)
    return 0;
  if (v == 0)
    return -1;
  return (gint64) (v * 1000.0 + 0.5);
}

static gint64
millis (const char *text,
        gsize       len)
{
  char buf[32];
  guint64 v;

  if (len == 0 || len >= sizeof buf)
    return 0;
  memcpy (buf, text, len);
  buf[len] = '\0';
  if (!g_ascii_string_to_unsigned (buf, 10, 0, G_MAXINT64 / 1000, &v, NULL))
    return 0;
  return v == 0 ? -1 : (gint64) v;
}

static RedisCommandFlags
classify (guint         argc,
          const char  **argv,
          const gsize  *lens,
          gint64       *block_ms)
{
  const char *name = argv[0];
  gsize name_len = lens[0];
  const char *sub = argc > 1 ? argv[1] : NULL;
  gsize sub_len = argc > 1 ? lens[1] : 0;

  RedisCommandFlags special;

  *block_ms = 0;

  special = lookup_special (name, name_len, sub, sub_len);
  if (special != REDIS_COMMAND_FLAG_NONE)
    return special;

  /* Every blocking command starts with B, W or X. */
  switch (g_ascii_toupper (name[0]))
    {
    case 'B':
    case 'W':
    case 'X':
      break;
    default:
      return REDIS_COMMAND_FLAG_NONE;
    }

  if (argc >= 3 &&
      (name_is (name, name_len, "BLPOP") || name_is (name, name_len, "BRPOP") ||
       name_is (name, name_len, "BZPOPMIN") || name_is (name, name_len, "BZPOPMAX") ||
       name_is (name, name_len, "BRPOPLPUSH") || name_is (name, name_len, "BLMOVE")))
    {
      *block_ms = seconds_to_ms (argv[argc - 1], lens[argc - 1]);
      return REDIS_COMMAND_FLAG_BLOCKING;
    }

  if (argc >= 2 && (name_is (name, name_len, "BLMPOP") || name_is (name, name_len, "BZMPOP")))
    {
      *block_ms = seconds_to_ms (argv[1], lens[1]);
      return REDIS_COMMAND_FLAG_BLOCKING;
    }

  if (argc >= 3 && (name_is (name, name_len, "WAIT") || name_is (name, name_len, "WAITAOF")))
    {
      *block_ms = millis (argv[argc - 1], lens[argc - 1]);
      return REDIS_COMMAND_FLAG_BLOCKING;
    }

  if (name_is (name, name_len, "XREAD") || name_is (name, name_len, "XREADGROUP"))
    {
      for (guint i = 1; i + 1 < argc; i++)
        {
          if (name_is (argv[i], lens[i], "STREAMS"))
            break;
          if (name_is (argv[i], lens[i], "BLOCK"))
            {
              *block_ms = millis (argv[i + 1], lens[i + 1]);
              return REDIS_COMMAND_FLAG_BLOCKING;
            }
        }
    }

  return REDIS_COMMAND_FLAG_NONE;
}

/* Writes "<n>\r\n" at @p and returns the position after it. */
static guint8 *
append_decimal (guint8 *p,
                guint64 n)
{
  char digits[20];
  int len = 0;

  do
    {
      digits[len++] = '0' + (char) (n % 10);
      n /= 10;
    }
  while (n > 0);
  while (len > 0)
    *p++ = digits[--len];
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

gboolean
redis_encode_command (GByteArray          *out,
                      guint                argc,
                      const char         **argv,
                      const gsize         *lens,
                      RedisCommandFlags   *flags,
                      gint64              *block_ms,
                      char               **name,
                      GError             **error)
{
  guint64 total = 0;

  if (argc == 0)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "A command needs at least its name (argc is 0)");
      return FALSE;
    }

  for (guint i = 0; i < argc; i++)
    {
      if (argv[i] == NULL)
        {
          g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                       "Argument %u of the command is NULL", i);
          return FALSE;
        }
      if (lens[i] > REDIS_MAX_ARGUMENT_BYTES)
        {
          g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                       "Argument %u is %" G_GSIZE_FORMAT " bytes, over the limit of "
                       "%" G_GSIZE_FORMAT " bytes", i, lens[i], REDIS_MAX_ARGUMENT_BYTES);
          return FALSE;
        }
      total += lens[i] + 32;   /* "$<len>\r\n" + "\r\n" */
    }

  if (lens[0] == 0)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "The command name is empty");
      return FALSE;
    }

  /* redisFormatCommandArgv returns an int: stay well below 2 GiB. */
  if (total + 32 > (guint64) G_MAXINT / 2 || argc > (guint) G_MAXINT / 2)
    {
      g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                   "The command is %" G_GUINT64_FORMAT " bytes, over the 1 GiB limit",
                   total);
      return FALSE;
    }

  /* RESP is written directly into @out, sized once: hiredis' formatter
   * (redisFormatCommandArgv) builds each header with sprintf and costs
   * about 2,700 instructions per GET, more than all the rest of the send
   * path; this loop does the same in a few hundred. */
  {
    gsize start = out->len;
    gsize size = 1 + 20 + 2;
    guint8 *p;

    for (guint i = 0; i < argc; i++)
      size += 1 + 20 + 2 + lens[i] + 2;
    g_byte_array_set_size (out, start + size);
    p = out->data + start;

    *p++ = '*';
    p = append_decimal (p, argc);
    for (guint i = 0; i < argc; i++)
      {
        *p++ = '$';
        p = append_decimal (p, lens[i]);
        if (lens[i] > 0)
          memcpy (p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
      }
    g_byte_array_set_size (out, p - out->data);
  }

  if (flags != NULL)
    {
      gint64 ignored;
      *flags = classify (argc, argv, lens, block_ms != NULL ? block_ms : &ignored);
    }
  if (name != NULL)
    {
      char *upper = g_ascii_strup (argv[0], MIN (lens[0], 64));

      /* Keep names printable: they end up in error messages. */
      for (char *p = upper; *p != '\0'; p++)
        if (!g_ascii_isprint (*p))
          *p = '?';
      *name = upper;
    }

  return TRUE;
}

gboolean
redis_encode_strv (GByteArray          *out,
                   const char * const  *argv,
                   RedisCommandFlags   *flags,
                   gint64              *block_ms,
                   char               **name,
                   GError             **error)
{
  guint argc = argv != NULL ? g_strv_length ((char **) argv) : 0;
  gsize stack_lens[16];
  g_autofree gsize *heap_lens = NULL;
  gsize *lens = stack_lens;

  if (argc > G_N_ELEMENTS (stack_lens))
    lens = heap_lens = g_new (gsize, argc);
  for (guint i = 0; i < argc; i++)
    lens[i] = strlen (argv[i]);

  return redis_encode_command (out, argc, (const char **) argv, lens, flags, block_ms, name, error);
}

gboolean
redis_encode_bytes (GByteArray          *out,
                    GBytes             **args,
                    gsize                n_args,
                    RedisCommandFlags   *flags,
                    gint64              *block_ms,
                    char               **name,
                    GError             **error)
{
  const char *stack_argv[16];
  gsize stack_lens[16];
  g_autofree const char **heap_argv = NULL;
  g_autofree gsize *heap_lens = NULL;
  const char **argv = stack_argv;
  gsize *lens = stack_lens;

  if (args == NULL && n_args > 0)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "The argument array is NULL");
      return FALSE;
    }
  if (n_args > G_MAXINT / 2)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "Too many arguments");
      return FALSE;
    }

  if (n_args > G_N_ELEMENTS (stack_argv))
    {
      argv = heap_argv = g_new (const char *, n_args);
      lens = heap_lens = g_new (gsize, n_args);
    }

  for (gsize i = 0; i < n_args; i++)
    {
      gsize len = 0;

      if (args[i] == NULL)
        {
          g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                       "Argument %" G_GSIZE_FORMAT " of the command is NULL", i);
          return FALSE;
        }
      argv[i] = g_bytes_get_data (args[i], &len);
      if (argv[i] == NULL)
        argv[i] = "";
      lens[i] = len;
    }

  return redis_encode_command (out, (guint) n_args, argv, lens, flags, block_ms, name, error);
}

RedisCall *
redis_call_new (RedisCallKind  kind,
                GBytes        *payload,
                guint          n_commands,
                GTask         *task)
{
  RedisCall *self = g_new0 (RedisCall, 1);

  self->ref_count = 1;
  self->kind = kind;
  self->payload = g_bytes_ref (payload);
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
      self->n_replies = 1;   /* the +OK of CLIENT REPLY ON */
      break;
    default:
      g_assert_not_reached ();
    }
  self->replies_left = self->n_replies;
  self->task = task != NULL ? g_object_ref (task) : NULL;
  if (task != NULL && g_task_get_cancellable (task) != NULL)
    self->cancellable = g_object_ref (g_task_get_cancellable (task));
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

void
redis_call_waiter_init (RedisCallWaiter *waiter)
{
  memset (waiter, 0, sizeof *waiter);
  g_mutex_init (&waiter->lock);
  g_cond_init (&waiter->cond);
}

gpointer
redis_call_waiter_wait (RedisCallWaiter  *waiter,
                        GError          **error)
{
  gpointer result;

  g_mutex_lock (&waiter->lock);
  while (!waiter->done)
    g_cond_wait (&waiter->cond, &waiter->lock);
  g_mutex_unlock (&waiter->lock);

  result = waiter->result;
  if (waiter->error != NULL)
    g_propagate_error (error, waiter->error);
  g_mutex_clear (&waiter->lock);
  g_cond_clear (&waiter->cond);
  return result;
}

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
  g_free (self->first_command);
  g_free (self);
}

gboolean
redis_call_is_completed (RedisCall *self)
{
  return g_atomic_int_get (&self->completed) != 0;
}

void
redis_call_set_timeout (RedisCall *self,
                        guint      timeout_ms)
{
  if (timeout_ms == 0 || self->block_ms < 0)
    {
      self->deadline = 0;
      return;
    }
  self->deadline = g_get_monotonic_time () +
                   ((gint64) timeout_ms + self->block_ms) * G_TIME_SPAN_MILLISECOND;
}

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
waiter_deliver (RedisCallWaiter *waiter,
                gpointer         result,
                GDestroyNotify   destroy,
                GError          *error)
{
  g_mutex_lock (&waiter->lock);
  waiter->result = result;
  waiter->result_destroy = destroy;
  waiter->error = error;
  waiter->done = TRUE;
  g_cond_signal (&waiter->cond);
  /* The waiter may be gone as soon as the lock is released. */
  g_mutex_unlock (&waiter->lock);
}

/* Completions made on the I/O thread are batched per destination main
 * context: one idle source (one wake-up of that context) returns every task
 * completed meanwhile, instead of one wake-up per reply. The tasks are
 * returned from inside their own context, so GTask runs their callbacks
 * right away. */
typedef enum
{
  RESULT_POINTER,
  RESULT_TRUE,
  RESULT_ERROR,
} ResultType;

typedef struct
{
  GTask          *task;
  ResultType      type;
  gpointer        result;
  GDestroyNotify  destroy;
  GError         *error;
} Completion;

typedef struct
{
  GMainContext *context;
  GQueue        items;
} CompletionBatch;

static GMutex batches_lock;
static GHashTable *batches;   /* GMainContext* → CompletionBatch*, while scheduled */
/* The batch found last: completions usually go to the same context in a row. */
static CompletionBatch *last_batch;

static void
return_completion (Completion *c)
{
  switch (c->type)
    {
    case RESULT_POINTER:
      g_task_return_pointer (c->task, c->result, c->destroy);
      break;
    case RESULT_TRUE:
      g_task_return_boolean (c->task, TRUE);
      break;
    case RESULT_ERROR:
      g_task_return_error (c->task, c->error);
      break;
    default:
      g_assert_not_reached ();
    }
  g_object_unref (c->task);
}

static gboolean
batch_dispatch_cb (gpointer data)
{
  CompletionBatch *batch = data;
  Completion *c;

  g_mutex_lock (&batches_lock);
  g_hash_table_remove (batches, batch->context);
  if (last_batch == batch)
    last_batch = NULL;
  g_mutex_unlock (&batches_lock);

  while ((c = g_queue_pop_head (&batch->items)) != NULL)
    {
      return_completion (c);
      g_free (c);
    }
  return G_SOURCE_REMOVE;
}

static void
batch_free (gpointer data)
{
  CompletionBatch *batch = data;

  g_assert (g_queue_is_empty (&batch->items));
  g_main_context_unref (batch->context);
  g_free (batch);
}

static void
deliver_task (RedisCall      *self,
              ResultType      type,
              gpointer        result,
              GDestroyNotify  destroy,
              GError         *error)
{
  Completion c = { g_steal_pointer (&self->task), type, result, destroy, error };
  GMainContext *context;
  CompletionBatch *batch;

  if (!redis_worker_is_current ())
    {
      return_completion (&c);
      return;
    }

  context = g_task_get_context (c.task);
  g_mutex_lock (&batches_lock);
  if (batches == NULL)
    batches = g_hash_table_new (NULL, NULL);
  if (last_batch != NULL && last_batch->context == context)
    batch = last_batch;
  else
    batch = g_hash_table_lookup (batches, context);
  if (batch == NULL)
    {
      GSource *source = g_idle_source_new ();

      batch = g_new0 (CompletionBatch, 1);
      batch->context = g_main_context_ref (context);
      g_hash_table_insert (batches, context, batch);
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_static_name (source, "[redispool] completions");
      g_source_set_callback (source, batch_dispatch_cb, batch, batch_free);
      g_source_attach (source, context);
      g_source_unref (source);
    }
  g_queue_push_tail (&batch->items, g_memdup2 (&c, sizeof c));
  last_batch = batch;
  g_mutex_unlock (&batches_lock);
}

static void
deliver_pointer (RedisCall      *self,
                 gpointer        result,
                 GDestroyNotify  destroy)
{
  if (self->waiter != NULL)
    waiter_deliver (g_steal_pointer (&self->waiter), result, destroy, NULL);
  else
    deliver_task (self, RESULT_POINTER, result, destroy, NULL);
}

static void
deliver_error (RedisCall *self,
               GError    *error)
{
  if (self->waiter != NULL)
    waiter_deliver (g_steal_pointer (&self->waiter), NULL, NULL, error);
  else
    deliver_task (self, RESULT_ERROR, NULL, NULL, error);
}

/* Booleans travel as a non-NULL pointer for sync waiters. */
static void
deliver_true (RedisCall *self)
{
  if (self->waiter != NULL)
    waiter_deliver (g_steal_pointer (&self->waiter), GINT_TO_POINTER (1), NULL, NULL);
  else
    deliver_task (self, RESULT_TRUE, NULL, NULL, NULL);
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

  deliver_error (self, error);
  return TRUE;
}

void
redis_call_finish_written (RedisCall *self)
{
  if (claim (self))
    deliver_true (self);
}

static GError *
error_from_reply (RedisReply *reply,
                  int         code)
{
  return g_error_new_literal (REDIS_ERROR, code, redis_reply_get_string (reply, NULL));
}

static void
finish_transaction (RedisCall *self)
{
  RedisReply *exec = g_ptr_array_index (self->replies, self->replies->len - 1);

  switch (redis_reply_get_kind (exec))
    {
    case REDIS_REPLY_KIND_ARRAY:
      deliver_pointer (self, redis_reply_steal_elements (exec),
                       (GDestroyNotify) g_ptr_array_unref);
      return;

    case REDIS_REPLY_KIND_NIL:
      deliver_error (self, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_WATCH_FAILED,
                                                "The transaction did not run: a watched key changed"));
      return;

    case REDIS_REPLY_KIND_ERROR:
      if (g_str_has_prefix (redis_reply_get_string (exec, NULL), "EXECABORT"))
        {
          /* Name the first command the server refused while queueing. */
          for (guint i = 1; i + 1 < self->replies->len; i++)
            {
              RedisReply *queued = g_ptr_array_index (self->replies, i);

              if (redis_reply_get_kind (queued) == REDIS_REPLY_KIND_ERROR)
                {
                  deliver_error (self, g_error_new (REDIS_ERROR, REDIS_ERROR_TRANSACTION_ABORTED,
                                                    "%s (command %u: %s)",
                                                    redis_reply_get_string (exec, NULL), i,
                                                    redis_reply_get_string (queued, NULL)));
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
