/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "fake-server.h"

#include <string.h>

#ifdef G_OS_UNIX
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

#define CHUNK_SIZE (64 * 1024)

/* How long a connection thread waits for the peer to acknowledge "later"
 * bytes before it counts them as sent anyway (see send_later()). */
#define LATER_ACK_MAX_WAIT_US (10 * G_USEC_PER_SEC)

typedef enum
{
  ACTION_BYTES,
  ACTION_GENERATED,
  ACTION_CLOSE,
  ACTION_STALL,
  ACTION_BYTES_THEN_LATER,
} ActionType;

typedef struct
{
  ActionType type;
  GBytes *bytes;
  char *prefix;
  char *suffix;
  char fill;
  guint64 n_fill;
  GBytes *later;                /* ACTION_BYTES_THEN_LATER */
  guint delay_ms;
} Action;

typedef struct
{
  FakeServer *server;
  GSocket *socket;              /* closed under server->lock */
  GThread *thread;
  gboolean done;                /* under server->lock */
} Conn;

struct _FakeServer
{
  GMutex lock;
  GSocket *listener;
  guint16 port;
  GCancellable *cancellable;
  GThread *accept_thread;

  /* under lock */
  GPtrArray *conns;
  GQueue script;
  GBytes *greeting;
  GBytes *answer_all;
  GHashTable *fixed_replies;     /* upper-case command name → GBytes */
  GPtrArray *commands;
  guint n_connections;
  guint n_later_sent;
};

static void
action_free (Action *a)
{
  g_clear_pointer (&a->bytes, g_bytes_unref);
  g_clear_pointer (&a->later, g_bytes_unref);
  g_free (a->prefix);
  g_free (a->suffix);
  g_free (a);
}

static GBytes *
bytes_new (const char *bytes,
           gssize      len)
{
  if (bytes == NULL)
    return g_bytes_new (NULL, 0);
  if (len < 0)
    len = strlen (bytes);
  return g_bytes_new (bytes, len);
}

/* ---- RESP request parsing ---------------------------------------------- */

/* Reads a CRLF-terminated decimal number at @data; returns the bytes used
 * including CRLF, 0 if incomplete, -1 on garbage. */
static gssize
parse_number_line (const guint8 *data,
                   gsize         len,
                   gint64       *value)
{
  const guint8 *cr = memchr (data, '\r', len);
  g_autofree char *text = NULL;
  char *end = NULL;

  if (cr == NULL || (gsize) (cr - data) + 1 >= len)
    return len > 32 ? -1 : 0;
  if (cr[1] != '\n')
    return -1;
  text = g_strndup ((const char *) data, cr - data);
  *value = g_ascii_strtoll (text, &end, 10);
  if (end == text || *end != '\0')
    return -1;
  return (cr - data) + 2;
}

/* Parses one command. Returns the bytes consumed (> 0), 0 if more data is
 * needed, -1 on a protocol error. *argv_out may be empty (blank inline line). */
static gssize
parse_command (const guint8  *data,
               gsize          len,
               GPtrArray    **argv_out)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  gsize pos = 0;

  if (len == 0)
    return 0;

  if (data[0] == '*')
    {
      gint64 n_args;
      gssize used = parse_number_line (data + 1, len - 1, &n_args);

      if (used <= 0)
        return used;
      if (n_args < 0 || n_args > 1024 * 1024)
        return -1;
      pos = 1 + used;

      for (gint64 i = 0; i < n_args; i++)
        {
          gint64 arg_len;

          if (pos >= len)
            return 0;
          if (data[pos] != '$')
            return -1;
          used = parse_number_line (data + pos + 1, len - pos - 1, &arg_len);
          if (used <= 0)
            return used;
          if (arg_len < 0 || arg_len > 512 * 1024 * 1024)
            return -1;
          pos += 1 + used;
          if (len - pos < (gsize) arg_len + 2)
            return 0;
          g_ptr_array_add (argv, g_strndup ((const char *) data + pos, arg_len));
          pos += arg_len + 2;
        }
    }
  else
    {
      const guint8 *nl = memchr (data, '\n', len);
      g_autofree char *line = NULL;
      g_auto(GStrv) words = NULL;

      if (nl == NULL)
        return len > 64 * 1024 ? -1 : 0;
      pos = (nl - data) + 1;
      line = g_strndup ((const char *) data, nl - data);
      g_strchomp (line);
      words = g_strsplit (line, " ", -1);
      for (guint i = 0; words[i] != NULL; i++)
        if (words[i][0] != '\0')
          g_ptr_array_add (argv, g_strdup (words[i]));
    }

  *argv_out = g_steal_pointer (&argv);
  return pos;
}

