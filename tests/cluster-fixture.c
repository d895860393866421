/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A Redis Cluster on loopback for the cluster suites: see cluster-fixture.h. */

#include <string.h>

#include "cluster-fixture.h"
#include "test-client-helpers.h"

#define SLOTS 16384

/* The cluster is polled with redis-cli (one process per call): at most
 * every POLL_US, so a slow cluster does not get a fork storm on top. */
#define POLL_US (50 * G_TIME_SPAN_MILLISECOND)

/* A free loopback port below 55536 for the cluster bus (redis-server
 * refuses a data port above that without an explicit --cluster-port). */
static char *
free_bus_port (void)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GError) error = NULL;
  guint16 port = 0;

  for (guint attempt = 0; attempt < 100 && port == 0; attempt++)
    {
      g_autoptr(GSocketAddress) address =
        g_inet_socket_address_new (loopback, (guint16) g_random_int_range (20000, 55000));

      g_clear_object (&socket);
      socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
      g_assert_no_error (error);
      if (g_socket_bind (socket, address, FALSE, NULL))
        port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
    }
  g_assert_cmpuint (port, !=, 0);
  g_socket_close (socket, NULL);
  return g_strdup_printf ("%u", port);
}

char *
cluster_fixture_cli_try (ClusterFixture      *self,
                         guint                node,
                         const char * const  *argv,
                         GError             **error)
{
  char *out;

  g_assert_cmpuint (node, <, self->n_nodes);
  out = redis_test_server_cli (self->servers[node], argv, error);
  return out != NULL ? g_strstrip (out) : NULL;
}

char *
cluster_fixture_cli (ClusterFixture     *self,
                     guint               node,
                     const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  char *out = cluster_fixture_cli_try (self, node, argv, &error);

  g_assert_no_error (error);
  return out;
}

char *
cluster_fixture_cli_script (ClusterFixture *self,
                            guint           node,
                            const char     *script)
{
  const char *env = g_getenv ("REDIS_CLI");
  g_autofree char *redis_cli = env != NULL && *env != '\0' ? g_strdup (env) : g_find_program_in_path ("redis-cli");
  g_autofree char *port = cluster_fixture_port_string (self, node);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  char *out = NULL;

  g_assert_nonnull (redis_cli);
  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                              &error, redis_cli, "-h", "127.0.0.1", "-p", port, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, script, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (process));
  return out;
}

guint
cluster_fixture_replica (ClusterFixture *self,
                         guint           primary,
                         guint           nth)
{
  g_assert_cmpuint (primary, <, self->n_primaries);
  g_assert_cmpuint (nth, <, self->replicas_per_primary);
  return self->n_primaries + primary * self->replicas_per_primary + nth;
}

guint16
cluster_fixture_port (ClusterFixture *self,
                      guint           node)
{
  g_assert_cmpuint (node, <, self->n_nodes);
  return redis_test_server_get_port (self->servers[node]);
}

char *
cluster_fixture_port_string (ClusterFixture *self,
                             guint           node)
{
  return g_strdup_printf ("%u", cluster_fixture_port (self, node));
}

char *
cluster_fixture_uri (ClusterFixture *self)
{
  GString *uri = g_string_new (NULL);

  g_string_append_printf (uri, "redis://127.0.0.1:%u", cluster_fixture_port (self, 0));
  for (guint i = 1; i < self->n_primaries; i++)
    g_string_append_printf (uri, "%saddr=127.0.0.1:%u", i == 1 ? "?" : "&",
                            cluster_fixture_port (self, i));
  return g_string_free (uri, FALSE);
}

/* The even split of `redis-cli --cluster create`: primary i gets
 * [first_slot (i), first_slot (i + 1) - 1], first_slot (i) being
 * i × 16384 / P rounded to the nearest (0-5460, 5461-10922, 10923-16383
 * for three). */
static guint
first_slot (ClusterFixture *self,
            guint           primary)
{
  return (guint) ((2 * (guint64) SLOTS * primary + self->n_primaries) / (2 * self->n_primaries));
}

guint
cluster_fixture_initial_owner (ClusterFixture *self,
                               guint           slot)
{
  g_assert_cmpuint (slot, <, SLOTS);
  for (guint i = 1; i < self->n_primaries; i++)
    if (slot < first_slot (self, i))
      return i - 1;
  return self->n_primaries - 1;
}

