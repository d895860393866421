/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include <string.h>

#include "redis-engine-private.h"
#include "redis-error.h"
#include "redis-sentinel-private.h"
#include "redis-text-private.h"
#include "redis-worker-private.h"

/*
 * Sentinel discovery, as redis.io "Sentinel clients" describes it:
 *
 *   for each sentinel, in order (the one that answered last first):
 *     connect (its own credentials) and ask
 *       SENTINEL get-master-addr-by-name <name>      (role primary)
 *       SENTINEL replicas <name>                      (role replica)
 *     within REDIS_SENTINEL_TRY_TIMEOUT_MS (or connect-timeout if shorter);
 *     no answer, an error or an unknown name: the next sentinel;
 *     an address: that sentinel moves to the front, done.
 *
 * Each sentinel connection is a plain engine (redis-engine.c) with the
 * sentinel's options, closed as soon as it answered. Discovery runs on the
 * I/O thread, started by an engine that is connecting (start_connect()),
 * and is cancelled with that connect. The server found is then checked
 * with ROLE in the engine's handshake (redis_sentinel_check_role()); a
 * server of the wrong role closes the connection, and the next connect
 * (the slot's retry) discovers again.
 *
 * Nothing here prints a password: the sentinel's is only ever in the
 * options of its engine, which never print it either.
 */

#define DEFAULT_SENTINEL_PORT 26379

static gint try_timeout_for_testing;   /* atomic; 0: REDIS_SENTINEL_TRY_TIMEOUT_MS */

void
redis_sentinel_set_try_timeout_for_testing (guint ms)
{
  g_atomic_int_set (&try_timeout_for_testing, (gint) MIN (ms, (guint) G_MAXINT));
}

/* The deadline of one sentinel's connect + query. */
static guint
try_timeout_ms (const RedisOptions *options)
{
  guint ms = (guint) g_atomic_int_get (&try_timeout_for_testing);

  return MIN (options->connect_timeout_ms, ms != 0 ? ms : REDIS_SENTINEL_TRY_TIMEOUT_MS);
}

struct _RedisSentinel
{
  gatomicrefcount  ref_count;
  GMutex           lock;
  /* Protected by lock. */
  GPtrArray       *order;             /* char*: host:port, the next to try first */
  char            *current_sentinel;
  char            *current_server;

  /* Failover (protected by lock): the engines connected through this
   * state, and the connection to a sentinel listening for +switch-master
   * while there are any. */
  GPtrArray       *tracked;           /* Tracked* */
  RedisOptions    *watch_options;     /* the data options of the last tracked */
  RedisEngine     *watcher;
  GSource         *watch_retry;
  guint64          n_switches;
  GPtrArray       *objects;           /* ObjectLink*: told of every switch */
};

/* An owner told of switches (redis_sentinel_watch_object()): a weak
 * reference set and cleared on the owner's thread, shared with the
 * sources that emit in its context. */
typedef struct
{
  GWeakRef      weak;
  GMainContext *context;
  guint         signal_id;
} ObjectLink;

static void
object_link_clear (gpointer data)
{
  ObjectLink *link = data;

  g_weak_ref_clear (&link->weak);
  g_main_context_unref (link->context);
}

static void
object_link_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, object_link_clear);
}

typedef struct
{
  RedisEngine *engine;
  char        *address;
} Tracked;

static void
tracked_free (gpointer data)
{
  Tracked *t = data;

  redis_engine_unref (t->engine);
  g_free (t->address);
  g_free (t);
}

RedisSentinel *
redis_sentinel_new (const char * const *sentinels)
{
  RedisSentinel *self = g_new0 (RedisSentinel, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->lock);
  self->order = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; sentinels != NULL && sentinels[i] != NULL; i++)
    g_ptr_array_add (self->order, g_strstrip (g_strdup (sentinels[i])));
  self->tracked = g_ptr_array_new_with_free_func (tracked_free);
  self->objects = g_ptr_array_new_with_free_func (object_link_unref);
  return self;
}

