#!/usr/bin/env bash
# Dumps Tributary's ZooKeeper tree the way an operator would look at it: the znodes
# (`zkCli.sh ls -R`) and then every payload (`zkCli.sh get`), one "path = data" line each.
#
#   deploy/zk-dump.sh [HOST:PORT[/CHROOT]]        default 127.0.0.1:2181
#
# Uses Debian's zkCli.sh (installed by deploy/install-deps.sh). Two JVM starts in all: the
# `get`s go through one interactive session, whose output has exactly one line per `get` after
# the connection banner (payloads are single-line JSON or text; empty znodes print "").
set -euo pipefail

SERVER=${1:-127.0.0.1:2181}
ZKCLI=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
if [[ ! -x $ZKCLI ]]; then
    echo "zk-dump: $ZKCLI not found; run deploy/install-deps.sh" >&2
    exit 1
fi

# Lines after the "WatchedEvent state:SyncConnected" banner are the commands' output.
run_zkcli() {
    "$ZKCLI" -server "$SERVER" 2>/dev/null | awk 'started { print; next } /^WatchedEvent state:SyncConnected/ { started = 1 }'
}

mapfile -t paths < <(printf 'ls -R /\n' | run_zkcli | grep '^/' | grep -v '^/zookeeper')
if [[ ${#paths[@]} -eq 0 ]]; then
    echo "zk-dump: no znodes found at $SERVER (is ZooKeeper running?)" >&2
    exit 1
fi

echo "# znodes at $SERVER"
printf '%s\n' "${paths[@]}"
echo
echo "# payloads (path = data; znodes without data are left out)"
mapfile -t values < <(printf 'get %s\n' "${paths[@]}" | run_zkcli)
if [[ ${#values[@]} -ne ${#paths[@]} ]]; then
    echo "zk-dump: expected ${#paths[@]} answers from zkCli, got ${#values[@]}" >&2
    exit 1
fi
for i in "${!paths[@]}"; do
    if [[ -n ${values[$i]} && ${values[$i]} != null ]]; then
        printf '%s = %s\n' "${paths[$i]}" "${values[$i]}"
    fi
done
