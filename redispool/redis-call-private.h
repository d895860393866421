/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "redis-reply.h"
#include "redis-worker-private.h"

G_BEGIN_DECLS

/* The largest argument accepted, as Redis' own proto-max-bulk-len. */
#define REDIS_MAX_ARGUMENT_BYTES ((gsize) 512 * 1024 * 1024)

/* The largest payload one call may carry, RESP encoded: one command, or all
 * the commands of a batch with their wrappers (MULTI … EXEC, CLIENT REPLY
 * OFF … ON + ECHO). 1 GiB, the same as Redis' default
 * client-query-buffer-limit. Enforced wherever a payload grows (a command
 * added to a batch, a call built), before anything is allocated or copied:
 * it also keeps every length far from the 32-bit length of GByteArray. */
#define REDIS_MAX_PAYLOAD_BYTES ((gsize) 1024 * 1024 * 1024)

typedef enum
{
  REDIS_CALL_COMMAND,        /* one command, one reply (an error reply is a GError) */
  REDIS_CALL_PIPELINE,       /* n commands, n replies, returned as they are */
  REDIS_CALL_TRANSACTION,    /* MULTI, n commands, EXEC: EXEC's elements */
  REDIS_CALL_NOREPLY,        /* wrapped in CLIENT REPLY OFF/ON; done when written */
} RedisCallKind;

/* What the pool needs to know about the commands of a call. */
typedef enum
{
  REDIS_COMMAND_FLAG_NONE             = 0,
  REDIS_COMMAND_FLAG_BLOCKING         = 1 << 0,  /* may block the connection */
  REDIS_COMMAND_FLAG_CONNECTION_STATE = 1 << 1,  /* changes per-connection state */
  REDIS_COMMAND_FLAG_UNSUPPORTED      = 1 << 2,  /* breaks reply matching: refused */
  /* Bits 8 to 15: the reply kinds (1 << RedisReplyKind) a single command
   * can answer with besides an error, for the commands whose reply kind
   * cannot vary with their options (see redis_call_reply_in_step()); none
   * set: any. Meaningless for a batch, whose flags are merged. */
  REDIS_COMMAND_FLAG_REPLY_MASK       = 0xff << 8,
} RedisCommandFlags;

typedef struct _RedisCall RedisCall;

/* What a call that failed got done, handed to its caller with the error
 * (task data of its GTask, or through its waiter): the replies of a
 * pipeline that arrived before the failure (a prefix of them, in order),
 * and how many of the call's user commands were written whole (the others
 * never reached the server: safe to retry). A transaction counts as
 * written only once EXEC is (the server runs nothing of it before: all or
 * nothing). Where the library cannot tell how much was written, every
 * command counts as written (may have run). */
typedef struct
{
  GPtrArray *replies;     /* RedisReply; NULL: none arrived */
  guint      n_written;
} RedisCallPartial;

void redis_call_partial_free (RedisCallPartial *partial);

/* Where a sync call's result lands. Lives on the calling thread's stack;
 * never touched by others after done is set. Whoever completes the call
 * wakes the caller only if it waits: blocked on the cond (waiting), or
 * polling its own socket (wake, see redis_engine_drive()). */
typedef struct
{
  GMutex          lock;
  GCond           cond;
  gboolean        done;
  gboolean        waiting;
  const RedisWakeFd *wake;
  gpointer        result;
  GDestroyNotify  result_destroy;
  GError         *error;
  RedisCallPartial *partial;    /* with error, see redis_call_waiter_wait_partial() */
} RedisCallWaiter;

/* RedisCall.drive_engine while a sync caller offers to drive its call's
 * I/O itself and no engine has taken the call yet. */
#define REDIS_CALL_DRIVE_OFFERED ((gpointer) 1)

/* One request in flight: built on the caller's thread, then owned by the
 * engine of the connection it was given to; completed exactly once (the
 * first completion wins, later ones are dropped) through its GTask, whose
 * callback runs in the caller's thread-default main context. */
struct _RedisCall
{
  gint               ref_count;
  RedisCallKind      kind;
  const guint8      *data;           /* bytes to write, RESP encoded… */
  gsize              len;
  GBytes            *payload;        /* …owned by this, or inline (NULL) */
  guint              n_commands;     /* user commands in the payload */
  guint              n_replies;      /* replies expected on the wire */
  RedisCommandFlags  flags;
  gint64             block_ms;       /* extra time a blocking command may take; -1 = forever */
  const char        *label;          /* internal calls: what they are, for messages */
  char              *name;           /* see redis_call_get_name(); atomic */

