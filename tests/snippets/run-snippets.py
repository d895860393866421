#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Extract every fenced code block of the documentation and run it.

Usage:
  run-snippets.py --build-dir BUILD [--pages] [--api] [--only TEXT]
                  [--list] [--valgrind] [FILE...]

What is scanned:
  --pages   README.md and docs/*.md (every ``` fence);
  --api     the gtk-doc comments of redispool/*.c and redispool/*.h (the
            fences gi-docgen renders on the API reference pages);
  FILE...   the named Markdown files only.
  Without any of these, both --pages and --api.

Each snippet is one TAP subtest named FILE:LINE LANGUAGE (LINE is the line
of its opening fence), so a broken snippet fails the suite with its place.

Languages:
  c        written to a file, compiled with
           `cc -Wall -Werror $(pkg-config --cflags --libs redispool-1.0)`
           (-Wno-unused-variable: snippets show values they do not use)
           against the build tree (BUILD/meson-uninstalled), then run
           (under valgrind with --valgrind or REDISPOOL_SNIPPETS_VALGRIND=1);
  python   run with the Python that runs this script (/usr/bin/python3,
           which has PyGObject);
  js       run with `gjs -m` (top-level await works; GJS runs the main
           loop while a module's promise is pending);
  vala     compiled with `valac --pkg redispool-1.0 --pkg gio-2.0` against
           the build's VAPI, then run;
  sh, console
           never run: they are commands that build, install, start
           servers or benchmarks, which the test suite itself does. They
           are checked instead: `bash -n` (for console, the lines that
           start with "$ "), and every source-tree path they name
           (tools/..., tests/..., examples/..., docs/...) must exist;
  text     not run (sample output).
  A fence without a language, or with another one, fails.
  Where gjs, or valac or the build's VAPI, is missing, those blocks are
  reported as skipped (tools/deps.sh installs both; CI has them).

Blocks rendered by gi-docgen (docs/*.md and --api) fail if a line is
longer than 80 columns: the reference's code boxes scroll sideways
beyond about 90. README.md is not rendered there and has no limit.

Every snippet gets GI_TYPELIB_PATH and LD_LIBRARY_PATH of the build tree
and G_DEBUG=fatal-criticals. Snippets address the server as
redis://127.0.0.1:6379 (the default port); the runner rewrites
"127.0.0.1:6379" to its own throwaway server (and GJS imports of
file:///usr/share/redispool-1.0/gjs/redispool.js to the source tree's
copy), and flushes that server
(FLUSHALL) before each snippet, so snippets do not see each other's keys.
If REDIS_PORT is not set, the runner starts itself again under
tests/with-redis-server.py, which starts the server.

Conventions, as an HTML comment on the line(s) right before a fence
(invisible in the rendered page):

  <!-- snippet: fragment -->
      The block is a fragment, wrapped before it runs:
      c       the body of main(), after `#include <redispool.h>`, in an
              inner block (it may declare its own `pool`), with
              `RedisPool *pool` connected to the server and
              `RedisReply *reply`, the reply of `ECHO hello`, in scope
              (unused variables are not an error);
      python  after `import gi`, gi.require_version('Redis', '1.0'),
              `from gi.repository import GLib, Gio, Redis`,
              `pool = Redis.Pool.new_sync(URL, None)` and
              `reply = pool.command_sync(['ECHO', 'hello'], None)`;
      js      after `import GLib/Gio/Redis`, the Gio._promisify() calls
              for Redis.Pool and Redis.Connection, and `pool`, in a block;
      vala    the body of `async void snippet () throws GLib.Error`, run
              from main() with a MainLoop (no `pool` in scope: Vala
              forbids shadowing it).
  <!-- snippet: cluster -->
      The block runs as written against a 3-primary Redis Cluster on
      loopback that the runner starts (once, at the first such block):
      it addresses the nodes as 127.0.0.1:7000, 127.0.0.1:7001 and
      127.0.0.1:7002, which the runner rewrites to the nodes' ports; every
      node is flushed before each block. Without redis-server and
      redis-cli the block is reported as skipped.
  <!-- snippet: skip reason="why" -->
      Not run; reported as a TAP SKIP with the reason. The reason is
      required, and a skip should stay rare.

In gtk-doc comments (--api) an HTML comment would end up in the GIR and in
every binding's documentation, so there the rule is implicit: a C block
that has no `main (` and every Python block are fragments; JS and Vala
blocks run as written. Markers are still honoured there.

Deadlines (compiling, running) scale with REDISPOOL_TEST_TIMEOUT_MULTIPLIER,
as the C tests' do.
"""

import argparse
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
# The cluster for cluster snippets is the binding tests' (one way to make one).
sys.path.insert(0, os.path.join(SCRIPT_DIR, '..', 'bindings'))
import cluster_harness  # noqa: E402
DEFAULT_SOURCE_DIR = os.path.normpath(os.path.join(SCRIPT_DIR, '..', '..'))

RUN_LANGS = ('c', 'python', 'js', 'vala')
CHECK_LANGS = ('sh', 'console')
TEXT_LANGS = ('text',)

FENCE = re.compile(r'^(\s*)(`{3,}|~{3,})\s*([\w+-]*)\s*$')
MARKER = re.compile(r'^\s*<!--\s*snippet:\s*(.*?)\s*-->\s*$')
DOC_LINE = re.compile(r'^\s*\*( |$)')
SOURCE_PATH = re.compile(r'(?<![\w./-])((?:tools|tests|examples|docs|redispool)/[\w./-]*[\w])')

DEFAULT_URL_HOSTPORT = '127.0.0.1:6379'
# How cluster snippets (<!-- snippet: cluster -->) name the three nodes.
CLUSTER_HOSTPORTS = ('127.0.0.1:7000', '127.0.0.1:7001', '127.0.0.1:7002')
# Where GJS snippets import the promises module from: the installed path
# shown to users, mapped to the source tree's copy.
GJS_MODULE_URL = 'file:///usr/share/redispool-1.0/gjs/redispool.js'
GJS_MODULE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 '..', '..', 'redispool', 'gjs', 'redispool.js')
MAX_COLUMNS = 80


def scale(seconds):
    try:
        factor = int(os.environ.get('REDISPOOL_TEST_TIMEOUT_MULTIPLIER', '1'))
    except ValueError:
        factor = 1
    return seconds * max(factor, 1)


class Snippet:
    def __init__(self, path, line, lang, code, options, origin):
        self.path = path          # relative to the source dir
        self.line = line          # 1-based line of the opening fence
        self.lang = lang
        self.code = code
        self.options = options    # {'fragment': True, 'skip': 'reason'}
        self.origin = origin      # 'page' or 'api'

    @property
    def name(self):
        return '%s:%d %s' % (self.path, self.line, self.lang or '(no language)')


class ExtractError(Exception):
    pass


def parse_marker(text, where):
    options = {}
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ExtractError('%s: bad snippet marker: %s' % (where, e))
    i = 0
    while i < len(words):
        w = words[i]
        if w == 'fragment':
            options['fragment'] = True
        elif w == 'cluster':
            options['cluster'] = True
        elif w == 'skip':
            reason = words[i + 1] if i + 1 < len(words) else ''
            if not reason.startswith('reason=') or not reason[len('reason='):].strip():
                raise ExtractError('%s: "skip" needs reason="…"' % where)
            options['skip'] = reason[len('reason='):].strip()
            i += 1
        else:
            raise ExtractError('%s: unknown snippet marker word %r' % (where, w))
        i += 1
    return options


def extract(lines, path, origin):
    """lines: list of (line number, text). Returns the snippets."""
    snippets = []
    pending = None        # (options, line of the marker)
    i = 0
    while i < len(lines):
        lineno, text = lines[i]
        m = MARKER.match(text)
        if m:
            if pending is not None:
                raise ExtractError('%s:%d: snippet marker not followed by a fence'
                                   % (path, pending[1]))
            pending = (parse_marker(m.group(1), '%s:%d' % (path, lineno)), lineno)
            i += 1
            continue
        m = FENCE.match(text)
        if not m:
            if pending is not None and text.strip():
                raise ExtractError('%s:%d: snippet marker not followed by a fence'
                                   % (path, pending[1]))
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        body = []
        j = i + 1
        while j < len(lines):
            close = lines[j][1].strip()
            if close and set(close) == {fence[0]} and len(close) >= len(fence):
                break
            close = lines[j][1]
            body.append(close[len(indent):] if close.startswith(indent) else close.lstrip())
            j += 1
        else:
            raise ExtractError('%s:%d: fence never closed' % (path, lineno))
        options = pending[0] if pending is not None else {}
        pending = None
        snippets.append(Snippet(path, lineno, lang, '\n'.join(body) + '\n', options, origin))
        i = j + 1
    if pending is not None:
        raise ExtractError('%s:%d: snippet marker not followed by a fence' % (path, pending[1]))
    return snippets


def page_lines(path):
    with open(path, encoding='utf-8') as f:
        return [(n + 1, line.rstrip('\n')) for n, line in enumerate(f)]


def api_comment_blocks(path):
    """Yield the lines of each /** … */ comment, without the leading ' * '."""
    with open(path, encoding='utf-8') as f:
        text = f.read().split('\n')
    block = None
    for n, line in enumerate(text):
        stripped = line.strip()
        if block is None:
            if stripped.startswith('/**') and not stripped.startswith('/***'):
                block = []
                if stripped.endswith('*/') and len(stripped) > 4:
                    block = None
            continue
        if stripped.endswith('*/'):
            yield block
            block = None
            continue
        m = DOC_LINE.match(line)
        block.append((n + 1, line[m.end():] if m else line.strip()))


def collect(source_dir, pages, api, files):
    snippets = []
    targets = []
    if files:
        targets = [('page', f) for f in files]
    else:
        if pages:
            targets.append(('page', os.path.join(source_dir, 'README.md')))
            targets += [('page', p) for p in sorted(glob.glob(os.path.join(source_dir, 'docs', '*.md')))]
        if api:
            targets += [('api', p) for p in sorted(glob.glob(os.path.join(source_dir, 'redispool', '*.c')) +
                                                   glob.glob(os.path.join(source_dir, 'redispool', '*.h')))]
    for origin, path in targets:
        rel = os.path.relpath(os.path.abspath(path), source_dir)
        if origin == 'page':
            snippets += extract(page_lines(path), rel, origin)
        else:
            for block in api_comment_blocks(path):
                for s in extract(block, rel, origin):
                    if 'fragment' not in s.options and (
                            s.lang == 'python' or (s.lang == 'c' and not re.search(r'\bmain\s*\(', s.code))):
                        s.options['fragment'] = True
                    snippets.append(s)
    return snippets


# ---- the server --------------------------------------------------------------

def flushall(port):
    with socket.create_connection(('127.0.0.1', port), timeout=scale(5)) as s:
        s.sendall(b'*1\r\n$8\r\nFLUSHALL\r\n')
        data = b''
        while not data.endswith(b'\r\n'):
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b'+OK'):
        raise RuntimeError('FLUSHALL answered %r' % data)


# ---- the cluster, for cluster snippets ------------------------------------------

class Cluster:
    """The cluster of cluster snippets: the three primaries that
    tests/bindings/cluster_harness.py makes for the binding tests, started
    on first use (most runs have no cluster snippet)."""

    def __init__(self):
        self.cluster = None

    def missing(self):
        if cluster_harness.SERVER is None or cluster_harness.CLI is None:
            return 'a cluster snippet needs redis-server and redis-cli'
        return None

    def start(self):
        """The ports of the nodes, the cluster started on the first call."""
        if self.cluster is None:
            self.cluster = cluster_harness.Cluster().start()
        return self.cluster.ports

    def stop(self):
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


# ---- wrapping ----------------------------------------------------------------

def indent(code, prefix):
    return ''.join(prefix + line if line.strip() else line for line in code.splitlines(True))


C_MAIN = """#include <redispool.h>

