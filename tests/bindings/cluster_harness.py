#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A 3-primary Redis Cluster on loopback for the binding tests.

Each node is a redis-server with --cluster-enabled yes, no persistence and
cluster-node-timeout 1000; the slots are split as `redis-cli --cluster
create` would (CLUSTER ADDSLOTSRANGE), the nodes meet node 0 (CLUSTER
MEET), and start() returns once every node reports cluster_state:ok and
knows the others. Deadlines scale like the C tests' (test_scale_ms()).

Used two ways:
- imported, by test_cluster.py: Cluster().start(), .ports, .stop(), cli();
  Cluster(replicas=1) gives each primary a replica (CLUSTER REPLICATE), in
  .replica_ports (the replica of primary i at index i), and start() also
  waits until every replica's link to its primary is up;
- as a launcher, for the GJS and Vala tests:
      cluster_harness.py COMMAND [ARG...]
  starts the cluster, runs COMMAND with REDIS_CLUSTER_URL (every primary a
  seed), REDIS_CLUSTER_PORTS (comma-separated, node order) and REDIS_PORT
  (node 0) in its environment, stops the cluster and exits with COMMAND's
  status; 77 (skipped) without redis-server or redis-cli.

Standard library only.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SERVER = os.environ.get('REDIS_SERVER') or shutil.which('redis-server')
CLI = os.environ.get('REDIS_CLI') or shutil.which('redis-cli')
SCALE = (max(1, int(os.environ.get('REDISPOOL_TEST_TIMEOUT_MULTIPLIER', '1'))) *
         max(1, int(os.environ.get('REDISPOOL_TEST_LOAD_FACTOR', '1'))))
RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


def free_port():
    # Below 55536: the cluster bus port is the data port + 10000 by default.
    while True:
        port = 20000 + int.from_bytes(os.urandom(2), 'big') % 30000
        with socket.socket() as s, socket.socket() as bus:
            try:
                s.bind(('127.0.0.1', port))
                bus.bind(('127.0.0.1', port + 10000))
            except OSError:
                continue
            return port


def cli(port, *args):
    out = subprocess.run([CLI, '-h', '127.0.0.1', '-p', str(port)] + list(args),
                         check=True, capture_output=True, text=True,
                         timeout=10 * SCALE).stdout
    return out.strip()


class Cluster:
    def __init__(self, replicas=0):
        self.tmp = tempfile.mkdtemp(prefix='redispool-cluster-')
        self.procs = []
        self.ports = []
        self.replicas = replicas
        self.replica_ports = []

    def start_node(self):
        # A port found free may be taken before redis-server binds it (or
        # its bus port, +10000, may be in use): a server that exits is
        # retried on another port.
        for _attempt in range(5):
            port = free_port()
            workdir = os.path.join(self.tmp, str(port))
            os.mkdir(workdir)
            proc = subprocess.Popen(
                [SERVER, '--port', str(port), '--bind', '127.0.0.1', '--save', '',
                 '--appendonly', 'no', '--dir', workdir, '--cluster-enabled', 'yes',
                 '--cluster-node-timeout', '1000', '--logfile', 'redis.log'],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(proc)
            deadline = time.monotonic() + 10 * SCALE
            while proc.poll() is None:
                try:
                    if cli(port, 'PING') == 'PONG':
                        self.ports.append(port)
                        return port
                except subprocess.CalledProcessError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError('redis-server on port %d did not start' % port)
                time.sleep(0.05)
        raise RuntimeError('no redis-server started in 5 attempts')

    def start(self):
        """Starts the cluster; stops what was started if that fails."""
        try:
            for first, last in RANGES:
                port = self.start_node()
                assert cli(port, 'CLUSTER', 'ADDSLOTSRANGE', str(first), str(last)) == 'OK'
            primaries = list(self.ports)
            for _ in range(self.replicas):
                for _primary in primaries:
                    self.replica_ports.append(self.start_node())
            for port in self.ports[1:]:
                assert cli(self.ports[0], 'CLUSTER', 'MEET', '127.0.0.1', str(port)) == 'OK'
            known = 'cluster_known_nodes:%d' % len(self.ports)
            deadline = time.monotonic() + 20 * SCALE
            while not all('cluster_state:ok' in cli(p, 'CLUSTER', 'INFO') and
                          known in cli(p, 'CLUSTER', 'INFO')
                          for p in self.ports):
                if time.monotonic() > deadline:
                    raise RuntimeError('the cluster did not form')
                time.sleep(0.1)
            # Each replica follows its primary once it knows it (MEET
            # first), then syncs.
            for i, port in enumerate(self.replica_ports):
                primary = primaries[i % len(primaries)]
                assert cli(port, 'CLUSTER', 'REPLICATE', cli(primary, 'CLUSTER', 'MYID')) == 'OK'
            while not all('master_link_status:up' in cli(p, 'INFO', 'replication')
                          for p in self.replica_ports):
                if time.monotonic() > deadline:
                    raise RuntimeError('the replicas did not sync')
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.procs = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def uri(self):
        return 'redis://127.0.0.1:%d?%s' % (
            self.ports[0], '&'.join('addr=127.0.0.1:%d' % p for p in self.ports[1:]))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not SERVER or not CLI:
        print('redis-server or redis-cli not found: skipped', file=sys.stderr)
        return 77
    cluster = Cluster().start()
    try:
        env = dict(os.environ,
                   REDIS_CLUSTER_URL=cluster.uri(),
                   REDIS_CLUSTER_PORTS=','.join(str(p) for p in cluster.ports),
                   REDIS_PORT=str(cluster.ports[0]))
        return subprocess.call(argv[1:], env=env)
    finally:
        cluster.stop()


if __name__ == '__main__':
    sys.exit(main(sys.argv))