  GTask             *task;           /* async calls complete through it… */
  RedisCallWaiter   *waiter;         /* …sync calls through this (neither: internal) */
  /* Atomic. A sync caller sets REDIS_CALL_DRIVE_OFFERED before handing
   * the call over; the first engine that takes it replaces that with
   * itself (a reference), and the caller then drives that engine's socket
   * until the call completes. See redis_engine_drive(). */
  gpointer           drive_engine;
  GCancellable      *cancellable;
  gint64             deadline;       /* monotonic µs, 0 = none; set on submit */
  gint               completed;      /* atomic */

  /* Owned by the engine, under its I/O lock. */
  GSource           *cancel_source;
  GPtrArray         *replies;        /* replies received so far… */
  RedisReply        *reply;          /* …or the one reply of a COMMAND call */
  guint              replies_left;
  guint64            write_start;    /* stream offsets of the payload */
  guint64            write_end;
  gboolean           internal;       /* handshake: bypasses the READY gate */
  gboolean           no_retry;       /* never moved to another connection */
  gboolean           secret;         /* payload holds a password: zeroed once written */
  gboolean           self_driven;    /* its caller polls for it: no cancel source */
  gboolean           foreign;        /* counted in the engine's n_foreign */
  /* A written blocking call that was cancelled or timed out: the server is
   * asked to end its wait (CLIENT UNBLOCK … ERROR) and the call completes
   * when its reply arrives, with this error if the wait was ended there,
   * with the reply if the server had served it first. */
  GError            *abandon_error;
  char              *noreply_token;  /* NOREPLY: what the closing ECHO must return */
  guint              n_queued;       /* TRANSACTION: "+QUEUED" replies seen (I/O thread) */

  /* Called, with the engine's I/O lock held, when the call leaves an
   * engine for good (all replies in, or failed there); the pool uses it to
   * recycle the dedicated connection of a blocking command. */
  void             (*on_done)      (RedisCall *call,
                                    gpointer   data);
  gpointer           on_done_data;

  guint8             inline_data[];  /* the payload of a single command */
};

/* Encoding. Validates sizes first: hiredis' formatter overflows past 2 GiB.
 * Appends the RESP encoding to @out; returns the command flags. */
gboolean   redis_encode_command      (GByteArray          *out,
                                      guint                argc,
                                      const char         **argv,
                                      const gsize         *lens,
                                      RedisCommandFlags   *flags,
                                      gint64              *block_ms,
                                      char               **name,
                                      GError             **error);
gboolean   redis_encode_strv         (GByteArray          *out,
                                      const char * const  *argv,
                                      RedisCommandFlags   *flags,
                                      gint64              *block_ms,
                                      char               **name,
                                      GError             **error);
gboolean   redis_encode_bytes        (GByteArray          *out,
                                      GBytes             **args,
                                      gsize                n_args,
                                      RedisCommandFlags   *flags,
                                      gint64              *block_ms,
                                      char               **name,
                                      GError             **error);
/* Appends @len bytes of already encoded commands to @out (a payload being
 * built), or fails with INVALID_ARGUMENT if @out would then be over the
 * payload limit. */
gboolean   redis_encode_append       (GByteArray          *out,
                                      const guint8        *data,
                                      gsize                len,
                                      GError             **error);
/* Fails with INVALID_ARGUMENT if a payload of @size bytes is over the
 * payload limit. */
gboolean   redis_encode_check_payload (guint64             size,
                                       GError            **error);
/* The exact size of the RESP encoding of a command of @argc arguments of
 * @lens bytes; G_MAXUINT64 if that does not fit in 64 bits. Checked
 * arithmetic: never wraps, whatever @lens holds. */
guint64    redis_encode_command_size (guint                argc,
                                      const gsize         *lens);
/* The payload limit in force: REDIS_MAX_PAYLOAD_BYTES… */
gsize      redis_encode_get_max_payload (void);
/* …or, for tests only, a smaller one (0 restores the default). Not
 * synchronised: set it while no call is being built. */
void       redis_encode_set_max_payload_for_testing (gsize max_payload);

RedisCall *redis_call_new            (RedisCallKind        kind,
                                      GBytes              *payload,
                                      guint                n_commands,
                                      GTask               *task);