int
main (void)
{
  g_autoptr(RedisPool) pool = redis_pool_new_sync ("@URL@", NULL, NULL);
  g_autoptr(RedisReply) reply = NULL;

  g_assert_nonnull (pool);
  reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                     (const char *[]) { "ECHO", "hello", NULL },
                                     NULL, NULL);
  g_assert_nonnull (reply);
  {
#line @LINE@ "@PATH@"
@CODE@  }
  return 0;
}
"""

PYTHON_MAIN = """import gi
gi.require_version('Redis', '1.0')
from gi.repository import GLib, Gio, Redis
pool = Redis.Pool.new_sync('@URL@', None)
reply = pool.command_sync(['ECHO', 'hello'], None)
@CODE@"""

JS_MAIN = """import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Redis from 'gi://Redis?version=1.0';
for (const klass of [Redis.Pool, Redis.Connection]) {
    for (const name of ['command', 'command_bytes', 'pipeline', 'transaction',
        'noreply_command', 'noreply_pipeline', 'close'])
        Gio._promisify(klass.prototype, `${name}_async`, `${name}_finish`);
}
Gio._promisify(Redis.Pool.prototype, 'acquire_async', 'acquire_finish');
const pool = Redis.Pool.new_sync('@URL@', null);
{
@CODE@}
"""

VALA_MAIN = """async void snippet () throws GLib.Error {
@CODE@}

