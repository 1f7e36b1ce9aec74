#!/usr/bin/env bash
# Measures a service manager (its own `plughost run` process, manager role
# only) idle and with N simulated services heartbeating every second; prints
# a Markdown table for docs/benchmarks.md.
#   usage: scripts/bench-tracker.sh [seconds per run]   (after cargo build --release --workspace)
#   MANAGER_BIN=/path/to/other/plughost runs that build as the manager (the
#   load generator is always this tree's), to compare two builds in one session.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
bin=target/release/plughost
manager_bin=${MANAGER_BIN:-$bin}
[ -x "$bin" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d); disc=$(port); mgmt=$(port)
cat > "$dir/manager.toml" <<TOML
[host]
name = "bench-manager"
[zeromq]
discovery = "tcp://127.0.0.1:$disc"
management = "tcp://127.0.0.1:$mgmt"
ttl_ms = 3000
[roles]
name_service = false
rpc = false
services = false
admin = false
TOML
$manager_bin run --manifest "$dir/manager.toml" 2>"$dir/manager.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 1
ticks() { awk '{print $14+$15}' /proc/$pid/stat; }
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }
hz=$(getconf CLK_TCK)

echo "| services | manager CPU (% of one core) | manager RSS (MiB) | HELLOs answered | list all (ms) |"
echo "|---|---|---|---|---|"
t0=$(ticks); sleep "$secs"; t1=$(ticks)
echo "| 0 (idle baseline) | $(python3 -c "print('%.1f' % (100.0*($t1-$t0)/$hz/$secs))") | $(python3 -c "print('%.1f' % ($(rss)/1024))") | - | - |"
for n in 1000 10000; do
    t0=$(ticks)
    out=$($bin bench tracker --services $n --duration "$secs" --discovery "tcp://127.0.0.1:$disc" --management "tcp://127.0.0.1:$mgmt")
    t1=$(ticks)
    read -r answered list_ms listed < <(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["answers"], "%.1f" % d["list_ms"], d["listed"])')
    echo "| $n ($listed listed) | $(python3 -c "print('%.1f' % (100.0*($t1-$t0)/$hz/$secs))") | $(python3 -c "print('%.1f' % ($(rss)/1024))") | $answered | $list_ms |"
    sleep 4 # let the simulated services expire before the next row
done
