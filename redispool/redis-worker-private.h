/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The main context of the process-wide I/O thread ("redis-io"), created on
 * first use. Every socket read and write, every deadline timer and every
 * reconnect timer of every connection runs there, as GDBus does with its
 * worker thread: sync calls can then block any thread — a script without a
 * main loop, a worker thread, or the thread running the main loop inside one
 * of its callbacks — without deadlocking the I/O they wait for. */
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

G_END_DECLS
