/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include "redispool.h"
#include "redis-test-server.h"

G_BEGIN_DECLS

/*
 * A Redis Cluster on loopback for the cluster suites (test-cluster,
 * test-cluster-failover).
 *
 * cluster_fixture_new() starts @n_primaries primaries, each with
 * @replicas_per_primary replicas (0 is fine and keeps start-up fast), all
 * with cluster-node-timeout 1000 and persistence off. The 16384 slots are
 * split evenly over the primaries with ADDSLOTSRANGE (the same split as
 * `redis-cli --cluster create`), every node is introduced to node 0 with
 * CLUSTER MEET on a free bus port, the replicas follow their primary with
 * CLUSTER REPLICATE, and the call returns once every node reports
 * cluster_state:ok, knows all the nodes and all the replicas, and every
 * replica's link to its primary is up. Deadlines scale (test_scale_ms()).
 *
 * Nodes are numbered: primaries 0 … P-1, then the replicas of primary 0,
 * of primary 1, … (cluster_fixture_replica()). The numbering is the one of
 * the start; after a failover "primary" means the node's current role only
 * if the test asks the cluster (cluster_fixture_slot_owner(),
 * cluster_fixture_is_primary()).
 *
 * Helpers assert on failure: the fixture is for tests only. It uses the
 * library (redis_cluster_key_slot(), and the shared helpers at the end
 * that make and use a cluster pool), so it is compiled into each cluster
 * suite rather than into the library-free test-support.
 */

typedef struct
{
  guint             n_primaries;
  guint             replicas_per_primary;
  guint             n_nodes;
  RedisTestServer **servers;     /* n_nodes */
  char            **ids;         /* CLUSTER MYID of each node */
  char            **bus_ports;   /* the cluster bus port of each node, as text */
  char            **extra_args;  /* given to every node's redis-server */
} ClusterFixture;

ClusterFixture *cluster_fixture_new              (guint                n_primaries,
                                                  guint                replicas_per_primary,
                                                  const char * const  *extra_args);
void            cluster_fixture_free             (ClusterFixture      *self);

/* The node that initially replicates @primary (@nth of its replicas). */
guint           cluster_fixture_replica          (ClusterFixture      *self,
                                                  guint                primary,
                                                  guint                nth);

guint16         cluster_fixture_port             (ClusterFixture      *self,
                                                  guint                node);
char           *cluster_fixture_port_string      (ClusterFixture      *self,
                                                  guint                node);
/* redis://127.0.0.1:<node 0>?addr=127.0.0.1:<node 1>&… with every primary
 * as a seed. */
char           *cluster_fixture_uri              (ClusterFixture      *self);

/* redis-cli on @node; the output without surrounding white space. The
 * _try form returns NULL with @error set instead of failing the test (a
 * node that is down). */
char           *cluster_fixture_cli              (ClusterFixture      *self,
                                                  guint                node,
                                                  const char * const  *argv);
char           *cluster_fixture_cli_try          (ClusterFixture      *self,
                                                  guint                node,
                                                  const char * const  *argv,
                                                  GError             **error);
/* redis-cli on @node with @script on its standard input, one command a
 * line (quotes as redis-cli reads them): many commands for one process,
 * where spawning is slow (valgrind, ASan). The output, one reply a line. */
char           *cluster_fixture_cli_script       (ClusterFixture      *self,
                                                  guint                node,
                                                  const char          *script);
#define CLUSTER_FIXTURE_CLI(f, i, ...) \
  cluster_fixture_cli ((f), (i), (const char *[]) { __VA_ARGS__, NULL })

/* The primary that owned @slot at the start (no round trip). */
guint           cluster_fixture_initial_owner    (ClusterFixture      *self,
                                                  guint                slot);
/* The node that owns @slot now, as seen by CLUSTER NODES of the first
 * running node; -1 if no node serves it (during a failover). */
int             cluster_fixture_slot_owner       (ClusterFixture      *self,
                                                  guint                slot);
/* The owner of every slot (16384 entries, -1 where none), from one
 * CLUSTER NODES. */
int            *cluster_fixture_slot_owners      (ClusterFixture      *self);
/* A running replica of @primary now (after failovers too); -1 if none. */
int             cluster_fixture_live_replica     (ClusterFixture      *self,
                                                  guint                primary);
gboolean        cluster_fixture_is_primary       (ClusterFixture      *self,
                                                  guint                node);
/* The @skip-th key "key-<n>" whose slot @primary owned at the start. */
char           *cluster_fixture_key_on_node      (ClusterFixture      *self,
                                                  guint                primary,
                                                  guint                skip);

/* Waits (scaled @timeout_ms) until every running node reports
 * cluster_state:ok and knows every node, and every running replica's link
 * is up. Used by cluster_fixture_new() and after a failover. */
void            cluster_fixture_wait_ok          (ClusterFixture      *self,
                                                  guint                timeout_ms);

/* Starts one more node, empty (no slots, a primary), and introduces it
 * with CLUSTER MEET; returns its number once every node knows it. */
guint           cluster_fixture_add_node         (ClusterFixture      *self);

GPid            cluster_fixture_pid              (ClusterFixture      *self,
                                                  guint                node);
gboolean        cluster_fixture_is_running       (ClusterFixture      *self,
                                                  guint                node);
/* SIGTERM (stop) or SIGKILL (kill) @node and wait for its exit. */
void            cluster_fixture_stop             (ClusterFixture      *self,
                                                  guint                node);
void            cluster_fixture_kill             (ClusterFixture      *self,
                                                  guint                node);

/* ---- shared by the cluster suites ---------------------------------------- */

/* @field of `INFO @section` on @node, as a number; fails the test if the
 * node does not report it. */
guint64         cluster_fixture_info_u64         (ClusterFixture      *self,
                                                  guint                node,
                                                  const char          *section,
                                                  const char          *field);
/* "calls" of cmdstat_<command> in @node's INFO commandstats, 0 when the
 * command never ran there since the last reset. */
guint64         cluster_fixture_cmdstat_calls    (ClusterFixture      *self,
                                                  guint                node,
                                                  const char          *command);
/* CONFIG RESETSTAT on every running node. */
void            cluster_fixture_reset_stats      (ClusterFixture      *self);
/* Gives the slot of @key from @from to @to behind any client's back, as
 * a resharding does (keys are not migrated): @to imports it and takes it
 * first, then the other running primaries learn it; returns once every
 * one of them redirects a GET of @key to @to (scaled deadline). */
void            cluster_fixture_give_slot_of     (ClusterFixture      *self,
                                                  const char          *key,
                                                  guint                from,
                                                  guint                to);

/* A cluster pool with every primary as a seed (cluster_fixture_uri()) and
 * @query (nullable, "name=value&…") added to the URI; fails the test if it
 * cannot be made. */
RedisClusterPool *cluster_fixture_pool_new       (ClusterFixture      *self,
                                                  const char          *query);
/* @argv through @cluster, synchronously; fails the test on an error. */
RedisReply     *cluster_fixture_command          (RedisClusterPool    *cluster,
                                                  const char * const  *argv);
#define CLUSTER_FIXTURE_CMD(c, ...) \
  cluster_fixture_command ((c), (const char *[]) { __VA_ARGS__, NULL })
/* A "t" (guint64) entry of redis_cluster_pool_get_info(). */
guint64         cluster_fixture_pool_info_u64    (RedisClusterPool    *cluster,
                                                  const char          *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ClusterFixture, cluster_fixture_free)

G_END_DECLS
