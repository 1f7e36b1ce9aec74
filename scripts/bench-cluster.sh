#!/usr/bin/env bash
# Calls/s with one, two and three hosts on a three-node RabbitMQ cluster of
# the script's own (never the broker on 5672), interleaved: each round runs
# 1, 2 and 3 hosts in turn, so a busy moment of the machine falls on every
# host count alike, and each count runs once per route queue type (classic
# and quorum by default, each on an RPC exchange of its own, so their queues
# do not meet). Host k serves from node k; the bench connects to node 0 and
# keeps 32 calls in flight. Prints a Markdown table for docs/benchmarks.md.
#   usage: scripts/bench-cluster.sh [seconds per run] [rounds] ["route_queues types"] [method args...]
#   (after cargo build --release -p plughost-cli -p plugin-math -p plugin-echo)
# Default: 10 s runs, 3 rounds, "classic quorum", `fibo 20`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
kinds=(${3:-classic quorum})
shift $(( $# < 3 ? $# : 3 ))
method=(${@:-fibo 20})
bin=$PWD/target/release/plughost
rabbit=/usr/lib/rabbitmq/bin
[ -x "$bin" ] || { echo "build first: cargo build --release -p plughost-cli -p plugin-math -p plugin-echo" >&2; exit 1; }
[ -x "$rabbit/rabbitmq-server" ] || { echo "needs rabbitmq-server installed" >&2; exit 1; }
dir=$(mktemp -d)
cookie="plughostbench$$"
hosts=()
names=()
ports=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

node_env() { # node index -> the environment every command for that node needs
    local d=$dir/node$1
    echo HOME="$d/home" RABBITMQ_NODENAME="${names[$1]}" RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf"
}

ctl() { # node index, rabbitmqctl arguments
    local i=$1; shift
    env $(node_env "$i") "$rabbit/rabbitmqctl" -n "${names[$i]}" "$@"
}

stop_hosts() {
    for pid in "${hosts[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${hosts[@]}"; do wait "$pid" 2>/dev/null || true; done
    hosts=()
}

cleanup() {
    stop_hosts
    for i in 0 1 2; do
        [ -f "$dir/node$i/pid" ] && kill -KILL "$(cat "$dir/node$i/pid")" 2>/dev/null || true
    done
    sleep 1
    rm -rf "$dir"
}
trap cleanup EXIT

start_node() { # index
    local i=$1 d=$dir/node$1
    mkdir -p "$d"/{mnesia,log,home}
    ports[$i]=$(free_port)
    names[$i]="plughost-bench-$$-$i@localhost"
    printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "${ports[$i]}" > "$d/rabbitmq.conf"
    echo '[].' > "$d/enabled_plugins"
    : > "$d/rabbitmq-env.conf"
    printf '%s' "$cookie" > "$d/home/.erlang.cookie"
    chmod 400 "$d/home/.erlang.cookie"
    env $(node_env "$i") \
        RABBITMQ_NODE_PORT="${ports[$i]}" RABBITMQ_DIST_PORT="$(free_port)" \
        RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
        RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
        RABBITMQ_PID_FILE="$d/pid" \
        "$rabbit/rabbitmq-server" > "$d/server.out" 2>&1 &
}

wait_listening() { # index
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/${ports[$1]}") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "node $1 did not start:" >&2; cat "$dir/node$1/server.out" >&2; exit 1
}

url() { echo "amqp://guest:guest@127.0.0.1:${ports[$1]}/%2f"; }

for i in 0 1 2; do start_node "$i"; done
for i in 0 1 2; do wait_listening "$i"; done
for i in 1 2; do
    ctl "$i" stop_app >/dev/null
    ctl "$i" join_cluster "${names[0]}" >/dev/null
    ctl "$i" start_app >/dev/null
    wait_listening "$i"
done
echo "cluster: $(ctl 0 cluster_status --formatter json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))') nodes running; route_queues: ${kinds[*]}; ${method[*]} at 32 in flight, ${secs} s per run" >&2

start_host() { # index, route_queues: a host serving math and echo from node k
    local k=$1 kind=$2 m=$dir/host$1.toml
    cat > "$m" <<EOF
[host]
name = "bench-host-$k"
admin = "$dir/admin$k.sock"
watch = false

[local]
enabled = false

[rabbitmq]
urls = ["$(url "$k")"]
route_queues = "$kind"
rpc_exchange = "bench_$kind"
prefetch = 64

[roles]
manager = false
services = false

[[plugins]]
path = "$PWD/target/release/libplugin_math.so"

[[plugins]]
path = "$PWD/target/release/libplugin_echo.so"
EOF
    "$bin" run --manifest "$m" 2>"$dir/host$k.log" &
    hosts+=($!)
}

route_consumers() { # route_queues -> consumers of the method's route queue
    local route
    route=$("$bin" find "${method[0]}" --amqp "$(url 0)" --rpc-exchange "bench_$1" 2>/dev/null) || { echo 0; return; }
    ctl 0 list_queues name consumers -q 2>/dev/null | awk -v q="plughost.bench_$1.route.$route" '$1 == q { print $2 }'
}

figures() { # route_queues -> "calls/s p50 p99 errors"
    "$bin" bench call "${method[@]}" --concurrency 32 --duration "$secs" --amqp "$(url 0)" --rpc-exchange "bench_$1" --json 2>/dev/null |
        python3 -c 'import json,sys; s=json.load(sys.stdin); print("%.0f %.2f %.2f %s" % (s["calls_per_sec"], s["p50_ms"], s["p99_ms"], sum(s["errors"].values())))'
}

echo "| round | hosts | route queues | calls/s | p50 / p99 ms | errors |"
echo "|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for n in 1 2 3; do
        for kind in "${kinds[@]}"; do
            for k in $(seq 0 $((n - 1))); do start_host "$k" "$kind"; done
            for _ in $(seq 300); do [ "$(route_consumers "$kind")" = "$n" ] && break; sleep 0.2; done
            [ "$(route_consumers "$kind")" = "$n" ] || { echo "the route never had $n consumers" >&2; exit 1; }
            read -r c p50 p99 err < <(figures "$kind")
            echo "| $round | $n | $kind | $c | $p50 / $p99 | $err |"
            stop_hosts
        done
    done
done

# QUEUES=N: the brokers' memory per idle route queue of each kind (for the
# sizing in docs/deploying.md): N queues declared as hosts declare them
# (with pika from target/pika, as the interop tests use), the cluster's
# memory (sum of every node's total) before and after.
if [ "${QUEUES:-0}" -gt 0 ]; then
    mem() {
        local sum=0 m
        for i in 0 1 2; do
            m=$(ctl "$i" status --formatter json | python3 -c 'import json,sys; t=json.load(sys.stdin)["memory"]["total"]; print(t.get("erlang", t.get("rss", 0)) if isinstance(t, dict) else t)')
            sum=$((sum + m))
        done
        echo "$sum"
    }
    for kind in "${kinds[@]}"; do
        before=$(mem)
        PYTHONPATH=$PWD/target/pika python3 - "$(url 0)" "$QUEUES" "$kind" <<'PY'
import sys, pika
url, n, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ch = pika.BlockingConnection(pika.URLParameters(url)).channel()
args = {"x-expires": 600000}
if kind == "quorum":
    args["x-queue-type"] = "quorum"
for i in range(n):
    ch.queue_declare("plughost.bench.%s.route.q%d" % (kind, i), durable=(kind != "transient"), arguments=args)
PY
        sleep 5
        after=$(mem)
        echo "cluster memory: $before -> $after bytes for $QUEUES $kind queues: $(( (after - before) / QUEUES )) bytes per queue (all nodes together)" >&2
    done
fi
