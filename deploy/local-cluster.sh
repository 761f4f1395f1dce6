#!/usr/bin/env bash
# A working local Tributary cluster: ZooKeeper on 127.0.0.1:2181 and N brokers on 9092.., all
# state under ./.tributary/ in the repo. `start` also shows it working: it creates topic `demo`,
# produces a few records with the CLI and consumes them back.
#
#   ./deploy/local-cluster.sh [start|stop|status] [--brokers N]     (default: start, 1 broker)
#
# Safe to run twice: running processes (known by their PID files) are kept, not restarted.
# `stop` ends them by PID (SIGTERM, then SIGKILL after 15 s). Ports can be moved with
# TRIBUTARY_ZK_PORT (default 2181) and TRIBUTARY_FIRST_BROKER_PORT (default 9092).
set -euo pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI, sudo) may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -f ${CARGO_HOME:-$HOME/.cargo}/env ]]; then
    # shellcheck source=/dev/null
    source "${CARGO_HOME:-$HOME/.cargo}/env"
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=$ROOT/.tributary
PIDS=$STATE/pids
ZK_PORT=${TRIBUTARY_ZK_PORT:-2181}
FIRST_BROKER_PORT=${TRIBUTARY_FIRST_BROKER_PORT:-9092}
ZOOKEEPER_JAR=/usr/share/java/zookeeper.jar
BIN=$ROOT/target/release

command=start
brokers=1
while [[ $# -gt 0 ]]; do
    case $1 in
        start | stop | status) command=$1 ;;
        --brokers) brokers=${2:?--brokers needs a number}; shift ;;
        --brokers=*) brokers=${1#--brokers=} ;;
        -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if ! [[ $brokers =~ ^[1-9][0-9]*$ ]]; then
    echo "--brokers must be a positive number, got '$brokers'" >&2
    exit 2
fi

log() { printf '[local-cluster] %s\n' "$*"; }
die() { printf '[local-cluster] ERROR: %s\n' "$*" >&2; exit 1; }

# The PID in pid file $1 if that process is alive and its command line contains $2 (so a PID
# reused by an unrelated process after a reboot is never signalled). Prints nothing otherwise.
live_pid() {
    local file=$1 pattern=$2 pid
    [[ -f $file ]] || return 0
    pid=$(<"$file")
    if [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"; then
        echo "$pid"
    fi
}

# Sends a ZooKeeper four-letter word to 127.0.0.1:$ZK_PORT with bash's /dev/tcp (no netcat).
# A subshell, so a refused connection is just a failed command, never an exit of the script.
zk_4lw() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT"
        printf '%s' "$1" >&3
        timeout 2 cat <&3
    ) 2>/dev/null
}

