#!/usr/bin/env bash
# Memory per key for 1M keys `key:NNNNNNN` -> 16-byte and 100-byte values, with
# and without a TTL on every key, for shoal and for redis-server, each in a
# fresh process: (RSS after - RSS before) / keys and (used_memory after -
# before) / keys. Usage: benches/memory-per-key.sh [keys]
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
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
for size in (16, 100):
    v = b"v" * size
    with open(d + "/plain%d" % size, "wb") as f:
        for i in range(n): f.write(cmd(b"SET", b"key:%07d" % i, v))
    with open(d + "/ttl%d" % size, "wb") as f:
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
  local ubefore; ubefore=$(used "$port")
  redis-cli -p "$port" --pipe < "$tmp/$data" >/dev/null
  local keys; keys=$(redis-cli -p "$port" dbsize)
  local after; after=$(rss "$pid")
  local uafter; uafter=$(used "$port")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-8s %-9s keys=%-8s RSS/key=%-4s B used_memory/key=%s B\n' "$name" "$data" "$keys" \
    $(( (after - before) / n )) $(( (uafter - ubefore) / n ))
}
used() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/{print $2+0}'; }
for data in plain16 ttl16 plain100 ttl100; do
  measure shoal "$data" "$root/target/release/shoal-server" --loglevel warning
  measure redis "$data" redis-server --save '' --appendonly no
done