/* ---- connection thread ------------------------------------------------- */

static gboolean
send_all (Conn       *conn,
          const char *data,
          gsize       len)
{
  while (len > 0)
    {
      gssize n = g_socket_send (conn->socket, data, len,
                                conn->server->cancellable, NULL);
      if (n <= 0)
        return FALSE;
      data += n;
      len -= n;
    }
  return TRUE;
}

static gboolean
send_generated (Conn         *conn,
                const Action *a)
{
  g_autofree char *chunk = NULL;
  guint64 left = a->n_fill;

  if (a->prefix != NULL && !send_all (conn, a->prefix, strlen (a->prefix)))
    return FALSE;

  chunk = g_malloc (CHUNK_SIZE);
  memset (chunk, a->fill, CHUNK_SIZE);
  while (left > 0)
    {
      gsize n = MIN (left, CHUNK_SIZE);

      if (!send_all (conn, chunk, n))
        return FALSE;
      left -= n;
    }

  if (a->suffix != NULL && !send_all (conn, a->suffix, strlen (a->suffix)))
    return FALSE;
  return TRUE;
}

static gboolean
send_bytes (Conn   *conn,
            GBytes *bytes)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  return send_all (conn, data, len);
}

/* Sleeps @ms milliseconds unless the server is freed meanwhile; FALSE then. */
static gboolean
sleep_unless_cancelled (FakeServer *self,
                        guint       ms)
{
  GPollFD pfd;

  if (g_cancellable_make_pollfd (self->cancellable, &pfd))
    {
      g_poll (&pfd, 1, (gint) MIN (ms, (guint) G_MAXINT));
      g_cancellable_release_fd (self->cancellable);
    }
  else
    g_usleep ((gulong) ms * 1000);
  return !g_cancellable_is_cancelled (self->cancellable);
}

/* Waits until the peer's kernel has acknowledged everything sent on
 * @conn, that is until those bytes sit in the client's socket buffer (or
 * were read already): "sent" then means "arrived". Gives up when the
 * connection is no longer established, the server is freed, or after
 * LATER_ACK_MAX_WAIT_US; without TCP_INFO, returns at once. */
