/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The main context of the process-wide I/O thread ("redis-io"), created on
 * first use. It runs what must progress whatever the callers' threads do:
 * connecting (TCP, TLS, handshake), deadline, reconnect and health-check
 * timers, closing, and the reads and writes of an established connection
 * while a call that does not belong to its home context is in flight (see
 * redis-engine.c). Sync calls drive their own socket instead. */
GMainContext *redis_worker_get_context (void);

/* Whether the calling thread is the I/O thread. */
gboolean      redis_worker_is_current  (void);

/* Runs @func on the I/O thread soon (never synchronously). */
void          redis_worker_invoke      (GSourceFunc     func,
                                        gpointer        data,
                                        GDestroyNotify  notify);

/* A source on the I/O thread that dispatches once its ready time (set with
 * g_source_set_ready_time(), monotonic µs) comes, then waits for the next
 * one: the deadline timers of engines and pools. */
GSource      *redis_worker_deadline_source_new (const char     *name,
                                                GSourceFunc     func,
                                                gpointer        data,
                                                GDestroyNotify  notify);

/* A wake-up fd of a thread (an eventfd, or a pipe), created on first use
 * and closed when the thread exits: a thread polling its own socket in a
 * sync call is woken through it by whoever completes that call. */
typedef struct
{
  int read_fd;    /* polled by its thread */
  int write_fd;   /* the same fd for an eventfd */
} RedisWakeFd;

const RedisWakeFd *redis_wake_fd_get   (void);
/* Wakes the thread polling @wake (any thread). */
void               redis_wake_fd_signal (const RedisWakeFd *wake);
/* Consumes the wake-ups of @wake (its own thread). */
void               redis_wake_fd_drain  (const RedisWakeFd *wake);

G_END_DECLS