int main () {
    var loop = new MainLoop ();
    GLib.Error? failure = null;
    snippet.begin ((obj, res) => {
        try {
            snippet.end (res);
        } catch (GLib.Error e) {
            failure = e;
        }
        loop.quit ();
    });
    loop.run ();
    if (failure != null) {
        printerr ("snippet failed: %s\\n", failure.message);
        return 1;
    }
    return 0;
}
"""

FRAGMENT_TEMPLATES = {'c': (C_MAIN, '    '), 'python': (PYTHON_MAIN, ''),
                      'js': (JS_MAIN, '    '), 'vala': (VALA_MAIN, '    ')}


def wrap(snippet, url, cluster_ports=None):
    """The program to run, and the number of lines before the snippet's."""
    code = snippet.code.replace(DEFAULT_URL_HOSTPORT, url[len('redis://'):].split('/')[0])
    if cluster_ports:
        for hostport, port in zip(CLUSTER_HOSTPORTS, cluster_ports):
            code = code.replace(hostport, '127.0.0.1:%d' % port)
    code = code.replace(GJS_MODULE_URL,
                        'file://' + os.path.normpath(GJS_MODULE_SOURCE))
    template, prefix = '@CODE@', ''
    if snippet.options.get('fragment') and snippet.lang in FRAGMENT_TEMPLATES:
        template, prefix = FRAGMENT_TEMPLATES[snippet.lang]
    elif snippet.lang == 'c':
        template = '#line @LINE@ "@PATH@"\n@CODE@'
    head, tail = template.split('@CODE@')
    head = (head.replace('@URL@', url).replace('@LINE@', str(snippet.line + 1))
            .replace('@PATH@', snippet.path))
    return head + indent(code, prefix) + tail, head.count('\n')