char *
cluster_fixture_key_on_node (ClusterFixture *self,
                             guint           primary,
                             guint           skip)
{
  for (guint n = 0;; n++)
    {
      g_autofree char *key = g_strdup_printf ("key-%u", n);
      guint slot = redis_cluster_key_slot ((const guint8 *) key, strlen (key));

      if (cluster_fixture_initial_owner (self, slot) == primary && skip-- == 0)
        return g_steal_pointer (&key);
    }
}

static int
node_of_id (ClusterFixture *self,
            const char     *id)
{
  for (guint i = 0; i < self->n_nodes; i++)
    if (g_str_equal (self->ids[i], id))
      return (int) i;
  return -1;
}

gboolean
cluster_fixture_is_running (ClusterFixture *self,
                            guint           node)
{
  g_assert_cmpuint (node, <, self->n_nodes);
  return redis_test_server_is_running (self->servers[node]);
}

/* CLUSTER NODES of the first running node that answers; NULL if none. */
static char *
cluster_nodes (ClusterFixture *self)
{
  for (guint i = 0; i < self->n_nodes; i++)
    {
      if (cluster_fixture_is_running (self, i))
        {
          char *out = cluster_fixture_cli_try (self, i, (const char *[]) { "CLUSTER", "NODES", NULL }, NULL);

          if (out != NULL && *out != '\0' && !g_str_has_prefix (out, "ERR"))
            return out;
          g_free (out);
        }
    }
  return NULL;
}

/* A CLUSTER NODES line: <id> <addr> <flags> <primary> <ping> <pong>
 * <epoch> <link> <slot or range>… */
int *
cluster_fixture_slot_owners (ClusterFixture *self)
{
  g_autofree char *nodes = cluster_nodes (self);
  g_auto(GStrv) lines = nodes != NULL ? g_strsplit (nodes, "\n", -1) : NULL;
  int *owners = g_new (int, SLOTS);

  for (guint s = 0; s < SLOTS; s++)
    owners[s] = -1;
  for (guint l = 0; lines != NULL && lines[l] != NULL; l++)
    {
      g_auto(GStrv) fields = g_strsplit (g_strstrip (lines[l]), " ", -1);
      int node;

      if (g_strv_length (fields) < 9 || strstr (fields[2], "master") == NULL ||
          strstr (fields[2], "fail") != NULL)
        continue;
      node = node_of_id (self, fields[0]);
      for (guint f = 8; fields[f] != NULL; f++)
        {
          const char *range = fields[f];
          char *end = NULL;
          guint64 first, last;

          if (range[0] == '[')   /* [slot->-id] / [slot-<-id]: a migration */
            continue;
          first = g_ascii_strtoull (range, &end, 10);
          last = *end == '-' ? g_ascii_strtoull (end + 1, NULL, 10) : first;
          for (guint64 s = first; s <= last && s < SLOTS; s++)
            owners[s] = node;
        }
    }
  return owners;
}

int
cluster_fixture_slot_owner (ClusterFixture *self,
                            guint           slot)
{
  g_autofree int *owners = cluster_fixture_slot_owners (self);

  g_assert_cmpuint (slot, <, SLOTS);
  return owners[slot];
}

int
cluster_fixture_live_replica (ClusterFixture *self,
                              guint           primary)
{
  g_autofree char *nodes = cluster_nodes (self);
  g_auto(GStrv) lines = nodes != NULL ? g_strsplit (nodes, "\n", -1) : NULL;

  for (guint l = 0; lines != NULL && lines[l] != NULL; l++)
    {
      g_auto(GStrv) fields = g_strsplit (g_strstrip (lines[l]), " ", -1);
      int node;

      if (g_strv_length (fields) < 8 || strstr (fields[2], "slave") == NULL ||
          strstr (fields[2], "fail") != NULL || !g_str_equal (fields[3], self->ids[primary]))
        continue;
      node = node_of_id (self, fields[0]);
      if (node >= 0 && cluster_fixture_is_running (self, (guint) node))
        return node;
    }
  return -1;
}

static char *
info_field (const char *info,
            const char *name)
{
  g_autofree char *prefix = g_strconcat (name, ":", NULL);
  const char *at = strstr (info, prefix);

  if (at == NULL)
    return NULL;
  at += strlen (prefix);
  return g_strndup (at, strcspn (at, "\r\n"));
}

gboolean
cluster_fixture_is_primary (ClusterFixture *self,
                            guint           node)
{
  g_autofree char *info = cluster_fixture_cli (self, node, (const char *[]) { "INFO", "replication", NULL });
  g_autofree char *role = info_field (info, "role");

  return g_strcmp0 (role, "master") == 0;
}

static guint
count_occurrences (const char *haystack,
                   const char *needle)
{
  guint n = 0;

  for (const char *at = strstr (haystack, needle); at != NULL; at = strstr (at + 1, needle))
    n++;
  return n;
}

