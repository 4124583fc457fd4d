#!/usr/bin/env bash
# Builds every plugin (plugins/*, and the test plugins in tests/plugins/*) into a component at
# target/plugins/<dir name>.wasm, with `weir plugin build`. Run scripts/wasm-toolchain.sh first
# (scripts/test.sh and scripts/demo.sh do).
#
# Rust plugins: cargo decides what to rebuild (guest builds live in target/wasm-guest, apart from
# the host's). Python plugins (dirs with app.py): rebuilt only when a hash of their inputs (the
# plugin's .py files, the Python SDK, the WIT contract, componentize-py's version) changed.
# JavaScript plugins (dirs with app.js; scripts/js-toolchain.sh installs componentize-js): the
# same, over their .js files, the JS SDK (guest-sdk/js), the WIT contract, tools/js/build.mjs and
# tools/js/package-lock.json.
# C plugins (dirs with plugin.c; scripts/c-toolchain.sh installs clang, wasi-libc, wit-bindgen):
# the same, over their .c/.h files and Makefile, the C SDK (guest-sdk/c), the WIT contract and
# the tools' versions.
#
# WEIR=path/to/weir picks the binary (default target/debug/weir, built if missing).
# Plugin names given as arguments limit the build to those: scripts/build-plugins.sh enrich filter
set -euo pipefail
cd "$(dirname "$0")/.."

WEIR=${WEIR:-target/debug/weir}
if [ ! -x "$WEIR" ]; then
    if [ "$WEIR" = target/debug/weir ]; then
        cargo build -p weir-host --bins
    else
        echo "build-plugins: $WEIR does not exist; build the host first" >&2
        exit 1
    fi
fi
OUT_DIR=target/plugins
mkdir -p "$OUT_DIR"

js_inputs_hash() {
    find "$1" guest-sdk/js wit tools/js/package-lock.json tools/js/build.mjs -type f \
        \( -name '*.js' -o -name '*.mjs' -o -name '*.wit' -o -name 'package-lock.json' \) \
        -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

c_inputs_hash() {
    local tool=tools/c/bin/wit-bindgen
    {
        find "$1" guest-sdk/c wit -type f \( -name '*.c' -o -name '*.h' -o -name 'Makefile' -o -name '*.wit' \) \
            -not -path '*/build/*' -print0 | sort -z | xargs -0 sha256sum
        if [ -x "$tool" ]; then "$tool" --version; else echo "no wit-bindgen"; fi
        clang-22 --version 2>/dev/null | head -1 || true
    } | sha256sum | cut -d' ' -f1
}

python_inputs_hash() {
    local dir=$1 tool=.venv-plugins/bin/componentize-py
    {
        find "$dir" guest-sdk/python wit -type f \( -name '*.py' -o -name '*.wit' \) -not -path '*/__pycache__/*' \
            -print0 | sort -z | xargs -0 sha256sum
        if [ -x "$tool" ]; then "$tool" --version; else echo "no componentize-py"; fi
    } | sha256sum | cut -d' ' -f1
}

only=("$@")
wanted() {
    [ ${#only[@]} -eq 0 ] && return 0
    local n
    for n in "${only[@]}"; do [ "$n" = "$1" ] && return 0; done
    return 1
}

built=()
for dir in plugins/*/ tests/plugins/*/; do
    [ -d "$dir" ] || continue
    dir=${dir%/}
    name=$(basename "$dir")
    wanted "$name" || continue
    out=$OUT_DIR/$name.wasm
    if [ -f "$dir/Cargo.toml" ]; then
        "$WEIR" plugin build "$dir" --out "$out" >/dev/null
    elif [ -f "$dir/app.py" ] || [ -f "$dir/app.js" ] || [ -f "$dir/plugin.c" ]; then
        stamp=$OUT_DIR/.$name.inputs
        if [ -f "$dir/app.py" ]; then hash=$(python_inputs_hash "$dir");
        elif [ -f "$dir/app.js" ]; then hash=$(js_inputs_hash "$dir");
        else hash=$(c_inputs_hash "$dir"); fi
        if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
            echo "build-plugins: $out is up to date" >&2
        else
            "$WEIR" plugin build "$dir" --out "$out" >/dev/null
            echo "$hash" > "$stamp"
        fi
    else
        continue
    fi
    built+=("$out")
done
printf '%s\n' "${built[@]}"