RedisSentinel *
redis_sentinel_ref (RedisSentinel *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
redis_sentinel_unref (RedisSentinel *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  /* Nothing is tracked (each tracked engine's options hold a reference),
   * and the watcher holds one too: both are gone. */
  g_assert (self->tracked->len == 0 && self->watcher == NULL);
  g_ptr_array_unref (self->tracked);
  g_ptr_array_unref (self->objects);
  redis_options_free (self->watch_options);
  g_ptr_array_unref (self->order);
  g_free (self->current_sentinel);
  g_free (self->current_server);
  g_mutex_clear (&self->lock);
  g_free (self);
}

char *
redis_sentinel_dup_current_sentinel (RedisSentinel *self)
{
  char *ret;

  g_mutex_lock (&self->lock);
  ret = g_strdup (self->current_sentinel);
  g_mutex_unlock (&self->lock);
  return ret;
}

char *
redis_sentinel_dup_current_server (RedisSentinel *self)
{
  char *ret;

  g_mutex_lock (&self->lock);
  ret = g_strdup (self->current_server);
  g_mutex_unlock (&self->lock);
  return ret;
}

gboolean
redis_sentinel_parse_address (const char  *text,
                              char       **host,
                              guint       *port)
{
  const char *colon;
  const char *host_start = text;
  gsize host_len;
  guint64 value = DEFAULT_SENTINEL_PORT;

  if (text == NULL || text[0] == '\0')
    return FALSE;
  if (text[0] == '[')
    {
      const char *close = strchr (text, ']');

      if (close == NULL || close == text + 1)
        return FALSE;
      host_start = text + 1;
      host_len = close - host_start;
      colon = close[1] == ':' ? close + 1 : NULL;
      if (close[1] != '\0' && colon == NULL)
        return FALSE;
    }
  else
    {
      colon = strrchr (text, ':');
      if (colon != NULL && strchr (text, ':') != colon)
        return FALSE;   /* a bare IPv6 address needs brackets */
      host_len = colon != NULL ? (gsize) (colon - text) : strlen (text);
      if (host_len == 0)
        return FALSE;
    }
  if (colon != NULL &&
      (!g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &value, NULL)))
    return FALSE;
  for (gsize i = 0; i < host_len; i++)
    if (!g_ascii_isalnum (host_start[i]) && strchr ("-._:%", host_start[i]) == NULL)
      return FALSE;

  *host = g_strndup (host_start, host_len);
  *port = (guint) value;
  return TRUE;
}

static char *
format_address (const char *host,
                guint       port)
{
  if (strchr (host, ':') != NULL)
    return g_strdup_printf ("[%s]:%u", host, port);
  return g_strdup_printf ("%s:%u", host, port);
}

/* The options of a connection to the sentinel at @host:@port, from the
 * data node's @o: the sentinel's credentials, the same TLS settings (TLS
 * to the sentinels too, with the same CA and client certificate: a
 * deployment with tls-port on the data servers has it on its sentinels),
 * the deadlines @try_ms, no health checks. Not tls_server_name: that is
 * the name of the servers found, and a sentinel is checked against the
 * host of its own address (redis-tls.c). */
static RedisOptions *
sentinel_options_new (const RedisOptions *o,
                      char               *host,   /* taken */
                      guint               port,
                      guint               try_ms)
{
  RedisOptions *so = redis_options_new ();

  g_free (so->host);
  so->host = host;
  so->port = port;
  so->username = g_strdup (o->sentinel_username);
  so->password = g_strdup (o->sentinel_password);
  so->tls = o->tls;
  so->tls_ca_file = g_strdup (o->tls_ca_file);
  so->tls_certificate_file = g_strdup (o->tls_certificate_file);
  so->tls_key_file = g_strdup (o->tls_key_file);
  so->tls_validation_flags = o->tls_validation_flags;
  so->connect_timeout_ms = try_ms;
  so->command_timeout_ms = try_ms;
  so->stall_timeout_ms = 0;
  so->health_check_ms = 0;
  return so;
}

/* ---- discovery ---------------------------------------------------------- */

typedef struct
{
  RedisSentinel   *state;
  RedisOptions    *options;      /* the data node's (the group name, role, TLS) */
  GPtrArray       *order;        /* a snapshot of state->order */
  guint            next;
  GString         *failures;     /* "s1: why; s2: why" */
  char            *trying;       /* the sentinel being asked */
  RedisEngine     *engine;       /* its connection */
  guint            try_ms;
  char            *host;         /* the answer */
  guint            port;
  gboolean         only_tls_failed;   /* every sentinel tried failed its TLS handshake */
} Discovery;

static void
discovery_free (gpointer data)
{
  Discovery *d = data;

  if (d->engine != NULL)
    {
      redis_engine_close (d->engine, NULL);
      redis_engine_unref (d->engine);
    }
  g_clear_pointer (&d->state, redis_sentinel_unref);
  redis_options_free (d->options);
  g_ptr_array_unref (d->order);
  g_string_free (d->failures, TRUE);
  g_free (d->trying);
  g_free (d->host);
  g_free (d);
}

static void discovery_try_next (GTask *task);

