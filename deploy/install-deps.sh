#!/usr/bin/env bash
# Installs what Tributary needs besides the Rust toolchain: ZooKeeper (Debian's `zookeeper`
# package, 3.8), a Java runtime (pulled in by it) and a C toolchain for linking (gcc). Idempotent: installs only what is missing,
# and says what it did. Debian/Ubuntu with apt-get, run as root (or with sudo available).
# Also what the Python example (examples/python/) and its integration test need: Debian's
# python3 with python3-grpcio (and python3-protobuf), plus protoc and the gRPC Python plugin to
# generate stubs at run time (Debian 12's python3-grpc-tools, 1.14, predates proto3 `optional`).
set -euo pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI, sudo) may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -f ${CARGO_HOME:-$HOME/.cargo}/env ]]; then
    # shellcheck source=/dev/null
    source "${CARGO_HOME:-$HOME/.cargo}/env"
fi
ZOOKEEPER_JAR=/usr/share/java/zookeeper.jar
# apt installs Python modules for Debian's interpreter, whatever `python3` is first on PATH.
DEBIAN_PYTHON=/usr/bin/python3
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

if ! "$DEBIAN_PYTHON" -c 'import grpc, google.protobuf' >/dev/null 2>&1; then
    missing+=(python3 python3-grpcio python3-protobuf)
fi
if ! command -v protoc >/dev/null 2>&1; then
    missing+=(protobuf-compiler)
fi
if ! command -v grpc_python_plugin >/dev/null 2>&1; then
    missing+=(protobuf-compiler-grpc)
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
if ! "$DEBIAN_PYTHON" -c 'import grpc, google.protobuf' >/dev/null 2>&1; then
    log "$DEBIAN_PYTHON cannot import grpc and google.protobuf after installing python3-grpcio"
    exit 1
fi
log "python: $("$DEBIAN_PYTHON" -c 'import grpc, sys; print(sys.version.split()[0], "grpcio", grpc.__version__)')"
log "protoc: $(protoc --version), grpc_python_plugin: $(command -v grpc_python_plugin)"
if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install the Rust toolchain (https://rustup.rs), then re-run"
    exit 1
fi
log "cargo: $(cargo --version)"
log "cc: $(cc --version | head -n 1)"
log "all dependencies present"
