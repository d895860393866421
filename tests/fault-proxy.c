/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "fault-proxy.h"

struct _FaultProxy
{
  GSubprocess      *process;
  GOutputStream    *stdin_pipe;
  GDataInputStream *stdout_pipe;
  guint16           port;
};

static char *
script_path (void)
{
  const char *srcdir = g_getenv ("G_TEST_SRCDIR");

  if (srcdir != NULL)
    return g_build_filename (srcdir, "fault-proxy.py", NULL);
  return g_build_filename (G_STRINGIFY (TESTS_SRCDIR), "fault-proxy.py", NULL);
}

FaultProxy *
fault_proxy_new (guint16   upstream_port,
                 GError  **error)
{
  g_autofree char *script = script_path ();
  g_autofree char *port_arg = g_strdup_printf ("%u", upstream_port);
  g_autofree char *line = NULL;
  FaultProxy *self = g_new0 (FaultProxy, 1);

  self->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                    error, "/usr/bin/python3", script, port_arg, NULL);
  if (self->process == NULL)
    {
      g_free (self);
      return NULL;
    }
  self->stdin_pipe = g_object_ref (g_subprocess_get_stdin_pipe (self->process));
  self->stdout_pipe = g_data_input_stream_new (g_subprocess_get_stdout_pipe (self->process));

  line = g_data_input_stream_read_line_utf8 (self->stdout_pipe, NULL, NULL, error);
  if (line == NULL || !g_str_has_prefix (line, "port "))
    {
      if (line != NULL && error != NULL && *error == NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "fault proxy said: %s", line);
      else if (line == NULL && error != NULL && *error == NULL)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "fault proxy did not start");
      fault_proxy_free (self);
      return NULL;
    }
  self->port = (guint16) g_ascii_strtoull (line + 5, NULL, 10);
  return self;
}

guint16
fault_proxy_get_port (FaultProxy *self)
{
  return self->port;
}

char *
fault_proxy_command (FaultProxy  *self,
                     const char  *command,
                     GError     **error)
{
  g_autofree char *line = g_strconcat (command, "\n", NULL);

  if (!g_output_stream_write_all (self->stdin_pipe, line, strlen (line), NULL, NULL, error) ||
      !g_output_stream_flush (self->stdin_pipe, NULL, error))
    return NULL;
  return g_data_input_stream_read_line_utf8 (self->stdout_pipe, NULL, NULL, error);
}

void
fault_proxy_do (FaultProxy *self,
                const char *command)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *answer = fault_proxy_command (self, command, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (answer, ==, "ok");
}

void
fault_proxy_free (FaultProxy *self)
{
  if (self == NULL)
    return;
  if (self->stdin_pipe != NULL)
    {
      g_free (fault_proxy_command (self, "quit", NULL));
      g_output_stream_close (self->stdin_pipe, NULL, NULL);
    }
  if (self->process != NULL)
    {
      /* Bounded: the proxy exits on "quit" or on stdin EOF; force it otherwise. */
      for (int i = 0; i < 50 && g_subprocess_get_identifier (self->process) != NULL; i++)
        g_usleep (10 * 1000);
      if (g_subprocess_get_identifier (self->process) != NULL)
        g_subprocess_force_exit (self->process);
      g_subprocess_wait (self->process, NULL, NULL);
    }
  g_clear_object (&self->stdin_pipe);
  g_clear_object (&self->stdout_pipe);
  g_clear_object (&self->process);
  g_free (self);
}
