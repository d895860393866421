/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-batch-private.h"
#include "redis-client-private.h"
#include "redis-engine-private.h"
#include "redis-error.h"

/**
 * RedisClient:
 *
 * The API shared by [class@Redis.Connection] and [class@Redis.Pool]: code
 * written against a `RedisClient` works with one connection or with a pool.
 *
 * Every operation comes as `_async` + `_finish` and as a blocking `_sync`,
 * and takes a #GCancellable:
 *
 * - `command` sends one command given as a %NULL-terminated string array;
 *   `command_bytes` takes an array of #GBytes for binary keys and values.
 *   A server error reply becomes a #GError of code %REDIS_ERROR_SERVER.
 * - `pipeline` sends the commands of a [class@Redis.Batch] back to back and
 *   returns all their replies in order; a failing command is a reply of kind
 *   %REDIS_REPLY_KIND_ERROR and the others still arrive. A pipeline whose
 *   connection is lost part-way fails as a whole, and
 *   [method@Redis.Client.get_partial] (after `pipeline_async`) or
 *   [method@Redis.Client.pipeline_partial_sync] give the replies that had
 *   arrived and tell which commands were never sent.
 * - `transaction` wraps a batch in MULTI … EXEC and returns EXEC's replies.
 * - `noreply_command` and `noreply_pipeline` send with replies turned off
 *   (`CLIENT REPLY OFF` … `CLIENT REPLY ON`) and complete once written.
 *   They end with an `ECHO` of a random token that the server must return:
 *   a server that does not implement `CLIENT REPLY` is detected, and its
 *   connection closed with %REDIS_ERROR_PROTOCOL.
 * - `close` stops accepting calls, lets replies in flight arrive (within the
 *   command timeout), then closes.
 *
 * Callbacks run in the thread-default main context of the thread that
 * started the call. Async calls made from the context the object was
 * created in are written and read by that context's loop; sync calls
 * write, poll and read in the calling thread; connecting, timers and calls
 * from other contexts use redispool's own I/O thread (see the threading
 * guide). Sync calls block the calling thread only and iterate no main
 * context, so they work without a main loop, from worker threads, and from
 * inside a main-loop callback. All methods are safe to call from any
 * thread.
 *
 * Possible errors: those of [error@Redis.Error] and %G_IO_ERROR_CANCELLED.
 */

G_DEFINE_INTERFACE (RedisClient, redis_client, G_TYPE_OBJECT)

static void
redis_client_default_init (RedisClientInterface *iface)
{
}

/* ---- sync helper -------------------------------------------------------- */

/* close_sync and the sync constructors run their async twin on a private
 * main context of the calling thread and iterate it until the result
 * arrives; the I/O itself runs on the I/O thread (a call from a context
 * that is not the object's home), so nothing the caller's other contexts do
 * matters. The context is cached per thread. */
static GPrivate sync_context_key = G_PRIVATE_INIT ((GDestroyNotify) g_main_context_unref);

void
redis_sync_call_begin (RedisSyncCall *sync)
{
  GMainContext *context = g_private_get (&sync_context_key);

  /* A nested sync call on the same thread (from a callback dispatched
   * while waiting) must not share the context it is dispatched from. */
  if (context == NULL || g_main_context_is_owner (context))
    {
      context = g_main_context_new ();
      if (g_private_get (&sync_context_key) == NULL)
        g_private_set (&sync_context_key, g_main_context_ref (context));
    }
  else
    g_main_context_ref (context);

  sync->context = context;
  sync->result = NULL;
  g_main_context_push_thread_default (context);
}

void
redis_sync_call_store (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  RedisSyncCall *sync = user_data;

  sync->result = g_object_ref (result);
}

void
redis_sync_call_wait (RedisSyncCall *sync)
{
  while (sync->result == NULL)
    g_main_context_iteration (sync->context, TRUE);
}

void
redis_sync_call_end (RedisSyncCall *sync)
{
  g_main_context_pop_thread_default (sync->context);
  g_main_context_unref (sync->context);
  g_clear_object (&sync->result);
}

gboolean
redis_sync_initable_init (GInitable     *initable,
                          GCancellable  *cancellable,
                          GError       **error)
{
  RedisSyncCall sync;
  gboolean ret;

  redis_sync_call_begin (&sync);
  g_async_initable_init_async (G_ASYNC_INITABLE (initable), G_PRIORITY_DEFAULT,
                               cancellable, redis_sync_call_store, &sync);
  redis_sync_call_wait (&sync);
  ret = g_async_initable_init_finish (G_ASYNC_INITABLE (initable), sync.result, error);
  redis_sync_call_end (&sync);
  return ret;
}

/* ---- submission --------------------------------------------------------- */

#define UNSUPPORTED_MESSAGE \
  "after it the server no longer answers one reply per command (SUBSCRIBE, " \
  "MONITOR, CLIENT REPLY, REPLCONF, SCRIPT DEBUG, HELLO… are refused); for " \
  "pub/sub, use a RedisSubscriber (redis_subscriber_new_async(), " \
  "redis_pool_create_subscriber())"

