#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run a command against a throwaway redis-server.

Usage: with-redis-server.py COMMAND [ARG...]

Starts redis-server on a free 127.0.0.1 port in a temporary directory
(no persistence, DEBUG allowed from localhost), waits until it answers PING,
runs COMMAND with REDIS_PORT and REDIS_URL=redis://127.0.0.1:PORT/0 in its
environment, stops the server (SIGTERM, then SIGKILL), removes the
directory and exits with COMMAND's status.

The server binary is taken from $REDIS_SERVER, else redis-server on PATH.
Standard library only.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def answers_ping(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5) as s:
            s.sendall(b'*1\r\n$4\r\nPING\r\n')
            data = b''
            while not data.endswith(b'\r\n'):
                chunk = s.recv(64)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b'+PONG')
    except OSError:
        return False


def start_server(binary, tmpdir):
    """Start the server; retry a few times in case the port was taken."""
    last_log = ''
    for _attempt in range(5):
        port = free_port()
        log_path = os.path.join(tmpdir, 'redis-%d.log' % port)
        args = [binary,
                '--port', str(port),
                '--bind', '127.0.0.1',
                '--dir', tmpdir,
                '--save', '',
                '--appendonly', 'no',
                '--enable-debug-command', 'local',
                '--daemonize', 'no',
                '--logfile', log_path]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if answers_ping(port):
                return proc, port
            time.sleep(0.02)
        stop_server(proc)
        try:
            with open(log_path, errors='replace') as f:
                last_log = f.read()
        except OSError:
            pass
    sys.stderr.write('with-redis-server: redis-server did not start\n%s' % last_log)
    return None, None


def stop_server(proc):
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def main(argv):
    if len(argv) < 2:
        sys.stderr.write('usage: %s COMMAND [ARG...]\n' % argv[0])
        return 2
    binary = os.environ.get('REDIS_SERVER') or shutil.which('redis-server')
    if binary is None:
        sys.stderr.write('with-redis-server: redis-server not found; skipping\n')
        return 77  # meson's "skipped"

    # A timeout (meson, timeout(1)) may send SIGTERM to the whole process
    # group, more than once: forward it to the command and always clean up.
    state = {'child': None}

    def forward(signum, _frame):
        child = state['child']
        if child is not None and child.poll() is None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    tmpdir = tempfile.mkdtemp(prefix='redispool-server-')
    proc = None
    try:
        proc, port = start_server(binary, tmpdir)
        if proc is None:
            return 1
        env = dict(os.environ)
        env['REDIS_PORT'] = str(port)
        env['REDIS_URL'] = 'redis://127.0.0.1:%d/0' % port
        state['child'] = subprocess.Popen(argv[1:], env=env)
        status = state['child'].wait()
        if status < 0:
            # Killed by a signal: report it as the shell would.
            sys.stderr.write('with-redis-server: command killed by signal %d\n' % -status)
            return 128 - status
        return status
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
