/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config-private.h"

#include "redis-call-private.h"
#include "redis-credentials-private.h"
#include "redis-error.h"

/* The provider as set, reference counted so that a request being handed
 * to it keeps its data alive while another thread replaces it. */
typedef struct
{
  gconstpointer                 owner;
  GMainContext                 *context;
  RedisCredentialsProviderFunc  func;
  gpointer                      data;
  GDestroyNotify                notify;
} Provider;

static void
provider_clear (gpointer p)
{
  Provider *provider = p;

  if (provider->notify != NULL)
    provider->notify (provider->data);
  g_main_context_unref (provider->context);
}

static void
provider_unref (Provider *provider)
{
  g_atomic_rc_box_release_full (provider, provider_clear);
}

struct _RedisCredentials
{
  GMutex    lock;
  /* Protected by lock. */
  char     *username;
  char     *password;   /* a secret: see redis_options_clear_secret() */
  Provider *provider;   /* nullable */
};

RedisCredentials *
redis_credentials_new (const RedisOptions *options)
{
  RedisCredentials *self = g_atomic_rc_box_new0 (RedisCredentials);

  g_mutex_init (&self->lock);
  self->username = g_strdup (options->username);
  self->password = g_strdup (options->password);
  return self;
}

RedisCredentials *
redis_credentials_copy (RedisCredentials *self)
{
  RedisCredentials *copy = g_atomic_rc_box_new0 (RedisCredentials);

  g_mutex_init (&copy->lock);
  g_mutex_lock (&self->lock);
  copy->username = g_strdup (self->username);
  copy->password = g_strdup (self->password);
  g_mutex_unlock (&self->lock);
  return copy;
}

RedisCredentials *
redis_credentials_ref (RedisCredentials *self)
{
  return g_atomic_rc_box_acquire (self);
}

static void
credentials_clear (gpointer data)
{
  RedisCredentials *self = data;

  g_free (self->username);
  redis_options_clear_secret (&self->password);
  g_clear_pointer (&self->provider, provider_unref);
  g_mutex_clear (&self->lock);
}

void
redis_credentials_unref (RedisCredentials *self)
{
  if (self != NULL)
    g_atomic_rc_box_release_full (self, credentials_clear);
}

void
redis_credentials_set (RedisCredentials *self,
                       const char       *username,
                       const char       *password)
{
  char *new_username = g_strdup (username);
  char *new_password = g_strdup (password);
  char *old_username;
  char *old_password;

  g_mutex_lock (&self->lock);
  old_username = self->username;
  old_password = self->password;
  self->username = new_username;
  self->password = new_password;
  g_mutex_unlock (&self->lock);

  g_free (old_username);
  redis_options_clear_secret (&old_password);
}

RedisEngine *
redis_credentials_engine_new (RedisCredentials   *self,
                              const RedisOptions *options,
                              GMainContext       *home)
{
  RedisOptions *copy = redis_options_copy (options);
  RedisEngine *engine;

  g_free (copy->username);
  redis_options_clear_secret (&copy->password);
  g_mutex_lock (&self->lock);
  copy->username = g_strdup (self->username);
  copy->password = g_strdup (self->password);
  g_mutex_unlock (&self->lock);

  engine = redis_engine_new (copy, home);
  redis_options_free (copy);   /* zeroes its password */
  return engine;
}

void
redis_credentials_reauth (RedisEngine *engine,
                          const char  *username,
                          const char  *password,
                          guint        timeout_ms)
{
  const char *auth[] = { "AUTH", password, NULL };
  const char *auth_user[] = { "AUTH", username, password, NULL };
  RedisCall *call;

  /* Not connected yet: the handshake will use them. */
  if (redis_engine_update_credentials (engine, username, password) || password == NULL)
    return;

  /* No task: no caller waits, the reply is dropped (a refused AUTH leaves
   * the session as it was, so there is nothing to undo). Not internal: it
   * is queued like a user's call, behind the handshake and in order. */
  call = redis_call_new_internal (REDIS_CALL_COMMAND,
                                  (const char * const *[]) {
                                    username != NULL ? auth_user : auth, NULL },
                                  "AUTH (credential rotation)", timeout_ms, NULL, NULL);
  call->secret = TRUE;
  call->no_retry = TRUE;
  redis_engine_submit (engine, call);
  redis_call_unref (call);
}

