#!/usr/bin/env bash
# Local transport against the broker path, on one host, interleaved: the
# same `bench call` through RabbitMQ and through the host's local socket.
# Prints a Markdown table for docs/benchmarks.md.
#   usage: scripts/bench-local.sh [seconds per run] [rounds]   (after cargo build --release --workspace)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-2}
bin=target/release/plughost
[ -x "$bin" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }
dir=$(mktemp -d)
sed "s#^\[local\]#[local]\nsocket = \"$dir/local.sock\"#" examples/plughost.toml > "$dir/plughost.toml"
# Plugin paths in the example are relative to examples/.
sed -i "s#path = \"\.\./#path = \"$PWD/#" "$dir/plughost.toml"
$bin run --manifest "$dir/plughost.toml" 2>"$dir/host.log" &
host=$!
trap 'kill $host 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do $bin find fibo --manifest "$dir/plughost.toml" >/dev/null 2>&1 && break; sleep 0.2; done

figures() { # -> "calls/s p50 p99 errors"
    "$@" --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); print("%.0f %.2f %.2f %s" % (s["calls_per_sec"], s["p50_ms"], s["p99_ms"], sum(s["errors"].values())))'
}

echo "| round | concurrency | broker calls/s | p50 / p99 ms | local calls/s | p50 / p99 ms | errors (broker, local) |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for c in 1 64; do
        read -r bc bp50 bp99 berr < <(figures $bin bench call fibo 20 --concurrency "$c" --duration "$secs" --manifest "$dir/plughost.toml")
        read -r lc lp50 lp99 lerr < <(figures $bin bench call fibo 20 --concurrency "$c" --duration "$secs" --manifest "$dir/plughost.toml" --local)
        echo "| $round | $c | $bc | $bp50 / $bp99 | $lc | $lp50 / $lp99 | $berr, $lerr |"
    done
done