/* One poll of the cluster: every running node ok, knowing every node;
 * every running replica linked to its primary; and, when @n_replicas is
 * not -1, that many replicas in every node's view. */
static gboolean
cluster_settled (ClusterFixture *self,
                 int             n_replicas)
{
  g_autofree char *known = g_strdup_printf ("cluster_known_nodes:%u", self->n_nodes);

  for (guint i = 0; i < self->n_nodes; i++)
    {
      g_autofree char *info = NULL;
      g_autofree char *replication = NULL;
      g_autofree char *role = NULL;
      g_autofree char *link = NULL;

      if (!cluster_fixture_is_running (self, i))
        continue;
      info = cluster_fixture_cli_try (self, i, (const char *[]) { "CLUSTER", "INFO", NULL }, NULL);
      if (info == NULL || strstr (info, "cluster_state:ok") == NULL || strstr (info, known) == NULL)
        return FALSE;
      replication = cluster_fixture_cli_try (self, i, (const char *[]) { "INFO", "replication", NULL }, NULL);
      role = replication != NULL ? info_field (replication, "role") : NULL;
      link = replication != NULL ? info_field (replication, "master_link_status") : NULL;
      if (role == NULL || (g_str_equal (role, "slave") && g_strcmp0 (link, "up") != 0))
        return FALSE;
      if (n_replicas >= 0)
        {
          g_autofree char *nodes = cluster_fixture_cli_try (self, i, (const char *[]) { "CLUSTER", "NODES", NULL }, NULL);

          if (nodes == NULL || count_occurrences (nodes, "slave") != (guint) n_replicas)
            return FALSE;
        }
    }
  return TRUE;
}

typedef struct
{
  ClusterFixture *fixture;
  int             n_replicas;
  gint64          last_poll;
} SettleState;

static gboolean
settled_polled (SettleState *state)
{
  gint64 now = g_get_monotonic_time ();

  if (now - state->last_poll < POLL_US)
    return FALSE;
  state->last_poll = now;
  return cluster_settled (state->fixture, state->n_replicas);
}

static void
wait_settled (ClusterFixture *self,
              int             n_replicas,
              guint           timeout_ms)
{
  SettleState state = { self, n_replicas, 0 };

  WAIT_UNTIL (settled_polled (&state), timeout_ms);
}

void
cluster_fixture_wait_ok (ClusterFixture *self,
                         guint           timeout_ms)
{
  wait_settled (self, -1, timeout_ms);
}

/* Every node knows node 0 (MEET), so node 0 knows them all, and gossip
 * spreads the rest. */
static gboolean
all_known_polled (SettleState *state)
{
  ClusterFixture *self = state->fixture;
  g_autofree char *known = g_strdup_printf ("cluster_known_nodes:%u", self->n_nodes);
  gint64 now = g_get_monotonic_time ();

  if (now - state->last_poll < POLL_US)
    return FALSE;
  state->last_poll = now;
  for (guint i = 0; i < self->n_nodes; i++)
    {
      g_autofree char *info = NULL;

      if (!cluster_fixture_is_running (self, i))
        continue;
      info = cluster_fixture_cli (self, i, (const char *[]) { "CLUSTER", "INFO", NULL });
      if (strstr (info, known) == NULL)
        return FALSE;
    }
  return TRUE;
}

/* Starts node @i (its slot in the arrays exists) and reads its id. */
static void
start_node (ClusterFixture *self,
            guint           i)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  const char *bus = self->bus_ports[i] = free_bus_port ();
  const char *cluster_args[] = {
    "--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
    "--cluster-config-file", "nodes.conf", "--cluster-port", bus,
  };

  for (guint a = 0; a < G_N_ELEMENTS (cluster_args); a++)
    g_ptr_array_add (args, (gpointer) cluster_args[a]);
  for (guint a = 0; self->extra_args != NULL && self->extra_args[a] != NULL; a++)
    g_ptr_array_add (args, self->extra_args[a]);
  g_ptr_array_add (args, NULL);

  self->servers[i] = redis_test_server_new (REDIS_TEST_SERVER_TCP, (const char * const *) args->pdata, &error);
  g_assert_no_error (error);
  self->ids[i] = cluster_fixture_cli (self, i, (const char *[]) { "CLUSTER", "MYID", NULL });
}

