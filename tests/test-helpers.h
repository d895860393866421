/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

static inline gboolean
test_set_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static inline guint64
test_env_factor (const char *name)
{
  const char *env = g_getenv (name);
  guint64 factor = env != NULL ? g_ascii_strtoull (env, NULL, 10) : 1;

  return CLAMP (factor, 1, 1000);
}

/* Timeouts scale with $REDISPOOL_TEST_TIMEOUT_MULTIPLIER (the valgrind and
 * asan test setups set it: 10 and 3) times $REDISPOOL_TEST_LOAD_FACTOR
 * (tools/test.sh sets it from the load average per CPU before each pass),
 * so slow runs and busy machines do not fail spuriously. Every deadline a
 * test gives the library or waits for goes through here. */
static inline guint
test_scale_ms (guint ms)
{
  guint64 factor = test_env_factor ("REDISPOOL_TEST_TIMEOUT_MULTIPLIER") *
                   test_env_factor ("REDISPOOL_TEST_LOAD_FACTOR");

  return (guint) MIN ((guint64) ms * factor, G_MAXUINT);
}

static inline gboolean
test_tick_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates the default main context for @ms milliseconds (not scaled:
 * for tests that count what happens in a given time). */
static inline void
test_iterate_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, test_set_flag_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* Iterate the thread-default main context until @cond holds; fail the test
 * after @ms milliseconds (scaled by test_scale_ms()). A 10 ms tick wakes the
 * loop so that conditions changed by other threads (fake server,
 * redis-server) are noticed too. */
#define WAIT_UNTIL(cond, ms)                                            \
  G_STMT_START {                                                        \
    GMainContext *_wu_ctx = g_main_context_ref_thread_default ();       \
    GSource *_wu_src = g_timeout_source_new (test_scale_ms (ms));       \
    GSource *_wu_tick = g_timeout_source_new (10);                      \
    gboolean _wu_expired = FALSE;                                       \
    g_source_set_callback (_wu_src, test_set_flag_cb, &_wu_expired, NULL); \
    g_source_attach (_wu_src, _wu_ctx);                                 \
    g_source_set_callback (_wu_tick, test_tick_cb, NULL, NULL);         \
    g_source_attach (_wu_tick, _wu_ctx);                                \
    while (!(cond) && !_wu_expired)                                     \
      g_main_context_iteration (_wu_ctx, TRUE);                         \
    g_source_destroy (_wu_tick);                                        \
    g_source_unref (_wu_tick);                                          \
    g_source_destroy (_wu_src);                                         \
    g_source_unref (_wu_src);                                           \
    g_main_context_unref (_wu_ctx);                                     \
    if (_wu_expired)                                                    \
      {                                                                 \
        char *_wu_msg = g_strdup_printf ("timed out after %u ms waiting for: %s", \
                                         (guint) (ms), #cond);          \
        g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__,          \
                             G_STRFUNC, _wu_msg);                       \
        g_free (_wu_msg);                                               \
      }                                                                 \
  } G_STMT_END

/* A GAsyncReadyCallback storing a reference to the result in the
 * GAsyncResult * slot passed as user data. */
static inline void
store_result_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GAsyncResult **slot = user_data;

  g_assert_null (*slot);
  *slot = g_object_ref (result);
}

/* Iterate the thread-default main context until *@result_slot is set (by
 * store_result_cb); fail the test after @timeout_ms milliseconds. */
static inline void
test_wait_for_result (GAsyncResult **result_slot,
                      guint          timeout_ms)
{
  WAIT_UNTIL (*result_slot != NULL, timeout_ms);
}

/* A GTestDataFunc that skips with the message it is given: main()
 * registers it in place of a case whose requirement is missing (GLib runs
 * a fixture's test function even when its setup skipped). */
static inline void
test_skip_cb (gconstpointer message)
{
  g_test_skip (message);
}

/* Dispatch whatever is ready without blocking. */
static inline void
test_drain_main_context (void)
{
  GMainContext *ctx = g_main_context_ref_thread_default ();

  while (g_main_context_iteration (ctx, FALSE))
    ;
  g_main_context_unref (ctx);
}

G_END_DECLS
