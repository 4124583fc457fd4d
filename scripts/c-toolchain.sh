#!/usr/bin/env bash
# C plugins: makes the C → Wasm toolchain available. Idempotent, and quick (no network) when
# everything is already there.
#
#   - clang and wasm-ld (Debian's clang-22 and lld-22), the compiler builtins for wasm32
#     (libclang-rt-22-dev-wasm32) and wasi-libc (headers in /usr/include/wasm32-wasi, libraries
#     in /usr/lib/wasm32-wasi): apt-get install of whichever is missing (apt-get update only
#     when the install fails with the package lists there are);
#   - the `wit-bindgen` CLI (pinned; only its C generator) into tools/c/bin, with cargo install
#     (once: 9.5 min measured on 2 busy cores, at nice 19; less on an idle machine).
#
# `weir plugin build` uses them (clang-22, else clang; tools/c/bin/wit-bindgen, else wit-bindgen
# on PATH). Elsewhere than Debian: set WEIR_CLANG to a clang with the wasm32 target and
# WASI_SYSROOT to a wasi-libc sysroot (e.g. wasi-sdk's share/wasi-sysroot) — see docs/plugins-c.md.
set -euo pipefail
cd "$(dirname "$0")/.."

WIT_BINDGEN_VERSION=0.60.0 # its wit-component (0.254) is the host's
DEBIAN_PACKAGES=(clang-22 lld-22 libclang-rt-22-dev-wasm32 wasi-libc)
TOOLS=tools/c

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing_debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 || { printf '%s\n' "${DEBIAN_PACKAGES[@]}"; return; }
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

if [ -n "${WEIR_CLANG:-}" ] && [ -n "${WASI_SYSROOT:-}" ]; then
    echo "c-toolchain: using WEIR_CLANG=$WEIR_CLANG and WASI_SYSROOT=$WASI_SYSROOT" >&2
else
    mapfile -t missing < <(missing_debian_packages)
    if [ ${#missing[@]} -gt 0 ]; then
        command -v apt-get >/dev/null 2>&1 || {
            echo "c-toolchain: missing ${missing[*]} and no apt-get; set WEIR_CLANG and WASI_SYSROOT (see docs/plugins-c.md)" >&2
            exit 1
        }
        echo "c-toolchain: installing Debian packages: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
            || { as_root apt-get update >/dev/null && as_root apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
    fi
fi

tool=$TOOLS/bin/wit-bindgen
if [ ! -x "$tool" ] || [ "$("$tool" --version 2>/dev/null | awk '{print $2}')" != "$WIT_BINDGEN_VERSION" ]; then
    echo "c-toolchain: installing wit-bindgen-cli $WIT_BINDGEN_VERSION (C generator only) into $TOOLS/ (a few minutes, once)" >&2
    # In cargo's own scratch dir (removed after): never waits on, nor invalidates, the host's build.
    env -u CARGO_TARGET_DIR cargo install wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" --locked \
        --no-default-features --features c --root "$TOOLS" --quiet
fi
echo "c-toolchain: clang $(clang-22 --version 2>/dev/null | sed -n 's/.*clang version \([^ ]*\).*/\1/p' || echo "${WEIR_CLANG:-?}"), wasi-libc, $("$tool" --version)"