/* Payloads up to this size are copied into their call; a larger one keeps
 * the buffer it was encoded in (no copy), and the thread gets a new one. */
#define SCRATCH_MAX (16 * 1024)

static GPrivate scratch_key = G_PRIVATE_INIT ((GDestroyNotify) g_byte_array_unref);

static GByteArray *
take_scratch (void)
{
  GByteArray *scratch = g_private_get (&scratch_key);

  if (scratch == NULL)
    return g_byte_array_sized_new (256);
  g_private_set (&scratch_key, NULL);
  return scratch;
}

static void
give_back_scratch (GByteArray *scratch)
{
  /* Nothing of a command (an AUTH on a lease…) stays behind in it. */
  explicit_bzero (scratch->data, scratch->len);
  g_byte_array_set_size (scratch, 0);
  g_private_replace (&scratch_key, scratch);
}

/* The arguments of one command, in either of its public forms. Built by
 * the public functions with ARGS_STRV() or ARGS_BYTES(). */
typedef struct
{
  const char * const  *argv;     /* ARGS_STRV: zero-terminated */
  GBytes             **args;     /* ARGS_BYTES: @n_args of them */
  gsize                n_args;
  gboolean             is_bytes;
} RedisArgs;

#define ARGS_STRV(v)      (&(const RedisArgs) { .argv = (v) })
#define ARGS_BYTES(a, n)  (&(const RedisArgs) { .args = (a), .n_args = (n), .is_bytes = TRUE })

/* Builds the call for one command (no completion target yet), or fails
 * with INVALID_ARGUMENT before anything reaches a connection. */
static RedisCall *
build_argv_call (RedisCallKind     kind,
                 const RedisArgs  *cmd,
                 GError          **error)
{
  g_autoptr(GByteArray) encoded = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autofree char *token = NULL;
  RedisCommandFlags flags = 0;
  gint64 block_ms = 0;
  RedisCall *call;
  gboolean ok;

  /* A single command is encoded in a buffer of the thread, kept between
   * calls, and copied into the call's own block: one allocation per call.
   * Only a no-reply call has a wrapper (the per-command path makes no call
   * for it). */
  encoded = kind == REDIS_CALL_COMMAND ? take_scratch () : g_byte_array_new ();
  if (kind == REDIS_CALL_NOREPLY && !redis_call_wrap_open (kind, encoded, error))
    return NULL;

  if (cmd->is_bytes)
    ok = redis_encode_bytes (encoded, cmd->args, cmd->n_args, &flags, &block_ms, NULL, error);
  else
    ok = redis_encode_strv (encoded, cmd->argv, &flags, &block_ms, NULL, error);
  if (!ok)
    return NULL;

  if (flags & REDIS_COMMAND_FLAG_UNSUPPORTED)
    {
      g_autofree char *name = redis_encode_dup_name (encoded->data, encoded->len,
                                                     kind == REDIS_CALL_NOREPLY ? 1 : 0);

      g_set_error (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                   "This %s command is not supported: " UNSUPPORTED_MESSAGE, name);
      return NULL;
    }

  if (kind == REDIS_CALL_NOREPLY && !redis_call_wrap_close (kind, encoded, &token, error))
    return NULL;

  if (kind == REDIS_CALL_COMMAND && encoded->len <= SCRATCH_MAX)
    {
      call = redis_call_new_inline (kind, encoded->data, encoded->len, 1);
      give_back_scratch (g_steal_pointer (&encoded));
    }
  else
    {
      payload = g_byte_array_free_to_bytes (g_steal_pointer (&encoded));
      call = redis_call_new (kind, payload, 1, NULL);
    }
  call->flags = flags;
  call->block_ms = block_ms;
  call->noreply_token = g_steal_pointer (&token);
  return call;
}

static RedisCall *
build_batch_call (RedisCallKind   kind,
                  RedisBatch     *batch,
                  GError        **error)
{
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autofree char *token = NULL;
  RedisCommandFlags flags = 0;
  gint64 block_ms = 0;
  guint n_commands = 0;
  const guint8 *data;
  gsize len;
  RedisCall *call;

  if (batch == NULL)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "The batch is NULL");
      return NULL;
    }

  body = redis_batch_encode (batch, &n_commands, &flags, &block_ms, error);
  if (body == NULL)
    return NULL;

  if (flags & REDIS_COMMAND_FLAG_UNSUPPORTED)
    {
      g_set_error_literal (error, REDIS_ERROR, REDIS_ERROR_INVALID_ARGUMENT,
                           "The batch holds a command that is not supported: "
                           UNSUPPORTED_MESSAGE);
      return NULL;
    }

  data = g_bytes_get_data (body, &len);
  if (kind == REDIS_CALL_PIPELINE)
    {
      /* Within the limit when built; checked against the limit in force. */
      if (!redis_encode_check_payload (len, error))
        return NULL;
      payload = g_bytes_ref (body);
    }
  else
    {
      /* The body is at most the payload limit (1 GiB): no 32-bit wrap. */
      g_autoptr(GByteArray) encoded = g_byte_array_sized_new ((guint) MIN (len + 128, G_MAXUINT));

      if (!redis_call_wrap_open (kind, encoded, error) ||
          !redis_encode_append (encoded, data, len, error) ||
          !redis_call_wrap_close (kind, encoded, &token, error))
        return NULL;
      payload = g_byte_array_free_to_bytes (g_steal_pointer (&encoded));
    }

  /* Inside MULTI nothing blocks: a blocking command runs as a non-blocking one. */
  if (kind == REDIS_CALL_TRANSACTION)
    {
      flags &= ~REDIS_COMMAND_FLAG_BLOCKING;
      block_ms = 0;
    }

  call = redis_call_new (kind, payload, n_commands, NULL);
  call->flags = flags;
  call->block_ms = block_ms;
  call->noreply_token = g_steal_pointer (&token);
  return call;
}