static void
discovery_failed_one (GTask        *task,
                      const char   *why,
                      const GError *error)
{
  Discovery *d = g_task_get_task_data (task);

  if (!g_error_matches (error, REDIS_ERROR, REDIS_ERROR_TLS_FAILED))
    d->only_tls_failed = FALSE;
  if (d->failures->len > 0)
    g_string_append (d->failures, "; ");
  g_string_append_printf (d->failures, "%s: %s", d->trying, why);
  if (d->engine != NULL)
    {
      redis_engine_close (d->engine, NULL);
      g_clear_pointer (&d->engine, redis_engine_unref);
    }
  discovery_try_next (task);
}

/* The address of a replica that the sentinel reports up, picked at random,
 * from a SENTINEL replicas reply (an array of flat field/value arrays). */
static gboolean
pick_replica (RedisReply  *reply,
              char       **host,
              guint       *port)
{
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func (g_free);
  guint n = redis_reply_get_n_elements (reply);

  for (guint i = 0; i < n; i++)
    {
      RedisReply *entry = redis_reply_get_element (reply, i);
      const char *ip = NULL, *port_text = NULL, *flags = NULL;
      guint m;

      if (redis_reply_get_kind (entry) != REDIS_REPLY_KIND_ARRAY)
        continue;
      m = redis_reply_get_n_elements (entry);
      for (guint j = 0; j + 1 < m; j += 2)
        {
          const char *key = redis_reply_get_text (redis_reply_get_element (entry, j));
          const char *value = redis_reply_get_text (redis_reply_get_element (entry, j + 1));

          if (key == NULL || value == NULL)
            continue;
          if (g_str_equal (key, "ip"))
            ip = value;
          else if (g_str_equal (key, "port"))
            port_text = value;
          else if (g_str_equal (key, "flags"))
            flags = value;
        }
      if (ip == NULL || port_text == NULL ||
          (flags != NULL && (strstr (flags, "s_down") != NULL || strstr (flags, "o_down") != NULL ||
                             strstr (flags, "disconnected") != NULL)))
        continue;
      g_ptr_array_add (candidates, g_strdup_printf ("%s\n%s", ip, port_text));
    }

  while (candidates->len > 0)
    {
      guint pick = g_random_int_range (0, candidates->len);
      char *entry = g_ptr_array_index (candidates, pick);
      char *nl = strchr (entry, '\n');
      guint64 value;

      if (g_ascii_string_to_unsigned (nl + 1, 10, 1, 65535, &value, NULL))
        {
          *host = g_strndup (entry, nl - entry);
          *port = (guint) value;
          return TRUE;
        }
      g_ptr_array_remove_index_fast (candidates, pick);
    }
  return FALSE;
}

/* The address in an answer to SENTINEL get-master-addr-by-name. */
static gboolean
parse_master_address (RedisReply  *reply,
                      char       **host,
                      guint       *port)
{
  const char *host_text, *port_text;
  guint64 value;

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY ||
      redis_reply_get_n_elements (reply) != 2 ||
      (host_text = redis_reply_get_text (redis_reply_get_element (reply, 0))) == NULL ||
      (port_text = redis_reply_get_text (redis_reply_get_element (reply, 1))) == NULL ||
      !g_ascii_string_to_unsigned (port_text, 10, 1, 65535, &value, NULL) ||
      host_text[0] == '\0')
    return FALSE;
  *host = g_strdup (host_text);
  *port = (guint) value;
  return TRUE;
}

static void
query_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      data)
{
  g_autoptr(GTask) task = data;
  Discovery *d = g_task_get_task_data (task);
  g_autoptr(GPtrArray) replies = NULL;
  g_autoptr(GError) error = NULL;
  RedisReply *reply;

  replies = g_task_propagate_pointer (G_TASK (result), &error);
  if (g_task_return_error_if_cancelled (task))
    return;
  if (replies == NULL)
    {
      discovery_failed_one (task, error->message, error);
      return;
    }
  reply = g_ptr_array_index (replies, 0);
  if (redis_reply_get_kind (reply) == REDIS_REPLY_KIND_ERROR)
    {
      gsize len = 0;
      const char *text = redis_reply_get_string (reply, &len);
      g_autofree char *escaped = redis_text_escape (text, len);

      discovery_failed_one (task, escaped, NULL);
      return;
    }

  if (d->options->role == REDIS_SERVER_ROLE_REPLICA)
    {
      if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY ||
          !pick_replica (reply, &d->host, &d->port))
        {
          discovery_failed_one (task, "it knows no replica that is up", NULL);
          return;
        }
    }
  else
    {
      if (redis_reply_is_nil (reply))
        {
          discovery_failed_one (task, "it does not monitor this master name", NULL);
          return;
        }
      if (!parse_master_address (reply, &d->host, &d->port))
        {
          discovery_failed_one (task, "its answer to SENTINEL get-master-addr-by-name "
                                      "is not an address", NULL);
          return;
        }
    }

  /* The sentinel that answered goes to the front of the shared order. */
  g_mutex_lock (&d->state->lock);
  for (guint i = 0; i < d->state->order->len; i++)
    if (g_str_equal (g_ptr_array_index (d->state->order, i), d->trying))
      {
        if (i > 0)
          {
            gpointer moved = g_ptr_array_steal_index (d->state->order, i);

            g_ptr_array_insert (d->state->order, 0, moved);
          }
        break;
      }
  g_free (d->state->current_sentinel);
  d->state->current_sentinel = g_strdup (d->trying);
  g_free (d->state->current_server);
  d->state->current_server = format_address (d->host, d->port);
  g_mutex_unlock (&d->state->lock);

  redis_engine_close (d->engine, NULL);
  g_clear_pointer (&d->engine, redis_engine_unref);
  g_task_return_boolean (task, TRUE);
}

