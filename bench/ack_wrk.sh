#!/usr/bin/env bash
# Ack latency with wrk (C) as the load generator, so the client takes little of the two CPUs.
# Usage: bench/ack_wrk.sh DATABASE_URL [seconds] [connections]
#   DATABASE_URL: sqlite:///tmp/x.sqlite3, postgresql://postgres@127.0.0.1:5432/test, or null: (no store)
# Needs wrk (Debian package "wrk"). 100 connections = 100 concurrent senders, closed loop.
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:?DATABASE_URL}
seconds=${2:-10}
connections=${3:-100}
py=.venv/bin/python
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$tmp"' EXIT
$py - "$tmp/body.json" <<'PY' > "$tmp/signature"
import sys
sys.path.insert(0, "bench")
from ack_latency import SECRET, payload
from bot.webhook import sign
body = payload(1)
open(sys.argv[1], "wb").write(body)
print(sign(body, SECRET), end="")
PY
$py bench/ack_latency.py --serve --port "$port" --database-url "$url" &
server=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
# warm-up, then the measured run
BENCH_BODY="$tmp/body.json" BENCH_SIGNATURE="$(cat "$tmp/signature")" \
  wrk -t1 -c"$connections" -d2s -s bench/ack_wrk.lua "http://127.0.0.1:$port" >/dev/null
echo "store: $url   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
BENCH_BODY="$tmp/body.json" BENCH_SIGNATURE="$(cat "$tmp/signature")" \
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/ack_wrk.lua "http://127.0.0.1:$port"