/* Async: the call completes through a GTask in the caller's context. */
static void
submit_async (RedisClient         *self,
              RedisCall           *call,
              GError              *error,
              GCancellable        *cancellable,
              GAsyncReadyCallback  callback,
              gpointer             user_data,
              gpointer             source_tag)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  /* The function, not GLib's macro: that one would also copy a name
   * string into every task, and names cost an allocation per call. */
  (g_task_set_source_tag) (task, source_tag);
  /* The engine decides what a cancellation means: a blocking command the
   * server served before its wait was ended returns its reply (GIO allows
   * an operation that completed to succeed), so GTask must not turn every
   * result of a cancelled call into CANCELLED. */
  g_task_set_check_cancellable (task, FALSE);

  if (call == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    {
      redis_call_unref (call);
      return;
    }

  call->task = g_object_ref (task);
  if (cancellable != NULL)
    call->cancellable = g_object_ref (cancellable);
  REDIS_CLIENT_GET_IFACE (self)->submit (self, call);
  redis_call_unref (call);
}

/* Sync: the calling thread drives the I/O of its call itself when the
 * connection it went to can take it now (written, polled and read here);
 * otherwise (no connection yet, a dedicated one being opened) it waits for
 * the I/O thread. No main context is involved either way. */
static gpointer
submit_sync_partial (RedisClient       *self,
                     RedisCall         *call,
                     GCancellable      *cancellable,
                     RedisCallPartial **partial,
                     GError           **error)
{
  RedisCallWaiter waiter;
  gpointer engine;

  if (call == NULL)
    return NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      redis_call_unref (call);
      return NULL;
    }

  redis_call_waiter_init (&waiter);
  call->waiter = &waiter;
  if (cancellable != NULL)
    call->cancellable = g_object_ref (cancellable);
  call->drive_engine = REDIS_CALL_DRIVE_OFFERED;
  REDIS_CLIENT_GET_IFACE (self)->submit (self, call);

  /* Taken back if no engine took it (queued, or failed already). */
  if (!g_atomic_pointer_compare_and_exchange (&call->drive_engine, REDIS_CALL_DRIVE_OFFERED, NULL))
    {
      engine = g_atomic_pointer_get (&call->drive_engine);
      redis_engine_drive (engine, call, &waiter);
      redis_engine_unref (engine);
    }
  redis_call_unref (call);
  return redis_call_waiter_wait_partial (&waiter, partial, error);
}

static gpointer
submit_sync (RedisClient   *self,
             RedisCall     *call,
             GCancellable  *cancellable,
             GError       **error)
{
  return submit_sync_partial (self, call, cancellable, NULL, error);
}

static void
start_argv (RedisClient         *self,
            RedisCallKind        kind,
            const RedisArgs     *cmd,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data,
            gpointer             source_tag)
{
  GError *error = NULL;
  RedisCall *call = build_argv_call (kind, cmd, &error);

  submit_async (self, call, error, cancellable, callback, user_data, source_tag);
}

static void
start_batch (RedisClient         *self,
             RedisCallKind        kind,
             RedisBatch          *batch,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data,
             gpointer             source_tag)
{
  GError *error = NULL;
  RedisCall *call = build_batch_call (kind, batch, &error);

  submit_async (self, call, error, cancellable, callback, user_data, source_tag);
}

/* ---- command ------------------------------------------------------------ */