# ---- running -----------------------------------------------------------------

class Runner:
    def __init__(self, args, port):
        self.source_dir = args.source_dir
        self.build_dir = os.path.abspath(args.build_dir)
        self.port = port
        self.url = 'redis://127.0.0.1:%d/0' % port
        self.valgrind = args.valgrind or os.environ.get('REDISPOOL_SNIPPETS_VALGRIND') == '1'
        lib_dir = os.path.join(self.build_dir, 'redispool')
        env = dict(os.environ)
        for var in ('GI_TYPELIB_PATH', 'LD_LIBRARY_PATH'):
            env[var] = lib_dir + (':' + env[var] if env.get(var) else '')
        env.setdefault('G_DEBUG', 'fatal-criticals')
        env['PKG_CONFIG_PATH'] = os.path.join(self.build_dir, 'meson-uninstalled') + (
            ':' + env['PKG_CONFIG_PATH'] if env.get('PKG_CONFIG_PATH') else '')
        env['REDIS_URL'] = self.url
        env['REDIS_PORT'] = str(port)
        self.env = env
        self._pkg_flags = None
        self.cluster = Cluster()

    def missing_tool(self, lang):
        """Why a block of @lang cannot run in this build, or None."""
        if lang == 'js' and shutil.which('gjs') is None:
            return 'gjs is not installed'
        if lang == 'vala' and (shutil.which('valac') is None or not os.path.exists(
                os.path.join(self.build_dir, 'redispool', 'redispool-1.0.vapi'))):
            return 'no valac, or the build has no VAPI (-Dvapi)'
        return None

    def cluster_ports(self, snippet):
        if not snippet.options.get('cluster'):
            return None
        return self.cluster.start()

    def pkg_flags(self):
        if self._pkg_flags is None:
            out = subprocess.run(['pkg-config', '--cflags', '--libs', 'redispool-1.0'],
                                 env=self.env, capture_output=True, text=True, check=True)
            self._pkg_flags = shlex.split(out.stdout)
        return self._pkg_flags

    def call(self, argv, timeout, cwd):
        try:
            p = subprocess.run(argv, env=self.env, cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return False, '%s\n%s: timed out after %d s' % (
                (e.output or b'').decode(errors='replace'), argv[0], timeout)
        out = p.stdout.decode(errors='replace')
        if p.returncode != 0:
            return False, '%s%s exited with status %d' % (out, ' '.join(argv[:1]), p.returncode)
        return True, out

    def valgrind_argv(self):
        argv = ['valgrind', '-q', '--error-exitcode=1', '--leak-check=full',
                '--errors-for-leak-kinds=definite', '--show-leak-kinds=definite',
                '--num-callers=30',
                '--suppressions=' + os.path.join(SCRIPT_DIR, '..', 'valgrind.supp')]
        glib_supp = '/usr/share/glib-2.0/valgrind/glib.supp'
        if os.path.exists(glib_supp):
            argv.append('--suppressions=' + glib_supp)
        return argv

    def run(self, snippet, tmp):
        """Returns (ok, output)."""
        ok, out = self.run_one(snippet, tmp)
        if not ok and snippet.lang in ('python', 'js', 'vala'):
            # C carries #line; for the others, map the lines of the file.
            offset = wrap(snippet, self.url, self.cluster_ports(snippet))[1]
            out += '\n(line %d of snippet.%s is %s:%d)' % (
                offset + 1, {'python': 'py'}.get(snippet.lang, snippet.lang),
                snippet.path, snippet.line + 1)
        return ok, out

    def run_one(self, snippet, tmp):
        if snippet.origin == 'api' or snippet.path.startswith('docs' + os.sep):
            long_lines = [snippet.line + 1 + n for n, line in enumerate(snippet.code.splitlines())
                          if len(line) > MAX_COLUMNS]
            if long_lines:
                return False, ('line(s) %s longer than %d columns: they overflow the code box '
                               'of the API reference' % (', '.join(map(str, long_lines)), MAX_COLUMNS))
        cluster_ports = self.cluster_ports(snippet) if snippet.lang not in CHECK_LANGS else None
        source = wrap(snippet, self.url, cluster_ports)[0]
        lang = snippet.lang
        if lang in CHECK_LANGS:
            return self.check_shell(snippet)
        flushall(self.port)
        for port in cluster_ports or ():
            flushall(port)
        if lang == 'c':
            src = os.path.join(tmp, 'snippet.c')
            with open(src, 'w') as f:
                f.write(source)
            exe = os.path.join(tmp, 'snippet')
            ok, out = self.call(['cc', '-std=gnu11', '-Wall', '-Werror', '-Wno-unused-variable',
                                 '-Wno-unused-but-set-variable', '-o', exe, src] +
                                self.pkg_flags(), scale(120), tmp)
            if not ok:
                return False, 'compiling:\n' + out
            if self.valgrind:
                self.env['G_SLICE'] = 'always-malloc'
                return self.call(self.valgrind_argv() + [exe], scale(300), tmp)
            return self.call([exe], scale(30), tmp)
        if lang == 'python':
            src = os.path.join(tmp, 'snippet.py')
            with open(src, 'w') as f:
                f.write(source)
            return self.call([sys.executable, src], scale(30), tmp)
        if lang == 'js':
            src = os.path.join(tmp, 'snippet.js')
            with open(src, 'w') as f:
                f.write(source)
            return self.call(['gjs', '-m', src], scale(30), tmp)
        if lang == 'vala':
            src = os.path.join(tmp, 'snippet.vala')
            with open(src, 'w') as f:
                f.write(source)
            exe = os.path.join(tmp, 'snippet')
            argv = ['valac', '--quiet', '--vapidir=' + os.path.join(self.build_dir, 'redispool'),
                    '--pkg', 'redispool-1.0', '--pkg', 'gio-2.0', '-o', exe, src]
            for flag in self.pkg_flags():
                argv += ['-X', flag]
            ok, out = self.call(argv, scale(180), tmp)
            if not ok:
                return False, 'compiling:\n' + out
            return self.call([exe], scale(30), tmp)
        if lang in TEXT_LANGS:
            return True, ''
        return False, 'unknown fence language %r: use one of %s' % (
            lang, ', '.join(RUN_LANGS + CHECK_LANGS + TEXT_LANGS))

    def check_shell(self, snippet):
        code = snippet.code
        if snippet.lang == 'console':
            code = ''.join(line[2:] + '\n' for line in code.splitlines() if line.startswith('$ '))
        p = subprocess.run(['bash', '-n'], input=code, capture_output=True, text=True)
        if p.returncode != 0:
            return False, 'bash -n:\n' + p.stdout + p.stderr
        missing = [path for path in SOURCE_PATH.findall(code)
                   if not os.path.exists(os.path.join(self.source_dir, path.rstrip('.')))]
        if missing:
            return False, 'names files that do not exist: %s' % ', '.join(missing)
        return True, ''


def tap_comment(text):
    return ''.join('# %s\n' % line for line in text.rstrip('\n').splitlines())


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--build-dir', required=True)
    parser.add_argument('--source-dir', default=DEFAULT_SOURCE_DIR)
    parser.add_argument('--pages', action='store_true')
    parser.add_argument('--api', action='store_true')
    parser.add_argument('--only', action='append', default=[],
                        help='run only snippets whose name contains TEXT')
    parser.add_argument('--list', action='store_true')
    parser.add_argument('--valgrind', action='store_true')
    parser.add_argument('files', nargs='*')
    args = parser.parse_args(argv[1:])
    args.source_dir = os.path.abspath(args.source_dir)
    if not (args.pages or args.api or args.files):
        args.pages = args.api = True

    try:
        snippets = collect(args.source_dir, args.pages, args.api, args.files)
    except ExtractError as e:
        print('1..1')
        print('not ok 1 - extracting snippets')
        sys.stdout.write(tap_comment(str(e)))
        return 1
    if args.only:
        snippets = [s for s in snippets if any(o in s.name for o in args.only)]

    if args.list:
        for s in snippets:
            flags = ' '.join(['fragment'] if s.options.get('fragment') else []) + (
                ' skip: ' + s.options['skip'] if 'skip' in s.options else '')
            print('%s %s' % (s.name, flags.strip()))
        return 0

    if 'REDIS_PORT' not in os.environ:
        helper = os.path.join(SCRIPT_DIR, '..', 'with-redis-server.py')
        os.execv(sys.executable, [sys.executable, helper, sys.executable] + argv)

    runner = Runner(args, int(os.environ['REDIS_PORT']))
    try:
        return run_all(runner, snippets)
    finally:
        runner.cluster.stop()


def run_all(runner, snippets):
    failures = 0
    print('1..%d' % len(snippets), flush=True)
    for n, s in enumerate(snippets, 1):
        reason = (s.options.get('skip') or runner.missing_tool(s.lang) or
                  (s.options.get('cluster') and runner.cluster.missing()))
        if reason:
            print('ok %d - %s # SKIP %s' % (n, s.name, reason), flush=True)
            continue
        tmp = tempfile.mkdtemp(prefix='redispool-snippet-')
        try:
            ok, out = runner.run(s, tmp)
        except Exception as e:     # the runner's own failure: still report the place
            ok, out = False, '%s: %s' % (type(e).__name__, e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if ok:
            print('ok %d - %s' % (n, s.name))
            sys.stdout.write(tap_comment(out))
        else:
            failures += 1
            print('not ok %d - %s' % (n, s.name))
            sys.stdout.write(tap_comment(out))
            sys.stderr.write('%s: snippet failed:\n%s\n' % (s.name, out))
        sys.stdout.flush()
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