static void
sentinel_connected_cb (GObject      *object,
                       GAsyncResult *result,
                       gpointer      data)
{
  g_autoptr(GTask) task = data;
  Discovery *d = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  const char *by_name[] = { "SENTINEL", "get-master-addr-by-name", d->options->master_name, NULL };
  const char *replicas[] = { "SENTINEL", "replicas", d->options->master_name, NULL };
  const char * const *commands[2] = { NULL, NULL };
  RedisCall *call;

  if (!redis_engine_connect_finish (d->engine, result, &error))
    {
      if (!g_task_return_error_if_cancelled (task))
        discovery_failed_one (task, error->message, error);
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  commands[0] = d->options->role == REDIS_SERVER_ROLE_REPLICA ? replicas : by_name;
  call = redis_call_new_internal (REDIS_CALL_PIPELINE, commands, "SENTINEL query",
                                  d->try_ms, query_done_cb, g_object_ref (task));
  /* Refused (the connection closed at once): the call never runs, and
   * keeps its reference on the task until it is freed. */
  if (!redis_engine_submit (d->engine, call))
    discovery_failed_one (task, "the connection closed", NULL);
  redis_call_unref (call);
}

static void
discovery_try_next (GTask *task)
{
  Discovery *d = g_task_get_task_data (task);
  g_autoptr(RedisOptions) so = NULL;
  g_autofree char *host = NULL;
  guint port;

  if (g_task_return_error_if_cancelled (task))
    return;
  if (d->next >= d->order->len)
    {
      /* A CA or certificate that does not fit every sentinel is a TLS
       * problem, reported as one; anything else is a failure to connect. */
      g_task_return_new_error (task, REDIS_ERROR,
                               d->only_tls_failed && d->order->len > 0 ?
                               REDIS_ERROR_TLS_FAILED : REDIS_ERROR_CONNECT_FAILED,
                               "No sentinel gave the address of the %s of “%s” (%s)",
                               d->options->role == REDIS_SERVER_ROLE_REPLICA ? "replicas" : "primary",
                               d->options->master_name, d->failures->str);
      return;
    }

  g_free (d->trying);
  d->trying = g_strdup (g_ptr_array_index (d->order, d->next++));
  if (!redis_sentinel_parse_address (d->trying, &host, &port))
    {
      discovery_failed_one (task, "not a host:port", NULL);
      return;
    }

  so = sentinel_options_new (d->options, g_steal_pointer (&host), port, d->try_ms);

  d->engine = redis_engine_new (so, redis_worker_get_context ());
  redis_engine_connect_async (d->engine, g_task_get_cancellable (task),
                              sentinel_connected_cb, g_object_ref (task));
}

void
redis_sentinel_discover_async (const RedisOptions  *options,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  Discovery *d = g_new0 (Discovery, 1);

  g_return_if_fail (options->sentinel != NULL);

  g_task_set_source_tag (task, redis_sentinel_discover_async);
  g_task_set_name (task, "[redispool] sentinel discovery");
  d->state = redis_sentinel_ref (options->sentinel);
  d->options = redis_options_copy (options);
  d->failures = g_string_new (NULL);
  d->only_tls_failed = TRUE;
  d->try_ms = try_timeout_ms (options);
  g_mutex_lock (&d->state->lock);
  d->order = g_ptr_array_copy (d->state->order, (GCopyFunc) g_strdup, NULL);
  g_ptr_array_set_free_func (d->order, g_free);
  g_mutex_unlock (&d->state->lock);
  g_task_set_task_data (task, d, discovery_free);

  if (options->master_name == NULL || options->master_name[0] == '\0')
    {
      g_task_return_new_error (task, REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                               "Sentinels are set but no master-name");
      return;
    }
  discovery_try_next (task);
}

gboolean
redis_sentinel_discover_finish (GAsyncResult  *result,
                                char         **host,
                                guint         *port,
                                GError       **error)
{
  Discovery *d = g_task_get_task_data (G_TASK (result));

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  *host = g_strdup (d->host);
  *port = d->port;
  return TRUE;
}

GError *
redis_sentinel_check_role (RedisServerRole  wanted,
                           RedisReply      *role_reply,
                           const char      *address)
{
  const char *role = NULL;
  const char *want = wanted == REDIS_SERVER_ROLE_REPLICA ? "slave" : "master";

  if (redis_reply_get_kind (role_reply) == REDIS_REPLY_KIND_ARRAY &&
      redis_reply_get_n_elements (role_reply) > 0)
    role = redis_reply_get_text (redis_reply_get_element (role_reply, 0));
  if (role != NULL && g_str_equal (role, want))
    return NULL;

  if (role != NULL && (g_str_equal (role, "master") || g_str_equal (role, "slave") ||
                       g_str_equal (role, "sentinel")))
    return g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                        "%s, named by Sentinel, is a %s, not a %s (ROLE); "
                        "discovery is retried on the next connect",
                        address, g_str_equal (role, "master") ? "primary" :
                                 g_str_equal (role, "slave") ? "replica" : "sentinel",
                        wanted == REDIS_SERVER_ROLE_REPLICA ? "replica" : "primary");
  return g_error_new (REDIS_ERROR, REDIS_ERROR_CONNECT_FAILED,
                      "%s, named by Sentinel, did not answer ROLE with a role", address);
}