/**
 * redis_client_command_async:
 * @self: a [iface@Redis.Client]
 * @argv: (array zero-terminated=1): the command name followed by its arguments
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply has arrived
 * @user_data: data for @callback
 *
 * Sends one command. @callback runs in the thread-default main context of
 * the caller; finish with [method@Redis.Client.command_finish].
 *
 * A %NULL or empty @argv, an argument over 512 MiB or a command over 1 GiB
 * encoded fails with %REDIS_ERROR_INVALID_ARGUMENT without touching the
 * connection. Commands that break the one-reply-per-command flow
 * (SUBSCRIBE, MONITOR, CLIENT REPLY, REPLCONF, SCRIPT DEBUG, HELLO…) are
 * refused the same way.
 *
 * Errors: not sent, so safe to retry ([func@Redis.Error.is_retry_safe]):
 * %REDIS_ERROR_INVALID_ARGUMENT, %REDIS_ERROR_CLOSED,
 * %REDIS_ERROR_SEND_TIMEOUT, and on a pool %REDIS_ERROR_QUEUE_FULL (no
 * live connection, too many calls waiting) or, for a blocking command,
 * %REDIS_ERROR_POOL_EXHAUSTED. Written, so it may have run:
 * %REDIS_ERROR_SERVER (the server's error reply), %REDIS_ERROR_TIMEOUT,
 * %REDIS_ERROR_CONNECTION_LOST, %REDIS_ERROR_PROTOCOL,
 * %REDIS_ERROR_REPLY_TOO_LARGE, and %G_IO_ERROR_CANCELLED. See
 * [Errors](errors.html).
 *
 * ```c
 * #include <redispool.h>
 *
 * static void
 * got_reply (GObject *source, GAsyncResult *result, gpointer user_data)
 * {
 *   g_autoptr(GError) error = NULL;
 *   g_autoptr(RedisReply) reply =
 *     redis_client_command_finish (REDIS_CLIENT (source), result, &error);
 *
 *   if (reply == NULL)
 *     g_printerr ("INCR failed: %s\n", error->message);
 *   else
 *     g_print ("hits = %" G_GINT64_FORMAT "\n",
 *              redis_reply_get_integer (reply));
 *   g_main_loop_quit (user_data);
 * }
 *
 * int
 * main (void)
 * {
 *   g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
 *   g_autoptr(RedisPool) pool =
 *     redis_pool_new_sync ("redis://127.0.0.1:6379/0", NULL, NULL);
 *
 *   if (pool == NULL)
 *     return 1;
 *   redis_client_command_async (REDIS_CLIENT (pool),
 *                               (const char *[]) { "INCR", "hits", NULL },
 *                               NULL, got_reply, loop);
 *   g_main_loop_run (loop);
 *   return 0;
 * }
 * ```
 *
 * ```python
 * loop = GLib.MainLoop()
 *
 * def got_reply(client, result):
 *     print('hits =', client.command_finish(result).get_integer())
 *     loop.quit()
 *
 * pool.command_async(['INCR', 'hits'], None, got_reply)
 * loop.run()
 * ```
 */
