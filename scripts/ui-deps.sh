#!/usr/bin/env bash
# What the web UI's browser test (tests/e2e/ui.rs) needs: Debian's chromium and chromium-driver,
# and playwright-core pinned in tests/ui/package-lock.json (npm ci; Playwright's own browser
# download is not used). Installs only what is missing; quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -x /usr/bin/chromium ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ui-deps: /usr/bin/chromium is missing and there is no apt-get; install chromium by hand" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "ui-deps: installing Debian's chromium and chromium-driver (the web UI's browser test)" >&2
    as_root apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
        || { as_root apt-get update -qq >/dev/null \
            && as_root apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }
fi
if [ ! -d tests/ui/node_modules/playwright-core ]; then
    (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
fi
