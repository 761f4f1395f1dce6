#!/usr/bin/env bash
# THE test command: everything CI runs, runnable by anyone from a fresh clone.
#
#   ./deploy/test.sh [extra cargo test args...]     e.g. ./deploy/test.sh -- --nocapture
#
# 1. Installs ZooKeeper and Java, and Python gRPC and protoc for the Python example, if missing
#    (deploy/install-deps.sh; needs root or sudo).
# 2. Builds every binary first: the integration tests run the real `broker` and `tributary`
#    binaries from target/debug/, and `cargo test` alone would not build them.
# 3. Runs the whole workspace's tests, all of them even after a failure.
# Non-interactive (no prompts, no stdin); on 2 cores expect a few minutes for a cold build.
set -euo pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI, sudo) may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -f ${CARGO_HOME:-$HOME/.cargo}/env ]]; then
    # shellcheck source=/dev/null
    source "${CARGO_HOME:-$HOME/.cargo}/env"
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Backtraces in failing tests (and in the brokers they start).
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
./deploy/install-deps.sh </dev/null

step "cargo build --workspace --bins"
cargo build --workspace --bins </dev/null

step "cargo test --workspace --no-fail-fast $*"
cargo test --workspace --no-fail-fast "$@" </dev/null

step "all tests passed"
