#!/usr/bin/env bash
# Builds redispool and runs its C demo. With REDIS_URL (or a URI argument) it
# talks to that server; otherwise it starts a throwaway redis-server on a free
# loopback port and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh
if [ ! -f _build/build.ninja ]; then
  meson setup _build >/dev/null
fi
meson compile -C _build redispool-demo >/dev/null

uri="${1:-${REDIS_URL:-}}"
if [ -n "$uri" ]; then
  exec ./_build/examples/redispool-demo "$uri"
fi

exec /usr/bin/python3 tests/with-redis-server.py ./_build/examples/redispool-demo