const char *
redis_sentinel_reply_means_unusable (RedisServerRole  role,
                                     RedisReply      *error_reply)
{
  gsize len = 0;
  const char *text = redis_reply_get_string (error_reply, &len);

#define STARTS_WITH(word) (len >= sizeof word - 1 && memcmp (text, word, sizeof word - 1) == 0 && \
                           (len == sizeof word - 1 || text[sizeof word - 1] == ' '))
  if (text == NULL)
    return NULL;
  if (STARTS_WITH ("LOADING"))
    return "LOADING";
  if (role == REDIS_SERVER_ROLE_PRIMARY && STARTS_WITH ("READONLY"))
    return "READONLY";
  if (role == REDIS_SERVER_ROLE_REPLICA && STARTS_WITH ("MASTERDOWN"))
    return "MASTERDOWN";
#undef STARTS_WITH
  return NULL;
}

void
redis_sentinel_add_info (RedisSentinel   *self,
                         GVariantBuilder *builder)
{
  if (self == NULL)
    return;
  g_mutex_lock (&self->lock);
  if (self->current_sentinel != NULL)
    g_variant_builder_add (builder, "{sv}", "sentinel",
                           g_variant_new_string (self->current_sentinel));
  if (self->current_server != NULL)
    g_variant_builder_add (builder, "{sv}", "primary",
                           g_variant_new_string (self->current_server));
  g_mutex_unlock (&self->lock);
}

/* ---- failover: +switch-master ------------------------------------------- */

#define WATCH_RETRY_MS 1000

static void watcher_start (RedisSentinel *self);

typedef struct
{
  RedisSentinel *state;
  char          *payload;     /* "<name> <old-ip> <old-port> <new-ip> <new-port>" */
} Switch;

typedef struct
{
  ObjectLink *link;
  char       *old_address;
  char       *new_address;
} Emission;

static gboolean
emit_cb (gpointer data)
{
  Emission *e = data;
  GObject *object = g_weak_ref_get (&e->link->weak);

  if (object != NULL)
    {
      g_signal_emit (object, e->link->signal_id, 0, e->old_address, e->new_address);
      g_object_unref (object);
    }
  return G_SOURCE_REMOVE;
}

static void
emission_free (gpointer data)
{
  Emission *e = data;

  object_link_unref (e->link);
  g_free (e->old_address);
  g_free (e->new_address);
  g_free (e);
}

/* I/O thread: the primary is now @new_address. Engines connected to
 * @old_address (or, with %NULL, to any other address) are closed as lost;
 * their owners reconnect, and discovery finds the new primary.
 * primary-changed is emitted once per old address. */