ClusterFixture *
cluster_fixture_new (guint               n_primaries,
                     guint               replicas_per_primary,
                     const char * const *extra_args)
{
  ClusterFixture *self = g_new0 (ClusterFixture, 1);
  SettleState known = { self, -1, 0 };

  g_assert_cmpuint (n_primaries, >, 0);
  self->n_primaries = n_primaries;
  self->replicas_per_primary = replicas_per_primary;
  self->n_nodes = n_primaries * (1 + replicas_per_primary);
  self->servers = g_new0 (RedisTestServer *, self->n_nodes);
  self->ids = g_new0 (char *, self->n_nodes + 1);
  self->bus_ports = g_new0 (char *, self->n_nodes + 1);

  self->extra_args = g_strdupv ((char **) extra_args);
  for (guint i = 0; i < self->n_nodes; i++)
    start_node (self, i);

  for (guint i = 0; i < n_primaries; i++)
    {
      g_autofree char *first = g_strdup_printf ("%u", first_slot (self, i));
      g_autofree char *last = g_strdup_printf ("%u", (i + 1 < n_primaries ? first_slot (self, i + 1) : SLOTS) - 1);
      g_autofree char *ok = CLUSTER_FIXTURE_CLI (self, i, "CLUSTER", "ADDSLOTSRANGE", first, last);

      g_assert_cmpstr (ok, ==, "OK");
    }
  for (guint i = 1; i < self->n_nodes; i++)
    {
      g_autofree char *port = cluster_fixture_port_string (self, i);
      g_autofree char *ok = CLUSTER_FIXTURE_CLI (self, 0, "CLUSTER", "MEET", "127.0.0.1", port, self->bus_ports[i]);

      g_assert_cmpstr (ok, ==, "OK");
    }

  if (replicas_per_primary > 0)
    {
      /* CLUSTER REPLICATE needs the primary in the replica's node table. */
      WAIT_UNTIL (all_known_polled (&known), 20000);
      for (guint p = 0; p < n_primaries; p++)
        for (guint r = 0; r < replicas_per_primary; r++)
          {
            g_autofree char *ok = CLUSTER_FIXTURE_CLI (self, cluster_fixture_replica (self, p, r),
                                                       "CLUSTER", "REPLICATE", self->ids[p]);

            g_assert_cmpstr (ok, ==, "OK");
          }
    }
  wait_settled (self, (int) (n_primaries * replicas_per_primary), 20000);
  return self;
}

void
cluster_fixture_free (ClusterFixture *self)
{
  for (guint i = 0; i < self->n_nodes; i++)
    g_clear_pointer (&self->servers[i], redis_test_server_free);
  g_free (self->servers);
  g_strfreev (self->ids);
  g_strfreev (self->bus_ports);
  g_strfreev (self->extra_args);
  g_free (self);
}

guint
cluster_fixture_add_node (ClusterFixture *self)
{
  SettleState known = { self, -1, 0 };
  guint i = self->n_nodes;
  g_autofree char *port = NULL;
  g_autofree char *ok = NULL;

  self->servers = g_renew (RedisTestServer *, self->servers, i + 1);
  self->ids = g_renew (char *, self->ids, i + 2);
  self->bus_ports = g_renew (char *, self->bus_ports, i + 2);
  self->ids[i + 1] = self->bus_ports[i + 1] = NULL;
  self->n_nodes++;
  start_node (self, i);

  port = cluster_fixture_port_string (self, i);
  /* Node 0 may be down (a test killed it): introduce the new node to the
   * first running node. */
  for (guint to = 0; to < i; to++)
    if (cluster_fixture_is_running (self, to))
      {
        ok = CLUSTER_FIXTURE_CLI (self, to, "CLUSTER", "MEET", "127.0.0.1", port, self->bus_ports[i]);
        break;
      }
  g_assert_cmpstr (ok, ==, "OK");
  WAIT_UNTIL (all_known_polled (&known), 20000);
  return i;
}

GPid
cluster_fixture_pid (ClusterFixture *self,
                     guint           node)
{
  g_assert_cmpuint (node, <, self->n_nodes);
  return redis_test_server_get_pid (self->servers[node]);
}

void
cluster_fixture_stop (ClusterFixture *self,
                      guint           node)
{
  g_assert_cmpuint (node, <, self->n_nodes);
  g_assert_true (redis_test_server_stop (self->servers[node]));
}

void
cluster_fixture_kill (ClusterFixture *self,
                      guint           node)
{
  g_assert_cmpuint (node, <, self->n_nodes);
  g_assert_true (redis_test_server_kill (self->servers[node]));
}

/* ---- shared by the cluster suites ----------------------------------------- */

