#!/usr/bin/env bash
# System packages the host's build needs: libclang, for RocksDB's bindings (librocksdb-sys runs
# bindgen at build time). Installs only what is missing; quick when everything is there.
set -euo pipefail
if ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "host-deps: libclang is missing and there is no apt-get; install libclang (for RocksDB's bindgen) by hand" >&2
    exit 1
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive
echo "host-deps: installing libclang-dev (RocksDB's bindgen needs it)" >&2
as_root apt-get install -y -qq --no-install-recommends libclang-dev >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq --no-install-recommends libclang-dev >/dev/null; }