/* ---- the provider -------------------------------------------------------- */

static void
replace_provider (RedisCredentials *self,
                  Provider         *provider,
                  gconstpointer     only_owner)
{
  Provider *old = NULL;

  g_mutex_lock (&self->lock);
  if (only_owner == NULL || (self->provider != NULL && self->provider->owner == only_owner))
    {
      old = self->provider;
      self->provider = provider;
      provider = NULL;
    }
  g_mutex_unlock (&self->lock);

  /* Outside the lock: the notify is the application's. */
  g_clear_pointer (&old, provider_unref);
  g_clear_pointer (&provider, provider_unref);
}

void
redis_credentials_set_provider (RedisCredentials             *self,
                                gconstpointer                 owner,
                                GMainContext                 *context,
                                RedisCredentialsProviderFunc  func,
                                gpointer                      data,
                                GDestroyNotify                notify)
{
  Provider *provider = NULL;

  if (func != NULL)
    {
      provider = g_atomic_rc_box_new0 (Provider);
      provider->owner = owner;
      provider->context = g_main_context_ref (context);
      provider->func = func;
      provider->data = data;
      provider->notify = notify;
    }
  else if (notify != NULL)
    notify (data);
  replace_provider (self, provider, NULL);
}

void
redis_credentials_drop_provider (RedisCredentials *self,
                                 gconstpointer     owner)
{
  replace_provider (self, NULL, owner);
}

gboolean
redis_credentials_has_provider (RedisCredentials *self)
{
  gboolean has;

  g_mutex_lock (&self->lock);
  has = self->provider != NULL;
  g_mutex_unlock (&self->lock);
  return has;
}

typedef struct
{
  Provider                *provider;
  RedisCredentialsRequest *request;
} ProviderCall;

static void
provider_call_free (gpointer data)
{
  ProviderCall *call = data;

  g_object_unref (call->request);   /* unanswered: it fails */
  provider_unref (call->provider);
  g_free (call);
}

/* The provider's context. */
static gboolean
provider_call_cb (gpointer data)
{
  ProviderCall *call = data;

  call->provider->func (call->request, call->provider->data);
  return G_SOURCE_REMOVE;
}

gboolean
redis_credentials_ask (RedisCredentials         *self,
                       RedisCredentialsDoneFunc  done,
                       gpointer                  data,
                       GDestroyNotify            notify,
                       guint                     index,
                       gboolean                  stale)
{
  ProviderCall *call;
  Provider *provider;

  g_mutex_lock (&self->lock);
  provider = self->provider != NULL ? g_atomic_rc_box_acquire (self->provider) : NULL;
  g_mutex_unlock (&self->lock);

  if (provider == NULL)
    {
      if (notify != NULL)
        notify (data);
      return FALSE;
    }
  call = g_new0 (ProviderCall, 1);
  call->provider = provider;
  call->request = redis_credentials_request_new (done, data, notify, index, stale);
  g_main_context_invoke_full (provider->context, G_PRIORITY_DEFAULT, provider_call_cb,
                              call, provider_call_free);
  return TRUE;
}

/* ---- RedisCredentialsRequest -------------------------------------------- */

/**
 * RedisCredentialsRequest:
 *
 * A request for credentials, handed to the credentials provider of a
 * [class@Redis.Pool] (see [method@Redis.Pool.set_credentials_provider])
 * before one of its shared connections connects, of a
 * [class@Redis.Subscriber] ([method@Redis.Subscriber.set_credentials_provider])
 * before it connects, or of a [class@Redis.ClusterPool]
 * ([method@Redis.ClusterPool.set_credentials_provider]) before a connection
 * to one of its nodes connects.
 *
 * The provider answers once, at once or later and from any thread, with
 * [method@Redis.CredentialsRequest.complete] (the username and password,
 * or token, to authenticate with) or [method@Redis.CredentialsRequest.fail];
 * the connection waits until then. A request dropped without an answer
 * fails. The credentials of a completed request become the current ones of
 * the pool (subscriber, cluster pool) that asked, as with
 * [method@Redis.Pool.set_credentials] but without re-authenticating the
 * connections that are up.
 *
 * When [method@Redis.CredentialsRequest.get_stale] is %TRUE, the server
 * refused the credentials last given (for example an expired token): the
 * provider should fetch new ones rather than return cached ones.
 */
