#!/usr/bin/env bash
# Installs what Tributary needs besides the Rust toolchain: ZooKeeper (Debian's `zookeeper`
# package, 3.8), a Java runtime (pulled in by it) and a C toolchain for linking (gcc). Idempotent: installs only what is missing,
# and says what it did. Debian/Ubuntu with apt-get, run as root (or with sudo available).
set -euo pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI, sudo) may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -f ${CARGO_HOME:-$HOME/.cargo}/env ]]; then
    # shellcheck source=/dev/null
    source "${CARGO_HOME:-$HOME/.cargo}/env"
fi
ZOOKEEPER_JAR=/usr/share/java/zookeeper.jar
export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-deps: %s\n' "$*"; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*"
        exit 1
    fi
}

missing=()
if [[ -f $ZOOKEEPER_JAR ]]; then
    log "ZooKeeper already installed ($ZOOKEEPER_JAR)"
else
    missing+=(zookeeper)
fi
if ! command -v cc >/dev/null 2>&1; then
    # rustc links through `cc`, and some crates (via the `cc` crate) compile a little C.
    missing+=(gcc libc6-dev)
fi
if ! command -v java >/dev/null 2>&1; then
    # The zookeeper package depends on a JRE, but a half-installed system may lack one.
    missing+=(default-jre-headless)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found; install these by hand: ${missing[*]}"
        exit 1
    fi
    log "installing: ${missing[*]}"
    as_root apt-get update -q
    as_root apt-get install -y -q "${missing[@]}"
    log "installed: ${missing[*]}"
fi

if ! command -v java >/dev/null 2>&1; then
    log "java is still not on PATH after installing; check the JRE installation"
    exit 1
fi
log "java: $(java -version 2>&1 | head -n 1)"
if [[ ! -f $ZOOKEEPER_JAR ]]; then
    log "$ZOOKEEPER_JAR is still missing after installing zookeeper"
    exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install the Rust toolchain (https://rustup.rs), then re-run"
    exit 1
fi
log "cargo: $(cargo --version)"
log "cc: $(cc --version | head -n 1)"
log "all dependencies present"
