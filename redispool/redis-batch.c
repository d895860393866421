/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-batch-private.h"
#include "redis-error.h"

/**
 * RedisBatch:
 *
 * An ordered list of commands for [method@Redis.Client.pipeline_async],
 * [method@Redis.Client.transaction_async] and
 * [method@Redis.Client.noreply_pipeline_async].
 *
 * Commands are encoded when added, so a batch can be sent many times and
 * from any thread once built. An argument list that is not valid (empty,
 * NULL entries, an argument over 512 MiB), or a command that would take the
 * batch over 1 GiB encoded, is refused: the batch remembers the first
 * refusal, and every call that sends the batch then fails with
 * %REDIS_ERROR_INVALID_ARGUMENT and its message.
 *
 * 1 GiB is the most one call may carry, the same as Redis' default
 * `client-query-buffer-limit`: a whole batch, and for a transaction or a
 * no-reply pipeline also its wrapping (`MULTI` … `EXEC`, or
 * `CLIENT REPLY OFF` … `ON` and an `ECHO`), so a batch just under the
 * limit may still be refused when sent that way. Split larger work into
 * several batches.
 *
 * ```c
 * g_autoptr(RedisBatch) batch = redis_batch_new ();
 * redis_batch_add (batch, (const char *[]) { "INCR", "hits", NULL });
 * redis_batch_add (batch, (const char *[]) { "EXPIRE", "hits", "60", NULL });
 * ```
 */

struct _RedisBatch
{
  GObject            parent_instance;

  GMutex             lock;
  GByteArray        *encoded;
  guint              n_commands;
  RedisCommandFlags  flags;
  gint64             block_ms;
  GError            *error;        /* the first refused add() */
};

G_DEFINE_FINAL_TYPE (RedisBatch, redis_batch, G_TYPE_OBJECT)

static void
redis_batch_finalize (GObject *object)
{
  RedisBatch *self = REDIS_BATCH (object);

  g_byte_array_unref (self->encoded);
  g_clear_error (&self->error);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (redis_batch_parent_class)->finalize (object);
}

static void
redis_batch_class_init (RedisBatchClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = redis_batch_finalize;
}

static void
redis_batch_init (RedisBatch *self)
{
  g_mutex_init (&self->lock);
  self->encoded = g_byte_array_new ();
}

/**
 * redis_batch_new:
 *
 * Creates an empty batch.
 *
 * Returns: (transfer full): a new [class@Redis.Batch]
 */
RedisBatch *
redis_batch_new (void)
{
  return g_object_new (REDIS_TYPE_BATCH, NULL);
}

/* Called with the lock held. */
static void
record (RedisBatch        *self,
        gboolean           ok,
        RedisCommandFlags  flags,
        gint64             block_ms,
        GError            *error)
{
  if (!ok)
    {
      if (self->error == NULL)
        g_prefix_error (&error, "Command %u of the batch: ", self->n_commands);
      if (self->error == NULL)
        self->error = error;
      else
        g_error_free (error);
      self->n_commands++;
      return;
    }

  /* Merged over the commands: what each answers with means nothing here. */
  self->flags |= flags & ~REDIS_COMMAND_FLAG_REPLY_MASK;
  if (block_ms < 0 || self->block_ms < 0)
    self->block_ms = -1;
  else
    self->block_ms = MAX (self->block_ms, block_ms);
  self->n_commands++;
}

/**
 * redis_batch_add:
 * @self: a [class@Redis.Batch]
 * @argv: (array zero-terminated=1): the command name followed by its
 *   arguments
 *
 * Appends one command. A command that is not valid, or that would take
 * the batch over 1 GiB encoded, is not added: the batch remembers the error
 * and every call sending it fails with %REDIS_ERROR_INVALID_ARGUMENT.
 *
 * Returns: (transfer none): @self, for chaining
 */
RedisBatch *
redis_batch_add (RedisBatch         *self,
                 const char * const *argv)
{
  RedisCommandFlags flags = 0;
  gint64 block_ms = 0;
  GError *error = NULL;
  gboolean ok;

  g_return_val_if_fail (REDIS_IS_BATCH (self), NULL);

  g_mutex_lock (&self->lock);
  ok = redis_encode_strv (self->encoded, argv, &flags, &block_ms, NULL, &error);
  record (self, ok, flags, block_ms, error);
  g_mutex_unlock (&self->lock);

  return self;
}

/**
 * redis_batch_add_bytes:
 * @self: a [class@Redis.Batch]
 * @args: (array length=n_args): the command name followed by its
 *   arguments, binary-safe
 * @n_args: the number of entries in @args
 *
 * Appends one command given as byte arrays, for keys and values that are
 * not text. Refused like [method@Redis.Batch.add] when not valid or when
 * the batch would then be over 1 GiB encoded.
 *
 * Returns: (transfer none): @self, for chaining
 */
RedisBatch *
redis_batch_add_bytes (RedisBatch  *self,
                       GBytes     **args,
                       gsize        n_args)
{
  RedisCommandFlags flags = 0;
  gint64 block_ms = 0;
  GError *error = NULL;
  gboolean ok;

  g_return_val_if_fail (REDIS_IS_BATCH (self), NULL);

  g_mutex_lock (&self->lock);
  ok = redis_encode_bytes (self->encoded, args, n_args, &flags, &block_ms, NULL, &error);
  record (self, ok, flags, block_ms, error);
  g_mutex_unlock (&self->lock);

  return self;
}

/**
 * redis_batch_get_n_commands:
 * @self: a [class@Redis.Batch]
 *
 * Returns the number of commands added so far.
 *
 * Returns: the number of commands
 */
guint
redis_batch_get_n_commands (RedisBatch *self)
{
  guint n;

  g_return_val_if_fail (REDIS_IS_BATCH (self), 0);

  g_mutex_lock (&self->lock);
  n = self->n_commands;
  g_mutex_unlock (&self->lock);
  return n;
}

GBytes *
redis_batch_encode (RedisBatch         *self,
                    guint              *n_commands,
                    RedisCommandFlags  *flags,
                    gint64             *block_ms,
                    GError            **error)
{
  GBytes *ret = NULL;

  g_mutex_lock (&self->lock);
  if (self->error != NULL)
    g_propagate_error (error, g_error_copy (self->error));
  else if (self->n_commands == 0)
    g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                         "The batch is empty");
  else
    {
      ret = g_bytes_new (self->encoded->data, self->encoded->len);
      *n_commands = self->n_commands;
      *flags = self->flags;
      *block_ms = self->block_ms;
    }
  g_mutex_unlock (&self->lock);
  return ret;
}
