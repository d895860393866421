#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of run-snippets.py itself: it must fail on a broken block, name
its place, and refuse markers it cannot honour. TAP output.

Usage: test-run-snippets.py --build-dir BUILD   (REDIS_PORT set, as under
tests/with-redis-server.py)
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, 'run-snippets.py')

FENCE = '```'

CASES = [
    # name, markdown, expected exit status, strings the output must hold
    ('a good block passes',
     FENCE + 'python\nprint(6 * 7)\n' + FENCE + '\n',
     0, ['ok 1 - page.md:1 python', '# 42']),
    ('a failing Python block fails, with its place',
     'text\n\n' + FENCE + 'python\nimport sys\nsys.exit(3)\n' + FENCE + '\n',
     1, ['not ok 1 - page.md:3 python', 'exited with status 3',
         '(line 1 of snippet.py is page.md:4)']),
    ('a C block that does not compile fails at its line',
     FENCE + 'c\nint\nmain (void)\n{\n  return nope;\n}\n' + FENCE + '\n',
     1, ['not ok 1 - page.md:1 c', 'page.md:5', 'nope']),
    ('a C block that fails at run time fails',
     FENCE + 'c\n#include <redispool.h>\nint\nmain (void)\n{\n'
     '  g_autoptr(GError) error = NULL;\n'
     '  g_autoptr(RedisPool) pool =\n'
     '    redis_pool_new_sync ("redis://127.0.0.1:6379/0", NULL, &error);\n'
     '  g_autoptr(RedisReply) reply =\n'
     '    redis_client_command_sync (REDIS_CLIENT (pool),\n'
     '      (const char *[]) { "NOSUCHCOMMAND", NULL }, NULL, &error);\n'
     '  return reply == NULL;\n}\n' + FENCE + '\n',
     1, ['not ok 1 - page.md:1 c', 'exited with status 1']),
    ('a C fragment has pool and reply in scope',
     '<!-- snippet: fragment -->\n' + FENCE + 'c\n'
     'g_assert_cmpstr (redis_reply_get_string (reply, NULL), ==, "hello");\n'
     'g_assert_cmpuint (redis_pool_get_size (pool), >, 0);\n' + FENCE + '\n',
     0, ['ok 1 - page.md:2 c']),
    ('a GJS fragment sees promisified calls',
     '<!-- snippet: fragment -->\n' + FENCE + 'js\n'
     "const r = await pool.command_async(['ECHO', 'x'], null);\n"
     'if (r.get_kind() !== Redis.ReplyKind.STRING) throw new Error("kind");\n'
     + FENCE + '\n',
     0, ['ok 1 - page.md:2 js']),
    ('a failing Vala fragment fails',
     '<!-- snippet: fragment -->\n' + FENCE + 'vala\n'
     'var pool = new Redis.Pool.sync ("redis://127.0.0.1:6379/0", null);\n'
     'yield pool.command_async ({ "NOSUCHCOMMAND" });\n' + FENCE + '\n',
     1, ['not ok 1 - page.md:2 vala', 'snippet failed']),
    ('the server is flushed between blocks',
     FENCE + 'python\nimport gi\ngi.require_version("Redis", "1.0")\n'
     'from gi.repository import Redis\n'
     'p = Redis.Pool.new_sync("redis://127.0.0.1:6379/0", None)\n'
     'assert p.command_sync(["INCR", "n"], None).get_integer() == 1\n' + FENCE + '\n\n'
     + FENCE + 'python\nimport gi\ngi.require_version("Redis", "1.0")\n'
     'from gi.repository import Redis\n'
     'p = Redis.Pool.new_sync("redis://127.0.0.1:6379/0", None)\n'
     'assert p.command_sync(["INCR", "n"], None).get_integer() == 1\n' + FENCE + '\n',
     0, ['ok 1 - page.md:1 python', 'ok 2 - page.md:9 python']),
    ('a skip carries its reason',
     '<!-- snippet: skip reason="needs a cluster" -->\n' + FENCE + 'python\nboom\n'
     + FENCE + '\n',
     0, ['ok 1 - page.md:2 python # SKIP needs a cluster']),
    ('a skip without a reason is refused',
     '<!-- snippet: skip -->\n' + FENCE + 'python\nprint(1)\n' + FENCE + '\n',
     1, ['not ok 1 - extracting snippets', 'needs reason=']),
    ('a marker without a fence is refused',
     '<!-- snippet: fragment -->\nSome text.\n',
     1, ['not ok 1 - extracting snippets', 'not followed by a fence']),
    ('an unknown marker word is refused',
     '<!-- snippet: fragmnet -->\n' + FENCE + 'python\nprint(1)\n' + FENCE + '\n',
     1, ['not ok 1 - extracting snippets', "unknown snippet marker word 'fragmnet'"]),
    ('a fence without a language fails',
     FENCE + '\nprint(1)\n' + FENCE + '\n',
     1, ['not ok 1 - page.md:1 (no language)', 'unknown fence language']),
    ('an unclosed fence is refused',
     FENCE + 'python\nprint(1)\n',
     1, ['not ok 1 - extracting snippets', 'fence never closed']),
    ('a shell block with a syntax error fails',
     FENCE + 'sh\nif true; then\n' + FENCE + '\n',
     1, ['not ok 1 - page.md:1 sh', 'bash -n']),
    ('a shell block naming a missing file fails',
     FENCE + 'sh\nbash tools/no-such-script.sh\n' + FENCE + '\n',
     1, ['not ok 1 - page.md:1 sh', 'tools/no-such-script.sh']),
]


def main(argv):
    build_dir = argv[argv.index('--build-dir') + 1]
    print('1..%d' % len(CASES))
    failures = 0
    with tempfile.TemporaryDirectory(prefix='redispool-snippets-test-') as tmp:
        for n, (name, markdown, status, needles) in enumerate(CASES, 1):
            page = os.path.join(tmp, 'page.md')
            with open(page, 'w') as f:
                f.write(markdown)
            p = subprocess.run([sys.executable, RUNNER, '--build-dir', build_dir,
                                '--source-dir', tmp, page],
                               capture_output=True, text=True, timeout=600)
            out = p.stdout
            missing = [s for s in needles if s not in out]
            if p.returncode == status and not missing:
                print('ok %d - %s' % (n, name))
            else:
                failures += 1
                print('not ok %d - %s' % (n, name))
                print('# exit status %d (expected %d); missing: %r' % (p.returncode, status, missing))
                for line in (out + p.stderr).splitlines():
                    print('#   ' + line)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