void
redis_client_command_async (RedisClient         *self,
                            const char * const  *argv,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (REDIS_IS_CLIENT (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  start_argv (self, REDIS_CALL_COMMAND, ARGS_STRV (argv), cancellable, callback,
              user_data, redis_client_command_async);
}

/**
 * redis_client_command_finish:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Client.command_async].
 *
 * Returns: (transfer full): the reply, or %NULL with @error set; an error
 *   reply from the server is %REDIS_ERROR_SERVER with the server's text
 */
RedisReply *
redis_client_command_finish (RedisClient   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * redis_client_command_sync:
 * @self: a [iface@Redis.Client]
 * @argv: (array zero-terminated=1): the command name followed by its arguments
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Sends one command and blocks the calling thread until its reply arrives
 * or its deadline passes.
 *
 * Errors: those of [method@Redis.Client.command_async]; an error reply of
 * the server is %REDIS_ERROR_SERVER, which is not retry-safe (the command
 * ran).
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisReply) reply =
 *   redis_client_command_sync (REDIS_CLIENT (pool),
 *                              (const char *[]) { "SET", "k", "v", NULL },
 *                              NULL, &error);
 *
 * if (reply == NULL)
 *   g_printerr ("SET failed: %s\n", error->message);
 * ```
 *
 * ```python
 * pool.command_sync(['SET', 'k', 'v'], None)
 * try:
 *     pool.command_sync(['INCR', 'k'], None)   # not a number
 * except GLib.Error as e:
 *     assert e.matches(Redis.Error.quark(), Redis.Error.SERVER)
 *     assert not Redis.Error.is_retry_safe(e)
 * ```
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 */
RedisReply *
redis_client_command_sync (RedisClient         *self,
                           const char * const  *argv,
                           GCancellable        *cancellable,
                           GError             **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return submit_sync (self, build_argv_call (REDIS_CALL_COMMAND, ARGS_STRV (argv), error),
                      cancellable, error);
}

/* ---- command_bytes ------------------------------------------------------ */

/**
 * redis_client_command_bytes_async:
 * @self: a [iface@Redis.Client]
 * @args: (array length=n_args): the command name followed by its arguments
 * @n_args: the number of entries in @args
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the reply has arrived
 * @user_data: data for @callback
 *
 * Like [method@Redis.Client.command_async], with binary-safe arguments.
 *
 * Errors: those of [method@Redis.Client.command_async].
 */
void
redis_client_command_bytes_async (RedisClient          *self,
                                  GBytes              **args,
                                  gsize                 n_args,
                                  GCancellable         *cancellable,
                                  GAsyncReadyCallback   callback,
                                  gpointer              user_data)
{
  g_return_if_fail (REDIS_IS_CLIENT (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  start_argv (self, REDIS_CALL_COMMAND, ARGS_BYTES (args, n_args), cancellable, callback,
              user_data, redis_client_command_bytes_async);
}

/**
 * redis_client_command_bytes_finish:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Client.command_bytes_async].
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 */
RedisReply *
redis_client_command_bytes_finish (RedisClient   *self,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * redis_client_command_bytes_sync:
 * @self: a [iface@Redis.Client]
 * @args: (array length=n_args): the command name followed by its arguments
 * @n_args: the number of entries in @args
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Like [method@Redis.Client.command_sync], with binary-safe arguments.
 *
 * Errors: those of [method@Redis.Client.command_async].
 *
 * ```python
 * key = GLib.Bytes(b'k\x00\xff')
 * pool.command_bytes_sync([GLib.Bytes(b'SET'), key, GLib.Bytes(b'v')], None)
 * reply = pool.command_bytes_sync([GLib.Bytes(b'GET'), key], None)
 * assert reply.get_bytes().get_data() == b'v'
 * ```
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 */
RedisReply *
redis_client_command_bytes_sync (RedisClient   *self,
                                 GBytes       **args,
                                 gsize          n_args,
                                 GCancellable  *cancellable,
                                 GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return submit_sync (self, build_argv_call (REDIS_CALL_COMMAND, ARGS_BYTES (args, n_args), error),
                      cancellable, error);
}

/* ---- pipeline ----------------------------------------------------------- */

/**
 * redis_client_pipeline_async:
 * @self: a [iface@Redis.Client]
 * @batch: the commands
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when all replies have arrived
 * @user_data: data for @callback
 *
 * Sends the commands of @batch back to back on one connection and collects
 * their replies in order. A command that fails gives a reply of kind
 * %REDIS_REPLY_KIND_ERROR; the others are not affected.
 *
 * Errors: those of [method@Redis.Client.command_async], for the pipeline
 * as a whole, except %REDIS_ERROR_SERVER (an error reply is one of the
 * replies). A batch over the size limits is %REDIS_ERROR_INVALID_ARGUMENT.
 * After %REDIS_ERROR_CONNECTION_LOST, %REDIS_ERROR_TIMEOUT or a
 * cancellation, [method@Redis.Client.get_partial] tells which commands
 * were answered, may have run, or were never sent. See
 * [method@Redis.Client.pipeline_sync] for an example.
 */
void
redis_client_pipeline_async (RedisClient         *self,
                             RedisBatch          *batch,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (REDIS_IS_CLIENT (self));
  g_return_if_fail (batch == NULL || REDIS_IS_BATCH (batch));

  start_batch (self, REDIS_CALL_PIPELINE, batch, cancellable, callback, user_data,
               redis_client_pipeline_async);
}

/**
 * redis_client_pipeline_finish:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Client.pipeline_async].
 *
 * Returns: (transfer container) (element-type RedisReply): one reply per
 *   command, in order, or %NULL with @error set
 */
GPtrArray *
redis_client_pipeline_finish (RedisClient   *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * redis_client_pipeline_sync:
 * @self: a [iface@Redis.Client]
 * @batch: the commands
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of [method@Redis.Client.pipeline_async].
 *
 * Errors: those of [method@Redis.Client.pipeline_async];
 * [method@Redis.Client.pipeline_partial_sync] also returns what a failed
 * pipeline got done.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisBatch) batch = redis_batch_new ();
 * g_autoptr(GPtrArray) replies = NULL;
 *
 * redis_batch_add (batch, (const char *[]) { "SET", "a", "1", NULL });
 * redis_batch_add (batch, (const char *[]) { "INCR", "a", NULL });
 * replies = redis_client_pipeline_sync (REDIS_CLIENT (pool), batch,
 *                                       NULL, &error);
 * if (replies == NULL)
 *   g_printerr ("pipeline failed: %s\n", error->message);
 * else
 *   g_print ("a = %" G_GINT64_FORMAT "\n",
 *            redis_reply_get_integer (g_ptr_array_index (replies, 1)));
 * ```
 *
 * ```python
 * batch = Redis.Batch()
 * batch.add(['SET', 'a', '1'])
 * batch.add(['INCR', 'a'])
 * batch.add(['LPUSH', 'a', 'x'])   # an error reply, not an exception
 * replies = pool.pipeline_sync(batch, None)
 * assert replies[1].get_integer() == 2
 * assert replies[2].get_kind() == Redis.ReplyKind.ERROR
 * ```
 *
 * Returns: (transfer container) (element-type RedisReply): one reply per
 *   command, in order, or %NULL with @error set
 */
GPtrArray *
redis_client_pipeline_sync (RedisClient   *self,
                            RedisBatch    *batch,
                            GCancellable  *cancellable,
                            GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return submit_sync (self, build_batch_call (REDIS_CALL_PIPELINE, batch, error), cancellable, error);
}

/**
 * redis_client_pipeline_partial_sync:
 * @self: a [iface@Redis.Client]
 * @batch: the commands
 * @cancellable: (nullable): a #GCancellable
 * @failure: (out) (optional) (nullable) (transfer full): return location
 *   for the error the pipeline failed with, or %NULL
 * @n_written: (out) (optional): return location for the number of
 *   commands of @batch that were written whole
 *
 * Like [method@Redis.Client.pipeline_sync], but a pipeline that fails
 * still returns what it got done: the replies that arrived before the
 * failure, and how many commands were written. It never throws in the
 * bindings (the error is an out argument, @failure), so that Python, GJS
 * and Vala callers get the partial results too; C callers can use it
 * instead of `pipeline_sync` where a cut pipeline matters.
 *
 * On success, @failure is left %NULL, @n_written is the number of
 * commands of @batch and the result holds one reply per command. On
 * failure, @failure is set (the error `pipeline_sync` fails with: for
 * example %REDIS_ERROR_CONNECTION_LOST if anything was written,
 * %REDIS_ERROR_CLOSED if nothing was), and for the commands of @batch, in
 * order:
 *
 * - the first `len` (the length of the result) have their replies in the
 *   result: they ran, and a command the server refused is a reply of kind
 *   %REDIS_REPLY_KIND_ERROR as usual;
 * - the next ones, up to @n_written, were written but their replies did
 *   not arrive: they may have run (outcome unknown);
 * - the others were never written: they did not run and are safe to send
 *   again.
 *
 * So `len` ≤ @n_written ≤ the number of commands. See
 * [method@Redis.Client.get_partial] for the same after
 * [method@Redis.Client.pipeline_async].
 *
 * Returns: (transfer container) (element-type RedisReply): the replies,
 *   one per command on success; on failure, those that arrived (possibly
 *   none)
 */
GPtrArray *
redis_client_pipeline_partial_sync (RedisClient   *self,
                                    RedisBatch    *batch,
                                    GCancellable  *cancellable,
                                    GError       **failure,
                                    guint         *n_written)
{
  RedisCallPartial *partial = NULL;
  GError *error = NULL;
  GPtrArray *replies;

  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (failure == NULL || *failure == NULL, NULL);

  replies = submit_sync_partial (self, build_batch_call (REDIS_CALL_PIPELINE, batch, &error),
                                 cancellable, &partial, &error);
  if (replies != NULL)
    {
      if (n_written != NULL)
        *n_written = replies->len;
      return replies;
    }

  /* Failed: what it got done (none when it was refused before it was
   * handed to a connection, or cancelled first: nothing was written). */
  if (partial != NULL && partial->replies != NULL)
    replies = g_steal_pointer (&partial->replies);
  else
    replies = g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref);
  if (n_written != NULL)
    *n_written = partial != NULL ? partial->n_written : 0;
  g_clear_pointer (&partial, redis_call_partial_free);
  g_propagate_error (failure, error);
  return replies;
}

/**
 * redis_client_get_partial:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult of a call of @self, given to its callback
 * @n_written: (out) (optional): return location for the number of
 *   commands of the call that were written whole
 *
 * What a call that failed got done before it failed. Call it on the
 * result of a failed [method@Redis.Client.pipeline_async] (after, or
 * instead of, [method@Redis.Client.pipeline_finish]) to learn, for each
 * command of the batch, whether its reply arrived, whether it may have
 * run, or whether it was never sent. It does not throw, so it works from
 * the bindings, where the error of `_finish` discards everything else.
 *
 * For the commands of the call, in order:
 *
 * - the first `len` (the length of the result) have their replies in the
 *   result, as `pipeline_finish` would have returned them;
 * - the next ones, up to @n_written, were written but got no reply: they
 *   may have run (outcome unknown);
 * - the others were never written: they did not run and are safe to send
 *   again.
 *
 * So `len` ≤ @n_written ≤ the number of commands. A pipeline cut
 * mid-stream fails with %REDIS_ERROR_CONNECTION_LOST as before; this tells
 * which of its commands that applies to. The same holds after a timeout
 * or a cancellation: the replies that had arrived by then are here.
 *
 * It also works on the results of the other calls, which return no
 * replies here:
 *
 * - [method@Redis.Client.transaction_async]: EXEC answers all or nothing,
 *   so there are only two outcomes. Either EXEC was written whole
 *   (@n_written is the number of commands): the transaction may have run,
 *   entirely or not at all. Or it was not (@n_written is 0): the server
 *   runs nothing of a transaction before EXEC and drops it with the
 *   connection, so nothing ran and it is safe to send again.
 * - [method@Redis.Client.noreply_pipeline_async] and
 *   [method@Redis.Client.noreply_command_async]: there are no replies;
 *   the first @n_written commands were written whole and may have run,
 *   the others did not run.
 * - [method@Redis.Client.command_async] and
 *   [method@Redis.Client.command_bytes_async]: @n_written is 1 if the
 *   command was written whole, 0 if not (then it did not run, even when
 *   the error is %REDIS_ERROR_CONNECTION_LOST: part of it was written).
 *
 * Where the library cannot tell how much of a written call went out, it
 * counts all of it as written: @n_written never understates.
 *
 * Returns: (transfer container) (element-type RedisReply) (nullable): the
 *   replies that arrived before the call failed (possibly none), or %NULL
 *   if the call did not fail (then @n_written is 0)
 */
GPtrArray *
redis_client_get_partial (RedisClient  *self,
                          GAsyncResult *result,
                          guint        *n_written)
{
  RedisCallPartial *partial;

  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  if (n_written != NULL)
    *n_written = 0;
  if (!g_task_had_error (G_TASK (result)))
    return NULL;

  /* Set by the call's failure (redis-call.c); none when the call was
   * refused before it was sent. */
  partial = g_task_get_task_data (G_TASK (result));
  if (partial == NULL)
    return g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref);
  if (n_written != NULL)
    *n_written = partial->n_written;
  if (partial->replies != NULL)
    return g_ptr_array_ref (partial->replies);
  return g_ptr_array_new_with_free_func ((GDestroyNotify) redis_reply_unref);
}

