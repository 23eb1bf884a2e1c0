#!/usr/bin/env bash
# Memory per key for 1M keys `key:NNNNNNN` -> 16-byte values, with and without
# a TTL on every key, for shoal and for redis-server, each in a fresh process:
# (RSS after - RSS before) / keys. Usage: benches/memory-per-key.sh [keys]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=${1:-1000000}
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "needs redis-server and redis-cli" >&2; exit 2; }
cargo build --release --bin shoal-server --manifest-path "$root/Cargo.toml" >&2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$n" "$tmp" <<'PY'
import sys
n, d = int(sys.argv[1]), sys.argv[2]
v = b"v" * 16
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
with open(d + "/plain", "wb") as f:
    for i in range(n): f.write(cmd(b"SET", b"key:%07d" % i, v))
with open(d + "/ttl", "wb") as f:
    for i in range(n): f.write(cmd(b"SET", b"key:%07d" % i, v, b"EX", b"100000"))
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/VmRSS/{print $2*1024}' "/proc/$1/status"; }
measure() { # name dataset command...
  local name=$1 data=$2; shift 2
  local port; port=$(free_port)
  "$@" --port "$port" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local before; before=$(rss "$pid")
  redis-cli -p "$port" --pipe < "$tmp/$data" >/dev/null
  local keys; keys=$(redis-cli -p "$port" dbsize)
  local after; after=$(rss "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-8s %-6s keys=%-8s RSS/key=%s B\n' "$name" "$data" "$keys" $(( (after - before) / n ))
}
for data in plain ttl; do
  measure shoal "$data" "$root/target/release/shoal-server" --loglevel warning
  measure redis "$data" redis-server --save '' --appendonly no
done