static void
apply_switch (RedisSentinel *self,
              const char    *old_address,
              const char    *new_address)
{
  g_autoptr(GPtrArray) doomed = g_ptr_array_new_with_free_func (tracked_free);
  g_autoptr(GPtrArray) old_addresses = g_ptr_array_new ();
  g_autoptr(GPtrArray) emissions = g_ptr_array_new ();   /* each freed by its source */

  g_mutex_lock (&self->lock);
  if (self->watch_options == NULL)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  if (self->watch_options->role == REDIS_SERVER_ROLE_PRIMARY)
    {
      /* A replica's connections stay: the replicas follow the new primary. */
      for (guint i = 0; i < self->tracked->len; )
        {
          Tracked *t = g_ptr_array_index (self->tracked, i);

          if (old_address != NULL ? g_str_equal (t->address, old_address)
                                  : !g_str_equal (t->address, new_address))
            g_ptr_array_add (doomed, g_ptr_array_steal_index_fast (self->tracked, i));
          else
            i++;
        }
      g_free (self->current_server);
      self->current_server = g_strdup (new_address);
    }
  if (old_address != NULL)
    g_ptr_array_add (old_addresses, (gpointer) old_address);
  else
    for (guint i = 0; i < doomed->len; i++)
      {
        const char *address = ((Tracked *) g_ptr_array_index (doomed, i))->address;

        if (!g_ptr_array_find_with_equal_func (old_addresses, address, g_str_equal, NULL))
          g_ptr_array_add (old_addresses, (gpointer) address);
      }
  if (old_addresses->len > 0)
    self->n_switches++;
  for (guint a = 0; a < old_addresses->len; a++)
    for (guint i = 0; i < self->objects->len; i++)
      {
        Emission *e = g_new0 (Emission, 1);

        e->link = g_atomic_rc_box_acquire (g_ptr_array_index (self->objects, i));
        e->old_address = g_strdup (g_ptr_array_index (old_addresses, a));
        e->new_address = g_strdup (new_address);
        g_ptr_array_add (emissions, e);
      }
  g_mutex_unlock (&self->lock);

  /* Nothing more is written to the old primary (calls not written yet go
   * to other connections, or wait for the new one); the calls written
   * already get their replies, up to the library's internal deadline.
   * Closed before primary-changed is emitted: a call made in its handler,
   * or after it, never reaches the old primary. */
  if (doomed->len > 0)
    g_debug ("the primary is now %s (Sentinel): %u connection(s) to the old one replaced",
             new_address, doomed->len);
  for (guint i = 0; i < doomed->len; i++)
    {
      Tracked *t = g_ptr_array_index (doomed, i);

      redis_engine_close_async (t->engine,
                                redis_options_get_internal_timeout_ms (redis_engine_get_options (t->engine)),
                                NULL, NULL, NULL);
    }
  for (guint i = 0; i < emissions->len; i++)
    {
      Emission *e = g_ptr_array_index (emissions, i);
      GSource *source = g_idle_source_new ();

      g_source_set_static_name (source, "[redispool] primary-changed");
      g_source_set_callback (source, emit_cb, e, emission_free);
      g_source_attach (source, e->link->context);
      g_source_unref (source);
    }
}

/* I/O thread: a sentinel announced a switch. */
static gboolean
switch_in_worker (gpointer data)
{
  Switch *sw = data;
  RedisSentinel *self = sw->state;
  g_auto(GStrv) parts = g_strsplit (sw->payload, " ", -1);
  g_autofree char *old_address = NULL;
  g_autofree char *new_address = NULL;
  guint64 old_port, new_port;
  gboolean ours;

  if (g_strv_length (parts) != 5 ||
      !g_ascii_string_to_unsigned (parts[2], 10, 1, 65535, &old_port, NULL) ||
      !g_ascii_string_to_unsigned (parts[4], 10, 1, 65535, &new_port, NULL))
    return G_SOURCE_REMOVE;
  old_address = format_address (parts[1], (guint) old_port);
  new_address = format_address (parts[3], (guint) new_port);

  g_mutex_lock (&self->lock);
  ours = self->watch_options != NULL && g_strcmp0 (parts[0], self->watch_options->master_name) == 0;
  g_mutex_unlock (&self->lock);
  if (ours)
    apply_switch (self, old_address, new_address);
  return G_SOURCE_REMOVE;
}

static void
switch_free (gpointer data)
{
  Switch *sw = data;

  redis_sentinel_unref (sw->state);
  g_free (sw->payload);
  g_free (sw);
}

/* With the watcher's I/O lock held: must not call into that engine. */
static RedisEnginePushResult
watcher_push_cb (RedisReply *reply,
                 gpointer    data)
{
  RedisSentinel *self = data;
  const char *kind, *channel, *payload;
  Switch *sw;
  GSource *source;

  if (redis_reply_get_kind (reply) != REDIS_REPLY_KIND_ARRAY ||
      redis_reply_get_n_elements (reply) != 3 ||
      (kind = redis_reply_get_text (redis_reply_get_element (reply, 0))) == NULL ||
      !g_str_equal (kind, "message"))
    return REDIS_ENGINE_PUSH_PASS;   /* the SUBSCRIBE confirmation: its call's reply */

  channel = redis_reply_get_text (redis_reply_get_element (reply, 1));
  payload = redis_reply_get_text (redis_reply_get_element (reply, 2));
  if (channel == NULL || payload == NULL || !g_str_equal (channel, "+switch-master"))
    return REDIS_ENGINE_PUSH_TAKEN;

  sw = g_new0 (Switch, 1);
  sw->state = redis_sentinel_ref (self);
  sw->payload = g_strdup (payload);
  source = g_idle_source_new ();
  g_source_set_static_name (source, "[redispool] sentinel switch");
  g_source_set_callback (source, switch_in_worker, sw, switch_free);
  g_source_attach (source, redis_worker_get_context ());
  g_source_unref (source);
  return REDIS_ENGINE_PUSH_TAKEN;
}