# ruok answers as soon as the port is bound; srvr shows a Mode only once requests are served.
zk_ready() {
    [[ $(zk_4lw ruok 2>/dev/null) == imok ]] && zk_4lw srvr 2>/dev/null | grep -q '^Mode:'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cli() { "$BIN/tributary" --bootstrap-server "127.0.0.1:$FIRST_BROKER_PORT" "$@"; }

start_zookeeper() {
    local dir=$STATE/zk pid
    pid=$(live_pid "$PIDS/zookeeper.pid" QuorumPeerMain)
    if [[ -n $pid ]]; then
        log "ZooKeeper already running (pid $pid)"
    else
        if port_open "$ZK_PORT"; then
            die "port $ZK_PORT is taken by a process this script did not start; stop it first"
        fi
        mkdir -p "$dir/data"
        sed -e "s|@DATA_DIR@|$dir/data|" -e "s|@PORT@|$ZK_PORT|" \
            "$ROOT/deploy/config/zoo.cfg" >"$dir/zoo.cfg"
        local classpath=/etc/zookeeper/conf:$ZOOKEEPER_JAR
        # Debian's classpath has no slf4j binding; without this jar ZooKeeper logs nothing.
        [[ -f /usr/share/java/slf4j-simple.jar ]] && classpath+=:/usr/share/java/slf4j-simple.jar
        # setsid: the server outlives this script and the terminal's Ctrl-C.
        setsid java -Xmx512m -cp "$classpath" org.apache.zookeeper.server.quorum.QuorumPeerMain \
            "$dir/zoo.cfg" </dev/null >"$dir/zookeeper.log" 2>&1 &
        echo $! >"$PIDS/zookeeper.pid"
        log "ZooKeeper starting (pid $!, log $dir/zookeeper.log)"
    fi
    for _ in $(seq 1 300); do
        zk_ready && { log "ZooKeeper ready on 127.0.0.1:$ZK_PORT"; return 0; }
        [[ -n $(live_pid "$PIDS/zookeeper.pid" QuorumPeerMain) ]] ||
            { tail -n 30 "$dir/zookeeper.log" >&2; die "ZooKeeper exited during start-up"; }
        sleep 0.1
    done
    tail -n 30 "$dir/zookeeper.log" >&2
    die "ZooKeeper not ready after 30 s"
}

start_broker() {
    local id=$1 port=$((FIRST_BROKER_PORT + $1 - 1)) dir=$STATE/broker-$1 pid
    pid=$(live_pid "$PIDS/broker-$id.pid" "$BIN/broker")
    if [[ -n $pid ]]; then
        log "broker $id already running (pid $pid, port $port)"
        return 0
    fi
    if port_open "$port"; then
        die "port $port is taken by a process this script did not start; stop it first"
    fi
    mkdir -p "$dir/data"
    sed -e "s|@BROKER_ID@|$id|" -e "s|@PORT@|$port|g" -e "s|@LOG_DIRS@|$dir/data|" \
        -e "s|@ZOOKEEPER_CONNECT@|127.0.0.1:$ZK_PORT|" \
        "$ROOT/deploy/config/server.properties" >"$dir/server.properties"
    RUST_LOG=${RUST_LOG:-info} setsid "$BIN/broker" --config "$dir/server.properties" \
        </dev/null >>"$dir/broker.log" 2>&1 &
    echo $! >"$PIDS/broker-$id.pid"
    log "broker $id starting (pid $!, port $port, log $dir/broker.log)"
}

wait_for_broker() {
    local id=$1 port=$((FIRST_BROKER_PORT + $1 - 1)) dir=$STATE/broker-$1
    for _ in $(seq 1 600); do
        if port_open "$port" &&
            "$BIN/tributary" --bootstrap-server "127.0.0.1:$port" topics list >/dev/null 2>&1; then
            log "broker $id ready on 127.0.0.1:$port"
            return 0
        fi
        [[ -n $(live_pid "$PIDS/broker-$id.pid" "$BIN/broker") ]] ||
            { tail -n 30 "$dir/broker.log" >&2; die "broker $id exited during start-up"; }
        sleep 0.1
    done
    tail -n 30 "$dir/broker.log" >&2
    die "broker $id not ready after 60 s"
}

# Shows the cluster working end to end with the CLI. Each run produces lines tagged with a run
# id, reads the whole topic back, and checks this run's lines are all there. Every command goes
# through broker 1; with --brokers N the controller may place partition 0 on another broker, and
# the CLI sends produce and fetch to that leader (waiting while the new topic's leaders spread).
demo() {
    local run total count_file=$STATE/demo-records output
    run=$(date +%Y%m%dT%H%M%S)-$$
    # Every broker holds a replica (up to 3); the controller spreads the leaders.
    local rf=$((brokers < 3 ? brokers : 3))
    log "demo: creating topic demo (3 partitions, replication factor $rf)"
    if ! cli topics create demo --partitions 3 --replication-factor "$rf"; then
        cli topics describe demo >/dev/null || die "could not create topic demo"
        log "demo: topic demo already exists"
    fi
    cli topics describe demo
    local records
    records=$(printf 'user-%d:hello #%d from run %s\n' 1 1 "$run" 2 2 "$run" 3 3 "$run" 4 4 "$run" 5 5 "$run")
    log "demo: producing 5 records (key:value), one per line:"
    printf '%s\n' "$records"
    # Partition 0, which consume reads (without --partition the keys would pick partitions).
    printf '%s\n' "$records" | cli produce demo --key-separator : --partition 0
    total=$(($(cat "$count_file" 2>/dev/null || echo 0) + 5))
    echo "$total" >"$count_file"
    log "demo: consuming all $total records of demo from the beginning"
    output=$(timeout 60 "$BIN/tributary" --bootstrap-server "127.0.0.1:$FIRST_BROKER_PORT" \
        consume demo --from-beginning --max-messages "$total") || die "consume failed or timed out"
    log "demo: read $(wc -l <<<"$output") records back; the values of this run's records:"
    grep -- "from run $run" <<<"$output" || true
    if [[ $(grep -c -- "from run $run" <<<"$output") -ne 5 ]]; then
        die "demo: did not read back the 5 records just produced"
    fi
    log "demo: OK, all 5 records of this run read back"
}

cmd_start() {
    mkdir -p "$PIDS"
    # What did start keeps running (so logs and state can be inspected); say how to end it.
    trap '[[ $? -eq 0 ]] || log "start failed; processes already started keep running: $0 status | stop"' EXIT
    if [[ ! -f $ZOOKEEPER_JAR ]] || ! command -v java >/dev/null 2>&1; then
        "$ROOT/deploy/install-deps.sh"
    fi
    log "building release binaries (cargo build --release --bins)"
    (cd "$ROOT" && cargo build --release --bins)
    start_zookeeper
    local id
    for id in $(seq 1 "$brokers"); do start_broker "$id"; done
    for id in $(seq 1 "$brokers"); do wait_for_broker "$id"; done
    demo
    log "cluster is up: bootstrap server 127.0.0.1:$FIRST_BROKER_PORT; stop with $0 stop"
}

# SIGTERM (clean shutdown), then SIGKILL after 15 s.
stop_process() {
    local name=$1 file=$2 pattern=$3 pid
    pid=$(live_pid "$file" "$pattern")
    if [[ -z $pid ]]; then
        rm -f "$file"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
        log "$name did not exit after 15 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

cmd_stop() {
    local file
    # Brokers first, so they can deregister from ZooKeeper on the way out.
    for file in "$PIDS"/broker-*.pid; do
        [[ -e $file ]] || continue
        stop_process "$(basename "$file" .pid)" "$file" "$BIN/broker"
    done
    stop_process zookeeper "$PIDS/zookeeper.pid" QuorumPeerMain
    log "stopped (data kept in $STATE; delete it for a fresh cluster)"
}

cmd_status() {
    local file pid name
    pid=$(live_pid "$PIDS/zookeeper.pid" QuorumPeerMain)
    if [[ -n $pid ]]; then
        log "zookeeper: running (pid $pid), ruok -> $(zk_4lw ruok 2>/dev/null || echo 'no answer')"
    else
        log "zookeeper: not running"
    fi
    for file in "$PIDS"/broker-*.pid; do
        [[ -e $file ]] || continue
        name=$(basename "$file" .pid)
        pid=$(live_pid "$file" "$BIN/broker")
        if [[ -n $pid ]]; then log "$name: running (pid $pid)"; else log "$name: not running"; fi
    done
}

"cmd_$command"
