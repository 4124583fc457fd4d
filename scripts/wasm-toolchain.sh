#!/usr/bin/env bash
# Makes the WebAssembly toolchains for plugins available. Idempotent, and quick (no network)
# when everything is already there.
#
# Rust guests, first route that works:
#   1. rustup's wasm32-wasip2 target, if installed;
#   2. Debian's rustc-web/cargo-web with std sources (builds std for wasm32-unknown-unknown;
#      see shared TOOLCHAIN notes), if installed;
#   3. `rustup target add wasm32-wasip2` (20 s at most: it hangs where rustup's server is out
#      of reach);
#   4. apt-get install of the Debian packages that are missing (apt-get update only if needed).
# Python guests: componentize-py (pinned) in .venv-plugins/, created only if missing.
#
# Prints the routes in use and writes them to target/wasm-toolchain.env (WEIR_WASM_RUST_ROUTE,
# WEIR_COMPONENTIZE_PY) for callers to source. `weir plugin build` picks the same Rust route by
# itself (wasip2 if rustup has it, else Debian's).
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_PY_VERSION=0.25.1
DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
ENV_FILE=target/wasm-toolchain.env

have_wasip2() {
    command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2
}

missing_debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 || { printf '%s\n' "${DEBIAN_PACKAGES[@]}"; return; }
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

have_debian() {
    [ -z "$(missing_debian_packages)" ] && [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] \
        && [ -d /usr/lib/rustlib/src/rust/library/std ]
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # Try with the package lists there are; refresh them only when that fails.
    as_root apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 \
        || { as_root apt-get update >/dev/null && as_root apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

rust_route=""
if have_wasip2; then
    rust_route=rustup-wasip2
elif have_debian; then
    rust_route=debian-build-std
elif command -v rustup >/dev/null 2>&1 && timeout 20 rustup target add wasm32-wasip2 >/dev/null 2>&1 && have_wasip2; then
    rust_route=rustup-wasip2
elif command -v apt-get >/dev/null 2>&1; then
    mapfile -t missing < <(missing_debian_packages)
    echo "wasm-toolchain: installing Debian packages: ${missing[*]}" >&2
    apt_install "${missing[@]}"
    have_debian || { echo "wasm-toolchain: Debian's Rust toolchain is still incomplete after apt-get install" >&2; exit 1; }
    rust_route=debian-build-std
else
    echo "wasm-toolchain: no way to get a Rust Wasm toolchain here: 'rustup target add wasm32-wasip2' failed and there is no apt-get" >&2
    exit 1
fi

venv=.venv-plugins
tool=$venv/bin/componentize-py
if [ ! -x "$tool" ] || [ "$("$tool" --version 2>/dev/null | awk '{print $2}')" != "$COMPONENTIZE_PY_VERSION" ]; then
    echo "wasm-toolchain: installing componentize-py $COMPONENTIZE_PY_VERSION into $venv/" >&2
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 && apt_install python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

mkdir -p "$(dirname "$ENV_FILE")"
cat > "$ENV_FILE" <<ENV
WEIR_WASM_RUST_ROUTE=$rust_route
WEIR_COMPONENTIZE_PY=$PWD/$tool
ENV
echo "wasm-toolchain: Rust plugins via $rust_route; Python plugins via componentize-py $COMPONENTIZE_PY_VERSION ($tool)"