/* Like redis_call_new(), with a copy of @data in the call's own block:
 * one allocation for a small payload (a single command). */
RedisCall *redis_call_new_inline     (RedisCallKind        kind,
                                      const guint8        *data,
                                      gsize                len,
                                      guint                n_commands);
/* A call completed through @waiter (a sync call) instead of a GTask. */
RedisCall *redis_call_new_sync       (RedisCallKind        kind,
                                      GBytes              *payload,
                                      guint                n_commands,
                                      GCancellable        *cancellable,
                                      RedisCallWaiter     *waiter);
void       redis_call_waiter_init    (RedisCallWaiter     *waiter);
/* Blocks until the call completed; returns the result (transfer full) or
 * NULL with @error set, and clears the waiter. */
gpointer   redis_call_waiter_wait    (RedisCallWaiter     *waiter,
                                      GError             **error);
/* Like redis_call_waiter_wait(); on failure, also what the call got done
 * (transfer full, never NULL then; NULL on success). */
gpointer   redis_call_waiter_wait_partial (RedisCallWaiter  *waiter,
                                           RedisCallPartial **partial,
                                           GError           **error);
/* Whoever completes the call signals @wake (NULL: nobody polls). FALSE if
 * the call has completed already (then nothing will be signalled). */
gboolean   redis_call_waiter_set_wake (RedisCallWaiter   *waiter,
                                       const RedisWakeFd *wake);
/* Between these, completions made by this thread wait, and are handed out
 * by the outermost end: an engine brackets the time it holds its I/O lock
 * with them, so that no callback runs with that lock held. With @in_place
 * (an engine source dispatching in its context), an async call whose
 * context that is completes at once; otherwise through its context's
 * completion source. Sync calls complete at once in either case. */
void       redis_call_defer_begin    (gboolean             in_place);
void       redis_call_defer_end      (void);
/* The upper-cased, printable name of the first command of an encoded
 * payload after @skip whole commands (a wrapper), for messages. */
char      *redis_encode_dup_name     (const guint8        *data,
                                      gsize                len,
                                      guint                skip);
/* What the call is, for messages: its label, or the name of its first user
 * command, derived from the payload on first use (error paths only, so the
 * per-call path copies nothing). Any thread; never NULL. */
const char *redis_call_get_name      (RedisCall           *self);
RedisCall *redis_call_ref            (RedisCall           *self);
void       redis_call_unref          (RedisCall           *self);
gboolean   redis_call_is_completed   (RedisCall           *self);
/* Computes the deadline from @timeout_ms (0 = none) and the block time. */
void       redis_call_set_timeout    (RedisCall           *self,
                                      guint                timeout_ms);
/* Completes with an error (takes @error). FALSE if already completed. */
gboolean   redis_call_fail           (RedisCall           *self,
                                      GError              *error);
/* With the engine's I/O lock held: like redis_call_fail() for a call of
 * the engine whose stream has had @total_written bytes written so far;
 * its caller learns which of its commands were written whole and, for a
 * pipeline, gets the replies that arrived (see RedisCallPartial). A plain
 * redis_call_fail() of a call that was put on the wire counts all its
 * commands as written. */
gboolean   redis_call_fail_written   (RedisCall           *self,
                                      GError              *error,
                                      guint64              total_written);
/* Completes with the replies collected (builds the result by kind). */
void       redis_call_finish_replies (RedisCall           *self);
/* Completes a no-reply call successfully. */
void       redis_call_finish_written (RedisCall           *self);
/* I/O thread: FALSE when @reply, the reply number @index (0-based) of the
 * call on the wire, cannot be what the server sends in step with the call's
 * payload (e.g. the acknowledgements of a no-reply call): the stream is out
 * of step and the connection must close with PROTOCOL. To be called for
 * every reply of the call, in order, whether or not the call has completed
 * already (a transaction counts its "+QUEUED" replies here to check EXEC's
 * array against them; when they differ, the call is failed here with
 * PROTOCOL before FALSE is returned).
 *
 * A no-reply call expects two replies: "+OK" from CLIENT REPLY ON, then the
 * ECHO of @noreply_token (a server that ignores CLIENT REPLY OFF answers the
 * commands too, and never in the token's place). */
gboolean   redis_call_reply_in_step  (RedisCall           *self,
                                      guint                index,
                                      RedisReply          *reply);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RedisCall, redis_call_unref)

G_END_DECLS