static void
wait_for_peer_ack (Conn *conn)
{
#if defined (G_OS_UNIX) && defined (TCP_INFO)
  int fd = g_socket_get_fd (conn->socket);
  gint64 give_up = g_get_monotonic_time () + LATER_ACK_MAX_WAIT_US;

  while (g_get_monotonic_time () < give_up)
    {
      struct tcp_info info;
      socklen_t len = sizeof info;

      memset (&info, 0, sizeof info);
      if (getsockopt (fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
          info.tcpi_state != TCP_ESTABLISHED || info.tcpi_unacked == 0)
        return;
      if (!sleep_unless_cancelled (conn->server, 1))
        return;
    }
#endif
}

/* ACTION_BYTES_THEN_LATER, after the reply: the connection thread reads
 * nothing more while it waits, so commands sent meanwhile are answered only
 * after the later bytes (which stay unsolicited). */
static gboolean
send_later (Conn         *conn,
            const Action *a)
{
  FakeServer *self = conn->server;

  if (!sleep_unless_cancelled (self, a->delay_ms))
    return FALSE;
  if (!send_bytes (conn, a->later))
    return FALSE;
  wait_for_peer_ack (conn);

  g_mutex_lock (&self->lock);
  self->n_later_sent++;
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/* With the lock held: the fixed reply for @name, if any (a new ref). */
static GBytes *
lookup_fixed_reply (FakeServer *self,
                    const char *name)
{
  g_autofree char *upper = NULL;
  GBytes *bytes;

  if (g_hash_table_size (self->fixed_replies) == 0)
    return NULL;
  upper = g_ascii_strup (name, -1);
  bytes = g_hash_table_lookup (self->fixed_replies, upper);
  return bytes != NULL ? g_bytes_ref (bytes) : NULL;
}

static gpointer
conn_thread (gpointer data)
{
  Conn *conn = data;
  FakeServer *self = conn->server;
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GBytes) greeting = NULL;
  g_autofree char *chunk = g_malloc (16 * 1024);
  gboolean stalled = FALSE;
  gboolean alive = TRUE;

  g_mutex_lock (&self->lock);
  if (self->greeting != NULL)
    greeting = g_bytes_ref (self->greeting);
  g_mutex_unlock (&self->lock);

  if (greeting != NULL && !send_bytes (conn, greeting))
    alive = FALSE;

  while (alive)
    {
      gssize n = g_socket_receive (conn->socket, chunk, 16 * 1024,
                                   self->cancellable, NULL);
      if (n <= 0)
        break;
      g_byte_array_append (buf, (const guint8 *) chunk, n);

      while (alive)
        {
          g_autoptr(GPtrArray) argv = NULL;
          Action *action = NULL;
          g_autoptr(GBytes) reply = NULL;
          gssize used = parse_command (buf->data, buf->len, &argv);

          if (used < 0)
            {
              alive = FALSE;
              break;
            }
          if (used == 0)
            break;
          g_byte_array_remove_range (buf, 0, used);
          if (argv->len == 0)
            continue;

          g_ptr_array_add (argv, NULL);
          g_mutex_lock (&self->lock);
          g_ptr_array_add (self->commands, g_strjoinv (" ", (char **) argv->pdata));
          if (!stalled)
            {
              reply = lookup_fixed_reply (self, g_ptr_array_index (argv, 0));
              if (reply == NULL)
                action = g_queue_pop_head (&self->script);
              if (reply == NULL && action == NULL)
                reply = g_bytes_ref (self->answer_all);
            }
          g_mutex_unlock (&self->lock);

          if (stalled)
            continue;

          if (action == NULL)
            {
              alive = send_bytes (conn, reply);
              continue;
            }

          switch (action->type)
            {
            case ACTION_BYTES:
              alive = send_bytes (conn, action->bytes);
              break;
            case ACTION_GENERATED:
              alive = send_generated (conn, action);
              break;
            case ACTION_CLOSE:
              alive = FALSE;
              break;
            case ACTION_STALL:
              stalled = TRUE;
              break;
            case ACTION_BYTES_THEN_LATER:
              alive = send_bytes (conn, action->bytes) && send_later (conn, action);
              break;
            default:
              g_assert_not_reached ();
            }
          action_free (action);
        }
    }

  g_mutex_lock (&self->lock);
  g_socket_close (conn->socket, NULL);
  conn->done = TRUE;
  g_mutex_unlock (&self->lock);

  return NULL;
}

static void
conn_free (Conn *conn)
{
  g_thread_join (conn->thread);
  g_object_unref (conn->socket);
  g_free (conn);
}

static gpointer
accept_thread (gpointer data)
{
  FakeServer *self = data;

  for (;;)
    {
      GSocket *sock = g_socket_accept (self->listener, self->cancellable, NULL);
      Conn *conn;

      if (sock == NULL)
        {
          if (g_cancellable_is_cancelled (self->cancellable))
            break;
          g_usleep (1000);
          continue;
        }

      g_socket_set_blocking (sock, TRUE);
      conn = g_new0 (Conn, 1);
      conn->server = self;
      conn->socket = sock;

      g_mutex_lock (&self->lock);
      /* Join finished connections so long tests do not pile up threads. */
      for (guint i = self->conns->len; i > 0; i--)
        {
          Conn *old = g_ptr_array_index (self->conns, i - 1);
          if (old->done)
            g_ptr_array_remove_index_fast (self->conns, i - 1);
        }
      self->n_connections++;
      conn->thread = g_thread_new ("fake-server-conn", conn_thread, conn);
      g_ptr_array_add (self->conns, conn);
      g_mutex_unlock (&self->lock);
    }

  return NULL;
}

/* ---- public API -------------------------------------------------------- */

/**
 * fake_server_new:
 *
 * Listens on 127.0.0.1 on a free port and starts serving at once; add the
 * script before the client connects (or at least before it sends).
 */
FakeServer *
fake_server_new (void)
{
  FakeServer *self = g_new0 (FakeServer, 1);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  g_mutex_init (&self->lock);
  g_queue_init (&self->script);
  /* conn_free joins the thread: only drop a Conn under the lock once it is
   * done (its thread no longer needs the lock). */
  self->conns = g_ptr_array_new_with_free_func ((GDestroyNotify) conn_free);
  self->commands = g_ptr_array_new_with_free_func (g_free);
  self->fixed_replies = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                               (GDestroyNotify) g_bytes_unref);
  self->answer_all = bytes_new ("+OK\r\n", -1);
  self->cancellable = g_cancellable_new ();

  self->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (self->listener, addr, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (self->listener, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (self->listener, &error);
  g_assert_no_error (error);
  self->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  self->accept_thread = g_thread_new ("fake-server-accept", accept_thread, self);
  return self;
}

guint16
fake_server_get_port (FakeServer *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->port;
}

static void
push_action (FakeServer *self,
             Action     *action)
{
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->script, action);
  g_mutex_unlock (&self->lock);
}

/**
 * fake_server_add_reply:
 * @bytes: raw bytes answering the next command
 * @len: length of @bytes, or -1 if NUL-terminated
 */
void
fake_server_add_reply (FakeServer *self,
                       const char *bytes,
                       gssize      len)
{
  Action *a = g_new0 (Action, 1);

  g_return_if_fail (self != NULL);
  a->type = ACTION_BYTES;
  a->bytes = bytes_new (bytes, len);
  push_action (self, a);
}

/**
 * fake_server_add_reply_generated:
 * @prefix: (nullable): written first, e.g. "$104857600\r\n"
 * @fill_byte: repeated @n_fill times after @prefix
 * @suffix: (nullable): written last, e.g. "\r\n"
 *
 * Streams the reply in chunks, so huge replies cost no memory.
 */
void
fake_server_add_reply_generated (FakeServer *self,
                                 const char *prefix,
                                 char        fill_byte,
                                 guint64     n_fill,
                                 const char *suffix)
{
  Action *a = g_new0 (Action, 1);

  g_return_if_fail (self != NULL);
  a->type = ACTION_GENERATED;
  a->prefix = g_strdup (prefix);
  a->suffix = g_strdup (suffix);
  a->fill = fill_byte;
  a->n_fill = n_fill;
  push_action (self, a);
}

/**
 * fake_server_add_reply_then_later:
 * @bytes: raw bytes answering the next command, written at once
 * @len: length of @bytes, or -1 if NUL-terminated
 * @later_bytes: raw bytes written on the same connection @delay_ms
 *   milliseconds after @bytes, answering nothing (e.g. a stray reply)
 * @later_len: length of @later_bytes, or -1 if NUL-terminated
 * @delay_ms: the delay; 0 writes @later_bytes right after @bytes, in a
 *   separate send
 *
 * The connection thread that takes this action reads nothing more until
 * @later_bytes are written, so whatever the client sends meanwhile is
 * answered after them. Once the peer has acknowledged @later_bytes (they
 * sit in the client's socket buffer), fake_server_get_n_later_sent()
 * counts them. Nothing is written if the server is freed during the delay.
 */
void
fake_server_add_reply_then_later (FakeServer *self,
                                  const char *bytes,
                                  gssize      len,
                                  const char *later_bytes,
                                  gssize      later_len,
                                  guint       delay_ms)
{
  Action *a = g_new0 (Action, 1);

  g_return_if_fail (self != NULL);
  a->type = ACTION_BYTES_THEN_LATER;
  a->bytes = bytes_new (bytes, len);
  a->later = bytes_new (later_bytes, later_len);
  a->delay_ms = delay_ms;
  push_action (self, a);
}

void
fake_server_add_close (FakeServer *self)
{
  Action *a = g_new0 (Action, 1);

  g_return_if_fail (self != NULL);
  a->type = ACTION_CLOSE;
  push_action (self, a);
}

void
fake_server_add_stall (FakeServer *self)
{
  Action *a = g_new0 (Action, 1);

  g_return_if_fail (self != NULL);
  a->type = ACTION_STALL;
  push_action (self, a);
}

/**
 * fake_server_set_greeting:
 * @bytes: (nullable): written right after each accept; %NULL for none
 */
void
fake_server_set_greeting (FakeServer *self,
                          const char *bytes,
                          gssize      len)
{
  g_return_if_fail (self != NULL);
  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->greeting, g_bytes_unref);
  if (bytes != NULL)
    self->greeting = bytes_new (bytes, len);
  g_mutex_unlock (&self->lock);
}

