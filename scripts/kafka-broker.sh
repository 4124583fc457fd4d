#!/usr/bin/env bash
# The Kafka-protocol broker the tests talk to: tansu (crates.io), an independent broker process
# (facts in ../shared/KAFKA.md). Installs it once, at a pinned version, with `cargo install`
# (~14 minutes on 2 cores; a machine that has it skips this).
#
#   scripts/kafka-broker.sh install     install tansu if missing; prints its path
#   scripts/kafka-broker.sh run PORT    run a broker on 127.0.0.1:PORT in the foreground (memory
#                                       storage), until SIGINT
#
# The e2e tests start and stop their own brokers (one per test, on a free port) through
# WEIR_TANSU (default: the installed binary); scripts/test.sh runs `install` first.
set -euo pipefail
TANSU_VERSION=0.6.0
ROOT="${CARGO_HOME:-$HOME/.cargo}"
BIN="$ROOT/bin/tansu"

installed() { [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$TANSU_VERSION"; }

case "${1:-}" in
install)
    if ! installed; then
        echo "kafka-broker: installing tansu $TANSU_VERSION (cargo install at opt-level 1, several minutes on 2 cores)" >&2
        # opt-level 1, not release's 3: a test broker on loopback needs no more, and it
        # compiles in about half the time on a fresh machine.
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
            cargo install tansu --version "$TANSU_VERSION" --features dynostore --locked --root "$ROOT" >&2
    fi
    echo "$BIN"
    ;;
run)
    port=${2:?usage: scripts/kafka-broker.sh run PORT}
    exec "$BIN" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/
    ;;
*)
    echo "usage: scripts/kafka-broker.sh install | run PORT" >&2
    exit 2
    ;;
esac