static gboolean
watch_retry_cb (gpointer data)
{
  RedisSentinel *self = data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->watch_retry, g_source_unref);
  g_mutex_unlock (&self->lock);
  watcher_start (self);
  return G_SOURCE_REMOVE;
}

/* Any thread, no engine lock held: the watcher closed. */
static void
watcher_closed_cb (RedisEngine  *engine,
                   const GError *reason,
                   GQueue       *unsent,
                   gpointer      data)
{
  RedisSentinel *self = data;
  RedisEngine *watcher = NULL;

  g_mutex_lock (&self->lock);
  if (self->watcher == engine)
    watcher = g_steal_pointer (&self->watcher);
  /* Lost while connections still need it: again, on the next sentinel
   * in the order, after a pause. */
  if (watcher != NULL && self->tracked->len > 0 && self->watch_retry == NULL)
    {
      GPtrArray *order = self->order;

      if (order->len > 1)
        {
          gpointer first = g_ptr_array_steal_index (order, 0);

          g_ptr_array_add (order, first);
        }
      self->watch_retry = g_timeout_source_new (WATCH_RETRY_MS);
      g_source_set_static_name (self->watch_retry, "[redispool] sentinel watch retry");
      g_source_set_callback (self->watch_retry, watch_retry_cb, redis_sentinel_ref (self),
                             (GDestroyNotify) redis_sentinel_unref);
      g_source_attach (self->watch_retry, redis_worker_get_context ());
    }
  g_mutex_unlock (&self->lock);
  if (watcher != NULL)
    redis_engine_unref (watcher);
}

typedef struct
{
  RedisSentinel *state;
  RedisEngine   *engine;
} WatchStart;

static void
watch_start_free (WatchStart *w)
{
  redis_sentinel_unref (w->state);
  redis_engine_unref (w->engine);
  g_free (w);
}

/* The watcher's first replies: the primary's address as the sentinel
 * knows it when the subscription starts, then the SUBSCRIBE confirmation.
 * A switch announced while no watcher listened (it was connecting, or
 * lost) is caught here: connections to any other address are replaced. */
static void
watcher_subscribed_cb (GObject      *object,
                       GAsyncResult *result,
                       gpointer      data)
{
  g_autoptr(RedisSentinel) self = data;
  g_autoptr(GPtrArray) replies = g_task_propagate_pointer (G_TASK (result), NULL);
  g_autofree char *host = NULL;
  g_autofree char *address = NULL;
  guint port;

  if (replies == NULL || replies->len < 1 ||
      !parse_master_address (g_ptr_array_index (replies, 0), &host, &port))
    return;
  address = format_address (host, port);
  apply_switch (self, NULL, address);
}

static void
watcher_connected_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      data)
{
  WatchStart *w = data;
  const char *by_name[] = { "SENTINEL", "get-master-addr-by-name", NULL, NULL };
  const char *subscribe[] = { "SUBSCRIBE", "+switch-master", NULL };
  const char * const *commands[] = { by_name, subscribe, NULL };
  gboolean primary;
  RedisCall *call;

  g_mutex_lock (&w->state->lock);
  primary = w->state->watch_options != NULL &&
            w->state->watch_options->role == REDIS_SERVER_ROLE_PRIMARY;
  by_name[2] = primary ? w->state->watch_options->master_name : NULL;
  g_mutex_unlock (&w->state->lock);

  if (redis_engine_connect_finish (w->engine, result, NULL))
    {
      /* One write: the sentinel runs both before its next failover step,
       * so no switch falls between the answer and the subscription. */
      call = redis_call_new_internal (REDIS_CALL_PIPELINE, primary ? commands : commands + 1,
                                      "SUBSCRIBE +switch-master",
                                      redis_engine_get_options (w->engine)->connect_timeout_ms,
                                      primary ? watcher_subscribed_cb : NULL,
                                      primary ? redis_sentinel_ref (w->state) : NULL);
      if (!redis_engine_submit (w->engine, call))
        redis_call_fail (call, g_error_new_literal (REDIS_ERROR, REDIS_ERROR_CLOSED, "closed"));
      redis_call_unref (call);
    }
  /* A failed connect closes the engine: watcher_closed_cb() retries. */
  watch_start_free (w);
}