/**
 * fake_server_set_reply_for_command:
 * @name: a command name (the first argument), matched without case
 * @bytes: (nullable): the reply to every command named @name; %NULL to
 *   remove it
 * @len: length of @bytes, or -1 if NUL-terminated
 *
 * Commands named @name get @bytes and take nothing from the script, on
 * any connection (not on a stalled one). For commands the client sends by
 * itself at any time, such as the handshake's CLIENT ID on a pool's
 * reconnections, so that they cannot take a reply scripted for another.
 */
void
fake_server_set_reply_for_command (FakeServer *self,
                                   const char *name,
                                   const char *bytes,
                                   gssize      len)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (name != NULL);
  g_mutex_lock (&self->lock);
  if (bytes != NULL)
    g_hash_table_replace (self->fixed_replies, g_ascii_strup (name, -1), bytes_new (bytes, len));
  else
    {
      g_autofree char *upper = g_ascii_strup (name, -1);

      g_hash_table_remove (self->fixed_replies, upper);
    }
  g_mutex_unlock (&self->lock);
}

/**
 * fake_server_set_answer_all:
 * @bytes: reply for commands once the script is used up (default "+OK\r\n")
 */
void
fake_server_set_answer_all (FakeServer *self,
                            const char *bytes,
                            gssize      len)
{
  g_return_if_fail (self != NULL);
  g_mutex_lock (&self->lock);
  g_bytes_unref (self->answer_all);
  self->answer_all = bytes_new (bytes, len);
  g_mutex_unlock (&self->lock);
}

