#!/usr/bin/env bash
# Measures plughost RPC against the bare-lapin baseline, in one run, and
# prints a Markdown table for docs/benchmarks.md.
#   usage: scripts/bench-rpc.sh [seconds per run]   (after cargo build --release --workspace)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin=target/release/plughost
[ -x "$bin" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }

$bin run --manifest examples/plughost.toml 2>/tmp/plughost-bench-host.log &
host=$!
trap 'kill $host 2>/dev/null || true' EXIT
for _ in $(seq 50); do $bin find fibo >/dev/null 2>&1 && break; sleep 0.2; done

figures() { # -> "calls/s p50 p99 max errors"
    "$@" --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); print("%.0f %.2f %.2f %.2f %s" % (s["calls_per_sec"], s["p50_ms"], s["p99_ms"], s["max_ms"], sum(s["errors"].values())))'
}

echo "| concurrency | reply | plughost calls/s | p50 / p99 / max ms | errors | baseline calls/s | p50 / p99 / max ms | plughost / baseline |"
echo "|---|---|---|---|---|---|---|---|"
run() { # concurrency reply
    read -r pc pp50 pp99 pmax perr < <(figures $bin bench call fibo 20 --concurrency "$1" --duration "$secs" --reply "$2")
    read -r bc bp50 bp99 bmax _ < <(figures $bin bench baseline --concurrency "$1" --duration "$secs" --reply "$2")
    ratio=$(python3 -c "print('%.0f%%' % (100.0 * $pc / $bc))")
    echo "| $1 | $2 | $pc | $pp50 / $pp99 / $pmax | $perr | $bc | $bp50 / $bp99 / $bmax | $ratio |"
}
run 1 queue
run 64 queue
run 256 queue
run 64 direct