static gboolean
watcher_start_in_worker (gpointer data)
{
  watcher_start (data);
  return G_SOURCE_REMOVE;
}

/* I/O thread: connects the watcher to the first sentinel in the order, if
 * connections need one and there is none. */
static void
watcher_start (RedisSentinel *self)
{
  g_autoptr(RedisOptions) so = NULL;
  g_autofree char *host = NULL;
  RedisEngine *engine;
  WatchStart *w;
  guint port;

  g_mutex_lock (&self->lock);
  if (self->watcher != NULL || self->watch_retry != NULL || self->tracked->len == 0 ||
      self->watch_options == NULL || self->order->len == 0 ||
      !redis_sentinel_parse_address (g_ptr_array_index (self->order, 0), &host, &port))
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  so = sentinel_options_new (self->watch_options, g_steal_pointer (&host), port,
                             try_timeout_ms (self->watch_options));
  engine = redis_engine_new (so, redis_worker_get_context ());
  redis_engine_set_push_func (engine, watcher_push_cb, redis_sentinel_ref (self),
                              (GDestroyNotify) redis_sentinel_unref);
  redis_engine_set_closed_func (engine, watcher_closed_cb, redis_sentinel_ref (self),
                                (GDestroyNotify) redis_sentinel_unref);
  self->watcher = redis_engine_ref (engine);
  g_mutex_unlock (&self->lock);

  w = g_new0 (WatchStart, 1);
  w->state = redis_sentinel_ref (self);
  w->engine = engine;
  redis_engine_connect_async (engine, NULL, watcher_connected_cb, w);
}

void
redis_sentinel_track (RedisSentinel      *self,
                      RedisEngine        *engine,
                      const RedisOptions *options,
                      const char         *address)
{
  Tracked *t = g_new0 (Tracked, 1);
  RedisOptions *copy = redis_options_copy (options);
  GSource *source;

  /* The copy must not hold @self: it would never be freed. */
  g_clear_pointer (&copy->sentinel, redis_sentinel_unref);
  t->engine = redis_engine_ref (engine);
  t->address = g_strdup (address);
  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->tracked, t);
  if (self->watch_options == NULL)
    self->watch_options = g_steal_pointer (&copy);
  g_mutex_unlock (&self->lock);
  redis_options_free (copy);

  /* Deferred: the caller holds @engine's I/O lock. */
  source = g_idle_source_new ();
  g_source_set_static_name (source, "[redispool] sentinel watch");
  g_source_set_callback (source, watcher_start_in_worker, redis_sentinel_ref (self),
                         (GDestroyNotify) redis_sentinel_unref);
  g_source_attach (source, redis_worker_get_context ());
  g_source_unref (source);
}

void
redis_sentinel_untrack (RedisSentinel *self,
                        RedisEngine   *engine)
{
  Tracked *found = NULL;
  RedisEngine *watcher = NULL;
  GSource *retry = NULL;

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->tracked->len; i++)
    if (((Tracked *) g_ptr_array_index (self->tracked, i))->engine == engine)
      {
        found = g_ptr_array_steal_index_fast (self->tracked, i);
        break;
      }
  /* Nobody left to follow a switch: the watcher goes too. */
  if (self->tracked->len == 0)
    {
      watcher = g_steal_pointer (&self->watcher);
      retry = g_steal_pointer (&self->watch_retry);
    }
  g_mutex_unlock (&self->lock);

  if (retry != NULL)
    {
      g_source_destroy (retry);
      g_source_unref (retry);
    }
  if (watcher != NULL)
    {
      redis_engine_close (watcher, NULL);
      redis_engine_unref (watcher);
    }
  if (found != NULL)
    tracked_free (found);
}

gpointer
redis_sentinel_watch_object (RedisSentinel *self,
                             GObject       *object,
                             guint          signal_id)
{
  ObjectLink *link = g_atomic_rc_box_new0 (ObjectLink);

  g_weak_ref_init (&link->weak, object);
  link->context = g_main_context_ref_thread_default ();
  link->signal_id = signal_id;
  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->objects, g_atomic_rc_box_acquire (link));
  g_mutex_unlock (&self->lock);
  return link;
}

void
redis_sentinel_unwatch_object (RedisSentinel *self,
                               gpointer       watch)
{
  ObjectLink *link = watch;

  g_mutex_lock (&self->lock);
  g_ptr_array_remove (self->objects, link);
  g_mutex_unlock (&self->lock);
  /* On the owner's thread, before its sources could find it. */
  g_weak_ref_set (&link->weak, NULL);
  object_link_unref (link);
}