guint
fake_server_get_n_commands (FakeServer *self)
{
  guint n;

  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  n = self->commands->len;
  g_mutex_unlock (&self->lock);
  return n;
}

/**
 * fake_server_get_commands:
 *
 * Returns: (transfer full): every command received so far, in order, as its
 *   arguments joined by single spaces ("SET key value")
 */
char **
fake_server_get_commands (FakeServer *self)
{
  char **ret;

  g_return_val_if_fail (self != NULL, NULL);
  g_mutex_lock (&self->lock);
  ret = g_new0 (char *, self->commands->len + 1);
  for (guint i = 0; i < self->commands->len; i++)
    ret[i] = g_strdup (g_ptr_array_index (self->commands, i));
  g_mutex_unlock (&self->lock);
  return ret;
}

guint
fake_server_get_n_connections (FakeServer *self)
{
  guint n;

  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  n = self->n_connections;
  g_mutex_unlock (&self->lock);
  return n;
}

/* Later bytes of fake_server_add_reply_then_later() actions written (and
 * acknowledged by the peer) so far, on all connections. */
guint
fake_server_get_n_later_sent (FakeServer *self)
{
  guint n;

  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  n = self->n_later_sent;
  g_mutex_unlock (&self->lock);
  return n;
}

/* Scripted actions not consumed yet. */
guint
fake_server_get_n_pending (FakeServer *self)
{
  guint n;

  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->lock);
  n = self->script.length;
  g_mutex_unlock (&self->lock);
  return n;
}

/**
 * fake_server_drop_connections:
 *
 * Shuts down every open connection (as if the server died); the listener
 * keeps accepting new ones.
 */
void
fake_server_drop_connections (FakeServer *self)
{
  g_return_if_fail (self != NULL);
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->conns->len; i++)
    {
      Conn *conn = g_ptr_array_index (self->conns, i);
      if (!conn->done)
        g_socket_shutdown (conn->socket, TRUE, TRUE, NULL);
    }
  g_mutex_unlock (&self->lock);
}

void
fake_server_free (FakeServer *self)
{
  g_autoptr(GPtrArray) conns = NULL;

  if (self == NULL)
    return;

  g_cancellable_cancel (self->cancellable);
  g_thread_join (self->accept_thread);

  /* Connection threads take the lock, so join them outside it. */
  g_mutex_lock (&self->lock);
  conns = g_steal_pointer (&self->conns);
  g_mutex_unlock (&self->lock);
  g_clear_pointer (&conns, g_ptr_array_unref);

  g_socket_close (self->listener, NULL);
  g_object_unref (self->listener);
  g_object_unref (self->cancellable);
  g_queue_clear_full (&self->script, (GDestroyNotify) action_free);
  g_clear_pointer (&self->greeting, g_bytes_unref);
  g_bytes_unref (self->answer_all);
  g_hash_table_unref (self->fixed_replies);
  g_ptr_array_unref (self->commands);
  g_mutex_clear (&self->lock);
  g_free (self);
}
