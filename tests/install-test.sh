#!/usr/bin/env bash
# Installs the build into a temporary prefix, then proves the installed
# artefacts work on their own: a C program built with only
# `pkg-config --cflags --libs redispool-1.0`, and a Python and a GJS script
# that find the typelib through that prefix. Needs a running server:
# run through tests/with-redis-server.py (REDIS_URL set).
#
#   install-test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build_dir=$1
source_dir=$2
prefix=$(mktemp -d /tmp/redispool-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT

meson install -C "$build_dir" --no-rebuild --destdir "$prefix" --quiet >/dev/null
# meson installs under DESTDIR + the configured prefix.
configured_prefix=$(meson introspect "$build_dir" --buildoptions |
  /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
root="$prefix$configured_prefix"
libdir=$(find "$root" -name 'libredispool-1.0.so.0' -printf '%h\n' | head -n 1)
pcdir=$(find "$root" -name 'redispool-1.0.pc' -printf '%h\n' | head -n 1)
typelibdir=$(find "$root" -name 'Redis-1.0.typelib' -printf '%h\n' | head -n 1)
for f in "$libdir" "$pcdir" "$typelibdir" "$root/share/gir-1.0/Redis-1.0.gir" \
         "$root/include/redispool-1.0/redispool.h" "$root/include/redispool-1.0/redis-enums.h"; do
  [ -e "$f" ] || { echo "missing after install: $f"; exit 1; }
done
if [ -n "$(find "$root" -name 'redispool-1.0.vapi')" ]; then echo "ok - VAPI installed"; fi
# The demo and the benchmark only with -Dinstall_tools=true.
install_tools=$(meson introspect "$build_dir" --buildoptions |
  /usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="install_tools"][0])')
for tool in redispool-demo redispool-benchmark; do
  found=$(find "$root" -name "$tool" -type f)
  if [ "$install_tools" = True ] && [ -z "$found" ]; then
    echo "missing after install (install_tools=true): $tool"; exit 1
  elif [ "$install_tools" != True ] && [ -n "$found" ]; then
    echo "installed without install_tools: $found"; exit 1
  fi
done
echo "ok - tools installed only with install_tools (install_tools=$install_tools)"

work=$(mktemp -d /tmp/redispool-install-src-XXXXXX)
trap 'rm -rf "$prefix" "$work"' EXIT

# The .pc file names the configured prefix; use a copy that names the
# staged one (a sysroot would also move gio's own paths).
mkdir -p "$work/pc"
sed "s|^prefix=.*|prefix=$root|" "$pcdir/redispool-1.0.pc" > "$work/pc/redispool-1.0.pc"
export PKG_CONFIG_PATH="$work/pc"
export LD_LIBRARY_PATH="$libdir"
export GI_TYPELIB_PATH="$typelibdir"
unset G_TEST_SRCDIR G_TEST_BUILDDIR
cat > "$work/hello.c" <<'C'
#include <redispool.h>
int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(RedisPool) pool = redis_pool_new_sync (g_getenv ("REDIS_URL"), NULL, &error);
  g_autoptr(RedisReply) reply = NULL;

  if (pool == NULL)
    g_error ("%s", error->message);
  reply = redis_client_command_sync (REDIS_CLIENT (pool),
                                     (const char *[]) { "ECHO", "installed", NULL }, NULL, &error);
  g_assert_no_error (error);
  g_print ("%s\n", redis_reply_get_string (reply, NULL));
  return 0;
}
C
# shellcheck disable=SC2046
cc -o "$work/hello" "$work/hello.c" $(pkg-config --cflags --libs redispool-1.0)
[ "$("$work/hello")" = "installed" ] && echo "ok - C program built with pkg-config runs"

/usr/bin/python3 - <<'PY'
import os, gi
gi.require_version('Redis', '1.0')
from gi.repository import Redis
pool = Redis.Pool.new_sync(os.environ['REDIS_URL'], None)
assert pool.command_sync(['ECHO', 'py'], None).get_string() == 'py'
print('ok - Python finds the installed typelib')
PY

# The PyGObject overrides, from the staged site directory only.
overrides=$(find "$root" -path '*/gi/overrides/Redis.py' -printf '%h\n' | head -n 1)
[ -n "$overrides" ] || { echo "missing after install: gi/overrides/Redis.py"; exit 1; }
PYTHONPATH="${overrides%/gi/overrides}" /usr/bin/python3 - "$overrides" <<'PY'
import os, sys, gi
gi.require_version('Redis', '1.0')
from gi.repository import Redis
loaded = os.path.dirname(sys.modules['gi.overrides.Redis'].__file__)
assert loaded == sys.argv[1], (loaded, sys.argv[1])
pool = Redis.Pool.new_sync(os.environ['REDIS_URL'], None)
assert pool.command('ECHO', b'py\x00\xff').value == b'py\x00\xff'
print('ok - Python loads the installed overrides (%s)' % loaded)
PY

cat > "$work/check.js" <<'JS'
import GLib from 'gi://GLib';
import Redis from 'gi://Redis?version=1.0';
const pool = Redis.Pool.new_sync(GLib.getenv('REDIS_URL'), null);
const text = pool.command_sync(['ECHO', 'gjs'], null).get_string();
if (text !== 'gjs') throw new Error('unexpected ' + text);
print('ok - GJS finds the installed typelib');
JS
gjs -m "$work/check.js"