/* ---- transaction -------------------------------------------------------- */

/**
 * redis_client_transaction_async:
 * @self: a [iface@Redis.Client]
 * @batch: the commands
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when EXEC has answered
 * @user_data: data for @callback
 *
 * Runs the commands of @batch as a transaction: MULTI, the commands and EXEC
 * are written together on one connection.
 *
 * If the server refuses a command while queueing, nothing runs and the call
 * fails with %REDIS_ERROR_TRANSACTION_ABORTED. If a key watched on the same
 * connection changed (see [method@Redis.Pool.acquire_async]), it fails with
 * %REDIS_ERROR_WATCH_FAILED.
 *
 * Errors: %REDIS_ERROR_TRANSACTION_ABORTED and %REDIS_ERROR_WATCH_FAILED
 * (nothing ran, retry-safe), and those of
 * [method@Redis.Client.pipeline_async]. A transaction cut after EXEC was
 * written ran entirely or not at all; [method@Redis.Client.get_partial]
 * tells whether EXEC was written. See
 * [method@Redis.Client.transaction_sync] for an example.
 */
void
redis_client_transaction_async (RedisClient         *self,
                                RedisBatch          *batch,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (REDIS_IS_CLIENT (self));
  g_return_if_fail (batch == NULL || REDIS_IS_BATCH (batch));

  start_batch (self, REDIS_CALL_TRANSACTION, batch, cancellable, callback, user_data,
               redis_client_transaction_async);
}

