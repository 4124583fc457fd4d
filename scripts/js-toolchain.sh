#!/usr/bin/env bash
# JavaScript plugins: installs the pinned npm toolchain (componentize-js, rolldown, and jco, which
# brings componentize-qjs) into tools/js/node_modules, from tools/js/package-lock.json. Idempotent:
# does nothing when the installed lockfile matches. Needs node >= 18 and npm.
#
#   scripts/js-toolchain.sh                      install (or check) the toolchain
#   scripts/js-toolchain.sh build DIR [OUT]      build DIR/app.js into a component (world
#                                                $WORLD, default mapper; `weir plugin build` reads
#                                                it from app.js), default OUT
#                                                target/plugins/<dir name>.wasm
#
# Builds go through tools/js/build.mjs: rolldown bundles app.js with the SDK it imports, then
# componentize-js (StarlingMonkey) without --aot (AOT downloads weval at build time) and without
# wasi:http, which weir does not give plugins.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=tools/js
if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "js-toolchain: installing Debian's nodejs and npm" >&2
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null 2>&1 \
        || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
fi
command -v npm >/dev/null 2>&1 || { echo "js-toolchain: npm not found; install Node.js 20+ with npm" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 20 ] || { echo "js-toolchain: Node.js $(node --version 2>/dev/null) is too old: the bundler (rolldown) needs Node.js 20 or later" >&2; exit 1; }

# npm ci writes node_modules/.package-lock.json; same content as the lockfile = installed.
if [ -f "$TOOLS/node_modules/.package-lock.json" ] && [ -x "$TOOLS/node_modules/.bin/componentize-js" ] \
    && [ "$TOOLS/node_modules/.package-lock.json" -nt "$TOOLS/package-lock.json" ]; then
    :
else
    echo "js-toolchain: installing $TOOLS (npm ci)" >&2
    (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "${1:-}" = build ]; then
    dir=${2:?usage: scripts/js-toolchain.sh build DIR [OUT]}
    [ -f "$dir/app.js" ] || { echo "js-toolchain: $dir/app.js not found (a JS plugin is a directory with app.js)" >&2; exit 1; }
    out=${3:-target/plugins/$(basename "$dir").wasm}
    mkdir -p "$(dirname "$out")"
    node "$TOOLS/build.mjs" --wit wit --world "${WORLD:-mapper}" --out "$out" "$dir/app.js" >&2
    echo "$out"
fi
