#!/usr/bin/env bash
# plughost RPC against the bare broker limit (a two-process lapin pair) and
# the pika tutorial-6 RPC, interleaved: each round runs, at each concurrency,
# plughost's `bench call` (the client's default: no publisher confirms with
# one broker URL; then with them: plughost-c), then `bench baseline`, then
# (at 1 in flight) the pika peer. Prints every run, then the medians and
# ratios as Markdown.
#   usage: scripts/bench-rpc.sh [seconds per run] [rounds] [n of fib(n)]
#   (after cargo build --release -p plughost-cli -p plugin-math -p plugin-echo; RabbitMQ on 127.0.0.1:5672)
# PLUGHOST_BENCH_REPLY=direct|queue picks plughost's reply mechanism (default: the client's).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
n=${3:-10}
url=${PLUGHOST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
bin=target/release/plughost
[ -x "$bin" ] || { echo "build first: cargo build --release -p plughost-cli -p plugin-math -p plugin-echo" >&2; exit 1; }
pika=target/pika
[ -d "$pika/pika" ] || python3 -m pip install --quiet --disable-pip-version-check --target "$pika" pika
reply=()
[ -n "${PLUGHOST_BENCH_REPLY:-}" ] && reply=(--reply "$PLUGHOST_BENCH_REPLY")

dir=$(mktemp -d)
queue="plughost.bench.pika.$$"
# The example manifest with the pair server's prefetch (256), plugin paths made absolute.
sed -e 's/^prefetch = .*/prefetch = 256/' -e "s#path = \"\.\./#path = \"$PWD/#" examples/plughost.toml >"$dir/plughost.toml"
$bin run --manifest "$dir/plughost.toml" 2>"$dir/host.log" &
host=$!
PYTHONPATH=$pika python3 scripts/pika_rpc_peer.py server "$queue" "$url" >"$dir/pika-server.out" 2>&1 &
pika_server=$!
trap 'kill $host $pika_server 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do $bin find fibo >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 50); do grep -q ready "$dir/pika-server.out" && break; sleep 0.2; done

runs="$dir/runs.jsonl"
record() { # round concurrency who command...
    local round=$1 c=$2 who=$3
    shift 3
    "$@" | python3 -c "import json,sys; s=json.load(sys.stdin); s.update(round=$round, c=$c, who='$who'); print(json.dumps(s))" >>"$runs"
}
for round in $(seq "$rounds"); do
    for c in 1 64 256; do
        record "$round" "$c" plughost $bin bench call fibo "$n" --concurrency "$c" --duration "$secs" --host-pid "$host" "${reply[@]}" --json
        record "$round" "$c" plughost-c $bin bench call fibo "$n" --concurrency "$c" --duration "$secs" --host-pid "$host" --confirms "${reply[@]}" --json
        record "$round" "$c" pair $bin bench baseline --fib "$n" --concurrency "$c" --duration "$secs" --json
        if [ "$c" = 1 ]; then
            record "$round" "$c" pika env PYTHONPATH=$pika python3 scripts/pika_rpc_peer.py client "$queue" "$url" "$secs" "$n"
        fi
    done
done

python3 - "$runs" "$secs" "$n" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
secs, n = sys.argv[2], sys.argv[3]
def cpu(r):
    v = r.get("server_cpu_us_per_call")
    return "-" if v is None else "%.1f" % v
print("Every run (%s s each, fib(%s)):\n" % (secs, n))
print("| round | in flight | who | calls/s | p50 / p99 / max ms | server CPU µs/call | errors |")
print("|---|---|---|---|---|---|---|")
for r in runs:
    print("| %d | %d | %s | %.0f | %.3f / %.3f / %.2f | %s | %d |" % (
        r["round"], r["c"], r["who"], r["calls_per_sec"], r["p50_ms"], r["p99_ms"], r["max_ms"],
        cpu(r), sum(r["errors"].values())))
def med(who, c, key):
    vals = [r[key] for r in runs if r["who"] == who and r["c"] == c and r.get(key) is not None]
    return statistics.median(vals) if vals else None
print("\nMedians over the rounds, and plughost's ratios (plughost-c: calls with publisher confirms):\n")
print("| in flight | client | plughost calls/s | pair calls/s | plughost / pair | plughost p50 ms | pair p50 ms | p50 ratio | host CPU µs/call | pair server CPU µs/call |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in (1, 64, 256):
    for who in ("plughost", "plughost-c"):
        pc, bc = med(who, c, "calls_per_sec"), med("pair", c, "calls_per_sec")
        pp, bp = med(who, c, "p50_ms"), med("pair", c, "p50_ms")
        hc, sc = med(who, c, "server_cpu_us_per_call"), med("pair", c, "server_cpu_us_per_call")
        print("| %d | %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.2fx | %s | %s |" % (
            c, "default" if who == "plughost" else "confirms", pc, bc, pc / bc, pp, bp, pp / bp,
            "-" if hc is None else "%.1f" % hc, "-" if sc is None else "%.1f" % sc))
pk = med("pika", 1, "calls_per_sec")
if pk:
    print("\npika tutorial-6 at 1 in flight: %.0f calls/s, p50 %.3f ms; plughost / pika = %.2fx (default), %.2fx (confirms)" % (
        pk, med("pika", 1, "p50_ms"), med("plughost", 1, "calls_per_sec") / pk, med("plughost-c", 1, "calls_per_sec") / pk))
EOF