struct _RedisCredentialsRequest
{
  GObject                   parent_instance;

  RedisCredentialsDoneFunc  done;
  gpointer                  data;
  GDestroyNotify            notify;
  guint                     index;
  gboolean                  stale;
  gint                      answered;   /* atomic */
};

G_DEFINE_FINAL_TYPE (RedisCredentialsRequest, redis_credentials_request, G_TYPE_OBJECT)

/* Takes the answer once; FALSE if there was one already. */
static gboolean
request_answer (RedisCredentialsRequest *self,
                const char              *username,
                const char              *password,
                const GError            *error)
{
  if (!g_atomic_int_compare_and_exchange (&self->answered, FALSE, TRUE))
    return FALSE;
  self->done (self->data, self->index, username, password, error);
  if (self->notify != NULL)
    self->notify (self->data);
  self->notify = NULL;
  self->data = NULL;
  return TRUE;
}

static void
redis_credentials_request_finalize (GObject *object)
{
  RedisCredentialsRequest *self = REDIS_CREDENTIALS_REQUEST (object);
  g_autoptr(GError) error = g_error_new_literal (REDIS_ERROR, REDIS_ERROR_AUTH_FAILED,
                                                 "The credentials provider gave no answer");

  request_answer (self, NULL, NULL, error);
  G_OBJECT_CLASS (redis_credentials_request_parent_class)->finalize (object);
}

static void
redis_credentials_request_class_init (RedisCredentialsRequestClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = redis_credentials_request_finalize;
}

static void
redis_credentials_request_init (RedisCredentialsRequest *self)
{
}

RedisCredentialsRequest *
redis_credentials_request_new (RedisCredentialsDoneFunc done,
                               gpointer                 data,
                               GDestroyNotify           notify,
                               guint                    index,
                               gboolean                 stale)
{
  RedisCredentialsRequest *self = g_object_new (REDIS_TYPE_CREDENTIALS_REQUEST, NULL);

  self->done = done;
  self->data = data;
  self->notify = notify;
  self->index = index;
  self->stale = stale;
  return self;
}

/**
 * redis_credentials_request_complete:
 * @self: a [class@Redis.CredentialsRequest]
 * @username: (nullable): the ACL user, or %NULL for the `default` user
 * @password: (nullable): the password or token, or %NULL for none
 *
 * Answers the request with credentials: the waiting connection
 * authenticates with them, and so do the pool's later connections until
 * the provider or [method@Redis.Pool.set_credentials] gives others. The
 * password is copied, never logged nor put into a message. Only the first
 * answer counts. May be called from any thread.
 */
void
redis_credentials_request_complete (RedisCredentialsRequest *self,
                                    const char              *username,
                                    const char              *password)
{
  g_return_if_fail (REDIS_IS_CREDENTIALS_REQUEST (self));
  g_return_if_fail (username == NULL || password != NULL);

  request_answer (self, username, password, NULL);
}

/**
 * redis_credentials_request_fail:
 * @self: a [class@Redis.CredentialsRequest]
 * @message: (nullable): why no credentials could be had, for the error
 *   message (it must not contain a secret)
 *
 * Answers the request with no credentials: the connect attempt fails with
 * %REDIS_ERROR_AUTH_FAILED (its message quoting @message) and the pool
 * retries after its backoff, asking again. Only the first answer counts.
 * May be called from any thread.
 */
void
redis_credentials_request_fail (RedisCredentialsRequest *self,
                                const char              *message)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (REDIS_IS_CREDENTIALS_REQUEST (self));

  error = g_error_new (REDIS_ERROR, REDIS_ERROR_AUTH_FAILED,
                       "The credentials provider failed: %s",
                       message != NULL ? message : "no reason given");
  request_answer (self, NULL, NULL, error);
}

/**
 * redis_credentials_request_get_stale:
 * @self: a [class@Redis.CredentialsRequest]
 *
 * Whether the server refused the credentials the pool had (an expired
 * token, a rotated password): the provider should not answer with the
 * same ones from a cache.
 *
 * Returns: %TRUE if the last attempt was refused by `AUTH`
 */
gboolean
redis_credentials_request_get_stale (RedisCredentialsRequest *self)
{
  g_return_val_if_fail (REDIS_IS_CREDENTIALS_REQUEST (self), FALSE);

  return self->stale;
}