/**
 * redis_client_transaction_finish:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Client.transaction_async].
 *
 * Returns: (transfer container) (element-type RedisReply): EXEC's replies,
 *   one per command (a command that failed while running is a reply of kind
 *   %REDIS_REPLY_KIND_ERROR), or %NULL with @error set
 */
GPtrArray *
redis_client_transaction_finish (RedisClient   *self,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * redis_client_transaction_sync:
 * @self: a [iface@Redis.Client]
 * @batch: the commands
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of [method@Redis.Client.transaction_async].
 *
 * Errors: those of [method@Redis.Client.transaction_async].
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(RedisBatch) batch = redis_batch_new ();
 * g_autoptr(GPtrArray) replies = NULL;
 *
 * redis_batch_add (batch, (const char *[]) { "INCR", "visits", NULL });
 * redis_batch_add (batch,
 *                  (const char *[]) { "EXPIRE", "visits", "60", NULL });
 * replies = redis_client_transaction_sync (REDIS_CLIENT (pool), batch,
 *                                          NULL, &error);
 * if (replies == NULL)
 *   g_printerr ("transaction failed: %s\n", error->message);
 * ```
 *
 * ```python
 * batch = Redis.Batch()
 * batch.add(['INCR', 'visits'])
 * batch.add(['EXPIRE', 'visits', '60'])
 * visits, expire = pool.transaction_sync(batch, None)
 * print(visits.get_integer(), expire.get_integer())
 * ```
 *
 * Returns: (transfer container) (element-type RedisReply): EXEC's replies,
 *   or %NULL with @error set
 */
GPtrArray *
redis_client_transaction_sync (RedisClient   *self,
                               RedisBatch    *batch,
                               GCancellable  *cancellable,
                               GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return submit_sync (self, build_batch_call (REDIS_CALL_TRANSACTION, batch, error), cancellable, error);
}

/* ---- noreply ------------------------------------------------------------ */

/**
 * redis_client_noreply_command_async:
 * @self: a [iface@Redis.Client]
 * @argv: (array zero-terminated=1): the command name followed by its arguments
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the command is written
 * @user_data: data for @callback
 *
 * Sends one command with replies turned off (`CLIENT REPLY OFF` … `ON`):
 * the server sends nothing back for it, and the call completes once the
 * command is written to the socket. The connection stays in step: the next
 * command still gets its own reply. The payload ends with an `ECHO` of a
 * random token; a server that answers the command anyway (one that does not
 * implement `CLIENT REPLY`) is detected by it, and the connection closes
 * with %REDIS_ERROR_PROTOCOL rather than give its replies to later calls.
 *
 * Errors: those of [method@Redis.Client.command_async], except
 * %REDIS_ERROR_SERVER: the server's answer is not read.
 */
void
redis_client_noreply_command_async (RedisClient         *self,
                                    const char * const  *argv,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_return_if_fail (REDIS_IS_CLIENT (self));

  start_argv (self, REDIS_CALL_NOREPLY, ARGS_STRV (argv), cancellable, callback,
              user_data, redis_client_noreply_command_async);
}

/**
 * redis_client_noreply_command_finish:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Client.noreply_command_async].
 *
 * Returns: %TRUE once written, %FALSE with @error set
 */
gboolean
redis_client_noreply_command_finish (RedisClient   *self,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * redis_client_noreply_command_sync:
 * @self: a [iface@Redis.Client]
 * @argv: (array zero-terminated=1): the command name followed by its arguments
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of [method@Redis.Client.noreply_command_async].
 *
 * Returns: %TRUE once written, %FALSE with @error set
 */
gboolean
redis_client_noreply_command_sync (RedisClient         *self,
                                   const char * const  *argv,
                                   GCancellable        *cancellable,
                                   GError             **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return submit_sync (self, build_argv_call (REDIS_CALL_NOREPLY, ARGS_STRV (argv), error),
                      cancellable, error) != NULL;
}

/**
 * redis_client_noreply_pipeline_async:
 * @self: a [iface@Redis.Client]
 * @batch: the commands
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the commands are written
 * @user_data: data for @callback
 *
 * Like [method@Redis.Client.noreply_command_async] for all the commands of
 * @batch, written together.
 */
void
redis_client_noreply_pipeline_async (RedisClient         *self,
                                     RedisBatch          *batch,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_return_if_fail (REDIS_IS_CLIENT (self));
  g_return_if_fail (batch == NULL || REDIS_IS_BATCH (batch));

  start_batch (self, REDIS_CALL_NOREPLY, batch, cancellable, callback, user_data,
               redis_client_noreply_pipeline_async);
}

/**
 * redis_client_noreply_pipeline_finish:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Client.noreply_pipeline_async].
 *
 * Returns: %TRUE once written, %FALSE with @error set
 */
gboolean
redis_client_noreply_pipeline_finish (RedisClient   *self,
                                      GAsyncResult  *result,
                                      GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * redis_client_noreply_pipeline_sync:
 * @self: a [iface@Redis.Client]
 * @batch: the commands
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of [method@Redis.Client.noreply_pipeline_async].
 *
 * Returns: %TRUE once written, %FALSE with @error set
 */
gboolean
redis_client_noreply_pipeline_sync (RedisClient   *self,
                                    RedisBatch    *batch,
                                    GCancellable  *cancellable,
                                    GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return submit_sync (self, build_batch_call (REDIS_CALL_NOREPLY, batch, error),
                      cancellable, error) != NULL;
}

/* ---- close -------------------------------------------------------------- */

/**
 * redis_client_close_async:
 * @self: a [iface@Redis.Client]
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once closed
 * @user_data: data for @callback
 *
 * Closes gracefully: new calls fail with %REDIS_ERROR_CLOSED at once, calls
 * already written get their replies (bounded by the command timeout), then
 * the connections close.
 */
void
redis_client_close_async (RedisClient         *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_return_if_fail (REDIS_IS_CLIENT (self));

  REDIS_CLIENT_GET_IFACE (self)->close_async (self, cancellable, callback, user_data);
}

/**
 * redis_client_close_finish:
 * @self: a [iface@Redis.Client]
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Redis.Client.close_async].
 *
 * Returns: %TRUE when closed
 */
gboolean
redis_client_close_finish (RedisClient   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (REDIS_IS_CLIENT (self), FALSE);

  return REDIS_CLIENT_GET_IFACE (self)->close_finish (self, result, error);
}

/**
 * redis_client_close_sync:
 * @self: a [iface@Redis.Client]
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of [method@Redis.Client.close_async].
 *
 * Returns: %TRUE when closed
 */
gboolean
redis_client_close_sync (RedisClient   *self,
                         GCancellable  *cancellable,
                         GError       **error)
{
  RedisSyncCall sync;
  gboolean ret;

  g_return_val_if_fail (REDIS_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  redis_sync_call_begin (&sync);
  redis_client_close_async (self, cancellable, redis_sync_call_store, &sync);
  redis_sync_call_wait (&sync);
  ret = redis_client_close_finish (self, sync.result, error);
  redis_sync_call_end (&sync);
  return ret;
}