guint64
cluster_fixture_info_u64 (ClusterFixture *self,
                          guint           node,
                          const char     *section,
                          const char     *field)
{
  g_autofree char *info = cluster_fixture_cli (self, node, (const char *[]) { "INFO", section, NULL });
  g_autofree char *value = info_field (info, field);

  if (value == NULL)
    g_error ("node %u: no %s in INFO %s", node, field, section);
  return g_ascii_strtoull (value, NULL, 10);
}

guint64
cluster_fixture_cmdstat_calls (ClusterFixture *self,
                               guint           node,
                               const char     *command)
{
  g_autofree char *info = cluster_fixture_cli (self, node, (const char *[]) { "INFO", "commandstats", NULL });
  g_autofree char *prefix = g_strdup_printf ("cmdstat_%s:calls=", command);
  const char *at = strstr (info, prefix);

  return at != NULL ? g_ascii_strtoull (at + strlen (prefix), NULL, 10) : 0;
}

void
cluster_fixture_reset_stats (ClusterFixture *self)
{
  for (guint i = 0; i < self->n_nodes; i++)
    if (cluster_fixture_is_running (self, i))
      {
        g_autofree char *ok = cluster_fixture_cli (self, i, (const char *[]) { "CONFIG", "RESETSTAT", NULL });

        g_assert_cmpstr (ok, ==, "OK");
      }
}

/* Whether every node of @primaries sends a reader of @key to @node, and
 * @node serves it. */
static gboolean
key_settled_on (ClusterFixture *self,
                GArray         *primaries,
                const char     *key,
                guint           node)
{
  g_autofree char *port = cluster_fixture_port_string (self, node);

  for (guint k = 0; k < primaries->len; k++)
    {
      guint i = g_array_index (primaries, guint, k);
      g_autofree char *out = cluster_fixture_cli (self, i, (const char *[]) { "GET", key, NULL });
      gboolean moved = g_str_has_prefix (out, "MOVED");

      if (i == node ? moved : !moved || !g_str_has_suffix (out, port))
        {
          g_test_message ("node %u answers GET %s with “%s”, not yet settled on node %u",
                          i, key, out, node);
          return FALSE;
        }
    }
  return TRUE;
}

void
cluster_fixture_give_slot_of (ClusterFixture *self,
                              const char     *key,
                              guint           from,
                              guint           to)
{
  g_autofree char *slot = g_strdup_printf ("%u", redis_cluster_key_slot ((const guint8 *) key, strlen (key)));
  g_autoptr(GArray) primaries = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree char *importing = NULL;

  /* SETSLOT is for primaries only; the replicas learn by gossip. The new
   * owner first: its claim bumps its config epoch, so that it wins the
   * gossip. */
  for (guint k = 0; k < self->n_nodes; k++)
    {
      guint i = (to + k) % self->n_nodes;

      if (cluster_fixture_is_running (self, i) && cluster_fixture_is_primary (self, i))
        g_array_append_val (primaries, i);
    }
  importing = cluster_fixture_cli (self, to, (const char *[]) {
    "CLUSTER", "SETSLOT", slot, "IMPORTING", self->ids[from], NULL });
  g_assert_cmpstr (importing, ==, "OK");
  for (guint k = 0; k < primaries->len; k++)
    {
      g_autofree char *ok = cluster_fixture_cli (self, g_array_index (primaries, guint, k), (const char *[]) {
        "CLUSTER", "SETSLOT", slot, "NODE", self->ids[to], NULL });

      g_assert_cmpstr (ok, ==, "OK");
    }
  WAIT_UNTIL (key_settled_on (self, primaries, key, to), 10000);
}

RedisClusterPool *
cluster_fixture_pool_new (ClusterFixture *self,
                          const char     *query)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *seeds = cluster_fixture_uri (self);
  g_autofree char *uri = query != NULL ?
                           g_strdup_printf ("%s%c%s", seeds, strchr (seeds, '?') != NULL ? '&' : '?', query) :
                           g_strdup (seeds);
  RedisClusterPool *cluster = redis_cluster_pool_new_sync (uri, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (cluster);
  return cluster;
}

RedisReply *
cluster_fixture_command (RedisClusterPool   *cluster,
                         const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  RedisReply *reply = redis_client_command_sync (REDIS_CLIENT (cluster), argv, NULL, &error);

  g_assert_no_error (error);
  return reply;
}

guint64
cluster_fixture_pool_info_u64 (RedisClusterPool *cluster,
                               const char       *name)
{
  g_autoptr(GVariant) info = redis_cluster_pool_get_info (cluster);
  guint64 value = 0;

  g_assert_true (g_variant_lookup (info, name, "t", &value));
  return value;
}
